"""unwind/cfi_step: one exact CFI step, or None -- on rules built the way
spill/cfi reads them, and on a real libc's .eh_frame."""
from __future__ import annotations

import struct

from gdbext.spill.cfi import CfaRule
from gdbext.unwind.cfi_step import caller_registers


def rule(register="rsp", offset=16, saved=None, **kw) -> CfaRule:
    return CfaRule(pc=0x1000, fde_start=0x1000, fde_end=0x1100, register=register,
                   offset=offset, expression=kw.pop("expression", False),
                   saved={"rip": -8} if saved is None else saved, **kw)


def memory(base: int, words: list[int]):
    data = b"".join(struct.pack("<Q", w) for w in words)

    def read_u64(address: int):
        offset = address - base
        if 0 <= offset <= len(data) - 8:
            return struct.unpack_from("<Q", data, offset)[0]
        return None
    return read_u64


def test_rsp_based_step():
    read = memory(0x7000, [0x1111, 0x401234, 0x2222])
    # CFA = rsp + 16 = 0x7010; return address at CFA - 8 = 0x7008
    assert caller_registers(rule(), {"rip": 0x1000, "rsp": 0x7000}, read) == \
        {"rip": 0x401234, "rsp": 0x7010}


def test_saved_rbp_is_restored_and_untouched_rbp_is_kept():
    read = memory(0x7000, [0xAAAA, 0xBBBB, 0x401234])
    r = rule(offset=24, saved={"rip": -8, "rbp": -16})
    assert caller_registers(r, {"rip": 1, "rsp": 0x7000}, read) == \
        {"rip": 0x401234, "rsp": 0x7018, "rbp": 0xBBBB}
    read = memory(0x7000, [0x401234])
    assert caller_registers(rule(offset=8), {"rip": 1, "rsp": 0x7000, "rbp": 0x9000}, read) \
        == {"rip": 0x401234, "rsp": 0x7008, "rbp": 0x9000}


def test_rbp_based_cfa_needs_rbp():
    read = memory(0x8000, [0x5555, 0x401234])
    r = rule(register="rbp", offset=16, saved={"rip": -8, "rbp": -16})
    assert caller_registers(r, {"rip": 1, "rsp": 0x7000}, read) is None   # rbp unknown
    assert caller_registers(r, {"rip": 1, "rsp": 0x7000, "rbp": 0x8000}, read) == \
        {"rip": 0x401234, "rsp": 0x8010, "rbp": 0x5555}


def test_what_is_not_exact_is_left_to_gdb():
    read = memory(0x7000, [0, 0x401234])
    regs = {"rip": 1, "rsp": 0x7000, "rbp": 0x7000}
    assert caller_registers(None, regs, read) is None
    assert caller_registers(rule(expression=True, offset=None, register=None), regs, read) is None
    assert caller_registers(rule(signal_frame=True), regs, read) is None
    assert caller_registers(rule(register="rbx"), regs, read) is None
    assert caller_registers(rule(saved={}), regs, read) is None            # outermost
    assert caller_registers(rule(offset=8), regs, read) is None            # pc 0
    assert caller_registers(rule(offset=4096), regs, read) is None         # unreadable
    assert caller_registers(rule(saved_expressions={"rbp": b"\x70\x00"}), regs, read) is None


def test_real_libc_rule_steps():
    """libc's own CFI for its exported pthread_mutex_lock (nm -D gives the
    address): the rule at its first instruction is CFA = rsp+8, the return
    address at CFA-8 -- the psABI's state at a call."""
    import subprocess
    from pathlib import Path
    from gdbext.spill import cfi
    libc = Path("/lib/x86_64-linux-gnu/libc.so.6")
    out = subprocess.run(["nm", "-D", "--defined-only", str(libc)], capture_output=True,
                         text=True, check=True).stdout
    address = next(int(l.split()[0], 16) for l in out.splitlines()
                   if l.split()[-1].startswith("pthread_mutex_lock@@"))
    r = cfi.cfa_rule_at(str(libc), address)
    assert (r.register, r.offset, r.saved.get("rip")) == ("rsp", 8, -8)
    read = memory(0x7000, [0x401234])
    assert caller_registers(r, {"rip": address, "rsp": 0x7000}, read) == \
        {"rip": 0x401234, "rsp": 0x7008}
