"""Shared rendering: hex, key/value blocks, tables (tabulate), wrapped prose."""
from __future__ import annotations

import textwrap

WIDTH = 100
LABEL = 13


def hexaddr(value: int | None) -> str:
    return "?" if value is None else f"{value:#x}"


def hexbytes(raw: bytes) -> str:
    return " ".join(f"{b:02x}" for b in raw)


def block(rows: list[tuple[str, str]]) -> str:
    """Label/value rows; a multi-line value is indented under its label."""
    out = []
    for label, value in rows:
        lines = str(value).splitlines() or [""]
        out.append(f"  {label:<{LABEL}}{lines[0]}")
        out.extend(f"  {'':<{LABEL}}{line}" for line in lines[1:])
    return "\n".join(out)


def prose(paragraphs: list[str], width: int = WIDTH - LABEL - 2) -> str:
    return "\n".join(textwrap.fill(p, width, subsequent_indent="  ") for p in paragraphs)


def table(rows: list[list], headers: list[str]) -> str:
    from tabulate import tabulate  # imported on use: loading gdbext stays cheap
    return tabulate(rows, headers=headers, tablefmt="plain", disable_numparse=True)
