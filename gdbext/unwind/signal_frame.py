"""What a ``<signal handler called>`` frame interrupted, from the kernel's
signal frame.  Pure: ``read(address, length) -> bytes``.

x86-64 Linux builds ``struct rt_sigframe { char *pretcode; struct ucontext uc;
struct siginfo info; }`` on the handler's stack (arch/x86/include/asm/
sigframe.h).  When the handler returns, ``pretcode`` is popped: the stack
pointer of the sigtramp frame (``__restore_rt``) is ``&uc`` -- what gdb's
amd64_linux_sigcontext_addr relies on too.  ``struct ucontext``
(include/uapi/asm-generic/ucontext.h): uc_flags 8, uc_link 8, uc_stack 24,
then ``struct sigcontext`` (arch/x86/include/uapi/asm/sigcontext.h, 256
bytes: r8-r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags, cs/gs/fs/
ss, err, trapno, oldmask, cr2, fpstate, reserved[8]), then the kernel's
8-byte sigset: siginfo follows at ``&uc + 304``.  siginfo: si_signo@0,
si_errno@4, si_code@8, si_addr@16 (include/uapi/asm-generic/siginfo.h).

The kernel copies siginfo into the frame only for a handler installed with
SA_SIGINFO (__setup_rt_frame, arch/x86/kernel/signal_64.c); CPython's
faulthandler installs its handler without it, so there the slot holds
whatever was on the stack -- and can look like a fault.  The sigcontext is
always written, with the fault's trapno, err and cr2 (setup_sigcontext; the
page-fault path stores them in set_signal_archinfo, arch/x86/mm/fault.c), so
a siginfo is believed only when the trap agrees with it (a page fault at
si_addr for SIGSEGV, #DE for SIGFPE...).  Otherwise the fault is told from
the trap, when it agrees with the signal the handler re-raised; a handler
that aborted instead gets the trap's fault marked ``check``: the caller
confirms it from the interrupted instruction (trap data outlive their fault).
"""
from __future__ import annotations

import struct
from ..record import record

MCONTEXT = 40                   # offsetof(struct ucontext, uc_mcontext)
SIGINFO = 40 + 256 + 8          # sizeof(struct ucontext) on x86-64
SIGCONTEXT_REGS = ("r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rdi", "rsi",
                   "rbp", "rbx", "rdx", "rax", "rcx", "rsp", "rip", "eflags")
CR2 = 176                       # offsetof(struct sigcontext, cr2)
TRAPNO = 160
ERR = 152                       # offsetof(struct sigcontext, err): the CPU's error code
FAULT_SIGNALS = (4, 7, 8, 11)   # SIGILL SIGBUS SIGFPE SIGSEGV carry si_addr
SIGILL, SIGBUS, SIGFPE, SIGSEGV = 4, 7, 8, 11
SI_KERNEL = 0x80
# trap vector (arch/x86/include/asm/trapnr.h) -> the signals the kernel sends for
# it from user mode (arch/x86/kernel/traps.c, arch/x86/mm/fault.c)
X86_TRAP_DE, X86_TRAP_UD, X86_TRAP_GP, X86_TRAP_PF, X86_TRAP_AC = 0, 6, 13, 14, 17
PF_PROT = 1                     # error code bit 0: a protection violation, not a missing page
# the traps each fault signal comes from in user mode (traps.c, fault.c): #BR 5,
# #UD 6, #SS 12, #GP 13, #PF 14, #MF 16, #AC 17, #MC 18, #XM 19, #CP 21
SIGNAL_TRAPS = {SIGSEGV: {5, 13, 14, 21}, SIGBUS: {12, 13, 14, 17, 18}, SIGFPE: {0, 16, 19},
                SIGILL: {6, 13}}


@record
class InterruptedContext:
    level: int                  # the <signal handler called> frame's level
    signo: int
    code: int
    addr: int | None
    regs: dict[str, int]        # the interrupted registers, from uc_mcontext
    trapno: int
    confirmed: bool             # the saved rip is the pc gdb unwound to: exact
    source: str = "siginfo"     # or "sigcontext": no siginfo (a handler without SA_SIGINFO)
    check: bool = False         # from the trap alone: confirm with the instruction at rip

    def to_json(self) -> dict:
        exact = self.confirmed and self.source == "siginfo"
        return {"frame": self.level, "signo": self.signo, "code": self.code,
                "addr": self.addr, "pc": self.regs.get("rip"), "rsp": self.regs.get("rsp"),
                "trapno": self.trapno, "source": self.source,
                "certainty": "exact" if exact else "inferred"}


