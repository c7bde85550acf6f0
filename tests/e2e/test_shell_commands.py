"""`gdbext COMMAND TARGET` and `gdbext triage -p` driven from the shell on
the suite's real programs (issue 29): live processes, kernel cores, a
gdbserver.

Truth comes from outside gdbext: what the fixtures print about themselves
(tids, lines, the instruction mode), /proc (process state, TracerPid, the
tasks), the host's /proc/cpuinfo, binutils' readelf, and gdb itself: the
report of the very same command typed into a gdb with the extension
(gdb_session.py) must be the CLI's output byte for byte.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import MODES
from tests.e2e.gdb_session import GdbSession, assert_no_traceback
from tests.e2e.hung import DEADLOCK, abort_when_blocked
from tests.e2e.test_py_stacks import DEBIAN, SCRIPTS, _start, _stop, need_debian
from tests.host import GDB, REPO, debian_python, find_kernel_core, gdbext_cli, gdbserver, \
    interpreter_params, run

ENV = dict(os.environ, PYTHONPATH=str(REPO))


def gdbext(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([*gdbext_cli(module=True), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd or REPO,
                          env=ENV, stdin=subprocess.DEVNULL)


def in_gdb(*target: str, command: str, cwd=None) -> str:
    """The report of ``command`` typed into a gdb with the extension, less
    gdb's own warnings about the target (its stderr, which the pty mixes in)."""
    with GdbSession(*target, cwd=cwd) as gdb:
        out = gdb.cmd(command)
    assert_no_traceback(out)
    return "".join(l for l in out.splitlines(keepends=True) if not l.startswith("warning: "))


def json_line(out: str) -> str:
    [line] = [l for l in out.splitlines() if l.startswith("{")]
    return line


def tasks(pid: int) -> dict[int, str]:
    """tid -> state letter, from /proc/PID/task/TID/stat."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        out[int(tid)] = stat.rsplit(")", 1)[1].split()[0]
    return out


def tracer(pid: int) -> int:
    return int(re.search(r"^TracerPid:\s*(\d+)", Path(f"/proc/{pid}/status").read_text(),
                         re.M).group(1))


def assert_left_running(pid: int) -> None:
    """Not stopped, not traced: every task out of tracing and group stop."""
    assert tracer(pid) == 0
    states = tasks(pid)
    assert states and not any(s in "tT" for s in states.values()), states


def one_line(proc: subprocess.CompletedProcess, command: str) -> str:
    assert_no_traceback(proc.stderr)
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"gdbext {command}: "), lines[0]
    return lines[0]


# -- live processes ---------------------------------------------------------

@pytest.mark.parametrize("name", ["abba", "loader_gomp"])
def test_live_deadlock_is_the_in_gdb_report_and_exits_1(name, hang, tmp_path):
    h = hang(name)
    dot = tmp_path / "g.dot"
    proc = gdbext("deadlock-graph", "-p", h.pid, "--json", "--dot", dot)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ""
    assert_left_running(h.pid)
    assert h.proc.poll() is None
    ours = json.loads(proc.stdout)
    expected = {h.tid("T1"), h.tid("T2")} if name == "abba" \
        else {h.tid("master"), *h.roles["worker"]}
    assert ours["verdict"] == "deadlock"
    assert {lwp for k in ours["deadlocked"] for lwp in k} == expected
    graph = dot.read_text()
    assert graph.startswith("digraph")                 # --dot passed through
    dot.unlink()
    theirs = in_gdb(str(DEADLOCK / name), "-ex", f"attach {h.pid}",
                    command=f"deadlock-graph --json --dot {dot}")
    assert proc.stdout == json_line(theirs) + "\n"
    assert dot.read_text() == graph
    assert_left_running(h.pid)


def test_live_healthy_process_exits_0_with_its_report(hang):
    """healthy's threads take their locks in one order: no cycle, exit 0, and
    the report says so (its threads come and go, so no second gdb to compare)."""
    h = hang("healthy")
    proc = gdbext("deadlock-graph", "-p", h.pid, "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert (r["verdict"], r["cycles"], r["deadlocked"]) == ("no-deadlock", [], [])
    text = gdbext("deadlock-graph", "-p", h.pid)
    assert text.returncode == 0 and text.stdout.startswith("deadlock-graph: no deadlock")
    assert_left_running(h.pid)


@pytest.mark.parametrize("python", interpreter_params())
def test_python_abba_live(python, tmp_path):
    """threading.Lock ABBA in real CPython: the deadlock (exit 1) between the
    two threads the program names, and py-stacks (a listing: exit 0) equal to
    gdb's, each thread at the line it said it blocks on -- on every CPython
    here: the shell's py-stacks has gdb skip DWARF (-readnever), pyenv's
    libpython carries it, and gdb inside reads it; --native (which needs it
    for inlined frames) the same as gdb's."""
    proc, facts = _start(python, "locks.py", "abba", lines=2, cwd=tmp_path)
    try:
        graph = gdbext("deadlock-graph", "-p", proc.pid, "--json")
        stacks = gdbext("py-stacks", "-p", proc.pid, "--json")
        native = gdbext("py-stacks", "--native", "-p", proc.pid, "--json")
        with GdbSession(str(python), "-ex", f"attach {proc.pid}") as gdb:
            theirs, theirs_native = (gdb.cmd(c) for c in ("py-stacks --json",
                                                          "py-stacks --native --json"))
        assert_left_running(proc.pid)
    finally:
        _stop(proc)
    assert graph.returncode == 1, graph.stderr
    g = json.loads(graph.stdout)
    assert [sorted(c) for c in g["cycles"]] == [sorted([facts["t1"]["lwp"],
                                                       facts["t2"]["lwp"]])]
    assert stacks.returncode == 0, stacks.stderr
    assert stacks.stdout == json_line(theirs) + "\n"
    assert native.returncode == 0, native.stderr
    assert native.stdout == json_line(theirs_native) + "\n"
    by = {t["lwp"]: t for t in json.loads(stacks.stdout)["threads"]}
    for name in ("t1", "t2"):
        top = by[facts[name]["lwp"]]["python"][0]
        assert (top["file"], top["line"]) == (str(SCRIPTS / "locks.py"), facts[name]["line"])


