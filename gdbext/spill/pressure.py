"""Vector-register pressure and spill slots of one function, from its machine code.

The "pressure" half of ``spill-audit``: split the function into basic blocks, run
backward liveness of the vector registers over them, and find the stack slots the
function spills vector registers to.  A block whose live maximum reaches the
register file and that touches spill slots explains a fault on a reload such as
``vpinsrd $0x1,0x14(%rsp),%xmm5,%xmm5``.  Pure functions, no gdb.

Decisions (FORENSICS-NOTES, "Pressure from machine code", and where it left a choice):

* Blocks.  Code is swept linearly.  Leaders: the entry, every direct branch or call
  target inside the function that starts an instruction (a target inside an
  instruction is ignored), the instruction after jmp/jcc/ret/ud2/hlt/indirect jmp,
  and the instruction after undecodable bytes.  Undecodable bytes are skipped one
  at a time and belong to no block; a block ending before them has no fall-through.
  A call does not end a block (a call to a noreturn function is not known);
  int3 and syscall do not either.
* Edges.  jcc: target and fall-through; jmp: its target when inside the function
  (outside = tail call, no successor); ret/ud2/hlt: none.  An indirect jmp may go to
  any block nothing else reaches (jump-table cases), so those are its successors.
* Registers.  xmmN/ymmN/zmmN are architectural register N (0-31).  Each has two
  liveness parts: bits 127:0 and bits 511:128.  A register is live when either part
  is.  The k mask registers are tracked apart and reported as
  ``mask_registers_live_max``; they are not in the vector count.  The register
  file is 32 when the function has an EVEX instruction or names register 16-31,
  else 16.
* Reads and writes come from iced's ``used_registers()``: READ, COND_READ,
  READ_WRITE and READ_COND_WRITE read; only WRITE kills, so a merge-masked or
  conditional write keeps the old value live.  iced reports a VEX/EVEX write to xmm
  as a zmm WRITE, so it kills both parts (the upper bits are zeroed).  A legacy SSE
  write to xmm kills bits 127:0 only, and the upper part stays live through it.
  That is how "legacy partial writes are read+write" is implemented: the part
  the write leaves alone is not killed, and the part it replaces is.  Treating the
  whole register as read would keep every register of pure-SSE code live from
  the function entry, and that count would mean nothing.  Where a legacy write
  merges inside bits 127:0 (``movss %xmm1,%xmm0``, ``pinsrd``, ``cvtsi2sd``), iced
  reports READ_WRITE and the register is read.  ``movss (mem),%xmm0`` zeroes
  bits 127:32 (SDM vol. 2 MOVSS, load form): iced reports WRITE, and bits 127:0 are
  killed.
* Zeroing idioms define and do not read: xor (pxor, xorps, xorpd, vpxor[dq],
  vxorps, vxorpd), subtract-self (psub*, vpsub*) and andn-self (pandn, andnps,
  andnpd, vpandn[dq], vandnps, vandnpd) with both sources the same register and no
  merge mask, and the same for kxor/kandn on masks.  iced already reports most of
  them as write-only; pandn/vandn* it reports as reads.  pcmpeq x,x (all ones) is
  not treated as an idiom.
* vzeroupper zeroes bits 255:128 of registers 0-15 and keeps bits 127:0.  iced
  reports it as reading xmm0-15, which would make all 16 live at every function
  exit, so that read is dropped: the low part passes through and the upper part is
  killed.  vzeroall kills registers 0-15.
* Calls (System V): every vector and mask register is caller-saved, so a call
  kills them all.  A call reads those of xmm0-7 that the same block wrote since
  the previous call, because argument registers are set right before the call and
  a write with no reader would be dead code.  Writes in earlier blocks are not
  assumed read: assuming xmm0-7 always read would keep them live back through the
  whole function.  A tail call (jmp out of the function, indirect jmp) reads the
  same.  ret reads nothing.  Whether a function returns a value in xmm0 is
  unknown, and assuming it does would keep xmm0/xmm1 live through every loop of
  a void function.
* Live max of a block: the largest number of live registers at a point between
  instructions (before each instruction, and after the last).  A dead write is not
  counted.
* Stack slots.  The rsp delta from the entry is carried forward over the CFG
  through push/pop (iced's stack-pointer increment), add/sub rsp,imm, lea
  rsp,[rsp/rbp+d], mov rsp,rbp and leave.  Any other write to rsp (``and $-32,%rsp``,
  a move from another register, enter) starts a new rsp epoch named by that
  instruction's address.  A block whose predecessors disagree starts one at its
  own address, and so does a block nothing reaches.  rbp is a frame base only
  after ``mov %rsp,%rbp`` or ``lea d(%rsp),%rbp`` on the path; any other write to
  rbp (pop, leave, use as a general register at -O2) ends that.  An address is
  keyed by (epoch, delta + d) whichever base reached it, so rsp and rbp accesses
  to one slot meet.  In the entry epoch the slot's offset is CFA-relative (CFA =
  rsp at entry + 8); otherwise it is the raw displacement of the slot's first
  access, with its epoch.
* Spills.  A vector store is an instruction that writes a stack slot (base rsp or
  frame rbp, no index, no segment override) and names a vector register, which
  with memory as the destination is a source (mov*, vextract*, vpextr*, vmaskmov).
  A reload is a mov*/vmov*/lddqu/broadcast load from a slot into a vector register.
  A folded reload is any other instruction naming a vector register that reads a
  slot.  Accesses whose byte ranges overlap form one slot.  The slot is a spill
  slot when it has a vector store and a vector read somewhere in the function (a
  local vector array on the stack looks the same to machine code).
"""
from __future__ import annotations

