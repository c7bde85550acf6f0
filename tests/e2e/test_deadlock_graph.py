"""deadlock-graph on real hung processes: attached live, interrupted with
Ctrl-C under gdb, as gcore cores and as kernel cores, with and without glibc
debug info.  Every expectation comes from the fixture's own
words -- `role=NAME tid=N`, `lock=NAME addr=0x...` and `wait tid=N futex=0x...`
(read by the fixture from /proc/self/task/N/syscall) -- never from gdbext."""
from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.gdb_session import GdbSession, assert_no_traceback, assert_one_error_line
from tests.e2e.hung import DEADLOCK, Hung, abort_when_blocked, learn
from tests.host import GDB, find_kernel_core, gdbserver, kernel_cores_land_in_cwd, run


def report(h: Hung, source: str, debuginfo: bool, tmp_path, command="deadlock-graph --json"):
    program = str(Path(os.readlink(f"/proc/{h.pid}/exe")))
    if source == "gdbserver":
        return gdbserver_report(h, debuginfo, tmp_path, command)
    if source == "attach":
        with GdbSession(program, "-ex", f"attach {h.pid}", debuginfo=debuginfo,
                        cwd=tmp_path) as gdb:
            return gdb.json(command)
    if source == "kcore":
        return kernel_core_report(h, program, debuginfo, tmp_path, command)
    core = tmp_path / f"{h.pid}.core"
    run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off", "-p", str(h.pid),
         "-ex", f"gcore {core}"], cwd=tmp_path)
    with GdbSession(program, "-ex", f"core-file {core}", debuginfo=debuginfo,
                    cwd=tmp_path) as gdb:
        return gdb.json(command)


def gdbserver_report(h: Hung, debuginfo: bool, tmp_path, command) -> dict:
    """The process behind Debian's gdbserver (--attach), gdb given no file:
    it reads the program and its libraries through the remote protocol
    (target:), as from another machine."""
    with gdbserver(h.pid) as address:
        with GdbSession("-ex", f"target remote {address}", debuginfo=debuginfo,
                        cwd=tmp_path) as gdb:
            result = gdb.json(command)
            gdb.cmd("detach")           # the process lives on (the session's close kills)
    return result


def kernel_core_report(h: Hung, program: str, debuginfo: bool, tmp_path, command) -> dict:
    """SIGABRT the hung process (a watchdog's move) and read the kernel's core."""
    if not kernel_cores_land_in_cwd():
        pytest.skip("core_pattern does not write kernel cores into the cwd")
    abort_when_blocked(h)
    assert h.proc.wait(timeout=60) == -signal.SIGABRT
    core = find_kernel_core(tmp_path, h.pid)
    assert core is not None, "no kernel core was written"
    with GdbSession(program, "-ex", f"core-file {core}", debuginfo=debuginfo,
                    cwd=tmp_path) as gdb:
        return gdb.json(command)


def by_lwp(r: dict) -> dict[int, dict]:
    return {t["lwp"]: t for t in r["threads"]}


MODES = pytest.mark.parametrize("source, debuginfo", [
    ("attach", True), ("attach", False), ("gcore", True), ("gcore", False),
    ("kcore", False), ("gdbserver", True), ("gdbserver", False)])


@MODES
def test_abba(source, debuginfo, hang, tmp_path):
    h = hang("abba")
    r = report(h, source, debuginfo, tmp_path)
    t1, t2 = h.tid("T1"), h.tid("T2")
    assert r["verdict"] == "deadlock"
    assert [sorted(c) for c in r["cycles"]] == [sorted([t1, t2])]
    threads = by_lwp(r)
    assert threads[t1]["blocked_on"]["kind"] == "mutex"
    assert threads[t1]["blocked_on"]["address"] == h.waits[t1] == h.locks["B"]
    assert threads[t1]["blocked_on"]["owner_lwps"] == [t2]
    assert threads[t2]["blocked_on"]["address"] == h.locks["A"]
    assert threads[t2]["blocked_on"]["owner_lwps"] == [t1]
    assert threads[t1]["blocked_on"]["confidence"] == "exact"
    assert r["patterns"] == ["lock-order"]


