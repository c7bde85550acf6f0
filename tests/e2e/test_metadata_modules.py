"""crash-triage's modules are the objects the process ran, as gdb loads them:
not a file the process only read.  Rust std's backtrace printer maps libc's
separate .debug file (when libc6-dbg is installed) to symbolise a panic's
backtrace; the core's NT_FILE lists it, but it is no module.

Truth: gdb's own `info proc mappings` (the core's NT_FILE) and `info
sharedlibrary`, never gdbext.
"""
from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.e2e.gdb_session import GdbSession
from tests.host import FIXTURES, GDB, kernel_cores_land_in_cwd, find_kernel_core, unlimited_core

PANIC = FIXTURES / "everyday" / "panic_abort"


def test_a_debug_file_mapped_to_print_a_backtrace_is_no_module(tmp_path):
    if not PANIC.exists():
        pytest.skip("make setup builds the Rust fixtures")
    if not kernel_cores_land_in_cwd():
        pytest.skip("core_pattern does not write kernel cores into the cwd")
    proc = subprocess.run([str(PANIC), "index"], cwd=tmp_path, capture_output=True, text=True,
                          preexec_fn=unlimited_core, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "RUST_BACKTRACE": "1"})
    pid = int(re.search(r"pid=(\d+)", proc.stdout).group(1))
    core = find_kernel_core(tmp_path, pid)
    assert core is not None
    plain = subprocess.run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                            "-ex", "info proc mappings", "-ex", "info sharedlibrary",
                            str(PANIC), str(core)], capture_output=True, text=True).stdout
    # gdb 13 indents the rows; gdb 16 does not, and ends them with a space
    mapped = set(re.findall(r"^\s*0x[0-9a-f]+\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+"
                            r"(?:\S+\s+)?(/\S+)[ \t]*$", plain, re.M))
    if not any(p.endswith(".debug") for p in mapped):
        pytest.skip("std's backtrace mapped no .debug file here (libc6-dbg missing, or this "
                    "std does not read it)")
    loaded = {os.path.realpath(p) for p in re.findall(r"^0x[0-9a-f]+\s+0x[0-9a-f]+\s+\S+"
                                                       r"(?:\s+\(\*\))?\s+(/\S+)$", plain, re.M)}
    assert loaded, plain
    with GdbSession(str(PANIC), str(core)) as gdb:
        modules = {os.path.realpath(m["path"])
                   for m in gdb.json("crash-triage --json")["metadata"]["modules"]}
    assert not any(p.endswith(".debug") for p in modules), modules
    assert modules == loaded | {os.path.realpath(PANIC)}, (modules, loaded)
