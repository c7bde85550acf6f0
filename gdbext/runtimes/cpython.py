"""CPython in memory: thread states, Python frames, the GIL, threading locks.

A pure reader over ``read(address, length) -> bytes`` and the run-time
addresses of two exported symbols, ``_PyRuntime`` and ``Py_Version`` (in the
``.dynsym`` of a statically linked interpreter such as Debian's
/usr/bin/python3.11, or of libpython3.X.so).  No gdb, no debug info: layouts
are data (cpython_layouts.py, citing CPython's headers at the tag; 3.13+ reads
``_Py_DebugOffsets`` from the target).  Versions read: 3.11, 3.12 (tables),
3.13, 3.14 (``_Py_DebugOffsets``); anything else is ``UnsupportedVersion``.

API (what deadlock-graph, crash-triage and py-stacks call)
----------------------------------------------------------
``open_runtime(read, symbols) -> Runtime``
    ``symbols``: {"_PyRuntime": addr, "Py_Version": addr}.  Raises
    ``NotPython`` (no ``_PyRuntime``), ``UnsupportedVersion`` (say which), or
    ``CorruptRuntime`` (the identity check failed: 3.11/3.12
    ``interp->runtime == &_PyRuntime``, 3.13+ the ``xdebugpy`` cookie).
``Runtime.threads(max_frames, max_threads) -> list[PyThread]``
    Every thread state of every interpreter: ``lwp`` (``native_thread_id``),
    ``pthread`` (``thread_id``), ``tstate`` address and its Python frames
    innermost first (``PyFrame``: name, qualname, filename, line, ``entry``
    -- the frame a C call into the eval loop started, where ``--native``
    interleaves).  Bad pointers and cycles end a chain with a warning in
    ``PyThread.warnings``; nothing raises for them.
``Runtime.gil(threads, regs_by_lwp) -> Resource | None``
    The GIL as a resource: ``owner_lwp`` = ``last_holder``'s LWP when
    ``locked`` (evidence ``exact``: read from the runtime whose identity was
    checked), ``waiters`` = threads whose frame-0 futex word lies in the GIL's
    ``cond``/``mutex`` (``exact``: the address), i.e. parked in ``take_gil``.
    ``regs_by_lwp``: {lwp: {"orig_rax", "rdi", ...}} of frame 0.
``Runtime.locks(threads, regs_by_lwp) -> list[Resource]``
    ``threading.Lock``/``RLock`` objects the threads wait for or hold.  A
    waiter: its futex word is the lock's ``sem_t`` (``lock_lock``), the lock
    found on the waiting frame's value stack (``exact`` match of the word);
    or, where the lock is a ``PyMutex`` (Debian's 3.13.5 ``_thread.lock``
    embeds one; a PyMutex-based ``PyThread_type_lock`` is pointed at), the
    thread sleeps on its own semaphore in ``_PyParkingLot_Park`` and the
    parking lot's wait entry beside that semaphore names the PyMutex
    (``exact`` match of that address).
    An RLock's owner: ``rlock_owner`` (a pthread_t -> LWP, ``exact``).  A
    plain Lock has no owner field: a thread holds it when a frame's value
    stack keeps the lock's bound ``__exit__`` (an active ``with L:``) --
    ``inferred``, with that evidence.  ``Thread.join`` waits on the joined
    thread's ``_tstate_lock``, whose owner is exact on 3.11/3.12: the
    thread state's ``on_delete_data`` is a weakref to it.
``Resource``: kind ("gil", "lock", "rlock"), address, name, ``owner_lwp``,
    ``owner_evidence`` ("exact"/"inferred"/None), ``owner_why``, ``waiters``
    [(lwp, evidence, why)].  Owners that stay unknown are None: say so.
``line_for(linetable, firstlineno, offset_units)``: PEP 626 line tables
    (Objects/locations.md; the format of 3.11 to 3.14).
"""
from __future__ import annotations

import struct
from collections.abc import Callable

from . import cpython_layouts as L
from ..record import field, record

Read = Callable[[int, int], bytes]

MAX_STRING = 1024            # characters read of a name or a file name
MAX_LINETABLE = 1 << 16      # bytes of co_linetable read
MAX_INTERPRETERS = 64
SYS_FUTEX = 202


class CPythonError(Exception):
    """Why the Python side of a report is missing: one line for a warning."""


class NotPython(CPythonError):
    pass


class UnsupportedVersion(CPythonError):
    pass


class CorruptRuntime(CPythonError):
    pass


