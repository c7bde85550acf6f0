"""The frames and the Python line as isa-check and spill-audit show them:
text and JSON from the same objects.  Pure: frames are anything with
level, pc, function, objfile and evidence (target.StackFrame); the Python
stack is a triage.python.PythonView (commands/python_runtime.fault_view)."""
from __future__ import annotations

import os
import re

from . import render
from .demangle import shorten

TEXT_FRAMES = 16            # text rows at most; --json lists every frame
# The interpreter's own files (triage/python.py INTERPRETER_OBJECTS): past the
# first such frame a Python process's native frames are the eval loop.
_INTERPRETER = re.compile(r"/python3?(?:\.\d+)?[^/]*$|/libpython3\.\d+[^/]*$")
_SYSTEM = re.compile(r"/(?:libc|ld-linux[^/]*|libpthread)[.-][^/]*$")


def frames_json(frames) -> list[dict]:
    return [{"level": f.level, "pc": f.pc, "function": f.function, "object": f.objfile,
             "evidence": f.evidence, "inlined": list(getattr(f, "inlined_names", ()))}
            for f in frames]


def scanned(frames) -> int:
    return sum(1 for f in frames if f.evidence == "inferred")


def frames_text(frames, python: bool = False) -> str:
    """One row per frame, innermost first; frames found by stack scanning
    say so.  In a Python process the rows stop at the first frame of the
    interpreter past the last native library frame (the Python stack row
    says where the eval loop was); interpreter frames before that -- stale
    return addresses a scan found above an asm kernel -- fold into one row."""
    interp = [bool(python and i and f.objfile and _INTERPRETER.search(f.objfile))
              for i, f in enumerate(frames)]
    native = [i for i, f in enumerate(frames)
              if f.objfile and not interp[i] and not _SYSTEM.search(f.objfile)]
    last_native = native[-1] if native else 0
    rows, rest, run = [], [], 0
    for i, f in enumerate(frames):
        if interp[i] and i < last_native:
            run += 1
            continue
        if run:
            rows.append(["...", "", f"{run} interpreter frame(s)", "", ""])
            run = 0
        if len(rows) >= TEXT_FRAMES or interp[i]:
            rest = frames[i:]
            break
        names = getattr(f, "inlined_names", ())
        for k, inner in enumerate(names):      # inlined into f: same pc, no stack of their own
            rows.append([f"#{f.level - len(names) + k}", render.hexaddr(f.pc),
                         shorten(inner) if inner else "??",
                         os.path.basename(f.objfile) if f.objfile else "?",
                         f"inlined into #{f.level}"])
        rows.append([f"#{f.level}", render.hexaddr(f.pc), f.function or "??",
                     os.path.basename(f.objfile) if f.objfile else "?",
                     "found by stack scanning (inferred)" if f.evidence == "inferred" else ""])
    text = render.table(rows, ["frame", "pc", "function", "object", ""])
    if rest:
        what = ("the interpreter's" if python and rest[0].objfile
                and _INTERPRETER.search(rest[0].objfile) else "more")
        text += f"\n... {len(rest)} {what} frame(s) (--json lists them)"
    return text


def python_json(view) -> dict | None:
    """The PythonView as JSON, with ``line``: its innermost frame, the Python
    line that led to the stop (None when no Python frame was read)."""
    if view is None:
        return None
    out = view.to_json()
    out["line"] = out["frames"][0] if out["frames"] else None
    return out


def python_text(view) -> str | None:
    if view is None:
        return None
    version = f"CPython {view.version}" if view.version else "CPython"
    if not view.frames:
        return f"{version}: {view.source}"
    whose = "this thread's own Python stack" if view.evidence == "exact" else view.source
    lines = [f"{view.frames[0].where()}  <- the Python line that led here"]
    lines += [f"  called from {f.where()}" for f in view.frames[1:]]
    if view.truncated:
        lines.append("  ... (max-frames)")
    lines.append(f"({version}, LWP {view.lwp}: {whose}; {view.evidence})")
    return "\n".join(lines)
