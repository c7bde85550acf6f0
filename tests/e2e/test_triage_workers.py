"""`gdbext triage` with worker gdbs that triage core after core: the records
must be those of one fresh gdb per core (`--cores-per-gdb 1 --no-index-cache`,
the mode gdbext had before workers), field by field, over the everyday corpus
(real runtimes' crashes) and the fixture corpus interleaved, with hostile
files among them -- the test that nothing of one core leaks into the next.
And a batch goes on past a gdb that hangs, crashes or is killed."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e import corpus, everyday
from tests.e2e.gdb_session import assert_no_traceback
from tests.host import GDB, REPO

pytestmark = pytest.mark.xdist_group("triage-workers")

ONE_GDB_PER_CORE = ("--cores-per-gdb", "1", "--no-index-cache")


def triage(*args, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gdbext", "triage", "--no-summary",
                           *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))


def records(proc: subprocess.CompletedProcess) -> list[dict]:
    assert_no_traceback(proc.stderr)
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def same_record(got: dict, want: dict, where: str) -> None:
    """Every field but the time taken, one by one (the first difference named)."""
    assert set(got) == set(want), where
    for field in sorted(set(want) - {"seconds"}):
        assert got[field] == want[field], (where, field, got[field], want[field])


@pytest.fixture(scope="session")
def cores(tmp_path_factory):
    """Everyday and fixture cores interleaved (a Rust core after a C core
    after a hang...), with junk, truncated cores and an ELF header over
    garbage among them."""
    every = everyday.make(tmp_path_factory.mktemp("workers-everyday"))
    fixtures = corpus.make(tmp_path_factory.mktemp("workers-corpus"))
    if not every:
        pytest.skip("no everyday fixture was built")
    hostile = tmp_path_factory.mktemp("workers-hostile")
    real = every[0].core.read_bytes()
    (hostile / "random.core").write_bytes(os.urandom(64 << 10))
    (hostile / "head.core").write_bytes(real[:6000])
    (hostile / "half.core").write_bytes(real[:len(real) // 2])
    (hostile / "garbage.core").write_bytes(real[:64] + os.urandom(64 << 10))
    bad = sorted(hostile.iterdir())
    good = [c.core for pair in zip(every, fixtures) for c in pair] + \
        [c.core for c in every[len(fixtures):]] + [c.core for c in fixtures[len(every):]]
    step = len(good) // (len(bad) + 1)
    mixed = list(good)
    for n, path in enumerate(bad, 1):
        mixed.insert(n * step + n - 1, path)
    return {"all": [str(p) for p in mixed], "good": {str(p) for p in good},
            "every": every}


@pytest.fixture(scope="session")
def reference(cores):
    """One fresh gdb per core, no shared index: the records to match."""
    proc = triage(*cores["all"], "--jobs", "2", *ONE_GDB_PER_CORE)
    out = records(proc)
    assert [r["core"] for r in out] == cores["all"]
    for r in out:                        # the comparison is between answers, not errors
        if r["core"] in cores["good"]:
            assert r["status"] == "ok", (r["core"], r["error"])
    return {r["core"]: r for r in out}


def test_one_gdb_for_every_core_gives_the_records_of_a_gdb_per_core(cores, reference):
    proc = triage(*cores["all"], "--jobs", "1", "--cores-per-gdb", "1000")
    out = records(proc)
    assert [r["core"] for r in out] == cores["all"]
    for r in out:
        same_record(r, reference[r["core"]], r["core"])


def test_two_workers_replaced_every_few_cores_give_the_same_records(cores, reference):
    proc = triage(*cores["all"], "--jobs", "2", "--cores-per-gdb", "7")
    out = records(proc)
    assert [r["core"] for r in out] == cores["all"]
    for r in out:
        same_record(r, reference[r["core"]], r["core"])
    assert proc.returncode == 1         # the hostile files: some cores failed, as documented


FAKE_GDB = '''#!{python}
"""gdb, except that the worker hangs, crashes or is killed on cores named so."""
import os, sys
with open({log!r}, "a") as fh:
    fh.write(f"{{os.getpid()}}\\n")
HOOK = ("python import gdbext.cli.gdb_worker as w, os, signal, time\\n"
        "real = w._triage\\n"
        "def hooked(job):\\n"
        "    name = os.path.basename(job['core'])\\n"
        "    if name.startswith('HANG'): time.sleep(3600)\\n"
        "    if name.startswith('CRASH'): os.kill(os.getpid(), signal.SIGSEGV)\\n"
        "    if name.startswith('KILLED'): os.kill(os.getpid(), signal.SIGKILL)\\n"
        "    return real(job)\\n"
        "w._triage = hooked")
argv = sys.argv[1:]
if "w.serve()" in argv[-1]:
    argv[-2:-2] = ["-ex", HOOK]
os.execv({gdb!r}, [{gdb!r}] + argv)
'''


def test_a_batch_goes_on_past_a_gdb_that_hangs_crashes_or_is_killed(cores, reference,
                                                                     tmp_path):
    gdb = shutil.which(GDB)
    log = tmp_path / "pids"
    fake = tmp_path / "gdb"
    fake.write_text(FAKE_GDB.format(python=sys.executable, log=str(log), gdb=gdb))
    fake.chmod(0o755)
    every = [str(c.core) for c in cores["every"]]
    doomed = {}
    for name, source in (("CRASH", every[1]), ("KILLED", every[2]), ("HANG", every[3])):
        doomed[name] = tmp_path / f"{name}.core"
        shutil.copyfile(source, doomed[name])
    batch = [every[0], doomed["CRASH"], every[4], doomed["KILLED"], every[5],
             doomed["HANG"], every[6], every[7]]
    proc = triage(*batch, "--jobs", "1", "--timeout", "30", "--gdb", fake)
    out = {r["core"]: r for r in records(proc)}
    assert list(out) == [str(p) for p in batch]
    assert proc.returncode == 1
    crashed, killed, hung = (out[str(doomed[n])] for n in ("CRASH", "KILLED", "HANG"))
    # gdb's own words for its crash, not its bug-report boilerplate
    assert crashed["status"] == "error", crashed
    assert crashed["error"].startswith("gdb crashed: Fatal signal: Segmentation fault"), crashed
    assert killed["status"] == "error" and "status -9" in killed["error"], killed
    assert hung["status"] == "timeout" and "--timeout" in hung["error"], hung
    for core in (every[0], every[4], every[5], every[6], every[7]):   # before and after each
        same_record(out[core], reference[core], core)
    pids = [int(p) for p in log.read_text().split()]
    assert len(pids) >= 4                # the first, and one after each lost gdb
    for pid in pids:                     # the hung one was killed, the others ended
        assert not os.path.exists(f"/proc/{pid}"), pid


def test_paths_gdb_would_split_or_end(cores, reference, tmp_path):
    """A space, quotes, a backslash reach gdb as one file name; a line break
    cannot be on gdb's command line at all: that core gets its own gdb."""
    source = str(cores["every"][0].core)
    odd = tmp_path / "it's a \"core\" dir\\x"
    odd.mkdir()
    spaced = odd / "core file"
    broken = tmp_path / "core\nfile"
    for path in (spaced, broken):
        shutil.copyfile(source, path)
    proc = triage(spaced, broken, source, "--jobs", "1")
    out = records(proc)
    assert [r["core"] for r in out] == [str(spaced), str(broken), source]
    for r in out:
        assert r["status"] == "ok", r
        for field in ("signature", "verdict", "headline", "python", "warnings", "executable"):
            assert r[field] == reference[source][field], (r["core"], field)
    program = odd / "the program"          # `file` splits its argument: quoted
    shutil.copyfile(cores["every"][0].case.exe, program)
    program.chmod(0o755)
    (r,) = records(triage(spaced, "--exe", program, "--jobs", "1"))
    assert r["status"] == "ok" and r["executable"] == str(program), r
    assert r["signature"] == reference[source]["signature"]


