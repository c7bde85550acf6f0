"""crash-triage on a process its seccomp filter killed (fixtures/faults/
seccomp.c, built here without tail calls): SIGSYS with SYS_SECCOMP is a fault
raised for the refused system call, never a hang.  The call's number is what
the program printed about itself, its name comes from the kernel's own
header (asm/unistd_64.h), the signal from the kernel's exit status; live and
kernel core sign alike, and two refused calls sign apart."""
from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from tests.e2e.built import build, kernel_core, triage

UNISTD = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
REFUSED = {3: "this kernel or container refuses a seccomp filter"}


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    return build("gcc", "seccomp.c", tmp_path_factory.mktemp("seccomp"), "-O2",
                 "-fno-optimize-sibling-calls")


def syscall_name(number: int) -> str | None:
    if not UNISTD.exists():
        return None
    m = re.search(rf"^#define __NR_(\w+) {number}$", UNISTD.read_text(), re.M)
    return m.group(1) if m else None


def killed(program, call: str, cwd: Path):
    proc, core = kernel_core([str(program), call], cwd, signal.SIGSYS, REFUSED)
    return int(re.search(r"nr=(\d+)", proc.stdout).group(1)), core


@pytest.mark.parametrize("call", ["getpid", "uname"])
def test_a_seccomp_kill_is_the_refused_call_live_and_from_the_core(program, call, tmp_path):
    number, core = killed(program, call, tmp_path / "cwd")
    from_core = triage(program, core)
    live = triage(program, run_args=f"{call} > /dev/null")
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
    ids = {triage(program, killed(program, call, tmp_path / call)[1])["signature"]["id"]
           for call in ("getpid", "uname")}
    assert len(ids) == 2
