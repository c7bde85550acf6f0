"""Rust std's panic message and thread name readers (gdbext/runtimes/rust.py)
on hostile bytes: garbage in the PanicHookInfo's payload or in std's Thread
handle is a warning or "unknown", never an exception.  The layouts are the
ones the real-program tests (tests/e2e/test_everyday.py) check against std's
own stderr; here only the validation is exercised."""
from __future__ import annotations

import struct

import pytest

from gdbext.runtimes import rust
from tests.unit.test_runtime_readers import Memory

CODE = range(0x400000, 0x500000)
LOCATION = 0x41000
STRING_VTABLE, STR_VTABLE, OTHER_VTABLE = 0x42000, 0x43000, 0x44000


def is_code(v):
    return v in CODE


def is_static(v):
    return 0x40000 <= v < 0x50000


def space(payload: bytes, vtable=STRING_VTABLE, order="payload-first"):
    """A stack whose PanicHookInfo points at ``payload`` (put at 0x90800)."""
    mem = Memory()
    mem.put(0x40000, b"src/main.rs")
    mem.put(LOCATION, struct.pack("<QQII", 0x40000, 11, 12, 5))
    mem.put(STRING_VTABLE, struct.pack("<4Q", 0x400100, 24, 8, 0x400200))
    mem.put(STR_VTABLE, struct.pack("<4Q", 0, 16, 8, 0x400300))         # no drop glue
    mem.put(OTHER_VTABLE, struct.pack("<4Q", 0x400100, 32, 8, 0x400400))
    info = ((0x90800, vtable, LOCATION) if order == "payload-first"
            else (LOCATION, 0x90800, vtable))
    stack = 0x90000
    mem.put(stack, struct.pack("<9Q", 1, LOCATION, 0x90800, OTHER_VTABLE, LOCATION, *info, 1)
            + b"\0" * (0x800 - 72) + payload)
    return mem, stack


def message(mem, stack):
    warnings = []
    found = rust.find_message(mem.read, stack, 512, LOCATION, is_static, is_code, warnings)
    return found, warnings


@pytest.mark.parametrize("order", ["payload-first", "location-first"])
@pytest.mark.parametrize("layout", rust.STRING_LAYOUTS)
def test_a_string_payload(layout, order):
    text = "index out of bounds: the len is 3 but the index is 7".encode()
    fields = {"cap": 64, "ptr": 0x70000, "len": len(text)}
    mem, stack = space(struct.pack("<3Q", *(fields[k] for k in layout)), order=order)
    mem.put(0x70000, text)
    found, warnings = message(mem, stack)
    assert found.text == text.decode() and found.payload == "String" and not warnings


def test_a_str_payload_with_a_null_drop():
    mem, stack = space(struct.pack("<QQ", 0x70000, 5), vtable=STR_VTABLE)
    mem.put(0x70000, b"boom!")
    found, _ = message(mem, stack)
    assert (found.text, found.payload) == ("boom!", "&str")


def test_a_long_message_is_cut_not_refused():
    mem, stack = space(struct.pack("<3Q", 1 << 20, 0x100000, 1 << 20))
    mem.put(0x100000, ("é" * (1 << 19)).encode())
    found, warnings = message(mem, stack)
    assert found.truncated and len(found.text.encode()) <= rust.MAX_MESSAGE and not warnings


@pytest.mark.parametrize("words, data, why", [
    ((8, 0x70000, 9), b"x" * 9, "are not a String's"),               # len > cap
    ((1 << 60, 0x70000, 1 << 59), b"x", "are not a String's"),       # absurd
    ((64, 0xDEAD0000, 5), None, "unreadable"),                       # unmapped ptr
    ((64, 0x70000, 4), b"\xff\xfe\xfd\xfc", "not UTF-8"),            # invalid UTF-8
    ((64, 0x10, 4), None, "points at 0x10"),
    ((0, 1, 0), None, "moved out"),                                  # mem::take'n
])
def test_garbage_strings_are_warnings(words, data, why):
    mem, stack = space(struct.pack("<3Q", *words))
    if data is not None:
        mem.put(0x70000, data)
    found, warnings = message(mem, stack)
    assert found is None
    assert warnings and all(w.startswith("the panic's message: ") for w in warnings)
    assert any(why in w for w in warnings), warnings


@pytest.mark.parametrize("vtable", [0x45000, OTHER_VTABLE, 0xDEAD0000])
def test_no_string_vtable_no_message(vtable):
    mem, stack = space(struct.pack("<3Q", 64, 0x70000, 5), vtable=vtable)
    mem.put(0x45000, struct.pack("<4Q", 0x400100, 24, 3, 0x400200))     # align 3
    assert message(mem, stack) == (None, [])


