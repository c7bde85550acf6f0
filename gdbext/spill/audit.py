"""spill-audit's reasoning: which rule the faulting instruction broke, who
misaligned the stack, how much register pressure its block carries and
whether the faulting slot is a spill.  Pure: gdb's facts come in as values
and a ``readable(address) -> bool`` probe."""
from __future__ import annotations

import re
from collections.abc import Callable   # not typing: ~10 ms to import in each gdb

from ..errors import UndecodableError
from ..knowledge import signals as sig
from .operand import Operand, analyse, canonical, decode_one
from .stack import Frame, Misalignment, Realignment, misalignment
from .stack_bounds import StackBounds, left_the_stack
from ..record import field, record

TYPE_CHECKING = False       # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:      # the block analysis is imported only when it runs
    from .pressure import Block, FunctionPressure, Slot

SIGSEGV, SIGBUS = 11, 7
SI_KERNEL, SEGV_MAPERR, SEGV_ACCERR, BUS_ADRALN = 0x80, 1, 2, 1
PAGE = 4096
# A fault this close below (or just above) the stack pointer, on memory that
# cannot be touched, is the stack running out: frames and red zone live there.
STACK_REACH_BELOW = 1 << 20
STACK_REACH_ABOVE = PAGE
GUARD_PAGES_MAX = 256


@record
class Signal:
    """The fault's signal, code and address."""
    signo: int
    code: int
    addr: int | None

    @property
    def name(self) -> str:
        return sig.SIGNALS.get(self.signo, f"signal {self.signo}")

    @property
    def code_name(self) -> str:
        return sig.code_name(self.signo, self.code)


@record
class FunctionInfo:
    """The function holding the fault, and where its bounds came from."""
    name: str | None
    start: int | None
    end: int | None
    bounds_from: str            # "symbol", "fde", or "unknown"


@record
class AlignedAccess:
    """A memory access with an alignment rule."""
    pc: int
    text: str
    effective_address: int | None
    required_alignment: int


@record
class Audit:
    """spill-audit's findings for one fault."""
    pc: int
    signal: Signal | None
    operand: Operand
    fault_kind: str
    verdict: str
    stack_diagnosis: str | None
    frames: list[Frame]
    misaligned: Misalignment
    realigned: Realignment | None
    function: FunctionInfo
    pressure: FunctionPressure | None
    block: Block | None
    slot: Slot | None
    slot_address: int | None
    aligned_in_block: list[AlignedAccess]
    explanation: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    audited_other: bool = False     # ADDRESS given: not the faulting instruction
    stack: StackBounds | None = None
    language: str | None = None     # "rust", "c++", "c": who built the function
    # functions inlined at the pc, innermost first, then the one holding them
    inlined: list[str] = field(default_factory=list)
    # what the stack explanation says, apart (crash-triage shows only these)
    stack_notes: list[str] = field(default_factory=list)
    stack_advice: list[str] = field(default_factory=list)

    @property
    def frame_bytes(self) -> int | None:
        """Frame 0's size: its CFA (the caller's rsp) minus its rsp."""
        f = self.frames[0] if self.frames else None
        if f is None or f.cfa is None or f.rsp is None or f.cfa < f.rsp:
            return None
        return f.cfa - f.rsp


def fault_kind(signal: Signal | None, op: Operand, rsp: int | None,
               readable: Callable[[int], bool], cfa: int | None = None,
               stack: StackBounds | None = None) -> str:
    if signal is None or signal.signo not in (SIGSEGV, SIGBUS):
        return "none"
    if signal.signo == SIGSEGV and signal.code in (SEGV_MAPERR, SEGV_ACCERR) \
            and signal.addr is not None:
        step = cfa - rsp if cfa is not None and rsp is not None and cfa >= rsp else None
        left = left_the_stack(signal.addr, rsp, stack, step)
        if left in ("guard", "limit"):
            return "stack-overflow"
        if left == "clash":
            return "stack-clash"
    if signal.signo == SIGBUS:
        return {SI_KERNEL: "stack-segment", BUS_ADRALN: "alignment-check"}.get(
            signal.code, "access-violation")
    if signal.code == SI_KERNEL:            # #GP: the kernel gives no address
        ea = op.effective_address
        if ea is not None and not canonical(ea):
            return "non-canonical-address"
        if op.misaligned_by:
            return "misaligned-access"
        return "access-violation"
    if signal.addr is not None and stack_pointer_nowhere(signal.addr, rsp, cfa, readable):
        return "bad-stack-pointer"
    if signal.addr is not None and stack_overflow(signal.addr, rsp, readable):
        return "stack-overflow"
    return "unmapped-address" if signal.code == SEGV_MAPERR else "access-violation"


