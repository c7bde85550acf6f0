"""What the attach benchmarks share: the `many` fixture hung with N threads,
and a script run in a fresh gdb attached to it (no debug info, cold)."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GDB = os.environ.get("GDB", "gdb")
MANY = REPO / "build" / "fixtures" / "deadlock" / "many"


@contextlib.contextmanager
def many(threads: int, program=None):
    """The pid of `many THREADS` (or ``program`` + [THREADS]), once every
    waiter is blocked."""
    argv = [str(a) for a in (program or [MANY])] + [str(threads)]
    if not os.path.exists(argv[0]):
        sys.exit(f"{argv[0]} missing: run make setup")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        for line in proc.stdout:
            if line.strip() == "ready":
                break
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def results(pid: int, script: str, repeat: int) -> list[list[str]]:
    """The fields after RESULT that ``script`` prints, one list per fresh gdb."""
    path = REPO / "build" / "bench_attached.py"
    path.write_text(script)
    runs = []
    for _ in range(repeat):
        out = subprocess.run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                              "-iex", "set debug-file-directory /nonexistent",
                              "-ex", f"source {REPO / 'gdbinit.py'}", "-p", str(pid),
                              "-ex", f"source {path}"], capture_output=True, text=True)
        line = next(l for l in out.stdout.splitlines() if l.startswith("RESULT"))
        runs.append(line.split()[1:])
    return runs
