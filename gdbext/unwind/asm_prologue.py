"""Where an asm function without CFI keeps its return address, from its code.

OpenBLAS's x86-64 kernels have no unwind entries and move rsp far from
where they were entered: dgemm_kernel_PILEDRIVER starts

    sub $0x60,%rsp; mov %rbx,(%rsp) ...; mov %rsp,%rbx
    sub $0x2080,%rsp; and $-4096,%rsp          (a buffer on the stack)

and restores rsp from rbx only in its epilogue (``mov %rbx,%rsp; mov
(%rsp),%rbx; ...; add $0x60,%rsp; ret``).  At any pc in its body the return
address is at rbx + 0x60, while rsp lies up to 12 KiB lower, over a buffer
full of stale return addresses that a stack scan can take for callers.

``return_address_rule`` reads that from the function's own instructions:
it follows rsp through the straight-line entry block (sub/add/push/pop,
copies by mov or lea), then accepts a register that holds entry rsp minus
a constant at ``pc`` only when no instruction past the entry block writes
it, except in a block that ends in ``ret`` after restoring rsp from it (the
epilogue).  An indirect jump (unknown block starts), an undecodable byte,
a pc inside such an epilogue, or a register some other block writes: no
rule -- the caller scans instead.  What it returns is a claim about the
code, checked against the stack by the caller (a return address must be
there); frames placed by it stay ``inferred``.

Pure: the function's bytes are given.
"""
from __future__ import annotations

from ..record import record

# Callee-saved registers (SysV x86-64): a copy of rsp in one survives calls.
KEPT = ("rbx", "rbp", "r12", "r13", "r14", "r15")
WRITES = (3, 4, 5, 6)       # iced OpAccess: WRITE, COND_WRITE, READ_WRITE, READ_COND_WRITE


@record(frozen=True)
class ReturnAddressRule:
    register: str           # "rsp" or one of KEPT
    offset: int             # the return address is at register + offset
    how: str                # the instructions that say so


def _decode(code: bytes, start: int) -> list | None:
    from iced_x86 import Code, Decoder

    out = []
    for ins in Decoder(64, code, ip=start):
        if ins.code == Code.INVALID:
            return None
        out.append(ins)
    return out


def _names():
    from iced_x86 import Register, RegisterExt
    names = {getattr(Register, n.upper()): n for n in ("rsp",) + KEPT}

    def full(reg: int) -> str | None:
        return names.get(RegisterExt.full_register(reg))
    return full


def _written(ins, info_factory, full) -> set[str]:
    return {name for r in info_factory.info(ins).used_registers()
            if r.access in WRITES and (name := full(r.register))}


def _step(ins, offs: dict[str, int], written: set[str], full) -> None:
    """One entry-block instruction on ``offs`` (register -> entry rsp + n)."""
    from iced_x86 import Mnemonic, OpKind

    m, k0 = ins.mnemonic, ins.op0_kind
    dest = full(ins.op0_register) if k0 == OpKind.REGISTER else None
    imm = ins.immediate(1) if ins.op_count > 1 and ins.op1_kind in (
        OpKind.IMMEDIATE8TO64, OpKind.IMMEDIATE32TO64, OpKind.IMMEDIATE32,
        OpKind.IMMEDIATE8) else None
    if imm is not None and imm >= 1 << 63:
        imm -= 1 << 64
    new: dict[str, int] = {}
    if dest == "rsp" and m in (Mnemonic.SUB, Mnemonic.ADD) and imm is not None \
            and "rsp" in offs:
        new["rsp"] = offs["rsp"] + (imm if m == Mnemonic.ADD else -imm)
    elif m in (Mnemonic.PUSH, Mnemonic.POP) and "rsp" in offs:
        new["rsp"] = offs["rsp"] + ins.stack_pointer_increment
    elif dest and m == Mnemonic.MOV and ins.op1_kind == OpKind.REGISTER \
            and full(ins.op1_register) in offs and ins.op0_register == _register64(dest) \
            and ins.op1_register == _register64(full(ins.op1_register)):
        new[dest] = offs[full(ins.op1_register)]
    elif dest and m == Mnemonic.LEA and ins.memory_base and full(ins.memory_base) in offs \
            and not ins.memory_index and ins.op0_register == _register64(dest):
        new[dest] = offs[full(ins.memory_base)] + _signed(ins.memory_displacement)
    for name in written:
        offs.pop(name, None)
    offs.update(new)


