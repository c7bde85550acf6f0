"""The batch summary: records grouped by signature, most frequent first."""
from __future__ import annotations

from collections import Counter

from .. import render


def group(records: list[dict]) -> list[dict]:
    """One entry per signature id (and one per distinct error), largest first."""
    groups: dict[str, dict] = {}
    for r in records:
        sig = r.get("signature")
        key = sig["id"] if sig else f"error:{r.get('error')}"
        g = groups.setdefault(key, {"id": sig["id"] if sig else None, "signature": sig,
                                    "status": r["status"], "error": r.get("error"),
                                    "headline": r.get("headline"), "cores": []})
        g["cores"].append(r["core"])
    out = [dict(g, count=len(g["cores"])) for g in groups.values()]
    return sorted(out, key=lambda g: (-g["count"], g["id"] is None, g["id"] or ""))


def table(records: list[dict], width: int = 60) -> str:
    rows = []
    for g in group(records):
        sig = g["signature"]
        if sig:
            joiner = ", " if sig["class"] == "hang" else " < "   # wait sites, or a call chain
            frames = joiner.join(sig["frames"]) or "-"
            rows.append([g["count"], sig["id"], sig["class"], sig["verdict"], sig["key"] or "-",
                         _cut(frames, width), _cut(g["cores"][0], width)])
        else:
            rows.append([g["count"], "-", g["status"], "", "", _cut(g["error"] or "", width),
                         _cut(g["cores"][0], width)])
    statuses = Counter(r["status"] for r in records)
    signatures = len({r["signature"]["id"] for r in records if r.get("signature")})
    foot = (f"{len(records)} core(s): {statuses.get('ok', 0)} triaged into {signatures} "
            f"signature(s), {statuses.get('error', 0)} error(s), "
            f"{statuses.get('timeout', 0)} timeout(s)")
    return render.table(rows, ["cores", "signature", "class", "verdict", "key",
                               "frames / error", "example"]) + "\n" + foot


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3):]
