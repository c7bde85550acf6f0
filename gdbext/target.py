"""The one place that imports gdb.

Everything gdb knows that an analysis needs is asked for here and handed out
as plain values and records, so analysis modules stay testable without
gdb.  Nothing here writes to the inferior, calls its functions or resumes it.
"""
from __future__ import annotations

import contextlib
import functools
import os
import re

import gdb  # noqa: F401  (the adapter is the only importer)

from .errors import GdbextError, UnmappedCodeError
from .knowledge.skip_frames import STD_LIBRARY_FRAME
from .text import ERRORS, lenient
from .record import record

SUPPORTED_ARCHITECTURES = ("i386:x86-64",)


@record
class SignalInfo:
    """The signal that stopped a thread."""
    signo: int
    code: int | None                # None: from pr_cursig, which has no si_code
    addr: int | None
    sender_pid: int | None = None   # si_pid, for a signal a process sent (si_code <= 0)
    syscall: int | None = None      # SIGSYS: si_syscall, the number seccomp refused
    arch: int | None = None         # SIGSYS: si_arch, the AUDIT_ARCH_* of that call


@record
class FrameInfo:
    """One frame as gdb names it."""
    level: int
    pc: int
    function: str | None        # debug-info or ELF symbol name
    objfile: str | None
    file: str | None = None     # source file and line, with debug info
    line: int | None = None


@record
class ThreadSnapshot:
    """One thread: its frame-0 registers and frames."""
    num: int
    lwp: int
    name: str | None
    regs: dict[str, int]        # frame 0: FRAME0_REGISTERS
    in_syscall: bool            # frame 0 sits right after a syscall instruction
    frames: list[FrameInfo]
    frames_truncated: bool      # the walk stopped at the bound, not at the outermost frame


@record
class Location:
    """What an address is: symbol, function and object."""
    address: int
    symbol: str | None          # nearest symbol, no offset
    offset: int | None
    function: str | None        # containing function from debug info, else symbol
    objfile: str | None         # the file the address lies in


def kind() -> str:
    """'live', 'core', 'remote', 'exec' (a file but no process) or 'none'."""
    inf = gdb.selected_inferior()
    if inf.pid and gdb.selected_thread() is not None:
        conn = getattr(inf, "connection", None)
        ctype = getattr(conn, "type", None) if conn is not None else None
        if ctype == "core":
            return "core"
        if ctype in ("remote", "extended-remote"):
            return "remote"
        return "live"
    if gdb.current_progspace().filename:
        return "exec"
    return "none"


def architecture_name() -> str:
    frame = _selected_frame_or_none()
    if frame is not None:
        return frame.architecture().name()
    return gdb.selected_inferior().architecture().name()


NOTHING_LOADED = ("no process, core or executable: load one first "
                  "(file PROG, core-file CORE or attach PID)")


def require_x86_64() -> None:
    """Fail unless something is loaded and it is x86-64."""
    if kind() == "none":
        raise GdbextError(NOTHING_LOADED)
    name = architecture_name()
    if kind() == "core":        # gdb calls a core it has no support for "i386": its header says
        from . import elf_machines
        ident = elf_machines.identify(core_file_path() or "")
        if ident is not None and not ident.x86_64:
            from .core_checks import header_doubt
            name = ident.name
            doubt = header_doubt(core_file_path() or "", ident)
            if doubt:
                raise GdbextError(f"unsupported architecture: {name} (gdbext supports x86-64 "
                                  f"only); the core looks damaged: {doubt}")
    if not name.startswith(SUPPORTED_ARCHITECTURES):       # also i386:x86-64:intel
        raise GdbextError(f"unsupported architecture: {name} (gdbext supports x86-64 only)")


def _selected_frame_or_none():
    if gdb.selected_thread() is None:
        return None
    try:
        return gdb.selected_frame()
    except gdb.error:
        return None


def selected_pc() -> tuple[int, int]:
    """The selected frame's pc and level.  Raises when there is no frame."""
    thread = gdb.selected_thread()
    if thread is not None and thread.is_running():
        raise GdbextError("the selected thread is running: interrupt it first "
                          "(interrupt, or Ctrl-C)")
    frame = _selected_frame_or_none()
    if frame is None:
        what = kind()
        if what == "exec":
            raise GdbextError("no process or core: run the program, attach, open a core "
                              "(core-file FILE), or give an ADDRESS to check the file's bytes")
        raise GdbextError(NOTHING_LOADED)
    try:
        return int(frame.pc()), frame.level()
    except gdb.error:           # "PC not available": no registers for this thread
        raise GdbextError(no_pc(thread)) from None


def no_pc(thread) -> str:
    """Why a thread has no pc, in words: a core whose register note for it
    is missing or damaged."""
    which = f"thread {thread.num} (LWP {thread.ptid[1]})" if thread is not None else "the thread"
    if kind() == "core":
        return (f"the core records no program counter for {which}: its NT_PRSTATUS "
                "register note is missing or damaged")
    return f"gdb has no program counter for {which}"


# Assignment, increment and compound-assignment operators: evaluating them
# would write to the inferior (or to gdb's registers of it).
_WRITES = re.compile(r"(?<![=!<>])=(?!=)|\+\+|--|[-+*/%&|^]=|<<=|>>=")


# A quoted name or literal, with its backslash escapes ('\'' is one quote):
# blanking it lets 'operator=' through; a quote or backslash left over
# afterwards is text gdb might split differently from us, so it is refused.
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


def _without_quoted(text: str) -> str:
    return _QUOTED.sub("''", text)


def eval_address(expression: str) -> int:
    """An address from any gdb expression: a number, a symbol, $pc, func+4...

    Read-only: assignments are refused and inferior calls are disabled while
    the expression is evaluated."""
    bare = _without_quoted(expression)
    if _WRITES.search(bare):
        raise GdbextError(f"'{expression}' would modify the program: an ADDRESS must be "
                          "a read-only expression")
    if re.search(r"['\"\\]", bare.replace("''", "")):
        raise GdbextError(f"'{expression}': unbalanced quotes or a stray backslash; an "
                          "ADDRESS quotes only names ('file.c'::func)")
    previous = gdb.parameter("may-call-functions")
    _execute("set may-call-functions off")
    try:
        value = gdb.parse_and_eval(expression)
        if value.type.strip_typedefs().code == gdb.TYPE_CODE_FUNC:
            value = value.address
        try:
            return int(value) & 0xFFFFFFFFFFFFFFFF
        except gdb.error:
            # A label or data symbol without debug info has no usable type:
            # its address is what the user means.
            if value.address is None:
                raise
            return int(value.address) & 0xFFFFFFFFFFFFFFFF
    except gdb.error as exc:
        raise GdbextError(f"cannot evaluate '{expression}': {exc}") from None
    finally:
        _execute(f"set may-call-functions {'on' if previous else 'off'}")


def read_code(address: int, length: int) -> bytes:
    """Up to ``length`` bytes at ``address``, fewer when the mapping ends sooner;
    never bytes a core lacks from a file that is not the build that ran."""
    refused = _ONE_COMMAND.get("refused")
    if refused is None:
        refused = _refused_ranges()
    why = _refused(address, 1, refused) if refused else None
    if why:
        raise GdbextError(f"the instruction is unknown: {why}")
    inferior = gdb.selected_inferior()
    for n in _shrinking(length, address):
        try:
            return bytes(inferior.read_memory(address, n))
        except (gdb.MemoryError, OverflowError, ValueError):
            continue
    raise UnmappedCodeError(f"cannot read memory at {address:#x}: the address is not mapped "
                            "(a jump or call to a bad pointer, not an instruction-set "
                            "problem)", address)


def _shrinking(length: int, address: int):
    """Try the full length, then stop at the next page boundary, then byte by byte."""
    yield length
    to_page = 0x1000 - (address & 0xFFF)
    if to_page < length:
        yield to_page
    for n in range(min(length, to_page) - 1, 0, -1):
        yield n


def read_bytes(address: int, length: int) -> bytes:
    """Exactly ``length`` bytes or a GdbextError.  From a core, memory the
    core does not hold comes from the files gdb loaded: never from one that is
    not the build that ran (file_for), whose bytes would be another program's."""
    refused = _ONE_COMMAND.get("refused")     # hot: no state check once computed
    if refused is None:
        refused = _refused_ranges()
    if refused:
        why = _refused(address, length, refused)
        if why:
            raise GdbextError(why)
    return _read_raw(address, length)


def _read_raw(address: int, length: int) -> bytes:
    try:
        return bytes(gdb.selected_inferior().read_memory(address, length))
    except (gdb.MemoryError, OverflowError, ValueError):   # past 2**64 or a negative length
        raise GdbextError(f"cannot read {length} bytes at {address:#x}") from None


