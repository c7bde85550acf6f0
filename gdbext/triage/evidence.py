"""What crash-triage reads from the target to explain a crash: the runtime
readers' inputs (runtimes/), the interrupted context of a signal handler
(unwind/signal_frame.py), and the facts the fault rules see.  Every reader
here is wrapped: a garbage structure becomes a warning, never a traceback.
"""
from __future__ import annotations

import os
import re

from .. import target
from ..errors import GdbextError
from ..record import field, record


@record
class Reason:
    """Why the process aborted, in the runtime's own words."""
    verdict: str                # heap-corruption, assertion-failed, uncaught-exception...
    runtime: str                # glibc, libstdc++, rust-std, cpython
    summary: str                # one line for the headline
    key: str                    # the signature's key
    source: str                 # where it was read
    certainty: str              # exact / inferred
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"verdict": self.verdict, "runtime": self.runtime, "summary": self.summary,
                "key": self.key, "source": self.source, "certainty": self.certainty,
                "details": self.details}

    def rows(self) -> list[tuple[str, str]]:
        rows = [("reason", f"{self.summary}  [{self.runtime}; {self.source}; "
                           f"{self.certainty}]")]
        for k, v in self.details.items():
            if v in (None, "", [], {}) or k == "text" or k.endswith(_ANNOTATIONS):
                continue
            shown = v if isinstance(v, str) else _short(v)
            notes = [self.details.get(f"{k}{a}") for a in _ANNOTATIONS[1:]]
            if any(notes):      # a field read from its own source: say which and how sure
                shown += "  [" + "; ".join(str(n) for n in notes if n) + "]"
            rows.append((f"  {k}", shown))
        return rows


# A field's annotations: ("message", "message_certainty", "message_source")
_ANNOTATIONS = ("_truncated", "_certainty", "_source")


def _short(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items() if v not in (None, ""))
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):   # nested exceptions
            return " <- ".join(f"{v.get('type')}: {v.get('what')}" for v in value)
        return ", ".join(map(str, value))
    return str(value)


_SECTIONS: dict = {}
_DYNSYM: dict = {}
# Every symbol a reader looks up in one library, read in one pass of its .dynsym.
WANTED = {r"/libc\.so": ("__abort_msg",),
          r"/libstdc\+\+\.so": ("__cxa_get_globals", "_ZNKSt13runtime_error4whatEv",
                                "_ZNKSt11logic_error4whatEv", "_ZNKSt12future_error4whatEv",
                                "_ZNKSt8ios_base7failureB5cxx114whatEv",
                                "_ZNKSt8ios_base7failure4whatEv",
                                "_ZTVN10__cxxabiv120__si_class_type_infoE",
                                "_ZTVN10__cxxabiv121__vmi_class_type_infoE",
                                "_ZTVN10__cxxabiv117__class_type_infoE",
                                "_ZTVN10__cxxabiv123__fundamental_type_infoE",
                                "_ZTVN10__cxxabiv119__pointer_type_infoE",
                                "_ZTVN10__cxxabiv129__pointer_to_member_type_infoE",
                                "_ZTVN10__cxxabiv120__function_type_infoE",
                                "_ZTVN10__cxxabiv116__enum_type_infoE",
                                "_ZTVN10__cxxabiv117__array_type_infoE")}


def reset() -> None:
    """Forget what one triage read: the next may be another target."""
    _SECTIONS.clear()
    _DYNSYM.clear()


def sections() -> dict:
    if "all" not in _SECTIONS:
        _SECTIONS["all"] = target.object_sections()
    return _SECTIONS["all"]


def _exported(object_pattern: str, name: str) -> int | None:
    """The run-time address of ``name`` in the loaded object matching the
    pattern, from that object's own .dynsym and its load bias."""
    loaded = sections()
    path = next((p for p in loaded if re.search(object_pattern, p)), None)
    if path is None:
        return None
    if path not in _DYNSYM:
        names = WANTED.get(object_pattern, ()) + (name,)
        try:       # run-time addresses: the verified file, else its .dynsym in memory
            symbols = target.exported_symbols(path, names, loaded)
        except GdbextError:
            symbols = {}
        _DYNSYM[path] = symbols
    symbols = _DYNSYM[path]
    if name not in symbols:
        try:
            symbols.update(target.exported_symbols(path, (name,), loaded))
        except GdbextError:
            pass
    return symbols[name][0] if name in symbols else None


# --- glibc: __abort_msg ----------------------------------------------------------
def glibc_abort(warnings: list[str]) -> Reason | None:
    from ..runtimes import glibc_abort as ga
    where = _exported(r"/libc\.so", "__abort_msg")
    if where is None:
        return None
    read = target.memory_reader()
    try:
        pointer = target.read_pointer(where)
        msg = ga.read_message(read, pointer)
    except ga.AbortMessageError as exc:
        warnings.append(f"glibc's abort message: {exc}")
        return None
    except GdbextError as exc:
        warnings.append(f"glibc's __abort_msg is unreadable: {exc}")
        return None
    if msg is None:
        return None
    summary = msg.text.splitlines()[0] if msg.text else msg.kind
    if msg.kind == "assertion":
        f = msg.fields
        summary = (f"assertion `{f['expression']}' failed in {f.get('function', '?')} "
                   f"at {f['file']}:{f['line']}")
    elif msg.kind in ("stack-protector", "fortify", "fortify-other"):
        summary = msg.fields["check"]
    details = dict(msg.fields, kind=msg.kind, text=msg.text)
    return Reason(msg.verdict, "glibc", summary, msg.key,
                  "__abort_msg (libc .dynsym)", "exact", details)


