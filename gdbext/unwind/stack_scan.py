"""Frames past where the unwinder stops: stack scanning.

When a frame gives no way out -- an asm kernel that reuses rsp and has no
CFI, a pc of 0, a jump into nowhere -- the return addresses of its callers
are still on the stack.  As Breakpad's "found by stack scanning": read the
stack upwards from the last frame gdb could place, and take each word that
points just after a call instruction inside an executable mapping as a
caller's return address.  Such frames are ``inferred``: a stale return
address left by an earlier call looks the same.

Pure: memory comes through ``read(address, length)``, mappings through
``executable(address) -> bool``; gdb is asked by the caller (target.py).
``recover()`` is what a command calls with gdb's frames.
"""
from __future__ import annotations

from ..record import record
from typing import Callable

Read = Callable[[int, int], bytes]

MAX_SCAN_BYTES = 256 * 1024       # stack bytes read past the last placed frame
CHUNK = 4096
# Lengths of a near call: e8 rel32 (5); ff /2 with a register, a [reg],
# disp8, SIB or disp32 operand (2..7), each possibly after a REX prefix.
CALL_LENGTHS = (5, 2, 3, 4, 6, 7, 8)
# Links of the CFI chain a scanned candidate must lead through: asm kernels
# (OpenBLAS) carve big buffers out of the stack, full of stale return
# addresses whose chains break within a link or two.
CHAIN_CHECK = 6


@record
class ScannedFrame:
    pc: int                 # the return address found
    slot: int               # where on the stack it was
    evidence: str = "inferred"
    how: str = "found by stack scanning"


def ends_after_call(code: bytes, address: int) -> bool:
    """Whether ``code`` (the bytes just before ``address``) ends with a call
    instruction that ends exactly at ``address``."""
    from iced_x86 import Decoder, FlowControl

    for n in CALL_LENGTHS:
        if n > len(code):
            continue
        ins = Decoder(64, code[-n:], ip=address - n).decode()
        if ins.len == n and ins.flow_control in (FlowControl.CALL, FlowControl.INDIRECT_CALL):
            return True
    return False


def direct_call_target(code: bytes, address: int) -> int | None:
    """The target of an ``e8 rel32`` call ending at ``address``, else None."""
    from iced_x86 import Decoder, FlowControl

    if len(code) < 5 or code[-5] != 0xE8:
        return None
    ins = Decoder(64, code[-5:], ip=address - 5).decode()
    return ins.near_branch64 if ins.len == 5 and ins.flow_control == FlowControl.CALL else None


def stub_slot(code: bytes, address: int) -> int | None:
    """When ``code`` at ``address`` is a PLT entry -- ``jmp *GOT(%rip)``,
    maybe after an endbr64 and a bnd prefix -- the GOT slot it jumps
    through: a direct call to a library function lands on the stub."""
    start = 0
    if code[:4] == b"\xf3\x0f\x1e\xfa":
        start = 4
    if code[start:start + 1] == b"\xf2":
        start += 1
    if code[start:start + 2] != b"\xff\x25" or len(code) < start + 6:
        return None
    disp = int.from_bytes(code[start + 2:start + 6], "little", signed=True)
    return address + start + 6 + disp


