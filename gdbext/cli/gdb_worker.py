"""Inside gdb: crash-triage core after core in one gdb, for `gdbext triage`
(gdbext/cli/workers.py starts it and reads it).  It runs in gdb's Python and
reaches gdb through target.py.  When gdbext cannot be imported in that gdb
(the loader refused a site-packages of another Python) the driver's
bootstrap says so and the driver gives each core a one-shot gdb instead.

Jobs arrive one JSON object a line on stdin: {"id", "core", "executable",
"command"}.  For each, what a fresh `gdb -batch -ex COMMAND EXE -c CORE`
would do: load the executable and the core (an error is printed on stderr,
as gdb prints it, and the work goes on), run the command with its output on
stdout; then unload the core and forget every per-target fact gdbext kept,
and write END id on stdout and on stderr so the driver knows this job's
output is complete on both pipes.  The executable stays loaded while the
next jobs name the very same file (path, size, mtime, inode): its symbols
are read once for all the cores of one program.  A gdb that still holds
anything of the target after the unload says "dirty" and stops: the driver
starts a fresh one.
"""
from __future__ import annotations

import json
import os

from .. import target
from ..errors import GdbextError

END = "@gdbext-worker-end"          # + " ID clean|dirty", a line of its own on both pipes


def quote(path: str) -> str:
    """A path as the one argument of `file`, which gdb splits with libiberty's
    buildargv (a backslash escapes any character), and of `core-file` in gdb
    16 (which reads one such filename; gdb 13 takes the rest of the line as it
    is: see load_core)."""
    return "".join("\\" + c if c in " \t\\'\"" else c for c in path)


def load_core(path: str) -> None:
    """`core-file PATH` whatever this gdb's parsing: the escaped form first
    (gdb 16: "Junk after filename" for a bare space), and when gdb did not
    find that file, the path as it is (gdb 13 takes the line verbatim, so the
    escaped path names no file).  A path needing no escape is sent once."""
    quoted = quote(path)
    try:
        target.run_command(f"core-file {quoted}")
    except GdbextError as exc:
        if quoted == path or "No such file" not in str(exc):
            raise
        target.run_command(f"core-file {path}")


def serve(fd: int = 0) -> None:
    for line in _lines(fd):
        try:
            job = json.loads(line)
        except ValueError:
            continue
        try:
            _triage(job)
        except Exception as exc:     # the worker's own failure: one line, never a traceback
            _say(f"gdbext worker: internal error: {type(exc).__name__}: {exc}")
        try:
            clean = _unload()
        except Exception:            # cannot tell what is left: a fresh gdb for the next core
            clean = False
        status = "clean" if clean else "dirty"
        target.say(f"\n{END} {job.get('id')} {status}\n")
        target.say(f"\n{END} {job.get('id')} {status}\n", stderr=True)
        if not clean:
            return


def _lines(fd: int):
    pending = b""
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield line.decode("utf-8", "surrogateescape")


def _say(message: str) -> None:
    target.say(message.rstrip("\n") + "\n", stderr=True)


_kept: tuple | None = None     # the executable still loaded: path, size, mtime, inode


def _file_key(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return path, st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino


def _triage(job: dict) -> None:
    """Load the job's executable (unless the last job's is still loaded: the
    very same file) and its core, and run the command."""
    global _kept
    exe = job.get("executable")
    want = _file_key(exe) if exe else None
    if want is None or want != _kept:
        if _kept is not None:
            _execute_quietly("file")
            _kept = None
        if exe:
            try:
                target.run_command(f"file {quote(exe)}")
                _kept = want
            except GdbextError as exc:  # as gdb -batch EXE -c CORE prints it, and goes on
                _say(str(exc))
                _execute_quietly("file")
    try:
        load_core(job["core"])
    except GdbextError as exc:
        _say(str(exc))
    try:    # to stdout, as in a one-shot gdb: no nested capture
        target.run_command(job["command"], capture=False)
    except GdbextError as exc:
        _say(str(exc))


def _execute_quietly(command: str) -> None:
    try:
        target.run_command(command)
    except GdbextError:
        pass


def _unload() -> bool:
    """Drop the core and every per-target cache of gdbext; whether nothing
    of the target is left but the executable, which the next job may share.
    When something else is left, drop the executable too and look again."""
    global _kept
    _execute_quietly("core-file")
    _execute_quietly("nosharedlibrary")     # the libraries' objfiles outlive the core
    forget()
    if _kept is not None and _only_executable_left(_kept[0]):
        return True
    _execute_quietly("file")
    _kept = None
    return _only_executable_left(None)


def _only_executable_left(exe: str | None) -> bool:
    return target.only_executable_loaded(exe)


def forget() -> None:
    """Per-target state of gdbext's modules.  Caches of parsed files stay:
    they are keyed by path, size, mtime, device and inode (elf_file.file_key),
    so another file at the same path is another entry."""
    from ..triage import evidence
    evidence.reset()
    evidence.PYTHON_STACK_READER = None
