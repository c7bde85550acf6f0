"""CPU records for named microarchitectures and x86-64 levels, from archspec's
microarchitecture data (the same data Spack uses to pick compiler flags)."""
from __future__ import annotations

import difflib

from ..errors import GdbextError
from ..knowledge import cpuid_features as cf
from .cpu import CpuFacts

# archspec spellings that differ from /proc/cpuinfo
ALIASES = {"sse3": "pni"}
# Every x86-64 CPU has these, whether or not a profile lists them.
BASELINE_NAMES = ("fpu", "tsc", "cx8", "cmov", "clflush", "mmx", "fxsr", "sse", "sse2",
                  "syscall", "lm")


def _targets():
    import archspec.cpu
    return {name: t for name, t in archspec.cpu.TARGETS.items()
            if t.family.name == "x86_64"}


def profile_names() -> list[str]:
    return sorted(_targets())


def profile_cpu(name: str) -> CpuFacts:
    targets = _targets()
    key = name.strip().lower().replace("-", "_")
    if key not in targets:
        close = difflib.get_close_matches(key, targets, n=5, cutoff=0.5)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        raise GdbextError(f"unknown CPU profile '{name}'{hint} (known: x86_64_v2..v4, "
                          "haswell, skylake_avx512, icelake, sapphirerapids, zen..zen5, "
                          "piledriver, ...)")
    target = targets[key]
    names = {ALIASES.get(f, f) for f in target.features} | set(BASELINE_NAMES)
    regs: dict[tuple[int, int], list[int]] = {}
    for n in names:
        b = cf.BY_NAME.get(n)
        if b is not None:
            regs.setdefault((b.leaf, b.subleaf), [0, 0, 0, 0])[
                ("eax", "ebx", "ecx", "edx").index(b.register)] |= 1 << b.bit
    for b in cf.CPUID_BITS.values():              # a profile says "absent", never "unknown"
        regs.setdefault((b.leaf, b.subleaf), [0, 0, 0, 0])
    xcr0 = 0x3
    if "xsave" in names:
        regs[(1, 0)][2] |= 1 << cf.OSXSAVE.bit    # the OS of a profile enables XSAVE
        xcr0 |= 0x6 if "avx" in names else 0
        xcr0 |= 0xE6 if "avx512f" in names else 0
        xcr0 |= 0x60000 if "amx_tile" in names else 0
    facts = CpuFacts(source="profile", leaves={k: tuple(v) for k, v in regs.items()},
                     xcr0=xcr0, xcr0_source="assumed: the OS enables every state the "
                                            "profile's features need")
    facts.vendor_hint = None if target.vendor == "generic" else target.vendor
    facts.profile = key
    return facts
