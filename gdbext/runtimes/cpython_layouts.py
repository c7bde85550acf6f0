"""Where CPython keeps what a debugger needs, per minor version: data only.

Every offset cites the header that defines it at the release tag.  3.11 and
3.12 are hard-coded (checked against the DWARF of pyenv's 3.11.7 and 3.12.1
builds with ``ptype/o``); from 3.13 on the interpreter publishes most of them
itself in ``_PyRuntime.debug_offsets`` (``_Py_DebugOffsets``), whose own
shape is listed here field by field so it can be read from the target.
"""
from __future__ import annotations

from ..record import record


@record(frozen=True)
class Layout:
    """Offsets into one CPython minor version's runtime structures."""
    minor: int
    source: str
    # _PyRuntimeState (Include/internal/pycore_runtime.h)
    runtime_interpreters_head: int
    runtime_gil: int | None          # 3.11: _PyRuntime.ceval.gil, embedded
    # PyInterpreterState (Include/internal/pycore_interp.h)
    interp_next: int
    interp_threads_head: int
    interp_runtime: int | None       # back-pointer to _PyRuntime: the identity check
    interp_gil_pointer: int | None   # 3.12+: interp->ceval.gil, a pointer
    interp_recursion_limit: int | None   # interp->ceval.recursion_limit (an int)
    # PyThreadState (Include/cpython/pystate.h)
    tstate_next: int
    tstate_interp: int
    tstate_thread_id: int            # pthread_self()
    tstate_native_thread_id: int     # the LWP
    tstate_cframe: int | None        # 3.11/3.12: tstate->cframe->current_frame
    cframe_current_frame: int | None
    tstate_current_frame: int | None  # 3.13+: tstate->current_frame
    tstate_on_delete_data: int | None  # 3.11/3.12: a weakref to threading's _tstate_lock
    # _PyInterpreterFrame (Include/internal/pycore_frame.h)
    frame_code: int
    frame_previous: int
    frame_instr: int                 # prev_instr (3.11/3.12) or instr_ptr (3.13+)
    frame_owner: int
    frame_is_entry: int | None       # 3.11 only: the frame a C call of the eval loop entered
    frame_stacktop: int
    frame_localsplus: int
    owner_cstack: int | None         # 3.12+: the eval loop's own entry (shim) frame
    # PyCodeObject (Include/cpython/code.h)
    code_filename: int
    code_name: int
    code_qualname: int
    code_linetable: int
    code_firstlineno: int
    code_nlocalsplus: int
    code_stacksize: int
    code_adaptive: int               # co_code_adaptive: the first code unit
    # PyUnicodeObject (Include/cpython/unicodeobject.h)
    ascii_size: int                  # sizeof(PyASCIIObject): compact ASCII data follows
    compact_size: int                # sizeof(PyCompactUnicodeObject)
    # struct _gil_runtime_state (Include/internal/pycore_gil.h)
    gil_last_holder: int = 8
    gil_locked: int = 16
    gil_cond: int = 32               # pthread_cond_t, 48 bytes: take_gil waits here
    gil_mutex: int = 80              # pthread_mutex_t, 40 bytes
    # Stable since 3.0 (Include/object.h, Include/cpython/object.h, bytesobject.h)
    ob_type: int = 8
    var_size: int = 16               # PyVarObject.ob_size
    tp_name: int = 24
    bytes_sval: int = 32


# v3.11.0: Include/internal/pycore_runtime.h (pyruntimestate: interpreters @32
# {mutex, head, main, next_id}, ceval @352 {signals_pending, gil @+8}),
# pycore_interp.h (_is: next @0, threads {next_unique_id, head} @8, runtime @40),
# cpython/pystate.h (_ts: next @8, interp @16, cframe @56, thread_id @152,
# native_thread_id @160, on_delete_data @192; _PyCFrame: use_tracing,
# current_frame @8; Modules/_threadmodule.c thread__set_sentinel stores a
# weakref to the thread's _tstate_lock in on_delete_data),
# pycore_frame.h (f_code @32, previous @48, prev_instr @56, stacktop @64,
# is_entry @68, owner @69, localsplus @72), cpython/code.h (co_stacksize @68,
# co_firstlineno @72, co_nlocalsplus @76, co_filename @112 .. co_linetable @136,
# co_code_adaptive @184), cpython/unicodeobject.h (PyASCIIObject 48 bytes with wstr).
PY311 = Layout(
    minor=11, source="CPython v3.11.0 headers (checked on 3.11.7 DWARF)",
    runtime_interpreters_head=40, runtime_gil=360,
    interp_next=0, interp_threads_head=16, interp_runtime=40, interp_gil_pointer=None,
    interp_recursion_limit=96,      # ceval @96 {recursion_limit @0} (3.11.7 DWARF)
    tstate_next=8, tstate_interp=16, tstate_thread_id=152, tstate_native_thread_id=160,
    tstate_cframe=56, cframe_current_frame=8, tstate_current_frame=None,
    tstate_on_delete_data=192,
    frame_code=32, frame_previous=48, frame_instr=56, frame_owner=69, frame_is_entry=68,
    frame_stacktop=64, frame_localsplus=72, owner_cstack=None,
    code_filename=112, code_name=120, code_qualname=128, code_linetable=136,
    code_firstlineno=72, code_nlocalsplus=76, code_stacksize=68, code_adaptive=184,
    ascii_size=48, compact_size=72)

