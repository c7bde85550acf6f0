"""deadlock-graph against gdb's own `thread apply all bt` on one hung process.

The fixture `many N` has N threads blocked on one mutex held by a sleeping
thread (64 KiB stacks).  Cold: a fresh gdb attaches and runs one command, the
way a user meets a hang (gdb's frame cache empty).  Warm: the same command
again in that session.  Best of REPEAT, timed inside gdb's Python, no debug
info.  Goal: ratio <= 1.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GDB = os.environ.get("GDB", "gdb")
FIXTURE = REPO / "build" / "fixtures" / "deadlock" / "many"
THREADS = int(os.environ.get("THREADS", "1000"))
REPEAT = int(os.environ.get("REPEAT", "3"))

SCRIPT = """
import time, gdb
t = time.perf_counter(); gdb.execute(CMD, to_string=True); cold = time.perf_counter() - t
t = time.perf_counter(); gdb.execute(CMD, to_string=True); warm = time.perf_counter() - t
print(f"RESULT {len(gdb.selected_inferior().threads())} {cold} {warm}")
"""


def measure(pid: int, command: str) -> tuple[int, float, float]:
    script = REPO / "build" / "bench_deadlock_graph.py"
    script.write_text(SCRIPT.replace("CMD", repr(command)))
    runs = []
    for _ in range(REPEAT):
        out = subprocess.run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                              "-iex", "set debug-file-directory /nonexistent",
                              "-ex", f"source {REPO / 'gdbinit.py'}", "-p", str(pid),
                              "-ex", f"source {script}"], capture_output=True, text=True)
        line = next(l for l in out.stdout.splitlines() if l.startswith("RESULT"))
        _, n, cold, warm = line.split()
        runs.append((int(n), float(cold), float(warm)))
    return runs[0][0], min(r[1] for r in runs), min(r[2] for r in runs)


def main() -> int:
    if not FIXTURE.exists():
        sys.exit(f"{FIXTURE} missing: run make setup")
    proc = subprocess.Popen([str(FIXTURE), str(THREADS)], stdout=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        for line in proc.stdout:
            if line.strip() == "ready":
                break
        n, bt_cold, bt_warm = measure(proc.pid, "thread apply all bt")
        _, dg_cold, dg_warm = measure(proc.pid, "deadlock-graph --json")
        print(f"threads: {n}, best of {REPEAT}")
        print(f"cold: thread apply all bt {bt_cold:6.3f} s, deadlock-graph --json "
              f"{dg_cold:6.3f} s  ({dg_cold / bt_cold:.2f}x; goal <= 1x)")
        print(f"warm: thread apply all bt {bt_warm:6.3f} s, deadlock-graph --json "
              f"{dg_warm:6.3f} s  ({dg_warm / bt_warm:.2f}x)")
    finally:
        proc.kill()
        proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
