"""crash-triage: run what the stop calls for, and sign the crash."""
from __future__ import annotations

import importlib
import traceback

from .. import target
from ..errors import GdbextError, UndecodableError, UnmappedCodeError
from . import options
from .base import GdbextCommand, max_frames, threads_and_registers

PARSER = options.crash_triage()    # options.py: shared with the shell CLI

# command -> (module with PARSER and analyse(), takes --max-frames); imported
# when the stop calls for it: a crash never pays for deadlock-graph's modules.
STEPS = {"isa-check": ("isa_check", False), "spill-audit": ("spill_audit", True),
         "deadlock-graph": ("deadlock_graph", True)}


class CrashTriageCommand(GdbextCommand):
    # help: commands/help.py
    NAME = "crash-triage"
    PARSER = PARSER
    NEEDS = ("iced_x86", "tabulate", "elftools", "archspec")

    def run(self, args):
        return analyse(args)


def analyse(args):
    """The crash-triage report for parsed ``args``."""
    from ..triage import evidence as _evidence
    _evidence.PYTHON_STACK_READER = _python_stack     # imported only for a Python process
    from ..knowledge.triage import SIGNATURE_FRAMES, SIGNATURE_HANG_FRAMES
    from ..triage.report import TriageReport
    from ..triage.stop import classify

    from ..triage import evidence
    kind = threads_and_registers("attach PID, run the program, or core-file CORE first")
    evidence.reset()
    info = target.stop_signal()
    if info is None and kind == "core":
        info = target.core_signal()         # qemu-user cores: pr_cursig, no NT_SIGINFO
    stop = classify(info, target.pid() if kind != "remote" else None)
    if kind == "remote" and stop.source == "pr_cursig":     # qemu's stub: no siginfo served
        from ..record import replace
        stop = replace(stop, source="remote-stop")
    report = TriageReport(kind, stop, target.selected_thread_identity())
    target.select_newest_frame()        # analyse the stop, not the frame the user chose
    bound = max_frames(args)
    start_level = 0
    context = _interrupted(report, bound) if stop.origin in ("self", "external") \
        and stop.signo is not None else None
    if context is not None:             # a handler aborted on a fault: sign the fault
        report.handler = _handler(context.level)
        stop = report.stop = _fault_stop(context)
        start_level = context.level + 1
        report.interrupted = context
    failures = {name: _run_step(report, name, args) for name in stop.commands}
    if isinstance(failures.get("spill-audit"), UndecodableError):
        _run_step(report, "isa-check", args)
    elif _jumped_to(failures.get("spill-audit"), stop):
        report.finding = _bad_jump(failures["spill-audit"].address)
        report.errors = [e for e in report.errors if e[0] != "spill-audit"]   # explained
    if "deadlock-graph" in report.reports:
        report.frames = _hang_frames(report.reports["deadlock-graph"], report.thread,
                                     SIGNATURE_HANG_FRAMES)
    else:
        from .frame_walk import selected_frames
        raw = selected_frames(bound, report.warnings, start_level)
        report.scanned = sum(1 for f in raw if f.evidence == "inferred")
        _explain(report, raw, context, bound)
        report.frames = _signature_frames(report, raw, SIGNATURE_FRAMES)
        if report.finding is not None:      # a tail call to a bad pc: name who jumped
            from ..triage.jump import signature_frames
            report.frames = signature_frames(report.frames, report.finding)
    report.signature = _signature(report)
    if report.handler and report.handler.get("reraised") and report.interpreter:
        report.handler.update(runtime="cpython-faulthandler", runtime_certainty="inferred")
        report.handler["what"] += (" - in a Python process most likely CPython's "
                                   "faulthandler (python -X faulthandler, pytest), which "
                                   "printed the Python traceback on stderr first; inferred")
    if not args.no_metadata:
        from ..triage.metadata import safe_collect
        report.metadata = safe_collect(report.warnings)
    return report


def _python_stack(*args):
    from . import python_runtime
    return python_runtime.triage_view(*args)


def _interrupted(report, bound: int):
    from ..triage import evidence
    try:
        return evidence.interrupted_fault(bound, report.warnings, report.stop.signo)
    except GdbextError as exc:
        report.warnings.append(f"signal frames: {exc}")
        return None


def _handler(level: int) -> dict | None:
    """The signal handler that ran on the fault: the outermost named frame
    below the <signal handler called> frame, and whose handler it is."""
    from ..runtimes import rust
    from ..triage.signature import normalise_function
    try:
        frames, _ = target.stack_frames(level)
    except GdbextError:
        return None
    named = [normalise_function(f.function, f.objfile) for f in frames
             if f.level < level and f.function]
    if not named:
        return None
    function = named[-1]
    for name in reversed(named):
        if rust.OVERFLOW_HANDLER.match(name):
            from ..triage.evidence import rust_thread_name
            who, source = rust_thread_name(None, [])
            return {"function": name, "runtime": "rust-std", "thread": who,
                    "thread_source": source,
                    "what": f"Rust std's stack-overflow handler: it printed \"thread "
                            f"'{who or '...'}' has overflowed its stack\" and aborted"}
    from ..knowledge.skip_frames import is_machinery
    if is_machinery(function):      # raise, pthread_kill: the handler tail-called it
        return {"function": function, "runtime": None, "reraised": True,
                "what": "a signal handler that re-raised the signal (it tail-called "
                        f"{function}, so its own frame is gone)"}
    return {"function": function, "runtime": None, "what": "a signal handler"}