@MODES
def test_three_way_cycle_with_bystanders(source, debuginfo, hang, tmp_path):
    h = hang("cycle3")
    r = report(h, source, debuginfo, tmp_path)
    cycle = {h.tid("T1"), h.tid("T2"), h.tid("T3")}
    assert [set(c) for c in r["cycles"]] == [cycle]
    threads = by_lwp(r)
    behind = {b["lwp"] for b in r["behind_cycle"]}
    bystanders = set(sum((h.roles[k] for k in h.roles if k not in ("T1", "T2", "T3", "main",
                                                                     "sleeper", "spinner")), []))
    assert bystanders and bystanders <= behind
    for lwp in bystanders:
        assert threads[lwp]["blocked_on"]["address"] == h.locks["A"]
    assert threads[h.tid("sleeper")]["state"] == "sleep"
    assert threads[h.tid("sleeper")]["blocked_on"] is None
    assert threads[h.tid("spinner")]["state"] == "running"


@MODES
def test_self_deadlock(source, debuginfo, hang, tmp_path):
    h = hang("selfdeadlock")
    r = report(h, source, debuginfo, tmp_path)
    t = h.tid("T")
    assert r["cycles"] == [[t]]
    b = by_lwp(r)[t]["blocked_on"]
    assert (b["kind"], b["address"], b["owner_lwps"]) == ("mutex", h.locks["M"], [t])
    assert r["patterns"] == ["self-deadlock"]


@MODES
def test_rwlock_writer_and_mutex(source, debuginfo, hang, tmp_path):
    h = hang("rwlock")
    r = report(h, source, debuginfo, tmp_path)
    writer, reader = h.tid("writer"), h.tid("reader")
    assert [set(c) for c in r["cycles"]] == [{writer, reader}]
    threads = by_lwp(r)
    b = threads[reader]["blocked_on"]
    assert (b["kind"], b["address"], b["owner_lwps"]) == ("rwlock", h.locks["RW"], [writer])
    assert threads[writer]["blocked_on"]["address"] == h.locks["M"]
    assert h.tid("writer2") in {x["lwp"] for x in r["behind_cycle"]}
    assert r["patterns"] == ["rwlock-order"]


@MODES
def test_join_cycle(source, debuginfo, hang, tmp_path):
    h = hang("joincycle")
    r = report(h, source, debuginfo, tmp_path)
    t1, t2 = h.tid("T1"), h.tid("T2")
    assert [set(c) for c in r["cycles"]] == [{t1, t2}]
    threads = by_lwp(r)
    assert threads[t1]["blocked_on"]["kind"] == "join"
    assert threads[t1]["blocked_on"]["owner_lwps"] == [t2]
    assert threads[h.tid("main")]["blocked_on"]["owner_lwps"] == [t1]
    assert r["patterns"] == ["join-cycle"]


def runtime_mapping(pid: int, pattern: str) -> list[tuple[int, int]]:
    """The address ranges /proc maps to the OpenMP runtime's file."""
    out = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and re.search(pattern, fields[5]):
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            out.append((lo, hi))
    return out


@MODES
@pytest.mark.parametrize("runtime", ["gomp", "llvm", "kmpc", "gompdeep", "llvmdeep"])
def test_loader_lock_and_openmp_barrier(runtime, source, debuginfo, hang, tmp_path):
    """The workers are the team whatever their depth below the runtime: the
    *deep variants reach dlsym two ordinary functions below the outlined
    function, as MKL's workers do."""
    h = hang(f"loader_{runtime}")
    runtime_file = r"/libgomp\.so" if runtime.startswith("gomp") else r"/libomp\.so"
    maps = runtime_mapping(h.pid, runtime_file)
    r = report(h, source, debuginfo, tmp_path)
    master, workers = h.tid("master"), set(h.roles["worker"])
    assert r["verdict"] == "deadlock"
    assert [set(k) for k in r["deadlocked"]] == [{master} | workers]
    threads = by_lwp(r)
    b = threads[master]["blocked_on"]
    assert b["kind"] == "omp-barrier" and set(b["owner_lwps"]) == workers
    assert b["confidence"] == "inferred"
    assert not [w for w in r["warnings"] if "counts" in w]      # no contradicting counts
    if runtime.startswith("gomp"):      # libgomp's own count agrees with the fixture's team
        assert f"{len(workers)} of {len(workers) + 1} threads not arrived" \
            in " ".join(b["evidence"])
    assert threads[master]["start_routine"]["address"] == 0     # main: no pthread_create
    for w in workers:               # started inside the runtime's file, says /proc/PID/maps
        start = threads[w]["start_routine"]["address"]
        assert any(lo <= start < hi for lo, hi in maps)
    for w in workers:
        wb = threads[w]["blocked_on"]
        assert wb["kind"] == "loader-lock" and wb["owner_lwps"] == [master]
        assert wb["address"] == h.waits[w]
        assert h.locks["rtld_global"] <= wb["address"] < h.locks["rtld_global"] + 4096
        assert "_dl_load_lock" in wb["label"]
    assert r["patterns"] == ["loader-lock-openmp"]


