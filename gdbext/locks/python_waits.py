"""CPython's waits as deadlock-graph resources: the GIL, threading.Lock and
RLock, and Thread.join (the joined thread's state lock).

Pure: built from what the CPython reader (runtimes/cpython.py) found --
thread states, the GIL and lock ``Resource``s -- plus ``read(address,
length)`` for the checks below, and handed to the Classifier as a provider
(``provider(thread, names, read) -> BlockedOn | None``, keyed by LWP).

What keeps ``exact`` honest:
- The GIL's owner is ``last_holder`` while ``locked`` (3.11
  Python/ceval_gil.h).  take_gil() sets ``locked`` before ``last_holder``
  and drop_gil() clears ``locked`` after storing ``last_holder``, both under
  ``gil.mutex``: while another thread holds that mutex the pair may be
  mid-change, so the owner is then only ``inferred``; a "holder" that is
  itself parked in take_gil is no owner at all.
- take_gil() waits on ``gil.cond`` in ``interval`` slices (5 ms) and waits
  again while the GIL stays locked: the futex timeout does not end the wait.
- A plain Lock has no owner field; an active ``with L:`` is inferred by the
  reader, and kept only while the lock's ``sem_t`` is taken (value 0): a
  posted semaphore means the waiter is being woken.  (``lock.locked`` and
  ``rlock_owner`` are set after acquire_timed() has taken the GIL back,
  Modules/_threadmodule.c 3.11, so they lag.)
"""
from __future__ import annotations

import re
import struct

from ..errors import GdbextError
from ..knowledge import blocking as kb
from ..knowledge.skip_frames import PYTHON_STDLIB
from ..runtimes.cpython import CPythonError
from .classify import BlockedOn, OwnerFate
from ..record import field, record, replace

SYS_FUTEX = kb.SYS_FUTEX
# covers _gil_runtime_state (3.11 Include/internal/pycore_gil.h: 208 bytes)
LAY_GIL_SPAN = 256
# Objects whose frames are the interpreter's own (a native wait site there
# adds nothing to the Python line).
INTERPRETER = re.compile(r"/(?:lib)?python3[.\d]*(?:[^/]*\.so[.\d]*)?$|/lib-dynload/|/libffi\.so")


@record
class PythonWaits:
    """The waits read from CPython: GIL and threading locks, per thread."""
    version: str
    by_waiter: dict[int, BlockedOn] = field(default_factory=dict)
    sites: dict[int, str] = field(default_factory=dict)     # lwp -> its Python wait site
    site_frames: dict[int, object] = field(default_factory=dict)   # lwp -> the frame signing it
    thread_lwps: set[int] = field(default_factory=set)      # threads with a thread state
    gil: object = None                                      # cpython.Resource
    locks: list = field(default_factory=list)               # [cpython.Resource]
    warnings: list[str] = field(default_factory=list)

    def provider(self, t, names, read) -> BlockedOn | None:
        found = self.by_waiter.get(t.lwp)
        # a copy: the classifier appends evidence to what a provider returns
        if found is None:
            return None
        return replace(found, owner_lwps=list(found.owner_lwps),
                       evidence=list(found.evidence), gone=dict(found.gone))

    def to_json(self) -> dict:
        return {"version": self.version,
                "gil": self.gil.to_json() if self.gil is not None else None,
                "locks": [r.to_json() for r in self.locks]}


def build(runtime, pythreads, regs_by_lwp: dict[int, dict[str, int]], read,
          owner_elsewhere=None) -> PythonWaits:
    """The Python waits of every thread, from the reader's thread states and
    each thread's frame-0 registers.  ``owner_elsewhere(resource) -> (tid |
    None, why, exact, ended) | None``: the owner of a lock no thread of the
    process holds -- an RLock's rlock_owner that is no thread state here, a
    Lock no frame here holds (the parent's thread, when fork() copied it
    held); ``ended`` ("forked", "exited", "joined") when, its TID unknown,
    the owner is known to be no thread of this process any more."""
    out = PythonWaits(runtime.version)
    out.thread_lwps = {t.lwp for t in pythreads if t.lwp}
    for t in pythreads:
        if t.lwp and t.frames:
            out.sites[t.lwp], out.site_frames[t.lwp] = _site(t.frames)
        out.warnings += [f"LWP {t.lwp}: {w}" for w in t.warnings[:2]]
    gil = runtime.gil(pythreads, regs_by_lwp)
    out.gil = gil
    if gil is not None:
        _gil_waits(out, runtime, gil, regs_by_lwp, read)
    # Lock waiters sleep in futex(2) on a word that is not the GIL's: without
    # one, the value stacks of every frame need not be read.
    gil_words = range(gil.address, gil.address + LAY_GIL_SPAN) if gil is not None else ()
    if not any(r.get("orig_rax") == SYS_FUTEX and r.get("rdi") not in gil_words
               and lwp in out.thread_lwps for lwp, r in regs_by_lwp.items()):
        return out
    try:
        out.locks = runtime.locks(pythreads, regs_by_lwp)
    except (CPythonError, GdbextError) as exc:    # a damaged heap: the GIL still stands
        out.warnings.append(f"threading locks not read: {exc}")
        out.locks = []
    for res in out.locks:
        _lock_waits(out, runtime, res, read, owner_elsewhere)
    return out


