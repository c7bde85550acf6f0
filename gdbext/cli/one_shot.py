"""One batch gdb run to its end: what it printed, or a timeout, or Ctrl-C
passed on.  Shared by `gdbext COMMAND` and `gdbext triage`'s one-shot gdbs.

gdb runs in a session of its own, so a Ctrl-C at the terminal reaches only
this driver, which passes it on as a SIGINT: gdb stops the command, runs the
rest of its batch and exits, detaching from an attached process as it always
does.  Only a gdb that does not exit within GRACE seconds of that (or of the
timeout) is killed, and then live.Guard puts the process back as it was."""
from __future__ import annotations

import os
import signal
import subprocess

from .live import Guard

GRACE = 10.0


class Timeout(Exception):
    """gdb gave no answer within the timeout; it has been ended."""


def run(argv: list[str], timeout: float | None, live: bool = False, pid: int | None = None
        ) -> tuple[str, str, int | None]:
    """gdb's stdout, stderr and exit status.  ``live``: gdb is attached to a
    process (``pid`` when it is local, else over gdbserver) and must be let
    detach.  OSError when gdb cannot be started; Timeout; KeyboardInterrupt
    once gdb has ended."""
    guard = Guard(pid)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace",
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        end(proc, gently=live)
        raise Timeout() from None
    except KeyboardInterrupt:
        end(proc, gently=live)
        raise
    finally:
        if proc.poll() is not None:
            guard.restore()
    return out, err, proc.returncode


def end(proc: subprocess.Popen, gently: bool) -> None:
    """``gently`` (attached to a process): interrupt gdb and let it finish,
    which detaches; kill it and anything it started if it does not within
    GRACE seconds, or at a second Ctrl-C.  A gdb on a core is killed."""
    if gently:
        try:
            os.kill(proc.pid, signal.SIGINT)
            proc.communicate(timeout=GRACE)
            return
        except (ProcessLookupError, subprocess.TimeoutExpired, KeyboardInterrupt):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.communicate()
