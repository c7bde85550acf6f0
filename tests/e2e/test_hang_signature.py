"""crash-triage's hang signature when a lock's owner is gone: it names the
waiter's wait site, whichever thread got the stop.  `orphan fork stay`: the
fork child's main thread (role=child) waits forever on a mutex a thread of
the parent held at the fork; its `watcher` thread (role=watcher) sleeps on
beside it and is the thread selected when crash-triage runs.  Truth: the
fixture's own tids and futex word, gdb's plain `bt` of the waiter (not
gdbext) and nm's symbol table of the fixture."""
from __future__ import annotations

import re
import subprocess

import pytest

from tests.e2e.gdb_session import GdbSession
from tests.e2e.hung import DEADLOCK, start
from tests.host import GDB, run

ORPHAN = DEADLOCK / "orphan"


def nm_function(name: str) -> tuple[int, int]:
    out = subprocess.run(["nm", "-S", str(ORPHAN)], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == name and parts[2] in "tT":
            return int(parts[0], 16), int(parts[1], 16)
    raise AssertionError(f"nm: no function {name} in {ORPHAN}")


def load_address(pid: int) -> int:
    """Where the PIE fixture is mapped (its offset-0 mapping in /proc/PID/maps)."""
    with open(f"/proc/{pid}/maps") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 6 and parts[5] == str(ORPHAN.resolve()) and int(parts[2], 16) == 0:
                return int(parts[0].split("-")[0], 16)
    raise AssertionError(f"{ORPHAN} is not mapped in {pid}")


def select_lwp(lwp: int) -> str:
    return ("python [t for t in gdb.selected_inferior().threads() "
            f"if t.ptid[1] == {lwp}][0].switch()")


@pytest.mark.parametrize("source, debuginfo", [
    ("attach", True), ("attach", False), ("gcore", False)])
def test_orphaned_wait_signs_with_the_waiters_site(source, debuginfo, tmp_path):
    h = start("orphan", "fork", "stay", cwd=tmp_path)
    try:
        child, watcher = h.tid("child"), h.tid("watcher")
        assert h.waits[child] == h.locks["M"]       # the fixture's /proc view of the wait
        bias = load_address(child)
        target = ["-ex", f"attach {child}"]
        if source == "gcore":
            core = tmp_path / "child.core"
            run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                 "-p", str(child), "-ex", f"gcore {core}"], cwd=tmp_path)
            target = ["-ex", f"core-file {core}"]
        with GdbSession(str(ORPHAN), *target, debuginfo=debuginfo, cwd=tmp_path) as gdb:
            gdb.cmd(select_lwp(child))
            waiter_bt = gdb.cmd("bt")
            gdb.cmd(select_lwp(watcher))
            watcher_bt = gdb.cmd("bt")
            r = gdb.json("crash-triage --json --no-metadata")
    finally:
        h.proc.kill()
        h.proc.wait()
    assert r["thread"]["lwp"] == watcher            # the stop is not the waiter's
    start_, size = nm_function("block_on_m")
    pcs = [int(m.group(1), 16) for m in re.finditer(r"^#\d+\s+(0x[0-9a-f]+) in block_on_m",
                                                    waiter_bt, re.M)]
    assert pcs and all(start_ < pc - bias <= start_ + size for pc in pcs), waiter_bt
    assert "block_on_m" not in watcher_bt
    assert r["signature"]["key"] in ("fork-inherited-lock", "lock-owner-gone")
    assert r["signature"]["frames"] == ["block_on_m"]
    assert r["frames"] == [{"function": "block_on_m", "object": "orphan"}]
