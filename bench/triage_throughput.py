"""`gdbext triage` throughput on 50 real cores, with 1 and 2 workers.

The cores are the test corpus (tests/e2e/corpus.py: kernel cores and gcores
of every fixture family, a healthy process and a self-abort), listed in turn
until there are CORES of them.  Baseline: the same cores through plain gdb,
one `gdb -batch -ex bt` per core, one at a time -- what a script around gdb
does today.  Wall time of the whole batch, best of REPEAT, taken in turns.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import timing  # noqa: E402  (bench/ is the script's own directory)
GDB = os.environ.get("GDB", "gdb")
CORES = int(os.environ.get("CORES", "50"))
REPEAT = int(os.environ.get("REPEAT", "2"))


def main() -> None:
    from tests.e2e import corpus
    with tempfile.TemporaryDirectory(prefix="gdbext-bench-") as tmp:
        made = corpus.make(Path(tmp))
        cores = [made[i % len(made)] for i in range(CORES)]

        def triage(jobs: int, *options: str) -> None:
            proc = subprocess.run([sys.executable, "-m", "gdbext", "triage", "--jobs", str(jobs),
                                   "--no-summary", *options, *[str(c.core) for c in cores]],
                                  capture_output=True, text=True, cwd=REPO)
            assert proc.returncode == 0, proc.stderr[-2000:]

        def plain_bt() -> None:
            for c in cores:
                subprocess.run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                                "-ex", "bt", str(c.exe), str(c.core)], capture_output=True)

        load = os.getloadavg()
        one, two, bt, fresh = timing.best_each(
            [lambda: triage(1), lambda: triage(2), plain_bt,
             lambda: triage(2, "--cores-per-gdb", "1", "--no-index-cache")], REPEAT)
    print(f"{CORES} cores ({len(made)} distinct), best of {REPEAT}, "
          f"{len(os.sched_getaffinity(0))} CPUs, load average {load[0]:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after")
    print(f"  gdbext triage --jobs 1   {one:6.2f} s  {CORES / one:5.1f} cores/s")
    print(f"  gdbext triage --jobs 2   {two:6.2f} s  {CORES / two:5.1f} cores/s  "
          f"speed-up {one / two:.2f}x")
    print(f"  gdbext triage --jobs 2 --cores-per-gdb 1 --no-index-cache (a gdb per core) "
          f"{fresh:6.2f} s  {CORES / fresh:5.1f} cores/s")
    print(f"  baseline: gdb -batch -ex bt, one at a time   {bt:6.2f} s  {CORES / bt:5.1f} "
          f"cores/s (triage --jobs 1 costs {one / bt:.2f}x a plain backtrace; --jobs 2 is "
          f"{bt / two:.2f}x its throughput)")


if __name__ == "__main__":
    main()
