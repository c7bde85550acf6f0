"""crash-triage in Python processes: the crashing thread's Python stack, the
GIL holder, and signatures signed on the Python line -- live, from gcore and
from kernel cores, with and without glibc debug info, on Debian's build of
gdb's Python version (/usr/bin/python3.11 on Debian 12, python3.13 on 13: the
interpreter in the executable) and pyenv's 3.11 (a shared libpython).

Truth comes from the programs: pycrash.py prints the line it crashes at,
CPython's own fatal-error traceback on stderr, the -c string's line 1, plain
gdb's frame #0, nm of the BLAS library -- never from gdbext.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e.gdb_session import NO_DEBUG_INFO, assert_no_traceback
from tests.host import (GDB, REPO, debian_python, find_kernel_core, host_has, loader_args,
                        kernel_cores_land_in_cwd, pyenv_python, run, unlimited_core)

PYCRASH = REPO / "fixtures" / "everyday" / "pycrash.py"
DEBIAN = debian_python()
NUMPY = "import numpy as np; a = np.ones((300, 300)); a @ a"
pytestmark = pytest.mark.xdist_group("triage-python")


def _pythons():
    out = [pytest.param(DEBIAN, id=f"debian-{DEBIAN.name[len('python'):]}-static",
                        marks=pytest.mark.skipif(not DEBIAN.exists(), reason=f"no {DEBIAN}"))]
    p = pyenv_python("3.11")
    out.append(pytest.param(p, id="pyenv-3.11-shared",
                            marks=pytest.mark.skipif(p is None, reason="no pyenv 3.11")))
    return out


def _gdb(*args: str, debuginfo: bool = True, timeout: int = 300) -> str:
    argv = [GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
            *([] if debuginfo else NO_DEBUG_INFO),
            *loader_args(), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=dict(os.environ, LC_ALL="C.UTF-8"))
    assert_no_traceback(proc.stdout + proc.stderr)
    return proc.stdout


def _json(out: str) -> list[dict]:
    return [json.loads(l) for l in out.splitlines() if l.startswith('{"schema": "gdbext/crash')]


def _core(cmd: list[str], cwd: Path, sig: int, env=None):
    if not kernel_cores_land_in_cwd():
        pytest.skip("core_pattern does not write kernel cores into the cwd")
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120,
                          preexec_fn=unlimited_core, stdin=subprocess.DEVNULL,
                          env=env or {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})
    assert proc.returncode == -sig, proc
    pid = int(re.search(r"pid=(\d+)", proc.stdout).group(1))
    core = find_kernel_core(cwd, pid)
    assert core is not None
    return core, proc


def _live_and_gcore(python: Path, args: list[str], tmp: Path, env=None) -> tuple[dict, dict]:
    """Run under gdb to the crash: crash-triage live, then on a gcore of that stop."""
    gcore = tmp / "gcore"
    envs = [a for k, v in (env or {}).items() for a in ("-iex", f"set environment {k}={v}")]
    out = _gdb(*envs, "-ex", "run", "-ex", "crash-triage --json --no-metadata",
               "-ex", f"gcore {gcore}", "--args", str(python), *args)
    [live] = _json(out)
    [again] = _json(_gdb("-ex", "crash-triage --json --no-metadata", str(python), str(gcore)))
    return live, again


def _frames(t: dict) -> list[tuple]:
    return [(f["file"], f["line"], f["function"]) for f in t["python"]["frames"]]


def _fatal_traceback(stderr: str) -> list[tuple[str, int, str]]:
    """CPython's own 'Current thread ... (most recent call first)' traceback."""
    block = stderr.split("most recent call first):", 1)[1]
    return [(f, int(l), fn) for f, l, fn in
            re.findall(r'^  File "(.+)", line (\d+) in (\S+)$', block, re.M)]


