"""libstdc++'s in-flight exception at std::terminate: its type and what().

Pure: ``read(address, length) -> bytes`` raises on unreadable memory;
``demangle(mangled) -> str | None``.

Where it is (GCC libsupc++, GCC 4.x-14):
- ``__cxa_get_globals()`` (exported) returns the thread's ``__cxa_eh_globals
  { __cxa_exception *caughtExceptions; unsigned uncaughtExceptions; }``
  (unwind-cxx.h).  In a PIC libstdc++ it is a TLS variable reached through
  ``__tls_get_addr(&tls_index)``: ``lea tls_index(%rip),%rdi; call
  __tls_get_addr; ...; add $off,%rax`` (decoded from the target, not assumed).
  ``tls_index { module, offset }`` (the x86-64 TLS ABI); the module's block
  is ``dtv[module].val`` with ``dtv = *(fs_base + 8)`` (glibc
  sysdeps/x86_64/nptl/tls.h tcbhead_t; dtv_t is 16 bytes, elf/dl-dtv.h).
- An uncaught throw: ``__cxa_throw`` -> ``_Unwind_RaiseException`` fails ->
  ``__cxa_begin_catch`` (pushes it on caughtExceptions) -> std::terminate
  (eh_throw.cc), so caughtExceptions is the exception.
- ``__cxa_exception`` (unwind-cxx.h, LP64): exceptionType@0,
  exceptionDestructor@8, unexpectedHandler@16, terminateHandler@24,
  nextException@32, handlerCount@40, handlerSwitchValue@44, actionRecord@48,
  languageSpecificData@56, catchTemp@64, adjustedPtr@72, unwindHeader@80
  (``_Unwind_Exception``, 32 bytes, exception_class first); the thrown object
  follows at +112.  exception_class "GNUCC++\\0" confirms the header.
- A dependent exception (exception_class "GNUCC++\\1"): std::rethrow_exception
  allocates a ``__cxa_dependent_exception`` whose first member
  ``primaryException`` is the thrown object the exception_ptr holds, and
  raises that (eh_ptr.cc); the rest of its layout matches __cxa_exception's,
  so __cxa_begin_catch pushes it on caughtExceptions like a primary
  (unwind-cxx.h, "__get_object_from_ue").  The primary's header is
  ``primaryException - 112`` and must carry "GNUCC++\\0" itself: a dependent
  exception never points at another dependent one (rethrow_exception takes
  the object from an exception_ptr, which holds a primary object).
  ``__cxa_refcounted_exception { _Atomic_word referenceCount; __cxa_exception
  exc; }`` puts the count 16 bytes before the header (exc is 16-aligned:
  _Unwind_Exception is ``__attribute__((__aligned__))``, unwind-generic.h);
  rethrow_exception took a reference, so it is >= 1.
- ``__cxa_eh_globals.uncaughtExceptions``: __cxa_throw adds one, and
  __cxa_begin_catch (on the terminate path too) takes one (eh_throw.cc,
  eh_catch.cc); left above zero, another exception was still propagating
  when this one reached terminate -- a throw during stack unwinding.
- ``std::type_info { vptr; const char *__name; }``; ``__si_class_type_info``
  adds ``__base_type``@16; ``__vmi_class_type_info`` flags@16, base_count@20,
  ``__base_info { type, offset_flags }``[]@24 (cxxabi.h).
- what(): ``std::runtime_error`` and ``std::logic_error`` keep their message
  in ``__cow_string _M_msg`` right after the vptr (include/std/stdexcept); a
  COW string is one pointer to its characters (bits/cow_string.h) -- unless
  the class overrides what() (its vtable's what slot is not libstdc++'s
  runtime_error/logic_error::what, when those are known).  The standard
  types whose what() is a constant, and bad_variant_access's reason
  pointer: knowledge/cxx_exceptions.py.  Any other what() (a user class, or
  an override) is read when its code is one constant return (``lea
  rax,[rip+s]; ret``, decoded by the caller's ``Code.constant``); else it
  is computed by code: "unknown".
- std::system_error / std::future_error: ``error_code`` follows the
  message base; the category's name() is read the same way, from its code.
- ``std::nested_exception { vptr; exception_ptr _M_ptr; }`` and
  ``_Nested_exception<E> : E, nested_exception`` (nested_exception.h);
  exception_ptr is one pointer to the thrown object (exception_ptr.h).  The
  nested_exception subobject's offset is the ``__base_info`` offset
  (``__offset_flags >> 8``, non-virtual bases only; cxxabi.h).
"""
from __future__ import annotations

import struct

from .cstring import c_string
from ..knowledge import cxx_exceptions as known
from ..record import field, record
from ..text import decode