# -- cores ------------------------------------------------------------------

@pytest.fixture(scope="module")
def abba_core(tmp_path_factory):
    """A kernel core of abba, SIGABRTed once hung (a watchdog's kill)."""
    from tests.e2e.hung import start
    cwd = tmp_path_factory.mktemp("abba-core")
    h = start("abba", cwd=cwd)
    abort_when_blocked(h)
    assert h.proc.wait(timeout=60) == -signal.SIGABRT
    core = find_kernel_core(cwd, h.pid)
    if core is None:
        pytest.skip("no kernel core was written (core_pattern)")
    return core, h


@pytest.mark.parametrize("command", ["deadlock-graph --json", "crash-triage --json",
                                     "deadlock-graph"])
def test_core_report_is_byte_for_byte_the_in_gdb_one(command, abba_core):
    core, h = abba_core
    name, *options = command.split()
    proc = gdbext(name, core, DEADLOCK / "abba", *options)
    assert proc.returncode == 1, proc.stderr      # a deadlock; a SIGABRTed process
    theirs = in_gdb(str(DEADLOCK / "abba"), "-ex", f"core-file {core}", command=command)
    if options:
        assert proc.stdout == json_line(theirs) + "\n"
        r = json.loads(proc.stdout)
        report = r if name == "deadlock-graph" else r["reports"]["deadlock-graph"]
        assert [sorted(c) for c in report["cycles"]] == [sorted([h.tid("T1"), h.tid("T2")])]
    else:
        assert proc.stdout.strip() == theirs.strip()
    # the executable is found from the core's own notes when not given
    assert gdbext(name, core, *options).stdout == proc.stdout


def test_sigill_core_isa_check_and_crash_triage(kernel_core, isa_crash):
    """isa_crash's fma4 mode: the verdict /proc/cpuinfo predicts, as in gdb;
    exit 1 for an instruction this CPU cannot run, and for the crash."""
    core, facts = kernel_core("fma4")
    mode = MODES["fma4"]
    check = gdbext("isa-check", core, isa_crash, "--json")
    assert check.returncode == (1 if mode.expected_verdict == "unsupported" else 0)
    r = json.loads(check.stdout)
    assert r["verdict"] == mode.expected_verdict and r["address"] == int(facts["fault"], 16)
    theirs = in_gdb(str(isa_crash), "-ex", f"core-file {core}", command="isa-check --json")
    assert check.stdout == json_line(theirs) + "\n"
    text = gdbext("isa-check", core, isa_crash)
    assert text.stdout.strip() == in_gdb(str(isa_crash), "-ex", f"core-file {core}",
                                         command="isa-check").strip()
    triage = gdbext("crash-triage", core, "--json")
    assert triage.returncode == 1, triage.stderr
    assert json.loads(triage.stdout)["stop"]["signal"] == mode.signal


@pytest.mark.negative(answered_without_packages=True)     # the CLI refuses before any gdb
# -- the target cannot be analysed: exit 2 and one line ---------------------

