"""What an object was built for: the CPU its compiler was told to target.

Sources, each reported as found:
- ``DW_AT_producer`` (read by spill/provenance.py, shared with spill-audit):
  GCC records its switches there (-grecord-gcc-switches, on by default), so
  ``-march=``, ``-mcpu=`` and ``-m<feature>`` appear; rustc writes "clang LLVM
  (rustc version ...)" and records neither ``target-cpu`` nor
  ``target-feature`` anywhere in the object.
- ``.note.gnu.property``'s x86 ISA level bits: ``GNU_PROPERTY_X86_ISA_1_NEEDED``
  (GCC's -mneeded) and ``GNU_PROPERTY_X86_ISA_1_USED`` (gas -mx86-used-note).
  The linker ORs the objects' notes, and crt files carry "baseline", so a
  program built -march=x86-64-v3 without -mneeded says "needed: baseline".

Pure: no gdb import.
"""
from __future__ import annotations

import re
import struct

from .. import elf_file
from ..record import field, record
from . import levels

# binutils include/elf/common.h: GNU_PROPERTY_X86_UINT32_OR_LO + 2 and
# GNU_PROPERTY_X86_UINT32_OR_AND_LO + 2; checked against readelf -n on an
# object built with gcc -mneeded -Wa,-mx86-used-note=yes.
ISA_1_NEEDED, ISA_1_USED = 0xC0008002, 0xC0010002
NT_GNU_PROPERTY_TYPE_0 = 5
# GNU_PROPERTY_X86_ISA_1_BASELINE, _V2, _V3, _V4 (same header)
ISA_BITS = ((1, "x86-64-baseline"), (2, "x86-64-v2"), (4, "x86-64-v3"), (8, "x86-64-v4"))
MAX_NOTE = 1 << 16

_MARCH = re.compile(r"(?:^|\s)-m(arch|cpu)=(\S+)")
_MFEATURE = re.compile(r"(?:^|\s)-m(no-)?(avx\w*|sse[\w.]*|ssse3|fma4?|bmi2?|lzcnt|popcnt|"
                       r"f16c|movbe|aes|pclmul|sha|vaes|vpclmulqdq|gfni|adx|xsave\w*)"
                       r"(?=\s|$)")
# GCC switch -> /proc/cpuinfo name, where they differ
_SWITCH_NAMES = {"sse3": "pni", "lzcnt": "abm", "bmi": "bmi1", "pclmul": "pclmulqdq",
                 "sha": "sha_ni", "sse4.1": "sse4_1", "sse4.2": "sse4_2"}


@record
class BuildTarget:
    """The build's intent, as the object records it."""
    march: str | None = None              # -march=/-mcpu= value as written
    march_source: str | None = None       # the producer it came from
    archspec: str | None = None           # its archspec name, when archspec knows it
    level: int | None = None              # the psABI level of that target (index)
    features: list[str] = field(default_factory=list)   # -m<feature> switches
    isa_needed: list[str] | None = None   # .note.gnu.property, None when absent
    isa_used: list[str] | None = None
    language: str | None = None
    not_recorded: str | None = None       # why the intent is not known

    @property
    def known(self) -> bool:
        return self.march is not None or bool(self.features)

    def target_features(self) -> frozenset[str]:
        """The features the build may use: its -march's, plus -m switches."""
        have = levels.target_features(self.archspec) if self.archspec else frozenset()
        return have | frozenset(self.features)

    def describe(self) -> list[str]:
        lines = []
        if self.march:
            text = f"-m{self.march_source}"
            if self.archspec and not self.archspec.startswith("x86_64"):
                text += f" (archspec {self.archspec}, {levels.level_name(self.level)})"
            lines.append(text + " in DW_AT_producer")
        if self.features:
            lines.append("-m" + " -m".join(self.features) + " in DW_AT_producer")
        if self.isa_needed is not None or self.isa_used is not None:
            parts = []
            if self.isa_needed is not None:
                parts.append("needed " + ", ".join(self.isa_needed or ["none"]))
            if self.isa_used is not None:
                parts.append("used " + ", ".join(self.isa_used or ["none"]))
            lines.append(".note.gnu.property x86 ISA " + "; ".join(parts)
                         + ("" if self.isa_used is not None else
                            " (the linker's OR of its objects' notes: only an object "
                            "built with -mneeded marks its level)"))
        if self.not_recorded:
            lines.append(self.not_recorded)
        return lines

    def to_json(self) -> dict:
        return {"march": self.march, "archspec": self.archspec,
                "level": levels.level_name(self.level) if self.archspec else None,
                "features": self.features, "isa_needed": self.isa_needed,
                "isa_used": self.isa_used, "language": self.language,
                "not_recorded": self.not_recorded}


