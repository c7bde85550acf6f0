"""py-stacks: every thread's Python stack, the GIL holder marked, with
--native the native frames interleaved where the eval loop runs them."""
from __future__ import annotations

from .. import target
from ..errors import GdbextError
from ..knowledge.bounds import hit
from ..render import hexaddr
from . import options
from .base import GdbextCommand, max_frames, threads_and_registers
from ..record import field, record

PARSER = options.py_stacks()    # options.py: shared with the shell CLI

EVAL_FUNCTIONS = ("_PyEval_EvalFrameDefault",)


class PyStacksCommand(GdbextCommand):
    # help: commands/help.py
    NAME = "py-stacks"
    PARSER = PARSER
    NEEDS = ("iced_x86",)

    def run(self, args):
        return analyse(args)


@record
class NativeFrame:
    """A native frame shown under a Python stack (--native)."""
    pc: int
    function: str | None
    objfile: str | None
    evidence: str = "exact"         # "inferred": found by stack scanning

    def to_json(self) -> dict:
        return {"pc": self.pc, "function": self.function, "objfile": self.objfile,
                "evidence": self.evidence}


@record
class ThreadStack:
    """One thread's Python stack, its GIL role and native frames."""
    num: int | None
    lwp: int | None
    python: object                   # cpython.PyThread
    gil: str | None = None           # "holds", "waits"
    native: list[NativeFrame] | None = None
    native_truncated: bool = False
    scanned: int = 0


@record
class PyStacksReport:
    """What py-stacks prints."""
    kind: str
    version: str | None
    stacks: list[ThreadStack] = field(default_factory=list)
    gil: object = None               # cpython.Resource
    warnings: list[str] = field(default_factory=list)
    native: bool = False
    locks: list | None = None        # [cpython.Resource] with --locks

    def to_json(self) -> dict:
        threads = []
        for s in self.stacks:
            entry = {"num": s.num, "lwp": s.lwp, "gil": s.gil,
                     "thread_state": s.python.tstate if s.python else None,
                     "python": [f.to_json() for f in s.python.frames] if s.python else [],
                     "python_truncated": bool(s.python and s.python.truncated),
                     "python_depth": s.python.depth if s.python else None,
                     "python_outer": [f.to_json() for f in s.python.outer] if s.python
                     else [],
                     "python_middle_same": bool(s.python and s.python.middle_same)}
            if s.native is not None:
                entry["native"] = [f.to_json() for f in s.native]
                entry["native_truncated"] = s.native_truncated
                entry["interleaved"] = [_json_line(x) for x in _interleave(s)]
            threads.append(entry)
        return {"schema": "gdbext/py-stacks/1", "target": self.kind,
                "python_version": self.version,
                "gil": self.gil.to_json() if self.gil else None,
                "threads": threads,
                "locks": None if self.locks is None else [r.to_json() for r in self.locks],
                "warnings": self.warnings}

    def to_text(self) -> str:
        from ..runtimes.cpython import collapsed_lines
        holder = self.gil.owner_lwp if self.gil else None
        python = f"CPython {self.version}" if self.version else "Python stacks not read"
        head = f"py-stacks: {python}, {len(self.stacks)} thread(s)"
        if self.gil is not None:
            head += (f"; the GIL is held by LWP {holder} ({self.gil.owner_evidence})"
                     if holder else "; the GIL is not held")
        out = [head]
        for s in self.stacks:
            mark = {"holds": " [holds the GIL]", "waits": " [waits for the GIL]"}.get(s.gil, "")
            num = f"Thread {s.num}" if s.num is not None else "Thread ?"
            out.append(f"\n{num} (LWP {s.lwp if s.lwp else '?'}){mark}:")
            if s.native is None:
                frames = s.python.frames if s.python else []
                if not frames:
                    out.append("  (no Python frames)")
                py = s.python
                out += [f"  {line}" for line in collapsed_lines(
                    frames, py.depth if py else None, py.outer if py else (),
                    py.middle_same if py else False)]
                if py and py.truncated and py.depth is None:
                    out.append(f"  ... {hit('max-frames', len(frames))}")
            else:
                for kind, item, level in _interleave(s):
                    if kind == "py":
                        out.append(f"        (Python) {item.where()}")
                    else:
                        tag = "  [inferred: found by stack scanning]" \
                            if item.evidence == "inferred" else ""
                        where = f" from {item.objfile}" if item.objfile else ""
                        out.append(f"  #{level:<2} {hexaddr(item.pc)} in "
                                   f"{item.function or '??'} (){where}{tag}")
            for w in (s.python.warnings if s.python else []):
                out.append(f"  warning: {w}")
        if self.locks is not None:
            out.append("\nLocks:" if self.locks else "\nLocks: none found")
            for r in self.locks:
                out.append(f"  {r.name}")
                if r.kind in ("condition", "semaphore"):     # notified, or released, by anyone
                    out.append("    held by    no one: any thread may "
                               + ("release it" if r.kind == "semaphore" else "notify it"))
                else:
                    owner = f"LWP {r.owner_lwp} ({r.owner_evidence}: {r.owner_why})" \
                        if r.owner_lwp else "unknown (no owner found)"
                    out.append(f"    held by    {owner}")
                for lwp, evidence, why in r.waiters:
                    out.append(f"    waited for by LWP {lwp} ({evidence}: {why})")
        for w in self.warnings:
            out.append(f"warning: {w}")
        return "\n".join(out)