def test_a_stack_that_ends_early():
    mem = Memory()
    assert message(mem, 0x90000) == (None, [])
    mem.put(0x90000, struct.pack("<3Q", 0x90800, STRING_VTABLE, LOCATION))
    assert rust.find_message(mem.read, 0x90000, 10 ** 6, LOCATION, is_static, is_code,
                             []) is None


# --- the thread's name ------------------------------------------------------------------
TP, OFFSET, CURRENT, ID, MAIN = 0x7f0000001000, 0x60, 0x50, 0x58, 0x60000


def threads(current: int, tid: int, main: int = 1, inner: bytes | None = None,
            name: bytes | None = None):
    mem = Memory()
    block = TP - OFFSET
    mem.put(block, b"\0" * CURRENT + struct.pack("<QQ", current, tid))
    mem.put(MAIN, struct.pack("<Q", main))
    if inner is not None:
        mem.put(0x80000 - 16, inner)
    if name is not None:
        mem.put(0x81000, name)
    return rust.thread_name(mem.read, TP, OFFSET, CURRENT, ID, MAIN)


def arc(*words):
    return struct.pack("<2Q", 1, 1) + struct.pack(f"<{len(words)}Q", *words)


def test_thread_names_by_std_rules():
    assert threads(0x80000, 2, inner=arc(2, 0x81000, 7, 0), name=b"loader\0").name == "loader"
    assert threads(0x80000, 2, inner=arc(0x81000, 7, 2, 0), name=b"loader\0").name == "loader"
    assert threads(0, 1).name == "main"
    assert threads(0x80000, 1, inner=arc(1, 0, 0, 0)).name == "main"
    assert threads(0x80000, 3, inner=arc(3, 0, 0, 0)).name == "<unnamed>"
    assert threads(0, 3).name is None                     # no handle, not main: unknown


@pytest.mark.parametrize("current, tid, inner, name", [
    (0x80000, 2, arc(5, 0x81000, 7, 0), b"loader\0"),     # another thread's handle
    (0x80000, 2, struct.pack("<6Q", 0, 0, 2, 0x81000, 7, 0), b"loader\0"),  # no Arc counts
    (0x80000, 2, arc(2, 0x81000, 6, 0), b"loader"),       # no NUL
    (0x80000, 2, arc(2, 0x81000, 7, 0), b"lo\xffder\0"),  # not UTF-8
    (0x80000, 2, arc(2, 0x81000, 1 << 40, 0), None),      # absurd length
    (0x80000, 2, arc(2, 0xDEAD0000, 7, 0), None),         # unmapped name
    (0x80004, 2, None, None),                             # misaligned
    (0xDEAD0000, 2, None, None),                          # unmapped handle
    (0, 0, None, None),                                   # no ThreadId yet
])
def test_garbage_thread_handles_are_unknown(current, tid, inner, name):
    found = threads(current, tid, main=9, inner=inner, name=name)
    assert found.name is None and found.source


def test_unreadable_thread_locals():
    found = rust.thread_name(Memory().read, TP, OFFSET, CURRENT, ID, MAIN)
    assert found.name is None and "unreadable" in found.source


def test_executable_tls_offset():
    # variant II (x86-64 ELF TLS ABI): the block ends at tp, rounded to its alignment
    assert rust.executable_tls_offset(0x57840, 0x60, 8) == 0x60
    assert rust.executable_tls_offset(0x4000, 0x61, 16) == 0x70


def _leaked_exception(cls: bytes, canary: int, vtable: int):
    """A stack slot pointing at panic_unwind's Exception (at 0x80000) whose
    cause is a String, as a rustc 1.85 core holds it after "failed to initiate
    panic": bytes as that core had them (class, cleanup, private, canary,
    cause data, cause vtable)."""
    mem, stack = space(struct.pack("<3Q", 0, 1, 0))        # the hook's String: moved out
    text = b"index out of bounds: the len is 3 but the index is 11"
    mem.put(0x80000, cls + struct.pack("<5Q", 0x400500, 0, 0, canary, 0x81000)
            + struct.pack("<Q", vtable))
    mem.put(0x81000, struct.pack("<3Q", 64, 0x82000, len(text)))
    mem.put(0x82000, text)
    frame = bytearray(mem.chunks[stack])                 # a slot of the stack points at it
    frame[0x100:0x108] = struct.pack("<Q", 0x80000)
    mem.chunks[stack] = bytes(frame)
    return mem, stack, text.decode()


def test_a_message_moved_into_the_exception_is_read_there():
    mem, stack, text = _leaked_exception(rust.RUST_EXCEPTION_CLASS, 0x45000, STRING_VTABLE)
    found, warnings = message(mem, stack)
    assert found is None and "moved out" in " ".join(warnings)
    found = rust.find_exception_message(mem.read, stack, 512, is_static, is_code)
    assert found.text == text and found.payload == "String"
    assert "0x80000" in found.source


