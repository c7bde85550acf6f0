"""Fuzz the core-file reader: ELF header and program headers (elf_file, struct),
the PT_NOTE walk and each note's parser (core_file).  Contract: any bytes
give facts or one CoreFileError/GdbextError, never another exception, a hang
or a huge allocation.  Inputs are well-formed cores built here, then mutated."""
from __future__ import annotations

import string
import struct

import pytest
from hypothesis import example
from hypothesis import strategies as st

from gdbext import core_file, elf_file
from gdbext.errors import GdbextError
from tests.fuzz.common import INTERESTING, fuzz, mutate, mutations
from tests.unit.test_core_file import note, prpsinfo

NT_FILE, NT_SIGINFO, NT_XSTATE = 0x46494C45, 0x53494749, 0x202
u64 = st.integers(0, 2**64 - 1)
s32 = st.integers(-2**31, 2**31 - 1)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """One file rewritten per case (a function-scoped tmp_path would be shared
    by every example anyway)."""
    return tmp_path_factory.mktemp("fuzz-core") / "core"


def phdr(p_type: int, offset: int, size: int, vaddr: int = 0, flags: int = 4) -> bytes:
    return struct.pack("<IIQQQQQQ", p_type, flags, offset, vaddr, 0, size, size, 4)


def ehdr(e_type: int, phoff: int, phnum: int, shoff: int = 0, shnum: int = 0,
         shstrndx: int = 0) -> bytes:
    return (b"\x7fELF\x02\x01\x01" + bytes(9)
            + struct.pack("<HHIQQQIHHHHHH", e_type, 62, 1, 0, phoff, shoff, 0, 64, 56,
                          phnum, 64, shnum, shstrndx))


# --- a well-formed core -----------------------------------------------------

PATHS = st.binary(min_size=1, max_size=40).filter(lambda b: b"\0" not in b)
JUNK_NAMES = st.sampled_from([b"GNU\0", b"", b"\0", b"CORE", b"LINUXX\0", b"X" * 13])


@st.composite
def cores(draw):
    """(core bytes, what core_file.read must say about it)."""
    command = draw(st.text(string.ascii_letters + string.digits + "_-.", min_size=1, max_size=15))
    # pr_psargs: any bytes, shown by the one policy (gdbext/text.py: \xNN for what is not UTF-8)
    raw_arguments = draw(st.binary(max_size=79).filter(lambda b: b"\0" not in b))
    arguments = raw_arguments.decode("utf-8", "backslashreplace").strip()
    pid, signo = draw(s32), draw(s32)
    keys = draw(st.lists(st.integers(1, 2**64 - 1), unique=True, max_size=12))
    auxv = {k: draw(u64) for k in keys}
    maps = draw(st.lists(st.tuples(u64, u64, st.integers(0, 2**40), PATHS), max_size=6))
    xcr0 = draw(st.none() | u64)
    parts = [note(3, prpsinfo(command.encode(), raw_arguments, pid)),
             note(NT_SIGINFO, struct.pack("<iii", signo, 0, 0) + bytes(116)),
             note(6, b"".join(struct.pack("<QQ", k, v) for k, v in auxv.items()) + bytes(16)),
             note(NT_FILE, _file_note_bytes(maps))]
    if xcr0 is not None:
        xsave = bytearray(draw(st.sampled_from([576, 832, 1088, 2696])))
        struct.pack_into("<Q", xsave, core_file.XCR0_OFFSET, xcr0)
        parts.append(note(NT_XSTATE, bytes(xsave), name=b"LINUX\0"))
    parts += draw(st.lists(st.builds(lambda n, t, d: note(t, d, name=n), JUNK_NAMES,
                                     st.integers(0, 2**32 - 1), st.binary(max_size=64)),
                           max_size=3))
    parts = draw(st.permutations(parts))
    split = draw(st.integers(0, len(parts)))        # one or two PT_NOTE segments
    segments = [b"".join(parts[:split]), b"".join(parts[split:])]
    loads = draw(st.integers(0, 3))
    count = 2 + loads
    offset = 64 + 56 * count
    table = phdr(4, offset, len(segments[0])) + phdr(4, offset + len(segments[0]), len(segments[1]))
    table += b"".join(phdr(1, 0, 0x1000, 0x400000 + 0x1000 * i, 5) for i in range(loads))
    data = ehdr(4, 64, count) + table + segments[0] + segments[1]
    expected = dict(command=command, arguments=arguments, pid=pid, signo=signo, auxv=auxv,
                    mappings=[(s, e, p * 4096, path) for s, e, p, path in maps], xcr0=xcr0)
    return data, expected


