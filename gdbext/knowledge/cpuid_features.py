"""Where each CPUID feature lives, keyed by iced-x86's ``CpuidFeature`` names.

Names are Linux ``/proc/cpuinfo`` spellings (arch/x86/include/asm/cpufeatures.h),
so ``SSE3`` is ``pni``, ``LZCNT`` is ``abm`` and ``SHA`` is ``sha_ni``.  Leaf,
subleaf, register and bit follow the Intel SDM vol. 2A "CPUID" and AMD APM
vol. 3 appendix E; ``tests/unit/test_cpuid_table.py`` cross-checks every row
that archspec's ``cpuid.json`` also lists.
"""
from __future__ import annotations

from collections import namedtuple


class CpuidBit(namedtuple("CpuidBit", "name leaf subleaf register bit")):
    """One CPUID bit: name in /proc/cpuinfo spelling, register eax/ebx/ecx/edx."""
    __slots__ = ()

    def describe(self) -> str:
        sub = f".{self.subleaf}" if self.leaf in (0x7, 0xD, 0x14, 0x19) else ""
        return f"CPUID.{self.leaf:X}h{sub}:{self.register.upper()}[{self.bit}]"


_E1 = 0x80000001
_E8 = 0x80000008

# iced CpuidFeature name -> where the bit is.
CPUID_BITS: dict[str, CpuidBit] = {k: CpuidBit(*v) for k, v in {
    # leaf 1
    "FPU": ("fpu", 1, 0, "edx", 0),
    "TSC": ("tsc", 1, 0, "edx", 4),
    "MSR": ("msr", 1, 0, "edx", 5),
    "CX8": ("cx8", 1, 0, "edx", 8),
    "SEP": ("sep", 1, 0, "edx", 11),
    "CMOV": ("cmov", 1, 0, "edx", 15),
    "CLFSH": ("clflush", 1, 0, "edx", 19),
    "MMX": ("mmx", 1, 0, "edx", 23),
    "FXSR": ("fxsr", 1, 0, "edx", 24),
    "SSE": ("sse", 1, 0, "edx", 25),
    "SSE2": ("sse2", 1, 0, "edx", 26),
    "SSE3": ("pni", 1, 0, "ecx", 0),
    "PCLMULQDQ": ("pclmulqdq", 1, 0, "ecx", 1),
    "MONITOR": ("monitor", 1, 0, "ecx", 3),
    "VMX": ("vmx", 1, 0, "ecx", 5),
    "SMX": ("smx", 1, 0, "ecx", 6),
    "SSSE3": ("ssse3", 1, 0, "ecx", 9),
    "FMA": ("fma", 1, 0, "ecx", 12),
    "CMPXCHG16B": ("cx16", 1, 0, "ecx", 13),
    "SSE4_1": ("sse4_1", 1, 0, "ecx", 19),
    "SSE4_2": ("sse4_2", 1, 0, "ecx", 20),
    "MOVBE": ("movbe", 1, 0, "ecx", 22),
    "POPCNT": ("popcnt", 1, 0, "ecx", 23),
    "AES": ("aes", 1, 0, "ecx", 25),
    "XSAVE": ("xsave", 1, 0, "ecx", 26),
    "AVX": ("avx", 1, 0, "ecx", 28),
    "F16C": ("f16c", 1, 0, "ecx", 29),
    "RDRAND": ("rdrand", 1, 0, "ecx", 30),
    # leaf 7 subleaf 0
    "FSGSBASE": ("fsgsbase", 7, 0, "ebx", 0),
    "SGX1": ("sgx", 7, 0, "ebx", 2),
    "BMI1": ("bmi1", 7, 0, "ebx", 3),
    "HLE": ("hle", 7, 0, "ebx", 4),
    "AVX2": ("avx2", 7, 0, "ebx", 5),
    "BMI2": ("bmi2", 7, 0, "ebx", 8),
    "INVPCID": ("invpcid", 7, 0, "ebx", 10),
    "RTM": ("rtm", 7, 0, "ebx", 11),
    "MPX": ("mpx", 7, 0, "ebx", 14),
    "AVX512F": ("avx512f", 7, 0, "ebx", 16),
    "AVX512DQ": ("avx512dq", 7, 0, "ebx", 17),
    "RDSEED": ("rdseed", 7, 0, "ebx", 18),
    "ADX": ("adx", 7, 0, "ebx", 19),
    "SMAP": ("smap", 7, 0, "ebx", 20),
    "AVX512_IFMA": ("avx512ifma", 7, 0, "ebx", 21),
    "PCOMMIT": ("pcommit", 7, 0, "ebx", 22),
    "CLFLUSHOPT": ("clflushopt", 7, 0, "ebx", 23),
    "CLWB": ("clwb", 7, 0, "ebx", 24),
    "AVX512PF": ("avx512pf", 7, 0, "ebx", 26),
    "AVX512ER": ("avx512er", 7, 0, "ebx", 27),
    "AVX512CD": ("avx512cd", 7, 0, "ebx", 28),
    "SHA": ("sha_ni", 7, 0, "ebx", 29),
    "AVX512BW": ("avx512bw", 7, 0, "ebx", 30),
    "AVX512VL": ("avx512vl", 7, 0, "ebx", 31),
    "PREFETCHWT1": ("prefetchwt1", 7, 0, "ecx", 0),
    "AVX512_VBMI": ("avx512vbmi", 7, 0, "ecx", 1),
    "PKU": ("pku", 7, 0, "ecx", 3),
    "WAITPKG": ("waitpkg", 7, 0, "ecx", 5),
    "AVX512_VBMI2": ("avx512_vbmi2", 7, 0, "ecx", 6),
    "CET_SS": ("shstk", 7, 0, "ecx", 7),
    "GFNI": ("gfni", 7, 0, "ecx", 8),
    "VAES": ("vaes", 7, 0, "ecx", 9),
    "VPCLMULQDQ": ("vpclmulqdq", 7, 0, "ecx", 10),
    "AVX512_VNNI": ("avx512_vnni", 7, 0, "ecx", 11),
    "AVX512_BITALG": ("avx512_bitalg", 7, 0, "ecx", 12),
    "AVX512_VPOPCNTDQ": ("avx512_vpopcntdq", 7, 0, "ecx", 14),
    "RDPID": ("rdpid", 7, 0, "ecx", 22),
    "KL": ("keylocker", 7, 0, "ecx", 23),
    "CLDEMOTE": ("cldemote", 7, 0, "ecx", 25),
    "MOVDIRI": ("movdiri", 7, 0, "ecx", 27),
    "MOVDIR64B": ("movdir64b", 7, 0, "ecx", 28),
    "ENQCMD": ("enqcmd", 7, 0, "ecx", 29),
    "AVX512_4VNNIW": ("avx512_4vnniw", 7, 0, "edx", 2),
    "AVX512_4FMAPS": ("avx512_4fmaps", 7, 0, "edx", 3),
    "UINTR": ("uintr", 7, 0, "edx", 5),
    "AVX512_VP2INTERSECT": ("avx512_vp2intersect", 7, 0, "edx", 8),
    "SERIALIZE": ("serialize", 7, 0, "edx", 14),
    "TSXLDTRK": ("tsxldtrk", 7, 0, "edx", 16),
    "PCONFIG": ("pconfig", 7, 0, "edx", 18),
    "CET_IBT": ("ibt", 7, 0, "edx", 20),
    "AMX_BF16": ("amx_bf16", 7, 0, "edx", 22),
    "AVX512_FP16": ("avx512_fp16", 7, 0, "edx", 23),
    "AMX_TILE": ("amx_tile", 7, 0, "edx", 24),
    "AMX_INT8": ("amx_int8", 7, 0, "edx", 25),
    # leaf 7 subleaf 1
    "SHA512": ("sha512", 7, 1, "eax", 0),
    "SM3": ("sm3", 7, 1, "eax", 1),
    "SM4": ("sm4", 7, 1, "eax", 2),
    "RAO_INT": ("rao_int", 7, 1, "eax", 3),
    "AVX_VNNI": ("avx_vnni", 7, 1, "eax", 4),
    "AVX512_BF16": ("avx512_bf16", 7, 1, "eax", 5),
    "CMPCCXADD": ("cmpccxadd", 7, 1, "eax", 7),
    "FRED": ("fred", 7, 1, "eax", 17),
    "LKGS": ("lkgs", 7, 1, "eax", 18),
    "WRMSRNS": ("wrmsrns", 7, 1, "eax", 19),
    "AMX_FP16": ("amx_fp16", 7, 1, "eax", 21),
    "HRESET": ("hreset", 7, 1, "eax", 22),
    "AVX_IFMA": ("avx_ifma", 7, 1, "eax", 23),
    "MSRLIST": ("msrlist", 7, 1, "eax", 27),
    "AVX_VNNI_INT8": ("avx_vnni_int8", 7, 1, "edx", 4),
    "AVX_NE_CONVERT": ("avx_ne_convert", 7, 1, "edx", 5),
    "AMX_COMPLEX": ("amx_complex", 7, 1, "edx", 8),
    "AVX_VNNI_INT16": ("avx_vnni_int16", 7, 1, "edx", 10),
    "PREFETCHITI": ("prefetchiti", 7, 1, "edx", 14),
    # leaf 0xD subleaf 1, 0x14, 0x19
    "XSAVEOPT": ("xsaveopt", 0xD, 1, "eax", 0),
    "XSAVEC": ("xsavec", 0xD, 1, "eax", 1),
    "XSAVES": ("xsaves", 0xD, 1, "eax", 3),
    "PTWRITE": ("ptwrite", 0x14, 0, "ebx", 4),
    "AESKLE": ("aeskle", 0x19, 0, "ebx", 0),
    "WIDE_KL": ("widekl", 0x19, 0, "ebx", 2),
    # leaf 0x8000_0001 (AMD extensions; LZCNT is "abm" on Intel too)
    "SYSCALL": ("syscall", _E1, 0, "edx", 11),
    "RDTSCP": ("rdtscp", _E1, 0, "edx", 27),
    "X64": ("lm", _E1, 0, "edx", 29),
    "D3NOWEXT": ("3dnowext", _E1, 0, "edx", 30),
    "D3NOW": ("3dnow", _E1, 0, "edx", 31),
    "SVM": ("svm", _E1, 0, "ecx", 2),
    "LZCNT": ("abm", _E1, 0, "ecx", 5),
    "SSE4A": ("sse4a", _E1, 0, "ecx", 6),
    "PREFETCHW": ("3dnowprefetch", _E1, 0, "ecx", 8),
    "XOP": ("xop", _E1, 0, "ecx", 11),
    "SKINIT": ("skinit", _E1, 0, "ecx", 12),
    "LWP": ("lwp", _E1, 0, "ecx", 15),
    "FMA4": ("fma4", _E1, 0, "ecx", 16),
    "TBM": ("tbm", _E1, 0, "ecx", 21),
    "MONITORX": ("mwaitx", _E1, 0, "ecx", 29),
    # leaf 0x8000_0008 EBX
    "CLZERO": ("clzero", _E8, 0, "ebx", 0),
    "INVLPGB": ("invlpgb", _E8, 0, "ebx", 3),
    "RDPRU": ("rdpru", _E8, 0, "ebx", 4),
    "MCOMMIT": ("mcommit", _E8, 0, "ebx", 8),
    "WBNOINVD": ("wbnoinvd", _E8, 0, "ebx", 9),
}.items()}

