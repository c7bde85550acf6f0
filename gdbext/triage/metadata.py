"""What `coredumpctl info` shows about a crashed process: its command line,
pid, uid, executable, threads, and the modules it had loaded with their
build-ids -- from the core's notes (NT_PRPSINFO, NT_FILE), or /proc for a
live process.  A build-id is read from the ELF headers the kernel dumps
with each mapped file (coredump_filter bit 4), else from the file here.
"""
from __future__ import annotations

import bisect
import os

from .. import core_file, memory_elf, target, text
from ..errors import GdbextError
from ..text import ERRORS

MAX_MODULES = 512
MAX_THREADS = 64


def collect(warnings: list[str]) -> dict:
    kind = target.kind()
    loaded = target.executable()
    meta = {"source": None, "command": None, "pid": target.pid() or None, "uid": None,
            "executable": loaded, "threads": [], "modules": []}
    mappings: list[tuple[int, int, str]] = []       # (start, file offset, path)
    if kind == "core":
        path = target.core_file_path()
        try:
            facts = core_file.read(path) if path else None
        except core_file.CoreFileError as exc:
            warnings.append(f"core notes: {exc}")
            facts = None
        if facts is not None:
            meta.update(source="core notes (NT_PRPSINFO, NT_FILE)", command=facts.arguments,
                        pid=facts.pid, uid=facts.uid, gid=facts.gid, ppid=facts.ppid,
                        executable=facts.executable() or meta["executable"],
                        core=path)
            mappings = [(m.start, m.page_offset, m.path) for m in facts.mappings]
    elif kind == "live":
        pid = target.pid()
        meta["source"] = "/proc"
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                meta["command"] = " ".join(text.decode(a)
                                           for a in fh.read().split(b"\0") if a)
            with open(f"/proc/{pid}/status", encoding="utf-8", errors=ERRORS) as fh:
                for line in fh:
                    if line.startswith("Uid:"):
                        meta["uid"] = int(line.split()[1])
            meta["executable"] = os.readlink(f"/proc/{pid}/exe")
        except OSError as exc:
            warnings.append(f"/proc/{pid}: {exc.strerror}")
        mappings = [(m.start, m.offset, m.name) for m in target.live_maps() or ()
                    if m.name.startswith("/")]
    elif kind == "remote":          # gdbserver serves the target's /proc; qemu's stub does not
        meta["source"] = "the target's /proc (remote)"
        meta["command"] = target.remote_command_line()
        if meta["executable"] and meta["executable"].startswith("target:"):
            meta["executable"] = meta["executable"][len("target:"):]
        mappings = [(m.start, m.offset, m.name) for m in target.live_maps() or ()
                    if m.name.startswith("/")]
        if not mappings:            # the dynamic linker's list: each object's first page
            mappings = [(m.bias, 0, m.name) for m in target.link_maps() if m.name]
    threads = target.thread_names()
    meta["thread_count"] = len(threads)
    meta["threads"] = threads[:MAX_THREADS]     # 10,000 threads: the count says the rest
    read = target.memory_reader()
    executable = _executable_paths(mappings)
    seen = set()
    for start, offset, path in mappings:
        if offset != 0 or path in seen or len(seen) >= MAX_MODULES:
            continue
        if executable is not None and path not in executable:
            continue                    # mapped to be read (a symbolizer's .debug file), not run
        if not _maps_elf(read, start, path):     # locale archives, caches: not modules
            continue
        seen.add(path)
        bid = memory_elf.build_id(read, start)
        source = "memory" if bid else None
        if kind == "live" and meta["pid"]:
            here = f"/proc/{meta['pid']}/root{path}"
            if not os.path.exists(here):
                here = path     # /proc/PID/root unreadable (another user): the path itself
        elif kind == "remote":  # a local file only when gdb reads local files (set sysroot)
            here = target.gdb_path_for(path)
        else:                   # a core: the file gdb read (under its sysroot)
            here = target.gdb_path_for(path) or path
        on_disk = core_file.build_id(here) if here and os.path.exists(here) else None
        if bid is None and on_disk:
            bid, source = on_disk, "file"
        entry = {"path": path, "base": start, "build_id": bid, "build_id_source": source}
        if bid and on_disk and on_disk != bid:
            entry["mismatch"] = f"the file here has build-id {on_disk}: a different build"
            warnings.append(f"{path}: the file here is not the build that crashed")
        if bid is None:
            entry["build_id_source"] = "none"
        meta["modules"].append(entry)
    if kind == "core":
        _check_loaded_executable(meta, loaded, warnings)
    from . import loaded_files
    libraries, read_by_gdb = target.shared_libraries()
    warnings += loaded_files.check(meta["modules"], libraries, read_by_gdb, os.getcwd())
    return meta


