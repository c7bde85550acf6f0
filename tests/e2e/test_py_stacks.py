"""py-stacks on real CPython processes and cores, without Python debug info.

Truth comes from the programs themselves: each thread prints
threading.get_native_id() and the line it is about to block on.  Debian's
interpreter of gdb's Python version (/usr/bin/python3.11 on Debian 12,
python3.13 on 13: interpreter linked into the executable) and pyenv's
shared-libpython builds of 3.11, 3.12 and 3.13 when pyenv has them.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.gdb_session import GdbSession, assert_no_traceback, assert_one_error_line
from tests.host import (FIXTURES, GDB, REPO, debian_python, find_kernel_core, host_has,
                        interpreter_params, libpython_with_dwarf, pyenv_python, run,
                        unlimited_core)

SCRIPTS = REPO / "fixtures" / "python"
DEBIAN = debian_python()
DEBIAN_ID = f"debian-{DEBIAN.name[len('python'):]}-static"
_pyenv = pyenv_python


def need_debian() -> None:
    if not DEBIAN.exists():
        pytest.skip(f"{DEBIAN} (Debian's build of gdb's Python) is not installed")


def _pythons():
    return interpreter_params()


def _start(python: Path, script: str, *args: str, lines: int, cwd: Path):
    out = cwd / "out.txt"
    fh = open(out, "w")
    proc = subprocess.Popen([str(python), str(SCRIPTS / script), *args], stdout=fh,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd)
    deadline = time.monotonic() + 30
    while out.read_text().count("\n") < lines:
        assert proc.poll() is None, out.read_text()
        assert time.monotonic() < deadline, out.read_text()
        time.sleep(0.05)
    time.sleep(0.3)                 # let the last thread reach its sleep
    facts = {m["thread"]: {"lwp": int(m["lwp"]), "line": int(m["line"]) if m["line"] else None}
             for m in re.finditer(r"thread=(?P<thread>\w+) lwp=(?P<lwp>\d+)"
                                  r"(?: line=(?P<line>\d+))?", out.read_text())}
    return proc, facts


def _stop(proc):
    proc.kill()
    proc.wait()


def _check_threads(result: dict, facts: dict, script: str) -> None:
    by_lwp = {t["lwp"]: t for t in result["threads"]}
    for name, fact in facts.items():
        t = by_lwp[fact["lwp"]]
        top = t["python"][0]
        assert top["file"].endswith(script), top
        assert top["line"] == fact["line"], (name, top)
        if name.startswith("w"):
            assert [f["function"] for f in t["python"][:2]] == ["leaf", "worker"], t["python"]
        else:
            assert top["function"] == "<module>"


@pytest.mark.parametrize("python", _pythons())
def test_live_threads(python, tmp_path):
    proc, facts = _start(python, "threads.py", "3", lines=4, cwd=tmp_path)
    try:
        with GdbSession(str(python), "-ex", f"attach {proc.pid}", debuginfo=False) as gdb:
            result = gdb.json("py-stacks --json")
            version = run([str(python), "-c", "import platform; "
                           "print(platform.python_version())"]).stdout.strip()
            assert result["python_version"] == version
            _check_threads(result, facts, "threads.py")
            text = gdb.cmd("py-stacks")
            assert_no_traceback(text)
            assert f"threads.py:{facts['main']['line']} in <module>" in text
            # --native: every run of Python frames hangs under the eval loop's
            # native frame (gdb names it from .dynsym), all of them are shown.
            native = gdb.json("py-stacks --native --json")
            for t in native["threads"]:
                lines = t["interleaved"]
                assert [x for x in lines if x["kind"] == "python"] == \
                    [dict(kind="python", **f) for f in t["python"]]
                for before, item in zip(lines, lines[1:]):
                    if item["kind"] == "python" and before["kind"] == "native":
                        assert before["function"] == "_PyEval_EvalFrameDefault", lines
    finally:
        _stop(proc)


@pytest.mark.parametrize("python", _pythons()[:2])
def test_gcore(python, tmp_path):
    proc, facts = _start(python, "threads.py", "2", lines=3, cwd=tmp_path)
    core = tmp_path / "py.core"
    try:
        run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
             "-ex", f"attach {proc.pid}", "-ex", f"gcore {core}", "-ex", "detach"])
    finally:
        _stop(proc)
    with GdbSession(str(python), str(core), debuginfo=False) as gdb:
        result = gdb.json("py-stacks --json")
        assert result["target"] == "core"
        _check_threads(result, facts, "threads.py")


@pytest.mark.parametrize("version", ["3.11", "3.12", "3.13"])
def test_shared_build_is_shared(version):
    """The builds differ where it matters: Debian's exports _PyRuntime from
    the executable, pyenv's from libpython (nm, not gdbext)."""
    need_debian()
    p = _pyenv(version)
    if p is None:
        pytest.skip(f"no pyenv {version}")
    assert "libpython" not in run(["ldd", str(DEBIAN)]).stdout
    assert "_PyRuntime" in run(["nm", "-D", str(DEBIAN)]).stdout
    assert f"libpython{version}" in run(["ldd", str(p)]).stdout
    assert "_PyRuntime" not in run(["nm", "-D", str(p)]).stdout


