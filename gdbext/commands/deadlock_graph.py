"""deadlock-graph: what every thread waits for, who holds it, and the cycles."""
from __future__ import annotations

import functools

import os
import re

from .. import target
from ..errors import GdbextError
from ..knowledge.bounds import hit
from ..locks.rust_waits import RustWaits
from . import exported_symbols
from . import options
from .base import GdbextCommand, max_frames, threads_and_registers
from ..text import ERRORS

PARSER = options.deadlock_graph()    # options.py: shared with the shell CLI


class DeadlockGraphCommand(GdbextCommand):
    # help: commands/help.py
    NAME = "deadlock-graph"
    PARSER = PARSER
    NEEDS = ("tabulate", "elftools")

    def run(self, args):
        return analyse(args)


def analyse(args):
    """The deadlock-graph report for parsed ``args`` (also run by crash-triage)."""
    from ..locks.classify import FRAME0_REGISTERS, Classifier, registers_wanted, walks_needed
    from ..locks.graph import build
    from ..locks.report import DeadlockReport

    kind = threads_and_registers("attach PID, run the program, or core-file CORE first")
    warnings = []
    loaded = target.object_sections()
    try:
        rtld = exported_symbols.find(r"/ld-linux[^/]*\.so", ("_rtld_global", "_rtld_local"), loaded)
        rtld_range = (rtld.address, rtld.size)
    except GdbextError as exc:
        rtld_range = None
        warnings.append(f"loader lock not identifiable: {exc}")
    layout = _pthread_layout(loaded, warnings)
    from ..knowledge.blocking import RUNTIME_OBJECTS
    system = "|".join(RUNTIME_OBJECTS)
    runtime = _python_runtime(warnings)
    read = dict(registers=FRAME0_REGISTERS, more_registers=registers_wanted)
    # Unwinding is most of the cost: stop at each wait site, then walk whole
    # only the threads the first classification says matter.
    frames = max_frames(args)
    threads = target.bound("max-threads")
    snapshots = target.thread_snapshots(frames, system, frames_past_site=0,
                                        max_threads=threads, **read)
    if not snapshots:
        raise GdbextError("the target has no threads to examine")
    python = _python_waits(runtime, snapshots, frames, threads, warnings,
                           _owner_elsewhere(kind, layout)) if runtime else None
    rust = RustWaits(snapshots, _stack_of())
    options = dict(layout=layout, symbolize=_symbolize, all_lwps=target.thread_lwps(),
                   fate=_owner_fate(kind), syscall_name=target.syscall_name,
                   pointers=target.thread_pointers() if layout is not None else {},
                   providers=([python.provider] if python else []) + [rust.provider],
                   module_of=functools.partial(target.module_offset, loaded=loaded))
    classifier = Classifier(snapshots, target.read_bytes, rtld_range, **options)
    states = classifier.run()
    whole = walks_needed(states)
    if any(s.blocked_on and s.blocked_on.kind == "rust-once" and not s.blocked_on.owner_lwps
           for s in states):
        # a Once's owner runs its initialiser: Once::call lies below its wait site
        whole |= {s.num for s in states if not s.frames_truncated
                  and not (s.blocked_on and s.blocked_on.kind == "rust-once")}
    if python:
        # a C thread waiting for the GIL (PyGILState_Ensure): its own code
        # lies below the interpreter's frames
        whole |= {s.num for s in states if s.blocked_on and s.blocked_on.kind == "gil"
                  and s.lwp not in python.sites and not s.frames_truncated}
    if whole:
        again = {s.num: s for s in target.thread_snapshots(
            frames, system, frames_past_site=None, only=whole, **read)}
        snapshots = [again.get(s.num, s) for s in snapshots]
        rust.use(snapshots)
        classifier = Classifier(snapshots, target.read_bytes, rtld_range, **options)
        states = classifier.run()
    scanned = _scan_cut_walks(snapshots, frames, system)
    if scanned:
        rust.use(snapshots)
        classifier = Classifier(snapshots, target.read_bytes, rtld_range, **options)
        states = classifier.run()
        _mark_scanned(states, scanned, warnings)
    if python:
        _python_sites(states, python)
    report = DeadlockReport(build(states), kind, warnings + classifier.warnings,
                            python=python.to_json() if python else None,
                            complete=len(states) >= len(target.thread_lwps()))
    truncated = sum(1 for s in states if s.frames_truncated)
    if truncated:
        report.warnings.append(f"the stack walk of {truncated} thread(s) "
                               f"{hit('max-frames', frames)}; their wait sites come from "
                               "the first frames")
    total = target.thread_count()
    if total > len(snapshots) and len(snapshots) >= threads:
        report.warnings.append(f"examined {len(snapshots)} of {total} threads: "
                               f"{hit('max-threads', threads)}")
    if args.dot:
        path = os.path.expanduser(args.dot)
        try:
            with open(path, "w") as fh:
                fh.write(report.to_dot())
        except OSError as exc:
            raise GdbextError(f"cannot write {path}: {exc.strerror}") from None
        report.warnings.append(f"graph written to {path}")
    return report