# --- libstdc++: the in-flight exception -------------------------------------------
TERMINATE_FRAMES = re.compile(r"std::terminate|__cxxabiv1::__terminate|__cxa_throw|"
                              r"__cxa_rethrow|__gnu_cxx::__verbose_terminate_handler|"
                              r"__cxa_call_terminate|__cxa_call_unexpected|"
                              r"__cxa_pure_virtual|__cxa_deleted_virtual|std::rethrow_exception")
# The type_info classes' vtables (cxxabi.h), exported by libstdc++.
TYPEINFO_VTABLES = {"_ZTVN10__cxxabiv120__si_class_type_infoE": "si",
                    "_ZTVN10__cxxabiv121__vmi_class_type_infoE": "vmi",
                    "_ZTVN10__cxxabiv117__class_type_infoE": "class",
                    "_ZTVN10__cxxabiv123__fundamental_type_infoE": "fundamental",
                    "_ZTVN10__cxxabiv119__pointer_type_infoE": "pointer",
                    "_ZTVN10__cxxabiv129__pointer_to_member_type_infoE": "pointer_to_member",
                    "_ZTVN10__cxxabiv120__function_type_infoE": "function",
                    "_ZTVN10__cxxabiv116__enum_type_infoE": "enum",
                    "_ZTVN10__cxxabiv117__array_type_infoE": "array"}
# Who called std::terminate without an exception, by the frame under it:
# __cxa_pure_virtual/__cxa_deleted_virtual (pure.cc) and __cxa_rethrow with
# nothing caught (eh_throw.cc) call std::terminate directly.
NO_EXCEPTION_CALLERS = (
    ("__cxa_pure_virtual", "pure-virtual-call", "pure virtual method called"),
    ("__cxa_deleted_virtual", "pure-virtual-call", "deleted virtual method called"),
    ("__cxa_rethrow", "rethrow-without-exception", "`throw;` with no active exception"),
)


def cxx_exception(names: list[str], objects: list[str | None], warnings: list[str],
                  pcs: list[int] | None = None) -> Reason | None:
    from ..runtimes import cxx
    checked = glibcxx_assertion(names)
    if checked is not None:
        return checked
    terminated = any(TERMINATE_FRAMES.match(n) for n in names)
    if not terminated and not any(o and "libstdc++" in o for o in objects[:8]):
        return None
    try:
        found = _in_flight()
    except (cxx.ExceptionError, GdbextError) as exc:
        warnings.append(f"the in-flight C++ exception: {exc}")
        return Reason("uncaught-exception", "libstdc++", "std::terminate (the exception is "
                      "unreadable)", "unknown", "std::terminate frames", "inferred", {})
    runtime = _runtime_prefix(names, objects)
    caller = next((c for c in NO_EXCEPTION_CALLERS if c[0] in runtime), None)
    how_known = f"the {caller[0]} frame" if caller else None
    if caller is None and found is None and pcs and len(runtime) < len(pcs):
        called = _program_called(pcs[len(runtime)])
        caller = next((c for c in NO_EXCEPTION_CALLERS if c[0] == called), None)
        if caller is not None:
            how_known = (f"the call before {names[len(runtime)] or 'the program'}'s return "
                         f"address went to {caller[0]}")
    if found is None and not terminated:    # libstdc++ aborted some other way
        return None
    if found is None:
        if caller is not None:
            verdict = "pure-virtual-call" if caller[1] == "pure-virtual-call" else "terminate"
            return Reason(verdict, "libstdc++", f"std::terminate without an active "
                          f"exception: {caller[2]} ({caller[0]})", caller[1],
                          f"__cxa_eh_globals (libstdc++ TLS) and {how_known}",
                          "exact", {"exception": "none", "called_by": caller[0]})
        return Reason("terminate", "libstdc++", "std::terminate without an active exception",
                      "no-exception", "__cxa_eh_globals (libstdc++ TLS)", "exact",
                      {"exception": "none"})
    warnings.extend(found.warnings)
    summary = f"uncaught {found.type}" + (f": {found.what}" if found.what is not None else "")
    details = {"type": found.type, "what": _what(found), "bases": found.bases}
    if found.what_from in ("table", "code"):
        details["what_from"] = ("libstdc++'s constant for this type" if found.what_from ==
                                "table" else "its what() returns a constant (decoded)")
    if found.error is not None:     # std::system_error / std::future_error: error_code
        details["error"] = found.error
        summary += f" [{found.error['category'] or 'unknown category'}:{found.error['value']}]"
    if found.uncaught:          # __cxa_eh_globals.uncaughtExceptions: others still in flight
        details["uncaught"] = found.uncaught
    source = "__cxa_eh_globals.caughtExceptions (libstdc++ TLS)"
    if found.rethrown:
        summary += " (rethrown by std::rethrow_exception)"
        details["rethrown"] = "std::rethrow_exception"
        details["references"] = found.references     # exception_ptr copies + this one
        source += " -> a dependent exception's primaryException"
    how = _how_terminated(runtime, found)
    if how:
        details["terminate"] = how
    if found.nested:
        details["nested"] = [{"type": n.type, "what": _what(n)} for n in found.nested]
        summary += "; nested: " + " <- ".join(
            n.type + (f": {n.what}" if n.what is not None else "") for n in found.nested)
    if caller is not None and caller[0] != "__cxa_rethrow":
        details["called_by"] = caller[0]
    return Reason("uncaught-exception", "libstdc++", summary, found.type or "unknown",
                  source, "exact", details)


