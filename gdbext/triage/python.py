"""The Python side of a crash: which Python stack explains it, and the
signature frames of a crash in a Python process.  Pure: frames come in as
(function, objfile) pairs and runtimes.cpython's PyFrame objects.

A crash in a Python process is signed by where it happened natively, how
native code was entered from Python, and the Python line that entered it:
``dgemm_kernel_PILEDRIVER<cblas_dgemm<<string>:1 <module>``.  When no native
frame is outside the interpreter and its runtimes (ctypes, libffi, libc),
the native frames say nothing about the bug: the Python frames sign it
(``pycrash.py:read_message<pycrash.py:main<...``).
"""
from __future__ import annotations

import os
import re

from ..knowledge.skip_frames import PYTHON_STDLIB
from .signature import NamedFrame, meaningful_frames, normalise_function
from ..record import field, record

# The interpreter and the native parts of its standard library: the executable
# (Debian links the interpreter in), libpython (shared builds), the stdlib's
# extension modules (lib-dynload: _ctypes, _json...) and libffi under ctypes.
INTERPRETER_OBJECTS = (r"/python3?(?:\.\d+)?[^/]*$", r"/libpython3\.\d+[^/]*$",
                       r"/lib-dynload/[^/]+$", r"/libffi\.so[^/]*$")
INTERPRETER = re.compile("|".join(INTERPRETER_OBJECTS))
_STDLIB = PYTHON_STDLIB
_PACKAGES = re.compile(r"/(?:site|dist)-packages/(.+)$")


@record
class PythonView:
    """What crash-triage shows of Python: the stack that explains the crash."""
    version: str | None
    lwp: int | None                     # whose stack ``frames`` is
    frames: list = field(default_factory=list)   # cpython.PyFrame, innermost first
    source: str = "crashing thread"     # or how another thread was chosen (inferred)
    evidence: str = "exact"             # exact: the crashing thread's own thread state
    gil: dict | None = None             # {"owner": lwp, "evidence", "why"}
    threads: int = 0                    # Python thread states read
    truncated: bool = False
    driver_frames: list = field(default_factory=list)  # (function, objfile) of the chosen thread
    depth: int | None = None            # Python frames in all, when walked past max-frames
    outer: list = field(default_factory=list)         # the outermost frames then
    middle_same: bool = False           # the frames between repeat the last kept one
    recursion_limit: int | None = None  # sys.getrecursionlimit() of the interpreter

    def take(self, thread) -> None:
        """The stack of ``thread`` (cpython.PyThread)."""
        self.lwp, self.frames, self.truncated = thread.lwp, thread.frames, thread.truncated
        self.depth, self.outer, self.middle_same = (thread.depth, thread.outer,
                                                    thread.middle_same)

    def lines(self) -> list[str]:
        return [f.where() for f in self.frames]

    def to_json(self) -> dict:
        return {"version": self.version, "lwp": self.lwp, "source": self.source,
                "evidence": self.evidence, "gil": self.gil, "thread_states": self.threads,
                "truncated": self.truncated, "depth": self.depth,
                "recursion_limit": self.recursion_limit,
                "frames": [{"file": f.filename, "line": f.line,
                            "function": f.qualname or f.name} for f in self.frames],
                "outer": [{"file": f.filename, "line": f.line,
                           "function": f.qualname or f.name} for f in self.outer]}


def signature_name(frame) -> str:
    """A Python frame as a signature frame: ``file:function`` with the file
    as the module's path (no machine-specific prefix); a pseudo-file such as
    ``<string>`` (``python -c``, exec) has no function worth naming apart
    from its line: ``<string>:1 <module>``."""
    function = frame.qualname or frame.name or "?"
    path = frame.filename or "?"
    if path.startswith("<") and path.endswith(">"):
        return f"{path}:{'?' if frame.line is None else frame.line} {function}"
    m = _STDLIB.search(path) or _PACKAGES.search(path)
    return f"{m.group(1) if m else os.path.basename(path)}:{function}"


def is_stdlib(frame) -> bool:
    return bool(frame.filename and _STDLIB.search(frame.filename))


def python_frames(frames, limit: int) -> list[NamedFrame]:
    """The first ``limit`` Python frames outside the standard library (all
    of them when every frame is the standard library's), recursion collapsed."""
    own = [f for f in frames if not is_stdlib(f)] or list(frames)
    out: list[NamedFrame] = []
    for f in own:
        named = NamedFrame(signature_name(f), None)
        if out and out[-1] == named:
            continue
        out.append(named)
        if len(out) == limit:
            break
    return out


def native_run(frames) -> list[tuple[str | None, str | None]]:
    """The innermost frames up to the first of the interpreter: the native
    code Python called into (``frames``: (function, objfile) pairs)."""
    out = []
    for function, objfile in frames:
        if objfile and INTERPRETER.search(objfile):
            break
        out.append((function, objfile))
    return out


def entry_frame(frames) -> NamedFrame | None:
    """The outermost named frame of the native run outside the C library and
    the runtimes: the library function Python's extension called
    (cblas_dgemm), or the extension itself when it has nothing named."""
    run = user_frames(native_run(frames))
    named = [p for p in run if p[0] and p[0] != "??"]
    pick = named[-1] if named else run[-1] if run else None
    if pick is None:
        return None
    return NamedFrame(normalise_function(*pick), os.path.basename(pick[1]) if pick[1] else None)


def signature_frames(crash_frames, view: PythonView | None, limit: int,
                     skip_objects: str | None = None) -> list[NamedFrame] | None:
    """The signature frames of a crash in a Python process, or None to keep
    the native ones: ``crash_frames`` are the crashing thread's (function,
    objfile) pairs, objfile a full path; ``view`` the Python stack that
    explains it."""
    if view is None or not view.frames:
        return None
    user = user_frames(crash_frames, skip_objects)
    if not user:
        return python_frames(view.frames, limit)
    out = meaningful_frames(user, 1)
    entry = entry_frame(view.driver_frames or crash_frames)
    if entry is not None and entry != out[0]:
        out.append(entry)
    return out + python_frames(view.frames, 1)


def user_frames(frames, skip_objects: str | None = None) -> list:
    """The (function, objfile) pairs outside the interpreter, the C library
    and the runtimes, and not their machinery: code a user wrote or chose."""
    from ..knowledge.skip_frames import is_machinery
    from ..knowledge.triage import SIGNATURE_SKIP_FUNCTIONS
    from .signature import _SKIP_OBJECT
    out = []
    for function, objfile in frames:
        if not objfile or INTERPRETER.search(objfile) or _SKIP_OBJECT.search(objfile) or (
                skip_objects and re.search(skip_objects, objfile)):
            continue
        name = normalise_function(function, objfile)
        if name in SIGNATURE_SKIP_FUNCTIONS or is_machinery(name):
            continue
        out.append((function, objfile))
    return out


def driver_of(crash_object: str | None, candidates) -> tuple[int, list] | None:
    """The one Python thread whose native stack runs code of the object the
    crash happened in (a thread pool's worker crashed: the Python thread that
    handed it work).  ``candidates``: (lwp, [(function, objfile)]).  None when
    no thread or several do."""
    if not crash_object or INTERPRETER.search(crash_object):
        return None
    found = [(lwp, frames) for lwp, frames in candidates
             if any(o == crash_object for _, o in frames)]
    return found[0] if len(found) == 1 else None


__all__ = ["PythonView", "signature_frames", "driver_of", "signature_name",
           "python_frames", "entry_frame", "native_run", "normalise_function"]
