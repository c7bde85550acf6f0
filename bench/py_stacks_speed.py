"""py-stacks over 1,000 Python threads, side by side with pystack, on each
CPython here: Debian's (gdb's Python version) and pyenv's 3.12 and 3.13.

Baseline: `pystack remote PID` and `pystack core CORE` (bloomberg/pystack,
installed into build/bench-venv when pip can get it).  Both sides are timed
from a cold start to the printed stacks (wall clock, best of REPEAT): py-stacks
as the shell's `gdbext py-stacks -p PID` / `gdbext py-stacks CORE PYTHON` (what
pystack's user would type; it starts gdb with -readnever), as `gdb -batch -p PID
-ex py-stacks` (gdb reading libpython's DWARF), and the command alone inside
an already attached gdb (what an interactive user waits for).  Prints the
ratios; tests never assert timings.

    .venv/bin/python bench/py_stacks_speed.py [THREADS]
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GDB = os.environ.get("GDB", "gdb")
sys.path.insert(0, str(REPO))
from tests.host import debian_python, pyenv_python  # noqa: E402

PYTHON = str(debian_python())
BENCH_VENV = REPO / "build" / "bench-venv"
PYSTACK = BENCH_VENV / "bin" / "pystack"
GDBEXT = REPO / ".venv" / "bin" / "gdbext"
REPEAT = 3


def ensure_pystack() -> bool:
    if PYSTACK.exists():
        return True
    subprocess.run([PYTHON, "-m", "venv", str(BENCH_VENV)], check=True)
    done = subprocess.run([str(BENCH_VENV / "bin" / "pip"), "install", "-q", "pystack"])
    return done.returncode == 0 and PYSTACK.exists()


def start(threads: int, cwd: str, python: str) -> subprocess.Popen:
    out = Path(cwd) / "out.txt"
    fh = open(out, "w")
    proc = subprocess.Popen([python, str(REPO / "fixtures" / "python" / "threads.py"),
                             str(threads)], stdout=fh, stdin=subprocess.DEVNULL, cwd=cwd)
    deadline = time.monotonic() + 120
    while "thread=main" not in out.read_text():
        if time.monotonic() > deadline or proc.poll() is not None:
            sys.exit("threads.py did not get ready")
        time.sleep(0.1)
    time.sleep(0.5)
    return proc


def best(argv: list[str]) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        out = done.stdout
    return min(times), out


def gdb_argv(*target: str, command: str = "py-stacks") -> list[str]:
    return [GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
            "-iex", "set debug-file-directory /nonexistent",
            "-ex", f"source {REPO / 'gdbinit.py'}", *target, "-ex", command]


def inside(*target: str) -> float:
    """py-stacks alone, timed inside gdb once the target is loaded."""
    script = ("import time, gdb\nt0 = time.perf_counter()\n"
              "gdb.execute('py-stacks', to_string=True)\n"
              "print('RESULT %.4f' % (time.perf_counter() - t0))\n")
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(script)
    runs = []
    for _ in range(REPEAT):
        out = subprocess.run(gdb_argv(*target, command=f"source {fh.name}"),
                             capture_output=True, text=True).stdout
        runs.append(float(next(l for l in out.splitlines() if l.startswith("RESULT")).split()[1]))
    os.unlink(fh.name)
    return min(runs)


def main() -> None:
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    have_pystack = ensure_pystack()
    pythons = [PYTHON] + [str(p) for p in (pyenv_python("3.12"), pyenv_python("3.13")) if p]
    for python in pythons:
        one(threads, python, have_pystack)


def one(threads: int, python: str, have_pystack: bool) -> None:
    with tempfile.TemporaryDirectory() as cwd:
        proc = start(threads, cwd, python)
        core = Path(cwd) / "py.core"
        try:
            front, text = best([str(GDBEXT), "py-stacks", "-p", str(proc.pid)])
            ours = best(gdb_argv("-p", str(proc.pid)))[0]
            shown = text.count("threads.py:")
            alone = inside("-p", str(proc.pid))
            theirs = best([str(PYSTACK), "remote", str(proc.pid)])[0] if have_pystack else None
            subprocess.run([GDB, "-nx", "-nh", "-batch", "-p", str(proc.pid),
                            "-ex", f"gcore {core}"], capture_output=True)
        finally:
            proc.kill()
            proc.wait()
        front_core = best([str(GDBEXT), "py-stacks", str(core), python])[0]
        ours_core, _ = best(gdb_argv(python, str(core)))
        alone_core = inside(python, str(core))
        theirs_core = best([str(PYSTACK), "core", str(core), python])[0] \
            if have_pystack else None
    print(f"py-stacks over {threads} Python threads of {python} ({shown} stack lines "
          f"shown), best of {REPEAT}:")
    for label, shell, mine, only, base, name in (
            ("live", front, ours, alone, theirs, "pystack remote"),
            ("core", front_core, ours_core, alone_core, theirs_core, "pystack core")):
        line = (f"  {label}: gdbext py-stacks {shell:.2f} s; gdb -batch + py-stacks {mine:.2f} s; "
                f"the command alone {only:.2f} s")
        if base:
            line += (f"; {name} {base:.2f} s; ratios {shell / base:.2f}x / {mine / base:.2f}x "
                     f"/ {only / base:.2f}x")
        else:
            line += "; pystack not installable here"
        print(line)

if __name__ == "__main__":
    main()
