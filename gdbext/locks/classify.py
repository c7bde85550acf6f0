"""What each thread is blocked on, from frame-0 registers and memory first and
frame names second -- so it works when libc and the OpenMP runtimes have no
symbols at all.  Pure: threads are ``ThreadSnapshot``-shaped values and memory
comes through a ``read(address, length) -> bytes`` callable that raises
GdbextError on unreadable memory.
"""
from __future__ import annotations

import functools
import re
import struct
from dataclasses import dataclass, field
from typing import Callable

from ..errors import GdbextError
from ..knowledge import blocking as kb

Reader = Callable[[int, int], bytes]
MASK64 = (1 << 64) - 1


@dataclass
class BlockedOn:
    kind: str                       # mutex, loader-lock, rwlock, join, condvar, ...
    address: int | None
    label: str
    owner_lwps: list[int] = field(default_factory=list)
    confidence: str = "exact"       # exact: read from an owner field or futex value
    evidence: list[str] = field(default_factory=list)
    runtime: str | None = None      # OpenMP runtime object, for omp-barrier

    def to_json(self) -> dict:
        return {"kind": self.kind, "address": self.address, "label": self.label,
                "owner_lwps": list(self.owner_lwps), "confidence": self.confidence,
                "evidence": list(self.evidence)}


@dataclass
class ThreadState:
    num: int
    lwp: int
    name: str | None
    state: str                      # blocked, sleep, io, running, syscall, unknown
    blocked_on: BlockedOn | None
    wait_site: str | None
    detail: str | None = None       # the syscall, for sleep/io
    frames: list = field(default_factory=list)
    frames_truncated: bool = False


@functools.lru_cache(maxsize=4096)     # a few names, repeated by every thread
def _norm(name: str | None) -> str:
    """glibc's internal spellings with debug info (___pthread_cond_wait,
    __GI___pthread_mutex_lock, __pthread_cond_wait_common) -> the public name."""
    if not name:
        return ""
    name = re.sub(r"^(?:__GI_)?_*", "", name)
    return re.sub(r"_common$", "", name)


def _u32(read: Reader, address: int) -> int | None:
    # address is computed (uaddr - 4 for a gomp barrier): wrapped as the CPU
    # wraps it, because outside [0, 2**64) gdb raises OverflowError, not
    # MemoryError (found by tests/fuzz: a libgomp wait on futex 0 leaked it).
    try:
        return struct.unpack("<I", read(address & MASK64, 4))[0]
    except (GdbextError, struct.error):   # unreadable or garbage pointer: no fact
        return None


@functools.lru_cache(maxsize=4096)
def _match_cached(patterns: tuple[str, ...], path: str) -> str | None:
    return next((p for p in patterns if re.search(p, path)), None)


def _matches(patterns, path: str | None) -> str | None:
    """The first pattern that matches the object path (few distinct paths,
    thousands of frames: cached)."""
    return _match_cached(tuple(patterns), path) if path else None


# What classification reads: frame 0's pc, rsp and syscall number always; the
# futex arguments in a futex wait; the callee-saved registers only for a wait
# that looks like glibc's parked PI locker.  Each register costs a gdb call.
FRAME0_REGISTERS = ("rip", "rsp", "orig_rax")
FUTEX_ARGUMENTS = ("rdi", "rsi", "rdx")
def registers_wanted(regs: dict[str, int]) -> tuple[str, ...]:
    if regs.get("orig_rax") != kb.SYS_FUTEX:
        return ()
    if "rdi" not in regs:
        return FUTEX_ARGUMENTS
    if regs.get("rdx") == 0 and "rsp" in regs \
            and 0 <= regs["rdi"] - regs["rsp"] < kb.PARKED_WORD_NEAR_RSP:
        return kb.PARKED_REGISTERS
    return ()


def more_frames_needed(states) -> tuple[set[int], set[int]]:
    """Thread numbers to walk again after a first walk that stopped at each
    wait site: (one frame past the site, the whole stack).

    One frame past: when a thread waits at an OpenMP barrier, every other
    thread may be a team member, known by the runtime frame that starts a
    worker (gomp_thread_start, __kmp_invoke_microtask) just below the user's
    outlined function.  The whole stack: the loader lock's holders, whose
    dlopen/constructor frames lie far below the wait site."""
    holders = {o for s in states if s.blocked_on and s.blocked_on.kind == "loader-lock"
               for o in s.blocked_on.owner_lwps}
    whole = {s.num for s in states if s.lwp in holders and not s.frames_truncated}
    barrier = any(s.blocked_on and s.blocked_on.kind == "omp-barrier" for s in states)
    past = {s.num for s in states if barrier and s.num not in whole
            and not (s.blocked_on and s.blocked_on.kind == "omp-barrier")}
    return past, whole


