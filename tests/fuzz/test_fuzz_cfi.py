"""Fuzz the CFI reader through cfi.lookup_in, the bytes entry point that runs
the same header parse, search, entry reads and DW_CFA interpreter as
cfi.lookup on a file.  Contract: a CfaRule or a one-line reason, never an
exception (``_Corrupt`` included) and never an endless loop.  Inputs: a valid
.eh_frame_hdr + .eh_frame (CIEs, FDEs, CFA programs) built here, then mutated."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import event, example
from hypothesis import strategies as st

from gdbext import elf_file
from gdbext.spill import cfi
from tests.fuzz.common import fuzz, mutate, mutations

HDR_ADDR, FRAME_ADDR, TEXT_ADDR = 0x2000, 0x3000, 0x10000
PCREL_SDATA4 = 0x1B


def uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        done = (n == 0 and not byte & 0x40) or (n == -1 and byte & 0x40)
        out.append(byte | (0 if done else 0x80))
        if done:
            return bytes(out)


def pointer(enc: int, value: int, here: int) -> bytes:
    """value encoded as DW_EH_PE ``enc`` at link-time address ``here``."""
    if enc & 0x70 == 0x10:
        value -= here
    fmt = enc & 0x0F
    if fmt == 0x1:
        return uleb(value & cfi.MASK64)
    if fmt == 0x9:
        return sleb(value)
    size, signed = cfi._FIXED[fmt]
    bits = 8 * size
    value &= (1 << bits) - 1
    if signed and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value.to_bytes(size, "little", signed=signed)


def entry(body: bytes) -> bytes:
    body += bytes(-(len(body) + 4) % 8)             # DW_CFA_nop padding, as GCC aligns
    return struct.pack("<I", len(body)) + body


def advance(delta: int) -> bytes:
    if delta < 64:
        return bytes([0x40 | delta])
    for op, size in ((0x02, 1), (0x03, 2), (0x04, 4)):
        if delta < 1 << 8 * size:
            return bytes([op]) + delta.to_bytes(size, "little")
    raise ValueError(delta)


FDE_ENCODINGS = (PCREL_SDATA4, 0x03, 0x04, 0x0B, 0x0C, 0x1C, 0x00, 0x01, 0x09)


@st.composite
def cie_shapes(draw):
    version = draw(st.sampled_from([1, 3, 4]))
    aug = draw(st.sampled_from(["zR", "zRS", "zPLR", "zR", "zRB", ""]))
    fde_enc = draw(st.sampled_from(FDE_ENCODINGS)) if "R" in aug else 0x00
    caf = draw(st.sampled_from([1, 1, 2, 4]))
    daf = draw(st.sampled_from([-8, -8, -4, 1]))
    return version, aug, fde_enc, caf, daf


def cie_bytes(shape, here: int) -> bytes:
    """A CIE whose initial rule is CFA = rsp+8, rip at CFA+daf (as GCC's)."""
    version, aug, fde_enc, caf, daf = shape
    body = struct.pack("<I", 0) + bytes([version]) + aug.encode() + b"\0"
    if version == 4:
        body += b"\x08\x00"
    body += uleb(caf) + sleb(daf) + (b"\x10" if version == 1 else uleb(16))
    if aug.startswith("z"):
        data = b""
        for letter in aug[1:]:
            if letter == "R":
                data += bytes([fde_enc])
            elif letter == "L":
                data += b"\x1b"
            elif letter == "P":
                data += b"\x03" + struct.pack("<I", 0x12345)   # udata4 personality
            elif letter == "B":
                data += b"\x00"
        body += uleb(len(data)) + data
    body += b"\x0c\x07\x08" + b"\x90" + uleb(1)      # def_cfa rsp 8; offset rip, 1 * daf
    return entry(body)


@st.composite
def cfa_ops(draw) -> bytes:
    """One DW_CFA instruction of any kind, with operands (the random programs)."""
    reg = draw(st.integers(0, 40) | st.integers(0, 2**64))
    n = draw(st.integers(0, 300) | st.integers(0, 2**64))
    s = draw(st.integers(-300, 300) | st.integers(-2**63, 2**63))
    block = draw(st.binary(max_size=8))
    low = draw(st.integers(0, 63))
    return draw(st.sampled_from([
        bytes([0x40 | low]), bytes([0x80 | low]) + uleb(n), bytes([0xC0 | low]), b"\x00",
        b"\x01" + struct.pack("<i", s & 0x7FFFFFFF), b"\x02" + bytes([n & 0xFF]),
        b"\x03" + struct.pack("<H", n & 0xFFFF), b"\x04" + struct.pack("<I", n & 0xFFFFFFFF),
        b"\x1d" + struct.pack("<Q", n & cfi.MASK64),
        b"\x05" + uleb(reg) + uleb(n), b"\x11" + uleb(reg) + sleb(s), b"\x2f" + uleb(reg) + uleb(n),
        b"\x06" + uleb(reg), b"\x07" + uleb(reg), b"\x08" + uleb(reg),
        b"\x09" + uleb(reg) + uleb(n), b"\x0a", b"\x0b", b"\x0c" + uleb(reg) + uleb(n),
        b"\x12" + uleb(reg) + sleb(s), b"\x0d" + uleb(reg), b"\x0e" + uleb(n), b"\x13" + sleb(s),
        b"\x0f" + uleb(len(block)) + block, b"\x10" + uleb(reg) + uleb(len(block)) + block,
        b"\x16" + uleb(reg) + uleb(len(block)) + block, b"\x14" + uleb(reg) + uleb(n),
        b"\x15" + uleb(reg) + sleb(s), b"\x2e" + uleb(n), bytes([draw(st.integers(0, 0x3F))]),
    ]))


@st.composite
def programs(draw):
    """(instructions, rows): either a modelled program -- advance, then set the
    CFA offset, per row -- whose rule at each pc is known, or random opcodes."""
    if draw(st.booleans()):
        rows = draw(st.lists(st.tuples(st.integers(0, 70000), st.integers(0, 4096)),
                             max_size=8))
        return b"".join(advance(d) + b"\x0e" + uleb(o) for d, o in rows), rows
    return b"".join(draw(st.lists(cfa_ops(), max_size=12))), None


@st.composite
def unwind_tables(draw):
    """(hdr bytes, eh_frame bytes, fdes) where fdes are (start, end, caf, rows, cie shape)."""
    frame = bytearray()
    cies = []
    for _ in range(draw(st.integers(1, 2))):
        shape = draw(cie_shapes())
        cies.append((len(frame), shape))
        frame += cie_bytes(shape, FRAME_ADDR + len(frame))
    fdes, table = [], []
    start = TEXT_ADDR + draw(st.integers(0, 64))
    for _ in range(draw(st.integers(1, 5))):
        cie_offset, shape = draw(st.sampled_from(cies))
        _version, aug, fde_enc, caf, _daf = shape
        insns, rows = draw(programs())
        size = (sum(d for d, _ in rows) * caf if rows else 0) + draw(st.integers(1, 200))
        empty = draw(st.integers(0, 9)) == 0          # an empty FDE sharing the start
        for length in ((0, size) if empty else (size,)):
            here = len(frame)
            body = struct.pack("<I", here + 4 - cie_offset)
            body += pointer(fde_enc, start, FRAME_ADDR + here + 4 + len(body))
            body += pointer(fde_enc & 0x0F, length, 0)
            if aug.startswith("z"):
                body += b"\x00"
            frame += entry(body + (insns if length else b""))
            table.append((start, FRAME_ADDR + here))
        fdes.append((start, start + size, caf, rows, shape))
        start += size + draw(st.integers(0, 32))
    if draw(st.booleans()):
        frame += bytes(4)                                # the terminator
    table.sort(key=lambda e: e[0])
    hdr = bytes([1, PCREL_SDATA4, 0x03, 0x3B]) + pointer(PCREL_SDATA4, FRAME_ADDR, HDR_ADDR + 4)
    hdr += struct.pack("<I", len(table))
    hdr += b"".join(struct.pack("<ii", s - HDR_ADDR, f - HDR_ADDR) for s, f in table)
    return hdr, bytes(frame), fdes


def _check(found, pc: int):
    assert isinstance(found, (cfi.CfaRule, str)), found
    if isinstance(found, str):
        assert found and "\n" not in found
        event(" ".join(w for w in found.split()[1:5] if not w[:2] in ("0x", "<b")))
    else:
        assert found.pc == pc and found.cfa
        event("a rule")


@fuzz(unwind_tables(), st.data())
def test_a_valid_table_gives_each_row_its_rule(tables, data):
    hdr, frame, fdes = tables
    start, end, caf, rows, shape = data.draw(st.sampled_from(fdes))
    pc = data.draw(st.integers(start, end - 1))
    found = cfi.lookup_in(hdr, HDR_ADDR, frame, FRAME_ADDR, pc)
    _check(found, pc)
    if rows is None:
        return
    assert isinstance(found, cfi.CfaRule), found
    assert (found.fde_start, found.fde_end, found.register) == (start, end, "rsp")
    offset, loc = 8, start
    for delta, value in rows:
        loc += delta * caf
        if loc > pc:
            break
        offset = value
    assert found.offset == offset
    assert found.saved == {"rip": shape[4]} and found.signal_frame == ("S" in shape[1])


@example(tables=(bytes([1, 0x1B, 0x03, 0x3B]) + struct.pack("<iI", 0xFFC, 1)   # FDE at its own CIE
                 + struct.pack("<ii", TEXT_ADDR - HDR_ADDR, FRAME_ADDR - HDR_ADDR),
                 struct.pack("<II", 12, 4) + bytes(8), []),
         hdr_edits=[], frame_edits=[], pcs=[TEXT_ADDR])
@example(tables=(bytes([1, 0x1B, 0x03, 0x3B]) + struct.pack("<iI", 0xFFC, 1)   # zero-length entry
                 + struct.pack("<ii", TEXT_ADDR - HDR_ADDR, FRAME_ADDR - HDR_ADDR),
                 bytes(16), []),
         hdr_edits=[], frame_edits=[], pcs=[TEXT_ADDR])
@fuzz(unwind_tables(), mutations(st), mutations(st, max_mutations=6),
      st.lists(st.integers(0, 2**64 - 1) | st.integers(TEXT_ADDR, TEXT_ADDR + 0x2000),
               min_size=1, max_size=4), weight=1.5)
def test_a_mutated_table_gives_a_rule_or_a_reason(tables, hdr_edits, frame_edits, pcs):
    hdr, frame, fdes = tables
    hdr, frame = mutate(hdr, hdr_edits), mutate(frame, frame_edits)
    for pc in pcs + [s for s, *_ in fdes[:2]]:
        _check(cfi.lookup_in(hdr, HDR_ADDR, frame, FRAME_ADDR, pc), pc)


@fuzz(st.binary(max_size=64), st.binary(max_size=256), st.integers(0, 2**64 - 1),
      st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), weight=3)
