"""The frames every report shows: gdb's unwinder, and where it gives up (a
pc of 0, as above an OpenBLAS asm kernel that reuses rsp), the callers found
by stack scanning (unwind/stack_scan.py), marked inferred.  One walk for
crash-triage, isa-check, spill-audit and the Python reader's native view.

The readers the scan needs (executable mappings, the CFI's CFA rule, a
function's start) are built per walk and cached per object."""
from __future__ import annotations

import bisect

from .. import target
from ..errors import GdbextError
from ..record import replace
from ..knowledge.bounds import hit


def selected_frames(bound: int, warnings: list[str], start_level: int = 0,
                    what: str = "the stack walk") -> list[target.StackFrame]:
    """The selected thread's real frames from ``start_level`` (0: the newest;
    a signal handler's interrupted frame otherwise), innermost first, then
    the frames found by stack scanning where gdb's unwinder gave up.  A
    failure is a warning and no frames; the walk cut by ``bound`` says so.
    Walked once per command: crash-triage's embedded spill-audit or
    isa-check asks again for the same thread."""
    thread = target.selected_thread_identity()
    memo = target.command_memo()
    key = ("selected_frames", thread and thread["num"], start_level, bound)
    if key not in memo:
        found: list[str] = []
        memo[key] = (*_walk(bound, found, start_level), found)
    frames, cut, found = memo[key]
    warnings.extend(found)
    if cut:
        warnings.append(f"{what} {hit('max-frames', bound)}")
    return list(frames)


def _walk(bound: int, warnings: list[str], start_level: int
          ) -> tuple[list[target.StackFrame], bool]:
    """(frames, whether the walk stopped at ``bound`` with no scan)."""
    regs: dict[str, int] = {}
    try:
        if start_level:
            target.select_frame_level(start_level)
        frames, cut = target.stack_frames(bound)
        # Frame 0 outside every unwind entry: gdb's callers are a guess, however
        # many (a guess that runs on through a buffer of doubles can fill
        # max-frames with 0x3ff0000000000000).  Its registers tell where its
        # own code keeps the return address.
        guessed = _guessed_caller(frames)
        if guessed:
            regs = target.selected_registers()
    except GdbextError as exc:
        warnings.append(f"no frames: {exc}")
        return [], False
    finally:
        if start_level:
            target.select_newest_frame()
    if guessed or (not cut and unwinder_gave_up(frames)):
        try:
            frames = with_scanned(frames[:1] if guessed else frames, bound, cut=guessed,
                                  entry=_entry_slot(frames[0].pc, regs) if guessed else None)
        except GdbextError as exc:
            warnings.append(f"stack scanning: {exc}")
        return frames, False
    return frames, cut


def _entry_slot(pc: int, regs: dict[str, int]) -> tuple[int, str] | None:
    """Where the code of the function holding ``pc`` (no unwind entry) keeps
    its return address at ``pc``, as (stack address, how): its ELF symbol's
    bytes read by unwind/asm_prologue.py, with frame 0's registers."""
    from .. import elf_file
    from ..unwind.asm_prologue import return_address_rule
    found = _object_of()(pc)
    if not found:
        return None
    path, bias = found
    try:
        functions = elf_file.functions(target.file_for(path))
    except GdbextError:
        return None
    i = bisect.bisect_right(functions, (pc - bias, float("inf"))) - 1
    if i < 0 or not functions[i].start <= pc - bias < functions[i].end:
        return None
    func = functions[i]
    try:
        code = target.read_bytes(func.start + bias, func.end - func.start)
    except GdbextError:
        return None
    rule = return_address_rule(code, func.start + bias, pc)
    if rule is None or rule.register not in regs:
        return None
    return ((regs[rule.register] + rule.offset) & 0xFFFFFFFFFFFFFFFF,
            f"at {rule.how}")


def _guessed_caller(frames) -> bool:
    """Frame 0 lies in a loaded file whose unwind table has no entry for it
    (OpenBLAS's asm kernels): gdb's callers for it are the prologue
    analyser's guess, which may land anywhere -- at a pc that maps nothing,
    or inside a library (`?? < do_lookup_x` or `vfork@plt` above
    dgemm_kernel_PILEDRIVER, depending on what the stack held).  The scan
    starts at frame 0 instead, its frames marked inferred."""
    return len(frames) > 1 and _uncovered(frames[0].pc)


def _uncovered(pc: int) -> bool:
    """``pc`` lies in a loaded file whose unwind index has no entry for it."""
    from ..spill import cfi
    found = _object_of()(pc)
    if not found:
        return False
    path, bias = found
    try:
        return cfi.uncovered(path, pc - bias)
    except GdbextError:
        return False


