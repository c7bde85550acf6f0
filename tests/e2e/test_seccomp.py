"""crash-triage on a process its seccomp filter killed (fixtures/faults/
seccomp.c, built here without tail calls): SIGSYS with SYS_SECCOMP is a fault raised for the
refused system call, never a hang.  The call's number is what the program
printed about itself, its name comes from the kernel's own header
(asm/unistd_64.h), the signal from the kernel's exit status; live and
kernel core sign alike, and two refused calls sign apart."""
from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.host import GDB, REPO, find_kernel_core, kernel_cores_land_in_cwd, run, \
    unlimited_core

SOURCE = REPO / "fixtures" / "faults" / "seccomp.c"
UNISTD = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
BASE = [GDB, "-nx", "-q", "-batch", "-iex", "set debuginfod enabled off",
        "-iex", "set debug-file-directory /nonexistent", "-ex", f"source {REPO / 'gdbinit.py'}"]


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    exe = tmp_path_factory.mktemp("seccomp") / "seccomp"
    run(["gcc", "-O2", "-fno-optimize-sibling-calls", "-o", str(exe), str(SOURCE)])
    return exe


def syscall_name(number: int) -> str | None:
    if not UNISTD.exists():
        return None
    m = re.search(rf"^#define __NR_(\w+) {number}$", UNISTD.read_text(), re.M)
    return m.group(1) if m else None


def killed(program, call: str, cwd: Path):
    if not kernel_cores_land_in_cwd():
        pytest.skip("core_pattern does not write kernel cores into the cwd")
    cwd.mkdir()
    proc = subprocess.run([str(program), call], cwd=cwd, capture_output=True, text=True,
                          timeout=60, preexec_fn=unlimited_core, stdin=subprocess.DEVNULL)
    if proc.returncode == 3:
        pytest.skip(f"this kernel or container refuses a seccomp filter: {proc.stderr}")
    assert proc.returncode == -signal.SIGSYS, (proc.returncode, proc.stderr)
    said = dict(re.findall(r"(\w+)=(\d+)", proc.stdout))
    return int(said["nr"]), find_kernel_core(cwd, int(said["pid"]))


def triage(argv: list[str]) -> dict:
    out = subprocess.run(BASE + argv, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in out.stdout + out.stderr
    line = next(l for l in out.stdout.splitlines() if l.startswith("{"))
    return json.loads(line)


@pytest.mark.parametrize("call", ["getpid", "uname"])
def test_a_seccomp_kill_is_the_refused_call_live_and_from_the_core(program, call, tmp_path):
    number, core = killed(program, call, tmp_path / "cwd")
    assert core is not None
    from_core = triage(["-ex", "crash-triage --json", str(program), str(core)])
    live = triage(["-ex", f"run {call} > /dev/null", "-ex", "crash-triage --json",
                   str(program)])
    for d in (from_core, live):
        assert d["stop"]["signal"] == "SIGSYS" and d["stop"]["code_name"] == "SYS_SECCOMP"
        assert d["stop"]["origin"] == "fault" and d["verdict"] == "seccomp-violation"
        assert d["fault"]["syscall"]["number"] == number
        if syscall_name(number):
            assert d["fault"]["syscall"]["name"] == syscall_name(number) == call
            assert f"system call {number} ({call})" in d["headline"]
        assert d["frames"][0]["function"] == {"getpid": "ask_pid", "uname": "ask_name"}[call]
        assert "deadlock-graph" not in d["ran"]
    assert from_core["signature"]["id"] == live["signature"]["id"]


def test_two_refused_calls_sign_apart(program, tmp_path):
    ids = set()
    for call in ("getpid", "uname"):
        _, core = killed(program, call, tmp_path / call)
        ids.add(triage(["-ex", "crash-triage --json", str(program), str(core)])
                ["signature"]["id"])
    assert len(ids) == 2
