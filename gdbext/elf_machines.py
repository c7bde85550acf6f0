"""What machine an ELF file is for, from its first 20 bytes (e_ident,
e_type, e_machine: the ELF gABI), of any class and byte order -- so a core or
an executable of another architecture is named as gdb names it, before gdb
(which calls a core it cannot read "i386") gets a say."""
from __future__ import annotations

import struct

from .record import record

EM_X86_64 = 62
ELFCLASS32, ELFCLASS64 = 1, 2
# gdb's names of the machines a foreign file most likely comes from, by
# (ELF e_machine, ELF class); any other is named by its e_machine number.
NAMES = {(3, 1): "i386", (62, 1): "i386:x64-32", (62, 2): "i386:x86-64", (40, 1): "arm",
         (183, 2): "aarch64", (20, 1): "powerpc:common", (21, 2): "powerpc:common64",
         (22, 2): "s390:64-bit", (243, 2): "riscv:rv64", (8, 1): "mips"}


@record(frozen=True)
class Ident:
    elf_class: int          # ELFCLASS32 or ELFCLASS64
    big_endian: bool
    e_type: int
    machine: int

    @property
    def name(self) -> str:
        return NAMES.get((self.machine, self.elf_class), f"ELF machine {self.machine}")

    @property
    def x86_64(self) -> bool:
        return (self.machine, self.elf_class) == (EM_X86_64, ELFCLASS64)


def identify(path: str) -> Ident | None:
    """The ELF identity of ``path``; None when it is not an ELF file (or
    cannot be read)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(20)
    except OSError:
        return None
    return from_bytes(head)


def from_bytes(head: bytes) -> Ident | None:
    if len(head) < 20 or head[:4] != b"\x7fELF" or head[4] not in (1, 2) \
            or head[5] not in (1, 2):
        return None
    e_type, machine = struct.unpack_from("<HH" if head[5] == 1 else ">HH", head, 16)
    return Ident(head[4], head[5] == 2, e_type, machine)
