"""spill-audit names the aligned-load intrinsic inlined at the fault and its
unaligned twin (fixtures/isa/intrinsic_load.c: _mm_load_ps on p + 1 float)."""
from __future__ import annotations

import re

import pytest

from tests.e2e.gdb_session import GdbSession, assert_no_traceback
from tests.host import FIXTURES, GDB, run

EXE = FIXTURES / "intrinsic_load"


@pytest.mark.parametrize("debuginfo", [True, False], ids=["debuginfo", "nodebuginfo"])
def test_the_intrinsic_and_its_unaligned_form_are_named(debuginfo, tmp_path):
    # Plain gdb: the fault's source line is the intrinsic's call.
    plain = run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                 "-ex", "run", "-ex", "frame", str(EXE)]).stdout
    assert "SIGSEGV" in plain
    line = re.findall(r"^\d+\s+(.*)$", plain, re.M)[-1]
    assert "_mm_load_ps(" in line
    with GdbSession(str(EXE), debuginfo=debuginfo, cwd=tmp_path) as gdb:
        gdb.cmd("run >/dev/null 2>&1 </dev/null")
        text = gdb.cmd("spill-audit")
        r = gdb.json("spill-audit --json")
    assert_no_traceback(text)
    assert r["instruction"]["mnemonic"] == "movaps"
    assert r["instruction"]["inlined_from"][0] == "_mm_load_ps"
    # Intel's intrinsics guide: the unaligned twin of _mm_load_ps is _mm_loadu_ps.
    assert "use _mm_loadu_ps" in text and "inlined into sum4" in text
