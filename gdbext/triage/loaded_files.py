"""Whether gdb read the files the process ran: each shared library gdb
lists against the modules the core's NT_FILE (or /proc/PID/maps) names,
with their build-ids from memory.  A library dlopen'ed by a relative name
("./libext.so") is looked for from gdb's own working directory: from
anywhere else gdb finds nothing, and every frame in it is unnamed; or it
finds another file of that name, and names frames from the wrong build.
Pure: gdb's list and its files' build-ids come in as plain values."""
from __future__ import annotations

import os

from ..record import record


@record(frozen=True)
class SharedLibrary:
    """One row of gdb's `info sharedlibrary`."""
    name: str                       # as the link map names it (may be relative)
    low: int | None                 # its .text range; None: gdb found no file
    high: int | None


def check(modules: list[dict], libraries: list[SharedLibrary], read_by_gdb: dict[str, str | None],
          cwd: str) -> list[str]:
    """Warnings for libraries gdb could not find or read from another
    build.  ``modules``: metadata's entries (path, base, build_id,
    build_id_source); ``read_by_gdb``: the build-id of each file gdb read,
    by its name in the list (None: unknown)."""
    out = []
    by_name: dict[str, list[dict]] = {}
    for m in modules:
        by_name.setdefault(os.path.basename(m["path"]), []).append(m)
    for lib in libraries:
        candidates = [m for m in modules if m["path"] == lib.name] or \
            by_name.get(os.path.basename(lib.name), [])
        if len(candidates) != 1:
            continue                # not mapped with a path, or ambiguous: nothing to say
        ran = candidates[0]
        if lib.low is None:
            relative = not lib.name.startswith("/")
            out.append(
                f"gdb found no file for {lib.name} (the process ran {ran['path']}"
                + (f", build-id {ran['build_id']}" if ran["build_id"] else "") + "): its "
                "frames are unnamed" + (
                    f" -- the link map names it relative, and gdb looks for it from its own "
                    f"working directory ({cwd}): run gdb where the program ran, or `set "
                    f"solib-search-path {os.path.dirname(ran['path'])}` before the core"
                    if relative else ""))
            continue
        here = read_by_gdb.get(lib.name)
        if ran["build_id"] and ran["build_id_source"] == "memory" and here and \
                here != ran["build_id"]:
            out.append(f"gdb read {lib.name} with build-id {here} for {ran['path']}, which "
                       f"ran with build-id {ran['build_id']}: frames and symbols in it come "
                       "from another build")
    return out
