"""A stack overflow caught by a stack-clash probe (fixtures/faults/
stack_probe.c, built here with -fstack-clash-protection): the report names
the probe and does not advise the flag the program was built with.  Facts:
objdump's instruction at the faulting pc, from plain gdb's pc and mappings."""
from __future__ import annotations

import re
import signal

from tests.e2e.built import build, kernel_core, triage
from tests.host import GDB, run


def test_an_overflow_a_stack_clash_probe_caught(tmp_path):
    exe = build("gcc", "stack_probe.c", tmp_path, "-O1", "-fstack-clash-protection")
    _, core = kernel_core([str(exe)], tmp_path / "cwd", signal.SIGSEGV)
    plain = run([GDB, "-nx", "-batch", "-ex", "p/x $pc", "-ex", "info proc mappings",
                 str(exe), str(core)]).stdout
    pc = int(re.search(r"\$1 = (0x[0-9a-f]+)", plain).group(1), 16)
    base = min(int(m.group(1), 16) for m in re.finditer(
        # gdb 13 indents the rows; gdb 16 does not, and ends them with a space
        rf"^\s*(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+0x0\s+.*{exe.name}\s*$", plain, re.M))
    dump = run(["objdump", "-d", "--no-show-raw-insn", str(exe)]).stdout
    m = re.search(rf"^\s+{pc - base:x}:\s+(.+)$", dump, re.M)
    assert m and re.match(r"or[bwlq]?\s+\$0x0,(0x[0-9a-f]+)?\(%rsp\)", m.group(1)), m
    r = triage(exe, core)
    assert r["verdict"] == "stack-overflow"
    spill = r["reports"]["spill-audit"]
    text = " ".join(spill["explanation"] + spill["advice"])
    assert "stack-clash probe" in text
    assert "build with -fstack-clash-protection" not in text