@record
class PyFrame:
    """One Python frame: function, file and line."""
    address: int
    name: str | None
    qualname: str | None
    filename: str | None
    line: int | None
    entry: bool = False          # the eval loop was entered from C at this frame
    code: int = 0

    def to_json(self) -> dict:
        return {"address": self.address, "function": self.qualname or self.name,
                "file": self.filename, "line": self.line, "entry": self.entry}

    def where(self) -> str:
        line = "?" if self.line is None else self.line
        return f"{self.filename or '?'}:{line} in {self.qualname or self.name or '?'}"


@record
class PyThread:
    """One Python thread state and its frames."""
    tstate: int
    lwp: int | None
    pthread: int
    interpreter: int
    frames: list[PyFrame] = field(default_factory=list)
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)
    # Past ``frames`` (max-frames), the chain is still followed to its end
    # (up to MAX_DEPTH): ``depth`` Python frames in all, the outermost
    # ``outer``, and ``middle_same`` when every frame between is the
    # innermost kept frame's code location again (a recursion).
    depth: int | None = None
    outer: list[PyFrame] = field(default_factory=list)
    middle_same: bool = False


MAX_DEPTH = 1_000_000        # Python frames followed past max-frames (a deep recursion)
OUTER_FRAMES = 6             # the outermost frames kept: where a recursion was entered
DEFAULT_RECURSION_LIMIT = 1000   # Py_DEFAULT_RECURSION_LIMIT (Include/internal/pycore_ceval.h)


# The standard library's waits through threading.Condition, by the caller's
# qualname (CPython 3.11-3.14 Lib/threading.py, Lib/queue.py): its module.
CONDITION_USERS = {"Condition.wait_for": "threading", "Event.wait": "threading",
                   "Semaphore.acquire": "threading", "Barrier.wait": "threading",
                   "Barrier._wait": "threading", "Barrier._enter": "threading",
                   "Queue.get": "queue", "Queue.put": "queue", "Queue.join": "queue"}


@record
class Resource:
    """The GIL or a threading lock, and its owner."""
    kind: str                    # "gil", "lock", "rlock", "condition", "semaphore"
    address: int
    name: str
    owner_lwp: int | None = None
    owner_evidence: str | None = None     # "exact" / "inferred"
    owner_why: str | None = None
    waiters: list[tuple[int, str, str]] = field(default_factory=list)  # (lwp, evidence, why)
    futex: int | None = None     # the futex word a waiter sleeps on (sem_t, gil.cond)
    mutex: int | None = None     # a PyMutex (3.13+): waiters park on semaphores of their own
    owner_pthread: int | None = None  # an RLock's rlock_owner that is no thread state here
    owner_count: int | None = None

    def to_json(self) -> dict:
        return {"kind": self.kind, "address": self.address, "name": self.name,
                "owner": self.owner_lwp, "owner_evidence": self.owner_evidence,
                "owner_why": self.owner_why,
                "waiters": [{"lwp": w, "evidence": e, "why": y} for w, e, y in self.waiters]}


def _u(data: bytes, offset: int, size: int) -> int:
    return int.from_bytes(data[offset:offset + size], "little")


def version_of(hexversion: int) -> tuple[int, int, int]:
    return hexversion >> 24 & 0xFF, hexversion >> 16 & 0xFF, hexversion >> 8 & 0xFF


def open_runtime(read: Read, symbols: dict[str, int], where: str | None = None) -> "Runtime":
    """``where``: the object that exports _PyRuntime, whose name (python3.10,
    libpython3.10.so.1.0) names a version the memory does not."""
    address = symbols.get("_PyRuntime")
    if not address:
        raise NotPython("no _PyRuntime: not a CPython process")
    hexversion = None
    if symbols.get("Py_Version"):          # exported since 3.11 (Include/pylifecycle.h)
        try:
            hexversion = _u(read(symbols["Py_Version"], 4), 0, 4)
        except Exception:
            hexversion = None
    head = _safe_read(read, address, 24)
    if head is not None and head[:8] == L.DEBUG_COOKIE:
        hexversion = _u(head, 8, 8)        # _Py_DebugOffsets.version
    if not hexversion or hexversion >> 24 != 3:
        import re
        named = re.search(r"python(3\.\d+)", (where or "").rpartition("/")[2])
        who = (f"CPython {named.group(1)} (so named by {where.rpartition('/')[2]}; it exports "
               "no Py_Version, which 3.11 added)" if named else
               "CPython of unknown version (no Py_Version: before 3.11?)")
        raise UnsupportedVersion(f"{who}: gdbext reads the Python frames of 3.11 to 3.14; "
                                 "native frames only")
    major, minor, micro = version_of(hexversion)
    name = f"{major}.{minor}.{micro}"
    if minor in L.LAYOUTS:
        layout = L.LAYOUTS[minor]
    elif minor in L.DEBUG_FIELDS:
        if head is None or head[:8] != L.DEBUG_COOKIE:
            raise CorruptRuntime(f"CPython {name}: _PyRuntime has no _Py_DebugOffsets cookie")
        layout = _debug_layout(read, address, minor)
    else:
        raise UnsupportedVersion(f"CPython {name} is not a version gdbext reads "
                                 "(3.11 to 3.14): native frames only")
    return Runtime(read, address, layout, name)


