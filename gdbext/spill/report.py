"""The spill-audit report: the evidence (signal, instruction and its
alignment rule, effective address, CFA residues per frame, block pressure),
the verdict, a plain explanation, what to change, and the stack slots around
the faulting one.  Text and JSON from the same Audit."""
from __future__ import annotations

from .. import frames_view, render
from .audit import Audit
from ..record import field, record

SCHEMA = "gdbext/spill-audit/1"


@record
class StackRow:
    """One stack word shown by spill-audit."""
    address: int
    value: int | None               # the 8 bytes there, None when unreadable
    notes: list[str] = field(default_factory=list)


@record
class SpillAuditReport:
    """What spill-audit prints."""
    audit: Audit
    target: str
    stack_view: list[StackRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    build: object | None = None     # provenance.BuildInfo
    python: object | None = None    # triage.python.PythonView: the Python line

    def __post_init__(self):
        from ..demangle import demangle
        a = self.audit
        self.function_name = demangle(a.function.name)
        self.frame_names = {f.function: demangle(f.function) for f in a.frames}
        for name in (a.misaligned.since, a.misaligned.caller):
            if name is not None:
                self.frame_names[name.function] = demangle(name.function)

    @property
    def verdict(self) -> str:
        return self.audit.verdict

    # --- JSON ---------------------------------------------------------------
    def to_json(self) -> dict:
        a, op = self.audit, self.audit.operand
        s = a.signal
        frame0 = a.frames[0] if a.frames else None
        p, b = a.pressure, a.block
        return {
            "schema": SCHEMA,
            "verdict": a.verdict,
            "target": self.target,
            "pc": a.pc,
            "audited_other_instruction": a.audited_other,
            "fault": {
                "kind": a.fault_kind,
                "effective_address": op.effective_address,
                "required_alignment": op.required_alignment,
                "misaligned_by": op.misaligned_by,
                "signo": s.signo if s else None,
                "signal": s.name if s else None,
                "si_code": s.code if s else None,
                "si_code_name": s.code_name if s else None,
                "si_addr": s.addr if s else None,
            },
            "instruction": {
                "bytes": op.raw.hex(), "text": op.text, "mnemonic": op.mnemonic,
                "encoding": op.encoding, "memory_operand": op.memory, "base": op.base,
                "index": op.index, "displacement": op.displacement, "segment": op.segment,
                "access_size": op.size, "writes": op.writes, "alignment_rule": op.rule,
                "inlined_from": a.inlined[:-1],
            },
            "stack": {
                "rsp": frame0.rsp if frame0 else None,
                "cfa": frame0.cfa if frame0 else None,
                "cfa_residue": frame0.residue if frame0 else None,
                "diagnosis": a.stack_diagnosis,
                "misaligned_since": a.misaligned.since.function if a.misaligned.since else None,
                "misaligned_by_caller": (a.misaligned.caller.function
                                         if a.misaligned.caller else None),
                "realigned_to": a.realigned.alignment if a.realigned else None,
                "frame_bytes": a.frame_bytes,
                "bounds": a.stack.to_json() if a.stack else None,
                "frames": [{"level": f.level, "pc": f.pc, "function": f.function,
                            "demangled": self._demangled(f.function),
                            "rsp": f.rsp, "cfa": f.cfa, "cfa_residue": f.residue,
                            "object": f.objfile, "evidence": f.evidence,
                            "inlined": list(f.inlined_names)}
                           for f in a.frames],
                "scanned_frames": frames_view.scanned(a.frames),
            },
            "build": self.build.to_json() if self.build else None,
            "python": frames_view.python_json(self.python),
            "function": {
                "name": a.function.name, "demangled": self._demangled(a.function.name),
                "start": a.function.start, "end": a.function.end,
                "bounds_from": a.function.bounds_from,
                "instructions": p.instructions if p else None,
                "spill_stores": p.spill_stores if p else None,
                "spill_reloads": p.spill_reloads if p else None,
                "oversized_blocks": [[x.start, x.end] for x in p.oversized_blocks()] if p else [],
            },
            "block": None if b is None else {
                "start": b.start, "end": b.end, "instructions": b.instructions,
                "vector_registers_used": list(b.vector_registers_used),
                "vector_registers_live_max": b.vector_registers_live_max,
                "register_file": p.register_file,
                "spill_stores": b.spill_stores, "spill_reloads": b.spill_reloads,
                "live_at_fault": list(p.live_registers_at(a.pc)),
            },
            "slot": None if a.slot is None else {
                "address": a.slot_address, "cfa_offset": a.slot.offset
                if a.slot.cfa_relative else None, "size": a.slot.size,
                "accesses": [{"pc": x.pc, "kind": x.kind, "text": x.text}
                             for x in a.slot.accesses],
            },
            "aligned_stack_accesses": [
                {"pc": x.pc, "text": x.text, "effective_address": x.effective_address,
                 "required_alignment": x.required_alignment} for x in a.aligned_in_block],
            "stack_view": [{"address": r.address, "value": r.value, "notes": r.notes}
                           for r in self.stack_view],
            "explanation": a.explanation,
            "advice": a.advice,
            "warnings": a.warnings + self.warnings,
        }

    def _demangled(self, name):
        readable = self.frame_names.get(name) if name != self.audit.function.name \
            else self.function_name
        return readable if readable != name else None

    def _show(self, name):
        return (self._demangled(name) or name) if name else name

    # --- text ---------------------------------------------------------------
    def headline(self) -> str:
        a = self.audit
        what = {
            "stack-spill-fault": "an aligned spill slot on a stack entered misaligned",
            "misaligned-stack": "a misaligned stack slot",
            "non-canonical-address": "a non-canonical address",
            "stack-overflow": ("stack overflow: the frame jumped past the guard"
                               if a.fault_kind == "stack-clash" else "stack overflow"),
            "bad-stack-pointer": "the stack pointer points at no memory",
            "not-alignment": "not an alignment fault",
            "other": "no stack alignment problem found",
        }[a.verdict]
        return f"spill-audit: {a.verdict.upper()} - {what}"

    def to_text(self) -> str:
        a, op = self.audit, self.audit.operand
        s = a.signal
        rows = []
        if s is not None:
            addr = "" if s.addr is None else f", si_addr {s.addr:#x}"
            rows.append(("signal", f"{s.name} {s.code_name} ({s.code:#x}){addr}"))
        rows.append(("fault", a.fault_kind))
        where = self._show(a.function.name) or "?"
        if a.function.start is not None:
            where += f"+{a.pc - a.function.start:#x}"
        rows.append(("instruction", f"{a.pc:#x} <{where}>: {op.text}"))
        rows.append(("bytes", f"{render.hexbytes(op.raw)} ({op.encoding})"))
        rows.append(("rule", op.rule))
        if a.fault_kind == "instruction-fetch":
            rows.append(("address", f"{a.pc:#x} (the pc): fetching the instruction "
                                    "faulted; it never ran"))
        elif op.memory:
            ea = render.hexaddr(op.effective_address)
            detail = ""
            if op.required_alignment and op.effective_address is not None:
                detail = f" ({op.effective_address % op.required_alignment} mod " \
                         f"{op.required_alignment})"
            rows.append(("address", f"{op.memory} = {ea}{detail}, {op.size} bytes "
                                    f"{'written' if op.writes else 'read'}"))
        parts = [self.headline(), render.block(rows)]
        parts.append("stack:\n" + _indent(self._frames()))
        if a.realigned:
            parts.append(f"  prologue realigns rsp to {a.realigned.alignment} at "
                         f"{a.realigned.pc:#x}" + (f" (DRAP {a.realigned.drap})"
                                                    if a.realigned.drap else ""))
        if a.stack is not None:
            st = a.stack
            guard = (f", guard [{st.guard_lo:#x}, {st.guard_hi:#x})"
                     if st.guard_lo is not None else ", no guard mapping below")
            frame = f"; frame 0 is {a.frame_bytes:#x} bytes" if a.frame_bytes is not None else ""
            parts.append(f"  stack mapping [{st.lo:#x}, {st.hi:#x}) {st.size:#x} bytes{guard} "
                         f"({st.source}; {st.sure}){frame}")
        if a.misaligned.since is not None:
            caller = a.misaligned.caller
            parts.append(f"  misaligned since: {self._show(a.misaligned.since.function) or '?'} "
                         f"(frame {a.misaligned.since.level}), entered by "
                         f"{(self._show(caller.function) or '?') if caller else 'an unknown caller'}")
        if a.block is not None and a.pressure is not None:
            b, p = a.block, a.pressure
            parts.append(render.block([
                ("function", f"{self._show(a.function.name) or '?'} [{a.function.start:#x}, "
                             f"{a.function.end:#x}) ({a.function.bounds_from}), "
                             f"{p.instructions} instructions, {p.spill_stores} spill stores, "
                             f"{p.spill_reloads} reloads"),
                ("block", f"[{b.start:#x}, {b.end:#x}): {b.instructions} instructions, "
                          f"{len(b.vector_registers_used)} vector registers used, "
                          f"{b.vector_registers_live_max}/{p.register_file} live at most"),
                ("oversized", f"{len(p.oversized_blocks())} block(s) of this function keep "
                              f"all {p.register_file} vector registers live and spill"),
            ]))
        if a.slot is not None:
            parts.append("spill slot:\n" + _indent("\n".join(
                f"{x.pc:#x}  {x.kind:<13} {x.text}" for x in a.slot.accesses[:12])))
        if self.stack_view:
            parts.append("stack slots:\n" + _indent(self._stack_view()))
        if self.python is not None:
            parts.append("python:\n" + _indent(frames_view.python_text(self.python)))
        if self.build is not None:
            parts.append("built by:\n" + _indent(render.prose(self.build.describe(),
                                                                 render.WIDTH - 4)))
        parts.append("why:\n" + _indent(render.prose(a.explanation, render.WIDTH - 4)))
        if a.advice:
            parts.append("fix:\n" + _indent(render.prose(a.advice, render.WIDTH - 4)))
        for w in a.warnings + self.warnings:
            parts.append(f"warning: {w}")
        return "\n".join(parts)

    def _frames(self) -> str:
        """One row per frame; a run of recursive frames is one row (its
        residues listed: a frame of 8 bytes alternates 0 and 8)."""
        from ..demangle import shorten
        rows, frames = [], self.audit.frames
        i = 0
        while i < len(frames):
            f = frames[i]
            j = i
            while i > 0 and j + 1 < len(frames) and frames[j + 1].function == f.function \
                    and f.function:
                j += 1
            if j - i >= 2:
                residues = sorted({str(x.residue) for x in frames[i:j + 1]})
                rows.append([f"#{f.level}-#{frames[j].level}", f"{f.pc:#x}",
                             f"{self._show(f.function)} (x{j - i + 1}, recursive)",
                             render.hexaddr(f.rsp),
                             render.hexaddr(frames[j].cfa), ",".join(residues), ""])
                i = j + 1
                continue
            names = getattr(f, "inlined_names", ())
            for k, inner in enumerate(names):     # same pc and stack as the frame holding them
                rows.append([f"#{f.level - len(names) + k}", f"{f.pc:#x}",
                             shorten(self._show(inner) or "?"), "", "", "",
                             f"inlined into #{f.level}"])
            rows.append([f"#{f.level}", f"{f.pc:#x}", self._show(f.function) or "?",
                         render.hexaddr(f.rsp),
                         render.hexaddr(f.cfa), "?" if f.residue is None else str(f.residue),
                         "found by stack scanning (inferred)" if f.evidence == "inferred"
                         else ""])
            i += 1
        return render.table(rows, ["frame", "pc", "function", "rsp", "cfa", "cfa%16", ""])

    def _stack_view(self) -> str:
        rows = [[f"{r.address:#x}", f"{r.address % 64:>2}",
                 "??" if r.value is None else f"{r.value:#018x}", ", ".join(r.notes)]
                for r in self.stack_view]
        return render.table(rows, ["address", "%64", "value", ""])


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
