"""Run crash-triage on one core, or one live process, in a batch-mode gdb and
turn what it prints into one record.  Spawns gdb; never imports it."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from .. import core_checks, core_file, elf_machines
from ..record import record
from . import inputs, live, one_shot

RECORD_SCHEMA = "gdbext/triage-record/1"
LOADER = Path(__file__).resolve().parent.parent / "gdbinit.py"    # in the package: a wheel has it
JSON_PREFIX = '{"schema": "gdbext/crash-triage/'
@record(frozen=True)
class Job:
    """One core to triage, with its executable when known; or a live process."""
    core: str | None
    executable: str | None = None       # None: read from the core's notes
    label: str | None = None            # where the core came from, when not a path
    pid: int | None = None              # a live process (core None): attach, read, detach


@record(frozen=True)
class GdbOptions:
    """How each worker gdb is started."""
    gdb: str = "gdb"
    timeout: float = 120.0
    sysroot: str | None = None
    debug_file_directory: str | None = None
    max_frames: int | None = None
    index_cache: str | None = None      # gdb's index-cache directory; None: off
    gcore_dir: str | None = None        # a live process's core is kept here (gcore)
    # False: gdb reads no DWARF (-readnever), only ELF symbols and CFI.  For a
    # command that reads none (py-stacks without --native: CPython's layout comes
    # from its tables and _Py_DebugOffsets), pyenv's in-file DWARF was a third
    # of a cold run.
    debug_info: bool = True


def gdb_options_argv(opts: GdbOptions) -> list[str]:
    """A batch gdb that reads no init files, fetches nothing, runs no script
    a core's files might name, and has the gdbext commands."""
    argv = [opts.gdb, "-nx", "-nh", "-q", "-batch", *([] if opts.debug_info else ["-readnever"]),
            "-iex", "set debuginfod enabled off", "-iex", "set pagination off",
            "-iex", "set width 0", "-iex", "set confirm off",
            "-iex", "set auto-load gdb-scripts off", "-iex", "set auto-load python-scripts off"]
    if opts.sysroot:
        argv += ["-iex", f"set sysroot {opts.sysroot}"]
    if opts.debug_file_directory:
        argv += ["-iex", f"set debug-file-directory {opts.debug_file_directory}"]
    if opts.index_cache:
        argv += ["-iex", f"set index-cache directory {opts.index_cache}",
                 "-iex", "set index-cache enabled on"]
    return argv + ["-ex", f"source {LOADER}"]


def triage_command(opts: GdbOptions) -> str:
    return "crash-triage --json" + (f" --max-frames {opts.max_frames}" if opts.max_frames
                                    else "")


def gdb_argv(job: Job, executable: str | None, opts: GdbOptions) -> list[str]:
    """One gdb for one core or process: it prints crash-triage's JSON (then,
    with --gcore, writes the process's core) and exits, detaching."""
    argv = gdb_options_argv(opts) + ["-ex", triage_command(opts)]
    if job.pid is not None:
        keep = ["-ex", f"gcore {gcore_path(job, opts)}"] if opts.gcore_dir else []
        return argv + keep + one_shot.INTERRUPTIBLE + ["-p", str(job.pid)]
    return argv + ([executable] if executable else []) + ["-c", job.core]


def gcore_path(job: Job, opts: GdbOptions) -> str:
    return os.path.join(opts.gcore_dir, f"core.{job.pid}")


# crash-triage's warnings that a core's evidence is damaged (target.core_warnings,
# core_checks.py, triage/metadata.py): the batch record and summary repeat them.
DAMAGED_EVIDENCE = ("the core file is truncated", "is not the build that crashed",
                    core_checks.DAMAGED, core_checks.WRONG_EXECUTABLE)


def new_record(core: str | None, error: str | None = None, pid: int | None = None) -> dict:
    """A record with no report yet: status error until crash-triage answers.
    A live process's has its pid, and no core unless --gcore kept one."""
    return {"schema": RECORD_SCHEMA, "core": core, "pid": pid, "executable": None,
            "status": "error",
            "seconds": None, "signature": None, "verdict": None, "headline": None,
            "python": None, "error": error, "warnings": [], "triage": None}


def triage_one(job: Job, opts: GdbOptions) -> dict:
    """One record: the crash-triage JSON, or why there is none."""
    started = time.monotonic()
    record = new_record(job.label or job.core, pid=job.pid)
    try:
        _triage_into(record, job, opts)
    finally:
        record["seconds"] = round(time.monotonic() - started, 3)
    return record


def foreign_architecture(path: str) -> str | None:
    """The architecture of an ELF core of any class and byte order that is not
    x86-64, as gdb names it; None for an x86-64 core and for anything else."""
    ident = elf_machines.identify(path)
    if ident is None or ident.e_type != core_file.ET_CORE or ident.x86_64:
        return None
    return ident.name


