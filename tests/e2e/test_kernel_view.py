"""The kernel's view of the CPU next to CPUID's, in every mode that runs on
this host.  Whether this kernel hides rdseed (Linux does on Zen 5) is computed
here: raw CPUID from glibc's own diagnostics (`ld.so --list-diagnostics`,
x86.cpu_features.features[1] is leaf 7) against /proc/cpuinfo."""
from __future__ import annotations

import re
import subprocess

import pytest

from tests.e2e.gdb_session import GdbSession
from tests.host import FIXTURES, cpu_flags

ISA_CRASH = FIXTURES / "isa_crash"
LDSO = "/lib64/ld-linux-x86-64.so.2"


def raw_cpuid_has_rdseed() -> bool | None:
    proc = subprocess.run([LDSO, "--list-diagnostics"], capture_output=True, text=True)
    m = re.search(r"x86\.cpu_features\.features\[0x1\]\.cpuid\[0x1\]=(0x[0-9a-f]+)",
                  proc.stdout)
    return None if m is None else bool(int(m.group(1), 16) >> 18 & 1)


def expectations():
    raw = raw_cpuid_has_rdseed()
    if raw is None:
        pytest.skip("ld.so --list-diagnostics shows no CPUID (glibc < 2.33)")
    kernel = "rdseed" in cpu_flags()
    return raw, kernel, raw and not kernel


def check(r: dict, raw: bool, kernel: bool, hidden: bool) -> None:
    (feature,) = r["feature_details"]
    assert feature["name"] == "rdseed"
    assert feature["present"] == raw and feature["kernel"] == kernel
    assert bool(r["kernel_hidden"]) == hidden
    assert r["cpu"]["kernel_flags_source"].startswith("this host's /proc/cpuinfo")


@pytest.mark.negative
@pytest.mark.parametrize("symbol", ["rdseed32_insn", "rdseed64_insn"])
def test_no_process_consults_the_kernel_too(symbol, tmp_path):
    raw, kernel, hidden = expectations()
    with GdbSession(str(ISA_CRASH), cwd=tmp_path) as gdb:
        r = gdb.json(f"isa-check --json {symbol}")
        text = gdb.cmd(f"isa-check {symbol}")
    assert r["cpu"]["source"] == "native"
    check(r, raw, kernel, hidden)
    assert "/proc/cpuinfo" in text
    assert ("do-not-use" in text) == hidden


def test_live_and_gcore_on_this_host(tmp_path):
    raw, kernel, hidden = expectations()
    core = tmp_path / "gcore.core"
    with GdbSession(str(ISA_CRASH), cwd=tmp_path) as gdb:
        gdb.cmd("break baseline_kernel")
        gdb.cmd(f"run baseline >{tmp_path}/out 2>&1 </dev/null", timeout=60)
        r = gdb.json("isa-check --json rdseed32_insn")
        gdb.cmd(f"gcore {core}")
    assert r["cpu"]["source"] == "process"
    check(r, raw, kernel, hidden)
    with GdbSession(str(ISA_CRASH), "-ex", f"core-file {core}", cwd=tmp_path) as gdb:
        r = gdb.json("isa-check --json rdseed32_insn")
    assert r["cpu"]["source"] == "process"
    check(r, raw, kernel, hidden)
    assert "matches this host" in r["cpu"]["kernel_flags_source"]
