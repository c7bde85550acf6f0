"""Loaded ELF objects read from the process's memory, where the dynamic
linker left them: the link map (r_debug, found from the executable's
DT_DEBUG through the auxiliary vector, as gdb's solib-svr4 does), each
object's dynamic section, its exported symbols (.dynsym is in a PT_LOAD
segment), and its build-id note.  What a remote target (gdbserver, qemu's
stub) or a file that is not the build that ran still allows: no file is
opened.

Layouts are the System V gABI's and glibc's public ones: Elf64_Phdr (56
bytes), Elf64_Dyn (16), Elf64_Sym (24); ``struct r_debug`` {int r_version;
struct link_map *r_map; ...} and ``struct link_map`` {l_addr, l_name, l_ld,
l_next, l_prev} (glibc elf/link.h, the part debuggers read).  DT_GNU_HASH's
layout: sourceware.org/ml/binutils/2006-10/msg00377.html (nbuckets,
symoffset, bloom_size, bloom_shift, bloom words, buckets, chains).

Pure: memory comes through ``read(address, length) -> bytes``, raising
GdbextError (or returning short) where it is unreadable.
"""
from __future__ import annotations

import struct
from collections.abc import Callable

from .core_file import notes
from .errors import GdbextError
from .record import record

Reader = Callable[[int, int], bytes]

PT_LOAD, PT_DYNAMIC, PT_NOTE, PT_PHDR = 1, 2, 4, 6
DT_NULL, DT_HASH, DT_STRTAB, DT_SYMTAB, DT_STRSZ, DT_DEBUG = 0, 4, 5, 6, 10, 21
DT_GNU_HASH = 0x6FFFFEF5
NT_GNU_BUILD_ID = 3
MAX_DYNAMIC = 1024          # entries; real objects have a few dozen
MAX_OBJECTS = 4096          # link-map entries (a loop or garbage past that)
MAX_SYMBOLS = 1 << 20
MAX_STRINGS = 64 << 20
SHN_UNDEF = 0


class MemoryElfError(GdbextError):
    """The object's structures in memory are absent or not plausible."""


@record(frozen=True)
class LinkMap:
    """One object the dynamic linker loaded (glibc's public link_map)."""
    bias: int                       # l_addr: run-time minus link-time address
    name: str                       # l_name: "" for the executable
    dynamic: int                    # l_ld: its dynamic section, run-time address


def _read(read: Reader, address: int, length: int) -> bytes:
    try:
        data = read(address, length)
    except GdbextError as exc:
        raise MemoryElfError(f"memory at {address:#x} is unreadable ({exc})") from None
    if len(data) != length:
        raise MemoryElfError(f"memory at {address:#x} is unreadable")
    return data


def _u64(read: Reader, address: int) -> int:
    return struct.unpack("<Q", _read(read, address, 8))[0]


def _cstring(read: Reader, address: int, limit: int = 4096) -> str:
    out = b""
    while len(out) < limit:
        chunk = _read(read, address + len(out), 64)
        end = chunk.find(b"\0")
        if end >= 0:
            return (out + chunk[:end]).decode("utf-8", "backslashreplace")
        out += chunk
    raise MemoryElfError(f"no string end within {limit} bytes at {address:#x}")


def program_headers(read: Reader, address: int, count: int) -> list[tuple[int, int, int]]:
    """(p_type, p_vaddr, p_memsz) of ``count`` Elf64_Phdr at ``address``."""
    if not 0 < count <= 256:
        raise MemoryElfError(f"{count} program headers")
    table = _read(read, address, 56 * count)
    return [(p[0], p[3], p[6]) for p in
            (struct.unpack_from("<IIQQQQQQ", table, 56 * i) for i in range(count))]


def dynamic(read: Reader, address: int) -> dict[int, int]:
    """The dynamic section at ``address``: {d_tag: d_val}, first of each tag."""
    out: dict[int, int] = {}
    data = b""
    for i in range(MAX_DYNAMIC):
        if i * 16 >= len(data):
            data += _read(read, address + len(data), 256)
        tag, value = struct.unpack_from("<qQ", data, i * 16)
        if tag == DT_NULL:
            return out
        out.setdefault(tag, value)
    raise MemoryElfError(f"no DT_NULL in {MAX_DYNAMIC} entries at {address:#x}")


def r_debug_address(read: Reader, at_phdr: int | None, at_phnum: int | None) -> int | None:
    """The dynamic linker's r_debug, from the executable's DT_DEBUG entry
    (ld.so fills it at start-up); None for a static program (no PT_DYNAMIC)
    or before ld.so has filled it."""
    if not at_phdr or not at_phnum:
        return None
    phdrs = program_headers(read, at_phdr, at_phnum)
    bias = next((at_phdr - vaddr for kind, vaddr, _ in phdrs if kind == PT_PHDR), None)
    if bias is None:        # no PT_PHDR: the headers follow the ELF header of a non-PIE
        bias = 0
    dyn = next((vaddr for kind, vaddr, _ in phdrs if kind == PT_DYNAMIC), None)
    if dyn is None:
        return None
    return dynamic(read, bias + dyn).get(DT_DEBUG) or None


