"""Where a thread's stack begins and ends, and whether a fault left it.

A stack overflow is judged by the stack's bounds, not only by its guard page:
a frame bigger than the guard (a large array of vector locals, built without
-fstack-clash-protection) moves rsp past the guard in one step and faults in
no mapping at all -- the guard is never touched.

The bounds come from, in order of trust:
  * a registered provider (``PROVIDERS``) that reads the thread's own record,
    e.g. glibc's ``struct pthread`` stack block through its ``_thread_db_*``
    descriptors: ``exact``;
  * the mapping that holds the frame's CFA (the caller's rsp, which lies in
    the stack the thread was using), and a no-access mapping right below it
    as the guard: ``inferred``.
"""
from __future__ import annotations

from collections.abc import Callable   # not typing: ~10 ms to import in each gdb
from ..record import record

PAGE = 4096
# How far below the stack a fault still belongs to it: the largest frame we
# believe (rsp minus this, or the red zone below rsp).
REACH_BELOW_RSP = 128 + PAGE


@record
class StackBounds:
    """A thread's stack: its usable range and guard."""
    lo: int                         # lowest usable address
    hi: int                         # one past the highest
    guard_lo: int | None = None     # the guard mapping below lo, if any
    guard_hi: int | None = None
    source: str = ""
    sure: str = "inferred"          # "exact" when read from the thread's own record
    name: str = ""                  # "[stack]" for the main thread (live)

    @property
    def size(self) -> int:
        return self.hi - self.lo

    def to_json(self) -> dict:
        return {"lo": self.lo, "hi": self.hi, "size": self.size, "guard_lo": self.guard_lo,
                "guard_hi": self.guard_hi, "source": self.source, "sure": self.sure,
                "name": self.name or None}


# Providers: callables (anchor address) -> StackBounds | None, tried first.
# The glibc thread reader registers one here; a failure is ignored.
PROVIDERS: list[Callable[[int], StackBounds | None]] = []


def thread_stack(anchor: int | None, mappings) -> StackBounds | None:
    """The stack holding ``anchor`` (frame 0's CFA, else an outer frame's rsp)."""
    if anchor is None:
        return None
    for provider in PROVIDERS:
        try:
            found = provider(anchor)
        except Exception:       # noqa: BLE001  a broken provider must not break the audit
            found = None
        if found is not None:
            return found
    if not mappings:
        return None
    ordered = sorted(mappings, key=lambda m: m.start)
    for i, m in enumerate(ordered):
        if m.start <= anchor < m.end and m.readable:
            lo = m.start
            guard = ordered[i - 1] if i > 0 else None
            if guard is not None and guard.end == lo and not guard.readable:
                return StackBounds(lo, m.end, guard.start, guard.end,
                                   "the mapping holding the frame's CFA, and the no-access "
                                   "mapping right below it", "inferred", getattr(m, "name", ""))
            return StackBounds(lo, m.end, None, None, "the mapping holding the frame's CFA",
                               "inferred", getattr(m, "name", ""))
    return None


def mapping_at(address: int, mappings) -> object | None:
    for m in mappings or ():
        if m.start <= address < m.end:
            return m
    return None


def left_the_stack(addr: int, rsp: int | None, stack: StackBounds | None,
                   step: int | None = None) -> str | None:
    """Where a fault below this stack went: "guard" when it hit the guard
    mapping; "clash" when rsp went past the stack's low end further than a
    guard and there is evidence of one big step over it (a frame, ``step`` =
    CFA - rsp, of a page or more, or a fault more than a page below the
    stack and its guard); "limit" when the stack simply ran out at its low end
    (a main thread at RLIMIT_STACK: the kernel stops growing it); None when
    the fault is not below this stack."""
    if stack is None or rsp is None or addr >= stack.lo:
        return None
    if stack.guard_lo is not None and stack.guard_lo <= addr < stack.guard_hi:
        return "guard"
    below_stack = rsp < stack.lo + REACH_BELOW_RSP
    near_rsp = rsp - REACH_BELOW_RSP <= addr < max(rsp, stack.lo) + PAGE
    if not (below_stack and near_rsp):
        return None
    floor = stack.guard_lo if stack.guard_lo is not None else stack.lo
    big_step = step is not None and step >= PAGE
    return "clash" if big_step or addr < floor - PAGE else "limit"
