"""crash-triage on Python cores (issue 15 part 3): the Python stack, the GIL
and stack scanning past OpenBLAS's asm kernel, against the baseline a user
runs today to see the same crash -- `thread apply all bt` in plain gdb (which
shows no Python line, and stops at `#1 0x0` in the kernel).

Kernel cores of: pycrash.py string_at and fatal (Debian's python3.11), and the
numpy/OpenBLAS SIGILL (OPENBLAS_CORETYPE=Piledriver, skipped on a CPU with
fma4 or without Debian's python3-numpy).  Wall time of a whole `gdb -batch`,
best of REPEAT; no debug info for glibc.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import timing  # noqa: E402  (bench/ is the script's own directory)
from timing import REPEAT, GDB_BATCH_NO_DEBUG_INFO as BASE  # noqa: E402
PYTHON = "/usr/bin/python3.11"


def best(argv) -> float:
    return timing.best_run(argv, REPEAT)


def main() -> None:
    from tests.host import bench_core as core_of, host_has, kernel_cores_land_in_cwd
    if not os.path.exists(PYTHON) or not kernel_cores_land_in_cwd():
        print("triage_python: needs /usr/bin/python3.11 and kernel cores in the cwd; skipped")
        return
    script = str(REPO / "fixtures" / "everyday" / "pycrash.py")
    with tempfile.TemporaryDirectory(prefix="gdbext-bench-") as tmp:
        cases = [("pycrash string_at", core_of([PYTHON, script, "string_at"],
                                               Path(tmp) / "s")),
                 ("pycrash fatal", core_of([PYTHON, script, "fatal"], Path(tmp) / "f"))]
        if not host_has("fma4") and not subprocess.run([PYTHON, "-c", "import numpy"],
                                                       capture_output=True).returncode:
            env = {"PATH": "/usr/bin:/bin", "OPENBLAS_CORETYPE": "Piledriver",
                   "OPENBLAS_NUM_THREADS": "2"}
            cases.append(("numpy SIGILL", core_of(
                [PYTHON, "-c", "import os; print('pid=%d' % os.getpid(), flush=True); "
                 "import numpy as np; a = np.ones((300, 300)); a @ a"], Path(tmp) / "n", env)))
        print(f"crash-triage --json on Python kernel cores, best of {REPEAT}; baseline: "
              "plain gdb's thread apply all bt")
        for name, core in cases:
            if core is None:
                print(f"  {name:18} no core written")
                continue
            bt = best(BASE + ["-ex", "thread apply all bt", PYTHON, str(core)])
            ct = best(BASE + ["-ex", f"source {REPO / 'gdbinit.py'}",
                              "-ex", "crash-triage --json", PYTHON, str(core)])
            print(f"  {name:18} thread apply all bt {bt:5.2f} s   crash-triage {ct:5.2f} s"
                  f"   {ct / bt:.2f}x")


if __name__ == "__main__":
    main()
