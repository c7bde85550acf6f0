"""Run-time addresses of symbols a loaded library exports, from the library's
own ``.dynsym`` plus its load bias -- never by name through gdb, which with
libc6-dbg installed resolves ``environ`` to ld.so's private copy, and which
without debug info knows no sizes."""
from __future__ import annotations

import re
from typing import NamedTuple

from .. import target
from ..errors import GdbextError


class Exported(NamedTuple):
    path: str
    address: int          # run-time
    size: int


def find(object_pattern: str, names: tuple[str, ...]) -> Exported:
    """The first of ``names`` exported by the loaded object matching the regex."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    pattern = re.compile(object_pattern)
    loaded = next(((p, s) for p, s in target.object_sections().items() if pattern.search(p)),
                  None)
    if loaded is None:
        raise GdbextError(f"no object matching {object_pattern} in the target")
    path, runtime = loaded
    try:
        with open(path, "rb") as fh:
            elf = ELFFile(fh)
            dynsym = elf.get_section_by_name(".dynsym")
            sym = None
            for name in names:
                found = dynsym.get_symbol_by_name(name) if dynsym else None
                if found:
                    sym = found[0]
                    break
            if sym is None:
                raise GdbextError(f"{path} exports none of {', '.join(names)}")
            for section in elf.iter_sections():
                if section.name in runtime and section["sh_addr"]:
                    bias = runtime[section.name] - section["sh_addr"]
                    return Exported(path, sym["st_value"] + bias, sym["st_size"])
    except (OSError, ELFError) as exc:
        raise GdbextError(f"cannot read {path}: {exc}") from None
    raise GdbextError(f"no section of {path} is loaded")