def test_no_such_process(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert not os.path.exists(f"/proc/{gone.pid}")
    proc = gdbext("deadlock-graph", "-p", gone.pid)
    assert proc.returncode == 2 and proc.stdout == ""
    assert f"no such process: {gone.pid}" in one_line(proc, "deadlock-graph")


def test_another_tracer_is_named(hang):
    h = hang("abba")
    with GdbSession(str(DEADLOCK / "abba"), "-ex", f"attach {h.pid}") as gdb:
        holder = tracer(h.pid)
        assert holder == gdb.child.pid
        proc = gdbext("py-stacks", "-p", h.pid)
        gdb.cmd("detach")
    assert proc.returncode == 2 and proc.stdout == ""
    line = one_line(proc, "py-stacks")
    assert f"already traced by process {holder}" in line and "(gdb)" in line
    assert_left_running(h.pid)


@pytest.mark.negative(answered_without_packages=True)     # the CLI refuses before any gdb
def test_not_a_core(tmp_path):
    junk = tmp_path / "core.junk"
    junk.write_bytes(os.urandom(4096))
    proc = gdbext("crash-triage", junk)
    assert proc.returncode == 2 and proc.stdout == ""
    assert str(junk) in one_line(proc, "crash-triage")
    elf = gdbext("deadlock-graph", DEADLOCK / "abba")      # a program, not a core
    assert elf.returncode == 2
    assert "not a core (4)" in one_line(elf, "deadlock-graph")


@pytest.mark.negative(answered_without_packages=True)     # the CLI refuses before any gdb
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root to run the CLI as another user")
def test_another_users_process_is_refused_by_uid(hang):
    h = hang("abba")
    # uid 65534 may not read this checkout or its venv (CI clones into a 0700
    # folder): a world-readable copy of the package, run by Debian's python
    interpreter = debian_python()
    if not interpreter.exists():
        pytest.skip(f"{interpreter} is not installed")
    shared = Path(tempfile.mkdtemp(prefix="gdbext-other-user-"))
    try:
        shutil.copytree(REPO / "gdbext", shared / "gdbext",
                        ignore=shutil.ignore_patterns("__pycache__"))
        for path in (shared, *shared.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               *gdbext_cli(module=True, python=interpreter),
                               "deadlock-graph", "-p", str(h.pid)],
                              capture_output=True, text=True, timeout=120,
                              env=dict(ENV, PYTHONPATH=str(shared)), cwd="/")
    finally:
        shutil.rmtree(shared)
    assert proc.returncode == 2, proc
    line = one_line(proc, "deadlock-graph")
    owner = re.search(r"^Uid:\s*\d+\s+(\d+)", Path(f"/proc/{h.pid}/status").read_text(),
                      re.M).group(1)
    assert f"runs as uid {owner} and you are uid 65534" in line
    assert_left_running(h.pid)


# -- Ctrl-C in the middle of the analysis ------------------------------------

def _interrupt_when_attached(argv: list[str], pid: int, after: float):
    """SIGINT to the CLI ``after`` seconds into its gdb's attach; None when
    that gdb had already finished (try again)."""
    cli = subprocess.Popen([sys.executable, "-m", "gdbext", *argv], env=ENV, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while tracer(pid) == 0:
        assert cli.poll() is None and time.monotonic() < deadline, cli.communicate()
        time.sleep(0.002)
    attached_by = tracer(pid)
    time.sleep(after)
    if tracer(pid) != attached_by:
        cli.communicate(timeout=60)
        return None
    cli.send_signal(signal.SIGINT)
    out, err = cli.communicate(timeout=60)
    return cli.returncode, out, err


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])        # utime, stime


@pytest.mark.parametrize("how, after", [("deadlock-graph", 0.01), ("py-stacks", 0.0),
                                        ("py-stacks", 0.5), ("triage", 0.5)])
def test_ctrl_c_mid_analysis_leaves_the_process_running(how, after, tmp_path):
    """SIGINT to the CLI while its gdb is attached (0.0: while gdb still
    attaches to 1,000 threads): exit 130, one line, and the process is
    neither traced nor stopped, got no signal, and runs on."""
    need_debian()
    if how == "deadlock-graph":     # busy threads: their CPU time shows they run on
        proc, _ = _start(DEBIAN, "gil_busy.py", lines=8, cwd=tmp_path)
        argv = ["deadlock-graph", "-p", str(proc.pid)]
    else:                           # 1,000 threads: seconds of analysis
        proc, _ = _start(DEBIAN, "threads.py", "1000", lines=1001, cwd=tmp_path)
        argv = ["py-stacks", "--native", "-p", str(proc.pid)] if how == "py-stacks" \
            else ["triage", "-p", str(proc.pid)]
    try:
        delay = after
        for _ in range(10):     # a fast machine may finish first: interrupt sooner
            interrupted = _interrupt_when_attached(argv, proc.pid, delay)
            if interrupted:
                break
            delay /= 2
        assert interrupted, "the analysis always ended before the interrupt"
        code, out, err = interrupted
        assert code == 130, (out, err)
        assert_no_traceback(err)
        assert err.strip().splitlines()[-1] == "gdbext: interrupted"
        assert proc.poll() is None
        assert_left_running(proc.pid)
        if how == "deadlock-graph":
            before = _cpu_ticks(proc.pid)
            time.sleep(0.5)
            assert _cpu_ticks(proc.pid) > before
    finally:
        _stop(proc)


