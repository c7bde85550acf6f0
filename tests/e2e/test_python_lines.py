"""isa-check and spill-audit in Python processes: the Python line that led
to the fault, and the frames gdb's unwinder cannot give, found by stack
scanning -- live, from gcore and from kernel cores, with and without glibc
debug info, on real CPython builds.

  numpy: Debian's python3-numpy on libopenblas0-pthread forced onto the
    Piledriver kernels (OPENBLAS_CORETYPE) dies with SIGILL in
    dgemm_kernel_PILEDRIVER on a CPU without fma4 (/proc/cpuinfo).
  ctypes: a Python script calls a C library of ours whose vector kernel,
    entered misaligned by an asm shim, faults on an aligned SSE spill.

Truth comes from the programs and binutils, never from gdbext: the Python
lines are the scripts' own marker comments, pid and LWP are what the script
prints (threading.get_native_id()), the kernel is plain gdb's frame #0,
cblas_dgemm is in nm's list of the BLAS library the process loaded.
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
from tests.host import (GDB, REPO, debian_python, find_kernel_core, gdb_python_version,
                        loader_args,
                        host_has, kernel_cores_land_in_cwd, run, unlimited_core)

SCRIPTS = REPO / "fixtures" / "python"
NUMPY_SCRIPT = SCRIPTS / "numpy_sigill.py"
SPILL_SCRIPT = SCRIPTS / "spill_ctypes.py"
DEBIAN = debian_python()
BLAS = "/lib/x86_64-linux-gnu/libblas.so.3"
pytestmark = pytest.mark.xdist_group("python-lines")


def marker(script: Path, name: str) -> int:
    """The line of ``script`` carrying ``# MARK: name``."""
    lines = script.read_text().splitlines()
    [n] = [i for i, text in enumerate(lines, 1) if text.rstrip().endswith(f"# MARK: {name}")]
    return n