@pytest.mark.parametrize("python", _pythons()[:2])
def test_gil_holder(python, tmp_path):
    """ctypes.PyDLL keeps the GIL while libc's sleep blocks: that thread
    holds it, the spinning threads wait for it in take_gil."""
    proc, facts = _start(python, "gil_holder.py", lines=4, cwd=tmp_path)
    try:
        time.sleep(0.5)             # the spinners come back for the GIL
        with GdbSession(str(python), "-ex", f"attach {proc.pid}", debuginfo=False) as gdb:
            result = gdb.json("py-stacks --json")
            holder = facts["holder"]["lwp"]
            assert result["gil"]["owner"] == holder
            assert result["gil"]["owner_evidence"] == "exact"
            marks = {t["lwp"]: t["gil"] for t in result["threads"]}
            assert marks[holder] == "holds"
            waiting = {lwp for lwp, mark in marks.items() if mark == "waits"}
            spinners = {facts["spin0"]["lwp"], facts["spin1"]["lwp"], facts["main"]["lwp"]}
            assert waiting and waiting <= spinners
            top = next(t for t in result["threads"] if t["lwp"] == holder)["python"][0]
            assert (top["function"], top["line"]) == ("holder", facts["holder"]["line"])
            native = gdb.cmd("py-stacks --native")
            assert_no_traceback(native)
            assert "[holds the GIL]" in native
    finally:
        _stop(proc)


def test_busy_threads_no_false_holder(tmp_path):
    """Threads contending for the GIL, stopped three times: the holder that
    printed its line keeps it in libc's sleep (ctypes.PyDLL), so it is the
    owner every time, and no spinner is marked holding it."""
    need_debian()
    proc, facts = _start(DEBIAN, "gil_holder.py", lines=4, cwd=tmp_path)
    try:
        with GdbSession(str(DEBIAN), "-ex", f"attach {proc.pid}", debuginfo=False) as gdb:
            for _ in range(3):
                result = gdb.json("py-stacks --json")
                owner = result["gil"]["owner"]
                assert owner == facts["holder"]["lwp"], result["gil"]
                holders = [t["lwp"] for t in result["threads"] if t["gil"] == "holds"]
                assert holders == [owner]
                gdb.cmd("continue &")
                time.sleep(0.2)
                gdb.cmd("interrupt")
                time.sleep(0.2)
    finally:
        _stop(proc)


@pytest.mark.negative
def test_not_python(tmp_path):
    binary = FIXTURES / "isa_crash"
    with GdbSession(str(binary), "-ex", "break main", "-ex", "run baseline >/dev/null 2>&1",
                    debuginfo=False) as gdb:
        out = gdb.cmd("py-stacks")
        assert_one_error_line(out, "py-stacks", "not a CPython process")


