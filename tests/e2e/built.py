"""Small programs of ours built at test time (fixtures/faults/), crashed for a
kernel core, and triaged by a real gdb -- the steps the single-crash tests
share.  Every expectation stays in the test."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.host import GDB, REPO, find_kernel_core, kernel_cores_land_in_cwd, loader_args, run, \
    unlimited_core

FAULTS = REPO / "fixtures" / "faults"
NO_GLIBC_DEBUG = ("-iex", "set debug-file-directory /nonexistent")


def build(compiler: str, source: str, out: Path, *flags: str) -> Path:
    """``compiler`` (gcc, g++, or a rustc path) on fixtures/faults/SOURCE."""
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed")
    exe = out / Path(source).stem
    run([compiler, *flags, "-o", str(exe), str(FAULTS / source)], cwd=out)
    return exe


def kernel_core(argv: list[str], cwd: Path, signo: int,
                skip: dict[int, str] | None = None) -> tuple:
    """Run ``argv`` in ``cwd`` to its kernel core: (process, core).  The
    program prints ``pid=N``; ``skip``: returncode -> why the test is skipped."""
    if not kernel_cores_land_in_cwd():
        pytest.skip("core_pattern does not write kernel cores into the cwd")
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60,
                          preexec_fn=unlimited_core, stdin=subprocess.DEVNULL)
    if skip and proc.returncode in skip:
        pytest.skip(skip[proc.returncode])
    assert proc.returncode == -signo, (argv, proc.returncode, proc.stderr)
    core = find_kernel_core(cwd, int(re.search(r"pid=(\d+)", proc.stdout).group(1)))
    assert core is not None, f"no kernel core in {cwd}"
    return proc, core


def triage(exe: Path, core: Path | None = None, run_args: str | None = None,
           cwd: Path | None = None) -> dict:
    """``crash-triage --json`` in a real gdb without glibc debug info, on
    ``exe`` and ``core``, or on ``exe`` run live with ``run_args``: the
    report, never a traceback."""
    live = [] if core is not None else ["-ex", f"run {run_args or ''}"]
    out = subprocess.run([GDB, "-nx", "-q", "-batch", "-iex", "set debuginfod enabled off",
                          *NO_GLIBC_DEBUG, *loader_args(), *live,
                          "-ex", "crash-triage --json", str(exe)]
                         + ([str(core)] if core is not None else []),
                         capture_output=True, text=True, timeout=120, cwd=cwd)
    assert "Traceback" not in out.stdout + out.stderr
    return json.loads(next(l for l in out.stdout.splitlines() if l.startswith("{")))
