"""The faulting instruction's memory operand: where it points, how big it is,
and what alignment the instruction demands of it (knowledge/alignment.py)."""
from __future__ import annotations

from iced_x86 import (Decoder, EncodingKind, Instruction, InstructionInfoFactory,
                      MemorySizeExt, Mnemonic, OpAccess, OpKind, Register, RegisterExt)

from ..isa.decode import formatter
from ..knowledge import alignment as al
from ..record import record

MASK64 = (1 << 64) - 1
ENCODINGS = {EncodingKind.LEGACY: "legacy", EncodingKind.VEX: "VEX", EncodingKind.EVEX: "EVEX",
             EncodingKind.XOP: "XOP"}
_MNEMONICS = {getattr(Mnemonic, n): n for n in dir(Mnemonic) if n.isupper()}
_REGISTERS = {getattr(Register, n): n.lower() for n in dir(Register) if n.isupper()}


def register_name(register: int) -> str:
    return _REGISTERS.get(register, "?")
_MEMORY_KINDS = (OpKind.MEMORY,)
_WRITES = frozenset({OpAccess.WRITE, OpAccess.COND_WRITE, OpAccess.READ_WRITE,
                     OpAccess.READ_COND_WRITE})


@record
class Operand:
    """The faulting instruction's memory operand."""
    text: str                       # the instruction, AT&T syntax like objdump
    raw: bytes
    mnemonic: str
    encoding: str
    memory: str | None              # the memory operand as written, e.g. "0x20(%rsp)"
    base: str | None
    index: str | None
    scale: int
    displacement: int
    segment: str | None             # fs/gs when the address is based on them
    rip_relative: bool
    size: int                       # bytes accessed (0: no memory operand)
    writes: bool
    effective_address: int | None
    required_alignment: int | None  # None: the instruction cannot fault on alignment
    rule: str                       # why (knowledge/alignment.RULES)

    @property
    def stack_relative(self) -> bool:
        return self.base in ("rsp", "rbp") and self.index is None

    @property
    def misaligned_by(self) -> int | None:
        if self.effective_address is None or not self.required_alignment:
            return None
        return self.effective_address % self.required_alignment


def canonical(address: int) -> bool:
    """48-bit canonical form: bits 63..47 all equal (LA57 is not assumed)."""
    top = address >> 47
    return top == 0 or top == (1 << 17) - 1


def decode_one(code: bytes, address: int) -> Instruction | None:
    decoder = Decoder(64, code, ip=address)
    ins = decoder.decode()
    return None if ins.is_invalid else ins


def analyse(ins: Instruction, raw: bytes, regs: dict[str, int]) -> Operand:
    mnemonic = _MNEMONICS.get(ins.mnemonic, "?")
    encoding = ENCODINGS.get(ins.encoding, "other")
    text = formatter().format(ins)
    memory_operand = next((i for i in range(ins.op_count) if ins.op_kind(i) in _MEMORY_KINDS),
                          None)
    if memory_operand is None:
        return Operand(text, raw, mnemonic.lower(), encoding, None, None, None, 1, 0, None,
                       False, 0, False, None, None,
                       al.RULES["none-memory"].format(mnemonic=mnemonic.lower()))
    base = _REGISTERS.get(ins.memory_base) if ins.memory_base != Register.NONE else None
    index = _REGISTERS.get(ins.memory_index) if ins.memory_index != Register.NONE else None
    segment = _REGISTERS.get(ins.memory_segment)
    segment = segment if segment in ("fs", "gs") else None
    size = MemorySizeExt.size(ins.memory_size)
    writes = any(m.access in _WRITES for m in InstructionInfoFactory().info(ins).used_memory())
    ea = _effective_address(ins, base, index, segment, regs)
    need, rule = _alignment(mnemonic, encoding, size, ins)
    memory = _operand_text(text)
    return Operand(text, raw, mnemonic.lower(), encoding, memory, base, index,
                   ins.memory_index_scale, _signed(ins.memory_displacement), segment,
                   ins.is_ip_rel_memory_operand, size, writes, ea, need, rule)


def _signed(value: int) -> int:
    return value - (1 << 64) if value >> 63 else value


def _operand_text(text: str) -> str | None:
    """The memory operand as it reads in the AT&T text, e.g. 0x14(%rsp)."""
    for part in text.split(" ", 1)[-1].split(","):
        if "(" in part or part.startswith(("%fs:", "%gs:")):
            start = text.find(part)
            end = text.find(")", start)
            return text[start:end + 1] if end > 0 else part
    return None


def _effective_address(ins, base, index, segment, regs) -> int | None:
    if ins.is_ip_rel_memory_operand:
        return ins.ip_rel_memory_address
    total = ins.memory_displacement
    for reg, scale in ((base, 1), (index, ins.memory_index_scale)):
        if reg is None:
            continue
        full = _full_register(reg)
        if full not in regs:
            return None
        value = regs[full]
        if reg.startswith("e") or reg.endswith("d"):      # 32-bit addressing
            value &= 0xFFFFFFFF
        total += value * scale
    if segment is not None:
        seg_base = regs.get(f"{segment}_base")
        if seg_base is None:
            return None
        total += seg_base
    return total & MASK64


def _full_register(name: str) -> str:
    if name.startswith("e") and len(name) == 3:
        return "r" + name[1:]
    if name.startswith("r") and name.endswith("d"):
        return name[:-1]
    return name


def _alignment(mnemonic: str, encoding: str, size: int, ins) -> tuple[int | None, str]:
    low = mnemonic.lower()
    if mnemonic in al.FIXED:
        n = al.FIXED[mnemonic]
        return n, al.RULES["fixed"].format(mnemonic=low, n=n)
    if mnemonic in al.ALIGNED_MOVES:
        return size, al.RULES["aligned-move"].format(mnemonic=low, n=size)
    if encoding in ("VEX", "EVEX", "XOP"):
        return None, al.RULES["none-vex"].format(encoding=encoding, mnemonic=low)
    if mnemonic in al.LEGACY_UNALIGNED:
        return None, al.RULES["none-unaligned"].format(mnemonic=low)
    if size == al.LEGACY_SSE_OPERAND and _uses_xmm(ins):
        return al.LEGACY_SSE_OPERAND, al.RULES["legacy-sse"].format(mnemonic=low)
    return None, al.RULES["none-partial"].format(mnemonic=low, size=size)


def _uses_xmm(ins) -> bool:
    return any(ins.op_kind(i) == OpKind.REGISTER and RegisterExt.is_xmm(ins.op_register(i))
               for i in range(ins.op_count))
