"""deadlock-graph's quick walk (target._QuickWalk: frame 0's registers from
/proc/PID/task/TID/syscall, frames stepped from .eh_frame) must give exactly
what gdb's own unwinder gives: the same registers, pcs, frame names,
objects, wait-site lines and truncation, thread by thread.  The truth here is
gdb's walk of the same threads in the same session (quick=False), and
the fixture's own `wait tid=N futex=0x...` lines (read by the fixture from
/proc/self/task/N/syscall) for the futex words."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.e2e.gdb_session import GdbSession, assert_no_traceback
from tests.host import GDB, debian_python, run

SNIPPET = r"""
import json
from gdbext import target
from gdbext.locks import classify
from gdbext.knowledge.blocking import RUNTIME_OBJECTS
quick_hits = []
_orig = target._QuickWalk.snapshot
def _counted(self, *a):
    found = _orig(self, *a)
    quick_hits.append(found is not None)
    return found
target._QuickWalk.snapshot = _counted
kw = dict(registers=classify.FRAME0_REGISTERS, more_registers=classify.registers_wanted,
          frames_past_site=0)
with target.preserved_selection():
    fast = target.thread_snapshots(64, "|".join(RUNTIME_OBJECTS), **kw)
    slow = target.thread_snapshots(64, "|".join(RUNTIME_OBJECTS), quick=False, **kw)
def row(s):
    return dict(lwp=s.lwp, regs=s.regs, in_syscall=s.in_syscall, truncated=s.frames_truncated,
                frames=[(f.level, f.pc, f.function, f.objfile, f.file, f.line) for f in s.frames])
print("QUICK " + json.dumps(dict(fast=[row(s) for s in fast], slow=[row(s) for s in slow],
                                 quick=sum(quick_hits), asked=len(quick_hits))))
"""


def walks(h, debuginfo: bool, tmp_path, source: str = "attach") -> dict:
    program = str(Path(os.readlink(f"/proc/{h.pid}/exe")))
    snippet = tmp_path / "quick_walk.py"
    snippet.write_text(SNIPPET)
    target = ["-ex", f"attach {h.pid}"]
    if source == "gcore":
        core = tmp_path / "quick.core"
        run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off", "-p",
             str(h.pid), "-ex", f"gcore {core}"], cwd=tmp_path)
        target = ["-ex", f"core-file {core}"]
    with GdbSession(program, *target, debuginfo=debuginfo, cwd=tmp_path) as gdb:
        out = gdb.cmd(f"source {snippet}")
    assert_no_traceback(out)
    line = next(l for l in out.splitlines() if l.startswith("QUICK "))
    return json.loads(line[len("QUICK "):])


CASES = [("many", ("40",)), ("abba", ()), ("cycle3", ()), ("joincycle", ()), ("rwlock", ()),
         ("semwait", ()), ("orphan", ("exit",)), ("loader_gomp", ()), ("loader_llvmdeep", ()),
         ("sleepholder", ())]


@pytest.mark.parametrize("debuginfo", [True, False])
@pytest.mark.parametrize("name, args", CASES, ids=[c[0] for c in CASES])
def test_quick_walk_is_gdbs_walk(name, args, debuginfo, hang, tmp_path):
    h = hang(name, *args)
    w = walks(h, debuginfo, tmp_path)
    assert w["fast"] == w["slow"]
    by_lwp = {t["lwp"]: t for t in w["fast"]}
    for tid, futex in h.waits.items():          # the fixture's own /proc reading
        assert by_lwp[tid]["regs"]["rdi"] == futex
    if name == "many":
        # 40 waiters parked at one pc: gdb walks the first, the rest are quick
        assert w["quick"] >= 39, w


GCORE_CASES = [("many", ("40",)), ("abba", ()), ("loader_gomp", ()), ("orphan", ("exit",))]


@pytest.mark.parametrize("debuginfo", [True, False])
@pytest.mark.parametrize("name, args", GCORE_CASES, ids=[c[0] for c in GCORE_CASES])
def test_quick_walk_of_a_core_is_gdbs_walk(name, args, debuginfo, hang, tmp_path):
    """In a core frame 0's registers come from its NT_PRSTATUS notes."""
    h = hang(name, *args)
    w = walks(h, debuginfo, tmp_path, "gcore")
    assert w["fast"] == w["slow"]
    by_lwp = {t["lwp"]: t for t in w["fast"]}
    for tid, futex in h.waits.items():
        assert by_lwp[tid]["regs"]["rdi"] == futex
    if name == "many":
        assert w["quick"] >= 39, w


def test_python_threads_quick_walk(tmp_path):
    """A real CPython (the interpreter's own frames lie in the executable)."""
    script = tmp_path / "waits.py"
    script.write_text(
        "import threading, time, sys\n"
        "L = threading.Lock(); L.acquire()\n"
        "ev = threading.Event()\n"
        "ts = [threading.Thread(target=L.acquire) for _ in range(5)]\n"
        "ts += [threading.Thread(target=ev.wait) for _ in range(5)]\n"
        "ts += [threading.Thread(target=time.sleep, args=(600,)) for _ in range(5)]\n"
        "[t.start() for t in ts]\n"
        "time.sleep(0.5); print('ready', flush=True); time.sleep(600)\n")
    import subprocess
    python = str(debian_python()) if debian_python().exists() else sys.executable
    proc = subprocess.Popen([python, str(script)], stdout=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout.readline().strip() == "ready"

        class H:
            pid = proc.pid
        w = walks(H, False, tmp_path)
    finally:
        proc.kill()
        proc.wait()
    assert w["fast"] == w["slow"]
    assert len(w["fast"]) == 16