def _check_loaded_executable(meta: dict, loaded: str | None, warnings: list[str]) -> None:
    """gdb given another build than the one that crashed (a rebuild, the wrong
    program) finds no shared libraries through its link map and names frames
    from the wrong symbols: say so, with the build-ids, rather than let the
    report look like any other."""
    ran = next((m for m in meta["modules"] if m["path"] == meta["executable"]), None)
    if not loaded or ran is None or not ran["build_id"] or ran["build_id_source"] != "memory":
        return
    here = core_file.build_id(loaded)
    if here and here != ran["build_id"]:
        meta["executable_mismatch"] = {"loaded": loaded, "loaded_build_id": here,
                                       "crashed": ran["path"], "crashed_build_id": ran["build_id"]}
        warnings.append(f"gdb's executable {loaded} (build-id {here}) is not the build that "
                        f"crashed ({ran['path']}, build-id {ran['build_id']} in the core): "
                        "shared libraries, frames and reasons read through it are unreliable; "
                        "give gdb the matching executable")


def _executable_paths(mappings) -> set[str] | None:
    """The files with an executable mapping (core PT_LOAD flags, /proc maps):
    the modules.  A backtrace printer that maps libc's .debug file read-only
    (Rust std's, printing a panic) has not loaded a module.  None when the
    permissions are not known."""
    maps = target.mappings()
    if not maps:
        return None
    runs = sorted((m.start, m.end) for m in maps if "x" in m.perms)
    starts = [a for a, _ in runs]
    out = set()
    for start, _, path in mappings:
        i = bisect.bisect_right(starts, start) - 1
        if i >= 0 and runs[i][0] <= start < runs[i][1]:
            out.add(path)
    return out


def _maps_elf(read, start: int, path: str) -> bool:
    """Whether the file mapped at ``start`` is an ELF object: its first bytes in
    memory, else on disk; kept when neither can be read."""
    try:
        return read(start, 4) == b"\x7fELF"
    except GdbextError:
        pass
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return True


def rows(meta: dict) -> list[tuple[str, str]]:
    out = []
    if meta.get("command"):
        out.append(("command", meta["command"]))
    ids = [f"pid {meta['pid']}" if meta.get("pid") else None,
           f"uid {meta['uid']}" if meta.get("uid") is not None else None]
    if any(ids):
        out.append(("process", ", ".join(i for i in ids if i)))
    if meta.get("executable"):
        out.append(("executable", meta["executable"]))
    threads = meta.get("threads") or []
    if threads:
        count = meta.get("thread_count", len(threads))
        names = ", ".join(f"{t['lwp']}" + (f" {t['name']}" if t.get("name") else "")
                          for t in threads[:8])
        more = f" (+{count - 8} more)" if count > 8 else ""
        out.append(("threads", f"{count}: {names}{more}"))
    mods = meta.get("modules") or []
    if mods:
        lines = [f"{os.path.basename(m['path'])} {m['build_id'] or '-'}"
                 + (" (MISMATCH)" if m.get("mismatch") else "") for m in mods]
        out.append(("modules", "\n".join(lines)))
    return out


def safe_collect(warnings: list[str]) -> dict | None:
    try:
        return collect(warnings)
    except GdbextError as exc:
        warnings.append(f"metadata: {exc}")
        return None
