"""Classify an ordinary fault by the rule table (knowledge/fault_rules.py).
Pure: the facts are gathered by triage/evidence.py."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..knowledge.fault_rules import ABORT_RATINGS, FAULT_RULES, UNKNOWN


@dataclass
class Region:
    """What holds a fault address: a loaded object's section, or a mapped file."""
    object: str | None          # file name only
    section: str | None         # .rodata, .text... for a loaded object
    path: str | None            # the mapped file (NT_FILE or /proc/PID/maps)
    start: int
    page_offset: int            # the file offset mapped at start
    readonly: bool
    file_size: int | None = None   # the file's size on disk now, when it is here

    def file_offset_of(self, address: int | None) -> int:
        return self.page_offset + ((address or self.start) - self.start)

    def to_json(self) -> dict:
        return {"object": self.object, "section": self.section, "path": self.path,
                "start": self.start, "file_offset": self.page_offset,
                "readonly": self.readonly, "file_size": self.file_size}


@dataclass
class FaultFacts:
    """What the fault rules match on."""
    signo: int
    code: int | None
    addr: int | None
    pc: int | None
    access: str | None          # read, write, execute; None: unknown
    region: Region | None
    stack_overflow: bool = False


@dataclass
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
                                  f"fault:{rule.name}", warnings)
        except Exception as exc:  # noqa: BLE001 - one broken rule is a warning
            warnings.append(f"fault rule {rule.name} failed: {type(exc).__name__}: {exc}")
    return FaultClass("unknown-fault", UNKNOWN, "no rule matched", "none", warnings)


def for_abort(verdict: str) -> FaultClass | None:
    if verdict not in ABORT_RATINGS:
        return None
    rating, explanation = ABORT_RATINGS[verdict]
    return FaultClass(verdict, rating, explanation, f"abort:{verdict}")
