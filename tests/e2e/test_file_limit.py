"""SIGXFSZ, the kernel's answer to a write past RLIMIT_FSIZE (fixtures/
faults/file_limit.c, built here): its siginfo names the process itself as
the sender, yet it is no self-signal -- the report says which limit, at the
write.  The signal is the kernel's exit status of a plain run; the live stop
is gdb's (the limit also cuts the kernel core at 4 KiB)."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess

import pytest

from tests.host import GDB, REPO, run

SOURCE = REPO / "fixtures" / "faults" / "file_limit.c"


def test_a_write_past_the_file_size_limit(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    exe = tmp_path / "file_limit"
    run(["gcc", "-O1", "-fno-optimize-sibling-calls", "-o", str(exe), str(SOURCE)])
    plain = subprocess.run([str(exe)], cwd=tmp_path, capture_output=True, timeout=60)
    assert plain.returncode == -signal.SIGXFSZ
    out = subprocess.run([GDB, "-nx", "-q", "-batch", "-iex", "set debuginfod enabled off",
                          "-ex", f"source {REPO / 'gdbinit.py'}", "-ex", "run",
                          "-ex", "crash-triage --json", str(exe)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    r = json.loads(next(l for l in out.stdout.splitlines() if l.startswith("{")))
    assert r["stop"]["signal"] == "SIGXFSZ" and r["verdict"] == "file-size-limit"
    assert "RLIMIT_FSIZE" in r["headline"] and "to itself" not in r["headline"]
    assert r["frames"][0]["function"] == "write_chunk"
