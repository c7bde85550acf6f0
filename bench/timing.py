"""The one timing rule of the benches: the best wall time of REPEAT runs."""
from __future__ import annotations

import os
import subprocess
import time

GDB = os.environ.get("GDB", "gdb")
REPEAT = int(os.environ.get("REPEAT", "3"))
# gdb -batch as a user without glibc debug info runs it (the kernel-core benches)
GDB_BATCH_NO_DEBUG_INFO = [GDB, "-nx", "-nh", "-q", "-batch", "-iex", "set debuginfod enabled off",
                           "-iex", "set debug-file-directory /nonexistent"]


def best(fn, repeat: int) -> float:
    """Fastest of ``repeat`` calls of ``fn()``, in seconds."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def best_each(fns, repeat: int) -> list[float]:
    """Fastest of ``repeat`` calls of each of ``fns``, taken in turns (A, B,
    A, B...): on a shared machine a burst of load then falls on all of them
    alike, not on whichever ran during it."""
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, out in zip(fns, times):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return [min(t) for t in times]


def best_run(argv: list[str], repeat: int) -> float:
    """Fastest of ``repeat`` runs of the command ``argv``, output discarded."""
    return best(lambda: subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL),
                repeat)
