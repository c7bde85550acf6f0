"""Rust std's panic, from what its machinery leaves in memory.

Pure: ``read(address, length) -> bytes`` raises on unreadable memory.

- The location: ``core::panic::Location { file: &str, line: u32, col: u32 }``
  (library/core/src/panic/location.rs) is a static the compiler emits for
  each panic site (#[track_caller]); the panic path passes ``&Location`` down
  and the frames between the user's code and abort keep it in their stack
  slots.  We scan those slots for a pointer to 24 bytes that are a Location:
  a (ptr, len) naming a ``.rs`` file, a line and a column.  Inferred: the
  first one above the stack pointer, i.e. the innermost panic.
- The message: formatted lazily into the stderr write, never kept; the kind
  of panic is the entry function std took (``PANIC_ENTRIES``), whose message
  is fixed text in core (library/core/src/panicking.rs, option.rs, result.rs).
- The thread's name: std names the main thread "main" (library/std/src/rt.rs);
  for the others, gdb's thread name on a live process.
- std's stack-overflow handler (library/std/src/sys/pal/unix/stack_overflow.rs,
  older std/src/sys/unix/stack_overflow.rs) runs on the guard-page SIGSEGV
  and aborts: ``OVERFLOW_HANDLER`` in a frame under a ``<signal handler
  called>`` frame.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass

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
    (r"core::panicking::panic_in_cleanup", "panic-in-cleanup", "panic in a destructor during cleanup"),
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


@dataclass
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


def is_panic(functions: list[str]) -> bool:
    return any(PANIC_MACHINERY.match(f) for f in functions)


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