@MODES
@pytest.mark.parametrize("kind", ["pi", "robust", "robust-pi", "errorcheck"])
def test_mutex_variants(kind, source, debuginfo, hang, tmp_path):
    """ABBA with PI, robust and errorcheck mutexes.  With PI the kernel walks
    the chain, answers EDEADLK to the second locker and glibc parks it forever
    on a word of its own stack: its mutex must still be found."""
    h = hang("abba", kind)
    r = report(h, source, debuginfo, tmp_path)
    t1, t2 = h.tid("T1"), h.tid("T2")
    assert [sorted(c) for c in r["cycles"]] == [sorted([t1, t2])]
    threads = by_lwp(r)
    for tid, wants, holder in ((t1, "B", t2), (t2, "A", t1)):
        b = threads[tid]["blocked_on"]
        assert (b["kind"], b["address"], b["owner_lwps"]) == ("mutex", h.locks[wants], [holder])
    labels = " ".join(threads[t]["blocked_on"]["label"] for t in (t1, t2))
    assert ("priority-inheritance" in labels) == ("pi" in kind)
    if kind == "robust":
        assert "robust" in labels
    assert r["patterns"] == ["lock-order"]


@MODES
def test_chains_end_at_a_sleeping_holder(source, debuginfo, hang, tmp_path):
    h = hang("sleepholder")
    r = report(h, source, debuginfo, tmp_path)
    holder, w1 = h.tid("H"), h.tid("W1")
    assert r["verdict"] == "no-deadlock" and r["cycles"] == []
    threads = by_lwp(r)
    assert threads[holder]["state"] == "sleep" and threads[holder]["blocked_on"] is None
    assert threads[w1]["blocked_on"]["address"] == h.locks["M"]
    assert threads[w1]["blocked_on"]["owner_lwps"] == [holder]
    assert [h.tid("W3"), w1, holder] in r["chains"]
    assert [h.tid("W2"), holder] in r["chains"]
    assert r["stalled_holders"] == [{"lwp": holder, "state": "sleep"}]
    assert any("sleeps while holding" in hint for hint in r["hints"])


@pytest.mark.parametrize("name", ["abba", "loader_gomp"])
def test_run_interrupted_with_ctrl_c(name, tmp_path):
    """`run` under gdb, Ctrl-C once the fixture says it hangs, then the graph."""
    h = Hung(proc=None, pid=0)
    with GdbSession(str(DEADLOCK / name), debuginfo=False, cwd=tmp_path) as gdb:
        gdb.child.sendline("run")
        gdb.child.expect_exact("ready", timeout=60)
        for line in gdb.child.before.splitlines():
            learn(h, line)
        gdb.child.sendintr()
        stopped = gdb._wait()
        assert "SIGINT" in stopped
        r = gdb.json("deadlock-graph --json")
        again = gdb.cmd("info program")
    assert "SIGINT" in again                               # still stopped where it was
    assert r["verdict"] == "deadlock"
    expected = {h.tid("T1"), h.tid("T2")} if name == "abba" \
        else {h.tid("master"), *h.roles["worker"]}
    assert {lwp for k in r["deadlocked"] for lwp in k} == expected


@pytest.mark.negative
@pytest.mark.parametrize("source", ["attach", "gcore", "kcore"])
def test_healthy_program_has_no_cycle(source, hang, tmp_path):
    h = hang("healthy")
    r = report(h, source, False, tmp_path)
    assert r["verdict"] == "no-deadlock" and r["cycles"] == [] and r["deadlocked"] == []