def link_maps(read: Reader, r_debug: int) -> list[LinkMap]:
    """Every object on the dynamic linker's list, in load order."""
    out: list[LinkMap] = []
    seen: set[int] = set()
    node = _u64(read, r_debug + 8)              # r_map (after int r_version, padded)
    while node and node not in seen and len(out) < MAX_OBJECTS:
        seen.add(node)
        bias, name_at, dyn, nxt = struct.unpack("<QQQQ", _read(read, node, 32))
        name = _cstring(read, name_at) if name_at else ""
        out.append(LinkMap(bias, name, dyn))
        node = nxt
    return out


def _relocated(value: int, bias: int) -> int:
    """A d_ptr as read: glibc adjusts DT_SYMTAB, DT_STRTAB, DT_HASH and
    DT_GNU_HASH in place on x86-64 (elf/get-dynamic-info.h, a writable
    .dynamic); the vDSO's and read-only ones stay link-time addresses."""
    return value if value >= bias else value + bias


def _symbol_count(read: Reader, dyn: dict[int, int], bias: int) -> int:
    if DT_HASH in dyn:                          # nbucket, nchain: nchain = symbols
        return struct.unpack("<II", _read(read, _relocated(dyn[DT_HASH], bias), 8))[1]
    if DT_GNU_HASH not in dyn:
        raise MemoryElfError("neither DT_HASH nor DT_GNU_HASH: the symbol count is unknown")
    at = _relocated(dyn[DT_GNU_HASH], bias)
    nbuckets, symoffset, bloom_size, _shift = struct.unpack("<IIII", _read(read, at, 16))
    if not 0 < nbuckets <= 1 << 24 or bloom_size > 1 << 24:
        raise MemoryElfError("an implausible DT_GNU_HASH header")
    buckets_at = at + 16 + 8 * bloom_size
    buckets = struct.unpack(f"<{nbuckets}I", _read(read, buckets_at, 4 * nbuckets))
    last = max(buckets)
    if last < symoffset:
        return symoffset
    chains_at = buckets_at + 4 * nbuckets
    while last - symoffset < MAX_SYMBOLS:       # the chain ends at a value with bit 0 set
        if struct.unpack("<I", _read(read, chains_at + 4 * (last - symoffset), 4))[0] & 1:
            return last + 1
        last += 1
    raise MemoryElfError("a DT_GNU_HASH chain without an end")


def exported(read: Reader, link: LinkMap, names: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """{name: (run-time address, size)} of the defined symbols among
    ``names`` in the object's .dynsym, read in memory; a versioned name is
    matched by its base name."""
    dyn = dynamic(read, link.dynamic)
    if DT_SYMTAB not in dyn or DT_STRTAB not in dyn:
        raise MemoryElfError("no DT_SYMTAB/DT_STRTAB")
    count = _symbol_count(read, dyn, link.bias)
    if not 0 < count <= MAX_SYMBOLS:
        raise MemoryElfError(f"{count} dynamic symbols")
    strsz = dyn.get(DT_STRSZ, 0)
    if not 0 < strsz <= MAX_STRINGS:
        raise MemoryElfError(f"DT_STRSZ {strsz}")
    symtab = _read(read, _relocated(dyn[DT_SYMTAB], link.bias), 24 * count)
    strtab = _read(read, _relocated(dyn[DT_STRTAB], link.bias), strsz)
    wanted = {n.encode(): n for n in names}
    out: dict[str, tuple[int, int]] = {}
    for i in range(count):
        st_name, _info, _other, shndx, value, size = struct.unpack_from("<IBBHQQ", symtab, 24 * i)
        if shndx == SHN_UNDEF or st_name >= strsz:
            continue
        end = strtab.find(b"\0", st_name)
        name = strtab[st_name:end if end >= 0 else strsz]
        if name in wanted and wanted[name] not in out:
            out[wanted[name]] = (value + link.bias, size)
    return out


def build_id(read: Reader, base: int) -> str | None:
    """The build-id of the ELF image mapped at ``base`` (its file offset 0):
    ELF header -> program headers -> PT_NOTE -> NT_GNU_BUILD_ID "GNU";
    None when that memory is absent (not dumped) or holds no such note."""
    try:
        ehdr = _read(read, base, 64)
        if ehdr[:4] != b"\x7fELF" or ehdr[4] != 2:
            return None
        phoff, = struct.unpack_from("<Q", ehdr, 32)
        phentsize, phnum = struct.unpack_from("<HH", ehdr, 54)
        if phentsize != 56 or not 0 < phnum <= 64 or phoff > 4096:
            return None
        table = _read(read, base + phoff, 56 * phnum)
        phdrs = [struct.unpack_from("<IIQQQQQQ", table, 56 * i) for i in range(phnum)]
        first_load = min((p[3] - p[2] for p in phdrs if p[0] == PT_LOAD), default=0)
        for p_type, _flags, _off, vaddr, _pa, _filesz, memsz, _align in phdrs:
            if p_type == PT_NOTE and 0 < memsz <= 4096:
                data = _read(read, base + vaddr - first_load, memsz)
                for name, n_type, desc in notes(data):
                    if name == b"GNU" and n_type == NT_GNU_BUILD_ID and desc:
                        return desc.hex()
    except (GdbextError, struct.error):
        return None
    return None

