"""The CPython reader of the process under gdb: ``_PyRuntime`` and
``Py_Version`` from the ``.dynsym`` of the executable or a loaded libpython,
never from debug info.  Any command that shows threads asks here."""
from __future__ import annotations

import bisect
import os
import re

from .. import elf_file, target
from ..errors import GdbextError
from ..runtimes import cpython

LIBPYTHON = re.compile(r"/libpython3\.\d+[^/]*\.so")


def exported(names: tuple[str, ...]) -> dict[str, int]:
    """Run-time addresses of ``names`` from the first object that exports
    ``_PyRuntime``: the executable (a static interpreter) or libpython."""
    loaded = target.object_sections()
    exe = target.executable()
    candidates = [p for p in loaded if p == exe] + [p for p in loaded if LIBPYTHON.search(p)]
    for path in candidates:
        found = {}
        for name in names:
            try:
                _, value, _ = elf_file.dynamic_symbol(path, (name,))
            except GdbextError:
                continue
            bias = target.load_bias(path, loaded)
            if bias is not None:
                found[name] = value + bias
        if "_PyRuntime" in found:
            return found
    return {}


def open_runtime() -> cpython.Runtime:
    """The reader, or a CPythonError saying why not (NotPython for a
    process without CPython: callers stay silent about that one)."""
    symbols = exported(("_PyRuntime", "Py_Version"))
    return cpython.open_runtime(paged(target.read_bytes), symbols)


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


def executable_predicate():
    ranges = target.executable_ranges()
    starts = [lo for lo, _ in ranges]

    def executable(address: int) -> bool:
        i = bisect.bisect_right(starts, address) - 1
        return i >= 0 and ranges[i][0] <= address < ranges[i][1]
    return executable


def function_start_reader():
    """``function_start(pc)``: the start of the function holding pc, from
    its FDE (.eh_frame, no debug info needed), else its ELF symbol."""
    from ..spill import cfi
    loaded = target.object_sections()
    biases: dict[str, int | None] = {}
    cache: dict[int, int | None] = {}

    def function_start(pc: int) -> int | None:
        if pc in cache:
            return cache[pc]
        start = None
        path = target.objfile_for(pc)
        if path:
            if path not in biases:
                biases[path] = target.load_bias(path, loaded)
            bias = biases[path]
            if bias is not None:
                try:
                    bounds = cfi.fde_bounds(path, pc - bias)
                except GdbextError:
                    bounds = None
                if bounds:
                    start = bounds[0] + bias
        if start is None:
            loc = target.locate(pc)
            if loc.symbol and loc.offset is not None:
                start = pc - loc.offset
        cache[pc] = start
        return start
    return function_start


def cfa_offset_reader():
    """``cfa_offset(return address) -> N`` where the caller's CFI says
    CFA = rsp + N at the call (None for rbp-based or missing rules): lets a
    stack scan step from one found frame to the next exactly."""
    from ..spill import cfi
    cache: dict[int, int | None] = {}
    biases: dict[str, int | None] = {}
    loaded = target.object_sections()

    def cfa_offset(pc: int) -> int | None:
        if pc not in cache:
            cache[pc] = None
            path = target.objfile_for(pc)
            if path:
                if path not in biases:
                    biases[path] = target.load_bias(path, loaded)
                bias = biases[path]
                if bias is not None:
                    try:
                        rule = cfi.cfa_rule_at(path, pc - bias - 1)
                    except GdbextError:
                        rule = None
                    if rule and not rule.expression and rule.register == "rsp":
                        cache[pc] = rule.offset
        return cache[pc]
    return cfa_offset


# --- crash-triage: the Python stack that explains a crash ---------------------------
def native_walker(max_frames: int):
    """``walk(thread_num) -> [(function, objfile, evidence)]``: gdb's frames
    of a thread and, where its unwinder stops, the frames found by stack
    scanning (evidence "inferred").  Switches threads: call it inside
    target.preserved_selection()."""
    from ..unwind.stack_scan import recover
    tools = {}

    def walk(num: int) -> list[tuple[str | None, str | None, str]]:
        native, sps = target.frames_with_sp(num, max_frames)
        out = [(f.function, f.objfile or (None if f.function else target.objfile_for(f.pc)),
                "exact") for f in native]
        if not any(f.pc == 0 or o is None for f, (_, o, _) in zip(native, out)):
            return out              # every pc is in a file: nothing to scan
        if not tools:
            tools.update(executable=executable_predicate(), cfa=cfa_offset_reader(),
                         start=function_start_reader())
        keep, scanned = recover([f.pc for f in native], [f.function for f in native], sps,
                                target.read_bytes, tools["executable"], max_frames,
                                stack_end=target.mapping_end, cfa_offset=tools["cfa"],
                                function_start=tools["start"])
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
    mine = next((t for t in threads if t.lwp and t.lwp == lwp), None)
    if mine is not None and mine.frames:
        view.frames, view.truncated = mine.frames, mine.truncated
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
    view.lwp, view.frames, view.truncated = chosen.lwp, chosen.frames, chosen.truncated
    view.driver_frames = found[1]
    view.evidence = "inferred"
    view.source = (f"the one Python thread whose native stack runs code of "
                   f"{os.path.basename(crash_object)}; the crashing thread runs no Python")
    return view
