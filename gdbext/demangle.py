"""Readable names for C++ and Rust symbols, through binutils' c++filt.

Why c++filt: it is already a dependency (binutils, for objdump), it handles
C++ (Itanium ABI), Rust legacy (``_ZN...17h<hash>E``) and Rust v0 (``_R...``)
in its automatic mode, and it demangles thousands of names in one process
through stdin -- gdb's ``demangle`` command takes one name per call and only
inside gdb, while these reports are also built outside it (the batch CLI,
tests).  Without c++filt the names stay as they are.
"""
from __future__ import annotations

import functools
import re

# Rust legacy symbols end in a 16-hex-digit hash, which rustc's own demangler
# leaves out in its alternate form: so do we.
_RUST_HASH = re.compile(r"::h[0-9a-f]{16}$")
# v0 names carry each crate's disambiguator (core[c1f1a4ba060b9bfa]::...); the
# alternate form of rustc-demangle leaves it out too.
_RUST_CRATE_HASH = re.compile(r"(?<=[A-Za-z0-9_])\[[0-9a-f]{1,16}\](?=::)")
MANGLED = re.compile(r"^(?:_Z|__Z|_R)")
TIMEOUT = 20


@functools.lru_cache(maxsize=1)
def _tool() -> str | None:
    import shutil       # here: most reports have no mangled name, and shutil costs ~3 ms
    return shutil.which("c++filt")


def demangle_many(names) -> dict[str, str]:
    """name -> readable name, for every name that is mangled and demangles."""
    wanted = sorted({n for n in names if n and MANGLED.match(n) and "\n" not in n})
    out: dict[str, str] = {}
    todo = [n for n in wanted if n not in _cache]
    tool = _tool() if todo else None
    if tool:
        import subprocess
        try:
            proc = subprocess.run([tool], input="\n".join(todo) + "\n", capture_output=True,
                                  text=True, timeout=TIMEOUT, errors="replace")
            lines = proc.stdout.splitlines()
        except (OSError, subprocess.SubprocessError):
            lines = []
        if len(lines) == len(todo):
            for raw, readable in zip(todo, lines):
                if readable != raw and raw.startswith(("_R", "_ZN")):
                    readable = _RUST_CRATE_HASH.sub("", _RUST_HASH.sub("", readable))
                _cache[raw] = readable
    for n in wanted:
        readable = _cache.get(n)
        if readable and readable != n:
            out[n] = readable
    return out


def demangle(name: str | None) -> str | None:
    if not name:
        return name
    return demangle_many([name]).get(name, name)


def shorten(name: str, width: int = 90) -> str:
    """A table cell: long generic names keep their start and their end."""
    if len(name) <= width:
        return name
    keep = (width - 3) // 2
    return name[:keep] + "..." + name[-(width - 3 - keep):]


_cache: dict[str, str] = {}