import bisect
from ..record import field, record

from iced_x86 import (Code, Decoder, EncodingKind, FlowControl, Instruction,
                      InstructionInfoFactory, MemorySizeExt, Mnemonic, OpAccess, OpKind,
                      Register, RegisterExt)

from ..isa.decode import formatter

__all__ = ["Block", "SlotAccess", "Slot", "FunctionPressure", "analyse_function"]

_U64 = 1 << 64
_LOW = (1 << 32) - 1                    # bits 0-31: bits 127:0 of register N
_HIGH = _LOW << 32                      # bits 32-63: bits 511:128 of register N
_KMASK = 0xFF << 64                     # bits 64-71: k0-k7
_ALL = _LOW | _HIGH | _KMASK
_ARGS = 0xFF                            # xmm0-7, bits 127:0: System V vector arguments
_VZEROUPPER_KILL = 0xFFFF << 32         # bits 255:128 of registers 0-15


_popcount = getattr(int, "bit_count", None) or (lambda x: bin(x).count("1"))   # 3.9


def _vector_count(mask: int) -> int:
    return _popcount((mask | (mask >> 32)) & _LOW)


def _mask_count(mask: int) -> int:
    return _popcount((mask >> 64) & 0xFF)


# ---------------------------------------------------------------------------
# public results

@record(frozen=True)
class Block:
    """One basic block and its vector register pressure."""
    start: int
    end: int                                     # exclusive
    instructions: int
    vector_registers_used: tuple[str, ...]       # explicit operands, widest width seen
    vector_registers_live_max: int
    live_at_pc: dict[int, int] = field(default_factory=dict, compare=False, repr=False)
    mask_registers_live_max: int = 0             # k0-k7, not in the vector count
    successors: tuple[int, ...] = ()             # start addresses
    spill_stores: int = 0
    spill_reloads: int = 0                       # folded reloads included

    def contains(self, pc: int) -> bool:
        return self.start <= pc < self.end


@record(frozen=True)
class SlotAccess:
    """One store or reload of a stack slot."""
    pc: int
    kind: str                                    # "store" | "reload" | "folded-reload"
    text: str                                    # GNU AT&T syntax
    size: int                                    # bytes accessed


@record(frozen=True)
class Slot:
    """A stack slot and every access to it."""
    base: str                                    # register of the first access: "rsp" | "rbp"
    offset: int                                  # CFA-relative, else raw displacement
    cfa_relative: bool
    accesses: tuple[SlotAccess, ...]
    size: int = 0                                # bytes the accesses span
    epoch: int | None = None                     # pc where the rsp delta was lost

    @property
    def stores(self) -> int:
        return sum(a.kind == "store" for a in self.accesses)

    @property
    def reloads(self) -> int:
        return sum(a.kind != "store" for a in self.accesses)


