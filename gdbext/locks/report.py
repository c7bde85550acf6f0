"""The deadlock-graph report: a verdict, each cycle as an ordered chain with
symbolic resources and wait sites, a lockdep-style scenario, a fix that fits
the pattern, and a table of all threads.  Text, JSON and Graphviz DOT."""
from __future__ import annotations

from .. import render
from ..knowledge.blocking import FORK_RECLAIMED, HELD_KINDS, OWNERLESS_UNKNOWN
from .classify import OwnerFate
from .graph import WaitGraph
from ..record import field, record

SCHEMA = "gdbext/deadlock-graph/1"

# (pattern, kinds present in a cycle, advice); first match wins.
FIXES: tuple[tuple[str, frozenset[str], str], ...] = (
    ("loader-lock-openmp", frozenset({"loader-lock", "omp-barrier"}),
     "a thread inside dlopen() (holding the loader lock) runs an ELF constructor that "
     "starts OpenMP work and waits for workers that need the loader lock (dlsym, lazy "
     "binding, TLS): do not start OpenMP/BLAS threads or import numpy from a constructor "
     "or anything dlopen() runs; initialise the runtime (import numpy) before the dlopen(); "
     "or run that load single-threaded (OMP_NUM_THREADS=1, MKL_NUM_THREADS=1, "
     "OPENBLAS_NUM_THREADS=1)"),
    ("loader-lock", frozenset({"loader-lock"}),
     "a thread holds the dynamic loader's lock (inside dlopen/dlclose or a constructor) while "
     "waiting for a thread that needs it: never wait for other threads from ELF "
     "constructors, destructors or anything dlopen() runs"),
    ("gil-join", frozenset({"gil", "join"}),
     "a thread holds the Python GIL while it joins (or waits for) a thread that needs the "
     "GIL (PyGILState_Ensure in a thread an embedding program or C extension started): "
     "release the GIL before waiting -- Py_BEGIN_ALLOW_THREADS / Py_END_ALLOW_THREADS "
     "around the join, or PyEval_SaveThread() after Py_Initialize() in an embedding "
     "program (Py_Initialize returns holding the GIL) and PyEval_RestoreThread() after "
     "the threads end; pybind11 py::gil_scoped_release"),
    ("gil-lock", frozenset({"gil"}),
     "a thread holds the Python GIL while it blocks in native code on a lock, and the "
     "lock's holder waits for the GIL (PyGILState_Ensure, a callback into Python): release "
     "the GIL around blocking native calls -- Py_BEGIN_ALLOW_THREADS / "
     "Py_END_ALLOW_THREADS in a C extension, ctypes.CDLL rather than ctypes.PyDLL (which "
     "keeps the GIL during the call), pybind11 py::gil_scoped_release or "
     "py::call_guard<py::gil_scoped_release>(); and never take the GIL while holding a "
     "lock its holder may want (release the lock first, or take the GIL before the lock)"),
    ("python-lock-order", frozenset({"py-lock"}),
     "threading locks are taken in opposite orders: take them in one global order in every "
     "thread, or acquire with a timeout (lock.acquire(timeout=...)) and back off"),
    ("python-lock-order", frozenset({"py-rlock"}),
     "threading locks are taken in opposite orders: take them in one global order in every "
     "thread, or acquire with a timeout (lock.acquire(timeout=...)) and back off"),
    ("join-cycle", frozenset({"join"}),
     "threads join each other: exactly one thread should join each thread (or detach it)"),
    ("rwlock-order", frozenset({"rwlock"}),
     "an rwlock and another lock are taken in opposite orders: take them in one global "
     "order everywhere, and never wait for a writer while holding what it needs"),
    ("join-cycle", frozenset({"py-join"}),
     "threads join each other: exactly one thread should join each thread (or detach it)"),
    ("rust-rwlock-order", frozenset({"rust-rwlock"}),
     "an RwLock and another lock are taken in opposite orders: take them in one global "
     "order everywhere, and drop a guard before waiting for what its holder needs"),
    ("rust-lock-order", frozenset({"rust-mutex"}),
     "std::sync::Mutex locks are taken in opposite orders: take them in one global order "
     "in every thread (or use try_lock and back off); drop a guard before taking the next "
     "lock where the data allows"),
    ("lock-order", frozenset({"mutex"}),
     "locks are taken in opposite orders: take them in one global order in every thread "
     "(or use pthread_mutex_trylock and back off)"),
)
# A lock whose owner is no thread of the process is never released: the
# pattern and the fix follow what the owner was.
GONE = {
    "fork-parent": ("fork-inherited-lock",
                    "the lock was held by another thread of the parent when fork() copied "
                    "the process; in the child no thread owns it, so it is never released: "
                    "fork only before starting threads, or exec at once after fork (only "
                    "async-signal-safe calls between), or take and release the locks around "
                    "fork with pthread_atfork"),
    "exited": ("lock-owner-exited",
               "the owner exited (or was cancelled) while holding the lock, so it is never "
               "released: unlock on every exit path (cleanup handlers, RAII), or use a robust "
               "mutex (PTHREAD_MUTEX_ROBUST: the next locker gets EOWNERDEAD and can repair "
               "the state)"),
    "gone": ("lock-owner-gone",
             "the lock's owner is no thread of this process (inherited locked across fork(), "
             "or exited holding it), so it is never released: fork only before starting "
             "threads or exec at once, use pthread_atfork, unlock on every exit path, or use "
             "robust mutexes"),
}
# The same in Python: a threading lock held by another thread when os.fork()
# copied the process (multiprocessing's "fork" start method included).
PY_FORK = ("python-fork-inherited-lock",
           "a thread of the parent held this threading lock when os.fork() copied the "
           "process; in the child no thread owns it, so it is never released: re-create or "
           "reset the lock in the child with os.register_at_fork(after_in_child=...), use "
           "the 'spawn' or 'forkserver' start method (multiprocessing.set_start_method, "
           "concurrent.futures' mp_context) instead of 'fork', or fork before starting "
           "threads")
