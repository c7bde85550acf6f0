"""crash-triage on a SIGSEGV whose handler aborted (fixtures/faults/
handler_abort.c, built here): with SA_SIGINFO the kernel's signal frame
holds the siginfo; installed with signal() the same slot holds whatever was
on the stack, and only the sigcontext's trap data tell the fault -- which
the interrupted instruction must confirm.  Either way the report is the read
the program printed it would make, and the bug signs as the same read
without a handler.  The signal comes from the kernel's exit status."""
from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess

import pytest

from tests.host import GDB, REPO, find_kernel_core, kernel_cores_land_in_cwd, run, \
    unlimited_core

SOURCE = REPO / "fixtures" / "faults" / "handler_abort.c"
BASE = [GDB, "-nx", "-q", "-batch", "-iex", "set debuginfod enabled off",
        "-iex", "set debug-file-directory /nonexistent", "-ex", f"source {REPO / 'gdbinit.py'}"]


@pytest.fixture(scope="module")
def crashes(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    if not kernel_cores_land_in_cwd():
        pytest.skip("core_pattern does not write kernel cores into the cwd")
    root = tmp_path_factory.mktemp("handler-abort")
    exe = root / "handler_abort"
    run(["gcc", "-O2", "-fno-optimize-sibling-calls", "-o", str(exe), str(SOURCE)])
    out = {}
    for mode, sig in (("plain", signal.SIGABRT), ("siginfo", signal.SIGABRT),
                      ("none", signal.SIGSEGV)):
        cwd = root / mode
        cwd.mkdir()
        proc = subprocess.run([str(exe), mode], cwd=cwd, capture_output=True, text=True,
                              timeout=60, preexec_fn=unlimited_core, stdin=subprocess.DEVNULL)
        assert proc.returncode == -sig, (mode, proc.returncode, proc.stderr)
        said = dict(re.findall(r"(\w+)=(\w+)", proc.stdout))
        core = find_kernel_core(cwd, int(said["pid"]))
        assert core is not None
        report = subprocess.run(BASE + ["-ex", "crash-triage --json", str(exe), str(core)],
                                capture_output=True, text=True, timeout=120)
        assert "Traceback" not in report.stdout + report.stderr
        line = next(l for l in report.stdout.splitlines() if l.startswith("{"))
        out[mode] = (int(said["addr"], 16), json.loads(line))
    return out


@pytest.mark.parametrize("mode, source", [("plain", "sigcontext"), ("siginfo", "siginfo")])
def test_the_fault_a_handler_aborted_on_is_the_read_the_program_made(crashes, mode, source):
    addr, r = crashes[mode]
    assert r["stop"]["signal"] == "SIGSEGV" and r["stop"]["addr"] == addr
    assert r["interrupted"]["source"] == source
    assert r["interrupted"]["certainty"] == ("inferred" if source == "sigcontext" else "exact")
    assert r["verdict"] == "null-read" and r["fault"]["address"] == addr
    assert r["frames"][0]["function"] == "read_config"


def test_a_handler_does_not_change_the_signature(crashes):
    assert crashes["plain"][1]["signature"] == crashes["siginfo"][1]["signature"] == \
        crashes["none"][1]["signature"]
