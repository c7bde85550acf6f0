"""libstdc++'s in-flight exception reader on hostile bytes: a dependent
exception (std::rethrow_exception) whose primaryException is null, unmapped,
points back into itself or at another dependent header; a type_info that is
not one; a nested_exception pointing at garbage or in a loop.  Each is an
ExceptionError or a warning, never another exception.  (The real layouts
are tested on real g++ programs in tests/e2e/test_everyday.py.)"""
from __future__ import annotations

import re
import struct

import pytest

from gdbext.runtimes import cxx
from tests.unit.test_runtime_readers import Memory

SI, CLS, VMI = 0x7000, 0x7100, 0x7300
VTABLES = {SI: "si", CLS: "class", VMI: "vmi"}
NAMES = {"St13runtime_error": "std::runtime_error", "St9exception": "std::exception",
         "St16nested_exception": "std::nested_exception",
         "St17_Nested_exceptionISt13runtime_errorE":
             "std::_Nested_exception<std::runtime_error>"}


def demangle(name):
    return NAMES.get(name)


def type_infos(mem: Memory) -> dict[str, int]:
    """runtime_error (si) -> exception (class); nested_exception (class);
    _Nested_exception<runtime_error> (vmi: runtime_error@0, nested_exception@16)."""
    strings = b"St13runtime_error\0St9exception\0St16nested_exception\0" \
              b"St17_Nested_exceptionISt13runtime_errorE\0"
    mem.put(0x50000, strings)
    at = {n: 0x50000 + strings.index(n.encode()) for n in NAMES}
    ti = {"exc": 0x51000, "rt": 0x51100, "ne": 0x51200, "nested": 0x51300}
    blob = bytearray(0x400)                         # one page: Memory pads each put
    struct.pack_into("<QQ", blob, 0, CLS, at["St9exception"])
    struct.pack_into("<QQQ", blob, 0x100, SI, at["St13runtime_error"], ti["exc"])
    struct.pack_into("<QQ", blob, 0x200, CLS, at["St16nested_exception"])
    struct.pack_into("<QQIIQqQq", blob, 0x300, VMI,
                     at["St17_Nested_exceptionISt13runtime_errorE"], 0, 2,
                     ti["rt"], 2, ti["ne"], (16 << 8) | 2)
    mem.put(0x51000, bytes(blob))
    return ti


def primary(mem: Memory, header: int, tinfo: int, message: bytes, refs: int = 2,
            nested_ptr: int | None = None) -> int:
    """A __cxa_refcounted_exception at header - 16; returns the thrown object."""
    hdr = bytearray(16 + 112)
    struct.pack_into("<i", hdr, 0, refs)
    struct.pack_into("<Q", hdr, 16, tinfo)
    hdr[16 + 80:16 + 88] = cxx.GNU_CXX
    text = header + 0x400
    obj = struct.pack("<QQ", 0x7200, text)          # runtime_error: vptr, __cow_string
    if nested_ptr is not None:
        obj += struct.pack("<QQ", 0x7280, nested_ptr)   # nested_exception: vptr, _M_ptr
    blob = (bytes(hdr) + obj).ljust(0x400 + 16, b"\0") + message + b"\0"
    mem.put(header - 16, blob)
    return header + 112


def dependent(mem: Memory, header: int, primary_object: int) -> int:
    hdr = bytearray(112)
    struct.pack_into("<Q", hdr, 0, primary_object)      # primaryException
    hdr[80:88] = cxx.GNU_CXX_DEPENDENT
    mem.put(header, bytes(hdr))
    return mem.put(0x62000, struct.pack("<QI", header, 0))      # __cxa_eh_globals


def test_dependent_exception_reads_the_primary():
    mem = Memory()
    ti = type_infos(mem)
    obj = primary(mem, 0x60000, ti["rt"], b"bad config")
    g = dependent(mem, 0x64000, obj)
    found = cxx.in_flight(mem.read, g, demangle, VTABLES)
    assert (found.type, found.what, found.rethrown, found.references) == (
        "std::runtime_error", "bad config", True, 2)
    assert found.to_json()["rethrown"] == "std::rethrow_exception"
    assert found.warnings == []