HEADER_SIZE = 112               # sizeof(__cxa_exception): the thrown object follows
UNWIND_HEADER = 80
REFCOUNT = -16                  # __cxa_refcounted_exception.referenceCount, from the header
# exception_class is the u64 0x474e5543432b2b00 ("GNUCC++\0"), stored little-endian;
# ...01 marks a dependent exception (eh_throw.cc, unwind-cxx.h)
GNU_CXX = (0x474E5543432B2B00).to_bytes(8, "little")
GNU_CXX_DEPENDENT = (0x474E5543432B2B01).to_bytes(8, "little")
MAX_CHAIN = 16                  # nextException / base walks: a loop is garbage
MAX_NESTED = 4                  # nested_exception inside nested_exception...
MAX_REFERENCES = 1 << 24        # more exception_ptr copies than that: garbage
MESSAGE_BASES = {"St13runtime_error": "std::runtime_error", "St11logic_error": "std::logic_error"}
NESTED_EXCEPTION = "St16nested_exception"


@record
class InFlight:
    type: str | None            # demangled
    mangled: str | None
    what: str | None            # None: unknown (not a runtime_error/logic_error family)
    bases: list[str] = field(default_factory=list)
    object_address: int | None = None
    uncaught: int | None = None
    warnings: list[str] = field(default_factory=list)
    rethrown: bool = False      # a dependent exception: raised by std::rethrow_exception
    references: int | None = None   # the primary's exception_ptr count (rethrown only)
    nested: list["InFlight"] = field(default_factory=list)   # outermost first
    nested_at: int | None = field(default=None, repr=False)  # its nested_exception base
    what_from: str | None = None    # "message", "reason", "table", "code" (see the module doc)
    error: dict | None = None       # system_error/future_error: {"value", "category"}

    def to_json(self) -> dict:
        return {"type": self.type, "mangled": self.mangled, "what": self.what,
                "bases": self.bases, "object": self.object_address,
                "uncaught_exceptions": self.uncaught, "warnings": self.warnings,
                "rethrown": "std::rethrow_exception" if self.rethrown else None,
                "references": self.references, "what_from": self.what_from,
                "error": self.error, "nested": [n.to_json() for n in self.nested]}


@record
class Code:
    """What the caller decodes from the target's code for the reader.
    ``constant(function) -> address | None``: the C string a function
    returns when its whole body is one constant return; ``message_what``:
    the addresses of libstdc++'s runtime_error::what and logic_error::what
    (empty when unknown, e.g. a static libstdc++)."""
    constant: object = None
    message_what: frozenset = frozenset()


class ExceptionError(Exception):
    """No exception could be read: the warning's text."""


def _ptr(read, address: int) -> int:
    return int.from_bytes(read(address, 8), "little")


def _c_string(read, address: int, limit: int = 1024) -> str:
    raw, terminated = c_string(read, address, limit)
    if not terminated:
        raise ExceptionError(f"no NUL within {limit} bytes at {address:#x}")
    return decode(raw)


def tls_index_address(instructions) -> tuple[int, int] | None:
    """(address of tls_index, the constant added to __tls_get_addr's result)
    from ``__cxa_get_globals``'s decoded instructions: (mnemonic, operands)
    as (str, dict) with 'rip_target' and 'immediate' keys."""
    index = None
    for mnemonic, ops in instructions:
        if mnemonic == "lea" and ops.get("register") == "rdi" and ops.get("rip_target"):
            index = ops["rip_target"]
        elif mnemonic == "call" and index is None:
            return None
        elif mnemonic == "add" and index is not None and ops.get("register") == "rax":
            return index, ops.get("immediate", 0)
        elif mnemonic == "ret":
            return (index, 0) if index is not None else None
    return None


def eh_globals(read, tls_index: int, add: int, thread_pointer: int) -> int:
    """The thread's __cxa_eh_globals address."""
    module, offset = struct.unpack("<QQ", read(tls_index, 16))
    if not 1 <= module <= 1 << 16:
        raise ExceptionError(f"libstdc++'s TLS module id is not one ({module})")
    dtv = _ptr(read, thread_pointer + 8)
    block = _ptr(read, dtv + 16 * module)
    if block in (0, 0xFFFFFFFFFFFFFFFF):   # TLS_DTV_UNALLOCATED: never touched here
        raise ExceptionError("libstdc++'s TLS block is not allocated in this thread")
    return block + offset + add


