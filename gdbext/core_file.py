"""What a core file says about the process, read without gdb: the command
name (NT_PRPSINFO), the mapped files (NT_FILE), the aux vector (NT_AUXV),
the signal (NT_SIGINFO) and XCR0 (NT_X86_XSTATE).  Pure functions of bytes: a truncated or hostile
core gives fewer facts, never an exception other than CoreFileError.

Layouts (Linux x86-64): include/uapi/linux/elfcore.h (elf_prpsinfo: pr_uid
at 16, pr_gid 20, pr_pid 24, pr_ppid 28, fname at 40, psargs at 56;
elf_prstatus: pr_info.si_signo 0, pr_cursig (short) at 12, pr_pid at 32,
pr_reg at 112, x86-64's user_regs_struct (arch/x86/include/asm/user_64.h)
with rip its 17th and rsp its 20th u64 -- qemu-user writes the same layout
and no NT_SIGINFO), siginfo's si_addr at 16
(include/uapi/asm-generic/siginfo.h), fs/binfmt_elf.c fill_files_note (count, page size, then
(start, end, file page) triples, then NUL-terminated names), the ELF gABI
note header (namesz, descsz, type, name and desc padded to 4).
"""
from __future__ import annotations

import os
import struct

from . import elf_file, text
from .errors import GdbextError
from .record import field, record

ET_CORE = 4
PT_NOTE = 4
NT_PRSTATUS, NT_PRPSINFO, NT_AUXV, NT_FILE, NT_SIGINFO = 1, 3, 6, 0x46494C45, 0x53494749
NT_X86_XSTATE = 0x202               # name "LINUX": the XSAVE area of a thread
XCR0_OFFSET = 464                   # XCR0 in its software-reserved bytes (gdb's
                                    # I386_LINUX_XSAVE_XCR0_OFFSET)
AT_PHDR, AT_EXECFN = 3, 31
PR_REG = 112                        # elf_prstatus.pr_reg on x86-64 (see above)
RIP, RSP = 16, 19                   # their indexes in user_regs_struct
MAX_NOTES_BYTES = 64 << 20          # a note segment bigger than this is not believed


class CoreFileError(GdbextError):
    """Not a core file this tool can read."""


@record
class Mapping:
    """One NT_FILE entry: a file mapped into the process."""
    start: int
    end: int
    page_offset: int
    path: str


@record
class CoreFacts:
    """What a core's notes say about the process (NT_PRPSINFO, NT_FILE, NT_AUXV...)."""
    machine: int
    command: str | None = None          # pr_fname: at most 15 characters
    arguments: str | None = None        # pr_psargs: at most 79 characters
    pid: int | None = None
    ppid: int | None = None             # pr_ppid: the parent, for locks inherited across fork
    signo: int | None = None
    auxv: dict[int, int] = field(default_factory=dict)
    mappings: list[Mapping] = field(default_factory=list)
    xcr0: int | None = None             # the process's XCR0, from NT_X86_XSTATE
    uid: int | None = None
    gid: int | None = None
    cursig: dict[int, int] = field(default_factory=dict)   # LWP -> pr_cursig (NT_PRSTATUS)
    first_lwp: int | None = None        # the first NT_PRSTATUS: the thread that dumped
    prstatus_sizes: list[int] = field(default_factory=list)     # each NT_PRSTATUS's size
    pc_sp: dict[int, tuple[int, int]] = field(default_factory=dict)   # LWP -> (rip, rsp)
    si_addr: int | None = None          # NT_SIGINFO: the faulting address
    file_note_problem: str | None = None    # why NT_FILE cannot be believed, when it cannot

    def executable(self) -> str | None:
        """The file mapped at AT_PHDR (the program's own headers), else the
        first mapped file named like the command."""
        phdr = self.auxv.get(AT_PHDR)
        if phdr is not None:
            for m in self.mappings:
                if m.start <= phdr < m.end:
                    return m.path
        if self.command:
            for m in self.mappings:
                if os.path.basename(m.path).startswith(self.command):
                    return m.path
        return self.executable_from_arguments()

    def executable_from_arguments(self) -> str | None:
        """With no NT_FILE note at all (qemu-user writes none): pr_psargs'
        first word when it is an absolute path, as gdb's "Core was generated
        by" line shows it (79 characters at most: a longer path is cut)."""
        if self.mappings or not self.arguments:
            return None
        first = self.arguments.split(" ", 1)[0]
        return first if first.startswith("/") else None


