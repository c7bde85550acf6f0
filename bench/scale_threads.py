"""10,000 threads: deadlock-graph and crash-triage against gdb's own
`thread apply all bt`, and gdb's memory, on one hung process.

The fixture `many N` has N threads blocked on one mutex held by a sleeping
thread, 64 KiB stacks each.  Every command runs cold in a fresh gdb that
attaches, the way a user meets a hang; best of REPEAT, no debug info.  The
memory column is gdb's peak resident set (VmHWM) minus its resident set
just before the command: what the command itself costs.  Goal: time ratio
<= the 1,000-thread ratio of bench/deadlock_graph_speed.py, memory linear
in the threads (KiB per thread flat from 1,000 to 10,000).
"""
from __future__ import annotations

import os
import sys

from attached_gdb import many, results

SIZES = [int(n) for n in os.environ.get("THREADS", "1000,10000").split(",")]
REPEAT = int(os.environ.get("REPEAT", "2"))
COMMANDS = ("thread apply all bt", "deadlock-graph --json", "crash-triage --json")

SCRIPT = """
import time, gdb
def kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
before = kib("VmRSS")
t = time.perf_counter(); gdb.execute(CMD, to_string=True); took = time.perf_counter() - t
print(f"RESULT {len(gdb.selected_inferior().threads())} {took} {kib('VmHWM') - before}")
"""


def measure(pid: int, command: str) -> tuple[int, float, int]:
    runs = [(int(n), float(t), int(k))
            for n, t, k in results(pid, SCRIPT.replace("CMD", repr(command)), REPEAT)]
    return runs[0][0], min(r[1] for r in runs), min(r[2] for r in runs)


def one_size(threads: int) -> None:
    with many(threads) as pid:
        measured = {c: measure(pid, c) for c in COMMANDS}
    n, base, _ = measured[COMMANDS[0]]
    print(f"{n} threads, best of {REPEAT}, cold:")
    for command, (_, took, kib) in measured.items():
        print(f"  {command:<22} {took:6.2f} s  {took / base:5.2f}x bt   "
              f"+{kib / 1024:6.1f} MiB ({kib / n:5.2f} KiB/thread)")


def main() -> int:
    for threads in SIZES:
        one_size(threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
