"""Static sweep of an object's code: which CPU features it uses, how often,
and which functions hold instructions a given CPU cannot run.

Every instruction is decoded (iced-x86, ~4 M instructions/s with one reused
``Instruction``); what an instruction needs depends only on its iced ``Code``
plus its registers, so each distinct code is judged once, on its first
occurrence, with the same ``decode``/``judge`` as isa-check.
"""
from __future__ import annotations

import bisect
from array import array
from collections import Counter
from dataclasses import dataclass, field

from iced_x86 import Code, Decoder, Instruction

from ..elf_file import CodeSection, Function
from ..knowledge.cpuid_features import xcr0_names
from .cpu import CpuFacts
from .decode import decode
from .verdict import judge

SCHEMA = "gdbext/isa-scan/1"


@dataclass
class FeatureUse:
    name: str
    instructions: int = 0
    present: bool | None = None
    nop_when_absent: bool = False        # endbr64, cldemote...: harmless if absent
    runs_as: str | None = None           # tzcnt -> bsf: without the feature it runs this
    mnemonic: str | None = None          # the instruction that runs differently

    @property
    def label(self) -> str:
        return f"{self.name} ({self.mnemonic})" if self.runs_as else self.name


@dataclass
class FunctionGap:
    name: str
    start: int
    end: int
    instructions: int                    # instructions this CPU cannot run
    missing: set[str] = field(default_factory=set)


@dataclass
class ScanResult:
    path: str
    bytes_scanned: int = 0
    instructions: int = 0
    undecodable: int = 0                 # invalid byte sequences (data, padding)
    features: dict[str, FeatureUse] = field(default_factory=dict)
    gaps: list[FunctionGap] = field(default_factory=list)
    # functions whose instructions run as older ones here (tzcnt as bsf, lzcnt as bsr)
    differs: list[FunctionGap] = field(default_factory=list)
    unattributed: int = 0                # lacking instructions outside any symbol


@dataclass
class _CodeVerdict:
    # (name, present, nop when absent, runs as, mnemonic)
    features: list[tuple[str, bool | None, bool, str | None, str | None]]
    missing: frozenset[str]
    differs: frozenset[str] = frozenset()    # "tzcnt runs as bsf"


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
    return _CodeVerdict(features, frozenset(missing), frozenset(differs))


def scan(path: str, sections: list[CodeSection], functions: list[Function],
         cpu: CpuFacts | None) -> ScanResult:
    result = ScanResult(path)
    counts: Counter[int] = Counter()
    verdicts: dict[int, _CodeVerdict] = {}
    lacking: set[int] = set()
    bad_ips = array("Q")
    bad_codes = array("H")
    invalid = Code.INVALID
    ins = Instruction()
    for section in sections:
        data, base = section.data, section.address
        result.bytes_scanned += len(data)
        decoder = Decoder(64, data, ip=base)
        get = counts.get
        while decoder.can_decode:
            decoder.decode_out(ins)
            code = ins.code
            seen = get(code)
            if seen is None:
                if code != invalid:
                    verdicts[code] = v = _judge_code(data, ins.ip - base, ins.ip, ins.len, cpu)
                    if v.missing or v.differs:
                        lacking.add(code)
                counts[code] = 1
            else:
                counts[code] = seen + 1
            if code in lacking:
                bad_ips.append(ins.ip)
                bad_codes.append(code)
    result.undecodable = counts.pop(invalid, 0)
    result.instructions = sum(counts.values())
    for code, n in counts.items():
        for name, present, nop, runs_as, mnemonic in verdicts[code].features:
            key = f"{name}:{mnemonic}" if runs_as else name
            use = result.features.setdefault(key, FeatureUse(name, 0, present, nop, runs_as,
                                                             mnemonic))
            use.instructions += n
    _attribute(result, bad_ips, bad_codes, verdicts, functions)
    return result


def _attribute(result: ScanResult, ips, codes, verdicts, functions: list[Function]) -> None:
    starts = [f.start for f in functions]
    gaps: dict[int, FunctionGap] = {}
    differs: dict[int, FunctionGap] = {}
    for ip, code in zip(ips, codes):
        v = verdicts[code]
        i = bisect.bisect_right(starts, ip) - 1
        if i < 0 or ip >= functions[i].end:
            if v.missing:
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
