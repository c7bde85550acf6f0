"""deadlock-graph against gdb's own `thread apply all bt` on one hung process.

The fixture `many N` has N threads blocked on one mutex held by a sleeping
thread (64 KiB stacks).  Cold: a fresh gdb attaches and runs one command, the
way a user meets a hang (gdb's frame cache empty).  Warm: the same command
again in that session.  Best of REPEAT, timed inside gdb's Python, no debug
info; the two commands alternate run by run, so other load on the machine
hits both alike.  Goal: ratio <= 1.  RUST=1: the same with fixtures/deadlock/rust_locks.rs
`many N` (N threads blocked in one std::sync::Mutex: owners inferred from
guards, each waiter's walk past std's frames).
"""
from __future__ import annotations

import os
import sys

from attached_gdb import REPO, many, results

THREADS = int(os.environ.get("THREADS", "1000"))
REPEAT = int(os.environ.get("REPEAT", "3"))

SCRIPT = """
import time, gdb
t = time.perf_counter(); gdb.execute(CMD, to_string=True); cold = time.perf_counter() - t
t = time.perf_counter(); gdb.execute(CMD, to_string=True); warm = time.perf_counter() - t
print(f"RESULT {len(gdb.selected_inferior().threads())} {cold} {warm}")
"""


def measure(pid: int, commands: tuple[str, ...]) -> list[tuple[int, float, float]]:
    runs: dict[str, list] = {c: [] for c in commands}
    for _ in range(REPEAT):
        for command in commands:
            runs[command] += [(int(n), float(c), float(w)) for n, c, w in
                              results(pid, SCRIPT.replace("CMD", repr(command)), 1)]
    return [(r[0][0], min(x[1] for x in r), min(x[2] for x in r)) for r in runs.values()]


def main() -> int:
    program = ([REPO / "build" / "fixtures" / "rust" / "rust_locks", "many"]
               if os.environ.get("RUST") else None)
    with many(THREADS, program) as pid:
        (n, bt_cold, bt_warm), (_, dg_cold, dg_warm) = measure(
            pid, ("thread apply all bt", "deadlock-graph --json"))
    print(f"threads: {n}, best of {REPEAT}")
    print(f"cold: thread apply all bt {bt_cold:6.3f} s, deadlock-graph --json "
          f"{dg_cold:6.3f} s  ({dg_cold / bt_cold:.2f}x; goal <= 1x)")
    print(f"warm: thread apply all bt {bt_warm:6.3f} s, deadlock-graph --json "
          f"{dg_warm:6.3f} s  ({dg_warm / bt_warm:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