def fetching(signal: Signal | None, pc: int) -> bool:
    """The fault is the fetch of the instruction at the pc (si_addr == pc, as
    for a jump into memory without execute permission): it never ran, so its
    operands were neither read nor written."""
    return signal is not None and signal.signo in (SIGSEGV, SIGBUS) \
        and signal.code != SI_KERNEL and signal.addr == pc


def not_executed(op: Operand) -> Operand:
    """The operand of an instruction that never ran: no access to claim."""
    from ..record import replace
    return replace(op, memory=None, base=None, index=None, displacement=0, size=0,
                   writes=False, effective_address=None, required_alignment=None,
                   rule="the fault is fetching this instruction (si_addr is the pc): it "
                        "never ran, so nothing was read or written")


def stack_pointer_nowhere(addr: int, rsp: int | None, cfa: int | None,
                          readable: Callable[[int], bool]) -> bool:
    """The fault is at the stack pointer, and neither rsp nor the frame's
    CFA is memory: no stack was ever there.  An overflow keeps a CFA (or an
    rsp) inside the stack it ran out of."""
    if rsp is None or not rsp - STACK_REACH_BELOW <= addr < rsp + STACK_REACH_ABOVE:
        return False
    return not readable(rsp) and (cfa is None or not readable(cfa))


def stack_overflow(addr: int, rsp: int | None, readable: Callable[[int], bool]) -> bool:
    """The address is near the stack pointer, cannot be touched, and readable
    stack lies above it within reach: a guard page or the end of a mapping."""
    if rsp is None or not rsp - STACK_REACH_BELOW <= addr < rsp + STACK_REACH_ABOVE:
        return False
    if readable(addr):
        return False
    page = (addr | (PAGE - 1)) + 1
    for _ in range(GUARD_PAGES_MAX):        # the guard's size is the application's choice
        if page > rsp + 2 * PAGE:
            return False
        if readable(page):
            return True
        page += PAGE
    return False


def stack_diagnosis(op: Operand, frame0: Frame | None, realigned: Realignment | None,
                    cfa_from_cfi: int | None) -> str | None:
    """Why a stack slot is misaligned (None when the operand is not a
    misaligned stack slot)."""
    if not op.stack_relative or not op.misaligned_by:
        return None
    if realigned is not None and realigned.alignment >= (op.required_alignment or 0):
        return "frame-layout"
    if frame0 is not None and cfa_from_cfi is not None and frame0.cfa is not None \
            and cfa_from_cfi != frame0.cfa:
        return "rsp-drift"
    if frame0 is not None and frame0.entered_misaligned:
        return "entered-misaligned"
    if (op.required_alignment or 0) > 16 and realigned is None \
            and op.effective_address is not None and op.effective_address % 16 == 0:
        return "missing-realignment"        # the ABI's 16 were kept; the 32/64 never made
    return "frame-layout"


def verdict(kind: str, op: Operand, diagnosis: str | None, slot: Slot | None) -> str:
    if kind in ("non-canonical-address", "stack-segment"):
        return "non-canonical-address"
    if kind in ("stack-overflow", "bad-stack-pointer"):
        return kind
    if kind == "stack-clash":
        return "stack-overflow"
    if kind in ("misaligned-access", "alignment-check"):
        if not op.stack_relative:
            return "other"              # a misaligned data pointer, not the stack
        if slot is not None and diagnosis == "entered-misaligned":
            return "stack-spill-fault"
        return "misaligned-stack"
    if kind in ("unmapped-address", "access-violation", "instruction-fetch"):
        return "not-alignment"
    return "other"