class _Scanner:
    def __init__(self, read: Read, executable: Callable[[int], bool], end: int,
                 cfa_offset: Callable[[int], int | None] | None,
                 function_start: Callable[[int], int | None] | None = None):
        self.read, self.executable, self.end = read, executable, end
        self.cfa_offset = cfa_offset
        self.function_start = function_start
        self.checked: dict[int, bool] = {}
        # Strict: a candidate must show at least one CFI link of its own.
        self.strict = cfa_offset is not None

    def caller_slot(self, frame: ScannedFrame) -> int | None:
        """Where the caller's return address is, by the caller's CFI (rsp+N)."""
        offset = self.cfa_offset(frame.pc) if self.cfa_offset else None
        return frame.slot + offset if offset is not None and offset >= 8 else None

    def consistent(self, frame: ScannedFrame, links: int = CHAIN_CHECK) -> bool:
        """A found word from which the callers' CFI leads, ``links`` times,
        to a return address where it says the next one is (or to a frame
        with no rsp-based rule to ask).  A stale word left by an earlier,
        deeper call rarely does: the frames it led to were overwritten."""
        for link in range(links):
            slot = self.caller_slot(frame)
            if slot is None:
                return link > 0 or not self.strict
            word = self.word(slot)
            if link > 0 and (word == 0 or word is None and slot >= self.end):
                return True         # the thread's first frame: nothing called it
            if word is None or not self.is_return_address(word):
                return False
            frame = ScannedFrame(word, slot)
        return True

    def is_return_address(self, word: int) -> bool:
        if word < 0x1000 or not self.executable(word):
            return False
        if word not in self.checked:
            try:
                self.checked[word] = ends_after_call(self.read(word - 8, 8), word)
            except Exception:
                self.checked[word] = False
        return self.checked[word]

    def word(self, slot: int) -> int | None:
        if slot + 8 > self.end:
            return None
        try:
            data = self.read(slot, 8)
        except Exception:
            return None
        return int.from_bytes(data, "little") if len(data) == 8 else None

    def chunk(self, address: int, n: int) -> bytes:
        """``n`` bytes, or the readable words at the start of them (a
        mapping that ends inside the chunk)."""
        try:
            data = self.read(address, n)
            if len(data) == n:
                return data
        except Exception:
            pass
        out = bytearray()
        while len(out) < n:
            word = self.word(address + len(out))
            if word is None:
                break
            out += word.to_bytes(8, "little")
        return bytes(out)

    def calls_into(self, word: int, callee: int | None) -> bool:
        """Whether the call before ``word`` can have called the function
        holding ``callee``: an indirect call can; a direct one only when its
        target is that function's start or a PLT stub.  A stale word left by
        a call to another function fails."""
        if callee is None or self.function_start is None:
            return True
        try:
            target = direct_call_target(self.read(word - 5, 5), word)
        except Exception:
            return True
        if target is None:
            return True
        start = self.function_start(callee)
        if start is None or target == start:
            return True
        try:
            slot = stub_slot(self.read(target, 16), target)
            if slot is None:
                return False            # a direct call to another function
            final = int.from_bytes(self.read(slot, 8), "little")
        except Exception:
            return True
        # Through the GOT: the function it resolved to, or (lazy binding, not
        # resolved yet) back into the PLT -- then nothing can be told.
        return final == start or abs(final - target) < 64 or not self.executable(final)

    def at_entry_slot(self, entry: tuple[int, str], callee: int | None) -> ScannedFrame | None:
        """The return address at ``entry``'s slot, when it is one whose call
        can have called ``callee`` and whose CFI chain holds."""
        slot, how = entry
        if slot < 0 or slot % 8:
            return None
        word = self.word(slot)
        if word is None or not self.is_return_address(word) or not self.calls_into(word, callee):
            return None
        frame = ScannedFrame(word, slot, how=how)
        return frame if self.consistent(frame) else None

    def next_from(self, address: int, callee: int | None = None) -> ScannedFrame | None:
        """The first return address at or above ``address`` whose call can
        have called ``callee`` (an address inside the frame below)."""
        address &= ~7
        while address < self.end:
            n = min(CHUNK - address % CHUNK, self.end - address)
            data = self.chunk(address, n)
            if not data:
                return None
            n = len(data)
            for i in range(0, n - 7, 8):
                word = int.from_bytes(data[i:i + 8], "little")
                if self.is_return_address(word) and self.calls_into(word, callee):
                    frame = ScannedFrame(word, address + i)
                    if self.consistent(frame):
                        return frame
            address += n
        return None