@pytest.mark.parametrize("target, needle", [
    (lambda mem, dep: 0, "no primary"),
    (lambda mem, dep: 0xDEAD0000, "unreadable"),
    (lambda mem, dep: dep, "back into itself"),
    (lambda mem, dep: dep + 112, "back into itself"),
    (lambda mem, dep: dep + 40, "back into itself"),
    (lambda mem, dep: 0x68000 + 112, "another dependent"),
    (lambda mem, dep: 0x6A000 + 112, "not a GNU C++ primary"),
    (lambda mem, dep: 0x60000 + 120, "misaligned"),
])
def test_corrupt_dependent_header_is_an_error(target, needle):
    mem = Memory()
    ti = type_infos(mem)
    primary(mem, 0x60000, ti["rt"], b"x")
    dependent(mem, 0x68000, 0x60000 + 112)        # a dependent pointing at the primary
    junk = bytearray(112)
    junk[80:88] = b"GNUCFOR\0"                     # libgcc's forced-unwind class
    mem.put(0x6A000, bytes(junk) + b"\0" * 16)
    g = dependent(mem, 0x64000, target(mem, 0x64000))
    with pytest.raises(cxx.ExceptionError, match=re.escape(needle)):
        cxx.in_flight(mem.read, g, demangle, VTABLES)


def test_type_info_with_a_foreign_vtable_is_an_error():
    mem = Memory()
    ti = type_infos(mem)
    mem.put(0x53000, struct.pack("<QQ", 0x9999, 0x50000))   # not a type_info vtable
    obj = primary(mem, 0x60000, 0x53000, b"x")
    g = dependent(mem, 0x64000, obj)
    with pytest.raises(cxx.ExceptionError, match="type_info vtables"):
        cxx.in_flight(mem.read, g, demangle, VTABLES)
    assert ti


def test_freed_primary_is_a_warning():
    mem = Memory()
    ti = type_infos(mem)
    obj = primary(mem, 0x60000, ti["rt"], b"x", refs=0)
    found = cxx.in_flight(mem.read, dependent(mem, 0x64000, obj), demangle, VTABLES)
    assert any("reference count is 0" in w for w in found.warnings)


def test_nested_exception_is_followed_through_the_base_offset():
    mem = Memory()
    ti = type_infos(mem)
    inner = primary(mem, 0x70000, ti["rt"], b"inner")
    outer = primary(mem, 0x60000, ti["nested"], b"outer", nested_ptr=inner)
    g = mem.put(0x62000, struct.pack("<QI", outer - 112, 0))
    found = cxx.in_flight(mem.read, g, demangle, VTABLES)
    assert (found.type, found.what) == ("std::_Nested_exception<std::runtime_error>", "outer")
    assert [(n.type, n.what) for n in found.nested] == [("std::runtime_error", "inner")]
    assert found.warnings == []


@pytest.mark.parametrize("pointer, needle", [
    (0xDEAD0000, "not followed"),                       # unmapped
    (0x60000 + 112, "points back"),                     # to itself
    (0x50000, "not followed"),                          # to strings: no header there
])
def test_garbage_nested_pointer_is_a_warning(pointer, needle):
    mem = Memory()
    ti = type_infos(mem)
    outer = primary(mem, 0x60000, ti["nested"], b"outer", nested_ptr=pointer)
    g = mem.put(0x62000, struct.pack("<QI", outer - 112, 0))
    found = cxx.in_flight(mem.read, g, demangle, VTABLES)
    assert found.what == "outer" and found.nested == []
    assert any(needle in w for w in found.warnings), found.warnings


def test_nested_loop_ends_with_a_warning():
    mem = Memory()
    ti = type_infos(mem)
    a, b = 0x60000 + 112, 0x70000 + 112
    primary(mem, 0x60000, ti["nested"], b"a", nested_ptr=b)
    primary(mem, 0x70000, ti["nested"], b"b", nested_ptr=a)
    g = mem.put(0x62000, struct.pack("<QI", a - 112, 0))
    found = cxx.in_flight(mem.read, g, demangle, VTABLES)
    assert [n.what for n in found.nested] == ["b"]
    assert any("points back" in w for w in found.warnings)


