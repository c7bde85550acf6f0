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
from dataclasses import dataclass, field

from .. import target
from ..errors import GdbextError

LIBC = re.compile(r"/libc(?:\.so\.6|-2\.\d+\.so|\.so)$")
ENVIRON_SYMBOLS = ("__environ", "environ", "_environ")
MAX_VARIABLES = 8192
MAX_LENGTH = 32768


@dataclass
class Environment:
    variables: dict[str, str]
    source: str
    warnings: list[str] = field(default_factory=list)


def _dynsym_and_bias(path: str, runtime_sections: dict[str, int]) -> tuple[int, int]:
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with open(path, "rb") as fh:
            elf = ELFFile(fh)
            dynsym = elf.get_section_by_name(".dynsym")
            value = None
            for name in ENVIRON_SYMBOLS:
                syms = dynsym.get_symbol_by_name(name) if dynsym else None
                if syms:
                    value = syms[0]["st_value"]
                    break
            if value is None:
                raise GdbextError(f"{path} exports no environ")
            for section in elf.iter_sections():
                if section.name in runtime_sections and section["sh_addr"]:
                    return value, runtime_sections[section.name] - section["sh_addr"]
    except (OSError, ELFError) as exc:
        raise GdbextError(f"cannot read {path}: {exc}") from None
    raise GdbextError(f"no section of {path} is loaded")


def _from_libc() -> Environment:
    libc = next(((p, s) for p, s in target.object_sections().items() if LIBC.search(p)), None)
    if libc is None:
        raise GdbextError("no libc in the target")
    value, bias = _dynsym_and_bias(*libc)
    envp = target.read_pointer(value + bias)
    variables: dict[str, str] = {}
    warnings = []
    for i in range(MAX_VARIABLES):
        entry = target.read_pointer(envp + 8 * i)
        if entry == 0:
            break
        raw = target.read_c_string(entry, MAX_LENGTH).decode("utf-8", "replace")
        name, _, val = raw.partition("=")
        variables.setdefault(name, val)
    else:
        warnings.append(f"environment truncated at {MAX_VARIABLES} variables")
    return Environment(variables, f"libc's environ in {libc[0]}", warnings)


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
            name, _, val = entry.decode("utf-8", "replace").partition("=")
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
