"""What an ELF file on disk holds: executable sections and function symbols.

Read with pyelftools, cached per (path, size, mtime) because large libraries
(a 25 MB OpenBLAS has 60,000 symbols) are asked about repeatedly.
"""
from __future__ import annotations

import functools
import os
import struct
from collections import namedtuple   # not typing.NamedTuple: typing costs ~10 ms per gdb

from .errors import GdbextError

SHF_EXECINSTR = 0x4
SYM64 = struct.Struct("<IBBHQQ")      # Elf64_Sym: name, info, other, shndx, value, size
FUNC_TYPES = (2, 10)                  # STT_FUNC, STT_GNU_IFUNC


Function = namedtuple("Function", "start end name")


CodeSection = namedtuple("CodeSection", "name address data")


def _key(path: str) -> tuple[str, int, tuple[int, int, int]]:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise GdbextError(f"cannot open {path}: {exc.strerror}") from None
    return path, st.st_size, (st.st_mtime_ns, st.st_dev, st.st_ino)


def file_key(path: str) -> tuple[str, int, tuple[int, int, int]]:
    """(path, size, (mtime, device, inode)): what a per-file cache is keyed
    on.  The inode tells a file replaced in place (same size and mtime, as
    `cp -p` or an unpacked archive leaves it) from the one cached, which a
    gdb triaging core after core (gdbext triage) would otherwise reuse."""
    return _key(path)


def _open(path: str):
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise GdbextError(f"cannot open {path}: {exc.strerror}") from None
    try:
        return fh, ELFFile(fh)
    except ELFError as exc:
        fh.close()
        raise GdbextError(f"{path} is not an ELF file: {exc}") from None


# e_machine values (ELF gABI, "Machine Information"), spelled as pyelftools does
_MACHINES = {3: "EM_386", 8: "EM_MIPS", 20: "EM_PPC", 21: "EM_PPC64", 22: "EM_S390",
             40: "EM_ARM", 62: "EM_X86_64", 183: "EM_AARCH64", 243: "EM_RISCV",
             258: "EM_LOONGARCH"}


def machine(path: str) -> str:
    """The file's e_machine name, from its first 20 bytes (32- or 64-bit,
    either byte order): no pyelftools import (~35 ms) for one field."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(20)
    except OSError as exc:
        raise GdbextError(f"cannot open {path}: {exc.strerror}") from None
    if len(head) < 20 or head[:4] != b"\x7fELF" or head[4] not in (1, 2) \
            or head[5] not in (1, 2):
        raise GdbextError(f"{path} is not an ELF file: no ELF header")
    value = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return _MACHINES.get(value, f"EM_{value}")


EHDR64 = struct.Struct("<16sHHIQQQIHHHHHH")   # Elf64_Ehdr
SHDR64 = struct.Struct("<IIQQQQIIQQ")           # Elf64_Shdr
SHT_DYNSYM = 11


Section = namedtuple("Section", "name type flags address offset size link entsize")


def _header(fh, path: str) -> tuple:
    """The Elf64_Ehdr fields, or an error for anything else."""
    head = fh.read(EHDR64.size)
    if len(head) < EHDR64.size or head[:4] != b"\x7fELF" or head[4:6] != b"\x02\x01":
        raise GdbextError(f"{path}: not a 64-bit little-endian ELF file")
    return EHDR64.unpack(head)


def sections(path: str) -> list[Section]:
    """The section table, unpacked with struct: deadlock-graph and the
    environment reader ask this of ld.so and libc on every run, and importing
    pyelftools alone costs more than the whole lookup."""
    try:
        with open(path, "rb") as fh:
            fields = _header(fh, path)
            shoff, shentsize, shnum, shstrndx = fields[6], fields[11], fields[12], fields[13]
            if shentsize != SHDR64.size or not 0 < shnum < 1 << 16 or shstrndx >= shnum:
                raise GdbextError(f"{path}: broken section table")
            seek(fh, shoff)
            table = fh.read(shentsize * shnum)
            raw = [SHDR64.unpack_from(table, i * shentsize)
                   for i in range(len(table) // shentsize)]
            if len(raw) != shnum:
                raise GdbextError(f"{path}: truncated section table")
            names = _read(fh, raw[shstrndx][4], raw[shstrndx][5])
    except OSError as exc:
        raise GdbextError(f"cannot open {path}: {exc.strerror}") from None
    return [Section(_cstr(names, h[0]), h[1], h[2], h[3], h[4], h[5], h[6], h[9]) for h in raw]


def _read(fh, offset: int, size: int) -> bytes:
    if size > 1 << 30:
        raise GdbextError(f"{fh.name}: section of {size} bytes")
    seek(fh, offset)
    return fh.read(size)


def section_data(path: str, section: Section) -> bytes:
    """The bytes of one of ``path``'s sections (as ``sections`` lists it)."""
    try:
        with open(path, "rb") as fh:
            return _read(fh, section.offset, section.size)
    except OSError as exc:
        raise GdbextError(f"cannot open {path}: {exc.strerror}") from None