def _refused_ranges() -> list[tuple[int, int, str, str, int]]:
    """(start, end, why, module, base) of code whose bytes a core read must
    not take from gdb's files: an object gdb read from another build than
    the one that ran, or a file-backed mapping the core does not hold and
    gdb has no file for (gdb 16 refuses a mismatched file; a sysroot may
    lack one) -- gdb would answer another program's bytes, or zeros.  []
    for a process: its memory is the truth (names: _misnamed_ranges)."""
    memo = _memo()
    if "refused" not in memo:
        memo["refused"] = []            # set first: the checks read memory themselves
        if kind() == "core":
            out = list(_misnamed_ranges()) + _fileless_ranges()
            memo["refused"] = sorted(out)
            memo["dumped"] = _dumped_ranges() if out else []
    return memo["refused"]


def _misnamed_ranges() -> list[tuple[int, int, str, str, int]]:
    """The sections of objects gdb read from a file whose build-id is not
    the one the process ran (its ELF notes in memory): any target -- a core
    read with a rebuilt library, a process in a container read with the
    host's files (set sysroot /).  gdb's names there are another build's."""
    memo = _memo()
    if "misnamed" not in memo:
        memo["misnamed"] = []
        ids = {}
        for objfile in gdb.objfiles():
            name = lenient(lambda: objfile.filename) or ""
            ids.setdefault(name, lenient(lambda: objfile.build_id))
        out = []
        for name, sections in object_sections().items():
            read_id, ran = ids.get(name), ran_build_id(name)
            if not read_id or not ran or read_id == ran or not sections:
                continue
            path = name[len("target:"):] if name.startswith("target:") else name
            why = (f"{path}: gdb read a file with build-id {read_id}, the process ran "
                   f"build-id {ran}: not read (a rebuilt library, another host's, or the "
                   "host's copy of a container's file: point gdb at the original files "
                   "with set sysroot or solib-search-path)")
            base = _object_base(name) or min(lo for lo, _ in sections.values())
            out += [(lo, hi, why, os.path.basename(path), base) for lo, hi in sections.values()]
        memo["misnamed"] = sorted(out)
    return memo["misnamed"]


def _fileless_ranges() -> list[tuple[int, int, str, str, int]]:
    """A core's file-backed mappings no object gdb loaded covers."""
    from . import core_file
    covered = [r for sections in object_sections().values() for r in sections.values()]
    if "core_mappings" not in _memo():
        try:
            _memo()["core_mappings"] = core_file.read(core_file_path() or "").mappings
        except GdbextError:
            _memo()["core_mappings"] = []
    mappings = _memo()["core_mappings"]
    bases = {m.path: m.start for m in mappings if m.page_offset == 0}
    out = []
    for m in mappings:
        if any(lo < m.end and m.start < hi for lo, hi in covered) or m.path not in bases:
            continue
        ran = ran_build_id(m.path)
        here = None
        if os.path.isfile(m.path):
            from .core_file import build_id
            here = build_id(m.path)
        cause = (f"the file here has build-id {here}, the process ran build-id {ran}"
                 if here and ran and here != ran else "gdb found no file for it")
        why = (f"{m.path}: {cause}: its bytes are not read (point gdb at the original files "
               "with set sysroot or solib-search-path)")
        out.append((m.start, m.end, why, os.path.basename(m.path), bases[m.path]))
    return out


def _object_base(name: str) -> int | None:
    """Where the object's first page is mapped: a core's NT_FILE, else the
    dynamic linker's list."""
    base = _core_base(name)
    if base is None:
        path = name[len("target:"):] if name.startswith("target:") else name
        link = _link_map_of(path)
        base = link.bias if link is not None and link.name else None
    return base


def _dumped_ranges() -> list[tuple[int, int]]:
    """The core's PT_LOAD ranges that hold bytes (p_filesz > 0)."""
    from . import elf_file
    try:
        return [(p.address, p.address + p.file_size)
                for p in elf_file.program_headers(core_file_path() or "")
                if p.type == elf_file.PT_LOAD and p.file_size]
    except GdbextError:
        return []


def _core_base(name: str) -> int | None:
    """Where a core's NT_FILE maps the file's first page."""
    path = name[len("target:"):] if name.startswith("target:") else name
    return next((m.start for m in _memo().get("core_mappings", ())
                 if m.path == path and m.page_offset == 0), None)


def trusted_name(pc: int, name: str | None) -> str | None:
    """gdb's name for the function at ``pc``, unless gdb took it from a file
    that is not the build that ran (a core's refused object): then the
    object and the offset in it (``libfoo.so+0x10c``), the same on any
    machine and true of the build that ran."""
    refused = _ONE_COMMAND.get("refused")
    if refused is None:
        refused = _refused_ranges()
    misnamed = _ONE_COMMAND.get("misnamed")
    if misnamed is None:
        misnamed = _misnamed_ranges()
    for lo, hi, _why, module, base in (*refused, *misnamed):
        if lo <= pc < hi:
            return f"{module}+{pc - base:#x}"
    if (not name or name == "??") and kind() == "remote" \
            and not lenient(lambda: gdb.solib_name(pc)):    # gdb lists no library (qemu's stub)
        for module, base, lo, hi in _linked_extents():
            if lo <= pc < hi:
                return f"{module}+{pc - base:#x}"
    return name


def _linked_extents() -> list[tuple[str, int, int, int]]:
    """(module, base, lo, hi) of each shared object on the dynamic linker's
    list, its extent read in memory (memory_elf.load_extent)."""
    from . import memory_elf
    memo = _memo()
    if "linked_extents" not in memo:
        out = []
        for link in link_maps():
            extent = memory_elf.load_extent(_read_raw, link.bias) if link.name else None
            if extent:
                out.append((os.path.basename(link.name), link.bias, *extent))
        memo["linked_extents"] = out
    return memo["linked_extents"]


def _refused(address: int, length: int, refused) -> str | None:
    end = address + max(length, 1)
    for lo, hi, why, _module, _base in refused:
        if lo < end and address < hi:
            if any(a <= address and end <= b for a, b in _memo().get("dumped", ())):
                return None             # the core holds these bytes itself
            return f"the bytes at {address:#x} are not in the core, and {why}"
    return None


def symbol_address(name: str) -> int | None:
    """A symbol's address, from debug info or the minimal (ELF) symbols."""
    try:
        value = gdb.parse_and_eval(f"&'{name}'")
        return int(value.cast(gdb.lookup_type("unsigned long")))
    except gdb.error:
        pass
    # In a Rust (or other) frame, 'name' is not C's quoting: evaluate as C
    # for this one lookup, then give gdb its language setting back.
    try:
        language = gdb.parameter("language")
    except (gdb.error, RuntimeError):
        return None
    if language == "c":
        return None
    try:
        gdb.execute("set language c", to_string=True)
        value = gdb.parse_and_eval(f"&'{name}'")
        return int(value.cast(gdb.lookup_type("unsigned long")))
    except gdb.error:
        return None
    finally:
        gdb.execute(f"set language {language}", to_string=True)


# What `info target` / `info files` printed, kept for one command (a command
# never resumes or loads anything, so they cannot change under it): on a
# numpy process with 40 objects each parse costs ~10 ms, and the frame walk,
# the stack scan and locate() ask it dozens of times.  Cleared as every
# command starts and ends (preserved_selection).
_ONE_COMMAND: dict = {}


def _state() -> tuple:
    """Changes when gdb loads or drops a file or a process (for callers
    outside a command, which nothing clears the memo for)."""
    objfiles = gdb.objfiles()
    return (gdb.current_progspace().filename, gdb.selected_inferior().pid, len(objfiles),
            objfiles[-1].filename if objfiles else None)


def _memo() -> dict:
    state = _state()
    if _ONE_COMMAND.get("state") != state:
        _ONE_COMMAND.clear()
        _ONE_COMMAND["state"] = state
    return _ONE_COMMAND


def command_memo() -> dict:
    """Facts kept for the rest of one gdbext command (cleared when it ends
    and when gdb loads or drops a file or a process): one frame walk shared
    by crash-triage and the analyses it runs."""
    return _memo()


def _info(command: str) -> str:
    memo = _memo()
    out = memo.get(command)
    if out is None:
        out = memo[command] = _execute(command)
    return out


def core_file_path() -> str | None:
    """The open core file (gdb 13 has no Inferior.corefile)."""
    out = _info("info target")
    m = re.search(r"Local core dump file:\s*`(.+?)', file type", out)
    return m.group(1) if m else None


def core_warnings() -> list[str]:
    """What the open core itself lacks or gets wrong: a truncated file (a full
    disk, a RLIMIT_CORE cut, a copy that stopped) reads as missing memory;
    a header, register notes or executable that do not agree (core_checks)
    are damage.  Every report on the core says so."""
    path = core_file_path() if kind() == "core" else None
    if not path:
        return []
    return _truncation(path) + _consistency(path)


