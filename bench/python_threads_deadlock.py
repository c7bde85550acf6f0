"""deadlock-graph on a real CPython with 1,000 Python threads, against gdb's
own `thread apply all bt`, attached and from a gcore core (issue 15).

The program is Debian's /usr/bin/python3.11 (the interpreter linked into the
executable, no debug info read) running PROGRAM below: a pure-Python ABBA
(two threads, two threading.Locks), a tenth of the threads blocked on a
threading.Lock the main thread holds, the rest in time.sleep or
threading.Event.wait; the main thread waits on an Event.  Each command runs
cold in a fresh gdb (best of REPEAT, the two commands alternating so other
load hits both alike), timed inside gdb's Python: wall clock and gdb's CPU
time.  The report's verdict and cycle are printed beside the times, checked
against what the program says of itself (its ABBA threads' native ids).
Goal: deadlock-graph <= 1.0x `thread apply all bt`.

    .venv/bin/python bench/python_threads_deadlock.py      THREADS=1000 REPEAT=3
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GDB = os.environ.get("GDB", "gdb")
PYTHON = os.environ.get("PYTHON", "/usr/bin/python3.11")
THREADS = int(os.environ.get("THREADS", "1000"))
REPEAT = int(os.environ.get("REPEAT", "3"))
COMMANDS = ("thread apply all bt", "deadlock-graph --json")

PROGRAM = r"""
import sys, threading, time
n = int(sys.argv[1])
threading.stack_size(256 * 1024)
A, B, held, forever = threading.Lock(), threading.Lock(), threading.Lock(), threading.Event()
held.acquire()
both = threading.Barrier(2)
started = threading.Semaphore(0)

ids = {}

def ab(first, second, name):
    with first:
        ids[name] = threading.get_native_id()
        both.wait()
        started.release()
        with second:
            pass

def blocked():
    started.release()
    held.acquire()

def sleeper():
    started.release()
    time.sleep(3600)

def waiter():
    started.release()
    forever.wait()

kinds = [blocked if i % 10 == 0 else sleeper if i % 2 else waiter for i in range(n - 2)]
for target in kinds:
    threading.Thread(target=target, daemon=True).start()
threading.Thread(target=ab, args=(A, B, "a"), daemon=True).start()
threading.Thread(target=ab, args=(B, A, "b"), daemon=True).start()
for _ in range(n):
    started.acquire()
time.sleep(1.0)
print("abba a", ids["a"], flush=True)
print("abba b", ids["b"], flush=True)
print("ready", threading.get_native_id(), flush=True)
forever.wait()
"""

SCRIPT = """
import time, gdb
t, c = time.perf_counter(), time.process_time()
out = gdb.execute(CMD, to_string=True)
took, cpu = time.perf_counter() - t, time.process_time() - c
print(f"RESULT {len(gdb.selected_inferior().threads())} {took} {cpu}")
if CMD.startswith("deadlock-graph"):
    print("REPORT " + next(l for l in out.splitlines() if l.startswith("{")))
"""


def start(threads: int, cwd: str) -> tuple[subprocess.Popen, dict[str, int]]:
    prog = Path(cwd) / "threads_deadlock.py"
    prog.write_text(PROGRAM)
    proc = subprocess.Popen([PYTHON, str(prog), str(threads)], stdout=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL, cwd=cwd)
    ids = {}
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        words = line.split()
        if words[0] == "abba":
            ids[words[1]] = int(words[2])
        elif words[0] == "ready":
            ids["main"] = int(words[1])
            return proc, ids
        if time.monotonic() > deadline:
            break
    proc.kill()
    sys.exit("the Python program did not get ready")


def run(target: list[str], script: Path) -> tuple[int, float, float, dict | None]:
    out = subprocess.run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                          "-iex", "set debug-file-directory /nonexistent",
                          "-ex", f"source {REPO / 'gdbinit.py'}", *target,
                          "-ex", f"source {script}"], capture_output=True, text=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("RESULT"))
    n, took, cpu = line.split()[1:]
    report = next((json.loads(l[len("REPORT "):]) for l in out.splitlines()
                   if l.startswith("REPORT ")), None)
    return int(n), float(took), float(cpu), report


def measure(target: list[str], cwd: str) -> dict[str, tuple]:
    scripts = {}
    for c in COMMANDS:
        scripts[c] = Path(cwd) / f"bench_{len(scripts)}.py"
        scripts[c].write_text(SCRIPT.replace("CMD", repr(c)))
    runs: dict[str, list] = {c: [] for c in COMMANDS}
    for _ in range(REPEAT):
        for c in COMMANDS:
            runs[c].append(run(target, scripts[c]))
    return {c: (r[0][0], min(x[1] for x in r), min(x[2] for x in r),
                next((x[3] for x in r if x[3]), None)) for c, r in runs.items()}


def show(label: str, measured: dict, ids: dict[str, int]) -> None:
    n, bt, bt_cpu, _ = measured[COMMANDS[0]]
    _, dg, dg_cpu, report = measured[COMMANDS[1]]
    print(f"{label}: {n} threads, best of {REPEAT}, cold")
    print(f"  thread apply all bt     {bt:6.2f} s   cpu {bt_cpu:6.2f} s")
    print(f"  deadlock-graph --json   {dg:6.2f} s   cpu {dg_cpu:6.2f} s   "
          f"{dg / bt:5.2f}x bt (cpu {dg_cpu / bt_cpu:5.2f}x)")
    if report:
        print(f"  verdict {report['verdict']}; cycles {report['cycles']}; "
              f"the program's ABBA threads: {sorted((ids['a'], ids['b']))}")


def main() -> int:
    if not os.path.exists(PYTHON):
        sys.exit(f"{PYTHON} missing")
    load = open("/proc/loadavg").read().split()[:3]
    print(f"load average before: {' '.join(load)}")
    with tempfile.TemporaryDirectory() as cwd:
        proc, ids = start(THREADS, cwd)
        try:
            show("attached", measure(["-p", str(proc.pid)], cwd), ids)
            core = Path(cwd) / "py.core"
            subprocess.run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                            "-p", str(proc.pid), "-ex", f"gcore {core}"], capture_output=True)
        finally:
            proc.kill()
            proc.wait()
        show("gcore core", measure([PYTHON, str(core)], cwd), ids)
    print(f"load average after: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
