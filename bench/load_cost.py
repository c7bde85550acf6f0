"""How many milliseconds `source gdbinit.py` adds to `gdb -batch`.

Baseline: the same gdb command line without the extension.  Median of N runs
each, interleaved so machine noise hits both alike.  Goal: <= 100 ms.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GDB = os.environ.get("GDB", "gdb")
RUNS = int(os.environ.get("RUNS", "20"))
BASE = [GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off"]


def timed(argv) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def main() -> int:
    plain, loaded = [], []
    for _ in range(RUNS):
        plain.append(timed(BASE))
        loaded.append(timed(BASE + ["-ex", f"source {REPO / 'gdbinit.py'}"]))
    p, l = statistics.median(plain), statistics.median(loaded)
    print(f"gdb -batch alone:          {p:7.1f} ms (median of {RUNS})")
    print(f"gdb -batch + gdbinit.py:   {l:7.1f} ms")
    print(f"load cost: {l - p:+.1f} ms  (ratio {l / p:.2f}x gdb alone; goal <= 100 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
