"""Signal numbers and si_code names on Linux x86-64.

Sources: asm-generic/signal.h, uapi/asm-generic/siginfo.h.  Codes <= 0 and
0x80 are generic (who sent it); positive codes are per signal.
"""
from __future__ import annotations

SIGNALS: dict[int, str] = {
    1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP",
    6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1",
    11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
    16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP",
    21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ",
    26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR",
    31: "SIGSYS",
}

GENERIC_CODES: dict[int, str] = {
    0: "SI_USER", 0x80: "SI_KERNEL", -1: "SI_QUEUE", -2: "SI_TIMER",
    -3: "SI_MESGQ", -4: "SI_ASYNCIO", -5: "SI_SIGIO", -6: "SI_TKILL",
}

CODES: dict[str, dict[int, str]] = {
    "SIGILL": {1: "ILL_ILLOPC", 2: "ILL_ILLOPN", 3: "ILL_ILLADR", 4: "ILL_ILLTRP",
               5: "ILL_PRVOPC", 6: "ILL_PRVREG", 7: "ILL_COPROC", 8: "ILL_BADSTK",
               9: "ILL_BADIADDR"},
    "SIGFPE": {1: "FPE_INTDIV", 2: "FPE_INTOVF", 3: "FPE_FLTDIV", 4: "FPE_FLTOVF",
               5: "FPE_FLTUND", 6: "FPE_FLTRES", 7: "FPE_FLTINV", 8: "FPE_FLTSUB",
               14: "FPE_FLTUNK", 15: "FPE_CONDTRAP"},
    "SIGSEGV": {1: "SEGV_MAPERR", 2: "SEGV_ACCERR", 3: "SEGV_BNDERR", 4: "SEGV_PKUERR",
                5: "SEGV_ACCADI", 6: "SEGV_ADIDERR", 7: "SEGV_ADIPERR",
                8: "SEGV_MTEAERR", 9: "SEGV_MTESERR", 10: "SEGV_CPERR"},
    "SIGBUS": {1: "BUS_ADRALN", 2: "BUS_ADRERR", 3: "BUS_OBJERR", 4: "BUS_MCEERR_AR",
               5: "BUS_MCEERR_AO"},
    "SIGSYS": {1: "SYS_SECCOMP", 2: "SYS_USER_DISPATCH"},
    "SIGTRAP": {1: "TRAP_BRKPT", 2: "TRAP_TRACE", 3: "TRAP_BRANCH", 4: "TRAP_HWBKPT",
                5: "TRAP_UNK", 6: "TRAP_PERF"},
}


# AUDIT_ARCH_* (uapi/linux/audit.h) of a seccomp SIGSYS -> gdb's syscall table
AUDIT_ARCHES: dict[int, tuple[str, str]] = {
    0xC000003E: ("x86-64", "amd64"), 0x40000003: ("i386 (int 0x80)", "i386"),
}


def signal_name(signo: int) -> str:
    return SIGNALS.get(signo, f"SIG{signo}")


def code_name(signo: int, code: int) -> str:
    per_signal = CODES.get(signal_name(signo), {})
    if code > 0 and code != 0x80 and code in per_signal:
        return per_signal[code]
    return GENERIC_CODES.get(code, str(code))