def path_python() -> Path | None:
    """The `python3` on PATH, when it is a build of gdb's Python version other
    than Debian's."""
    try:
        out = subprocess.run(["python3", "-c", "import sys; print(sys.executable); "
                              "print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return None
    if len(out) != 2 or out[1] != gdb_python_version():
        return None
    exe = Path(out[0])
    return None if os.path.realpath(exe) == os.path.realpath(DEBIAN) else exe


def _pythons():
    other = path_python()
    return [pytest.param(DEBIAN, id=f"debian-{gdb_python_version()}",
                         marks=pytest.mark.skipif(not DEBIAN.exists(), reason=f"no {DEBIAN}")),
            pytest.param(other, id="path-python3",
                         marks=pytest.mark.skipif(other is None, reason=(
                             f"the python3 on PATH is not a {gdb_python_version()} build "
                             f"other than Debian's {DEBIAN}")))]


def _gdb(*args: str, debuginfo: bool = True, env: dict | None = None) -> str:
    sets = [a for k, v in (env or {}).items() for a in ("-iex", f"set environment {k}={v}")]
    argv = [GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
            *([] if debuginfo else NO_DEBUG_INFO), *sets,
            *loader_args(), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL, env=dict(os.environ, LC_ALL="C.UTF-8"))
    assert_no_traceback(proc.stdout + proc.stderr)
    return proc.stdout


def _json(out: str, command: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()
            if line.startswith('{"schema": "gdbext/%s/' % command)]


def _kernel_core(cmd: list[str], cwd: Path, sig: int, env: dict) -> tuple[Path, int]:
    if not kernel_cores_land_in_cwd():
        pytest.skip("core_pattern does not write kernel cores into the cwd")
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120,
                          preexec_fn=unlimited_core, stdin=subprocess.DEVNULL, env=env)
    assert proc.returncode == -sig, proc
    facts = dict(re.findall(r"(\w+)=(\d+)", proc.stdout))
    assert facts["pid"] == facts["lwp"]          # the script runs on the main thread
    core = find_kernel_core(cwd, int(facts["pid"]))
    assert core is not None
    return core, int(facts["pid"])


def _live_and_gcore(python: Path, args: list[str], command: str, tmp: Path,
                    env: dict) -> list[dict]:
    """The command live at the fault under gdb, then on a gcore of that stop;
    the LWP the script printed is checked against the one gdb stopped."""
    gcore = tmp / "gcore"
    out = _gdb("-ex", "run", "-ex", f"{command} --json", "-ex", f"gcore {gcore}",
               "-ex", "python import sys; print('cpython-reader-loaded=%d' % "
                      "('gdbext.runtimes.cpython' in sys.modules))",
               "--args", str(python), *args, env=env)
    assert "cpython-reader-loaded=1" in out
    [live] = _json(out, command)
    [again] = _json(_gdb("-ex", f"{command} --json", str(python), str(gcore)), command)
    printed = int(re.search(r"lwp=(\d+)", out).group(1))
    live["_script_lwp"] = again["_script_lwp"] = printed
    return [live, again]


def _python_frames(report: dict) -> list[tuple]:
    return [(f["file"], f["line"], f["function"]) for f in report["python"]["frames"]]


def _kernel_frame(kernel: str) -> int:
    """objdump of the kernel's entry: ``sub $N,%rsp`` then ``mov %rsp,%rbx``
    (rbx + N is its return address's slot while rsp sits on a page-aligned
    buffer below)."""
    library = os.path.realpath("/lib/x86_64-linux-gnu/libopenblas.so.0")
    [start] = [int(m.group(1), 16) for m in re.finditer(
        r"^\s*\d+: ([0-9a-f]+)\s+(\d+) FUNC .* (\S+)$", run(["readelf", "-Ws", "--dyn-syms",
                                                          library]).stdout, re.M)
        if m.group(3) == kernel][:1]
    listing = run(["objdump", "-d", "--no-show-raw-insn", f"--start-address={start:#x}",
                   f"--stop-address={start + 64:#x}", library]).stdout
    m = re.search(r"sub\s+\$0x([0-9a-f]+),%rsp\n(?:.*\n)*?.*mov\s+%rsp,%rbx", listing)
    if not m:
        pytest.skip(f"{kernel} does not keep its entry rsp in rbx (objdump): no offsets to pick")
    return int(m.group(1), 16)


# Where the kernel was entered within its stack page, as (entry rsp) % 4096:
# it aligns rsp down to a page under a 0x2080-byte buffer, so this decides
# which stale words of earlier calls lie between rsp and its return address.
# On Debian 12 these two gave, before the fix, a scan through stale
# interpreter frames (0x050) and gdb's guessed callers filling max-frames
# (0xc80); the kernel cores hit them by ASLR, a live run by the size of its
# environment (gdb turns ASLR off).  Placed here through that size.
BAD_OFFSETS = (0x050, 0xC80)


def _live_at_stack_offsets(env: dict, kernel: str) -> list[dict]:
    """isa-check live with the kernel entered at each of BAD_OFFSETS."""
    frame = _kernel_frame(kernel)
    probe = _gdb("-ex", "run", "-ex", "p/x $rbx", "--args", str(DEBIAN), str(NUMPY_SCRIPT),
                 env=dict(env, PAD=""))
    entry = int(re.findall(r"^\$1 = (0x[0-9a-f]+)", probe, re.M)[-1], 16) + frame + 8
    reports = []
    for offset in BAD_OFFSETS:
        pad = (entry - offset) % 4096
        out = _gdb("-ex", "run", "-ex", "isa-check --json", "-ex", "p/x $rbx",
                   "--args", str(DEBIAN), str(NUMPY_SCRIPT), env=dict(env, PAD="x" * pad))
        rbx = int(re.findall(r"^\$1 = (0x[0-9a-f]+)", out, re.M)[-1], 16)
        assert (rbx + frame + 8) % 4096 == offset       # the layout aimed at
        [r] = _json(out, "isa-check")
        r["_script_lwp"] = int(re.search(r"lwp=(\d+)", out).group(1))
        reports.append(r)
    return reports


# --- isa-check on numpy's OpenBLAS SIGILL ---------------------------------------------
@pytest.fixture(scope="module", params=["1", "2"], ids=["blas-1-thread", "blas-2-threads"])
def numpy_sigill(request, tmp_path_factory):
    """One BLAS thread: the script's own thread runs the kernel and faults.
    Two: either it or an OpenBLAS worker does (the kernel picks)."""
    if host_has("fma4"):
        pytest.skip("this CPU has fma4 (/proc/cpuinfo): the Piledriver kernel runs")
    if not DEBIAN.exists() or subprocess.run([str(DEBIAN), "-c", "import numpy"],
                                             capture_output=True).returncode:
        pytest.skip("Debian's python3-numpy is not installed (make setup installs it)")
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "OPENBLAS_CORETYPE": "Piledriver",
           "OPENBLAS_NUM_THREADS": request.param}
    cwd = tmp_path_factory.mktemp("numpy-isa")
    core, pid = _kernel_core([str(DEBIAN), str(NUMPY_SCRIPT)], cwd / "k", signal.SIGILL, env)
    return core, pid, cwd, env


