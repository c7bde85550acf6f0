"""The rules that sign a crash in a Python process (triage/python.py): which
frames stand for it.  The real crashes are in tests/e2e/test_triage_python.py;
here, the edges of the rules on frames as gdb and the CPython reader give them."""
from __future__ import annotations

from gdbext.runtimes.cpython import PyFrame
from gdbext.triage.python import (PythonView, driver_of, entry_frame, python_frames,
                                  signature_frames, signature_name, user_frames)

SKIP = r"/(?:python3?(?:\.\d+)?[^/]*|libpython3\.\d+[^/]*)$"


def py(file, line, function):
    return PyFrame(0, function, function, file, line)


def test_signature_names_drop_machine_prefixes():
    assert signature_name(py("<string>", 1, "<module>")) == "<string>:1 <module>"
    assert signature_name(py("/home/u/app/run.py", 40, "main")) == "run.py:main"
    assert signature_name(py("/usr/lib/python3.11/ctypes/__init__.py", 519, "string_at")) \
        == "ctypes/__init__.py:string_at"
    assert signature_name(py("/root/.pyenv/versions/3.11.7/lib/python3.11/threading.py", 975,
                             "Thread.run")) == "threading.py:Thread.run"
    assert signature_name(py("/usr/lib/python3/dist-packages/numpy/core/numeric.py", 9,
                             "dot")) == "numpy/core/numeric.py:dot"
    assert signature_name(py("/v/lib/python3.11/site-packages/pkg/m.py", 1, "f")) == \
        "pkg/m.py:f"


def test_python_frames_skip_the_standard_library_unless_it_is_all():
    frames = [py("/usr/lib/python3.11/ctypes/__init__.py", 519, "string_at"),
              py("/w/pycrash.py", 14, "read_message"), py("/w/pycrash.py", 24, "main"),
              py("/w/pycrash.py", 31, "<module>")]
    assert [f.function for f in python_frames(frames, 2)] == \
        ["pycrash.py:read_message", "pycrash.py:main"]
    only = [py("/usr/lib/python3.11/threading.py", 975, "Thread.run")]
    assert [f.function for f in python_frames(only, 3)] == ["threading.py:Thread.run"]
    recursive = [py("/w/r.py", 3, "f")] * 5 + [py("/w/r.py", 9, "<module>")]
    assert [f.function for f in python_frames(recursive, 3)] == ["r.py:f", "r.py:<module>"]


CTYPES_NULL = [("__strlen_avx2", "/lib/x86_64-linux-gnu/libc.so.6"),
               (None, "/usr/lib/python3.11/lib-dynload/_ctypes.cpython-311-x86_64-linux-gnu.so"),
               ("ffi_call", "/lib/x86_64-linux-gnu/libffi.so.8"),
               ("_PyObject_MakeTpCall", "/usr/bin/python3.11"),
               ("_PyEval_EvalFrameDefault", "/usr/bin/python3.11")]
BLAS = [("dgemm_kernel_PILEDRIVER", "/lib/x86_64-linux-gnu/libopenblas.so.0"),
        (None, "/lib/x86_64-linux-gnu/libopenblas.so.0"),
        ("exec_blas", "/lib/x86_64-linux-gnu/libopenblas.so.0"),
        ("dgemm_thread_nn", "/lib/x86_64-linux-gnu/libopenblas.so.0"),
        ("cblas_dgemm", "/lib/x86_64-linux-gnu/libblas.so.3"),
        (None, "/usr/lib/python3/dist-packages/numpy/core/_multiarray_umath.so"),
        (None, "/usr/bin/python3.11"), ("_PyEval_EvalFrameDefault", "/usr/bin/python3.11"),
        ("__libc_start_main", "/lib/x86_64-linux-gnu/libc.so.6")]
WORKER = BLAS[:2] + [("start_thread", "/lib/x86_64-linux-gnu/libc.so.6")]


def test_no_user_frame_signs_on_python():
    assert user_frames(CTYPES_NULL, SKIP) == []
    view = PythonView("3.11.2", 1, [py("/w/pycrash.py", 14, "read_message"),
                                    py("/w/pycrash.py", 24, "main")])
    assert [f.function for f in signature_frames(CTYPES_NULL, view, 3, SKIP)] == \
        ["pycrash.py:read_message", "pycrash.py:main"]


def test_native_crash_signs_site_entry_and_python_line():
    view = PythonView("3.11.2", 1, [py("<string>", 1, "<module>")])
    assert entry_frame(BLAS).function == "cblas_dgemm"
    assert [f.function for f in signature_frames(BLAS, view, 3, SKIP)] == \
        ["dgemm_kernel_PILEDRIVER", "cblas_dgemm", "<string>:1 <module>"]
    # a worker crashed: its own frames never reach the entry; the driver's do
    view.driver_frames = [(f, o) for f, o in BLAS]
    assert [f.function for f in signature_frames(WORKER, view, 3, SKIP)] == \
        ["dgemm_kernel_PILEDRIVER", "cblas_dgemm", "<string>:1 <module>"]


def test_no_python_frames_keeps_the_native_signature():
    assert signature_frames(BLAS, None, 3, SKIP) is None
    assert signature_frames(BLAS, PythonView("3.11.2", 1, []), 3, SKIP) is None


def test_driver_is_the_one_python_thread_in_the_crashing_library():
    lib = "/lib/x86_64-linux-gnu/libopenblas.so.0"
    main = (10, [(f, o) for f, o in BLAS])
    idle = (11, [("epoll_wait", "/lib/x86_64-linux-gnu/libc.so.6")])
    assert driver_of(lib, [main, idle]) == main
    assert driver_of(lib, [main, (12, main[1])]) is None        # two: unknown, not a guess
    assert driver_of(lib, [idle]) is None
    assert driver_of("/usr/bin/python3.11", [main]) is None      # the interpreter: no driver
    assert driver_of(None, [main]) is None
