"""The CPython reader of the process under gdb: ``_PyRuntime`` and
``Py_Version`` from the ``.dynsym`` of the executable or a loaded libpython,
never from debug info.  Any command that shows threads asks here."""
from __future__ import annotations

import bisect
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