def test_isa_check_numpy_sigill_names_the_python_line_and_cblas(numpy_sigill):
    core, pid, cwd, env = numpy_sigill
    blas_line, module_line = marker(NUMPY_SCRIPT, "blas-call"), marker(NUMPY_SCRIPT,
                                                                         "module-call")
    truth = [(str(NUMPY_SCRIPT), blas_line, "multiply"),
             (str(NUMPY_SCRIPT), module_line, "<module>")]
    plain = run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                 "-ex", "thread apply all bt", str(DEBIAN), str(core)]).stdout
    kernel = re.search(r"^#0\s+0x[0-9a-f]+ in (\w+) ", plain, re.M).group(1)
    blas = os.path.realpath(BLAS)
    assert re.search(r" T cblas_dgemm$", run(["nm", "-D", "--defined-only", blas]).stdout,
                     re.M)
    # numpy 2 moved the extension to numpy._core (numpy.core is a shim module)
    caller = os.path.realpath(run([str(DEBIAN), "-c", "try:\n import numpy._core._multiarray_umath "
                                   "as m\nexcept ImportError:\n import numpy.core."
                                   "_multiarray_umath as m\nprint(m.__file__)"]).stdout.strip())
    assert re.search(r" U cblas_dgemm$", run(["nm", "-D", "--undefined-only", caller]).stdout,
                     re.M)
    # Threads in the kernel when it faulted, by plain gdb's frame #0: the main
    # thread and maybe an OpenBLAS worker; either may be the faulting one.
    in_kernel = [int(m.group(1)) for m in re.finditer(
        r"^Thread (\d+) .*\n#0\s+0x[0-9a-f]+ in (\w+) ", plain, re.M) if m.group(2) == kernel]
    assert 1 in in_kernel
    for block in re.split(r"\n(?=Thread \d+ )", plain):
        if re.match(r"Thread (\d+) ", block) and int(block.split()[1]) in in_kernel:
            assert "cblas_dgemm" not in block       # gdb's own walk stops in the kernel
    reports = []
    for debuginfo in (True, False):
        for num in in_kernel:
            out = _gdb("-ex", f"thread {num}", "-ex", "isa-check --json", "-ex",
                       f"thread {num}", "-ex", "isa-check", str(DEBIAN), str(core),
                       debuginfo=debuginfo)
            [r] = _json(out, "isa-check")
            r["_text"], r["_script_lwp"] = out, pid
            reports.append(r)
    reports += _live_and_gcore(DEBIAN, [str(NUMPY_SCRIPT)], "isa-check", cwd, env)
    if env["OPENBLAS_NUM_THREADS"] == "1":
        reports += _live_at_stack_offsets(env, kernel)
    main_seen = 0
    for r in reports:
        assert r["verdict"] == "unsupported" and r["missing"] == ["fma4"]
        assert r["function"] == kernel or r["symbol"] == kernel
        assert _python_frames(r) == truth, (r["target"], r["python"], r["warnings"])
        line = r["python"]["line"]
        assert (line["file"], line["line"], line["function"]) == truth[0]
        assert r["frames"][0]["function"] == kernel
        assert r["frames"][0]["evidence"] == "exact"
        if r["python"]["evidence"] == "exact":
            # the faulting thread runs Python itself: it is the script's main thread
            assert r["python"]["lwp"] == r["_script_lwp"]
            main_seen += 1
            names = [f["function"] for f in r["frames"]]
            # Past the kernel (no FDE covers it) every frame is inferred, never
            # gdb's guess passed off as exact -- one BLAS thread or two.
            assert all(f["evidence"] == "inferred" for f in r["frames"][1:]), r["frames"]
            assert r["scanned_frames"] == len(r["frames"]) - 1 > 0
            assert "cblas_dgemm" in names, names
            at = names.index("cblas_dgemm")
            cblas = r["frames"][at]
            assert os.path.realpath(cblas["object"]) == blas
            # From cblas_dgemm down to the kernel OpenBLAS calls nothing outside
            # its two files: a frame of another object in between is a stale
            # return address (the interpreter's, ld.so's) taken for a caller.
            inside = {blas, os.path.realpath(r["frames"][0]["object"])}
            assert all(os.path.realpath(f["object"] or "?") in inside
                       for f in r["frames"][1:at]), r["frames"][:at + 1]
            # and cblas_dgemm's caller is numpy's extension, which imports it
            # (nm -u).
            assert os.path.realpath(r["frames"][at + 1]["object"] or "?") == caller, \
                r["frames"][:at + 2]
        else:                       # an OpenBLAS worker: the driver's Python stack
            assert r["python"]["lwp"] == r["_script_lwp"]
        if "_text" in r:
            text = r["_text"]
            assert f"{NUMPY_SCRIPT}:{blas_line} in multiply  <- the Python line that led here" \
                in text
            if r["python"]["evidence"] == "exact":
                assert re.search(r"cblas_dgemm\s+libblas\.so\.3\s+found by stack scanning "
                                 r"\(inferred\)", text), text
    if env["OPENBLAS_NUM_THREADS"] == "1":
        assert main_seen == len(reports)
        # One BLAS thread: gdb's walk above the kernel reads garbage (no FDE
        # covers the kernel), not a pc of 0 -- an unwinder that guessed, not a
        # smashed stack: crash-triage signs the crash past it too.
        [t] = [json.loads(line) for line in _gdb("-ex", "crash-triage --json --no-metadata",
                                                 str(DEBIAN), str(core)).splitlines()
               if line.startswith('{"schema": "gdbext/crash-triage/')]
        assert t["stack_smashed"] is None
        assert t["signature"]["frames"] == [kernel, "cblas_dgemm", "numpy_sigill.py:multiply"]
        # spill-audit shows the same frames: scanned past the kernel, and no
        # CFA (so no misalignment verdict) where gdb only guessed one.
        for debuginfo in (True, False):
            [a] = _json(_gdb("-ex", "spill-audit --json", str(DEBIAN), str(core),
                             debuginfo=debuginfo), "spill-audit")
            frames = a["stack"]["frames"]
            names = [f["function"] for f in frames]
            assert names[0] == kernel and "cblas_dgemm" in names, names
            at = names.index("cblas_dgemm")
            cblas = frames[at]
            assert cblas["evidence"] == "inferred" and cblas["cfa"] is None
            assert os.path.realpath(cblas["object"]) == blas
            assert all(f["evidence"] == "inferred" for f in frames[1:]), frames
            inside = {blas, os.path.realpath(frames[0]["object"])}
            assert all(os.path.realpath(f["object"] or "?") in inside
                       for f in frames[1:at]), frames[:at + 1]
            assert os.path.realpath(frames[at + 1]["object"] or "?") == caller, frames[:at + 2]
            assert frames[0]["cfa"] is None and a["stack"]["misaligned_since"] is None
            assert a["stack"]["scanned_frames"] > 0
            assert _python_frames(a) == truth


