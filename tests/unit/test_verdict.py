"""Verdict rules on synthetic CPU records: each rule can fail on its own."""
from __future__ import annotations

import pytest

from gdbext.isa.cpu import CpuFacts
from gdbext.isa.decode import decode
from gdbext.isa.verdict import judge

REGS = {"eax": 0, "ebx": 1, "ecx": 2, "edx": 3}


def cpu_with(*bits: tuple[int, int, str, int], xcr0: int | None = 0xE7,
             leaves=((1, 0), (7, 0), (7, 1), (0x80000001, 0))) -> CpuFacts:
    """A CPU record whose CPUID has exactly ``bits`` set (leaf, sub, reg, bit),
    plus OSXSAVE so XCR0 counts."""
    regs = {leaf: [0, 0, 0, 0] for leaf in leaves}
    for leaf, sub, reg, bit in ((1, 0, "ecx", 27),) + bits:
        regs.setdefault((leaf, sub), [0, 0, 0, 0])[REGS[reg]] |= 1 << bit
    return CpuFacts("synthetic", {k: tuple(v) for k, v in regs.items()}, xcr0=xcr0)


AVX = (1, 0, "ecx", 28)
FMA4 = (0x80000001, 0, "ecx", 16)
AVX512F, AVX512VL = (7, 0, "ebx", 16), (7, 0, "ebx", 31)
RTM = (7, 0, "ebx", 11)
BMI1 = (7, 0, "ebx", 3)

VFMADDPD_FMA4 = "c4e3f969e410"          # vfmaddpd %xmm4,%xmm1,%xmm0,%xmm4
VPADDD_XMM = "c5f1fec2"                 # vpaddd %xmm2,%xmm1,%xmm0
VPTERNLOGD_YMM16 = "62a37d2025c0ff"     # vpternlogd $0xff,%ymm16,%ymm16,%ymm16
XTEST = "0f01d6"
ANDN = "c4e2f0f2c8"                     # andn %rax,%rcx,%rcx  (VEX, GPR only)


def check(hexbytes: str, cpu):
    return judge(decode(bytes.fromhex(hexbytes), 0x1000), cpu)


def test_missing_feature_is_unsupported():
    j = check(VFMADDPD_FMA4, cpu_with(AVX))
    assert (j.verdict, j.missing) == ("unsupported", ["fma4"])


def test_present_feature_is_supported():
    assert check(VFMADDPD_FMA4, cpu_with(AVX, FMA4)).verdict == "supported"


def test_evex_needs_every_feature():
    assert check(VPTERNLOGD_YMM16, cpu_with(AVX512F)).missing == ["avx512vl"]
    assert check(VPTERNLOGD_YMM16, cpu_with(AVX512F, AVX512VL)).verdict == "supported"


@pytest.mark.parametrize("xcr0,verdict", [(0x7, "supported"), (0x3, "os-disabled")])
def test_vex_needs_ymm_state_in_xcr0(xcr0, verdict):
    j = check(VPADDD_XMM, cpu_with(AVX, xcr0=xcr0))
    assert j.verdict == verdict
    assert j.xcr0_missing == (0x4 if verdict == "os-disabled" else 0)


def test_evex_needs_opmask_and_zmm_state():
    j = check(VPTERNLOGD_YMM16, cpu_with(AVX512F, AVX512VL, xcr0=0x7))
    assert j.verdict == "os-disabled" and j.xcr0_missing == 0xE0


def test_osxsave_clear_means_only_x87_and_sse():
    cpu = cpu_with(AVX, xcr0=None)
    regs = list(cpu.leaves[(1, 0)])
    regs[2] &= ~(1 << 27)
    cpu.leaves[(1, 0)] = tuple(regs)
    assert check(VPADDD_XMM, cpu).verdict == "os-disabled"


def test_vex_gpr_instruction_needs_no_vector_state():
    assert check(ANDN, cpu_with(BMI1, xcr0=0x3)).verdict == "supported"


def test_or_features_need_only_one():
    assert check(XTEST, cpu_with(RTM)).verdict == "supported"
    assert check(XTEST, cpu_with()).missing == ["hle|rtm"]


def test_missing_leaf_is_unknown_not_missing():
    cpu = cpu_with(AVX, leaves=((1, 0),))
    j = check(VFMADDPD_FMA4, cpu)
    assert (j.verdict, j.missing) == ("unknown", [])


def test_baseline_is_never_missing_even_on_an_empty_cpu():
    empty = CpuFacts("synthetic", {})
    for code in ("488b18", "0fa2", "0f58c1"):     # mov, cpuid, addps
        j = check(code, empty)
        assert (j.verdict, j.missing, j.features) == ("supported", [], [])


def test_no_cpu_record_is_unknown_for_extensions():
    assert check(VFMADDPD_FMA4, None).verdict == "unknown"
    assert check("0fa2", None).verdict == "supported"


def test_traps_are_named():
    for code, mnemonic in (("0f0b", "ud2"), ("cc", "int3")):
        ins = decode(bytes.fromhex(code), 0)
        assert ins.trap and mnemonic in ins.trap
        assert judge(ins, cpu_with()).verdict == "supported"


@pytest.mark.parametrize("code,needle", [
    ("d51801c0", "REX2"),                   # APX add %r16,%rax
    ("62f47c1801c8", "EVEX map 4"),         # APX NDD form
    ("27", "32-bit"),                       # daa: gone in 64-bit mode
    ("0f04", "not an x86-64 instruction"),
    ("c4e3f969", "truncated"),              # first 4 bytes of a 6-byte instruction
])
def test_undecodable_says_why(code, needle):
    raw = bytes.fromhex(code)
    if needle != "truncated":
        raw = (raw + b"\x90" * 15)[:15]     # as read from memory: a full 15 bytes
    ins = decode(raw, 0)
    j = judge(ins, cpu_with())
    assert j.verdict == "undecodable"
    assert needle in j.reasons[0]