@record(frozen=True)
class FunctionPressure:
    """A function's blocks, spills and reloads."""
    start: int
    end: int
    register_file: int                           # 16 or 32
    blocks: tuple[Block, ...]
    spill_stores: int
    spill_reloads: int                           # folded reloads included
    slots: tuple[Slot, ...]                      # spill slots only
    instructions: int = 0
    undecodable_bytes: int = 0
    truncated: bool = False                      # stopped at max_instructions
    _live_masks: dict = field(default_factory=dict, compare=False, repr=False)
    _slot_by_pc: dict = field(default_factory=dict, compare=False, repr=False)
    _widths: dict = field(default_factory=dict, compare=False, repr=False)

    def block_at(self, pc: int) -> Block | None:
        i = bisect.bisect_right([b.start for b in self.blocks], pc) - 1
        if i >= 0 and self.blocks[i].contains(pc):
            return self.blocks[i]
        return None

    def slot_at(self, pc: int) -> Slot | None:
        """The spill slot the instruction at pc accesses, if any."""
        return self._slot_by_pc.get(pc)

    def oversized_blocks(self) -> list[Block]:
        """Blocks whose live max reaches the register file and that spill or reload."""
        return [b for b in self.blocks
                if b.vector_registers_live_max >= self.register_file
                and b.spill_stores + b.spill_reloads > 0]

    def live_registers_at(self, pc: int) -> tuple[str, ...]:
        """Vector registers live just before the instruction at pc."""
        mask = self._live_masks.get(pc)
        if mask is None:
            return ()
        regs = (mask | (mask >> 32)) & _LOW
        return _register_names(self._widths, [n for n in range(32) if regs >> n & 1])


# ---------------------------------------------------------------------------
# one instruction, independent of its address

# flow kinds
_NEXT, _JMP, _JCC, _IJMP, _STOP, _CALL = range(6)

_NEAR = (OpKind.NEAR_BRANCH16, OpKind.NEAR_BRANCH32, OpKind.NEAR_BRANCH64)
_ACCESS_READS = frozenset({OpAccess.READ, OpAccess.COND_READ, OpAccess.READ_WRITE,
                           OpAccess.READ_COND_WRITE})


def _register_bits() -> dict[int, tuple[int, int]]:
    """register -> (bits read, bits killed by a WRITE)."""
    bits = {}
    for n in range(32):
        low, full = 1 << n, (1 << n) | (1 << (32 + n))
        bits[getattr(Register, f"XMM{n}")] = (low, low)
        bits[getattr(Register, f"YMM{n}")] = (full, full)
        bits[getattr(Register, f"ZMM{n}")] = (full, full)
    for n in range(8):
        bits[getattr(Register, f"K{n}")] = (1 << (64 + n),) * 2
    return bits


_BITS = _register_bits()
_WIDTH = {r: (16 if RegisterExt.is_xmm(r) else 32 if RegisterExt.is_ymm(r) else 64)
          for r in _BITS if RegisterExt.is_vector_register(r)}
_NUMBER = {r: RegisterExt.number(r) for r in _WIDTH}


def _mnemonics(*names: str) -> frozenset[int]:
    return frozenset(getattr(Mnemonic, n) for n in names if hasattr(Mnemonic, n))


_ZEROING = _mnemonics(
    "PXOR", "XORPS", "XORPD", "VPXOR", "VPXORD", "VPXORQ", "VXORPS", "VXORPD",
    "PSUBB", "PSUBW", "PSUBD", "PSUBQ", "PSUBSB", "PSUBSW", "PSUBUSB", "PSUBUSW",
    "VPSUBB", "VPSUBW", "VPSUBD", "VPSUBQ", "VPSUBSB", "VPSUBSW", "VPSUBUSB", "VPSUBUSW",
    "PANDN", "ANDNPS", "ANDNPD", "VPANDN", "VPANDND", "VPANDNQ", "VANDNPS", "VANDNPD",
    "KXORB", "KXORW", "KXORD", "KXORQ", "KANDNB", "KANDNW", "KANDND", "KANDNQ")
_STOPPERS = _mnemonics("HLT", "UD0", "UD1", "UD2")
_LOADS = ("MOV", "VMOV", "LDDQU", "VLDDQU", "VBROADCAST", "VPBROADCAST")
_MNEMONIC_NAMES = {getattr(Mnemonic, n): n for n in dir(Mnemonic) if n.isupper()}
_LOAD_MNEMONICS = frozenset(m for m, n in _MNEMONIC_NAMES.items() if n.startswith(_LOADS))
_RSP_NAMES = frozenset({Register.RSP, Register.ESP, Register.SP, Register.SPL})
_WRITES = frozenset({OpAccess.WRITE, OpAccess.READ_WRITE, OpAccess.COND_WRITE,
                     OpAccess.READ_COND_WRITE})

