"""deadlock-graph on threads blocked in Rust std's own locks
(fixtures/deadlock/rust_locks.rs): std's futex Mutex, RwLock, Condvar,
OnceLock and mpsc record no owner, so owners are inferred from the guards
on the owners' stacks.  Live (attached) and from a gcore core, with and
without glibc debug info.  Oracle: the program's own words -- each thread
prints `role=NAME tid=TID` and the address of the lock it holds
(`holds=0x...`) -- and the source lines of its lock calls (grep)."""
from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.gdb_session import GdbSession
from tests.host import FIXTURES, GDB, REPO, run, unlimited_core

RUST = FIXTURES / "rust"
SOURCE = REPO / "fixtures" / "deadlock" / "rust_locks.rs"
# rust_locks: -O1 -g; rust_locks_release: -O3, no debug info (names from .symtab)
SOURCES = pytest.mark.parametrize("build, source, debuginfo", [
    ("rust_locks", "attach", True), ("rust_locks", "attach", False),
    ("rust_locks", "gcore", True), ("rust_locks_release", "attach", False),
    ("rust_locks_release", "gcore", True)])


class Program:
    def __init__(self, build: str, mode: str, cwd: Path):
        self.exe = RUST / build
        if not self.exe.exists():
            pytest.skip(f"{self.exe} was not built (make setup)")
        self.proc = subprocess.Popen([str(self.exe), mode], cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     stdin=subprocess.DEVNULL, preexec_fn=unlimited_core)
        self.roles: dict[str, int] = {}
        self.holds: dict[int, int] = {}         # tid -> the lock it holds
        deadline = time.monotonic() + 30
        for line in self.proc.stdout:
            m = re.match(r"role=(\w+) tid=(\d+)(?: holds=(0x[0-9a-f]+))?", line)
            if m:
                self.roles[m.group(1)] = int(m.group(2))
                if m.group(3):
                    self.holds[int(m.group(2))] = int(m.group(3), 16)
            if line.strip() == "ready":
                return
            assert time.monotonic() < deadline, "rust_locks never got ready"
        raise AssertionError(f"rust_locks exited: {self.proc.wait()}")


@pytest.fixture
def program(tmp_path):
    started = []

    def make(build, mode):
        p = Program(build, mode, tmp_path)
        started.append(p)
        return p
    yield make
    for p in started:
        p.proc.kill()
        p.proc.wait()


def report(p: Program, source: str, debuginfo: bool, tmp_path) -> dict:
    """The JSON report, with the text report's first line as "headline"."""
    how = f"attach {p.proc.pid}"
    if source == "gcore":
        core = tmp_path / f"{p.proc.pid}.core"
        run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off", "-p",
             str(p.proc.pid), "-ex", f"gcore {core}"], cwd=tmp_path)
        how = f"core-file {core}"
    with GdbSession(str(p.exe), "-ex", how, debuginfo=debuginfo, cwd=tmp_path) as gdb:
        r = gdb.json("deadlock-graph --json")
        r["headline"] = next(l for l in gdb.cmd("deadlock-graph").splitlines()
                             if l.startswith("deadlock-graph:"))
        return r


def line_of(text: str) -> int:
    """The source line of the program's statement (grep, not gdbext)."""
    (n,) = [i for i, l in enumerate(SOURCE.read_text().splitlines(), 1)
            if l.strip().startswith(text)]
    return n


def by_lwp(r: dict) -> dict[int, dict]:
    return {t["lwp"]: t for t in r["threads"]}


def site_of(p: Program, function: str, statement: str) -> list[str]:
    """The wait sites that name ``function`` at ``statement``: with debug
    info its source line (grep); without, the symbol nm lists for it."""
    if p.exe.name == "rust_locks":
        return [f"rust_locks::{function} (deadlock/rust_locks.rs:{n})"
                for n, l in enumerate(SOURCE.read_text().splitlines(), 1) if statement in l]
    out = run(["nm", "-C", "--defined-only", str(p.exe)]).stdout   # nm drops the hash
    hashes = re.findall(r"^[0-9a-f]+ [tT] _ZN10rust_locks\d+" + re.escape(function)
                        + r"17(h[0-9a-f]{16})E$", run(["nm", "--defined-only", str(p.exe)]).stdout,
                        re.M)
    assert re.search(rf"^[0-9a-f]+ [tT] rust_locks::{re.escape(function)}$", out, re.M)
    # gdb 13 keeps the legacy mangling's hash in the name it demangles; gdb 16 drops it
    return [f"rust_locks::{function}::{h}" for h in hashes] + [f"rust_locks::{function}"]


