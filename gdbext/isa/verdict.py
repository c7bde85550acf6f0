"""Judge one decoded instruction against one CPU record.

Verdicts: supported, unsupported (CPU lacks a feature), os-disabled (CPU has
it, XCR0 does not enable its state), runs-differently (the CPU lacks the
feature and runs an older instruction instead: tzcnt as bsf, lzcnt as bsr),
undecodable, unknown.
"""
from __future__ import annotations

from ..knowledge import cpuid_features as cf
from ..knowledge.traps import FEATURE_NOTES, KERNEL_HIDDEN, RUNS_AS
from .cpu import CpuFacts
from .decode import DecodedInstruction
from ..record import field, record


@record
class FeatureStatus:
    """One required feature, and whether the CPU has it."""
    name: str                      # cpuinfo name ("hle|rtm" for alternatives)
    where: str | None              # "CPUID.7h.0:EBX[16]"; None when not a CPUID bit
    present: bool | None           # None: cannot tell
    cpuid: list[dict] = field(default_factory=list)
    nop_when_absent: str | None = None
    active: bool | None = None     # glibc's "usable" bit, when the record has them
    kernel: bool | None = None     # in /proc/cpuinfo flags, when the CPU is this host's
    runs_as: str | None = None     # without the feature the CPU runs this instead (bsf)
    runs_as_note: str | None = None

    @property
    def soft(self) -> bool:
        """Absent, the instruction still runs (as a NOP or an older instruction)."""
        return bool(self.nop_when_absent or self.runs_as)

    def to_json(self) -> dict:
        return {"name": self.name, "cpuid": self.cpuid, "present": self.present,
                "glibc_active": self.active, "kernel": self.kernel,
                "runs_as_when_absent": self.runs_as}


@record
class IsaJudgement:
    """The verdict on one instruction against one CPU."""
    verdict: str
    features: list[FeatureStatus]
    missing: list[str]
    xcr0_required: int
    xcr0_missing: int
    reasons: list[str]
    kernel_hidden: list[dict] = field(default_factory=list)   # CPUID yes, kernel no


def kernel_hidden(ins: DecodedInstruction, features: list[FeatureStatus],
                  cpu: CpuFacts | None) -> list[dict]:
    """Features CPUID reports and the kernel's /proc/cpuinfo does not: the
    instruction executes, but the kernel marks it do-not-use."""
    out = []
    for f in features:
        if f.present is not True or f.kernel is not False:
            continue
        known = KERNEL_HIDDEN.get((f.name, cpu.vendor or "", cpu.family or -1)) if cpu else None
        text = (f"CPUID reports {f.name} but the kernel's /proc/cpuinfo does not: the "
                "instruction executes (the kernel cannot stop it), yet the kernel marks the "
                "feature do-not-use -- an erratum workaround, clearcpuid= on the kernel "
                "command line, or a hypervisor's CPU model")
        affected = None
        if known:
            text += f". Known for this CPU: {known['what']}"
            bits = known.get("affected_operand_bits")
            if bits and ins.operand_bits:
                affected = ins.operand_bits in bits
                text += (f"; this is the {ins.operand_bits}-bit form: "
                         + ("affected" if affected else "not affected"))
        out.append({"feature": f.name, "explanation": text, "known": bool(known),
                    "affected_form": affected})
    return out


def _bit_json(b: cf.CpuidBit) -> dict:
    return {"leaf": b.leaf, "subleaf": b.subleaf, "register": b.register, "bit": b.bit}


def feature_statuses(iced_features: list[str], cpu: CpuFacts | None,
                     mnemonic: str = "") -> list[FeatureStatus]:
    """Non-baseline features, each with where it lives and whether ``cpu`` has it."""
    fallback = RUNS_AS.get(mnemonic.upper())
    out: list[FeatureStatus] = []
    for f in iced_features:
        if f in cf.BASELINE:
            continue
        alternatives = cf.ANY_OF.get(f, (f,))
        bits = [cf.CPUID_BITS.get(a) for a in alternatives]
        if any(b is None for b in bits):
            out.append(FeatureStatus(f.lower(), None, None))
            continue
        out.append(FeatureStatus("|".join(b.name for b in bits),
                                 " or ".join(b.describe() for b in bits),
                                 _any([cpu.bit(b) if cpu else None for b in bits]),
                                 [_bit_json(b) for b in bits], cf.NOP_WHEN_ABSENT.get(f),
                                 _any([cpu.active_bit(b) for b in bits]) if cpu and cpu.active
                                 else None,
                                 any(b.name in cpu.kernel_flags for b in bits)
                                 if cpu and cpu.kernel_flags is not None else None,
                                 *(fallback or (None, None))))
    return sorted(out, key=lambda f: f.name)


