"""isa-check end to end: live crash, gcore core, kernel core and the static
ADDRESS form, each with and without glibc debug info."""
from __future__ import annotations

import re
import shutil
import signal
import subprocess

import pytest

from tests.e2e.conftest import MODES, objdump_at
from tests.e2e.gdb_session import GdbSession, assert_no_traceback
from tests.host import FIXTURES, cpuinfo, parse_announcement, run, unlimited_core

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


# x86-64 psABI 1.0 §3.1.1 "Micro-Architecture Levels" (cpuinfo spellings:
# pni = SSE3, abm = LZCNT, lahf_lm = LAHF/SAHF in 64-bit mode).
PSABI_V2 = {"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"}
PSABI_V3 = {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}


def _guest_cpuid(model: str) -> dict[str, int]:
    """CPUID bits as the baseline build of the fixture prints them under qemu."""
    out = run(["qemu-x86_64", "-cpu", model, str(FIXTURES / "built_base"), "cpuid"]).stdout
    return {k: int(v) for k, v in (line.split("=") for line in out.split())}


PSABI_V4 = {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
# (program, qemu CPU model): gcc -march builds and rustc -Ctarget-cpu=x86-64-v3
BUILDS = [("built_v3", "Nehalem"), ("built_v3", "SandyBridge"), ("built_v4", "Haswell"),
          ("rust/bits_v3", "Nehalem")]


def _psabi_level(absent: set) -> str:
    for n, features in ((4, PSABI_V2 | PSABI_V3 | PSABI_V4), (3, PSABI_V2 | PSABI_V3),
                        (2, PSABI_V2)):
        if not features & absent:
            return f"x86-64-v{n}"
    return "x86-64-v1"


@pytest.mark.parametrize("debuginfo", [True, False], ids=["debuginfo", "nodebuginfo"])
@pytest.mark.parametrize("program, model", BUILDS, ids=[f"{p}-{m}" for p, m in BUILDS])
def test_a_build_for_a_newer_cpu_says_what_it_was_built_for(program, model, debuginfo,
                                                            tmp_path):
    """A program built for a newer CPU run on an older guest CPU: the report
    names the -march the producer recorded (rustc records none, and says so),
    the guest's psABI level and what it lacks; a guest core has no
    NT_SIGINFO, so the signal comes from pr_cursig with no si_code quoted."""
    if shutil.which("qemu-x86_64") is None:
        pytest.skip("qemu-user is not installed")
    exe = FIXTURES / program
    producer = run(["readelf", "--debug-dump=info", str(exe)]).stdout
    found = re.search(r"DW_AT_producer.*\s-march=(\S+)", producer)
    march = found.group(1) if found else None
    rust = "rustc version" in producer
    assert (march is None) == rust, march
    bits = _guest_cpuid(model)
    absent = {name for name, v in bits.items() if not v}
    level = _psabi_level(absent)
    proc = subprocess.run(["qemu-x86_64", "-cpu", model, str(exe)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=unlimited_core, stdin=subprocess.DEVNULL)
    assert proc.returncode in (-signal.SIGILL, 128 + signal.SIGILL), proc
    cores = sorted(tmp_path.glob(f"qemu_{exe.name}_*.core"))
    if not cores:
        pytest.skip("qemu wrote no guest core")
    assert "NT_SIGINFO" not in run(["readelf", "-n", str(cores[0])]).stdout
    with GdbSession(str(exe), "-ex", f"core-file {cores[0]}", debuginfo=debuginfo,
                    cwd=tmp_path) as gdb:
        text = gdb.cmd("isa-check")
        r = gdb.json("isa-check --json")
    assert_no_traceback(text)
    assert r["verdict"] == "unsupported"
    assert r["missing"] and set(r["missing"]) <= absent
    assert r["cpu"]["source"] == "process"            # glibc's snapshot of the guest CPU
    assert r["signal"]["name"] == "SIGILL" and r["signal"]["source"] == "pr_cursig"
    assert r["signal"]["code"] is None and r["signal"]["code_name"] is None
    assert not any("ILL_" in reason for reason in r["reasons"]), r["reasons"]
    assert "ILL_" not in text and "pr_cursig" in text
    assert r["cpu_level"]["level"] == level and r["cpu_level"]["known"]
    following = {"x86-64-v1": PSABI_V2, "x86-64-v2": PSABI_V3, "x86-64-v3": PSABI_V4}[level]
    assert set(r["cpu_level"]["next_level_lacks"]) == following & absent
    assert f"cpu level    {level}" in text
    [fix] = r["hints"]
    if rust:
        assert r["built_for"]["march"] is None and r["built_for"]["language"] == "rust"
        assert "is_x86_feature_detected!" in fix and f"target-cpu={level}" in fix
        return
    assert r["built_for"]["march"] == march and r["built_for"]["level"] == march
    assert f"-march={march}" in fix and "target_clones" in fix and "glibc-hwcaps" in fix
    assert f"-march={level}" in fix
    assert f"-march={march} in DW_AT_producer" in text


def test_a_baseline_build_says_the_code_chose_the_instruction(isa_crash, tmp_path):
    """isa_crash is built for the default target and holds hand-written kernels:
    the advice blames the code's own choice, not the build flags."""
    producer = run(["readelf", "--debug-dump=info", str(isa_crash)]).stdout
    march = re.search(r"DW_AT_producer.*\s-march=(\S+)", producer)
    with GdbSession(str(isa_crash), cwd=tmp_path) as gdb:
        r = gdb.json("isa-check --json --cpu nehalem avx512_fault")
    assert r["verdict"] == "unsupported"
    assert r["built_for"]["march"] == (march.group(1) if march else None)
    assert r["cpu_level"]["level"] == "x86-64-v2"
    if march:
        assert any("chosen by the code itself" in h for h in r["hints"]), r["hints"]
