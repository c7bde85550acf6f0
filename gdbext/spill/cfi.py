"""The CFA rule at one pc, read from .eh_frame_hdr's search table and one FDE.

The unwinder's own route: bisect the sorted table in .eh_frame_hdr, read the
one FDE it points at and that FDE's CIE, and run their DW_CFA instructions up
to the pc.  Nothing else in .eh_frame is touched, so a lookup in a 5 MB
.eh_frame costs the same as in a small one.  Only the table is cached (as
packed arrays, 8 bytes per FDE); the two entries are read with os.pread per
lookup, so memory stays small however many libraries a backtrace touches.

The entries and the instructions are decoded here rather than with
pyelftools: its CallFrameInfo only walks .eh_frame from the start (parsing an
entry at an offset is a private method), builds objects for every entry, its
get_decoded() raises on DW_CFA_GNU_args_size (common in C++ code) and scales
DW_CFA_def_cfa_sf by the code alignment factor.  The format itself is small
-- a length, a CIE, a few encoded pointers and ~25 opcodes -- and owning it
lets every read be bounds-checked against its entry, so corrupt data has one
way out.

Failure model: an unopenable or non-ELF file raises GdbextError (as in
elf_file); anything wrong inside the unwind tables -- missing, truncated,
corrupt, an encoding not supported -- gives None from cfa_rule_at and
fde_bounds, and a one-line reason from lookup().  Loops are bounded by
MAX_ENTRY, MAX_INSNS, MAX_STACK and LEB128's 10 bytes.  lookup_in() is the
same lookup on the two sections' bytes (tests/fuzz feeds it hostile tables).

Pure: no gdb import.  x86-64 only (the register names).
"""
from __future__ import annotations

import bisect
import functools
import os
import struct
import sys
from array import array
from collections.abc import Callable   # not typing: ~10 ms to import in each gdb

from .. import elf_file
from ..elf_file import _key
from ..errors import GdbextError
from ..record import field, record

MAX_ENTRY = 1 << 24      # no compiler emits a 16 MiB CIE/FDE; caps a corrupt length
MAX_INSNS = 100_000      # DW_CFA instructions run for one lookup
MAX_STACK = 64           # DW_CFA_remember_state depth
MAX_SAME_START = 8       # table entries sharing a start address, tried newest first
ENTRY_GUESS = 256        # first read of an entry; most FDEs are shorter
MASK64 = (1 << 64) - 1
SHT_NOBITS = 8
EM_X86_64 = 62

# DW_EH_PE_*: the low nibble is the value's format, bits 4-6 what it is relative to.
OMIT, PCREL, DATAREL, ALIGNED, INDIRECT = 0xFF, 0x10, 0x30, 0x50, 0x80
_FIXED = {0x0: (8, False), 0x2: (2, False), 0x3: (4, False), 0x4: (8, False),
          0xA: (2, True), 0xB: (4, True), 0xC: (8, True)}      # format -> (bytes, signed)
_TYPECODE = {(2, False): "H", (2, True): "h", (4, False): "I", (4, True): "i",
             (8, False): "Q", (8, True): "q"}

# DWARF register numbers of the x86-64 psABI (fig. 3.36).
_REGS = ("rax rdx rcx rbx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip".split()
         + [f"xmm{i}" for i in range(16)] + [f"st{i}" for i in range(8)]
         + [f"mm{i}" for i in range(8)])


def reg_name(num: int) -> str:
    return _REGS[num] if 0 <= num < len(_REGS) else f"dwarf{num}"


@record(frozen=True)
class CfaRule:
    """The CFA rule at one pc, from .eh_frame."""
    pc: int                 # the link-time address asked about
    fde_start: int          # the FDE's pc range [fde_start, fde_end)
    fde_end: int
    register: str | None    # CFA = register + offset
    offset: int | None
    expression: bool        # CFA is a DWARF expression (DRAP frames, signal frames)
    saved: dict[str, int]   # register -> offset from the CFA where it is saved
    signal_frame: bool = False          # CIE augmentation 'S': pc is not a return address
    cfa_expression: bytes = b""         # the DW_OP bytes when expression is True
    saved_expressions: dict[str, bytes] = field(default_factory=dict)   # DW_CFA_expression: address = eval

    @property
    def cfa(self) -> str:
        """readelf's spelling: rsp+8, rbp+16, exp."""
        return "exp" if self.expression else f"{self.register}{self.offset:+d}"