# v3.12.0: pycore_runtime.h (interpreters @32 as in 3.11), pycore_interp.h
# (_is: threads {.., head} @64, runtime @96, ceval {.., gil* @+16} @368),
# cpython/pystate.h (thread_id @136, native_thread_id @144, cframe @56,
# on_delete_data @176;
# _PyCFrame: current_frame @0), pycore_frame.h (f_code @0, previous @8,
# prev_instr @56, stacktop @64, owner @70; FRAME_OWNED_BY_CSTACK = 3),
# cpython/code.h (co_stacksize @64, co_firstlineno @68, co_nlocalsplus @72,
# co_code_adaptive @192), unicodeobject.h (wstr gone: PyASCIIObject 40 bytes).
PY312 = Layout(
    minor=12, source="CPython v3.12.0 headers (checked on 3.12.1 DWARF)",
    runtime_interpreters_head=40, runtime_gil=None,
    interp_next=0, interp_threads_head=72, interp_runtime=96, interp_gil_pointer=384,
    interp_recursion_limit=376,     # ceval @368 {.., recursion_limit @8} (3.12.1 DWARF)
    tstate_next=8, tstate_interp=16, tstate_thread_id=136, tstate_native_thread_id=144,
    tstate_cframe=56, cframe_current_frame=0, tstate_current_frame=None,
    tstate_on_delete_data=176,
    frame_code=0, frame_previous=8, frame_instr=56, frame_owner=70, frame_is_entry=None,
    frame_stacktop=64, frame_localsplus=72, owner_cstack=3,
    code_filename=112, code_name=120, code_qualname=128, code_linetable=136,
    code_firstlineno=68, code_nlocalsplus=72, code_stacksize=64, code_adaptive=192,
    ascii_size=40, compact_size=56)

LAYOUTS = {11: PY311, 12: PY312}

# _Py_DebugOffsets, the first member of _PyRuntimeState from 3.13 on: a cookie,
# the version, then groups of uint64 offsets, each group led by its struct's
# size.  v3.13.0 Include/internal/pycore_runtime.h; v3.14.0
# Include/internal/pycore_debug_offsets.h (new fields marked).
DEBUG_COOKIE = b"xdebugpy"
_DEBUG_FIELDS_313 = (
    "cookie", "version", "free_threaded",
    "runtime_state.size", "runtime_state.finalizing", "runtime_state.interpreters_head",
    "interpreter_state.size", "interpreter_state.id", "interpreter_state.next",
    "interpreter_state.threads_head", "interpreter_state.gc",
    "interpreter_state.imports_modules", "interpreter_state.sysdict",
    "interpreter_state.builtins", "interpreter_state.ceval_gil",
    "interpreter_state.gil_runtime_state", "interpreter_state.gil_runtime_state_enabled",
    "interpreter_state.gil_runtime_state_locked", "interpreter_state.gil_runtime_state_holder",
    "thread_state.size", "thread_state.prev", "thread_state.next", "thread_state.interp",
    "thread_state.current_frame", "thread_state.thread_id", "thread_state.native_thread_id",
    "thread_state.datastack_chunk", "thread_state.status",
    "interpreter_frame.size", "interpreter_frame.previous", "interpreter_frame.executable",
    "interpreter_frame.instr_ptr", "interpreter_frame.localsplus", "interpreter_frame.owner",
    "code_object.size", "code_object.filename", "code_object.name", "code_object.qualname",
    "code_object.linetable", "code_object.firstlineno", "code_object.argcount",
    "code_object.localsplusnames", "code_object.localspluskinds",
    "code_object.co_code_adaptive",
    "pyobject.size", "pyobject.ob_type",
    "type_object.size", "type_object.tp_name", "type_object.tp_repr", "type_object.tp_flags",
    "tuple_object.size", "tuple_object.ob_item", "tuple_object.ob_size",
    "list_object.size", "list_object.ob_item", "list_object.ob_size",
    "dict_object.size", "dict_object.ma_keys", "dict_object.ma_values",
    "float_object.size", "float_object.ob_fval",
    "long_object.size", "long_object.lv_tag", "long_object.ob_digit",
    "bytes_object.size", "bytes_object.ob_size", "bytes_object.ob_sval",
    "unicode_object.size", "unicode_object.state", "unicode_object.length",
    "unicode_object.asciiobject_size",
    "gc.size", "gc.collecting",
)


def _insert_after(fields: tuple, anchor: str, *new: str) -> tuple:
    i = fields.index(anchor) + 1
    return fields[:i] + new + fields[i:]


