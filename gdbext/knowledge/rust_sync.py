"""Rust std's own synchronisation on Linux: every primitive is a futex word
std manages itself (library/std/src/sys/sync/*/futex.rs, rust 1.62+), so no
owner is recorded anywhere.  A wait is recognised by the std function that
called futex_wait (its frame, demangled and normalised -- the paths moved
between releases: sys::unix::locks::futex_mutex (1.62-1.73),
sys::pal::unix::locks (1.74-1.76), sys::sync::mutex::futex (1.77+)).

Each entry: (frame pattern, kind, what the program called, offset of the
futex word inside the std lock (the lock's own address = word - offset),
whether a guard on the owner's stack holds the lock's address).
"""
from __future__ import annotations

import functools
import re

_SYS = r"std::sys::(?:sync|pal::unix::locks|unix::locks|pal::unix::sync)::"

# Futex word states (library/std/src/sys/sync/mutex/futex.rs: UNLOCKED 0,
# LOCKED 1, CONTENDED 2; rwlock/futex.rs: a 30-bit reader count, 0x3FFFFFFF
# write-locked, bit 30 readers waiting, bit 31 writers waiting; writers sleep
# on the second word, writer_notify, at +4; once/futex.rs: COMPLETE 0,
# RUNNING 1, POISONED 2, INCOMPLETE 3, QUEUED bit 4).
WAITS = (
    (_SYS + r"(?:mutex::futex|futex_mutex)::Mutex::lock_contended", "rust-mutex",
     "std::sync::Mutex", 0, True),
    (_SYS + r"(?:rwlock::futex|futex_rwlock)::RwLock::write_contended", "rust-rwlock",
     "std::sync::RwLock (write)", 4, True),
    (_SYS + r"(?:rwlock::futex|futex_rwlock)::RwLock::read_contended", "rust-rwlock",
     "std::sync::RwLock (read)", 0, True),
    (_SYS + r"(?:condvar::futex|futex_condvar)::Condvar::wait\w*", "condvar",
     "std::sync::Condvar", 0, False),
    (_SYS + r"once::futex::Once::(?:call|wait)|std::sys_common::once::futex::Once::call",
     "rust-once", "std::sync::Once / OnceLock (another thread runs its initialiser)", 0,
     True),
    (r"std::sync::mpmc::.*::recv.*|std::sync::mpsc::.*::recv.*", "channel",
     "std::sync::mpsc receive (a thread parked until a sender sends)", None, False),
)
_COMPILED = tuple((re.compile(p + r"\Z"), k, label, off, guard)
                  for p, k, label, off, guard in WAITS)

# A Once's owner is the thread running its initialiser: inside Once::call
# (its CompletionGuard holds the word; sys/sync/once/futex.rs)
RUNNER = {"rust-once": re.compile(_SYS + r"once::futex::Once::call\Z")}

# The wait site of every std wait when the walk stopped there (std's
# futex_wait, in the executable: not a system object)
STD_FUTEX_WAIT = re.compile(r"std::sys::(?:pal::unix::|unix::)?futex::futex_wait\b")

MUTEX_STATES = {0: "unlocked", 1: "locked", 2: "locked, with waiters"}
RW_MASK, RW_WRITE_LOCKED = (1 << 30) - 1, (1 << 30) - 1
ONCE_STATES = {0: "complete", 1: "running", 2: "poisoned", 3: "incomplete"}


@functools.lru_cache(maxsize=1024)     # threads parked at one site share their names
def wait_of(names: tuple) -> tuple[str, str, int | None, bool] | None:
    """(kind, label, word offset, guarded) of the first std wait among a
    thread's normalised frame names (innermost first), or None."""
    for name in names:
        for pattern, kind, label, offset, guard in _COMPILED:
            if pattern.match(name):
                return kind, label, offset, guard
    return None


def state_text(kind: str, label: str, word: int | None) -> str:
    """What the lock's futex word says, in std's own terms."""
    if word is None:
        return "its futex word is unreadable"
    if kind == "rust-mutex":
        return f"state {word} ({MUTEX_STATES.get(word, 'not a std Mutex state')})"
    if kind == "rust-rwlock":
        count = word & RW_MASK
        held = ("write-locked" if count == RW_WRITE_LOCKED else
                f"read-locked by {count}" if count else "unlocked")
        return f"state {word:#x} ({held})"
    if kind == "rust-once":
        return (f"state {word} ({ONCE_STATES.get(word & 3, '?')}"
                f"{', waiters queued' if word & 4 else ''})")
    return f"futex word {word}"