# libstdc++'s _GLIBCXX_ASSERTIONS checks (bits/c++config.h __glibcxx_assert ->
# std::__glibcxx_assert_fail(file, line, function, condition), src/c++11/
# assert_fail.cc since GCC 12; GCC 11 and older call __replacement_assert, an
# inline function): it prints the condition on stderr and calls abort(),
# keeping nothing in memory.
GLIBCXX_ASSERT_FAIL = ("std::__glibcxx_assert_fail", "std::__replacement_assert")


def glibcxx_assertion(names: list[str]) -> Reason | None:
    at = next((i for i, n in enumerate(names[:12]) if n in GLIBCXX_ASSERT_FAIL), None)
    if at is None:
        return None
    where = names[at + 1] if at + 1 < len(names) else None
    return Reason("assertion-failed", "libstdc++",
                  f"a libstdc++ precondition check (_GLIBCXX_ASSERTIONS) failed in "
                  f"{where or 'unknown code'}; libstdc++ printed the condition on stderr and "
                  "keeps no copy in memory", where or "unknown",
                  f"the {names[at]} frame", "exact",
                  {"checker": names[at], "function": where, "condition": "unknown"})


def _what(found) -> str:
    if found.what is not None:
        return found.what
    derived = found.type == "std::exception" or "std::exception" in found.bases
    return "unknown (what() is computed by code)" if derived else "none (not a std::exception)"


_RUNTIME_OBJECTS = re.compile(r"/lib(?:c|stdc\+\+|gcc_s|pthread)[.-]")


def _program_called(return_address: int) -> str | None:
    """The function a direct call just before ``return_address`` went to
    (its PLT stub named as the function).  GCC 14's libstdc++ calls
    std::terminate from __cxa_rethrow's cold part, an unnamed block outside
    __cxa_rethrow's symbol in a stripped library: the program's own call
    instruction still says which entry point it called."""
    from .jump import call_before
    from iced_x86 import OpKind
    try:
        ins = call_before(target.read_code(return_address - 16, 16), return_address)
    except GdbextError:
        return None
    if ins is None or ins.op0_kind not in (OpKind.NEAR_BRANCH64, OpKind.NEAR_BRANCH32):
        return None
    symbol = target.locate(ins.near_branch_target).symbol
    return symbol.removesuffix("@plt") if symbol else None


def _runtime_prefix(names: list[str], objects: list[str | None]) -> list[str]:
    """The innermost frames up to the first of the program's own: libc,
    libstdc++, libgcc_s, or named machinery (a static libstdc++)."""
    from ..knowledge.skip_frames import is_machinery
    out = []
    for name, obj in zip(names, objects):
        if not ((obj and _RUNTIME_OBJECTS.search(obj)) or is_machinery(name)):
            break
        out.append(name)
    return out


def _how_terminated(names: list[str], found) -> str | None:
    """Why the exception reached std::terminate, from the frames under it and
    the uncaught count: the personality routine calls terminate when the
    search phase meets a must-not-throw region (eh_personality.cc,
    found_terminate: a noexcept function, or a cleanup during unwinding);
    __cxa_throw / __cxa_rethrow / std::rethrow_exception call it when no
    handler was found (eh_throw.cc, eh_ptr.cc)."""
    below = names               # the runtime's frames, innermost first
    others = found.uncaught or 0
    if "__gxx_personality_v0" in below or "__cxa_call_terminate" in below:
        if others > 0:
            return (f"thrown during stack unwinding: {others} other exception(s) still "
                    f"propagating (std::uncaught_exceptions() = {others}); a destructor or "
                    f"cleanup threw")
        return ("reached a must-not-throw region (a noexcept function or destructor): the "
                "personality routine called std::terminate")
    if any(n in below for n in ("__cxa_throw", "__cxa_rethrow", "std::rethrow_exception")):
        return "no handler (the search phase found no catch)"
    return None


