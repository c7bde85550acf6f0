"""isa-scan --level: the lowest x86-64 psABI level, and the named CPUs, that
run every function of an object -- the packager's question before shipping a
build -- with the functions that set it.

The scan is judged against the x86-64 baseline, so every instruction needing
more is a gap; a function's need is the level of its features (levels.py,
archspec's data).  lzcnt counts as needing LZCNT (without it, it runs as bsr
and gives a wrong answer); tzcnt does not (it runs as bsf, the same for a
nonzero input, which is how compilers emit it for any target).
"""
from __future__ import annotations

from .. import render
from ..demangle import demangle_many, shorten
from ..record import field, record
from . import levels
from .scan import ScanResult

SCHEMA = "gdbext/isa-scan-level/1"


@record
class FunctionNeed:
    name: str
    start: int
    end: int
    needs: list[str]
    level: int | None                     # None: above x86-64-v4


@record
class ObjectLevel:
    path: str
    needs: list[FunctionNeed] = field(default_factory=list)   # functions beyond baseline

    @property
    def features(self) -> frozenset[str]:
        return frozenset(n for f in self.needs for n in f.needs)

    @property
    def level(self) -> int | None:
        return levels.level_of(self.features)

    def beyond(self) -> dict[str, int]:
        """Per level, how many functions cannot run on it."""
        out = {}
        for i in range(len(levels.LEVELS)):
            out[levels.level_name(i)] = sum(1 for f in self.needs
                                            if f.level is None or f.level > i)
        return out

    def setting(self) -> list[FunctionNeed]:
        """The functions that need the object's level (or beyond v4: need a
        feature no level has), most demanding first."""
        top = self.level
        chosen = [f for f in self.needs if f.level is None or (top is not None
                                                                and f.level == top)]
        return sorted(chosen, key=lambda f: (-(f.level if f.level is not None else 9),
                                             -len(f.needs), f.start))


def object_level(result: ScanResult) -> ObjectLevel:
    out = ObjectLevel(result.path)
    funcs: dict[int, FunctionNeed] = {}
    for g in result.gaps:
        needs = sorted(m for m in g.missing if not m.startswith("XCR0"))
        funcs[g.start] = FunctionNeed(g.name, g.start, g.end, needs, None)
    for g in result.differs:
        if any(w.startswith("lzcnt") for w in g.missing):
            f = funcs.setdefault(g.start, FunctionNeed(g.name, g.start, g.end, [], None))
            if "abm" not in f.needs:
                f.needs = sorted(f.needs + ["abm"])
    for f in funcs.values():
        f.level = levels.level_of(f.needs)
    out.needs = sorted((f for f in funcs.values() if f.needs), key=lambda f: f.start)
    return out


@record
class LevelReport:
    """What isa-scan --level prints."""
    objects: list[ObjectLevel]
    results: list[ScanResult]
    limit: int = 30
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.names = demangle_many(f.name for o in self.objects
                                   for f in o.setting()[:max(self.limit, 1000)])

    def _level(self) -> int | None:
        found = [o.level for o in self.objects]
        return None if None in found else max(found, default=0)

    def _features(self) -> frozenset[str]:
        return frozenset().union(*(o.features for o in self.objects))

    def to_json(self) -> dict:
        level = self._level()
        return {
            "schema": SCHEMA,
            "level": levels.level_name(level),
            "features": sorted(self._features()),
            "beyond_every_level": levels.beyond(self._features(), 3) if level is None else [],
            "cpus": levels.cpus_running(self._features()),
            "objects": [{
                "path": o.path, "level": levels.level_name(o.level),
                "features": sorted(o.features),
                "functions_that_cannot_run": o.beyond(),
                "set_by": [{"name": f.name, "demangled": self.names.get(f.name),
                            "start": f.start, "end": f.end,
                            "level": levels.level_name(f.level), "needs": f.needs}
                           for f in o.setting()],
                "functions": [{"name": f.name, "start": f.start, "end": f.end,
                               "level": levels.level_name(f.level), "needs": f.needs}
                              for f in o.needs],
            } for o in self.objects],
            "warnings": self.warnings,
        }

    def to_text(self) -> str:
        level = self._level()
        cpus = levels.cpus_running(self._features())
        if level is None:
            head = ("isa-scan: above x86-64-v4 - some functions need "
                    + ", ".join(levels.beyond(self._features(), 3))
                    + ", in no x86-64 level")
        else:
            head = f"isa-scan: {levels.level_name(level)} - every function runs on an " \
                   f"{levels.level_name(level)} CPU"
        out = [head]
        for o in self.objects:
            rows = [("object", o.path), ("level", levels.level_name(o.level))]
            rows.append(("per level", render.table(
                [[name, f"{n:,}"] for name, n in o.beyond().items()],
                ["level", "functions that cannot run there"])))
            shown = o.setting()[:self.limit]
            if shown:
                text = render.table([[shorten(self.names.get(f.name, f.name)),
                                      render.hexaddr(f.start), levels.level_name(f.level),
                                      ", ".join(f.needs)] for f in shown],
                                    ["function", "address", "needs", "features"])
                if len(o.setting()) > len(shown):
                    text += f"\n... and {len(o.setting()) - len(shown)} more (--limit N, --json)"
                rows.append(("set by", text))
            out.append(render.block(rows))
        out.append(render.block(
            [("cpus", render.prose([(", ".join(cpus) if cpus else "none archspec knows")
                                    + " (archspec's named CPUs with every feature used)"])),
             ("note", render.prose([
                 "a static count: a function chosen at run time after a CPUID test (ifunc, "
                 "OpenSSL's and OpenBLAS's dispatch, target_clones) raises the level here "
                 "though a CPU without the feature never calls it"]))]
            + [("warning", render.prose([w])) for w in self.warnings]))
        return "\n".join(out)
