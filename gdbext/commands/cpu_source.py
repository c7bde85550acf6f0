"""Which CPU a command should judge against, in order of trust:

1. ``process``: glibc's CPUID snapshot in the target's memory -- the machine
   the process ran on, live, remote or in a core from elsewhere.  XCR0 comes
   from XGETBV (live native), the core's NT_X86_XSTATE note, or glibc's
   active bits (remote).
2. ``native``: this host's CPUID, for a file with no process or when the
   snapshot is missing (static or non-glibc programs) -- with a warning when
   the target may have run elsewhere.
"""
from __future__ import annotations

from .. import target
from ..errors import GdbextError
from ..knowledge.glibc_cpu_features import FUNCTION


def process_cpu(kind: str):
    from .. import core_file
    from ..isa.glibc_snapshot import locate_table, read_snapshot
    from ..isa.native_cpu import host_is_x86_64, read_native_cpu

    func = target.symbol_address(FUNCTION)
    if func is None:            # gdb lists no libc (qemu's stub): libc's own .dynsym
        from .exported_symbols import find
        try:
            func = find(r"/libc\.so", (FUNCTION,)).address
        except GdbextError as exc:
            raise GdbextError(f"no {FUNCTION} in the target (static or non-glibc program, or "
                              f"glibc older than 2.33; {exc})") from None
    code = target.read_code(func, 64)
    facts = read_snapshot(locate_table(code, func, target.read_bytes), target.read_bytes)
    if kind == "live" and host_is_x86_64():
        native = read_native_cpu()
        facts.xcr0, facts.xcr0_source = native.xcr0, "XGETBV on this host, where the live process runs"
    elif kind == "core":
        path = target.core_file_path()
        xcr0 = core_file.read(path).xcr0 if path else None
        if xcr0 is not None:
            facts.xcr0, facts.xcr0_source = xcr0, "core NT_X86_XSTATE note"
    if facts.xcr0 is None:
        facts.xcr0 = facts.xcr0_from_active()
        facts.xcr0_source = "inferred from glibc's active bits" if facts.xcr0 else None
    return facts


def cpu_for(kind: str):
    """(CpuFacts or None, warnings)."""
    cpu, warnings = _cpu_for(kind)
    if cpu is not None:
        attach_kernel_view(cpu, kind)
    return cpu, warnings


def same_cpu(a, b) -> bool:
    """The two records describe the same CPU model with the same feature bits
    (leaf 1's EBX holds the APIC ID of whichever core ran CPUID: skipped)."""
    def key(cpu):
        l1 = cpu.leaves.get((1, 0))
        return (cpu.vendor, l1 and (l1[0], l1[2] & ~(1 << 27), l1[3]), cpu.leaves.get((7, 0)),
                cpu.leaves.get((0x80000001, 0)))
    ka, kb = key(a), key(b)
    return None not in ka and ka == kb


def attach_kernel_view(cpu, kind: str) -> None:
    """/proc/cpuinfo's flags -- the kernel's view, which can hide what CPUID
    reports -- whenever the CPU record describes this host: native CPUID, a
    live process here, or a core whose CPUID matches this host's."""
    from ..isa.native_cpu import host_is_x86_64, read_native_cpu

    if not host_is_x86_64() or cpu.source == "profile" or kind == "remote":
        return
    if cpu.source == "native" or kind == "live":
        why = "this host's /proc/cpuinfo"
    else:
        try:
            native = read_native_cpu()
        except GdbextError:
            return
        if not same_cpu(cpu, native):
            return
        why = "this host's /proc/cpuinfo (the core's CPUID matches this host)"
    flags = proc_cpuinfo_flags()
    if flags is not None:
        cpu.kernel_flags, cpu.kernel_flags_source = flags, why


def proc_cpuinfo_flags() -> frozenset[str] | None:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return None


def _cpu_for(kind: str):
    from ..isa.native_cpu import host_is_x86_64, read_native_cpu

    warnings: list[str] = []
    if kind in ("live", "core", "remote"):
        try:
            return process_cpu(kind), warnings
        except GdbextError as exc:
            warnings.append(f"no CPU snapshot from the process: {exc}")
    if kind == "remote":
        warnings.append("remote target: this host's CPUID does not describe the remote CPU")
        return None, warnings
    if not host_is_x86_64():
        warnings.append("this host is not x86-64: no native CPUID to compare against")
        return None, warnings
    if kind == "core":
        warnings.append("checked against this host's CPU: the core may come from a "
                        "different machine")
    elif kind == "exec":
        warnings.append("no process: checked against this host's CPU")
    return read_native_cpu(), warnings
