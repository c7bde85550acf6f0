"""The CPython reader of the process under gdb: ``_PyRuntime`` and
``Py_Version`` from the ``.dynsym`` of the executable or a loaded libpython,
never from debug info.  Any command that shows threads asks here.

runtimes/cpython.py is imported only once the target looks like a Python
process (``looks_like_python``): isa-check and spill-audit ask on every run,
and a C program must not pay for the reader."""
from __future__ import annotations

import os
import re

from .. import target
from ..errors import GdbextError
# py-stacks builds its stack scan from these (they live with the frame walk).
from .frame_walk import (cfa_offset_reader, executable_predicate,  # noqa: F401
                         function_start_reader)

LIBPYTHON = re.compile(r"/libpython3\.\d+[^/]*\.so")


def exported(names: tuple[str, ...]) -> dict[str, int]:
    """Run-time addresses of ``names`` from the first object that exports
    ``_PyRuntime``: the executable (a static interpreter) or libpython --
    as gdb lists them, or on the dynamic linker's own list (qemu's stub)."""
    loaded = target.object_sections()
    exe = target.executable()
    candidates = [p for p in loaded if p == exe] + [p for p in loaded if LIBPYTHON.search(p)]
    candidates += [m.name for m in target.link_maps()
                   if m.name and LIBPYTHON.search(m.name) and m.name not in candidates]
    for path in candidates:
        try:
            found = target.exported_symbols(path, names, loaded)
        except GdbextError:
            continue
        if "_PyRuntime" in found:
            return {name: address for name, (address, _size) in found.items()} | {"object": path}
    return {}


def open_runtime():
    """The reader (cpython.Runtime), or a CPythonError saying why not
    (NotPython for a process without CPython: callers stay silent about
    that one)."""
    from ..runtimes import cpython
    symbols = exported(("_PyRuntime", "Py_Version"))
    where = symbols.pop("object", None)
    return cpython.open_runtime(paged(target.read_bytes), symbols, where)


PAGE = 4096


def paged(read):
    """``read`` through a cache of whole pages, for one command: thread
    states, frames and code objects share pages, and each gdb read costs
    the same for 8 bytes as for 4 KiB.  A page that cannot be read whole
    (the end of a mapping) is read as asked."""
    pages: dict[int, bytes | None] = {}

    def cached(address: int, length: int) -> bytes:
        first, last = address // PAGE, (address + length - 1) // PAGE
        if length <= 0 or last - first > 1:
            return read(address, length)
        chunks = []
        for page in range(first, last + 1):
            if page not in pages:
                try:
                    pages[page] = read(page * PAGE, PAGE)
                except Exception:
                    pages[page] = None
            if pages[page] is None:
                return read(address, length)
            chunks.append(pages[page])
        data = b"".join(chunks)
        offset = address - first * PAGE
        return data[offset:offset + length]
    return cached


# --- crash-triage: the Python stack that explains a crash ---------------------------
def native_walker(max_frames: int):
    """``walk(thread_num) -> [(function, objfile, evidence)]``: gdb's frames
    of a thread and, where its unwinder gives up, the frames found by stack
    scanning (evidence "inferred"), as every report's frame walk
    (frame_walk.py).  Switches threads: call it inside
    target.preserved_selection()."""
    from .frame_walk import scan_above, unwinder_gave_up
    tools: dict = {}

    def walk(num: int) -> list[tuple[str | None, str | None, str]]:
        native, sps = target.frames_with_sp(num, max_frames)
        out = [(f.function, f.objfile or (None if f.function else target.objfile_for(f.pc)),
                "exact") for f in native]
        if not unwinder_gave_up(native):
            return out
        keep, scanned = scan_above([f.pc for f in native], [f.function for f in native], sps,
                                   max_frames, tools)
        out = out[:keep]
        for s in scanned:
            loc = target.locate(s.pc)
            out.append((loc.symbol, loc.objfile, "inferred"))
        return out
    return walk


