"""Why a library ran this kernel on this CPU, and what to set instead.

Pure: takes the faulting function and object, the CPU record, the process
environment and the kernel variants the object contains; the knowledge is in
``knowledge/dispatch.py``.
"""
from __future__ import annotations

import re

from ..knowledge.cpuid_features import BY_NAME
from ..knowledge.dispatch import LIBRARIES, Kernel, Library
from .cpu import CpuFacts
from ..record import field, record

TYPE_CHECKING = False       # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from .model import ModelFinding


@record
class DispatchFinding:
    """A library's dispatch picked a variant that needs features this CPU lacks."""
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
    requires_source: str = "table"      # "code": decoded from the library's functions
    use: object | None = None           # VariantUse when decoded
    checks: list[str] = field(default_factory=list)   # what the library tested first
    check_function: str | None = None
    chosen: dict | None = None          # what the library's own state says it chose
    library_facts: dict = field(default_factory=dict)  # version strings, package

    def to_json(self) -> dict:
        return {"library": self.library, "function": self.function, "variant": self.variant,
                "requires": self.requires, "requires_source": self.requires_source,
                "variant_code": self.use.to_json() if self.use else None,
                "missing": self.missing, "knob": self.knob,
                "knob_value": self.knob_value,
                "forced_by_environment": self.forced_by_environment,
                "checked_before_choosing": self.checks,
                "check_function": self.check_function,
                "chosen": self.chosen, "library_facts": self.library_facts,
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


def usable(kernel: Kernel, cpu: CpuFacts, uses=None) -> bool | None:
    lacks = getattr(uses, "lacks", None)    # decodes only until a lacking feature shows
    if lacks is not None and lacks(kernel.variant, lambda f: _has(cpu, f) is False):
        return False
    values = [_has(cpu, f) for f in _requires(kernel, uses)[0]]
    return False if False in values else (None if None in values else True)


def _requires(kernel: Kernel, uses) -> tuple[list[str], str, object]:
    """(features, "code" or "table", VariantUse): from the library's code when
    ``uses(variant)`` can decode it, else the table's expectation."""
    use = uses(kernel.variant) if uses else None
    if use is not None:
        return use.required, "code", use
    return list(kernel.features), "table", None


def _has(cpu: CpuFacts, feature: str) -> bool | None:
    bit = BY_NAME.get(feature)
    return None if bit is None else cpu.bit(bit)


def best_kernel(lib: Library, cpu: CpuFacts, available: set[str] | None,
                uses=None) -> Kernel | None:
    """The newest variant whose features this CPU has all of (same vendor first).
    Variants are tried newest first, so only as many are decoded as needed."""
    ranked = sorted((k for k in lib.kernels if not available or k.variant in available),
                    key=lambda k: (k.rank, k.vendor == (cpu.vendor or "")), reverse=True)
    return next((k for k in ranked if usable(k, cpu, uses)), None)


def diagnose(function: str | None, objfile: str | None, cpu: CpuFacts | None,
             environment: dict[str, str] | None, available: set[str] | None = None,
             model: ModelFinding | None = None, uses=None,
             chosen: dict | None = None) -> DispatchFinding | None:
    """``uses(variant)`` -> VariantUse decodes a variant's functions in the
    library; ``chosen`` is what the library's own state says it picked
    ({"core": ..., "source": ...}); ``environment`` None means not readable."""
    found = recognise(function, objfile)
    if found is None:
        return None
    lib, kernel = found
    requires, source, use = _requires(kernel, uses)
    missing = [f for f in requires if cpu is not None and _has(cpu, f) is False]
    value = (environment or {}).get(lib.knob) if lib.knob else None
    forced = _forces(lib, value, kernel)
    finding = DispatchFinding(lib.name, function, kernel.variant, list(requires),
                              missing, lib.knob, value, forced, None, requires_source=source,
                              use=use, checks=list(kernel.checks),
                              check_function=kernel.check_function or None, chosen=chosen)
    if use is not None:
        finding.explanation.append(
            f"{function or 'this code'} is {lib.name}'s {kernel.variant} variant; its "
            f"{use.functions} functions in this library use {_counted(use)} (decoded "
            "from the library's code)")
    else:
        finding.explanation.append(
            f"{function or 'this code'} is {lib.name}'s {kernel.variant} variant, expected "
            f"to use {', '.join(kernel.features)} (from gdbext's table: the library's code "
            "was not readable)")
    if chosen and chosen.get("core"):
        same = chosen["core"].upper() == kernel.variant
        finding.explanation.append(
            f"the library chose {chosen['core']} ({chosen['source']})"
            + ("" if same else f"; yet {kernel.variant} code ran"))
    if not missing or cpu is None:
        return finding
    lacking = ", ".join(missing)
    checked_missing = [f for f in missing if f in kernel.checks]
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
    elif environment is None and chosen is None:
        finding.cause = "unknown"
        if checked_missing:
            finding.explanation.append(
                f"no process to read: {lib.name} chooses {kernel.variant} only after "
                f"{kernel.check_function} finds {', '.join(kernel.checks)}; this CPU lacks "
                f"{', '.join(checked_missing)}, so here only "
                + (f"{lib.knob}={kernel.knob_value} " if lib.knob else "an override ")
                + "would run it")
        else:
            test = (f"tests only {', '.join(kernel.checks)} ({kernel.check_function})"
                    if kernel.checks else "tests no feature")
            finding.explanation.append(
                f"no process to read: {lib.name} picks {kernel.variant} by vendor/family/"
                f"model and {test}; a CPU whose family/model say so but which lacks "
                f"{lacking} (a masked virtual CPU) gets it"
                + (f", and {lib.knob}={kernel.knob_value} forces it anywhere" if lib.knob
                   else ""))
    elif checked_missing or lib.chooses_by == "features":
        finding.cause = "features"
        test = (f"{kernel.check_function} found {', '.join(kernel.checks)}"
                if kernel.checks else "its feature checks passed")
        finding.explanation.append(
            f"{lib.name} chooses {kernel.variant} only after {test}, and this CPU lacks "
            f"{', '.join(checked_missing) or lacking}: the library initialised on a "
            "different CPU (the process migrated, was checkpointed and restored, or the "
            "core's CPU record is not the machine it ran on)")
    else:
        finding.cause = "model"
        test = (f"tested only {', '.join(kernel.checks)} ({kernel.check_function})"
                if kernel.checks else "tested no feature")
        why = (f"{lib.name} chose {kernel.variant} from the CPU's vendor/family/model and "
               f"{test}; it never tests {lacking}, which this CPU lacks")
        if model is not None:
            why += f" ({model.describe(short=True)})"
        if environment is None and lib.knob:
            why += (f"; the process environment was not readable, so {lib.knob} may have "
                    "forced it instead")
        finding.explanation.append(why)
    if lib.hint_from == "faulting":
        finding.best = kernel.knob_value
    else:
        best = best_kernel(lib, cpu, available, uses)
        finding.best = best.knob_value if best else None
        if best is not None:
            needs = _requires(best, uses)[0]
            lacking += f"; {best.variant} needs only {', '.join(needs) or 'baseline x86-64'}"
    if finding.best and lib.knob:
        action = lib.fix.format(knob=lib.knob, value=finding.best)
        detail = f"({lib.name} {kernel.variant} needs {lacking})"
        # Unsetting the override only helps when the model would not pick it too.
        by_model_too = model is not None and model.microarch == kernel.variant.lower()
        if forced and lib.hint_from == "best" and not by_model_too:
            finding.hints.append(
                f"unset {lib.knob}: the portable fix, {lib.name} then picks a core for "
                "whatever CPU runs the process")
            finding.hints.append(f"or {action}: specific to this CPU {detail}")
        else:
            finding.hints.append(f"{action} {detail}")
    return finding


def _counted(use) -> str:
    names = use.required
    if not names:
        return "nothing beyond baseline x86-64"
    return ", ".join(f"{n} ({use.features[n]:,})" for n in names)


def _forces(lib: Library, value: str | None, kernel: Kernel) -> bool:
    # Only a knob that names a variant (OpenBLAS, MKL) can force one; glibc's and
    # numpy's knobs only take variants away.
    if value is None or lib.hint_from != "best":
        return False
    wanted = value.strip().lower()
    return wanted in (kernel.variant.lower(), kernel.knob_value.lower())