class SignalFrameError(Exception):
    """The bytes at the frame are no kernel signal frame."""


def parse(raw: bytes, level: int, unwound_pc: int | None, raised: int | None = None
          ) -> InterruptedContext:
    """``raw``: at least SIGINFO + 24 bytes read at the sigtramp frame's rsp;
    ``raised``: the signal the process then sent itself, if it did."""
    if len(raw) < SIGINFO + 24:
        raise SignalFrameError("short signal frame")
    values = struct.unpack_from("<18Q", raw, MCONTEXT)
    regs = dict(zip(SIGCONTEXT_REGS, values))
    err, trapno, _oldmask, cr2 = struct.unpack_from("<4Q", raw, MCONTEXT + ERR)
    confirmed = unwound_pc is not None and regs["rip"] == unwound_pc
    signo, _errno, code = struct.unpack_from("<iii", raw, SIGINFO)
    addr = struct.unpack_from("<Q", raw, SIGINFO + 16)[0] if signo in FAULT_SIGNALS else None
    believed = 1 <= signo <= 64 and agrees(signo, code, addr, trapno, cr2)
    if believed and signo in FAULT_SIGNALS and code > 0:
        return InterruptedContext(level, signo, code, addr, regs, trapno, confirmed)
    # No fault in the slot: garbage that may even look like another signal's
    # siginfo.  The trap data then tell, when the re-raised signal or the
    # interrupted instruction (check) bears them out.
    fault = from_trap(trapno, err, cr2, regs["rip"], raised) if raised is not None else None
    check = False
    if fault is None and raised not in FAULT_SIGNALS:   # the handler aborted, say
        fault, check = from_trap(trapno, err, cr2, regs["rip"], None), True
    if fault is None and believed:      # another signal's handler: no fault here
        return InterruptedContext(level, signo, code, addr, regs, trapno, confirmed)
    if fault is None:
        raise SignalFrameError(f"the frame's siginfo (signal {signo}) is not its trap's, and "
                               f"its sigcontext (trapno {trapno}) is no fault of signal "
                               f"{raised if raised is not None else 'unknown'}")
    return InterruptedContext(level, *fault, regs, trapno, confirmed, "sigcontext", check)


def agrees(signo: int, code: int, addr: int | None, trapno: int, cr2: int) -> bool:
    """A siginfo the kernel wrote for this frame: a fault signal (si_code > 0)
    must come from a trap that sends it, a page fault at si_addr."""
    if signo not in FAULT_SIGNALS or code <= 0:
        return True
    if trapno not in SIGNAL_TRAPS[signo]:
        return False
    return trapno != X86_TRAP_PF or addr == cr2


def from_trap(trapno: int, err: int, cr2: int, rip: int, raised: int | None
              ) -> tuple[int, int, int] | None:
    """(signo, si_code, si_addr) the kernel sends for the trap the sigcontext
    records, when that is the signal the handler re-raised (``raised`` None:
    any); else None."""
    if trapno == X86_TRAP_PF and raised is None:
        return SIGSEGV, 2 if err & PF_PROT else 1, cr2
    if trapno == X86_TRAP_PF and raised in (SIGSEGV, SIGBUS):
        if raised == SIGBUS:
            return SIGBUS, 2, cr2                       # BUS_ADRERR: past a file's end
        return SIGSEGV, 2 if err & PF_PROT else 1, cr2  # SEGV_ACCERR / SEGV_MAPERR
    known = {X86_TRAP_GP: (SIGSEGV, SI_KERNEL, 0), X86_TRAP_DE: (SIGFPE, 1, rip),
             X86_TRAP_UD: (SIGILL, 2, rip), X86_TRAP_AC: (SIGBUS, 1, cr2)}.get(trapno)
    return known if known is not None and raised in (None, known[0]) else None


def read(read_bytes, level: int, sigtramp_sp: int, unwound_pc: int | None,
         raised: int | None = None) -> InterruptedContext:
    try:
        raw = read_bytes(sigtramp_sp, SIGINFO + 24)
    except Exception:  # noqa: BLE001 - unreadable is one finding
        raise SignalFrameError(f"the signal frame at {sigtramp_sp:#x} is unreadable") from None
    return parse(raw, level, unwound_pc, raised)