def _truncation(path: str) -> list[str]:
    from . import elf_file
    try:
        need = max((p.offset + p.file_size for p in elf_file.program_headers(path)),
                   default=0)
        have = os.path.getsize(path)
    except (GdbextError, OSError):
        return []
    if have >= need:
        return []
    return [f"the core file is truncated: {have} of {need} bytes; the memory past the cut "
            "is missing, so frames and values there cannot be read"]


def _consistency(path: str) -> list[str]:
    from . import core_checks, core_file, elf_file, elf_machines
    ident = elf_machines.identify(path)
    if ident is None:
        return []
    out = []
    exe = gdb.current_progspace().filename
    doubt = core_checks.executable_warning(exe, ident) if exe else None
    if doubt:
        out.append(doubt)
    try:
        facts = core_file.read(path)
        headers = elf_file.program_headers(path)
    except GdbextError:
        return out
    segments = [elf_file.Segment(p.address, p.size, p.flags) for p in headers if p.type == 1]
    header = elf_file.file_header(path)     # e_phoff, e_phentsize, e_phnum at 5, 9, 10
    headers_end = max(64, header[5] + header[9] * len(headers))
    out += core_checks.machine_warnings(ident, facts)
    if ident.x86_64:
        out += core_checks.layout_warnings(facts, headers, headers_end)
        out += core_checks.register_warnings(facts, segments)
    return out


def locate(address: int) -> Location:
    symbol = offset = function = None
    try:
        text = gdb.format_address(address)
        m = re.search(r"<([^<>+]+?)(?:\+(\d+))?(?: at [^<>]*)?>$", text)
        if m:
            symbol, offset = m.group(1), int(m.group(2) or 0)
    except (gdb.error, AttributeError):
        pass
    try:
        block = gdb.block_for_pc(address)
        while block is not None and block.function is None:
            block = block.superblock
        if block is not None:
            function = block.function.print_name
    except (gdb.error, RuntimeError):
        pass
    trusted = trusted_name(address, symbol)
    if trusted != symbol:                   # named from another build: the offset only
        symbol, offset, function = trusted, 0, None
    return Location(address, symbol, offset, function or symbol, objfile_for(address))


def module_offset(address: int, loaded=None) -> str | None:
    """``module+0xoffset`` for an address in a loaded file (Breakpad/Socorro's
    convention for a frame with no symbol): the offset is the file's own
    virtual address (pc - load bias), as ``addr2line -e module`` and objdump
    take it.  None outside every file."""
    try:
        path = objfile_for(address)
        bias = load_bias(path, loaded) if path else None
    except (gdb.error, RuntimeError, GdbextError):    # a hostile core: no module, no name
        return None
    if bias is None or address < bias:
        return None
    return f"{os.path.basename(path)}+{address - bias:#x}"


def inlined_functions(address: int) -> list[str]:
    """The functions inlined at ``address`` (an intrinsic such as
    _mm_load_ps, core::ptr::read), innermost first, from the debug info's
    blocks, then the function that holds them (gdb's demangled names).
    Empty without debug info; one name when nothing is inlined there."""
    names = []
    try:
        block = gdb.block_for_pc(address)
        while block is not None:
            if block.function is not None:
                names.append(block.function.print_name)
            block = block.superblock
    except (gdb.error, RuntimeError):
        return []
    return names


def objfile_for(address: int) -> str | None:
    """The shared library, vDSO or executable file that holds ``address``."""
    solib = lenient(lambda: gdb.solib_name(address))
    if solib:
        return solib
    out = _execute(f"info symbol {address:#x}")
    m = re.search(r" of (.+)$", out.strip())
    if m:
        return m.group(1)
    progspace = gdb.current_progspace()
    if progspace.filename and _in_exec_file_sections(address):
        return progspace.filename
    return None


def shared_libraries():
    """gdb's `info sharedlibrary` rows (triage.loaded_files.SharedLibrary),
    and the build-id of each file gdb read, by the name the list shows."""
    from .triage.loaded_files import SharedLibrary
    try:
        out = _execute("info sharedlibrary")
    except gdb.error:
        return [], {}
    rows = []
    for line in out.splitlines():
        m = re.match(r"^(?:(0x[0-9a-f]+)\s+(0x[0-9a-f]+)|\s+)\s+(?:Yes|No)(?: \(\*\))?\s+(/?\S.*)$",
                     line)
        if m:
            rows.append(SharedLibrary(m.group(3).rstrip(), int(m.group(1), 16) if m.group(1) else None,
                                      int(m.group(2), 16) if m.group(2) else None))
    ids = {}
    for objfile in gdb.objfiles():
        try:
            ids[objfile.username or objfile.filename] = objfile.build_id
            ids.setdefault(objfile.filename, objfile.build_id)
        except (gdb.error, RuntimeError):
            continue
    return rows, ids


# --- the target's files ---------------------------------------------------------
# gdb names an object by the file it read: a path here, "target:PATH" when it
# read the process's own file through the target (gdbserver, qemu's stub, or
# a native process in another mount namespace), or a path here that is not
# what ran (a core from another host, a library rebuilt since).  Every reader
# of an object's sections or symbols goes through file_for: a local file
# that is the very build that ran, or none.

def link_maps():
    """The dynamic linker's list of loaded objects, read in memory
    (memory_elf.link_maps); [] for a static program or unreadable memory."""
    from . import memory_elf
    memo = _memo()
    if "link_maps" not in memo:
        aux = auxv()
        try:
            r_debug = memory_elf.r_debug_address(_read_raw, aux.get("AT_PHDR"),
                                                 aux.get("AT_PHNUM"))
            memo["link_maps"] = memory_elf.link_maps(_read_raw, r_debug) if r_debug else []
        except GdbextError:
            memo["link_maps"] = []
    return memo["link_maps"]


def _link_map_of(path: str):
    base = os.path.basename(path)
    found = [m for m in link_maps() if m.name == path] or \
        [m for m in link_maps() if m.name and os.path.basename(m.name) == base]
    return found[0] if len(found) == 1 else None


def ran_build_id(name: str) -> str | None:
    """The build-id of the object gdb names ``name`` as the process had it
    mapped, from its ELF notes in memory: a core's NT_FILE mapping or the
    dynamic linker's list; None when that memory is not there."""
    from . import core_file, memory_elf
    path = name[len("target:"):] if name.startswith("target:") else name
    memo = _memo().setdefault("ran_build_id", {})
    if name in memo:
        return memo[name]
    bases = []
    if kind() == "core":
        if "core_mappings" not in _memo():
            try:
                _memo()["core_mappings"] = core_file.read(core_file_path() or "").mappings
            except GdbextError:
                _memo()["core_mappings"] = []
        bases = [m.start for m in _memo()["core_mappings"]
                 if m.path == path and m.page_offset == 0]
    link = _link_map_of(path)
    if link is not None and link.name:
        bases.append(link.bias)         # a shared object's first page (p_vaddr 0)
    found = next((b for b in (memory_elf.build_id(_read_raw, base) for base in bases) if b),
                 None)
    memo[name] = found
    return found


def gdb_path_for(path: str) -> str | None:
    """The local file gdb read for the process's file ``path``: the path
    itself or under gdb's sysroot (`set sysroot`); None when gdb read none."""
    for objfile in gdb.objfiles():
        name = objfile.filename or ""
        if name == path or (name.endswith(path) and not name.startswith("target:")
                            and name != path and os.path.isfile(name)):
            return name
    return None


def file_for(name: str) -> str:
    """A local file holding the very build the process ran, for the object
    gdb names ``name``: a live process's own view (/proc/PID/root, its mount
    namespace), the path itself ("target:" stripped).  Checked by build-id
    against the process's memory (or against the file gdb read from the
    target) when one is known.  GdbextError saying why when there is none."""
    from . import core_file
    memo = _memo().setdefault("file_for", {})
    if name not in memo:
        memo[name] = _file_for(name, core_file.build_id)
    found, why = memo[name]
    if found is None:
        raise GdbextError(why)
    return found


