"""Rust std's panic, from what its machinery leaves in memory.

Pure: ``read(address, length) -> bytes`` raises on unreadable memory.

- The location: ``core::panic::Location { file: &str, line: u32, col: u32 }``
  (library/core/src/panic/location.rs) is a static the compiler emits for
  each panic site (#[track_caller]); the panic path passes ``&Location`` down
  and the frames between the user's code and abort keep it in their stack
  slots.  We scan those slots for a pointer to 24 bytes that are a Location:
  a (ptr, len) naming a ``.rs`` file, a line and a column.  Inferred: the
  first one above the stack pointer, i.e. the innermost panic.
- The message (``find_message``): std formats it BEFORE the hook runs and
  keeps it until abort.  library/std/src/panicking.rs (rust 1.95; 1.81+
  alike): ``panic_handler`` wraps the message in
  ``FormatStringPayload { inner: &PanicMessage, string: Option<String> }``
  (or ``StaticStrPayload(&'static str)`` for a literal; ``begin_panic``'s
  ``Payload { inner: Option<A> }``), and ``panic_with_hook`` (older:
  ``rust_panic_with_hook``) builds ``PanicHookInfo { payload: &(dyn Any +
  Send), location: &Location, can_unwind, force_no_backtrace }`` (before
  1.81 core's ``PanicInfo``, with the message between) from
  ``payload.get()`` -- which fills the String -- and ``location``; with
  panic=abort, or a panic that cannot unwind, std aborts from inside that
  frame, so the PanicHookInfo and the String are still there.  We look for
  the PanicHookInfo: a wide pointer (data, vtable) next to a slot holding the
  very Location we found (the identity check), whose vtable says 24 bytes
  (String) or 16 (&str).  Wide pointers are (data, metadata) and a vtable
  starts [drop_in_place, size, align] (rustc: compiler/rustc_middle/src/ty/
  vtable.rs COMMON_VTABLE_ENTRIES).  A String is Vec<u8> = RawVecInner
  {ptr, cap} + len, whose repr(Rust) order rustc picks: rustc 1.95 stores
  (cap, ptr, len), rustc 1.63 (ptr, cap, len) (DWARF and memory of the test
  programs built by each); both orders are tried and
  at most one can hold a readable pointer and cap >= len.
- Otherwise the kind of panic is the entry function std took
  (``PANIC_ENTRIES``), with core's fixed text where it has one
  (library/core/src/panicking.rs, option.rs, result.rs): the fallback.
- The thread's name (``thread_name``): std's thread handle, found without
  debug info through two TLS statics of the executable's .symtab
  (library/std/src/thread/current.rs, rust 1.84+): ``CURRENT`` (a pointer to
  the ``Arc<Inner>`` data of the thread's ``Thread``, or 0/1/2 for
  none/busy/destroyed) and ``id::ID`` (the thread's ThreadId, kept for the
  thread's whole life), and ``main_thread::MAIN`` (the main thread's id).
  ``Inner { name: Option<ThreadNameString>, id: ThreadId, parker }``
  (library/std/src/thread/thread.rs): we accept it only if it holds the
  thread's own ID; the name is a CString (ptr, len with its NUL).  std's own
  rule (Thread::name): the name if set, else "main" for MAIN's id.
- std's stack-overflow handler (library/std/src/sys/pal/unix/stack_overflow.rs,
  older std/src/sys/unix/stack_overflow.rs) runs on the guard-page SIGSEGV
  and aborts: ``OVERFLOW_HANDLER`` in a frame under a ``<signal handler
  called>`` frame.
"""
from __future__ import annotations

import re
import struct
from ..record import record

MAX_FILE = 1024
MAX_LINE = 10_000_000
MAX_COLUMN = 100_000