# stack-pointer effects: (kind, amount)
_SP_NONE, _SP_ADD, _SP_FROM_RBP, _SP_EPOCH, _SP_LEAVE = range(5)
_BP_NONE, _BP_FROM_RSP, _BP_LOST = range(3)


@record(frozen=True)
class _Shape:
    """What liveness and slot tracking need from one instruction's bytes."""
    use: int                                     # liveness bits read
    kill: int                                    # bits fully written (WRITE)
    defs: int                                    # bits written in any way
    flow: int
    named: tuple[tuple[int, int], ...]           # (register number, width in bytes)
    wide: bool                                   # EVEX or register 16-31
    sp: tuple[int, int]
    bp: tuple[int, int]
    mem: tuple[int, int, int, str] | None        # (base, displacement, size, kind)


def _signed(x: int) -> int:
    return x - _U64 if x >= 1 << 63 else x


def _flow(ins: Instruction) -> int:
    fc, m = ins.flow_control, ins.mnemonic
    if fc == FlowControl.CONDITIONAL_BRANCH or (fc == FlowControl.XBEGIN_XABORT_XEND and
                                                ins.op0_kind in _NEAR):
        return _JCC
    if fc == FlowControl.UNCONDITIONAL_BRANCH:
        return _JMP if ins.op0_kind in _NEAR else _IJMP
    if fc == FlowControl.INDIRECT_BRANCH:
        return _IJMP
    if fc == FlowControl.RETURN or m in _STOPPERS:
        return _STOP
    if m == Mnemonic.CALL:                       # not syscall: the kernel keeps vector state
        return _CALL
    return _NEXT


def _is_zeroing(ins: Instruction) -> int | None:
    """The source register of a zeroing idiom, or None."""
    if ins.mnemonic not in _ZEROING or ins.op_mask != Register.NONE:
        return None
    n = ins.op_count
    if n < 2 or any(ins.op_kind(i) != OpKind.REGISTER for i in range(n)):
        return None
    src = [ins.op_register(i) for i in range(1 if n == 3 else 0, n)]
    return src[0] if all(r == src[0] for r in src) else None


def _stack_effects(ins: Instruction, regs) -> tuple[tuple[int, int], tuple[int, int]]:
    writes = {RegisterExt.full_register(u.register) for u in regs if u.access in _WRITES}
    sp, bp = (_SP_NONE, 0), (_BP_NONE, 0)
    m = ins.mnemonic
    op0 = ins.op0_register if ins.op_count and ins.op0_kind == OpKind.REGISTER else None
    if Register.RSP in writes and m not in (Mnemonic.CALL, Mnemonic.RET):
        sp = (_SP_EPOCH, 0)                             # and/mov from a GPR/enter/...
        if m == Mnemonic.LEAVE:
            sp = (_SP_LEAVE, 0)
        elif ins.stack_pointer_increment and m != Mnemonic.ENTER and \
                not (m == Mnemonic.POP and op0 in _RSP_NAMES):
            sp = (_SP_ADD, ins.stack_pointer_increment)  # push/pop/pushf/popf
        elif op0 != Register.RSP:
            pass
        elif m in (Mnemonic.ADD, Mnemonic.SUB) and ins.op_count == 2 and \
                ins.op1_kind not in (OpKind.REGISTER, OpKind.MEMORY):
            imm = _signed(ins.immediate(1))
            sp = (_SP_ADD, imm if m == Mnemonic.ADD else -imm)
        elif m == Mnemonic.LEA and ins.memory_index == Register.NONE:
            disp = _signed(ins.memory_displacement)
            if ins.memory_base == Register.RSP:
                sp = (_SP_ADD, disp)
            elif ins.memory_base == Register.RBP:
                sp = (_SP_FROM_RBP, disp)
        elif m == Mnemonic.MOV and ins.op1_kind == OpKind.REGISTER and \
                ins.op1_register == Register.RBP:
            sp = (_SP_FROM_RBP, 0)
    if Register.RBP in writes:
        bp = (_BP_LOST, 0)
        if op0 == Register.RBP:
            if m == Mnemonic.MOV and ins.op1_kind == OpKind.REGISTER and \
                    ins.op1_register == Register.RSP:
                bp = (_BP_FROM_RSP, 0)
            elif m == Mnemonic.LEA and ins.memory_base == Register.RSP and \
                    ins.memory_index == Register.NONE:
                bp = (_BP_FROM_RSP, _signed(ins.memory_displacement))
    return sp, bp


