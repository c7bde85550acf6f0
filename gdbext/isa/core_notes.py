"""CPU facts a core file's ELF notes carry: XCR0 (NT_X86_XSTATE) and auxv.

The XSAVE area in NT_X86_XSTATE keeps the process's XCR0 in the software-
reserved bytes at offset 464 (gdb: I386_LINUX_XSAVE_XCR0_OFFSET).
"""
from __future__ import annotations

import struct

from ..errors import GdbextError

NT_X86_XSTATE = 0x202
XCR0_OFFSET = 464


def _notes(path: str):
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_NOTE":
                    for note in seg.iter_notes():
                        yield note
    except (OSError, ELFError, struct.error, ValueError) as exc:
        raise GdbextError(f"cannot read the notes of core {path}: {exc}") from None


def xcr0_from_core(path: str) -> int | None:
    for note in _notes(path):
        if note["n_type"] in (NT_X86_XSTATE, "NT_X86_XSTATE"):
            desc = note["n_desc"]
            if isinstance(desc, str):
                desc = desc.encode("latin-1")
            if len(desc) >= XCR0_OFFSET + 8:
                return struct.unpack_from("<Q", desc, XCR0_OFFSET)[0]
    return None
