"""What a library's kernel variants execute, from the library's own code.

A dispatching library (OpenBLAS DYNAMIC_ARCH) names each kernel after its
variant (``dgemm_kernel_PILEDRIVER``).  The features a variant uses are the
union of what its functions' instructions need -- decoded here, never taken
from a table: builds differ (Debian's Piledriver kernels use FMA4 and FMA3 but
no XOP; numpy's wheel has no Piledriver kernels at all).  Results are cached
per (file, size, mtime) for the gdb session.
"""
from __future__ import annotations

import bisect
import functools
import re

from iced_x86 import Decoder

from .. import elf_file
from ..record import field, record


@record
class VariantUse:
    """The features one dispatch variant of a library uses."""
    variant: str
    functions: int = 0
    instructions: int = 0
    features: dict[str, int] = field(default_factory=dict)   # cpuinfo name -> instructions
    harmless: set[str] = field(default_factory=set)          # only NOP/legacy-fallback uses

    @property
    def required(self) -> list[str]:
        """Features whose absence faults (or changes results), most used first."""
        return [n for n, _ in sorted(self.features.items(), key=lambda kv: -kv[1])
                if n not in self.harmless]

    def to_json(self) -> dict:
        return {"variant": self.variant, "functions": self.functions,
                "instructions": self.instructions, "features": dict(self.features),
                "harmless": sorted(self.harmless), "source": "decoded from the library's code"}


@functools.lru_cache(maxsize=8)
def _grouped(path, _size, _mtime, symbol_pattern):
    pattern = re.compile(symbol_pattern)
    groups: dict[str, list[elf_file.Function]] = {}
    for f in elf_file.functions(path):
        m = pattern.search(f.name)
        if m:
            groups.setdefault(m.group("variant"), []).append(f)
    return groups


def variant_use(path: str, symbol_pattern: str, variant: str) -> VariantUse | None:
    """The features ``variant``'s functions in ``path`` use, or None when the
    library has no function of that variant."""
    return _variant_use(*elf_file.file_key(path), symbol_pattern, variant)


@functools.lru_cache(maxsize=64)
def _variant_use(path, size, mtime, symbol_pattern, variant):
    funcs = _grouped(path, size, mtime, symbol_pattern).get(variant)
    if not funcs:
        return None
    sections = _sections(path, size, mtime)
    starts = [s.address for s in sections]
    use = VariantUse(variant, len(funcs))
    per_code: dict[int, int] = {}
    first: dict[int, tuple[bytes, int]] = {}
    for f in funcs:
        i = bisect.bisect_right(starts, f.start) - 1
        if i < 0:
            continue
        sec = sections[i]
        lo = f.start - sec.address
        if lo >= len(sec.data):
            continue
        data = sec.data[lo:f.end - sec.address]
        for ins in Decoder(64, data, ip=f.start):
            code = ins.code
            n = per_code.get(code)
            if n is None:
                off = ins.ip - f.start
                first[code] = (data[off:off + ins.len], ins.ip)
                per_code[code] = 1
            else:
                per_code[code] = n + 1
    _summarise(use, per_code, first)
    return use


@functools.lru_cache(maxsize=4)
def _sections(path, _size, _mtime):
    return sorted(elf_file.code_sections(path), key=lambda s: s.address)


def _summarise(use: VariantUse, per_code: dict[int, int], first) -> None:
    from iced_x86 import Code

    from .decode import decode
    from .verdict import judge
    soft: set[str] = set()
    hard: set[str] = set()
    for code, n in per_code.items():
        if code == Code.INVALID:
            continue
        use.instructions += n
        raw, ip = first[code]
        j = judge(decode(raw, ip), None)
        for f in j.features:
            use.features[f.name] = use.features.get(f.name, 0) + n
            (soft if f.nop_when_absent or f.runs_as else hard).add(f.name)
    use.harmless = soft - hard
