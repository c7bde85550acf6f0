"""isa-check end to end: live crash, gcore core, kernel core and the static
ADDRESS form, each with and without glibc debug info."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import MODES, objdump_at
from tests.e2e.gdb_session import GdbSession, assert_no_traceback
from tests.host import cpuinfo, parse_announcement

SOURCES = ["live", "gcore", "kernel", "static"]


def _session_for(source, mode, isa_crash, tmp_path, debuginfo, kernel_core, gcore_core):
    """A gdb stopped where the mode's instruction is, and what the fixture said."""
    m = MODES[mode]
    if source == "live":
        gdb = GdbSession(str(isa_crash), debuginfo=debuginfo, cwd=tmp_path)
        if not m.crashes:
            gdb.cmd(f"break {mode}_fault")
        out = tmp_path / "out.txt"
        gdb.cmd(f"run {mode} >{out} 2>&1 </dev/null")
        return gdb, parse_announcement(out.read_text())
    if source in ("gcore", "kernel"):
        core, facts = (gcore_core if source == "gcore" else kernel_core)(mode)
        gdb = GdbSession(str(isa_crash), "-ex", f"core-file {core}", debuginfo=debuginfo,
                         cwd=tmp_path)
        return gdb, facts
    return GdbSession(str(isa_crash), debuginfo=debuginfo, cwd=tmp_path), None


@pytest.mark.parametrize("debuginfo", [True, False], ids=["debuginfo", "nodebuginfo"])
@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("mode", list(MODES))
def test_isa_check_reports_the_instruction(mode, source, debuginfo, isa_crash, symbols,
                                           tmp_path, kernel_core, gcore_core):
    m = MODES[mode]
    gdb, facts = _session_for(source, mode, isa_crash, tmp_path, debuginfo, kernel_core,
                              gcore_core)
    with gdb:
        command = "isa-check --json" + (f" {mode}_fault" if source == "static" else "")
        r = gdb.json(command)

    fault_label, kernel_label = symbols[f"{mode}_fault"], symbols[f"{mode}_kernel"]
    assert r["schema"] == "gdbext/isa-check/1"
    if source == "static":
        assert r["address"] == fault_label
        assert r["signal"] is None
    else:
        assert r["address"] == int(facts["fault"], 16)      # the fixture's own word
        sig = r["signal"]
        if m.crashes:
            assert (sig["name"], sig["code_name"]) == (m.signal, m.code)
            if m.signal == "SIGILL":
                assert sig["addr"] == r["address"]           # #UD: si_addr is the pc
        else:
            assert sig["name"] == "SIGTRAP"                  # the test's breakpoint
    assert (r["symbol"], r["offset"]) == (f"{mode}_kernel", fault_label - kernel_label)
    assert r["function"] == f"{mode}_kernel"
    assert r["object"].endswith("/isa_crash")

    raw, mnemonic = objdump_at(isa_crash, fault_label)
    if mode == "apx":     # binutils 2.40 does not know REX2 either: it shows one byte
        assert r["bytes"].startswith(raw)
    else:
        assert r["bytes"] == raw                             # objdump agrees on the bytes
    assert r["encoding"] == m.encoding
    assert set(r["features"]) == m.features
    assert r["verdict"] == m.expected_verdict
    if mode != "apx":
        assert r["mnemonic"] == mnemonic
        assert r["missing"] == m.expected_missing
    if mode == "trap":
        assert r["trap"] and "ud2" in r["trap"]
    if mode == "apx":
        assert any("REX2" in reason and "APX" in reason for reason in r["reasons"])

    cpu = r["cpu"]
    # glibc's snapshot where there is a process image; the host where there is none
    assert cpu["source"] == ("native" if source == "static" else "process")
    if source in ("gcore", "kernel"):
        assert cpu["xcr0_source"] == "core NT_X86_XSTATE note"
    info = cpuinfo()
    assert cpu["vendor"] == info["vendor_id"]
    assert (cpu["family"], cpu["model"], cpu["stepping"]) == (
        int(info["cpu family"]), int(info["model"]), int(info["stepping"]))


def test_text_report_names_the_feature_and_its_cpuid_bit(isa_crash, tmp_path):
    m = MODES["fma4"]
    with GdbSession(str(isa_crash), cwd=tmp_path) as gdb:
        out = gdb.cmd("isa-check fma4_fault")
    assert_no_traceback(out)
    first = out.strip().splitlines()[0]
    assert first.startswith(f"isa-check: {m.expected_verdict}")
    # AMD APM vol. 3, CPUID Fn8000_0001_ECX bit 16 = FMA4.
    assert "fma4" in out and "CPUID.80000001h:ECX[16]" in out
    assert ("MISSING" in out) == m.crashes
    assert "vfmaddpd" in out


def test_selected_frame_and_registers_are_left_as_they_were(isa_crash, tmp_path):
    with GdbSession(str(isa_crash), cwd=tmp_path) as gdb:
        gdb.cmd("run baseline >/dev/null 2>&1 </dev/null")
        gdb.cmd("frame 1")
        before = gdb.cmd("info registers")
        frame_before = gdb.cmd("frame")
        r = gdb.json("isa-check --json")
        # In frame 1 the pc is main's return address, not the faulting one.
        assert r["function"] == "main" and r["signal"] is None
        assert gdb.cmd("info registers") == before
        assert gdb.cmd("frame") == frame_before
        assert "SIGSEGV" in gdb.cmd("info program")


def test_address_expressions(isa_crash, symbols, tmp_path):
    fault = symbols["fma4_fault"]
    with GdbSession(str(isa_crash), cwd=tmp_path) as gdb:
        addresses = {gdb.json(f"isa-check --json {e}")["address"]
                     for e in ("fma4_fault", "&fma4_fault", f"{fault:#x}",
                               f"fma4_kernel + {fault - symbols['fma4_kernel']}")}
    assert addresses == {fault}
