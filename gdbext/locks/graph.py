"""The wait-for graph over threads: cycles, waits on owners that are gone
(no thread of the process: inherited locked across fork(), or exited holding
the lock), threads stuck behind either, and chains that end at a thread that
is not blocked (sleeping, in I/O, running)."""
from __future__ import annotations

from functools import cached_property

from .classify import ThreadState
from ..record import field, record


@record
class WaitGraph:
    """Who waits for whom, and the cycles."""
    states: list[ThreadState]
    edges: dict[int, list[int]] = field(default_factory=dict)   # lwp -> lwps it waits for
    cycles: list[list[int]] = field(default_factory=list)      # one elementary cycle per knot
    knots: list[list[int]] = field(default_factory=list)       # all LWPs of each cyclic SCC
    behind_cycle: dict[int, int] = field(default_factory=dict)  # lwp -> cycle index
    chains: list[list[int]] = field(default_factory=list)       # blocked -> ... -> not blocked
    orphaned: list[tuple[int, int | None]] = field(default_factory=list)  # (waiter, owner gone)
    behind_orphan: dict[int, int] = field(default_factory=dict)   # lwp -> orphaned waiter

    @cached_property        # built once: callers look up thousands of threads
    def by_lwp(self) -> dict[int, ThreadState]:
        return {s.lwp: s for s in self.states}


def build(states: list[ThreadState]) -> WaitGraph:
    g = WaitGraph(states)
    known = {s.lwp for s in states}
    for s in states:
        if s.blocked_on is not None:
            g.edges[s.lwp] = [o for o in s.blocked_on.owner_lwps if o in known]
    g.knots = sorted((sorted(c) for c in _sccs(g.edges) if _is_cyclic(c, g.edges)),
                     key=lambda c: c[0])
    g.cycles = [_one_cycle(c, g.edges) for c in g.knots]
    in_cycle = {lwp: i for i, c in enumerate(g.knots) for lwp in c}
    for lwp in g.edges:
        if lwp in in_cycle:
            continue
        hit = _reaches(lwp, g.edges, in_cycle)
        if hit is not None:
            g.behind_cycle[lwp] = hit
    # (waiter, owner TID) for owners that are no thread here; (waiter, None)
    # when the owner is known to have ended but its TID is not (BlockedOn.ended)
    g.orphaned = [(s.lwp, o) for s in states if s.blocked_on
                  for o in s.blocked_on.owner_lwps if o in s.blocked_on.gone] + \
                 [(s.lwp, None) for s in states if s.blocked_on and s.blocked_on.ended
                  and not s.blocked_on.owner_lwps and not s.blocked_on.released]
    stuck = {w: w for w, _ in g.orphaned}
    for lwp in g.edges:
        if lwp in in_cycle or lwp in g.behind_cycle or lwp in stuck:
            continue
        hit = _reaches(lwp, g.edges, stuck)
        if hit is not None:
            g.behind_orphan[lwp] = hit
    g.chains = _chains(g, in_cycle)
    return g


def _sccs(edges: dict[int, list[int]]) -> list[list[int]]:
    """Tarjan's strongly connected components, iterative (10,000 threads)."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    out: list[list[int]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(edges.get(nxt, ()))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                out.append(comp)
    return out


def _is_cyclic(comp: list[int], edges) -> bool:
    return len(comp) > 1 or comp[0] in edges.get(comp[0], ())


def _one_cycle(comp: list[int], edges) -> list[int]:
    """One elementary cycle inside a strongly connected component, starting at
    its lowest LWP (stable output)."""
    members = set(comp)
    start = min(comp)
    if start in edges.get(start, ()):
        return [start]
    path, seen = [start], {start}
    parent: dict[int, int] = {}
    frontier = [start]
    while frontier:                                   # BFS back to start
        nxt_frontier = []
        for node in frontier:
            for nxt in edges.get(node, ()):
                if nxt == start:
                    cycle = [node]
                    while cycle[-1] != start:
                        cycle.append(parent[cycle[-1]])
                    return list(reversed(cycle))
                if nxt in members and nxt not in seen:
                    seen.add(nxt)
                    parent[nxt] = node
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    return path


def _reaches(lwp: int, edges, in_cycle: dict[int, int]) -> int | None:
    seen, todo = {lwp}, [lwp]
    while todo:
        node = todo.pop()
        for nxt in edges.get(node, ()):
            if nxt in in_cycle:
                return in_cycle[nxt]
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return None


def _chains(g: WaitGraph, in_cycle) -> list[list[int]]:
    """Blocked threads whose wait ends at a thread that is not blocked."""
    out = []
    for lwp, owners in g.edges.items():
        if lwp in in_cycle or lwp in g.behind_cycle or lwp in g.behind_orphan or not owners:
            continue
        chain, node, seen = [lwp], lwp, {lwp}
        while g.edges.get(node):
            node = g.edges[node][0]
            if node in seen:
                break
            chain.append(node)
            seen.add(node)
        if len(chain) > 1 and node not in g.edges:
            out.append(chain)
    return out