def _debug_layout(read: Read, address: int, minor: int) -> L.Layout:
    names = L.DEBUG_FIELDS[minor]
    raw = _safe_read(read, address + 8, 8 * (len(names) - 1))   # after the 8-byte cookie
    if raw is None:
        raise CorruptRuntime("cannot read _PyRuntime.debug_offsets")
    values = dict(zip(names[1:], struct.unpack(f"<{len(names) - 1}Q", raw)))
    if values.get("free_threaded"):
        raise UnsupportedVersion(f"free-threaded CPython 3.{minor}: not read yet")
    if any(v > 1 << 24 for k, v in values.items() if k not in ("version",)):
        raise CorruptRuntime("_Py_DebugOffsets holds offsets too large to be real")
    return L.from_debug_offsets(minor, values)


def _safe_read(read: Read, address: int, length: int) -> bytes | None:
    try:
        data = read(address, length)
    except Exception:            # the target says unreadable in its own words
        return None
    return data if len(data) == length else None


class Runtime:
    def __init__(self, read: Read, address: int, layout: L.Layout, version: str):
        self._read = read
        self.address = address
        self.layout = layout
        self.version = version
        self._types: dict[int, str | None] = {}
        self._codes: dict[int, tuple] = {}
        self._lines: dict[tuple[int, int], int | None] = {}
        self._check_identity()

    # --- memory -----------------------------------------------------------
    def _mem(self, address: int, length: int) -> bytes:
        data = _safe_read(self._read, address, length) if address else None
        if data is None:
            raise CPythonError(f"cannot read {length} bytes at {address:#x}")
        return data

    def _ptr(self, address: int) -> int:
        return _u(self._mem(address, 8), 0, 8)

    def _int(self, address: int, size: int = 4) -> int:
        value = _u(self._mem(address, size), 0, size)
        return value - (1 << 8 * size) if value >> (8 * size - 1) else value

    def _cstring(self, address: int, limit: int = 128) -> str:
        data = bytearray()
        while len(data) < limit:
            n = min(64 - (address + len(data)) % 64, limit - len(data))
            chunk = self._mem(address + len(data), n)
            end = chunk.find(b"\0")
            if end >= 0:
                return (data + chunk[:end]).decode("latin-1")
            data += chunk
        return data.decode("latin-1")

    def type_name(self, obj: int) -> str | None:
        """tp_name of an object's type, cached per type; None when unreadable."""
        try:
            tp = self._ptr(obj + self.layout.ob_type)
        except CPythonError:
            return None
        if tp not in self._types:
            try:
                self._types[tp] = self._cstring(self._ptr(tp + self.layout.tp_name))
            except CPythonError:
                self._types[tp] = None
        return self._types[tp]

    def unicode(self, obj: int) -> str | None:
        """A str object's text (compact forms: every name and file name is one)."""
        lay = self.layout
        if not obj or self.type_name(obj) != "str":
            return None
        head = self._mem(obj, lay.ascii_size)
        length = _u(head, 16, 8)
        state = _u(head, 32, 4)
        kind, compact, ascii_ = state >> 2 & 7, state >> 5 & 1, state >> 6 & 1
        if not compact or kind not in (1, 2, 4) or length > 1 << 20:
            return None
        n = min(length, MAX_STRING)
        start = obj + (lay.ascii_size if ascii_ else lay.compact_size)
        raw = self._mem(start, n * kind)
        return raw.decode({1: "latin-1", 2: "utf-16-le", 4: "utf-32-le"}[kind], "replace")

    def _bytes(self, obj: int, limit: int) -> bytes | None:
        if not obj or self.type_name(obj) != "bytes":
            return None
        size = _u(self._mem(obj + self.layout.var_size, 8), 0, 8)
        if size > limit:
            return None
        return self._mem(obj + self.layout.bytes_sval, size)

    # --- identity ---------------------------------------------------------
    def _check_identity(self) -> None:
        lay = self.layout
        try:
            head = self._ptr(self.address + lay.runtime_interpreters_head)
        except CPythonError:
            raise CorruptRuntime("cannot read _PyRuntime.interpreters") from None
        if head == 0:
            raise CorruptRuntime(f"CPython {self.version}: no interpreter (not initialised "
                                 "yet, or finalised)")
        if lay.interp_runtime is not None:
            try:
                back = self._ptr(head + lay.interp_runtime)
            except CPythonError:
                back = None
            if back != self.address:
                raise CorruptRuntime(f"CPython {self.version}: the interpreter at {head:#x} "
                                     "does not point back at _PyRuntime (layout mismatch)")

    def interpreters(self) -> list[int]:
        out, seen = [], set()
        interp = self._ptr(self.address + self.layout.runtime_interpreters_head)
        while interp and interp not in seen and len(out) < MAX_INTERPRETERS:
            seen.add(interp)
            out.append(interp)
            try:
                interp = self._ptr(interp + self.layout.interp_next)
            except CPythonError:
                break
        return out

    # --- threads and frames -------------------------------------------------
    def threads(self, max_frames: int = 64, max_threads: int = 20000) -> list[PyThread]:
        lay = self.layout
        out: list[PyThread] = []
        seen: set[int] = set()
        for interp in self.interpreters():
            try:
                tstate = self._ptr(interp + lay.interp_threads_head)
            except CPythonError:
                continue
            while tstate and tstate not in seen and len(out) < max_threads:
                seen.add(tstate)
                thread = self._thread(tstate, interp, max_frames)
                if thread is None:
                    break
                out.append(thread)
                try:
                    tstate = self._ptr(tstate + lay.tstate_next)
                except CPythonError:
                    break
        return out

    def _thread(self, tstate: int, interp: int, max_frames: int) -> PyThread | None:
        lay = self.layout
        try:
            if self._ptr(tstate + lay.tstate_interp) != interp:
                return None                 # not a thread state of this interpreter
            pthread = self._ptr(tstate + lay.tstate_thread_id)
            lwp = self._ptr(tstate + lay.tstate_native_thread_id) or None
        except CPythonError:
            return None
        thread = PyThread(tstate, lwp, pthread, interp)
        try:
            if lay.tstate_current_frame is not None:
                frame = self._ptr(tstate + lay.tstate_current_frame)
            else:
                cframe = self._ptr(tstate + lay.tstate_cframe)
                frame = self._ptr(cframe + lay.cframe_current_frame) if cframe else 0
        except CPythonError as exc:
            thread.warnings.append(f"thread state {tstate:#x}: {exc}")
            return thread
        self._walk(thread, frame, max_frames)
        return thread

    def recursion_limit(self, interp: int | None = None) -> int | None:
        """``interp->ceval.recursion_limit`` (sys.getrecursionlimit()), or None
        where this version's offset is not known or the value is no limit."""
        off = self.layout.interp_recursion_limit
        if off is None:
            return None
        try:
            interp = interp or self.interpreters()[0]
            value = self._int(interp + off)
        except (CPythonError, IndexError):
            return None
        return value if 0 < value < 1 << 31 else None

    def _walk(self, thread: PyThread, frame: int, max_frames: int) -> None:
        lay = self.layout
        seen: set[int] = set()
        while frame:
            if frame in seen:
                thread.warnings.append(f"the frame chain loops at {frame:#x}")
                return
            if len(thread.frames) >= max_frames:
                thread.truncated = True
                self._walk_on(thread, frame, seen)
                return
            seen.add(frame)
            try:
                head = self._mem(frame, lay.frame_localsplus)
            except CPythonError as exc:
                thread.warnings.append(f"frame chain broken: {exc}")
                return
            code = _u(head, lay.frame_code, 8) & ~7     # 3.14 tags the executable's low bits
            owner = head[lay.frame_owner]
            if lay.owner_cstack is not None and owner == lay.owner_cstack:
                # The eval loop's entry (shim) frame: the frame below it was the
                # first this C call ran.
                if thread.frames:
                    thread.frames[-1].entry = True
            else:
                py = self._frame(frame, code, _u(head, lay.frame_instr, 8))
                if py is None:
                    thread.warnings.append(f"frame {frame:#x} holds no code object: chain ends")
                    return
                if lay.frame_is_entry is not None and head[lay.frame_is_entry]:
                    py.entry = True
                thread.frames.append(py)
            frame = _u(head, lay.frame_previous, 8)

    def _walk_on(self, thread: PyThread, frame: int, seen: set[int]) -> None:
        """Past max-frames: follow the chain to its end (reading only each
        frame's head, through the page cache; up to MAX_DEPTH frames), keep the
        outermost OUTER_FRAMES and say whether every frame between repeats the
        innermost kept frame's code and line -- a recursion, and where it was
        entered.  A walk that does not reach the end (the bound, a loop, a
        broken frame) claims no outermost frames and no depth: the warning
        says why, and the stack stays cut at max-frames."""
        from collections import deque
        lay = self.layout
        last = thread.frames[-1] if thread.frames else None
        key = (last.code, last.line) if last is not None else None
        lines: dict[tuple[int, int], int | None] = {}     # (code, instr) -> line

        def location(code: int, instr: int):
            if (code, instr) not in lines:      # few: the specializing interpreter
                found = self._frame(0, code, instr)     # moves a call site's instr
                lines[code, instr] = found.line if found is not None else None
            return code, lines[code, instr]
        outer: deque = deque(maxlen=OUTER_FRAMES)
        depth, same, previous = len(thread.frames), key is not None, None
        limit = depth + MAX_DEPTH
        while frame:
            if depth >= limit:
                thread.warnings.append(f"more than {MAX_DEPTH:,} Python frames past "
                                       "max-frames (or a loop): not counted to the end")
                return
            if frame in seen or frame == previous:
                thread.warnings.append(f"the frame chain loops at {frame:#x}")
                return
            try:
                head = self._mem(frame, lay.frame_localsplus)
            except CPythonError as exc:
                thread.warnings.append(f"frame chain broken past max-frames: {exc}")
                return
            if lay.owner_cstack is None or head[lay.frame_owner] != lay.owner_cstack:
                if len(outer) == OUTER_FRAMES and same:     # the oldest leaves: between
                    same = location(*outer[0][1:]) == key
                outer.append((frame, _u(head, lay.frame_code, 8) & ~7,
                              _u(head, lay.frame_instr, 8)))
                depth += 1
            previous, frame = frame, _u(head, lay.frame_previous, 8)
        decoded = [self._frame(a, c, i) for a, c, i in outer]
        thread.outer = [f for f in decoded if f is not None]
        thread.depth = depth
        thread.middle_same = same

    def _frame(self, address: int, code: int, instr: int) -> PyFrame | None:
        lay = self.layout
        info = self._codes.get(code)
        if info is None:
            if self.type_name(code) != "code":
                return None
            try:
                head = self._mem(code, lay.code_adaptive)
                name = self.unicode(_u(head, lay.code_name, 8))
                qualname = self.unicode(_u(head, lay.code_qualname, 8))
                filename = self.unicode(_u(head, lay.code_filename, 8))
                first = _u(head, lay.code_firstlineno, 4)
                table = _u(head, lay.code_linetable, 8)
            except CPythonError:
                return None
            info = self._codes[code] = (name, qualname, filename, first, table)
        name, qualname, filename, first, table = info
        units = (instr - (code + lay.code_adaptive)) // 2 if instr else -1
        return PyFrame(address, name, qualname, filename, self._line(code, table, first, units),
                       code=code)

    def _line(self, code: int, table: int, first: int, units: int) -> int | None:
        key = (code, units)
        if key not in self._lines:
            try:
                data = self._bytes(table, MAX_LINETABLE)
            except CPythonError:
                data = None
            self._lines[key] = None if data is None else line_for(data, first, units)
        return self._lines[key]

    # --- the GIL ------------------------------------------------------------
    def gil_address(self, interp: int | None = None) -> int | None:
        lay = self.layout
        if lay.runtime_gil is not None:
            return self.address + lay.runtime_gil
        interp = interp or (self.interpreters() or [0])[0]
        try:
            return self._ptr(interp + lay.interp_gil_pointer) or None
        except CPythonError:
            return None

    def gil(self, threads: list[PyThread], regs_by_lwp: dict[int, dict[str, int]]
            ) -> Resource | None:
        lay = self.layout
        gil = self.gil_address()
        if gil is None:
            return None
        try:
            locked = self._int(gil + lay.gil_locked)
            holder = self._ptr(gil + lay.gil_last_holder)
        except CPythonError:
            return None
        res = Resource("gil", gil, f"the GIL (CPython {self.version})", futex=gil + lay.gil_cond)
        by_tstate = {t.tstate: t for t in threads}
        if locked == 1 and holder in by_tstate and by_tstate[holder].lwp:
            res.owner_lwp = by_tstate[holder].lwp
            res.owner_evidence = "exact"
            res.owner_why = f"gil.locked = 1, gil.last_holder = thread state {holder:#x}"
        elif locked == 0:
            res.owner_why = "gil.locked = 0: nobody holds it"
        else:
            res.owner_why = f"gil.locked = {locked}, last_holder {holder:#x} is no thread state"
        spans = ((gil + lay.gil_cond, 48, "cond"), (gil + lay.gil_mutex, 40, "mutex"))
        for lwp, regs in sorted(regs_by_lwp.items()):
            word = regs.get("rdi")
            if regs.get("orig_rax") != SYS_FUTEX or word is None:
                continue
            for start, size, what in spans:
                if start <= word < start + size:
                    res.waiters.append((lwp, "exact", f"futex wait on gil.{what} "
                                        f"({word:#x}): take_gil"))
        return res

    # --- threading.Lock / RLock --------------------------------------------
    def _stack_objects(self, frame: PyFrame) -> list[int]:
        """Object pointers in a frame's value stack, up to co_stacksize: the
        live top is not saved while the frame runs (stacktop is -1), so slots
        past it may be stale -- evidence from here is ``inferred``."""
        lay = self.layout
        try:
            head = self._mem(frame.code, lay.code_adaptive)
            nlocals = _u(head, lay.code_nlocalsplus, 4)
            depth = _u(head, lay.code_stacksize, 4)
        except CPythonError:
            return []
        if nlocals > 4096 or depth > 4096:
            return []
        # A frame that called into another Python frame saved its stack
        # pointer (stacktop >= 0): the slots past it are dead, read only the
        # live ones.  The running frame keeps -1 and all slots are read.
        # (3.11/3.12 pycore_frame.h: int stacktop, an offset from localsplus;
        # 3.14 keeps a pointer there instead.)
        try:
            top = self._int(frame.address + lay.frame_stacktop) if lay.minor in (11, 12) \
                else -1
        except CPythonError:
            top = -1
        if nlocals <= top <= nlocals + depth:
            depth = top - nlocals
        start = frame.address + lay.frame_localsplus + 8 * nlocals
        raw = _safe_read(self._read, start, 8 * depth)
        return [] if raw is None else [p for p in struct.unpack(f"<{depth}Q", raw) if p]

    def _lock_of(self, obj: int) -> tuple[int, str, str | None] | None:
        """(lock object, kind, method) when ``obj`` is a lock or its bound method."""
        kind = self.type_name(obj)
        if kind in ("_thread.lock", "_thread.RLock"):
            return obj, kind, None
        if kind == "builtin_function_or_method":
            try:
                ml = self._ptr(obj + 16)               # PyCFunctionObject.m_ml
                me = self._ptr(obj + 24)               # .m_self
                method = self._cstring(self._ptr(ml), 32)   # PyMethodDef.ml_name
            except CPythonError:
                return None
            owner_kind = self.type_name(me)
            if owner_kind in ("_thread.lock", "_thread.RLock"):
                return me, owner_kind, method
        return None

    def locks(self, threads: list[PyThread], regs_by_lwp: dict[int, dict[str, int]]
              ) -> list[Resource]:
        found: dict[int, Resource] = {}
        by_pthread = {t.pthread: t.lwp for t in threads}

        def resource(obj: int, kind: str) -> Resource:
            if obj not in found:
                sem = self._ptr(obj + 16)               # lock_lock / rlock_lock
                res = Resource("rlock" if kind == "_thread.RLock" else "lock", obj,
                               f"threading.{'RLock' if kind == '_thread.RLock' else 'Lock'} "
                               f"{obj:#x}", futex=sem)
                if kind == "_thread.RLock":
                    owner = self._ptr(obj + 24)          # rlock_owner: a pthread_t
                    count = self._ptr(obj + 32)
                    if owner and count and by_pthread.get(owner):
                        res.owner_lwp = by_pthread[owner]
                        res.owner_evidence = "exact"
                        res.owner_why = f"rlock_owner = pthread {owner:#x}, count {count}"
                    elif owner and count:       # a thread gone, or the parent's (fork)
                        res.owner_pthread, res.owner_count = owner, count
                found[obj] = res
            return found[obj]

        sentinels = self._state_locks(threads)
        listed: set[tuple[int, int]] = set()
        waiter_locks: set[int] = set()
        for t in threads:
            regs = regs_by_lwp.get(t.lwp or -1, {})
            word = regs.get("rdi") if regs.get("orig_rax") == SYS_FUTEX else None
            parked = self._parked_on(word) if word is not None and t.frames else None
            matched = False
            for depth, frame in enumerate(t.frames):
                for obj in self._stack_objects(frame):
                    try:
                        hit = self._lock_of(obj)
                        if hit is None:
                            continue
                        res = resource(hit[0], hit[1])
                    except CPythonError:
                        continue
                    on_mutex = parked is not None and parked in (res.address + 16, res.futex)
                    waiting = depth == 0 and word is not None and (word == res.futex
                                                                   or on_mutex)
                    if waiting:
                        matched = True
                        if on_mutex:
                            res.mutex, res.futex = parked, None
                        waited = self._condition_of(t.frames) if hit[1] == "_thread.lock" \
                            else None
                        if waited is not None:      # the Condition's own waiter lock
                            waiter_locks.add(res.address)
                            res = found.setdefault(waited.address, waited)
                        if (res.address, t.lwp) not in listed:     # a set: 1,000 waiters
                            listed.add((res.address, t.lwp))
                            res.waiters.append((t.lwp, "exact", (
                                f"parked on the lock's PyMutex {parked:#x} (_PyParkingLot_"
                                f"Park's wait entry beside the semaphore {word:#x} it sleeps "
                                f"on) at {frame.where()}") if on_mutex else (
                                f"futex wait on the lock's sem_t {word:#x} at "
                                f"{frame.where()}")))
                    elif hit[2] == "__exit__" and res.owner_evidence != "exact" \
                            and res.owner_lwp is None:
                        res.owner_lwp = t.lwp
                        res.owner_evidence = "inferred"
                        res.owner_why = (f"an active 'with' at {frame.where()}: the lock's "
                                         "__exit__ is on that frame's value stack")
            if parked is not None and not matched:
                join = self._thread_handle_join(parked, by_pthread, t, word)
                if join is not None:    # (setdefault's += would list a new join's waiter twice)
                    if join.address in found:
                        found[join.address].waiters += join.waiters
                    else:
                        found[join.address] = join
        for obj, res in found.items():
            holder = sentinels.get(obj)
            if holder is not None and res.owner_evidence != "exact":
                res.owner_lwp, res.owner_evidence = holder.lwp, "exact"
                res.owner_why = (f"the _tstate_lock of thread state {holder.tstate:#x} "
                                 "(tstate->on_delete_data): held until that thread ends, "
                                 "so a join waits here")
                res.name = f"threading.Thread._tstate_lock {obj:#x} (join)"
        return [res for obj, res in found.items()
                if obj not in waiter_locks or res.waiters or res.owner_lwp]

    def _condition_of(self, frames: list[PyFrame]) -> Resource | None:
        """What a thread blocked in ``Condition.wait`` (threading.py: it parks on
        a fresh waiter lock it took itself, released by notify()) waits for:
        the outermost of the standard library's callers that wait through a
        Condition (Event.wait, Semaphore.acquire, Barrier.wait, Queue.get...),
        its object being that frame's ``self`` (localsplus[0]), named by its
        type.  A Semaphore is a "semaphore" (no owner, any thread may release
        it); the others a "condition" (a notify any thread may bring)."""
        if not frames or frames[0].qualname != "Condition.wait" \
                or not (frames[0].filename or "").endswith("threading.py"):
            return None
        chosen = 0
        for i, frame in enumerate(frames[1:6], 1):
            module = CONDITION_USERS.get(frame.qualname or "")
            if module is None or not (frame.filename or "").endswith(f"/{module}.py"):
                break
            chosen = i
        frame = frames[chosen]
        try:
            obj = self._ptr(frame.address + self.layout.frame_localsplus)     # self
            kind = self.type_name(obj) if obj else None
        except CPythonError:
            return None
        if not kind:
            return None
        module = CONDITION_USERS.get(frame.qualname or "", "threading")
        semaphore = (frame.qualname or "").startswith("Semaphore.")
        method = (frame.qualname or "").rpartition(".")[2]
        return Resource("semaphore" if semaphore else "condition", obj,
                        f"{module}.{kind} {obj:#x} ({method})",
                        owner_why=f"{frame.where()}: waits in Condition.wait on a fresh "
                                  "waiter lock until another thread notifies it")

    def _thread_handle_join(self, parked: int, by_pthread: dict[int, int | None], t: PyThread,
                            word: int) -> Resource | None:
        """3.13+ ``Thread.join`` parks on the joined thread's ThreadHandle's
        ``thread_is_exiting`` event (Modules/_threadmodule.c v3.13.0 and
        Include/internal/pycore_pythread.h v3.14.0: ... PyThread_ident_t ident;
        os_handle; int has_os_handle; int state; PyMutex mutex; PyEvent
        thread_is_exiting -- the event 25 bytes after ``ident`` in both).  A
        join only when ``ident`` and ``os_handle`` are one pthread_t (as
        PyThread_start_joinable_thread stores them) of a thread of this
        process: that thread is the one joined, exact."""
        raw = _safe_read(self._read, parked - 25, 16)
        if raw is None:
            return None
        ident, handle = struct.unpack("<QQ", raw)
        lwp = by_pthread.get(ident)
        if ident != handle or not lwp:
            return None
        frame = t.frames[0].where()
        return Resource("lock", parked, f"threading.Thread handle of pthread {ident:#x} (join)",
                        owner_lwp=lwp, owner_evidence="exact",
                        owner_why=(f"the ThreadHandle's ident = os_handle = pthread {ident:#x}: "
                                   "its thread_is_exiting event is set when that thread "
                                   "ends, so a join waits here"),
                        waiters=[(t.lwp, "exact", f"parked on the ThreadHandle's "
                                  f"thread_is_exiting event {parked:#x} (_PyParkingLot_Park's "
                                  f"wait entry beside the semaphore {word:#x}) at {frame}")])

    def _parked_on(self, word: int) -> int | None:
        """The address a thread parked on, when its futex word is the
        semaphore of a parking-lot wait entry (3.13+ Python/parking_lot.c:
        ``struct wait_entry { void *park_arg; uintptr_t addr; _PySemaphore
        sema; ...}`` on the parked thread's stack; with POSIX semaphores the
        sem_t's value is the futex word): ``addr`` is the 8 bytes before it.
        Only an address that is a lock's PyMutex is believed (locks())."""
        raw = _safe_read(self._read, word - 8, 8)
        return struct.unpack("<Q", raw)[0] if raw is not None else None

    def _state_locks(self, threads: list[PyThread]) -> dict[int, PyThread]:
        """threading's per-thread state lock -> its thread (3.11/3.12):
        tstate->on_delete_data is a weakref (Include/cpython/weakrefobject.h:
        wr_object @16) to the lock a join waits for."""
        off = self.layout.tstate_on_delete_data
        out: dict[int, PyThread] = {}
        if off is None:
            return out
        for t in threads:
            try:
                ref = self._ptr(t.tstate + off)
                obj = self._ptr(ref + 16) if ref else 0
            except CPythonError:
                continue
            if obj and self.type_name(obj) == "_thread.lock":
                out[obj] = t
        return out