def test_worker_options_are_checked(cores, tmp_path):
    core = cores["all"][0]
    zero = triage(core, "--cores-per-gdb", "0")
    assert zero.returncode == 2 and "must be more than 0" in zero.stderr
    missing = triage(core, "--index-cache", tmp_path / "nope")
    assert missing.returncode == 2 and "no such directory" in missing.stderr
    assert_no_traceback(zero.stderr + missing.stderr)
    kept = tmp_path / "index"
    kept.mkdir()
    every = [str(c.core) for c in cores["every"]]
    assert triage(*every[:2], "--index-cache", kept).returncode == 0
    # gdb wrote its index of libc's debug info there, for the next run, when
    # libc6-dbg has it (the build-id from readelf names the file)
    notes = subprocess.run(["readelf", "-n", "/lib/x86_64-linux-gnu/libc.so.6"],
                           capture_output=True, text=True).stdout
    build_id = notes.split("Build ID:")[1].split()[0] if "Build ID:" in notes else ""
    if build_id and Path(f"/usr/lib/debug/.build-id/{build_id[:2]}/{build_id[2:]}.debug").exists():
        assert any(p.name.startswith(build_id) for p in kept.iterdir()), list(kept.iterdir())


COREDUMPCTL = '''#!{python}
"""coredumpctl's documented interface (list --json=short, dump --output=):
two entries, one whose core systemd-coredump kept, which is {core!r}."""
import json, shutil, sys
args = sys.argv[1:]
if "list" in args:
    print(json.dumps([{{"pid": 4242, "exe": {exe!r}, "corefile": "present", "time": 1}},
                      {{"pid": 4343, "exe": {exe!r}, "corefile": "missing", "time": 2}}]))
elif "dump" in args:
    out = next(a for a in args if a.startswith("--output="))[len("--output="):]
    shutil.copyfile({core!r}, out)
'''


def test_coredumpctl_cores_go_through_the_workers(cores, reference, tmp_path):
    crash = cores["every"][0]
    tool = tmp_path / "coredumpctl"
    tool.write_text(COREDUMPCTL.format(python=sys.executable, core=str(crash.core),
                                       exe=str(crash.case.exe)))
    tool.chmod(0o755)
    (tmp_path / "gdb").symlink_to(shutil.which(GDB))
    env = dict(os.environ, PYTHONPATH=str(REPO), PATH=f"{tmp_path}:{os.environ['PATH']}")
    proc = subprocess.run([sys.executable, "-m", "gdbext", "triage", "--coredumpctl",
                           "--no-summary", "--jobs", "1"], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=600)
    kept, gone = records(proc)
    assert kept["core"] == f"coredumpctl:4242:{crash.case.exe}"
    for field in ("status", "signature", "verdict", "headline", "python", "executable"):
        assert kept[field] == reference[str(crash.core)][field], field
    assert gone["status"] == "error" and "did not keep this core" in gone["error"]