# iced values with OR semantics: the instruction runs when any one is present.
ANY_OF: dict[str, tuple[str, ...]] = {
    "HLE_OR_RTM": ("HLE", "RTM"),
    "SKINIT_OR_SVM": ("SKINIT", "SVM"),
}

# Every x86-64 CPU implements these (the x86-64 baseline, AMD64 APM vol. 1
# §1.1 / psABI "x86-64-v1"): they are never reported as missing.
BASELINE: frozenset[str] = frozenset({
    "INTEL8086", "INTEL186", "INTEL286", "INTEL386", "INTEL486", "X64",
    "FPU", "FPU287", "FPU387", "CPUID", "TSC", "MSR", "CX8", "CMOV", "CLFSH",
    "MMX", "FXSR", "SSE", "SSE2", "SYSCALL", "PAUSE", "MULTIBYTENOP",
    "RDPMC",   # no CPUID bit; user access is gated by CR4.PCE (#GP), not by the CPU model
})

# Hints: on a CPU without the feature these execute as NOPs (they sit in the
# reserved-NOP or ignored-prefix space), so their absence is never a fault.
NOP_WHEN_ABSENT: dict[str, str] = {
    "CET_IBT": "endbr32/endbr64 execute as NOPs on CPUs without IBT",
    "CLDEMOTE": "cldemote executes as a NOP on CPUs without it",
    "PREFETCHITI": "prefetchit0/1 execute as NOPs on CPUs without them",
    "HLE": "xacquire/xrelease prefixes are ignored on CPUs without HLE",
    # 0F 0D is a hint-NOP opcode on Intel CPUs that predate PREFETCHW (SDM vol. 2)
    "PREFETCHW": "prefetchw executes as a NOP on CPUs without it",
}

