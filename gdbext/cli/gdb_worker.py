"""Inside gdb: crash-triage core after core in one gdb, for `gdbext triage`
(gdbext/cli/workers.py starts it and reads it).  It runs in gdb's Python and
is the one module besides target.py and the commands that imports gdb: it
must also run when gdbext itself cannot load in that gdb (the loader refused
a site-packages of another Python), run from its file with the standard
library alone, so that every core still gets crash-triage's answer.

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

import gdb

END = "@gdbext-worker-end"          # + " ID clean|dirty", a line of its own on both pipes


def quote(path: str) -> str:
    """A path as the one argument of `file`, which gdb splits with libiberty's
    buildargv (a backslash escapes any character).  `core-file` takes the
    rest of the line as it is."""
    return "".join("\\" + c if c in " \t\\'\"" else c for c in path)


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
        gdb.write(f"\n{END} {job.get('id')} {status}\n")
        gdb.flush()
        gdb.write(f"\n{END} {job.get('id')} {status}\n", gdb.STDERR)
        gdb.flush(gdb.STDERR)
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
    gdb.write(message.rstrip("\n") + "\n", gdb.STDERR)


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
                gdb.execute(f"file {quote(exe)}", to_string=True)
                _kept = want
            except gdb.error as exc:  # as gdb -batch EXE -c CORE prints it, and goes on
                _say(str(exc))
                _execute_quietly("file")
    try:
        gdb.execute(f"core-file {job['core']}", to_string=True)
    except gdb.error as exc:
        _say(str(exc))
    try:
        gdb.execute(job["command"])   # to stdout, as in a one-shot gdb: no nested capture
    except (gdb.error, gdb.GdbError) as exc:
        _say(str(exc))


def _execute_quietly(command: str) -> None:
    try:
        gdb.execute(command, to_string=True)
    except gdb.error:
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
    inferior = gdb.selected_inferior()
    if inferior.pid != 0 or inferior.threads() or len(gdb.inferiors()) != 1:
        return False
    if exe is None:
        return not gdb.objfiles() and gdb.current_progspace().filename is None
    real = os.path.realpath(exe)
    return all(os.path.realpath((o.owner or o).filename) == real for o in gdb.objfiles())


def forget() -> None:
    """Per-target state of gdbext's modules.  Caches of parsed files stay:
    they are keyed by path, size, mtime, device and inode (elf_file.file_key),
    so another file at the same path is another entry."""
    try:
        from gdbext.triage import evidence
    except ImportError:                 # gdbext did not load: it kept nothing
        return
    evidence.reset()
    evidence.PYTHON_STACK_READER = None
