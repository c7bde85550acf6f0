"""A healthy, busy numpy process attached 25 times (make test-real): no
false deadlock, no false `exact`.

fixtures/deadlock/numpy_busy.py runs Debian's numpy on threaded OpenBLAS
with Python threads contending for the GIL.  Truth, read while gdb holds the
process stopped: the kernel's futex arguments (/proc/PID/task/N/syscall), the
task list, and the lock words themselves (/proc/PID/mem); which pthread
functions the loaded objects import (nm -D), e.g. that none takes an rwlock.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.gdb_session import GdbSession
from tests.e2e.hung import Hung, learn
from tests.host import REPO, kernel_futex_view

PYTHON = "/usr/bin/python3"
ATTACHES = int(os.environ.get("GDBEXT_NUMPY_ATTACHES", "25"))


def have_numpy() -> bool:
    return subprocess.run([PYTHON, "-c", "import numpy"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not have_numpy(), reason="python3-numpy not installed")


@pytest.fixture
def busy(tmp_path):
    script = REPO / "fixtures" / "deadlock" / "numpy_busy.py"
    proc = subprocess.Popen([PYTHON, str(script)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    h = Hung(proc, proc.pid)
    for line in proc.stdout:
        learn(h, line)
        if line.strip() == "ready":
            break
    else:
        raise AssertionError(f"numpy_busy exited: {proc.wait()}")
    yield h
    proc.kill()
    proc.wait()


def rwlock_importers(pid: int) -> set[str]:
    """The loaded objects that import pthread_rwlock_* (nm -D)."""
    files = {line.split()[5] for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
             if len(line.split()) >= 6 and line.split()[5].startswith("/")}
    found = set()
    for path in files:
        out = subprocess.run(["nm", "-D", "--undefined-only", path], capture_output=True,
                             text=True).stdout
        if "pthread_rwlock_" in out:
            found.add(os.path.basename(path))
    return found


def owner_field(pid: int, address: int) -> int:
    with open(f"/proc/{pid}/mem", "rb") as mem:
        mem.seek(address + 8)
        return int.from_bytes(mem.read(4), "little", signed=True)


def test_busy_numpy_has_no_false_deadlock_nor_false_exact(busy, tmp_path):
    h = busy
    # Only OpenSSL (pulled in by the interpreter, never called by this script)
    # could take an rwlock: any rwlock claim would be false.
    assert {p for p in rwlock_importers(h.pid) if not p.startswith("libcrypto")} == set()
    verdicts, unknown, exact, blocked, gil_exact = {}, {}, 0, 0, 0
    for n in range(ATTACHES):
        time.sleep(0.05 * (n % 4))
        with GdbSession(PYTHON, "-ex", f"attach {h.pid}", debuginfo=n % 2 == 1,
                        cwd=tmp_path, timeout=120) as gdb:
            r = gdb.json("deadlock-graph --json")
            tasks, waits = kernel_futex_view(h.pid)
            claims = {}
            for t in r["threads"]:
                b = t["blocked_on"]
                if b is None:
                    continue
                blocked += 1
                assert b["kind"] != "rwlock", b
                if t["lwp"] in waits and b["kind"] in ("mutex", "loader-lock", "semaphore",
                                                       "futex"):
                    assert b["address"] == waits[t["lwp"]], (t, waits)
                if b["confidence"] == "exact":
                    assert b["kind"] in ("mutex", "loader-lock", "join", "gil", "py-rlock",
                                         "py-join"), b
                    assert set(b["owner_lwps"]) <= tasks, (b, tasks)
                    # a GIL owner is not asleep where its waiters sleep (gil.cond)
                    if b["kind"] == "gil":
                        gil_exact += 1
                        assert all(waits.get(o) != waits.get(t["lwp"])
                                   for o in b["owner_lwps"]), (b, waits)
                    elif b["kind"] in ("mutex", "loader-lock"):
                        claims[b["address"]] = b["owner_lwps"]
            for address, owners in claims.items():     # the owner field says so itself
                assert owner_field(h.pid, address) in owners
            exact += len(claims)
            gdb.cmd("detach")
        assert r["verdict"] != "deadlock" and r["cycles"] == [] and r["orphaned"] == [], r
        verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
        for u in r["unknown"]:
            unknown[u["kind"]] = unknown.get(u["kind"], 0) + 1
        assert h.proc.poll() is None
    summary = {"attaches": ATTACHES, "verdicts": verdicts, "exact_owner_claims": exact,
               "exact_gil_owner_claims": gil_exact,
               "unknown_waits": unknown,
               "blocked_threads_seen": blocked}
    (REPO / "build" / "numpy_busy_summary.json").write_text(json.dumps(summary))
    print(summary)