def triage_view(thread: dict | None, crash_object: str | None, max_frames: int,
                warnings: list[str]):
    """The Python stack crash-triage shows: the crashing thread's; when that
    thread runs no Python (a thread pool's worker), the one Python thread
    whose native stack runs code of the object the crash is in (inferred).
    None for a process without CPython (silently) or one that cannot be
    read (a warning)."""
    from ..knowledge.bounds import hit
    from ..runtimes import cpython
    from ..triage.python import PythonView, driver_of
    try:
        runtime = open_runtime()
    except cpython.NotPython:
        return None
    except cpython.CPythonError as exc:
        warnings.append(f"the Python stack: {exc}")
        return None
    most = target.bound("max-threads")
    threads = runtime.threads(max_frames, most)
    if len(threads) >= most:
        warnings.append(f"read {len(threads)} Python thread states: {hit('max-threads', most)}")
    gil = runtime.gil(threads, {})
    lwp = thread and thread.get("lwp")
    view = PythonView(runtime.version, lwp, threads=len(threads),
                      gil=None if gil is None else {"owner": gil.owner_lwp,
                                                    "evidence": gil.owner_evidence,
                                                    "why": gil.owner_why})
    view.recursion_limit = runtime.recursion_limit()
    mine = next((t for t in threads if t.lwp and t.lwp == lwp), None)
    if mine is not None and mine.frames:
        view.take(mine)
        warnings.extend(f"the Python stack: {w}" for w in mine.warnings)
        return view
    view.source = "the crashing thread has no Python frames"
    others = [t for t in threads if t.frames and t.lwp and t.lwp != lwp]
    if not others or not crash_object:
        return view
    nums = dict((l, n) for n, l in target.thread_ids())
    walk = native_walker(max_frames)
    candidates = []
    with target.preserved_selection():
        for t in others[:64]:       # the driver of a pool: a handful of threads at most
            if t.lwp in nums:
                candidates.append((t.lwp, [(f, o) for f, o, _ in walk(nums[t.lwp])]))
    found = driver_of(crash_object, candidates)
    if found is None:
        view.source += ("; no Python thread runs code of " if not any(
            any(o == crash_object for _, o in c) for _, c in candidates)
            else "; several Python threads run code of ") + os.path.basename(crash_object)
        return view
    chosen = next(t for t in others if t.lwp == found[0])
    view.take(chosen)
    view.driver_frames = found[1]
    view.evidence = "inferred"
    view.source = (f"the one Python thread whose native stack runs code of "
                   f"{os.path.basename(crash_object)}; the crashing thread runs no Python")
    return view


# --- isa-check, spill-audit: the Python line that led to a fault --------------------
INTERPRETER_EXECUTABLE = re.compile(r"/python3?(?:\.\d+)?[^/]*$")


def looks_like_python() -> bool:
    """The executable is named python* or a libpython is loaded: only then is
    the CPython reader imported.  An interpreter linked into an executable of
    another name is not recognised by this test."""
    if INTERPRETER_EXECUTABLE.search(target.executable() or ""):
        return True
    return any(LIBPYTHON.search(p) for p in target.loaded_object_names())


def fault_view(frames, max_frames: int, warnings: list[str]):
    """The Python stack that led to the selected thread's stop (a
    triage.python.PythonView, as crash-triage's: the thread's own, or the
    one Python thread driving the object a worker faulted in), from that
    thread's frames (frame_walk.selected_frames).  None for a process that
    is not Python, having imported nothing; a broken read is a warning."""
    try:
        if not looks_like_python():
            return None
    except Exception:  # noqa: BLE001 - no process to look at: not Python
        return None
    from ..triage.python import user_frames
    pairs = [(f.function, f.objfile or (None if f.function else target.objfile_for(f.pc)))
             for f in frames]
    mine = user_frames(pairs)
    crash_object = mine[0][1] if mine else pairs[0][1] if pairs else None
    try:
        return triage_view(target.selected_thread_identity(), crash_object, max_frames,
                           warnings)
    except Exception as exc:  # noqa: BLE001 - a garbage runtime is a warning
        if target.is_debug_enabled():
            import traceback
            warnings.append(traceback.format_exc())
        warnings.append(f"the Python stack: {type(exc).__name__}: {exc}")
        return None
