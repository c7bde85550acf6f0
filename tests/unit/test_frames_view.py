"""frames_view: the frames and the Python line isa-check and spill-audit
show, from synthetic frames (the e2e tests run them on real processes)."""
from __future__ import annotations

from dataclasses import dataclass

from gdbext.frames_view import frames_json, frames_text, python_json, python_text, scanned
from gdbext.runtimes.cpython import PyFrame
from gdbext.triage.python import PythonView


@dataclass
class F:
    level: int
    pc: int
    function: str | None
    objfile: str | None
    evidence: str = "exact"


FRAMES = [F(0, 0x7f0000001000, "dgemm_kernel_PILEDRIVER", "/usr/lib/libopenblas.so.0"),
          F(1, 0x7f0000002000, "cblas_dgemm", "/usr/lib/libblas.so.3", "inferred"),
          F(2, 0x7f0000003000, None, "/usr/lib/_multiarray_umath.so", "inferred"),
          F(3, 0x500000, "_PyEval_EvalFrameDefault", "/usr/bin/python3.11", "inferred"),
          F(4, 0x400000, "Py_BytesMain", "/usr/bin/python3.11", "inferred")]


def test_frames_text_marks_scanned_frames_and_stops_at_the_interpreter():
    text = frames_text(FRAMES, python=True)
    lines = text.splitlines()
    assert "cblas_dgemm" in lines[2] and "found by stack scanning (inferred)" in lines[2]
    assert "found by stack scanning" not in lines[1]
    assert "_PyEval_EvalFrameDefault" not in text
    assert lines[-1] == "... 2 the interpreter's frame(s) (--json lists them)"
    assert "_PyEval_EvalFrameDefault" in frames_text(FRAMES, python=False)   # a C program
    assert scanned(FRAMES) == 4
    assert [f["evidence"] for f in frames_json(FRAMES)] == ["exact"] + ["inferred"] * 4


def test_python_line_is_the_innermost_frame():
    view = PythonView("3.11.2", 42, frames=[PyFrame(0, "multiply", "multiply", "/s.py", 12),
                                            PyFrame(0, "<module>", "<module>", "/s.py", 17)])
    j = python_json(view)
    assert j["line"] == {"file": "/s.py", "line": 12, "function": "multiply"}
    assert j["lwp"] == 42 and j["evidence"] == "exact"
    text = python_text(view)
    assert text.splitlines()[0] == "/s.py:12 in multiply  <- the Python line that led here"
    assert "called from /s.py:17 in <module>" in text
    assert python_json(None) is None and python_text(None) is None
    empty = PythonView("3.11.2", 42, source="the crashing thread has no Python frames")
    assert python_json(empty)["line"] is None
    assert python_text(empty) == "CPython 3.11.2: the crashing thread has no Python frames"
