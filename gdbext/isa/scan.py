"""Static sweep of an object's code: which CPU features it uses, how often,
and which functions hold instructions a given CPU cannot run.

Every instruction is decoded (iced-x86, iterating its Decoder: ~10 M
instructions/s per core); what an instruction needs depends only on its iced ``Code``
plus its registers, so each distinct code is judged once, on its first
occurrence, with the same ``decode``/``judge`` as isa-check.
"""
from __future__ import annotations

import bisect
from array import array

from iced_x86 import Code, Decoder

from ..elf_file import CodeSection, Function
from ..knowledge.cpuid_features import xcr0_names
from ..knowledge.implausible import why as implausible_why
from .cpu import CpuFacts
from .decode import decode
from .verdict import judge
from ..record import field, record

SCHEMA = "gdbext/isa-scan/1"


@record
class FeatureUse:
    """How many instructions of an object need one CPUID feature."""
    name: str
    instructions: int = 0
    present: bool | None = None
    nop_when_absent: bool = False        # endbr64, cldemote...: harmless if absent
    runs_as: str | None = None           # tzcnt -> bsf: without the feature it runs this
    mnemonic: str | None = None          # the instruction that runs differently

    @property
    def label(self) -> str:
        return f"{self.name} ({self.mnemonic})" if self.runs_as else self.name


@record
class FunctionGap:
    """A function with instructions this CPU cannot run."""
    name: str
    start: int
    end: int
    instructions: int                    # instructions this CPU cannot run
    missing: set[str] = field(default_factory=set)


@record
class ScanResult:
    """isa-scan's findings for one object file."""
    path: str
    bytes_scanned: int = 0
    instructions: int = 0
    undecodable: int = 0                 # invalid byte sequences (data, padding)
    features: dict[str, FeatureUse] = field(default_factory=dict)
    gaps: list[FunctionGap] = field(default_factory=list)
    # functions whose instructions run as older ones here (tzcnt as bsf, lzcnt as bsr)
    differs: list[FunctionGap] = field(default_factory=list)
    unattributed: int = 0                # lacking instructions, and no function bounds at all
    functions: int = 0                   # function ranges: sized symbols plus FDEs
    from_fdes: int = 0                   # of which .eh_frame FDEs no symbol covers
    outside_bytes: int = 0               # bytes outside every function: probably data
    outside_instructions: int = 0        # what they decode to
    outside_lacking: dict[str, int] = field(default_factory=dict)   # feature -> count there
    data_like: dict[str, int] = field(default_factory=dict)   # implausible code: why -> count
    processes: int = 1                   # processes whose decoding is in this result
    worker_failures: int = 0             # shares a worker failed and this process redid


@record
class _CodeVerdict:
    """The features one instruction code needs, judged once per code."""
    # (name, present, nop when absent, runs as, mnemonic)
    features: list[tuple[str, bool | None, bool, str | None, str | None]]
    missing: frozenset[str]
    differs: frozenset[str] = frozenset()    # "tzcnt runs as bsf"
    implausible: str | None = None           # privileged or obsolete: data decoded as code


def _judge_code(data: bytes, offset: int, ip: int, length: int,
                cpu: CpuFacts | None) -> _CodeVerdict:
    ins = decode(data[offset:offset + length], ip)
    j = judge(ins, cpu)
    features = [(f.name, f.present, bool(f.nop_when_absent), f.runs_as,
                 ins.mnemonic if f.runs_as else None) for f in j.features]
    missing = set(j.missing)
    if j.xcr0_missing:
        missing.add("XCR0 " + "+".join(xcr0_names(j.xcr0_missing)))
    differs = {f"{ins.mnemonic} runs as {f.runs_as}" for f in j.features
               if f.runs_as and f.present is False}
    implausible = "privileged (CPL 0) instruction" if ins.privileged else next(
        (f"{f.name}: {reason}" for f in j.features
         for reason in [implausible_why(f.name)] if reason), None)
    return _CodeVerdict(features, frozenset(missing), frozenset(differs), implausible)