# --- review findings -------------------------------------------------------

def test_hint_instructions_are_not_missing_when_absent():
    for code in ("f30f1efa", "0f1c00"):            # endbr64, cldemote (%rax)
        j = check(code, cpu_with())
        assert (j.verdict, j.missing) == ("supported", []), code
        assert any("NOP" in r for r in j.reasons)


def test_leaf_beyond_the_maximum_is_absent_not_unknown():
    cpu = cpu_with(AVX, leaves=((0, 0), (1, 0), (7, 0)))
    cpu.leaves[(0, 0)] = (0x10, 0, 0, 0)            # max basic leaf 0x10: no leaf 0x14
    j = check("f30faee0", cpu)                      # ptwrite %eax needs CPUID.14h:EBX[4]
    assert (j.verdict, j.missing) == ("unsupported", ["ptwrite"])
    j = check("c4e27550c2", cpu)                    # {vex} vpdpbusd: CPUID.7.1 (7.0 EAX=0)
    assert (j.verdict, j.missing) == ("unsupported", ["avx_vnni"])


def test_vex_without_vector_registers_still_needs_ymm_state():
    j = check("c5f8ae10", cpu_with(AVX, xcr0=0x3))  # vldmxcsr (%rax)
    assert j.verdict == "os-disabled"


def test_privileged_is_said_in_the_headline():
    from gdbext.isa.report import IsaCheckReport
    ins = decode(bytes.fromhex("f4"), 0)             # hlt
    report = IsaCheckReport(ins, judge(ins, cpu_with()), cpu_with(), "live")
    assert "privileged" in report.headline()


TILEZERO = "c4e27b49c0"                 # tilezero %tmm0 (AMX-TILE)


@pytest.mark.parametrize("code, says", [(1, "no permission"), (2, "lacks AMX")])
def test_amx_sigill_code_tells_permission_from_hardware(code, says):
    from gdbext.isa.verdict import amx_signal_hint
    (hint,) = amx_signal_hint(check(TILEZERO, cpu_with()), 4, code)
    assert says in hint
    assert amx_signal_hint(check(VPADDD_XMM, cpu_with(AVX)), 4, code) == []
    assert amx_signal_hint(check(TILEZERO, cpu_with()), 11, code) == []


# F3 0F BC / F3 0F BD (Intel SDM vol. 2: TZCNT, LZCNT); ANDN is VEX (#UD without bmi1)
TZCNT = "f3480fbcc7"                    # tzcnt %rdi,%rax
LZCNT = "f3480fbdc7"                    # lzcnt %rdi,%rax
ANDN = "c4e2f0f2c2"                     # andn %rdx,%rcx,%rax
LZCNT_BIT = (0x80000001, 0, "ecx", 5)


@pytest.mark.parametrize("hexbytes, runs_as", [(TZCNT, "bsf"), (LZCNT, "bsr")])
def test_bit_scans_run_as_the_old_instruction_without_the_feature(hexbytes, runs_as):
    ins = decode(bytes.fromhex(hexbytes), 0x1000)
    j = judge(ins, cpu_with())
    assert j.verdict == "runs-differently" and j.missing == []
    (f,) = j.features
    assert f.present is False and f.runs_as == runs_as
    assert judge(ins, cpu_with(BMI1, LZCNT_BIT)).verdict == "supported"


def test_a_vex_bmi1_instruction_still_faults():
    j = judge(decode(bytes.fromhex(ANDN), 0x1000), cpu_with())
    assert j.verdict == "unsupported" and j.missing == ["bmi1"]


RDSEED = (7, 0, "ebx", 18)
RDSEED32 = "0fc7f8"                     # rdseed %eax
RDSEED64 = "480fc7f8"                   # rdseed %rax


def zen5_hiding_rdseed() -> CpuFacts:
    cpu = cpu_with(RDSEED, leaves=((0, 0), (1, 0), (7, 0), (7, 1), (0x80000001, 0)))
    leaves = dict(cpu.leaves)
    vendor = [int.from_bytes(b"AuthenticAMD"[i:i + 4], "little") for i in (0, 4, 8)]
    leaves[(0, 0)] = (0xD, vendor[0], vendor[2], vendor[1])
    eax1 = 0x00B00F21                   # family 0x1a (0xf + 0xb), model 0x02
    leaves[(1, 0)] = (eax1,) + leaves[(1, 0)][1:]
    cpu.leaves = leaves
    cpu.kernel_flags = frozenset({"sse2", "avx"})     # no rdseed: Linux cleared it
    return cpu


@pytest.mark.parametrize("hexbytes, affected", [(RDSEED32, True), (RDSEED64, False)])
def test_a_feature_the_kernel_hides_is_explained(hexbytes, affected):
    cpu = zen5_hiding_rdseed()
    assert (cpu.vendor, cpu.family) == ("AuthenticAMD", 0x1A)
    j = judge(decode(bytes.fromhex(hexbytes), 0x1000), cpu)
    assert j.verdict == "supported"              # the instruction executes
    (hidden,) = j.kernel_hidden
    assert hidden["feature"] == "rdseed" and hidden["known"]
    assert hidden["affected_form"] is affected
    assert any("do-not-use" in r for r in j.reasons)


def test_no_kernel_view_no_claim():
    cpu = zen5_hiding_rdseed()
    cpu.kernel_flags = None
    assert judge(decode(bytes.fromhex(RDSEED32), 0x1000), cpu).kernel_hidden == []