# ... and a threading lock whose owner thread ended without releasing it.
PY_EXITED = ("python-lock-owner-exited",
             "the thread that held this threading lock ended without releasing it (an "
             "acquire() with no release on some path, an exception between them): release "
             "on every path -- 'with LOCK:' or try/finally")
# A Python thread that waits for a threading lock it holds itself: the fix
# follows the lock, not pthreads.  An RLock does not block its owner -- unless
# acquire() was re-entered while it was taking the lock (a signal handler that
# takes the same RLock: CPython issue gh-144706).
SELF_PYTHON = (
    ("python-self-deadlock", "py-lock",
     "the thread acquires a threading.Lock it already holds; Lock is not reentrant: use "
     "threading.RLock, or release it before the nested acquire"),
    ("python-rlock-reentered", "py-rlock",
     "the thread waits for an RLock it owns itself, which an RLock never does unless its "
     "acquire() was re-entered while taking the lock -- a signal handler (or a __del__ run "
     "by the garbage collector) that takes the same RLock: take no locks in signal "
     "handlers (set a flag, or use signal.set_wakeup_fd) and none in __del__"),
)
# No cycle or gone owner is seen, but every thread sleeps for good
# (ThreadState.stuck): nothing inside the process can wake any of them.
ALL_BLOCKED = ("all-threads-blocked",
               "every thread waits, without a timeout, on something only another thread of "
               "this process could release or signal, and none of them will: find the wait "
               "that should have been released or notified -- a lost notify (a condition "
               "signalled before the waiter waited, or notify without the state change), an "
               "event or queue whose producer exited, a lock taken without release on some "
               "path, or a lock inherited locked across fork()")
SELF = "self-deadlock"
SELF_FIX = ("the thread locks a non-recursive mutex it already holds: release it first, or "
            "use PTHREAD_MUTEX_ERRORCHECK to get EDEADLK instead of a hang")
# A chain that ends at a holder that is not waiting for anyone: no cycle, but
# the holder's own state (not a lock) keeps the others waiting.
STALLED_FIX = {
    "sleep": "a thread sleeps while holding what others wait for: do not sleep, poll or wait "
             "on a timer while holding a lock",
    "io": "a thread does blocking I/O while holding what others wait for: release the lock "
          "before read/write/poll, or bound the I/O with a timeout",
    "running": "a thread runs (or spins) while holding what others wait for: look at what it "
               "computes under the lock; sample it again to see whether it progresses",
}