class _Corrupt(Exception):
    """Unwind data that cannot be decoded; becomes a reason, never escapes."""


class _Cursor:
    """Bounds-checked little-endian reads from data[pos:end]; data[0] is at link-time ``addr``."""

    __slots__ = ("data", "pos", "end", "addr")

    def __init__(self, data: bytes, pos: int, end: int, addr: int):
        self.data, self.pos, self.end, self.addr = data, pos, end, addr

    def take(self, n: int) -> int:
        pos = self.pos
        if n < 0 or pos + n > self.end:
            raise _Corrupt(f"read past the end of an entry at +{pos:#x}")
        self.pos = pos + n
        return pos

    def u8(self) -> int:
        return self.data[self.take(1)]

    def fixed(self, size: int, signed: bool = False) -> int:
        pos = self.take(size)
        return int.from_bytes(self.data[pos:pos + size], "little", signed=signed)

    def uleb(self) -> int:
        result = 0
        for shift in range(0, 70, 7):       # 10 bytes hold any 64-bit value
            byte = self.u8()
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
        raise _Corrupt("LEB128 number longer than 10 bytes")

    def sleb(self) -> int:
        result = 0
        for shift in range(0, 70, 7):
            byte = self.u8()
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result - (1 << (shift + 7)) if byte & 0x40 else result
        raise _Corrupt("LEB128 number longer than 10 bytes")

    def block(self) -> bytes:
        size = self.uleb()
        pos = self.take(size)
        return bytes(self.data[pos:pos + size])

    def pointer(self, enc: int, data_base: int | None = None) -> int:
        """A DW_EH_PE-encoded value.  The indirect bit is the caller's business:
        dereferencing needs the process, and only the personality uses it."""
        app, fmt = enc & 0x70, enc & 0x0F
        if app == ALIGNED:
            self.take(-(self.addr + self.pos) % 8)
        here = self.addr + self.pos
        if fmt == 0x1:
            value = self.uleb()
        elif fmt == 0x9:
            value = self.sleb()
        elif fmt in _FIXED:
            value = self.fixed(*_FIXED[fmt])
        else:
            raise _Corrupt(f"pointer encoding {enc:#04x}")
        if app == PCREL:
            value += here
        elif app == DATAREL and data_base is not None:
            value += data_base
        elif app not in (0, ALIGNED):
            raise _Corrupt(f"unsupported pointer encoding {enc:#04x}")
        return value & MASK64


@record(frozen=True)
class _Insns:
    """A run of DW_CFA instructions and the link-time address of its first byte."""
    data: bytes
    addr: int

    def cursor(self) -> _Cursor:
        return _Cursor(self.data, 0, len(self.data), self.addr)


@record(frozen=True)
class _Cie:
    """A parsed Common Information Entry."""
    code_align: int
    data_align: int
    fde_enc: int
    fde_aug: bool            # 'z': FDEs carry a sized augmentation block (the LSDA)
    signal: bool
    insns: _Insns            # initial instructions


@record(frozen=True)
class _Fde:
    """A parsed Frame Description Entry."""
    start: int
    end: int
    cie: _Cie
    insns: _Insns


@record
class _Index:
    """The sorted .eh_frame_hdr search table."""
    base: int                # table values are relative to this (the hdr's address for datarel)
    locs: array              # FDE start addresses, sorted
    fdes: array              # FDE addresses, same order
    frame_offset: int        # file offset, size and address of the section eh_frame_ptr points into
    frame_size: int
    frame_addr: int
    cies: dict[int, _Cie] = field(default_factory=dict)


