"""One batch gdb run to its end: what it printed, or a timeout, or Ctrl-C
passed on.  Shared by `gdbext COMMAND` and `gdbext triage`'s one-shot gdbs.

gdb runs in a session of its own, so a Ctrl-C at the terminal reaches only
this driver.  An attached gdb is then sent STOP_SIGNAL, which gdb's Python
(told by INTERRUPTIBLE, before gdb attaches) turns into a KeyboardInterrupt
in the command: gdb runs the rest of its batch and exits, detaching as it
always does.  Not SIGINT: while gdb waits for the threads it attaches to
stop, the inferior owns gdb's notion of the terminal and gdb passes a SIGINT
on to it, which would kill the process once detached.  Only a gdb that does
not exit within GRACE seconds (or after the timeout) is killed, and then
live.Guard puts the process back as it was."""
from __future__ import annotations

import os
import signal
import subprocess
import threading

from .live import Guard

GRACE = 10.0
STOP_SIGNAL = signal.SIGUSR1
INTERRUPTIBLE = ["-iex", "python import signal; signal.signal(signal.SIGUSR1, "
                 "signal.default_int_handler)"]
_attached: set = set()          # the gdbs attached to a process right now (triage's threads)
_lock = threading.Lock()


class Timeout(Exception):
    """gdb gave no answer within the timeout; it has been ended."""


def run(argv: list[str], timeout: float | None, live: bool = False, pid: int | None = None
        ) -> tuple[str, str, int | None]:
    """gdb's stdout, stderr and exit status.  ``live``: gdb is attached to a
    process (``pid`` when it is local, else over gdbserver) and must be let
    detach; ``argv`` has INTERRUPTIBLE.  OSError when gdb cannot be started; Timeout; KeyboardInterrupt
    once gdb has ended."""
    guard = Guard(pid)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace",
                            start_new_session=True)
    if live:
        with _lock:
            _attached.add(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        end(proc, gently=live)
        raise Timeout() from None
    except KeyboardInterrupt:
        end(proc, gently=live)
        raise
    finally:
        with _lock:
            _attached.discard(proc)
        if proc.poll() is not None:     # an interrupted gdb may exit 0 and leave it stopped
            guard.restore()
    return out, err, proc.returncode


def interrupt_all() -> None:
    """Ctrl-C reached the main thread while other threads wait for attached
    gdbs: interrupt each, so that it detaches and ends (its thread then
    returns at once, with no report)."""
    with _lock:
        running = list(_attached)
    for proc in running:
        try:
            os.kill(proc.pid, STOP_SIGNAL)
        except ProcessLookupError:
            pass


def end(proc: subprocess.Popen, gently: bool) -> None:
    """``gently`` (attached to a process): interrupt gdb and let it finish,
    which detaches; kill it and anything it started if it does not within
    GRACE seconds, or at a second Ctrl-C.  A gdb on a core is killed."""
    if gently:
        try:
            os.kill(proc.pid, STOP_SIGNAL)
            proc.communicate(timeout=GRACE)
            return
        except (ProcessLookupError, subprocess.TimeoutExpired, KeyboardInterrupt):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.communicate()
