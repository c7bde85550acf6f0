"""What crash-triage runs for each kind of stop, and which frames a crash
signature leaves out.

A stop is a *fault* when the kernel raised a fault signal for an instruction
(si_code > 0); a signal the process sent itself (abort, raise) is *self*; one
another process sent (a watchdog's kill, gdb's attach SIGSTOP, Ctrl-C) or no
signal at all means the process was stopped from outside, usually because it
hung: the question then is what every thread waits for.
"""
from __future__ import annotations

from .blocking import RUNTIME_OBJECTS

# signal -> (signature class, commands in order).  Only for faults.
FAULT_PLANS: dict[str, tuple[str, tuple[str, ...]]] = {
    "SIGILL": ("SIGILL", ("isa-check",)),
    # isa-check joins when the instruction does not decode (see crash_triage).
    "SIGSEGV": ("SIGSEGV", ("spill-audit",)),
    "SIGBUS": ("SIGBUS", ("spill-audit",)),
    "SIGFPE": ("SIGFPE", ()),
    # seccomp's SYS_SECCOMP: raised for the system call the filter refused
    "SIGSYS": ("SIGSYS", ()),
}
# Any other stop: a hang to explain, unless the process signalled itself.
HANG_PLAN = ("hang", ("deadlock-graph",))
# Verdicts of the stops no command explains.
SELF_SIGNAL_VERDICT = {"SIGABRT": "abort",
                       # the kernel signals a write past RLIMIT_FSIZE with the
                       # process's own pid as sender (SI_USER: fs/read_write.c ->
                       # send_sig(SIGXFSZ, current, 0))
                       "SIGXFSZ": "file-size-limit"}
SELF_SIGNAL_DEFAULT = "self-signal"
ARITHMETIC_VERDICT = "arithmetic-fault"

# Frames a signature skips: the C library, the loader, threading and OpenMP
# runtimes, the C++ and unwinder runtimes -- the same in every crash.
SIGNATURE_SKIP_OBJECTS = RUNTIME_OBJECTS + (
    r"/libstdc\+\+\.so", r"/libgcc_s\.so", r"/libc\+\+(abi)?\.so", r"/libunwind\.so")
SIGNATURE_SKIP_FUNCTIONS = frozenset({
    "_start", "__libc_start_main", "__libc_start_call_main", "start_thread", "clone",
    "clone3", "__clone", "__clone3", "__restore_rt", "<signal handler called>",
})
SIGNATURE_FRAMES = 3            # meaningful frames of a fault that enter a signature
SIGNATURE_HANG_FRAMES = 4       # wait sites of the threads in a hang
