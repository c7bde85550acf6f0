"""Why the process stopped, and which analysis that calls for."""
from __future__ import annotations

from ..knowledge import signals
from ..record import record
from ..knowledge.triage import FAULT_PLANS, HANG_PLAN

SI_KERNEL, TRAP_MAX = 0x80, 6       # TRAP_BRKPT..TRAP_PERF (uapi/asm-generic/siginfo.h)


@record(frozen=True)
class Stop:
    """Why the process stopped: the signal and who sent it."""
    signo: int | None           # None: no signal (a core of a running process)
    code: int | None
    addr: int | None
    sender_pid: int | None
    origin: str                 # fault, self, external, none
    klass: str                  # the signature's signal class
    commands: tuple[str, ...]   # what crash-triage runs, in order
    source: str = "siginfo"     # siginfo, pr_cursig (no code, no address), remote-stop, signal-frame
    syscall: int | None = None  # SIGSYS: the system call seccomp refused
    arch: int | None = None     # SIGSYS: its AUDIT_ARCH_*

    @property
    def name(self) -> str | None:
        return None if self.signo is None else signals.signal_name(self.signo)

    @property
    def code_name(self) -> str | None:
        if self.signo is None or self.code is None:
            return None
        return signals.code_name(self.signo, self.code)

    def to_json(self) -> dict:
        return {"signal": self.name, "signo": self.signo, "code": self.code,
                "code_name": self.code_name, "addr": self.addr,
                "sender_pid": self.sender_pid, "origin": self.origin, "source": self.source,
                "syscall": self.syscall}

    def describe(self) -> str:
        if self.signo is None:
            return "no signal (stopped from outside)"
        who = {"fault": "raised for a system call the seccomp filter refused"
                        if self.name == "SIGSYS" else "raised by the faulting instruction",
               "self": "sent by the kernel for a write past the file size limit "
                       "(RLIMIT_FSIZE, ulimit -f), in the process's name"
                       if self.name == "SIGXFSZ" and self.code == 0 else
                       "sent by the process to itself",
               "trap": "a debug trap raised in the process (a breakpoint, int3, single-step "
                       "or watchpoint), not a signal sent from outside",
               "external": "sent from outside" + (f" (pid {self.sender_pid})"
                                                  if self.sender_pid else "")}[self.origin]
        if self.origin == "external" and self.name == "SIGSTOP" and not self.sender_pid:
            # PTRACE_ATTACH's stop: the stop of every `gdb -p` and gcore
            who = ("the stop a debugger makes when it attaches (gdb -p, gcore): the process "
                   "was running or blocked, not signalled (a kill -STOP reads the same)")
        if self.code is None and self.source == "remote-stop":
            return (f"{self.name} (as the remote stub reported the stop: it serves no siginfo, "
                    "so no si_code, sender or address)")
        if self.code is None:
            return f"{self.name} (from NT_PRSTATUS pr_cursig: no si_code, sender or address)"
        via = " (the fault a signal handler was handling)" if self.source == "signal-frame" \
            else ""
        return f"{self.name} ({self.code_name}), {who}{via}"


def classify(info, pid: int | None) -> Stop:
    """A kernel-raised SIGILL/SIGSEGV/SIGBUS/SIGFPE (si_code > 0) is a fault;
    a signal the process sent itself (abort, raise) is its own verdict;
    anything else -- no signal, attach's SIGSTOP, Ctrl-C, a watchdog's
    SIGABRT or SIGQUIT -- means it was stopped from outside, usually because
    it hung.  A SIGTRAP the kernel raised (a breakpoint, int3, a single-step)
    is a debug trap in the process: looked at like a hang, never called
    "sent from outside".  ``info``: the stop's siginfo (signo,
    code, addr, sender_pid), None without a signal."""
    if info is None:
        return Stop(None, None, None, None, "none", *HANG_PLAN)
    signo, code, addr, sender_pid = info.signo, info.code, info.addr, info.sender_pid
    name = signals.signal_name(signo)
    if code is None:                    # pr_cursig: a fatal signal is never a hang
        if name in FAULT_PLANS:
            return Stop(signo, None, None, None, "fault", *FAULT_PLANS[name],
                        source="pr_cursig")
        origin = "self" if name == "SIGABRT" else "external"
        return Stop(signo, None, None, None, origin, name, (), source="pr_cursig")
    if name in FAULT_PLANS and code is not None and code > 0:
        return Stop(signo, code, addr, sender_pid, "fault", *FAULT_PLANS[name],
                    syscall=info.syscall, arch=info.arch)
    if code is not None and code <= 0 and pid and sender_pid == pid:
        return Stop(signo, code, addr, sender_pid, "self", name, ())
    if name == "SIGTRAP" and code is not None and (0 < code <= TRAP_MAX or code == SI_KERNEL):
        # int3 arrives as SI_KERNEL on x86, hardware breakpoints and steps as
        # TRAP_*: the thread stopped at a debug event; still look at every thread.
        return Stop(signo, code, addr, sender_pid, "trap", *HANG_PLAN)
    return Stop(signo, code, addr, sender_pid, "external", *HANG_PLAN)