def read(path: str) -> CoreFacts:
    """The facts of the core at ``path``; CoreFileError when it is not a
    64-bit ELF core file."""
    try:
        header = elf_file.file_header(path)
        if header[1] != ET_CORE:
            raise CoreFileError(f"{path}: an ELF file of type {header[1]}, not a core (4)")
        facts = CoreFacts(header[2])
        try:
            segments = elf_file.program_headers(path)
        except GdbextError:
            return facts                # a broken table: no notes, still a core
        with open(path, "rb") as fh:
            for seg in segments:
                if seg.type == PT_NOTE and 0 < seg.file_size <= MAX_NOTES_BYTES:
                    elf_file.seek(fh, seg.offset)     # p_offset may be >= 2**63
                    parse_notes(fh.read(seg.file_size), facts)
        return facts
    except CoreFileError:
        raise
    except GdbextError as exc:
        raise CoreFileError(str(exc)) from None
    except OSError as exc:
        raise CoreFileError(f"{path}: {exc.strerror or exc}") from None


def prstatus_sizes_32(path: str) -> list[int]:
    """The size of each NT_PRSTATUS of a 32-bit little-endian core (Elf32_Ehdr
    e_phoff at 28, e_phentsize and e_phnum at 42; Elf32_Phdr p_type,
    p_offset ... p_filesz at 16: the ELF gABI), to tell its machine by."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(52)
            if len(head) < 52:
                return []
            phoff, = struct.unpack_from("<I", head, 28)
            phentsize, phnum = struct.unpack_from("<HH", head, 42)
            if phentsize != 32 or phnum > 4096:
                return []
            fh.seek(phoff)
            table = fh.read(32 * phnum)
            sizes = []
            for i in range(len(table) // 32):
                p_type, offset, _, _, filesz = struct.unpack_from("<IIIII", table, 32 * i)
                if p_type == PT_NOTE and 0 < filesz <= MAX_NOTES_BYTES:
                    fh.seek(offset)
                    sizes += [len(desc) for name, n_type, desc in notes(fh.read(filesz))
                              if name == b"CORE" and n_type == NT_PRSTATUS]
            return sizes
    except OSError as exc:
        raise CoreFileError(f"{path}: {exc.strerror or exc}") from None


def notes(data: bytes):
    """(name, type, desc) of each note in a PT_NOTE segment's bytes."""
    offset = 0
    while offset + 12 <= len(data):
        namesz, descsz, n_type = struct.unpack_from("<III", data, offset)
        offset += 12
        name_end = offset + namesz
        desc_start = name_end + (-namesz % 4)
        desc_end = desc_start + descsz
        if desc_end > len(data):
            return
        yield data[offset:name_end].rstrip(b"\0"), n_type, data[desc_start:desc_end]
        offset = desc_end + (-descsz % 4)