LIBC = r"/libc\.so|/libc-2\.[0-9.]+\.so"


def _cut_before_site(frames, system, in_no_file) -> bool:
    """gdb's walk reached a frame it could not leave -- pc 0, or code in no
    file (generated at run time; an asm kernel's garbage return address) --
    before any frame of the program's own."""
    for f in frames:
        if f.pc == 0 or (not (f.objfile or f.function) and in_no_file(f.pc)):
            return True
        if not (f.objfile and system.search(f.objfile)):
            return False
    return False


def _scan_cut_walks(snapshots, frames: int, system_objects: str) -> dict[int, int]:
    """Frames above a cut walk found by stack scanning (unwind/stack_scan.py),
    for those threads only: gdb's frames of the thread with each one's rsp,
    then the return addresses above the last frame it could place.  Each
    such snapshot's frames are replaced; returns thread number -> how many
    of its frames are gdb's (the rest are ``inferred``)."""
    system = re.compile(system_objects)
    files: dict[int, bool] = {}

    def in_no_file(pc: int) -> bool:    # a stripped program's static function has no name
        if pc not in files:
            files[pc] = target.objfile_for(pc) is None
        return files[pc]
    cut = [s for s in snapshots if s.frames and not s.frames_truncated
           and _cut_before_site(s.frames, system, in_no_file)]
    if not cut:
        return {}
    from . import python_runtime
    from ..unwind.stack_scan import recover
    executable = python_runtime.executable_predicate()
    tools = dict(stack_end=target.mapping_end, cfa_offset=python_runtime.cfa_offset_reader(),
                 function_start=python_runtime.function_start_reader())
    kept = {}
    with target.preserved_selection():
        for s in cut:
            native, sps = target.frames_with_sp(s.num, frames)
            try:
                keep, found = recover([f.pc for f in native], [f.function for f in native],
                                      sps, target.read_bytes, executable, frames, **tools)
            except GdbextError:
                continue
            if not found:
                continue
            more = []
            for i, f in enumerate(found):
                where = target.locate(f.pc)
                more.append(target.FrameInfo(keep + i, f.pc, where.function, where.objfile))
            s.frames = native[:keep] + more
            kept[s.num] = keep
    return kept


def _stack_of():
    """lwp -> (stack pointer, end of its stack mapping), read per thread
    asked (a Rust std lock's guard search reads the few non-waiters)."""
    spans: dict[int, tuple[int, int] | None] = {}
    maps: list = []

    def stack_of(lwp: int):
        if lwp not in spans:
            if not maps:
                maps.extend(target.mappings() or [])
            sp = target.stack_pointer(lwp)
            end = next((m.end for m in maps if sp and m.start <= sp < m.end), None)
            spans[lwp] = (sp, end) if end else None
        return spans[lwp]
    return stack_of


