"""The CPU judged is the one the process ran on: glibc's CPUID snapshot in the
process image, not the host running gdb.

The proof edits a copy of a core: it flips the fma4 bit inside glibc's
snapshot (found through glibc's own debug info with plain gdb, independently
of gdbext) and checks that isa-check follows the core, against the host.
"""
from __future__ import annotations

import shutil
import struct

import pytest

from tests.e2e.gdb_session import GdbSession
from tests.host import core_file_offset, glibc_field_address, host_has

FMA4_ECX = "_rtld_global_ro._dl_x86_cpu_features.features[2].cpuid.ecx"   # CPUID 8000_0001 ECX
FMA4_BIT = 16


@pytest.mark.parametrize("source", ["kernel", "gcore"])
def test_flipped_bit_in_core_is_what_isa_check_reports(source, isa_crash, kernel_core,
                                                       gcore_core, tmp_path):
    core, facts = (kernel_core if source == "kernel" else gcore_core)("fma4")
    address = glibc_field_address(isa_crash, core, FMA4_ECX)
    if address is None:
        pytest.skip("no glibc (ld.so) debug info here to locate the snapshot independently")
    edited = tmp_path / "edited.core"
    shutil.copy(core, edited)
    offset = core_file_offset(edited, address)
    with open(edited, "r+b") as f:
        f.seek(offset)
        ecx = struct.unpack("<I", f.read(4))[0]
        original = bool(ecx >> FMA4_BIT & 1)
        assert original == host_has("fma4"), "the core's snapshot should match this host"
        f.seek(offset)
        f.write(struct.pack("<I", ecx ^ (1 << FMA4_BIT)))

    with GdbSession(str(isa_crash), "-ex", f"core-file {edited}", debuginfo=False,
                    cwd=tmp_path) as gdb:
        r = gdb.json("isa-check --json")
    assert r["address"] == int(facts["fault"], 16)
    assert r["cpu"]["source"] == "process"
    flipped = not original
    assert r["feature_details"][0]["name"] == "fma4"
    assert r["feature_details"][0]["present"] is flipped
    assert r["verdict"] == ("supported" if flipped else "unsupported")
    # ... while the host's own CPUID would have said the opposite
    assert host_has("fma4") is original