@pytest.mark.negative
def test_no_process():
    with GdbSession() as gdb:
        out = gdb.cmd("py-stacks")
        assert_one_error_line(out, "py-stacks", "no process")


NUMPY = ("import numpy as np; a = np.ones((300, 300)); a @ a")


@pytest.fixture(scope="module")
def numpy_core(tmp_path_factory):
    """Debian's python3-numpy on libopenblas0-pthread, forced to the
    Piledriver kernels: SIGILL on any CPU without fma4 (/proc/cpuinfo)."""
    need_debian()
    if host_has("fma4"):
        pytest.skip("this CPU has fma4: the Piledriver kernel runs")
    if subprocess.run([str(DEBIAN), "-c", "import numpy"], capture_output=True).returncode:
        pytest.skip("Debian's python3-numpy is not installed (make setup installs it)")
    cwd = tmp_path_factory.mktemp("numpy")
    env = dict(os.environ, OPENBLAS_CORETYPE="Piledriver", OPENBLAS_NUM_THREADS="2")
    proc = subprocess.run([str(DEBIAN), "-c", f"import os; print('pid=%d' % os.getpid(), "
                           f"flush=True); {NUMPY}"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=unlimited_core)
    assert proc.returncode == -signal.SIGILL, proc
    core = find_kernel_core(cwd, int(re.search(r"pid=(\d+)", proc.stdout).group(1)))
    if core is None:
        pytest.skip("no kernel core written (core_pattern)")
    return core


def _plain_cut_threads(bt: str) -> set[int]:
    """LWPs whose plain-gdb backtrace ends in a pc of 0 (the kernel reuses rsp)."""
    cut = set()
    for block in re.split(r"\n(?=Thread \d+ )", bt):
        m = re.match(r"Thread \d+ \(Thread 0x[0-9a-f]+ \(LWP (\d+)\)\)", block)
        if m and re.search(r"^#\d+\s+0x0+ in \?\? \(\)", block, re.M):
            cut.add(int(m.group(1)))
    return cut


def test_numpy_sigill_python_line(numpy_core):
    """The Python frame of the SIGILL core is the -c string's line 1, which
    plain gdb cannot show; threads whose plain backtrace is cut at a pc of 0
    get frames found by stack scanning, marked inferred."""
    need_debian()
    plain = run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                 "-ex", "thread apply all bt", str(DEBIAN), str(numpy_core)]).stdout
    assert "dgemm_kernel_PILEDRIVER" in plain
    assert "<string>" not in plain
    cut = _plain_cut_threads(plain)
    assert cut, plain
    with GdbSession(str(DEBIAN), str(numpy_core), debuginfo=False) as gdb:
        result = gdb.json("py-stacks --json --native")
        frames = [f for t in result["threads"] for f in t["python"]]
        assert [(f["file"], f["line"], f["function"]) for f in frames] == \
            [("<string>", 1, "<module>")]
        for t in result["threads"]:
            if t["lwp"] in cut:
                assert len(t["native"]) > 2, t["native"]
                assert t["native"][0]["evidence"] == "exact"
                assert all(f["evidence"] == "inferred" for f in t["native"][1:])
        owner = next(t for t in result["threads"] if t["python"])
        lines = owner["interleaved"]
        py = next(i for i, x in enumerate(lines) if x["kind"] == "python")
        # (the main thread may be in the kernel, a copy routine or waiting for
        # the workers in libc when the worker faults)
        assert any((x["objfile"] or "").endswith("libopenblas.so.0") for x in lines[:py])
        # The eval loop's frame carries the Python line; BLAS and numpy are below it.
        assert lines[py - 1]["function"] == "_PyEval_EvalFrameDefault"
        assert "cblas_dgemm" in [x["function"] for x in lines[:py]]
        text = gdb.cmd("py-stacks --native")
        assert "(Python) <string>:1 in <module>" in text
        assert "[inferred: found by stack scanning]" in text