N_CODES = 4936 + 64                      # iced-x86 1.21 has 4936 Code values


@record
class Chunk:
    """[start, end) of one section's bytes (offsets into ``data``), cut at
    function starts so that decoding from ``start`` is in step with objdump,
    which restarts at every symbol."""
    section: int
    start: int
    end: int


def scan(path: str, sections: list[CodeSection], functions: list[Function],
         cpu: CpuFacts | None, jobs: int = 1) -> ScanResult:
    """Decode every instruction of ``sections``; with ``jobs`` > 1 the work is
    split at function boundaries and shared with jobs - 1 worker processes
    (see scan_workers.py)."""
    chunks = plan_chunks(sections, functions, max(1, jobs) * 2 if jobs > 1 else 1)
    if jobs > 1 and len(chunks) > 1:
        from .scan_workers import scan_parallel
        partials = scan_parallel(path, sections, functions, cpu, chunks, jobs)
    else:
        partials = [scan_chunks(path, sections, functions, cpu, chunks)]
    return merge(path, partials, sum(len(sec.data) for sec in sections))


def plan_chunks(sections: list[CodeSection], functions: list[Function],
                pieces: int) -> list[Chunk]:
    total = sum(len(sec.data) for sec in sections)
    target = max(1, total // max(1, pieces))
    starts = sorted(f.start for f in functions)
    chunks = []
    for i, sec in enumerate(sections):
        lo, hi = sec.address, sec.address + len(sec.data)
        cut = lo
        while hi - cut > target * 3 // 2:
            want = cut + target
            j = bisect.bisect_left(starts, want)
            if j >= len(starts) or starts[j] >= hi - target // 2:
                break
            chunks.append(Chunk(i, cut - lo, starts[j] - lo))
            cut = starts[j]
        chunks.append(Chunk(i, cut - lo, hi - lo))
    return chunks


def scan_chunks(path: str, sections: list[CodeSection], functions: list[Function],
                cpu: CpuFacts | None, chunks: list[Chunk],
                bounded: bool | None = None) -> ScanResult:
    """The partial result for some chunks (run here or in a worker).  Each
    function is decoded from its own start, as objdump restarts at symbols;
    with function bounds, the bytes between functions are decoded apart and
    counted as probably data."""
    result = ScanResult(path)
    bounded = bool(functions) if bounded is None else bounded    # a worker's share may hold none
    counts = [0] * N_CODES
    outside = [0] * N_CODES if bounded else counts
    attention = bytearray(b"\1") * N_CODES      # 1: not judged yet, or lacking
    verdicts: dict[int, _CodeVerdict] = {}
    bad_ips = array("Q")
    bad_codes = array("H")
    invalid = Code.INVALID
    starts = [f.start for f in functions]
    for chunk in chunks:
        section = sections[chunk.section]
        data = section.data
        base = section.address
        for lo, hi, inside in _regions(functions, starts, base + chunk.start,
                                       base + chunk.end, bounded):
            tally = counts if inside else outside
            if not inside:
                result.outside_bytes += hi - lo
            part = data if (lo, hi) == (base, base + len(data)) else data[lo - base:hi - base]
            # Iterating the decoder is the fastest loop iced offers from Python.
            for ins in Decoder(64, part, ip=lo):
                code = ins.code
                tally[code] += 1
                if attention[code]:
                    v = verdicts.get(code)
                    if v is None:
                        if code == invalid:
                            v = _CodeVerdict([], frozenset())
                        else:
                            v = _judge_code(data, ins.ip - base, ins.ip, ins.len, cpu)
                        verdicts[code] = v
                        if not (v.missing or v.differs) or v.implausible:
                            attention[code] = 0
                            continue
                    bad_ips.append(ins.ip)
                    bad_codes.append(code)
    result.undecodable = counts[invalid] + (outside[invalid] if bounded else 0)
    counts[invalid] = outside[invalid] = 0
    for code, v in verdicts.items():
        n, n_out = counts[code], (outside[code] if bounded else 0)
        result.instructions += n + n_out
        if v.implausible:
            if n + n_out:
                result.data_like[v.implausible] = result.data_like.get(v.implausible, 0) \
                    + n + n_out
            continue
        result.outside_instructions += n_out
        if n_out and v.missing:
            for name in v.missing:
                result.outside_lacking[name] = result.outside_lacking.get(name, 0) + n_out
        if not n:
            continue
        for name, present, nop, runs_as, mnemonic in v.features:
            key = f"{name}:{mnemonic}" if runs_as else name
            use = result.features.setdefault(key, FeatureUse(name, 0, present, nop, runs_as,
                                                             mnemonic))
            use.instructions += n
    _attribute(result, bad_ips, bad_codes, verdicts, functions, bounded)
    return result


def _regions(functions: list[Function], starts: list[int], lo: int, hi: int,
             bounded: bool = True):
    """(start, end, inside a function) spans covering [lo, hi): each function
    up to its end or the next function's start, and the gaps between."""
    n = len(functions)
    if not n:
        yield lo, hi, not bounded
        return
    i = max(0, bisect.bisect_right(starts, lo) - 1)
    cursor = lo
    while cursor < hi:
        while i < n and functions[i].end <= cursor:
            i += 1
        if i >= n or functions[i].start >= hi:
            yield cursor, hi, False
            return
        f = functions[i]
        if f.start > cursor:
            yield cursor, f.start, False
            cursor = f.start
        end = min(f.end, hi, functions[i + 1].start if i + 1 < n else hi)
        i += 1
        if end > cursor:
            yield cursor, end, True
            cursor = end


def merge(path: str, partials: list[ScanResult], scanned: int) -> ScanResult:
    """One result from the chunks' results (a function lies in one chunk)."""
    out = ScanResult(path, bytes_scanned=scanned, processes=0)
    for part in partials:
        out.processes += part.processes
        out.worker_failures += part.worker_failures
        out.instructions += part.instructions
        out.undecodable += part.undecodable
        out.unattributed += part.unattributed
        out.outside_bytes += part.outside_bytes
        out.outside_instructions += part.outside_instructions
        for table, mine in ((part.outside_lacking, out.outside_lacking),
                            (part.data_like, out.data_like)):
            for key, n in table.items():
                mine[key] = mine.get(key, 0) + n
        out.gaps.extend(part.gaps)
        out.differs.extend(part.differs)
        for key, use in part.features.items():
            mine = out.features.get(key)
            if mine is None:
                out.features[key] = FeatureUse(use.name, use.instructions, use.present,
                                               use.nop_when_absent, use.runs_as, use.mnemonic)
            else:
                mine.instructions += use.instructions
    out.gaps.sort(key=lambda g: (-g.instructions, g.start))
    out.differs.sort(key=lambda g: (-g.instructions, g.start))
    return out


def _attribute(result: ScanResult, ips, codes, verdicts, functions: list[Function],
               bounded: bool) -> None:
    starts = [f.start for f in functions]
    gaps: dict[int, FunctionGap] = {}
    differs: dict[int, FunctionGap] = {}
    for ip, code in zip(ips, codes):
        v = verdicts[code]
        i = bisect.bisect_right(starts, ip) - 1
        if i < 0 or ip >= functions[i].end:
            if v.missing and not bounded:
                result.unattributed += 1
            continue
        table, what = (gaps, v.missing) if v.missing else (differs, v.differs)
        gap = table.get(i)
        if gap is None:
            f = functions[i]
            gap = table[i] = FunctionGap(f.name, f.start, f.end, 0)
        gap.instructions += 1
        gap.missing |= what
    result.gaps = sorted(gaps.values(), key=lambda g: (-g.instructions, g.start))
    result.differs = sorted(differs.values(), key=lambda g: (-g.instructions, g.start))
