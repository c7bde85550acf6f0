"""What an object records about how it was built, and what it does not.

Sources: the ``.comment`` section (one NUL-separated string per toolchain
part: "GCC: (Debian 12.2.0-14) 12.2.0", "rustc version 1.95.0 (...)",
"Linker: LLD 22.1.2"), each compile unit's ``DW_AT_producer`` (GCC records
its command-line switches there by default, -grecord-gcc-switches; rustc
writes "clang LLVM (rustc version ...)" and no flags) and Rust's compile-unit
names, which end in "<crate>.<hash>-cgu.<N>": a crate whose only unit is
cgu.0 was built with codegen-units=1 (or is small enough to fit one).
"""
from __future__ import annotations

import functools
import re

from .. import elf_file
from ..errors import GdbextError
from ..record import field, record

MAX_UNITS = 400           # compile units read for producers and names
MAX_COMMENT = 1 << 16


@record
class BuildInfo:
    """What the object says about how it was built."""
    comment: list[str] = field(default_factory=list)
    producers: list[str] = field(default_factory=list)      # distinct DW_AT_producer
    rust_units: dict[str, list[int]] = field(default_factory=dict)  # crate -> cgu numbers
    units_read: int = 0
    debug_info: bool = False

    @property
    def language(self) -> str | None:
        if any(p.startswith("clang LLVM (rustc") for p in self.producers) or \
                any(c.startswith("rustc ") for c in self.comment):
            return "rust"
        if any(p.startswith("GNU C++") for p in self.producers):
            return "c++"
        if any(p.startswith("GNU C") for p in self.producers):
            return "c"
        return None

    def not_recorded(self) -> list[str]:
        if self.language == "rust":
            return ["opt-level", "target-cpu/target-feature", "codegen-units (only hinted "
                    "by the unit names)"]
        if not self.debug_info:
            return ["compiler flags (no debug info: DW_AT_producer is absent)"]
        if any(" -O" in p for p in self.producers):
            return []
        return ["optimisation level (the producer lists no -O switch)"]

    def describe(self) -> list[str]:
        lines = []
        if self.comment:
            lines.append(".comment: " + "; ".join(self.comment))
        for p in self.producers[:3]:
            lines.append(f"DW_AT_producer: {p}")
        if len(self.producers) > 3:
            lines.append(f"... and {len(self.producers) - 3} more producers")
        own = {c: n for c, n in self.rust_units.items()}
        if own:
            shown = ", ".join(f"{crate} ({_units(n)})" for crate, n in sorted(own.items())[:6])
            lines.append(f"Rust compile units: {shown}"
                         + ("; a crate with only cgu.0 was built with codegen-units=1 or "
                            "fitted in one unit" if any(n == [0] for n in own.values())
                            else ""))
        missing = self.not_recorded()
        if missing:
            lines.append("not recorded: " + ", ".join(missing))
        return lines

    def to_json(self) -> dict:
        return {"comment": self.comment, "producers": self.producers,
                "rust_codegen_units": self.rust_units, "language": self.language,
                "units_read": self.units_read, "not_recorded": self.not_recorded()}


def _units(numbers: list[int]) -> str:
    return "cgu." + ",".join(str(n) for n in numbers[:8]) + ("..." if len(numbers) > 8 else "")


def read_build_info(path: str) -> BuildInfo:
    return _read(*elf_file.file_key(path))


@functools.lru_cache(maxsize=8)
def _read(path: str, _size: int, _mtime: int) -> BuildInfo:
    info = BuildInfo()
    sections = {s.name: s for s in elf_file.sections(path)}
    comment = sections.get(".comment")
    if comment is not None and comment.size <= MAX_COMMENT:
        with open(path, "rb") as fh:
            elf_file.seek(fh, comment.offset)
            raw = fh.read(comment.size)
        seen = []
        for part in raw.split(b"\0"):
            text = part.decode("utf-8", "replace").strip()
            if text and text not in seen:
                seen.append(text)
        info.comment = seen
    if ".debug_info" in sections:
        info.debug_info = True
        _read_units(path, info)
    return info


def _read_units(path: str, info: BuildInfo) -> None:
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with open(path, "rb") as fh:
            dwarf = ELFFile(fh).get_dwarf_info(relocate_dwarf_sections=False)
            for i, cu in enumerate(dwarf.iter_CUs()):
                if i >= MAX_UNITS:
                    break
                info.units_read += 1
                top = cu.get_top_DIE()
                producer = _attr(top, "DW_AT_producer")
                if producer and producer not in info.producers:
                    info.producers.append(producer)
                name = _attr(top, "DW_AT_name") or ""
                m = re.search(r"/@/([A-Za-z0-9_]+)\.[0-9a-f]+-cgu\.(\d+)$", name)
                if m:
                    units = info.rust_units.setdefault(m.group(1), [])
                    units.append(int(m.group(2)))
    except (ELFError, ValueError, KeyError, IndexError, AttributeError, OSError) as exc:
        raise GdbextError(f"{path}: debug info unreadable: {exc}") from None
    for crate in info.rust_units:
        info.rust_units[crate] = sorted(set(info.rust_units[crate]))


def _attr(die, name: str) -> str | None:
    attr = die.attributes.get(name)
    if attr is None:
        return None
    value = attr.value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
