"""A fault at a pc in no mapping: the program jumped there.  Pure: the
caller hands in the word on top of the stack, the bytes before it, the
registers and readers.

A call pushes its return address, so the word at rsp tells how the pc got
there -- but only what it proves:
  * it follows a call whose target is the bad pc (or whose register or
    memory operand still holds it): that call took the bad target;
  * it follows a direct call to a valid function F: F ran and then jumped
    (a tail call, ``jmp *%rax``, which leaves no frame) to the bad pc, so the
    bad pointer was F's, not its caller's;
  * it follows no call: a jump through a bad pointer, or a return through an
    overwritten return address.
"""
from __future__ import annotations

from ..record import field, record

VERDICT = "jump-to-unmapped"
CALL_LENGTHS = (2, 3, 5, 6, 7)          # call *%reg ... call rel32 ... call *disp32(%reg,%idx)


@record
class BadJump:
    """A jump or call to an unmapped pc, and the call that made it."""
    target: int
    rsp: int | None
    return_address: int | None           # the word at rsp
    caller: str | None                   # the function holding the return address
    call: str | None                     # the call instruction before it, if there is one
    how: str = "jump-or-return"          # call, tail-call, jump-or-return
    callee: str | None = None            # tail-call: the function that jumped
    callee_address: int | None = None
    certain: bool = True                 # False: an indirect call's operand read now
    explanation: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.how

    def to_json(self) -> dict:
        return {"verdict": VERDICT, "target": self.target, "rsp": self.rsp,
                "return_address": self.return_address, "caller": self.caller,
                "call": self.call, "how": self.how, "callee": self.callee,
                "callee_address": self.callee_address,
                "certainty": "exact" if self.certain else "inferred", "explanation": self.explanation,
                "advice": self.advice}


def call_before(code: bytes, return_address: int):
    """The call instruction (iced) that ends exactly at ``return_address``,
    from ``code``, the bytes just before it; None when no call does."""
    from iced_x86 import FlowControl

    from ..spill.operand import decode_one
    for length in CALL_LENGTHS:
        if length > len(code):
            break
        ins = decode_one(code[-length:], return_address - length)
        if ins is not None and ins.len == length and ins.flow_control in (
                FlowControl.CALL, FlowControl.INDIRECT_CALL):
            return ins
    return None


def _call_target(ins, regs: dict, read) -> tuple[int | None, bool]:
    """(where the call went, whether that is certain): a direct call's target
    is in the instruction; an indirect one's operand is evaluated with the
    registers now, which the callee may have changed."""
    from iced_x86 import OpKind

    from .instruction import _register, _word
    from ..spill.operand import analyse, register_name
    if ins.op0_kind in (OpKind.NEAR_BRANCH64, OpKind.NEAR_BRANCH32):
        return ins.near_branch_target, True
    if regs is None:
        return None, False
    if ins.op0_kind == OpKind.REGISTER:
        return _register(regs, register_name(ins.op0_register)), False
    if ins.op0_kind == OpKind.MEMORY and read is not None:
        op = analyse(ins, b"", regs)
        return _word(read, op.effective_address), False
    return None, False


def explain(target: int, rsp: int | None, return_address: int | None, caller: str | None,
            code_before: bytes | None, regs: dict | None = None, read=None,
            name_of=None, where: str = "is in no mapping") -> BadJump:
    """``name_of(address) -> str | None``: the function holding an address;
    ``where``: what is wrong with the pc."""
    from ..isa.decode import formatter
    ins = call_before(code_before, return_address) if code_before and return_address \
        else None
    call = formatter().format(ins) if ins is not None else None
    j = BadJump(target, rsp, return_address, caller, call)
    say, fix = j.explanation.append, j.advice.append
    say(f"the pc {target:#x} {where}: the program jumped there")
    who = caller or "unknown code"
    if ins is not None:
        went, sure = _call_target(ins, regs, read)
        name = name_of(went) if name_of is not None and went is not None else None
        if went == target:
            j.how, j.certain = "call", sure
            say(f"The word at rsp, {return_address:#x}, returns into {who} right after "
                f"`{call}`, whose target is {target:#x}"
                + (": that call took the bad target." if sure else
                   " (its operand holds it now): that call probably took the bad target "
                   "(inferred: a tail call in between could have loaded the same "
                   "register)."))
            fix(f"find where the call's target in {caller or 'the caller'} came from: a "
                "function pointer or vtable of a freed or uninitialised object, a callback "
                "never set, a symbol resolved to the wrong library")
        elif sure and went is not None:
            j.how, j.callee, j.callee_address = "tail-call", name, went
            callee = name or f"the function at {went:#x}"
            say(f"The word at rsp, {return_address:#x}, returns into {who} right after "
                f"`{call}`: {who} called {callee}, a valid function, not the bad pc. "
                f"{callee} then jumped to {target:#x} - a tail call through a function "
                "pointer (`jmp *...`), which leaves no frame of its own, so the bad "
                f"pointer is {callee}'s.")
            fix(f"look at the indirect jumps in {callee} (objdump -d): the function pointer "
                "it tail-calls was NULL or garbage - a callback never set, or a field of a "
                "freed or uninitialised object")
        else:
            j.certain = False
            now = f" (its operand now holds {went:#x})" if went is not None else ""
            say(f"The word at rsp, {return_address:#x}, returns into {who} right after "
                f"`{call}`{now}: that call, or a tail call inside the function it called, "
                "took the bad target; the registers may have changed since, so which one "
                "is unknown.")
            fix(f"find where the call's target in {caller or 'the caller'} came from: a "
                "function pointer or vtable of a freed or uninitialised object, a callback "
                "never set")
    else:
        at = f"{return_address:#x}" if return_address is not None else "unreadable"
        say(f"The word at rsp ({at}) follows no call instruction: a jump through a bad "
            "pointer, or a return through an overwritten return address.")
        fix("look for a stack buffer overflow in the callers (a return address overwritten), "
            "or a computed jump through corrupt data; build with -fstack-protector-strong "
            "or run under AddressSanitizer")
    return j


def signature_frames(frames: list, finding: BadJump | None) -> list:
    """The signature's frames of a tail call to a bad pc: the unnamed frame
    is named by the function that jumped (two callers' NULL callbacks are two
    bugs), and a frame of that function right after it (gdb's DWARF
    tail-call frame, with debug info) is dropped so -g and stripped builds
    sign alike."""
    from .signature import NamedFrame, normalise_function
    if finding is None or finding.how != "tail-call" or not finding.callee or not frames:
        return frames
    name = normalise_function(finding.callee)
    if frames[0].function not in ("??", name) and not frames[0].function.startswith("<"):
        return frames
    rest = [f for i, f in enumerate(frames[1:]) if not (i == 0 and f.function == name)]
    return [NamedFrame(name, frames[0].object)] + rest
