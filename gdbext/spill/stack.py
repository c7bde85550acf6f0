"""Who misaligned the stack: CFA residues along the call chain and the
prologue's realignment.

The x86-64 SysV ABI has rsp = 16n+8 at every function entry, so the CFA (the
caller's rsp after the return, rsp+8 at entry) is 16-aligned in every frame
that was entered correctly.  A frame with CFA % 16 != 0 was entered
misaligned; when its callers are misaligned too, the misalignment began at
the outermost of them, and the frame that called that one did it (an asm
stub, a JIT, a context switch without the ABI's care)."""
from __future__ import annotations

from iced_x86 import Code, Decoder, Register

from .operand import register_name
from ..record import record

ABI_ALIGNMENT = 16
PROLOGUE_INSTRUCTIONS = 64      # realignment happens in the first few instructions


@record
class Frame:
    """One frame with its stack pointer and CFA."""
    level: int
    pc: int
    function: str | None
    rsp: int | None
    cfa: int | None
    evidence: str = "exact"     # "inferred": found by stack scanning, CFA unknown
    objfile: str | None = None
    inlined_names: tuple = ()   # inline frames this one holds, innermost first

    @property
    def residue(self) -> int | None:
        return None if self.cfa is None else self.cfa % ABI_ALIGNMENT

    @property
    def entered_misaligned(self) -> bool:
        return self.residue not in (None, 0)


@record
class Misalignment:
    """Which frame first ran on a misaligned stack, and its caller."""
    since: Frame | None         # the outermost frame entered misaligned, contiguous from frame 0
    caller: Frame | None        # the frame that called it: where the misalignment came from
    frames: int                 # how many frames in a row were entered misaligned


def misalignment(frames: list[Frame]) -> Misalignment:
    if not frames or not frames[0].entered_misaligned:
        return Misalignment(None, None, 0)
    run = 0
    while run < len(frames) and frames[run].entered_misaligned:
        run += 1
    caller = frames[run] if run < len(frames) else None
    return Misalignment(frames[run - 1], caller, run)


@record
class Realignment:
    """A prologue that realigns the stack (`and $-N,%rsp`)."""
    alignment: int              # the rsp alignment the prologue establishes
    pc: int                     # the `and $-N,%rsp`
    drap: str | None            # the register holding the entry rsp (GCC's DRAP), if any


def realignment(code: bytes, start: int, stop: int) -> Realignment | None:
    """An `and $-N,%rsp` between the function's start and ``stop`` (the pc),
    the way GCC (after `push %rbp; mov %rsp,%rbp`, or with DRAP
    `lea 8(%rsp),%r10`) and LLVM realign a frame."""
    decoder = Decoder(64, code, ip=start)
    drap = None
    for _ in range(PROLOGUE_INSTRUCTIONS):
        if not decoder.can_decode:
            break
        ins = decoder.decode()
        if ins.ip >= stop or ins.is_invalid:
            break
        if ins.code == Code.LEA_R64_M and ins.memory_base == Register.RSP:
            drap = register_name(ins.op0_register)
        if ins.code in (Code.AND_RM64_IMM8, Code.AND_RM64_IMM32) \
                and ins.op0_register == Register.RSP:
            mask = ins.immediate(1) & 0xFFFFFFFFFFFFFFFF
            n = (-mask) & 0xFFFFFFFFFFFFFFFF
            if n and n & (n - 1) == 0:
                return Realignment(n, ins.ip, drap)
    return None

