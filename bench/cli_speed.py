"""`gdbext deadlock-graph -p PID` and `gdbext py-stacks -p PID` from the shell,
side by side with `pystack remote PID`, on 1,000 Python threads.

What a user types at a hung service, cold start to printed report (the CLI's
own Python start-up, gdb's, the attach and the detach included), wall clock,
best of REPEAT, the three commands taken in turns.  Baseline: bloomberg's
pystack, installed into build/bench-venv as bench/py_stacks_speed.py does.
Goal (issue 29): gdbext deadlock-graph -p <= pystack remote + 0.2 s.  Tests
never assert timings.

    .venv/bin/python bench/cli_speed.py [THREADS]
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from py_stacks_speed import PYSTACK, PYTHON, REPO, ensure_pystack, start
from timing import REPEAT, best_each

GDBEXT = [sys.executable, "-m", "gdbext"]
ENV = dict(os.environ, PYTHONPATH=str(REPO))


def quiet(argv: list[str]):
    return lambda: subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, env=ENV)


def main() -> None:
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    if not ensure_pystack():
        sys.exit("pystack is not installable here: no baseline")
    with tempfile.TemporaryDirectory() as cwd:
        proc = start(threads, cwd, PYTHON)
        try:
            pid = str(proc.pid)
            shown = subprocess.run(GDBEXT + ["deadlock-graph", "-p", pid], env=ENV,
                                   capture_output=True, text=True)
            graph, stacks, theirs = best_each(
                [quiet(GDBEXT + ["deadlock-graph", "-p", pid]),
                 quiet(GDBEXT + ["py-stacks", "-p", pid]),
                 quiet([str(PYSTACK), "remote", pid])], REPEAT)
        finally:
            proc.kill()
            proc.wait()
    print(f"{threads} Python threads of {PYTHON}, cold start to report, best of {REPEAT} "
          f"(load average {os.getloadavg()[0]:.1f}); deadlock-graph said: "
          f"{shown.stdout.splitlines()[0] if shown.stdout else shown.stderr.strip()} "
          f"(exit {shown.returncode})")
    print(f"  pystack remote PID          {theirs:.2f} s")
    print(f"  gdbext deadlock-graph -p    {graph:.2f} s  ({graph - theirs:+.2f} s; goal "
          f"<= +0.20 s: {'met' if graph <= theirs + 0.2 else 'NOT met'})")
    print(f"  gdbext py-stacks -p         {stacks:.2f} s  ({stacks - theirs:+.2f} s)")


if __name__ == "__main__":
    main()
