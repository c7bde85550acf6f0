"""Damaged cores made at test time from real ones: a register note that says
pc 0 or all zeros, register notes relabelled so gdb finds none, an x86-64
core whose header says aarch64, an i386 core whose header says ARM.  Every
offset comes from the test's own parse of the ELF program headers and the
gABI note layout (never from gdbext), with the kernel's struct layouts
cited; what each edit wrote is returned so a test can look for it."""
from __future__ import annotations

import struct

NT_PRSTATUS, NT_PRPSINFO, NT_FILE = 1, 3, 0x46494C45
# include/uapi/linux/elfcore.h: pr_pid at 32 (64-bit) / 24 (32-bit), pr_reg at
# 112 on x86-64; arch/x86/include/asm/user_64.h: rip is the 17th u64, rsp the 20th.
PR_REG_X86_64, RIP, RSP, X86_64_REGS = 112, 16, 19, 27
E_MACHINE = 18                      # Elf{32,64}_Ehdr.e_machine
EM_ARM, EM_AARCH64 = 40, 183


def notes(core: bytes):
    """(name, type, offset of the note header, offset of desc, desc size) of
    every note, for ELF32 and ELF64 little-endian cores."""
    if core[4] == 2:
        phoff, = struct.unpack_from("<Q", core, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", core, 0x36)
        rows = [struct.unpack_from("<IIQQQQ", core, phoff + i * phentsize)
                for i in range(phnum)]
        segments = [(r[0], r[2], r[5]) for r in rows]
    else:
        phoff, = struct.unpack_from("<I", core, 28)
        phentsize, phnum = struct.unpack_from("<HH", core, 42)
        rows = [struct.unpack_from("<IIIIII", core, phoff + i * phentsize)
                for i in range(phnum)]
        segments = [(r[0], r[1], r[4]) for r in rows]
    for p_type, off, size in segments:
        at = off
        while p_type == 4 and at + 12 <= off + size:
            namesz, descsz, n_type = struct.unpack_from("<III", core, at)
            desc = at + 12 + (namesz + 3 & ~3)
            yield core[at + 12:at + 12 + namesz].rstrip(b"\0"), n_type, at, desc, descsz
            at = desc + (descsz + 3 & ~3)


def prstatus(core: bytes) -> list[tuple[int, int, int]]:
    """(desc offset, desc size, LWP) of each x86-64 NT_PRSTATUS."""
    return [(desc, size, struct.unpack_from("<i", core, desc + 32)[0])
            for name, n_type, _, desc, size in notes(core)
            if name == b"CORE" and n_type == NT_PRSTATUS]


def pc_zero(core: bytes) -> tuple[bytes, list[int]]:
    """rip = 0 in every NT_PRSTATUS; the LWPs edited."""
    out = bytearray(core)
    lwps = []
    for desc, _, lwp in prstatus(core):
        struct.pack_into("<Q", out, desc + PR_REG_X86_64 + 8 * RIP, 0)
        lwps.append(lwp)
    return bytes(out), lwps


def registers_zeroed(core: bytes) -> tuple[bytes, list[int]]:
    """Every register of every NT_PRSTATUS zeroed (a flipped register note)."""
    out = bytearray(core)
    lwps = []
    for desc, _, lwp in prstatus(core):
        start = desc + PR_REG_X86_64
        out[start:start + 8 * X86_64_REGS] = bytes(8 * X86_64_REGS)
        lwps.append(lwp)
    return bytes(out), lwps


def no_prstatus(core: bytes) -> tuple[bytes, int]:
    """Every NT_PRSTATUS retyped (0x999): gdb finds no registers; how many."""
    out = bytearray(core)
    count = 0
    for name, n_type, at, _, _ in notes(core):
        if name == b"CORE" and n_type == NT_PRSTATUS:
            struct.pack_into("<I", out, at + 8, 0x999)
            count += 1
    return bytes(out), count


def relabelled(core: bytes, machine: int) -> bytes:
    out = bytearray(core)
    struct.pack_into("<H", out, E_MACHINE, machine)
    return bytes(out)


NT_SIGINFO = 0x53494749


def load_moved(core: bytes, by: int = 0x10) -> tuple[bytes, int]:
    """The first PT_LOAD's p_vaddr moved ``by`` bytes (Elf64_Phdr p_vaddr at
    16): a mapping no page-aligned kernel or gcore writes; its new address."""
    phoff, = struct.unpack_from("<Q", core, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", core, 0x36)
    out = bytearray(core)
    for i in range(phnum):
        at = phoff + i * phentsize
        if struct.unpack_from("<I", core, at)[0] == 1:
            vaddr = struct.unpack_from("<Q", core, at + 16)[0] + by
            struct.pack_into("<Q", out, at + 16, vaddr)
            return bytes(out), vaddr
    raise ValueError("no PT_LOAD")


def signal_rewritten(core: bytes, signo: int) -> bytes:
    """NT_SIGINFO's si_signo (offset 0, include/uapi/asm-generic/siginfo.h)
    set to ``signo``: the notes then disagree on the signal."""
    out = bytearray(core)
    for name, n_type, _, desc, _ in notes(core):
        if name == b"CORE" and n_type == NT_SIGINFO:
            struct.pack_into("<i", out, desc, signo)
    return bytes(out)
