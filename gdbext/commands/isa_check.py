"""isa-check: which CPUID features the faulting instruction needs, and does this CPU have them."""
from __future__ import annotations

from .. import target
from ..errors import GdbextError
from .base import GdbextCommand, parser
from .cpu_source import cpu_for

PARSER = parser("isa-check")
PARSER.add_argument("--cpu", metavar="NAME",
                    help="check against a named microarchitecture or level (archspec)")
PARSER.add_argument("address", nargs="*", metavar="ADDRESS",
                    help="any gdb expression; default: the selected frame's pc")

SIGILL, SIGBUS, SIGSEGV = 4, 7, 11


class IsaCheckCommand(GdbextCommand):
    """Decode an instruction and check its CPUID features against the CPU.

Usage: isa-check [--json] [--cpu NAME] [ADDRESS]

Decodes the instruction at the selected frame's pc (or at ADDRESS, any gdb
expression), names the exact CPUID features it needs in /proc/cpuinfo
spelling with their leaf/register/bit, the XCR0 state the OS must enable,
and checks both against the CPU the process ran on: glibc's CPUID snapshot
in the process or core, else this machine's CPUID and XGETBV.  With
ADDRESS it also works with no process, from the executable file's bytes.

Verdicts: supported, unsupported (the CPU lacks a feature), os-disabled
(the CPU has it, XCR0 does not enable its state), undecodable (garbage, or
an ISA newer than the decoder such as APX), unknown.  ud2 and int3 are
named as deliberate traps.

Options:
  --json        print one JSON object (schema "gdbext/isa-check/1")
  --cpu NAME    judge against a named CPU instead: x86-64-v2/v3/v4, haswell,
                skylake_avx512, icelake, sapphirerapids, zen..zen5,
                piledriver... (archspec's microarchitecture data)

Examples:
  isa-check                      the instruction that raised SIGILL
  isa-check --json               the same, as JSON
  isa-check $pc+6                the next instruction
  isa-check dgemm_kernel+22108   an instruction in a file, no process needed
  isa-check --cpu x86-64-v3      would this run on any x86-64-v3 machine?"""

    NAME = "isa-check"
    PARSER = PARSER
    NEEDS = ("iced_x86", "tabulate", "elftools", "archspec")

    def run(self, args):
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
        signal = None
        if address == pc and level == 0:
            info = target.stop_signal()
            if info is not None:
                signal = {"signo": info.signo, "code": info.code, "addr": info.addr}
        where = target.locate(address)
        report = IsaCheckReport(ins, judge(ins, cpu), cpu, kind, where.symbol, where.offset,
                                where.function, where.objfile, signal, warnings)
        report.warnings.extend(_signal_warnings(report))
        if code[:2] == b"\0\0" and ins.mnemonic == "add":
            report.warnings.append("the code bytes read as zeros: the core probably does not "
                                   "contain this file-backed page and gdb cannot open the file "
                                   "it maps (point gdb at the same binary: file PATH, "
                                   "set solib-search-path)")
        return report


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