def _file_for(name: str, build_id_of) -> tuple[str | None, str | None]:
    remote = name.startswith("target:")
    path = name[len("target:"):] if remote else name
    want = ran_build_id(name)
    if want is None and remote:         # gdb read the process's own file: its id
        want = next((o.build_id for o in gdb.objfiles()
                     if name in (o.filename, o.username)), None)
    candidates = []
    if kind() == "live" and pid():
        candidates.append(f"/proc/{pid()}/root{path}")     # its mount namespace
    candidates.append(path)
    mismatch = None
    for candidate in candidates:
        if not os.path.isfile(candidate):
            continue
        here = build_id_of(candidate)
        if want is None or here == want:
            return candidate, None
        mismatch = mismatch or (candidate, here)
    if mismatch:
        return None, (f"{path}: the file here ({mismatch[0]}) has build-id {mismatch[1]}, the "
                      f"process ran build-id {want}: not read (a rebuilt library, or a core "
                      "from another host: point gdb at the original files with set sysroot "
                      "or solib-search-path)")
    return None, (f"cannot open {name}: "
                  + ("the file is the remote target's, with no copy here (set sysroot to a "
                     "copy of its files)" if remote or kind() == "remote" else "no such file"))


def exported_symbols(name: str, names: tuple[str, ...], loaded=None
                     ) -> dict[str, tuple[int, int]]:
    """{symbol: (run-time address, size)} of ``names`` that the object gdb
    names ``name`` exports: from its .dynsym in the verified local file
    (file_for) and gdb's load bias, else from its dynamic section in memory
    (a remote target, a file that is not the build that ran).  GdbextError
    saying why when neither can be read."""
    from . import elf_file, memory_elf
    try:
        path = file_for(name)
        bias = load_bias(name, loaded)
        if bias is None:
            raise GdbextError(f"no section of {name} is loaded")
        return {n: (value + bias, size)
                for n, (value, size) in elf_file.dynamic_symbols(path, names).items()}
    except GdbextError as file_error:
        link = _link_map_of(name[len("target:"):] if name.startswith("target:") else name)
        if link is None:
            raise
        try:
            return memory_elf.exported(read_bytes, link, names)
        except GdbextError as exc:
            raise GdbextError(f"{file_error}; and in memory: {exc}") from None


def _in_exec_file_sections(address: int) -> bool:
    exe = gdb.current_progspace().filename
    return any(lo <= address < hi for lo, hi in object_sections().get(exe, {}).values())


def object_sections() -> dict[str, dict[str, tuple[int, int]]]:
    """Every loaded object's sections at their run-time addresses, from the
    "Local exec file" block of ``info files``: {path: {section: (start, end)}}.
    The executable's lines carry no path and are keyed by the program space's
    file name.  A core's load segments (its own block) are left out: they
    cover the stack and heap, not a file.  Parsed once per command: callers
    only read it."""
    memo = _memo()
    if "object_sections" not in memo:
        memo["object_sections"] = _object_sections()
    return memo["object_sections"]


def _object_sections() -> dict[str, dict[str, tuple[int, int]]]:
    try:
        out = _info("info files")
    except gdb.error:
        return {}
    # gdb may interleave "warning: ..." lines (a shared library opened as the
    # program has no entry point section): they do not end the block.
    block = re.search(r"Local exec file:\n(.*?)(?:\n(?!warning: )\S|\Z)", out, re.S)
    exe = gdb.current_progspace().filename or ""
    objects: dict[str, dict[str, tuple[int, int]]] = {}
    for lo, hi, section, path in re.findall(
            r"^\s*(0x[0-9a-f]+) - (0x[0-9a-f]+) is (\S+)(?: in (.+))?$",
            block.group(1) if block else "", re.M):
        objects.setdefault(path or exe, {}).setdefault(section, (int(lo, 16), int(hi, 16)))
    objects.pop("", None)
    return objects


def executable() -> str | None:
    return gdb.current_progspace().filename


def loaded_object_names() -> list[str]:
    """The files gdb has loaded symbols from (executable, shared libraries),
    without reading their sections: a cheap look at what the process is."""
    return [o.filename for o in gdb.objfiles() if o.filename]


def read_pointer(address: int) -> int:
    return int.from_bytes(read_bytes(address, 8), "little")


def read_c_string(address: int, limit: int = 4096) -> bytes:
    """The NUL-terminated bytes at ``address``, at most ``limit`` of them."""
    from .runtimes.cstring import c_string
    return c_string(read_bytes, address, limit)[0]


def auxv() -> dict[str, int]:
    """The auxiliary vector by AT_ name (live, remote and cores)."""
    try:
        out = _execute("info auxv")
    except gdb.error:
        return {}
    return {name: int(value, 0) for name, value in
            re.findall(r"^\d+[ \t]+(AT_\w+)[ \t].*?[ \t](0x[0-9a-f]+|\d+)(?:[ \t].*)?$", out, re.M)}


def pid() -> int:
    return gdb.selected_inferior().pid


def remote_parent_pid() -> int | None:
    """A remote process's parent, from its /proc/PID/status as gdb reads it
    on the target (`info proc status`: gdbserver's file I/O); None when the
    stub does not serve it (qemu's)."""
    try:
        out = _execute("info proc status")
    except gdb.error:
        return None
    m = re.search(r"^PPid:\s*(\d+)", out, re.M)
    return int(m.group(1)) if m else None


def _no_more_registers(regs: dict[str, int]) -> tuple[str, ...]:
    return ()


def thread_snapshots(max_frames: int, system_objects: str = r"^$", *,
                     registers=("rip", "rsp", "orig_rax"),
                     more_registers=_no_more_registers,
                     frames_past_site: int | None = None,
                     only: set[int] | None = None,
                     max_threads: int | None = None,
                     quick: bool = True) -> list[ThreadSnapshot]:
    """Every thread's frame-0 ``registers`` (plus whatever ``more_registers``
    asks for, given those read so far) and at most ``max_frames`` frames.  With
    ``frames_past_site`` the walk stops that many frames after the wait site,
    the first frame outside ``system_objects`` -- or, when that is a frame of
    the standard libraries compiled into the program (Rust std, libstdc++'s
    templates), after the program's frame that called them: unwinding is
    most of the cost.
    Source lines are looked up only for the wait site (find_sal is costly).
    ``only``: the thread numbers to read; ``max_threads``: read at most that
    many, the lowest-numbered.  ``quick``: read live threads stopped in a
    system call through _QuickWalk where it can (the same values, a fraction
    of the cost).  Switches threads to read them; the
    caller restores the user's selection (``preserved_selection``).  Nothing
    is resumed or written."""
    inferior = gdb.selected_inferior()
    progspace = gdb.current_progspace()
    system = re.compile(system_objects)
    seen: dict = {}
    out = []
    quick = _QuickWalk.open(inferior, progspace, system, max_frames, frames_past_site, seen) \
        if quick and frames_past_site is not None and not _python_unwinders() else None
    for thread in sorted(inferior.threads(), key=lambda t: t.num):
        if not thread.is_valid() or (only is not None and thread.num not in only):
            continue
        if max_threads is not None and len(out) >= max_threads:
            break
        if quick is not None:
            found = quick.snapshot(thread, registers, more_registers)
            if found is not None:
                out.append(found)
                continue
        thread.switch()
        try:
            frame = gdb.newest_frame()
        except gdb.error:
            continue
        regs = _read_registers(frame, registers)
        for _ in range(3):          # each answer may depend on the last
            wanted = [r for r in more_registers(regs) if r not in regs]
            if not wanted:
                break
            regs.update(_read_registers(frame, wanted))
        pc = regs.get("rip")
        if pc is None:
            try:
                pc = int(frame.pc())
            except gdb.error:       # no registers (a damaged note): the thread, no frames
                out.append(ThreadSnapshot(thread.num, thread.ptid[1],
                                          lenient(lambda: thread.name), regs, False, [], False))
                continue
        in_syscall = seen.get(("syscall", pc))     # threads parked at one pc: one read
        if in_syscall is None:
            in_syscall = _after_syscall(inferior, pc)
            seen[("syscall", pc)] = in_syscall
        if not in_syscall and _at_syscall(inferior, pc):
            # stopped on its way back in: a wait the stop interrupted restarts by
            # re-running `syscall` with rax = the call (the kernel rewound rip by 2)
            rax = _read_registers(frame, ("rax",)).get("rax")
            if rax is not None and 0 <= rax < 1024:
                in_syscall, regs["orig_rax"] = True, rax
                for _ in range(3):
                    wanted = [r for r in more_registers(regs) if r not in regs]
                    if not wanted:
                        break
                    regs.update(_read_registers(frame, wanted))
        frames, truncated = _walk(frame, max_frames, progspace, system, frames_past_site,
                                  seen, quick.names if quick is not None else None)
        name = lenient(lambda: thread.name)
        out.append(ThreadSnapshot(thread.num, thread.ptid[1], name, regs, in_syscall,
                                  frames, truncated))
    return out


def thread_count() -> int:
    return len(gdb.selected_inferior().threads())


