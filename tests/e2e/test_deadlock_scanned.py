"""deadlock-graph where gdb's unwinder gives up: `jitwait`'s thread `locker`
blocks on mutex M from code in an anonymous executable mapping (no file, no
symbol, no CFI; a zeroed stack buffer above it).  gdb's own `bt` ends in
pc 0 there; the frames above are found by stack scanning, for that thread
only, and its wait site is the program's function that called the
generated code, marked as found by scanning.  Truth: the fixture's own tids,
lock address and /proc view of the wait, gdb's plain `bt`, and nm."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.gdb_session import GdbSession
from tests.e2e.hung import DEADLOCK, start
from tests.host import GDB, run

JITWAIT = DEADLOCK / "jitwait"


def nm_functions() -> set[str]:
    out = subprocess.run(["nm", str(JITWAIT)], capture_output=True, text=True,
                         check=True).stdout
    return {l.split()[2] for l in out.splitlines() if len(l.split()) == 3
            and l.split()[1] in "tT"}


@pytest.mark.parametrize("source, debuginfo", [
    ("attach", True), ("attach", False), ("gcore", False)])
def test_wait_site_above_a_frame_gdb_cannot_leave(source, debuginfo, tmp_path):
    h = start("jitwait", cwd=tmp_path)
    try:
        locker, main = h.tid("locker"), h.tid("main")
        assert h.waits[locker] == h.locks["M"]
        target = ["-ex", f"attach {h.pid}"]
        if source == "gcore":
            core = tmp_path / "jitwait.core"
            run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                 "-p", str(h.pid), "-ex", f"gcore {core}"], cwd=tmp_path)
            target = ["-ex", f"core-file {core}"]
        with GdbSession(str(JITWAIT), *target, debuginfo=debuginfo, cwd=tmp_path) as gdb:
            bt = gdb.cmd("thread apply all bt")
            r = gdb.json("deadlock-graph --json")
    finally:
        h.proc.kill()
        h.proc.wait()
    # gdb's own walk of the locker never reaches the program's code
    locker_bt = bt.split(f"(LWP {locker})")[1].split("\nThread ")[0]
    assert "0x0000000000000000 in ??" in locker_bt and "locker_site" not in locker_bt
    assert "locker_site" in nm_functions()
    threads = {t["lwp"]: t for t in r["threads"]}
    t = threads[locker]
    assert t["wait_site"] == "locker_site (found by stack scanning)"
    b = t["blocked_on"]
    assert (b["kind"], b["address"], b["owner_lwps"], b["confidence"]) == \
        ("mutex", h.locks["M"], [main], "exact")
    assert not threads[main]["wait_site"].endswith("(found by stack scanning)")
    scans = [w for w in r["warnings"] if "stack scanning" in w]
    assert len(scans) == 1 and f"LWP {locker}:" in scans[0]