def _mark_scanned(states, scanned: dict[int, int], warnings: list[str]) -> None:
    """Where gdb's frames end at code in no file, the wait site is the first
    one above it that stack scanning found, and says so."""
    from ..locks.classify import wait_site
    for s in states:
        keep = scanned.get(s.num)
        if keep is None:
            continue
        last = s.frames[keep - 1]
        mine = wait_site(s.frames[:keep])
        if mine is None or (mine == f"{last.pc:#x}" and not (last.objfile or last.function)):
            above = wait_site(s.frames[keep:])
            if above:
                s.wait_site = above + " (found by stack scanning)"
        warnings.append(f"LWP {s.lwp}: gdb's unwinder could not leave frame {keep - 1} "
                        f"({last.pc:#x}, in no file); the {len(s.frames) - keep} frame(s) "
                        "above it were found by stack scanning (inferred: return addresses "
                        "on the stack whose CFI chain holds)")


def _python_runtime(warnings: list[str]):
    """The CPython reader, or None: a process without _PyRuntime costs one
    .dynsym lookup and says nothing; a CPython it cannot read is a warning."""
    from ..runtimes import cpython
    from . import python_runtime
    try:
        return python_runtime.open_runtime()
    except cpython.NotPython:
        return None
    except cpython.CPythonError as exc:
        warnings.append(f"Python waits not read: {exc}")
        return None


def _python_waits(runtime, snapshots, frames: int, threads: int, warnings: list[str],
                  owner_elsewhere=None):
    """The GIL, threading locks and joins the threads wait for, as a provider."""
    from ..locks import python_waits
    from ..runtimes import cpython
    from . import python_runtime
    try:
        pythreads = runtime.threads(frames, threads)
    except cpython.CPythonError as exc:
        warnings.append(f"Python waits not read: {exc}")
        return None
    regs = {s.lwp: s.regs for s in snapshots if s.in_syscall}
    found = python_waits.build(runtime, pythreads, regs, python_runtime.paged(target.read_bytes),
                               owner_elsewhere)
    warnings += found.warnings
    return found


def _python_sites(states, python) -> None:
    """A Python thread's wait site is its innermost Python frame, then the C
    library it called into (not the interpreter's own frames); a thread with
    no Python frames that waits for the GIL (PyGILState_Ensure from C) is
    shown at its first frame outside the interpreter."""
    from ..locks.python_waits import native_site
    for s in states:
        site = python.sites.get(s.lwp)
        native = native_site(s.frames)
        if site is not None:
            s.wait_site = site + (f" [native: {native}]" if native else "")
            s.python_site = python.site_frames.get(s.lwp)
        elif native and (s.lwp in python.thread_lwps
                         or (s.blocked_on and s.blocked_on.kind == "gil")):
            s.wait_site = native


def _pthread_layout(loaded, warnings: list[str]):
    """glibc's struct pthread layout from libc's _thread_db_* descriptors, or
    None with a warning (then OpenMP teams come from frames)."""
    from ..runtimes import glibc_threads
    path = next((p for p in loaded if re.search(LIBC, p)), None) or next(
        (m.name for m in target.link_maps() if m.name and re.search(LIBC, m.name)), None)
    cause = None
    try:
        found = target.exported_symbols(path, glibc_threads.SYMBOLS, loaded) if path else {}
    except GdbextError as exc:
        found, cause = {}, str(exc)     # the real cause, not "publishes none"

    def address_of(name: str) -> int | None:
        return found[name][0] if name in found else None
    try:
        return glibc_threads.PthreadLayout.read(target.read_bytes, address_of)
    except GdbextError as exc:
        warnings.append(f"thread start routines not read ({cause or exc}): OpenMP teams come "
                        "from whole stack walks")
        return None


def _symbolize(address: int) -> tuple[str | None, str | None]:
    """A start routine's symbol (only when the address is its start: a
    stripped object's static function would otherwise borrow a neighbour's
    name) and the object that holds it."""
    where = target.locate(address)
    if not where.symbol or where.offset != 0:
        return None, where.objfile
    name = (where.function or where.symbol).split("(")[0]
    # a C++ local function's linkage name without debug info: _ZL19__kmp_launch_workerPv
    m = re.match(r"_ZL?(\d+)", name)
    if m:
        name = name[m.end():m.end() + int(m.group(1))] or name
    return name, where.objfile