def thread_pointers() -> dict[int, int | None]:
    """LWP -> the thread's pthread_t (on x86-64 glibc its thread pointer,
    fs_base, the address of its struct pthread): libthread_db's handle where
    gdb has one, which needs no thread switch, else the fs_base register.
    May switch threads: the caller restores the user's selection."""
    out: dict[int, int | None] = {}
    missing = []
    for thread in gdb.selected_inferior().threads():
        lwp = thread.ptid[1]
        try:
            handle = thread.handle()
            out[lwp] = int.from_bytes(handle, "little") if handle and len(handle) == 8 \
                else None
        except (gdb.error, RuntimeError, AttributeError, TypeError):
            out[lwp] = None
        if not out[lwp] and thread.is_valid():
            missing.append(thread)
    for thread in missing:
        thread.switch()
        try:
            out[thread.ptid[1]] = _read_registers(gdb.newest_frame(),
                                                  ("fs_base",)).get("fs_base")
        except gdb.error:
            pass
    return out


def thread_lwps() -> set[int]:
    """The LWP of every thread gdb knows, without switching to any."""
    return {t.ptid[1] for t in gdb.selected_inferior().threads()}


def _read_registers(frame, names) -> dict[str, int]:
    regs = {}
    for name in names:
        try:
            regs[name] = int(frame.read_register(name)) & 0xFFFFFFFFFFFFFFFF
        except (gdb.error, ValueError):
            pass
    return regs


def _walk(frame, max_frames: int, progspace, system, past_site,
          seen: dict, names: dict | None = None) -> tuple[list[FrameInfo], bool]:
    """``seen`` caches per pc what is the same for every thread parked at
    that pc (the object, the source line): 10,000 threads waiting in one
    function ask once.  ``names`` collects, for _QuickWalk, gdb's frame names
    per physical frame: {(pc, frame 0 or not): (names, complete)}, one name
    per inlined function then the function holding them."""
    frames = []
    site_level = stop_at = None
    program_line = False        # the site is a standard library's: look up the caller's too
    exe = progspace.filename
    group: list = []
    for level in range(max_frames):
        try:
            pc = frame.pc()
            name = trusted_name(pc, lenient(frame.name))
            objfile = seen.get(pc, _UNSEEN)
            if objfile is _UNSEEN:
                objfile = seen[pc] = lenient(lambda: progspace.solib_name(pc))
            file = line = None
            if program_line and not (name and STD_LIBRARY_FRAME.match(name)):
                if name:
                    key = (pc, name)        # inlined frames share a pc, not a line
                    if key not in seen:
                        sal = frame.find_sal()
                        seen[key] = ((sal.symtab.filename if sal.symtab else None),
                                     sal.line or None)
                    file, line = seen[key]
                program_line = False        # the program's frame: count from here
                stop_at = None if past_site is None else level + past_site
            if site_level is None and not (objfile and system.search(objfile)):
                program_line = bool(name and STD_LIBRARY_FRAME.match(name))
                key = (pc, level == 0)      # a caller's line is looked up at pc - 1
                if key not in seen:
                    sal = frame.find_sal()
                    seen[key] = (sal.symtab.filename if sal.symtab else None), sal.line or None
                file, line = seen[key]
                site_level = level
                stop_at = None if past_site is None or program_line else level + past_site
            objfile = objfile or (exe if file or name else None)
            frames.append(FrameInfo(level, pc, name, objfile, file, line))
            if names is not None:
                group = _name_group(names, group, frame, pc, level, name, frames)
            if site_level is not None and stop_at is not None and level >= stop_at:
                if group:                   # stopped inside an inline chain
                    names.setdefault(group[0], (tuple(group[1:]), False))
                return frames, False        # enough: older() is the costly call
            frame = frame.older()
        except (gdb.error, RuntimeError):
            return frames, False
        if frame is None:
            return frames, False
    return frames, True


def _name_group(names: dict, group: list, frame, pc: int, level: int, name, frames) -> list:
    """One frame into ``names`` (see _walk): ``group`` is [key, names...] of
    the physical frame being read; the new group is returned."""
    if not group:
        group = [(pc, level == 0)]
    group.append(name)
    kind = frame.type()
    if kind == gdb.INLINE_FRAME:    # the function holding it comes next, same pc
        return group
    if kind == gdb.NORMAL_FRAME:
        names[group[0]] = (tuple(group[1:]), True)
    else:                           # a tail-call or signal frame: gdb's own business
        names.setdefault(_NOT_STEPPED, set()).update(
            {pc} | ({frames[-2].pc} if len(frames) > 1 else set()))
    return []


_UNSEEN = object()
_NOT_STEPPED = object()

# What /proc/PID/task/TID/syscall gives of a thread stopped in a system call
# (proc(5)): the number, the six arguments, the stack pointer and the pc.
_PROC_SYSCALL_REGISTERS = ("orig_rax", "rdi", "rsi", "rdx", "r10", "r8", "r9", "rsp", "rip")


def _python_unwinders() -> bool:
    """Whether a Python frame unwinder is registered anywhere: gdb would
    consult it, so frames must come from gdb."""
    try:
        return bool(gdb.frame_unwinders or gdb.current_progspace().frame_unwinders
                    or any(o.frame_unwinders for o in gdb.objfiles()))
    except (AttributeError, gdb.error, RuntimeError):
        return True


