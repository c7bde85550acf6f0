"""`gdbext triage` over a corpus of real cores: every family, a healthy
process, a self-abort, a junk file and a truncated core.  Each expectation
comes from the fixture (corpus.py), never from gdbext; signatures must be
equal across two runs of each fixture, with and without glibc debug info,
across a gcore and a kernel core of the same hang, and distinct across
crashes."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.e2e import corpus
from tests.e2e.gdb_session import assert_no_traceback
from tests.host import REPO, records_by_core

pytestmark = pytest.mark.xdist_group("triage-corpus")   # one worker builds the corpus


def triage(*args: str, cwd=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gdbext", "triage", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd or REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))


def records(proc: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """Two runs of every fixture, and the junk."""
    first = corpus.make(tmp_path_factory.mktemp("corpus-1"))
    second = corpus.make(tmp_path_factory.mktemp("corpus-2"))
    junk_dir = tmp_path_factory.mktemp("junk")
    junk = junk_dir / "random.core"
    junk.write_bytes(os.urandom(64 << 10))
    truncated = junk_dir / "truncated.core"
    truncated.write_bytes(first[0].core.read_bytes()[:6000])
    return first, second, junk, truncated


def test_a_core_cut_after_its_notes_is_flagged_in_record_and_summary(runs, tmp_path):
    """A core cut short (a full disk) but with its notes: triaged, and its
    record and the summary say the evidence is damaged."""
    whole = runs[0][0].core.read_bytes()
    notes_end = max(off + size for off, size in _pt_note_ranges(whole))
    assert notes_end < len(whole) // 2
    cut = tmp_path / "cut.core"
    cut.write_bytes(whole[:len(whole) // 2])
    proc = triage(str(cut), "--jobs", "1")
    assert_no_traceback(proc.stderr)
    [r] = records(proc)
    assert r["status"] == "ok", r["error"]
    have, need = len(whole) // 2, len(whole)
    assert any(f"truncated: {have} of {need} bytes" in w for w in r["warnings"]), r["warnings"]
    assert "1 of them read from damaged evidence" in proc.stderr and str(cut) in proc.stderr


def _pt_note_ranges(core: bytes):
    """(offset, size) of each PT_NOTE, from the ELF64 program headers."""
    import struct
    phoff, = struct.unpack_from("<Q", core, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", core, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", core,
                                                                 phoff + i * phentsize)
        if p_type == 4:
            yield p_offset, p_filesz


@pytest.fixture(scope="session")
def batch(runs):
    """Records of: run 1 (with the junk in the middle), run 2, run 1 without
    glibc debug info; keyed by corpus name."""
    first, second, junk, truncated = runs
    middle = len(first) // 2
    cores = [c.core for c in first[:middle]] + [junk, truncated] + \
        [c.core for c in first[middle:]]
    one = triage(*cores, "--jobs", "2")
    two = triage(*[c.core for c in second], "--jobs", "2")
    bare = triage(*[c.core for c in first], "--jobs", "2",
                  "--debug-file-directory", "/nonexistent")
    for proc in (one, two, bare):
        assert_no_traceback(proc.stderr)
    r1 = records(one)
    extra = {r["core"]: r for r in r1 if r["core"] in (str(junk), str(truncated))}
    return {
        "proc": one, "junk": extra[str(junk)], "truncated": extra[str(truncated)],
        "order": [r["core"] for r in r1], "cores": cores,
        "one": records_by_core({c.name: c.core for c in first},
                               [r for r in r1 if r["core"] not in extra]),
        "two": records_by_core({c.name: c.core for c in second}, records(two)),
        "bare": records_by_core({c.name: c.core for c in first}, records(bare)),
        "two_proc": two,
    }


def test_every_fixture_core_is_explained_as_the_fixture_says(runs, batch):
    first = runs[0]
    assert {c.name.split(":")[0] for c in first} == {"isa", "spill", "hang", "abort"}
    for c in first:
        r = batch["one"][c.name]
        assert r["core"] == str(c.core), c.name
        assert r["status"] == "ok", (c.name, r["error"])
        assert r["executable"] == str(c.exe), c.name      # found from the core's NT_FILE
        sig = r["signature"]
        assert (sig["class"], sig["verdict"], sig["key"]) == (c.klass, c.verdict, c.key), c.name
        assert sig["frames"], c.name
        if c.first_frame:
            assert sig["frames"][0] == c.first_frame, (c.name, sig)
        for frame in sig["frames"]:     # a defined function, less a clone's .N suffix
            assert any(n == frame or n.startswith(frame + ".") for n in c.functions), \
                (c.name, frame)
        assert r["triage"]["schema"] == "gdbext/crash-triage/1"


def test_signatures_are_equal_across_runs_and_debug_info(runs, batch):
    for c in runs[0]:
        one, two, bare = (batch[k][c.name]["signature"] for k in ("one", "two", "bare"))
        assert one == two, c.name
        assert one == bare, c.name


def test_a_gcore_and_a_kernel_core_of_one_hang_sign_alike(runs, batch):
    hangs = [c.name for c in runs[0] if c.name.startswith("hang:") and
             not c.name.endswith(":gcore")]
    assert hangs
    for name in hangs:
        assert batch["one"][name]["signature"] == batch["one"][name + ":gcore"]["signature"]
        # the kernel core's SIGABRT came from outside: a watchdog's, not a crash
        assert batch["one"][name]["triage"]["stop"]["origin"] == "external"


def test_distinct_crashes_have_distinct_signatures(runs, batch):
    ids = {}
    for c in runs[0]:
        crash = c.name.removesuffix(":gcore")
        ids.setdefault(batch["one"][c.name]["signature"]["id"], set()).add(crash)
    assert all(len(crashes) == 1 for crashes in ids.values()), ids
    assert len(ids) == len({c.name.removesuffix(":gcore") for c in runs[0]})


def test_junk_gets_an_error_record_and_the_rest_go_on(batch):
    proc = batch["proc"]
    assert proc.returncode == 1                              # documented: some cores failed
    junk = batch["junk"]
    assert junk["status"] == "error" and "not a 64-bit little-endian ELF file" in junk["error"]
    assert junk["signature"] is None
    truncated = batch["truncated"]                           # gdb reads what is there
    assert truncated["status"] in ("ok", "error")
    assert "Traceback" not in (truncated["error"] or "")
    # records come out in the order given, and every other core was triaged
    assert batch["order"] == [str(c) for c in batch["cores"]]
    assert all(r["status"] == "ok" for r in batch["one"].values())
    assert batch["two_proc"].returncode == 0


def test_summary_groups_by_signature(runs, batch):
    summary = batch["proc"].stderr
    for c in runs[0]:
        sig = batch["one"][c.name]["signature"]
        line = next(l for l in summary.splitlines() if sig["id"] in l)
        count = sum(1 for r in batch["one"].values() if r["signature"]["id"] == sig["id"])
        assert line.split()[0] == str(count), line
    errors = sum(1 for r in (batch["junk"], batch["truncated"]) if r["status"] != "ok")
    assert f"{len(runs[0]) + 2} core(s): " in summary and f"{errors} error(s)" in summary


def test_out_file_timeout_and_exit_codes(runs, tmp_path):
    core = runs[0][0].core
    out = tmp_path / "records.jsonl"
    proc = triage(core, "--out", out)
    assert proc.returncode == 0 and proc.stdout.startswith("cores")   # summary on stdout
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["status"] == "ok"
    slow = triage(core, "--timeout", "0.01", "--no-summary")
    (record,) = records(slow)
    assert slow.returncode == 1 and record["status"] == "timeout"
    assert triage().returncode == 2                                   # nothing to triage
    bad = triage(core, "--jobs", "0")
    assert bad.returncode == 2 and "must be more than 0" in bad.stderr
    missing = triage(core, "--exe", tmp_path / "nope")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert_no_traceback(bad.stderr + missing.stderr)


def test_coredumpctl_absent_is_said_plainly(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), PATH=str(tmp_path))   # no coredumpctl
    gdb = subprocess.run(["which", "gdb"], capture_output=True, text=True).stdout.strip()
    (tmp_path / "gdb").symlink_to(gdb)
    proc = subprocess.run([sys.executable, "-m", "gdbext", "triage", "--coredumpctl"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("gdbext triage: coredumpctl not found"), proc.stderr
    assert_no_traceback(proc.stderr)


def test_console_script_is_installed():
    script = os.path.join(os.path.dirname(sys.executable), "gdbext")
    proc = subprocess.run([script, "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("gdbext ")