def quick_verdict(pc: int, code: bytes, regs: dict[str, int], signal: Signal | None,
                  frames: list[Frame], readable: Callable[[int], bool],
                  stack: StackBounds | None = None) -> str | None:
    """The verdict as far as it follows from the instruction and the signal
    alone: "not-alignment" needs no block analysis; None when it does or
    the instruction does not decode."""
    ins = decode_one(code, pc)
    if ins is None:
        return None
    if fetching(signal, pc):
        return "not-alignment"
    op = analyse(ins, code[:ins.len], regs)
    kind = fault_kind(signal, op, regs.get("rsp"), readable,
                      frames[0].cfa if frames else None, stack)
    found = verdict(kind, op, None, None)
    return found if found == "not-alignment" else None


def aligned_stack_accesses(code: bytes, start: int, block: Block,
                           regs: dict[str, int]) -> list[AlignedAccess]:
    """The block's stack accesses that demand alignment (addresses assume the
    registers at the stop, i.e. rsp unchanged inside the block)."""
    out = []
    pc = block.start
    while pc < block.end:
        chunk = code[pc - start:pc - start + 15]
        ins = decode_one(chunk, pc)
        if ins is None:
            break
        op = analyse(ins, chunk[:ins.len], regs)
        if op.stack_relative and op.required_alignment:
            out.append(AlignedAccess(pc, op.text, op.effective_address, op.required_alignment))
        pc += ins.len
    return out


def build(pc: int, code: bytes, regs: dict[str, int], signal: Signal | None,
          frames: list[Frame], function: FunctionInfo, function_code: bytes | None,
          cfa_from_cfi: int | None, readable: Callable[[int], bool],
          audited_other: bool = False, stack: StackBounds | None = None,
          language: str | None = None, deep: bool = True, inlined=()) -> Audit:
    """Everything the report says, from the facts gdb gave.  ``deep=False``
    leaves out the function's block and spill analysis (crash-triage, on a
    fault that is not about alignment)."""
    from .stack import realignment

    ins = decode_one(code, pc)
    if ins is None:
        raise UndecodableError(f"no instruction decodes at {pc:#x}")
    op = analyse(ins, code[:ins.len], regs)
    if fetching(signal, pc) and not audited_other:
        op = not_executed(op)
        kind = "instruction-fetch"
    else:
        kind = fault_kind(None if audited_other else signal, op, regs.get("rsp"), readable,
                          frames[0].cfa if frames else None, stack)
    warnings = []
    pressure = block = slot = None
    realigned = None
    aligned = []
    if not deep:
        pass
    elif function_code is not None and function.start is not None:
        from .pressure import analyse_function
        pressure = analyse_function(function_code, function.start)
        block = pressure.block_at(pc)
        slot = pressure.slot_at(pc)
        realigned = realignment(function_code, function.start, pc)
        if block is not None:
            aligned = aligned_stack_accesses(function_code, function.start, block, regs)
        if pressure.truncated:
            warnings.append(f"the function has more than {pressure.instructions} instructions: "
                            "pressure counts cover the first ones")
    else:
        warnings.append("function bounds unknown (no symbol and no unwind entry): "
                        "no block or spill analysis")
    frame0 = frames[0] if frames else None
    diagnosis = stack_diagnosis(op, frame0, realigned, cfa_from_cfi)
    slot_address = None
    if slot is not None and slot.cfa_relative and frame0 is not None and frame0.cfa is not None:
        slot_address = frame0.cfa + slot.offset
    audit = Audit(pc, signal, op, kind, verdict(kind, op, diagnosis, slot), diagnosis, frames,
                  misalignment(frames), realigned, function, pressure, block, slot,
                  slot_address, aligned, warnings=warnings, audited_other=audited_other,
                  stack=stack, language=language, inlined=list(inlined))
    _explain(audit, cfa_from_cfi)
    return audit


