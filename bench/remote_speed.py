"""deadlock-graph and crash-triage behind gdbserver against a direct attach of
the same hung process (issue 25's goal: within 2x).

Direct: `gdb -batch -p PID -ex CMD`.  Remote: Debian's `gdbserver --attach`
on a local port, then `gdb -batch -ex 'target remote ...' -ex CMD` with no
file given, so gdb reads the program and its libraries from the target (the
way a remote box is debugged).  Both cold, wall clock from start to end
(gdbserver's own attach included), best of REPEAT, alternated run by run.
Fixtures: abba (3 threads), loader_gomp (libgomp team + dlopen), `many 200`.
No debug info.  Tests never assert timings.

    .venv/bin/python bench/remote_speed.py
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GDB = os.environ.get("GDB", "gdb")
DEADLOCK = REPO / "build" / "fixtures" / "deadlock"
REPEAT = int(os.environ.get("REPEAT", "3"))
BASE = [GDB, "-nx", "-nh", "-q", "-batch", "-iex", "set debuginfod enabled off",
        "-iex", "set debug-file-directory /nonexistent", "-ex", f"source {REPO / 'gdbinit.py'}"]


def start(name: str, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([str(DEADLOCK / name), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    for line in proc.stdout:
        if line.strip() == "ready":
            return proc
    sys.exit(f"{name} never got ready")


def direct(pid: int, command: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(BASE + ["-p", str(pid), "-ex", command], capture_output=True)
    return time.perf_counter() - t0


def remote(pid: int, command: str) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    server = subprocess.Popen(["gdbserver", "--attach", f"127.0.0.1:{port}", str(pid)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in server.stdout:
        if "Listening on port" in line:
            break
    subprocess.run(BASE + ["-ex", f"target remote 127.0.0.1:{port}", "-ex", command,
                           "-ex", "detach"], capture_output=True)
    server.wait(timeout=60)
    return time.perf_counter() - t0


def main() -> None:
    for name, args in (("abba", ()), ("loader_gomp", ()), ("many", ("200",))):
        proc = start(name, *args)
        try:
            for command in ("deadlock-graph", "crash-triage"):
                d, r = [], []
                for _ in range(REPEAT):
                    d.append(direct(proc.pid, command))
                    r.append(remote(proc.pid, command))
                print(f"{name:12} {command:15} attached {min(d):.2f} s  gdbserver {min(r):.2f} s"
                      f"  ratio {min(r) / min(d):.2f}x")
        finally:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
