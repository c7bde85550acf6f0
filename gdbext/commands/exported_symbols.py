"""Run-time addresses of symbols a loaded library exports, from the library's
own ``.dynsym`` plus its load bias -- never by name through gdb, which with
libc6-dbg installed resolves ``environ`` to ld.so's private copy, and which
without debug info knows no sizes."""
from __future__ import annotations

import re
from collections import namedtuple

from .. import elf_file, target
from ..errors import GdbextError


Exported = namedtuple("Exported", "path address size")    # address: run-time


def find(object_pattern: str, names: tuple[str, ...], loaded=None) -> Exported:
    """The first of ``names`` exported by the loaded object matching the regex
    (``loaded``: target.object_sections(), when the caller has it already)."""
    loaded = loaded if loaded is not None else target.object_sections()
    path = next((p for p in loaded if re.search(object_pattern, p)), None)
    if path is None:
        raise GdbextError(f"no object matching {object_pattern} in the target")
    _, value, size = elf_file.dynamic_symbol(path, names)
    bias = target.load_bias(path, loaded)
    if bias is None:
        raise GdbextError(f"no section of {path} is loaded")
    return Exported(path, value + bias, size)