def _stack_access(ins: Instruction, mems, named: bool):
    """(base, displacement, size, kind) of a vector access to an rsp/rbp slot.  With
    memory as the destination every explicit register operand is a source, so a
    memory write by an instruction naming a vector register is a vector store."""
    if not named or ins.memory_index != Register.NONE or \
            ins.memory_base not in (Register.RSP, Register.RBP) or \
            ins.segment_prefix not in (Register.NONE, Register.SS, Register.DS):
        return None
    if not any(ins.op_kind(i) == OpKind.MEMORY for i in range(ins.op_count)):
        return None
    access = next((m.access for m in mems if m.base == ins.memory_base), None)
    size = MemorySizeExt.size(ins.memory_size) or 1
    disp = _signed(ins.memory_displacement)
    if access in (OpAccess.WRITE, OpAccess.COND_WRITE):
        kind = "store"
    elif access in (OpAccess.READ, OpAccess.COND_READ):
        kind = "reload" if ins.mnemonic in _LOAD_MNEMONICS else "folded-reload"
    else:
        kind = None
    return (ins.memory_base, disp, size, kind) if kind else None


def _shape(ins: Instruction, factory: InstructionInfoFactory) -> _Shape:
    info = factory.info(ins)
    regs = info.used_registers()
    m = ins.mnemonic
    use = kill = defs = 0
    zero_src = _is_zeroing(ins)
    if m == Mnemonic.VZEROUPPER:
        kill = defs = _VZEROUPPER_KILL
    else:
        for u in regs:
            bits = _BITS.get(u.register)
            if bits is None:
                continue
            access = u.access
            if u.register == zero_src:          # the idiom's source: written, not read
                access = OpAccess.WRITE if access in _WRITES else OpAccess.NONE
            if access in _ACCESS_READS:
                use |= bits[0]
            if access == OpAccess.WRITE:
                kill |= bits[1]
            if access in _WRITES:
                defs |= bits[1]
    flow = _flow(ins)
    if flow == _CALL:
        kill = _ALL
    named = []
    for i in range(ins.op_count):
        kind = ins.op_kind(i)
        if kind == OpKind.REGISTER and ins.op_register(i) in _WIDTH:
            r = ins.op_register(i)
            named.append((_NUMBER[r], _WIDTH[r]))
        elif kind == OpKind.MEMORY and ins.memory_index in _WIDTH:       # gathers
            named.append((_NUMBER[ins.memory_index], _WIDTH[ins.memory_index]))
    wide = ins.encoding == EncodingKind.EVEX or any(n >= 16 for n, _ in named)
    sp, bp = _stack_effects(ins, regs)
    mem = _stack_access(ins, info.used_memory(), bool(named))
    return _Shape(use, kill, defs, flow, tuple(named), wide, sp, bp, mem)


_INVALID = _Shape(0, 0, 0, _STOP, (), False, (_SP_NONE, 0), (_BP_NONE, 0), None)


# ---------------------------------------------------------------------------
# the function

@record
class _Raw:
    """A function's decoded instructions, before blocks are built."""
    ips: list[int]
    lens: list[int]
    shapes: list[_Shape]
    targets: dict[int, int]                      # instruction index -> branch target
    invalid: set[int]                            # instruction indexes of skipped bytes
    truncated: bool


def _decode_all(code: bytes, start: int, max_instructions: int) -> _Raw:
    decoder = Decoder(64, code, ip=start)
    factory = InstructionInfoFactory()
    ins = Instruction()
    cache: dict[bytes, _Shape] = {}
    ips, lens, shapes, targets, invalid = [], [], [], {}, set()
    offset, size = 0, len(code)
    while offset < size and len(ips) < max_instructions:
        decoder.decode_out(ins)
        if ins.code == Code.INVALID:
            invalid.add(len(ips))
            ips.append(start + offset)
            lens.append(1)
            shapes.append(_INVALID)
            offset += 1
            decoder.position, decoder.ip = offset, start + offset
            continue
        n = ins.len
        key = code[offset:offset + n]
        shape = cache.get(key)
        if shape is None:
            shape = cache[key] = _shape(ins, factory)
        if shape.flow in (_JMP, _JCC, _CALL) and ins.op0_kind in _NEAR:
            targets[len(ips)] = ins.near_branch_target
        ips.append(start + offset)
        lens.append(n)
        shapes.append(shape)
        offset += n
    return _Raw(ips, lens, shapes, targets, invalid, offset < size)


