"""Whether a core's evidence holds together, read from the file alone: its
header's machine against the size of its register notes, each thread's pc
and sp against the core's own mappings, and the executable given with it
against the core's machine.  Each doubt is one warning that names what is
damaged; the report keeps going ("unknown" where it rests on the damage).
Pure functions of the facts core_file.read and elf_file give."""
from __future__ import annotations

from . import elf_machines
from .core_file import CoreFacts

DAMAGED = "damaged core: "              # the prefix the batch lifts into its records
WRONG_EXECUTABLE = "wrong executable: "
# sizeof(struct elf_prstatus) by (e_machine, ELF class): 112 bytes of common
# fields on 64-bit (72 on 32-bit) + pr_reg + pr_fpvalid, padded
# (include/linux/elfcore.h; pr_reg: x86-64 27 u64, arm64 34 u64, i386 17 u32,
# arm 18 u32).  x86-64's 336 and i386's 144 are what readelf -n shows of
# this host's kernel cores.
PRSTATUS_SIZES = {(62, 2): 336, (183, 2): 392, (3, 1): 144, (40, 1): 148}
PF_X, PF_W = 1, 2
PAGE = 4096                 # x86-64's page (arch/x86/include/asm/page_types.h PAGE_SHIFT 12)
USER_END, KERNEL_START = 1 << 47, 0xFFFF800000000000   # the canonical halves (4-level paging)
SIGBUS, SIGSEGV = 7, 11
NEAR_SP = 64 << 10          # a fault this close to sp is the stack's own (a push, a guard page)
VSYSCALL = (0xFFFFFFFFFF600000, 0xFFFFFFFFFF601000)     # the legacy vsyscall page (x86-64)
MAX_NAMED = 3               # threads named one by one, then a count


def machine_warnings(ident: elf_machines.Ident, facts: CoreFacts) -> list[str]:
    """The header's e_machine against the NT_PRSTATUS notes' size."""
    if not facts.prstatus_sizes:
        return [DAMAGED + "it has no NT_PRSTATUS note: no thread's registers were recorded, "
                "so no frame can be read (a core cut inside its notes, or made by hand)"]
    want = PRSTATUS_SIZES.get((ident.machine, ident.elf_class))
    odd = sorted({s for s in facts.prstatus_sizes if s != want})
    if want is None or not odd:
        return []
    size = odd[0]
    other = [elf_machines.NAMES.get(k, f"ELF machine {k[0]}")
             for k, s in PRSTATUS_SIZES.items() if s == size]
    whose = f"the size of {' or '.join(other)}'s" if other else f"not the {want} bytes of its"
    return [DAMAGED + f"the ELF header says {ident.name}, yet the NT_PRSTATUS notes are "
            f"{size} bytes, {whose}: the header or the register notes are damaged"]


def register_warnings(facts: CoreFacts, segments) -> list[str]:
    """Each thread's pc in code (a PF_X segment or a mapped file: gdb's gcore
    leaves the libraries' text out of its segments) and sp in writable memory
    (a PF_W segment).  The thread that took a SIGSEGV or SIGBUS may have its pc
    at the fault address (a jump into nowhere) or its sp by it (an overflow,
    a bad rsp): that is the crash, not damage."""
    if not segments or not facts.pc_sp:
        return []
    code = [(s.address, s.address + s.size) for s in segments if s.flags & PF_X]
    code += [(m.start, m.end) for m in facts.mappings] + [VSYSCALL]
    data = [(s.address, s.address + s.size) for s in segments if s.flags & PF_W]
    faulted = facts.first_lwp if facts.cursig.get(facts.first_lwp) in (SIGSEGV, SIGBUS) \
        else None
    bad = []
    for lwp, (pc, sp) in facts.pc_sp.items():
        near = lwp == faulted and facts.si_addr is not None
        wrong = []
        if not _inside(pc, code) and not (near and facts.si_addr == pc):
            wrong.append(f"pc {pc:#x} in no code mapping")
        if not _inside(sp, data) and not (near and abs(facts.si_addr - sp) <= NEAR_SP):
            wrong.append(f"sp {sp:#x} in no writable mapping")
        if wrong:
            bad.append(f"LWP {lwp} ({', '.join(wrong)})")
    if not bad:
        return []
    more = f" and {len(bad) - MAX_NAMED} more" if len(bad) > MAX_NAMED else ""
    return [DAMAGED + f"the registers it records (NT_PRSTATUS) are not where its memory is: "
            f"{'; '.join(bad[:MAX_NAMED])}{more}, and no fault explains it: that thread's "
            "frames, and a verdict resting on them, are unreliable"]


