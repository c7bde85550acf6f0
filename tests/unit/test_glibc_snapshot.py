"""Locating glibc's cpu_features table from the code of __x86_get_cpuid_feature_leaf,
on code assembled by `as` in the shapes glibc is built in."""
from __future__ import annotations

import struct
import subprocess

import pytest

from gdbext.errors import GdbextError
from gdbext.isa.glibc_snapshot import locate_table, read_snapshot

CODE_AT, GOT, RTLD_GLOBAL_RO = 0x1000, 0x5000, 0x9000

SHARED = """  # libc.so: the table's base is loaded from the GOT
    lea 0x3000(%rip), %rax
    cmp $8, %edi
    ja 1f
    mov 0x3fed(%rip), %rax        # GOT slot at 0x5000 (rip = 0x1013)
    mov %edi, %edi
    shl $5, %rdi
    lea 0x84(%rdi,%rax,1), %rax
1:  ret
"""
STATIC = """  # a static binary: the table is addressed directly
    cmp $8, %edi
    ja 1f
    lea 0x7ff4(%rip), %rax        # 0x9000 (rip = 0x100c)
    mov %edi, %edi
    shl $5, %rdi
    lea 0x84(%rdi,%rax,1), %rax
    ret
1:  xor %eax, %eax
    ret
"""


def _assemble(tmp_path, source: str) -> bytes:
    (tmp_path / "f.s").write_text(".text\n" + source)
    subprocess.run(["as", "--64", "-o", str(tmp_path / "f.o"), str(tmp_path / "f.s")], check=True)
    subprocess.run(["objcopy", "-O", "binary", "-j", ".text", str(tmp_path / "f.o"),
                    str(tmp_path / "f.bin")], check=True)
    return (tmp_path / "f.bin").read_bytes()


def _memory(records: dict[int, tuple[int, ...]], basic=(2, 16, 0x1A, 0x2, 1)):
    mem = {GOT: struct.pack("<Q", RTLD_GLOBAL_RO)}
    table = RTLD_GLOBAL_RO + 0x84
    mem[table - 20] = struct.pack("<5I", *basic)
    blob = bytearray(32 * 9)
    for i, words in records.items():
        struct.pack_into("<8I", blob, 32 * i, *words)
    mem[table] = bytes(blob)

    def read(addr, n):
        for start, data in mem.items():
            if start <= addr and addr + n <= start + len(data):
                return data[addr - start:addr - start + n]
        raise GdbextError(f"unmapped {addr:#x}")
    return read


@pytest.mark.parametrize("shape", [SHARED, STATIC], ids=["shared-got", "static-lea"])
def test_locates_table_and_reads_leaves(tmp_path, shape):
    code = _assemble(tmp_path, shape)
    leaf1 = (0x00B00F21, 0, 0x7EF8320B, 0x178BFBFF)        # family 0x1a model 2 stepping 1
    ext1 = (0, 0, 1 << 16, 0)                               # fma4
    read = _memory({0: leaf1 + leaf1, 2: ext1 + ext1})
    loc = locate_table(code, CODE_AT, read)
    assert (loc.table, loc.stride, loc.count) == (RTLD_GLOBAL_RO + 0x84, 32, 9)
    cpu = read_snapshot(loc, read)
    assert (cpu.vendor, cpu.family, cpu.model, cpu.stepping) == ("AuthenticAMD", 0x1A, 2, 1)
    assert cpu.leaves[(0x80000001, 0)][2] == 1 << 16
    assert cpu.leaves[(7, 0)] == (0, 0, 0, 0)               # an all-zero record: no such bits
    assert cpu.notes == []


def test_disagreeing_basic_record_is_noted(tmp_path):
    code = _assemble(tmp_path, SHARED)
    leaf1 = (0x00B00F21, 0, 0, 0)
    read = _memory({0: leaf1 + leaf1}, basic=(2, 16, 0x19, 0x1, 0))
    cpu = read_snapshot(locate_table(code, CODE_AT, read), read)
    assert cpu.family == 0x1A and "family 0x19" in cpu.notes[0]


def test_unexpected_shape_is_a_clear_error(tmp_path):
    code = _assemble(tmp_path, "xor %eax, %eax\n ret\n")
    with pytest.raises(GdbextError, match="expected shape"):
        locate_table(code, CODE_AT, lambda a, n: b"\0" * n)
