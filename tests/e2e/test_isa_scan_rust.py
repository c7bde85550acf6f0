"""isa-scan on rustc-built programs (fixtures/isa/bits.rs): our code and Rust
std's.  tzcnt and lzcnt are `rep bsf`/`rep bsr`: on a CPU without bmi1/abm they
run as bsf/bsr, so they are reported as that, not as "cannot run".  Truth from
objdump -d and nm -S; the CPU is the x86-64-v2 profile, which has neither."""
from __future__ import annotations

import bisect
import re
from collections import Counter

import pytest

from tests.e2e.gdb_session import GdbSession
from tests.host import FIXTURES, run

BUILDS = {"v3": FIXTURES / "rust" / "bits_v3", "default": FIXTURES / "rust" / "bits_default"}


def scans_by_function(binary) -> tuple[Counter, Counter]:
    """(per-function tzcnt/lzcnt counts, totals) from objdump -d and nm -S."""
    funcs = sorted((int(m.group(1), 16), int(m.group(1), 16) + int(m.group(2), 16), m.group(3))
                   for m in re.finditer(r"^([0-9a-f]+) ([0-9a-f]+) [Tt] (\S+)$",
                                        run(["nm", "-S", str(binary)]).stdout, re.M))
    starts = [f[0] for f in funcs]
    per_function: Counter = Counter()
    totals: Counter = Counter()
    out = run(["objdump", "-d", "-w", "--no-show-raw-insn", str(binary)]).stdout
    for m in re.finditer(r"^\s*([0-9a-f]+):\s+(tzcnt|lzcnt)\s", out, re.M):
        address, mnemonic = int(m.group(1), 16), m.group(2)
        totals[mnemonic] += 1
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0 and address < funcs[i][1]:
            per_function[(funcs[i][2], mnemonic)] += 1
    return per_function, totals


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_bit_scans_run_as_bsf_and_bsr(build, tmp_path):
    binary = BUILDS[build]
    assert binary.exists(), "run 'make setup' first"
    with GdbSession(cwd=tmp_path) as gdb:
        r = gdb.json(f"isa-scan --json --limit 1000 --cpu x86-64-v2 {binary}")
        text = gdb.cmd(f"isa-scan --limit 1000 --cpu x86-64-v2 {binary}")
    per_function, totals = scans_by_function(binary)
    assert totals, "objdump shows no tzcnt/lzcnt: the fixture lost its point"
    (obj,) = r["objects"]
    features = {(f["name"], f["mnemonic"]): f for f in obj["features"]}
    for mnemonic, feature, runs_as in (("tzcnt", "bmi1", "bsf"), ("lzcnt", "abm", "bsr")):
        if totals[mnemonic]:
            row = features[(feature, mnemonic)]
            assert row["instructions"] == totals[mnemonic]
            assert row["present"] is False and row["runs_as_when_absent"] == runs_as
    # every function holding a scan is listed as running differently, with objdump's count
    reported = {(f["name"], w.split()[0]): f["instructions"] for f in obj["runs_differently"]
                for w in f["what"]}
    expected = {k for k, n in per_function.items()}
    assert set(reported) == expected
    for f in obj["runs_differently"]:
        assert f["instructions"] == sum(per_function[(f["name"], m)] for m in ("tzcnt", "lzcnt"))
    # ... and never as "cannot run" for a scan alone
    for f in obj["functions"]:
        assert not any(m.startswith(("bmi1", "abm")) for m in f["missing"]), f
    # names are demangled: ours read as Rust paths, no row is hundreds of columns wide
    names = {f["demangled"] for f in obj["runs_differently"]}
    if build == "v3":
        assert {"bits::lowest_set", "bits::highest_set"} <= names
        assert "lzcnt runs as bsr" in text and "silent wrong result" in text
    assert not any(n and n.startswith(("_ZN", "_R")) for n in names)
    assert max(len(line) for line in text.splitlines()) < 200
    assert "tzcnt runs as bsf" in text


def test_workers_find_what_one_process_finds(tmp_path):
    """--jobs 2 splits the code at function starts between gdb's Python and a
    worker of the venv's Python: the report must not change (libc, the
    x86-64 baseline profile, so that many functions have gaps)."""
    libc = run(["gcc", "-print-file-name=libc.so.6"]).stdout.strip()
    with GdbSession(cwd=tmp_path) as gdb:
        one = gdb.json(f"isa-scan --json --limit 0 --jobs 1 --cpu x86_64 {libc}")
        two = gdb.json(f"isa-scan --json --limit 0 --jobs 2 --cpu x86_64 {libc}")
    assert one["objects"][0]["functions"], "libc uses no extension: nothing to compare"
    assert (one["objects"][0].pop("processes"), two["objects"][0].pop("processes")) == (1, 2)
    assert one == two