def scan(read: Read, sp: int, executable: Callable[[int], bool], max_frames: int,
         max_bytes: int = MAX_SCAN_BYTES, stack_end: int | None = None,
         cfa_offset: Callable[[int], int | None] | None = None,
         function_start: Callable[[int], int | None] | None = None,
         callee: int | None = None, entry: tuple[int, str] | None = None
         ) -> list[ScannedFrame]:
    """Callers' return addresses from ``sp`` upwards, at most ``max_frames``,
    never past ``stack_end`` (the end of the stack's mapping) nor
    ``max_bytes``.  After each one found, ``cfa_offset(return address)`` --
    the caller's CFA rule ``rsp + N`` at that address, from its CFI -- says
    exactly where the next return address is (slot + N), as an unwinder
    would; where there is no such rule, or the word there is no return
    address, scanning resumes, taking only words whose own CFI chain holds
    and whose call can have called the frame below (``function_start(pc)``:
    the start of the function holding pc; ``callee``: the pc of the frame
    the scan starts above).  ``entry``: (slot, how) where the code of that
    frame says its return address is (unwind/asm_prologue.py): taken first
    when the word there passes the same checks, and no scan below it is
    needed -- the words between sp and there are that frame's own."""
    end = sp + max_bytes if stack_end is None else min(stack_end, sp + max_bytes)
    scanner = _Scanner(read, executable, end, cfa_offset, function_start)
    out: list[ScannedFrame] = []
    found = scanner.at_entry_slot(entry, callee) if entry and entry[0] >= sp else None
    if found is None:
        found = scanner.next_from(sp, callee)
    if found is None and scanner.strict:      # no CFI up there at all: take any word
        scanner.strict = False
        found = scanner.next_from(sp, callee)
    while found is not None and len(out) < max_frames:
        out.append(found)
        slot = scanner.caller_slot(found)
        if slot is not None:
            word = scanner.word(slot)
            if word is not None and scanner.is_return_address(word):
                found = ScannedFrame(word, slot, how="by the caller's CFI, above a scanned frame")
                continue
        found = scanner.next_from(found.slot + 8, found.pc - 1)
    return out


def walk_is_cut(functions: list[str | None], pcs: list[int],
                executable: Callable[[int], bool]) -> bool:
    """Whether gdb's walk stopped early: a pc of 0 or outside every
    executable mapping."""
    if not pcs:
        return False
    # A nameless last frame is no sign: stripped libc's start_thread is ``??``.
    return any(pc == 0 or not executable(pc) for pc in pcs)


def recover(pcs: list[int], functions: list[str | None], sps: list[int | None],
            read: Read, executable: Callable[[int], bool], max_frames: int,
            stack_end: Callable[[int], int | None] | None = None,
            cfa_offset: Callable[[int], int | None] | None = None,
            function_start: Callable[[int], int | None] | None = None,
            cut: bool = False, entry: tuple[int, str] | None = None
            ) -> tuple[int, list[ScannedFrame]]:
    """Given gdb's frames (pcs, names, rsp of each, innermost first): how many
    of them to keep, and the frames found by scanning above them.  Nothing is
    scanned when the walk reached a thread's first frame.  ``entry``: where
    frame 0's code says its return address is (scan()), with ``cut``."""
    if not cut and not walk_is_cut(functions, pcs, executable):
        return len(pcs), []         # (cut: the caller knows gdb's walk ends at a guess)
    keep = next((i for i, pc in enumerate(pcs) if pc == 0 or not executable(pc)), len(pcs))
    keep = max(keep, 1)
    sp = next((sps[i] for i in range(keep - 1, -1, -1) if sps[i]), None)
    if sp is None:
        return keep, []
    room = max(0, max_frames - keep)
    found = scan(read, sp, executable, room,
                 stack_end=stack_end(sp) if stack_end else None, cfa_offset=cfa_offset,
                 function_start=function_start, callee=pcs[keep - 1] or None,
                 entry=entry if keep == 1 else None)
    # A return address already placed by gdb is not a new frame.
    known = set(pcs[:keep])
    return keep, [f for f in found if f.pc not in known]
