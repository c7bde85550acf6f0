"""The inferior's environment, read from its memory (live, remote and cores).

libc's ``environ`` is what ``getenv()`` -- and so every library's dispatch code
-- sees, including ``setenv()`` changes.  It is found through libc's own
``.dynsym`` plus libc's load address: with libc6-dbg installed the symbol name
resolves to ld.so's stale private copy instead.  A live process falls back to
/proc/PID/environ (the environment at exec).
"""
from __future__ import annotations

import os
import re

from .. import target, text
from ..errors import GdbextError
from ..knowledge.bounds import hit
from . import exported_symbols
from ..record import field, record

LIBC = r"/libc(?:\.so\.6|-2\.\d+\.so|\.so)$"
ENVIRON_SYMBOLS = ("__environ", "environ", "_environ")
MAX_LENGTH = 32768                  # bytes of one variable


@record
class Environment:
    """The process's environment variables and where they were read."""
    variables: dict[str, str]
    source: str
    warnings: list[str] = field(default_factory=list)


def _environ_symbol() -> exported_symbols.Exported:
    """An executable that names ``environ`` gets a copy relocation: the
    variable lives in the executable's .bss and libc's own copy stays unused
    (NULL) -- CPython's ``python3`` is one.  So the executable's definition
    wins when it exports one."""
    exe = target.executable()
    if exe:
        try:
            return exported_symbols.find("^" + re.escape(exe) + "$", ENVIRON_SYMBOLS)
        except GdbextError:
            pass
    return exported_symbols.find(LIBC, ENVIRON_SYMBOLS)


def _from_libc() -> Environment:
    libc = _environ_symbol()
    envp = target.read_pointer(libc.address)
    variables: dict[str, str] = {}
    warnings = []
    bound = target.bound("max-nodes")
    for i in range(bound):
        entry = target.read_pointer(envp + 8 * i)
        if entry == 0:
            break
        raw = text.decode(target.read_c_string(entry, MAX_LENGTH))
        name, _, val = raw.partition("=")
        variables.setdefault(name, val)
    else:
        warnings.append(f"environment: {hit('max-nodes', bound)}")
    return Environment(variables, f"environ in {libc.path}", warnings)


def _from_proc() -> Environment:
    path = f"/proc/{target.pid()}/environ"
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise GdbextError(f"cannot read {path}: {exc.strerror}") from None
    variables = {}
    for entry in raw.split(b"\0"):
        if entry:
            name, _, val = text.decode(entry).partition("=")
            variables.setdefault(name, val)
    return Environment(variables, f"{path} (the environment at exec)")


def read_environment(kind: str) -> Environment | None:
    """The environment, or None with nothing to read; never raises."""
    if kind not in ("live", "core", "remote"):
        return None
    try:
        return _from_libc()
    except GdbextError as exc:
        problem = str(exc)
    if kind == "live" and os.path.exists(f"/proc/{target.pid()}"):
        try:
            env = _from_proc()
            env.warnings.append(f"libc's environ not readable ({problem})")
            return env
        except GdbextError as exc:
            problem += f"; {exc}"
    return Environment({}, "none", [f"environment not readable: {problem}"])
