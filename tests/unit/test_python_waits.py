"""locks/python_waits.py on synthetic memory: when a GIL owner stays exact,
when a lock is free, and how the waits reach the verdict and the fix.  Each
check can fail on its own; the real-process side is
tests/e2e/test_deadlock_python.py."""
from __future__ import annotations

import struct
from types import SimpleNamespace

from gdbext.errors import GdbextError
from gdbext.locks import python_waits
from gdbext.locks.classify import Classifier
from gdbext.locks.graph import build
from gdbext.locks.report import DeadlockReport
from gdbext.runtimes import cpython_layouts as L
from gdbext.runtimes.cpython import Resource

LAY = L.PY311
GIL = 0x10000
HOLDER, WAITER, OTHER = 101, 102, 103


class Memory:
    def __init__(self):
        self.bytes: dict[int, int] = {}

    def put(self, address: int, data: bytes) -> None:
        for i, b in enumerate(data):
            self.bytes[address + i] = b

    def read(self, address: int, length: int) -> bytes:
        try:
            return bytes(self.bytes[address + i] for i in range(length))
        except KeyError:
            raise GdbextError(f"cannot read {address:#x}") from None


class Runtime:
    layout = LAY
    version = "3.11.2"

    def __init__(self, gil, locks=()):
        self._gil, self._locks = gil, list(locks)

    def gil(self, threads, regs):
        return self._gil

    def locks(self, threads, regs):
        return self._locks


def gil_memory(locked: int, mutex_lock: int = 0, mutex_owner: int = 0) -> Memory:
    m = Memory()
    m.put(GIL, bytes(256))
    m.put(GIL + LAY.gil_locked, struct.pack("<I", locked))
    m.put(GIL + LAY.gil_mutex, struct.pack("<IIi", mutex_lock, 0, mutex_owner))
    return m


def gil_resource(owner=HOLDER, waiters=(WAITER,)) -> Resource:
    r = Resource("gil", GIL, "the GIL (CPython 3.11.2)", owner_lwp=owner,
                 owner_evidence="exact" if owner else None,
                 owner_why="gil.locked = 1, gil.last_holder = thread state 0x1")
    r.waiters = [(w, "exact", "futex wait on gil.cond: take_gil") for w in waiters]
    return r


def regs_on(word: int) -> dict:
    return {"orig_rax": 202, "rdi": word, "rsi": 0x189, "rdx": 0, "r10": 0x7ff0}


def waits(memory, gil=None, locks=(), regs=None):
    regs = regs or {WAITER: regs_on(GIL + LAY.gil_cond)}
    threads = [SimpleNamespace(lwp=lwp, frames=[], warnings=[]) for lwp in regs]
    return python_waits.build(Runtime(gil, locks), threads, regs, memory.read)


def test_gil_owner_exact_when_the_gil_mutex_is_free():
    w = waits(gil_memory(1), gil_resource())
    b = w.by_waiter[WAITER]
    assert (b.kind, b.owner_lwps, b.confidence, b.loops) == ("gil", [HOLDER], "exact", True)


def test_gil_changing_hands_is_only_inferred():
    w = waits(gil_memory(1, mutex_lock=1, mutex_owner=OTHER), gil_resource())
    b = w.by_waiter[WAITER]
    assert (b.owner_lwps, b.confidence) == ([HOLDER], "inferred")
    assert any("changing hands" in e for e in b.evidence)


def test_gil_mutex_held_by_the_holder_keeps_exact():
    w = waits(gil_memory(1, mutex_lock=1, mutex_owner=HOLDER), gil_resource())
    assert w.by_waiter[WAITER].confidence == "exact"


def test_a_holder_parked_in_take_gil_is_no_owner():
    regs = {WAITER: regs_on(GIL + LAY.gil_cond), HOLDER: regs_on(GIL + LAY.gil_cond)}
    w = waits(gil_memory(1), gil_resource(waiters=(WAITER, HOLDER)), regs=regs)
    assert w.by_waiter[WAITER].owner_lwps == []
    assert w.by_waiter[WAITER].released is False


def test_free_gil_means_being_woken():
    w = waits(gil_memory(0), gil_resource(owner=None))
    assert w.by_waiter[WAITER].released


def test_waiters_on_the_gil_mutex_are_left_to_the_mutex_rule():
    regs = {WAITER: regs_on(GIL + LAY.gil_mutex)}
    assert waits(gil_memory(1), gil_resource(), regs=regs).by_waiter == {}


def lock_resource(sem: int, owner=None, evidence=None, kind="lock") -> Resource:
    r = Resource(kind, 0x20000, f"threading.Lock {0x20000:#x}", owner_lwp=owner,
                 owner_evidence=evidence, owner_why="an active 'with' at x.py:3 in f",
                 futex=sem)
    r.waiters = [(WAITER, "exact", f"futex wait on the lock's sem_t {sem:#x}")]
    return r