def _in_flight():
    from iced_x86 import Decoder, Mnemonic, OpKind, Register

    from ..runtimes import cxx
    start = _exported(r"/libstdc\+\+\.so", "__cxa_get_globals")
    if start is None:
        raise cxx.ExceptionError("libstdc++'s __cxa_get_globals is not exported here")
    code = target.read_bytes(start, 48)
    steps = []
    for ins in Decoder(64, code, ip=start):
        ops = {}
        if ins.op_count and ins.op0_kind == OpKind.REGISTER:
            ops["register"] = {Register.RDI: "rdi", Register.RAX: "rax"}.get(ins.op0_register)
        if ins.mnemonic == Mnemonic.LEA and ins.memory_base == Register.RIP:
            ops["rip_target"] = ins.memory_displacement
        if ins.mnemonic == Mnemonic.ADD and ins.op_count == 2 and ins.op1_kind in (
                OpKind.IMMEDIATE8TO64, OpKind.IMMEDIATE32TO64, OpKind.IMMEDIATE32):
            ops["immediate"] = ins.immediate(1)
        name = {Mnemonic.LEA: "lea", Mnemonic.CALL: "call", Mnemonic.ADD: "add",
                Mnemonic.RET: "ret"}.get(ins.mnemonic, "other")
        steps.append((name, ops))
        if name == "ret":
            break
    found = cxx.tls_index_address(steps)
    if found is None:
        raise cxx.ExceptionError("__cxa_get_globals does not reach its TLS through "
                                 "__tls_get_addr as expected")
    tp = target.thread_pointer()
    if not tp:
        raise cxx.ExceptionError("the thread pointer (fs_base) is unknown")
    read = target.memory_reader()
    globals_address = cxx.eh_globals(read, found[0], found[1], tp)
    vtables = {}
    for symbol, kind in TYPEINFO_VTABLES.items():   # read in one pass with WANTED
        address = _exported(r"/libstdc\+\+\.so", symbol)
        if address is not None:
            vtables[address + 16] = kind    # the address point: past offset-to-top and RTTI
    from ..knowledge.cxx_exceptions import MESSAGE_WHAT
    message_what = frozenset(a for a in (_exported(r"/libstdc\+\+\.so", s)
                                         for s in MESSAGE_WHAT) if a is not None)
    return cxx.in_flight(read, globals_address, target.demangle_type, vtables,
                         cxx.Code(_constant_return, message_what))


def _constant_return(function: int) -> int | None:
    """The C string a function returns when its whole body is ``[endbr64;]
    lea rax,[rip+s]; ret`` (what() and error_category::name() of a class
    whose text is a literal), else None: read from its code, never run."""
    from iced_x86 import Decoder, Mnemonic, OpKind, Register
    try:
        code = target.read_code(function, 16)
    except GdbextError:
        return None
    found = None
    for ins in Decoder(64, code, ip=function):
        if ins.mnemonic == Mnemonic.ENDBR64 and found is None:
            continue
        if (found is None and ins.mnemonic == Mnemonic.LEA and ins.op0_register == Register.RAX
                and ins.op1_kind == OpKind.MEMORY and ins.memory_base == Register.RIP):
            found = ins.memory_displacement
            continue
        return found if found is not None and ins.mnemonic == Mnemonic.RET else None
    return None


# --- Rust std: the panic -----------------------------------------------------------
STACK_WORDS = 4096


def rust_panic(names: list[str], thread: dict | None, warnings: list[str]) -> Reason | None:
    from ..runtimes import rust
    oom = rust.oom_frame(names)
    if oom is not None:
        return Reason("rust-oom", "rust-std", "a memory allocation failed and Rust's "
                      "allocation-error handler aborted (std printed \"memory allocation of N "
                      "bytes failed\" and keeps no copy of N)", "rust-oom",
                      f"the {oom} frame", "exact", {"handler": oom, "size": "unknown"})
    if not rust.is_panic(names):
        return None
    entry = rust.panic_entry(names)
    kind, fixed = (entry[0], entry[1]) if entry else ("panic", None)
    location = message = first = None
    try:
        rsp = target.selected_registers().get("rsp")
        loaded = sections()
        spans = [span for secs in loaded.values() for span in secs.values()]
        code = [span for secs in loaded.values() for name, span in secs.items()
                if name in (".text", ".init", ".fini", ".plt", ".plt.got", ".plt.sec")]
        read = target.memory_reader()

        def is_static(v):
            return any(lo <= v < hi for lo, hi in spans)

        def is_code(v):
            return any(lo <= v < hi for lo, hi in code)
        location = rust.find_location(read, rsp, STACK_WORDS, is_static)
        if kind == "panic-in-cleanup":
            first = _rust_first_panic(read, rsp, is_static, is_code, warnings)
        if location is not None:
            problems: list[str] = []
            message = (rust.find_message(read, rsp, STACK_WORDS, location.address, is_static,
                                         is_code, problems)
                       or rust.find_exception_message(read, rsp, STACK_WORDS, is_static,
                                                      is_code))
            if message is None:
                warnings.extend(problems)
    except GdbextError as exc:
        warnings.append(f"the panic's location: {exc}")
    name = rust_thread_name(thread, warnings)
    details = {"kind": kind, "location": str(location) if location else "unknown",
               "thread": name[0] or "unknown", "thread_source": name[1]}
    if location is not None:
        details["location_certainty"] = (
            "exact (the PanicHookInfo's own)"
            if message is not None and message.source.startswith("std's PanicHookInfo")
            else "inferred (the innermost Location on the stack)")
    if message is not None:
        details.update(message=message.text, message_source=message.source,
                       message_certainty="exact")
        if message.truncated:
            details["message_truncated"] = True
            warnings.append(f"the panic's message is longer than {rust.MAX_MESSAGE} bytes: "
                            "shown in part")
    elif fixed:
        details.update(message=fixed, message_source=f"core's fixed text for {entry[2]} "
                       "(the String was not found)", message_certainty="inferred")
    else:
        details.update(message="unknown (std's PanicHookInfo was not found on the stack)",
                       message_source="none", message_certainty="unknown")
    if entry:
        details["entry"] = entry[2]
    shown = message.text.splitlines()[0] if message is not None and message.text else fixed
    summary = f"panicked at {location if location else 'an unknown location'}" + (
        f": {shown}" if shown else f" ({kind})")
    if first:           # a panic during a panic: the first one leads, in the program's frame
        summary = _double_panic(first, names, details, summary)
    return Reason("rust-panic", "rust-std", f"thread '{name[0] or '?'}' {summary}", kind,
                  "core::panic::Location on the stack (scan), std's PanicHookInfo and the "
                  "panic entry frame", "inferred", details)


