"""The seed's hang with the real Intel MKL and libiomp5 (make test-real).

loader_mkl dlopen()s libctor_mkl.so, whose constructor runs a threaded
cblas_dgemm of the `mkl` wheel on libiomp5 of the `intel-openmp` wheel
while dlopen holds the loader lock.  MKL's workers look kernels up through
mkl_serv_load_fun -> dlsym and block on that lock; the master waits at the
join barrier.  Racy: about half the runs hang on 2 cores; a run that does
not hang exits, and the next is tried.

Truth from the program and the kernel: the master prints its tid; the
watcher prints every futex wait from /proc/self/task/N/syscall (the loader
lock waiters wait inside _rtld_global, whose address the program printed);
/proc/PID/maps says where libiomp5 lies.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.gdb_session import GdbSession
from tests.e2e.hung import DEADLOCK, Hung, abort_when_blocked, learn
from tests.host import GDB, find_kernel_core, kernel_cores_land_in_cwd, run, unlimited_core

LOADER = DEADLOCK / "loader_mkl"
ATTEMPTS = int(os.environ.get("GDBEXT_MKL_ATTEMPTS", "20"))
ENV = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "3", "MKL_DYNAMIC": "FALSE"}

pytestmark = pytest.mark.skipif(not LOADER.exists(), reason="make real-fixtures first")


def one_run(cwd: Path) -> Hung | None:
    proc = subprocess.Popen([str(LOADER)], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
                            env=ENV, preexec_fn=unlimited_core)
    h = Hung(proc, proc.pid)
    for line in proc.stdout:
        learn(h, line)
        if line.strip() == "ready":
            return h
    proc.wait()
    return None                     # dlopen returned: no hang this time


@pytest.fixture
def mkl_hang(tmp_path):
    started = []
    for attempt in range(1, ATTEMPTS + 1):
        h = one_run(tmp_path)
        if h is not None:
            print(f"MKL hung on attempt {attempt}")
            started.append(h)
            break
    else:
        pytest.skip(f"MKL did not hang in {ATTEMPTS} runs (racy; nothing to examine)")
    yield started[0]
    started[0].proc.kill()
    started[0].proc.wait()


def truth(h: Hung) -> tuple[int, set[int], set[int]]:
    """(master, workers blocked on the loader lock, other waiters)."""
    rtld = h.locks["rtld_global"]
    master = h.tid("master")
    loader = {t for t, a in h.waits.items() if rtld <= a < rtld + 4096}
    return master, loader, set(h.waits) - loader - {master}


def graph(h: Hung, source: str, debuginfo: bool, tmp_path: Path) -> dict:
    if source == "attach":
        with GdbSession(str(LOADER), "-ex", f"attach {h.pid}", debuginfo=debuginfo,
                        cwd=tmp_path, timeout=120) as gdb:
            return gdb.json("deadlock-graph --json")
    if source == "gcore":
        core = tmp_path / "mkl.core"
        run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off", "-p",
             str(h.pid), "-ex", f"gcore {core}"], cwd=tmp_path)
    else:
        if not kernel_cores_land_in_cwd():
            pytest.skip("core_pattern does not write kernel cores into the cwd")
        abort_when_blocked(h)
        assert h.proc.wait(timeout=60) == -signal.SIGABRT
        core = find_kernel_core(tmp_path, h.pid)
        assert core is not None
    with GdbSession(str(LOADER), "-ex", f"core-file {core}", debuginfo=debuginfo,
                    cwd=tmp_path, timeout=120) as gdb:
        return gdb.json("deadlock-graph --json")


@pytest.mark.parametrize("source, debuginfo", [
    ("attach", False), ("attach", True), ("gcore", False), ("gcore", True), ("kcore", False)])
def test_real_mkl_loader_lock_deadlock(source, debuginfo, mkl_hang, tmp_path):
    h = mkl_hang
    master, loader, others = truth(h)
    assert loader, h.waits
    iomp = [tuple(int(x, 16) for x in line.split()[0].split("-"))
            for line in Path(f"/proc/{h.pid}/maps").read_text().splitlines()
            if line.endswith("/libiomp5.so")]
    r = graph(h, source, debuginfo, tmp_path)
    threads = {t["lwp"]: t for t in r["threads"]}
    assert r["verdict"] == "deadlock" and r["patterns"] == ["loader-lock-openmp"]
    assert [set(k) for k in r["deadlocked"]] == [{master} | loader]
    b = threads[master]["blocked_on"]
    assert b["kind"] == "omp-barrier" and set(b["owner_lwps"]) == loader
    assert "Intel libiomp5" in b["label"]
    for w in loader:
        wb = threads[w]["blocked_on"]
        assert (wb["kind"], wb["address"], wb["owner_lwps"], wb["confidence"]) == \
            ("loader-lock", h.waits[w], [master], "exact")
        start = threads[w]["start_routine"]
        assert any(lo <= start["address"] < hi for lo, hi in iomp)      # made by libiomp5
        assert start["symbol"] == "__kmp_launch_worker"
    for w in others:                # arrived at the barrier: waiting, not awaited
        assert w not in b["owner_lwps"]
    assert not [w for w in r["warnings"] if "start routines not read" in w]