def _file_note_bytes(maps) -> bytes:
    """tests/unit's file_note with paths as bytes (any bytes but NUL)."""
    head = struct.pack("<QQ", len(maps), 4096)
    body = b"".join(struct.pack("<QQQ", s, e, p) for s, e, p, _ in maps)
    return head + body + b"".join(path + b"\0" for *_, path in maps)


def _read(path, data: bytes):
    path.write_bytes(data)
    try:
        return core_file.read(str(path))
    except core_file.CoreFileError as exc:
        assert "\n" not in str(exc)
        return exc


@fuzz(cores(), weight=0.5)
def test_a_well_formed_core_gives_back_what_was_written(scratch, core):
    data, want = core
    facts = _read(scratch, data)
    assert isinstance(facts, core_file.CoreFacts), facts
    assert (facts.command, facts.arguments, facts.pid, facts.signo) == \
        (want["command"], want["arguments"], want["pid"], want["signo"])
    assert facts.auxv == want["auxv"] and facts.xcr0 == want["xcr0"]
    # any byte that is not UTF-8 shows as \xNN (gdbext/text.py's one policy)
    assert [(m.start, m.end, m.page_offset, m.path) for m in facts.mappings] == \
        [(s, e, p, path.decode("utf-8", "backslashreplace")) for s, e, p, path in want["mappings"]]


# Header fields worth a targeted hit: e_phoff, e_shoff, e_phentsize, e_phnum,
# and the first program header's p_offset and p_filesz.
HEADER_FIELDS = st.sampled_from([(32, 8), (40, 8), (54, 2), (56, 2), (64 + 8, 8), (64 + 32, 8)])


# Regressions (seek() raised ValueError for offsets >= 2**63): e_phoff; PN_XNUM
# with a huge e_shoff; a PT_NOTE's p_offset.
@example(core=(ehdr(4, 1 << 63, 1), {}), edits=[], field=None)
@example(core=(ehdr(4, 64, 0xFFFF, shoff=(1 << 64) - 1), {}), edits=[], field=None)
@example(core=(ehdr(4, 64, 1) + phdr(4, 1 << 63, 16), {}), edits=[], field=None)
@fuzz(cores(), mutations(st), st.none() | st.tuples(HEADER_FIELDS, st.sampled_from(INTERESTING)))
def test_a_mutated_core_is_facts_or_one_error(scratch, core, edits, field):
    data = bytearray(mutate(core[0], edits))
    if field is not None:
        (at, size), value = field
        data[at:at + size] = (value & ((1 << 8 * size) - 1)).to_bytes(size, "little")
    data = bytes(data)
    _read(scratch, data)
    for parse in (elf_file.file_header, elf_file.program_headers, elf_file.load_segments):
        try:
            parse(str(scratch))
        except GdbextError as exc:
            assert "\n" not in str(exc)


# --- the pure note parsers on bytes ------------------------------------------

@st.composite
def note_segments(draw):
    """A PT_NOTE segment's bytes: well-formed notes, then mutated, or notes
    whose header lies (huge namesz/descsz, odd sizes)."""
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from([b"CORE\0", b"LINUX\0", b"GNU\0", b""]))
        n_type = draw(st.sampled_from([3, 6, NT_FILE, NT_SIGINFO, NT_XSTATE, 1, 0]))
        desc = draw(st.binary(max_size=600))
        if draw(st.booleans()):
            namesz = draw(st.sampled_from([len(name), 0, 1, 3, 0xFFFFFFFF, 0x7FFFFFFF]))
            descsz = draw(st.sampled_from([len(desc), 0, 5, 0xFFFFFFFF, 0xFFFFFFF0]))
            parts.append(struct.pack("<III", namesz, descsz, n_type) + name + desc)
        else:
            parts.append(note(n_type, desc, name=name))
    return mutate(b"".join(parts), draw(mutations(st)))


