"""Why a library ran this kernel on this CPU, and what to set instead.

Pure: takes the faulting function and object, the CPU record, the process
environment and the kernel variants the object contains; the knowledge is in
``knowledge/dispatch.py``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..knowledge.cpuid_features import BY_NAME
from ..knowledge.dispatch import LIBRARIES, Kernel, Library
from .cpu import CpuFacts
from .model import ModelFinding


@dataclass
class DispatchFinding:
    library: str
    function: str | None
    variant: str
    requires: list[str]
    missing: list[str]                  # required features this CPU lacks
    knob: str | None
    knob_value: str | None              # the knob's value in the process environment
    forced_by_environment: bool
    best: str | None                    # knob value the hint suggests
    # why this CPU got a variant it cannot run: environment (the knob forced it),
    # environment-ignored (a knob is set but did not pick it), model (chosen by
    # family/model), features (a feature-dispatcher saw another CPU); None: runs fine
    cause: str | None = None
    explanation: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"library": self.library, "function": self.function, "variant": self.variant,
                "requires": self.requires, "missing": self.missing, "knob": self.knob,
                "knob_value": self.knob_value,
                "forced_by_environment": self.forced_by_environment,
                "suggested_value": self.best, "cause": self.cause,
                "explanation": self.explanation}


def recognise(function: str | None, objfile: str | None) -> tuple[Library, Kernel] | None:
    """The library and kernel variant a function belongs to, by its name and object."""
    for lib in LIBRARIES:
        obj_m = re.search(lib.object_pattern, objfile or "") if lib.object_pattern else True
        if not obj_m:
            continue
        sym_m = re.search(lib.symbol_pattern, function or "") if lib.symbol_pattern else True
        if lib.symbol_pattern and not sym_m:
            continue
        variant = None
        for m in (sym_m, obj_m):
            if isinstance(m, re.Match) and "variant" in m.re.groupindex:
                variant = m.group("variant")
        kernel = next((k for k in lib.kernels if k.variant == variant), None)
        if kernel is not None:
            return lib, kernel
    return None


def variants_in(names, lib: Library) -> set[str]:
    """The kernel variants a library build contains, from its symbol names."""
    if not lib.symbol_pattern:
        return set()
    pattern = re.compile(lib.symbol_pattern)
    known = {k.variant for k in lib.kernels}
    found = set()
    for name in names:
        m = pattern.search(name)
        if m and m.group("variant") in known:
            found.add(m.group("variant"))
    return found


def usable(kernel: Kernel, cpu: CpuFacts) -> bool | None:
    values = [_has(cpu, f) for f in kernel.features]
    return False if False in values else (None if None in values else True)


def _has(cpu: CpuFacts, feature: str) -> bool | None:
    bit = BY_NAME.get(feature)
    return None if bit is None else cpu.bit(bit)


def best_kernel(lib: Library, cpu: CpuFacts, available: set[str] | None) -> Kernel | None:
    """The newest variant whose features this CPU has all of (same vendor first)."""
    candidates = [k for k in lib.kernels
                  if (not available or k.variant in available) and usable(k, cpu)]
    if not candidates:
        return None
    return max(candidates, key=lambda k: (k.rank, k.vendor == (cpu.vendor or "")))


def diagnose(function: str | None, objfile: str | None, cpu: CpuFacts | None,
             environment: dict[str, str] | None, available: set[str] | None = None,
             model: ModelFinding | None = None) -> DispatchFinding | None:
    found = recognise(function, objfile)
    if found is None:
        return None
    lib, kernel = found
    missing = [f for f in kernel.features if cpu is not None and _has(cpu, f) is False]
    value = (environment or {}).get(lib.knob) if lib.knob else None
    forced = _forces(lib, value, kernel)
    finding = DispatchFinding(lib.name, function, kernel.variant, list(kernel.features),
                              missing, lib.knob, value, forced, None)
    finding.explanation.append(
        f"{function or 'this code'} is {lib.name}'s {kernel.variant} variant, which "
        f"uses {', '.join(kernel.features)}")
    if not missing or cpu is None:
        return finding
    lacking = ", ".join(missing)
    if forced:
        finding.cause = "environment"
        finding.explanation.append(
            f"{lib.knob}={value} in the process environment forced this variant; "
            f"this CPU lacks {lacking}")
    elif value is not None:
        finding.cause = "environment-ignored"
        finding.explanation.append(
            f"{lib.knob}={value} is set, yet the {kernel.variant} variant ran: the "
            "library mapped or ignored the value")
    elif lib.chooses_by == "model":
        finding.cause = "model"
        why = f"{lib.name} chose {kernel.variant} from the CPU's vendor/family/model, not " \
              f"from its feature bits; this CPU lacks {lacking}"
        if model is not None:
            why += f" ({model.describe()})"
        finding.explanation.append(why)
    else:
        finding.cause = "features"
        finding.explanation.append(
            f"{lib.name} picks by feature bits, so it saw {lacking} when it chose: the "
            "process ran on a different CPU (migration) or the core is foreign")
    if lib.hint_from == "faulting":
        finding.best = kernel.knob_value
    else:
        best = best_kernel(lib, cpu, available)
        finding.best = best.knob_value if best else None
        if best is not None:
            lacking += f"; {best.variant} needs only {', '.join(best.features)}"
    if finding.best and lib.knob:
        action = lib.fix.format(knob=lib.knob, value=finding.best)
        # Unsetting the override only helps when the model would not pick it too.
        by_model_too = model is not None and model.microarch == kernel.variant.lower()
        prefix = f"unset {lib.knob} or " if forced and not by_model_too else ""
        finding.hints.append(f"{prefix}{action} ({lib.name} {kernel.variant} needs "
                             f"{lacking})")
    return finding


def _forces(lib: Library, value: str | None, kernel: Kernel) -> bool:
    # Only a knob that names a variant (OpenBLAS, MKL) can force one; glibc's and
    # numpy's knobs only take variants away.
    if value is None or lib.hint_from != "best":
        return False
    wanted = value.strip().lower()
    return wanted in (kernel.variant.lower(), kernel.knob_value.lower())