def seek(fh, offset: int) -> None:
    """Seek to an offset the file itself claims.  Past the end it reads nothing,
    as any offset past the end does: clamped, because seek() raises ValueError
    for 2**63 and up and EINVAL just below (found by tests/fuzz)."""
    fh.seek(min(offset, os.fstat(fh.fileno()).st_size))


def _cstr(table: bytes, offset: int) -> str:
    end = table.find(b"\0", offset)
    return table[offset:end if end >= 0 else len(table)].decode("latin-1")


PHDR64 = struct.Struct("<IIQQQQQQ")            # Elf64_Phdr
PT_LOAD, PF_R = 1, 4
MAX_SEGMENTS = 1 << 20


# flags: PF_X 1, PF_W 2, PF_R 4; size: in memory
ProgramHeader = namedtuple("ProgramHeader", "type flags offset address file_size size")


Segment = namedtuple("Segment", "address size flags")   # size in memory; flags PF_X 1, PF_W 2, PF_R 4


def file_header(path: str) -> tuple:
    """The Elf64_Ehdr fields (EHDR64 order: e_type at 1, e_machine at 2)."""
    try:
        with open(path, "rb") as fh:
            return _header(fh, path)
    except OSError as exc:
        raise GdbextError(f"cannot open {path}: {exc.strerror}") from None


