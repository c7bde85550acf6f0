"""Each thread's general registers from a core's NT_PRSTATUS notes -- what
gdb itself shows as that thread's frame 0 in the core (its ``.reg``
section).  x86-64 only: ``struct elf_prstatus`` (linux
include/uapi/linux/elfcore.h, <sys/procfs.h>) has pr_pid at +32 and
pr_reg, a ``struct user_regs_struct`` (arch/x86/include/asm/user_64.h: 27
unsigned longs in the order of GPR_NAMES), at +112; 336 bytes in all.
Pure: the core is read from its file."""
from __future__ import annotations

import struct

from . import core_file, elf_file
from .errors import GdbextError

GPR_NAMES = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax",
             "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss",
             "fs_base", "gs_base", "ds", "es", "fs", "gs")
PR_PID, PR_REG = 32, 112
PRSTATUS_SIZE = PR_REG + 8 * len(GPR_NAMES) + 8      # pr_fpvalid after the registers
REGS = struct.Struct("<27Q")


def registers(path: str) -> dict[int, dict[str, int]]:
    """LWP -> {register: value} for every NT_PRSTATUS of x86-64 size in the
    core at ``path`` (the first note of an LWP wins); GdbextError when the
    file cannot be read as a core."""
    out: dict[int, dict[str, int]] = {}
    segments = elf_file.program_headers(path)
    try:
        with open(path, "rb") as fh:
            for seg in segments:
                if seg.type != core_file.PT_NOTE or \
                        not 0 < seg.file_size <= core_file.MAX_NOTES_BYTES:
                    continue
                elf_file.seek(fh, seg.offset)
                for name, n_type, desc in core_file.notes(fh.read(seg.file_size)):
                    if name != b"CORE" or n_type != core_file.NT_PRSTATUS \
                            or len(desc) != PRSTATUS_SIZE:
                        continue
                    lwp, = struct.unpack_from("<i", desc, PR_PID)
                    if lwp > 0 and lwp not in out:
                        out[lwp] = dict(zip(GPR_NAMES, REGS.unpack_from(desc, PR_REG)))
    except OSError as exc:
        raise GdbextError(f"{path}: {exc.strerror or exc}") from None
    return out
