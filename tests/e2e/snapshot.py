"""A snapshot of a live, stopped process and of the gdb session debugging it,
taken without gdbext, to prove that a command changed nothing.

What is compared (issue #7, "proof of read-only"):

- memory: from this test process, /proc/PID/maps and a BLAKE2b digest of the
  bytes of every readable or writable mapping read through /proc/PID/mem
  (root may read a ptrace-stopped process's memory).  Ranges the kernel will
  not give ([vvar], I/O mappings) are hashed as a marker naming the page and
  the errno; PROT_NONE mappings (guard pages, reservations) are recorded as
  such without being read.  The map layout itself is part of the snapshot, so
  an mmap, munmap or mprotect shows too.
- the kernel's view of every task (/proc/PID/task/TID): the set of TIDs, the
  run state, utime and stime, the voluntary and involuntary context-switch
  counts (a resumed thread is scheduled, so these move even if gdb stops it
  again at once), pending, blocked, ignored and caught signals, and the
  syscall line (the syscall and its arguments, sp and pc from the kernel's
  saved registers).
- registers: gdb's raw register cache of every thread (`thread apply all
  maint print raw-registers`); a register written through gdb goes through
  that cache, and the /proc syscall line checks sp/pc from outside gdb.
- the user's selection: gdb's `thread` and `frame` answers, and the frame's
  language (`show language` says "auto; currently c").
- gdb settings a command might be tempted to touch, the breakpoint table and
  the auto-display list; convenience variables (among them $_siginfo, the
  selected thread's stop signal), the value history and `info inferiors`.
  (Not `info program`: gdb 13 hits an internal error in it after an
  inferior call in an attached process.)
"""
from __future__ import annotations

import errno
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

PAGE = 4096
CHUNK = 1 << 20

SETTINGS = ("may-call-functions", "scheduler-locking", "disassembly-flavor", "print pretty",
            "pagination", "auto-load safe-path", "language", "confirm", "width", "height",
            "print elements", "print address", "print symbol", "print frame-arguments",
            "non-stop", "breakpoint always-inserted", "unwindonsignal", "gdbext debug")

@dataclass
class Snapshot:
    maps: list[str]                                    # start-end perms offset path
    memory: dict[str, str]                             # mapping -> digest or marker
    hashed_bytes: int
    unreadable: dict[str, str]                         # mapping -> why not hashed
    tasks: dict[int, dict[str, str]]                   # tid -> kernel's facts
    registers: dict[str, str]                          # gdb thread header -> raw regs
    selection: dict[str, str]
    settings: dict[str, str]
    extra: dict[str, str] = field(default_factory=dict)

    PARTS = ("maps", "memory", "tasks", "registers", "selection", "settings", "extra")

    def differences(self, other: "Snapshot") -> dict[str, list[str]]:
        """part -> a readable list of what differs (empty dict: identical)."""
        out: dict[str, list[str]] = {}
        for part in self.PARTS:
            a, b = getattr(self, part), getattr(other, part)
            if a == b:
                continue
            if isinstance(a, dict):
                lines = []
                for key in sorted(set(a) | set(b), key=str):
                    lines += _diff_value(str(key), a.get(key), b.get(key))
                out[part] = lines
            else:
                out[part] = [f"{x}" for x in sorted(set(a) ^ set(b))]
        return out


