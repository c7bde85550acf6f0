"""crash-triage inside gdb: a live fault, a live hang, and the same crash as
a kernel core signing alike; the user's selection is kept; bad input is one
line.  Expectations come from the fixtures and nm, never from gdbext."""
from __future__ import annotations

import pytest

from tests.e2e import corpus
from tests.e2e.conftest import MODES
from tests.e2e.gdb_session import GdbSession, assert_no_traceback, assert_one_error_line
from tests.e2e.hung import DEADLOCK, start
from tests.host import FIXTURES, facts_of, kernel_core

ISA = FIXTURES / "isa_crash"


def live_fault(argv: list[str], env: dict, debuginfo: bool, tmp_path) -> dict:
    with GdbSession(*argv, debuginfo=debuginfo, cwd=tmp_path) as gdb:
        for k, v in env.items():
            gdb.cmd(f"set environment {k} {v}")
        out = gdb.cmd("run", timeout=60)
        assert "received signal SIG" in out, out
        return gdb.json("crash-triage --json")


def core_of(argv: list[str], tmp_path) -> dict:
    core, _, _ = kernel_core(argv, tmp_path / "kcore")
    with GdbSession(argv[0], "-ex", f"core-file {core}", debuginfo=False, cwd=tmp_path) as gdb:
        return gdb.json("crash-triage --json")


@pytest.mark.parametrize("debuginfo", [True, False])
@pytest.mark.parametrize("mode", ["trap", "apx", "fma4"])
def test_live_sigill_runs_isa_check_and_signs_like_its_core(mode, debuginfo, tmp_path):
    if not MODES[mode].crashes:
        pytest.skip(f"this host runs the {mode} instruction")
    live = live_fault([str(ISA), "-ex", f"set args {mode}"], {}, debuginfo, tmp_path)
    assert live["schema"] == "gdbext/crash-triage/1" and live["target"] == "live"
    assert live["ran"] == ["isa-check"] and live["errors"] == []
    assert live["stop"]["signal"] == "SIGILL" and live["stop"]["origin"] == "fault"
    assert live["frames"][0]["function"] == corpus.containing_function(ISA, f"{mode}_fault")
    assert live["frames"][0]["object"] == "isa_crash"
    assert live["reports"]["isa-check"]["verdict"] == live["verdict"]
    assert live["verdict"] == MODES[mode].expected_verdict
    assert live["signature"] == core_of([str(ISA), mode], tmp_path)["signature"]


@pytest.mark.parametrize("name", ["sse_stub", "stack_overflow"])
def test_live_sigsegv_runs_spill_audit_and_signs_like_its_core(name, tmp_path):
    binary = corpus.SPILL / name
    live = live_fault([str(binary)], {"SPILL_NO_HANDLER": "1"}, False, tmp_path)
    _, stdout, _ = kernel_core([str(binary)], tmp_path / "facts")
    facts = facts_of(stdout)
    assert live["ran"] == ["spill-audit"]
    assert live["verdict"] == facts["expect_verdict"]
    assert live["signature"]["key"] == facts["expect_kind"]
    assert live["frames"][0]["function"] == facts["kernel"]
    assert live["signature"] == core_of([str(binary)], tmp_path)["signature"]


def test_attached_hang_keeps_the_users_selection(tmp_path):
    h = start("abba", cwd=tmp_path)
    try:
        with GdbSession(str(DEADLOCK / "abba"), "-ex", f"attach {h.pid}", debuginfo=False,
                        cwd=tmp_path) as gdb:
            gdb.cmd("thread 2")
            gdb.cmd("frame 1")
            before = gdb.cmd("frame")
            r = gdb.json("crash-triage --json")
            text = gdb.cmd("crash-triage")
            assert gdb.cmd("frame") == before
            assert h.proc.poll() is None                    # never resumed
    finally:
        h.proc.kill()
        h.proc.wait()
    assert r["stop"]["signal"] == "SIGSTOP" and r["stop"]["origin"] == "external"
    assert r["ran"] == ["deadlock-graph"] and r["verdict"] == "deadlock"
    assert set(r["reports"]["deadlock-graph"]["cycles"][0]) == {h.tid("T1"), h.tid("T2")}
    assert r["signature"]["class"] == "hang" and r["signature"]["key"] == "lock-order"
    assert_no_traceback(text)
    assert text.startswith("crash-triage: hang (SIGSTOP): DEADLOCK")
    assert f"signature    {r['signature']['id']}" in text
    # the SIGSTOP is gdb's own attach (this test attached), never "sent from outside"
    assert "the stop a debugger makes when it attaches" in text and "sent from" not in text


def test_self_abort_is_its_own_verdict(tmp_path):
    core, stdout, _ = kernel_core([str(DEADLOCK / "idle"), "abort"], tmp_path)
    with GdbSession(str(DEADLOCK / "idle"), "-ex", f"core-file {core}", debuginfo=False,
                    cwd=tmp_path) as gdb:
        r = gdb.json("crash-triage --json")
    pid = int(facts_of(stdout)["pid"])
    assert r["stop"]["sender_pid"] == pid and r["stop"]["origin"] == "self"
    assert r["ran"] == [] and r["verdict"] == "abort"
    assert r["frames"][0]["function"] == "check_invariant"


# Refused by gdbext's argument parser, before any dependency is imported:
# the vacuity check's packages-missing run leaves these out (tests/conftest.py).
PARSER = pytest.mark.negative(answered_without_packages=True)


@pytest.mark.negative
@pytest.mark.parametrize("args, needle", [
    ("", "no process or core"),
    pytest.param("--bogus", "unrecognized arguments: --bogus", marks=PARSER),
    pytest.param("--max-frames 0", "must be 1 or more", marks=PARSER),
])
@pytest.mark.parametrize("with_file", [False, True])
def test_bad_input_is_one_line(args, needle, with_file, tmp_path):
    program = [str(ISA)] if with_file else []
    with GdbSession(*program, cwd=tmp_path) as gdb:
        out = gdb.cmd(f"crash-triage {args}".strip())
        assert_one_error_line(out, "crash-triage", needle)
        assert gdb.cmd("print 6*7").strip().endswith("42")     # gdb still usable


def test_a_breakpoint_stop_is_called_a_debug_trap_not_a_hang(tmp_path):
    """Stopped at a breakpoint the user set: the headline says so (SIGTRAP
    from the kernel, gdb's own `p $_siginfo`), not "hang"."""
    exe = FIXTURES / "everyday" / "everyday"
    if not exe.exists():
        pytest.skip("make setup builds the everyday fixtures")
    with GdbSession(str(exe), cwd=tmp_path) as gdb:
        gdb.cmd("break main")
        out = gdb.cmd("run null_read", timeout=60)
        assert "Breakpoint 1, " in out, out
        assert gdb.cmd("p $_siginfo.si_signo").strip().endswith("= 5")   # SIGTRAP
        report = gdb.json("crash-triage --json")
        text = gdb.cmd("crash-triage")
    assert_no_traceback(text)
    assert report["stop"]["origin"] == "trap"
    assert report["headline"].startswith("crash-triage: stopped at a debug trap (SIGTRAP): ")
    assert "hang" not in text.splitlines()[0]