def test_random_bytes_give_a_rule_or_a_reason(hdr, frame, hdr_addr, frame_addr, pc):
    _check(cfi.lookup_in(hdr, hdr_addr, frame, frame_addr, pc), pc)


@fuzz(st.lists(cfa_ops(), max_size=40), cie_shapes(), st.integers(0, 2**64 - 1) | st.none())
def test_the_interpreter_ends_with_a_state_or_corrupt(ops, shape, pc):
    """_Machine on random programs: every way out is _Corrupt (turned into a
    reason by lookup) or a finished run."""
    _version, _aug, fde_enc, caf, daf = shape
    insns = b"".join(ops)
    cie = cfi._Cie(caf, daf, fde_enc, True, False, cfi._Insns(b"", 0))
    try:
        cfi._Machine(cie).run(cfi._Cursor(insns, 0, len(insns), 0), 0, pc)
    except cfi._Corrupt:
        pass


# --- the bytes entry point is the file lookup ------------------------------------

LIBC = "/lib/x86_64-linux-gnu/libc.so.6"


@pytest.fixture(scope="module")
def libc_unwind():
    """libc's .eh_frame_hdr and .eh_frame as bytes, and its FDE range."""
    if not Path(LIBC).exists():
        pytest.skip("no glibc at the Debian path")
    found = {s.name: s for s in elf_file.sections(LIBC)}
    with open(LIBC, "rb") as fh:
        def contents(name):
            fh.seek(found[name].offset)
            return fh.read(found[name].size), found[name].address
        hdr, hdr_addr = contents(".eh_frame_hdr")
        frame, frame_addr = contents(".eh_frame")
    index = cfi._index(*elf_file._key(LIBC))
    return hdr, hdr_addr, frame, frame_addr, index.locs[0] + index.base, index.locs[-1] + index.base


@fuzz(st.floats(-0.01, 1.01, allow_nan=False), weight=0.3)
def test_lookup_in_agrees_with_lookup_on_libc(libc_unwind, where):
    """The same rule (or reason) from the file and from its sections' bytes."""
    hdr, hdr_addr, frame, frame_addr, first, last = libc_unwind
    pc = max(0, first + int(where * (last + 0x100 - first)))
    assert cfi.lookup_in(hdr, hdr_addr, frame, frame_addr, pc, name=LIBC) == cfi.lookup(LIBC, pc)
