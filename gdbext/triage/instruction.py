"""What the faulting instruction itself says about a fault: the kind of
access, the address its memory operand computes from the registers, where a
ret or an indirect branch was going, and a division's divisor.

Needed because the kernel does not always give an address: a general-
protection fault (#GP: a non-canonical address, a ret or jump to one) is
delivered as SIGSEGV with si_code SI_KERNEL and si_addr 0
(arch/x86/kernel/traps.c, do_general_protection -> force_sig(SIGSEGV)), and
x86's #DE reports FPE_INTDIV for a zero divisor and a quotient overflow alike
(arch/x86/kernel/traps.c, DO_ERROR(X86_TRAP_DE, SIGFPE, FPE_INTDIV ...)).

Pure: the caller hands in the code bytes, the registers at the stop and a
``read(address, length) -> bytes`` that raises on unreadable memory.
"""
from __future__ import annotations

from ..record import record

MASK64 = (1 << 64) - 1


@record
class InstructionFacts:
    """The faulting instruction, as the fault rules need it."""
    text: str                       # AT&T, like objdump
    flow: str | None = None         # "ret", "call", "jmp" (a branch), else None
    target: int | None = None       # where the ret / branch goes, when it can be read
    target_from: str | None = None  # "[rsp]", "%rax", "0x8(%rdx)"...
    access: str | None = None       # read / write of its memory operand
    address: int | None = None      # the memory operand's effective address
    pointer: int | None = None      # the base register's value (the pointer dereferenced)
    pointer_register: str | None = None
    divisor: str | None = None      # div/idiv: the divisor operand as written
    divisor_value: int | None = None
    dividend_value: int | None = None
    size: int = 0                   # the division's operand size in bytes
    signed: bool = False

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def decode(pc: int, code: bytes, regs: dict, read) -> InstructionFacts | None:
    """The facts of the instruction at ``pc``; None when it does not decode."""
    from iced_x86 import (Decoder, FlowControl, InstructionInfoFactory, Mnemonic, OpAccess,
                          OpKind, Register)

    from ..spill.operand import analyse, register_name
    ins = Decoder(64, code, ip=pc).decode()
    if ins.is_invalid:
        return None
    op = analyse(ins, code[:ins.len], regs)
    facts = InstructionFacts(op.text)
    used = InstructionInfoFactory().info(ins).used_memory()
    writes = (OpAccess.WRITE, OpAccess.READ_WRITE, OpAccess.COND_WRITE,
              OpAccess.READ_COND_WRITE)
    if any(m.access in writes for m in used):
        facts.access = "write"
    elif used:
        facts.access = "read"
    if op.memory is not None:
        facts.address = op.effective_address
        if op.base and op.base not in ("rip", "rsp") and op.index is None:
            facts.pointer_register = op.base
            facts.pointer = _register(regs, op.base)
    flow = ins.flow_control
    if flow == FlowControl.RETURN:
        facts.flow, facts.target_from = "ret", "[rsp]"
        facts.target = _word(read, regs.get("rsp"))
        facts.address = regs.get("rsp")
        facts.pointer = facts.pointer_register = None
    elif flow in (FlowControl.INDIRECT_CALL, FlowControl.INDIRECT_BRANCH,
                  FlowControl.CALL, FlowControl.UNCONDITIONAL_BRANCH):
        facts.flow = "call" if flow in (FlowControl.CALL, FlowControl.INDIRECT_CALL) else "jmp"
        if ins.op0_kind == OpKind.REGISTER:
            name = register_name(ins.op0_register)
            facts.target, facts.target_from = _register(regs, name), f"%{name}"
        elif ins.op0_kind == OpKind.MEMORY:
            facts.target, facts.target_from = _word(read, op.effective_address), op.memory
        elif ins.op0_kind in (OpKind.NEAR_BRANCH64, OpKind.NEAR_BRANCH32):
            facts.target, facts.target_from = ins.near_branch_target, "the instruction"
    elif ins.mnemonic in (Mnemonic.DIV, Mnemonic.IDIV):
        facts.signed = ins.mnemonic == Mnemonic.IDIV
        facts.size = op.size if op.memory else _register_size(ins.op0_register)
        bits = facts.size * 8
        if ins.op0_kind == OpKind.REGISTER:
            name = register_name(ins.op0_register)
            facts.divisor = f"%{name}"
            value = _register(regs, name)
        else:
            facts.divisor = op.memory
            try:
                value = int.from_bytes(read(op.effective_address, facts.size), "little") \
                    if op.effective_address is not None else None
            except Exception:  # noqa: BLE001 - unreadable: unknown
                value = None
        facts.divisor_value = _signed(value, bits) if value is not None and facts.signed \
            else value
        rax = regs.get("rax")
        if rax is not None and ins.op0_register != Register.AH:
            low = rax & ((1 << bits) - 1) if bits < 64 else rax
            facts.dividend_value = _signed(low, bits) if facts.signed else low
    return facts


def _register_size(register) -> int:
    from iced_x86 import RegisterInfo
    return RegisterInfo(register).size


def _register(regs: dict, name: str) -> int | None:
    """A register's value by its name as written (eax, r10d, si...)."""
    if name in regs:
        return regs[name]
    full, mask = name, MASK64
    if len(name) == 3 and name.startswith("e"):
        full, mask = "r" + name[1:], 0xFFFFFFFF
    elif name.startswith("r") and name[-1] in "dwb" and name[1:-1].isdigit():
        full, mask = name[:-1], {"d": 0xFFFFFFFF, "w": 0xFFFF, "b": 0xFF}[name[-1]]
    elif len(name) == 2 and name[1] in "xip":
        full, mask = "r" + name, 0xFFFF
    elif len(name) == 2 and name[1] == "l":
        full, mask = "r" + name[0] + "x", 0xFF
    value = regs.get(full)
    return None if value is None else value & mask


def _word(read, address: int | None) -> int | None:
    if address is None:
        return None
    try:
        return int.from_bytes(read(address, 8), "little")
    except Exception:  # noqa: BLE001 - an unreadable word is unknown, not an error
        return None


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) & 1 else value
