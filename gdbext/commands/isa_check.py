"""isa-check: which CPUID features the faulting instruction needs, and does this CPU have them."""
from __future__ import annotations

import os

from .. import elf_file, target
from ..errors import GdbextError
from . import options
from .base import GdbextCommand, max_frames
from .cpu_source import cpu_for

PARSER = options.isa_check()    # options.py: shared with the shell CLI

SIGILL, SIGBUS, SIGSEGV = 4, 7, 11


class IsaCheckCommand(GdbextCommand):
    # help: commands/help.py
    NAME = "isa-check"
    PARSER = PARSER
    NEEDS = ("iced_x86", "tabulate", "elftools", "archspec")

    def run(self, args):
        return analyse(args)


def analyse(args, embedded: bool = False):
    """The isa-check report for parsed ``args``.  ``embedded``: run by
    crash-triage, which shows the frames and the Python stack itself."""
    from ..isa.decode import MAX_INSTRUCTION_LENGTH, decode
    from ..isa.report import IsaCheckReport
    from ..isa.verdict import judge

    target.require_x86_64()
    kind = target.kind()
    expression = " ".join(args.address).strip()
    pc = level = None
    try:
        pc, level = target.selected_pc()
    except GdbextError:
        if not expression:      # no frame and no ADDRESS: say what to do
            raise
    address = target.eval_address(expression) if expression else pc
    code = target.read_code(address, MAX_INSTRUCTION_LENGTH)
    ins = decode(code, address, syntax=target.disassembly_flavor())
    if args.cpu:
        from ..isa.profiles import profile_cpu
        cpu, warnings = profile_cpu(args.cpu), []
    else:
        cpu, warnings = cpu_for(kind)
        if cpu is not None and cpu.source == "process":
            _add_kernel_view(cpu, kind)
    signal = None
    if address == pc and level == 0:
        info = target.stop_signal()
        source = "siginfo"
        if info is None and kind == "core":
            info, source = target.core_signal(), "pr_cursig"   # qemu-user cores
        if info is not None:
            signal = {"signo": info.signo, "code": info.code, "addr": info.addr,
                      "source": source}
    where = target.locate(address)
    report = IsaCheckReport(ins, judge(ins, cpu), cpu, kind, where.symbol, where.offset,
                            where.function, where.objfile, signal, warnings)
    if signal is not None and signal["code"] is None:
        # No siginfo was read: say what the CPU does, not which si_code it gave.
        report.judgement.reasons = [r.replace(", delivered as SIGILL (ILL_ILLOPN)",
                                              ", which Linux delivers as SIGILL")
                                    for r in report.judgement.reasons]
    report.warnings.extend(_signal_warnings(report))
    _add_context(report, kind, where)
    if kind in ("live", "core", "remote") and address == pc and not embedded:
        _add_frames(report, max_frames(args))
    if code[:2] == b"\0\0" and ins.mnemonic == "add":
        report.warnings.append("the code bytes read as zeros: the core probably does not "
                               "contain this file-backed page and gdb cannot open the file "
                               "it maps (point gdb at the same binary: file PATH, "
                               "set solib-search-path)")
    return report


def _add_frames(report, bound: int) -> None:
    """The stopped thread's frames (stack scanning past an asm kernel) and,
    in a Python process, the Python line that led here."""
    from . import python_runtime
    from .frame_walk import selected_frames
    report.frames = selected_frames(bound, report.warnings)
    report.python = python_runtime.fault_view(report.frames, bound, report.warnings)