# 3.14 adds interpreter_state.threads_main, code_object_generation,
# tlbc_generation; interpreter_frame.stackpointer, tlbc_index; code_object.co_tlbc;
# set_object; the tail (gen_object, llist_node, debugger_support) is not needed.
_f = _insert_after(_DEBUG_FIELDS_313, "interpreter_state.threads_head",
                   "interpreter_state.threads_main")
_f = _insert_after(_f, "interpreter_state.gil_runtime_state_holder",
                   "interpreter_state.code_object_generation",
                   "interpreter_state.tlbc_generation")
_f = _insert_after(_f, "interpreter_frame.owner", "interpreter_frame.stackpointer",
                   "interpreter_frame.tlbc_index")
_f = _insert_after(_f, "code_object.co_code_adaptive", "code_object.co_tlbc")
_f = _insert_after(_f, "list_object.ob_size", "set_object.size", "set_object.used",
                   "set_object.table", "set_object.mask")
_DEBUG_FIELDS_314 = _f

DEBUG_FIELDS = {13: _DEBUG_FIELDS_313, 14: _DEBUG_FIELDS_314}

# FRAME_OWNED_BY_CSTACK (pycore_frame.h): 3 in v3.13.0, 4 in v3.14.0 (after
# FRAME_OWNED_BY_INTERPRETER).
OWNER_CSTACK = {13: 3, 14: 4}


def from_debug_offsets(minor: int, values: dict[str, int]) -> Layout:
    """A Layout from the offsets a 3.13+ interpreter published about itself.
    What _Py_DebugOffsets does not carry (cframe is gone; the value-stack
    fields) is left None or taken from the same release's headers."""
    v = values
    return Layout(
        minor=minor, source=f"_Py_DebugOffsets in the target (3.{minor})",
        runtime_interpreters_head=v["runtime_state.interpreters_head"], runtime_gil=None,
        interp_next=v["interpreter_state.next"],
        interp_threads_head=v["interpreter_state.threads_head"],
        interp_runtime=None, interp_gil_pointer=v["interpreter_state.ceval_gil"],
        # not published: 3.13's struct _ceval_state {uintptr_t
        # instrumentation_version; int recursion_limit; gil *} (3.13.0 DWARF:
        # ceval @0, recursion_limit @8, gil @16) -- taken only where the
        # published gil pointer sits at 16, as there
        interp_recursion_limit=(8 if minor == 13 and v["interpreter_state.ceval_gil"] == 16
                                else None),
        tstate_next=v["thread_state.next"], tstate_interp=v["thread_state.interp"],
        tstate_thread_id=v["thread_state.thread_id"],
        tstate_native_thread_id=v["thread_state.native_thread_id"],
        tstate_cframe=None, cframe_current_frame=None,
        tstate_current_frame=v["thread_state.current_frame"],
        tstate_on_delete_data=None,     # 3.13 joins through a thread handle instead
        frame_code=v["interpreter_frame.executable"],
        frame_previous=v["interpreter_frame.previous"],
        frame_instr=v["interpreter_frame.instr_ptr"],
        frame_owner=v["interpreter_frame.owner"], frame_is_entry=None,
        frame_stacktop=64, frame_localsplus=v["interpreter_frame.localsplus"],
        owner_cstack=OWNER_CSTACK.get(minor, 4),
        code_filename=v["code_object.filename"], code_name=v["code_object.name"],
        code_qualname=v["code_object.qualname"], code_linetable=v["code_object.linetable"],
        code_firstlineno=v["code_object.firstlineno"], code_nlocalsplus=72,
        code_stacksize=64, code_adaptive=v["code_object.co_code_adaptive"],
        ascii_size=v["unicode_object.asciiobject_size"],
        compact_size=v["unicode_object.asciiobject_size"] + 16,
        **_gil_fields(v),
        ob_type=v["pyobject.ob_type"], tp_name=v["type_object.tp_name"],
        var_size=v["bytes_object.ob_size"], bytes_sval=v["bytes_object.ob_sval"])


def _gil_fields(v: dict[str, int]) -> dict[str, int]:
    """struct _gil_runtime_state's fields, relative to the struct.  3.13 and
    3.14 publish them as offsets into PyInterpreterState (pycore_runtime.h /
    pycore_debug_offsets.h: ``offsetof(PyInterpreterState, _gil.locked)``),
    beside the struct's own ``offsetof(PyInterpreterState, _gil)``; the GIL is
    reached through ``interp->ceval.gil``, so subtract.  cond and mutex are not
    published: they follow ``switch_number`` as in pycore_gil.h, shifted as
    ``last_holder`` is (a free-threaded build's ``enabled`` comes first)."""
    base = v["interpreter_state.gil_runtime_state"]
    holder = v["interpreter_state.gil_runtime_state_holder"]
    locked = v["interpreter_state.gil_runtime_state_locked"]
    if base <= holder and base <= locked:       # interpreter-relative, as published
        holder, locked = holder - base, locked - base
    shift = holder - Layout.gil_last_holder
    return {"gil_last_holder": holder, "gil_locked": locked,
            "gil_cond": Layout.gil_cond + shift, "gil_mutex": Layout.gil_mutex + shift}
