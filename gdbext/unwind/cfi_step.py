"""One exact step of the DWARF CFI unwinder: a frame's registers -> its caller's.

deadlock-graph needs each thread's first few frames, down to its wait site.
gdb's Frame.older() costs about as much per frame as a whole ``bt`` line;
10,000 threads parked at the same few pcs share the same few CFA rules, so
stepping here from those rules (cached per pc by the caller) costs one
memory read per frame.

Exact or nothing: a step is taken only when the CFA is ``rsp`` or ``rbp``
plus an offset with that register's value known, and the return address
(and rbp, when the caller may need it) are saved at a plain offset from the
CFA.  Anything else -- a CFA expression (DRAP frames), a signal frame, an
undefined return address (the outermost frame), a register the caller does
not know -- returns None and the caller asks gdb's own unwinder instead.

The registers start as read at frame 0 (rbp usually unknown: then an
rbp-based CFA is not stepped); a caller's rbp is known only when the callee
saved it (DW_CFA_offset).  x86-64 only (the register names of
spill/cfi.CfaRule).

Pure: memory through ``read_u64(address) -> int | None``.
"""
from __future__ import annotations

from typing import Callable

STEPPED = ("rsp", "rbp")            # the CFA registers a step can follow


def caller_registers(rule, regs: dict[str, int],
                     read_u64: Callable[[int], "int | None"]) -> dict[str, int] | None:
    """The caller's {rip, rsp[, rbp]} from ``rule`` (a spill.cfi.CfaRule for
    this frame's pc) and this frame's ``regs``; None when not exact."""
    if rule is None or rule.expression or rule.signal_frame:
        return None
    base = regs.get(rule.register) if rule.register in STEPPED else None
    if base is None or rule.offset is None:
        return None
    if any(r in rule.saved_expressions for r in ("rip", "rbp")):
        return None
    ra_at = rule.saved.get("rip")
    if ra_at is None:                   # undefined: the outermost frame (gdb decides)
        return None
    cfa = (base + rule.offset) & 0xFFFFFFFFFFFFFFFF
    ra = read_u64(cfa + ra_at)
    if not ra:                          # unreadable, or pc 0: gdb's unwinder decides
        return None
    out = {"rip": ra, "rsp": cfa}
    if "rbp" in rule.saved:
        rbp = read_u64(cfa + rule.saved["rbp"])
        if rbp is not None:
            out["rbp"] = rbp
    elif "rbp" in regs:                 # callee-saved and untouched by this frame
        out["rbp"] = regs["rbp"]
    return out
