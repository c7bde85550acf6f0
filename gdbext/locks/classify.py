"""What each thread is blocked on, from frame-0 registers and memory first and
frame names second -- so it works when libc and the OpenMP runtimes have no
symbols at all.  Pure: threads are ``ThreadSnapshot``-shaped values and memory
comes through a ``read(address, length) -> bytes`` callable that raises
GdbextError on unreadable memory.

A lock is named only when something confirms what it is: a frame of the lock
call (pthread_mutex_lock, sem_wait...), or the lock's own fields agreeing with
the futex call (a contended mutex waits for the value 2 in ``__lock``), or its
address (the loader lock inside ld.so's ``_rtld_global``).  ``exact`` is kept
for an owner read from an owner field of such a lock; everything else is
``inferred`` and says why.

Runtime readers plug in as *providers*: ``provider(thread, names, read) ->
BlockedOn | None``, tried first for every futex wait (``names`` are the
thread's first frame names, normalised).  A provider that knows a runtime's
lock (the GIL, a Python lock) returns the resource with its owners (or none,
and why); the graph and the verdict treat it like any other wait.  A thread's
start routine (``ThreadState.start``, from glibc's descriptor) says which
runtime made it.
"""
from __future__ import annotations

import functools
import re
import struct
from collections.abc import Callable, Sequence

from ..errors import GdbextError
from ..knowledge import blocking as kb
from ..knowledge.skip_frames import STD_LIBRARY_FRAME
from ..runtimes import glibc_threads
from ..record import field, record

Reader = Callable[[int, int], bytes]
MASK64 = (1 << 64) - 1


@record
class OwnerFate:
    """What an owner TID that is no thread of this process is."""
    fate: str                       # fork-parent, exited, gone
    evidence: str

    def to_json(self) -> dict:
        return {"fate": self.fate, "evidence": self.evidence}


def unknown_fate(tid: int) -> OwnerFate:
    return OwnerFate("gone", f"no thread of this process has TID {tid}")


@record
class BlockedOn:
    """What a thread waits for, and who holds it."""
    kind: str                       # mutex, loader-lock, rwlock, join, condvar, semaphore, ...
    address: int | None
    label: str
    owner_lwps: list[int] = field(default_factory=list)
    confidence: str = "inferred"    # exact: an owner read from a confirmed lock's owner field
    evidence: list[str] = field(default_factory=list)
    runtime: str | None = None      # OpenMP runtime object, for omp-barrier
    timed: bool = False             # the futex call has a timeout: it returns by itself
    gone: dict[int, OwnerFate] = field(default_factory=dict)   # owners that are no thread
    runtime_count: int | None = None    # the runtime's own count of members not arrived
    released: bool = False          # the lock is free already: the waiter is being woken
    loops: bool = False             # the waiter re-waits after each timeout (take_gil)
    # the owner is no thread of this process and its TID is not known (an
    # RLock's owner whose descriptor says it ended): a wait that never ends
    ended: OwnerFate | None = None

    def to_json(self) -> dict:
        return {"kind": self.kind, "address": self.address, "label": self.label,
                "owner_lwps": list(self.owner_lwps), "confidence": self.confidence,
                "evidence": list(self.evidence), "timed": self.timed,
                "released": self.released,
                "gone": [{"lwp": l, **f.to_json()} for l, f in self.gone.items()],
                "ended": self.ended.to_json() if self.ended else None}


@record
class StartRoutine:
    """The function a thread was started with, from its struct pthread."""
    address: int                    # 0: not started by pthread_create (the main thread)
    symbol: str | None              # only when the address is that symbol's start
    objfile: str | None
    runtime: str | None             # "GNU libgomp worker"... when known

    def to_json(self) -> dict:
        return {"address": self.address, "symbol": self.symbol, "objfile": self.objfile,
                "runtime": self.runtime}

    def describe(self) -> str:
        if not self.address:
            return "no start routine (the main thread)"
        what = self.symbol or f"{self.address:#x}"
        return what + (f" in {self.objfile}" if self.objfile else "")


