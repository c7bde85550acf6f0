"""crash-triage on the everyday corpus (tests/e2e/everyday.py: glibc's
checks, libstdc++ terminate, Rust panics and overflow, CPython, SIGBUS).

1. Batch throughput: `gdbext triage --jobs 2` over the corpus, against the
   baseline a script around gdb runs today -- one `gdb -batch -ex bt` per
   core, one at a time.  Goal: >= 2x the baseline's cores/s.  Also shown:
   `--cores-per-gdb 1 --no-index-cache`, a fresh gdb per core (what
   `gdbext triage` did before its gdbs triaged core after core).
2. One crash-triage against `bt` in the same gdb on the same core: the
   extra time of `crash-triage --json` over `bt` alone.  Goal: <= 1.5x.
Wall time, best of REPEAT (the batch ones taken in turns).
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
REPEAT = int(os.environ.get("REPEAT", "3"))
BASE = [GDB, "-nx", "-nh", "-q", "-batch", "-iex", "set debuginfod enabled off",
        "-iex", "set auto-load python-scripts off"]


def best(fn) -> float:
    return timing.best(fn, REPEAT)


def main() -> None:
    from tests.e2e import everyday
    with tempfile.TemporaryDirectory(prefix="gdbext-bench-") as tmp:
        made = everyday.make(Path(tmp))
        cores = [str(c.core) for c in made]

        def batch(*options: str) -> None:
            proc = subprocess.run([sys.executable, "-m", "gdbext", "triage", "--jobs", "2",
                                   "--no-summary", *options, *cores], capture_output=True,
                                  text=True, cwd=REPO)
            assert proc.returncode == 0, proc.stderr[-2000:]

        def plain_bt() -> None:
            for c in made:
                subprocess.run(BASE + ["-ex", "bt", str(c.case.exe), str(c.core)],
                               capture_output=True)

        load = os.getloadavg()
        tb, bt, t1 = timing.best_each(
            [batch, plain_bt, lambda: batch("--cores-per-gdb", "1", "--no-index-cache")], REPEAT)
        print(f"{len(cores)} everyday cores, best of {REPEAT}, "
              f"{len(os.sched_getaffinity(0))} CPUs, load average "
              f"{load[0]:.2f} before, {os.getloadavg()[0]:.2f} after")
        print(f"  gdbext triage --jobs 2            {tb:6.2f} s  {len(cores) / tb:5.1f} cores/s")
        print(f"  baseline gdb -batch -ex bt, 1x1   {bt:6.2f} s  {len(cores) / bt:5.1f} cores/s")
        print(f"  throughput ratio {bt / tb:.2f}x (goal >= 2x)")
        print(f"  (one gdb per core, --jobs 2: {t1:6.2f} s  {len(cores) / t1:5.1f} cores/s, "
              f"{bt / t1:.2f}x)")
        print("one core: crash-triage --json + bt versus bt alone, same gdb, every case "
              "(the two runs of a case taken in turns)")
        ratios = []
        for c in made:
            argv = [str(c.case.exe), str(c.core)]
            alone, both = timing.best_each([
                lambda: subprocess.run(BASE + ["-ex", "bt"] + argv, capture_output=True),
                lambda: subprocess.run(BASE + ["-ex", "bt", "-ex",
                                               f"source {REPO / 'gdbinit.py'}",
                                               "-ex", "crash-triage --json"] + argv,
                                       capture_output=True)], REPEAT)
            ratios.append((both / alone, c.case.name))
            print(f"  {c.case.name:16} bt {alone:5.2f} s   bt + crash-triage {both:5.2f} s "
                  f"  {both / alone:.2f}x")
        ratios.sort()
        print(f"  median {ratios[len(ratios) // 2][0]:.2f}x, worst {ratios[-1][0]:.2f}x "
              f"({ratios[-1][1]}); {sum(r <= 1.5 for r, _ in ratios)} of {len(ratios)} "
              f"within the goal (<= 1.5x)")
        print(f"load average {os.getloadavg()[0]:.2f}")

if __name__ == "__main__":
    main()
