"""spill-audit on real faults: every fixture of fixtures/spill run live under
gdb and as a kernel core, with and without glibc debug info.  Expectations
come from the fixture's own `key=value` facts (its CFA, the slot it misplaced,
its thread's guard, the stub that misaligned it) and from objdump/nm of the
binary -- never from gdbext."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.gdb_session import GdbSession, assert_one_error_line
from tests.host import FIXTURES, facts_of, kernel_core, run

SPILL = FIXTURES / "spill"
NAMES = ["sse_stub", "avx128_stub", "ymm_realigned", "layout_bug", "noncanonical",
         "stack_overflow", "seed_vpinsrd", "stack_clash"]
SIGNALS = {"SIGSEGV": 11, "SIGBUS": 7}


def audit_live(name: str, debuginfo: bool, tmp_path) -> tuple[dict, dict]:
    with GdbSession(str(SPILL / name), debuginfo=debuginfo, cwd=tmp_path) as gdb:
        gdb.cmd("set environment SPILL_NO_HANDLER 1")
        out = gdb.cmd("run", timeout=60)
        if "layout=unsuitable" in out:
            pytest.skip("something is mapped where the clash frame lands")
        assert "received signal SIG" in out, out
        return facts_of(out), gdb.json("spill-audit --json")


def audit_core(name: str, debuginfo: bool, tmp_path) -> tuple[dict, dict]:
    core, stdout, _ = kernel_core([str(SPILL / name)], tmp_path)
    facts = facts_of(stdout)
    assert facts.get("check") == "ok", facts      # the kernel's siginfo matched the prediction
    with GdbSession(str(SPILL / name), "-ex", f"core-file {core}", debuginfo=debuginfo,
                    cwd=tmp_path) as gdb:
        return facts, gdb.json("spill-audit --json")


def nm(binary: Path) -> dict[str, int]:
    out = run(["nm", str(binary)]).stdout
    return {m.group(2): int(m.group(1), 16)
            for m in re.finditer(r"^([0-9a-f]+) \w (\S+)$", out, re.M)}


def objdump_function(binary: Path, symbol: str) -> list[tuple[int, str]]:
    out = run(["objdump", "-d", "-w", "--no-show-raw-insn", f"--disassemble={symbol}",
               str(binary)]).stdout
    return [(int(a, 16), text.strip()) for a, text in
            re.findall(r"^\s*([0-9a-f]+):\s+(.*)$", out, re.M)]


def file_address(facts: dict, pc: int, binary: Path) -> int:
    return pc - int(facts["kernel_addr"], 16) + nm(binary)[facts["kernel"]]


@pytest.mark.parametrize("source, debuginfo", [("live", True), ("live", False),
                                               ("core", True), ("core", False)])
@pytest.mark.parametrize("name", NAMES)
def test_fixture(name, source, debuginfo, tmp_path):
    binary = SPILL / name
    facts, r = (audit_live if source == "live" else audit_core)(name, debuginfo, tmp_path)
    assert r["schema"] == "gdbext/spill-audit/1"
    fault, op, stack = r["fault"], r["instruction"], r["stack"]
    # the fixture's prediction of its own crash, and the kernel's words
    assert r["verdict"] == facts["expect_verdict"]
    assert fault["kind"] == facts["expect_kind"]
    assert fault["signo"] == SIGNALS[facts["expect_signal"]]
    assert fault["si_code"] == int(facts["expect_si_code"])
    if "expect_si_addr" in facts:
        assert fault["si_addr"] == int(facts["expect_si_addr"], 16)
    else:
        assert int(facts["expect_si_addr_lo"], 16) <= fault["si_addr"] \
            < int(facts["expect_si_addr_hi"], 16)
    # the faulting instruction is the one objdump shows at that address
    listing = dict(objdump_function(binary, facts["kernel"]))
    shown = listing[file_address(facts, r["pc"], binary)]
    assert shown.split()[0] == op["mnemonic"]
    if "fault_pc" in facts:
        assert r["pc"] == int(facts["fault_pc"], 16)
    # the stack, as the fixture measured it
    if facts.get("stub") != "none" and "cfa" in facts:
        assert stack["cfa"] == int(facts["cfa"], 16)
        assert stack["cfa_residue"] == int(facts["misalign"])
    if int(facts.get("misalign", "0")):
        assert stack["misaligned_since"] == facts["kernel"]
        assert stack["misaligned_by_caller"] == facts["stub"]
    check = CHECKS.get(name)
    if check:
        check(facts, r, listing)


def _spill_fault(facts, r, listing):
    """The faulting operand is a slot the function stores from a vector
    register and reads back (objdump), and gdbext calls it a spill slot."""
    disp = re.search(r"(-?0x[0-9a-f]+)?\(%rsp\)", r["instruction"]["memory_operand"])
    slot = f"{disp.group(1) or ''}(%rsp)"
    stores = [t for t in listing.values() if re.search(rf"%[xyz]mm\d+,{re.escape(slot)}$", t)]
    reads = [t for t in listing.values() if re.search(rf"{re.escape(slot)},%[xyz]mm", t)]
    assert stores and reads
    assert r["slot"] is not None and r["slot"]["address"] == r["fault"]["effective_address"]
    assert r["fault"]["misaligned_by"] == int(facts["misalign"])
    assert r["function"]["spill_stores"] >= len(stores)
    assert r["stack"]["diagnosis"] == "entered-misaligned"


def _layout(facts, r, listing):
    assert r["fault"]["effective_address"] == int(facts["slot_addr"], 16)
    assert r["fault"]["misaligned_by"] == int(facts["slot_misalign"])
    assert r["stack"]["cfa_residue"] == 0 and r["stack"]["diagnosis"] == "frame-layout"


def _noncanonical(facts, r, listing):
    assert r["fault"]["effective_address"] == int(facts["pointer"], 16)


def _overflow(facts, r, listing):
    assert int(facts["guard_lo"], 16) <= r["fault"]["si_addr"] < int(facts["guard_hi"], 16)


def _clash(facts, r, listing):
    """Bounds as glibc's pthread_getattr_np gave them to the fixture; the frame
    as the prologue's `sub` (objdump) makes it."""
    bounds = r["stack"]["bounds"]
    assert (bounds["lo"], bounds["hi"]) == (int(facts["stack_lo"], 16),
                                            int(facts["stack_hi"], 16))
    assert (bounds["guard_lo"], bounds["guard_hi"]) == (int(facts["guard_lo"], 16),
                                                        int(facts["guard_hi"], 16))
    sub = max(int(m.group(1), 16) for t in listing.values()
              if (m := re.match(r"sub\s+\$(0x[0-9a-f]+),%rsp", t)))
    assert r["stack"]["frame_bytes"] >= sub >= int(facts["frame_bytes"], 16) - 0x100
    assert r["fault"]["si_addr"] < bounds["guard_lo"]
    assert any("-fstack-clash-protection" in a for a in r["advice"])
    assert r["build"]["language"] == "c"
    assert any("-fno-stack-clash-protection" in p for p in r["build"]["producers"]) \
        or not r["build"]["producers"]
    for row in r["stack_view"]:          # nothing near rsp is the guard: it is far above
        assert "guard page" not in row["notes"]