def _explain(a: Audit, cfa_from_cfi: int | None) -> None:
    op, say, fix = a.operand, a.explanation.append, a.advice.append
    if a.operand.effective_address is not None and a.fault_kind == "misaligned-access":
        say(f"{op.text} {'writes' if op.writes else 'reads'} {op.size} bytes at "
            f"{op.effective_address:#x}, which is {op.misaligned_by} bytes past a "
            f"{op.required_alignment}-byte boundary: {op.rule}.")
    elif a.fault_kind == "instruction-fetch":
        say(f"The fault is the fetch of the instruction at the pc itself (si_addr "
            f"{a.pc:#x} is the pc): the bytes there ({op.text}) never ran, so no operand was "
            "read or written.  The program jumped into memory it may not execute.")
    elif op.required_alignment is None and a.fault_kind not in ("none",):
        say(f"{op.text} cannot fault on alignment: {op.rule}.")
    if a.fault_kind == "non-canonical-address":
        say(f"The address {op.effective_address:#x} is not canonical (bits 63..47 differ): "
            "the CPU raises #GP before any page lookup, so the kernel reports no address. "
            "A corrupted or uninitialised pointer, not the stack's alignment.")
        fix("find where the pointer came from (a freed object, a tagged pointer, an "
            "uninitialised field); alignment is not involved")
    if a.fault_kind == "stack-segment":
        say("SIGBUS with SI_KERNEL is #SS: a stack access through rsp/rbp with a "
            "non-canonical address.  rsp or rbp itself is corrupt.")
    if a.fault_kind in ("stack-overflow", "stack-clash"):
        _explain_overflow(a)
    if a.fault_kind == "bad-stack-pointer":
        a.stack_notes.append(f"rsp {_hex(a.frames[0].rsp if a.frames else None)} points at "
                             "no memory, and neither does the frame's CFA: the stack pointer "
                             "itself is wrong.")
        say(f"rsp {_hex(a.frames[0].rsp if a.frames else None)} points at no memory, and "
            "neither does the frame's CFA: the stack pointer itself is wrong, not an "
            "overflow of a real stack.")
        fix("find what loaded rsp: a stack switch (swapcontext, a coroutine or fiber "
            "library, hand-written asm), longjmp with a stale jmp_buf, or a restored "
            "frame whose saved rsp was overwritten")
    if a.fault_kind == "access-violation" and a.signal and a.signal.code == SI_KERNEL:
        say("A #GP that neither alignment nor a non-canonical address explains "
            "(a privileged instruction, a bad segment, or an I/O port).")
    if a.stack_diagnosis == "entered-misaligned":
        m = a.misaligned
        since = m.since.function if m.since else None
        caller = m.caller.function if m.caller and m.caller.function else "its caller"
        say(f"The frame was entered with CFA % 16 = {a.frames[0].residue} (the ABI requires "
            f"0): the misalignment began at {since or '?'}, entered misaligned by "
            f"{caller}.  The compiler assumed a 16-aligned frame and placed "
            f"{op.required_alignment}-byte slots on that assumption.")
        if a.language == "rust":
            fix(f"fix {caller} (the trampoline or context switch) so that rsp is 16-byte "
                "aligned at its call instruction: rustc has no -mstackrealign or "
                "force_align_arg_pointer that repairs a misaligned entry (a build with "
                "-C llvm-args=-stackrealign still faulted), so the callee cannot be made "
                "immune")
        else:
            fix(f"make {caller} leave rsp 16-byte aligned at its call instruction (so the "
                "callee starts with rsp ≡ 8 mod 16), or build the callee with -mstackrealign "
                "or __attribute__((force_align_arg_pointer))")
    elif a.stack_diagnosis == "missing-realignment":
        say(f"The frame was entered aligned to 16, but the access needs "
            f"{op.required_alignment} and the prologue does not realign rsp "
            "(no `and $-N,%rsp`).")
        fix("the compiler should realign this frame (a GCC/LLVM bug, e.g. GCC PR 54412), or "
            "use unaligned moves for the over-aligned local")
    elif a.stack_diagnosis == "frame-layout":
        say("The frame was entered correctly (CFA % 16 = 0"
            + (f", realigned to {a.realigned.alignment}" if a.realigned else "")
            + f") but the slot is at rsp{op.displacement:+#x}, which is not "
            f"{op.required_alignment}-aligned: a frame-layout bug in this function.")
        fix("fix the slot offsets of this function (hand-written asm, or a compiler bug)")
    elif a.stack_diagnosis == "rsp-drift":
        say(f"The unwind table says CFA = {_hex(cfa_from_cfi)} here, gdb's unwinder found "
            f"{_hex(a.frames[0].cfa)}: rsp moved without unwind info (inline asm pushes?).")
    if a.slot is not None:
        stores = [x for x in a.slot.accesses if x.kind == "store"]
        say(f"The operand is a spill slot: stored {len(stores)} time(s) "
            + (f"(first at {stores[0].pc:#x}: {stores[0].text}) " if stores else "")
            + f"and reloaded {a.slot.reloads} time(s) in this function.")
    if a.block is not None and a.pressure is not None:
        b = a.block
        full = b.vector_registers_live_max >= a.pressure.register_file
        say(f"Its basic block has {b.instructions} instructions, uses "
            f"{len(b.vector_registers_used)} vector registers and keeps up to "
            f"{b.vector_registers_live_max} of {a.pressure.register_file} live at once"
            + ("; it runs out of registers and spills." if full and
               b.spill_stores + b.spill_reloads else "."))
        if full and a.verdict in ("stack-spill-fault", "misaligned-stack"):
            fix("reduce register pressure in this block (fewer accumulators live at once, "
                "split the loop or the inlined chain) so the compiler stops spilling")
    if a.operand.required_alignment is None and a.aligned_in_block and \
            a.fault_kind in ("access-violation", "unmapped-address", "stack-overflow"):
        say(f"{len(a.aligned_in_block)} stack access(es) in this block do require alignment "
            "and could fault on a misaligned stack: "
            + "; ".join(f"{x.pc:#x} {x.text}" for x in a.aligned_in_block[:6]) + ".")
    if a.verdict == "other" and a.fault_kind == "misaligned-access":
        intrinsic = a.inlined[0] if len(a.inlined) > 1 else None
        if intrinsic:
            holder = a.inlined[-1]
            unaligned = unaligned_form(intrinsic)
            say(f"The instruction is {intrinsic}'s, inlined into {holder}: the aligned "
                "access the source asked for.")
            if unaligned:
                fix(f"{intrinsic} requires an aligned pointer: use {unaligned}, the same "
                    "access without the alignment requirement, or align the data")
        if a.language == "rust":
            fix("the data pointer is misaligned: a cast to a more-aligned type (a Vec<u32> "
                "or &[f32] viewed as packed vector lanes, then an aligned load); a build with "
                "debug assertions (-C debug-assertions, the dev profile) stops at "
                "slice::from_raw_parts or the dereference that made it; use "
                "read_unaligned or the loadu intrinsics, or allocate with the vector's "
                "alignment (#[repr(align(32))], Layout::from_size_align)")
        else:
            fix("the data pointer is misaligned: allocate with aligned_alloc/posix_memalign, "
                "or use the unaligned form (movups/vmovups)")