class _QuickWalk:
    """A thread stopped in a system call, read without gdb's frame
    machinery: frame 0's registers -- live, from /proc/PID/task/TID/syscall
    (what the kernel saved at the syscall, the values gdb reads through
    ptrace); in a core, from its NT_PRSTATUS notes (what gdb reads as the
    thread's registers there) -- and the frames down to the wait site stepped from the objects' CFI
    (unwind/cfi_step.py), each frame's name as gdb named it at that pc in
    an earlier thread.  Anything it cannot do exactly -- a thread not in a
    system call, a register /proc does not give, a CFA rule it does not
    follow, a pc gdb has not named yet -- gives None, and the caller walks
    that thread with gdb (which names its pcs for the next threads)."""

    def __init__(self, inferior, progspace, system, max_frames: int, past_site: int,
                 seen: dict):
        self.inferior, self.progspace, self.system = inferior, progspace, system
        self.max_frames, self.past_site, self.seen = max_frames, past_site, seen
        self.pid = inferior.pid
        self.names: dict = {}
        self.rules: dict = {}
        self.objects: dict = {}
        self.loaded = None
        self.chunk: tuple[bytes, int | None] = (b"", None)
        self.core: dict[int, dict[str, int]] | None = None

    @classmethod
    def open(cls, inferior, progspace, system, max_frames: int, past_site: int,
             seen: dict) -> "_QuickWalk | None":
        """The quick walk for a live process or a core, else None."""
        where = kind()
        if where not in ("live", "core"):
            return None
        quick = cls(inferior, progspace, system, max_frames, past_site, seen)
        if where == "core":
            from . import core_registers
            try:
                quick.core = core_registers.registers(core_file_path() or "")
            except GdbextError:
                return None
        return quick

    def frame0(self, lwp: int) -> dict[str, int] | None:
        """Frame 0's registers of a thread stopped in a system call, else None."""
        if self.core is not None:
            have = self.core.get(lwp)
            return have if have and have["orig_rax"] < 1 << 63 else None
        try:
            fd = os.open(f"/proc/{self.pid}/task/{lwp}/syscall", os.O_RDONLY)
            try:
                fields = os.read(fd, 256).split()
            finally:
                os.close(fd)
            if len(fields) != 9 or int(fields[0]) < 0:
                return None         # running, or stopped outside a system call
            return dict(zip(_PROC_SYSCALL_REGISTERS,
                            [int(fields[0])] + [int(f, 16) for f in fields[1:]]))
        except (OSError, ValueError):
            return None

    def snapshot(self, thread, registers, more_registers) -> ThreadSnapshot | None:
        lwp = thread.ptid[1]
        have = self.frame0(lwp)
        if have is None:
            return None
        if any(r not in have for r in registers):
            return None
        regs = {r: have[r] for r in registers}
        for _ in range(3):
            wanted = [r for r in more_registers(regs) if r not in regs]
            if not wanted:
                break
            if any(r not in have for r in wanted):
                return None
            regs.update((r, have[r]) for r in wanted)
        pc = have["rip"]
        in_syscall = self.seen.get(("syscall", pc))
        if in_syscall is None:
            in_syscall = _after_syscall(self.inferior, pc)
            self.seen[("syscall", pc)] = in_syscall
        walked = self.walk({r: have[r] for r in ("rip", "rsp", "rbp") if r in have})
        if walked is None:
            return None
        name = lenient(lambda: thread.name)
        return ThreadSnapshot(thread.num, lwp, name, regs, in_syscall, *walked)

    def walk(self, regs: dict[str, int]) -> tuple[list[FrameInfo], bool] | None:
        from .unwind.cfi_step import caller_registers
        frames = []
        site_level = None
        program_line = False        # as _walk: the caller of a standard library's site
        stop_at = None
        exe = self.progspace.filename
        self.chunk = b"", None
        level = 0
        while True:
            pc = regs["rip"]
            group = self.names.get((pc, level == 0))
            if group is None or pc in self.names.get(_NOT_STEPPED, ()):
                return None
            objfile = self.seen.get(pc, _UNSEEN)
            if objfile is _UNSEEN:
                objfile = self.seen[pc] = lenient(lambda: self.progspace.solib_name(pc))
            system = bool(objfile and self.system.search(objfile))
            for name in group[0]:
                if level >= self.max_frames:
                    return None     # gdb says whether an older frame exists
                file = line = None
                if program_line and not (name and STD_LIBRARY_FRAME.match(name)):
                    if name:
                        if (pc, name) not in self.seen:
                            return None     # gdb looks it up (the slow walk)
                        file, line = self.seen[(pc, name)]
                    program_line = False
                    stop_at = level + self.past_site
                if site_level is None and not system:
                    key = (pc, level == 0)
                    if key not in self.seen:
                        return None
                    file, line = self.seen[key]
                    site_level = level
                    program_line = bool(name and STD_LIBRARY_FRAME.match(name))
                    stop_at = None if program_line else level + self.past_site
                frames.append(FrameInfo(level, pc, name, objfile or (
                    exe if file or name else None), file, line))
                if stop_at is not None and level >= stop_at:
                    return frames, False
                level += 1
            if not group[1] or group[0][-1] == "main":
                return None         # gdb stops at main (set backtrace past-main off)
            older = caller_registers(self.rule(pc, len(frames) - len(group[0])), regs,
                                     self.word)
            if older is None or older["rsp"] <= regs["rsp"]:
                return None         # not exact, or not outer (gdb says why it stops)
            regs = older

    STACK_CHUNK = 512                   # the few frames down to a wait site: one read

    def word(self, address: int) -> int | None:
        chunk, start = self.chunk
        if start is None:               # the first word a thread asks for: its stack
            try:
                chunk = bytes(self.inferior.read_memory(address, self.STACK_CHUNK))
            except (gdb.MemoryError, gdb.error, OverflowError, ValueError):
                chunk = b""             # the end of the stack mapping: word by word
            self.chunk = chunk, start = chunk, address
        offset = address - start
        if 0 <= offset <= len(chunk) - 8:
            return int.from_bytes(chunk[offset:offset + 8], "little")
        try:
            return int.from_bytes(bytes(self.inferior.read_memory(address, 8)), "little")
        except (gdb.MemoryError, gdb.error, OverflowError, ValueError):
            return None

    def rule(self, pc: int, level: int):
        """The CFA rule for the frame at pc (a caller's at pc - 1: the call
        may be its function's last instruction), from the object's
        .eh_frame; cached per pc."""
        key = (pc, level == 0)
        if key in self.rules:
            return self.rules[key]
        from .spill import cfi
        rule = None
        where = self.object_of(pc)
        if where is not None:
            path, bias, tables = where
            found = cfi.lookup_in(*tables, pc - bias - (0 if level == 0 else 1), path)
            rule = found if isinstance(found, cfi.CfaRule) else None
        self.rules[key] = rule
        return rule

    def object_of(self, pc: int) -> tuple[str, int, tuple] | None:
        """(path, load bias, (.eh_frame_hdr, its address, .eh_frame, its
        address)) of the object holding pc, read once per object with
        struct (pyelftools' import alone costs more than a thousand steps)."""
        objfile = self.progspace.objfile_for_address(pc) \
            if hasattr(self.progspace, "objfile_for_address") else None
        path = objfile.filename if objfile is not None else \
            lenient(lambda: self.progspace.solib_name(pc))
        if not path:
            return None
        try:
            local = file_for(path)          # the build that ran, read here
        except GdbextError:
            return None
        if path not in self.objects:
            self.objects[path] = None
            if self.loaded is None:
                self.loaded = object_sections()
            bias = load_bias(path, self.loaded)
            if bias is not None:
                from . import elf_file
                try:
                    table = {sec.name: sec for sec in elf_file.sections(local)}
                    hdr, frame = table[".eh_frame_hdr"], table[".eh_frame"]
                    with open(local, "rb") as fh:
                        fh.seek(hdr.offset)
                        hdr_bytes = fh.read(hdr.size)
                        fh.seek(frame.offset)
                        frame_bytes = fh.read(frame.size)
                    self.objects[path] = (path, bias, (hdr_bytes, hdr.address,
                                                       frame_bytes, frame.address))
                except (GdbextError, KeyError, OSError, ValueError):
                    pass
        return self.objects[path]


def stop_signal() -> SignalInfo | None:
    """The signal that stopped the selected thread, from $_siginfo (live and cores)."""
    if gdb.selected_thread() is None:
        return None
    try:
        info = gdb.parse_and_eval("$_siginfo")
        signo = int(info["si_signo"])
        code = int(info["si_code"])
    except (gdb.error, gdb.MemoryError, RuntimeError):
        return _reported_stop() if kind() == "remote" else None
    if signo == 0:
        return None
    addr = None
    syscall = arch = None
    if signo in (4, 5, 7, 8, 11):   # SIGILL SIGTRAP SIGBUS SIGFPE SIGSEGV carry si_addr
        try:
            addr = int(info["_sifields"]["_sigfault"]["si_addr"])
        except (gdb.error, RuntimeError):
            addr = None
    elif signo == 31 and code > 0:  # SIGSYS from seccomp: the call's address, number, ABI
        try:
            sys_fields = info["_sifields"]["_sigsys"]
            addr = int(sys_fields["_call_addr"])
            syscall = int(sys_fields["_syscall"])
            arch = int(sys_fields["_arch"]) & 0xFFFFFFFF
        except (gdb.error, RuntimeError):
            pass
    sender = None
    if code <= 0:                   # SI_USER, SI_QUEUE, SI_TKILL...: kill(2) and friends
        try:
            sender = int(info["_sifields"]["_kill"]["si_pid"])
        except (gdb.error, RuntimeError):
            sender = None
    return SignalInfo(signo, code, addr, sender, syscall, arch)


def _reported_stop() -> SignalInfo | None:
    """A remote stub that serves no siginfo (qemu-user's) still reports the
    stop's signal, which gdb keeps for `info program`: the signal, with no
    si_code and no address (as a core's pr_cursig)."""
    import signal as signals
    m = re.search(r"^It stopped with signal (SIG[A-Z0-9]+)", _execute("info program"), re.M)
    if not m or m.group(1) in ("SIGTRAP", "SIGINT"):    # a breakpoint, an interrupt: no crash
        return None
    try:
        return SignalInfo(signals.Signals[m.group(1)].value, None, None)
    except KeyError:
        return None


def syscall_name(number: int, abi: str = "amd64") -> str | None:
    """A system call's name from gdb's own table (DATA-DIRECTORY/syscalls/
    ABI-linux.xml, what `catch syscall` reads); None when it is not there."""
    return _syscall_names(abi).get(number)


@functools.lru_cache(maxsize=4)
def _syscall_names(abi: str) -> dict[int, str]:
    try:
        directory = gdb.parameter("data-directory")
        with open(os.path.join(directory, "syscalls", f"{abi}-linux.xml")) as f:
            text = f.read()
    except (OSError, gdb.error, RuntimeError, TypeError):
        return {}
    return {int(n): name for name, n in
            re.findall(r'<syscall\s+name="([^"]+)"\s+number="(\d+)"', text)}


def selected_thread_identity() -> dict | None:
    """num, lwp and name of the selected thread."""
    thread = gdb.selected_thread()
    if thread is None:
        return None
    return {"num": thread.num, "lwp": thread.ptid[1], "name": lenient(lambda: thread.name)}


def select_newest_frame(thread_num: int | None = None) -> None:
    """Select frame 0 of thread ``thread_num`` (default: the selected one);
    the caller restores the user's selection (``preserved_selection``)."""
    with contextlib.suppress(gdb.error, RuntimeError):
        if thread_num is not None:
            for thread in gdb.selected_inferior().threads():
                if thread.num == thread_num and thread.is_valid():
                    thread.switch()
                    break
        gdb.newest_frame().select()


def disassembly_flavor() -> str:
    try:
        return str(gdb.parameter("disassembly-flavor"))
    except (gdb.error, RuntimeError):
        return "att"


@contextlib.contextmanager
def preserved_selection():
    """Restore the user's thread and frame however the body ends.

    A gdb.Frame is valid only while its thread is selected, so the thread is
    switched back first, then the frame (by identity, else by level).
    """
    thread = gdb.selected_thread()
    frame = _selected_frame_or_none()
    level = frame.level() if frame is not None else None
    _ONE_COMMAND.clear()
    try:
        yield
    finally:
        _ONE_COMMAND.clear()
        with contextlib.suppress(gdb.error, RuntimeError):
            if thread is not None and thread.is_valid():
                thread.switch()
            if frame is not None:
                if frame.is_valid():
                    frame.select()
                elif level is not None:
                    _execute(f"frame {level}")