@pytest.mark.negative
def test_bad_thread_argument(tmp_path):
    need_debian()
    proc, facts = _start(DEBIAN, "threads.py", "1", lines=2, cwd=tmp_path)
    try:
        with GdbSession(str(DEBIAN), "-ex", f"attach {proc.pid}", debuginfo=False) as gdb:
            assert_one_error_line(gdb.cmd("py-stacks 99"), "py-stacks", "no thread 99")
            assert_one_error_line(gdb.cmd("py-stacks x"), "py-stacks", "thread numbers")
            one = gdb.json("py-stacks --json 1")
            assert [t["num"] for t in one["threads"]] == [1]
            gdb.cmd("set gdbext max-threads 1")
            bounded = gdb.json("py-stacks --json")
            assert len(bounded["threads"]) == 1
            assert any("set gdbext max-threads" in w for w in bounded["warnings"])
    finally:
        _stop(proc)


def _locks_by_waiter(result: dict) -> dict[int, dict]:
    return {w["lwp"]: r for r in result["locks"] for w in r["waiters"]}


@pytest.mark.parametrize("python", _pythons())
def test_python_abba_is_a_cycle(python, tmp_path):
    """Two threading.Locks taken in opposite orders: each thread waits
    (exact: the futex word is the lock's sem_t) for the lock the other holds
    (inferred: its __exit__ on the holder's value stack) -- a cycle."""
    proc, facts = _start(python, "locks.py", "abba", lines=3, cwd=tmp_path)
    try:
        with GdbSession(str(python), "-ex", f"attach {proc.pid}", debuginfo=False) as gdb:
            result = gdb.json("py-stacks --json --locks")
            t1, t2 = facts["t1"]["lwp"], facts["t2"]["lwp"]
            waits = _locks_by_waiter(result)
            assert waits[t1]["owner"] == t2 and waits[t2]["owner"] == t1
            assert waits[t1]["owner_evidence"] == waits[t2]["owner_evidence"] == "inferred"
            assert waits[t1]["address"] != waits[t2]["address"]
            for lwp in (t1, t2):
                (w,) = [w for w in waits[lwp]["waiters"] if w["lwp"] == lwp]
                assert w["evidence"] == "exact"
            by_lwp = {t["lwp"]: t for t in result["threads"]}
            assert by_lwp[t1]["python"][0]["line"] == facts["t1"]["line"]
            assert by_lwp[t2]["python"][0]["line"] == facts["t2"]["line"]
            text = gdb.cmd("py-stacks --locks")
            assert_no_traceback(text)
            assert f"waited for by LWP {t1} (exact" in text
    finally:
        _stop(proc)


@pytest.mark.parametrize("python", _pythons())
def test_rlock_and_join_owners(python, tmp_path):
    """An RLock's owner is its rlock_owner (exact); the main thread's join
    waits for the joined thread's state lock (exact on 3.11/3.12; 3.13's
    join waits on a thread handle, which is not read)."""
    proc, facts = _start(python, "locks.py", "rlock", lines=3, cwd=tmp_path)
    try:
        with GdbSession(str(python), "-ex", f"attach {proc.pid}", debuginfo=False) as gdb:
            result = gdb.json("py-stacks --json --locks")
            waits = _locks_by_waiter(result)
            rlock = waits[facts["waiter"]["lwp"]]
            assert rlock["kind"] == "rlock"
            assert (rlock["owner"], rlock["owner_evidence"]) == (facts["owner"]["lwp"], "exact")
            # 3.11/3.12 join on the thread's _tstate_lock, 3.13 on its ThreadHandle
            join = waits[facts["main"]["lwp"]]
            assert (join["owner"], join["owner_evidence"]) == (facts["owner"]["lwp"], "exact")
    finally:
        _stop(proc)