# --- PEP 626 line tables ------------------------------------------------------
def _varint(table: bytes, pos: int) -> tuple[int, int]:
    b = table[pos]
    value, shift = b & 63, 0
    while b & 64:
        pos += 1
        shift += 6
        b = table[pos]
        value |= (b & 63) << shift
    return value, pos + 1


def _svarint(table: bytes, pos: int) -> tuple[int, int]:
    value, pos = _varint(table, pos)
    return (-(value >> 1) if value & 1 else value >> 1), pos


def line_for(table: bytes, firstlineno: int, units: int) -> int | None:
    """The source line of the code unit ``units`` (Objects/locations.md):
    entries of (code, length) with a line delta; code 15 has no line.  A
    negative offset (the frame has not started) is the first line, as in
    PyCode_Addr2Line.  A malformed table gives None."""
    if units < 0:
        return firstlineno
    line, start, pos = firstlineno, 0, 0
    try:
        while pos < len(table):
            head = table[pos]
            if not head & 0x80:
                return None
            code, length = head >> 3 & 15, (head & 7) + 1
            pos += 1
            if code == 15:
                delta = 0
            elif code == 14:
                delta, pos = _svarint(table, pos)
                for _ in range(3):
                    _, pos = _varint(table, pos)
            elif code == 13:
                delta, pos = _svarint(table, pos)
            elif code >= 10:
                delta, pos = code - 10, pos + 2
            else:
                delta, pos = 0, pos + 1
            line += delta
            if start <= units < start + length:
                return None if code == 15 else line
            start += length
    except IndexError:
        return None
    return None