def in_flight(read, globals_address: int, demangle, class_vtables: dict[int, str],
              code: Code | None = None) -> InFlight | None:
    """The exception std::terminate was called for; None when none is in
    flight (terminate called for another reason).  ``class_vtables``: the
    address points of libstdc++'s type_info vtables
    (``_ZTVN10__cxxabiv1...E`` + 16) -> their kind ('si', 'vmi', 'class',
    'fundamental', 'pointer'...; cxxabi.h's type_info classes); when given,
    the thrown type's type_info must use one of them."""
    caught = _ptr(read, globals_address)
    uncaught = int.from_bytes(read(globals_address + 8, 4), "little")
    if caught == 0:
        return None
    cls = read(caught + UNWIND_HEADER, 8)
    rethrown, references = False, None
    header = caught
    if cls == GNU_CXX_DEPENDENT:
        rethrown = True
        header, references = _primary_of(read, caught)
    elif cls != GNU_CXX:
        raise ExceptionError(f"the in-flight exception at {caught:#x} has no GNU C++ "
                             f"exception class ({cls!r}): a foreign or corrupt header")
    code = code or Code()
    out = _thrown(read, header, demangle, class_vtables, code)
    out.uncaught, out.rethrown, out.references = uncaught, rethrown, references
    if rethrown and references is not None and not 1 <= references <= MAX_REFERENCES:
        out.warnings.append(f"the rethrown exception's reference count is {references} "
                            f"(std::rethrow_exception holds one): freed or corrupt")
    _follow_nested(read, out, demangle, class_vtables, code)
    return out


def _primary_of(read, dependent: int) -> tuple[int, int | None]:
    """The primary __cxa_exception header a dependent one stands for, and its
    reference count (None when unreadable)."""
    obj = _ptr(read, dependent)            # primaryException
    if obj == 0:
        raise ExceptionError(f"the rethrown (dependent) exception at {dependent:#x} has no "
                             f"primary exception")
    header = obj - HEADER_SIZE
    if abs(header - dependent) < HEADER_SIZE or obj == dependent:
        raise ExceptionError(f"the rethrown (dependent) exception at {dependent:#x} points "
                             f"back into itself ({obj:#x}): corrupt")
    if obj % 16:                # __cxa_allocate_exception's objects follow a 16-aligned header
        raise ExceptionError(f"the rethrown (dependent) exception at {dependent:#x} has a "
                             f"misaligned primary object ({obj:#x}): corrupt")
    try:
        cls = read(header + UNWIND_HEADER, 8)
    except Exception as exc:  # noqa: BLE001  (the caller's read raises on unmapped memory)
        raise ExceptionError(f"the rethrown exception's primary object {obj:#x} is "
                             f"unreadable: {exc}") from None
    if cls != GNU_CXX:
        what = "another dependent one" if cls == GNU_CXX_DEPENDENT else f"class {cls!r}"
        raise ExceptionError(f"the rethrown exception's primary header at {header:#x} is "
                             f"{what}, not a GNU C++ primary exception: corrupt")
    try:
        references = int.from_bytes(read(header + REFCOUNT, 4), "little", signed=True)
    except Exception:  # noqa: BLE001
        references = None
    return header, references


def _thrown(read, header: int, demangle, vtables: dict[int, str], code: Code) -> InFlight:
    """The type, bases and what() of the object a primary header holds."""
    tinfo = _ptr(read, header)
    if vtables:
        vptr = _ptr(read, tinfo) if tinfo else 0
        if vptr not in vtables:
            raise ExceptionError(f"the exception at {header:#x} has a type_info ({tinfo:#x}) "
                                 f"whose vtable ({vptr:#x}) is none of libstdc++'s type_info "
                                 f"vtables: corrupt")
    obj = header + HEADER_SIZE
    mangled = _c_string(read, _ptr(read, tinfo + 8), 512)
    if mangled.startswith("*"):             # local types: GCC marks a unique name with '*'
        mangled = mangled[1:]
    name = demangle(mangled) or mangled
    out = InFlight(name, mangled, None, object_address=obj)
    bases = _bases(read, tinfo, vtables, out.warnings)
    out.bases = [demangle(b) or b for b, _ in bases]
    names = {mangled} | {b for b, _ in bases}
    if names & ({"St9exception"} | set(MESSAGE_BASES) | set(known.CONSTANT_WHAT)
                | set(known.REASON_POINTER) | set(known.MESSAGE_TYPES)):     # a std::exception: it has what()
        try:
            _what(read, obj, mangled, [b for b, _ in bases], code, out)
        except Exception as exc:  # noqa: BLE001
            out.what, out.what_from = None, None
            out.warnings.append(f"what() of the {name} at {obj:#x} is unreadable: {exc}")
    out.nested_at = next((obj + off for b, off in bases
                           if b == NESTED_EXCEPTION and off is not None), None)
    return out