@record
class ThreadState:
    """One thread: its state, its wait and its wait site."""
    num: int
    lwp: int
    name: str | None
    state: str                      # blocked, sleep, io, running, syscall, unknown
    blocked_on: BlockedOn | None
    wait_site: str | None
    detail: str | None = None       # the syscall, for sleep/io
    frames: list = field(default_factory=list)
    frames_truncated: bool = False
    start: StartRoutine | None = None
    # sleeps for good: an untimed (or re-waiting) futex wait on a word of this
    # process's own (private, or a join) that still holds the value the
    # waiter sleeps on -- nothing has woken it; only a thread here can
    stuck: bool = False
    python_site: object = None      # a Python thread's wait site (runtimes.cpython.PyFrame)


_SUFFIXES = re.compile(r"(?:_common|_slow|_full|_cancelable|_ex|_np|64)$")


@functools.lru_cache(maxsize=4096)     # a few names, repeated by every thread
def _norm(name: str | None) -> str:
    """glibc's internal spellings -> the public name: ___pthread_cond_wait,
    __GI___pthread_mutex_lock, __pthread_cond_wait_common, __new_sem_wait_slow64,
    sem_wait@@GLIBC_2.34, __pthread_clockjoin_ex, C++ arguments."""
    if not name:
        return ""
    name = re.sub(r"^(?:__GI_)?_*", "", name.split("@")[0].split("(")[0])
    name = re.sub(r"^(?:new|old)_(?=sem_)", "", name)
    while True:
        shorter = _SUFFIXES.sub("", name)
        if shorter == name or not shorter:
            return name
        name = shorter


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


# What classification reads: frame 0's syscall number and the futex
# arguments always (the pc comes with the frame); the timeout of a wait unless
# it is a contended glibc lock (__lll_lock_wait passes none); rsp and the
# callee-saved registers only for a wait that looks like glibc's parked PI
# locker.  Each register costs a gdb call, ten thousand threads ten thousand.
FRAME0_REGISTERS = ("orig_rax", "rdi", "rsi", "rdx")   # the futex arguments: read at once
FUTEX_ARGUMENTS = ("rdi", "rsi", "rdx")


def registers_wanted(regs: dict[str, int]) -> tuple[str, ...]:
    if regs.get("orig_rax") == kb.SYS_RESTART_SYSCALL and "r10" not in regs:
        return FUTEX_ARGUMENTS + ("r10",)     # a restarted futex wait keeps them (one())
    if regs.get("orig_rax") != kb.SYS_FUTEX:
        return ()
    if "rdi" not in regs:
        return FUTEX_ARGUMENTS
    cmd = regs.get("rsi", 0) & kb.FUTEX_CMD_MASK
    want = []
    if cmd in kb.FUTEX_WAITS | kb.FUTEX_PI_LOCKS and "r10" not in regs \
            and not (cmd == kb.FUTEX_WAIT and regs.get("rdx") == 2):
        want.append("r10")
    if regs.get("rdx") == 0:
        if "rsp" not in regs:
            want.append("rsp")
        elif 0 <= regs["rdi"] - regs["rsp"] < kb.PARKED_WORD_NEAR_RSP:
            want += kb.PARKED_REGISTERS
    return tuple(want)


def walks_needed(states) -> set[int]:
    """Thread numbers to walk whole after a first walk that stopped at each
    wait site: the loader lock's holders, whose dlopen/constructor frames lie
    far below the wait site; and, when a thread waits at an OpenMP barrier,
    the threads whose start routine could not be read (their team is then
    found by frames of the runtime anywhere in their stacks)."""
    holders = {o for s in states if s.blocked_on and s.blocked_on.kind == "loader-lock"
               for o in s.blocked_on.owner_lwps}
    whole = {s.num for s in states if s.lwp in holders and not s.frames_truncated}
    if any(s.blocked_on and s.blocked_on.kind == "omp-barrier" for s in states):
        whole |= {s.num for s in states if s.start is None and not s.frames_truncated
                  and not (s.blocked_on and s.blocked_on.kind == "omp-barrier")}
    return whole