def _split_blocks(raw: _Raw, start: int, end: int) -> tuple[list[tuple[int, int]], dict]:
    """Blocks as [first, last) instruction indexes, and the index of each address."""
    index = {ip: i for i, ip in enumerate(raw.ips)}
    leaders = {0}
    for target in raw.targets.values():
        if start <= target < end and target in index:
            leaders.add(index[target])
    for i, shape in enumerate(raw.shapes):
        if shape.flow in (_JMP, _JCC, _IJMP, _STOP):
            leaders.add(i + 1)
    blocks, first = [], None
    for i in range(len(raw.ips)):
        if i in raw.invalid:
            if first is not None:
                blocks.append((first, i))
            first = None
            continue
        if i in leaders and first is not None:
            blocks.append((first, i))
            first = None
        if first is None:
            first = i
    if first is not None:
        blocks.append((first, len(raw.ips)))
    return blocks, index


def _successors(raw: _Raw, blocks, index, start: int, end: int) -> list[list[int]]:
    block_of = {first: b for b, (first, _) in enumerate(blocks)}
    succ: list[list[int]] = []
    for b, (first, last) in enumerate(blocks):
        flow = raw.shapes[last - 1].flow
        out = []
        if flow in (_JMP, _JCC):
            target = raw.targets.get(last - 1)
            if target is not None and start <= target < end and index.get(target) in block_of:
                out.append(block_of[index[target]])
        if flow in (_NEXT, _CALL, _JCC) and last in block_of:
            out.append(block_of[last])
        succ.append(out)
    reached = {s for out in succ for s in out} | {0}
    orphans = [b for b in range(len(blocks)) if b not in reached]
    for b, (first, last) in enumerate(blocks):
        if raw.shapes[last - 1].flow == _IJMP:
            succ[b] = list(orphans)
    return [sorted(set(s)) for s in succ]


def _transfer(raw: _Raw, blocks, start: int, end: int) -> list[list[int]]:
    """Per-instruction use masks, with the argument reads of calls and tail calls."""
    uses = []
    for first, last in blocks:
        args, block_uses = 0, []
        for i in range(first, last):
            shape = raw.shapes[i]
            use = shape.use
            tail = shape.flow == _IJMP or (shape.flow == _JMP and not (
                start <= raw.targets.get(i, start) < end))
            if shape.flow == _CALL or tail:
                use |= args
                args = 0
            else:
                args |= shape.defs & _ARGS
            block_uses.append(use)
        uses.append(block_uses)
    return uses


def _liveness(raw: _Raw, blocks, succ, uses) -> list[int]:
    """Live-out mask of every block (iterative backward dataflow)."""
    n = len(blocks)
    gen, kill = [0] * n, [0] * n
    for b, (first, last) in enumerate(blocks):
        g = k = 0
        for j in range(last - first - 1, -1, -1):
            s = raw.shapes[first + j]
            g = uses[b][j] | (g & ~s.kill)
            k |= s.kill
        gen[b], kill[b] = g, k
    preds: list[list[int]] = [[] for _ in range(n)]
    for b, out in enumerate(succ):
        for s in out:
            preds[s].append(b)
    live_in, live_out = [0] * n, [0] * n
    work, queued = list(range(n)), [True] * n      # popped from the end: last block first
    # live-in sets only grow, by one of 72 bits at least, and each growth queues the
    # predecessors: this many rounds is never reached, but bounds the loop for sure
    rounds, limit = 0, n + 73 * sum(len(p) for p in preds)
    while work and rounds < limit:
        rounds += 1
        b = work.pop()
        queued[b] = False
        out = 0
        for s in succ[b]:
            out |= live_in[s]
        live_out[b] = out
        new_in = gen[b] | (out & ~kill[b])
        if new_in != live_in[b]:
            live_in[b] = new_in
            for p in preds[b]:
                if not queued[p]:
                    queued[p] = True
                    work.append(p)
    return live_out