def _any(values: list[bool | None]) -> bool | None:
    return True if True in values else (None if None in values else False)


def judge(ins: DecodedInstruction, cpu: CpuFacts | None) -> IsaJudgement:
    if ins.undecodable:
        return IsaJudgement("undecodable", [], [], 0, 0, [ins.undecodable])
    features = feature_statuses(ins.iced_features, cpu, ins.mnemonic)
    missing = [f.name for f in features if f.present is False and not f.soft]
    differs = [f for f in features if f.present is False and f.runs_as]
    xcr0 = cpu.effective_xcr0() if cpu else None
    xcr0_missing = ins.xcr0_required & ~xcr0 if xcr0 is not None else 0
    reasons: list[str] = []
    if ins.trap:
        reasons.append(f"deliberate trap: {ins.trap}")
    if ins.privileged:
        reasons.append("privileged (CPL 0) instruction: in user mode it raises #GP, "
                       "which Linux delivers as SIGSEGV (SI_KERNEL)")
    for f in features:
        if f.nop_when_absent and f.present is not True:
            reasons.append(f"hint: {f.nop_when_absent}, so a missing {f.name} is harmless")
    if missing:
        verdict = "unsupported"
        for f in features:
            if f.present is False and not f.soft:
                reasons.append(f"this CPU lacks {f.name} ({f.where} = 0): the instruction "
                               "raises #UD, delivered as SIGILL (ILL_ILLOPN)")
                note = FEATURE_NOTES.get(f.name.split("|")[0])
                if note:
                    reasons.append(note)
    elif xcr0_missing:
        verdict = "os-disabled"
        reasons.append(
            f"the CPU has {', '.join(f.name for f in features) or 'the feature'}, but XCR0 "
            f"{xcr0:#x} does not enable {'+'.join(cf.xcr0_names(xcr0_missing))} state "
            f"(needs {ins.xcr0_required:#x}): the OS disabled it (noxsave, clearcpuid, a "
            "hypervisor's XCR0 mask), so the instruction raises #UD")
    elif differs:
        verdict = "runs-differently"
        for f in differs:
            reasons.append(f"this CPU lacks {f.name} ({f.where} = 0): no fault - "
                           f"{f.runs_as_note}")
    elif cpu is None:
        verdict = "supported" if not features else "unknown"
        if features:
            reasons.append("no CPU facts for this target: cannot tell whether it has "
                           + ", ".join(f.name for f in features))
    elif any(f.present is None and not f.soft for f in features):
        verdict = "unknown"
        for f in features:
            if f.present is None and not f.soft:
                reasons.append(f"{f.name}: " + ("not a CPUID-described feature"
                                                if f.where is None else
                                                f"the CPU record has no {f.where} leaf"))
    elif ins.xcr0_required and xcr0 is None:
        verdict = "unknown"
        reasons.append("XCR0 is not known for this CPU record: cannot tell whether the OS "
                       "enabled the vector state this instruction needs")
    else:
        verdict = "supported"
        if not features and not ins.trap and not ins.privileged:
            reasons.append("baseline x86-64 instruction: every x86-64 CPU runs it")
    hidden = kernel_hidden(ins, features, cpu)
    reasons.extend(h["explanation"] for h in hidden)
    return IsaJudgement(verdict, features, missing, ins.xcr0_required, xcr0_missing, reasons,
                        hidden)


SIGILL = 4
# si_code of a SIGILL on a tile instruction -> what it means (Linux 5.16+).
AMX_SIGILL_CODES = {
    1: "the kernel raised SIGILL with ILL_ILLOPC: the CPU has AMX but this process has no "
       "permission to use tile state; call arch_prctl(ARCH_REQ_XCOMP_PERM, "
       "XFEATURE_XTILEDATA) once before the first tile instruction",
    2: "SIGILL with ILL_ILLOPN is #UD: the CPU lacks AMX or the OS did not enable tile "
       "state in XCR0 - permission is not the problem",
}


def amx_signal_hint(judgement: IsaJudgement, signo: int, code: int) -> list[str]:
    """Tell "no permission" from "no hardware" for a tile instruction's SIGILL."""
    if signo != SIGILL or not any(f.name.startswith("amx") for f in judgement.features):
        return []
    return [AMX_SIGILL_CODES[code]] if code in AMX_SIGILL_CODES else []