# --- long stacks -------------------------------------------------------------------
def collapsed(frames: list[PyFrame], depth: int | None = None, outer: list[PyFrame] = (),
              middle_same: bool = False) -> list[tuple[int, int, PyFrame | None]]:
    """A stack, innermost first, as runs ``(first, last, frame)`` of frame
    numbers at one code location (``frame`` None: frames past max-frames that
    were counted, not read).  ``depth``/``outer``/``middle_same``: what the
    walk found past ``frames`` (PyThread)."""
    known: list[tuple[int, int, PyFrame | None]] = [(i, i, f) for i, f in enumerate(frames)]
    if depth is not None and depth > len(frames):
        first_outer = depth - len(outer)
        if first_outer > len(frames):
            known.append((len(frames), first_outer - 1,
                          frames[-1] if middle_same and frames else None))
        known += [(first_outer + i, first_outer + i, f) for i, f in enumerate(outer)]
    runs: list[tuple[int, int, PyFrame | None]] = []
    for first, last, frame in known:
        if runs and frame is not None and runs[-1][2] is not None \
                and runs[-1][2].where() == frame.where():
            runs[-1] = (runs[-1][0], last, runs[-1][2])
        else:
            runs.append((first, last, frame))
    return runs


def collapsed_lines(frames: list[PyFrame], depth: int | None = None,
                    outer: list[PyFrame] = (), middle_same: bool = False) -> list[str]:
    """The runs as text: ``#0-#13095 x.py:14 in f  (repeated 13,096 times)``."""
    out = []
    for first, last, frame in collapsed(frames, depth, outer, middle_same):
        number = f"#{first}" if first == last else f"#{first}-#{last}"
        if frame is None:
            out.append(f"{number} ({last - first + 1:,} frames counted, not read: "
                       "max-frames)")
        elif first == last:
            out.append(f"{number} {frame.where()}")
        else:
            out.append(f"{number} {frame.where()}  (repeated {last - first + 1:,} times)")
    return out