class _Frame:
    """.eh_frame read one entry at a time through ``read(offset, size)`` (an
    os.pread of the file, or a slice of the section's bytes in lookup_in): a
    lookup costs two small reads and the cache holds only the search table,
    not megabytes."""

    def __init__(self, index: _Index, read: Callable[[int, int], bytes]):
        self.index, self.read = index, read

    def entry(self, offset: int) -> tuple[_Cursor, int, int]:
        """A cursor over the CIE/FDE at offset, placed after its id field; the
        id field's section offset; the id (0 for a CIE, else the distance back to it)."""
        index = self.index
        if not 0 <= offset < index.frame_size:
            raise _Corrupt(f"entry offset {offset:#x} outside .eh_frame")
        data = self._read(offset, min(ENTRY_GUESS, index.frame_size - offset))
        c = _Cursor(data, 0, len(data), index.frame_addr + offset)
        length, id_size = c.fixed(4), 4
        if length == 0xFFFFFFFF:          # 64-bit DWARF; never seen in .eh_frame, read as readelf does
            length, id_size = c.fixed(8), 8
        if length == 0:
            raise _Corrupt(f"terminator where an entry was expected at {offset:#x}")
        if length > MAX_ENTRY or offset + c.pos + length > index.frame_size:
            raise _Corrupt(f"entry at {offset:#x} claims {length} bytes")
        c.end = c.pos + length
        if c.end > len(data):
            c.data = self._read(offset, c.end)
        id_pos = c.pos
        return c, offset + id_pos, c.fixed(id_size)

    def _read(self, offset: int, size: int) -> bytes:
        try:
            data = self.read(offset, size)
        except OSError as exc:
            raise _Corrupt(f"cannot read .eh_frame: {exc.strerror}") from None
        if len(data) != size:
            raise _Corrupt(".eh_frame is truncated")
        return data

    def cie(self, offset: int) -> _Cie:
        # A library has a handful of CIEs shared by thousands of FDEs.
        found = self.index.cies.get(offset)
        if found is None:
            found = self.index.cies[offset] = _parse_cie(*self.entry(offset))
        return found


def _parse_cie(c: _Cursor, _id_pos: int, ident: int) -> _Cie:
    if ident != 0:
        raise _Corrupt(f"FDE's CIE pointer leads to a non-CIE at {c.addr:#x}")
    version = c.u8()
    if version not in (1, 3, 4):
        raise _Corrupt(f"CIE version {version}")
    nul = c.data.find(b"\0", c.pos, c.end)
    if nul < 0:
        raise _Corrupt("unterminated CIE augmentation string")
    aug = c.data[c.pos:nul].decode("ascii", "replace")
    c.pos = nul + 1
    if version == 4:
        c.take(2)                         # address and segment selector sizes
    code_align, data_align = c.uleb(), c.sleb()
    if version == 1:
        c.u8()                            # return address column, always 16 on x86-64
    else:
        c.uleb()
    fde_enc, signal = 0, False
    if aug.startswith("z"):
        size = c.uleb()
        aug_end = c.pos + size
        if aug_end > c.end:
            raise _Corrupt("CIE augmentation data overruns the entry")
        blind = False                     # past a letter whose data size we do not know
        for letter in aug[1:]:
            if letter == "S":
                signal = True
            elif letter in "RLP" and blind:
                raise _Corrupt(f"CIE augmentation {aug!r}")
            elif letter == "R":
                fde_enc = c.u8()
            elif letter == "L":
                c.u8()                    # the LSDA encoding; the LSDA itself is skipped by length
            elif letter == "P":
                c.pointer(c.u8() & ~INDIRECT & 0xFF)     # personality routine, not needed
            else:
                blind = True              # 'B', 'G', ...: 'z' lets us skip their data
        c.pos = aug_end
    elif aug:
        raise _Corrupt(f"CIE augmentation {aug!r} without 'z'")   # e.g. GCC 2's "eh"
    if fde_enc & INDIRECT or fde_enc == OMIT:
        raise _Corrupt(f"FDE pointer encoding {fde_enc:#04x}")
    return _Cie(code_align, data_align, fde_enc, aug.startswith("z"), signal, _rest(c))


def _rest(c: _Cursor) -> _Insns:
    return _Insns(bytes(c.data[c.pos:c.end]), c.addr + c.pos)