def wait_site(frames) -> str | None:
    """The first frame outside libc, ld.so and the OpenMP runtimes."""
    for f in frames:
        if f.objfile and _matches(kb.RUNTIME_OBJECTS, f.objfile):
            continue
        if f.function and f.file:
            return f"{f.function} ({f.file}:{f.line})"
        if f.function:
            return f.function
        return f"{f.pc:#x}" + (f" in {f.objfile}" if f.objfile else "")
    return None


def _memoized(read: Reader) -> Reader:
    seen: dict[tuple[int, int], bytes | GdbextError] = {}

    def cached(address: int, length: int) -> bytes:
        key = (address, length)
        if key not in seen:
            try:
                seen[key] = read(address, length)
                if len(seen[key]) != length:    # a short answer is unreadable memory too:
                    raise GdbextError(          # the unpacks after a read assume the length
                        f"cannot read {length} bytes at {address:#x}")
            except GdbextError as exc:
                seen[key] = exc
        found = seen[key]
        if isinstance(found, GdbextError):
            raise found
        return found
    return cached


class Classifier:
    def __init__(self, threads, read: Reader, rtld_global: tuple[int, int] | None):
        self.threads = threads
        self.read = _memoized(read)     # a thousand waiters often share one lock
        self.rtld = rtld_global
        self.lwps = {t.lwp for t in threads}

    def run(self) -> list[ThreadState]:
        states = [self.one(t) for t in self.threads]
        _infer_teams(states)
        _loader_holder_evidence(states)
        return states

    def one(self, t) -> ThreadState:
        site = wait_site(t.frames)
        base = dict(num=t.num, lwp=t.lwp, name=t.name, wait_site=site, frames=t.frames,
                    frames_truncated=t.frames_truncated)
        nr = t.regs.get("orig_rax")
        if not t.in_syscall or nr is None or nr >= 1 << 63:
            return ThreadState(state="running", blocked_on=None, **base)
        if nr == kb.SYS_FUTEX:
            return ThreadState(state="blocked", blocked_on=self.futex(t), **base)
        state, what = kb.SYSCALL_STATES.get(nr, ("syscall", f"syscall {nr}"))
        if nr == kb.SYS_RESTART_SYSCALL:
            names = {_norm(f.function) for f in t.frames[:4]}
            state, what = next((sw for fn, sw in kb.RESTARTED_BY_FRAME if fn in names),
                               (state, "restart_syscall"))
            what += " (restarted)"
        return ThreadState(state=state, blocked_on=None, detail=what, **base)

    # --- futex waits ---------------------------------------------------------
    def futex(self, t) -> BlockedOn:
        uaddr, op, val = t.regs.get("rdi", 0), t.regs.get("rsi", 0), t.regs.get("rdx", 0)
        cmd = op & kb.FUTEX_CMD_MASK
        names = [_norm(f.function) for f in t.frames[:6]]
        if cmd in kb.FUTEX_PI_LOCKS:
            return self.pi_mutex(uaddr)
        if cmd in kb.FUTEX_WAITS:
            for rule in (self.parked_pi, self.join, self.mutex, self.rwlock, self.openmp):
                found = rule(t, uaddr, val)
                if found is not None:
                    return found
        match = next(((fn, k) for fn, k in kb.FRAME_KINDS if fn in names), None)
        if match is not None:
            fn, kind = match
            return BlockedOn(kind, uaddr, f"{kind} (futex {uaddr:#x})", [],
                             "exact" if kind in ("condvar", "semaphore") else "inferred",
                             [f"frame {names.index(fn)} is {fn}; no owner is recorded"])
        return BlockedOn("futex", uaddr, f"futex {uaddr:#x} (op {op:#x}, expected {val})", [],
                         "inferred", ["no owner field recognised at this address"])

    def pi_mutex(self, uaddr: int) -> BlockedOn:
        word = _u32(self.read, uaddr)
        owner = word & kb.FUTEX_TID_MASK if word is not None else 0
        return BlockedOn("mutex", uaddr, f"priority-inheritance mutex {uaddr:#x}",
                         [owner] if owner else [], "exact",
                         [f"PI futex word {word:#x}: owner TID in the low 30 bits"
                          if word is not None else "futex word unreadable"])

    def parked_pi(self, t, uaddr: int, val: int) -> BlockedOn | None:
        """A thread glibc parked forever after FUTEX_LOCK_PI said EDEADLK: it
        waits on a zero word on its own stack; the PI mutex it wanted is held
        in a callee-saved register or a stack slot, and its futex word names
        another thread."""
        rsp = t.regs.get("rsp")
        if rsp is None or val != 0 or not 0 <= uaddr - rsp < kb.PARKED_WORD_NEAR_RSP:
            return None
        try:
            stack = self.read(rsp, kb.PARKED_STACK_SCAN)
        except GdbextError:
            stack = b""
        candidates = [(t.regs[r], r) for r in kb.PARKED_REGISTERS if r in t.regs]
        candidates += [(struct.unpack_from("<Q", stack, o)[0], f"rsp+{o:#x}")
                       for o in range(0, len(stack) - 7, 8)]
        for value, where in candidates:
            for offset in kb.PARKED_POINTER_OFFSETS:
                found = self._pi_mutex_at(value - offset, t.lwp)
                if found is None:
                    continue
                pointer, holder = found
                field = "the mutex" if offset == 0 else f"mutex+{offset} (__kind)"
                return BlockedOn(
                    "mutex", pointer, f"priority-inheritance mutex {pointer:#x}", [holder],
                    "inferred",
                    ["FUTEX_LOCK_PI failed (the kernel found the PI chain deadlocked);"
                     f" glibc parks the thread forever on the zero word {uaddr:#x} on its"
                     " own stack",
                     f"{where} points at {field}; its futex word and __owner name"
                     f" LWP {holder}"])
        return None

    def _pi_mutex_at(self, pointer: int, waiter: int) -> tuple[int, int] | None:
        if pointer < 4096 or pointer >= 1 << 47:
            return None
        try:
            lock, _count, owner, _nusers, kind = struct.unpack_from(
                "<IIiIi", self.read(pointer, 20))
        except GdbextError:
            return None
        holder = lock & kb.FUTEX_TID_MASK
        if kind & kb.MUTEX_PI and holder == owner and holder in self.lwps and holder != waiter:
            return pointer, holder
        return None

    def join(self, t, uaddr: int, val: int) -> BlockedOn | None:
        if val not in self.lwps or val == t.lwp or _u32(self.read, uaddr) != val:
            return None
        return BlockedOn("join", uaddr, f"pthread_join of LWP {val}", [val], "exact",
                         [f"futex on &pd->tid (pthread_t {uaddr - kb.PTHREAD_TID_OFFSET:#x}"
                          f" on glibc 2.36) holding the joined thread's TID {val}"])

    def mutex(self, t, uaddr: int, val: int) -> BlockedOn | None:
        try:
            raw = self.read(uaddr, kb.MUTEX_SIZE)
        except GdbextError:
            return None
        lock, count, owner, _nusers, kind = struct.unpack_from("<iIiIi", raw)
        if owner not in self.lwps or lock == 0:
            return None
        kind_name = kb.MUTEX_KINDS.get(kind & 3, "normal")
        extra = [n for flag, n in ((kb.MUTEX_ROBUST, "robust"), (kb.MUTEX_PI, "PI"))
                 if kind & flag]
        evidence = [f"__owner = {owner} at +8, __kind = {kind} ({' '.join(extra + [kind_name])})"]
        if count and kind & 3 == 1:
            evidence.append(f"held {count} time(s) recursively")
        loader = self.loader_lock_name(uaddr)
        if loader:
            return BlockedOn("loader-lock", uaddr, f"glibc loader lock {loader}", [owner],
                             "exact", evidence)
        what = " ".join(extra + [kind_name])
        if owner == t.lwp and kind & 3 != 1:
            evidence.append("the waiter owns this non-recursive mutex: self-deadlock")
        return BlockedOn("mutex", uaddr, f"{what} mutex {uaddr:#x}", [owner], "exact", evidence)

    def loader_lock_name(self, uaddr: int) -> str | None:
        if not self.rtld:
            return None
        start, size = self.rtld
        if not start <= uaddr < start + max(size, 1):
            return None
        offset = uaddr - start
        name = kb.RTLD_LOCKS.get(offset)
        return f"_rtld_global.{name}" if name else f"_rtld_global+{offset}"

    def rwlock(self, t, uaddr: int, val: int) -> BlockedOn | None:
        for off, role in kb.RWLOCK_WAIT_OFFSETS.items():
            base = (uaddr - off) & MASK64
            writer = _u32(self.read, base + kb.RWLOCK_CUR_WRITER)
            if writer in self.lwps:
                return BlockedOn("rwlock", base,
                                 f"rwlock {base:#x} (waiting to {'read' if role == 'reader' else 'write'})",
                                 [writer], "exact",
                                 [f"__cur_writer = {writer} at +24; readers are not recorded"])
        names = {_norm(f.function) for f in t.frames[:6]}
        if names & {"pthread_rwlock_rdlock", "pthread_rwlock_wrlock",
                    "pthread_rwlock_timedrdlock", "pthread_rwlock_timedwrlock"}:
            # the rwlock is 8-aligned: readers wait on +8, writers on +12
            base = (uaddr - (8 if uaddr % 8 == 0 else 12)) & MASK64
            return BlockedOn("rwlock", base, f"rwlock {base:#x} (held by readers)", [],
                             "exact", ["no writer recorded: held by readers, which glibc "
                                       "does not track"])
        return None

    def openmp(self, t, uaddr: int, val: int) -> BlockedOn | None:
        runtime = _runtime_of(t.frames[:12])
        if runtime is None:
            return None
        names = [_norm(f.function) for f in t.frames[:12]]
        if any(n.startswith("pthread_cond") for n in names) or _matches(
                kb.OPENMP_RUNTIMES, t.frames[0].objfile if t.frames else None):
            evidence = [f"waits inside {kb.OPENMP_RUNTIMES[runtime[0]]} ({runtime[1]})"]
            if runtime[0] == r"/libgomp\.so":
                evidence += _gomp_barrier_counts(self.read, uaddr)
            return BlockedOn("omp-barrier", uaddr, f"OpenMP barrier ({kb.OPENMP_RUNTIMES[runtime[0]]})",
                             [], "inferred", evidence, runtime=runtime[1])
        return None