def _fault_stop(ctx):
    from ..knowledge import signals
    from ..knowledge.triage import FAULT_PLANS
    from ..triage.stop import Stop
    name = signals.signal_name(ctx.signo)
    klass = FAULT_PLANS.get(name, (name, ()))[0]
    return Stop(ctx.signo, ctx.code, ctx.addr, None, "fault", klass, (), "signal-frame")


def _explain(report, raw, context, bound: int) -> None:
    """The reason (a runtime's own words) or the fault's class, each reader
    guarded: one that breaks is a warning."""
    from ..triage import evidence
    from ..triage.fault_class import classify as classify_fault, for_abort
    from ..triage.signature import normalise_function, smashed_at
    stop = report.stop
    names = [normalise_function(f.function, f.objfile) for f in raw]
    objects = [f.objfile for f in raw]
    smashed = smashed_at([(f.pc, f.function, f.objfile) for f in raw], _maps_something())
    if smashed is not None:
        report.smashed = {"frame": raw[smashed].level, "return_address": raw[smashed].pc}
    try:
        report.interpreter = evidence.python_process(objects)
    except GdbextError:
        report.interpreter = None
    if report.interpreter:
        from ..triage.python import user_frames
        mine = user_frames(_pairs(raw))
        report.python = evidence.python_stack(report.thread, mine[0][1] if mine else None,
                                              bound, report.warnings)
    try:
        if stop.origin == "fault" and stop.klass == "SIGSYS":
            report.fault_facts = evidence.seccomp_facts(stop)
            report.fault_class = classify_fault(report.fault_facts)
        elif stop.origin == "fault" and stop.klass in ("SIGSEGV", "SIGBUS", "SIGFPE"):
            spill = report.reports.get("spill-audit")
            spill_verdict = spill.verdict if spill is not None else None
            if spill_verdict in (None, "not-alignment", "stack-overflow",
                                 "non-canonical-address") or stop.code is None:
                regs = context.regs if context is not None else _frame0_registers()
                facts = evidence.fault_facts(stop.signo, stop.code, stop.addr,
                                             regs.get("rip"), regs,
                                             True if spill_verdict == "stack-overflow"
                                             else None, report.finding)
                report.fault_facts = facts
                report.fault_class = classify_fault(facts)
                report.warnings.extend(report.fault_class.warnings)
                if stop.code is None:   # pr_cursig only: what the instruction shows
                    report.fault_class.explanation += (
                        " (inferred from the instruction and registers: the core has no "
                        "siginfo, so no si_code or fault address)")
        elif stop.origin in ("self", "external") and stop.name == "SIGABRT":
            reason = (evidence.glibc_abort(report.warnings)
                      or evidence.cxx_exception(names, objects, report.warnings,
                                                [f.pc for f in raw])
                      or evidence.rust_panic(names, report.thread, report.warnings)
                      or evidence.python_fatal(names, report.interpreter, raw))
            report.reason = reason
            if reason is not None and reason.verdict == "assertion-failed" and \
                    reason.runtime == "glibc" and _asserted_in_libc(names, objects):
                reason.details["inside"] = "glibc"
            if reason is not None:
                report.fault_class = for_abort(reason.verdict, reason.details)
    except Exception as exc:  # noqa: BLE001 - a broken reader must not hide the frames
        if target.is_debug_enabled():
            report.warnings.append(traceback.format_exc())
        report.warnings.append(f"explaining the crash failed: {type(exc).__name__}: {exc}")


def _asserted_in_libc(names, objects) -> bool:
    """The code that called __assert_fail is libc's own (pthread_mutex_lock's
    checks...): a broken precondition of glibc, not the program's assertion."""
    from ..knowledge.skip_frames import is_machinery
    last = max((i for i, n in enumerate(names[:16]) if n and "assert" in n and
                is_machinery(n)), default=None)
    if last is None or last + 1 >= len(objects):
        return False
    caller = objects[last + 1] or ""
    return "/libc.so" in caller or "/libc-" in caller or "/libpthread" in caller


def _maps_something():
    """``maps(pc)``: a loaded file or a readable mapping holds ``pc``."""
    probe = target.accessible_probe()
    return lambda pc: target.objfile_for(pc) is not None or probe(pc)


def _frame0_registers() -> dict:
    try:
        return target.selected_registers()
    except GdbextError:
        return {}