# The function std entered to panic -> (panic kind, the message std prints or None).
PANIC_ENTRIES = (
    (r"core::panicking::panic_bounds_check", "index-out-of-bounds", "index out of bounds"),
    (r"core::option::unwrap_failed", "unwrap-none",
     "called `Option::unwrap()` on a `None` value"),
    (r"core::option::expect_failed", "expect-none", None),
    (r"core::result::unwrap_failed", "unwrap-err", None),
    (r"core::panicking::panic_cannot_unwind", "cannot-unwind",
     "panic in a function that cannot unwind"),
    (r"core::panicking::panic_in_cleanup", "panic-in-cleanup",
     "panic in a destructor during cleanup"),
    (r"core::panicking::panic_nounwind\w*", "nounwind", None),
    (r"core::slice::index::\w+_fail\w*", "slice-index", None),
    (r"core::str::slice_error_fail\w*", "str-slice", None),
    (r"core::panicking::panic_const::panic_const_(\w+)", "arithmetic", None),
    (r"core::cell::panic_already_\w+", "refcell-borrow", None),
    (r"std::panicking::begin_panic\w*", "panic", None),
    (r"core::panicking::panic(?:_fmt|_display|_str)?", "panic", None),
)
_ENTRIES = [(re.compile(p + r"\Z"), kind, msg) for p, kind, msg in PANIC_ENTRIES]
OVERFLOW_HANDLER = re.compile(r"std::sys::(?:pal::)?unix::stack_overflow::(?:imp::)?"
                              r"signal_handler")
PANIC_MACHINERY = re.compile(r"(?:core::panicking|std::panicking|std::rt|panic_abort|"
                             r"__rustc|std::sys::backtrace)::|__rust_\w+|rust_panic")


@record
class Location:
    file: str
    line: int
    column: int
    address: int                # the Location static
    slot: int                   # the stack slot that pointed at it

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def to_json(self) -> dict:
        return {"file": self.file, "line": self.line, "column": self.column,
                "address": self.address, "slot": self.slot, "certainty": "inferred"}


def panic_entry(functions: list[str]) -> tuple[str, str | None, str] | None:
    """(kind, fixed message or None, the entry function) of the panic: the
    outermost panic entry below the first frame of the program's own code
    (``functions``: normalised names, innermost first).  panic_fmt sits under
    panic_bounds_check, unwrap_failed...: the outer one says which panic."""
    found = None
    entered = False
    for name in functions:
        hit = None
        for pattern, kind, message in _ENTRIES:
            m = pattern.match(name)
            if m:
                if kind == "arithmetic" and m.groups():
                    kind = "arithmetic-" + m.group(1).replace("_", "-")
                hit = (kind, message, name)
                break
        if hit:
            found, entered = hit, True
        elif entered and not PANIC_MACHINERY.match(name) and not name.startswith("<"):
            break                       # the program's frame: the panic began here
    return found


# std's allocation-error path (library/std/src/alloc.rs rust_oom, default hook
# "memory allocation of {} bytes failed"; alloc::alloc::handle_alloc_error):
# it aborts without panicking, unless set_alloc_error_hook panics instead.
OOM_MACHINERY = re.compile(r"std::alloc::(?:rust_oom|default_alloc_error_hook)|"
                           r"(?:std::alloc::_::|__rustc::)?__rust_alloc_error_handler|"
                           r"alloc::alloc::handle_alloc_error")


def oom_frame(functions: list[str]) -> str | None:
    """The allocation-error frame between the abort and the program's
    innermost frame, if there is one."""
    from ..knowledge.skip_frames import is_machinery
    for name in functions:
        if OOM_MACHINERY.match(name):
            return name
        if not (is_machinery(name) or name == "??" or name.startswith("<")):
            return None
    return None


def is_panic(functions: list[str]) -> bool:
    """Whether std's panic machinery lies between the abort (frame 0 first)
    and the program's innermost frame.  ``functions``: normalised names
    (triage/signature.normalise_function).  Machinery below the program's
    frames -- lang_start's catch_unwind, __rust_begin_short_backtrace on
    every thread -- is no panic: std::process::abort() passes none of it.
    The abort path above (libc's, std's abort_internal) is the signature's
    own skip list; an unnamed frame is nobody's."""
    from ..knowledge.skip_frames import is_machinery
    if oom_frame(functions) is not None:
        return False                    # std's OOM abort passes __rust_end_short_backtrace too
    for name in functions:
        if PANIC_MACHINERY.match(name):
            return True
        if not (is_machinery(name) or name == "??" or name.startswith("<")):
            return False                # the program's own frame, reached first
    return False