def _parse_fde(frame: _Frame, offset: int) -> _Fde:
    c, id_pos, ident = frame.entry(offset)
    if ident == 0:
        raise _Corrupt(f"search table points at a CIE ({offset:#x})")
    cie = frame.cie(id_pos - ident)
    start = c.pointer(cie.fde_enc)
    size = c.pointer(cie.fde_enc & 0x0F)  # the range has the format but no base
    if cie.fde_aug:
        c.take(c.uleb())
    return _Fde(start, start + size, cie, _rest(c))


class _Machine:
    """DW_CFA interpreter: the CFA rule and each register's rule at a location."""

    def __init__(self, cie: _Cie):
        self.cie = cie
        self.cfa: tuple[int | None, int, bytes | None] = (None, 0, None)   # reg, offset, expr
        self.rules: dict[int, tuple[str, object]] = {}
        self.initial: dict[int, tuple[str, object]] = {}    # after the CIE, for DW_CFA_restore
        self.stack: list[tuple[tuple, dict]] = []
        self.insns = 0

    def run(self, c: _Cursor, loc: int, pc: int | None) -> None:
        """Execute until the instructions end or the next row starts after pc."""
        caf, daf = self.cie.code_align, self.cie.data_align
        rules = self.rules
        while c.pos < c.end:
            self.insns += 1
            if self.insns > MAX_INSNS:
                raise _Corrupt(f"more than {MAX_INSNS} CFA instructions")
            op = c.u8()
            high, low = op & 0xC0, op & 0x3F
            new_loc = None
            if high == 0x40:                                    # advance_loc
                new_loc = loc + low * caf
            elif high == 0x80:                                  # offset
                rules[low] = ("offset", c.uleb() * daf)
            elif high == 0xC0:                                  # restore
                self._restore(low)
            elif op == 0x00:                                    # nop
                pass
            elif op == 0x01:                                    # set_loc
                new_loc = c.pointer(self.cie.fde_enc)
            elif op in (0x02, 0x03, 0x04):                      # advance_loc1/2/4
                new_loc = loc + c.fixed(1 << (op - 2)) * caf
            elif op == 0x1D:                                    # MIPS_advance_loc8
                new_loc = loc + c.fixed(8) * caf
            elif op == 0x05:                                    # offset_extended
                reg = c.uleb()
                rules[reg] = ("offset", c.uleb() * daf)
            elif op == 0x11:                                    # offset_extended_sf
                reg = c.uleb()
                rules[reg] = ("offset", c.sleb() * daf)
            elif op == 0x2F:                                    # GNU_negative_offset_extended
                reg = c.uleb()
                rules[reg] = ("offset", -c.uleb() * daf)
            elif op == 0x06:                                    # restore_extended
                self._restore(c.uleb())
            elif op == 0x07:
                rules[c.uleb()] = ("undefined", None)
            elif op == 0x08:
                rules[c.uleb()] = ("same", None)
            elif op == 0x09:                                    # register
                reg = c.uleb()
                rules[reg] = ("register", c.uleb())
            elif op == 0x0A:                                    # remember_state
                if len(self.stack) >= MAX_STACK:
                    raise _Corrupt("DW_CFA_remember_state nested too deep")
                self.stack.append((self.cfa, dict(rules)))
            elif op == 0x0B:                                    # restore_state: CFA too, as libgcc does
                if not self.stack:
                    raise _Corrupt("DW_CFA_restore_state without remember_state")
                self.cfa, saved = self.stack.pop()
                rules.clear()
                rules.update(saved)
            elif op == 0x0C:                                    # def_cfa
                reg = c.uleb()
                self.cfa = (reg, c.uleb(), None)
            elif op == 0x12:                                    # def_cfa_sf
                reg = c.uleb()
                self.cfa = (reg, c.sleb() * daf, None)
            elif op == 0x0D:                                    # def_cfa_register
                self.cfa = (c.uleb(), self.cfa[1], None)
            elif op == 0x0E:                                    # def_cfa_offset; keeps an expression
                self.cfa = (self.cfa[0], c.uleb(), self.cfa[2])
            elif op == 0x13:                                    # def_cfa_offset_sf
                self.cfa = (self.cfa[0], c.sleb() * daf, self.cfa[2])
            elif op == 0x0F:                                    # def_cfa_expression
                self.cfa = (None, 0, c.block())
            elif op in (0x10, 0x16):                            # expression, val_expression
                reg = c.uleb()
                rules[reg] = ("expression" if op == 0x10 else "val_expression", c.block())
            elif op in (0x14, 0x15):                            # val_offset(_sf)
                reg = c.uleb()
                rules[reg] = ("val_offset", (c.uleb() if op == 0x14 else c.sleb()) * daf)
            elif op == 0x2E:                                    # GNU_args_size: pushed call args, no rule
                c.uleb()
            else:
                raise _Corrupt(f"unknown DW_CFA opcode {op:#04x}")
            if new_loc is not None:
                if pc is not None and new_loc > pc:
                    return
                loc = new_loc

    def _restore(self, reg: int) -> None:
        if reg in self.initial:
            self.rules[reg] = self.initial[reg]
        else:
            self.rules.pop(reg, None)


