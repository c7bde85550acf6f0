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