def read_build_target(path: str) -> BuildTarget:
    """The object's recorded target; GdbextError when the file is unreadable."""
    from ..spill.provenance import read_build_info
    out = BuildTarget()
    info = read_build_info(path)
    out.language = info.language
    for producer in info.producers:
        m = None
        for m in _MARCH.finditer(producer):
            pass                                  # the last -march wins, as in GCC
        if m and out.march is None:
            out.march, out.march_source = m.group(2), f"{m.group(1)}={m.group(2)}"
            out.archspec = levels.march_target(out.march)
            if out.archspec:
                out.level = levels.level_of(levels.target_features(out.archspec))
        for f in _MFEATURE.finditer(producer):
            name = _SWITCH_NAMES.get(f.group(2), f.group(2).replace(".", "_"))
            if f.group(1):
                if name in out.features:
                    out.features.remove(name)
            elif name not in out.features:
                out.features.append(name)
    out.isa_needed, out.isa_used = _isa_note(path)
    if not out.known:
        if info.language == "rust":
            out.not_recorded = ("rustc records no target-cpu or target-feature in the "
                                "object (DW_AT_producer is 'clang LLVM (rustc ...)')")
        elif not info.debug_info:
            out.not_recorded = "no debug info: DW_AT_producer, which holds -march, is absent"
        elif info.producers:
            out.not_recorded = ("DW_AT_producer has no -march: built for the compiler's "
                                "default target")
    return out


def _isa_note(path: str) -> tuple[list[str] | None, list[str] | None]:
    section = next((s for s in elf_file.sections(path) if s.name == ".note.gnu.property"),
                   None)
    if section is None or section.size > MAX_NOTE:
        return None, None
    data = elf_file.section_data(path, section)
    needed = used = None
    pos = 0
    while pos + 12 <= len(data):                  # Elf64_Nhdr; notes are 8-aligned here
        namesz, descsz, kind = struct.unpack_from("<III", data, pos)
        name_end = pos + 12 + namesz
        desc = pos + 12 + (namesz + 3) // 4 * 4
        end = desc + descsz
        if end > len(data):
            break
        if kind == NT_GNU_PROPERTY_TYPE_0 and data[pos + 12:name_end] == b"GNU\0":
            p = desc
            while p + 8 <= end:
                pr_type, size = struct.unpack_from("<II", data, p)
                if size == 4 and pr_type in (ISA_1_NEEDED, ISA_1_USED):
                    bits = struct.unpack_from("<I", data, p + 8)[0]
                    names = [n for b, n in ISA_BITS if bits & b]
                    if pr_type == ISA_1_NEEDED:
                        needed = names
                    else:
                        used = names
                p += 8 + (size + 7) // 8 * 8
        pos = end + (-end % 8)
    return needed, used


def advice(build: BuildTarget | None, cpu, level: tuple, missing: list[str]) -> list[str]:
    """What to do about an instruction this CPU lacks, given what the object
    was built for and the level of the CPU that ran it."""
    from ..knowledge.cpuid_features import BY_NAME

    reached, _next, known = level
    here = levels.level_name(reached) if known and reached is not None else None
    need = levels.level_of(missing)
    need_text = levels.level_name(need)
    dispatch = ("or dispatch at run time: GCC/clang __attribute__((target_clones("
                f"\"arch={need_text}\", \"default\"))) on the hot functions, or a "
                "baseline build in the library path and this one under glibc-hwcaps/"
                f"{need_text}/ (ld.so picks by CPU, glibc 2.33+)") \
        if need is not None and need > 0 else \
        "or dispatch at run time on CPUID (target_clones, ifunc)"
    oldest = f"-march={here}" if here else "the fleet's oldest -march"
    if build is not None and build.known:
        lacks = sorted(f for f in build.target_features()
                       if BY_NAME.get(f) is not None and cpu is not None
                       and cpu.bit(BY_NAME[f]) is False)
        built = f"-m{build.march_source}" if build.march else \
            "-m" + " -m".join(build.features)
        if lacks:
            if build.archspec and not build.archspec.startswith("x86_64"):
                built += f", {levels.level_name(build.level)}"
            return [f"the object was built for a newer CPU ({built}) than the one that ran "
                    f"it ({here or 'level unknown'}, lacking " + ", ".join(lacks)
                    + f"): rebuild for the oldest CPU of the fleet ({oldest} runs here), "
                    f"{dispatch}"]
        return [f"the object was built for {built}, which this CPU runs: the instruction "
                "was chosen by the code itself (intrinsics with a target attribute, inline "
                "asm, or a CPU dispatcher that picked a variant this CPU lacks) - check the "
                "CPUID test that guards it"]
    if build is not None and build.language == "rust":
        return ["rustc does not record -C target-cpu/target-feature: if the crate was built "
                f"for a newer CPU (target-cpu=native, {need_text}), rebuild it for the "
                f"fleet's oldest CPU ({oldest.replace('-march=', 'target-cpu=')}), or guard "
                "the function with #[target_feature(enable = \"...\")] behind "
                "is_x86_feature_detected!(\"...\")"]
    return [f"the instruction needs {need_text}"
            + (f"; this CPU is {here}" if here else "")
            + f": if the object was built for a newer CPU (-march), rebuild for the oldest "
            f"CPU of the fleet ({oldest}), {dispatch}"]
