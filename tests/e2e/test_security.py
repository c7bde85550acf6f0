"""What gdbext never does with the files around a crash: import from the
current directory or the core's, run a program a core names, change gdb's
auto-load trust, or write a file the user did not ask for."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.gdb_session import GdbSession, assert_no_traceback, assert_one_error_line
from tests.host import FIXTURES, GDB, REPO, facts_of, gdbext_cli, kernel_core

# Every test here claims something gdbext does NOT do; each also checks what
# the commands answered, so that a gdbext that does nothing fails it
# (scripts/vacuity-check).
pytestmark = pytest.mark.negative

HOSTILE = FIXTURES / "hostile"
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
def crash_dir(tmp_path) -> tuple[Path, Path, Path, dict]:
    """A copy of the fixture and its kernel core in a directory full of bait;
    (the directory, the executable, the core, what the fixture printed: its
    pid and the unmapped target it jumped to)."""
    where = tmp_path / "crash"
    where.mkdir()
    exe = where / "hostile"
    shutil.copy2(HOSTILE, exe)
    core, stdout, _ = kernel_core([str(exe), "badjump"], where)
    facts = facts_of(stdout)
    assert facts["mode"] == "badjump" and facts["target"].startswith("0x"), stdout
    return where, exe, core, facts


def _run_every_command(gdb: GdbSession) -> dict[str, str]:
    answers = {}
    for command in EVERY_COMMAND:
        answers[command] = gdb.cmd(command)
        assert_no_traceback(answers[command])
    return answers


def _json(out: str, command: str) -> dict:
    objects = [line for line in out.splitlines() if line.startswith("{")]
    assert len(objects) == 1, out
    report = json.loads(objects[0])
    assert report["schema"] == f"gdbext/{command.split()[0]}/1", report["schema"]
    return report


def _check_answers(answers: dict[str, str], facts: dict, exe: Path | None) -> None:
    """What each command must answer on the badjump core, from the fixture's
    own words: its pid (one thread) and the unmapped address it jumped to.
    ``exe`` None: gdb has the core alone, no program file."""
    target, pid = int(facts["target"], 16), int(facts["pid"])
    for command in ("isa-check", "isa-check --json", "spill-audit", "spill-audit --json"):
        assert_one_error_line(answers[command], command.split()[0], f"{target:#x}",
                              "not mapped")
    if exe is None:
        for command in ("isa-scan", "isa-scan --json"):
            assert_one_error_line(answers[command], "isa-scan", "no program loaded")
    else:
        assert answers["isa-scan"].startswith("isa-scan: ") and str(exe) in answers["isa-scan"]
        scan = _json(answers["isa-scan --json"], "isa-scan")
        assert [o["path"] for o in scan["objects"]][:1] == [str(exe)], scan["objects"]
    assert answers["deadlock-graph"].startswith("deadlock-graph: no deadlock")
    graph = _json(answers["deadlock-graph --json"], "deadlock-graph")
    assert graph["verdict"] == "no-deadlock" and graph["target"] == "core"
    assert [t["lwp"] for t in graph["threads"]] == [pid]
    assert answers["crash-triage"].startswith("crash-triage: SIGSEGV ")
    assert f"pc {target:#x} is in no mapping" in answers["crash-triage"]
    triage = _json(answers["crash-triage --json"], "crash-triage")
    _check_triage(triage, facts)


def _check_triage(triage: dict, facts: dict) -> None:
    assert triage["verdict"] == "jump-to-unmapped", triage["verdict"]
    assert triage["stop"]["signal"] == "SIGSEGV"
    assert triage["stop"]["addr"] == int(facts["target"], 16)
    assert triage["thread"]["lwp"] == int(facts["pid"])


def _one_record(stdout: str, facts: dict) -> dict:
    """The batch CLI's one triage record (the summary table follows it)."""
    records = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    assert len(records) == 1, stdout
    record = records[0]
    assert record["schema"] == "gdbext/triage-record/1" and record["status"] == "ok", record
    _check_triage(record["triage"], facts)
    return record


def _plain_gdb_safe_path() -> str:
    return subprocess.run([GDB, "-nx", "-nh", "-batch", "-ex", "show auto-load safe-path"],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_nothing_near_the_crash_is_imported_or_trusted(crash_dir, tmp_path):
    where, exe, core, facts = crash_dir
    marker = tmp_path / "ran"
    _bait(where, marker)
    safe_path = _plain_gdb_safe_path()
    with GdbSession(str(exe), str(core), cwd=where) as gdb:
        assert_no_traceback(gdb.startup)
        assert gdb.cmd("show auto-load safe-path").strip() == safe_path
        _check_answers(_run_every_command(gdb), facts, exe)
        path = json.loads(gdb.cmd("python import json, sys; print(json.dumps(sys.path))")
                          .strip().splitlines()[-1])
        assert gdb.cmd("show auto-load safe-path").strip() == safe_path
        where_from = gdb.cmd("python import gdbext; print(gdbext.__file__)")
    assert str(REPO / "gdbext") in where_from
    assert not {"", ".", str(where), str(where.resolve())} & set(path), path
    assert _markers(marker) == []


def test_the_batch_cli_imports_nothing_from_its_directory(crash_dir, tmp_path):
    where, exe, core, facts = crash_dir
    marker = tmp_path / "ran"
    _bait(where, marker)
    proc = subprocess.run([*gdbext_cli(), "triage", str(core)], cwd=where,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert _one_record(proc.stdout, facts)["executable"] == str(exe)
    assert _markers(marker) == []


def test_a_program_the_core_names_is_read_never_run(crash_dir, tmp_path):
    """The CLI finds the executable from the core's file note: a script put
    in its place must be refused as a file, not executed."""
    where, exe, core, facts = crash_dir
    marker = tmp_path / "ran"
    exe.unlink()
    exe.write_text(f"#!/bin/sh\ntouch {marker}-exe\n")
    exe.chmod(0o755)
    proc = subprocess.run([*gdbext_cli(), "triage", str(core)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stderr
    _one_record(proc.stdout, facts)        # triaged from the core's own memory
    assert _markers(marker) == []
    # gdb on the core alone (no program file): the commands read the core
    with GdbSession("-ex", f"core-file {core}", cwd=tmp_path) as gdb:
        _check_answers(_run_every_command(gdb), facts, None)
    assert _markers(marker) == []


def _files(*roots: Path) -> set[str]:
    return {str(p) for root in roots for p in root.rglob("*")}


def test_files_are_written_only_where_asked(crash_dir, tmp_path):
    where, exe, core, facts = crash_dir
    home, cwd, out = tmp_path / "home", tmp_path / "cwd", tmp_path / "out"
    for d in (home, cwd, out):
        d.mkdir()
    before = _files(where, home, cwd, out)
    with GdbSession(str(exe), str(core), cwd=cwd, env={"HOME": str(home)}) as gdb:
        _check_answers(_run_every_command(gdb), facts, exe)
        assert_no_traceback(gdb.cmd(f"deadlock-graph --dot {out / 'g.dot'}"))
    proc = subprocess.run([*gdbext_cli(), "triage", "--out", str(out / "r.jsonl"),
                           str(core)], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert (out / "g.dot").read_text().startswith("digraph")
    _one_record((out / "r.jsonl").read_text(), facts)
    assert _files(where, home, cwd, out) - before == {str(out / "g.dot"), str(out / "r.jsonl")}