def _gomp_barrier_counts(read: Reader, uaddr: int) -> list[str]:
    """libgomp's own count of the threads that have not arrived (evidence
    beside the team inferred from frames)."""
    base = (uaddr - kb.GOMP_BARRIER_FUTEX_FIELD) & MASK64
    total = _u32(read, base + kb.GOMP_BARRIER_TOTAL)
    awaited = _u32(read, base + kb.GOMP_BARRIER_AWAITED)
    final = _u32(read, base + kb.GOMP_BARRIER_AWAITED_FINAL)
    if not total or total > 1 << 16 or awaited is None or final is None:
        return []
    if 0 < awaited < total:
        return [f"libgomp team barrier at {base:#x}: {awaited} of {total} threads not arrived"]
    if 0 < final < total:
        return [f"libgomp barrier ending the parallel region at {base:#x}: {final} of "
                f"{total} threads not arrived"]
    return [f"libgomp barrier at {base:#x}: team of {total}"]


def _runtime_of(frames) -> tuple[str, str] | None:
    for f in frames:
        p = _matches(kb.OPENMP_RUNTIMES, f.objfile)
        if p:
            return p, f.objfile
    return None


def _infer_teams(states: list[ThreadState]) -> None:
    """A barrier waits for the team members that have not arrived: threads with
    frames in the same OpenMP runtime that are not waiting in it themselves."""
    for s in states:
        b = s.blocked_on
        if b is None or b.kind != "omp-barrier":
            continue
        team = [o for o in states if o is not s and any(f.objfile == b.runtime for f in o.frames)]
        arrived = [o for o in team if o.blocked_on and o.blocked_on.kind == "omp-barrier"
                   and o.blocked_on.runtime == b.runtime]
        b.owner_lwps = [o.lwp for o in team if o not in arrived]
        b.evidence.append(f"team: {len(team) + 1} threads with {b.runtime} frames; "
                          f"{len(arrived) + 1} waiting in the runtime, "
                          f"{len(b.owner_lwps)} not arrived")


def _loader_holder_evidence(states: list[ThreadState]) -> None:
    """The loader lock's owner should be inside the loader: say which frames show it."""
    by = {s.lwp: s for s in states}
    for s in states:
        b = s.blocked_on
        if b is None or b.kind != "loader-lock" or not b.owner_lwps:
            continue
        holder = by.get(b.owner_lwps[0])
        if holder is None:
            continue
        loader = {_norm(n) for n in kb.LOADER_FRAMES}
        names = [f.function for f in holder.frames if _norm(f.function) in loader]
        in_ldso = sum(1 for f in holder.frames if f.objfile and "ld-linux" in f.objfile)
        if names or in_ldso:
            shown = ", ".join(dict.fromkeys(names)) or "no names"
            b.evidence.append(f"the holder is inside the dynamic loader: {shown}; "
                              f"{in_ldso} frame(s) in ld.so")


def classify(threads, read: Reader, rtld_global: tuple[int, int] | None) -> list[ThreadState]:
    return Classifier(threads, read, rtld_global).run()
