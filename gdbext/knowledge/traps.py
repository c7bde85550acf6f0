"""Instructions that stop a program on purpose, and notes per feature.

Keyed by iced-x86 ``Mnemonic`` names (upper case) and by cpuinfo names.
"""
from __future__ import annotations

# Mnemonic -> what it is.  These fault by design; they are never an ISA gap.
DELIBERATE_TRAPS: dict[str, str] = {
    "UD2": "ud2 raises #UD by design: __builtin_trap(), a Rust/Zig abort or a "
           "compiler-placed unreachable",
    "UD1": "ud1 raises #UD by design (used as a trap with an embedded code, e.g. "
           "UBSan's -fsanitize-trap and the kernel's BUG())",
    "UD0": "ud0 raises #UD by design",
    "INT3": "int3 is a breakpoint trap (a compiled-in breakpoint, __debugbreak or "
            "a debugger's breakpoint left in memory)",
    "INT1": "int1 (icebp) is a debug trap",
    "INT": "a software interrupt; on Linux x86-64 only int $0x80 (the 32-bit "
           "syscall gate) and int3 are usable from user mode",
}

# Instructions that carry a legacy prefix on an older opcode: a CPU without the
# feature ignores the F3 prefix and runs the old instruction -- no fault
# (Intel SDM vol. 2, TZCNT/LZCNT "operation on processors not supporting").
# Mnemonic -> (what runs instead, what that means for the result).
RUNS_AS: dict[str, tuple[str, str]] = {
    "TZCNT": ("bsf", "tzcnt executes as bsf: the same result for a nonzero input (compilers "
                     "and Rust's std emit it behind a zero check); for zero, bsf leaves the "
                     "destination unchanged where tzcnt returns the operand size"),
    "LZCNT": ("bsr", "lzcnt executes as bsr, which returns the index of the highest set bit "
                     "(31 - lzcnt for 32 bits), not the count of leading zeros: a silent wrong "
                     "result, worse than a SIGILL"),
}

# Short facts a user needs next to a missing feature.
FEATURE_NOTES: dict[str, str] = {
    "fma4": "FMA4 (4-operand FMA) exists only on AMD family 15h (Bulldozer, "
            "Piledriver, Steamroller, Excavator); Intel never implemented it and "
            "AMD Zen 2 and later raise #UD. Code built for it needs FMA3 (fma) instead.",
    "xop": "XOP exists only on AMD family 15h; every later CPU raises #UD.",
    "tbm": "TBM exists only on AMD Piledriver and later family 15h parts.",
    "3dnow": "3DNow! was dropped by AMD with family 15h; no current CPU has it.",
    "3dnowext": "3DNow! extensions were dropped by AMD with family 15h.",
    "sse4a": "SSE4a is AMD-only; Intel CPUs raise #UD.",
    "avx512f": "AVX-512 needs avx512f plus, for 128/256-bit forms, avx512vl; many "
               "client CPUs (Intel Alder Lake and later) and AMD before Zen 4 lack it.",
    "avx512_vnni": "avx512_vnni (EVEX) and avx_vnni (VEX) are different features: "
                   "a CPU may have either one without the other.",
    "avx_vnni": "avx_vnni (VEX-encoded VNNI) and avx512_vnni are different features: "
                "a CPU may have either one without the other.",
    "amx_tile": "AMX also needs per-process permission: the process must call "
                "arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) before its "
                "first tile instruction, or the kernel raises SIGILL.",
}


# Features Linux clears from /proc/cpuinfo on CPUs where they misbehave, while
# CPUID (and glibc) still report them.  (feature, vendor, family) -> what is
# known; the instruction still executes -- the kernel cannot stop it.
# Source: Linux arch/x86/kernel/cpu/amd.c ("RDSEED32 is broken. Disabling the
# corresponding CPUID bit"), AMD-SB-7055.
KERNEL_HIDDEN: dict[tuple[str, str, int], dict] = {
    ("rdseed", "AuthenticAMD", 0x1A): {
        "what": "Zen 5: the 16- and 32-bit RDSEED forms may return 0 with CF=1 (reported "
                "as a good random value); the 64-bit form is unaffected",
        "affected_operand_bits": (16, 32),
    },
}