def _rule(fde: _Fde, pc: int) -> CfaRule:
    cie = fde.cie
    machine = _Machine(cie)
    machine.run(cie.insns.cursor(), fde.start, None)
    machine.initial = dict(machine.rules)
    machine.run(fde.insns.cursor(), fde.start, pc)
    reg, offset, expr = machine.cfa
    if reg is None and expr is None:
        raise _Corrupt("no CFA rule")
    rules = sorted(machine.rules.items())
    return CfaRule(
        pc=pc, fde_start=fde.start, fde_end=fde.end,
        register=None if expr is not None else reg_name(reg),
        offset=None if expr is not None else offset,
        expression=expr is not None,
        saved={reg_name(r): v for r, (kind, v) in rules if kind == "offset"},
        signal_frame=cie.signal,
        cfa_expression=expr or b"",
        saved_expressions={reg_name(r): v for r, (kind, v) in rules if kind == "expression"})


def _section_at(sections, address: int, file_size: int) -> tuple[int, int, int]:
    """File offset, size and address of the section holding address."""
    for sec in sections:
        if sec.address <= address < sec.address + sec.size and sec.type != SHT_NOBITS:
            if sec.offset + sec.size > file_size:
                raise _Corrupt(f"{sec.name} is truncated")
            return sec.offset, sec.size, sec.address
    raise _Corrupt(f"eh_frame_ptr {address:#x} is in no section with contents")


def _read_index(path: str, fh, file_size: int) -> _Index | str:
    """The section table through elf_file's struct reader: importing
    pyelftools (~50 ms) cost more than the whole lookup."""
    if elf_file.file_header(path)[2] != EM_X86_64:
        return f"{path}: not an x86-64 ELF file"
    sections = elf_file.sections(path)
    hdr = next((sec for sec in sections if sec.name == ".eh_frame_hdr"), None)
    if hdr is None:
        return f"{path} has no .eh_frame_hdr"
    if hdr.type == SHT_NOBITS:
        return f"{path}: .eh_frame_hdr has no contents (a separate debug file?)"
    elf_file.seek(fh, hdr.offset)
    data, hdr_addr = fh.read(hdr.size), hdr.address
    if len(data) != hdr.size:
        raise _Corrupt(".eh_frame_hdr is truncated")
    parsed = _parse_hdr(data, hdr_addr)
    if isinstance(parsed, str):
        return f"{path}: {parsed}"
    base, locs, fdes, frame_ptr = parsed
    return _Index(base, locs, fdes, *_section_at(sections, frame_ptr, file_size))


