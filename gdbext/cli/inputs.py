"""What `gdbext triage` is given on its command line, sorted before anything
is opened: regular files are cores to triage; a directory stands for the
files in it; anything else (a FIFO, a socket, a device, a symbolic link
that loops or points at nothing) is refused with the reason, decided from
lstat/stat alone -- opening a FIFO waits for a writer, forever, before any
gdb (and so any --timeout) starts.  A directory found inside a directory is
not searched: the summary says how many were skipped."""
from __future__ import annotations

import errno
import os
import stat

from ..record import record, field

# The kinds stat(2) tells apart (sys/stat.h S_IFMT), as the refusal names them.
KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
         (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
         (stat.S_ISDIR, "a directory"))


@record(frozen=True)
class Inputs:
    """The cores to triage, each with why it is refused (None: triage it),
    and the directories found inside the directories given, not searched."""
    cores: list = field(default_factory=list)         # (path, refusal or None)
    skipped_directories: list = field(default_factory=list)


def refusal(path: str, what: str = "a core file") -> str | None:
    """Why ``path`` is not read as a core, from lstat/stat only (no open);
    None for a regular file, or a link to one.  A missing file is left to
    the core reader, which says so in its own words."""
    try:
        link = os.lstat(path)
    except OSError:
        return None
    try:
        st = os.stat(path)
    except OSError as exc:
        if not stat.S_ISLNK(link.st_mode):
            return None
        if exc.errno == errno.ELOOP:
            return f"refused: a symbolic link that loops (ELOOP), not {what}"
        return (f"refused: a symbolic link to {_target(path)}, which is not here "
                f"({exc.strerror})")
    if stat.S_ISREG(st.st_mode):
        return None
    kind = next((name for test, name in KINDS if test(st.st_mode)), "not a regular file")
    linked = " (through a symbolic link)" if stat.S_ISLNK(link.st_mode) else ""
    return f"refused: {kind}{linked}, not {what}: not opened (reading it could block)"


def _target(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def expand(paths: list[str]) -> Inputs:
    """Every path given, and every entry of every directory given (sorted),
    with its refusal; directories inside directories are listed apart."""
    out = Inputs()
    for p in paths:
        if not _is_directory(p):
            out.cores.append((p, refusal(p)))
            continue
        try:
            names = sorted(os.listdir(p))
        except OSError as exc:
            out.cores.append((p, f"refused: a directory that cannot be listed "
                                 f"({exc.strerror})"))
            continue
        for n in names:
            path = os.path.join(p, n)
            if _is_directory(path):
                out.skipped_directories.append(path)
            else:
                out.cores.append((path, refusal(path)))
    return out


def _is_directory(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return False
