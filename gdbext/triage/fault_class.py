"""Classify an ordinary fault by the rule table (knowledge/fault_rules.py).
Pure: the facts are gathered by triage/evidence.py."""
from __future__ import annotations

from ..record import field, record

from ..knowledge.fault_rules import ABORT_RATINGS, FAULT_RULES, UNKNOWN


@record
class Region:
    """What holds a fault address: a loaded object's section, or a mapped file."""
    object: str | None          # file name only
    section: str | None         # .rodata, .text... for a loaded object
    path: str | None            # the mapped file (NT_FILE or /proc/PID/maps)
    start: int
    page_offset: int            # the file offset mapped at start
    readonly: bool
    file_size: int | None = None   # the file's size on disk now, when it is here
    end: int | None = None
    perms: str | None = None       # "rw-": an anonymous mapping's permissions
    name: str | None = None        # [heap], [stack] (live /proc maps only)

    def file_offset_of(self, address: int | None) -> int:
        return self.page_offset + ((address or self.start) - self.start)

    def to_json(self) -> dict:
        return {"object": self.object, "section": self.section, "path": self.path,
                "start": self.start, "file_offset": self.page_offset,
                "readonly": self.readonly, "file_size": self.file_size, "end": self.end,
                "perms": self.perms, "name": self.name}


@record
class FaultFacts:
    """What the fault rules match on."""
    signo: int
    code: int | None
    addr: int | None
    pc: int | None
    access: str | None          # read, write, execute; None: unknown
    region: Region | None
    stack_overflow: bool = False
    insn: object | None = None      # triage/instruction.InstructionFacts
    jump: dict | None = None        # triage/jump.BadJump.to_json(): how the pc got there
    heaps: tuple = ()               # (lo, hi) of writable anonymous mappings
    exec_ranges: tuple | None = None   # (lo, hi) executable; None: unknown
    address_from: str = "si_addr"   # or "operand": si_addr was no address (SI_KERNEL)
    syscall: dict | None = None     # SIGSYS: {"number", "name", "abi"} seccomp refused

    def executable(self, address: int) -> bool:
        """Code can run at ``address``; unknown ranges: assume it can."""
        if self.exec_ranges is None:
            return True
        return any(lo <= address < hi for lo, hi in self.exec_ranges)


@record
class FaultClass:
    """The class and rating a fault rule gave."""
    name: str
    rating: str
    explanation: str
    rule: str                   # which rule fired ("fault:NAME" or "abort:VERDICT")
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"class": self.name, "rating": self.rating, "explanation": self.explanation,
                "rule": self.rule}


def classify(facts: FaultFacts, rules=FAULT_RULES) -> FaultClass:
    warnings = []
    for rule in rules:
        try:
            if rule.match(facts):
                return FaultClass(rule.name, rule.rating, rule.explain(facts),
                                  f"fault:{rule.id or rule.name}", warnings)
        except Exception as exc:  # noqa: BLE001 - one broken rule is a warning
            warnings.append(f"fault rule {rule.name} failed: {type(exc).__name__}: {exc}")
    return FaultClass("unknown-fault", UNKNOWN, "no rule matched", "none", warnings)


def for_abort(verdict: str, details: dict | None = None) -> FaultClass | None:
    """The class of an abort a runtime explained; glibc's malloc checks by
    their message (knowledge/fault_rules.MALLOC_CHECKS)."""
    import re

    from ..knowledge.fault_rules import MALLOC_CHECKS
    if verdict not in ABORT_RATINGS:
        return None
    rating, explanation = ABORT_RATINGS[verdict]
    check = (details or {}).get("check") if verdict == "heap-corruption" else None
    for pattern, name, why in MALLOC_CHECKS if check else ():
        if re.search(pattern, check):
            return FaultClass(name, rating, f"{check}: {why}", f"abort:malloc-check:{name}")
    whose = (details or {}).get("inside") or ("libstdc++" if (details or {}).get("checker")
                                              else None)
    if verdict == "assertion-failed" and f"{verdict}:{whose}" in ABORT_RATINGS:
        rating, explanation = ABORT_RATINGS[f"{verdict}:{whose}"]
        return FaultClass(verdict, rating, explanation, f"abort:{verdict}:{whose}")
    return FaultClass(verdict, rating, explanation, f"abort:{verdict}")
