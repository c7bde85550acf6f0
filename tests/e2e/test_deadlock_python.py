"""deadlock-graph on real CPython processes and cores: the GIL, threading
locks and joins as resources (issue 15 parts 4 and 5).

Truth comes from the programs themselves (threading.get_native_id() and the
line each thread blocks on, printed before it blocks), from the kernel
(/proc/PID/task/N/syscall while gdb holds the process stopped) and, for the
pyenv build whose libpython carries DWARF, from gdb's own reading of
``_PyRuntime.ceval.gil`` through that debug info -- never from gdbext.
Debian's build of gdb's Python version (/usr/bin/python3.11 on Debian 12,
python3.13 on 13; interpreter in the executable) and pyenv's 3.11 (shared
libpython).
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.gdb_session import GdbSession, assert_no_traceback
from tests.e2e.test_py_stacks import DEBIAN, SCRIPTS, _start, _stop, need_debian
from tests.host import FIXTURES, GDB, find_kernel_core, interpreter_params, pyenv_python, \
    kernel_cores_land_in_cwd, kernel_futex_view, run, unlimited_core

CYCLES = int(os.environ.get("GDBEXT_GIL_BUSY_STOPS", "22"))


def _builds():
    return interpreter_params()


def _gcore(pid: int, core: Path) -> None:
    run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
         "-ex", f"attach {pid}", "-ex", f"gcore {core}", "-ex", "detach"])


def _session(how: str, python: Path, proc, tmp_path: Path, debuginfo=False):
    """A gdb on the process: attached, on a gcore core, or on the core the
    kernel wrote when SIGQUIT killed it."""
    if how == "live":
        return GdbSession(str(python), "-ex", f"attach {proc.pid}", debuginfo=debuginfo)
    if how == "gcore":
        core = tmp_path / "py.core"
        _gcore(proc.pid, core)
        _stop(proc)
        return GdbSession(str(python), str(core), debuginfo=debuginfo)
    proc.send_signal(signal.SIGQUIT)
    assert proc.wait(timeout=60) == -signal.SIGQUIT
    core = find_kernel_core(tmp_path, proc.pid)
    assert core is not None
    return GdbSession(str(python), str(core), debuginfo=debuginfo)


def _launch(python: Path, script: str, *args: str, lines: int, tmp_path: Path, how: str):
    if how == "kernel-core":
        if not kernel_cores_land_in_cwd():
            pytest.skip("core_pattern does not write kernel cores into the cwd")
        out = tmp_path / "out.txt"
        with open(out, "w") as fh:
            proc = subprocess.Popen([str(python), str(SCRIPTS / script), *args], stdout=fh,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=tmp_path, preexec_fn=unlimited_core)
        deadline = time.monotonic() + 30
        while out.read_text().count("\n") < lines:
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.05)
        time.sleep(0.3)
        facts = {m["thread"]: {"lwp": int(m["lwp"]),
                               "line": int(m["line"]) if m["line"] else None}
                 for m in re.finditer(r"thread=(?P<thread>\w+) lwp=(?P<lwp>\d+)"
                                      r"(?: line=(?P<line>\d+))?", out.read_text())}
        return proc, facts
    return _start(python, script, *args, lines=lines, cwd=tmp_path)


def _graph(python: Path, script: str, *args: str, lines: int, tmp_path: Path, how: str):
    """(deadlock-graph's JSON, its text, the program's facts) of SCRIPT run by
    PYTHON, examined HOW (live, gcore or kernel-core)."""
    proc, facts = _launch(python, script, *args, lines=lines, tmp_path=tmp_path, how=how)
    try:
        with _session(how, python, proc, tmp_path) as gdb:
            result = gdb.json("deadlock-graph --json")
            text = gdb.cmd("deadlock-graph")
    finally:
        _stop(proc) if proc.poll() is None else None
    assert_no_traceback(text)
    return result, text, facts


def _by_lwp(result: dict) -> dict[int, dict]:
    return {t["lwp"]: t for t in result["threads"]}


def _gil_library(tmp_path: Path) -> Path:
    lib = tmp_path / "gil_mutex.so"
    run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(lib), str(SCRIPTS / "gil_mutex.c"),
         "-lpthread"])
    return lib


@pytest.mark.parametrize("how", ["live", "live-debuginfo", "gcore", "kernel-core"])
@pytest.mark.parametrize("python", _builds())
def test_gil_mutex_is_a_deadlock(python, how, tmp_path):
    """T1 holds the GIL and, through ctypes.PyDLL, blocks on mutex M; a C
    thread holds M and waits in PyGILState_Ensure: a cycle through the GIL,
    with the fix that fits."""
    lib = _gil_library(tmp_path)
    debuginfo = how == "live-debuginfo"         # glibc's debug info, where installed
    how = how.replace("-debuginfo", "")
    proc, facts = _launch(python, "gil_mutex.py", str(lib), lines=2, tmp_path=tmp_path,
                          how=how)
    try:
        time.sleep(1.5)             # the C thread's sleep(1), then PyGILState_Ensure
        dot = tmp_path / "gil.dot"
        with _session(how, python, proc, tmp_path, debuginfo=debuginfo) as gdb:
            result = gdb.json(f"deadlock-graph --json --dot {dot}")
            text = gdb.cmd("deadlock-graph")
    finally:
        _stop(proc) if proc.poll() is None else None
    assert_no_traceback(text)
    main, cthread = facts["main"]["lwp"], facts["cthread"]["lwp"]
    assert result["verdict"] == "deadlock"
    assert [sorted(c) for c in result["cycles"]] == [sorted([main, cthread])]
    assert result["patterns"] == ["gil-lock"]
    by = _by_lwp(result)
    m, c = by[main]["blocked_on"], by[cthread]["blocked_on"]
    assert (m["kind"], m["owner_lwps"], m["confidence"]) == ("mutex", [cthread], "exact")
    assert (c["kind"], c["owner_lwps"], c["confidence"]) == ("gil", [main], "exact")
    version = run([str(python), "-c", "import platform; print(platform.python_version())"]
                  ).stdout.strip()          # the interpreter's own word
    assert c["label"] == f"the GIL (CPython {version})"
    assert not c["timed"]           # take_gil's 5 ms slices do not end the wait
    # the Python thread's wait site is its Python line, then the C function
    assert by[main]["wait_site"] == \
        f"{SCRIPTS / 'gil_mutex.py'}:{facts['main']['line']} in <module> [native: lock_m]"
    assert by[cthread]["wait_site"] == "c_thread"
    hint = " ".join(result["hints"])
    for needle in ("Py_BEGIN_ALLOW_THREADS", "ctypes.CDLL", "PyDLL", "gil_scoped_release",
                   "never take the GIL while holding a lock"):
        assert needle in hint, hint
    assert result["python"]["gil"]["owner"] == main
    assert f"waits for the GIL (CPython {version})" in text
    graph = dot.read_text()
    gil = re.search(r'(rgil_[0-9a-f]+) \[shape=ellipse, label="the GIL \(CPython '
                    + re.escape(version), graph)
    assert gil, graph
    assert f"t{cthread} -> {gil[1]} [label=waits, color=red" in graph
    assert f'{gil[1]} -> t{main} [label="held by", color=red' in graph


@pytest.mark.parametrize("how", ["live", "gcore", "kernel-core"])
@pytest.mark.parametrize("python", _builds())
def test_python_abba_is_a_cycle_with_inferred_edges(python, how, tmp_path):
    result, text, facts = _graph(python, "locks.py", "abba", lines=4, tmp_path=tmp_path,
                                 how=how)
    t1, t2, main = (facts[n]["lwp"] for n in ("t1", "t2", "main"))
    assert result["verdict"] == "deadlock"
    assert [sorted(c) for c in result["cycles"]] == [sorted([t1, t2])]
    assert result["patterns"] == ["python-lock-order"]
    by = _by_lwp(result)
    script = SCRIPTS / "locks.py"
    for me, other, name, fn in ((t1, t2, "t1", "first"), (t2, t1, "t2", "second")):
        b = by[me]["blocked_on"]
        assert (b["kind"], b["owner_lwps"], b["confidence"]) == ("py-lock", [other], "inferred")
        # a lock with a sem_t (3.11-3.13.0), or a PyMutex (Debian's 3.13.5)
        assert any("futex wait on the lock's sem_t" in e or "parked on the lock's PyMutex" in e
                   for e in b["evidence"]), b
        # the holder's evidence names the holder's own line, which it printed
        line = facts["t2" if name == "t1" else "t1"]["line"]
        fn_other = "second" if fn == "first" else "first"
        assert any(f"active 'with' at {script}:{line} in {fn_other}" in e
                   for e in b["evidence"]), b
        assert by[me]["wait_site"] == f"{script}:{facts[name]['line']} in {fn}"
    join = by[main]["blocked_on"]
    assert (join["kind"], join["owner_lwps"], join["confidence"]) == ("py-join", [t1], "exact")
    assert result["behind_cycle"] == [{"lwp": main, "cycle": 0}]
    assert "[inferred]" in text and "threading.Lock 0x" in text


@pytest.mark.parametrize("python", _builds())
def test_rlock_owner_exact_and_join(python, tmp_path):
    proc, facts = _start(python, "locks.py", "rlock", lines=4, cwd=tmp_path)
    try:
        with GdbSession(str(python), "-ex", f"attach {proc.pid}", debuginfo=False) as gdb:
            result = gdb.json("deadlock-graph --json")
    finally:
        _stop(proc)
    by = _by_lwp(result)
    owner, waiter, main = (facts[n]["lwp"] for n in ("owner", "waiter", "main"))
    b = by[waiter]["blocked_on"]
    assert (b["kind"], b["owner_lwps"], b["confidence"]) == ("py-rlock", [owner], "exact")
    assert any("rlock_owner = pthread" in e for e in b["evidence"])
    j = by[main]["blocked_on"]
    assert (j["kind"], j["owner_lwps"], j["confidence"]) == ("py-join", [owner], "exact")
    assert result["verdict"] == "no-deadlock"      # the owner sleeps: it will go on
    assert by[owner]["state"] == "sleep"
    assert by[owner]["wait_site"] == f"{SCRIPTS / 'locks.py'}:{facts['owner']['line']} in owner"


def test_unknown_owners_make_the_verdict_unknown(tmp_path):
    """A real ABBA taken with acquire() by hand: no frame shows who holds the
    locks, so their owners are unknown -- yet every thread (main joins t1)
    waits for good, so the verdict is a deadlock (all-threads-blocked), the
    unknown owners still listed with why; never no-deadlock."""
    need_debian()
    proc, facts = _start(DEBIAN, "locks.py", "manual", lines=4, cwd=tmp_path)
    try:
        with GdbSession(str(DEBIAN), "-ex", f"attach {proc.pid}", debuginfo=False) as gdb:
            result = gdb.json("deadlock-graph --json")
            text = gdb.cmd("deadlock-graph")
    finally:
        _stop(proc)
    assert (result["verdict"], result["all_blocked"], result["patterns"]) == \
        ("deadlock", True, ["all-threads-blocked"])
    assert len(result["threads"]) == 3 and result["cycles"] == []
    unknown = {u["lwp"]: u["kind"] for u in result["unknown"]}
    assert unknown == {facts["t1"]["lwp"]: "py-lock", facts["t2"]["lwp"]: "py-lock"}
    assert text.startswith("deadlock-graph: DEADLOCK - all 3 thread(s)")
    assert "threading.Lock records no owner" in text


@pytest.mark.parametrize("python", _builds())
def test_busy_gil_no_false_deadlock_no_wrong_exact(python, tmp_path):
    """Threads contending for the GIL, a Lock and an RLock, stopped and
    examined CYCLES times: never a deadlock; every exact owner is a task of
    the process not asleep on the word its waiters sleep on; with DWARF
    (pyenv's libpython) the GIL owner is what gdb reads from
    _PyRuntime.ceval.gil itself."""
    proc, facts = _start(python, "gil_busy.py", lines=9, cwd=tmp_path)
    # pyenv's libpython carries DWARF (not Debian's, not the stripped copies):
    # gdb reads the GIL itself -- 3.11 _PyRuntime.ceval.gil, 3.12+ the main
    # interpreter's ceval.gil pointer; 3.11/3.12 wrap the fields in _Py_atomic_*
    dwarf = python != DEBIAN and "pystripped" not in str(python)
    minor = int(python.name[len("python3."):])
    gil = "_PyRuntime.ceval.gil" if minor == 11 else "(*_PyRuntime.interpreters.main->ceval.gil)"
    atomic = "._value" if minor <= 12 else ""
    seen = {"gil-exact": 0}
    try:
        with GdbSession(str(python), "-ex", f"attach {proc.pid}", debuginfo=False,
                        timeout=120) as gdb:
            for n in range(CYCLES):
                result = gdb.json("deadlock-graph --json")
                tasks, waits = kernel_futex_view(proc.pid)
                assert result["verdict"] != "deadlock", result
                seen[result["verdict"]] = seen.get(result["verdict"], 0) + 1
                assert result["cycles"] == [] and result["orphaned"] == []
                if dwarf:
                    locked = int(gdb.cmd(f"output (int){gil}.locked{atomic}"))
                    holder = int(gdb.cmd(
                        f"output (long)((PyThreadState *){gil}.last_holder{atomic})"
                        "->native_thread_id"))
                for t in result["threads"]:
                    b = t["blocked_on"]
                    if b is None or not b["kind"].startswith(("gil", "py-")):
                        continue
                    assert t["lwp"] in waits and b["address"] is not None
                    if not b["owner_lwps"]:
                        key = "released" if b["released"] else f"unknown-{b['kind']}"
                        seen[key] = seen.get(key, 0) + 1
                        if os.environ.get("GDBEXT_DEBUG_BUSY"):
                            print(b)
                        continue
                    (owner,) = b["owner_lwps"]
                    assert owner in tasks and owner != t["lwp"], b
                    # the owner is not asleep where its waiter sleeps
                    assert waits.get(owner) != waits[t["lwp"]], (b, waits)
                    kind = b["kind"].replace("py-", "")
                    seen[f"{kind}-{b['confidence']}"] = seen.get(
                        f"{kind}-{b['confidence']}", 0) + 1
                    if b["kind"] == "gil" and b["confidence"] == "exact" and dwarf:
                        assert (locked, holder) == (1, owner), (b, locked, holder)
                    assert b["kind"] != "py-lock" or b["confidence"] == "inferred"
                gdb.cmd("continue &")
                time.sleep(0.02 + 0.03 * (n % 4))
                gdb.cmd("interrupt")
                deadline = time.monotonic() + 5     # the stop lands asynchronously
                while "(running)" in gdb.cmd("info threads") and time.monotonic() < deadline:
                    time.sleep(0.05)
            gdb.cmd("detach")
        assert proc.poll() is None
    finally:
        _stop(proc)
    print(python, seen)
    assert seen["gil-exact"] > 0        # the GIL was seen held and waited for


@pytest.mark.negative
def test_not_python_costs_nothing(tmp_path):
    """A process without _PyRuntime: the provider is never built and no
    memory of the process is read for it."""
    binary = FIXTURES / "deadlock" / "abba"
    if not binary.exists():
        pytest.skip("fixtures not built")
    proc = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        for line in proc.stdout:
            if line.strip() == "ready":
                break
        with GdbSession(str(binary), "-ex", f"attach {proc.pid}", debuginfo=False) as gdb:
            result = gdb.json("deadlock-graph --json")
            out = gdb.cmd("python import gdbext.target as T; from gdbext.commands import "
                          "deadlock_graph as D; n = [0]; r = T.read_bytes; "
                          "T.read_bytes = lambda a, l: (n.__setitem__(0, n[0] + 1), r(a, l))[1]; "
                          "w = []; print('runtime', D._python_runtime(w), 'reads', n[0], w); "
                          "T.read_bytes = r")
    finally:
        proc.kill()
        proc.wait()
    assert result["python"] is None
    assert not any("Python" in w for w in result["warnings"])
    assert "runtime None reads 0 []" in out, out


@pytest.mark.parametrize("mode", ["notify", "semaphore"])
@pytest.mark.parametrize("how", ["live", "kernel-core"])
@pytest.mark.parametrize("python", _builds())
def test_condition_waits_name_what_they_wait_for(python, how, mode, tmp_path):
    """Event.wait, Queue.get, Condition.wait, Barrier.wait (and
    Semaphore.acquire) all park in Condition.wait on a waiter lock the thread
    took itself: each is named by the object it waits for -- its id() as the
    program printed it -- with no owner.  Only the semaphore makes the
    verdict unknown: the others end when any thread notifies them, as a
    condition variable's wait does."""
    waits = 5 if mode == "semaphore" else 4
    result, text, facts = _graph(python, "waits.py", mode, lines=waits + 1, tmp_path=tmp_path,
                                 how=how)
    objects = dict(re.findall(r"thread=(\w+) lwp=\d+ line=\d+ obj=(0x[0-9a-f]+)",
                              (tmp_path / "out.txt").read_text()))
    assert len(objects) == waits, objects
    by = _by_lwp(result)
    names = {"event": "threading.Event", "queue": "queue.Queue", "cond": "threading.Condition",
             "barrier": "threading.Barrier", "semaphore": "threading.Semaphore"}
    for name, obj in objects.items():
        b = by[facts[name]["lwp"]]["blocked_on"]
        kind = "py-semaphore" if name == "semaphore" else "py-condition"
        assert (b["kind"], b["owner_lwps"], b["address"]) == (kind, [], int(obj, 16)), b
        assert b["label"].startswith(f"{names[name]} {obj} ("), b
    assert result["verdict"] == ("unknown" if mode == "semaphore" else "no-deadlock")
    assert [u["kind"] for u in result["unknown"]] == (["py-semaphore"] if mode == "semaphore"
                                                     else [])


@pytest.mark.parametrize("mode", ["rlock", "lock"])
@pytest.mark.parametrize("how", ["live", "gcore"])
@pytest.mark.parametrize("python", _builds())
def test_lock_inherited_across_fork(python, how, mode, tmp_path):
    """A thread of the parent holds a module-level RLock (or Lock) when the
    main thread forks; the child's `with LOCK:` waits forever.  Live, the
    owner is the parent's thread -- the native id the parent printed: an
    RLock's from its rlock_owner (exact), a Lock's from the parent's own
    frames (its 'with', inferred) -- and the verdict a deadlock with Python's
    fork fixes.  From a core there is no parent to ask: an RLock's owner is
    still known to be gone -- its descriptor (glibc's, copied into the child)
    reads tid 0 and never exited -- a deadlock on a thread of the parent whose
    PID the core records; a Lock records no owner: unknown."""
    proc, facts = _start(python, "fork_lock.py", *(["lock"] if mode == "lock" else []),
                         lines=2, cwd=tmp_path)
    said = (tmp_path / "out.txt").read_text()
    owner = int(re.search(r"owner lwp=(\d+)", said).group(1))
    child = int(re.search(r"thread=child lwp=\d+ line=\d+ pid=(\d+)", said).group(1))
    try:
        if how == "live":
            with GdbSession(str(python), "-ex", f"attach {child}", debuginfo=False) as gdb:
                result = gdb.json("deadlock-graph --json")
                text = gdb.cmd("deadlock-graph")
        else:
            core = tmp_path / "child.core"
            _gcore(child, core)
            with GdbSession(str(python), str(core), debuginfo=False) as gdb:
                result = gdb.json("deadlock-graph --json")
                text = gdb.cmd("deadlock-graph")
    finally:
        os.kill(child, signal.SIGKILL)
        _stop(proc)
    assert_no_traceback(text)
    b = _by_lwp(result)[facts["child"]["lwp"]]["blocked_on"]
    assert b["kind"] == f"py-{mode}"
    if mode == "rlock":
        assert any("descriptor here reads tid 0" in e for e in b["evidence"]), b
    if how == "live":      # the parent, asked, names the thread: a fork
        assert any(f"in the parent {proc.pid}" in e for e in b["evidence"]), b
        assert result["verdict"] == "deadlock"
        assert (b["owner_lwps"], b["confidence"]) == \
            ([owner], "exact" if mode == "rlock" else "inferred")
        assert result["orphaned"] == [{"lwp": facts["child"]["lwp"], "owner": owner,
                                       "fate": "fork-parent",
                                       "evidence": result["orphaned"][0]["evidence"]}]
        assert result["patterns"] == ["python-fork-inherited-lock"]
        assert "os.register_at_fork" in " ".join(result["hints"])
    elif mode == "rlock":   # the parent's TID is nowhere in the child's core; its PID is
        assert b["owner_lwps"] == [] and b["ended"]["fate"] == "fork-parent", b
        assert f"the parent was process {proc.pid}" in b["ended"]["evidence"], b
        assert "no EXITING bit" in b["ended"]["evidence"], b
        assert result["verdict"] == "deadlock" and result["unknown"] == []
        assert [(o["lwp"], o["owner"], o["fate"]) for o in result["orphaned"]] == \
            [(facts["child"]["lwp"], None, "fork-parent")]
        assert result["patterns"] == ["python-fork-inherited-lock"]
        assert "os.register_at_fork" in " ".join(result["hints"])
        assert "held by a thread of the parent process" in text, text
    else:   # a Lock records no owner and there is no parent to ask -- but the
        # child's one thread waits for good: a deadlock all the same
        assert b["owner_lwps"] == [] and [u["kind"] for u in result["unknown"]] == ["py-lock"]
        assert (result["verdict"], result["all_blocked"], result["patterns"]) == \
            ("deadlock", True, ["all-threads-blocked"])


@pytest.mark.parametrize("how", ["live", "gcore", "kernel-core"])
@pytest.mark.parametrize("python", _builds())
def test_rlock_whose_owner_exited(python, how, tmp_path):
    """The worker takes an RLock and returns; the main thread joins it, then
    waits on the RLock forever.  The owner's descriptor says it ended (tid 0
    with EXITING set, or -1 once joined, as glibc leaves it on each release
    here): a deadlock on an owner that exited, with Python's fix -- never a
    fork story, never unknown.  Truth: the program printed who took it and
    joined it before blocking."""
    result, text, facts = _graph(python, "owner_exited.py", lines=2, tmp_path=tmp_path,
                                 how=how)
    owner = int(re.search(r"owner lwp=(\d+)", (tmp_path / "out.txt").read_text()).group(1))
    assert owner not in _by_lwp(result)             # joined before main blocks
    b = _by_lwp(result)[facts["main"]["lwp"]]["blocked_on"]
    assert b["kind"] == "py-rlock" and b["owner_lwps"] == [], b
    assert b["ended"]["fate"] == "exited", b
    assert re.search(r"tid 0 and its cancelhandling has the EXITING bit|tid -1 \(pthread_join",
                     b["ended"]["evidence"]), b
    assert result["verdict"] == "deadlock" and result["unknown"] == []
    assert [(o["lwp"], o["owner"], o["fate"]) for o in result["orphaned"]] == \
        [(facts["main"]["lwp"], None, "exited")]
    assert result["patterns"] == ["python-lock-owner-exited"]
    assert "with LOCK:" in " ".join(result["hints"])
    assert "fork" not in " ".join(result["hints"])
    assert f"owner_exited.py:{facts['main']['line']}" in text


@pytest.mark.negative
def test_a_version_gdbext_does_not_read_is_one_line_native_complete(tmp_path):
    """pyenv's CPython 3.10 (no Py_Version): py-stacks and deadlock-graph say
    so in one line naming 3.10, and the native analysis is whole -- every
    thread of the Lock ABBA classified from its futex wait, as the kernel
    shows it."""
    old = pyenv_python("3.10")
    if old is None:
        pytest.skip("no pyenv 3.10")
    proc, facts = _start(old, "locks.py", "abba", lines=4, cwd=tmp_path)
    try:
        with GdbSession(str(old), "-ex", f"attach {proc.pid}", debuginfo=False) as gdb:
            stacks = gdb.cmd("py-stacks --native 1")
            result = gdb.json("deadlock-graph --json")
            tasks, waits = kernel_futex_view(proc.pid)
    finally:
        _stop(proc)
    assert_no_traceback(stacks)
    [line] = [w for w in result["warnings"] if "Python" in w]
    # named by the object that exports _PyRuntime: libpython3.10.so
    assert re.search(r"CPython 3\.10 \(so named by libpython3\.10\.so", line), line
    assert "3.11 to 3.14" in line
    assert "CPython 3.10" in stacks and "_PyEval_EvalFrameDefault" in stacks   # native frames
    blocked = {t["lwp"]: t["blocked_on"] for t in result["threads"] if t["blocked_on"]}
    assert set(blocked) == set(waits) and len(blocked) == 3
    for lwp, b in blocked.items():
        assert b["address"] == waits[lwp], (b, waits)
    # no Python owners, but every thread sleeps for good: native analysis alone says so
    assert (result["verdict"], result["all_blocked"]) == ("deadlock", True)


@pytest.mark.parametrize("python", _builds())
def test_an_rlock_reentered_from_a_signal_handler(python, tmp_path):
    """SIGALRM's handler takes the RLock the main thread's acquire() was
    waiting for (as in CPython gh-144706): the main thread then waits for a
    lock it owns.  A self-deadlock on an RLock, with the fix for signal
    handlers -- not the pthread advice."""
    proc, facts = _start(python, "signal_rlock.py", lines=2, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 10
        while "handler acquired" not in (tmp_path / "out.txt").read_text():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
        with GdbSession(str(python), "-ex", f"attach {proc.pid}", debuginfo=False) as gdb:
            result = gdb.json("deadlock-graph --json")
    finally:
        _stop(proc)
    main = facts["main"]["lwp"]
    assert result["verdict"] == "deadlock" and result["cycles"] == [[main]]
    b = _by_lwp(result)[main]["blocked_on"]
    assert (b["kind"], b["owner_lwps"], b["confidence"]) == ("py-rlock", [main], "exact")
    assert result["patterns"] == ["python-rlock-reentered"]
    assert "signal handler" in " ".join(result["hints"])


def test_a_thread_in_another_syscall_is_named_by_it(tmp_path):
    """os.abort() in CPython: glibc raises SIGABRT with tgkill(2), and the
    kernel core keeps the thread inside it.  deadlock-graph names the call
    (gdb's syscall table) -- the name the kernel's own header gives that
    number (asm/unistd_64.h), never "syscall N"."""
    if not kernel_cores_land_in_cwd():
        pytest.skip("core_pattern does not write kernel cores into the cwd")
    header = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
    if not header.exists():
        pytest.skip(f"no {header} (linux-libc-dev) to name the call independently")
    numbers = {int(n): name for name, n in
               re.findall(r"#define __NR_(\w+) (\d+)", header.read_text())}
    proc = subprocess.Popen([str(DEBIAN), "-c", "import os; os.abort()"], cwd=tmp_path,
                            preexec_fn=unlimited_core)
    assert proc.wait(timeout=60) == -signal.SIGABRT
    core = find_kernel_core(tmp_path, proc.pid)
    assert core is not None
    with GdbSession(str(DEBIAN), str(core), debuginfo=False) as gdb:
        result = gdb.json("deadlock-graph --json")
        nr = int(gdb.cmd("python print(int(gdb.selected_frame().read_register('orig_rax')))")
                 .strip().splitlines()[-1])
    [t] = result["threads"]
    assert numbers[nr] == "tgkill"
    assert t["detail"] == numbers[nr], t


@pytest.mark.parametrize("how", ["live", "gcore"])
@pytest.mark.parametrize("python", _builds())
def test_exit_joins_a_worker_that_never_ends(python, how, tmp_path):
    """CPython gh-80961: the script ends, and the exit hook of
    concurrent.futures joins a pool worker that waits on an Event nobody sets.
    No cycle and no owner to name for the Event, but every thread waits for
    good: a deadlock (all-threads-blocked), the worker's wait site the line
    the fixture printed, in its own code, naming the stdlib function it waits
    in; the main thread joins the worker (its native id)."""
    result, text, facts = _graph(python, "pool_exit.py", lines=2, tmp_path=tmp_path, how=how)
    worker, main = facts["worker"], facts["main"]["lwp"]
    by = _by_lwp(result)
    assert (result["verdict"], result["all_blocked"], result["patterns"]) == \
        ("deadlock", True, ["all-threads-blocked"]), result["patterns"]
    assert by[worker["lwp"]]["wait_site"].startswith(
        f"{SCRIPTS / 'pool_exit.py'}:{worker['line']} in task [threading.py: "), by[worker["lwp"]]
    b = by[main]["blocked_on"]
    assert b["kind"] == "py-join" and b["owner_lwps"] == [worker["lwp"]], b
    assert "all 2 thread(s) wait without a timeout" in text
    joins = [lock for lock in result["python"]["locks"] if "(join)" in lock["name"]]
    assert [[w["lwp"] for w in j["waiters"]] for j in joins] == [[main]]    # listed once


@pytest.mark.parametrize("how", ["live", "gcore"])
@pytest.mark.parametrize("python", _builds())
def test_gil_held_across_a_join(python, how, tmp_path):
    """CPython gh-121463's shape: the thread holding the GIL joins a C thread
    that waits for the GIL in PyGILState_Ensure.  A cycle GIL <-> join, and
    the fix for it -- release the GIL before waiting (PyEval_SaveThread),
    not the lock-ordering one."""
    lib = tmp_path / "gil_join.so"
    run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(lib), str(SCRIPTS / "gil_join.c"),
         "-lpthread"])
    result, text, facts = _graph(python, "gil_join.py", str(lib), lines=2, tmp_path=tmp_path,
                                 how=how)
    main, cthread = facts["main"]["lwp"], facts["cthread"]["lwp"]
    assert [sorted(c) for c in result["cycles"]] == [sorted([main, cthread])]
    assert result["patterns"] == ["gil-join"]
    by = _by_lwp(result)
    assert (by[main]["blocked_on"]["kind"], by[main]["blocked_on"]["owner_lwps"]) == \
        ("join", [cthread])
    assert (by[cthread]["blocked_on"]["kind"], by[cthread]["blocked_on"]["owner_lwps"]) == \
        ("gil", [main])
    assert "PyEval_SaveThread" in " ".join(result["hints"])
    assert by[main]["wait_site"].startswith(
        f"{SCRIPTS / 'gil_join.py'}:{facts['main']['line']} in <module>")
