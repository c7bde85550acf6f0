"""A fault at a pc in no mapping: the program jumped there.  Pure: the
caller hands in the word on top of the stack and the bytes before it.

A call pushes its return address, so if the word at rsp follows a call
instruction the bad target came from that call (a function pointer, a
vtable slot); otherwise a jump or a return took the pc there, and a
return means the saved return address was overwritten.
"""
from __future__ import annotations

from dataclasses import dataclass, field

VERDICT = "jump-to-unmapped"
CALL_LENGTHS = (2, 3, 5, 6, 7)          # call *%reg ... call rel32 ... call *disp32(%reg,%idx)


@dataclass
class BadJump:
    """A jump or call to an unmapped pc, and the call that made it."""
    target: int
    rsp: int | None
    return_address: int | None           # the word at rsp
    caller: str | None                   # the function holding the return address
    call: str | None                     # the call instruction before it, if there is one
    explanation: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return "call" if self.call else "jump-or-return"

    def to_json(self) -> dict:
        return {"verdict": VERDICT, "target": self.target, "rsp": self.rsp,
                "return_address": self.return_address, "caller": self.caller,
                "call": self.call, "how": self.key, "explanation": self.explanation,
                "advice": self.advice}


def call_before(code: bytes, return_address: int) -> str | None:
    """The call instruction that ends exactly at ``return_address``, from
    ``code``, the bytes just before it; None when no call does."""
    from iced_x86 import FlowControl

    from ..isa.decode import formatter
    from ..spill.operand import decode_one
    for length in CALL_LENGTHS:
        if length > len(code):
            break
        ins = decode_one(code[-length:], return_address - length)
        if ins is not None and ins.len == length and ins.flow_control in (
                FlowControl.CALL, FlowControl.INDIRECT_CALL):
            return formatter().format(ins)
    return None


def explain(target: int, rsp: int | None, return_address: int | None, caller: str | None,
            code_before: bytes | None) -> BadJump:
    call = call_before(code_before, return_address) if code_before and return_address \
        else None
    j = BadJump(target, rsp, return_address, caller, call)
    say, fix = j.explanation.append, j.advice.append
    say(f"the pc {target:#x} is in no mapping: the program jumped there")
    if call:
        say(f"The word at rsp, {return_address:#x}, returns into {caller or 'unknown code'} "
            f"right after `{call}`: that call took the bad target.")
        fix(f"find where the call's target in {caller or 'the caller'} came from: a function "
            "pointer or vtable of a freed or uninitialised object, a callback never set, "
            "a symbol resolved to the wrong library")
    else:
        at = f"{return_address:#x}" if return_address is not None else "unreadable"
        say(f"The word at rsp ({at}) follows no call instruction: a jump through a bad "
            "pointer, or a return through an overwritten return address.")
        fix("look for a stack buffer overflow in the callers (a return address overwritten), "
            "or a computed jump through corrupt data; build with -fstack-protector-strong "
            "or run under AddressSanitizer")
    return j
