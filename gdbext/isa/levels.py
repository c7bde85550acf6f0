"""The x86-64 psABI micro-architecture levels (x86-64 psABI 1.0 §3.1.1,
"Micro-Architecture Levels": baseline, v2, v3, v4) and the named CPUs that
reach them, all from archspec's microarchitectures data -- the levels there
list the psABI's features in /proc/cpuinfo spelling, so no table is kept here.

Pure: no gdb import.  Feature names are /proc/cpuinfo names (``pni`` for SSE3,
``abm`` for LZCNT), as isa-scan and isa-check report them.
"""
from __future__ import annotations

import functools

from ..knowledge import cpuid_features as cf
from .cpu import CpuFacts
from .profiles import ALIASES, BASELINE_NAMES

# archspec name -> the psABI's name, in order
LEVELS = (("x86_64", "x86-64-v1"), ("x86_64_v2", "x86-64-v2"),
          ("x86_64_v3", "x86-64-v3"), ("x86_64_v4", "x86-64-v4"))
# XCR0 state each level's vector features need the OS to enable (psABI §3.1.1:
# "the operating system must support" AVX / AVX-512 state; SDM vol. 1 §13.3).
LEVEL_XCR0 = (0x3, 0x3, 0x7, 0xE7)


def _cpuinfo(names) -> frozenset[str]:
    return frozenset(ALIASES.get(n, n) for n in names)


@functools.lru_cache(maxsize=None)
def level_features() -> tuple[frozenset[str], ...]:
    """Each level's features beyond the x86-64 baseline, cumulative."""
    import archspec.cpu
    base = frozenset(BASELINE_NAMES)
    return tuple(_cpuinfo(archspec.cpu.TARGETS[name].features) - base for name, _ in LEVELS)


def level_name(index: int | None) -> str:
    return "above x86-64-v4" if index is None else LEVELS[index][1]


def _satisfied(need, have: frozenset[str]) -> bool:
    """Every feature in ``need`` is in ``have``; "hle|rtm" wants either."""
    return all(any(part in have for part in name.split("|")) for name in need)


def level_of(features) -> int | None:
    """The lowest level whose features include ``features`` (cpuinfo names);
    None when no level does (aes, sha_ni, avx512_vnni: in no level)."""
    need = frozenset(features) - frozenset(BASELINE_NAMES)
    for i, have in enumerate(level_features()):
        if _satisfied(need, have):
            return i
    return None


def beyond(features, index: int) -> list[str]:
    """The features a level does not include."""
    return sorted(frozenset(features) - level_features()[index] - frozenset(BASELINE_NAMES))


def cpu_level(cpu: CpuFacts | None) -> tuple[int | None, list[str], bool]:
    """(the highest level this CPU reaches, the features of the next level it
    lacks, whether the answer is known).  A feature whose CPUID leaf was not
    recorded makes the answer unknown past the levels already reached; a level
    whose vector state XCR0 leaves disabled is not reached (the psABI asks for
    OS support)."""
    if cpu is None:
        return None, [], False
    reached = 0
    xcr0 = cpu.effective_xcr0()
    for i, have in enumerate(level_features()[1:], start=1):
        lacking, unknown = [], False
        for name in sorted(have):
            bit = cf.BY_NAME.get(name)
            present = cpu.bit(bit) if bit is not None else None
            if present is False:
                lacking.append(name)
            elif present is None:
                unknown = True
        if not lacking and xcr0 is not None and xcr0 & LEVEL_XCR0[i] != LEVEL_XCR0[i]:
            lacking.append(f"XCR0 {xcr0:#x} (the OS did not enable the vector state)")
        if lacking:
            return reached, lacking, True
        if unknown:
            return reached, [], False
        reached = i
    return reached, [], True


@functools.lru_cache(maxsize=None)
def named_cpus() -> tuple[tuple[str, str, frozenset[str]], ...]:
    """(archspec name, vendor, features) of every named x86-64 CPU (not the
    generic levels), oldest first as archspec orders them."""
    import archspec.cpu
    out = []
    for name, target in archspec.cpu.TARGETS.items():
        if target.family.name != "x86_64" or target.vendor == "generic":
            continue
        out.append((name, target.vendor, _cpuinfo(target.features) | frozenset(BASELINE_NAMES)))
    return tuple(out)


def cpus_running(features) -> list[str]:
    """Named CPUs whose archspec features include every one of ``features``."""
    need = frozenset(features)
    return [name for name, _vendor, have in named_cpus() if _satisfied(need, have)]


@functools.lru_cache(maxsize=None)
def _gcc_names() -> dict[str, str]:
    """GCC/clang -march spelling -> archspec name (archspec's compiler entries;
    an entry adding -m flags is an older compiler's spelling of a level)."""
    import archspec.cpu
    out: dict[str, str] = {}
    for name, target in archspec.cpu.TARGETS.items():
        if target.family.name != "x86_64":
            continue
        for compiler in ("gcc", "clang"):
            for entry in target.compilers.get(compiler, ()):
                flags = entry.get("flags", "").replace("-march", "").replace("-mtune", "")
                if "-m" in flags:
                    continue
                out.setdefault(entry.get("name", name).lower(), name)
        out.setdefault(name.replace("_", "-"), name)
    return out


def march_target(march: str) -> str | None:
    """The archspec name for a -march/-mcpu/target-cpu value, or None
    (``native``: the build machine, unknown here)."""
    key = march.strip().lower()
    return _gcc_names().get(key) or _gcc_names().get(key.replace("_", "-"))


def target_features(name: str) -> frozenset[str]:
    import archspec.cpu
    return _cpuinfo(archspec.cpu.TARGETS[name].features) | frozenset(BASELINE_NAMES)