@pytest.mark.parametrize("cls, canary, vtable", [
    (b"GNUCC++\0", 0x45000, STRING_VTABLE),            # a C++ exception
    (rust.RUST_EXCEPTION_CLASS, 0x99000, STRING_VTABLE),  # the canary is in no file
    (rust.RUST_EXCEPTION_CLASS, 0x45000, OTHER_VTABLE)])  # a payload of another type
def test_an_exception_that_is_not_std_s_gives_no_message(cls, canary, vtable):
    mem, stack, _ = _leaked_exception(cls, canary, vtable)
    assert rust.find_exception_message(mem.read, stack, 512, is_static, is_code) is None


def exception(mem, at: int, cfa: int, text_at: int, text: bytes, cls=rust.RUST_EXCEPTION_CLASS,
              canary=0x45000, vtable=STR_VTABLE):
    """panic_unwind's Exception at ``at``: _Unwind_Exception (class, cleanup,
    private_1, private_2 = the handler's CFA), canary, cause (a &str)."""
    mem.put(text_at, text + struct.pack("<QQ", text_at, len(text)))
    mem.put(at, cls + struct.pack("<QQQQQQ", 0x400500, 0, cfa, canary,
                                  text_at + len(text), vtable))
    return at


def test_exceptions_in_flight_first_panic_first_and_only_this_threads():
    mem = Memory()
    mem.put(STR_VTABLE, struct.pack("<4Q", 0, 16, 8, 0x400300))
    stack = (0x7F0000, 0x800000)
    inner = exception(mem, 0xA0000, 0x7F8000, 0xB0000, b"dropped with balance -40")
    outer = exception(mem, 0xA2000, 0x7FC000, 0xB2000, b"unbalanced by -40")
    other = exception(mem, 0xA4000, 0x6F0000, 0xB4000, b"another thread's")    # not our stack
    freed = exception(mem, 0xA6000, 0x7FD000, 0xB6000, b"freed", cls=b"\x10" * 8)
    forged = exception(mem, 0xA8000, 0x7FE000, 0xB8000, b"no canary", canary=0x999000)
    found = rust.exceptions_in_flight(mem.read, [inner, outer, other, freed, forged,
                                                 0xDEAD0000, inner + 4], stack,
                                      is_static, is_code)
    assert [e.message.text for e in found] == ["unbalanced by -40", "dropped with balance -40"]
    assert [e.handler_cfa for e in found] == [0x7FC000, 0x7F8000]


def test_rust_mutex_owner_from_one_guard_only():
    """rust_waits: a std Mutex's owner is the one other thread whose stack
    holds its address; two such threads (one merely holds a &Mutex) is no
    owner, never a guess; the waiter itself and a free lock name none."""
    from types import SimpleNamespace as NS

    from gdbext.locks.rust_waits import RustWaits
    mem = Memory()
    lock = 0x5000
    mem.put(lock, struct.pack("<I", 2))                 # LOCKED with waiters
    stacks = {1: 0x10000, 2: 0x20000, 3: 0x30000}
    mem.put(stacks[3], b"\0" * 64)
    frames = [NS(function=n) for n in ("syscall", "std::sys::pal::unix::futex::futex_wait",
                                      "std::sys::sync::mutex::futex::Mutex::lock_contended",
                                      "app::transfer")]
    waiter = NS(lwp=1, regs={"orig_rax": 202, "rdi": lock, "rdx": 2}, frames=frames)
    holder = NS(lwp=2, regs={}, frames=[])
    other = NS(lwp=3, regs={}, frames=[])
    mem.put(stacks[1], struct.pack("<Q", lock))        # the waiter's own &Mutex
    mem.put(stacks[2], struct.pack("<QQQ", 0, 7, lock))
    span = {lwp: (sp, sp + 64) for lwp, sp in stacks.items()}
    w = RustWaits([waiter, holder, other], span.get)
    b = w.provider(waiter, frozenset(), mem.read)
    assert (b.kind, b.address, b.owner_lwps, b.confidence) == ("rust-mutex", lock, [2],
                                                                "inferred")
    assert any("0x20010" in e and "guard" in e for e in b.evidence)
    mem.put(stacks[3], struct.pack("<QQQ", 0, 0, lock))   # another thread holds a &Mutex
    w = RustWaits([waiter, holder, other], span.get)
    b = w.provider(waiter, frozenset(), mem.read)
    assert b.owner_lwps == [] and any("which is a guard is unknown" in e for e in b.evidence)
    mem.put(lock, struct.pack("<I", 0))                # unlocked: being woken
    b = RustWaits([waiter, holder], span.get).provider(waiter, frozenset(), mem.read)
    assert b.released and b.owner_lwps == []
