"""spill-audit: explain general-protection and stack faults in vectorized code."""
from __future__ import annotations

import bisect

from .. import elf_file, target
from ..errors import GdbextError
from . import options
from .base import GdbextCommand, max_frames, threads_and_registers

PARSER = options.spill_audit()    # options.py: shared with the shell CLI

MAX_FUNCTION_BYTES = 1 << 20        # a function bigger than this is read in part
STACK_VIEW_ROWS = 10


class SpillAuditCommand(GdbextCommand):
    # help: commands/help.py
    NAME = "spill-audit"
    PARSER = PARSER
    NEEDS = ("iced_x86", "tabulate", "elftools")

    def run(self, args):
        return analyse(args)


def analyse(args, embedded: bool = False):
    """The spill-audit report for parsed ``args``.  ``embedded``: run by
    crash-triage, which shows the Python stack itself and needs no block
    analysis of a fault that is not about alignment (that analysis imports
    and parses the most: unwind tables, DWARF, the function's blocks)."""
    from ..spill.audit import FunctionInfo, Signal, build, quick_verdict
    from ..spill.report import SpillAuditReport
    from ..spill.stack import Frame

    kind = threads_and_registers("run the program, attach, or core-file CORE first "
                                 "(the audit needs registers)")
    pc, level = target.selected_pc()
    expression = " ".join(args.address).strip()
    address = target.eval_address(expression) if expression else pc
    regs = target.selected_registers()
    warnings = []
    if level:
        warnings.append(f"frame {level} is selected: only its callee-saved registers "
                        "and rsp are exact")
    if address != pc:
        warnings.append("ADDRESS is not the faulting instruction: its effective address "
                        "uses the registers at the stop")
    info = target.stop_signal() if level == 0 and address == pc else None
    signal = Signal(info.signo, info.code, info.addr) if info else None
    code = target.read_code(address, 15)
    bound = max_frames(args)
    from . import python_runtime
    from .frame_walk import selected_frames
    raw_frames = selected_frames(bound, warnings, what="the CFA chain")
    frames = [Frame(f.level, f.pc, f.function, f.rsp, f.cfa, f.evidence, f.objfile,
                    tuple(getattr(f, "inlined_names", ())))
              for f in raw_frames]
    python = None if embedded else python_runtime.fault_view(raw_frames, bound, warnings)
    probe = target.accessible_probe()
    maps = target.mappings()
    stack = _stack_bounds(frames, maps)
    where = target.locate(address)
    deep = not (embedded and address == pc and
                quick_verdict(address, code, regs, signal, frames, probe, stack))
    if deep:
        function, function_code, cfa_from_cfi = _function(address, regs, warnings)
        build_info = _build_info(where.objfile, warnings)
    else:
        start = address - where.offset if where.symbol and where.offset is not None else None
        function = FunctionInfo(where.symbol or where.function, start, None,
                                "symbol" if start is not None else "unknown")
        function_code = cfa_from_cfi = build_info = None
    audit = build(address, code, regs, signal, frames, function, function_code,
                  cfa_from_cfi if level == 0 else None, probe, audited_other=address != pc,
                  stack=stack, language=_language(function.name, build_info), deep=deep,
                  inlined=target.inlined_functions(address))
    if not deep:
        audit.explanation.append("Not a fault about alignment or the stack: crash-triage "
                                 "leaves out the block and spill analysis (spill-audit "
                                 "gives it).")
    return SpillAuditReport(audit, kind, _stack_view(audit, regs, probe, maps), warnings,
                            build_info, python)


def _language(name: str | None, build_info) -> str | None:
    """Who built the function: its mangling first (a Rust symbol in a C
    program, or C++ in Rust's), then what the object records."""
    import re
    if name and (name.startswith("_R") or re.search(r"17h[0-9a-f]{16}E$", name)):
        return "rust"
    if name and name.startswith("_Z"):
        return "c++"
    return build_info.language if build_info else None


def _stack_bounds(frames, maps):
    """The stack the selected thread runs on: anchored at frame 0's CFA (the
    caller's rsp), else the first outer frame's rsp."""
    from ..spill.stack_bounds import thread_stack
    anchors = [f.cfa for f in frames[:1]] + [f.rsp for f in frames[1:3]]
    for anchor in anchors:
        found = thread_stack(anchor, maps)
        if found is not None:
            return found
    return None


def _build_info(path, warnings):
    """What the object records about how it was built (``.comment``,
    DW_AT_producer, Rust codegen-unit names); None without a file."""
    from ..spill.provenance import read_build_info
    if not path:
        return None
    try:
        return read_build_info(target.file_for(path))      # the build that ran, or none
    except GdbextError as exc:
        warnings.append(f"build provenance unreadable: {exc}")
        return None


