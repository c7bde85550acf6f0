"""glibc's thread descriptor (``struct pthread``), read the way
libthread_db reads it: through the layout glibc publishes for debuggers.

libc exports, GLIBC_PRIVATE in ``.dynsym`` (present in stripped builds),
``_thread_db_pthread_<field>`` = ``uint32_t[3]`` {size in bits, element
count, byte offset} and ``_thread_db_sizeof_pthread`` = ``uint32_t``
(glibc nptl_db/structs.def and nptl/db_info.c; the DB_STRUCT_FIELD and
DB_STRUCT macros).  On glibc 2.36 x86-64: tid {32, 1, 720},
start_routine {64, 1, 1592}, sizeof 2368.  Nothing here is hard-coded: a
field glibc does not publish (the stack block is not, through 2.39) is
absent, not guessed.

On x86-64 the thread pointer (``fs_base``) is the thread's ``struct
pthread`` (glibc sysdeps/x86_64/nptl/tls.h, TLS_TCB_AT_TP).  A descriptor is
``confirmed`` when its ``tid`` field holds the thread's own LWP: only then
are its other fields facts about that thread.

Pure: memory comes through ``read(address, length) -> bytes`` (raising on
unreadable memory) and descriptor symbols through ``address_of(name) ->
int | None`` (their run-time addresses).
"""
from __future__ import annotations

import struct
from collections.abc import Callable

from ..errors import GdbextError
from ..record import record

Reader = Callable[[int, int], bytes]
SymbolAddress = Callable[[str], "int | None"]

DESCRIPTOR_PREFIX = "_thread_db_pthread_"
SIZEOF_SYMBOL = "_thread_db_sizeof_pthread"
# The fields this reader uses (structs.def names); more can be added freely.
FIELDS = ("tid", "start_routine", "list", "specific", "cancelhandling")
SYMBOLS = tuple(DESCRIPTOR_PREFIX + f for f in FIELDS) + (SIZEOF_SYMBOL,)
SCALARS = {"tid": 32, "start_routine": 64}   # pid_t; a function pointer (x86-64)
MAX_PTHREAD_SIZE = 1 << 16        # glibc's is 2-3 KiB; larger is not a descriptor
USER_SPACE_END = 1 << 47          # x86-64 canonical user addresses (4-level paging)


class LayoutError(GdbextError):
    """The target's libc does not publish a usable struct pthread layout."""


@record(frozen=True)
class Field:
    """One _thread_db_* descriptor: bits, count and offset."""
    bits: int
    count: int
    offset: int


@record(frozen=True)
class PthreadLayout:
    """struct pthread's fields as libc's _thread_db_* descriptors publish them."""
    size: int | None
    fields: dict[str, Field]
    source: str                     # where the layout was read, for evidence

    def field(self, name: str) -> Field | None:
        return self.fields.get(name)

    @classmethod
    def read(cls, read: Reader, address_of: SymbolAddress,
             source: str = "libc .dynsym _thread_db_* descriptors") -> "PthreadLayout":
        """The layout from the descriptor symbols; LayoutError when ``tid``
        is not published or a descriptor is implausible."""
        size = None
        where = address_of(SIZEOF_SYMBOL)
        if where is not None:
            size = _u32(read, where)
            if size is not None and not 0 < size <= MAX_PTHREAD_SIZE:
                raise LayoutError(f"{SIZEOF_SYMBOL} = {size}: not a struct pthread size")
        fields = {}
        for name in FIELDS:
            where = address_of(DESCRIPTOR_PREFIX + name)
            if where is None:
                continue
            try:
                bits, count, offset = struct.unpack("<III", read(where, 12))
            except (GdbextError, struct.error):
                continue
            if bits == 0 or bits % 8 or count < 1 or \
                    (size is not None and offset + bits // 8 > size) or \
                    (name in SCALARS and bits != SCALARS[name]):
                raise LayoutError(f"{DESCRIPTOR_PREFIX}{name} = {{{bits}, {count}, {offset}}}:"
                                  " not a field of struct pthread")
            fields[name] = Field(bits, count, offset)
        if "tid" not in fields:
            raise LayoutError(f"libc publishes no {DESCRIPTOR_PREFIX}tid (not glibc, or "
                              "its .dynsym is unreadable)")
        return cls(size, fields, source)


@record(frozen=True)
class Pthread:
    """One thread's descriptor, as far as it could be read."""
    address: int                    # the thread pointer: struct pthread *
    tid: int | None
    start_routine: int | None       # None: unreadable or not published
    confirmed: bool                 # tid == the thread's LWP

    def to_json(self) -> dict:
        return {"address": self.address, "tid": self.tid,
                "start_routine": self.start_routine, "confirmed": self.confirmed}


def descriptor(read: Reader, layout: PthreadLayout, thread_pointer: int | None,
               lwp: int | None = None) -> Pthread | None:
    """The descriptor at ``thread_pointer`` (the thread's fs_base), or None
    when there is none to read.  ``confirmed`` only when ``lwp`` is given and
    the tid field equals it.  The main thread's start routine is 0 (it was
    not started by pthread_create)."""
    if not thread_pointer or not 4096 <= thread_pointer < USER_SPACE_END:
        return None
    tid = _field(read, layout, "tid", thread_pointer)
    if tid is None:
        return None
    start = _field(read, layout, "start_routine", thread_pointer)
    return Pthread(thread_pointer, tid, start, lwp is not None and tid == lwp)


# How a thread that is no longer running left its descriptor (glibc 2.34+,
# unchanged since NPTL's start for these three): pthread_join marks a joined
# thread "tid = -1" (nptl/pthread_join_common.c); start_thread sets EXITING_BIT
# in cancelhandling as the thread function returns, before the kernel clears
# tid (nptl/pthread_create.c); fork()'s child marks every other thread's
# descriptor free with "tid = 0" and leaves cancelhandling alone (reclaim_stacks,
# nptl/nptl-stack.c), so a thread that was running at the fork has tid 0
# without EXITING.  EXITING_BIT is 4 (nptl/descr.h).
EXITING_BITMASK = 1 << 4
JOINED_TID = 0xFFFFFFFF             # -1 as the u32 the tid field is read as


def ended(read: Reader, layout: PthreadLayout, thread_pointer: int) -> str | None:
    """How the thread whose descriptor is at ``thread_pointer`` ended, read
    from the descriptor alone: "joined", "exited" or "forked" (running in the
    parent when fork() made this process); None while its tid is a thread's,
    or when cancelhandling is not published or not readable."""
    tid = _field(read, layout, "tid", thread_pointer)
    if tid == JOINED_TID:
        return "joined"
    if tid != 0:
        return None
    cancel = _field(read, layout, "cancelhandling", thread_pointer)
    if cancel is None:
        return None
    return "exited" if cancel & EXITING_BITMASK else "forked"


def tid_field_address(layout: PthreadLayout, thread_pointer: int) -> int:
    """Where the thread's TID lives: pthread_join futex-waits on it."""
    return thread_pointer + layout.fields["tid"].offset


def _field(read: Reader, layout: PthreadLayout, name: str, base: int) -> int | None:
    f = layout.field(name)
    if f is None or f.bits not in (32, 64):
        return None
    try:
        raw = read(base + f.offset, f.bits // 8)
    except GdbextError:
        return None
    if len(raw) != f.bits // 8:
        return None
    return int.from_bytes(raw, "little")


def _u32(read: Reader, address: int) -> int | None:
    try:
        return struct.unpack("<I", read(address, 4))[0]
    except (GdbextError, struct.error):
        return None