@pytest.mark.parametrize("python", _pythons())
def test_string_at_null(python, tmp_path):
    """ctypes.string_at(0): SIGSEGV in libc's strlen under ctypes and libffi;
    no native frame is the user's, so the Python frames sign it."""
    core, proc = _core([str(python), str(PYCRASH), "string_at"], tmp_path / "k",
                       signal.SIGSEGV)
    line = int(re.search(r"^line=(\d+)$", proc.stdout, re.M).group(1))
    pid = int(re.search(r"pid=(\d+)", proc.stdout).group(1))
    reports = [_json(_gdb("-ex", "crash-triage --json", str(python), str(core),
                          debuginfo=d))[0] for d in (True, False)]
    reports += _live_and_gcore(python, [str(PYCRASH), "string_at"], tmp_path)
    for t in reports:
        frames = _frames(t)
        mine = [f for f in frames if f[0] == str(PYCRASH)]
        assert mine[0] == (str(PYCRASH), line, "read_message"), frames
        assert [f[2] for f in mine] == ["read_message", "main", "<module>"]
        assert frames[0][2] == "string_at" and frames[0][0].endswith("ctypes/__init__.py")
        assert t["python"]["evidence"] == "exact" and t["python"]["lwp"] == t["thread"]["lwp"]
        assert t["python"]["gil"]["owner"] == t["thread"]["lwp"]      # ctypes keeps the GIL
        assert t["signature"]["frames"] == ["pycrash.py:read_message", "pycrash.py:main",
                                            "pycrash.py:<module>"]
    assert reports[0]["thread"]["lwp"] == pid                          # one thread: main
    assert len({t["signature"]["id"] for t in reports}) == 1


@pytest.mark.parametrize("python", _pythons())
def test_faulthandler_core_signs_like_the_fault(python, tmp_path):
    """python -X faulthandler: its handler prints the traceback and re-raises
    SIGSEGV, so the kernel core's signal is SI_TKILL from raise().  Its handler
    takes no siginfo (no SA_SIGINFO), so the fault is read from the signal
    frame's sigcontext; it must sign like the same crash without faulthandler,
    and the fault address be the one the kernel reported for that one."""
    args = [str(PYCRASH), "string_at"]
    core, proc = _core([str(python), "-X", "faulthandler", *args], tmp_path / "fh",
                       signal.SIGSEGV)
    truth = _fatal_traceback(proc.stderr)           # faulthandler's own traceback
    assert "Fatal Python error: Segmentation fault" in proc.stderr
    line = int(re.search(r"^line=(\d+)$", proc.stdout, re.M).group(1))
    assert truth[0][2] == "string_at" and truth[1][1:] == (line, "read_message"), truth
    plain_core, _ = _core([str(python), *args], tmp_path / "plain", signal.SIGSEGV)
    plain = run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                 "-ex", "p/x $_siginfo._sifields._sigfault.si_addr",
                 "-ex", "p $_siginfo.si_code", str(python), str(plain_core)]).stdout
    addr, code = re.findall(r"^\$\d+ = (\S+)$", plain, re.M)
    raised = run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                  "-ex", "p $_siginfo.si_code", str(python), str(core)]).stdout
    assert re.search(r"= -6$", raised, re.M), raised            # SI_TKILL: raise()
    [direct] = _json(_gdb("-ex", "crash-triage --json", str(python), str(plain_core)))
    reports = [_json(_gdb("-ex", "crash-triage --json", str(python), str(core),
                          debuginfo=d))[0] for d in (True, False)]
    for t in reports:
        i = t["interrupted"]
        assert i is not None and i["source"] == "sigcontext", t["warnings"]
        assert i["signo"] == signal.SIGSEGV and i["addr"] == int(addr, 16)
        assert i["code"] == int(code)
        # faulthandler re-raised through raise (the process's stderr has its banner)
        assert "Fatal Python error" in proc.stderr
        assert t["interrupted"]["handler"]["runtime"] == "cpython-faulthandler"
        assert t["verdict"] == direct["verdict"] and t["verdict"] != "self-signal"
        assert _frames(t) == truth
        assert t["signature"]["id"] == direct["signature"]["id"], (t["signature"],
                                                                   direct["signature"])


@pytest.mark.parametrize("python", _pythons())
def test_fatal_error_lines_as_cpython_prints_them(python, tmp_path):
    core, proc = _core([str(python), str(PYCRASH), "fatal"], tmp_path / "k", signal.SIGABRT)
    truth = _fatal_traceback(proc.stderr)
    assert truth and truth[0][2] == "give_up"
    reports = [_json(_gdb("-ex", "crash-triage --json", str(python), str(core),
                          debuginfo=d))[0] for d in (True, False)]
    reports += _live_and_gcore(python, [str(PYCRASH), "fatal"], tmp_path)
    for t in reports:
        assert t["verdict"] == "python-fatal-error"
        assert _frames(t) == truth
        assert t["signature"]["frames"][0] == "pycrash.py:give_up"
    assert len({t["signature"]["id"] for t in reports}) == 1
    text = _gdb("-ex", "crash-triage", str(python), str(core))
    assert f"{truth[0][0]}:{truth[0][1]} in give_up" in text


