"""The pure runtime readers on bytes: glibc's __abort_msg formats, libstdc++'s
exception header, Rust's Location, the kernel's signal frame, the fault
rules -- and garbage in each: a warning (an exception the caller turns into
one), never a crash of the reader.  Message texts are glibc's own format
strings (assert/assert.c, debug/fortify_fail.c, malloc/malloc.c)."""
from __future__ import annotations

import struct

import pytest

from gdbext.knowledge.fault_rules import FAULT_RULES, Rule
from gdbext.runtimes import cxx, glibc_abort, rust
from gdbext.triage import fault_class
from gdbext.triage.signature import meaningful_frames, smashed_at
from gdbext.unwind import signal_frame


class Memory:
    """A sparse address space of pages: read raises outside the pages put."""

    def __init__(self):
        self.chunks: dict[int, bytes] = {}

    def put(self, address: int, data: bytes) -> int:
        end = -(-(address + len(data)) // 4096) * 4096      # memory comes in pages
        self.chunks[address] = data + b"\0" * (end - address - len(data))
        return address

    def read(self, address: int, length: int) -> bytes:
        for base, data in self.chunks.items():
            if base <= address and address + length <= base + len(data):
                return data[address - base:address - base + length]
        raise OSError(f"unmapped {address:#x}+{length}")


def abort_msg(mem: Memory, text: bytes, size: int | None = None) -> int:
    body = text + b"\0"
    return mem.put(0x10000, struct.pack("<I", size or 4096) + body + b"\0" * 64)


@pytest.mark.parametrize("text, kind, verdict", [
    (b"free(): double free detected in tcache 2\n", "malloc-check", "heap-corruption"),
    (b"malloc(): corrupted top size\n", "malloc-check", "heap-corruption"),
    (b"double free or corruption (!prev)\n", "malloc-check", "heap-corruption"),
    (b"corrupted size vs. prev_size\n", "malloc-check", "heap-corruption"),
    (b"*** stack smashing detected ***: terminated\n", "stack-protector", "stack-smashing"),
    (b"*** buffer overflow detected ***: terminated\n", "fortify", "buffer-overflow"),
    (b"*** longjmp causes uninitialized stack frame ***: terminated\n", "fortify-other",
     "fortify-check"),
    # vfprintf's _FORTIFY_SOURCE checks call __libc_fatal: no ": terminated"
    (b"*** %n in writable segment detected ***\n", "fortify-other", "fortify-check"),
    (b"something else\n", "other", "abort-message"),
])
def test_abort_message_kinds(text, kind, verdict):
    mem = Memory()
    msg = glibc_abort.read_message(mem.read, abort_msg(mem, text))
    assert (msg.kind, msg.verdict) == (kind, verdict)
    assert msg.text == text.decode().rstrip("\n")


def test_assertion_fields():
    text = b"prog: src/a.c:42: int check(int): Assertion `x > 0 && \"positive\"' failed.\n"
    mem = Memory()
    msg = glibc_abort.read_message(mem.read, abort_msg(mem, text))
    assert msg.kind == "assertion"
    assert msg.fields == {"program": "prog", "file": "src/a.c", "line": 42,
                          "function": "int check(int)", "expression": 'x > 0 && "positive"'}
    assert msg.key == 'x > 0 && "positive"'


def test_glibc_s_own_assertion_is_glibc_s():
    """glibc 2.37+ asserts on itself through __libc_assert_fail: the text
    glibc 2.41 printed for a mutex whose lock word the program cleared."""
    text = (b"Fatal glibc error: pthread_mutex_lock.c:94 (___pthread_mutex_lock): "
            b"assertion failed: mutex->__data.__owner == 0\n")
    mem = Memory()
    msg = glibc_abort.read_message(mem.read, abort_msg(mem, text))
    assert (msg.kind, msg.verdict) == ("assertion", "assertion-failed")
    assert msg.fields == {"file": "pthread_mutex_lock.c", "line": 94,
                          "function": "___pthread_mutex_lock",
                          "expression": "mutex->__data.__owner == 0", "inside": "glibc"}


def test_null_abort_msg_is_no_message():
    assert glibc_abort.read_message(Memory().read, 0) is None


@pytest.mark.parametrize("make, needle", [
    (lambda m: 0xDEAD0000, "unreadable"),
    (lambda m: abort_msg(m, b"x", size=0xFFFFFFF0), "absurd size"),
    (lambda m: abort_msg(m, b"x", size=3), "absurd size"),
    (lambda m: m.put(0x10000, struct.pack("<I", 4096) + b"A" * 5000), "not NUL-terminated"),
    (lambda m: m.put(0x10000, struct.pack("<I", 4096) + bytes(range(1, 32)) * 8 + b"\0"),
     "binary"),
    (lambda m: m.put(0x10000, struct.pack("<I", 4096) + b"\0"), "no text"),
])
def test_garbage_abort_msg_is_an_error_not_a_crash(make, needle):
    mem = Memory()
    with pytest.raises(glibc_abort.AbortMessageError, match=needle):
        glibc_abort.read_message(mem.read, make(mem))


# --- libstdc++ ---------------------------------------------------------------------------
def exception(mem: Memory, cls: bytes = cxx.GNU_CXX, base_loop: bool = False):
    """A __cxa_exception for a class derived (si) from std::runtime_error."""
    si_vptr, cls_vptr = 0x7000, 0x7100
    mem.put(0x50000, b"N3app5errorE\0St13runtime_error\0St9exception\0")
    exc_ti, rt_ti, e_ti = 0x51000, 0x51100, 0x51200
    mem.put(e_ti, struct.pack("<QQ", cls_vptr, 0x50000 + 31))
    mem.put(rt_ti, struct.pack("<QQQ", si_vptr, 0x50000 + 13, e_ti))
    mem.put(exc_ti, struct.pack("<QQQ", si_vptr, 0x50000, exc_ti if base_loop else rt_ti))
    header = 0x60000
    hdr = bytearray(112)
    struct.pack_into("<Q", hdr, 0, exc_ti)
    hdr[80:88] = cls
    obj = struct.pack("<QQ", 0x7200, 0x61000)       # vptr, __cow_string's character pointer
    mem.put(header, bytes(hdr) + obj)
    mem.put(0x61000, b"bad config\0")
    globals_ = mem.put(0x62000, struct.pack("<QI", header, 1))
    return globals_, {si_vptr: "si", cls_vptr: "class"}


def demangle(name):
    return {"N3app5errorE": "app::error", "St13runtime_error": "std::runtime_error",
            "St9exception": "std::exception"}.get(name)


def test_in_flight_exception_type_bases_and_what():
    mem = Memory()
    g, vt = exception(mem)
    found = cxx.in_flight(mem.read, g, demangle, vt)
    assert (found.type, found.what) == ("app::error", "bad config")
    assert found.bases == ["std::runtime_error", "std::exception"]


def test_corrupt_exception_header_is_an_error():
    mem = Memory()
    g, vt = exception(mem, cls=b"garbage!")
    with pytest.raises(cxx.ExceptionError, match="exception class"):
        cxx.in_flight(mem.read, g, demangle, vt)


def test_looping_base_chain_is_a_warning():
    mem = Memory()
    g, vt = exception(mem, base_loop=True)
    found = cxx.in_flight(mem.read, g, demangle, vt)
    assert any("loop" in w for w in found.warnings)


def test_no_exception_in_flight():
    mem = Memory()
    g = mem.put(0x62000, struct.pack("<QI", 0, 0))
    assert cxx.in_flight(mem.read, g, demangle, {}) is None


def test_tls_index_from_decoded_get_globals():
    steps = [("other", {}), ("lea", {"register": "rdi", "rip_target": 0x212E60}),
             ("call", {}), ("other", {}), ("add", {"register": "rax", "immediate": 8}),
             ("ret", {})]
    assert cxx.tls_index_address(steps) == (0x212E60, 8)
    assert cxx.tls_index_address([("call", {}), ("ret", {})]) is None


def test_eh_globals_rejects_a_garbage_module_id():
    mem = Memory()
    mem.put(0x1000, struct.pack("<QQ", 1 << 40, 0))
    with pytest.raises(cxx.ExceptionError, match="module"):
        cxx.eh_globals(mem.read, 0x1000, 0, 0x2000)


# --- Rust ----------------------------------------------------------------------------------
def test_rust_location_scan_skips_garbage():
    mem = Memory()
    mem.put(0x40000, b"src/main.rs")
    mem.put(0x41000, struct.pack("<QQII", 0x40000, 11, 12, 5))          # a Location
    mem.put(0x41100, struct.pack("<QQII", 0x40000, 11, 0, 5))           # line 0: not one
    stack = mem.put(0x90000, struct.pack("<5Q", 7, 0x41100, 0xDEAD0000, 0x41000, 0))
    loc = rust.find_location(mem.read, stack, 64, lambda v: True)
    assert str(loc) == "src/main.rs:12:5" and loc.slot == stack + 24


def test_rust_panic_entry_is_the_outermost_below_the_program():
    frames = ["abort", "std::process::abort", "core::panicking::panic_fmt",
              "core::option::unwrap_failed", "app::run", "core::panicking::panic_fmt"]
    assert rust.panic_entry(frames)[0] == "unwrap-none"


# --- the kernel's signal frame -------------------------------------------------------------
def test_signal_frame_parse_and_garbage():
    raw = bytearray(signal_frame.SIGINFO + 24)
    regs = dict(zip(signal_frame.SIGCONTEXT_REGS, range(100, 118)))
    struct.pack_into("<18Q", raw, signal_frame.MCONTEXT, *regs.values())
    # the page fault the kernel recorded: err, trapno 14, oldmask, cr2
    struct.pack_into("<4Q", raw, signal_frame.MCONTEXT + signal_frame.ERR, 7, 14, 0, 0x7FF0)
    struct.pack_into("<iii", raw, signal_frame.SIGINFO, 11, 0, 2)
    struct.pack_into("<Q", raw, signal_frame.SIGINFO + 16, 0x7FF0)
    ctx = signal_frame.parse(bytes(raw), 7, regs["rip"])
    assert (ctx.signo, ctx.code, ctx.addr, ctx.confirmed) == (11, 2, 0x7FF0, True)
    assert ctx.source == "siginfo" and ctx.regs["rsp"] == regs["rsp"]
    struct.pack_into("<i", raw, signal_frame.SIGINFO, 999)
    with pytest.raises(signal_frame.SignalFrameError):
        signal_frame.parse(bytes(raw), 7, None, 8)     # trap 14 is no SIGFPE
    with pytest.raises(signal_frame.SignalFrameError):
        signal_frame.read(Memory().read, 7, 0x1000, None)


def test_a_stale_siginfo_that_looks_like_a_fault_is_not_believed():
    """A handler without SA_SIGINFO: the slot held SIGFPE/FPE_FLTOVF from the
    stack, the trap was a page fault at 0x10 -- the trap wins, to be checked."""
    raw = bytearray(signal_frame.SIGINFO + 24)
    struct.pack_into("<18Q", raw, signal_frame.MCONTEXT, *range(100, 118))
    struct.pack_into("<4Q", raw, signal_frame.MCONTEXT + signal_frame.ERR, 4, 14, 0, 0x10)
    struct.pack_into("<iii", raw, signal_frame.SIGINFO, 8, 0, 4)
    ctx = signal_frame.parse(bytes(raw), 5, 116, 6)        # then the handler aborted
    assert (ctx.signo, ctx.code, ctx.addr, ctx.source, ctx.check) == \
        (11, 1, 0x10, "sigcontext", True)
    # garbage that looks like another signal's siginfo (SIGCHLD, code 0): the trap tells
    struct.pack_into("<iii", raw, signal_frame.SIGINFO, 17, 0, 0)
    ctx = signal_frame.parse(bytes(raw), 5, 116, 6)
    assert (ctx.signo, ctx.addr, ctx.source, ctx.check) == (11, 0x10, "sigcontext", True)
    assert not signal_frame.agrees(8, 4, None, 14, 0x10)
    assert not signal_frame.agrees(11, 1, 0x20, 14, 0x10)   # si_addr must be cr2
    assert signal_frame.agrees(11, 0x80, 0, 13, 0) and signal_frame.agrees(6, -6, None, 0, 0)


def _no_siginfo_frame(trapno: int, err: int, cr2: int) -> bytes:
    """A frame built for a handler without SA_SIGINFO: garbage where siginfo
    would be, the fault in the sigcontext (arch/x86/kernel/signal.c)."""
    raw = bytearray(signal_frame.SIGINFO + 24)
    struct.pack_into("<18Q", raw, signal_frame.MCONTEXT, *range(100, 118))
    struct.pack_into("<4Q", raw, signal_frame.MCONTEXT + signal_frame.ERR, err, trapno, 0, cr2)
    struct.pack_into("<q", raw, signal_frame.SIGINFO, 0x9803E0)
    return bytes(raw)


@pytest.mark.parametrize("trapno, err, raised, want", [
    (14, 4, 11, (11, 1, 0x8)),              # user read, page not present: SEGV_MAPERR
    (14, 7, 11, (11, 2, 0x8)),              # user write, protection: SEGV_ACCERR
    (14, 4, 7, (7, 2, 0x8)),                # a page fault the kernel answered with SIGBUS
    (13, 0, 11, (11, 0x80, 0)),             # general protection: SI_KERNEL, no address
    (0, 0, 8, (8, 1, 116)),                 # divide error: FPE_INTDIV at rip
])
def test_signal_frame_without_siginfo_reads_the_sigcontext(trapno, err, raised, want):
    ctx = signal_frame.parse(_no_siginfo_frame(trapno, err, 0x8), 3, 116, raised)
    assert (ctx.signo, ctx.code, ctx.addr) == want
    assert ctx.source == "sigcontext" and ctx.to_json()["certainty"] == "inferred"


@pytest.mark.parametrize("trapno, raised", [(13, 8), (3, 5), (99, 11), (14, 8)])
def test_signal_frame_sigcontext_must_agree_with_the_raised_signal(trapno, raised):
    with pytest.raises(signal_frame.SignalFrameError, match="no fault of signal"):
        signal_frame.parse(_no_siginfo_frame(trapno, 4, 0x8), 3, 116, raised)


@pytest.mark.parametrize("trapno, raised, want", [(14, 6, (11, 1, 0x8)), (14, None, (11, 1, 0x8)),
                                                  (0, 6, (8, 1, 116))])
def test_a_handler_that_aborted_gets_the_trap_s_fault_to_check(trapno, raised, want):
    ctx = signal_frame.parse(_no_siginfo_frame(trapno, 4, 0x8), 3, 116, raised)
    assert (ctx.signo, ctx.code, ctx.addr) == want and ctx.check


# --- fault rules and signatures ---------------------------------------------------------
def facts(**kw):
    base = dict(signo=11, code=1, addr=0x8, pc=0x401000, access="read", region=None)
    base.update(kw)
    return fault_class.FaultFacts(**base)


@pytest.mark.parametrize("kw, name", [
    (dict(addr=0x8), "null-read"),
    (dict(addr=0x8, access="write"), "null-write"),
    (dict(addr=0x401000, access="execute"), "execute-violation"),
    (dict(addr=0xDEADBEEFDEADBEEF), "use-after-free"),
    (dict(addr=0x7F0000001000, access="write"), "write-violation"),
    (dict(addr=0x7F0000001000, stack_overflow=True), "stack-overflow"),
    (dict(signo=7, code=1, addr=0x7F0000001001), "bus-error"),
])
def test_fault_rules(kw, name):
    assert fault_class.classify(facts(**kw)).name == name


def test_a_broken_rule_is_a_warning():
    broken = Rule("broken", lambda f: 1 / 0, "unknown", lambda f: "")
    got = fault_class.classify(facts(), (broken,) + FAULT_RULES)
    assert got.name == "null-read" and "broken" in got.warnings[0]


def test_signature_skips_runtime_machinery():
    frames = [("raise", "/lib/libc.so.6"), ("std::panicking::rust_panic", "/x/app"),
              ("core::panicking::panic_bounds_check", "/x/app"),
              ("app::pick::h0123456789abcdef", "/x/app"), ("app::main", "/x/app"),
              ("std::rt::lang_start_internal", "/x/app")]
    assert [f.function for f in meaningful_frames(frames, 3)] == ["app::pick", "app::main"]
    assert smashed_at([(1, "f", "/x"), (0x4141414141414141, None, None)],
                      lambda pc: False) == 1
    assert smashed_at([(1, "f", "/x"), (0x401000, None, None)], lambda pc: True) is None