# Leaf 1 ECX[27]: the OS has set CR4.OSXSAVE, so XGETBV may be executed.
OSXSAVE = CpuidBit("osxsave", 1, 0, "ecx", 27)
HYPERVISOR = CpuidBit("hypervisor", 1, 0, "ecx", 31)

# XCR0 state components an instruction's registers need (SDM vol. 1 §13.3):
# without them enabled by the OS, VEX/EVEX/AMX instructions raise #UD even
# when CPUID advertises the feature.
XCR0_SSE = 1 << 1
XCR0_AVX = 1 << 2            # upper halves of ymm
XCR0_OPMASK = 1 << 5         # k0-k7
XCR0_ZMM_HI256 = 1 << 6      # upper halves of zmm0-15
XCR0_HI16_ZMM = 1 << 7       # zmm16-31
XCR0_TILECFG = 1 << 17
XCR0_TILEDATA = 1 << 18
XCR0_YMM_STATE = XCR0_SSE | XCR0_AVX                                          # 0x6
XCR0_EVEX_STATE = XCR0_YMM_STATE | XCR0_OPMASK | XCR0_ZMM_HI256 | XCR0_HI16_ZMM  # 0xe6
XCR0_AMX_STATE = XCR0_TILECFG | XCR0_TILEDATA                                 # 0x60000

XCR0_COMPONENTS: dict[int, str] = {
    0: "x87", 1: "sse", 2: "avx", 3: "bndregs", 4: "bndcsr", 5: "opmask",
    6: "zmm_hi256", 7: "hi16_zmm", 9: "pkru", 17: "tilecfg", 18: "tiledata",
}


def xcr0_names(mask: int) -> list[str]:
    return [n for b, n in sorted(XCR0_COMPONENTS.items()) if mask >> b & 1]


# cpuinfo name -> bit, for tables that name features the way /proc/cpuinfo does.
# Also bits iced-x86 has no feature for (lahf/sahf in 64-bit mode need lahf_lm).
BY_NAME: dict[str, CpuidBit] = {b.name: b for b in CPUID_BITS.values()} | {
    b.name: b for b in (OSXSAVE, CpuidBit("lahf_lm", _E1, 0, "ecx", 0))}