def wait_site(frames, module_of: Callable[[int], "str | None"] | None = None) -> str | None:
    """The first frame outside libc, ld.so and the OpenMP runtimes.  One
    with no symbol is ``module+0xoffset`` (Breakpad/Socorro's convention)
    when ``module_of(pc)`` names it so (the offset is the file's own
    address, the one ``addr2line -e module`` takes).  Frames of the standard
    libraries (Rust std/core/alloc, libstdc++'s templates) are passed over
    for the program's frame that called them, when the walk reached it."""
    fallback = None
    for f in frames:
        if f.objfile and _matches(kb.RUNTIME_OBJECTS, f.objfile):
            continue
        if f.function and STD_LIBRARY_FRAME.match(f.function):
            fallback = fallback or f    # the standard library's own frames: the
            continue                    # program's caller is the site, when walked
        return _site(f, module_of)
    return _site(fallback, module_of) if fallback else None


def _site(f, module_of) -> str:
    if f.function and f.file:
        return f"{f.function} ({f.file}:{f.line})"
    if f.function:
        return f.function
    named = module_of(f.pc) if module_of else None
    if named:
        return named
    return f"{f.pc:#x}" + (f" in {f.objfile}" if f.objfile else "")


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


Symbolizer = Callable[[int], "tuple[str | None, str | None]"]   # address -> (symbol, objfile)
Provider = Callable[..., "BlockedOn | None"]


