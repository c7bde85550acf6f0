"""Stack scanning on a synthetic stack and code: which words are return
addresses (after a call, in an executable mapping), CFI steps, bounds."""
from __future__ import annotations

import struct

from gdbext.unwind import stack_scan

CODE = 0x400000
# Three call sites, each ending at a known return address:
#   +0x10: e8 rel32 (5 bytes)      -> return address +0x15
#   +0x30: ff d0 (call rax)        -> +0x32
#   +0x50: ff 55 08 (call [rbp+8]) -> +0x53
#   +0x70: 90 90 90 90 90 (nops)   -> +0x75 is no return address
code = bytearray(b"\xcc" * 0x100)
code[0x10:0x15] = b"\xe8\x00\x00\x00\x00"
code[0x30:0x32] = b"\xff\xd0"
code[0x50:0x53] = b"\xff\x55\x08"
code[0x70:0x75] = b"\x90" * 5
RET_E8, RET_REG, RET_MEM, NOT_RET = CODE + 0x15, CODE + 0x32, CODE + 0x53, CODE + 0x75
STACK = 0x7FF000


def _memory(words: list[int]):
    stack = b"".join(struct.pack("<Q", w) for w in words)

    def read(address: int, length: int) -> bytes:
        if CODE <= address and address + length <= CODE + len(code):
            return bytes(code[address - CODE:address - CODE + length])
        if STACK <= address and address + length <= STACK + len(stack):
            return stack[address - STACK:address - STACK + length]
        raise OSError("unmapped")
    return read


def executable(address: int) -> bool:
    return CODE <= address < CODE + len(code)


def test_ends_after_call():
    assert stack_scan.ends_after_call(bytes(code[0x0D:0x15]), RET_E8)
    assert stack_scan.ends_after_call(bytes(code[0x2A:0x32]), RET_REG)
    assert stack_scan.ends_after_call(bytes(code[0x4B:0x53]), RET_MEM)
    assert not stack_scan.ends_after_call(bytes(code[0x6D:0x75]), NOT_RET)


def test_scan_takes_only_return_addresses():
    words = [0, 42, NOT_RET, RET_E8, CODE + 0x200, RET_REG, 0xFFFFFFFF, RET_MEM]
    found = stack_scan.scan(_memory(words), STACK, executable, max_frames=10)
    assert [f.pc for f in found] == [RET_E8, RET_REG, RET_MEM]
    assert [f.slot for f in found] == [STACK + 24, STACK + 40, STACK + 56]
    assert all(f.evidence == "inferred" for f in found)


def test_scan_bounds():
    words = [RET_E8] * 20
    assert len(stack_scan.scan(_memory(words), STACK, executable, max_frames=5)) == 5
    assert len(stack_scan.scan(_memory(words), STACK, executable, max_frames=50,
                               stack_end=STACK + 8 * 4)) == 4
    # an unreadable stack ends the scan, it does not raise
    assert stack_scan.scan(_memory([]), STACK, executable, max_frames=5) == []


def test_cfi_steps_over_stale_words():
    """With the caller's rule CFA = rsp + 32, the next return address is 32
    bytes above the one found, whatever lies between."""
    words = [RET_E8, RET_MEM, RET_MEM, RET_MEM, RET_REG, 0]
    rules = {RET_E8: 32, RET_REG: None, RET_MEM: None}
    found = stack_scan.scan(_memory(words), STACK, executable, max_frames=10,
                            cfa_offset=rules.get)
    assert [f.pc for f in found][:2] == [RET_E8, RET_REG]
    assert "CFI" in found[1].how


def test_recover_only_when_the_walk_is_cut():
    words = [RET_E8]
    read = _memory(words)
    keep, found = stack_scan.recover([RET_REG, RET_MEM], ["f", "g"], [STACK, STACK + 8],
                                     read, executable, 10)
    assert (keep, found) == (2, [])
    keep, found = stack_scan.recover([RET_REG, 0], ["kernel", None], [STACK, STACK],
                                     read, executable, 10)
    assert keep == 1 and [f.pc for f in found] == [RET_E8]


def test_direct_call_to_another_function_is_stale():
    """A word after `call <f>` is no caller of the frame below unless f is
    that frame's function (or a PLT stub resolving to it)."""
    words = [RET_E8]
    target = stack_scan.direct_call_target(bytes(code[0x10:0x15]), RET_E8)
    assert target == RET_E8                        # e8 00000000: calls the next insn
    read = _memory(words)
    starts = {0x999: CODE + 0x80}.get              # the frame below starts elsewhere
    assert stack_scan.scan(read, STACK, executable, 5, function_start=starts,
                           callee=0x999) == []
    starts = {0x999: RET_E8}.get                   # ... or exactly where the call goes
    assert [f.pc for f in stack_scan.scan(read, STACK, executable, 5, function_start=starts,
                                          callee=0x999)] == [RET_E8]


def test_stub_slot():
    # endbr64; bnd jmp *0x10(%rip)
    stub = b"\xf3\x0f\x1e\xfa\xf2\xff\x25\x10\x00\x00\x00\x0f\x1f\x44\x00\x00"
    assert stack_scan.stub_slot(stub, 0x1000) == 0x1000 + 11 + 0x10
    assert stack_scan.stub_slot(b"\xff\x25\x00\x01\x00\x00", 0x2000) == 0x2006 + 0x100
    assert stack_scan.stub_slot(b"\x55\x48\x89\xe5", 0x3000) is None


def test_entry_slot_from_the_code_skips_the_frame_own_stale_words():
    """A kernel's stack buffer holds a stale return address below its own:
    the scan takes the first; the slot its entry code names (asm_prologue)
    is taken instead when a return address is there, else the scan runs."""
    words = [0, RET_REG, 0, 0, RET_E8, 0]
    read = _memory(words)
    assert stack_scan.scan(read, STACK, executable, 1)[0].pc == RET_REG
    [f] = stack_scan.scan(read, STACK, executable, 1, entry=(STACK + 32, "rbx + 0x20"))
    assert (f.pc, f.slot, f.how, f.evidence) == (RET_E8, STACK + 32, "rbx + 0x20", "inferred")
    # no return address at the slot: the scan from sp, as without it
    assert stack_scan.scan(read, STACK, executable, 1, entry=(STACK + 16, "x"))[0].pc == RET_REG
    # recover passes it for frame 0 only
    keep, found = stack_scan.recover([CODE + 0x80, 0], ["kernel", None], [STACK, None], read,
                                     executable, 3, cut=True, entry=(STACK + 32, "rbx + 0x20"))
    assert keep == 1 and found[0].pc == RET_E8
