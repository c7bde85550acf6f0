"""What gdbext never does with the files around a crash: import from the
current directory or the core's, run a program a core names, change gdb's
auto-load trust, or write a file the user did not ask for."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.gdb_session import GdbSession, assert_no_traceback
from tests.host import FIXTURES, GDB, REPO, kernel_core

HOSTILE = FIXTURES / "hostile"
GDBEXT_CLI = REPO / ".venv" / "bin" / "gdbext"
# Names gdbext or Python would import if a hostile directory were on sys.path.
BAIT_MODULES = ("gdbext", "tabulate", "iced_x86", "elftools", "archspec", "sitecustomize",
                "usercustomize", "json", "gdb")
EVERY_COMMAND = ("isa-check", "isa-check --json", "isa-scan", "isa-scan --json",
                 "deadlock-graph", "deadlock-graph --json", "spill-audit",
                 "spill-audit --json", "crash-triage", "crash-triage --json")


def _bait(directory: Path, marker: Path) -> None:
    """Modules and scripts that leave ``marker``'s sibling files if run."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in BAIT_MODULES:
        package = directory / name
        package.mkdir(exist_ok=True)
        (package / "__init__.py").write_text(
            f"open({str(marker)!r} + '-{name}', 'w').close()\n")
    # What gdb would auto-load for the executable and the core, if trusted.
    for script in ("hostile-gdb.py", "core-gdb.py", ".gdbinit", "gdbinit.py"):
        (directory / script).write_text(
            f"import os; open({str(marker)!r} + '-{script}', 'w').close()\n")


def _markers(marker: Path) -> list[str]:
    return sorted(p.name for p in marker.parent.glob(marker.name + "*"))


@pytest.fixture
def crash_dir(tmp_path) -> tuple[Path, Path, Path]:
    """A copy of the fixture and its kernel core in a directory full of bait;
    (the directory, the executable, the core)."""
    where = tmp_path / "crash"
    where.mkdir()
    exe = where / "hostile"
    shutil.copy2(HOSTILE, exe)
    core, _, _ = kernel_core([str(exe), "badjump"], where)
    return where, exe, core


def _plain_gdb_safe_path() -> str:
    return subprocess.run([GDB, "-nx", "-nh", "-batch", "-ex", "show auto-load safe-path"],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_nothing_near_the_crash_is_imported_or_trusted(crash_dir, tmp_path):
    where, exe, core = crash_dir
    marker = tmp_path / "ran"
    _bait(where, marker)
    safe_path = _plain_gdb_safe_path()
    with GdbSession(str(exe), str(core), cwd=where) as gdb:
        assert_no_traceback(gdb.startup)
        assert gdb.cmd("show auto-load safe-path").strip() == safe_path
        for command in EVERY_COMMAND:
            assert_no_traceback(gdb.cmd(command))
        path = json.loads(gdb.cmd("python import json, sys; print(json.dumps(sys.path))")
                          .strip().splitlines()[-1])
        assert gdb.cmd("show auto-load safe-path").strip() == safe_path
        where_from = gdb.cmd("python import gdbext; print(gdbext.__file__)")
    assert str(REPO / "gdbext") in where_from
    assert not {"", ".", str(where), str(where.resolve())} & set(path), path
    assert _markers(marker) == []


def test_the_batch_cli_imports_nothing_from_its_directory(crash_dir, tmp_path):
    where, exe, core = crash_dir
    marker = tmp_path / "ran"
    _bait(where, marker)
    proc = subprocess.run([str(GDBEXT_CLI), "triage", str(core)], cwd=where,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[0])["verdict"] == "jump-to-unmapped"
    assert _markers(marker) == []


def test_a_program_the_core_names_is_read_never_run(crash_dir, tmp_path):
    """The CLI finds the executable from the core's file note: a script put
    in its place must be refused as a file, not executed."""
    where, exe, core = crash_dir
    marker = tmp_path / "ran"
    exe.unlink()
    exe.write_text(f"#!/bin/sh\ntouch {marker}-exe\n")
    exe.chmod(0o755)
    proc = subprocess.run([str(GDBEXT_CLI), "triage", str(core)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert _markers(marker) == []
    with GdbSession(str(core), cwd=tmp_path) as gdb:       # gdb on the core alone
        for command in EVERY_COMMAND:
            assert_no_traceback(gdb.cmd(command))
    assert _markers(marker) == []


def _files(*roots: Path) -> set[str]:
    return {str(p) for root in roots for p in root.rglob("*")}


def test_files_are_written_only_where_asked(crash_dir, tmp_path):
    where, exe, core = crash_dir
    home, cwd, out = tmp_path / "home", tmp_path / "cwd", tmp_path / "out"
    for d in (home, cwd, out):
        d.mkdir()
    before = _files(where, home, cwd, out)
    with GdbSession(str(exe), str(core), cwd=cwd, env={"HOME": str(home)}) as gdb:
        for command in EVERY_COMMAND:
            assert_no_traceback(gdb.cmd(command))
        assert_no_traceback(gdb.cmd(f"deadlock-graph --dot {out / 'g.dot'}"))
    proc = subprocess.run([str(GDBEXT_CLI), "triage", "--out", str(out / "r.jsonl"),
                           str(core)], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert _files(where, home, cwd, out) - before == {str(out / "g.dot"), str(out / "r.jsonl")}
