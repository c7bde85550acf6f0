"""A Rust panic during a panic (fixtures/everyday/double_panic.rs): a Drop
panics while the first panic unwinds and std aborts with "panic in a
destructor during cleanup".  The first panic's message and thread, read
from its exception still in the heap, lead; the destructor's panic follows.

Oracle: std's default hook printed every panic on stderr, in order (thread,
location, message); the program's function names come from nm.  Kernel
cores of a debug and a release build, main thread and a named thread, with
and without glibc debug info."""
from __future__ import annotations

import re

import pytest

from tests.e2e import everyday
from tests.e2e.test_everyday import defined, triage

pytestmark = pytest.mark.xdist_group("everyday-corpus")
BUILDS = ["double_panic", "double_panic_release"]
MODES = ["main", "thread"]


def panics(stderr: str) -> list[tuple[str, str, str]]:
    """(thread, location, message) of each panic std's hook printed."""
    return re.findall(r"^thread '(.+?)' (?:\(\d+\) )?panicked at (.+?):\n(.*)$", stderr, re.M)


@pytest.fixture(scope="module")
def crashes(tmp_path_factory):
    base = tmp_path_factory.mktemp("double-panic")
    out = {}
    for build in BUILDS:
        for mode in MODES:
            case = everyday.Case(f"{build}-{mode}", (build, mode), everyday.A,
                                 "double-panic", "rust")
            out[(build, mode)] = everyday.run_case(case, base / case.name)
    keys = list(out)
    cores = [out[k].core for k in keys]
    with_debug = triage(*cores, "--jobs", "2", "--no-summary")
    bare = triage(*cores, "--jobs", "2", "--no-summary", "--debug-file-directory",
                  "/nonexistent")
    return {k: (out[k], a, b) for k, a, b in zip(keys, with_debug, bare)}


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("mode", MODES)
def test_first_panic_leads(crashes, build, mode):
    crash, *records = crashes[(build, mode)]
    printed = panics(crash.stderr)
    assert len(printed) == 3 and printed[2][2] == "panic in a destructor during cleanup"
    (thread, _, first), (_, _, second) = printed[0], printed[1]
    program = defined(crash.case.exe)
    for record in records:
        assert record["status"] == "ok", record["error"]
        t = record["triage"]
        d = t["reason"]["details"]
        assert t["verdict"] == "rust-panic" and d["kind"] == "panic-in-cleanup"
        assert d["first"] == first and d["thread"] == thread, d
        assert d["first_source"].startswith("the Rust exception at ")
        assert d["cleanup"] == second
        # the program's own function it was unwinding through (nm), not std's
        assert any(p.startswith(d["first_in"]) for p in program), d
        assert d["first_in"].endswith("reconcile")
        assert f"thread '{thread}' panicked in {d['first_in']}: {first}" in t["headline"]
        assert t["signature"]["frames"][0] == d["first_in"]
