"""A frame with no symbol is ``module+0xoffset`` (Breakpad/Socorro's
convention): deadlock-graph on a stripped copy of the C ABBA fixture, live
and from a kernel core.  Oracle: addr2line on the unstripped build (the same
code) names the functions the program's threads wait in, and the program
printed its own thread roles."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

from tests.e2e import hung
from tests.e2e.gdb_session import assert_no_traceback
from tests.host import REPO, find_kernel_core, kernel_cores_land_in_cwd, run

ABBA = hung.DEADLOCK / "abba"


def deadlock_graph(*target) -> str:
    proc = subprocess.run([sys.executable, "-m", "gdbext", "deadlock-graph", *map(str, target)],
                          capture_output=True, text=True, timeout=300, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert_no_traceback(proc.stderr)
    return proc.stdout


def test_stripped_wait_sites_are_module_plus_offset(tmp_path, monkeypatch):
    if not ABBA.exists():
        pytest.skip(f"{ABBA} was not built (make setup)")
    stripped = tmp_path / "abba_s"
    run(["strip", "-o", str(stripped), str(ABBA)])
    assert "no symbols" in subprocess.run(["nm", str(stripped)], capture_output=True,
                                          text=True).stderr
    monkeypatch.setattr(hung, "DEADLOCK", tmp_path)
    h = hung.start("abba_s", cwd=tmp_path)
    try:
        outputs = [deadlock_graph("-p", h.pid)]
        if kernel_cores_land_in_cwd():
            hung.abort_when_blocked(h)
            h.proc.wait(timeout=30)
            core = find_kernel_core(tmp_path, h.pid)
            assert core is not None
            outputs.append(deadlock_graph(str(core), str(stripped)))
    finally:
        if h.proc.poll() is None:
            h.proc.kill()
            h.proc.wait()
    for out in outputs:
        assert out.startswith("deadlock-graph: DEADLOCK"), out
        sites = re.findall(r"^      at (\S+)$", out, re.M)
        assert len(sites) == 2 and all(s.startswith("abba_s+0x") for s in sites), out
        assert not re.search(r"^      at 0x", out, re.M)
        offsets = [s.split("+")[1] for s in sites]
        named = run(["addr2line", "-f", "-e", str(ABBA), *offsets]).stdout.splitlines()[::2]
        assert sorted(named) == ["t1", "t2"], named     # the threads' own functions


@pytest.mark.parametrize("build", ["cxx_abba", "cxx_abba_stripped"])
def test_cxx_wait_site_is_the_programs_frame(build, tmp_path):
    """std::mutex through std::lock_guard: libstdc++'s inlined std::mutex::lock
    and __gthread_mutex_lock are passed over for the program's function and
    line; stripped, that frame is module+offset (addr2line on the -g build of
    the same -O2 code names it)."""
    exe = hung.DEADLOCK / build
    if not exe.exists():
        pytest.skip(f"{exe} was not built (make setup)")
    h = hung.start(build, cwd=tmp_path)
    try:
        out = deadlock_graph("-p", h.pid)
    finally:
        h.proc.kill()
        h.proc.wait()
    assert out.startswith("deadlock-graph: DEADLOCK"), out
    sites = re.findall(r"^      at (.+)$", out, re.M)
    assert len(sites) == 2, out
    source = REPO / "fixtures" / "deadlock" / "cxx_abba.cpp"
    (line,) = [i for i, l in enumerate(source.read_text().splitlines(), 1)
               if "the deadlock: each waits here" in l]
    if build == "cxx_abba":
        assert sites == [f"transfer ({source.relative_to(REPO / 'fixtures')}:{line})"] * 2 \
            or all(s.startswith("transfer (") and s.endswith(f"cxx_abba.cpp:{line})")
                   for s in sites), sites
    else:
        assert all(s.startswith("cxx_abba_stripped+0x") for s in sites), sites
        for site in sites:          # the inline chain at that address ends in transfer's line
            chain = run(["addr2line", "-f", "-i", "-C", "-e", str(hung.DEADLOCK / "cxx_abba"),
                         site.split("+")[1]]).stdout.splitlines()
            assert chain[-2].startswith("transfer(") and chain[-1].endswith(
                f"cxx_abba.cpp:{line}"), chain


def test_cxx_shared_mutex_readers_stay_unknown(tmp_path):
    """A std::shared_mutex held by a reader (glibc records none): the
    writer's wait has no owner, and no pointer on a stack stands in for one
    -- the table holding the lock as its first member is on main's stack too
    (a guard search would make main a reader and a false cycle)."""
    exe = hung.DEADLOCK / "cxx_abba"
    if not exe.exists():
        pytest.skip(f"{exe} was not built (make setup)")
    h = hung.start("cxx_abba", "shared", cwd=tmp_path)
    try:
        out = deadlock_graph("-p", h.pid)
    finally:
        h.proc.kill()
        h.proc.wait()
    # no cycle through an invented reader; the rwlock's owners stay unknown
    assert "cycle" not in out.splitlines()[0] and "owners unknown:" in out, out
    assert re.search(r"rwlock 0x[0-9a-f]+ \(waiting to write\) - readers hold the rwlock and "
                     r"glibc does not record readers", out), out
    writer = re.search(rf'^  \d+\s+{h.tid("writer")}\s+\S+\s+blocked\s+rwlock '
                       rf'{h.locks["S"]:#x} \(waiting to write\)\s+publish', out, re.M)
    assert writer, out
    # the reader waits for the mutex the writer holds: exact, from glibc's __owner
    assert re.search(rf'^  \d+\s+{h.tid("reader")}\s+\S+\s+blocked\s+normal mutex '
                     rf'{h.locks["M"]:#x}\s+{h.tid("writer")}\s', out, re.M), out