class Classifier:
    """``layout``: glibc's struct pthread layout (None: start routines are not
    read); ``symbolize``: a start routine's exact symbol and object;
    ``all_lwps``: every thread of the process (the snapshots may be bounded);
    ``fate``: what an owner TID that is none of them is; ``providers``:
    runtime readers tried first; ``pointers``: LWP -> thread pointer (else
    each snapshot's fs_base register)."""

    def __init__(self, threads, read: Reader, rtld_global: tuple[int, int] | None, *,
                 layout: glibc_threads.PthreadLayout | None = None,
                 symbolize: Symbolizer | None = None,
                 all_lwps: set[int] | None = None,
                 fate: Callable[[int], OwnerFate] = unknown_fate,
                 providers: Sequence[Provider] = (),
                 pointers: dict[int, int | None] | None = None,
                 syscall_name: Callable[[int], "str | None"] | None = None,
                 module_of: Callable[[int], "str | None"] | None = None):
        self.threads = threads
        self.module_of = module_of
        self.read = _memoized(read)     # a thousand waiters often share one lock
        self.rtld = rtld_global
        self.lwps = {t.lwp for t in threads} | set(all_lwps or ())
        self.layout = layout
        self.symbolize = functools.lru_cache(maxsize=256)(symbolize) if symbolize else None
        self.fate = functools.lru_cache(maxsize=256)(fate)
        self.providers = tuple(providers)
        # each thread's struct pthread: its pthread_t (= fs_base on x86-64)
        self.pointers = pointers if pointers is not None else \
            {t.lwp: t.regs.get("fs_base") for t in threads}
        self.syscall_name = syscall_name or (lambda nr: None)   # gdb's table: tgkill, not 234
        self.warnings: list[str] = []

    def run(self) -> list[ThreadState]:
        states = [self.one(t) for t in self.threads]
        # Start routines decide OpenMP teams; elsewhere they are one more read
        # per thread that ten thousand lock waiters do not need.
        if self.layout is not None and any(
                s.blocked_on and s.blocked_on.kind == "omp-barrier" for s in states):
            for s in states:
                s.start = self.start_of(s.lwp)
        _infer_teams(states, self.warnings)
        _loader_holder_evidence(states)
        return states

    def start_of(self, lwp: int) -> StartRoutine | None:
        """The thread's start routine, when its descriptor is confirmed (its
        tid field holds its LWP)."""
        d = glibc_threads.descriptor(self.read, self.layout, self.pointers.get(lwp), lwp)
        if d is None or not d.confirmed or d.start_routine is None:
            return None
        if d.start_routine == 0:
            return StartRoutine(0, None, None, None)
        symbol, objfile = self.symbolize(d.start_routine) if self.symbolize else (None, None)
        runtime = kb.THREAD_STARTS.get(symbol or "")
        if runtime is None and _matches(kb.OPENMP_RUNTIMES, objfile):
            runtime = kb.OPENMP_RUNTIMES[_matches(kb.OPENMP_RUNTIMES, objfile)] + " thread"
        return StartRoutine(d.start_routine, symbol, objfile, runtime)

    def one(self, t) -> ThreadState:
        site = wait_site(t.frames, self.module_of)
        base = dict(num=t.num, lwp=t.lwp, name=t.name, wait_site=site, frames=t.frames,
                    frames_truncated=t.frames_truncated)
        nr = t.regs.get("orig_rax")
        if not t.in_syscall or nr is None or nr >= 1 << 63:
            return ThreadState(state="running", blocked_on=None, **base)
        restarted = nr == kb.SYS_RESTART_SYSCALL and self._restarted_futex(t)
        if restarted:       # a timed futex wait the stop interrupted (gdbserver's attach):
            nr = kb.SYS_FUTEX   # the kernel keeps its arguments in rdi, rsi, rdx, r10
        if nr == kb.SYS_FUTEX:
            cmd = t.regs.get("rsi", 0) & kb.FUTEX_CMD_MASK
            if "rsi" in t.regs and cmd not in kb.FUTEX_WAITS | kb.FUTEX_PI_LOCKS:
                # FUTEX_WAKE, REQUEUE...: caught in the middle of waking others
                return ThreadState(state="running", blocked_on=None,
                                   detail=f"futex op {cmd} (not a wait)", **base)
            blocked = self.futex(t)
            if restarted:
                blocked.evidence.append("a futex wait resumed as restart_syscall (a stop "
                                        "interrupted it): its arguments are still in the "
                                        "registers")
            return ThreadState(state="blocked", blocked_on=blocked,
                               stuck=self._sleeps_for_good(t, blocked), **base)
        state, what = kb.SYSCALL_STATES.get(
            nr, ("syscall", self.syscall_name(nr) or f"syscall {nr}"))
        if nr == kb.SYS_RESTART_SYSCALL:
            names = {_norm(f.function) for f in t.frames[:4]}
            state, what = next((sw for fn, sw in kb.RESTARTED_BY_FRAME if fn in names),
                               (state, "restart_syscall"))
            what += " (restarted)"
        return ThreadState(state=state, blocked_on=None, detail=what, **base)

    def _sleeps_for_good(self, t, b: BlockedOn) -> bool:
        """Whether nothing but another thread of this process can end the
        wait (ThreadState.stuck).  A word that no longer holds the value the
        waiter sleeps on means a wake-up is on its way (FUTEX_WAIT sleeps
        only while *uaddr == val): a busy healthy process caught mid-handoff
        is not stuck."""
        uaddr, op, val = t.regs.get("rdi"), t.regs.get("rsi"), t.regs.get("rdx")
        if uaddr is None or op is None or val is None or b.released:
            return False
        if b.timed and not b.loops:
            return False
        cmd = op & kb.FUTEX_CMD_MASK
        if cmd in kb.FUTEX_PI_LOCKS:
            return True                 # the kernel hands it over at the owner's unlock
        if cmd not in kb.FUTEX_WAITS:
            return False
        if not op & kb.FUTEX_PRIVATE_FLAG and b.kind != "join":
            return False                # process-shared: another process may wake it
        try:
            word = int.from_bytes(self.read(uaddr, 4), "little")
        except GdbextError:
            return False
        return word == val & 0xFFFFFFFF

    def _restarted_futex(self, t) -> bool:
        """Whether a thread in restart_syscall was in futex(2): its frames say
        so, or, without symbols, the code at its syscall does -- glibc's
        wrappers load the number just before it (mov $202,%eax; syscall:
        b8 ca 00 00 00 0f 05), with rip after the syscall or rewound onto it."""
        if any("futex" in (f.function or "") for f in t.frames[:3]):
            return True
        pc = t.frames[0].pc if t.frames else None
        for at in ((pc - 7, pc - 5) if pc else ()):
            try:
                code = self.read(at, 7)
            except GdbextError:
                continue
            if code[0] == 0xB8 and code[5:7] == b"\x0f\x05" \
                    and int.from_bytes(code[1:5], "little") == kb.SYS_FUTEX:
                return True
        # glibc 2.41's cancellable calls pass the number in a register
        # (__syscall_cancel_arch): the arguments still read as a futex wait --
        # a wait op with only the private/clock bits, a readable aligned word
        # holding the value the waiter sleeps on
        uaddr, op, val = t.regs.get("rdi"), t.regs.get("rsi"), t.regs.get("rdx")
        if uaddr is None or op is None or val is None or uaddr % 4 \
                or op & ~(kb.FUTEX_CMD_MASK | kb.FUTEX_PRIVATE_FLAG | kb.FUTEX_CLOCK_REALTIME) \
                or op & kb.FUTEX_CMD_MASK not in kb.FUTEX_WAITS:
            return False
        try:
            return int.from_bytes(self.read(uaddr, 4), "little") == val & 0xFFFFFFFF
        except GdbextError:
            return False

    # --- futex waits ---------------------------------------------------------
    def futex(self, t) -> BlockedOn:
        found = self._futex(t)
        cmd = t.regs.get("rsi", 0) & kb.FUTEX_CMD_MASK
        if t.regs.get("r10") and (cmd in kb.FUTEX_WAITS or cmd in kb.FUTEX_PI_LOCKS) \
                and not found.loops:
            found.timed = True
            found.evidence.append("the futex call has a timeout (r10 != 0): the wait "
                                  "returns by itself")
        return found

    def _futex(self, t) -> BlockedOn:
        uaddr, op, val = t.regs.get("rdi", 0), t.regs.get("rsi", 0), t.regs.get("rdx", 0)
        cmd = op & kb.FUTEX_CMD_MASK
        frames = [_norm(f.function) for f in t.frames[:kb.FRAMES_LOOKED_AT]]
        names = frozenset(frames)
        for provider in self.providers:
            try:
                found = provider(t, names, self.read)
            except GdbextError:
                found = None
            if found is not None:
                self._gone(found)       # a runtime's lock held by a thread that is gone
                return found
        if cmd in kb.FUTEX_PI_LOCKS:
            return self.pi_mutex(uaddr)
        if cmd in kb.FUTEX_WAITS:
            for rule in (self.parked_pi, self.join, self.mutex, self.rwlock, self.semaphore,
                         self.openmp):
                found = rule(t, uaddr, val, cmd, names)
                if found is not None:
                    return found
        match = next(((fn, k) for fn, k in kb.FRAME_KINDS if fn in names), None)
        if match is not None:
            fn, kind = match
            why = kb.OWNERLESS_UNKNOWN.get(kind, "no owner is recorded")
            return BlockedOn(kind, uaddr, f"{kind} (futex {uaddr:#x})", [], "inferred",
                             [f"frame {frames.index(fn)} is {fn}; {why}"])
        if cmd == kb.FUTEX_WAIT_BITSET:
            found = self.semaphore_by_fields(uaddr, val)
            if found is not None:
                return found
        return BlockedOn("futex", uaddr, f"futex {uaddr:#x} (op {op:#x}, expected {val})", [],
                         "inferred", ["no lock recognised at this address, and no frame "
                                      "names the call"])

    def pi_mutex(self, uaddr: int) -> BlockedOn:
        word = _u32(self.read, uaddr)
        owner = word & kb.FUTEX_TID_MASK if word is not None else 0
        b = BlockedOn("mutex", uaddr, f"priority-inheritance mutex {uaddr:#x}",
                      [owner] if owner else [], "exact",
                      [f"PI futex word {word:#x}: owner TID in the low 30 bits"
                       if word is not None else "futex word unreadable"])
        self._gone(b)
        return b

    def parked_pi(self, t, uaddr: int, val: int, cmd: int, names) -> BlockedOn | None:
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
                place = "the mutex" if offset == 0 else f"mutex+{offset} (__kind)"
                return BlockedOn(
                    "mutex", pointer, f"priority-inheritance mutex {pointer:#x}", [holder],
                    "inferred",
                    ["FUTEX_LOCK_PI failed (the kernel found the PI chain deadlocked);"
                     f" glibc parks the thread forever on the zero word {uaddr:#x} on its"
                     " own stack",
                     f"{where} points at {place}; its futex word and __owner name"
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

    def join(self, t, uaddr: int, val: int, cmd: int, names) -> BlockedOn | None:
        if val not in self.lwps or val == t.lwp or _u32(self.read, uaddr) != val:
            return None
        pointer = self.pointers.get(val)
        if self.layout is not None and pointer and \
                uaddr == glibc_threads.tid_field_address(self.layout, pointer):
            how = (f"the futex word is the tid field of LWP {val}'s struct pthread "
                   f"({pointer:#x}, from its fs_base; layout from {self.layout.source})")
        elif names & kb.JOIN_FRAMES:
            how = f"a frame is {sorted(names & kb.JOIN_FRAMES)[0]}"
        else:
            return BlockedOn("join", uaddr, f"pthread_join of LWP {val}?", [val], "inferred",
                             [f"the futex word and the expected value are LWP {val}'s TID, as "
                              "in pthread_join; nothing else confirms it"])
        return BlockedOn("join", uaddr, f"pthread_join of LWP {val}", [val], "exact",
                         [f"futex on &pd->tid holding the joined thread's TID {val}: {how}"])

    def mutex(self, t, uaddr: int, val: int, cmd: int, names) -> BlockedOn | None:
        try:
            raw = self.read(uaddr, 20)
        except GdbextError:
            return None
        lock, count, owner, _nusers, kind = struct.unpack_from("<IIiIi", raw)
        by_frames = sorted(names & kb.MUTEX_FRAMES)
        loader = self.loader_lock_name(uaddr)
        if kind & kb.MUTEX_ROBUST:          # the futex word holds the owner's TID
            consistent = owner > 0 and lock & kb.FUTEX_TID_MASK == owner \
                and val & kb.FUTEX_TID_MASK == owner
        else:                               # __lll_lock_wait: wait while __lock == 2
            consistent = cmd == kb.FUTEX_WAIT and val == 2 and lock == 2
        consistent = consistent and 0 <= kind < kb.MUTEX_KIND_LIMIT
        if not (by_frames or consistent or loader):
            return None
        if not by_frames and not consistent and not (lock and owner > 0):
            return None
        how = (f"frame {by_frames[0]}" if by_frames else
               "its address" if loader and not consistent else
               "__lock and the futex call agree")
        kind_name = kb.MUTEX_KINDS.get(kind & 3, "normal")
        extra = [n for flag, n in ((kb.MUTEX_ROBUST, "robust"), (kb.MUTEX_PI, "PI"))
                 if kind & flag]
        what = " ".join(extra + [kind_name])
        if lock == 0:
            return BlockedOn("mutex", uaddr, f"{what} mutex {uaddr:#x} (free)", [], "inferred",
                             [f"a mutex ({how}); __lock = 0: released, the waiter is being "
                              "woken"], released=True)
        if owner <= 0:
            return BlockedOn("mutex", uaddr, f"{what} mutex {uaddr:#x}", [], "inferred",
                             [f"a mutex ({how}); __owner = {owner}, __lock = {lock}: "
                              "no owner recorded"])
        evidence = [f"__owner = {owner} at +8, __kind = {kind} ({what}); a mutex by {how}"]
        if count and kind & 3 == 1:
            evidence.append(f"held {count} time(s) recursively")
        if kind & kb.MUTEX_ROBUST and lock & kb.FUTEX_OWNER_DIED:
            evidence.append("FUTEX_OWNER_DIED is set: the kernel saw the owner exit")
        if loader:
            b = BlockedOn("loader-lock", uaddr, f"glibc loader lock {loader}", [owner],
                          "exact", evidence)
        else:
            if owner == t.lwp and kind & 3 != 1:
                evidence.append("the waiter owns this non-recursive mutex: self-deadlock")
            b = BlockedOn("mutex", uaddr, f"{what} mutex {uaddr:#x}", [owner], "exact",
                          evidence)
        self._gone(b)
        return b

    def _gone(self, b: BlockedOn) -> None:
        """Owners that are no thread of this process: say what they are."""
        for o in b.owner_lwps:
            if o not in self.lwps:
                fate = self.fate(o)
                b.gone[o] = fate
                b.evidence.append(f"LWP {o} is no thread of this process: {fate.evidence}")

    def loader_lock_name(self, uaddr: int) -> str | None:
        if not self.rtld:
            return None
        start, size = self.rtld
        if not start <= uaddr < start + max(size, 1):
            return None
        offset = uaddr - start
        name = kb.RTLD_LOCKS.get(offset)
        return f"_rtld_global.{name}" if name else f"_rtld_global+{offset}"

    def rwlock(self, t, uaddr: int, val: int, cmd: int, names) -> BlockedOn | None:
        """Only where a frame says pthread_rwlock_*: a condition variable's
        futex word sits where an rwlock's would, and the word after it is
        often another lock's __owner (CPython's GIL)."""
        called = sorted(names & kb.RWLOCK_FRAMES)
        if not called:
            return None
        role = "read" if names & kb.RWLOCK_READ_FRAMES else "write"
        for off in kb.RWLOCK_WAIT_OFFSETS:
            base = (uaddr - off) & MASK64
            writer = _u32(self.read, base + kb.RWLOCK_CUR_WRITER)
            if writer in self.lwps and writer:
                return BlockedOn("rwlock", base, f"rwlock {base:#x} (waiting to {role})",
                                 [writer], "exact",
                                 [f"frame {called[0]}; __cur_writer = {writer} at +24"])
        base = (uaddr - (8 if uaddr % 8 == 0 else 12)) & MASK64
        # No reader is inferred from a pointer to the lock on a stack: a
        # shared_mutex is often its object's first member, so every holder of
        # the object looks like a reader (a false cycle through main's join
        # was seen on fixtures/deadlock/cxx_abba.cpp shared).
        return BlockedOn("rwlock", base, f"rwlock {base:#x} (waiting to {role})", [],
                         "inferred", [f"frame {called[0]}; no writer recorded: held by "
                                      "readers, which glibc does not track"])

    def semaphore(self, t, uaddr: int, val: int, cmd: int, names) -> BlockedOn | None:
        called = sorted(names & kb.SEMAPHORE_FRAMES)
        if not called:
            return None
        value, waiters = _u32(self.read, uaddr), _u32(self.read, uaddr + 4)
        shown = "unreadable" if value is None else str(value)
        evidence = [f"frame {called[0]}; sem_t value {shown}"
                    + (f", {waiters} waiter(s)" if waiters is not None else "")
                    + " (glibc's new_sem: the value in the futex word, the waiters in the "
                      "next 32 bits)", kb.OWNERLESS_UNKNOWN["semaphore"]]
        return BlockedOn("semaphore", uaddr, f"semaphore {uaddr:#x} (value {shown})", [],
                         "inferred", evidence)

    def semaphore_by_fields(self, uaddr: int, val: int) -> BlockedOn | None:
        """A sem_t when no frame names the call (libc without symbols: sem_wait
        tail-calls the unexported __new_sem_wait_slow64).  glibc's new_sem
        (sysdeps/nptl/internaltypes.h, 64-bit atomics): the value in the low
        32 bits of ``data`` -- the futex word, waited on while 0 -- the waiter
        count in the high 32, which the waiter raised before waiting, then
        ``private`` (0, or FUTEX_SHARED 128)."""
        try:
            value, waiters, private = struct.unpack("<III", self.read(uaddr, 12))
        except (GdbextError, struct.error):
            return None
        if uaddr % 8 or value != 0 or val != 0 or not 1 <= waiters < 1 << 20 \
                or private not in (0, kb.FUTEX_SHARED):
            return None
        return BlockedOn("semaphore", uaddr, f"semaphore {uaddr:#x} (value 0)?", [],
                         "inferred",
                         [f"no frame names the call; the words fit a sem_t: value 0 (the "
                          f"expected value), {waiters} waiter(s) counted in the next 32 bits, "
                          f"private flag {private}", kb.OWNERLESS_UNKNOWN["semaphore"]])

    def openmp(self, t, uaddr: int, val: int, cmd: int, names) -> BlockedOn | None:
        runtime = _runtime_of(t.frames[:12])
        if runtime is None:
            return None
        if any(n.startswith("pthread_cond") for n in names) or _matches(
                kb.OPENMP_RUNTIMES, t.frames[0].objfile if t.frames else None):
            evidence = [f"waits inside {kb.OPENMP_RUNTIMES[runtime[0]]} ({runtime[1]})"]
            b = BlockedOn("omp-barrier", uaddr,
                          f"OpenMP barrier ({kb.OPENMP_RUNTIMES[runtime[0]]})",
                          [], "inferred", evidence, runtime=runtime[1])
            if runtime[0] == r"/libgomp\.so":
                counted = _gomp_barrier(self.read, uaddr)
                if counted:
                    evidence.append(counted[0])
                    b.runtime_count = counted[1]
            return b
        return None


def _gomp_barrier(read: Reader, uaddr: int) -> tuple[str, int | None] | None:
    """libgomp's own count of the threads that have not arrived: (evidence,
    count), the count None when the barrier is not in a counting phase."""
    base = (uaddr - kb.GOMP_BARRIER_FUTEX_FIELD) & MASK64
    total = _u32(read, base + kb.GOMP_BARRIER_TOTAL)
    awaited = _u32(read, base + kb.GOMP_BARRIER_AWAITED)
    final = _u32(read, base + kb.GOMP_BARRIER_AWAITED_FINAL)
    if not total or total > 1 << 16 or awaited is None or final is None:
        return None
    if 0 < awaited < total:
        return (f"libgomp team barrier at {base:#x}: {awaited} of {total} threads not "
                "arrived", awaited)
    if 0 < final < total:
        return (f"libgomp barrier ending the parallel region at {base:#x}: {final} of "
                f"{total} threads not arrived", final)
    return f"libgomp barrier at {base:#x}: team of {total}", None


def _gomp_barrier_counts(read: Reader, uaddr: int) -> list[str]:
    found = _gomp_barrier(read, uaddr)
    return [found[0]] if found else []


def _runtime_of(frames) -> tuple[str, str] | None:
    for f in frames:
        p = _matches(kb.OPENMP_RUNTIMES, f.objfile)
        if p:
            return p, f.objfile
    return None


def _infer_teams(states: list[ThreadState], warnings: list[str]) -> None:
    """A barrier waits for the team members that have not arrived.  The team
    is the threads the runtime started -- their start routine lies in the
    runtime's object, read from glibc's thread descriptors -- or, where a
    start routine could not be read, the threads with frames in the runtime.
    A member is arrived when it waits inside the runtime itself.  A waiter
    the runtime started is a worker idle at a barrier or in the pool: it
    waits for its master, not for the team."""
    for s in states:
        b = s.blocked_on
        if b is None or b.kind != "omp-barrier":
            continue
        runtime = b.runtime

        def started_here(o):
            return o.start is not None and o.start.address and o.start.objfile == runtime
        if started_here(s):
            b.evidence.append(f"this thread was started by the runtime "
                              f"({s.start.describe()}): a worker at a barrier or idle in the "
                              "pool, waiting for its master")
            continue
        by_start = [o for o in states if o is not s and started_here(o)]
        by_frames = [o for o in states if o is not s and o.start is None
                     and any(f.objfile == runtime for f in o.frames)]
        team = by_start + by_frames
        arrived = [o for o in team if o.blocked_on and o.blocked_on.kind == "omp-barrier"
                   and o.blocked_on.runtime == runtime]
        b.owner_lwps = [o.lwp for o in team if o not in arrived]
        where = []
        if by_start:
            routines = sorted({o.start.symbol or f"{o.start.address:#x}" for o in by_start})
            where.append(f"{len(by_start)} started by the runtime (start routine "
                         f"{', '.join(routines)})")
        if by_frames:
            where.append(f"{len(by_frames)} with {runtime} frames (no start routine read)")
        b.evidence.append(f"team: this thread and {len(team)} other(s): "
                          f"{'; '.join(where) or 'none found'}; {len(arrived)} waiting in "
                          f"the runtime, {len(b.owner_lwps)} not arrived")
        if b.runtime_count is not None and b.runtime_count != len(b.owner_lwps):
            warnings.append(f"LWP {s.lwp}'s barrier: libgomp counts {b.runtime_count} thread(s) "
                            f"not arrived, the team found has {len(b.owner_lwps)}; the "
                            "edges follow the team found")


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


def classify(threads, read: Reader, rtld_global: tuple[int, int] | None,
             **options) -> list[ThreadState]:
    return Classifier(threads, read, rtld_global, **options).run()