@example(data=struct.pack("<III", 0xFFFFFFFF, 0xFFFFFFFF, 3))
@example(data=struct.pack("<III", 0, 0, 0) * 3 + b"\0\0")
@fuzz(note_segments() | st.binary(max_size=256), weight=2)
def test_any_note_segment_gives_facts(data):
    facts = core_file.CoreFacts(62)
    core_file.parse_notes(data, facts)
    for name, _type, desc in core_file.notes(data):
        assert isinstance(name, bytes) and len(desc) <= len(data)
    if facts.xcr0 is not None:
        assert 0 <= facts.xcr0 < 1 << 64


@fuzz(st.dictionaries(st.integers(1, 2**64 - 1), u64, max_size=40), st.binary(max_size=40))
def test_auxv_round_trips_and_stops_at_at_null(vector, tail):
    desc = b"".join(struct.pack("<QQ", k, v) for k, v in vector.items()) + bytes(16) + tail
    assert core_file.parse_auxv(desc) == vector
    assert isinstance(core_file.parse_auxv(desc[:len(desc) // 2 + 3]), dict)


@fuzz(st.lists(st.tuples(u64, u64, st.integers(0, 2**40),
                         st.binary(max_size=60).filter(lambda b: b"\0" not in b)), max_size=12),
      mutations(st))
def test_file_note_round_trips_and_survives_mutation(maps, edits):
    desc = _file_note_bytes(maps)
    got = core_file.parse_file_note(desc)
    assert [(m.start, m.end, m.page_offset, m.path) for m in got] == \
        [(s, e, p * 4096, path.decode("utf-8", "backslashreplace")) for s, e, p, path in maps]
    broken = core_file.parse_file_note(mutate(desc, edits))
    assert all(isinstance(m.path, str) for m in broken)


# --- the section table and .dynsym (elf_file.sections, dynamic_symbol) ---------

@st.composite
def dynsym_files(draw):
    """(bytes, {name: (value, size)}) of an ELF with .shstrtab, .dynsym and .dynstr."""
    names = draw(st.lists(st.text(string.ascii_letters + "_", min_size=1, max_size=12),
                          unique=True, max_size=6))
    symbols = {n: (draw(u64), draw(u64)) for n in names}
    dynstr = b"\0" + b"".join(n.encode() + b"\0" for n in names)
    syms = bytes(24)
    pos = 1
    for n in names:
        syms += struct.pack("<IBBHQQ", pos, 0x12, 0, 1, *symbols[n])
        pos += len(n) + 1
    shstr = b"\0.shstrtab\0.dynsym\0.dynstr\0"
    body_at = 64
    layout = [shstr, syms, dynstr]
    offsets = []
    for blob in layout:
        offsets.append(body_at)
        body_at += len(blob)
    shoff = body_at
    shdrs = bytes(64)
    shdrs += struct.pack("<IIQQQQIIQQ", 1, 3, 0, 0, offsets[0], len(shstr), 0, 0, 1, 0)
    shdrs += struct.pack("<IIQQQQIIQQ", 11, 11, 2, 0, offsets[1], len(syms), 3, 1, 8, 24)
    shdrs += struct.pack("<IIQQQQIIQQ", 19, 3, 2, 0, offsets[2], len(dynstr), 0, 0, 1, 0)
    data = ehdr(3, 0, 0, shoff=shoff, shnum=4, shstrndx=1) + b"".join(layout) + shdrs
    return data, symbols


@fuzz(dynsym_files(), mutations(st), weight=0.5)
def test_section_table_and_dynsym_are_values_or_one_error(scratch, elf, edits):
    data, symbols = elf
    scratch.write_bytes(data)
    for name, (value, size) in symbols.items():
        assert elf_file.dynamic_symbol(str(scratch), (name,)) == (name, value, size)
    scratch.write_bytes(mutate(data, edits))
    for call in (lambda: elf_file.sections(str(scratch)),
                 lambda: elf_file.dynamic_symbol(str(scratch), tuple(symbols) or ("x",)),
                 lambda: elf_file.section_addresses(str(scratch))):
        try:
            call()
        except GdbextError as exc:
            assert "\n" not in str(exc)