# The aligned loads/stores of Intel's intrinsics guide and their unaligned
# twins (_mm_load_ps -> _mm_loadu_ps, _mm256_store_si256 -> _mm256_storeu_si256),
# as C headers and Rust's core::arch name them; Rust's ptr::read -> read_unaligned.
_ALIGNED_INTRINSIC = re.compile(r"(_mm(?:256|512)?_(?:load|store|stream)_(?:ps|pd|si\d+|epi\d+))$")


def unaligned_form(name: str) -> str | None:
    """The unaligned counterpart of an aligned intrinsic, or None."""
    m = _ALIGNED_INTRINSIC.search(name)
    if m:
        base = m.group(1)
        if "_stream_" in base:
            return None                   # movntps has no unaligned form
        return base.replace("_load_", "_loadu_").replace("_store_", "_storeu_")
    if re.search(r"(?:^|::)read(?:<.*>)?$", name) and "ptr" in name:
        return "core::ptr::read_unaligned"
    if re.search(r"(?:^|::)write(?:<.*>)?$", name) and "ptr" in name:
        return "core::ptr::write_unaligned"
    return None


def _kib(n: int) -> str:
    return f"{n // 1024} KiB" if n % 1024 == 0 else f"{n:,} bytes"


# A stack-clash probe (-fstack-clash-protection): GCC touches each new page
# with `or $0x0,OFF(%rsp)`, LLVM with `mov $0x0,(%rsp)` -- a write of
# nothing, there only to fault on the guard.
_PROBE = re.compile(r"^(?:or|mov)[bwlq]?\s+\$0(?:x0)?,(?:0x[0-9a-f]+)?\(%rsp\)$")


