"""The isa-scan report: one object per scanned file, rendered as text or JSON."""
from __future__ import annotations

from .. import render
from ..demangle import demangle_many, shorten
from .cpu import CpuFacts
from .scan import SCHEMA, ScanResult
from ..record import field, record

STATE = {True: "present", False: "MISSING", None: "unknown"}


@record
class IsaScanReport:
    """What isa-scan prints."""
    results: list[ScanResult]
    cpu: CpuFacts | None
    limit: int = 30                       # functions listed per object in text
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.names = demangle_many(g.name for r in self.results
                                   for g in r.gaps[:max(self.limit, 1000)] + r.differs)

    def _name(self, mangled: str) -> str:
        return self.names.get(mangled, mangled)

    @property
    def verdict(self) -> str:
        if any(r.gaps or r.unattributed for r in self.results):
            return "unsupported"
        if any(r.differs for r in self.results):
            return "runs-differently"
        if self.cpu is None or any(u.present is None for r in self.results
                                   for u in r.features.values()):
            return "unknown"
        return "supported"

    def to_json(self) -> dict:
        return {
            "schema": SCHEMA,
            "verdict": self.verdict,
            "cpu": self.cpu.to_json() if self.cpu else None,
            "objects": [{
                "path": r.path, "bytes": r.bytes_scanned, "instructions": r.instructions,
                "undecodable": r.undecodable,
                "features": [{"name": u.name, "instructions": u.instructions,
                              "present": u.present, "nop_when_absent": u.nop_when_absent,
                              "mnemonic": u.mnemonic, "runs_as_when_absent": u.runs_as}
                             for u in _features(r)],
                "functions": [{"name": g.name, "demangled": self.names.get(g.name),
                               "start": g.start, "end": g.end,
                               "instructions": g.instructions, "missing": _missing(g)}
                              for g in r.gaps],
                "runs_differently": [{"name": g.name, "demangled": self.names.get(g.name),
                                      "start": g.start, "end": g.end,
                                      "instructions": g.instructions,
                                      "what": sorted(g.missing)} for g in r.differs],
                "unattributed": r.unattributed,
                "function_ranges": r.functions, "from_fdes": r.from_fdes,
                "outside_functions": {"bytes": r.outside_bytes,
                                      "instructions": r.outside_instructions,
                                      "lacking": dict(sorted(r.outside_lacking.items()))},
                "data_like": dict(sorted(r.data_like.items())),
                "processes": r.processes,
            } for r in self.results],
            "warnings": self.warnings + [
                f"{r.worker_failures} worker share(s) of {r.path} were decoded in gdb instead"
                for r in self.results if r.worker_failures],
        }

    def to_text(self) -> str:
        n_gaps = sum(len(r.gaps) for r in self.results)
        head = {"unsupported": f"isa-scan: unsupported - {n_gaps} function(s) use features "
                               "this CPU lacks" if n_gaps or not any(r.unattributed for r in
                                                                    self.results)
                else "isa-scan: unsupported - code without function bounds uses features "
                     "this CPU lacks",
                "supported": "isa-scan: supported - this CPU runs every instruction found",
                "runs-differently": "isa-scan: runs differently - no instruction faults, but "
                                    "some run as older instructions on this CPU",
                "unknown": "isa-scan: unknown - some features cannot be checked"}[self.verdict]
        out = [head]
        for r in self.results:
            rows = [("object", r.path),
                    ("scanned", f"{r.bytes_scanned:,} bytes, {r.instructions:,} instructions"
                     + (f", {r.undecodable:,} undecodable bytes" if r.undecodable else ""))]
            if r.from_fdes:
                rows.append(("functions", f"{r.functions:,} ranges, {r.from_fdes:,} of them "
                                          ".eh_frame FDEs no symbol covers (named symbol+offset "
                                          "or fde@address)"))
            feats = _features(r)
            rows.append(("features", render.table(
                [[u.label, f"{u.instructions:,}", _state(u)] for u in feats],
                ["feature", "instructions", "this CPU"]) if feats
                else "nothing beyond baseline x86-64"))
            if r.gaps:
                shown = r.gaps[:self.limit]
                text = render.table([[shorten(self._name(g.name)), render.hexaddr(g.start),
                                      g.instructions, ", ".join(_missing(g))] for g in shown],
                                    ["function", "address", "instructions", "missing"])
                if len(r.gaps) > len(shown):
                    text += f"\n... and {len(r.gaps) - len(shown)} more (--limit N, --json)"
                rows.append(("cannot run", text))
            if r.differs:
                shown = r.differs[:self.limit]
                text = render.table([[shorten(self._name(g.name)), render.hexaddr(g.start),
                                      g.instructions, ", ".join(sorted(g.missing))]
                                     for g in shown],
                                    ["function", "address", "instructions", "on this CPU"])
                if len(r.differs) > len(shown):
                    text += f"\n... and {len(r.differs) - len(shown)} more (--limit N, --json)"
                rows.append(("runs as", text))
                for note in _differ_notes(r):
                    rows.append(("note", render.prose([note])))
            if r.unattributed:
                rows.append(("no bounds", f"{r.unattributed:,} instructions this CPU lacks, in "
                                          "code with no function symbol and no .eh_frame"))
            data = _data_lines(r)
            if data:
                rows.append(("likely data", render.prose(data)))
            out.append(render.block(rows))
        failed = sum(r.worker_failures for r in self.results)
        warnings = self.warnings + ([f"{failed} worker share(s) could not run in a worker "
                                     "process and were decoded in gdb instead"]
                                    if failed else [])
        out.append(render.block([("cpu", self.cpu.describe() if self.cpu
                                  else "none: no CPU facts")]
                                + [("warning", render.prose([w])) for w in warnings]))
        return "\n".join(out)


def _missing(gap) -> list[str]:
    return sorted(gap.missing, key=lambda m: (m.startswith("XCR0"), m))


def _state(u) -> str:
    if u.present is False and u.nop_when_absent:
        return "absent (runs as a NOP)"
    if u.present is False and u.runs_as:
        return f"absent (runs as {u.runs_as})"
    return STATE[u.present]


def _differ_notes(r: ScanResult) -> list[str]:
    from ..knowledge.traps import RUNS_AS
    seen = {what.split()[0] for g in r.differs for what in g.missing}
    return [RUNS_AS[m.upper()][1] for m in sorted(seen, reverse=True) if m.upper() in RUNS_AS]


def _features(r: ScanResult):
    return sorted(r.features.values(),
                  key=lambda u: (u.present is not False or u.nop_when_absent or bool(u.runs_as),
                                 -u.instructions))


def _data_lines(r: ScanResult) -> list[str]:
    """Bytes outside every function, and implausible instructions: data
    decoded as code, left out of the features and functions above."""
    lines = []
    if r.outside_bytes:
        named = {k: v for k, v in r.outside_lacking.items() if not k.startswith("XCR0")}
        lacking = sum(named.values())
        text = (f"{r.outside_bytes:,} bytes outside every function and FDE decode to "
                f"{r.outside_instructions:,} instructions")
        if named:
            top = sorted(named.items(), key=lambda kv: -kv[1])[:6]
            text += (f", {lacking:,} feature uses this CPU lacks ("
                     + ", ".join(f"{k} {v:,}" for k, v in top)
                     + (", ..." if len(named) > 6 else "") + ")")
        lines.append(text + ": constant tables and padding, not counted above")
    if r.data_like:
        lines.append(f"{sum(r.data_like.values()):,} instruction(s) no user program runs, "
                     "not counted above: "
                     + "; ".join(f"{why} ({n:,})" for why, n in sorted(r.data_like.items())))
    return lines