@record
class DeadlockReport:
    """What deadlock-graph prints."""
    graph: WaitGraph
    target: str
    warnings: list[str] = field(default_factory=list)
    python: dict | None = None      # the CPython reader's GIL and locks, when it is one
    complete: bool = True           # every thread of the process was examined

    @property
    def verdict(self) -> str:
        if self.graph.cycles or self.graph.orphaned or self.all_blocked:
            return "deadlock"
        return "unknown" if self.unknown_waits() else "no-deadlock"

    @property
    def all_blocked(self) -> bool:
        """Every thread of the process sleeps for good (ThreadState.stuck)."""
        states = self.graph.states
        return self.complete and bool(states) and all(s.stuck for s in states)

    def _only_all_blocked(self) -> bool:
        return self.all_blocked and not self.graph.cycles and not self.graph.orphaned

    def unknown_waits(self) -> list[tuple[int, str, str]]:
        """(lwp, kind, why) of each thread blocked, without a timeout, on a
        wait whose owner cannot be known: no cycle found does not mean none."""
        g = self.graph
        return [(s.lwp, s.blocked_on.kind, next(
                    (e for e in s.blocked_on.evidence if FORK_RECLAIMED in e),
                    OWNERLESS_UNKNOWN[s.blocked_on.kind]))
                for s in g.states if s.blocked_on and not s.blocked_on.owner_lwps
                and not s.blocked_on.ended and not s.blocked_on.timed and not s.blocked_on.released
                and s.blocked_on.kind in OWNERLESS_UNKNOWN]

    def _fate(self, waiter: int, owner: int | None) -> OwnerFate:
        """What the owner that is gone is (owner None: its TID is not known)."""
        b = self.graph.by_lwp[waiter].blocked_on
        return b.gone[owner] if owner is not None else b.ended

    @staticmethod
    def _holder(owner: int | None, fate: OwnerFate) -> str:
        if owner is not None:
            return f"LWP {owner}"
        return ("a thread of the parent process" if fate.fate == "fork-parent"
                else "a thread that has ended")

    def patterns(self) -> list[str | None]:
        """The pattern of each cycle (None when no rule fits), then of each
        wait on an owner that is gone."""
        by = self.graph.by_lwp
        out = []
        for cycle in self.graph.cycles:
            if len(cycle) == 1:
                kind = by[cycle[0]].blocked_on.kind if by[cycle[0]].blocked_on else None
                out.append(next((n for n, k, _ in SELF_PYTHON if k == kind), SELF))
                continue
            kinds = {by[l].blocked_on.kind for l in cycle if by[l].blocked_on}
            out.append(next((name for name, needs, _ in FIXES if needs <= kinds), None))
        if self._only_all_blocked():
            out.append(ALL_BLOCKED[0])
        for w, o in self.graph.orphaned:
            fate = self._fate(w, o).fate
            python = by[w].blocked_on.kind.startswith("py-")
            py = {"fork-parent": PY_FORK[0], "exited": PY_EXITED[0]}
            out.append(py[fate] if python and fate in py else GONE[fate][0])
        return out

    def hints(self) -> list[str]:
        advice = ({name: text for name, _, text in FIXES} | {SELF: SELF_FIX}
                  | {name: text for name, _, text in SELF_PYTHON}
                  | {name: text for name, text in GONE.values()} | {PY_FORK[0]: PY_FORK[1], PY_EXITED[0]: PY_EXITED[1]}
                  | {ALL_BLOCKED[0]: ALL_BLOCKED[1]})
        out = [advice[p] for p in self.patterns() if p]
        if PY_FORK[1] not in out and any(FORK_RECLAIMED in why
                                         for _, _, why in self.unknown_waits()):
            out.append(PY_FORK[1] + "; or, if its owner exited holding it, release it on "
                       "every path (with LOCK:)")     # a core: no parent to ask
        if self.verdict != "deadlock":
            out += [STALLED_FIX[s] for s in self.stalled_holders().values() if s in STALLED_FIX]
        return list(dict.fromkeys(out))

    def hang_threads(self) -> list[int]:
        """The LWPs whose wait sites sign this hang (crash-triage): the
        members of the cycles; else the threads waiting on locks whose owner
        is gone (they never proceed, whichever thread got the stop); else
        the chains that end at a stalled holder.  Empty when none."""
        g = self.graph
        lwps = {l for c in g.cycles for l in c}
        if not lwps:
            lwps = {w for w, _ in g.orphaned}
        if not lwps:
            stalled = self.stalled_holders()
            lwps = {l for c in g.chains if c and c[-1] in stalled for l in c}
        if not lwps and self._only_all_blocked():    # the waits nobody can be named for
            lwps = {l for l, _, _ in self.unknown_waits()} or {s.lwp for s in g.states}
        return sorted(lwps)

    def stalled_holders(self) -> dict[int, str]:
        """LWP -> state of each thread that holds a lock (not a join or a
        barrier) at the end of a chain of waits."""
        by = self.graph.by_lwp
        # (a running thread holding the GIL is how Python runs: no stall)
        return {c[-1]: by[c[-1]].state for c in self.graph.chains
                if len(c) > 1 and c[-1] in by and by[c[-2]].blocked_on
                and by[c[-2]].blocked_on.kind in HELD_KINDS
                and not (by[c[-2]].blocked_on.kind == "gil" and by[c[-1]].state == "running")}

    # --- JSON ---------------------------------------------------------------
    def to_json(self) -> dict:
        g = self.graph
        return {
            "schema": SCHEMA,
            "verdict": self.verdict,
            "target": self.target,
            "threads": [{"num": s.num, "lwp": s.lwp, "name": s.name, "state": s.state,
                         "detail": s.detail,
                         "blocked_on": s.blocked_on.to_json() if s.blocked_on else None,
                         "wait_site": s.wait_site,
                         "start_routine": s.start.to_json() if s.start else None,
                         "frames_truncated": s.frames_truncated} for s in g.states],
            "cycles": [list(c) for c in g.cycles],
            "all_blocked": self.all_blocked,
            "patterns": self.patterns(),
            "deadlocked": [list(k) for k in g.knots],
            "behind_cycle": [{"lwp": l, "cycle": i} for l, i in sorted(g.behind_cycle.items())],
            "orphaned": [{"lwp": w, "owner": o, **self._fate(w, o).to_json()}
                         for w, o in g.orphaned],
            "behind_orphan": [{"lwp": l, "waits_behind": w}
                              for l, w in sorted(g.behind_orphan.items())],
            "unknown": [{"lwp": l, "kind": k, "reason": why}
                        for l, k, why in self.unknown_waits()],
            "chains": g.chains,
            "stalled_holders": [{"lwp": l, "state": st}
                                for l, st in self.stalled_holders().items()],
            "hints": self.hints(),
            "python": self.python,
            "warnings": self.warnings,
        }

    # --- text ---------------------------------------------------------------
    def _who(self, lwp: int) -> str:
        s = self.graph.by_lwp.get(lwp)
        if s is None:
            return f"LWP {lwp}"
        name = f' "{s.name}"' if s.name else ""
        return f"Thread {s.num} (LWP {lwp}){name}"

    def headline(self) -> str:
        g = self.graph
        blocked = sum(1 for s in g.states if s.state == "blocked")
        if g.orphaned and not g.cycles:
            w, o = g.orphaned[0]
            b = g.by_lwp[w].blocked_on
            fate = self._fate(w, o)
            more = f" (and {len(g.orphaned) - 1} more)" if len(g.orphaned) > 1 else ""
            behind = (f", {len(g.behind_orphan)} more blocked behind it"
                      if g.behind_orphan else "")
            held = "held by" if b.confidence == "exact" else "held (inferred) by"
            return (f"deadlock-graph: DEADLOCK - {self._who(w)} waits forever for {b.label} "
                    f"{held} {self._holder(o, fate)}, no thread of this process "
                    f"({fate.evidence}){more}"
                    f"{behind}")
        if self._only_all_blocked():
            unknown = self.unknown_waits()
            kinds = ", ".join(f"{k} x{n}" for k, n in sorted(
                {k: sum(1 for _, kk, _ in unknown if kk == k) for _, k, _ in unknown}.items()))
            return (f"deadlock-graph: DEADLOCK - all {len(g.states)} thread(s) wait without a "
                    "timeout on this process's own locks and events, and none is being "
                    "woken: nothing in the process can wake any of them (only a signal or a "
                    "debugger could)" + (f"; the owners of {kinds} cannot be named"
                                         if kinds else ""))
        if not g.cycles and self.verdict == "unknown":
            unknown = self.unknown_waits()
            kinds = ", ".join(f"{k} x{n}" for k, n in sorted(
                {k: sum(1 for _, kk, _ in unknown if kk == k) for _, k, _ in unknown}.items()))
            return (f"deadlock-graph: UNKNOWN - {len(g.states)} threads, {blocked} blocked, "
                    f"no cycle among the known owners; {len(unknown)} blocked without a "
                    f"timeout on waits whose owners cannot be known ({kinds})")
        if not g.cycles:
            ends = self.stalled_holders()
            stalled = ""
            if ends:
                lwp, state = next(iter(ends.items()))
                detail = g.by_lwp[lwp].detail
                waiting = {l for c in g.chains if c[-1] in ends for l in c[:-1]}
                more = f" and {len(ends) - 1} more" if len(ends) > 1 else ""
                stalled = (f"; {len(waiting)} wait, directly or not, on LWP {lwp} "
                           f"({state}{': ' + detail if detail else ''}){more}")
            return (f"deadlock-graph: no deadlock - {len(g.states)} threads, {blocked} "
                    f"blocked, no cycle of waits{stalled}")
        members = sum(len(k) for k in g.knots)
        behind = f", {len(g.behind_cycle)} more blocked behind it" if g.behind_cycle else ""
        gone = (f"; {len(g.orphaned)} wait(s) on owners that are gone" if g.orphaned else "")
        guessed = sum(1 for k in g.knots for l in k if g.by_lwp[l].blocked_on
                      and g.by_lwp[l].blocked_on.confidence == "inferred"
                      and any("(a guard: inferred owner)" in e
                              for e in g.by_lwp[l].blocked_on.evidence))
        inferred = (f" (inferred: {guessed} owner(s) found by the guards on their stacks; "
                    "Rust std records none)" if guessed else "")
        return (f"deadlock-graph: DEADLOCK - {len(g.cycles)} cycle(s) among {members} "
                f"thread(s){behind}{gone}{inferred}")

    def _orphan_text(self, waiter: int, owner: int) -> str:
        s = self.graph.by_lwp[waiter]
        b = s.blocked_on
        lines = [f"owner gone: {self._who(waiter)}",
                 f"      waits for {b.label} [{b.confidence}]",
                 f"      at {s.wait_site or '?'}",
                 f"      held by {self._holder(owner, self._fate(waiter, owner))}: "
                 f"{self._fate(waiter, owner).evidence}"]
        lines += [f"      - {e}" for e in b.evidence]
        return "\n".join(lines)

    def _cycle_text(self, i: int, cycle: list[int]) -> str:
        by = self.graph.by_lwp
        knot = self.graph.knots[i]
        more = (f" ({len(knot)} threads deadlocked together; one cycle shown)"
                if len(knot) > len(cycle) else "")
        lines = [f"cycle {i + 1}{more}:"]
        for k, lwp in enumerate(cycle):
            s = by[lwp]
            nxt = cycle[(k + 1) % len(cycle)]
            b = s.blocked_on
            verb = "held by" if b.kind in HELD_KINDS else "waiting for"
            lines.append(f"  {self._who(lwp)}")
            lines.append(f"      waits for {b.label} [{b.confidence}]")
            lines.append(f"      at {s.wait_site or '?'}")
            lines.append(f"      {verb} {self._who(nxt)}")
            for e in b.evidence:
                lines.append(f"      - {e}")
        return "\n".join(lines)

    def _scenario(self, cycle: list[int]) -> str:
        by = self.graph.by_lwp
        holds: dict[int, list[str]] = {l: [] for l in cycle}
        for l in cycle:
            b = by[l].blocked_on
            if b and b.kind in HELD_KINDS:
                for owner in b.owner_lwps:
                    if owner in holds and b.label not in holds[owner]:
                        holds[owner].append(b.label)
        cols = [[f"holds {h}" for h in holds[l]] + [f"waits for {by[l].blocked_on.label}"]
                for l in cycle[:4]]
        depth = max(len(c) for c in cols)
        rows = [[c[r] if r < len(c) else "" for c in cols] for r in range(depth)]
        return render.table(rows, [f"LWP {l}" for l in cycle[:4]])

    def _table(self) -> str:
        rows = []
        for s in self.graph.states:
            b = s.blocked_on
            what = b.label if b else (s.detail or "")
            owners = ",".join(f"{o} (gone)" if o in b.gone else str(o)
                              for o in b.owner_lwps) if b and b.owner_lwps else ""
            if b and b.ended and not b.owner_lwps:
                owners = "(gone)"
            if b and b.timed:
                what += " (timed)"
            rows.append([s.num, s.lwp, s.name or "", s.state, what, owners, s.wait_site or "",
                         _started(s.start)])
        return render.table(rows, ["#", "lwp", "name", "state", "blocked on", "owner/awaits",
                                   "wait site", "started by"])

    def to_text(self) -> str:
        g = self.graph
        parts = [self.headline()]
        for i, cycle in enumerate(g.cycles):
            parts.append(self._cycle_text(i, cycle))
            if len(cycle) > 1:
                parts.append("scenario:\n" + _indent(self._scenario(cycle)))
        if g.behind_cycle:
            parts.append("blocked behind a cycle: " + ", ".join(
                f"{self._who(l)} (cycle {i + 1})" for l, i in sorted(g.behind_cycle.items())))
        for waiter, owner in g.orphaned:
            parts.append(self._orphan_text(waiter, owner))
        if g.behind_orphan:
            parts.append("blocked behind a wait on a gone owner: " + ", ".join(
                f"{self._who(l)} (behind LWP {w})" for l, w in sorted(g.behind_orphan.items())))
        unknown = self.unknown_waits()
        if unknown and (self.verdict == "unknown" or self._only_all_blocked()):
            parts.append("owners unknown:\n" + "\n".join(
                f"  {self._who(l)}: {g.by_lwp[l].blocked_on.label} - {why}"
                for l, _, why in unknown[:20])
                + (f"\n  ... and {len(unknown) - 20} more" if len(unknown) > 20 else ""))
        for chain in g.chains[:20]:
            end = g.by_lwp[chain[-1]]
            parts.append("chain: " + " -> ".join(f"LWP {l}" for l in chain)
                         + f" ({end.state}{': ' + end.detail if end.detail else ''})")
        for h in self.hints():
            parts.append("fix: " + render.prose([h], render.WIDTH - 5).replace("\n", "\n  "))
        parts.append("threads:\n" + _indent(self._table()))
        for w in self.warnings:
            parts.append(f"warning: {w}")
        return "\n".join(parts)

    # --- DOT ----------------------------------------------------------------
    def to_dot(self) -> str:
        """Threads are boxes, resources ellipses (one per lock address); the
        deadlocked threads and the edges among them are red."""
        g = self.graph
        knot = {lwp for k in g.knots for lwp in k}
        lines = ["digraph deadlock {", '  rankdir=LR; node [fontname="monospace"];']
        waited = {o for owners in g.edges.values() for o in owners}
        for s in g.states:
            if s.blocked_on is None and s.lwp not in waited:
                continue
            label = f"Thread {s.num}\\nLWP {s.lwp}\\n{_esc(s.wait_site or s.state)}"
            lines.append(f'  t{s.lwp} [shape=box, label="{label}"'
                         + (", color=red, penwidth=2" if s.lwp in knot else "") + "];")
        resources: dict[str, tuple] = {}
        for s in g.states:
            b = s.blocked_on
            if b is None:
                continue
            rid = f"r{b.kind.replace('-', '_')}_{b.address or s.lwp:x}"
            if rid not in resources:
                resources[rid] = (b, set())
                lines.append(f'  {rid} [shape=ellipse, label="{_esc(b.label)}\\n{b.kind}, '
                             f'{b.confidence}"];')
            hot = s.lwp in knot and any(o in knot for o in b.owner_lwps)
            lines.append(f"  t{s.lwp} -> {rid} [label=waits"
                         + (", color=red, penwidth=2" if hot else "") + "];")
            verb = "held by" if b.kind in HELD_KINDS else "awaits"
            for o in b.owner_lwps:
                if o in resources[rid][1]:
                    continue
                resources[rid][1].add(o)
                red = o in knot and s.lwp in knot
                lines.append(f'  {rid} -> t{o} [label="{verb}"'
                             + (", color=red, penwidth=2" if red else "") + "];")
        for waiter, owner in g.orphaned:      # an owner that is no thread: a dashed box
            fate = self._fate(waiter, owner)
            node = f"t{owner}" if owner is not None else f"t{waiter}_owner"
            lines.append(f'  {node} [shape=box, style=dashed, color=red, '
                         f'label="{self._holder(owner, fate)}\\nno thread of this process'
                         f'\\n({fate.fate})"];')
            if owner is None:       # no owner edge above: the lock's TID-less holder
                b = g.by_lwp[waiter].blocked_on
                rid = f"r{b.kind.replace('-', '_')}_{b.address or waiter:x}"
                lines.append(f'  {rid} -> {node} [label="held by", color=red];')
        lines.append("}")
        return "\n".join(lines) + "\n"


def _started(start) -> str:
    if start is None:
        return ""
    if not start.address:
        return "-"
    where = f" in {start.objfile.rsplit('/', 1)[-1]}" if start.objfile else ""
    return start.symbol or start.runtime or f"{start.address:#x}{where}"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