def _add_context(report, kind: str, where) -> None:
    """Model versus features, the kernel a library dispatched to, the process's
    dispatch knobs, AMX permission, the kernel's view of the CPU, and hints.
    Each step that fails becomes a warning, never a failed command."""
    from ..isa.dispatch import recognise

    cpu = report.cpu
    name = report.function or report.symbol
    found = recognise(name, where.objfile)
    failing = report.judgement.verdict in ("unsupported", "os-disabled") or (
        report.signal is not None and report.signal["signo"] == SIGILL)
    if not failing:
        # The instruction runs here: name the kernel variant, and read nothing
        # more -- the first call stays cheap in a large library.
        if found is not None:
            lib, kernel = found
            report.variant_note = f"{name} is {lib.name}'s {kernel.variant} variant"
        return
    from ..isa.dispatch import diagnose, variants_in
    from ..isa.model import implied_microarch
    from ..isa.verdict import amx_signal_hint
    from ..knowledge.dispatch import KNOBS
    from .process_env import read_environment

    report.model = implied_microarch(cpu)
    _add_build_target(report, where.objfile)
    if found is None and report.judgement.verdict not in ("unsupported", "os-disabled"):
        return
    env = read_environment(kind)
    if env is not None:
        report.environment = {"source": env.source, "knobs": {
            k: v for k, v in env.variables.items() if k in KNOBS}}
        report.warnings.extend(env.warnings)
    if found is not None:
        lib, _ = found
        available = uses = chosen = None
        try:                # the build that ran, read here (a container's, gdbserver's)
            path = target.file_for(where.objfile) if where.objfile else None
        except GdbextError:
            path = None
        if path and lib.symbol_pattern:
            try:
                available = variants_in(elf_file.function_names(path), lib) or None
                uses = _variant_uses(path, lib, report.warnings)
            except GdbextError as exc:
                report.warnings.append(f"cannot list {lib.name} variants: {exc}")
        if path and lib.name == "OpenBLAS" and kind in ("live", "core", "remote"):
            chosen = _openblas_choice(path, report.warnings)
        report.dispatch = diagnose(name, where.objfile, cpu,
                                   env.variables if env and env.source != "none" else None,
                                   available, report.model, uses, chosen)
        if report.dispatch is not None and path:
            from ..isa.library_facts import python_package, version_string
            facts = report.dispatch.library_facts
            facts["version"] = version_string(path, lib.name)
            facts["python_package"] = python_package(path)
        report.hints.extend(report.dispatch.hints)
    elif report.judgement.missing:
        from ..isa.build_target import advice
        report.hints.extend(advice(report.build, cpu, report.cpu_level,
                                   report.judgement.missing))
    if report.signal:
        report.hints.extend(amx_signal_hint(report.judgement, report.signal["signo"],
                                            report.signal["code"]))


def _add_build_target(report, path: str | None) -> None:
    """What the object was built for (-march in DW_AT_producer, the ISA note)
    and the x86-64 level of the CPU that ran it."""
    from ..isa.build_target import read_build_target
    from ..isa.levels import cpu_level

    report.cpu_level = cpu_level(report.cpu)
    if not path:
        return
    try:
        report.build = read_build_target(target.file_for(path))   # the build that ran
    except GdbextError as exc:
        report.warnings.append(f"cannot read what {os.path.basename(path)} was built for: "
                               f"{exc}")


def _variant_uses(path: str, lib, warnings: list[str]):
    """variant -> VariantUse, decoded from the library on first use; a failure
    becomes one warning and the table's expectation.  Its ``lacks(variant,
    lacking)`` answers "does it need a feature this CPU lacks" from as few
    instructions as show it (isa/variants.variant_lacks)."""
    from ..isa.variants import variant_lacks, variant_use

    def failed(variant: str, exc: Exception) -> None:
        if not any("cannot decode" in w for w in warnings):
            warnings.append(f"cannot decode {lib.name}'s {variant} functions: {exc}")

    def uses(variant: str):
        try:
            return variant_use(path, lib.symbol_pattern, variant)
        except (GdbextError, ValueError) as exc:
            failed(variant, exc)
            return None

    def lacks(variant: str, lacking) -> bool | None:
        try:
            return variant_lacks(path, lib.symbol_pattern, variant, lacking)
        except (GdbextError, ValueError) as exc:
            failed(variant, exc)
            return None
    uses.lacks = lacks
    return uses