def _owner_elsewhere(kind: str, layout):
    """``owner(resource) -> (tid | None, why, exact) | None`` for a Python lock
    no thread of the process holds.  An RLock's rlock_owner: glibc's fork()
    reclaims every other thread's descriptor in the child (nptl's
    reclaim_stacks sets its tid to 0), and a thread that exits leaves tid 0
    too, with EXITING in its cancelhandling (glibc_threads.ended tells the
    two apart, in a core as well: the owner is gone either way); while the
    parent lives, the same address in its memory
    (/proc/PPID/mem, read only) is that thread's descriptor: its tid,
    confirmed by /proc/PPID/task/TID, is the owner (exact).  A plain Lock
    records no owner: the parent's own Python frames are read the same way,
    and a thread there in an active 'with' on the lock at the same address
    held it when fork() copied it (inferred)."""
    from ..runtimes import glibc_threads
    parent = _parent_of(kind)
    held_in_parent: dict = {}       # read once: the parent's held locks by address

    def owner(res):
        if res.owner_pthread:
            tid, why, how = rlock_owner(res.owner_pthread)
            return tid, why, True, how
        if not parent or layout is None:
            return None
        if "locks" not in held_in_parent:
            held_in_parent["locks"] = _parent_held(parent)
        found = _forked_holder(parent, held_in_parent["locks"], res.address, layout)
        return found + (None,) if found else None

    def rlock_owner(pthread: int):
        """(tid | None, why, fate | None): fate when the owner is known to
        have ended here ("forked", "exited", "joined"), read from its
        descriptor (glibc_threads.ended)."""
        if layout is None:
            return None, ("no thread state of this process has it (glibc's thread "
                          "descriptor layout is not published here)"), None
        d = glibc_threads.descriptor(target.read_bytes, layout, pthread)
        if d is None or d.tid not in (0, glibc_threads.JOINED_TID):
            return None, ("no thread of this process has it" + (
                f" (its descriptor reads tid {d.tid})" if d is not None else "")), None
        from ..knowledge.blocking import FORK_RECLAIMED, THREAD_ENDED
        how = glibc_threads.ended(target.read_bytes, layout, pthread)
        if how is None:
            return None, (f"{FORK_RECLAIMED}: that thread has ended -- it exited holding the "
                          "lock, or it was a thread of the parent when fork() copied the "
                          "process (glibc's fork() reclaims those descriptors in the child)"), None
        why = THREAD_ENDED[how]
        if how != "forked":
            return None, why, how
        if parent is None:
            ppid = _core_parent(kind)
            return None, why + (f"; the parent was process {ppid} "
                                + ("(the core's NT_PRPSINFO), whose threads' TIDs this core "
                                   "does not record" if kind == "core" else
                                   "(the target's /proc), whose memory is not read remotely")
                                if ppid else ""), how
        try:
            with open(f"/proc/{parent}/mem", "rb") as mem:
                mem.seek(glibc_threads.tid_field_address(layout, pthread))
                tid = int.from_bytes(mem.read(4), "little")
        except (OSError, AttributeError, ValueError, TypeError):
            return None, why, how
        if tid and os.path.isdir(f"/proc/{parent}/task/{tid}"):
            return tid, (f"{why}; in the parent {parent} it is thread {tid} (the descriptor "
                         f"at that address there holds TID {tid})"), None
        return None, why + f"; the parent {parent} has no such thread now", how
    return owner


def _core_parent(kind: str) -> int | None:
    """The parent PID a core records (NT_PRPSINFO's pr_ppid), or a remote
    target's /proc says; None."""
    if kind == "remote":
        return target.remote_parent_pid()
    if kind != "core":
        return None
    from .. import core_file
    try:
        return core_file.read(target.core_file_path() or "").ppid or None
    except GdbextError:
        return None


def _parent_of(kind: str) -> int | None:
    """The live process's parent when it runs the same executable (a fork
    without exec, so the same addresses hold the same objects), else None."""
    pid = target.pid() if kind == "live" else None
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8", errors=ERRORS) as fh:
            ppid = int(re.search(r"^PPid:\s*(\d+)", fh.read(), re.M).group(1))
        same = os.stat(f"/proc/{ppid}/exe") == os.stat(f"/proc/{pid}/exe")
    except (OSError, AttributeError, ValueError):
        return None
    return ppid if same and ppid > 1 else None