def layout_warnings(facts: CoreFacts, headers, headers_end: int) -> list[str]:
    """The program headers as the kernel and gcore write them: page-aligned
    PT_LOADs (p_filesz 0, a page or all of p_memsz) that do not overlap in
    memory nor in the file, at canonical addresses, their data past the ELF
    header and program header table (``headers_end``) and apart from the
    notes (the kernel writes the notes first, gcore last); NT_FILE
    consistent; NT_SIGINFO's signal the dumping thread's pr_cursig."""
    out = []
    loads = [p for p in headers if p.type == 1]      # PT_LOAD
    notes = [(p.offset, p.offset + p.file_size) for p in headers if p.type == 4 and p.file_size]
    bad = []
    for i, p in enumerate(loads):
        end = p.address + p.size
        why = None
        if p.address % PAGE or p.size % PAGE or p.file_size % PAGE:
            why = "not page-aligned"
        elif p.file_size > p.size:
            why = f"more bytes in the file ({p.file_size:#x}) than in memory ({p.size:#x})"
        elif USER_END < end <= KERNEL_START or (p.address < USER_END < end) or end > 1 << 64:
            why = "at an address no x86-64 process has"
        elif p.file_size and (p.offset < headers_end or any(
                lo < p.offset + p.file_size and p.offset < hi for lo, hi in notes)):
            why = f"its data at file offset {p.offset:#x}, over the headers or the notes"
        if why:
            bad.append(f"PT_LOAD at {p.address:#x}: {why}")
    ordered = sorted(loads, key=lambda p: p.address)
    bad += [f"PT_LOADs at {a.address:#x} and {b.address:#x} overlap in memory"
            for a, b in zip(ordered, ordered[1:]) if b.address < a.address + a.size][:MAX_NAMED]
    in_file = sorted((p for p in loads if p.file_size), key=lambda p: p.offset)
    bad += [f"PT_LOADs at {a.address:#x} and {b.address:#x} share file bytes"
            for a, b in zip(in_file, in_file[1:]) if b.offset < a.offset + a.file_size
            ][:MAX_NAMED]
    if bad:
        more = f" and {len(bad) - MAX_NAMED} more" if len(bad) > MAX_NAMED else ""
        out.append(DAMAGED + f"its program headers do not describe a process's memory: "
                   f"{'; '.join(bad[:MAX_NAMED])}{more}: memory read through them, and what "
                   "rests on it, is unreliable")
    if facts.file_note_problem:
        out.append(DAMAGED + f"its NT_FILE note (the mapped files) has "
                   f"{facts.file_note_problem}: the files and the executable it names are "
                   "not known")
    cursig = facts.cursig.get(facts.first_lwp)
    if cursig and facts.signo is not None and facts.signo != cursig:
        out.append(DAMAGED + f"NT_SIGINFO says signal {facts.signo} but the thread that dumped "
                   f"(LWP {facts.first_lwp}) records signal {cursig} in NT_PRSTATUS: the stop "
                   "and the verdict that rests on it are unreliable")
    return out


def _inside(address: int, spans) -> bool:
    return any(lo <= address < hi for lo, hi in spans)


def executable_warning(executable: str, core: elf_machines.Ident | None) -> str | None:
    """The executable given with a core that cannot be its program: not an
    ELF file, or one of another machine than the core's."""
    ident = elf_machines.identify(executable)
    if ident is None:
        return WRONG_EXECUTABLE + f"{executable} is not an ELF file: it cannot be the " \
            "program of this core"
    if core is not None and (ident.machine, ident.elf_class) != (core.machine, core.elf_class):
        return WRONG_EXECUTABLE + f"{executable} is an {ident.name} program and the core " \
            f"is {core.name}'s: it cannot be the program that crashed"
    return None


def header_doubt(path: str, ident: elf_machines.Ident) -> str | None:
    """For a core refused as another machine's: whether its register notes
    say it is not (an x86-64 core relabelled EM_AARCH64, an i386 one
    relabelled EM_ARM), in words to add to the refusal."""
    from . import core_file
    facts = CoreFacts(ident.machine)
    try:
        if ident.elf_class == elf_machines.ELFCLASS64:
            facts = core_file.read(path)
        elif not ident.big_endian:
            facts.prstatus_sizes = core_file.prstatus_sizes_32(path)
    except core_file.CoreFileError:
        return None
    found = machine_warnings(ident, facts)
    return found[0][len(DAMAGED):] if found and facts.prstatus_sizes else None