def _probing(a: Audit) -> bool:
    return bool(_PROBE.match(a.operand.text.strip()))


def _explain_overflow(a: Audit) -> None:
    def say(text):
        a.explanation.append(text)
        a.stack_notes.append(text)

    def fix(text):
        a.advice.append(text)
        a.stack_advice.append(text)
    st, frame = a.stack, a.frame_bytes
    rsp = a.frames[0].rsp if a.frames else None
    where = ""
    if st is not None:
        where = (f" The stack it runs on is [{st.lo:#x}, {st.hi:#x}), {_kib(st.size)} "
                 f"({st.source}, {st.sure})"
                 + (f", its guard [{st.guard_lo:#x}, {st.guard_hi:#x})"
                    if st.guard_lo is not None else ", no guard mapping below it") + ".")
    size = (f" {a.function.name or 'This function'}'s frame is {_kib(frame)} (CFA - rsp)"
            + (f", {frame * 100 // st.size}% of the whole stack" if st and st.size else "")
            + "." if frame is not None else "")
    if _probing(a):
        say(f"`{a.operand.text}` is a stack-clash probe (-fstack-clash-protection): the "
            f"frame grows a page at a time, and this probe touched {a.signal.addr:#x}, below "
            f"the stack, as designed - a huge alloca, VLA or frame, caught before it could "
            f"write into whatever lies below the stack.{where}{size}")
        fix("bound the allocation (an alloca or VLA sized by unchecked input) or move it to "
            "the heap (malloc, std::vector, Vec)")
    elif a.fault_kind == "stack-clash":
        below = f"{st.lo - rsp:,} bytes below its lowest address" if st and rsp is not None \
            and rsp < st.lo else "past its lowest address"
        say(f"The faulting address {a.signal.addr:#x} is in no mapping: rsp {_hex(rsp)} is "
            f"{below}, past the guard.{where}{size} The prologue moved rsp over the guard "
            "in one step (no stack-clash probes), so the first store landed beyond it: a "
            "stack overflow that never touched the guard page.")
        if a.language != "rust":
            fix("build with -fstack-clash-protection (GCC 8+, Clang 11+): the prologue then "
                "probes every page of a large frame, so an overflow becomes a clean hit on "
                "the guard page instead of a write into whatever lies below")
    elif st is not None and st.guard_lo is None and a.signal.addr < st.lo:
        say(f"The faulting address {a.signal.addr:#x} is {st.lo - a.signal.addr:,} bytes "
            f"below the stack's lowest address (rsp {_hex(rsp)}): the thread ran out of "
            f"stack at the end of its mapping, which the kernel does not grow past its "
            f"limit (RLIMIT_STACK, ulimit -s, for the main thread).{where}{size} The step "
            "was small: plain deep recursion or too many frames, not a frame that jumped "
            "over a guard.")
        if a.language != "rust":
            fix("bound the recursion (a depth limit) or make it iterative")
    else:
        say(f"The faulting address {a.signal.addr:#x} lies in the guard below the stack "
            f"(rsp {_hex(rsp)}): the thread ran out of stack.{where}{size}")
    if a.language == "rust":
        fix("give the thread a bigger stack: std::thread::Builder::new().stack_size(N), or "
            "RUST_MIN_STACK=N for threads spawned without a size (the main thread: ulimit -s)")
        fix("move the large locals to the heap (Box, Vec) or make the recursion iterative")
    else:
        used = (frame + st.hi - a.frames[0].cfa if frame is not None and st is not None
                and a.frames[0].cfa is not None and a.frames[0].cfa <= st.hi else None)
        fix("give the thread a bigger stack (pthread_attr_setstacksize"
            + (f" above {_kib(used)}, this frame plus what its callers use" if used else "")
            + "; ulimit -s for the main thread; the runtime's stack-size knob)")
        if frame is None or frame >= PAGE:     # a big frame: its locals are the cost
            fix("or move the large vector locals to the heap (malloc, std::vector)")


def _hex(value: int | None) -> str:
    return "?" if value is None else f"{value:#x}"
