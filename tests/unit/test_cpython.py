"""The CPython reader on memory built from each version's documented layout,
and its line-table decoder against the running interpreter's own co_lines().
The layouts themselves -- every offset the synthetic memory is built with --
are checked against the DWARF of pyenv's builds (3.11, 3.12) and against the
_Py_DebugOffsets 3.13 publishes, read by plain gdb (the end of this file)."""
from __future__ import annotations

import dis
import struct
import sys
import types

import pytest

from gdbext.runtimes import cpython
from gdbext.runtimes import cpython_layouts as L


# --- line tables: the oracle is the interpreter that compiled the code ----------
def _codes(module):
    seen, todo = [], [c for c in vars(module).values() if isinstance(c, types.FunctionType)]
    todo = [f.__code__ for f in todo]
    while todo:
        code = todo.pop()
        seen.append(code)
        todo.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return seen


@pytest.mark.skipif(sys.version_info[:2] < (3, 11), reason="PEP 626 tables of 3.11+")
def test_line_for_matches_co_lines():
    import argparse
    import json.decoder
    checked = 0
    for code in _codes(argparse) + _codes(json.decoder) + _codes(dis):
        for start, end, line in code.co_lines():
            for offset in range(start, end, 2):
                got = cpython.line_for(code.co_linetable, code.co_firstlineno, offset // 2)
                assert got == line, (code.co_qualname, offset)
                checked += 1
    assert checked > 5000


def test_line_for_bad_tables():
    assert cpython.line_for(b"", 7, 0) is None
    assert cpython.line_for(b"\x01\x02", 7, 0) is None          # no entry-start bit
    assert cpython.line_for(b"\xf0", 7, 0) is None              # code 14, truncated varints
    assert cpython.line_for(b"\x80\x00", 7, -1) == 7            # not started: first line


# --- synthetic processes ------------------------------------------------------
class Memory:
    """A sparse address space: the read() the reader is given."""

    def __init__(self):
        self.blocks: dict[int, bytearray] = {}
        self.next = 0x10000

    def alloc(self, size: int) -> int:
        address = self.next
        self.blocks[address] = bytearray(size)
        self.next += (size + 0xFFF) & ~0xFFF
        return address

    def put(self, address: int, data: bytes) -> None:
        for start, block in self.blocks.items():
            if start <= address and address + len(data) <= start + len(block):
                block[address - start:address - start + len(data)] = data
                return
        raise AssertionError(f"{address:#x} not allocated")

    def u64(self, address: int, value: int) -> None:
        self.put(address, struct.pack("<Q", value))

    def u32(self, address: int, value: int) -> None:
        self.put(address, struct.pack("<I", value))

    def read(self, address: int, length: int) -> bytes:
        for start, block in self.blocks.items():
            if start <= address and address + length <= start + len(block):
                return bytes(block[address - start:address - start + length])
        raise OSError(f"unmapped {address:#x}")


class Builder:
    """Objects laid out as a given Layout says: types, str, bytes, code,
    frames, thread states, an interpreter and _PyRuntime."""

    def __init__(self, layout: L.Layout, debug_offsets: bytes | None = None):
        self.m = Memory()
        self.lay = layout
        self.types: dict[str, int] = {}
        self.runtime = self.m.alloc(0x4000)
        if debug_offsets:
            self.m.put(self.runtime, debug_offsets)
        self.interp = self.m.alloc(0x1000)
        self.m.u64(self.runtime + layout.runtime_interpreters_head, self.interp)
        if layout.interp_runtime is not None:
            self.m.u64(self.interp + layout.interp_runtime, self.runtime)
        self.gil = self.runtime + layout.runtime_gil if layout.runtime_gil is not None \
            else self.m.alloc(256)
        if layout.interp_gil_pointer is not None:
            self.m.u64(self.interp + layout.interp_gil_pointer, self.gil)
        self.version = self.m.alloc(8)
        self.tstates: list[int] = []

    def type(self, name: str) -> int:
        if name not in self.types:
            t = self.m.alloc(512)
            s = self.m.alloc(64)
            self.m.put(s, name.encode() + b"\0")
            self.m.u64(t + self.lay.tp_name, s)
            self.types[name] = t
        return self.types[name]

    def obj(self, type_name: str, size: int) -> int:
        o = self.m.alloc(size)
        self.m.u64(o + self.lay.ob_type, self.type(type_name))
        return o

    def str(self, text: str) -> int:
        data = text.encode("latin-1")
        o = self.obj("str", self.lay.ascii_size + len(data) + 1)
        self.m.u64(o + 16, len(data))
        self.m.u32(o + 32, 1 << 2 | 1 << 5 | 1 << 6)     # kind 1, compact, ascii
        self.m.put(o + self.lay.ascii_size, data)
        return o

    def bytes(self, data: bytes) -> int:
        o = self.obj("bytes", self.lay.bytes_sval + len(data) + 1)
        self.m.u64(o + self.lay.var_size, len(data))
        self.m.put(o + self.lay.bytes_sval, data)
        return o

    def code(self, fn) -> int:
        c = fn.__code__
        o = self.obj("code", self.lay.code_adaptive + len(c.co_code))
        lay = self.lay
        self.m.u64(o + lay.code_name, self.str(c.co_name))
        self.m.u64(o + lay.code_qualname, self.str(c.co_qualname))
        self.m.u64(o + lay.code_filename, self.str("/app/job.py"))
        self.m.u32(o + lay.code_firstlineno, c.co_firstlineno)
        self.m.u64(o + lay.code_linetable, self.bytes(c.co_linetable))
        self.m.u32(o + lay.code_stacksize, 4)
        return o

    def frame(self, code: int, unit: int, previous: int = 0, owner: int = 0,
              entry: bool = False) -> int:
        lay = self.lay
        f = self.m.alloc(lay.frame_localsplus + 64)
        self.m.u64(f + lay.frame_code, code)
        self.m.u64(f + lay.frame_previous, previous)
        # prev_instr (3.11/3.12) / instr_ptr (3.13+) point at a code unit
        self.m.u64(f + lay.frame_instr, code + lay.code_adaptive + 2 * unit)
        self.m.put(f + lay.frame_owner, bytes([owner]))
        self.m.u32(f + lay.frame_stacktop, 0xFFFFFFFF)     # -1: a running frame
        if entry and lay.frame_is_entry is not None:
            self.m.put(f + lay.frame_is_entry, b"\x01")
        return f

    def thread(self, lwp: int, frame: int) -> int:
        lay = self.lay
        t = self.m.alloc(512)
        self.m.u64(t + lay.tstate_interp, self.interp)
        self.m.u64(t + lay.tstate_native_thread_id, lwp)
        self.m.u64(t + lay.tstate_thread_id, 0x7F0000000000 + lwp)
        if lay.tstate_current_frame is not None:
            self.m.u64(t + lay.tstate_current_frame, frame)
        else:
            cframe = self.m.alloc(64)
            self.m.u64(t + lay.tstate_cframe, cframe)
            self.m.u64(cframe + lay.cframe_current_frame, frame)
        if self.tstates:
            self.m.u64(self.tstates[-1] + lay.tstate_next, t)
        else:
            self.m.u64(self.interp + lay.interp_threads_head, t)
        self.tstates.append(t)
        return t

    def open(self, hexversion: int) -> cpython.Runtime:
        self.m.u32(self.version, hexversion)
        return cpython.open_runtime(self.m.read, {"_PyRuntime": self.runtime,
                                                  "Py_Version": self.version})


def job():
    x = 1
    y = x + 1
    return y


def _unit_of_line(fn, line: int) -> int:
    for start, _end, ln in fn.__code__.co_lines():
        if ln == line:
            return start // 2
    raise AssertionError(line)


def _debug_offsets(minor: int) -> tuple[L.Layout, bytes]:
    """A _Py_DebugOffsets blob as v3.13.0/v3.14.0 headers lay it out, with
    the offsets of those releases' structures (from their DWARF, 3.13.0)."""
    names = L.DEBUG_FIELDS[minor]
    values = dict.fromkeys(names, 0)
    values.update({
        "version": 0x030D00F0 if minor == 13 else 0x030E00F0,
        "runtime_state.interpreters_head": 40 + 8 * len(names),
        "interpreter_state.next": 0, "interpreter_state.threads_head": 72,
        "interpreter_state.ceval_gil": 384,
        # as pyenv's 3.13.0 publishes them: offsets into PyInterpreterState
        # (_gil @7752), not into the GIL struct interp->ceval.gil points at
        "interpreter_state.gil_runtime_state": 7752,
        "interpreter_state.gil_runtime_state_locked": 7768,
        "interpreter_state.gil_runtime_state_holder": 7760,
        "thread_state.next": 8, "thread_state.interp": 16, "thread_state.current_frame": 56,
        "thread_state.thread_id": 136, "thread_state.native_thread_id": 144,
        "interpreter_frame.previous": 8, "interpreter_frame.executable": 0,
        "interpreter_frame.instr_ptr": 56, "interpreter_frame.localsplus": 72,
        "interpreter_frame.owner": 70,
        "code_object.filename": 112, "code_object.name": 120, "code_object.qualname": 128,
        "code_object.linetable": 136, "code_object.firstlineno": 68,
        "code_object.co_code_adaptive": 200,
        "pyobject.ob_type": 8, "type_object.tp_name": 24,
        "bytes_object.ob_size": 16, "bytes_object.ob_sval": 32,
        "unicode_object.asciiobject_size": 40,
    })
    blob = L.DEBUG_COOKIE + struct.pack(f"<{len(names) - 1}Q",
                                        *(values[n] for n in names[1:]))
    return L.from_debug_offsets(minor, values), blob


LAYOUT_CASES = [pytest.param(L.PY311, None, 0x030B02F0, id="3.11"),
                pytest.param(L.PY312, None, 0x030C01F0, id="3.12")]
for _minor in (13, 14):
    _lay, _blob = _debug_offsets(_minor)
    LAYOUT_CASES.append(pytest.param(_lay, _blob, 0x03000000 | _minor << 16 | 0xF0,
                                     id=f"3.{_minor}"))


@pytest.mark.parametrize("layout,blob,hexversion", LAYOUT_CASES)
def test_threads_frames_and_gil(layout, blob, hexversion):
    b = Builder(layout, blob)
    code = b.code(job)
    line = job.__code__.co_firstlineno + 2          # y = x + 1
    outer = b.frame(code, 0, entry=True)
    chain = outer
    if layout.owner_cstack is not None:             # 3.12+: the eval loop's shim frame
        shim = b.frame(code, 0, owner=layout.owner_cstack)
        b.m.u64(outer + layout.frame_previous, shim)
    inner = b.frame(code, _unit_of_line(job, line), previous=chain)
    t1 = b.thread(101, inner)
    b.thread(102, 0)
    rt = b.open(hexversion)
    assert rt.version == f"3.{layout.minor}.{(hexversion >> 8) & 0xFF}"
    threads = rt.threads()
    assert [t.lwp for t in threads] == [101, 102]
    frames = threads[0].frames
    assert [(f.name, f.qualname, f.filename) for f in frames] == \
        [("job", "job", "/app/job.py")] * 2
    assert frames[0].line == line
    assert frames[1].line == job.__code__.co_firstlineno
    assert frames[1].entry and not frames[0].entry
    assert threads[1].frames == []
    # The GIL: locked by thread 101's state; 102 sleeps on gil.cond.
    b.m.u32(b.gil + layout.gil_locked, 1)
    b.m.u64(b.gil + layout.gil_last_holder, t1)
    regs = {102: {"orig_rax": 202, "rdi": b.gil + layout.gil_cond + 40},
            101: {"orig_rax": 202, "rdi": 0x1234}}
    gil = rt.gil(threads, regs)
    assert (gil.owner_lwp, gil.owner_evidence) == (101, "exact")
    assert [w[0] for w in gil.waiters] == [102]
    b.m.u32(b.gil + layout.gil_locked, 0)
    assert rt.gil(threads, {}).owner_lwp is None


def test_frame_chain_loop_and_garbage():
    b = Builder(L.PY311)
    code = b.code(job)
    f1 = b.frame(code, 0)
    f2 = b.frame(code, 0, previous=f1)
    b.m.u64(f1 + L.PY311.frame_previous, f2)        # a cycle
    b.thread(7, f2)
    garbage = b.frame(0xDEAD0000, 0)                 # f_code points nowhere
    b.thread(8, garbage)
    rt = b.open(0x030B02F0)
    t7, t8 = rt.threads()
    assert len(t7.frames) == 2 and "loops" in t7.warnings[0]
    assert t8.frames == [] and "no code object" in t8.warnings[0]


def test_max_frames_bound():
    b = Builder(L.PY311)
    code = b.code(job)
    frame = 0
    for _ in range(50):
        frame = b.frame(code, 0, previous=frame)
    b.thread(9, frame)
    (t,) = b.open(0x030B02F0).threads(max_frames=10)
    assert len(t.frames) == 10 and t.truncated


def test_thread_list_loop():
    b = Builder(L.PY311)
    t1 = b.thread(1, 0)
    t2 = b.thread(2, 0)
    b.m.u64(t2 + L.PY311.tstate_next, t1)           # a cycle in the thread list
    assert [t.lwp for t in b.open(0x030B02F0).threads()] == [1, 2]


def test_identity_and_versions():
    b = Builder(L.PY311)
    with pytest.raises(cpython.UnsupportedVersion, match="3.10.4"):
        b.open(0x030A04F0)
    with pytest.raises(cpython.UnsupportedVersion, match="3.15"):
        b.open(0x030F00A0)
    b.m.u64(b.interp + L.PY311.interp_runtime, 0x1234)     # not our runtime: refuse
    with pytest.raises(cpython.CorruptRuntime, match="does not point back"):
        b.open(0x030B02F0)
    with pytest.raises(cpython.NotPython):
        cpython.open_runtime(b.m.read, {})
    # 3.13 without the cookie: refused, never guessed
    lay, blob = _debug_offsets(13)
    b13 = Builder(lay, b"notdebug" + blob[8:])
    with pytest.raises(cpython.CorruptRuntime, match="cookie"):
        b13.open(0x030D00F0)


def test_locks_rlock_owner_and_waiter():
    """An RLock's owner is its rlock_owner pthread_t (exact); a waiter
    sleeps on the lock's sem_t with the lock on its frame's value stack."""
    lay = L.PY311
    b = Builder(lay)
    code = b.code(job)
    rlock = b.obj("_thread.RLock", 64)
    sem = b.m.alloc(32)
    b.m.u64(rlock + 16, sem)
    b.m.u64(rlock + 24, 0x7F0000000000 + 1)             # owned by thread 1's pthread_t
    b.m.u64(rlock + 32, 1)
    holder_frame = b.frame(code, 0)
    waiter_frame = b.frame(code, 0)
    nlocals = 0
    b.m.u64(waiter_frame + lay.frame_localsplus + 8 * nlocals, rlock)   # value stack slot 0
    b.thread(1, holder_frame)
    b.thread(2, waiter_frame)
    rt = b.open(0x030B02F0)
    threads = rt.threads()
    (res,) = rt.locks(threads, {2: {"orig_rax": 202, "rdi": sem}})
    assert res.kind == "rlock"
    assert (res.owner_lwp, res.owner_evidence) == (1, "exact")
    assert [w[:2] for w in res.waiters] == [(2, "exact")]


def test_lock_held_by_with_is_inferred():
    lay = L.PY311
    b = Builder(lay)
    code = b.code(job)
    lock = b.obj("_thread.lock", 64)
    sem = b.m.alloc(32)
    b.m.u64(lock + 16, sem)
    exit_name = b.m.alloc(64)
    b.m.put(exit_name, b"__exit__\0")
    ml = b.m.alloc(32)
    b.m.u64(ml, exit_name)
    bound = b.obj("builtin_function_or_method", 64)
    b.m.u64(bound + 16, ml)
    b.m.u64(bound + 24, lock)
    holder_frame = b.frame(code, 0)
    b.m.u64(holder_frame + lay.frame_localsplus, bound)   # `with lock:` keeps __exit__
    b.thread(5, holder_frame)
    rt = b.open(0x030B02F0)
    (res,) = rt.locks(rt.threads(), {})
    assert (res.kind, res.owner_lwp, res.owner_evidence) == ("lock", 5, "inferred")
    assert "__exit__" in res.owner_why
    # a frame that called into another saved its stack pointer (3.11
    # stacktop): the __exit__ past it is a dead slot, no holder
    b.m.u32(holder_frame + lay.frame_stacktop, 0)
    rt = b.open(0x030B02F0)
    assert rt.locks(rt.threads(), {}) == []
    b.m.u32(holder_frame + lay.frame_stacktop, 1)
    rt = b.open(0x030B02F0)
    (res,) = rt.locks(rt.threads(), {})
    assert res.owner_lwp == 5


def _f(line, name="f"):
    return cpython.PyFrame(0, name, name, "x.py", line)


def test_runs_of_one_location_collapse_and_count():
    frames = [_f(9, "leaf")] + [_f(18)] * 5 + [_f(30, "main")]
    assert cpython.collapsed_lines(frames) == [
        "#0 x.py:9 in leaf", "#1-#5 x.py:18 in f  (repeated 5 times)", "#6 x.py:30 in main"]


def test_frames_past_max_frames_join_the_run_or_say_they_were_not_read():
    kept, outer = [_f(9, "leaf")] + [_f(18)] * 3, [_f(18), _f(25, "entry"), _f(30, "main")]
    same = cpython.collapsed_lines(kept, depth=100_000, outer=outer, middle_same=True)
    assert same == ["#0 x.py:9 in leaf", "#1-#99997 x.py:18 in f  (repeated 99,997 times)",
                    "#99998 x.py:25 in entry", "#99999 x.py:30 in main"]
    other = cpython.collapsed_lines(kept, depth=100_000, outer=outer, middle_same=False)
    assert other[2] == "#4-#99996 (99,993 frames counted, not read: max-frames)"
    assert other[1] == "#1-#3 x.py:18 in f  (repeated 3 times)"


# --- the layouts against CPython's own DWARF ----------------------------------
# pyenv builds libpython with debug info: gdb (no gdbext) evaluates offsetof,
# sizeof and enum constants from it, and prints the _Py_DebugOffsets a 3.13
# interpreter publishes from its static _PyRuntime.  The layouts were written
# from the headers; this checks every field against the compiled structures.
def _offsets(prefix: str) -> dict[str, str]:
    T, I, F, C = "PyThreadState", "PyInterpreterState", "_PyInterpreterFrame", "PyCodeObject"
    at = "(long)&(({}*)0)->{}".format
    return {
        "runtime_interpreters_head": at("_PyRuntimeState", "interpreters.head"),
        "interp_next": at(I, "next"), "interp_threads_head": at(I, "threads.head"),
        "interp_recursion_limit": at(I, "ceval.recursion_limit"),
        "tstate_next": at(T, "next"), "tstate_interp": at(T, "interp"),
        "tstate_thread_id": at(T, "thread_id"),
        "tstate_native_thread_id": at(T, "native_thread_id"),
        "frame_previous": at(F, "previous"), "frame_owner": at(F, "owner"),
        "frame_stacktop": at(F, "stacktop"), "frame_localsplus": at(F, "localsplus"),
        "code_filename": at(C, "co_filename"), "code_name": at(C, "co_name"),
        "code_qualname": at(C, "co_qualname"), "code_linetable": at(C, "co_linetable"),
        "code_firstlineno": at(C, "co_firstlineno"),
        "code_nlocalsplus": at(C, "co_nlocalsplus"), "code_stacksize": at(C, "co_stacksize"),
        "code_adaptive": at(C, "co_code_adaptive"),
        "ascii_size": "(long)sizeof(PyASCIIObject)",
        "compact_size": "(long)sizeof(PyCompactUnicodeObject)",
        "gil_last_holder": at("struct _gil_runtime_state", "last_holder"),
        "gil_locked": at("struct _gil_runtime_state", "locked"),
        "gil_cond": at("struct _gil_runtime_state", "cond"),
        "gil_mutex": at("struct _gil_runtime_state", "mutex"),
        "ob_type": at("PyObject", "ob_type"), "var_size": at("PyVarObject", "ob_size"),
        "tp_name": at("PyTypeObject", "tp_name"), "bytes_sval": at("PyBytesObject", "ob_sval"),
        **{
            "3.11": {"runtime_gil": at("_PyRuntimeState", "ceval.gil"),
                     "interp_runtime": at(I, "runtime"), "tstate_cframe": at(T, "cframe"),
                     "cframe_current_frame": at("_PyCFrame", "current_frame"),
                     "tstate_on_delete_data": at(T, "on_delete_data"),
                     "frame_code": at(F, "f_code"), "frame_instr": at(F, "prev_instr"),
                     "frame_is_entry": at(F, "is_entry")},
            "3.12": {"interp_runtime": at(I, "runtime"), "interp_gil_pointer": at(I, "ceval.gil"),
                     "tstate_cframe": at(T, "cframe"),
                     "cframe_current_frame": at("_PyCFrame", "current_frame"),
                     "tstate_on_delete_data": at(T, "on_delete_data"),
                     "frame_code": at(F, "f_code"), "frame_instr": at(F, "prev_instr"),
                     "owner_cstack": "(long)FRAME_OWNED_BY_CSTACK"},
            "3.13": {"interp_gil_pointer": at(I, "ceval.gil"),
                     "tstate_current_frame": at(T, "current_frame"),
                     "frame_code": at(F, "f_executable"), "frame_instr": at(F, "instr_ptr"),
                     "owner_cstack": "(long)FRAME_OWNED_BY_CSTACK"},
        }[prefix]}


def _dwarf(library, expressions: dict[str, str]) -> dict[str, int]:
    """name -> the value gdb computes for its expression from the DWARF of
    ``library`` (a name gdb cannot evaluate is absent)."""
    import subprocess
    from tests.host import GDB
    argv = [GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off", str(library)]
    for name, expression in expressions.items():
        argv += ["-ex", f'printf "DWARF {name} %ld\\n", {expression}']
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120).stdout
    return {m[0]: int(m[1]) for m in
            (line.split()[1:] for line in out.splitlines() if line.startswith("DWARF "))}


def _libpython(version: str):
    from tests.host import libpython_with_dwarf
    return libpython_with_dwarf(version)


def _every_field(layout: L.Layout) -> dict[str, int | None]:
    names = [n for k in type(layout).__mro__ for n in getattr(k, "__annotations__", {})]
    return {n: getattr(layout, n) for n in dict.fromkeys(names) if n not in ("minor", "source")}


@pytest.mark.parametrize("version", ["3.11", "3.12"])
def test_layout_matches_the_dwarf_of_pyenvs_build(version):
    lib = _libpython(version)
    expressions = _offsets(version)
    dwarf = _dwarf(lib, expressions)
    assert set(dwarf) == set(expressions), set(expressions) - set(dwarf)   # all evaluated
    fields = _every_field(L.LAYOUTS[int(version[2:])])
    # every field the layout sets is checked; what it leaves None has no expression
    assert {k for k, v in fields.items() if v is not None} == set(expressions)
    assert {k: fields[k] for k in expressions} == dwarf


def test_debug_offsets_names_and_values_match_the_dwarf_of_pyenvs_313():
    """DEBUG_FIELDS, read by position, is _Py_DebugOffsets member by member;
    the values the interpreter publishes (its static _PyRuntime, printed by
    gdb by member name) give a layout that matches 3.13's own structures."""
    lib = _libpython("3.13")
    names = L.DEBUG_FIELDS[13]
    positions = _dwarf(lib, {n: f"(long)&((struct _Py_DebugOffsets*)0)->{n}" for n in names}
                       | {"size": "(long)sizeof(struct _Py_DebugOffsets)"})
    assert positions == {**{n: 8 * i for i, n in enumerate(names)}, "size": 8 * len(names)}
    values = _dwarf(lib, {n: f"(long)_PyRuntime.debug_offsets.{n}" for n in names[1:]})
    assert len(values) == len(names) - 1
    layout = L.from_debug_offsets(13, {"cookie": 0, **values})
    expressions = _offsets("3.13")
    dwarf = _dwarf(lib, expressions)
    assert set(dwarf) == set(expressions), set(expressions) - set(dwarf)
    fields = _every_field(layout)
    assert {k for k, v in fields.items() if v is not None} == set(expressions)
    assert {k: fields[k] for k in expressions} == dwarf
