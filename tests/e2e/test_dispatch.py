"""Dispatch diagnosis on the OpenBLAS-like fixture: libminiblas picks a kernel by
CPU model and honours OPENBLAS_CORETYPE; forced to Piledriver it runs FMA4.

Expectations come from the fixture's own words (the core it chose), nm/objdump
of the library, the fixture's documented kernel ISAs and /proc/cpuinfo.
"""
from __future__ import annotations

import re
import shutil
import struct
import subprocess

import archspec.cpu
import pytest

from tests.e2e.conftest import objdump_at
from tests.e2e.gdb_session import GdbSession
from tests.real_libs import variant_isa
from tests.host import (FIXTURES, GDB, core_file_offset, cpuinfo, find_kernel_core,
                        glibc_field_address, host_has, kernel_cores_land_in_cwd,
                        run, unlimited_core)

PROGRAM = FIXTURES / "dispatch_crash"
LIBRARY = FIXTURES / "libminiblas.so"
FORCED = "Piledriver"
# The fixture's kernels (fixtures/dispatch/miniblas_kernels.S), lowest to highest
# OpenBLAS core, with the features that OpenBLAS core stands for.
FIXTURE_CORES = [("Prescott", {"pni"}), ("Sandybridge", {"avx"}),
                 ("Piledriver", {"avx", "fma", "fma4", "xop"}), ("Haswell", {"avx2", "fma"}),
                 ("SkylakeX", {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"})]


def announcement(text: str) -> dict:
    m = re.search(r"pid=(\d+) core=(\w+) kernel=(0x[0-9a-f]+)", text)
    assert m, text
    return {"pid": int(m.group(1)), "core": m.group(2), "kernel": int(m.group(3), 16),
            "survived": "survived" in text}


@pytest.fixture(scope="module")
def forced_run(tmp_path_factory):
    """One run with the override: does this CPU crash on the Piledriver kernel?"""
    assert PROGRAM.exists(), "run 'make setup' first"
    cwd = tmp_path_factory.mktemp("dispatch")
    proc = subprocess.run([str(PROGRAM)], cwd=cwd, capture_output=True, text=True,
                          env={"OPENBLAS_CORETYPE": FORCED, "PATH": "/usr/bin:/bin"},
                          preexec_fn=unlimited_core, stdin=subprocess.DEVNULL)
    facts = announcement(proc.stdout)
    if facts["survived"]:
        pytest.skip("this CPU runs FMA4 (AMD family 15h or Zen 1): the fixture does not crash")
    assert proc.returncode == -4
    return cwd, facts


def _expected_best() -> str:
    usable = [name for name, needs in FIXTURE_CORES if host_has(*needs)]
    return usable[-1]


def _session(source: str, cwd, debuginfo: bool, facts) -> GdbSession:
    if source == "live":
        gdb = GdbSession(str(PROGRAM), debuginfo=debuginfo, cwd=cwd)
        gdb.cmd(f"set environment OPENBLAS_CORETYPE {FORCED}")
        gdb.cmd(f"run >{cwd}/live.out 2>&1 </dev/null", timeout=60)
        return gdb
    if source == "gcore":
        core = cwd / "dispatch.gcore"
        if not core.exists():
            run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                 "-ex", f"set environment OPENBLAS_CORETYPE {FORCED}",
                 "-ex", f"run >{cwd}/gcore.out 2>&1 </dev/null", "-ex", f"gcore {core}",
                 str(PROGRAM)], cwd=cwd)
    else:
        if not kernel_cores_land_in_cwd():
            pytest.skip("kernel core_pattern does not write into the cwd")
        core = find_kernel_core(cwd, facts["pid"])
    return GdbSession(str(PROGRAM), "-ex", f"core-file {core}", debuginfo=debuginfo, cwd=cwd)


@pytest.mark.parametrize("debuginfo", [True, False], ids=["debuginfo", "nodebuginfo"])
@pytest.mark.parametrize("source", ["live", "gcore", "kernel"])
def test_forced_piledriver_kernel_is_explained(source, debuginfo, forced_run):
    cwd, facts = forced_run
    with _session(source, cwd, debuginfo, facts) as gdb:
        r = gdb.json("isa-check --json")
        text = gdb.cmd("isa-check")
    nm = {m.group(2): int(m.group(1), 16) for m in re.finditer(
        r"^([0-9a-f]+) T (\S+)$", run(["nm", str(LIBRARY)]).stdout, re.M)}
    kernel = f"dgemm_kernel_{facts['core'].upper()}"
    assert facts["core"] == FORCED and r["symbol"] == kernel
    assert r["object"].endswith("libminiblas.so")
    _, mnemonic = objdump_at(LIBRARY, nm[kernel] + r["offset"])
    assert mnemonic == r["mnemonic"] == "vfmaddpd"
    assert r["verdict"] == "unsupported" and "fma4" in r["missing"]

    d = r["dispatch"]
    assert (d["library"], d["variant"]) == ("OpenBLAS", facts["core"].upper())
    assert d["forced_by_environment"] is True and d["cause"] == "environment"
    assert r["environment"]["knobs"]["OPENBLAS_CORETYPE"] == FORCED
    # what the variant's functions use comes from their code (objdump), not a table
    truth = variant_isa(LIBRARY, "PILEDRIVER")
    assert d["requires_source"] == "code"
    assert set(d["missing"]) == {f for f in ("fma4", "xop", "fma", "avx512f")
                                 if truth[f] and not host_has(f)}
    best = _expected_best()
    assert d["suggested_value"].lower() == best.lower()
    assert any(f"OPENBLAS_CORETYPE={best}".lower() in h.lower() for h in r["hints"])
    assert kernel in text and f"OPENBLAS_CORETYPE={FORCED}" in text


def test_model_says_piledriver_while_cpuid_lacks_its_features(forced_run, tmp_path):
    """Edit a copy of the core: CPUID.1:EAX in glibc's snapshot becomes AMD family 15h
    model 02h (an "Opteron 63xx class" virtual CPU); the features stay this host's."""
    if cpuinfo().get("vendor_id") != "AuthenticAMD":
        pytest.skip("the family/model edit only names Piledriver on an AMD vendor string")
    if not kernel_cores_land_in_cwd():
        pytest.skip("kernel core_pattern does not write into the cwd")
    cwd, facts = forced_run
    core = find_kernel_core(cwd, facts["pid"])
    address = glibc_field_address(
        PROGRAM, core, "_rtld_global_ro._dl_x86_cpu_features.features[0].cpuid.eax")
    if address is None:
        pytest.skip("no glibc debug info to locate the snapshot independently")
    edited = tmp_path / "opteron.core"
    shutil.copy(core, edited)
    with open(edited, "r+b") as f:
        f.seek(core_file_offset(edited, address))
        f.write(struct.pack("<I", 0x00600F20))
    with GdbSession(str(PROGRAM), "-ex", f"core-file {edited}", debuginfo=False,
                    cwd=tmp_path) as gdb:
        r = gdb.json("isa-check --json")
    assert (r["cpu"]["family"], r["cpu"]["model"]) == (0x15, 0x02)
    assert r["microarchitecture"]["name"] == "piledriver"
    expected = {"pni" if f == "sse3" else f for f in archspec.cpu.TARGETS["piledriver"].features}
    assert set(r["microarchitecture"]["expected_absent"]) == {
        f for f in expected if not host_has(f)}
