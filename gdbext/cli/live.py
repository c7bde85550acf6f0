"""A live process for the shell commands: whether gdb can attach to it (read
from /proc before any gdb runs, and from gdb's own words when it could not),
and the guard that leaves it running however the run ends.  Never imports gdb;
never writes to the process."""
from __future__ import annotations

import os
import re
import signal
from ..text import ERRORS

YAMA = "/proc/sys/kernel/yama/ptrace_scope"
CAP_SYS_PTRACE = 19
# ptrace_scope -> who may attach (Documentation/admin-guide/LSM/Yama.rst)
YAMA_RULES = {1: "only a parent may attach to its descendants (or a process that named "
                 "its tracer with prctl(PR_SET_PTRACER))",
              2: "only a process with CAP_SYS_PTRACE may attach",
              3: "no process may attach, until the next boot"}


def status(pid: int) -> dict[str, str] | None:
    """/proc/PID/status as fields; None when there is no such process."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8", errors=ERRORS) as fh:
            text = fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return {}
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors=ERRORS) as fh:
            return fh.read().strip()
    except OSError:
        return "?"


def executable(pid: int) -> str | None:
    """The program a process runs (/proc/PID/exe); None when not readable."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def yama_scope() -> int | None:
    try:
        with open(YAMA) as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None                     # no Yama: the classic rules (same uid, or root)


def may_trace_anything() -> bool:
    """CAP_SYS_PTRACE in this process's effective set (root has it)."""
    caps = (status(os.getpid()) or {}).get("CapEff", "0")
    try:
        return bool(int(caps, 16) >> CAP_SYS_PTRACE & 1)
    except ValueError:
        return os.geteuid() == 0


def problem(pid: int) -> str | None:
    """Why gdb will not be able to attach to ``pid``, when /proc says so
    already: no such process, an exited one, another tracer, Yama."""
    st = status(pid)
    if st is None:
        return f"no such process: {pid}"
    state = st.get("State", "")
    if state.startswith(("Z", "X")):
        return f"process {pid} has exited (state {state}): nothing to attach to"
    tracer = int(st.get("TracerPid", "0") or 0)
    if tracer:
        return already_traced(pid, tracer)
    scope = yama_scope()
    if scope == 3 or (scope == 2 and not may_trace_anything()):
        return yama_refusal(pid, scope)
    return None


def already_traced(pid: int, tracer: int) -> str:
    return (f"process {pid} is already traced by process {tracer} ({comm(tracer)}): a "
            "process has one tracer at a time; detach that one first")


def yama_refusal(pid: int, scope: int) -> str:
    return (f"cannot attach to process {pid}: kernel.yama.ptrace_scope is {scope}: "
            f"{YAMA_RULES[scope]}" + ("; run as root, or sysctl kernel.yama.ptrace_scope=0"
                                      if scope < 3 else ""))


def attach_failure(stderr: str, pid: int) -> str | None:
    """gdb's words when it could not attach, made one line that says why."""
    if m := re.search(r"already traced by process (\d+)", stderr):
        return already_traced(pid, int(m.group(1)))
    if not re.search(r"^ptrace: |Could not attach to process|Can't attach", stderr, re.M):
        return None
    if "No such process" in stderr:
        return f"no such process: {pid}"
    if "Operation not permitted" not in stderr:
        said = re.search(r"^ptrace: (.*)$", stderr, re.M)
        return f"cannot attach to process {pid}: {said.group(1) if said else 'gdb refused'}"
    scope = yama_scope()
    if scope and not may_trace_anything():
        return yama_refusal(pid, scope)
    st = status(pid) or {}
    uids = (st.get("Uid") or "").split()
    if uids and not may_trace_anything() and str(os.getuid()) not in uids[:2]:
        return (f"cannot attach to process {pid}: it runs as uid {uids[1]} and you are uid "
                f"{os.getuid()}: run as that user or as root")
    return (f"cannot attach to process {pid}: ptrace: Operation not permitted (a container "
            "without CAP_SYS_PTRACE, a seccomp filter, or a process that is not dumpable)")


def stopped(pid: int) -> bool:
    """Whether any thread of ``pid`` is in a group stop (state T).  A group
    stop stops every thread, so a live leader answers for all (one read, not
    one per thread); an exited leader (Z) does not."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors=ERRORS) as fh:
            leader = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if leader in ("T", "S", "R", "D"):
        return leader == "T"
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", encoding="utf-8", errors=ERRORS) as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state == "T":
            return True
    return False


class Guard:
    """Leaves a process as gdb found it.  gdb detaches on every way out it
    controls (the end, an error, a forwarded Ctrl-C); if gdb itself was
    killed (a timeout), the kernel drops the trace, and a process that its
    attach left in a group stop, and that was running before, gets the
    SIGCONT gdb's detach would have given it."""

    def __init__(self, pid: int | None):
        self.pid = pid
        self.was_stopped = pid is not None and stopped(pid)

    def restore(self) -> None:
        if self.pid is None or self.was_stopped or not stopped(self.pid):
            return
        try:
            os.kill(self.pid, signal.SIGCONT)
        except OSError:
            pass
