"""10,000 threads attached: deadlock-graph and crash-triage finish, name
the one holder every waiter waits for, and gdb's memory stays bounded.

The fixture `many N` prints each thread's role and tid; /proc/PID/task
counts the threads.  Reports go through gdb's own `pipe` to a file: a
3 MB JSON line through a pty would test pexpect, not gdbext.  Timings are
measured in bench/scale_threads.py, never asserted here.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.gdb_session import GdbSession, assert_no_traceback
from tests.e2e.hung import start

THREADS = 10_000
# gdb's growth per thread for both commands, measured at ~8 KiB
# (bench/scale_threads.py); 64 KiB leaves room and still catches a report
# that keeps every frame or grows with threads squared.
MAX_KIB_PER_THREAD = 64

pytestmark = pytest.mark.xdist_group("scale")


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def _report(gdb: GdbSession, command: str, path: Path) -> dict:
    out = gdb.cmd(f"pipe {command} --json | cat > {path}", timeout=600)
    assert_no_traceback(out)
    text = path.read_text()
    assert text.startswith("{"), out
    return json.loads(text)


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    hung = start("many", str(THREADS), cwd=tmp_path_factory.mktemp("many"))
    try:
        yield hung
    finally:
        hung.proc.kill()
        hung.proc.wait()


def test_ten_thousand_threads(many, tmp_path):
    tasks = {int(t) for t in os.listdir(f"/proc/{many.pid}/task")}
    waiters = set(many.roles["waiter"])
    holder = many.tid("holder")
    assert len(waiters) == THREADS and tasks == waiters | {holder, many.tid("main")}
    with GdbSession("-p", str(many.pid), cwd=tmp_path, timeout=600,
                    debuginfo=False) as gdb:
        before = _kib(gdb.child.pid, "VmRSS")
        d = _report(gdb, "deadlock-graph", tmp_path / "d.json")
        assert {t["lwp"] for t in d["threads"]} == tasks
        owners = {t["lwp"]: t["blocked_on"]["owner_lwps"] for t in d["threads"]
                  if t["blocked_on"] and t["blocked_on"]["kind"] == "mutex"}
        assert set(owners) == waiters and all(o == [holder] for o in owners.values())
        assert d["cycles"] == []
        assert [h["lwp"] for h in d["stalled_holders"]] == [holder]
        t = _report(gdb, "crash-triage", tmp_path / "t.json")
        assert t["stop"]["origin"] != "fault" and t["ran"] == ["deadlock-graph"]
        assert t["signature"]["key"] == "held-while-sleep"
        grown = _kib(gdb.child.pid, "VmHWM") - before
        assert grown < MAX_KIB_PER_THREAD * len(tasks), grown
        assert "(running)" not in gdb.cmd("info threads 1")      # never resumed
        gdb.cmd("detach")                   # the next test attaches again


def test_thread_bound_is_reported(many, tmp_path):
    total = len(os.listdir(f"/proc/{many.pid}/task"))
    with GdbSession("-p", str(many.pid), cwd=tmp_path, timeout=600,
                    debuginfo=False) as gdb:
        gdb.cmd("set gdbext max-threads 100")
        d = _report(gdb, "deadlock-graph", tmp_path / "d.json")
        assert len(d["threads"]) == 100
        assert any(f"examined 100 of {total} threads" in w for w in d["warnings"])
        t = _report(gdb, "crash-triage", tmp_path / "t.json")
        assert any(f"examined 100 of {total} threads" in w
                   for w in t["reports"]["deadlock-graph"]["warnings"])
        gdb.cmd("detach")