def _parse_hdr(data: bytes, hdr_addr: int) -> tuple[int, array, array, int] | str:
    """.eh_frame_hdr's bytes -> (table base, FDE starts, FDE addresses,
    eh_frame_ptr), or why it has no usable search table; _Corrupt when broken."""
    c = _Cursor(data, 0, len(data), hdr_addr)
    version, ptr_enc, count_enc, table_enc = c.u8(), c.u8(), c.u8(), c.u8()
    if version != 1:
        raise _Corrupt(f".eh_frame_hdr version {version}")
    if OMIT in (ptr_enc, count_enc, table_enc):
        return ".eh_frame_hdr has no search table"
    frame_ptr = c.pointer(ptr_enc, hdr_addr)
    count = c.pointer(count_enc, hdr_addr)
    # Entries must be fixed-size and not pc-relative to bisect them in place.
    width = _FIXED.get(table_enc & 0x0F)
    if table_enc & 0x70 not in (0, DATAREL) or table_enc & INDIRECT or width is None:
        return f".eh_frame_hdr table encoding {table_enc:#04x} not supported"
    end = c.pos + count * 2 * width[0]
    if end > len(data):
        raise _Corrupt(f".eh_frame_hdr claims {count} entries, has room for fewer")
    table = array(_TYPECODE[width])
    table.frombytes(data[c.pos:end])
    if sys.byteorder != "little":
        table.byteswap()
    base = hdr_addr if table_enc & 0x70 == DATAREL else 0
    return base, table[0::2], table[1::2], frame_ptr


@functools.lru_cache(maxsize=32)
def _index(path: str, size: int, _mtime: int) -> _Index | str:
    """The search table and where .eh_frame is, or why there are none; the
    table stays packed in arrays (8 bytes per FDE), decoded only where bisect looks."""
    elf_file.file_header(path)      # a missing file or not an ELF file: GdbextError
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise GdbextError(f"cannot open {path}: {exc.strerror}") from None
    with fh:
        try:
            return _read_index(path, fh, size)
        except _Corrupt as exc:
            return f"{path}: corrupt unwind tables: {exc}"
        except GdbextError as exc:
            return f"{path}: unreadable section table: {exc}"
        except (ValueError, struct.error, OSError) as exc:
            return f"{path}: unreadable section table: {exc}"


def _find_fde(path: str, pc: int) -> _Fde | str:
    index = _index(*_key(path))
    if isinstance(index, str):
        return index
    if bisect.bisect_right(index.locs, pc - index.base) == 0:
        return f"{pc:#x} is below the first FDE of {path}"
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise GdbextError(f"cannot open {path}: {exc.strerror}") from None
    with fh:
        fd = fh.fileno()
        return _search(_Frame(index, lambda offset, size: os.pread(
            fd, size, index.frame_offset + offset)), pc, path)


def _search(frame: _Frame, pc: int, name: str) -> _Fde | str:
    """The FDE covering pc, found through the search table, or why there is none."""
    index = frame.index
    i = bisect.bisect_right(index.locs, pc - index.base) - 1
    if i < 0:
        return f"{pc:#x} is below the first FDE of {name}"
    try:
        # Several entries can share a start (an empty FDE beside a real one).
        for j in range(i, max(i - MAX_SAME_START, -1), -1):
            if index.locs[j] != index.locs[i]:
                break
            fde = _parse_fde(frame, index.fdes[j] + index.base - index.frame_addr)
            if fde.start <= pc < fde.end:
                return fde
    except _Corrupt as exc:
        return f"{name}: corrupt FDE for {pc:#x}: {exc}"
    return f"no FDE of {name} covers {pc:#x} (nearest: {fde.start:#x}..{fde.end:#x})"


def lookup(path: str, pc: int) -> CfaRule | str:
    """The CFA rule at link-time address pc, or a one-line reason there is none.

    pc is taken literally.  For a caller frame pass its return address - 1
    (the call may be the function's last instruction), except above a signal
    frame (CfaRule.signal_frame): there the saved pc is the interrupted
    instruction itself."""
    return _rule_or_reason(_find_fde(path, pc), pc, path)


def _rule_or_reason(found: _Fde | str, pc: int, name: str) -> CfaRule | str:
    if isinstance(found, str):
        return found
    try:
        return _rule(found, pc)
    except _Corrupt as exc:
        return f"{name}: corrupt CFA instructions for {pc:#x}: {exc}"


