"""Function bounds for isa-scan: sized symbols, and .eh_frame's FDEs where
no symbol covers the code.

A stripped library keeps only its exported symbols (.dynsym); its internal
functions -- OpenSSL's assembly kernels among them -- are still bounded by
the FDEs the unwinder uses (every function compiled with unwind tables, and
perlasm's .cfi_ directives).  Such a range is named by the nearest exported
symbol before it plus the offset (``EVP_foo+0x1a40``), or ``fde@0x...`` when
no symbol precedes it.  Bytes outside every symbol and every FDE are most
likely data (constant tables kept in .text), not code.

Pure: no gdb import.
"""
from __future__ import annotations

import bisect

from .. import elf_file
from ..elf_file import CodeSection, Function
from ..record import field, record


@record
class Bounds:
    """Where the code's functions are, and where the bounds came from."""
    functions: list[Function] = field(default_factory=list)
    from_symbols: int = 0
    from_fdes: int = 0
    fde_note: str | None = None           # why there are no FDEs, when there are none


def function_bounds(path: str, sections: list[CodeSection]) -> Bounds:
    from ..spill.cfi import fde_ranges

    symbols = elf_file.functions(path)
    out = Bounds(from_symbols=len(symbols))
    fdes = fde_ranges(path)
    if isinstance(fdes, str):
        out.fde_note, fdes = fdes, []
    spans = sorted((s.address, s.address + len(s.data)) for s in sections)
    span_starts = [lo for lo, _ in spans]
    starts = [f.start for f in symbols]
    added = []
    for start, end in fdes:
        k = bisect.bisect_right(span_starts, start) - 1
        if k < 0 or start >= spans[k][1]:
            continue                      # not in code: a discarded section's FDE
        i = bisect.bisect_right(starts, start) - 1
        if i >= 0 and start < symbols[i].end:
            continue                      # inside a symbol: the symbol names it
        # a symbol starting inside the FDE ends it there (the symbol is better)
        if i + 1 < len(symbols) and symbols[i + 1].start < end:
            end = symbols[i + 1].start
        name = f"{symbols[i].name}+{start - symbols[i].start:#x}" if i >= 0 \
            else f"fde@{start:#x}"
        added.append(Function(start, end, name))
    # FDEs may overlap each other (hand-written CFI): keep the first of each start
    merged = sorted(symbols + added)
    functions, last_start = [], None
    for f in merged:
        if f.start != last_start:
            functions.append(f)
            last_start = f.start
    out.functions = functions
    out.from_fdes = len(functions) - len(symbols)
    return out