def test_text_and_dot_for_the_loader_case(hang, tmp_path):
    h = hang("loader_gomp")
    dot = tmp_path / "g.dot"
    with GdbSession(str(DEADLOCK / "loader_gomp"), "-ex", f"attach {h.pid}", debuginfo=False,
                    cwd=tmp_path) as gdb:
        gdb.cmd("thread 2")
        before = gdb.cmd("thread")
        text = gdb.cmd(f"deadlock-graph --dot {dot}")
        assert gdb.cmd("thread") == before                 # selection restored
        assert h.proc.poll() is None                       # never resumed to an exit
    assert_no_traceback(text)
    assert text.startswith("deadlock-graph: DEADLOCK")
    assert "glibc loader lock _rtld_global._dl_load_lock" in text and "scenario:" in text
    graph = dot.read_text()
    assert graph.startswith("digraph") and "color=red" in graph
    assert f"t{h.tid('master')}" in graph


# Refused by gdbext's argument parser, before any dependency is imported:
# the vacuity check's packages-missing run leaves these out (tests/conftest.py).
PARSER = pytest.mark.negative(answered_without_packages=True)


@pytest.mark.negative
@pytest.mark.parametrize("command, needle", [
    ("deadlock-graph", "no process or core"),
    pytest.param("deadlock-graph --max-frames 0", "--max-frames: must be 1 or more",
                 marks=PARSER),
    pytest.param("deadlock-graph --bogus", "unrecognized arguments", marks=PARSER),
])
def test_usage_errors(command, needle, tmp_path):
    with GdbSession(cwd=tmp_path) as gdb:
        assert_one_error_line(gdb.cmd(command), "deadlock-graph", needle)


def child_hang(h: Hung) -> Hung:
    """The fork child of `orphan fork`, as a Hung of its own."""
    child = h.tid("child")
    return Hung(h.proc, child, {"main": [child]}, h.locks, {t: a for t, a in h.waits.items()})


@MODES
def test_lock_inherited_across_fork(source, debuginfo, hang, tmp_path):
    """The child waits for a mutex that a thread of the parent held when the
    parent forked: its __owner names a TID that is no thread of the child
    but a live thread of the parent (/proc/PPID/task)."""
    h = hang("orphan", "fork")
    holder, child = h.tid("holder"), h.tid("child")
    assert os.path.isdir(f"/proc/{h.pid}/task/{holder}")
    assert not os.path.isdir(f"/proc/{child}/task/{holder}")
    c = child_hang(h)
    if source == "kcore":
        os.kill(child, signal.SIGABRT)      # the parent reaps it and says so
        line = h.proc.stdout.readline()
        assert line.startswith("child-exit"), line
        core = find_kernel_core(tmp_path, child)
        if not kernel_cores_land_in_cwd() or core is None:
            pytest.skip("no kernel core in the cwd")
        with GdbSession(str(DEADLOCK / "orphan"), "-ex", f"core-file {core}",
                        debuginfo=debuginfo, cwd=tmp_path) as gdb:
            r = gdb.json("deadlock-graph --json")
    else:
        r = report(c, source, debuginfo, tmp_path)
    assert r["verdict"] == "deadlock" and r["cycles"] == []
    b = by_lwp(r)[child]["blocked_on"]
    assert (b["kind"], b["address"], b["owner_lwps"]) == ("mutex", h.locks["M"], [holder])
    assert b["address"] == h.waits[child]
    assert b["confidence"] == "exact"
    (o,) = r["orphaned"]
    assert (o["lwp"], o["owner"]) == (child, holder)
    if source != "attach":          # a core names the parent but cannot tell fork from exit
        assert o["fate"] == "gone" and f"parent {h.pid}" in o["evidence"]
        assert r["patterns"] == ["lock-owner-gone"]
    else:
        assert o["fate"] == "fork-parent" and f"/proc/{h.pid}/task/{holder}" in o["evidence"]
        assert r["patterns"] == ["fork-inherited-lock"]
        assert any("pthread_atfork" in hint for hint in r["hints"])