def _signature_frames(report, raw, limit: int):
    from ..triage.signature import meaningful_frames
    if report.smashed is not None:      # the frames past the overwritten return are garbage
        raw = [f for f in raw if f.level < report.smashed["frame"]]
    skip = r"/(?:python3?(?:\.\d+)?[^/]*|libpython3\.\d+[^/]*)$" if report.interpreter \
        else None
    named = _pairs(raw)
    if report.python is not None:       # a Python process: its Python line signs too
        from ..triage.python import signature_frames
        frames = signature_frames(named, report.python, limit, skip)   # named frames only
        if frames is not None:
            return frames
    return meaningful_frames(_module_offsets(raw, named), limit, skip)


def _module_offsets(raw, pairs):
    """A frame with no symbol in a file is ``module+0xoffset`` (the Breakpad/
    Socorro convention; the file's own address, stable across runs of one
    build), not just its module: two unnamed sites of one stripped program
    sign apart."""
    out = []
    for f, (function, objfile) in zip(raw, pairs):
        if not function and objfile:
            function = target.module_offset(f.pc) or function
        out.append((function, objfile))
    return out


def _pairs(raw) -> list[tuple[str | None, str | None]]:
    """(function, objfile) of each frame; an unnamed frame is named by its file."""
    return [(f.function, f.objfile or (None if f.function else target.objfile_for(f.pc)))
            for f in raw]


def _run_step(report, name: str, args) -> Exception | None:
    """Run one analysis; its failure is an error line, not a failed triage,
    and is returned so the caller can act on its kind."""
    module_name, bounded = STEPS[name]
    argv = ["--max-frames", str(args.max_frames)] if bounded and args.max_frames else []
    try:
        module = importlib.import_module(f"{__package__}.{module_name}")
        parsed = module.PARSER.parse_args(argv)
        report.reports[name] = (module.analyse(parsed) if name == "deadlock-graph" else
                                module.analyse(parsed, embedded=True))
        return None
    except GdbextError as exc:
        report.errors.append((name, str(exc)))
        return exc
    except Exception as exc:  # one broken analysis must not hide the others
        if target.is_debug_enabled():
            report.warnings.append(traceback.format_exc())
        report.errors.append((name, f"internal error: {type(exc).__name__}: {exc}"))
        return exc
    finally:                            # deadlock-graph walks every thread
        target.select_newest_frame(report.thread and report.thread["num"])


def _jumped_to(failure, stop) -> bool:
    """The pc is unreadable and the fault was fetching it (si_addr is the
    pc).  A core's undumped code is no such case: gdb reads it as zeros."""
    return isinstance(failure, UnmappedCodeError) and stop.addr == failure.address


def _bad_jump(address: int):
    """Why the pc is nowhere: the word at rsp and the call before it."""
    from ..triage.evidence import bad_jump
    return bad_jump(address)


def _hang_frames(deadlock, me: dict | None, limit: int):
    """One wait site per thread that matters (``deadlock.hang_threads()``:
    the cycles' members, else the waiters on a lock whose owner is gone,
    else the chains that end at a stalled holder), else the thread that got
    the stop (``me``).  Sorted: wait sites of several threads have no call
    order."""
    from ..triage.signature import meaningful_frames
    graph = deadlock.graph
    states = [graph.by_lwp[l] for l in deadlock.hang_threads() if l in graph.by_lwp]
    if not states:
        states = [s for s in graph.states if me and s.lwp == me["lwp"]] or graph.states[:1]
    from ..triage.python import signature_name
    from ..triage.signature import NamedFrame
    # a Python thread signs with its Python wait site: two hangs in the same
    # lock acquire of the interpreter are two bugs at two lines of the program
    sites = {NamedFrame(signature_name(s.python_site), None) for s in states
             if s.python_site is not None}
    walks = {tuple((f.function, f.objfile) for f in s.frames) for s in states
             if s.frames and s.python_site is None}
    sites |= {meaningful_frames(walk, 1)[0] for walk in walks}    # 10,000 waiters: one walk
    return sorted(sites, key=lambda f: (f.function, f.object or ""))[:limit]


def _signature(report):
    from ..triage.signature import Signature, deadlock_key, isa_key, spill_key
    keys = {"isa-check": isa_key, "spill-audit": spill_key, "deadlock-graph": deadlock_key}
    name = next(iter(report.reports), None)
    if report.reason is not None:
        key = report.reason.key
    elif report.finding is not None:    # how the pc got nowhere: call, tail-call, jump
        key = report.finding.key
    elif report.fault_class is not None and report.stop.origin == "fault" and \
            report.verdict == report.fault_class.name:
        key = report.fault_class.name
        called = report.fault_facts.syscall if report.fault_facts is not None else None
        if called:                      # two refused system calls are two bugs
            key += f":{called['name'] or called['number']}"
    elif name:
        key = keys[name](report.report_json(name))
    else:
        key = (report.stop.code_name or "") if report.stop.origin == "fault" else ""
    return Signature(report.stop.klass, report.verdict, key,
                     tuple(f.function for f in report.frames))