def parse_notes(data: bytes, facts: CoreFacts) -> None:
    for name, n_type, desc in notes(data):
        if name == b"LINUX" and n_type == NT_X86_XSTATE and facts.xcr0 is None \
                and len(desc) >= XCR0_OFFSET + 8:
            facts.xcr0, = struct.unpack_from("<Q", desc, XCR0_OFFSET)
        if name != b"CORE":
            continue
        if n_type == NT_PRSTATUS:
            facts.prstatus_sizes.append(len(desc))
        if n_type == NT_PRSTATUS and len(desc) >= 36:
            cursig, = struct.unpack_from("<h", desc, 12)
            lwp, = struct.unpack_from("<i", desc, 32)
            facts.cursig.setdefault(lwp, cursig)
            if facts.first_lwp is None:
                facts.first_lwp = lwp
            if len(desc) >= PR_REG + 8 * (RSP + 1):
                facts.pc_sp.setdefault(lwp, (struct.unpack_from("<Q", desc, PR_REG + 8 * RIP)[0],
                                             struct.unpack_from("<Q", desc, PR_REG + 8 * RSP)[0]))
        elif n_type == NT_PRPSINFO and len(desc) >= 136 and facts.command is None:
            facts.uid, facts.gid, facts.pid, facts.ppid = struct.unpack_from("<IIii", desc, 16)
            facts.command = _c_string(desc[40:56])
            facts.arguments = _c_string(desc[56:136])
        elif n_type == NT_AUXV and not facts.auxv:
            facts.auxv = parse_auxv(desc)
        elif n_type == NT_FILE and not facts.mappings:
            facts.mappings = parse_file_note(desc)
            facts.file_note_problem = file_note_problem(desc)
        elif n_type == NT_SIGINFO and len(desc) >= 4 and facts.signo is None:
            facts.signo, = struct.unpack_from("<i", desc, 0)
            if len(desc) >= 24:
                facts.si_addr, = struct.unpack_from("<Q", desc, 16)


def parse_auxv(desc: bytes) -> dict[int, int]:
    out = {}
    for i in range(0, len(desc) - 15, 16):
        key, value = struct.unpack_from("<QQ", desc, i)
        if key == 0:                    # AT_NULL ends the vector
            break
        out.setdefault(key, value)
    return out


def parse_file_note(desc: bytes) -> list[Mapping]:
    if len(desc) < 16:
        return []
    count, page_size = struct.unpack_from("<QQ", desc, 0)
    if count > (len(desc) - 16) // 24:  # a count the note cannot hold is a lie
        return []
    names = desc[16 + 24 * count:].split(b"\0")
    out = []
    for i in range(min(count, len(names))):
        start, end, page = struct.unpack_from("<QQQ", desc, 16 + 24 * i)
        out.append(Mapping(start, end, page * page_size,
                           text.decode(names[i])))
    return out


def file_note_problem(desc: bytes) -> str | None:
    """What makes an NT_FILE note impossible (fill_files_note writes a count
    that fits, the page size, and start < end for each entry); None when
    nothing does."""
    if len(desc) < 16:
        return f"{len(desc)} bytes, too short for its count and page size"
    count, page_size = struct.unpack_from("<QQ", desc, 0)
    if count > (len(desc) - 16) // 24:
        return f"a count of {count} entries in a note with room for {(len(desc) - 16) // 24}"
    if page_size == 0 or page_size & (page_size - 1) or page_size > 1 << 30:
        return f"a page size of {page_size}"
    names = desc[16 + 24 * count:].split(b"\0")
    if len(names) < count:
        return f"{count} entries but {len(names)} names"
    for i in range(count):
        start, end, _ = struct.unpack_from("<QQQ", desc, 16 + 24 * i)
        if start >= end:
            return f"entry {i} ending at {end:#x}, not after its start {start:#x}"
    return None


def _c_string(raw: bytes) -> str:
    return text.decode(raw.split(b"\0", 1)[0]).strip()


NT_GNU_BUILD_ID = 3


def build_id(path: str) -> str | None:
    """The hex build-id of the ELF file at ``path`` (its PT_NOTE
    ``.note.gnu.build-id``, name "GNU"), None when it has none or is not here."""
    try:
        segments = elf_file.program_headers(path)
        with open(path, "rb") as fh:
            for seg in segments:
                if seg.type == PT_NOTE and 0 < seg.file_size <= 1 << 20:
                    elf_file.seek(fh, seg.offset)
                    for name, n_type, desc in notes(fh.read(seg.file_size)):
                        if name == b"GNU" and n_type == NT_GNU_BUILD_ID and desc:
                            return desc.hex()
    except (GdbextError, OSError):
        return None
    return None
