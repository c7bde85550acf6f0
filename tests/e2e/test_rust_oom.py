"""A Rust allocation failure (fixtures/faults/rust_oom.rs, built here with
the rustc `make setup` provides): std's allocation-error handler aborts
without panicking, so it is no panic -- not one at a stale Location found on
the stack -- and the signature is the program's frame, not std's alloc path.
Facts: std's own stderr and the kernel's exit status."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.host import GDB, REPO, find_kernel_core, kernel_cores_land_in_cwd, run, \
    unlimited_core

SOURCE = REPO / "fixtures" / "faults" / "rust_oom.rs"


def rustc() -> str | None:
    cargo = Path(os.path.expanduser("~/.cargo/bin/rustc"))
    return shutil.which("rustc") or (str(cargo) if cargo.exists() else None)


def test_a_rust_allocation_failure_is_an_oom_in_the_program_s_frame(tmp_path):
    compiler = rustc()
    if compiler is None:
        pytest.skip("no rustc (make setup installs Debian's)")
    if not kernel_cores_land_in_cwd():
        pytest.skip("core_pattern does not write kernel cores into the cwd")
    exe = tmp_path / "rust_oom"
    run([compiler, "-C", "opt-level=1", "-o", str(exe), str(SOURCE)], cwd=tmp_path)
    proc = subprocess.run([str(exe)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, preexec_fn=unlimited_core, stdin=subprocess.DEVNULL)
    if proc.returncode == 0:
        pytest.skip("this machine overcommits 512 GiB: the allocation succeeded")
    assert proc.returncode == -signal.SIGABRT, (proc.returncode, proc.stderr)
    assert re.search(r"memory allocation of \d+ bytes failed", proc.stderr)
    assert "panicked" not in proc.stderr
    core = find_kernel_core(tmp_path, int(re.search(r"pid=(\d+)", proc.stdout).group(1)))
    assert core is not None
    out = subprocess.run([GDB, "-nx", "-q", "-batch", "-iex", "set debuginfod enabled off",
                          "-iex", "set debug-file-directory /nonexistent",
                          "-ex", f"source {REPO / 'gdbinit.py'}", "-ex", "crash-triage --json",
                          str(exe), str(core)], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in out.stdout + out.stderr
    r = json.loads(next(l for l in out.stdout.splitlines() if l.startswith("{")))
    assert r["verdict"] == "rust-oom" and r["reason"]["runtime"] == "rust-std"
    assert r["signature"]["key"] == "rust-oom"
    assert r["frames"][0]["function"] == "rust_oom::load_table"
    assert not any(f["function"].startswith(("std::", "alloc::", "core::"))
                   for f in r["frames"])