def _site(frames) -> tuple[str, object]:
    """A Python thread's wait site, and the frame that signs it: the
    innermost frame of the program's own code, naming the standard library's
    function it waits in (``app.py:7 in task [threading.py: Condition.wait]``),
    since every Event, Queue and join waits at the same line of threading.py."""
    inner = frames[0]
    if not (inner.filename and PYTHON_STDLIB.search(inner.filename)):
        return inner.where(), inner
    own = next((f for f in frames if f.filename and not PYTHON_STDLIB.search(f.filename)),
               None)
    if own is None:
        return inner.where(), inner
    module = PYTHON_STDLIB.search(inner.filename).group(1)
    return f"{own.where()} [{module}: {inner.qualname or inner.name}]", own


def _mutex_fields(read, address: int) -> tuple[int, int] | None:
    try:
        lock, _count, owner = struct.unpack_from("<IIi", read(address, 12))
    except (GdbextError, struct.error):
        return None
    return lock, owner


def _gil_waits(out: PythonWaits, runtime, gil, regs_by_lwp, read) -> None:
    lay = runtime.layout
    cond = (gil.address + lay.gil_cond, 48)
    waiters = [w for w in gil.waiters
               if cond[0] <= regs_by_lwp.get(w[0], {}).get("rdi", -1) < cond[0] + cond[1]]
    locked = _u32(read, gil.address + lay.gil_locked)
    owner, confidence = gil.owner_lwp, gil.owner_evidence or "inferred"
    evidence = [gil.owner_why] if gil.owner_why else []
    mutex = _mutex_fields(read, gil.address + lay.gil_mutex)
    if owner is not None and mutex is not None and mutex[0] and mutex[1] not in (0, owner):
        confidence = "inferred"
        evidence.append(f"gil.mutex is held by LWP {mutex[1]}: the GIL may be changing "
                        "hands (take_gil sets locked before last_holder)")
    if owner is not None and owner in {w[0] for w in waiters}:
        evidence.append(f"last_holder LWP {owner} itself waits in take_gil: the GIL is "
                        "changing hands, its owner is not known")
        owner = None
    for lwp, _ev, why in waiters:
        b = BlockedOn("gil", gil.address, gil.name, [owner] if owner else [],
                      confidence if owner else "inferred",
                      [why] + evidence
                      + ["take_gil waits on gil.cond in 5 ms slices and again while the "
                         "GIL stays locked: the timeout does not end the wait"],
                      loops=True)
        if locked == 0:
            b.released = True
            b.evidence.append("gil.locked = 0: released, the waiter is being woken")
        elif not owner:
            b.evidence.append(kb.OWNERLESS_UNKNOWN["gil"])
        out.by_waiter[lwp] = b


def _lock_waits(out: PythonWaits, runtime, res, read, owner_elsewhere=None) -> None:
    join = "(join)" in res.name
    kind = "py-join" if join else f"py-{res.kind}"
    owner, confidence, why = res.owner_lwp, res.owner_evidence or "inferred", res.owner_why
    ended = None            # the owner is gone, its TID unknown (OwnerFate)
    if owner is None and res.kind in ("lock", "rlock") and not join and res.waiters:
        found = owner_elsewhere(res) if owner_elsewhere else None
        if res.owner_pthread:
            why = (f"rlock_owner = pthread {res.owner_pthread:#x}, count {res.owner_count}: "
                   + (found[1] if found else "no thread state of this process has it"))
        elif found:
            why = found[1]
        if found and found[0]:
            owner, confidence = found[0], "exact" if found[2] else "inferred"
        elif found and found[3]:
            ended = OwnerFate("fork-parent" if found[3] == "forked" else "exited", found[1])
    # The truth of "taken" is the sem_t itself (glibc new_sem: the value in
    # the futex word's 32 bits), or a PyMutex's bit 0 (_Py_LOCKED, 3.13+
    # Include/internal/pycore_lock.h): lock.locked and rlock_owner are set only
    # after the acquirer has taken the GIL back, so they lag behind it.
    if res.mutex is not None:
        bits = _u32(read, res.mutex)
        bits = bits & 0xFF if bits is not None else None
        free = bits is not None and not bits & 1
        released = f"the PyMutex's bits are {bits:#x} (not _Py_LOCKED)"
    else:
        value = _u32(read, res.futex) if res.futex else None
        free = value is not None and value > 0
        released = f"the sem_t's value is {value}"
    if free and confidence != "exact":
        owner, why, ended = None, None, None
    for lwp, _ev, wait_why in res.waiters:
        evidence = [wait_why]
        if why:
            evidence.append(why)
        if owner == lwp and not join:
            evidence.append("the waiter holds this lock itself")
        b = BlockedOn(kind, res.address, res.name, [owner] if owner else [],
                      confidence if owner else "inferred", evidence)
        if ended is not None:
            b.ended, b.confidence = ended, "exact"     # read from the owner's descriptor
        if free:
            b.released = True
            b.evidence.append(f"{released}: released, the waiter is being woken")
        elif not owner and ended is None:
            b.evidence.append(kb.OWNERLESS_UNKNOWN.get(kind, kb.NOTIFY_WAITS.get(kind, "")))
        out.by_waiter[lwp] = b


def _u32(read, address: int) -> int | None:
    try:
        return struct.unpack("<I", read(address, 4))[0]
    except (GdbextError, struct.error):
        return None


def native_site(frames) -> str | None:
    """The first named native frame outside libc and the interpreter (a C
    library the Python line called into: ``lock_m``), or None."""
    for f in frames:
        if not f.objfile and not f.function:
            continue            # an unnamed static function of the interpreter, mostly
        if f.objfile and (INTERPRETER.search(f.objfile)
                          or any(re.search(p, f.objfile) for p in kb.RUNTIME_OBJECTS)):
            continue
        return f.function.split("(")[0] if f.function else None
    return None