# --- spill-audit on a ctypes call -------------------------------------------------------
@pytest.fixture(scope="module")
def spill_library(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("spill-so") / "spill_ctypes.so"
    spill = REPO / "fixtures" / "spill"
    run(["gcc", "-shared", "-fPIC", "-O2", "-g", "-DKERNEL=sse_kernel", "-o", str(out),
         str(SCRIPTS / "spill_ctypes.c"), str(spill / "xmm_kernel.c"), str(spill / "stub.S")])
    return out


@pytest.mark.parametrize("python", _pythons())
def test_spill_audit_names_the_ctypes_line(python, spill_library, tmp_path):
    call_line, module_line = marker(SPILL_SCRIPT, "ctypes-call"), marker(SPILL_SCRIPT,
                                                                          "module-call")
    truth = [(str(SPILL_SCRIPT), call_line, "run_kernel"),
             (str(SPILL_SCRIPT), module_line, "<module>")]
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
    argv = [str(python), str(SPILL_SCRIPT), str(spill_library)]
    core, pid = _kernel_core(argv, tmp_path / "k", signal.SIGSEGV, env)
    exports = run(["nm", "-D", "--defined-only", str(spill_library)]).stdout
    assert re.search(r" T spill_from_python$", exports, re.M)
    reports = []
    for debuginfo in (True, False):
        out = _gdb("-ex", "spill-audit --json", "-ex", "spill-audit", str(python), str(core),
                   debuginfo=debuginfo)
        [r] = _json(out, "spill-audit")
        r["_text"], r["_script_lwp"] = out, pid
        reports.append(r)
    reports += _live_and_gcore(python, argv[1:], "spill-audit", tmp_path, env)
    for r in reports:
        assert r["verdict"] == "stack-spill-fault", r["explanation"]
        assert r["function"]["name"] == "sse_kernel"
        assert _python_frames(r) == truth, (r["target"], r["python"], r["warnings"])
        assert r["python"]["evidence"] == "exact"
        assert r["python"]["lwp"] == r["_script_lwp"]
        line = r["python"]["line"]
        assert (line["file"], line["line"], line["function"]) == truth[0]
        names = [f["function"] for f in r["stack"]["frames"]]
        assert "spill_from_python" in names
        if "_text" in r:
            assert f"{SPILL_SCRIPT}:{call_line} in run_kernel  <- the Python line that led " \
                   "here" in r["_text"]


@pytest.mark.negative
# --- no Python, no cost -------------------------------------------------------------------
def test_not_python_reads_no_python(tmp_path):
    """A C program's SIGSEGV: no python field, and the CPython reader is
    never imported (sys.modules inside gdb)."""
    exe = REPO / "build" / "fixtures" / "spill" / "sse_stub"
    if not exe.exists():
        pytest.skip("make setup builds the spill fixtures")
    out = _gdb("-ex", "run", "-ex", "isa-check --json", "-ex", "spill-audit --json",
               "-ex", "python import sys; print('cpython-reader-loaded=%d' % "
                      "('gdbext.runtimes.cpython' in sys.modules))",
               str(exe), env={"SPILL_NO_HANDLER": "1"})
    [isa] = _json(out, "isa-check")
    [spill] = _json(out, "spill-audit")
    assert isa["python"] is None and spill["python"] is None
    assert isa["frames"] and isa["frames"][0]["function"] == spill["function"]["name"]
    assert "cpython-reader-loaded=0" in out
    assert not any("Python" in w for w in isa["warnings"] + spill["warnings"])
