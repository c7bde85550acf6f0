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
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

MCONTEXT = 40                   # offsetof(struct ucontext, uc_mcontext)
SIGINFO = 40 + 256 + 8          # sizeof(struct ucontext) on x86-64
SIGCONTEXT_REGS = ("r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rdi", "rsi",
                   "rbp", "rbx", "rdx", "rax", "rcx", "rsp", "rip", "eflags")
CR2 = 176                       # offsetof(struct sigcontext, cr2)
TRAPNO = 160
FAULT_SIGNALS = (4, 7, 8, 11)   # SIGILL SIGBUS SIGFPE SIGSEGV carry si_addr


@dataclass
class InterruptedContext:
    level: int                  # the <signal handler called> frame's level
    signo: int
    code: int
    addr: int | None
    regs: dict[str, int]        # the interrupted registers, from uc_mcontext
    trapno: int
    confirmed: bool             # the saved rip is the pc gdb unwound to: exact

    def to_json(self) -> dict:
        return {"frame": self.level, "signo": self.signo, "code": self.code,
                "addr": self.addr, "pc": self.regs.get("rip"), "rsp": self.regs.get("rsp"),
                "trapno": self.trapno,
                "certainty": "exact" if self.confirmed else "inferred"}


class SignalFrameError(Exception):
    """The bytes at the frame are no kernel signal frame."""


def parse(raw: bytes, level: int, unwound_pc: int | None) -> InterruptedContext:
    """``raw``: at least SIGINFO + 24 bytes read at the sigtramp frame's rsp."""
    if len(raw) < SIGINFO + 24:
        raise SignalFrameError("short signal frame")
    values = struct.unpack_from("<18Q", raw, MCONTEXT)
    regs = dict(zip(SIGCONTEXT_REGS, values))
    trapno, = struct.unpack_from("<Q", raw, MCONTEXT + TRAPNO)
    signo, _errno, code = struct.unpack_from("<iii", raw, SIGINFO)
    if not 1 <= signo <= 64:
        raise SignalFrameError(f"no signal number in the frame's siginfo ({signo})")
    addr = struct.unpack_from("<Q", raw, SIGINFO + 16)[0] if signo in FAULT_SIGNALS else None
    confirmed = unwound_pc is not None and regs["rip"] == unwound_pc
    return InterruptedContext(level, signo, code, addr, regs, trapno, confirmed)


def read(read_bytes, level: int, sigtramp_sp: int, unwound_pc: int | None
         ) -> InterruptedContext:
    try:
        raw = read_bytes(sigtramp_sp, SIGINFO + 24)
    except Exception:  # noqa: BLE001 - unreadable is one finding
        raise SignalFrameError(f"the signal frame at {sigtramp_sp:#x} is unreadable") from None
    return parse(raw, level, unwound_pc)
