"""Fuzz what takes instruction bytes: isa/decode (one instruction at an
address) and spill/pressure (a whole function's blocks, liveness and spill
slots).  Contract: a result, or GdbextError/UndecodableError, for any bytes at
any address -- random bytes, prefix soup, and functions made of the vector,
stack and branch instructions the analyses care about."""
from __future__ import annotations

import struct

from hypothesis import example
from hypothesis import strategies as st

from gdbext.errors import GdbextError
from gdbext.isa import decode as dec
from gdbext.spill import pressure
from tests.fuzz.common import fuzz, mutate, mutations

u64 = st.integers(0, (1 << 64) - 1)
s32 = st.integers(-2**31, 2**31 - 1)
ADDRESSES = st.sampled_from([0, 0x401000, 0x7FFFFFFFF000, (1 << 64) - 16, (1 << 64) - 1]) | u64

# Prefixes and escapes that steer the decoder: legacy, REX, VEX2/3, XOP, EVEX, REX2 (APX).
PREFIXES = st.sampled_from([0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x66, 0x67, 0xF0, 0xF2, 0xF3,
                            0x40, 0x48, 0x4F, 0xC4, 0xC5, 0x8F, 0x62, 0xD5, 0x0F, 0x38, 0x3A])


@st.composite
def instruction_bytes(draw):
    """Up to 20 bytes: random, or prefix-heavy then random."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=20))
    head = bytes(draw(st.lists(PREFIXES, max_size=6)))
    return (head + draw(st.binary(max_size=12)))[:20]


@example(code=b"\xd5\x00\x00", address=0, syntax="att")            # REX2 (APX)
@example(code=b"\x62\xf4\x7c\x08\x00\xc0", address=0, syntax="att")  # EVEX map 4
@example(code=b"\xc4\xe5\x00\x00", address=(1 << 64) - 1, syntax="intel")
@example(code=b"", address=0, syntax="att")
@fuzz(instruction_bytes(), ADDRESSES, st.sampled_from(["att", "intel"]), weight=3)
def test_decode_gives_an_instruction_or_a_reason(code, address, syntax):
    try:
        ins = dec.decode(code, address, syntax)
    except GdbextError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(ins, dec.DecodedInstruction) and ins.address == address
    assert ins.length <= dec.MAX_INSTRUCTION_LENGTH
    if ins.undecodable:
        assert ins.text == "(bad)" and "\n" not in ins.undecodable
    else:
        assert ins.text and ins.raw == code[:ins.length] and ins.xcr0_required >= 0
    assert isinstance(dec.why_undecodable(code, bool(address & 1)), str)


# Instructions liveness and the slot finder look at (assembled with `as`, GNU syntax).
PIECES = [bytes.fromhex(h) for h in (
    "55", "4889e5", "4883ec40", "4883e4e0", "c5f8294c2410", "c5f8284c2410", "c5fc11542420",
    "c5fc10542420", "c5ec58d9", "c4e255b8f4", "c4e351226c241401", "0f290424", "0f280424",
    "f30f10c1", "660fefc0", "c5c057ff", "c5f877", "c5fc77", "62e1fe487f4c2401",
    "62e1fe486f4c2401", "62f16c4958d9", "c5f890d1", "c5e447db", "c4e275921c90", "488945f8",
    "c5f8295dd0", "c5f8285dd0", "ffe0", "c3", "0f0b", "c9", "5d", "4883c440", "0f05", "cc")]


@st.composite
def functions(draw):
    """A function made of stack, vector and branch instructions; branches land
    anywhere (mid-instruction, outside the function)."""
    out = b""
    for _ in range(draw(st.integers(0, 60))):
        kind = draw(st.integers(0, 9))
        if kind < 7:
            out += draw(st.sampled_from(PIECES))
        elif kind == 7:                                     # jmp/jcc rel8
            out += bytes([draw(st.sampled_from([0xEB, 0x74, 0x75, 0x7F]))]) + \
                struct.pack("<b", draw(st.integers(-128, 127)))
        elif kind == 8:                                     # call/jmp rel32
            out += bytes([draw(st.sampled_from([0xE8, 0xE9]))]) + \
                struct.pack("<i", draw(st.integers(-len(out) - 8, 64) | s32))
        else:
            out += draw(st.binary(min_size=1, max_size=4))
    return mutate(out, draw(mutations(st, max_mutations=2)))


@example(code=b"\xeb\xfe", start=0)                                  # jmp to itself
@example(code=b"\x75\xfe\xc3", start=(1 << 64) - 2)                  # wraps past 2**64
@example(code=b"\x00", start=(1 << 64) - 1)                          # an ip of 2**64 for iced
@example(code=b"U" * 12 + bytes.fromhex("0f2904240f280424"), start=(1 << 64) - 16)  # a slot there
@example(code=b"", start=0x1000)
@fuzz(functions() | st.binary(max_size=300), ADDRESSES)
def test_pressure_analysis_gives_blocks_for_any_bytes(code, start):
    try:
        fp = pressure.analyse_function(code, start, max_instructions=400)
    except GdbextError as exc:
        assert "\n" not in str(exc)
        return
    assert fp.register_file in (16, 32) and fp.undecodable_bytes <= len(code)
    assert all(b.instructions > 0 and b.vector_registers_live_max <= 32 for b in fp.blocks)
    for b in fp.blocks:
        assert fp.block_at(b.start) is b
        for pc in list(b.live_at_pc)[:3]:
            fp.live_registers_at(pc)
            fp.slot_at(pc)
    fp.oversized_blocks()
    fp.block_at(start - 1)