@pytest.mark.parametrize("python", _pythons())
def test_gil_mutex_deadlock(python, tmp_path):
    """The GIL <-> mutex deadlock through a real C library and ctypes.PyDLL:
    the Python thread holds the GIL (exact) and the C thread waits for it in
    PyGILState_Ensure (exact).  On every version: 3.13 publishes the GIL's
    fields as offsets into the interpreter state, not into the GIL."""
    lib = tmp_path / "gil_mutex.so"
    run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(lib), str(SCRIPTS / "gil_mutex.c"),
         "-lpthread"])
    proc, facts = _start(python, "gil_mutex.py", str(lib), lines=2, cwd=tmp_path)
    try:
        time.sleep(1.5)             # the C thread's sleep(1), then PyGILState_Ensure
        with GdbSession(str(python), "-ex", f"attach {proc.pid}", debuginfo=False) as gdb:
            result = gdb.json("py-stacks --json")
            main, cthread = facts["main"]["lwp"], facts["cthread"]["lwp"]
            assert (result["gil"]["owner"], result["gil"]["owner_evidence"]) == (main, "exact")
            assert [(w["lwp"], w["evidence"]) for w in result["gil"]["waiters"]] == \
                [(cthread, "exact")]
            marks = {t["lwp"]: t["gil"] for t in result["threads"]}
            assert marks == {main: "holds", cthread: "waits"}
            top = next(t for t in result["threads"] if t["lwp"] == main)["python"][0]
            assert top["line"] == facts["main"]["line"]
    finally:
        _stop(proc)


def _gdb_thread_lwps(gdb: GdbSession) -> dict[int, int]:
    """gdb's own thread numbers -> LWPs (`info threads`, not gdbext)."""
    return {int(m.group(1)): int(m.group(2)) for m in
            re.finditer(r"^\*?\s*(\d+)\s+Thread 0x[0-9a-f]+ \(LWP (\d+)\)",
                        gdb.cmd("info threads"), re.M)}


@pytest.mark.negative
def test_read_only(tmp_path):
    """py-stacks in every form leaves the process and the session as they
    were (tests/e2e/snapshot.py, computed without gdbext): memory, every
    thread's registers and kernel state, the selection, the settings -- and
    each form answered what it should: the lines each thread printed it is
    blocked on, the ABBA cycle, gdb's thread 3 alone, the refusals."""
    need_debian()
    from tests.e2e import snapshot
    proc, facts = _start(DEBIAN, "locks.py", "abba", lines=3, cwd=tmp_path)
    answers = {}
    try:
        with GdbSession(str(DEBIAN), "-ex", f"attach {proc.pid}", debuginfo=False) as gdb:
            lwps = _gdb_thread_lwps(gdb)
            gdb.cmd("thread 2")
            gdb.cmd("frame 1")
            before = snapshot.take(gdb, proc.pid)
            for command in ("py-stacks", "py-stacks --native", "py-stacks --locks --json",
                            "py-stacks --native 3", "py-stacks 77", "py-stacks --bogus"):
                answers[command] = gdb.cmd(command)
                assert_no_traceback(answers[command])
                diff = before.differences(snapshot.take(gdb, proc.pid))
                assert not diff, (command, diff)
    finally:
        _stop(proc)
    assert sorted(lwps.values()) == sorted(f["lwp"] for f in facts.values()), (lwps, facts)
    script = SCRIPTS / "locks.py"
    for command in ("py-stacks", "py-stacks --native"):
        text = answers[command]
        assert text.startswith("py-stacks: CPython "), text
        for fact in facts.values():
            assert f"(LWP {fact['lwp']})" in text and f"{script}:{fact['line']} in " in text
    result = json.loads(next(line for line in answers["py-stacks --locks --json"].splitlines()
                             if line.startswith("{")))
    assert result["schema"] == "gdbext/py-stacks/1" and result["target"] == "live"
    by_lwp = {t["lwp"]: t for t in result["threads"]}
    for fact in facts.values():        # main's own line is under threading's join
        ours = [f for f in by_lwp[fact["lwp"]]["python"] if f["file"] == str(script)]
        assert ours[0]["line"] == fact["line"], by_lwp[fact["lwp"]]["python"]
    waits = _locks_by_waiter(result)
    t1, t2 = facts["t1"]["lwp"], facts["t2"]["lwp"]
    assert (waits[t1]["owner"], waits[t2]["owner"]) == (t2, t1)
    third = answers["py-stacks --native 3"]
    assert re.findall(r"^Thread (\d+) \(LWP (\d+)\)", third, re.M) == [("3", str(lwps[3]))]
    assert_one_error_line(answers["py-stacks 77"], "py-stacks", "no thread 77")
    assert_one_error_line(answers["py-stacks --bogus"], "py-stacks",
                          "unrecognized arguments: --bogus")