MAX_HEAP_SCAN = 1 << 30             # bytes of heap searched for Rust exceptions
MAX_EXCEPTIONS = 64


def _rust_first_panic(read, rsp: int, is_static, is_code, warnings: list[str]) -> list:
    """The Rust exceptions this thread raised and never freed, first panic
    first (runtimes/rust.py exceptions_in_flight): found in the heap -- the
    writable anonymous mappings -- since the cleanup that panicked no
    longer holds the first exception's pointer in a register or slot."""
    from ..runtimes import rust
    end = target.mapping_end(rsp)
    maps = target.mappings()
    if end is None or maps is None:
        warnings.append("the first panic: the target's mappings are unknown")
        return []
    files = _file_mappings()
    budget, hits = MAX_HEAP_SCAN, []
    for m in maps:
        if not m.readable or m.executable or m.perms[1:2] != "w" or m.start <= rsp < m.end \
                or any(lo < m.end and m.start < hi for lo, hi, _, _ in files):
            continue
        size = min(m.end - m.start, budget)
        budget -= size
        hits += target.find_all(m.start, size, rust.RUST_EXCEPTION_CLASS, MAX_EXCEPTIONS)
        if budget <= 0 or len(hits) >= MAX_EXCEPTIONS:
            warnings.append("the first panic: the heap search stopped at its bound")
            break
    return rust.exceptions_in_flight(read, hits, (rsp, end), is_static, is_code)


def _double_panic(found: list, names: list[str], details: dict, summary: str) -> str:
    """The first panic leads: its message, the program's frame it was
    unwinding through; the panic during its cleanup and std's words follow."""
    from ..knowledge.skip_frames import is_machinery
    frame = next((n for n in names if n and not is_machinery(n) and n != "??"
                  and not n.startswith("<")), None)
    first = found[0]
    # short keys: report rows label them (render.LABEL); "_source"/"_certainty" annotate
    details.update(first=first.message.text, first_certainty="exact (its exception's "
                   "payload; std keeps no copy of its Location)",
                   first_source=first.message.source + f"; its handler's CFA "
                   f"{first.handler_cfa:#x} is on this thread's stack, outermost of the "
                   "exceptions in flight", first_in=frame or "unknown")
    if len(found) > 1:
        details.update(cleanup=found[1].message.text, cleanup_source=found[1].message.source)
    text = first.message.text.splitlines()[0] if first.message.text else ""
    head = f"panicked in {frame or 'unknown code'}: {text}"
    if len(found) > 1:
        head += (f"; a destructor panicked while it unwound: "
                 f"{found[1].message.text.splitlines()[0] if found[1].message.text else ''}")
    return f"{head} (std: {summary})"


def rust_thread_name(thread: dict | None, warnings: list[str]) -> tuple[str | None, str]:
    """(name, where it came from): std's own Thread handle when it can be
    read, else gdb's live thread name, else "main" for the process's first
    thread."""
    found = _rust_std_thread(warnings)
    if found is not None and found.name is not None:
        return found.name, found.source
    if thread is not None and thread.get("lwp") and thread["lwp"] == target.pid():
        return "main", "the process's first thread (std names it \"main\")"
    # std gives a named thread's name to the kernel (pthread_setname_np, 15 bytes);
    # an unnamed one keeps the executable's comm: that is no name
    comm = os.path.basename(target.executable() or "")[:15]
    if thread is not None and thread.get("name") and target.kind() == "live" \
            and thread["name"] != comm:
        return thread["name"], "gdb's thread name (the kernel's comm, at most 15 bytes; live)"
    return None, found.source if found is not None else "unknown"