def unwinder_gave_up(frames) -> bool:
    """Frame 0 without an unwind entry (_guessed_caller).  A caller frame at
    pc 0: an asm kernel reused rsp (OpenBLAS) and gdb had no CFI to leave
    it.  A caller at a nonzero pc that maps nothing is
    the same when the frame below it has no CFI either (gdb guessed its
    caller from rbp or a prologue it could not read: OpenBLAS's
    single-threaded path gives a pc of 0x28efc360), but a smashed return
    address when that frame's CFI located it: the frames past it are
    garbage, and a scan would dress up stale ones (triage/signature.py:
    smashed_at)."""
    if _guessed_caller(frames):
        return True                 # frame 0 has no unwind entry: gdb's callers are a guess
    for below, f in zip(frames, frames[1:]):
        if f.pc == 0:
            return True
        if f.objfile is None and not f.function and target.objfile_for(f.pc) is None:
            return not _has_cfi(below.pc)
    return False


def _has_cfi(pc: int) -> bool:
    """Whether an unwind entry (.eh_frame FDE) covers ``pc``; a pc in no
    loaded file has none."""
    from ..spill import cfi
    found = _object_of()(pc)
    if not found:
        return False
    path, bias = found
    try:
        return cfi.fde_bounds(path, pc - bias) is not None
    except GdbextError:
        return False


def with_scanned(frames, bound: int, tools: dict | None = None, cut: bool = False,
                 entry: tuple[int, str] | None = None):
    """gdb's frames (target.StackFrame) up to where its unwinder failed, then
    those found by scanning the stack above, evidence "inferred"."""
    keep, found = scan_above([f.pc for f in frames], [f.function for f in frames],
                             [f.rsp for f in frames], bound, tools, cut, entry)
    out = list(frames[:keep])
    if found and out and out[-1].cfa is not None and not _has_cfi(out[-1].pc):
        # gdb placed this frame's caller by a guess (no unwind entry): its CFA
        # is that guess, not evidence of how the frame was entered.
        out[-1] = replace(out[-1], cfa=None)
    level = out[-1].level if out else 0
    for i, s in enumerate(found, 1):
        loc = target.locate(s.pc)
        out.append(target.StackFrame(level + i, s.pc, s.slot + 8, None, loc.symbol,
                                     loc.objfile, evidence="inferred"))
    return out


def scan_above(pcs: list[int], functions: list[str | None], sps: list[int | None],
               bound: int, tools: dict | None = None, cut: bool = False,
               entry: tuple[int, str] | None = None):
    """unwind/stack_scan.recover over the target: (frames of gdb's to keep,
    the ScannedFrames above them).  ``tools``: a dict kept across calls of
    one command (several threads) to share the readers' caches.  Frame 0
    with no unwind entry (_guessed_caller) is the only frame of gdb's kept,
    as in selected_frames; its registers are then read from the selected
    frame, which must be that thread's newest (target.frames_with_sp leaves
    it so)."""
    from ..unwind.stack_scan import recover
    if not cut and len(pcs) > 1 and _uncovered(pcs[0]):
        cut, pcs, functions, sps = True, pcs[:1], functions[:1], sps[:1]
        try:
            entry = _entry_slot(pcs[0], target.selected_registers())
        except GdbextError:
            entry = None
    tools = scan_tools() if tools is None else tools
    if not tools:
        tools.update(scan_tools())
    return recover(pcs, functions, sps, target.read_bytes, tools["executable"], bound,
                   stack_end=target.mapping_end, cfa_offset=tools["cfa_offset"],
                   function_start=tools["function_start"], cut=cut, entry=entry)


def scan_tools() -> dict:
    return {"executable": executable_predicate(), "cfa_offset": cfa_offset_reader(),
            "function_start": function_start_reader()}


def executable_predicate():
    ranges = target.executable_ranges()
    starts = [lo for lo, _ in ranges]

    def executable(address: int) -> bool:
        i = bisect.bisect_right(starts, address) - 1
        return i >= 0 and ranges[i][0] <= address < ranges[i][1]
    return executable


def _object_of():
    """``object_of(pc) -> (path, load bias) | None``, cached per object."""
    loaded = target.object_sections()
    biases: dict[str, int | None] = {}

    def object_of(pc: int):
        path = target.objfile_for(pc)
        if not path:
            return None
        if path not in biases:
            biases[path] = target.load_bias(path, loaded)
        return None if biases[path] is None else (path, biases[path])
    return object_of


def function_start_reader():
    """``function_start(pc)``: the start of the function holding pc, from
    its FDE (.eh_frame, no debug info needed), else its ELF symbol."""
    from ..spill import cfi
    object_of = _object_of()
    cache: dict[int, int | None] = {}

    def function_start(pc: int) -> int | None:
        if pc in cache:
            return cache[pc]
        start = None
        found = object_of(pc)
        if found:
            path, bias = found
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
    object_of = _object_of()
    cache: dict[int, int | None] = {}

    def cfa_offset(pc: int) -> int | None:
        if pc not in cache:
            cache[pc] = None
            found = object_of(pc)
            if found:
                path, bias = found
                try:
                    rule = cfi.cfa_rule_at(path, pc - bias - 1)
                except GdbextError:
                    rule = None
                if rule and not rule.expression and rule.register == "rsp":
                    cache[pc] = rule.offset
        return cache[pc]
    return cfa_offset

