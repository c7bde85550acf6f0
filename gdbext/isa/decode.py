"""Decode one x86-64 instruction with iced-x86 and say what it needs.

iced's ``cpuid_features()`` is exact where capstone's groups are not (see
FORENSICS-NOTES, "ISA"); the XCR0 state an instruction needs is derived from
its encoding and registers, since iced does not report it.
"""
from __future__ import annotations

from functools import lru_cache

from iced_x86 import (Code, CpuidFeature, Decoder, DecoderError, EncodingKind,
                      Formatter, FormatterSyntax, InstructionInfoFactory,
                      MemorySizeExt, Mnemonic, OpKind, RegisterExt)

from ..knowledge import cpuid_features as cf
from ..knowledge.traps import DELIBERATE_TRAPS
from ..record import field, record

MAX_INSTRUCTION_LENGTH = 15

ENCODING_NAMES = {
    EncodingKind.LEGACY: "legacy",
    EncodingKind.VEX: "VEX",
    EncodingKind.EVEX: "EVEX",
    EncodingKind.XOP: "XOP",
    EncodingKind.D3NOW: "3DNow!",
    EncodingKind.MVEX: "MVEX",
}

_LEGACY_PREFIXES = frozenset({0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x66, 0x67,
                              0xF0, 0xF2, 0xF3})


@lru_cache(maxsize=None)
def _names(enum_module) -> dict[int, str]:
    """value -> name of an iced enum; built on first decode (~2 ms for
    Mnemonic's 1,800 names, which a command that decodes nothing skips)."""
    return {getattr(enum_module, n): n for n in dir(enum_module)
            if n.isupper() and isinstance(getattr(enum_module, n), int)}


@record
class DecodedInstruction:
    """One instruction, decoded, with the CPUID features it needs."""
    address: int
    raw: bytes                      # the instruction's bytes, or what was read
    text: str = ""                  # disassembly; "(bad)" when undecodable
    mnemonic: str = ""
    encoding: str = "none"
    vector_length: int | None = None
    iced_features: list[str] = field(default_factory=list)
    xcr0_required: int = 0
    privileged: bool = False
    trap: str | None = None         # why this instruction stops on purpose
    operand_bits: int | None = None # the first operand's size when it is a register
    undecodable: str | None = None  # why it did not decode

    @property
    def length(self) -> int:
        return len(self.raw)


@lru_cache(maxsize=4)
def formatter(syntax: str = "att") -> Formatter:
    """iced's formatter printing as gdb and objdump do (AT&T unless asked)."""
    kind = FormatterSyntax.INTEL if syntax == "intel" else FormatterSyntax.GAS
    fmt = Formatter(kind)
    fmt.space_after_operand_separator = syntax == "intel"
    fmt.uppercase_hex = False          # as gdb and objdump print
    return fmt


def decode(code: bytes, address: int, syntax: str = "att") -> DecodedInstruction:
    """Decode the first instruction in ``code`` as if it were at ``address``."""
    decoder = Decoder(64, code, ip=address)
    ins = decoder.decode()
    if ins.code == Code.INVALID:
        truncated = (decoder.last_error == DecoderError.NO_MORE_BYTES
                     and len(code) < MAX_INSTRUCTION_LENGTH)
        return DecodedInstruction(address=address, raw=bytes(code[:MAX_INSTRUCTION_LENGTH]),
                                  text="(bad)", undecodable=why_undecodable(code, truncated))
    raw = bytes(code[:ins.len])
    mnemonic = _names(Mnemonic).get(ins.mnemonic, "?")
    feature_names = _names(CpuidFeature)
    features = [feature_names.get(f, f"CPUID_FEATURE_{f}") for f in ins.cpuid_features()]
    regs = [u.register for u in InstructionInfoFactory().info(ins).used_registers()]
    return DecodedInstruction(
        address=address, raw=raw, text=formatter(syntax).format(ins),
        mnemonic=mnemonic.lower(), encoding=ENCODING_NAMES.get(ins.encoding, "legacy"),
        vector_length=_vector_length(ins),
        iced_features=features,
        xcr0_required=_xcr0_required(ins.encoding, regs, features),
        privileged=bool(ins.is_privileged),
        trap=DELIBERATE_TRAPS.get(mnemonic),
        operand_bits=(RegisterExt.size(ins.op0_register) * 8
                      if ins.op_count and ins.op0_kind == OpKind.REGISTER else None),
    )