def _rust_std_thread(warnings: list[str]):
    from .. import elf_file
    from ..runtimes import rust
    exe = target.executable()
    if not exe:
        return None
    try:
        symbols = elf_file.local_symbols(exe, b"|".join(rust.THREAD_SYMBOLS.values()),
                                         rust.THREAD_NEEDLES)
        tls = elf_file.tls_segment(exe)
    except GdbextError as exc:
        warnings.append(f"std's thread handle: {exc}")
        return None
    want = {}
    for what, pattern in rust.THREAD_SYMBOLS.items():
        want[what] = next((v for n, v in symbols.items()
                           if re.fullmatch(pattern, n.encode("latin-1"))), None)
    if want["current"] is None or want["id"] is None or tls is None:
        return rust.ThreadName(None, "std's CURRENT/ID thread-locals are not in the "
                               "executable's .symtab (std before 1.84, a stripped executable, "
                               "or std as a shared library)")
    if want["current"][2] != 6 or want["id"][2] != 6:          # STT_TLS
        return rust.ThreadName(None, "std's CURRENT/ID symbols are not thread-locals")
    tp = target.thread_pointer()
    if not tp:
        return rust.ThreadName(None, "the thread pointer (fs_base) is unknown")
    main = None
    if want["main"] is not None:
        bias = target.load_bias(exe, sections())
        main = want["main"][0] + bias if bias is not None else None
    return rust.thread_name(target.memory_reader(), tp, rust.executable_tls_offset(*tls),
                            want["current"][0], want["id"][0], main)


# --- CPython -------------------------------------------------------------------------
FATAL_FRAMES = re.compile(r"Py_FatalError|_Py_FatalErrorFunc|_Py_FatalErrorFormat|"
                          r"_Py_FatalError_\w+|fatal_error")


def python_process(objects: list[str | None]) -> str | None:
    """The interpreter, when this is a Python process: the executable or a
    loaded libpython exports _PyRuntime (FORENSICS-NOTES)."""
    exe = target.executable() or ""
    if re.search(r"/python3?(\.\d+)?[^/]*$", exe) and _exported(re.escape(exe) + "$",
                                                                "_PyRuntime") is not None:
        return os.path.basename(exe)
    for path in sections():
        if re.search(r"/libpython3\.\d+", path):
            return os.path.basename(path)
    if re.search(r"/python3?(\.\d+)?[^/]*$", exe):
        return os.path.basename(exe)
    return None


# The hook for the Python stack: a callable ``(thread: dict, crash_object:
# str | None, max_frames: int, warnings: list) -> triage.python.PythonView |
# None``; crash-triage installs commands/python_runtime.triage_view (the
# CPython reader of issue 15).  While it is None, reports say only that this
# is a Python process.
PYTHON_STACK_READER = None


def python_stack(thread: dict | None, crash_object: str | None, max_frames: int,
                 warnings: list[str]):
    if PYTHON_STACK_READER is None:
        return None
    try:
        return PYTHON_STACK_READER(thread, crash_object, max_frames, warnings)
    except Exception as exc:  # noqa: BLE001 - a broken reader is a warning
        if target.is_debug_enabled():
            import traceback
            warnings.append(traceback.format_exc())
        warnings.append(f"the Python stack: {type(exc).__name__}: {exc}")
        return None


def python_fatal(names: list[str], interpreter: str | None, raw=()) -> Reason | None:
    if interpreter is None or not any(FATAL_FRAMES.match(n) for n in names):
        return None
    message, how = _fatal_message(raw)
    return Reason("python-fatal-error", "cpython",
                  f"Fatal Python error: {message}" if message else
                  f"Py_FatalError in {interpreter}", "fatal-error",
                  "Py_FatalError frame" + (f"; the message: {how}" if message else ""),
                  "exact" if not message else "inferred",
                  {"message": message or f"unknown ({how})"})


def _fatal_message(raw) -> tuple[str | None, str]:
    """Py_FatalError(msg)'s argument is never stored, but the frames between
    abort and Py_FatalError keep it in their stack slots: the one pointer there
    to a printable C string outside the interpreter's own files (whose
    constants are CPython's format strings)."""
    from ..runtimes.cstring import printable_c_string
    fatal = next((f for f in raw if f.function and FATAL_FRAMES.match(f.function)
                  and "Py_FatalError" in f.function), None)
    if fatal is None or fatal.cfa is None or not raw or raw[0].rsp is None:
        return None, "no Py_FatalError frame with a known stack"
    low, high = raw[0].rsp, fatal.cfa
    if not 0 < high - low <= 1 << 16:
        return None, "the stack between abort and Py_FatalError is not plausible"
    try:
        words = target.read_bytes(low, high - low)
    except GdbextError:
        return None, "that stack is unreadable"
    own = [span for path, secs in sections().items()
           if re.search(r"/(?:python3?(?:\.\d+)?[^/]*|libpython3\.\d+[^/]*|libc\.so[^/]*)$",
                        path) for span in secs.values()]
    found = []
    for i in range(0, len(words) - 7, 8):
        value = int.from_bytes(words[i:i + 8], "little")
        if value < 0x10000 or any(lo <= value < hi for lo, hi in own):
            continue
        text = printable_c_string(target.memory_reader(), value)
        if text and len(text) >= 4 and text not in found:
            found.append(text)
    if len(found) == 1:
        return found[0], "the one C string the frames under Py_FatalError point to (inferred)"
    return None, f"{len(found)} candidate strings on the stack" if found else \
        "Py_FatalError's argument is not kept in memory"


