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
from collections.abc import Callable

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
    return _scan(elf_file.file_key(path) + (symbol_pattern, variant))


def variant_lacks(path: str, symbol_pattern: str, variant: str,
                  lacking: Callable[[str], bool]) -> bool:
    """Whether ``variant`` needs a feature for which ``lacking(name)`` is
    true: a use that is not harmless, as ``VariantUse.required`` counts it.
    Decoding stops at the first such use (an AVX-512 variant on a CPU
    without it: a few functions, not the ~300,000 instructions of all)."""
    key = elf_file.file_key(path) + (symbol_pattern, variant)
    use = _scan(key, lacking)
    return use is _STOPPED or (use is not None and any(map(lacking, use.required)))


_STOPPED = object()                 # _scan: a use of a lacking feature ended the decoding
_CACHE: dict[tuple, VariantUse | None] = {}     # file key + pattern + variant -> whole scan
_CACHE_MAX = 64


def _scan(key: tuple, lacking: Callable[[str], bool] | None = None):
    """The variant's VariantUse (cached), or _STOPPED when ``lacking`` names
    a feature one of its instructions needs for real."""
    if key in _CACHE:
        return _CACHE[key]
    from iced_x86 import Code

    path, size, mtime, symbol_pattern, variant = key
    funcs = _grouped(path, size, mtime, symbol_pattern).get(variant)
    if not funcs:
        return _remember(key, None)
    sections = _sections(path, size, mtime)
    starts = [s.address for s in sections]
    per_code: dict[int, int] = {}
    needs: dict[int, tuple] = {}    # code -> ((feature, harmless), ...), judged once
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
            if n is not None:
                per_code[code] = n + 1
                continue
            per_code[code] = 1
            off = ins.ip - f.start
            found = needs[code] = () if code == Code.INVALID else \
                _judged(data[off:off + ins.len], ins.ip)
            if lacking is not None and any(not soft and lacking(name) for name, soft in found):
                return _STOPPED
    use = VariantUse(variant, len(funcs))
    soft: set[str] = set()
    hard: set[str] = set()
    for code, n in per_code.items():
        if code == Code.INVALID:
            continue
        use.instructions += n
        for name, harmless in needs[code]:
            use.features[name] = use.features.get(name, 0) + n
            (soft if harmless else hard).add(name)
    use.harmless = soft - hard
    return _remember(key, use)


def _remember(key: tuple, use: VariantUse | None) -> VariantUse | None:
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[key] = use
    return use


def _judged(raw: bytes, ip: int) -> tuple:
    """((feature, harmless), ...) of one instruction form: harmless when the
    instruction is a NOP or runs as a legacy one where the feature is absent."""
    from .decode import decode
    from .verdict import judge
    return tuple((f.name, bool(f.nop_when_absent or f.runs_as))
                 for f in judge(decode(raw, ip), None).features)


@functools.lru_cache(maxsize=4)
def _sections(path, _size, _mtime):
    return sorted(elf_file.code_sections(path), key=lambda s: s.address)