@SOURCES
def test_std_mutex_abba_is_an_inferred_deadlock(program, build, source, debuginfo, tmp_path):
    p = program(build, "abba")
    r = report(p, source, debuginfo, tmp_path)
    debit, credit = p.roles["debit"], p.roles["credit"]
    assert r["verdict"] == "deadlock" and [sorted(c) for c in r["cycles"]] == \
        [sorted([debit, credit])]
    assert "inferred" in r["headline"] and "guards" in r["headline"]
    threads = by_lwp(r)
    for waiter, holder in ((debit, credit), (credit, debit)):
        b = threads[waiter]["blocked_on"]
        assert b["kind"] == "rust-mutex" and b["label"].startswith("std::sync::Mutex")
        assert b["address"] == p.holds[holder]          # what the holder said it holds
        assert b["owner_lwps"] == [holder] and b["confidence"] == "inferred"
        site = threads[waiter]["wait_site"]
        assert site in site_of(p, "transfer", "let mut b = to.lock()"), site
    assert r["patterns"] == ["rust-lock-order"]
    # main joins (JoinHandle::join -> pthread_join) the first thread it spawned
    main = threads[p.roles["main"]]
    assert main["blocked_on"]["kind"] == "join"
    assert main["wait_site"].startswith("rust_locks::main")


@SOURCES
def test_rwlock_and_mutex_cycle(program, build, source, debuginfo, tmp_path):
    p = program(build, "rwlock")
    r = report(p, source, debuginfo, tmp_path)
    writer, reader = p.roles["writer"], p.roles["reader"]
    threads = by_lwp(r)
    assert r["verdict"] == "deadlock"
    w, rd = threads[writer]["blocked_on"], threads[reader]["blocked_on"]
    assert (w["kind"], w["address"], w["owner_lwps"]) == ("rust-mutex", p.holds[reader],
                                                          [reader])
    assert (rd["kind"], rd["address"], rd["owner_lwps"]) == ("rust-rwlock", p.holds[writer],
                                                             [writer])
    assert "RwLock (read)" in rd["label"]
    assert any("write-locked" in e for e in rd["evidence"])
    assert r["patterns"] == ["rust-rwlock-order"]


@SOURCES
@pytest.mark.parametrize("mode, role, kind, statement", [
    ("condvar", "waiter", "condvar", "started = pair.1.wait(started)"),
    ("mpsc", "consumer", "channel", "rx.recv().unwrap()\n"),
    ("once", "user", "rust-once", "*cell.get_or_init(|| {")])
def test_waits_without_a_cycle_are_named(program, build, source, debuginfo, tmp_path, mode,
                                         role, kind, statement):
    p = program(build, mode)
    r = report(p, source, debuginfo, tmp_path)
    assert not r["cycles"]      # no cycle of owners (every thread may still wait forever)
    t = by_lwp(r)[p.roles[role]]
    assert t["blocked_on"]["kind"] == kind, t
    function = {"condvar": "wait_for_signal", "mpsc": "consume", "once": "load_settings"}[mode]
    sites = site_of(p, function, statement.strip())
    if mode == "mpsc" and p.exe.name == "rust_locks":      # consume's own recv line
        sites = [s for s in sites if s.endswith(f":{line_of('rx.recv().unwrap()')})")]
    assert t["wait_site"] in sites, (t["wait_site"], sites)
    if mode == "once":      # the thread running the initialiser is its owner
        assert t["blocked_on"]["owner_lwps"] == [p.roles["init"]]
    else:
        assert t["blocked_on"]["owner_lwps"] == []