# --- the interrupted context of a signal handler ------------------------------------
def interrupted_fault(max_frames: int, warnings: list[str], raised: int | None = None):
    """The innermost <signal handler called> frame whose siginfo is a fault the
    kernel raised (si_code > 0): the crash a handler (Rust std's guard page,
    faulthandler, a crash reporter) was handling when it aborted.  ``raised``:
    the signal the process then sent itself, which a frame without siginfo
    (faulthandler's) must agree with (signal_frame.from_trap)."""
    from ..unwind import signal_frame
    frames = target.sigtramp_frames(max_frames)
    for frame in frames[:8]:            # a handler inside a handler: 8 is plenty
        try:
            ctx = signal_frame.read(target.memory_reader(), frame.level, frame.sp,
                                    frame.older_pc, raised)
        except signal_frame.SignalFrameError as exc:
            warnings.append(f"signal frame #{frame.level}: {exc}")
            continue
        if ctx.signo in signal_frame.FAULT_SIGNALS and ctx.code > 0:
            if ctx.check and not _trap_shown(ctx):
                warnings.append(f"signal frame #{frame.level}: no siginfo (a handler without "
                                f"SA_SIGINFO), and the instruction at {ctx.regs.get('rip', 0):#x} "
                                f"does not show its trap data's fault (trapno {ctx.trapno}): "
                                "which fault it handled is unknown")
                continue
            if not ctx.confirmed:
                warnings.append(f"signal frame #{frame.level}: the saved pc "
                                f"{ctx.regs.get('rip', 0):#x} is not where gdb unwound "
                                "to; used anyway (inferred)")
            return ctx
    if len(frames) > 8:
        warnings.append(f"{len(frames)} nested signal frames: a looping handler chain; "
                        "the first 8 were read")
    return None


def _trap_shown(ctx) -> bool:
    """The interrupted instruction makes the fault the trap data describe: a
    page fault at its operand's address, its own fetch or a push below rsp;
    a divide error at a div.  Stale trap data of an earlier fault would not."""
    from ..unwind.signal_frame import X86_TRAP_DE, X86_TRAP_PF
    rip, rsp = ctx.regs.get("rip"), ctx.regs.get("rsp")
    insn = _instruction(rip, ctx.regs) if rip is not None else None
    if insn is None:
        return False
    if ctx.trapno == X86_TRAP_PF:
        below_rsp = rsp is not None and rsp - 4096 <= ctx.addr < rsp
        return ctx.addr in (insn.address, rip) or (insn.flow == "call" and below_rsp)
    if ctx.trapno == X86_TRAP_DE:
        return insn.divisor is not None
    return False


# --- facts for the fault rules --------------------------------------------------------
READ_ONLY_SECTIONS = re.compile(r"\.(?:text|rodata|eh_frame|eh_frame_hdr|gcc_except_table|"
                                r"init|fini|plt|plt\.got|plt\.sec|interp|dynsym|dynstr|"
                                r"gnu\.hash|hash|rela\.\w+|gnu\.version\w*|note\.[\w.-]+)"
                                r"(?:\.\w+)*$")


def seccomp_facts(stop):
    """The facts of a seccomp SIGSYS: the refused call's number, its name
    from gdb's syscall table for the call's ABI (si_arch), and where it was
    made (si_call_addr)."""
    from ..knowledge.signals import AUDIT_ARCHES
    from .fault_class import FaultFacts
    abi, table = AUDIT_ARCHES.get(stop.arch, (None, None))
    if stop.arch is not None and abi is None:
        abi = f"AUDIT_ARCH {stop.arch:#x}"
    name = target.syscall_name(stop.syscall, table) \
        if stop.syscall is not None and table else None
    syscall = {"number": stop.syscall, "name": name, "abi": abi} \
        if stop.syscall is not None else None
    return FaultFacts(stop.signo, stop.code, stop.addr, stop.addr, None, None,
                      address_from="si_call_addr", syscall=syscall)


def fault_facts(signo: int, code: int | None, addr: int | None, pc: int | None,
                regs: dict, stack_overflow: bool | None, jump=None):
    """The facts the fault rules match on.  ``jump``: triage/jump.BadJump
    when the pc itself is in no mapping.  A SIGSEGV with SI_KERNEL is a #GP:
    its si_addr 0 is no address, so the address is the faulting instruction's
    memory operand (or a ret's / branch's target)."""
    from ..spill.audit import stack_overflow as overflowed
    from .fault_class import FaultFacts
    insn = None
    if pc is not None and jump is None:
        insn = _instruction(pc, regs)
    # #GP (SIGSEGV) and #SS (SIGBUS) arrive as SI_KERNEL with si_addr 0; a core
    # with no NT_SIGINFO (qemu-user's) has no address at all
    general_protection = signo in (7, 11) and code in (SI_KERNEL, None)
    address_from = "si_addr"
    if general_protection:
        addr = insn.address if insn is not None and insn.flow is None else None
        address_from = "operand"
    readable = target.accessible_probe()
    if stack_overflow is None and addr is not None and signo in (7, 11) \
            and not general_protection:
        # gcore writes a PROT_NONE guard page as a readable segment; the kernel's
        # SEGV_ACCERR already says the faulting page allows no such access.
        page = addr & ~0xFFF
        probe = (lambda a: a & ~0xFFF != page and readable(a)) if signo == 11 and code == 2 \
            else readable
        try:
            stack_overflow = overflowed(addr, regs.get("rsp"), probe)
        except Exception:  # noqa: BLE001
            stack_overflow = False
    if signo == 8:
        access = None
    elif jump is not None or (addr is not None and addr == pc and not general_protection):
        access = "execute"
    elif insn is not None and insn.flow is None:
        access = insn.access
    else:
        access = _access(pc, addr) if not general_protection else None
    if access == "execute" and jump is None and pc is not None:
        try:                # how the pc got into memory it may not execute
            jump = bad_jump(pc, "is in memory mapped without execute permission", regs)
        except GdbextError:
            jump = None
    executing = access == "execute" or (insn is not None and insn.flow is not None)
    facts = FaultFacts(signo, code, addr, pc, access,
                       _region(pc if access == "execute" else addr), bool(stack_overflow),
                       insn, jump.to_json() if jump is not None else None,
                       address_from=address_from)
    if signo == 11:
        facts.heaps = tuple(_anonymous_writable(regs.get("rsp")))
        if executing:
            try:
                facts.exec_ranges = tuple(target.executable_ranges())
            except GdbextError:
                facts.exec_ranges = None
    return facts