def test_lock_owner_kept_only_while_the_semaphore_is_taken():
    m = gil_memory(0)
    m.put(0x30000, struct.pack("<II", 0, 1))          # value 0, one waiter
    regs = {WAITER: regs_on(0x30000)}
    b = waits(m, None, [lock_resource(0x30000, HOLDER, "inferred")], regs).by_waiter[WAITER]
    assert (b.kind, b.owner_lwps, b.confidence, b.released) == \
        ("py-lock", [HOLDER], "inferred", False)
    m.put(0x30000, struct.pack("<I", 1))              # posted: the waiter is being woken
    b = waits(m, None, [lock_resource(0x30000, HOLDER, "inferred")], regs).by_waiter[WAITER]
    assert (b.owner_lwps, b.released) == ([], True)


def test_locks_are_not_read_when_no_python_thread_waits_off_the_gil():
    m = gil_memory(1)
    w = waits(m, gil_resource(), [lock_resource(0x30000, HOLDER, "inferred")])
    assert w.locks == [] and list(w.by_waiter) == [WAITER]


def test_provider_returns_copies():
    w = waits(gil_memory(1), gil_resource())
    t = SimpleNamespace(lwp=WAITER)
    a = w.provider(t, frozenset(), None)
    a.evidence.append("changed")
    assert "changed" not in w.provider(t, frozenset(), None).evidence
    assert w.provider(SimpleNamespace(lwp=999), frozenset(), None) is None


Frame = SimpleNamespace


def snapshot(lwp, word, timeout=0x7ff0, frames=()):
    return SimpleNamespace(num=lwp, lwp=lwp, name=None, in_syscall=True,
                           regs={"orig_rax": 202, "rdi": word, "rsi": 0x189, "rdx": 0,
                                 "r10": timeout, "fs_base": None},
                           frames=list(frames), frames_truncated=False)


def test_gil_mutex_cycle_is_a_deadlock_with_the_gil_fix():
    m = gil_memory(1)
    mutex = 0x40000
    m.put(mutex, struct.pack("<IIiIi", 2, 0, WAITER, 1, 0))
    w = waits(m, gil_resource())
    lock_frame = Frame(function="pthread_mutex_lock", objfile="/lib/libc.so.6", file=None,
                       line=None, pc=1)
    threads = [snapshot(HOLDER, mutex, timeout=0, frames=[lock_frame]),
               snapshot(WAITER, GIL + LAY.gil_cond)]
    threads[0].regs["rdx"] = 2
    states = Classifier(threads, m.read, None, providers=[w.provider]).run()
    report = DeadlockReport(build(states), "live")
    assert report.verdict == "deadlock"
    assert report.patterns() == ["gil-lock"]
    gil_wait = states[1].blocked_on
    assert gil_wait.timed is False        # take_gil's slices do not end the wait
    assert "Py_BEGIN_ALLOW_THREADS" in report.hints()[0]
    assert "the GIL (CPython 3.11.2)" in report.to_dot()


def test_unknown_lock_owner_makes_the_verdict_unknown():
    m = gil_memory(0)
    m.put(0x30000, struct.pack("<II", 0, 1))
    w = waits(m, None, [lock_resource(0x30000)], regs={WAITER: regs_on(0x30000)})
    running = SimpleNamespace(num=HOLDER, lwp=HOLDER, name=None, in_syscall=False, regs={},
                              frames=[], frames_truncated=False)
    threads = [snapshot(WAITER, 0x30000, timeout=0), running]   # someone could release it
    states = Classifier(threads, m.read, None, providers=[w.provider]).run()
    report = DeadlockReport(build(states), "live")
    assert report.verdict == "unknown" and not report.all_blocked
    assert report.unknown_waits()[0][1] == "py-lock"
    alone = Classifier(threads[:1], m.read, None, providers=[w.provider]).run()
    assert DeadlockReport(build(alone), "live").verdict == "deadlock"   # nobody to release it


def test_gil_held_by_a_thread_that_is_gone_is_a_deadlock():
    """A thread state whose thread exited holding the GIL (a C thread that
    returned without PyGILState_Release): never released."""
    w = waits(gil_memory(1), gil_resource(owner=4242))
    threads = [snapshot(WAITER, GIL + LAY.gil_cond)]
    states = Classifier(threads, gil_memory(1).read, None, providers=[w.provider]).run()
    report = DeadlockReport(build(states), "core")
    assert report.verdict == "deadlock"
    assert report.graph.orphaned == [(WAITER, 4242)]
