"""10,000 threads: deadlock-graph and crash-triage against gdb's own
`thread apply all bt`, and gdb's memory, on one hung process.

The fixture `many N` has N threads blocked on one mutex held by a sleeping
thread, 64 KiB stacks each.  Every command runs cold in a fresh gdb that
attaches, the way a user meets a hang; best of REPEAT, no debug info.  The
memory column is gdb's peak resident set (VmHWM) minus its resident set
just before the command: what the command itself costs.  The commands
alternate run by run (other load hits all alike); the CPU column is gdb's
own user+system time (time.process_time), steadier than the wall clock on a
shared machine.  Goal (issue 16): deadlock-graph <= 1.0x `thread apply all
bt`; memory linear in the threads (KiB per thread flat from 1,000 to 10,000).
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
t, c = time.perf_counter(), time.process_time()
gdb.execute(CMD, to_string=True)
took, cpu = time.perf_counter() - t, time.process_time() - c
print(f"RESULT {len(gdb.selected_inferior().threads())} {took} {kib('VmHWM') - before} {cpu}")
"""


def measure(pid: int) -> dict[str, tuple[int, float, int, float]]:
    runs: dict[str, list] = {c: [] for c in COMMANDS}
    for _ in range(REPEAT):
        for command in COMMANDS:
            runs[command] += [(int(n), float(t), int(k), float(c)) for n, t, k, c in
                              results(pid, SCRIPT.replace("CMD", repr(command)), 1)]
    return {c: (r[0][0], min(x[1] for x in r), min(x[2] for x in r), min(x[3] for x in r))
            for c, r in runs.items()}


def one_size(threads: int) -> None:
    with many(threads) as pid:
        measured = measure(pid)
    n, base, _, base_cpu = measured[COMMANDS[0]]
    print(f"{n} threads, best of {REPEAT}, cold:")
    for command, (_, took, kib, cpu) in measured.items():
        print(f"  {command:<22} {took:6.2f} s  {took / base:5.2f}x bt   cpu {cpu:6.2f} s "
              f"{cpu / base_cpu:5.2f}x bt   +{kib / 1024:6.1f} MiB ({kib / n:5.2f} KiB/thread)")


def main() -> int:
    for threads in SIZES:
        one_size(threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