def _json_line(item) -> dict:
    kind, frame, level = item
    out = {"kind": "python" if kind == "py" else "native", **frame.to_json()}
    if level is not None:
        out["level"] = level
    return out


def _interleave(s: ThreadStack):
    """(kind, frame, native level) innermost first: after each eval-loop
    native frame, the Python frames it runs -- up to and including the
    frame marked ``entry`` (where C called into the eval loop)."""
    pyframes = list(s.python.frames) if s.python else []
    groups, current = [], []
    for f in pyframes:
        current.append(f)
        if f.entry:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    native = s.native or []
    for level, frame in enumerate(native):
        yield "native", frame, level
        if frame.function in EVAL_FUNCTIONS and groups:
            for f in groups.pop(0):
                yield "py", f, None
    for group in groups:             # no eval frame left to hang them on
        for f in group:
            yield "py", f, None


def analyse(args) -> PyStacksReport:
    from ..runtimes import cpython
    from . import python_runtime

    kind = threads_and_registers("attach PID, run the program, or core-file CORE first")
    frames = max_frames(args)
    words = " ".join(args.threads).split()
    try:
        wanted = {int(t, 10) for t in words}
    except ValueError:
        raise GdbextError(f"THREAD must be gdb thread numbers, not {' '.join(words)}") from None
    ids = target.thread_ids()
    unknown = wanted - {num for num, _ in ids}
    if unknown:
        raise GdbextError(f"no thread {', '.join(map(str, sorted(unknown)))} "
                          "(see 'info threads')")
    report = PyStacksReport(kind, None, native=args.native)
    try:
        runtime = python_runtime.open_runtime()
    except cpython.NotPython as exc:
        raise GdbextError("not a CPython process: no _PyRuntime in the executable or a "
                          "loaded libpython") from None
    except cpython.CPythonError as exc:
        runtime = None
        report.warnings.append(f"{exc}")
    pythreads = []
    if runtime is not None:
        report.version = runtime.version
        most = target.bound("max-threads")
        pythreads = runtime.threads(frames, most)
        if len(pythreads) >= most:
            report.warnings.append(f"read {len(pythreads)} Python thread states: "
                                   f"{hit('max-threads', most)}")
    by_lwp = {t.lwp: t for t in pythreads if t.lwp}
    if runtime is not None:
        report.gil = runtime.gil(pythreads, {})
        # Only while someone holds the GIL can a thread wait for it: frame 0's
        # registers (a thread switch each) are read then, not for an idle process.
        regs = None
        if args.locks or (report.gil is not None and report.gil.owner_lwp is not None):
            regs = target.frame0_registers()
            report.gil = runtime.gil(pythreads, regs)
        if args.locks:
            report.locks = runtime.locks(pythreads, regs)
    holder = report.gil.owner_lwp if report.gil else None
    waiting = {w[0] for w in report.gil.waiters} if report.gil else set()
    tools: dict = {}                # the stack scan's readers, shared by the threads
    for num, lwp in ids:
        if wanted and num not in wanted:
            continue
        py = by_lwp.get(lwp)
        if py is None and not args.native and not wanted:
            continue                # a thread with no Python state: nothing to show
        stack = ThreadStack(num, lwp, py,
                            "holds" if lwp == holder else "waits" if lwp in waiting else None)
        if args.native:
            _native(stack, num, frames, tools)
        report.stacks.append(stack)
    lwps = {lwp for _, lwp in ids}
    orphans = [t for t in pythreads if t.lwp not in lwps]
    if orphans and not wanted:
        for t in orphans:            # a thread state whose thread is gone (or not yet there)
            report.stacks.append(ThreadStack(None, t.lwp, t))
    if runtime is not None and not pythreads:
        report.warnings.append("the interpreter has no thread states")
    return report


def _native(stack: ThreadStack, num: int, frames: int, tools: dict) -> None:
    from .frame_walk import scan_above
    native, sps = target.frames_with_sp(num, frames)
    keep, scanned = scan_above([f.pc for f in native], [f.function for f in native], sps,
                               frames, tools)
    stack.native = [NativeFrame(f.pc, f.function, f.objfile) for f in native[:keep]]
    for s in scanned:
        loc = target.locate(s.pc)
        stack.native.append(NativeFrame(s.pc, loc.symbol, loc.objfile, "inferred"))
    stack.scanned = len(scanned)
    stack.native_truncated = len(stack.native) >= frames