def _stack_states(raw: _Raw, blocks, succ) -> list[tuple]:
    """(rsp, rbp) state on entry to each block; rsp = (epoch, delta), rbp likewise or None."""
    n = len(blocks)
    entry_rsp: list = [_UNSET] * n
    entry_rbp: list = [_UNSET] * n
    entry_rsp[0], entry_rbp[0] = (None, 0), None
    work = [0]
    while work:             # each entry state changes at most twice: unset, value, conflict
        b = work.pop()
        rsp, rbp = _entry_state(raw.ips[blocks[b][0]], entry_rsp[b], entry_rbp[b])
        for i in range(*blocks[b]):
            rsp, rbp = _step(raw.shapes[i], raw.ips[i], rsp, rbp)
        for s in succ[b]:
            changed = False
            for states, value in ((entry_rsp, rsp), (entry_rbp, rbp)):
                old = states[s]
                new = value if old is _UNSET else old if old == value else _CONFLICT
                if new is not old:
                    states[s], changed = new, True
            if changed:
                work.append(s)
    return [_entry_state(raw.ips[blocks[b][0]], entry_rsp[b], entry_rbp[b]) for b in range(n)]


_UNSET, _CONFLICT = object(), object()


def _entry_state(here: int, rsp, rbp):
    """Unknown or disagreeing rsp starts an epoch at the block; rbp is then no frame."""
    rsp = (here, 0) if rsp is _UNSET or rsp is _CONFLICT else rsp
    rbp = None if rbp is _UNSET or rbp is _CONFLICT else rbp
    return rsp, rbp


def _step(shape: _Shape, pc: int, rsp, rbp):
    kind, amount = shape.bp
    new_rbp = rbp
    if kind == _BP_FROM_RSP:
        new_rbp = (rsp[0], rsp[1] + amount)
    elif kind == _BP_LOST:
        new_rbp = None
    kind, amount = shape.sp
    if kind == _SP_ADD:
        rsp = (rsp[0], rsp[1] + amount)
    elif kind == _SP_FROM_RBP:
        rsp = (rbp[0], rbp[1] + amount) if rbp else (pc, 0)
    elif kind == _SP_LEAVE:
        rsp = (rbp[0], rbp[1] + 8) if rbp else (pc, 0)
    elif kind == _SP_EPOCH:
        rsp = (pc, 0)
    return rsp, new_rbp


def _format(code: bytes, start: int, pc: int) -> str:
    offset = pc - start
    return formatter().format(Decoder(64, code[offset:offset + 15], ip=pc).decode())


def _find_slots(code: bytes, start: int, raw: _Raw, blocks, states):
    """Spill slots from the vector stack accesses, each access keyed by its address."""
    accesses = []                    # (epoch, address, size, pc, kind, base, disp)
    for b, (first, last) in enumerate(blocks):
        rsp, rbp = states[b]
        for i in range(first, last):
            shape = raw.shapes[i]
            if shape.mem is not None:
                base, disp, size, kind = shape.mem
                frame = rsp if base == Register.RSP else rbp
                if frame is not None:
                    accesses.append((frame[0], frame[1] + disp, size, raw.ips[i], kind,
                                     "rsp" if base == Register.RSP else "rbp", disp))
            rsp, rbp = _step(shape, raw.ips[i], rsp, rbp)
    by_epoch: dict = {}
    for a in accesses:
        by_epoch.setdefault(a[0], []).append(a)
    slots = []
    for epoch, group in by_epoch.items():
        group.sort(key=lambda a: (a[1], a[3]))
        run, run_end = [], None
        for a in group + [None]:
            if a is None or (run and a[1] >= run_end):
                slot = _slot(code, start, epoch, run)
                if slot is not None:
                    slots.append(slot)
                run, run_end = [], None
            if a is not None:
                run.append(a)
                run_end = a[1] + a[2] if run_end is None else max(run_end, a[1] + a[2])
    slots.sort(key=lambda s: min(a.pc for a in s.accesses))
    return slots