def _vector_length(ins) -> int | None:
    """Bits of the widest explicit vector operand (iced's used_registers() reports a
    VEX write to xmm as a zmm write, so only explicit operands are looked at)."""
    bits = 0
    for i in range(ins.op_count):
        kind = ins.op_kind(i)
        if kind == OpKind.REGISTER and RegisterExt.is_vector_register(ins.op_register(i)):
            bits = max(bits, RegisterExt.size(ins.op_register(i)) * 8)
        elif kind == OpKind.MEMORY and ins.encoding != EncodingKind.LEGACY:
            size = MemorySizeExt.size(ins.memory_size)
            if size in (16, 32, 64):
                bits = max(bits, size * 8)
    return bits or None


# VEX-encoded instructions that touch no vector state (SDM vol. 2, exception
# class 13 for GPR instructions; AMX has a state of its own).
_VEX_WITHOUT_VECTOR_STATE = ("BMI1", "BMI2", "TBM", "LWP", "CMPCCXADD", "AMX_")


def _xcr0_required(encoding: int, regs, features: list[str]) -> int:
    """XCR0 state the OS must enable, or the instruction raises #UD (SDM vol. 1 §13)."""
    need = 0
    if any(f.startswith("AMX_") for f in features):
        need |= cf.XCR0_AMX_STATE
    if encoding in (EncodingKind.EVEX, EncodingKind.MVEX) or any(RegisterExt.is_k(r) for r in regs):
        need |= cf.XCR0_EVEX_STATE
    elif encoding in (EncodingKind.VEX, EncodingKind.XOP) and not any(
            f.startswith(_VEX_WITHOUT_VECTOR_STATE) for f in features):
        # every other VEX instruction, vldmxcsr included, #UDs without ymm state
        need |= cf.XCR0_YMM_STATE
    return need


def why_undecodable(code: bytes, truncated: bool = False) -> str:
    """Explain bytes that are not an instruction, naming a newer ISA when the prefix tells."""
    i = 0
    while i < len(code) and (code[i] in _LEGACY_PREFIXES or 0x40 <= code[i] <= 0x4F):
        i += 1
    rest = code[i:]
    if rest[:1] == b"\xd5":
        return ("REX2 prefix (0xD5): Intel APX (extended GPRs r16-r31), an ISA newer "
                "than this decoder")
    if rest[:1] == b"\x62" and len(rest) >= 2:
        evex_map = rest[1] & 0x7
        if evex_map == 4:
            return ("EVEX map 4: Intel APX promoted legacy instruction (NDD/NF forms), "
                    "an ISA newer than this decoder")
        if evex_map in (5, 6, 7):
            return (f"EVEX map {evex_map} opcode unknown to this decoder: probably "
                    "AVX10.2 or a newer AMX extension")
    if rest[:1] == b"\xc4" and len(rest) >= 2 and (rest[1] & 0x1F) in (5, 6, 7):
        return (f"VEX map {rest[1] & 0x1F} opcode unknown to this decoder: an ISA "
                "extension newer than it (AMX/AVX/MSR instructions)")
    if truncated:
        return "the readable bytes end inside an instruction (truncated)"
    legacy32 = Decoder(32, code).decode()
    if legacy32.code != Code.INVALID:
        return (f"not valid in 64-bit mode ({formatter('att').format(legacy32)} exists only "
                "in 32-bit code): the pc is probably in data or jumped into the middle of "
                "an instruction")
    return ("not an x86-64 instruction: the pc is probably in data, or jumped into the "
            "middle of an instruction")
