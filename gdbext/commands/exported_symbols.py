"""Run-time addresses of symbols a loaded library exports, from the library's
own ``.dynsym`` plus its load bias -- never by name through gdb, which with
libc6-dbg installed resolves ``environ`` to ld.so's private copy, and which
without debug info knows no sizes."""
from __future__ import annotations

import re
from typing import NamedTuple

from .. import elf_file, target
from ..errors import GdbextError


class Exported(NamedTuple):
    path: str
    address: int          # run-time
    size: int


def find(object_pattern: str, names: tuple[str, ...]) -> Exported:
    """The first of ``names`` exported by the loaded object matching the regex."""
    loaded = next(((p, s) for p, s in target.object_sections().items()
                   if re.search(object_pattern, p)), None)
    if loaded is None:
        raise GdbextError(f"no object matching {object_pattern} in the target")
    path, runtime = loaded
    _, value, size = elf_file.dynamic_symbol(path, names)
    for name, link_address in elf_file.section_addresses(path).items():
        if name in runtime:
            return Exported(path, value + runtime[name][0] - link_address, size)
    raise GdbextError(f"no section of {path} is loaded")
