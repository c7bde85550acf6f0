"""deadlock-graph's quick walk (target._QuickWalk: frame 0's registers from
/proc/PID/task/TID/syscall, frames stepped from .eh_frame) must give exactly
what gdb's own unwinder gives: the same registers, pcs, frame names,
objects, wait-site lines and truncation, thread by thread.  The truth here is
plain gdb's `thread apply all bt` (a gdb without the extension, on the same
process or core): every frame of both walks must be its frame at that level
-- pc, function, source line; gdbext's own gdb walk of the same threads in
the same session (quick=False) for the fields bt does not print; and the
fixture's own `wait tid=N futex=0x...` lines (read by the fixture from
/proc/self/task/N/syscall) for the futex words."""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from tests.e2e.gdb_session import NO_DEBUG_INFO, GdbSession, assert_no_traceback
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
    plain = plain_backtraces(program, target, debuginfo, tmp_path)
    with GdbSession(program, *target, debuginfo=debuginfo, cwd=tmp_path) as gdb:
        out = gdb.cmd(f"source {snippet}")
    assert_no_traceback(out)
    line = next(l for l in out.splitlines() if l.startswith("QUICK "))
    return dict(json.loads(line[len("QUICK "):]), plain=plain)


FRAME = re.compile(r"^#(\d+)\s+(0x[0-9a-f]+) in (\S+) \(.*?\)(?: at (\S+):(\d+)| from (\S+))?$",
                   re.M)


def plain_backtraces(program: str, target: list[str], debuginfo: bool, tmp_path) -> dict:
    """LWP -> [(level, pc, function, file, line)] from plain gdb's `thread
    apply all bt` (no gdbext), every frame printed with its address."""
    out = run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
               *([] if debuginfo else NO_DEBUG_INFO), program, *target,
               "-ex", "set print frame-info location-and-address",
               "-ex", "set print frame-arguments none", "-ex", "thread apply all bt"],
              cwd=tmp_path).stdout
    threads = {}
    for block in re.split(r"\n(?=Thread \d+ )", out):
        m = re.match(r"Thread \d+ \(.*?\(LWP (\d+)\)", block)
        if m:
            threads[int(m.group(1))] = [
                (int(f[0]), int(f[1], 16), f[2], f[3] or None, int(f[4]) if f[4] else None)
                for f in FRAME.findall(block)]
    assert threads, out
    return threads


def assert_walks_are_plain_gdbs(w: dict) -> None:
    """Each thread's frames are plain gdb's frames at the same levels."""
    assert {t["lwp"] for t in w["fast"]} == set(w["plain"]), (w["fast"], w["plain"])
    for walk in ("fast", "slow"):
        for t in w[walk]:
            bt = w["plain"][t["lwp"]]
            assert t["frames"], t
            for level, pc, function, _objfile, file, line in t["frames"]:
                b_level, b_pc, b_function, b_file, b_line = bt[level]
                assert (level, pc) == (b_level, b_pc), (walk, t["lwp"], t["frames"], bt)
                assert function == (None if b_function == "??" else b_function), \
                    (walk, t["lwp"], t["frames"], bt)
                if file is not None:        # lines are read for the wait site's frames only
                    assert (file, line) == (b_file, b_line), (walk, t["lwp"], t["frames"], bt)
            site = bt[t["frames"][-1][0]]   # the last frame walked: the wait site
            assert t["frames"][-1][4:] == [site[3], site[4]], (walk, t["lwp"], t["frames"], bt)


CASES = [("many", ("40",)), ("abba", ()), ("cycle3", ()), ("joincycle", ()), ("rwlock", ()),
         ("semwait", ()), ("orphan", ("exit",)), ("loader_gomp", ()), ("loader_llvmdeep", ()),
         ("sleepholder", ())]


@pytest.mark.parametrize("debuginfo", [True, False])
@pytest.mark.parametrize("name, args", CASES, ids=[c[0] for c in CASES])
def test_quick_walk_is_gdbs_walk(name, args, debuginfo, hang, tmp_path):
    h = hang(name, *args)
    w = walks(h, debuginfo, tmp_path)
    assert_walks_are_plain_gdbs(w)
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
    assert_walks_are_plain_gdbs(w)
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
    assert_walks_are_plain_gdbs(w)
    assert w["fast"] == w["slow"]
    assert len(w["fast"]) == 16
