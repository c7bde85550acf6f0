"""SIGXFSZ, the kernel's answer to a write past RLIMIT_FSIZE (fixtures/
faults/file_limit.c, built here): its siginfo names the process itself as
the sender, yet it is no self-signal -- the report says which limit, at the
write.  The signal is the kernel's exit status of a plain run; the live stop
is gdb's (the limit also cuts the kernel core at 4 KiB)."""
from __future__ import annotations

import signal
import subprocess

from tests.e2e.built import build, triage


def test_a_write_past_the_file_size_limit(tmp_path):
    exe = build("gcc", "file_limit.c", tmp_path, "-O1", "-fno-optimize-sibling-calls")
    plain = subprocess.run([str(exe)], cwd=tmp_path, capture_output=True, timeout=60)
    assert plain.returncode == -signal.SIGXFSZ
    r = triage(exe, cwd=tmp_path)
    assert r["stop"]["signal"] == "SIGXFSZ" and r["verdict"] == "file-size-limit"
    assert r["stop"]["origin"] == "self" and r["stop"]["code_name"] == "SI_USER"
    assert r["frames"][0]["function"] == "write_chunk"