SI_KERNEL = 0x80


def _instruction(pc: int, regs: dict):
    from .instruction import decode
    try:
        code = target.read_code(pc, 15)
    except GdbextError:
        return None
    try:
        return decode(pc, code, regs, target.memory_reader())
    except Exception:  # noqa: BLE001 - an odd instruction is unknown, not a traceback
        return None


def bad_jump(address: int, where: str = "is in no mapping", regs: dict | None = None):
    """Why the pc is nowhere (triage/jump.py): the word at rsp, the call
    before it, and where that call went.  ``regs``: the faulting context's
    registers (a signal frame's), else the selected frame's."""
    from .jump import explain
    regs = regs if regs else target.selected_registers()
    rsp = regs.get("rsp")
    ret = code = caller = None
    try:
        ret = target.read_pointer(rsp) if rsp is not None else None
    except GdbextError:
        pass
    if ret:
        caller = target.locate(ret).function
        try:
            code = target.read_bytes(ret - 7, 7)
        except GdbextError:
            code = None
    return explain(address, rsp, ret, caller, code, regs, target.memory_reader(),
                   lambda a: target.locate(a).function, where)


def _access(pc: int | None, addr: int | None) -> str | None:
    """read / write / execute, from the faulting instruction's memory operands
    (iced's InstructionInfoFactory)."""
    if pc is None:
        return None
    if addr is not None and addr == pc:
        return "execute"
    try:
        code = target.read_code(pc, 15)
    except GdbextError:
        return "execute" if addr is None else None
    from iced_x86 import Decoder, InstructionInfoFactory, OpAccess
    ins = Decoder(64, code, ip=pc).decode()
    if ins.is_invalid:
        return None
    accesses = [m.access for m in InstructionInfoFactory().info(ins).used_memory()]
    if any(a in (OpAccess.WRITE, OpAccess.READ_WRITE, OpAccess.COND_WRITE,
                 OpAccess.READ_COND_WRITE) for a in accesses):
        return "write"
    if accesses:
        return "read"
    return None


def _region(addr: int | None):
    from .fault_class import Region
    if addr is None:
        return None
    for path, named in sections().items():
        for name, (lo, hi) in named.items():
            if lo <= addr < hi:
                readonly = bool(READ_ONLY_SECTIONS.match(name))
                return Region(os.path.basename(path), name, path, lo, 0, readonly, end=hi)
    for start, end, offset, path in _file_mappings():
        if start <= addr < end:
            size = None
            try:
                size = os.path.getsize(path)
            except OSError:
                pass
            return Region(os.path.basename(path), None, path, start, offset, False, size,
                          end=end)
    for m in target.mappings() or ():     # anonymous: the heap, a stack, mmap(MAP_ANONYMOUS)
        if m.start <= addr < m.end:
            return Region(None, None, None, m.start, 0, "w" not in m.perms[:3], end=m.end,
                          perms=m.perms[:3], name=m.name or None)
    return None


def _anonymous_writable(rsp: int | None) -> list[tuple[int, int]]:
    """Writable mappings no file backs and that hold no stack pointer: the
    heap arenas (the main arena's brk heap, mmap'd thread arenas)."""
    files = [(lo, hi) for lo, hi, _, _ in _file_mappings()]
    out = []
    for m in target.mappings() or ():
        if "w" not in m.perms[:3] or (m.name and m.name != "[heap]"):
            continue
        if rsp is not None and m.start <= rsp < m.end:
            continue
        if any(lo < m.end and m.start < hi for lo, hi in files):
            continue
        out.append((m.start, m.end))
    return out


def _file_mappings() -> list[tuple[int, int, int, str]]:
    if "files" not in _SECTIONS:
        _SECTIONS["files"] = _read_file_mappings()
    return _SECTIONS["files"]


def _read_file_mappings() -> list[tuple[int, int, int, str]]:
    maps = target.live_maps()
    if maps is not None:
        return [(m.start, m.end, m.offset, m.name) for m in maps if m.name.startswith("/")]
    core = target.core_file_path() if target.kind() == "core" else None
    if not core:
        return []
    from .. import core_file
    try:
        facts = core_file.read(core)
    except core_file.CoreFileError:
        return []
    return [(m.start, m.end, m.page_offset, m.path) for m in facts.mappings]