def constant_exception(mem: Memory, mangled: bytes, vptr: int) -> int:
    """A thrown object of a class type_info named ``mangled`` whose vtable
    is at ``vptr``; returns __cxa_eh_globals."""
    mem.put(0x58000, mangled + b"\0")
    mem.put(0x59000, struct.pack("<QQ", CLS, 0x58000))
    header = 0x60000
    hdr = bytearray(112)
    struct.pack_into("<Q", hdr, 0, 0x59000)
    hdr[80:88] = cxx.GNU_CXX
    mem.put(header, bytes(hdr) + struct.pack("<Q", vptr))
    return mem.put(0x62000, struct.pack("<QI", header, 1))


def test_a_constant_what_from_the_table_and_a_disagreeing_library():
    mem = Memory()
    mem.put(0x7400, struct.pack("<QQQ", 0, 0, 0x9000))        # vtable: what() at 0x9000
    mem.put(0xA000, b"std::bad_alloc (patched)\0")
    g = constant_exception(mem, b"St9bad_alloc", 0x7400)
    found = cxx.in_flight(mem.read, g, demangle, {})
    assert (found.what, found.what_from, found.warnings) == ("std::bad_alloc", "table", [])
    # the library's own code returns another literal: its text, with a warning
    code = cxx.Code(lambda fn: 0xA000 if fn == 0x9000 else None)
    found = cxx.in_flight(mem.read, g, demangle, {}, code)
    assert (found.what, found.what_from) == ("std::bad_alloc (patched)", "code")
    assert "not 'std::bad_alloc'" in found.warnings[0]


@pytest.mark.parametrize("vptr", [0, 0xDEAD0000])
def test_a_garbage_vtable_is_a_warning(vptr):
    mem = Memory()
    g = constant_exception(mem, b"St9bad_alloc", vptr)
    found = cxx.in_flight(mem.read, g, demangle, {}, cxx.Code(lambda fn: None))
    assert found.what is None and "unreadable" in found.warnings[0]


def test_system_error_category_from_its_name_code():
    mem = Memory()
    ti = type_infos(mem)                # system_error : runtime_error : exception
    mem.put(0x58000, b"St12system_error\0")
    mem.put(0x59000, struct.pack("<QQQ", SI, 0x58000, ti["rt"]))
    hdr = bytearray(112)
    struct.pack_into("<Q", hdr, 0, 0x59000)
    hdr[80:88] = cxx.GNU_CXX
    # system_error: vptr, _M_msg, error_code{22, &category}; category: vptr -> name() 0x9100
    mem.put(0x60000, bytes(hdr) + struct.pack("<QQiiQ", 0x7400, 0xA100, 22, 0, 0xB000))
    mem.put(0x7400, struct.pack("<QQQ", 0, 0, 0x9000))
    mem.put(0xA100, b"open: Invalid argument\0")
    mem.put(0xB000, struct.pack("<Q", 0xD100))
    mem.put(0xD100, struct.pack("<QQQ", 0, 0, 0x9100))
    mem.put(0xC000, b"generic\0")
    g = mem.put(0x62000, struct.pack("<QI", 0x60000, 1))
    code = cxx.Code(lambda fn: {0x9100: 0xC000}.get(fn), frozenset({0x9000}))
    found = cxx.in_flight(mem.read, g, demangle, VTABLES, code)
    assert (found.what, found.error) == ("open: Invalid argument",
                                         {"value": 22, "category": "generic"})
    # what() overridden (its slot is not runtime_error::what) and not a constant: unknown
    code = cxx.Code(lambda fn: {0x9100: 0xC000}.get(fn), frozenset({0x9999}))
    assert cxx.in_flight(mem.read, g, demangle, VTABLES, code).what is None
