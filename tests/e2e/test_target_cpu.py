"""The CPU judged is the one the process ran on: glibc's CPUID snapshot in the
process image, not the host running gdb.

The proof edits a copy of a core: it flips the fma4 bit inside glibc's
snapshot (found through glibc's own debug info with plain gdb, independently
of gdbext) and checks that isa-check follows the core, against the host.
"""
from __future__ import annotations

import re
import shutil
import struct

import pytest
from elftools.elf.elffile import ELFFile

from tests.e2e.gdb_session import GdbSession
from tests.host import GDB, host_has, run

FMA4_ECX = "_rtld_global_ro._dl_x86_cpu_features.features[2].cpuid.ecx"   # CPUID 8000_0001 ECX
FMA4_BIT = 16


def _address_from_glibc_debuginfo(binary, core) -> int:
    out = run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
               "-ex", f"print &{FMA4_ECX}", str(binary), str(core)]).stdout
    m = re.search(r"\(unsigned int \*\) (0x[0-9a-f]+)", out)
    if not m:
        pytest.skip("no glibc (ld.so) debug info here to locate the snapshot independently")
    return int(m.group(1), 16)


def _file_offset(core, address: int) -> int:
    with open(core, "rb") as f:
        for seg in ELFFile(f).iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= address < seg["p_vaddr"] + seg["p_filesz"]:
                return seg["p_offset"] + address - seg["p_vaddr"]
    raise AssertionError(f"{address:#x} is not in the core's file image")


@pytest.mark.parametrize("source", ["kernel", "gcore"])
def test_flipped_bit_in_core_is_what_isa_check_reports(source, isa_crash, kernel_core,
                                                       gcore_core, tmp_path):
    core, facts = (kernel_core if source == "kernel" else gcore_core)("fma4")
    address = _address_from_glibc_debuginfo(isa_crash, core)
    edited = tmp_path / "edited.core"
    shutil.copy(core, edited)
    offset = _file_offset(edited, address)
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
