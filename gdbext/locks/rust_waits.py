"""Rust std's Mutex, RwLock, Condvar, Once/OnceLock and mpsc waits, for the
Classifier as a provider (classify.py).  std records no owner in its futex
words (knowledge/rust_sync.py), so an owner is inferred from a guard: a
MutexGuard holds ``&Mutex``, a RwLock guard ``&sys::RwLock`` (its state
word), Once's CompletionGuard ``&state_and_queued`` (library/std/src/sync/
poison/mutex.rs, rwlock.rs; sys/sync/once/futex.rs) -- so a thread whose
live stack (its stack pointer up to the top of its stack mapping) holds the
lock's exact address, and that is not itself waiting for that lock, is
taken as its owner: ``inferred``, and said so.  A lock whose data rustc put
before the futex word (repr(Rust) may reorder fields) has no slot equal to
the word: no owner, never a guess at an offset.

Pure: ``read(address, length) -> bytes`` raises GdbextError;
``stack_of(lwp) -> (sp, end) | None``.
"""
from __future__ import annotations

import functools
import struct

from .classify import BlockedOn
from ..errors import GdbextError
from ..knowledge import blocking as kb
from ..knowledge import rust_sync
from ..triage.signature import normalise_function

_name = functools.lru_cache(maxsize=4096)(normalise_function)   # names repeat per thread
MAX_STACK = 1 << 20         # bytes of one thread's live stack searched for guards
FRAMES_LOOKED_AT = 12


class RustWaits:
    def __init__(self, threads, stack_of):
        self.stack_of = stack_of
        self._stacks: dict[int, bytes | None] = {}
        self.use(threads)

    def use(self, threads) -> None:
        """The threads (re-walked ones included) the next classification sees."""
        self.threads = list(threads)
        self._owners: dict[int, tuple[list[int], list[str]]] = {}

    def provider(self, t, names, read) -> BlockedOn | None:
        del names                       # unordered: the innermost std wait decides
        raw = [f.function for f in t.frames[:FRAMES_LOOKED_AT] if f.function]
        if not any(n.startswith(("std", "<std")) for n in raw):
            return None                 # no Rust std frame: cheap for 10,000 C waiters
        frames = [_name(n) for n in raw]
        found = rust_sync.wait_of(tuple(frames))
        if found is None:
            return None
        kind, label, offset, guarded = found
        uaddr = t.regs.get("rdi", 0)
        at = next(i for i, n in enumerate(frames) if rust_sync.wait_of((n,)))
        evidence = [f"frame {at} is {frames[at]} (Rust std); std records no owner"]
        if offset is None:              # a parked thread: no lock to own
            return BlockedOn(kind, None, label, [], "inferred", evidence)
        lock = uaddr - offset
        try:
            word = struct.unpack("<I", read(lock, 4))[0]
        except (GdbextError, struct.error):
            word = None
        evidence.append(rust_sync.state_text(kind, label, word))
        b = BlockedOn(kind, lock, f"{label} {lock:#x}", [], "inferred", evidence)
        if not guarded:
            return b
        if kind == "rust-mutex" and word == 0 or kind == "rust-rwlock" and word is not None \
                and word & rust_sync.RW_MASK == 0:
            b.released = True
            evidence.append("the lock is free: the waiter is being woken")
            return b
        owners, why = self.guards(lock, read, 8, rust_sync.RUNNER.get(kind))
        evidence.extend(why)
        # one owner at a time (a Mutex, a write lock, a Once's runner): more
        # candidates than that and the address is not only a guard's -- none
        readers = word & rust_sync.RW_MASK if kind == "rust-rwlock" and word is not None \
            and word & rust_sync.RW_MASK != rust_sync.RW_WRITE_LOCKED else 1
        if len(owners) > readers:
            evidence.append(f"{len(owners)} threads hold the lock's address and it has "
                            f"{readers} owner(s): which is a guard is unknown")
        else:
            b.owner_lwps = owners
        if not owners:
            evidence.append("no other thread's live stack holds the lock's address "
                            "(no guard found): its owner is unknown")
        return b

    def guards(self, lock: int, read, size: int = 8, runner=None
               ) -> tuple[list[int], list[str]]:
        """The threads whose live stack holds ``lock`` and that do not wait
        for it themselves (a futex wait on one of its ``size`` bytes: a
        waiter holds the address to lock it); with ``runner`` (a Once) only
        those running its initialiser (a frame matching it): any thread may
        hold a OnceLock's address."""
        if lock in self._owners:
            return self._owners[lock]
        needle = struct.pack("<Q", lock)
        owners, why = [], []
        for u in self.threads:
            if u.regs.get("orig_rax") == kb.SYS_FUTEX and \
                    lock <= u.regs.get("rdi", -1) < lock + size:
                continue
            if runner is not None and not any(
                    f.function and runner.match(_name(f.function))
                    for f in u.frames):
                continue
            stack = self._stack(u.lwp, read)
            if not stack:
                continue
            at = _aligned_find(stack, needle)
            if at is None:
                continue
            sp = self.stack_of(u.lwp)[0]
            owners.append(u.lwp)
            why.append(f"LWP {u.lwp}'s stack holds the lock's address at {sp + at:#x} "
                       "(a guard: inferred owner)")
        self._owners[lock] = (owners, why)
        return owners, why

    def _stack(self, lwp: int, read) -> bytes | None:
        if lwp not in self._stacks:
            span = self.stack_of(lwp)
            raw = b""
            if span is not None:
                address, end = span[0], min(span[1], span[0] + MAX_STACK)
                while address < end:    # page by page: a core may lack some
                    n = min(4096 - address % 4096, end - address)
                    try:
                        raw += read(address, n)
                    except GdbextError:
                        break
                    address += n
            self._stacks[lwp] = raw
        return self._stacks[lwp]


def _aligned_find(data: bytes, needle: bytes) -> int | None:
    start = 0
    while True:
        at = data.find(needle, start)
        if at < 0:
            return None
        if at % 8 == 0:
            return at
        start = at + 1