def _core_offset(core: Path, address: int) -> int:
    from tests.host import core_file_offset
    return core_file_offset(core, address)


# Plain gdb's Python (no gdbext) over libpython's DWARF: every thread's
# frame chain, leaf first, as (frame address, co_name); and the offsets of
# the two fields the test damages.
PLAIN_FRAMES = r"""
import gdb, json
def field(value, *names):
    for name in names:
        if name in [f.name for f in value.type.target().fields()]:
            return value[name]
    raise gdb.GdbError(f"none of {names} in {value.type}")
ascii_p = gdb.lookup_type("PyASCIIObject").pointer()
char_p = gdb.lookup_type("char").pointer()
code_p = gdb.lookup_type("PyCodeObject").pointer()
threads = {}
ts = gdb.parse_and_eval("_PyRuntime.interpreters.head->threads.head")
while int(ts):
    names = [f.name for f in ts.type.target().fields()]
    frame = ts["cframe"]["current_frame"] if "cframe" in names else ts["current_frame"]
    chain = []
    while int(frame) and len(chain) < 200:
        code = field(frame, "f_code", "f_executable").cast(code_p)
        kind = code["ob_base"]["ob_base"]["ob_type"]["tp_name"].string()
        # 3.12+'s entry frames of the C stack hold another object than code
        name = (code["co_name"].cast(ascii_p) + 1).cast(char_p).string() \
            if kind == "code" else None
        chain.append([int(frame), name])
        frame = frame["previous"]
    threads[int(ts["native_thread_id"])] = chain
    ts = ts["next"]
frame_t = gdb.lookup_type("_PyInterpreterFrame")
code_field = "f_code" if "f_code" in [f.name for f in frame_t.fields()] else "f_executable"
offsets = {"code": int(gdb.parse_and_eval(f"(long)&((_PyInterpreterFrame*)0)->{code_field}")),
           "previous": int(gdb.parse_and_eval("(long)&((_PyInterpreterFrame*)0)->previous"))}
print("PLAIN " + json.dumps({"threads": threads, "offsets": offsets}))
"""


def _plain_python_frames(python: Path, core: Path, tmp_path: Path) -> dict:
    script = tmp_path / "plain_frames.py"
    script.write_text(PLAIN_FRAMES)
    out = run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
               "-ex", f"source {script}", str(python), str(core)]).stdout
    plain = json.loads(next(l for l in out.splitlines() if l.startswith("PLAIN "))[6:])
    plain["threads"] = {int(k): v for k, v in plain["threads"].items()}
    return plain


def _pyenv_with_dwarf(version: str) -> Path:
    return pyenv_python(version) if libpython_with_dwarf(version) else None