def bound(name: str) -> int:
    """The value of ``set gdbext NAME`` (knowledge/bounds.py), else its default."""
    from .knowledge.bounds import BOUNDS
    try:
        value = gdb.parameter(f"gdbext {name}")
    except (gdb.error, RuntimeError):
        value = None
    return value if isinstance(value, int) and value > 0 else BOUNDS[name].default


def is_debug_enabled() -> bool:
    try:
        return bool(gdb.parameter("gdbext debug"))
    except (gdb.error, RuntimeError):
        return False


# --- the faulting frame and its callers (spill-audit) -------------------------
GENERAL_REGISTERS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9",
                     "r10", "r11", "r12", "r13", "r14", "r15", "rip", "eflags",
                     "fs_base", "gs_base")


@record
class StackFrame:
    """One frame with its stack pointer and CFA, for stack audits."""
    level: int
    pc: int
    rsp: int | None             # the frame's stack pointer (at the call, for callers)
    cfa: int | None             # the caller's rsp after return, from gdb's unwinder
    function: str | None
    objfile: str | None
    inlined: int = 0            # inline frames folded into this one
    evidence: str = "exact"     # "inferred": found by stack scanning (unwind/stack_scan.py)
    inlined_names: tuple = ()   # their functions, innermost first (an intrinsic at #0)


def selected_registers() -> dict[str, int]:
    """The selected frame's general registers (and fs/gs bases)."""
    frame = _selected_frame_or_none()
    if frame is None:
        raise GdbextError(NOTHING_LOADED)
    return _read_registers(frame, GENERAL_REGISTERS)


def stack_frames(max_frames: int) -> tuple[list[StackFrame], bool]:
    """The selected frame and its callers, real frames only: an inline frame
    shares its function's stack, so it is folded into the frame that holds
    it.  A frame's CFA is its caller's rsp as gdb's unwinder computes it.
    Returns the frames and whether ``max_frames`` cut the walk."""
    frame = _selected_frame_or_none()
    if frame is None:
        raise GdbextError(NOTHING_LOADED)
    progspace = gdb.current_progspace()
    out: list[StackFrame] = []
    inlined, names = 0, []
    while frame is not None and len(out) < max_frames:
        try:
            older = frame.older()
            if frame.type() in (gdb.INLINE_FRAME, gdb.TAILCALL_FRAME):
                inlined += 1            # no stack of its own: named by the frame holding its pc
                names.append(frame.name())
                frame = older
                continue
            pc = int(frame.pc())
            rsp = _read_registers(frame, ("rsp",)).get("rsp")
            cfa = _read_registers(older, ("rsp",)).get("rsp") if older is not None else None
            name = trusted_name(pc, lenient(frame.name))
            path = lenient(lambda: progspace.solib_name(pc)) or \
                (progspace.filename if name else None)
            out.append(StackFrame(frame.level(), pc, rsp, cfa, name, path, inlined,
                                  inlined_names=tuple(names)))
        except (gdb.error, RuntimeError):
            return out, False       # a frame gdb cannot read (no pc): the walk ends, not cut
        inlined, names = 0, []
        frame = older
    return out, frame is not None


def load_bias(path: str, loaded=None) -> int | None:
    """Run-time minus link-time address of a loaded file, from gdb's section
    table (``object_sections()``, or ``loaded`` when already read) and the
    file's own section headers."""
    from . import elf_file
    runtime = (loaded if loaded is not None else object_sections()).get(path)
    if not runtime:
        return None
    try:
        link = elf_file.section_addresses(file_for(path))
    except GdbextError:
        return None
    for name, (start, _end) in runtime.items():
        if name in link:
            return start - link[name]
    return None


@record
class Mapping:
    """One memory mapping of the process."""
    start: int
    end: int
    perms: str                  # "rw-p" (live) or "rw-" (core segment flags)
    name: str = ""              # the file or [stack] (live only)
    offset: int = 0             # the file offset it maps (live only)

    @property
    def readable(self) -> bool:
        return self.perms[:1] == "r"

    @property
    def executable(self) -> bool:
        return self.perms[2:3] == "x"


def live_maps() -> list[Mapping] | None:
    """/proc/PID/maps of a live process (a remote one's as gdb reads it on
    the target: `info proc mappings` over gdbserver); None on other targets."""
    pid_ = gdb.selected_inferior().pid
    if kind() == "remote" and pid_:
        return _remote_maps()
    if kind() != "live" or not pid_:
        return None
    try:
        with open(f"/proc/{pid_}/maps", encoding="utf-8", errors=ERRORS) as fh:
            text = fh.read()
    except OSError:
        return None
    return [Mapping(int(lo, 16), int(hi, 16), perms, name.strip(), int(off, 16))
            for lo, hi, perms, off, name in re.findall(
                r"^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) \S+ \S+[ \t]*(.*)$", text, re.M)]


def _remote_maps() -> list[Mapping] | None:
    """`info proc mappings` on a remote target (gdb 13 and 16 print Perms
    before the objfile); None when the stub serves no /proc (qemu's)."""
    try:
        out = _execute("info proc mappings")
    except gdb.error:
        return None
    rows = re.findall(r"^\s*(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)\s+"
                      r"([r-][w-][x-][ps])[ \t]*(.*?)[ \t]*$", out, re.M)
    return [Mapping(int(lo, 16), int(hi, 16), perms, name, int(off, 16))
            for lo, hi, off, perms, name in rows] or None


def remote_command_line() -> str | None:
    """A remote process's command line (`info proc cmdline` on the target)."""
    try:
        out = _execute("info proc cmdline")
    except gdb.error:
        return None
    m = re.search(r"^cmdline = '(.*)'$", out, re.M)
    return m.group(1) if m else None


def mappings() -> list[Mapping] | None:
    """The target's memory mappings with permissions: /proc/PID/maps live, the
    core's PT_LOAD segments (every mapping, PROT_NONE guards included);
    None when neither is available."""
    if kind() in ("live", "remote"):
        return live_maps()
    core = core_file_path() if kind() == "core" else None
    if core:
        from . import elf_file
        try:
            segments = elf_file.load_segments(core)
        except GdbextError:
            return None
        return [Mapping(seg.address, seg.address + seg.size,
                        ("r" if seg.flags & 4 else "-") + ("w" if seg.flags & 2 else "-")
                        + ("x" if seg.flags & 1 else "-")) for seg in segments]
    return None


def accessible_probe():
    """A ``readable(address) -> bool`` for the target as the program saw it.
    A live process is judged by /proc/PID/maps permissions: ptrace reads
    PROT_NONE pages (guard pages) without complaint; a core keeps each
    mapping's permissions in its program headers, and gdb reads a no-access
    segment as zeros.  Otherwise a failed read is the answer."""
    pid_ = gdb.selected_inferior().pid
    if kind() == "live" and pid_:
        try:
            with open(f"/proc/{pid_}/maps", encoding="utf-8", errors=ERRORS) as fh:
                maps = [(int(lo, 16), int(hi, 16), perms) for lo, hi, perms in
                        re.findall(r"^([0-9a-f]+)-([0-9a-f]+) (\S+)", fh.read(), re.M)]
        except OSError:
            maps = None
        if maps is not None:
            return lambda address: any(lo <= address < hi and perms[0] == "r"
                                       for lo, hi, perms in maps)
    core = core_file_path() if kind() == "core" else None
    if core:
        from . import elf_file
        try:
            segments = elf_file.load_segments(core)
        except GdbextError:
            segments = None
        if segments:        # gdb reads a no-access segment of a core as zeros
            return lambda address: any(s.address <= address < s.address + s.size
                                       and s.flags & elf_file.PF_R for s in segments)

    def readable(address: int) -> bool:
        try:
            gdb.selected_inferior().read_memory(address, 1)
            return True
        except (gdb.MemoryError, OverflowError, ValueError):
            return False
    return readable


# --- threads by LWP and executable mappings (py-stacks, stack scanning) -------
def thread_ids() -> list[tuple[int, int]]:
    """(gdb thread number, LWP) of every thread, by number: no switching."""
    return sorted((t.num, t.ptid[1]) for t in gdb.selected_inferior().threads()
                  if t.is_valid())


