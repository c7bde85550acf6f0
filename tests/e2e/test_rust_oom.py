"""A Rust allocation failure (fixtures/faults/rust_oom.rs, built here with
the rustc `make setup` provides): std's allocation-error handler aborts
without panicking, so it is no panic -- not one at a stale Location found on
the stack -- and the signature is the program's frame, not std's alloc path.
Facts: std's own stderr and the kernel's exit status."""
from __future__ import annotations

import os
import re
import shutil
import signal
from pathlib import Path

import pytest

from tests.e2e.built import build, kernel_core, triage


def rustc() -> str:
    cargo = Path(os.path.expanduser("~/.cargo/bin/rustc"))
    found = shutil.which("rustc") or (str(cargo) if cargo.exists() else None)
    if found is None:
        pytest.skip("no rustc (make setup installs Debian's)")
    return found


def test_a_rust_allocation_failure_is_an_oom_in_the_program_s_frame(tmp_path):
    exe = build(rustc(), "rust_oom.rs", tmp_path, "-C", "opt-level=1")
    proc, core = kernel_core([str(exe)], tmp_path / "cwd", signal.SIGABRT,
                             {0: "this machine overcommits 512 GiB: the allocation succeeded"})
    assert re.search(r"memory allocation of \d+ bytes failed", proc.stderr)
    assert "panicked" not in proc.stderr
    r = triage(exe, core)
    assert r["verdict"] == "rust-oom" and r["reason"]["runtime"] == "rust-std"
    assert r["signature"]["key"] == "rust-oom"
    assert r["frames"][0]["function"] == "rust_oom::load_table"
    assert not any(f["function"].startswith(("std::", "alloc::", "core::"))
                   for f in r["frames"])