def _function(address: int, regs: dict[str, int], warnings: list[str]):
    """(FunctionInfo, the function's bytes, the CFA from the unwind table)."""
    from ..spill import cfi
    from ..spill.audit import FunctionInfo

    where = target.locate(address)
    path = where.objfile
    bias = target.load_bias(path) if path else None
    start = end = None
    source = "unknown"
    symbol = None
    cfa = None
    if path and bias is not None:
        link = address - bias
        local = target.file_for(path)       # found already: load_bias read it
        try:
            funcs = elf_file.functions(local)
        except GdbextError as exc:
            funcs = []
            warnings.append(str(exc))
        i = bisect.bisect_right([f.start for f in funcs], link) - 1
        if i >= 0 and funcs[i].start <= link < funcs[i].end:
            start, end, source = funcs[i].start + bias, funcs[i].end + bias, "symbol"
            symbol = funcs[i].name
        try:
            rule = cfi.cfa_rule_at(local, link)
            bounds = (rule.fde_start, rule.fde_end) if rule else None
        except GdbextError:
            rule = bounds = None
        if start is None and bounds:
            start, end, source = bounds[0] + bias, bounds[1] + bias, "fde"
        if rule is not None and not rule.expression and rule.register in regs:
            cfa = regs[rule.register] + rule.offset
    elif path is None:
        warnings.append("the pc is in no known file (JIT code?): no symbol or unwind entry")
    code = None
    if start is not None:
        length = min(end - start, MAX_FUNCTION_BYTES)
        if length < end - start:
            warnings.append(f"function of {end - start} bytes: the first "
                            f"{MAX_FUNCTION_BYTES} are analysed")
        try:
            code = target.read_code(start, length)
        except GdbextError as exc:
            warnings.append(f"function bytes unreadable: {exc}")
    # The ELF symbol names the real function; debug info may name an inlined
    # intrinsic (_mm_loadu_ps) that shares its frame.
    name = symbol or where.symbol or where.function
    return FunctionInfo(name, start, end, source), code, cfa


def _no_access(addr: int, stack, maps) -> str:
    """What an unreadable stack row is: the thread's guard, no mapping, or a
    mapping without read permission."""
    from ..spill.stack_bounds import mapping_at
    if stack is not None and stack.guard_lo is not None and \
            stack.guard_lo <= addr < stack.guard_hi:
        return "guard page"
    if maps is None:
        return "no access"
    return "no access" if mapping_at(addr, maps) is not None else "no mapping"


def _stack_view(audit, regs, readable, maps=None):
    """Quadwords around the faulting slot (or rsp), each with what lies there."""
    from ..spill.report import StackRow

    op = audit.operand
    frame0 = audit.frames[0] if audit.frames else None
    centre = op.effective_address if op.stack_relative and op.effective_address else \
        regs.get("rsp")
    if centre is None:
        return []
    first = (centre & ~0xF) - 0x20
    marks: dict[int, list[str]] = {}

    def mark(addr, text):
        marks.setdefault(addr & ~7, []).append(text)
    if "rsp" in regs:
        mark(regs["rsp"], f"<- rsp ({regs['rsp'] % 16} mod 16)")
    if frame0 and frame0.cfa is not None:
        mark(frame0.cfa, "<- CFA (caller's rsp)")
        mark(frame0.cfa - 8, "return address")
        if audit.pressure:
            for slot in audit.pressure.slots:
                if slot.cfa_relative:
                    stores = [x.pc for x in slot.accesses if x.kind == "store"]
                    mark(frame0.cfa + slot.offset,
                         f"spill slot CFA{slot.offset:+#x}"
                         + (f", stored at {stores[0]:#x}" if stores else ""))
    if op.effective_address is not None and op.size:
        # With ADDRESS the instruction is not the one that faulted.
        first_label, rest = (("operand", "  (operand)") if audit.audited_other
                             else ("FAULT", "  (fault operand)"))
        for a in range(op.effective_address & ~7, op.effective_address + min(op.size, 64), 8):
            mark(a, first_label if a <= op.effective_address < a + 8 else rest)
    rows = []
    for k in range(STACK_VIEW_ROWS):
        addr = first + 8 * k
        try:
            value = int.from_bytes(target.read_bytes(addr, 8), "little")
        except GdbextError:
            value = None
        notes = marks.get(addr, [])
        if not readable(addr):          # gdb may still read it (ptrace, a core's zeros)
            value, notes = None, [_no_access(addr, audit.stack, maps)] + notes
        rows.append(StackRow(addr, value, notes))
    return rows