@pytest.mark.parametrize("version", ["3.11", "3.12", "3.13"])
def test_corrupt_frame_chain_in_a_core(version, tmp_path):
    """A gcore whose frame chain was damaged on disk -- a frame pointing back
    at itself, a code pointer to garbage -- gives warnings, never a
    traceback, and the intact threads still show.  The frames to damage and
    the fields' offsets come from plain gdb on pyenv's libpython (its
    DWARF), not from py-stacks."""
    python = _pyenv_with_dwarf(version)
    proc, facts = _start(python, "threads.py", "2", lines=3, cwd=tmp_path)
    core = tmp_path / "py.core"
    try:
        run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
             "-ex", f"attach {proc.pid}", "-ex", f"gcore {core}", "-ex", "detach"])
    finally:
        _stop(proc)
    plain = _plain_python_frames(python, core, tmp_path)
    w0, w1 = facts["w0"]["lwp"], facts["w1"]["lwp"]
    assert set(plain["threads"]) == {f["lwp"] for f in facts.values()}, plain["threads"]
    loop_frame = next(a for a, name in plain["threads"][w0] if name == "worker")   # at itself
    bad_frame = next(a for a, name in plain["threads"][w1] if name == "leaf")      # code: junk
    data = bytearray(core.read_bytes())
    off = _core_offset(core, loop_frame + plain["offsets"]["previous"])
    data[off:off + 8] = loop_frame.to_bytes(8, "little")
    off = _core_offset(core, bad_frame + plain["offsets"]["code"])
    data[off:off + 8] = (0x4141414141414140).to_bytes(8, "little")
    core.write_bytes(bytes(data))
    with GdbSession(str(python), str(core), debuginfo=False) as gdb:
        out = gdb.cmd("py-stacks")
        assert_no_traceback(out)
        assert "loops at" in out and "no code object" in out
        after = gdb.json("py-stacks --json")
        by_lwp = {t["lwp"]: t for t in after["threads"]}
        # leaf, worker, then the loop back to worker
        assert [f["function"] for f in by_lwp[w0]["python"]] == ["leaf", "worker"]
        assert [f["address"] for f in by_lwp[w0]["python"]][1] == loop_frame
        assert by_lwp[w1]["python"] == []
        main = by_lwp[facts["main"]["lwp"]]["python"][0]
        assert main["line"] == facts["main"]["line"]
        assert_no_traceback(gdb.cmd("py-stacks --native --locks"))


def test_with_glibc_debug_info(tmp_path):
    """With whatever debug info the host has (libc6-dbg, a debug build of
    libpython), the answer is the same: it never came from debug info."""
    need_debian()
    proc, facts = _start(DEBIAN, "gil_holder.py", lines=4, cwd=tmp_path)
    try:
        with GdbSession(str(DEBIAN), "-ex", f"attach {proc.pid}", debuginfo=True) as gdb:
            result = gdb.json("py-stacks --json --native")
            assert result["gil"]["owner"] == facts["holder"]["lwp"]
            top = next(t for t in result["threads"]
                       if t["lwp"] == facts["holder"]["lwp"])["python"][0]
            assert (top["function"], top["line"]) == ("holder", facts["holder"]["line"])
    finally:
        _stop(proc)


@pytest.mark.parametrize("python", _pythons()[:2])
def test_kernel_core(python, tmp_path):
    """A core the kernel wrote (SIGQUIT's default action) reads like a live
    process: every thread's Python stack and line."""
    from tests.host import kernel_cores_land_in_cwd
    if not kernel_cores_land_in_cwd():
        pytest.skip("core_pattern does not write kernel cores into the cwd")
    out = tmp_path / "out.txt"
    with open(out, "w") as fh:
        proc = subprocess.Popen([str(python), str(SCRIPTS / "threads.py"), "2"], stdout=fh,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=tmp_path, preexec_fn=unlimited_core)
    deadline = time.monotonic() + 30
    while "thread=main" not in out.read_text():
        assert time.monotonic() < deadline and proc.poll() is None, out.read_text()
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGQUIT)
    assert proc.wait(timeout=60) == -signal.SIGQUIT
    core = find_kernel_core(tmp_path, proc.pid)
    assert core is not None
    facts = {m["thread"]: {"lwp": int(m["lwp"]), "line": int(m["line"])}
             for m in re.finditer(r"thread=(?P<thread>\w+) lwp=(?P<lwp>\d+) line=(?P<line>\d+)",
                                  out.read_text())}
    with GdbSession(str(python), str(core), debuginfo=False) as gdb:
        result = gdb.json("py-stacks --json")
        _check_threads(result, facts, "threads.py")


