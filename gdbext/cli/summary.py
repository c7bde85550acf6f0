"""The batch summary: records grouped by signature, most frequent first."""
from __future__ import annotations

from collections import Counter

from .. import render


def name(r: dict) -> str:
    """What a record is of: its core, else its live process."""
    return r["core"] if r.get("core") is not None else f"pid {r.get('pid')}"


def group(records: list[dict]) -> list[dict]:
    """One entry per signature id (and one per distinct error), largest first."""
    groups: dict[str, dict] = {}
    for r in records:
        sig = r.get("signature")
        key = sig["id"] if sig else f"error:{r.get('error')}"
        g = groups.setdefault(key, {"id": sig["id"] if sig else None, "signature": sig,
                                    "status": r["status"], "error": r.get("error"),
                                    "headline": r.get("headline"), "cores": []})
        g["cores"].append(name(r))
    out = [dict(g, count=len(g["cores"])) for g in groups.values()]
    return sorted(out, key=lambda g: (-g["count"], g["id"] is None, g["id"] or ""))


def crash_point(record: dict) -> str | None:
    """The top frame of the program's own code: the signature's first frame."""
    sig = record.get("signature")
    if not sig:
        return None
    if sig["class"] == "hang":
        return "hang: " + (", ".join(sig["frames"]) or "-")
    return sig["frames"][0] if sig["frames"] else "-"


def by_crash_point(records: list[dict]) -> list[dict]:
    """One entry per crash point (and one per distinct error), largest first:
    the bugs of one function together, whatever the reason."""
    groups: dict[str, dict] = {}
    for r in records:
        point = crash_point(r)
        key = point if point is not None else f"error:{r.get('error')}"
        g = groups.setdefault(key, {"point": point, "status": r["status"],
                                    "error": r.get("error"), "signatures": {},
                                    "cores": []})
        if r.get("signature"):
            sig = r["signature"]
            g["signatures"].setdefault(sig["id"], f"{sig['class']}|{sig['verdict']}")
        g["cores"].append(name(r))
    out = [dict(g, count=len(g["cores"])) for g in groups.values()]
    return sorted(out, key=lambda g: (-g["count"], g["point"] is None, g["point"] or ""))


def table(records: list[dict], width: int = 60, group_by: str = "signature") -> str:
    if group_by == "crash-point":
        return _crash_point_table(records, width)
    rows = []
    for g in group(records):
        sig = g["signature"]
        if sig:
            joiner = ", " if sig["class"] == "hang" else " < "   # wait sites, or a call chain
            frames = joiner.join(sig["frames"]) or "-"
            rows.append([g["count"], sig["id"], sig["class"], sig["verdict"], sig["key"] or "-",
                         _head(frames, width), _cut(g["cores"][0], width)])
        else:
            rows.append([g["count"], "-", g["status"], "", "", _head(g["error"] or "", width),
                         _cut(g["cores"][0], width)])
    statuses = Counter(r["status"] for r in records)
    signatures = len({r["signature"]["id"] for r in records if r.get("signature")})
    foot = (f"{len(records)} core(s): {statuses.get('ok', 0)} triaged into {signatures} "
            f"signature(s), {statuses.get('error', 0)} error(s), "
            f"{statuses.get('timeout', 0)} timeout(s)") + _damaged(records)
    return render.table(rows, ["cores", "signature", "class", "verdict", "key",
                               "frames / error", "example"]) + "\n" + foot


def _damaged(records: list[dict]) -> str:
    """A line naming the cores whose evidence is damaged (a truncated or
    damaged core, another build of the executable, the wrong executable):
    their signatures group nothing."""
    from .gdb_batch import DAMAGED_EVIDENCE
    bad = [name(r) for r in records if r.get("signature") and any(
        mark in w for w in r.get("warnings", []) for mark in DAMAGED_EVIDENCE)]
    if not bad:
        return ""
    return (f"\n{len(bad)} of them read from damaged evidence (a truncated or damaged core, "
            f"or another build of the executable than the one that crashed, or the wrong "
            f"executable; their records' warnings say which): "
            f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}")


def _cut(text: str, width: int) -> str:
    """A path: its end (the file name) is what tells it apart."""
    return text if len(text) <= width else "..." + text[-(width - 3):]


def _head(text: str, width: int) -> str:
    """Frames (innermost first) or an error: the start is what matters."""
    return text if len(text) <= width else text[:width - 3] + "..."


def _crash_point_table(records: list[dict], width: int) -> str:
    rows = []
    for g in by_crash_point(records):
        if g["point"] is not None:
            kinds = sorted(set(g["signatures"].values()))
            rows.append([g["count"], _head(g["point"], width), len(g["signatures"]),
                         _head(", ".join(kinds), width), _cut(g["cores"][0], width)])
        else:
            rows.append([g["count"], "-", 0, _head(g["error"] or g["status"], width),
                         _cut(g["cores"][0], width)])
    statuses = Counter(r["status"] for r in records)
    points = len({crash_point(r) for r in records if r.get("signature")})
    foot = (f"{len(records)} core(s): {statuses.get('ok', 0)} triaged at {points} crash "
            f"point(s), {statuses.get('error', 0)} error(s), "
            f"{statuses.get('timeout', 0)} timeout(s)")
    return render.table(rows, ["cores", "crash point", "signatures", "class|verdict",
                               "example"]) + "\n" + foot