def _openblas_tables(path: str) -> tuple[int, dict[str, int], str]:
    """(``gotoblas``'s link-time address, the ``gotoblas_<CORE>`` tables,
    where they were found).  Debian's OpenBLAS and numpy <= 2.4's wheel export
    them in ``.dynsym``; numpy 2.5's wheel keeps them local, in ``.symtab``
    only (nm without -D)."""
    try:
        return (elf_file.dynamic_symbol(path, ("gotoblas",))[1],
                elf_file.dynamic_symbols_with_prefix(path, "gotoblas_"), ".dynsym")
    except GdbextError:
        local = elf_file.local_symbols(path, rb"gotoblas(?:_[A-Z0-9_]+)?", (b"gotoblas",))
        if "gotoblas" not in local:
            raise GdbextError(f"{path} has no gotoblas in .dynsym or .symtab") from None
        return (local.pop("gotoblas")[0], {n: v[0] for n, v in local.items()},
                ".symtab (local symbols)")


def _openblas_choice(path: str, warnings: list[str]) -> dict | None:
    """The core OpenBLAS's ``gotoblas`` pointer names: it points at one of the
    ``gotoblas_<CORE>`` tables (driver/others/dynamic.c)."""
    try:
        value, tables, where = _openblas_tables(path)
        bias = target.load_bias(path, target.object_sections())
        if bias is None:
            raise GdbextError(f"no section of {path} is loaded")
        pointer = target.read_pointer(value + bias)
    except GdbextError as exc:
        warnings.append(f"cannot read OpenBLAS's gotoblas: {exc}")
        return None
    if pointer == 0:
        return {"core": None, "pointer": 0,
                "source": "gotoblas is NULL: the library has not initialised its dispatch"}
    for name, value in tables.items():
        if value + bias == pointer and name[len("gotoblas_"):].isupper():
            return {"core": name[len("gotoblas_"):], "pointer": pointer, "symbol": name,
                    "source": f"gotoblas = &{name}, read from the process (symbols: "
                              f"{where})"}
    return {"core": None, "pointer": pointer,
            "source": f"gotoblas = {pointer:#x}, which is no gotoblas_<CORE> table"}


def _add_kernel_view(cpu, kind: str) -> None:
    """AT_HWCAP/AT_HWCAP2 from auxv (/proc/cpuinfo's flags: cpu_source)."""
    vector = target.auxv()
    cpu.hwcap, cpu.hwcap2 = vector.get("AT_HWCAP"), vector.get("AT_HWCAP2")
    leaf1 = cpu.leaves.get((1, 0))
    if cpu.hwcap is not None and leaf1 is not None and cpu.hwcap != leaf1[3]:
        cpu.notes.append(f"AT_HWCAP {cpu.hwcap:#x} differs from raw CPUID.1:EDX "
                         f"{leaf1[3]:#x}: the kernel masked features")


def _signal_warnings(report) -> list[str]:
    sig = report.signal
    verdict = report.judgement.verdict
    if sig is None:
        return []
    if sig["signo"] == SIGILL and verdict == "supported" and not report.instruction.trap:
        return ["the thread got SIGILL although this CPU runs this instruction: the core "
                "may come from another CPU, the code may have changed since, or the pc "
                "was moved by a signal handler"]
    if sig["signo"] in (SIGSEGV, SIGBUS) and verdict == "supported" and not report.instruction.privileged:
        return [f"the thread stopped with {report.signal_json()['name']} "
                f"({report.signal_json()['code_name']}): a memory-access fault, not an "
                "instruction-set problem"]
    if sig["signo"] != SIGILL and verdict in ("unsupported", "os-disabled"):
        return [f"the thread stopped with {report.signal_json()['name']}, not SIGILL: this "
                "instruction has not been executed yet on this CPU"]
    return []