def _slot(code: bytes, start: int, epoch, run) -> Slot | None:
    kinds = {a[4] for a in run}
    if "store" not in kinds or kinds == {"store"}:
        return None
    by_pc = sorted(run, key=lambda a: a[3])
    first = by_pc[0]
    low = min(a[1] for a in run)
    high = max(a[1] + a[2] for a in run)
    known = epoch is None
    return Slot(base=first[5], offset=low - 8 if known else first[6], cfa_relative=known,
                accesses=tuple(SlotAccess(pc=a[3], kind=a[4], text=_format(code, start, a[3]),
                                          size=a[2]) for a in by_pc),
                size=high - low, epoch=epoch)


def _register_names(widths: dict[int, int], numbers=None) -> tuple[str, ...]:
    """Architectural names, each at the widest width seen (xmm when never named)."""
    numbers = sorted(widths) if numbers is None else numbers
    return tuple(f"{_PREFIX[widths.get(n, 16)]}{n}" for n in numbers)


_PREFIX = {16: "xmm", 32: "ymm", 64: "zmm"}


def _build_block(raw: _Raw, b: int, blocks, succ, uses, live_out: int,
                 slot_by_pc: dict, live_masks: dict) -> Block:
    """Walk the block backward from its live-out set, counting before each instruction."""
    first, last = blocks[b]
    live = live_out
    best, best_k = _vector_count(live), _mask_count(live)
    counts = {}
    for j in range(last - first - 1, -1, -1):
        i = first + j
        live = uses[b][j] | (live & ~raw.shapes[i].kill)
        live_masks[raw.ips[i]] = live
        counts[raw.ips[i]] = c = _vector_count(live)
        best = max(best, c)
        if live >> 64:
            best_k = max(best_k, _mask_count(live))
    widths: dict[int, int] = {}
    stores = reloads = 0
    for i in range(first, last):
        for n, w in raw.shapes[i].named:
            widths[n] = max(widths.get(n, 0), w)
        if raw.ips[i] in slot_by_pc:
            stores += raw.shapes[i].mem[3] == "store"
            reloads += raw.shapes[i].mem[3] != "store"
    return Block(
        start=raw.ips[first], end=raw.ips[last - 1] + raw.lens[last - 1],
        instructions=last - first,
        vector_registers_used=_register_names(widths),
        vector_registers_live_max=best,
        live_at_pc=dict(sorted(counts.items())),
        mask_registers_live_max=best_k,
        successors=tuple(raw.ips[blocks[s][0]] for s in succ[b]),
        spill_stores=stores, spill_reloads=reloads)


def analyse_function(code: bytes, start: int, *,
                     max_instructions: int = 200_000) -> FunctionPressure:
    """Blocks, vector-register pressure and spill slots of the function ``code`` at ``start``."""
    # Bytes at the top of the address space are no code, and every address
    # handed to iced (an ip) must stay below 2**64 (found by tests/fuzz).
    code = bytes(code)[:max(0, _U64 - 1 - start)]
    end = start + len(code)
    raw = _decode_all(code, start, max_instructions)
    blocks, index = _split_blocks(raw, start, end)
    if not blocks:
        return FunctionPressure(start=start, end=end, register_file=16, blocks=(),
                                spill_stores=0, spill_reloads=0, slots=(),
                                undecodable_bytes=len(raw.invalid), truncated=raw.truncated)
    succ = _successors(raw, blocks, index, start, end)
    uses = _transfer(raw, blocks, start, end)
    live_out = _liveness(raw, blocks, succ, uses)
    slots = _find_slots(code, start, raw, blocks, _stack_states(raw, blocks, succ))
    slot_by_pc = {a.pc: s for s in slots for a in s.accesses}
    live_masks: dict[int, int] = {}
    built = tuple(_build_block(raw, b, blocks, succ, uses, live_out[b], slot_by_pc, live_masks)
                  for b in range(len(blocks)))
    widths: dict[int, int] = {}
    for shape in {id(s): s for s in raw.shapes}.values():      # shapes are shared
        for n, w in shape.named:
            widths[n] = max(widths.get(n, 0), w)
    return FunctionPressure(
        start=start, end=end, register_file=32 if any(s.wide for s in raw.shapes) else 16,
        blocks=built,
        spill_stores=sum(s.stores for s in slots), spill_reloads=sum(s.reloads for s in slots),
        slots=tuple(slots), instructions=len(raw.ips) - len(raw.invalid),
        undecodable_bytes=len(raw.invalid), truncated=raw.truncated,
        _live_masks=live_masks, _slot_by_pc=slot_by_pc, _widths=widths)
