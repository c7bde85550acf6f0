"""Bad input: one clear line, no traceback, gdb and the inferior as they were."""
from __future__ import annotations

import os

import pytest

from tests.e2e.gdb_session import GdbSession, assert_no_traceback, assert_one_error_line
from tests.host import REPO


def _one_error_line(out: str, *needles: str) -> str:
    return assert_one_error_line(out, "isa-check", *needles)


def _still_usable(gdb: GdbSession) -> None:
    assert gdb.cmd("print 6*7").strip().endswith("= 42")


@pytest.mark.negative
@pytest.mark.parametrize("command,needles", [
    ("isa-check", ["no process, core or executable"]),
    ("isa-check $pc", ["no process, core or executable"]),
])
def test_nothing_loaded(command, needles, tmp_path):
    with GdbSession(cwd=tmp_path) as gdb:
        _one_error_line(gdb.cmd(command), *needles)
        _still_usable(gdb)


@pytest.mark.negative
@pytest.mark.parametrize("command,needles", [
    ("isa-check", ["no process or core", "ADDRESS"]),
    pytest.param("isa-check --bogus", ["unrecognized arguments: --bogus"],   # needs no package
                 marks=pytest.mark.negative(answered_without_packages=True)),
    ("isa-check no_such_symbol", ["cannot evaluate 'no_such_symbol'"]),
    ("isa-check 0", ["not mapped"]),
    ("isa-check 1 +", ["cannot evaluate"]),
])
def test_executable_without_process(command, needles, isa_crash, tmp_path):
    with GdbSession(str(isa_crash), cwd=tmp_path) as gdb:
        _one_error_line(gdb.cmd(command), *needles)
        _still_usable(gdb)


@pytest.mark.negative
def test_unmapped_pc_in_live_process(isa_crash, tmp_path):
    with GdbSession(str(isa_crash), cwd=tmp_path) as gdb:
        gdb.cmd("run baseline >/dev/null 2>&1 </dev/null")
        regs = gdb.cmd("info registers")
        _one_error_line(gdb.cmd("isa-check 0x10"), "0x10", "not mapped")
        assert gdb.cmd("info registers") == regs
        _still_usable(gdb)


@pytest.mark.negative
def test_junk_core_leaves_no_target(isa_crash, tmp_path):
    junk = tmp_path / "junk.core"
    junk.write_bytes(os.urandom(4096))
    with GdbSession(str(isa_crash), cwd=tmp_path) as gdb:
        gdb.cmd(f"core-file {junk}")              # gdb itself refuses the file
        _one_error_line(gdb.cmd("isa-check"), "no process or core")
        _still_usable(gdb)


@pytest.mark.negative
def test_non_x86_64_architecture(isa_crash, tmp_path):
    with GdbSession(str(isa_crash), cwd=tmp_path) as gdb:
        gdb.cmd("set architecture i386")
        _one_error_line(gdb.cmd("isa-check fma4_fault"), "unsupported architecture: i386")
        _still_usable(gdb)


def test_help_completion_and_debug_setting(tmp_path):
    with GdbSession(cwd=tmp_path) as gdb:
        assert "Usage: isa-check [--json] [--cpu NAME] [ADDRESS]" in gdb.cmd("help isa-check")
        assert "isa-check --json" in gdb.cmd("complete isa-check --j")
        gdb.cmd("set gdbext debug on")
        assert "on" in gdb.cmd("show gdbext debug")


def test_sourcing_twice_is_harmless(isa_crash, tmp_path):
    with GdbSession(str(isa_crash), "-ex", f"source {REPO / 'gdbinit.py'}", cwd=tmp_path) as gdb:
        assert_no_traceback(gdb.startup)
        assert gdb.json("isa-check --json fma4_fault")["features"] == ["fma4"]


def test_missing_dependencies_name_the_fix(isa_crash, tmp_path, monkeypatch):
    monkeypatch.setenv("GDBEXT_VENV", str(tmp_path / "no-venv"))
    with GdbSession(str(isa_crash), cwd=tmp_path) as gdb:
        has_iced = "yes" in gdb.cmd(
            "python import importlib.util as u; print('yes' if u.find_spec('iced_x86') else 'no')")
        if has_iced:
            pytest.skip("iced-x86 is installed system-wide: dependencies cannot be missing")
        line = _one_error_line(gdb.cmd("isa-check fma4_fault"), "iced-x86", "setup")
        assert f"make -C {REPO} setup" in line


@pytest.mark.negative(answered_without_packages=True)     # the loader imports no dependency
def test_gdbinit_never_puts_the_current_directory_on_sys_path(tmp_path):
    (tmp_path / "gdbext").mkdir()
    (tmp_path / "gdbext" / "__init__.py").write_text("raise SystemExit('imported from cwd')\n")
    with GdbSession(cwd=tmp_path) as gdb:
        assert_no_traceback(gdb.startup)
        where = gdb.cmd("python import gdbext, sys; print(gdbext.__file__); "
                        "print('' in sys.path[:3] or '.' in sys.path[:3])")
        assert str(REPO / "gdbext") in where and "False" in where


WRITES = "would modify the program"
CALLS = "Cannot call functions in the program: may-call-functions is off"   # gdb's words


@pytest.mark.negative
@pytest.mark.parametrize("expression,reason", [
    ("$pc=main", WRITES), ("$rax = 5", WRITES), ("$rsp++", WRITES), ("$rbx += 8", WRITES),
    ("(long)malloc(16)", CALLS), ("baseline_kernel(0)", CALLS)])
def test_address_expressions_never_modify_the_program(expression, reason, isa_crash, tmp_path):
    with GdbSession(str(isa_crash), cwd=tmp_path) as gdb:
        gdb.cmd("run baseline >/dev/null 2>&1 </dev/null")
        regs = gdb.cmd("info registers")
        out = gdb.cmd(f"isa-check {expression}")
        # refused, and for that reason: not a usage error or a missing package
        _one_error_line(out, f"'{expression}'", reason)
        assert gdb.cmd("info registers") == regs
        assert "on" in gdb.cmd("show may-call-functions")   # restored for the user


def test_quoted_expressions_keep_their_quotes(isa_crash, symbols, tmp_path):
    with GdbSession(str(isa_crash), cwd=tmp_path) as gdb:
        r = gdb.json("isa-check --json 'isa_crash.c'::main")
        assert r["address"] == symbols["main"]


def test_object_is_the_vdso_or_nothing_never_the_executable(isa_crash, tmp_path):
    with GdbSession(str(isa_crash), cwd=tmp_path) as gdb:
        gdb.cmd("run baseline >/dev/null 2>&1 </dev/null")
        where = gdb.cmd("info symbol __vdso_clock_gettime")      # gdb's own answer
        if "system-supplied DSO" not in where:
            pytest.skip("gdb did not load the vDSO's symbols")
        vdso = gdb.json("isa-check --json __vdso_clock_gettime")["object"]
        assert vdso == where.strip().split(" of ", 1)[1]
        gdb.cmd(f"gcore {tmp_path / 'c.core'}")
    with GdbSession(str(isa_crash), "-ex", f"core-file {tmp_path / 'c.core'}",
                    cwd=tmp_path) as gdb:
        assert gdb.json("isa-check --json $sp")["object"] is None      # the stack


def test_x86_64_architecture_variants_are_accepted(isa_crash, tmp_path):
    with GdbSession(str(isa_crash), cwd=tmp_path) as gdb:
        gdb.cmd("set architecture i386:x86-64:intel")
        assert gdb.json("isa-check --json fma4_fault")["features"] == ["fma4"]
