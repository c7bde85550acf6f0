"""isa-check and spill-audit with frames and the Python line (issue 15 part 3),
against plain gdb's `bt` on the same kernel core -- the baseline a user runs
today, which stops in OpenBLAS's kernel and shows no Python line.

Kernel cores of: the numpy/OpenBLAS SIGILL (Debian's python3.11 and
python3-numpy, OPENBLAS_CORETYPE=Piledriver, one BLAS thread; skipped on a
CPU with fma4), the ctypes call into a misaligned SSE kernel
(fixtures/python/spill_ctypes.*), and a C program's spill fault (sse_stub:
no Python, the CPython reader is never imported).  Wall time of a whole
`gdb -batch`, best of REPEAT, no debug info for glibc; then, inside one gdb,
what the frame walk and the Python line cost per call.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import timing  # noqa: E402  (bench/ is the script's own directory)
from timing import REPEAT, GDB_BATCH_NO_DEBUG_INFO as BASE  # noqa: E402
PYTHON = "/usr/bin/python3.11"
STEP = """
import time, gdb
from gdbext import target
from gdbext.commands import frame_walk, python_runtime
def fresh_walk():               # a walk is kept for the rest of a command: not here
    target.command_memo().clear()
    frame_walk.selected_frames(64, [])
def per_call(fn, n=20):
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1000
w = []
frames = frame_walk.selected_frames(64, w)
walk = per_call(fresh_walk)
view = per_call(lambda: python_runtime.fault_view(frames, 64, []))
print(f"STEP frame walk {walk:.1f} ms, Python line {view:.1f} ms")
"""


def main() -> None:
    from tests.host import bench_core as core_of, host_has, kernel_cores_land_in_cwd
    if not os.path.exists(PYTHON) or not kernel_cores_land_in_cwd():
        print("python_lines: needs /usr/bin/python3.11 and kernel cores in the cwd; skipped")
        return
    with tempfile.TemporaryDirectory(prefix="gdbext-bench-") as tmp:
        cases = []
        if not host_has("fma4") and not subprocess.run([PYTHON, "-c", "import numpy"],
                                                       capture_output=True).returncode:
            env = {"PATH": "/usr/bin:/bin", "OPENBLAS_CORETYPE": "Piledriver",
                   "OPENBLAS_NUM_THREADS": "1"}
            cases.append(("numpy SIGILL", "isa-check", PYTHON, core_of(
                [PYTHON, str(REPO / "fixtures" / "python" / "numpy_sigill.py")],
                Path(tmp) / "n", env)))
        lib = Path(tmp) / "spill_ctypes.so"
        spill = REPO / "fixtures" / "spill"
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-g", "-DKERNEL=sse_kernel", "-o",
                        str(lib), str(REPO / "fixtures" / "python" / "spill_ctypes.c"),
                        str(spill / "xmm_kernel.c"), str(spill / "stub.S")], check=True)
        cases.append(("ctypes spill", "spill-audit", PYTHON, core_of(
            [PYTHON, str(REPO / "fixtures" / "python" / "spill_ctypes.py"), str(lib)],
            Path(tmp) / "s")))
        stub = REPO / "build" / "fixtures" / "spill" / "sse_stub"
        if stub.exists():
            cases.append(("C sse_stub (no Python)", "spill-audit", str(stub), core_of(
                [str(stub)], Path(tmp) / "c", {"PATH": "/usr/bin:/bin"})))
            cases.append(("C sse_stub (no Python)", "isa-check", str(stub),
                          cases[-1][3]))
        step = Path(tmp) / "step.py"
        step.write_text(STEP)
        print(f"whole gdb -batch on kernel cores, best of {REPEAT}; baseline: plain gdb `bt`")
        for name, command, exe, core in cases:
            if core is None:
                print(f"  {name}: no core; skipped")
                continue
            base = timing.best_run(BASE + ["-ex", "bt", exe, str(core)], REPEAT)
            ours = timing.best_run(BASE + ["-ex", f"source {REPO / 'gdbinit.py'}",
                                           "-ex", f"{command} --json", exe, str(core)], REPEAT)
            out = subprocess.run(BASE + ["-ex", f"source {REPO / 'gdbinit.py'}",
                                         "-ex", f"source {step}", exe, str(core)],
                                 capture_output=True, text=True).stdout
            inner = re.search(r"^STEP (.*)$", out, re.M)
            print(f"  {name:<24} {command:<12} {ours:6.2f} s vs bt {base:6.2f} s "
                  f"({ours / base:4.1f}x); per call: {inner.group(1) if inner else '?'}")


if __name__ == "__main__":
    main()