def frame0_registers(names=("orig_rax", "rdi")) -> dict[int, dict[str, int]]:
    """Frame 0's ``names`` of every thread, by LWP.  Switches threads; the
    caller restores the user's selection (``preserved_selection``)."""
    out = {}
    for thread in sorted(gdb.selected_inferior().threads(), key=lambda t: t.num):
        if not thread.is_valid():
            continue
        thread.switch()
        try:
            out[thread.ptid[1]] = _read_registers(gdb.newest_frame(), names)
        except gdb.error:
            continue
    return out


def stack_pointer(lwp: int) -> int | None:
    """One thread's frame-0 rsp, by LWP.  Switches to it; the caller
    restores the user's selection (``preserved_selection``)."""
    thread = next((t for t in gdb.selected_inferior().threads()
                   if t.is_valid() and t.ptid[1] == lwp), None)
    if thread is None:
        return None
    thread.switch()
    try:
        return _read_registers(gdb.newest_frame(), ("rsp",)).get("rsp")
    except gdb.error:
        return None


def executable_ranges() -> list[tuple[int, int]]:
    """[start, end) of every executable mapping: /proc/PID/maps live, the
    core's PF_X segments, and the loaded objects' code sections."""
    ranges = [(m.start, m.end) for m in mappings() or () if m.executable]
    # gdb's gcore marks only some segments PF_X (the vdso, not the libraries'
    # code): the loaded objects' code sections are executable in any core.
    ranges += [span for sections in object_sections().values()
               for name, span in sections.items()
               if name in (".text", ".plt", ".plt.got", ".plt.sec", ".init", ".fini")]
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def frames_with_sp(thread_num: int, max_frames: int
                   ) -> tuple[list[FrameInfo], list[int | None]]:
    """Thread ``thread_num``'s frames as gdb unwinds them and each frame's
    rsp (where a stack scan starts).  Switches threads."""
    for thread in gdb.selected_inferior().threads():
        if thread.num == thread_num and thread.is_valid():
            thread.switch()
            break
    else:
        return [], []
    progspace = gdb.current_progspace()
    frames: list[FrameInfo] = []
    sps: list[int | None] = []
    try:
        frame = gdb.newest_frame()
    except gdb.error:
        return frames, sps
    while frame is not None and len(frames) < max_frames:
        try:
            pc = frame.pc()
            rsp = _read_registers(frame, ("rsp",)).get("rsp")
            name = trusted_name(pc, lenient(frame.name))
            objfile = lenient(lambda: progspace.solib_name(pc)) or \
                (progspace.filename if name else None)
            frames.append(FrameInfo(len(frames), pc, name, objfile))
            sps.append(rsp)
            frame = frame.older()
        except (gdb.error, RuntimeError):
            break
    return frames, sps


def mapping_end(address: int) -> int | None:
    """The end of the mapping holding ``address`` (a stack's top), live from
    /proc/PID/maps, in a core from its segments; None when unknown."""
    return next((m.end for m in mappings() or () if m.start <= address < m.end), None)


# --- crash-triage's reason readers (runtimes/, unwind/signal_frame.py) --------
def memory_reader():
    """``read(address, length) -> bytes`` over the selected inferior, for the
    pure runtime readers; raises GdbextError on unreadable memory."""
    return read_bytes


def find_all(start: int, length: int, pattern: bytes, limit: int) -> list[int]:
    """Where ``pattern`` occurs in [start, start+length), at most ``limit``
    addresses (gdb's search_memory: reads the target, never writes it)."""
    out, inferior, end = [], gdb.selected_inferior(), start + length
    while start < end and len(out) < limit:
        try:
            found = inferior.search_memory(start, end - start, pattern)
        except (gdb.error, gdb.MemoryError, ValueError):
            break
        if found is None:
            break
        out.append(int(found))
        start = int(found) + 1
    return out


def thread_pointer() -> int | None:
    """The selected thread's fs_base: its glibc ``struct pthread`` and TCB."""
    with contextlib.suppress(gdb.error, RuntimeError, ValueError):
        return int(gdb.newest_frame().read_register("fs_base")) & 0xFFFFFFFFFFFFFFFF
    return None


def demangle_type(mangled: str) -> str | None:
    """A mangled C++ type name (``St13runtime_error``) as source text, by
    gdb's demangler on a one-parameter function ``f(TYPE)``."""
    if not re.fullmatch(r"[A-Za-z0-9_$.]+", mangled or ""):
        return None
    try:
        out = _execute(f"demangle -l c++ -- _Z1f{mangled}").strip()
    except gdb.error:
        return None
    return out[2:-1] if out.startswith("f(") and out.endswith(")") else None


@record
class SigtrampFrame:
    """A <signal handler called> frame and what it interrupted."""
    level: int
    sp: int                     # the sigtramp frame's rsp: &ucontext (signal_frame.py)
    older_pc: int | None        # the pc gdb unwound the interrupted frame to


def sigtramp_frames(max_frames: int) -> list[SigtrampFrame]:
    """The selected thread's ``<signal handler called>`` frames, innermost first."""
    out = []
    with contextlib.suppress(gdb.error, RuntimeError):
        frame = gdb.newest_frame()
        for _ in range(max_frames):
            if frame is None:
                break
            if frame.type() == gdb.SIGTRAMP_FRAME:
                older = frame.older()
                sp = int(frame.read_register("rsp")) & 0xFFFFFFFFFFFFFFFF
                out.append(SigtrampFrame(frame.level(), sp,
                                         int(older.pc()) if older is not None else None))
            frame = frame.older()
    return out


def select_frame_level(level: int) -> bool:
    """Select frame ``level`` of the selected thread (the caller restores)."""
    try:
        _execute(f"frame {level}")
        return True
    except gdb.error:
        return False


def thread_names() -> list[dict]:
    """num, lwp and name of every thread (names: live only; None on cores)."""
    return [{"num": t.num, "lwp": t.ptid[1], "name": lenient(lambda: t.name)}
            for t in sorted(gdb.selected_inferior().threads(), key=lambda t: t.num)
            if t.is_valid()]


def core_signal() -> SignalInfo | None:
    """The signal of the selected thread from the core's NT_PRSTATUS
    ``pr_cursig``, for cores without NT_SIGINFO (qemu-user's, old kernels'):
    no si_code, no address.  None on other targets or without a signal."""
    path = core_file_path() if kind() == "core" else None
    thread = gdb.selected_thread()
    if not path or thread is None:
        return None
    from . import core_file
    try:
        facts = core_file.read(path)
    except core_file.CoreFileError:
        return None
    lwp = thread.ptid[1] or thread.ptid[0]
    signo = facts.cursig.get(lwp)
    if signo is None and len(facts.cursig) == 1:
        signo = next(iter(facts.cursig.values()))
    return SignalInfo(signo, None, None) if signo else None


# --- the batch worker's gdb (cli/gdb_worker.py) --------------------------------------
def _at_syscall(inferior, pc: int) -> bool:
    """Whether the instruction at ``pc`` is `syscall` (0f 05)."""
    try:
        return bytes(inferior.read_memory(pc, 2)) == b"\x0f\x05"
    except gdb.MemoryError:
        return False


def _after_syscall(inferior, pc: int) -> bool:
    """Whether the two bytes before ``pc`` are `syscall` (0f 05): a thread
    parked in the kernel.  A pc below 2 (a core's NT_PRSTATUS says 0) has
    no such bytes."""
    if pc < 2:
        return False
    try:
        return bytes(inferior.read_memory(pc - 2, 2)) == b"\x0f\x05"
    except gdb.MemoryError:
        return False


def _execute(command: str) -> str:
    """A gdb command's output; what it printed of a core's or a process's
    bytes (paths, psargs) decoded by the one policy (text.py)."""
    return lenient(lambda: gdb.execute(command, to_string=True))


def run_command(command: str, capture: bool = True) -> str | None:
    """A gdb command, its output returned (``capture``) or printed to stdout
    as a one-shot gdb prints it; GdbextError with gdb's own words."""
    try:
        return lenient(lambda: gdb.execute(command, to_string=capture))
    except (gdb.error, gdb.GdbError) as exc:
        raise GdbextError(str(exc)) from None


def say(text: str, stderr: bool = False) -> None:
    """``text`` on gdb's stdout or stderr, flushed: the batch driver reads both."""
    stream = gdb.STDERR if stderr else gdb.STDOUT
    gdb.write(text, stream)
    gdb.flush(stream)


def only_executable_loaded(executable: str | None) -> bool:
    """Nothing of a target is left in gdb but, when given, ``executable``'s
    own objfiles: no process, no threads, one inferior."""
    inferior = gdb.selected_inferior()
    if inferior.pid != 0 or inferior.threads() or len(gdb.inferiors()) != 1:
        return False
    if executable is None:
        return not gdb.objfiles() and gdb.current_progspace().filename is None
    real = os.path.realpath(executable)
    return all(os.path.realpath((o.owner or o).filename) == real for o in gdb.objfiles())
