"""deadlock-graph: what every thread waits for, who holds it, and the cycles."""
from __future__ import annotations

import os

from .. import target
from ..errors import GdbextError
from ..knowledge.bounds import hit
from . import exported_symbols
from .base import GdbextCommand, frame_count, max_frames, parser, threads_and_registers

PARSER = parser("deadlock-graph")
PARSER.add_argument("--dot", metavar="FILE", help="also write a Graphviz graph to FILE")
PARSER.add_argument("--max-frames", type=frame_count, metavar="N",
                    help="frames read per thread (default: set gdbext max-frames, 64)")


class DeadlockGraphCommand(GdbextCommand):
    """Find lock cycles across all threads, live or post-mortem, without debug info.

Usage: deadlock-graph [--json] [--dot FILE] [--max-frames N]

Reads each thread's frame-0 registers (the futex syscall's word, op and
expected value) and the lock it points at: the owner TID of a mutex, the
writer of an rwlock, the thread a pthread_join waits for, the glibc loader
lock inside _rtld_global, an OpenMP barrier and the team members that have
not arrived (GNU libgomp, LLVM libomp, Intel libiomp5).  Then it finds every
cycle of waits, the threads stuck behind them, and suggests a fix.  Names
from debug info are a bonus; it never resumes or changes the process.

Options:
  --json          print one JSON object (schema "gdbext/deadlock-graph/1")
  --dot FILE      write the wait-for graph as Graphviz DOT (cycles in red)
  --max-frames N  frames read per thread for wait sites and evidence
                  (default: set gdbext max-frames, 64)

Bounds: set gdbext max-frames N, set gdbext max-threads N; the report says
when a walk stopped at one.

Examples:
  deadlock-graph                     attached to a hung process, or on its core
  deadlock-graph --dot hang.dot      then: dot -Tsvg hang.dot > hang.svg"""

    NAME = "deadlock-graph"
    PARSER = PARSER
    NEEDS = ("tabulate", "elftools")

    def run(self, args):
        return analyse(args)


def analyse(args):
    """The deadlock-graph report for parsed ``args`` (also run by crash-triage)."""
    from ..locks.classify import (FRAME0_REGISTERS, classify, more_frames_needed,
                                  registers_wanted)
    from ..locks.graph import build
    from ..locks.report import DeadlockReport

    kind = threads_and_registers("attach PID, run the program, or core-file CORE first")
    warnings = []
    try:
        rtld = exported_symbols.find(r"/ld-linux[^/]*\.so", ("_rtld_global", "_rtld_local"))
        rtld_range = (rtld.address, rtld.size)
    except GdbextError as exc:
        rtld_range = None
        warnings.append(f"loader lock not identifiable: {exc}")
    from ..knowledge.blocking import RUNTIME_OBJECTS
    system = "|".join(RUNTIME_OBJECTS)
    read = dict(registers=FRAME0_REGISTERS, more_registers=registers_wanted)
    # Unwinding is most of the cost: stop at each wait site, then walk
    # further only the threads the first classification says matter.
    frames = max_frames(args)
    threads = target.bound("max-threads")
    snapshots = target.thread_snapshots(frames, system, frames_past_site=0,
                                        max_threads=threads, **read)
    if not snapshots:
        raise GdbextError("the target has no threads to examine")
    states = classify(snapshots, target.read_bytes, rtld_range)
    past, whole = more_frames_needed(states)
    if past or whole:
        again = {}
        for only, past_site in ((past, 1), (whole, None)):
            if only:
                again.update((s.num, s) for s in target.thread_snapshots(
                    frames, system, frames_past_site=past_site, only=only,
                    **read))
        snapshots = [again.get(s.num, s) for s in snapshots]
        states = classify(snapshots, target.read_bytes, rtld_range)
    report = DeadlockReport(build(states), kind, warnings)
    truncated = sum(1 for s in states if s.frames_truncated)
    if truncated:
        report.warnings.append(f"the stack walk of {truncated} thread(s) "
                               f"{hit('max-frames', frames)}; their wait sites come from "
                               "the first frames")
    total = target.thread_count()
    if total > len(snapshots) and len(snapshots) >= threads:
        report.warnings.append(f"examined {len(snapshots)} of {total} threads: "
                               f"{hit('max-threads', threads)}")
    if args.dot:
        path = os.path.expanduser(args.dot)
        try:
            with open(path, "w") as fh:
                fh.write(report.to_dot())
        except OSError as exc:
            raise GdbextError(f"cannot write {path}: {exc.strerror}") from None
        report.warnings.append(f"graph written to {path}")
    return report