@MODES
def test_lock_held_by_an_exited_thread(source, debuginfo, hang, tmp_path):
    h = hang("orphan", "exit")
    holder, main = h.tid("holder"), h.tid("main")
    assert not os.path.isdir(f"/proc/{h.pid}/task/{holder}")     # it exited
    r = report(h, source, debuginfo, tmp_path)
    assert r["verdict"] == "deadlock" and r["cycles"] == []
    b = by_lwp(r)[main]["blocked_on"]
    assert (b["kind"], b["address"], b["owner_lwps"]) == ("mutex", h.locks["M"], [holder])
    (o,) = r["orphaned"]
    assert (o["lwp"], o["owner"]) == (main, holder)
    assert o["fate"] == ("exited" if source == "attach" else "gone")
    assert r["patterns"] == (["lock-owner-exited"] if source == "attach"
                             else ["lock-owner-gone"])


def test_fork_inherited_text(hang, tmp_path):
    h = hang("orphan", "fork")
    holder, child = h.tid("holder"), h.tid("child")
    dot = tmp_path / "g.dot"
    with GdbSession(str(DEADLOCK / "orphan"), "-ex", f"attach {child}", debuginfo=False,
                    cwd=tmp_path) as gdb:
        text = gdb.cmd(f"deadlock-graph --dot {dot}")
        gdb.cmd("detach")
    graph = dot.read_text()
    assert f"t{holder} [shape=box, style=dashed" in graph and "fork-parent" in graph
    assert_no_traceback(text)
    assert text.startswith("deadlock-graph: DEADLOCK")
    assert f"held by LWP {holder}, no thread of this process" in text
    assert f"live thread of the parent process {h.pid}" in text
    assert "pthread_atfork" in text and "no owner is recorded" not in text


@MODES
def test_semaphores_make_the_verdict_unknown(source, debuginfo, hang, tmp_path):
    """sem_wait, sem_timedwait and sem_clockwait: each a semaphore at the
    fixture's sem_t, with its value; the untimed wait has no owner to find,
    so the verdict is unknown, never no-deadlock."""
    h = hang("semwait")
    r = report(h, source, debuginfo, tmp_path)
    threads = by_lwp(r)
    for role, sem, timed in (("waiter", "S", False), ("timed", "T", True),
                             ("clock", "T", True)):
        tid = h.tid(role)
        b = threads[tid]["blocked_on"]
        assert (b["kind"], b["address"], b["timed"]) == ("semaphore", h.locks[sem], timed)
        assert b["address"] == h.waits[tid]
        assert "value 0" in b["label"] and b["owner_lwps"] == []
        assert b["confidence"] == "inferred"
    assert r["verdict"] == "unknown"
    assert [u["lwp"] for u in r["unknown"]] == [h.tid("waiter")]


@MODES
@pytest.mark.parametrize("mode", ["private", "shared"])
def test_a_lone_waiter_nobody_can_wake(mode, source, debuginfo, hang, tmp_path):
    """The process's only thread waits on a semaphore nobody posts (its
    reporter thread has exited: /proc shows one task).  Private: only a
    thread of this process could post it, and there is none -- a deadlock,
    though no owner can be named.  Process-shared: another process may post
    it, so the verdict stays unknown."""
    h = hang("lonewait", mode)
    deadline = time.monotonic() + 10
    while len(os.listdir(f"/proc/{h.pid}/task")) != 1:
        assert time.monotonic() < deadline, os.listdir(f"/proc/{h.pid}/task")
        time.sleep(0.02)
    main = h.tid("main")
    r = report(h, source, debuginfo, tmp_path)
    assert [t["lwp"] for t in r["threads"]] == [main]
    b = by_lwp(r)[main]["blocked_on"]
    assert (b["kind"], b["address"], b["owner_lwps"]) == ("semaphore", h.locks["S"], [])
    assert b["address"] == h.waits[main]
    if mode == "private":
        assert (r["verdict"], r["all_blocked"], r["patterns"]) == \
            ("deadlock", True, ["all-threads-blocked"])
        assert [u["lwp"] for u in r["unknown"]] == [main]     # still no owner to name
    else:
        assert (r["verdict"], r["all_blocked"]) == ("unknown", False)