@pytest.mark.parametrize("python", _pythons())
def test_a_deep_stack_is_collapsed_and_its_entry_shown(python, tmp_path):
    """50,000 frames of one recursion, live: the depth is the interpreter's
    own count (traceback.extract_stack(), printed by the program), the
    recursion is one line 'repeated N times', and the outermost frames --
    where it was entered -- are shown."""
    out = tmp_path / "out.txt"
    with open(out, "w") as fh:
        proc = subprocess.Popen([str(python), str(SCRIPTS / "deep.py")], stdout=fh,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while "depth=" not in out.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.1)
        said = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", out.read_text())}
        with GdbSession(str(python), "-ex", f"attach {proc.pid}", debuginfo=False) as gdb:
            result = gdb.json("py-stacks --json")
            text = gdb.cmd("py-stacks")
    finally:
        _stop(proc)
    assert_no_traceback(text)
    [t] = [t for t in result["threads"] if t["python"]]
    script = str(SCRIPTS / "deep.py")
    assert t["python_depth"] == said["depth"]
    assert (t["python"][0]["file"], t["python"][0]["line"]) == (script, said["sleep"])
    assert [f["function"] for f in t["python_outer"][-2:]] == ["main", "<module>"]
    assert t["python_middle_same"] is True
    outer_down = sum(1 for f in t["python_outer"] if f["function"] == "down")
    repeated = said["depth"] - 1 - (len(t["python_outer"]) - outer_down)
    assert f"#1-#{repeated} {script}:{said['repeat']} in down  (repeated {repeated:,} times)" \
        in text, text
    assert f"#{said['depth'] - 1} " in text and "in <module>" in text.splitlines()[-1]


@pytest.mark.parametrize("python", _pythons())
def test_a_c_stack_overflow_in_python_names_its_entry_and_the_recursion_limit(python, tmp_path):
    """repr() of a million nested objects with the recursion limit raised to
    two million: 3.11 runs out of C stack (SIGSEGV); crash-triage collapses
    the recursion, shows where it was entered (the lines the program
    printed) and the limit it set.  3.12+ stop C recursion themselves."""
    proc = subprocess.run([str(python), str(SCRIPTS / "recursion.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=unlimited_core, stdin=subprocess.DEVNULL)
    said = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", proc.stdout)}
    if proc.returncode == 1 and "RecursionError" in proc.stderr:
        pytest.skip(f"{python.name} stops the C recursion itself (RecursionError)")
    assert proc.returncode == -signal.SIGSEGV, proc
    core = find_kernel_core(tmp_path, said["pid"])
    with GdbSession(str(python), str(core), debuginfo=False) as gdb:
        r = gdb.json("crash-triage --json")
        text = gdb.cmd("crash-triage")
    assert_no_traceback(text)
    py = r["python"]
    assert r["verdict"] == "stack-overflow" and py["recursion_limit"] == said["limit"]
    script = str(SCRIPTS / "recursion.py")
    assert [(f["function"], f["line"]) for f in py["outer"][-3:]] == \
        [("report", said["entry"]), ("main", py["outer"][-2]["line"]), ("<module>",
                                                                         py["outer"][-1]["line"])]
    # the innermost frame may have just been entered (its `def` line): the run
    # of the recursive call's line then starts at #1
    assert re.search(rf"#[01]-#\d+ {re.escape(script)}:{said['repeat']} in Node.__repr__  "
                     r"\(repeated [\d,]+ times\)", text), text
    assert f"sys.setrecursionlimit({said['limit']:,})" in text
