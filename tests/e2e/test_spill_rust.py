"""spill-audit on a rustc-built program (fixtures/spill/rust_cast.rs): a
Vec<u32> viewed as f32x4 lanes and read with movaps faults with #GP.  Truth
from the program's own words (the pointer it loads from), nm, objdump and
rustc --version."""
from __future__ import annotations

import re
import subprocess

from tests.e2e.gdb_session import GdbSession
from tests.host import FIXTURES, kernel_core, run

RUST_CAST = FIXTURES / "rust" / "rust_cast"
RUST_GREEN = FIXTURES / "rust" / "rust_green"


def rustc_version() -> str:
    for rustc in ("rustc", str(__import__("pathlib").Path.home() / ".cargo/bin/rustc")):
        try:
            return run([rustc, "--version"]).stdout.split()[1]
        except (OSError, subprocess.CalledProcessError):
            continue
    return ""


def test_misaligned_cast_in_rust(tmp_path):
    assert RUST_CAST.exists(), "run 'make setup' first"
    core, stdout, signo = kernel_core([str(RUST_CAST)], tmp_path)
    fault_ptr = int(re.search(r"fault_ptr=(0x[0-9a-f]+)", stdout).group(1), 16)
    assert signo == 11
    with GdbSession(str(RUST_CAST), "-ex", f"core-file {core}", debuginfo=False,
                    cwd=tmp_path) as gdb:
        r = gdb.json("spill-audit --json")
        text = gdb.cmd("spill-audit")
    assert r["fault"]["kind"] == "misaligned-access" and r["verdict"] == "other"
    assert r["fault"]["effective_address"] == fault_ptr
    assert r["instruction"]["mnemonic"] == "movaps"
    # the function: its mangled symbol (nm) and the readable name in text and JSON
    mangled = r["function"]["name"]
    symbols = run(["nm", str(RUST_CAST)]).stdout
    assert re.search(rf" [Tt] {re.escape(mangled)}$", symbols, re.M)
    assert mangled.startswith(("_ZN", "_R")) and r["function"]["demangled"] == \
        "rust_cast::sum_lanes"
    assert "rust_cast::sum_lanes" in text and mangled not in text
    # what the binary records about its build
    build = r["build"]
    assert build["language"] == "rust"
    version = rustc_version()
    assert any(c.startswith(f"rustc version {version}") for c in build["comment"])
    assert build["rust_codegen_units"]["rust_cast"] == [0]     # -Ccodegen-units=1
    assert "opt-level" in build["not_recorded"]
    assert any("slice::from_raw_parts" in a for a in r["advice"])


def test_green_thread_trampoline_misaligns_the_task(tmp_path):
    """green_switch (global_asm!) calls the task with rsp 8 bytes off; the
    task's movaps spill faults.  The fix is the trampoline: rustc cannot
    realign the callee."""
    assert RUST_GREEN.exists(), "run 'make setup' first"
    core, stdout, signo = kernel_core([str(RUST_GREEN)], tmp_path)
    lo, hi = (int(x, 16) for x in re.search(r"stack_lo=(0x[0-9a-f]+) stack_hi=(0x[0-9a-f]+)",
                                            stdout).groups())
    assert signo == 11
    with GdbSession(str(RUST_GREEN), "-ex", f"core-file {core}", debuginfo=False,
                    cwd=tmp_path) as gdb:
        r = gdb.json("spill-audit --json")
    op = r["instruction"]
    assert r["fault"]["kind"] == "misaligned-access" and op["mnemonic"] == "movaps"
    assert lo <= r["fault"]["effective_address"] < hi            # on the green stack
    assert r["fault"]["effective_address"] % 16 == 8
    assert r["stack"]["diagnosis"] == "entered-misaligned"
    assert r["stack"]["misaligned_by_caller"] == "green_switch"
    assert r["verdict"] == "stack-spill-fault"
    assert r["function"]["demangled"] == "rust_green::task"
    advice = " ".join(r["advice"])
    assert "trampoline" in advice and "-mstackrealign" in advice
    assert "force_align_arg_pointer))" not in advice            # the C advice is not given