def lookup_in(hdr: bytes, hdr_addr: int, frame: bytes, frame_addr: int, pc: int,
              name: str = "<bytes>") -> CfaRule | str:
    """lookup() on the bytes of .eh_frame_hdr and .eh_frame and their link-time
    addresses, through the same search, entry reads and interpreter: the pure
    entry point (tests/fuzz feeds it hostile tables).  A rule or a reason, never
    an exception."""
    try:
        parsed = _parse_hdr(hdr, hdr_addr)
    except _Corrupt as exc:
        return f"{name}: corrupt unwind tables: {exc}"
    if isinstance(parsed, str):
        return f"{name}: {parsed}"
    base, locs, fdes, frame_ptr = parsed
    if not frame_addr <= frame_ptr < frame_addr + len(frame):
        return f"{name}: corrupt unwind tables: eh_frame_ptr {frame_ptr:#x} is outside .eh_frame"
    index = _Index(base, locs, fdes, 0, len(frame), frame_addr)
    found = _search(_Frame(index, lambda offset, size: frame[offset:offset + size]), pc, name)
    return _rule_or_reason(found, pc, name)


def cfa_rule_at(path: str, pc: int) -> CfaRule | None:
    """pc is a link-time virtual address in the ELF at path (the caller subtracts the load bias)."""
    found = lookup(path, pc)
    return found if isinstance(found, CfaRule) else None


def uncovered(path: str, pc: int) -> bool:
    """The file has an unwind index and no entry of it covers pc (a
    hand-written asm function without CFI directives): gdb's caller for that
    frame is a guess."""
    if isinstance(_index(*_key(path)), str):
        return False
    return isinstance(_find_fde(path, pc), str)


def fde_bounds(path: str, pc: int) -> tuple[int, int] | None:
    """[start, end) of the FDE covering pc: function bounds where there is no symbol."""
    found = _find_fde(path, pc)
    return None if isinstance(found, str) else (found.start, found.end)


MAX_FDES = 4_000_000     # ~16 bytes an FDE: bounds the walk of a 64 MB .eh_frame


def fde_ranges(path: str) -> list[tuple[int, int]] | str:
    """[start, end) of every FDE in .eh_frame, sorted, empty ones left out:
    function bounds for code without symbols (isa-scan on a stripped library),
    or a one-line reason there are none.  .eh_frame is walked entry by entry,
    as the unwinder would if it had no .eh_frame_hdr, so FDEs the search table
    omits are found too."""
    return _fde_ranges(*_key(path))


@functools.lru_cache(maxsize=8)
def _fde_ranges(path: str, size: int, _mtime: int) -> list[tuple[int, int]] | str:
    if elf_file.file_header(path)[2] != EM_X86_64:
        return f"{path}: not an x86-64 ELF file"
    sec = next((s for s in elf_file.sections(path) if s.name == ".eh_frame"), None)
    if sec is None or sec.type == SHT_NOBITS or sec.size == 0:
        return f"{path} has no .eh_frame"
    if sec.offset + sec.size > size:
        return f"{path}: .eh_frame is truncated"
    data = elf_file.section_data(path, sec)
    try:
        return _walk_fdes(data, sec.address)
    except _Corrupt as exc:
        return f"{path}: corrupt .eh_frame: {exc}"


def _walk_fdes(data: bytes, addr: int) -> list[tuple[int, int]]:
    index = _Index(0, array("q"), array("q"), 0, len(data), addr)
    frame = _Frame(index, lambda offset, size: data[offset:offset + size])
    unpack = struct.Struct("<IIiI").unpack_from
    out = []
    pos, n = 0, 0
    while pos + 8 <= len(data) and n < MAX_FDES:
        n += 1
        length, ident = struct.unpack_from("<II", data, pos)
        if length == 0:                   # the terminator (crtend.o's zero word)
            break
        if length == 0xFFFFFFFF or pos + 4 + length > len(data):
            raise _Corrupt(f"entry at {pos:#x} claims {length} bytes")
        if ident:
            cie = frame.cie(pos + 4 - ident)
            if cie.fde_enc == 0x1B and length >= 12:     # pcrel|sdata4: what GCC/LLVM emit
                _l, _i, start, size = unpack(data, pos)
                start = (addr + pos + 8 + start) & MASK64
            else:
                c, _id_pos, _ident = frame.entry(pos)
                start = c.pointer(cie.fde_enc)
                size = c.pointer(cie.fde_enc & 0x0F)
            if size:
                out.append((start, start + size))
        pos += 4 + length
    out.sort()
    return out