def _realigned(facts, r, listing):
    assert r["stack"]["realigned_to"] == int(facts["slot_align"])
    assert r["fault"]["effective_address"] == int(facts["pointer"], 16)


def _seed(facts, r, listing):
    op = r["instruction"]
    assert (op["mnemonic"], op["encoding"], op["access_size"]) == \
        ("vpinsrd", "VEX", int(facts["fault_operand_size"]))
    assert r["fault"]["required_alignment"] is None          # cannot fault on alignment
    assert r["fault"]["effective_address"] == int(facts["fault_operand"], 16)
    listed = {re.search(r"(0x[0-9a-f]+)\(%rsp\)", a["text"]).group(1)
              for a in r["aligned_stack_accesses"]}
    assert listed == set(facts["aligned_slots"].split(","))
    assert r["block"]["vector_registers_live_max"] == int(facts["live_ymm"])


CHECKS = {"sse_stub": _spill_fault, "avx128_stub": _spill_fault, "layout_bug": _layout,
          "noncanonical": _noncanonical, "stack_overflow": _overflow,
          "ymm_realigned": _realigned, "seed_vpinsrd": _seed, "stack_clash": _clash}


def test_text_report_and_selection(tmp_path):
    with GdbSession(str(SPILL / "sse_stub"), debuginfo=False, cwd=tmp_path) as gdb:
        gdb.cmd("set environment SPILL_NO_HANDLER 1")
        gdb.cmd("run", timeout=60)
        gdb.cmd("frame 1")
        before = gdb.cmd("frame")
        gdb.cmd("frame 0")
        text = gdb.cmd("spill-audit")
        assert text.startswith("spill-audit: STACK-SPILL-FAULT")
        for needle in ("SI_KERNEL", "movaps", "misaligned since: sse_kernel",
                       "switch_stack_stub", "spill slot", "FAULT", "why:", "fix:"):
            assert needle in text, needle
        gdb.cmd("frame 1")
        assert gdb.cmd("frame") == before
        outer = gdb.json("spill-audit --json")      # frame 1: the stub's return address
        assert outer["pc"] == int(gdb.cmd('printf "%lu\\n", $pc').strip())
        assert outer["fault"]["kind"] == "none"     # the signal belongs to frame 0
        assert "SIGSEGV" in gdb.cmd("info program")  # still stopped by the fault


@pytest.mark.negative
def test_no_fault_is_not_a_verdict(tmp_path):
    with GdbSession(str(SPILL / "layout_bug"), debuginfo=False, cwd=tmp_path) as gdb:
        gdb.cmd("break layout_kernel")
        gdb.cmd("set environment SPILL_NO_HANDLER 1")
        gdb.cmd("run", timeout=60)
        r = gdb.json("spill-audit --json")
    assert r["fault"]["kind"] == "none" and r["verdict"] == "other"


# Refused by gdbext's argument parser, before any dependency is imported:
# the vacuity check's packages-missing run leaves these out (tests/conftest.py).
PARSER = pytest.mark.negative(answered_without_packages=True)


@pytest.mark.negative
@pytest.mark.parametrize("args, needle", [
    ("", "no process or core"),
    pytest.param("--max-frames 0", "--max-frames: must be 1 or more", marks=PARSER),
    pytest.param("--bogus", "unrecognized arguments", marks=PARSER),
])
def test_usage_errors(args, needle, tmp_path):
    with GdbSession(cwd=tmp_path) as gdb:
        assert_one_error_line(gdb.cmd(f"spill-audit {args}".strip()), "spill-audit", needle)


@pytest.mark.negative
def test_executable_without_process(tmp_path):
    with GdbSession(str(SPILL / "sse_stub"), cwd=tmp_path) as gdb:
        assert_one_error_line(gdb.cmd("spill-audit"), "spill-audit", "no process or core")
