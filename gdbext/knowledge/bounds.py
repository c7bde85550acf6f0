"""Bounds on every walk that follows the inferior's frames or pointers.

A corrupt stack or a looping list must not keep the user's debugger busy
for minutes, so each walk stops at one of these and the report says so.
Each is a gdb setting, ``set gdbext NAME N`` (1 or more); a command's own
flag (``--max-frames``) overrides it for one run.
"""
from __future__ import annotations

from collections import namedtuple

# A named tuple, not a dataclass: this table is read when gdbext is sourced,
# before anything else needs the dataclasses module.
#   name     set gdbext NAME N
#   unit     what is counted, for the report's warning
#   what     for help
Bound = namedtuple("Bound", "name default unit what")


BOUNDS = {b.name: b for b in (
    # Deep enough for the wait site and the caller that misaligned the
    # stack; a 1M-frame runaway recursion is cut here.
    Bound("max-frames", 64, "frames",
          "frames followed per thread by deadlock-graph, spill-audit and crash-triage"),
    # deadlock-graph unwinds every thread: 10,000 take about a second and
    # 75 MiB of gdb (bench/scale_threads.py); twice that is still interactive.
    Bound("max-threads", 20000, "threads",
          "threads examined by deadlock-graph and crash-triage"),
    # Entries read from one array or list in the inferior (environ).
    Bound("max-nodes", 8192, "entries",
          "entries read from one array or list in the program (its environment)"),
)}


def hit(name: str, value: int) -> str:
    """The report's warning when a walk stopped at its bound."""
    return f"stopped at {value} {BOUNDS[name].unit} (set gdbext {name} N to go further)"
