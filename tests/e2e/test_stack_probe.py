"""A stack overflow caught by a stack-clash probe (fixtures/faults/
stack_probe.c, built here with -fstack-clash-protection): the report names
the probe and does not advise the flag the program was built with.  Facts:
objdump's instruction at the faulting pc, the kernel's siginfo in plain gdb."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.host import GDB, REPO, find_kernel_core, kernel_cores_land_in_cwd, run, \
    unlimited_core

SOURCE = REPO / "fixtures" / "faults" / "stack_probe.c"


def test_an_overflow_a_stack_clash_probe_caught(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    if not kernel_cores_land_in_cwd():
        pytest.skip("core_pattern does not write kernel cores into the cwd")
    exe = tmp_path / "stack_probe"
    run(["gcc", "-O1", "-fstack-clash-protection", "-o", str(exe), str(SOURCE)])
    proc = subprocess.run([str(exe)], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          preexec_fn=unlimited_core, stdin=subprocess.DEVNULL)
    assert proc.returncode == -11, proc
    core = find_kernel_core(tmp_path, int(re.search(r"pid=(\d+)", proc.stdout).group(1)))
    plain = run([GDB, "-nx", "-batch", "-ex", "p/x $pc", "-ex", "info proc mappings",
                 str(exe), str(core)]).stdout
    pc = int(re.search(r"\$1 = (0x[0-9a-f]+)", plain).group(1), 16)
    base = min(int(m.group(1), 16) for m in re.finditer(
        rf"^\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+0x0\s+.*{exe.name}$", plain, re.M))
    dump = run(["objdump", "-d", "--no-show-raw-insn", str(exe)]).stdout
    m = re.search(rf"^\s+{pc - base:x}:\s+(.+)$", dump, re.M)
    assert m and re.match(r"or[bwlq]?\s+\$0x0,(0x[0-9a-f]+)?\(%rsp\)", m.group(1)), m
    out = run([GDB, "-nx", "-q", "-batch", "-iex", "set debuginfod enabled off",
               "-ex", f"source {REPO / 'gdbinit.py'}", "-ex", "crash-triage --json",
               str(exe), str(core)]).stdout
    r = json.loads(next(l for l in out.splitlines() if l.startswith("{")))
    assert r["verdict"] == "stack-overflow"
    spill = r["reports"]["spill-audit"]
    text = " ".join(spill["explanation"] + spill["advice"])
    assert "stack-clash probe" in text
    assert "build with -fstack-clash-protection" not in text
