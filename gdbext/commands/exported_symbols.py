"""Run-time addresses of symbols a loaded library exports, from the library's
own ``.dynsym`` plus its load bias (target.exported_symbols: the verified
file, else the object's dynamic section in memory) -- never by name through
gdb, which with libc6-dbg installed resolves ``environ`` to ld.so's private
copy, and which without debug info knows no sizes."""
from __future__ import annotations

import re
from collections import namedtuple

from .. import target
from ..errors import GdbextError


Exported = namedtuple("Exported", "path address size")    # address: run-time


def find(object_pattern: str, names: tuple[str, ...], loaded=None) -> Exported:
    """The first of ``names`` exported by the loaded object matching the regex
    (``loaded``: target.object_sections(), when the caller has it already);
    an object gdb does not list (qemu's stub lists none) is looked for on the
    dynamic linker's own list."""
    loaded = loaded if loaded is not None else target.object_sections()
    path = next((p for p in loaded if re.search(object_pattern, p)), None) or next(
        (m.name for m in target.link_maps() if m.name and re.search(object_pattern, m.name)),
        None)
    if path is None:
        raise GdbextError(f"no object matching {object_pattern} in the target")
    found = target.exported_symbols(path, names, loaded)
    name = next((n for n in names if n in found), None)
    if name is None:
        raise GdbextError(f"{path} exports none of {', '.join(names)}")
    return Exported(path, *found[name])