@pytest.fixture(scope="module")
def numpy_crash(tmp_path_factory):
    """Debian's python3-numpy on libopenblas0-pthread, forced onto the
    Piledriver kernels: SIGILL on any CPU without fma4 (/proc/cpuinfo)."""
    if host_has("fma4"):
        pytest.skip("this CPU has fma4: the Piledriver kernel runs")
    if not DEBIAN.exists() or subprocess.run([str(DEBIAN), "-c", "import numpy"],
                                             capture_output=True).returncode:
        pytest.skip("Debian's python3-numpy is not installed (make setup installs it)")
    env = {"PATH": "/usr/bin:/bin", "OPENBLAS_CORETYPE": "Piledriver",
           "OPENBLAS_NUM_THREADS": "2"}
    cwd = tmp_path_factory.mktemp("numpy")
    core, _ = _core([str(DEBIAN), "-c", f"import os; print('pid=%d' % os.getpid(), "
                     f"flush=True); {NUMPY}"], cwd, signal.SIGILL, env)
    return core, cwd, env


def test_numpy_sigill_names_the_python_line_and_blas(numpy_crash):
    core, cwd, env = numpy_crash
    plain = run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                 "-ex", "bt 3", str(DEBIAN), str(core)]).stdout
    kernel = re.search(r"^#0\s+0x[0-9a-f]+ in (\w+) ", plain, re.M).group(1)
    assert "<string>" not in plain
    blas = run(["nm", "-D", "--defined-only", os.path.realpath(
        "/lib/x86_64-linux-gnu/libblas.so.3")]).stdout
    assert re.search(r" T cblas_dgemm$", blas, re.M)
    # The threads in the kernel when it faulted (plain gdb's frame #0 of each):
    # the main thread (Python) and OpenBLAS workers; each may be the one that faults.
    tops = run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                "-ex", "thread apply all bt 1", str(DEBIAN), str(core)]).stdout
    in_kernel = [int(m.group(1)) for m in re.finditer(
        r"^Thread (\d+) .*\n#0\s+0x[0-9a-f]+ in (\w+) ", tops, re.M) if m.group(2) == kernel]
    assert 1 in in_kernel
    reports = []
    for debuginfo in (True, False):
        for num in in_kernel:
            reports += _json(_gdb("-ex", f"thread {num}", "-ex", "crash-triage --json",
                                  str(DEBIAN), str(core), debuginfo=debuginfo))
    live, again = _live_and_gcore(DEBIAN, ["-c", NUMPY], cwd, env)
    for t in reports + [live, again]:
        assert _frames(t) == [("<string>", 1, "<module>")], t["python"]
        assert t["signature"]["frames"] == [kernel, "cblas_dgemm", "<string>:1 <module>"], (
            t["target"], t["thread"], t["python"], t["warnings"])
        assert t["signature"]["key"] == "fma4"
        if t["python"]["lwp"] != t["thread"]["lwp"]:
            assert t["python"]["evidence"] == "inferred"      # a worker: the driver's stack
        assert t["scanned_frames"] > 0                        # gdb's own walk ends at pc 0
    assert len({t["signature"]["id"] for t in reports + [live, again]}) == 1
    text = _gdb("-ex", "crash-triage", str(DEBIAN), str(core))
    assert "found by stack scanning (inferred)" in text
    assert "<string>:1 in <module>" in text
    assert f"{kernel}<cblas_dgemm<<string>:1 <module>" in text


@pytest.mark.negative
def test_not_python_no_python_section(tmp_path):
    """A plain C crash: no Python field, no warning about Python."""
    from tests.host import FIXTURES
    exe = FIXTURES / "everyday" / "everyday"
    if not exe.exists():
        pytest.skip("make setup builds the everyday fixtures")
    core, _ = _core([str(exe), "null_read"], tmp_path, signal.SIGSEGV)
    [t] = _json(_gdb("-ex", "crash-triage --json", str(exe), str(core)))
    assert t["python"] is None
    assert not [w for w in t["warnings"] if "ython" in w]


@pytest.mark.negative
def test_unknown_version_warns_and_keeps_native_frames(tmp_path):
    """CPython 3.10 (no Py_Version): one warning naming the problem, the
    native signature, no traceback."""
    old = pyenv_python("3.10")
    if old is None:
        pytest.skip("no pyenv 3.10")
    core, _ = _core([str(old), str(PYCRASH), "string_at"], tmp_path, signal.SIGSEGV)
    [t] = _json(_gdb("-ex", "crash-triage --json", str(old), str(core)))
    assert t["python"]["interpreter"].startswith("libpython3.10")
    assert t["python"]["stack"] is None
    assert [w for w in t["warnings"] if "Py_Version" in w and "3.11" in w]
    assert not any(":" in f for f in t["signature"]["frames"])     # no Python frame signs