# -- gdbserver ----------------------------------------------------------------

def test_remote_gdbserver_attach(hang):
    h = hang("abba")
    with gdbserver(h.pid) as address:
        proc = gdbext("deadlock-graph", "--remote", address, "--json")
    assert proc.returncode == 1, proc.stderr
    r = json.loads(proc.stdout)
    assert [sorted(c) for c in r["cycles"]] == [sorted([h.tid("T1"), h.tid("T2")])]
    assert_left_running(h.pid)


# -- gdbext triage -p ---------------------------------------------------------

def test_triage_live_processes_and_cores_in_one_run(hang, abba_core, tmp_path):
    """Two hung processes and a core; one process's core kept with --gcore:
    an ELF core with one NT_PRSTATUS per task of the process (readelf)."""
    abba, loader = hang("abba"), hang("loader_gomp")
    core, dead = abba_core
    keep = tmp_path / "keep"
    keep.mkdir()
    proc = gdbext("triage", "-p", f"{abba.pid},{loader.pid}", core, "--gcore", keep,
                  "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    assert_no_traceback(proc.stderr)
    records = [json.loads(l) for l in proc.stdout.splitlines()]
    assert [r["pid"] for r in records] == [abba.pid, loader.pid, None]
    assert records[2]["core"] == str(core)
    for r, h in zip(records, (abba, loader, dead)):
        assert r["status"] == "ok", r["error"]
        assert r["signature"]["class"] == "hang" and r["verdict"] == "deadlock"
    live_abba = records[0]["triage"]["reports"]["deadlock-graph"]
    assert [sorted(c) for c in live_abba["cycles"]] == [sorted([abba.tid("T1"),
                                                               abba.tid("T2")])]
    # the same hang, live and from a core: one signature
    assert records[0]["signature"]["id"] == records[2]["signature"]["id"]
    for h, r in ((abba, records[0]), (loader, records[1])):
        kept = keep / f"core.{h.pid}"
        assert r["core"] == str(kept)
        assert kept.read_bytes()[16:18] == b"\x04\x00"             # ET_CORE
        notes = run(["readelf", "-n", str(kept)]).stdout
        assert notes.count("NT_PRSTATUS") == len(tasks(h.pid))
        assert_left_running(h.pid)
    assert "3 core(s): 3 triaged" in proc.stderr


@pytest.mark.negative(answered_without_packages=True)     # the CLI refuses before any gdb
def test_triage_a_process_that_is_gone_is_an_error_record():
    gone = subprocess.Popen(["true"])
    gone.wait()
    proc = gdbext("triage", "-p", gone.pid, "--no-summary")
    assert proc.returncode == 1
    [r] = [json.loads(l) for l in proc.stdout.splitlines()]
    assert (r["pid"], r["status"], r["error"]) == (gone.pid, "error",
                                                   f"no such process: {gone.pid}")


# -- --version and --help -----------------------------------------------------

def test_version_names_gdb_and_its_python():
    proc = gdbext("--version")
    assert proc.returncode == 0, proc.stderr
    first = run([GDB, "--version"]).stdout.splitlines()[0]
    python = run([GDB, "-nx", "-nh", "-batch", "-ex",
                  "python import platform; print(platform.python_version())"]).stdout.strip()
    assert f"gdb: {first} ({shutil.which(GDB)})" in proc.stdout
    assert f"gdb's Python: {python} " in proc.stdout


@pytest.mark.parametrize("command", ["isa-check", "isa-scan", "deadlock-graph",
                                     "spill-audit", "crash-triage", "py-stacks", "triage"])
def test_help_has_examples_and_exit_statuses(command):
    proc = gdbext(command, "--help")
    assert proc.returncode == 0 and proc.stderr == ""
    examples = proc.stdout.split("examples:\n", 1)[1].split("\n\n", 1)[0]
    lines = examples.splitlines()
    assert lines and all(l.strip().startswith("gdbext ") for l in lines if l.strip()), lines
    assert "exit status: 0" in proc.stdout