def _what(read, obj: int, mangled: str, bases: list[str], code: Code, out: InFlight) -> None:
    """what() of a std::exception, and a system_error's error code."""
    what_fn = None
    if code.constant is not None or code.message_what:
        what_fn = _ptr(read, _ptr(read, obj) + 8 * known.WHAT_SLOT)
    if mangled in known.CONSTANT_WHAT:
        out.what, out.what_from = known.CONSTANT_WHAT[mangled], "table"
        at = code.constant(what_fn) if code.constant and what_fn else None
        if at is not None:
            text = _c_string(read, at, 4096)
            if text != out.what:    # this libstdc++ says otherwise: believe its code
                out.warnings.append(f"{out.type}::what() returns {text!r} here, not "
                                    f"{out.what!r} (a libstdc++ this table does not know)")
                out.what, out.what_from = text, "code"
    elif mangled in known.REASON_POINTER:
        out.what = _c_string(read, _ptr(read, obj + known.REASON_POINTER[mangled]), 4096)
        out.what_from = "reason"
    elif any(b in MESSAGE_BASES or b in known.MESSAGE_TYPES for b in [mangled] + bases) and (
            not code.message_what or what_fn in code.message_what):
        out.what, out.what_from = _c_string(read, _ptr(read, obj + 8), 4096), "message"
    elif code.constant is not None and what_fn:
        at = code.constant(what_fn)
        if at is not None:
            out.what, out.what_from = _c_string(read, at, 4096), "code"
    for b in [mangled] + bases:
        if b in known.ERROR_CODE_AT:
            out.error = _error_code(read, obj + known.ERROR_CODE_AT[b], code)
            break


def _error_code(read, at: int, code: Code) -> dict:
    """{"value", "category"}: the category's name() when its code is one
    constant return, else None."""
    value = int.from_bytes(read(at, 4), "little", signed=True)
    category = _ptr(read, at + 8)
    name = None
    if category and code.constant is not None:
        fn = _ptr(read, _ptr(read, category) + 8 * known.NAME_SLOT)
        text = code.constant(fn) if fn else None
        name = _c_string(read, text, 256) if text is not None else None
    return {"value": value, "category": name}


def _follow_nested(read, out: InFlight, demangle, vtables: dict[int, str],
                   code: Code) -> None:
    """std::throw_with_nested: the exceptions a nested_exception base holds,
    outermost first; a bad one is a warning and ends the walk."""
    current, seen = out, {out.object_address}
    while current.nested_at is not None and len(out.nested) < MAX_NESTED:
        at = current.nested_at
        try:
            obj = _ptr(read, at + 8)           # nested_exception::_M_ptr
            if obj == 0:
                break                          # nothing was active at throw_with_nested
            if obj in seen:
                raise ExceptionError(f"it points back to an outer exception ({obj:#x})")
            seen.add(obj)
            header = obj - HEADER_SIZE
            cls = read(header + UNWIND_HEADER, 8)
            if cls != GNU_CXX:
                raise ExceptionError(f"its header at {header:#x} has no GNU C++ primary "
                                     f"exception class ({cls!r})")
            inner = _thrown(read, header, demangle, vtables, code)
        except Exception as exc:  # noqa: BLE001  (garbage: a warning, never a traceback)
            out.warnings.append(f"the nested exception (std::nested_exception at {at:#x}) "
                                f"is not followed: {exc}")
            break
        out.warnings.extend(inner.warnings)
        inner.warnings = []
        out.nested.append(inner)
        current = inner


def _bases(read, tinfo: int, vtables: dict[int, str], warnings: list[str]
           ) -> list[tuple[str, int | None]]:
    """Every base class (breadth first) as (mangled name, offset of its
    subobject in the most derived object, None past a virtual base), from the
    type_info objects' own vtables."""
    out, queue, seen = [], [(tinfo, 0)], set()
    while queue and len(seen) < MAX_CHAIN:
        t, offset = queue.pop(0)
        if t in seen:
            warnings.append("the exception's base classes loop: garbage type_info")
            break
        seen.add(t)
        kind = vtables.get(_ptr(read, t))
        children = []
        if kind == "si":                    # a single public non-virtual base at offset 0
            children = [(_ptr(read, t + 16), offset)]
        elif kind == "vmi":
            count = int.from_bytes(read(t + 20, 4), "little")
            if count > MAX_CHAIN:
                warnings.append(f"a type_info claims {count} bases: garbage")
                break
            for i in range(count):
                base, flags = struct.unpack("<Qq", read(t + 24 + 16 * i, 16))
                virtual = flags & 1             # __virtual_mask; the offset is then a vtable's
                children.append((base, None if virtual or offset is None
                                 else offset + (flags >> 8)))
        for c, off in children:
            name = _c_string(read, _ptr(read, c + 8), 512)
            out.append((name.lstrip("*"), off))
            queue.append((c, off))
    return out