def _parent_held(ppid: int) -> dict[int, tuple]:
    """The locks threads of the parent hold, by address: {address: (lwp,
    why, pthread)} -- the CPython reader run on /proc/PPID/mem, read only
    (a fork child: the same symbols at the same addresses)."""
    from ..runtimes import cpython
    from . import python_runtime
    try:
        mem = open(f"/proc/{ppid}/mem", "rb")
    except OSError:
        return None
    with mem:
        def read(at: int, length: int) -> bytes:
            mem.seek(at)
            data = mem.read(length)
            if len(data) != length:
                raise OSError(f"cannot read the parent's memory at {at:#x}")
            return data
        symbols = python_runtime.exported(("_PyRuntime", "Py_Version"))
        symbols.pop("object", None)
        try:
            runtime = cpython.open_runtime(python_runtime.paged(read), symbols)
            threads = runtime.threads(64, 4096)
            locks = runtime.locks(threads, {})
        except (cpython.CPythonError, OSError, GdbextError):
            return {}
    pthreads = {t.lwp: t.pthread for t in threads}
    return {r.address: (r.owner_lwp, r.owner_why, pthreads.get(r.owner_lwp))
            for r in locks if r.owner_lwp}


def _forked_holder(ppid: int, held: dict[int, tuple], address: int, layout):
    """(tid, why, False) when a thread of the parent holds the lock at
    ``address`` and this process is that parent's fork: the holder's struct
    pthread, copied here, reads tid 0 (glibc's fork() reclaimed it), where a
    program merely run by its parent would have no such copy."""
    from ..runtimes import glibc_threads
    if address not in held:
        return None
    lwp, why, pthread = held[address]
    if not os.path.isdir(f"/proc/{ppid}/task/{lwp}"):
        return None
    copy = glibc_threads.descriptor(target.read_bytes, layout, pthread) if pthread else None
    if copy is None or copy.tid != 0:
        return None
    return (lwp, f"no thread here holds it; in the parent {ppid} thread {lwp} holds the "
            f"lock at the same address now ({why}), and its struct pthread {pthread:#x} is "
            "here with tid 0: this process is that parent's fork, and that thread -- or "
            "another thread of the parent before it, a plain Lock records no owner -- held "
            "it when fork() copied it", False)


def _owner_fate(kind: str):
    """What an owner TID that is no thread of the process is: a live thread
    of the parent (the lock came through fork()), or gone.  Live: from /proc;
    a core: from its NT_PRPSINFO parent."""
    from ..locks.classify import OwnerFate
    pid = target.pid() if kind == "live" else None
    ppid = None
    if pid:
        try:
            with open(f"/proc/{pid}/status", encoding="utf-8", errors=ERRORS) as fh:
                ppid = int(re.search(r"^PPid:\s*(\d+)", fh.read(), re.M).group(1))
        except (OSError, AttributeError, ValueError):
            ppid = None
    elif kind in ("core", "remote"):
        ppid = _core_parent(kind)

    def fate(tid: int) -> OwnerFate:
        if pid and ppid and os.path.isdir(f"/proc/{ppid}/task/{tid}"):
            return OwnerFate("fork-parent", f"it is a live thread of the parent process "
                             f"{ppid} (/proc/{ppid}/task/{tid}): the lock was held there "
                             "when fork() copied it into this process")
        if ppid and tid == ppid:
            return OwnerFate("fork-parent", f"its TID is the parent's PID {ppid}: the "
                             "parent's main thread held the lock when fork() copied it")
        if pid:
            return OwnerFate("exited", f"no task {tid} in this process or in its parent "
                             f"{ppid} (/proc): it exited holding the lock, here or in the "
                             "parent before a fork() copied it")
        return OwnerFate("gone", f"no thread {tid} in the "
                         f"{'core' if kind == 'core' else 'target'}: it exited holding the "
                         "lock, or was a thread of the parent"
                         + (f" {ppid}" if ppid else "") + " when fork() copied it")
    return fate
