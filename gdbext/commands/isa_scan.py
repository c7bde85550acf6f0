"""isa-scan: which CPU features an object's code uses, and where this CPU falls short."""
from __future__ import annotations

import os

from .. import elf_file, target
from ..errors import GdbextError
from . import options
from .base import GdbextCommand
from .cpu_source import cpu_for

PARSER = options.isa_scan()    # options.py: shared with the shell CLI

EM_X86_64 = "EM_X86_64"
PARALLEL_BYTES = 4 << 20        # below this, starting workers costs more than it saves


class IsaScanCommand(GdbextCommand):
    # help: commands/help.py
    NAME = "isa-scan"
    PARSER = PARSER
    NEEDS = ("iced_x86", "tabulate", "elftools", "archspec")

    def run(self, args):
        from ..isa.bounds import function_bounds
        from ..isa.scan import scan
        from ..isa.scan_report import IsaScanReport

        from ..isa.scan_workers import usable_cores

        if args.limit < 0:
            raise GdbextError("--limit must be 0 or more")
        if args.jobs is not None and not 1 <= args.jobs <= 256:
            raise GdbextError("--jobs must be between 1 and 256")
        paths = self._paths(" ".join(args.object).strip())
        if args.level and args.cpu:
            raise GdbextError("--level judges against every x86-64 level: drop --cpu")
        if args.cpu or args.level:
            from ..isa.profiles import profile_cpu
            cpu, warnings = profile_cpu(args.cpu or "x86_64"), []
        else:
            cpu, warnings = cpu_for(target.kind())
        results = []
        for path in paths:
            machine = elf_file.machine(path)
            if machine != EM_X86_64:
                if len(paths) == 1:
                    raise GdbextError(f"unsupported architecture: {path} is {machine}, "
                                      "isa-scan reads x86-64 code only")
                warnings.append(f"skipped {path}: {machine}")
                continue
            sections = elf_file.code_sections(path)
            size = sum(len(sec.data) for sec in sections)
            jobs = args.jobs or (usable_cores() if size > PARALLEL_BYTES else 1)
            bounds = function_bounds(path, sections)
            result = scan(path, sections, bounds.functions, cpu, jobs)
            result.functions, result.from_fdes = len(bounds.functions), bounds.from_fdes
            if bounds.fde_note and not bounds.from_symbols:
                warnings.append(f"no function bounds: {bounds.fde_note}, and no sized "
                                "symbols")
            results.append(result)
        if args.level:
            from ..isa.level_report import LevelReport, object_level
            return LevelReport([object_level(r) for r in results], results, args.limit,
                               warnings)
        return IsaScanReport(results, cpu, args.limit, warnings)

    @staticmethod
    def _paths(spec: str) -> list[str]:
        if spec and spec != "all" and os.path.isfile(spec):
            return [spec]
        if target.kind() != "none":     # the target's own objects: gdb names its machine
            target.require_x86_64()
        if not spec:
            exe = target.executable()
            if exe is None:
                raise GdbextError("no program loaded: give a file (isa-scan PATH) or load "
                                  "one (file PROG, core-file CORE or attach PID)")
            return [exe]
        loaded = [p for p in target.object_sections() if os.path.isfile(p)]
        if spec == "all":
            if not loaded:
                raise GdbextError("no loaded objects: 'all' needs a program or process")
            return loaded
        matches = [p for p in loaded if spec in os.path.basename(p)]
        if len(matches) == 1:
            return matches
        if matches:
            raise GdbextError(f"'{spec}' matches {len(matches)} objects: "
                              + ", ".join(os.path.basename(m) for m in matches))
        raise GdbextError(f"no such file or loaded object: {spec}")