def location_at(read, address: int) -> tuple[str, int, int] | None:
    """The Location at ``address``, when the 24 bytes there are one."""
    try:
        ptr, length, line, column = struct.unpack("<QQII", read(address, 24))
    except Exception:  # noqa: BLE001 - unreadable: not one
        return None
    if not (0 < length <= MAX_FILE and 0 < line < MAX_LINE and 0 < column < MAX_COLUMN):
        return None
    try:
        raw = read(ptr, length)
    except Exception:  # noqa: BLE001
        return None
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not name.endswith(".rs") or not name.isprintable():
        return None
    return name, line, column


def find_location(read, stack: int, words: int, points_to_static) -> Location | None:
    """The innermost Location referenced from the ``words`` stack slots at
    ``stack``; ``points_to_static(value)`` keeps the scan to pointers into
    the program's loaded files."""
    raw = b""
    address, end = stack, stack + 8 * words
    while address < end:                # page by page: the stack's mapping may end sooner
        n = min(4096 - address % 4096, end - address)
        try:
            raw += read(address, n)
        except Exception:  # noqa: BLE001 - the end of the stack
            break
        address += n
    for i in range(len(raw) // 8):
        value, = struct.unpack_from("<Q", raw, 8 * i)
        if value < 0x1000 or not points_to_static(value):
            continue
        found = location_at(read, value)
        if found:
            return Location(*found, value, stack + 8 * i)
    return None


# --- the message ------------------------------------------------------------------
MAX_MESSAGE = 1 << 16           # bytes shown; a longer String is read in part
MAX_CAPACITY = 1 << 40          # a Vec's capacity is an allocation size
STRING_LAYOUTS = (("cap", "ptr", "len"), ("ptr", "cap", "len"))   # see the docstring


@record
class Message:
    text: str
    payload: str                # "String" or "&str"
    source: str                 # where it was read
    truncated: bool = False


def _utf8(read, ptr: int, length: int, what: str) -> tuple[str, bool]:
    """``length`` bytes at ``ptr`` as UTF-8 (at most MAX_MESSAGE of them);
    ValueError says why not."""
    if ptr < 0x1000:
        raise ValueError(f"{what} points at {ptr:#x}")
    shown = min(length, MAX_MESSAGE)
    try:
        raw = read(ptr, shown)
    except Exception:  # noqa: BLE001 - any unreadable memory
        raise ValueError(f"{what}'s {length} bytes at {ptr:#x} are unreadable") from None
    if len(raw) != shown:
        raise ValueError(f"{what}'s bytes at {ptr:#x} are short")
    try:
        return raw.decode("utf-8"), shown < length
    except UnicodeDecodeError as exc:
        if shown < length and exc.start >= shown - 3:      # cut inside a character
            return raw[:exc.start].decode("utf-8"), True
        raise ValueError(f"{what}'s bytes at {ptr:#x} are not UTF-8") from None


def read_string(read, address: int) -> tuple[str, bool]:
    """A ``String`` at ``address``: (text, truncated), or ValueError."""
    try:
        words = struct.unpack("<QQQ", read(address, 24))
    except Exception:  # noqa: BLE001
        raise ValueError(f"the String at {address:#x} is unreadable") from None
    why = None                          # rustc 1.95's layout (the first) says why
    for layout in STRING_LAYOUTS:
        f = dict(zip(layout, words))
        if f["len"] == 0 or f["len"] > f["cap"] or f["cap"] > MAX_CAPACITY:
            why = why or ("the String is empty (moved out)" if f["len"] == 0 and f["cap"] == 0
                          else f"cap {f['cap']:#x} / len {f['len']:#x} are not a String's")
            continue
        try:
            return _utf8(read, f["ptr"], f["len"], "the String")
        except ValueError as exc:
            why = why or str(exc)
    raise ValueError(why)


def read_str(read, address: int) -> tuple[str, bool]:
    """A ``&str`` (ptr, len) at ``address``: (text, truncated), or ValueError."""
    try:
        ptr, length = struct.unpack("<QQ", read(address, 16))
    except Exception:  # noqa: BLE001
        raise ValueError(f"the &str at {address:#x} is unreadable") from None
    if not 0 < length <= MAX_CAPACITY:
        raise ValueError(f"the &str's length {length:#x} is absurd")
    return _utf8(read, ptr, length, "the &str")


def payload_type(read, vtable: int, is_code) -> str | None:
    """"String" / "&str" by the ``dyn Any`` vtable's size and align, None
    when the vtable is not one or says another type.  drop_in_place is null
    for a type without drop glue (a &str, rustc 1.95); the first method
    (Any::type_id) is code."""
    try:
        drop, size, align, method = struct.unpack("<QQQQ", read(vtable, 32))
    except Exception:  # noqa: BLE001
        return None
    if align != 8 or not (drop == 0 or is_code(drop)) or not is_code(method):
        return None
    return {24: "String", 16: "&str"}.get(size)


def find_message(read, stack: int, words: int, location: int, is_static, is_code,
                 warnings: list[str]) -> Message | None:
    """The panic's message, from the PanicHookInfo that holds ``location``
    (the Location already found) among the ``words`` slots at ``stack``.
    ``is_static(v)``: v lies in a loaded file; ``is_code(v)``: in its code."""
    raw = _stack(read, stack, words)
    values = [v for v, in struct.iter_unpack("<Q", raw[:len(raw) // 8 * 8])]
    problems = []
    for i, value in enumerate(values):
        if value != location:
            continue
        # the payload's wide pointer beside the location, in either order, or one
        # word away: rust 1.81+ PanicHookInfo {payload, location, can_unwind,
        # force_no_backtrace} (library/std/src/panic.rs); before, core's
        # PanicInfo {payload, message: Option<&Arguments>, location, can_unwind}
        # (library/core/src/panic/panic_info.rs, rust 1.63)
        for d in (i - 2, i + 1, i - 3, i + 2):
            if d < 0 or d + 1 >= len(values):
                continue
            data, vtable = values[d], values[d + 1]
            if data < 0x1000 or not is_static(vtable):
                continue
            kind = payload_type(read, vtable, is_code)
            if kind is None:
                continue
            try:
                text, cut = (read_string if kind == "String" else read_str)(read, data)
            except ValueError as exc:
                problems.append(f"{exc} (payload at {data:#x})")
                continue
            source = (f"std's PanicHookInfo at {stack + 8 * min(d, i):#x} (its location "
                      f"is the Location found): payload {kind} at {data:#x}")
            return Message(text, kind, source, cut)
    for p in dict.fromkeys(problems):
        warnings.append(f"the panic's message: {p}")
    return None


# panic_unwind's exception (library/panic_unwind/src/gcc.rs): RUST_EXCEPTION_CLASS,
# the eight bytes "MOZ\0RUST" in memory (seen in cores of rustc 1.85 and 1.95
# programs); #[repr(C)] struct
# Exception { _uwe: _Unwind_Exception (class, cleanup, private: [usize; 2]: 32
# bytes on x86-64), canary: *const u8, cause: Box<dyn Any + Send> }.
RUST_EXCEPTION_CLASS = b"MOZ\0RUST"
EXCEPTION_CANARY, EXCEPTION_CAUSE = 32, 40


def _cause(read, at: int, head: bytes, is_code) -> Message | None:
    """The String or &str payload of the Rust exception at ``at`` (``head``:
    its first bytes), or None when its ``dyn Any`` is neither."""
    _canary, data, vtable = struct.unpack_from("<QQQ", head, EXCEPTION_CANARY)
    kind = payload_type(read, vtable, is_code)
    if kind is None:
        return None
    try:
        text, cut = (read_string if kind == "String" else read_str)(read, data)
    except ValueError:
        return None
    return Message(text, kind, f"the Rust exception at {at:#x} (class MOZ\\0RUST, "
                   f"panic_unwind's Exception.cause): payload {kind} at {data:#x}", cut)


def find_exception_message(read, stack: int, words: int, is_static, is_code) -> Message | None:
    """The payload of a Rust exception std raised, from a stack slot that
    points at it: when the panic could not unwind (an `extern "C"` frame in
    the way: "failed to initiate panic"), std had already moved the message
    String out of its PanicHookInfo into the exception's ``cause``, and the
    exception is leaked, not freed.  Believed only with the class, a canary
    in a loaded file, and a ``dyn Any`` vtable of a String or &str."""
    raw = _stack(read, stack, words)
    end = stack + len(raw)
    seen = set()
    for (value,) in struct.iter_unpack("<Q", raw[:len(raw) // 8 * 8]):
        if value & 7 or value < 0x10000 or stack <= value < end + (1 << 20) \
                or value in seen or is_static(value):
            continue
        seen.add(value)
        try:
            head = read(value, EXCEPTION_CAUSE + 16)
        except Exception:  # noqa: BLE001 - not a pointer to readable memory
            continue
        if head[:8] != RUST_EXCEPTION_CLASS:
            continue
        canary, = struct.unpack_from("<Q", head, EXCEPTION_CANARY)
        found = _cause(read, value, head, is_code) if is_static(canary) else None
        if found is not None:
            return found
    return None


# _Unwind_Exception { exception_class, exception_cleanup, private_1, private_2 }
# (unwind-generic.h): libgcc's _Unwind_RaiseException sets private_2 to the
# CFA of the frame whose handler the search phase found (unwind.inc,
# uw_identify_context) before the cleanup phase runs.
EXCEPTION_PRIVATE_2 = 24


@record
class InFlight:
    """A Rust exception still allocated: its payload and its handler's CFA."""
    address: int
    message: Message
    handler_cfa: int


def exceptions_in_flight(read, candidates: list[int], stack: tuple[int, int], is_static,
                         is_code) -> list[InFlight]:
    """The Rust exceptions among ``candidates`` (addresses holding
    RUST_EXCEPTION_CLASS, found in the heap) raised on the thread whose
    stack is ``stack`` = (sp, end): a handler CFA in that stack ties it to
    the thread.  A panic during a panic leaves two: the first panic's,
    whose cleanup was running (its handler lies outside the frame that
    could not unwind), and the second's, whose handler is that frame's
    terminate pad, further in.  Outermost handler first: the first panic.
    A freed exception lost its class to malloc's free-list links."""
    out = []
    for at in candidates:
        try:
            head = read(at, EXCEPTION_CAUSE + 16)
        except Exception:  # noqa: BLE001 - unreadable: not one
            continue
        if head[:8] != RUST_EXCEPTION_CLASS or at & 7:
            continue
        cfa, = struct.unpack_from("<Q", head, EXCEPTION_PRIVATE_2)
        canary, = struct.unpack_from("<Q", head, EXCEPTION_CANARY)
        if not stack[0] <= cfa <= stack[1] or not is_static(canary):
            continue
        found = _cause(read, at, head, is_code)
        if found is not None:
            out.append(InFlight(at, found, cfa))
    return sorted(out, key=lambda e: -e.handler_cfa)


def _stack(read, stack: int, words: int) -> bytes:
    raw = b""
    address, end = stack, stack + 8 * words
    while address < end:                # page by page: the stack's mapping may end sooner
        n = min(4096 - address % 4096, end - address)
        try:
            chunk = read(address, n)
        except Exception:  # noqa: BLE001 - the end of the stack
            break
        raw += chunk
        if len(chunk) < n:
            break
        address += n
    return raw


# --- the thread's name --------------------------------------------------------------
# .symtab names (v0 or legacy mangling) of std's statics, by what they are.
THREAD_SYMBOLS = {
    "current": rb"_R\w*3std6thread7current7CURRENT|_ZN3std6thread7current7CURRENT17h[0-9a-f]{16}E",
    "id": rb"_R\w*3std6thread7current2id2ID|_ZN3std6thread7current2id2ID17h[0-9a-f]{16}E",
    "main": rb"_R\w*3std6thread11main_thread4MAIN(?:\.\d+)?|"
            rb"_ZN3std6thread11main_thread4MAIN17h[0-9a-f]{16}E(?:\.\d+)?",
}
# the part of each name a plain search finds first (elf_file.local_symbols)
THREAD_NEEDLES = (b"6thread7current7CURRENT", b"7current2id2ID", b"11main_thread4MAIN")
MAX_NAME = 4096
NONE, BUSY, DESTROYED = 0, 1, 2     # CURRENT's sentinels (current.rs)


def executable_tls_offset(vaddr: int, memsz: int, align: int) -> int:
    """How far below the thread pointer the executable's TLS block starts:
    the x86-64 ELF TLS ABI's variant II, module 1 (tlsoffset1 =
    round(tlssize1, align1)), with glibc's first-byte adjustment for an
    unaligned p_vaddr (elf/dl-tls.c, _dl_determine_tlsoffset)."""
    align = max(align, 1)
    firstbyte = (-(vaddr & (align - 1))) & (align - 1)
    return -(-(memsz - firstbyte) // align) * align + firstbyte


@record
class ThreadName:
    name: str | None
    source: str
    thread_id: int | None = None


def thread_name(read, tp: int, tls_offset: int, current_value: int, id_value: int,
                main_address: int | None) -> ThreadName:
    """The name std gives the thread whose thread pointer is ``tp``.
    ``current_value``/``id_value``: st_value (offset in the TLS block) of
    CURRENT and ID; ``main_address``: MAIN's run-time address."""
    block = tp - tls_offset
    try:
        current, = struct.unpack("<Q", read(block + current_value, 8))
        tid, = struct.unpack("<Q", read(block + id_value, 8))
    except Exception:  # noqa: BLE001
        return ThreadName(None, "std's thread-locals are unreadable")
    if tid == 0:
        return ThreadName(None, "std's thread-local ID is unset")
    main = None
    if main_address is not None:
        try:
            main, = struct.unpack("<Q", read(main_address, 8))
        except Exception:  # noqa: BLE001
            main = None
    where = "std::thread::current::{CURRENT, id::ID} (thread-locals, .symtab)"
    if current > DESTROYED:
        found = _inner_name(read, current, tid)
        if isinstance(found, str):
            return ThreadName(None, f"the Thread at CURRENT ({current:#x}): {found}", tid)
        if found[0] is not None:
            return ThreadName(found[0], f"{where}: Thread {current:#x} (its id {tid} is the "
                              "thread's own)", tid)
    if main and tid == main:
        return ThreadName("main", f"{where}: its ThreadId {tid} is main_thread::MAIN", tid)
    if current > DESTROYED:
        return ThreadName("<unnamed>", f"{where}: Thread {current:#x} has no name", tid)
    return ThreadName(None, "std has no Thread handle for this thread (CURRENT is "
                      f"{['unset', 'busy', 'destroyed'][current]})", tid)


def _inner_name(read, inner: int, tid: int):
    """(name,) or (None,) when the Inner at ``inner`` holds ``tid``; a str
    saying why not otherwise."""
    if inner % 8:
        return "misaligned"
    try:
        strong, weak, *w = struct.unpack("<6Q", read(inner - 16, 48))
    except Exception:  # noqa: BLE001
        return "unreadable"
    # ArcInner is repr(C) { strong, weak, data } (library/alloc/src/sync.rs)
    if not (0 < strong < 1 << 32 and 0 < weak < 1 << 32):
        return "its Arc counts are not an Arc's"
    at = [i for i in range(4) if w[i] == tid]
    if not at:
        return "it does not hold the thread's ThreadId"
    for n in (0, 1, 2):                 # Option<ThreadNameString>: 16 bytes beside the id
        if at[0] in (n, n + 1):
            continue
        ptr, length = w[n], w[n + 1]
        if ptr == 0:
            return (None,)
        if not 0 < length <= MAX_NAME or ptr < 0x1000:
            continue
        try:
            raw = read(ptr, length)
        except Exception:  # noqa: BLE001
            continue
        if raw[-1:] != b"\0" or b"\0" in raw[:-1]:
            continue
        try:
            return (raw[:-1].decode("utf-8"),)
        except UnicodeDecodeError:
            continue
    return "no valid name beside its id"