def program_headers(path: str) -> list[ProgramHeader]:
    """Every program header of a 64-bit little-endian ELF file."""
    try:
        with open(path, "rb") as fh:
            fields = _header(fh, path)
            phoff, phentsize, phnum = fields[5], fields[9], fields[10]
            if phnum == 0xFFFF:     # PN_XNUM: the real count is in section 0's sh_info
                seek(fh, fields[6])
                phnum = SHDR64.unpack(fh.read(SHDR64.size))[7]
            if phentsize != PHDR64.size or phnum > MAX_SEGMENTS:
                raise GdbextError(f"{path}: broken program header table")
            seek(fh, phoff)
            table = fh.read(phentsize * phnum)
    except OSError as exc:
        raise GdbextError(f"cannot open {path}: {exc.strerror}") from None
    except struct.error:
        raise GdbextError(f"{path}: broken program header table") from None
    out = []
    for i in range(len(table) // PHDR64.size):
        p_type, flags, offset, vaddr, _paddr, filesz, memsz, _align = \
            PHDR64.unpack_from(table, i * PHDR64.size)
        out.append(ProgramHeader(p_type, flags, offset, vaddr, filesz, memsz))
    return out


def load_segments(path: str) -> list[Segment]:
    """PT_LOAD program headers (for a core: every mapping and its
    permissions, guard pages included with no PF_R)."""
    return [Segment(p.address, p.size, p.flags) for p in program_headers(path)
            if p.type == PT_LOAD]


def section_addresses(path: str) -> dict[str, int]:
    """Link-time address of every allocated section, by name."""
    return {sec.name: sec.address for sec in sections(path) if sec.address}


def _dynsym(path: str) -> tuple[bytes, bytes]:
    """The raw ``.dynsym`` table (whole entries only) and its string table."""
    table = sections(path)
    dynsym = next((s for s in table if s.type == SHT_DYNSYM), None)
    if dynsym is None or dynsym.link >= len(table) or dynsym.entsize != SYM64.size:
        raise GdbextError(f"{path} has no .dynsym")
    try:
        with open(path, "rb") as fh:
            symbols = _read(fh, dynsym.offset, dynsym.size)
            strings = _read(fh, table[dynsym.link].offset, table[dynsym.link].size)
    except OSError as exc:
        raise GdbextError(f"cannot open {path}: {exc.strerror}") from None
    return symbols[:len(symbols) // SYM64.size * SYM64.size], strings


def dynamic_symbol(path: str, names: tuple[str, ...]) -> tuple[str, int, int]:
    """(name, link-time value, size) of the first of ``names`` defined in
    ``.dynsym``."""
    found = dynamic_symbols(path, names)
    for name in names:
        if name in found:
            return (name, *found[name])
    raise GdbextError(f"{path} exports none of {', '.join(names)}")


def dynamic_symbols(path: str, names: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """{name: (link-time value, size)} of those of ``names`` defined in
    ``.dynsym``, in one pass that decodes no other name: each wanted name is
    found in .dynstr first, and only symbols pointing there are looked at."""
    symbols, strings = _dynsym(path)
    offsets = {}
    for name in names:
        key = name.encode() + b"\0"
        at = strings.find(b"\0" + key)
        while at >= 0:
            offsets[at + 1] = name
            at = strings.find(b"\0" + key, at + 1)
        if strings.startswith(key):
            offsets[0] = name
    found: dict[str, tuple[int, int]] = {}
    for st_name, _info, _other, shndx, value, size in SYM64.iter_unpack(symbols):
        name = offsets.get(st_name)
        if name is not None and shndx and name not in found:
            found[name] = (value, size)
    return found


def dynamic_symbols_with_prefix(path: str, prefix: str) -> dict[str, int]:
    """Every defined ``.dynsym`` symbol whose name starts with ``prefix``:
    name -> link-time value."""
    symbols, strings = _dynsym(path)
    want = prefix.encode()
    found = {}
    for st_name, _info, _other, shndx, value, _size in SYM64.iter_unpack(symbols):
        if shndx and strings.startswith(want, st_name):
            found[_cstr(strings, st_name)] = value
    return found


SHT_NOBITS = 8


def code_sections(path: str) -> list[CodeSection]:
    """Executable sections with their link-time addresses and bytes (struct
    over sections(): no pyelftools import)."""
    table = sections(path)
    size = os.stat(path).st_size
    out = []
    try:
        with open(path, "rb") as fh:
            for s in table:
                if s.flags & SHF_EXECINSTR and s.type != SHT_NOBITS:
                    if s.offset + s.size > size:
                        raise GdbextError(f"{path}: broken section table: {s.name} "
                                          "lies past the end of the file")
                    out.append(CodeSection(s.name, s.address, _read(fh, s.offset, s.size)))
    except OSError as exc:
        raise GdbextError(f"cannot open {path}: {exc.strerror}") from None
    return out


def functions(path: str) -> list[Function]:
    return _functions(*_key(path))


@functools.lru_cache(maxsize=16)
def _functions(path: str, _size: int, _mtime: int) -> list[Function]:
    """Sized function symbols from .symtab and .dynsym, sorted, one name per start.

    Unpacked with struct over the section table (sections()): pyelftools'
    import alone costs ~50 ms, more than the whole lookup, and its per-symbol
    objects are 30x slower on a library with 35,000 symbols."""
    table = sections(path)
    by_start: dict[int, Function] = {}
    try:
        with open(path, "rb") as fh:
            for name in (".symtab", ".dynsym"):
                symtab = next((t for t in table if t.name == name), None)
                if symtab is None or symtab.entsize != SYM64.size \
                        or not 0 <= symtab.link < len(table):
                    continue
                symbols = _read(fh, symtab.offset, symtab.size)
                link = table[symtab.link]
                strtab = _read(fh, link.offset, link.size)
                usable = len(symbols) - len(symbols) % SYM64.size
                for st_name, st_info, _o, _s, value, size in SYM64.iter_unpack(
                        symbols[:usable]):
                    if st_info & 0xF in FUNC_TYPES and size and value and value not in by_start:
                        end = strtab.find(b"\0", st_name)
                        by_start[value] = Function(value, value + size,
                                                   strtab[st_name:end if end >= 0 else None]
                                                   .decode("utf-8", "replace"))
    except OSError as exc:
        raise GdbextError(f"cannot open {path}: {exc.strerror}") from None
    return sorted(by_start.values())


def function_names(path: str) -> list[str]:
    return [f.name for f in functions(path)]


PT_TLS = 7


def tls_segment(path: str) -> tuple[int, int, int] | None:
    """(p_vaddr, p_memsz, p_align) of the file's PT_TLS, or None."""
    try:
        with open(path, "rb") as fh:
            fields = _header(fh, path)
            phoff, phentsize, phnum = fields[5], fields[9], fields[10]
            if phentsize != PHDR64.size or phnum > MAX_SEGMENTS:
                return None
            seek(fh, phoff)
            table = fh.read(phentsize * phnum)
    except OSError as exc:
        raise GdbextError(f"cannot open {path}: {exc.strerror}") from None
    for i in range(len(table) // PHDR64.size):
        p_type, _f, _o, vaddr, _p, _fs, memsz, align = PHDR64.unpack_from(table, i * PHDR64.size)
        if p_type == PT_TLS:
            return vaddr, memsz, align
    return None


def local_symbols(path: str, pattern: bytes, needles: tuple[bytes, ...]
                  ) -> dict[str, tuple[int, int, int]]:
    """{name: (st_value, st_size, st_info & 0xF)} of the defined ``.symtab``
    symbols that contain one of ``needles`` and whose whole name matches the
    regular expression ``pattern`` (bytes).  The string table is searched for
    the needles first (plain find: a Rust executable's table is megabytes of
    similar names), so no other name is decoded.  Empty when stripped."""
    return dict(_local_symbols(*_key(path), pattern, needles))


@functools.lru_cache(maxsize=16)
def _local_symbols(path: str, _size: int, _mtime: int, pattern: bytes,
                   needles: tuple[bytes, ...]) -> tuple:
    import re
    table = sections(path)
    symtab = next((t for t in table if t.name == ".symtab"), None)
    if symtab is None or symtab.entsize != SYM64.size or not 0 <= symtab.link < len(table):
        return ()
    try:
        with open(path, "rb") as fh:
            strings = _read(fh, table[symtab.link].offset, table[symtab.link].size)
            wanted = {}
            for needle in needles:
                at = strings.find(needle)
                while at >= 0:
                    start = strings.rfind(b"\0", 0, at) + 1
                    end = strings.find(b"\0", at)
                    name = strings[start:end if end >= 0 else None]
                    if re.fullmatch(pattern, name):
                        wanted[start] = name.decode("latin-1")
                    at = strings.find(needle, at + 1)
            if not wanted:
                return ()
            symbols = _read(fh, symtab.offset, symtab.size)
    except OSError as exc:
        raise GdbextError(f"cannot open {path}: {exc.strerror}") from None
    found = {}
    usable = len(symbols) - len(symbols) % SYM64.size
    for st_name, info, _other, shndx, value, size in SYM64.iter_unpack(symbols[:usable]):
        name = wanted.get(st_name)
        if name is not None and shndx and name not in found:
            found[name] = (value, size, info & 0xF)
    return tuple(found.items())
