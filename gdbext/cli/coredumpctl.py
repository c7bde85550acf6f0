"""Cores kept by systemd-coredump, through coredumpctl(1): `--json=short
list` names them (pid, exe, corefile state), `dump --output=FILE PID` writes
one out, decompressed."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from ..record import record

STORED = ("present", "journal", "truncated")


class Unavailable(Exception):
    """No coredumpctl here, or it cannot list anything."""


@record(frozen=True)
class Entry:
    """One crash as `coredumpctl list` shows it."""
    pid: int
    exe: str | None
    corefile: str               # present, journal, truncated, missing, none, error, -
    time: int | None

    @property
    def label(self) -> str:
        return f"coredumpctl:{self.pid}" + (f":{self.exe}" if self.exe else "")


def list_entries(match: list[str], command: str = "coredumpctl") -> list[Entry]:
    if shutil.which(command) is None:
        raise Unavailable("coredumpctl not found: this system does not keep cores with "
                          "systemd-coredump (see /proc/sys/kernel/core_pattern); pass core "
                          "files instead")
    proc = subprocess.run([command, "--no-pager", "--json=short", "list", *match],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        message = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        if "No coredumps found" in message or "No match" in message:
            return []
        raise Unavailable(f"coredumpctl list failed: {message}")
    try:
        rows = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError as exc:
        raise Unavailable(f"coredumpctl printed no JSON ({exc.msg}): it needs systemd 248 "
                          "or later for --json") from None
    return [Entry(int(r["pid"]), r.get("exe"), str(r.get("corefile", "-")), r.get("time"))
            for r in rows if isinstance(r, dict) and "pid" in r]


def dump(entry: Entry, directory: str, command: str = "coredumpctl") -> str:
    """Write the entry's core into ``directory``; the path, or ValueError."""
    if entry.corefile not in STORED:
        raise ValueError(f"systemd-coredump did not keep this core (corefile: {entry.corefile})")
    path = os.path.join(directory, f"core.{entry.pid}")
    proc = subprocess.run([command, "--no-pager", "dump", f"--output={path}", str(entry.pid)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0 or not os.path.exists(path):
        message = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise ValueError(f"coredumpctl dump failed: {message}")
    return path