def prepare(record: dict, job: Job) -> tuple[bool, str | None]:
    """What is checked before any gdb: (whether gdb should see the core, the
    executable to give it); the record says why not.  A process: whether
    gdb can attach (gdb finds its executable in /proc)."""
    if job.pid is not None:
        record["error"] = live.problem(job.pid)
        record["executable"] = live.executable(job.pid)
        return record["error"] is None, None
    refused = inputs.refusal(job.core)
    if refused is not None:
        record["error"] = refused
        return False, None
    foreign = foreign_architecture(job.core)
    if foreign is not None:
        record["error"] = f"unsupported architecture: {foreign} (gdbext supports x86-64 only)"
        doubt = core_checks.header_doubt(job.core, elf_machines.identify(job.core))
        if doubt:
            record["error"] += f"; the core looks damaged: {doubt}"
        return False, None
    try:
        facts = core_file.read(job.core)
    except core_file.CoreFileError as exc:
        record["error"] = str(exc)
        return False, None
    executable = job.executable or facts.executable()
    if executable and not job.executable and executable == facts.executable_from_arguments():
        record["warnings"].append(f"the core has no NT_FILE note (a qemu-user core?): the "
                                  f"executable is its command line's first word, {executable}")
    doubt = executable and os.path.isfile(executable) and \
        core_checks.executable_warning(executable, elf_machines.identify(job.core))
    if doubt:                   # gdb would read the core through it: without it, frames unnamed
        record["warnings"].append(doubt + "; the core is read without it (frames unnamed)")
        executable = None
    elif executable and not os.path.isfile(executable):
        record["warnings"].append(f"the core names {executable}, which is not here: frames are "
                                  "unnamed (give --exe PATH or --sysroot DIR)")
        executable = None
    elif executable is None:
        record["warnings"].append("the core names no executable: frames are unnamed "
                                  "(give --exe PATH)")
    record["executable"] = executable
    return True, executable


def prepare_within(record: dict, job: Job, seconds: float) -> tuple[bool, str | None]:
    """prepare() bounded by ``seconds`` (the core's --timeout): it reads the
    core's headers and notes in the driver, which a slow or hostile file
    (one swapped for a FIFO after inputs.refusal looked) could stall.  It runs
    on a scratch record in a thread of its own; when it is late the record
    times out and the thread is abandoned (a daemon: it never holds up exit)."""
    scratch = dict(record, warnings=[])
    done: list = []

    def check():
        try:
            done.append(prepare(scratch, job))
        except BaseException as exc:    # raised again in the caller, as prepare() would
            done.append(exc)
    thread = threading.Thread(target=check, daemon=True)
    thread.start()
    thread.join(max(0.0, seconds))
    if not done:
        timed_out(record, seconds, before_gdb=True)
        return False, None
    if isinstance(done[0], BaseException):
        raise done[0]
    record.update(error=scratch["error"], executable=scratch["executable"])
    record["warnings"] += scratch["warnings"]
    return done[0]


def finish(record: dict, out: str, err: str, returncode: int | None) -> None:
    """Fill the record from what gdb printed for this core: the crash-triage
    JSON line on stdout, else gdb's own words on stderr."""
    line = next((l for l in out.splitlines() if l.startswith(JSON_PREFIX)), None)
    if line is None:
        pid = record.get("pid")
        record["error"] = (pid is not None and live.attach_failure(err, pid)) or \
            gdb_error(err, returncode)
        return
    triage = json.loads(line)
    record.update(status="ok", triage=triage, signature=triage["signature"],
                  verdict=triage["verdict"], headline=triage["headline"],
                  python=_python_of(triage))
    # What makes the signature not worth grouping on, lifted to the record:
    # frames read from a cut core or through another build are not the crash's.
    record["warnings"] += [w for w in triage.get("warnings", [])
                           if any(mark in w for mark in DAMAGED_EVIDENCE)]


def timed_out(record: dict, timeout: float, before_gdb: bool = False) -> None:
    record["status"] = "timeout"
    record["error"] = f"no answer in {timeout:g} s (--timeout)" + \
        (": the checks before gdb (the core's headers and notes) did not end" if before_gdb
         else "")


def _triage_into(record: dict, job: Job, opts: GdbOptions) -> None:
    started = time.monotonic()
    go, executable = prepare_within(record, job, opts.timeout)
    if not go:
        return
    left = opts.timeout - (time.monotonic() - started)      # --timeout counts from the start
    try:
        out, err, returncode = one_shot.run(gdb_argv(job, executable, opts), max(left, 0.001),
                                            live=job.pid is not None, pid=job.pid)
    except OSError as exc:
        record["error"] = f"cannot run {opts.gdb}: {exc.strerror}"
        return
    except one_shot.Timeout:
        timed_out(record, opts.timeout)
        return
    finish(record, out, err, returncode)
    if opts.gcore_dir and job.pid is not None and record["status"] == "ok":
        path = gcore_path(job, opts)
        if os.path.isfile(path):
            record["core"] = path
        else:
            record["warnings"].append(f"gcore wrote no {path}")


def _python_of(triage: dict) -> dict | None:
    """The Python stack that explains the crash, for a Python process: the
    interpreter, its version, whose stack and how sure, and the frames."""
    py = triage.get("python")
    if not py:
        return None
    keep = ("interpreter", "version", "lwp", "evidence", "source", "gil", "frames")
    return {k: py.get(k) for k in keep}


def gdb_error(stderr: str, returncode: int | None, command: str = "crash-triage") -> str:
    """gdb's own words: the command's error line, else its last complaint."""
    lines = [l.strip() for l in stderr.splitlines() if l.strip()]
    ours = [l for l in lines if l.startswith(f"{command}:")]
    if ours and "no process or core" in ours[-1]:
        # gdb refused the core before the command ran: its reason is the answer
        refused = [l for l in lines if not l.startswith((f"{command}:", "warning:"))
                   and ("core" in l.lower() or "file format" in l)]
        if refused:
            return f"gdb could not load the core: {refused[-1]}"
    if ours:
        return ours[-1]
    crash = [l for l in lines if l.startswith("Fatal signal:") or ": internal-error: " in l]
    if crash:                           # gdb's own crash report ends in a bug-report URL
        return f"gdb crashed: {crash[0]} (exit status {returncode})"
    real = [l for l in lines if not l.startswith("warning:")]
    if real or lines:
        return (real or lines)[-1]
    return f"gdb exited with status {returncode} and printed no report"