def _register64(name: str) -> int:
    from iced_x86 import Register
    return getattr(Register, name.upper())


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def return_address_rule(code: bytes, start: int, pc: int) -> ReturnAddressRule | None:
    """The rule for ``pc`` in the function whose bytes ``code`` start at
    ``start`` (the whole function, its symbol's size), or None."""
    from iced_x86 import FlowControl, InstructionInfoFactory

    if not start <= pc < start + len(code):
        return None
    insns = _decode(code, start)
    if not insns or pc not in {i.ip for i in insns}:
        return None
    end = start + len(code)
    leaders = {start}
    for i, ins in enumerate(insns):
        flow = ins.flow_control
        if flow in (FlowControl.INDIRECT_BRANCH, FlowControl.EXCEPTION):
            return None                 # a jump table: block starts unknown
        if flow in (FlowControl.UNCONDITIONAL_BRANCH, FlowControl.CONDITIONAL_BRANCH):
            target = ins.near_branch_target
            if start <= target < end:
                leaders.add(target)
        if flow not in (FlowControl.NEXT, FlowControl.CALL, FlowControl.INDIRECT_CALL) \
                and i + 1 < len(insns):
            leaders.add(insns[i + 1].ip)
    if not leaders <= {i.ip for i in insns}:
        return None                     # a branch into the middle of an instruction
    if any(ins.flow_control in (FlowControl.UNCONDITIONAL_BRANCH, FlowControl.CONDITIONAL_BRANCH)
           and ins.near_branch_target == start for ins in insns):
        return None                     # the entry block runs again
    full, factory = _names(), InstructionInfoFactory()
    # Blocks: [first, last] instruction indexes.
    starts = [i for i, ins in enumerate(insns) if ins.ip in leaders]
    blocks = [(a, (starts[n + 1] if n + 1 < len(starts) else len(insns)) - 1)
              for n, a in enumerate(starts)]
    # The entry block, stepped up to pc or its end.
    offs = {"rsp": 0}       # register -> its value minus rsp at entry (the return address)
    steps = []
    first, last = blocks[0]
    for ins in insns[first:last + 1]:
        if ins.ip == pc:
            return _rule(offs, steps)
        if ins.flow_control in (FlowControl.CALL, FlowControl.INDIRECT_CALL):
            continue                    # rsp and the callee-saved copies come back as they were
        if ins.flow_control != FlowControl.NEXT:
            break                       # the block's last instruction
        written = _written(ins, factory, full)
        _step(ins, offs, written, full)
        if written:
            steps.append(ins)           # the moves of rsp and of its copies
    for name in ["rsp"] + [r for r in KEPT if r in offs]:
        if name in offs and _kept_after_entry(name, insns, blocks, pc, end, factory, full):
            return _rule({name: offs[name]}, steps)
    return None


def _kept_after_entry(name: str, insns, blocks, pc: int, end: int, factory, full) -> bool:
    """No instruction on a path from the entry block to pc writes ``name``:
    every block past the entry block that writes it leaves the function
    (ends in ``ret`` or a jump out: no path goes on from it to pc), and pc
    is not in such a block after the write.  A call's push and pop of rsp
    cancel out."""
    from iced_x86 import FlowControl

    for a, b in blocks[1:]:
        tail = insns[b]
        leaves = tail.flow_control == FlowControl.RETURN or (
            tail.flow_control == FlowControl.UNCONDITIONAL_BRANCH
            and not insns[0].ip <= tail.near_branch_target < end)
        for ins in insns[a:b + 1]:
            if ins.flow_control in (FlowControl.CALL, FlowControl.INDIRECT_CALL) \
                    and name == "rsp":
                continue
            if name not in _written(ins, factory, full):
                continue
            if not leaves:
                return False
            if ins.ip < pc <= tail.ip:
                return False            # pc in an epilogue, past the write
    return True


def _rule(offs: dict[str, int], steps) -> ReturnAddressRule | None:
    name = "rsp" if "rsp" in offs else next((r for r in KEPT if r in offs), None)
    if name is None:
        return None
    moves = "; ".join(str(i) for i in steps) or "none yet"
    return ReturnAddressRule(name, -offs[name],
                             f"{name} + {-offs[name]:#x}, by the function's entry code ({moves})")