def _diff_value(key: str, a, b) -> list[str]:
    if a == b:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        return [f"{key} {k}: {_short(a.get(k))} -> {_short(b.get(k))}"
                for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    if isinstance(a, str) and isinstance(b, str) and ("\n" in a or "\n" in b):
        old, new = a.splitlines(), b.splitlines()
        gone = [line for line in old if line not in new]
        came = [line for line in new if line not in old]
        return ([f"{key} - {line.strip()}" for line in gone]
                + [f"{key} + {line.strip()}" for line in came]) or [f"{key}: lines reordered"]
    return [f"{key}: {_short(a)} -> {_short(b)}"]


def _short(value) -> str:
    if value is None:
        return "<absent>"
    text = str(value)
    if "\n" not in text and len(text) <= 200:
        return text
    digest = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
    return f"<{len(text)} chars, blake2b {digest}>"


# --- memory ---------------------------------------------------------------------
def read_maps(pid: int) -> list[tuple[int, int, str, str]]:
    """(start, end, perms, the whole line normalised) for every mapping."""
    rows = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        start, end = (int(x, 16) for x in parts[0].split("-"))
        path = parts[5] if len(parts) > 5 else ""
        rows.append((start, end, parts[1], f"{parts[0]} {parts[1]} {parts[2]} {path}".strip()))
    return rows


def _read_exact(mem, address: int, n: int) -> bytes:
    mem.seek(address)
    data = mem.read(n)
    if len(data) != n:
        raise OSError(errno.EIO, "short read")
    return data


def _hash_range(mem, start: int, end: int) -> tuple[str, int, list[str]]:
    """Digest of [start, end); pages the kernel refuses are hashed as a marker."""
    h = hashlib.blake2b(digest_size=16)
    read, refused = 0, []
    address = start
    while address < end:
        n = min(CHUNK, end - address)
        try:
            h.update(_read_exact(mem, address, n))
            read += n
            address += n
            continue
        except OSError:
            pass
        # Page by page through the chunk that failed.
        for page in range(address, address + n, PAGE):
            try:
                h.update(_read_exact(mem, page, PAGE))
                read += PAGE
            except OSError as exc:
                marker = f"<unreadable {page:#x}: {errno.errorcode.get(exc.errno, exc.errno)}>"
                h.update(marker.encode())
                refused.append(marker)
        address += n
    return h.hexdigest(), read, refused


def memory_of(pid: int) -> tuple[list[str], dict[str, str], int, dict[str, str]]:
    maps = read_maps(pid)
    digests: dict[str, str] = {}
    unreadable: dict[str, str] = {}
    total = 0
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for start, end, perms, line in maps:
            if "r" not in perms and "w" not in perms:
                digests[line] = unreadable[line] = "PROT_NONE: not read"
                continue
            digest, read, refused = _hash_range(mem, start, end)
            digests[line] = digest
            total += read
            if refused:
                unreadable[line] = f"{len(refused)} page(s) refused, first {refused[0]}"
    return [line for *_, line in maps], digests, total, unreadable


# --- the kernel's view of each task ---------------------------------------------
def tasks_of(pid: int) -> dict[int, dict[str, str]]:
    tasks = {}
    for task in sorted(Path(f"/proc/{pid}/task").iterdir(), key=lambda p: int(p.name)):
        stat = (task / "stat").read_text()
        rest = stat[stat.rindex(")") + 2:].split()     # fields from 3 (state) on
        status = dict(re.findall(r"^(\w+):\s*(.*)$", (task / "status").read_text(), re.M))
        tasks[int(task.name)] = {
            "state": rest[0],
            "utime": rest[11], "stime": rest[12],
            "voluntary_ctxt_switches": status["voluntary_ctxt_switches"],
            "nonvoluntary_ctxt_switches": status["nonvoluntary_ctxt_switches"],
            "syscall": (task / "syscall").read_text().strip(),
            # a signal sent, queued, blocked or given a handler
            **{key: status[key] for key in ("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")},
        }
    return tasks


# --- gdb's view -------------------------------------------------------------------
def registers_of(gdb) -> dict[str, str]:
    out = gdb.cmd("thread apply all maint print raw-registers")
    threads: dict[str, str] = {}
    header = None
    for line in out.splitlines():
        if m := re.match(r"^Thread (\d+) \(.*\):\s*$", line):
            header = m.group(1)
            threads[header] = ""
        elif header is not None:
            threads[header] += line + "\n"
    assert threads and all("rip" in r and "rsp" in r for r in threads.values()), out
    return threads


def selection_of(gdb) -> dict[str, str]:
    return {"thread": gdb.cmd("thread").strip(), "frame": gdb.cmd("frame").strip(),
            # "auto; currently c": the frame's language, so part of the selection
            "language": gdb.cmd("show language").strip()}


def settings_of(gdb) -> dict[str, str]:
    settings = {name: gdb.cmd(f"show {name}").strip() for name in SETTINGS}
    settings["language"] = re.sub(r"; currently \w+", "", settings["language"])
    settings["breakpoints"] = gdb.cmd("info breakpoints").strip()
    settings["display"] = gdb.cmd("info display").strip()
    return settings


def gdb_state_of(gdb) -> dict[str, str]:
    """Convenience variables ($_, $__, $_siginfo...) and the value history: a
    command that ran `x`, `print` or `output` for the user to see would move
    them."""
    return {"convenience": gdb.cmd("show convenience").strip(),
            "values": gdb.cmd("show values").strip(),
            "inferiors": gdb.cmd("info inferiors").strip()}


def take(gdb, pid: int) -> Snapshot:
    """gdb's view first (it may touch the process only through ptrace reads),
    then the kernel's; the selection is read again at the end so a snapshot
    that itself moved the selection cannot pass as stable."""
    selection = selection_of(gdb)
    settings = settings_of(gdb)
    registers = registers_of(gdb)
    extra = gdb_state_of(gdb)
    assert selection_of(gdb) == selection, "taking the snapshot moved the selection"
    tasks = tasks_of(pid)
    maps, memory, total, unreadable = memory_of(pid)
    return Snapshot(maps, memory, total, unreadable, tasks, registers, selection, settings,
                    extra)
