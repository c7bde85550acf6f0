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
  follows at +112.  exception_class "GNUCC++\\0" confirms the header ("\\1" is a
  dependent exception from std::rethrow_exception: not followed).
- ``std::type_info { vptr; const char *__name; }``; ``__si_class_type_info``
  adds ``__base_type``@16; ``__vmi_class_type_info`` flags@16, base_count@20,
  ``__base_info { type, offset_flags }``[]@24 (cxxabi.h).
- what(): ``std::runtime_error`` and ``std::logic_error`` keep their message
  in ``__cow_string _M_msg`` right after the vptr (include/std/stdexcept); a
  COW string is one pointer to its characters (bits/cow_string.h).  Other
  std::exception subclasses compute what() in code: not readable, "unknown".
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .cstring import c_string

HEADER_SIZE = 112               # sizeof(__cxa_exception): the thrown object follows
UNWIND_HEADER = 80
# exception_class is the u64 0x474e5543432b2b00 ("GNUCC++\0"), stored little-endian;
# ...01 marks a dependent exception (eh_throw.cc, unwind-cxx.h)
GNU_CXX = (0x474E5543432B2B00).to_bytes(8, "little")
GNU_CXX_DEPENDENT = (0x474E5543432B2B01).to_bytes(8, "little")
MAX_CHAIN = 16                  # nextException / base walks: a loop is garbage
MESSAGE_BASES = {"St13runtime_error": "std::runtime_error", "St11logic_error": "std::logic_error"}


@dataclass
class InFlight:
    type: str | None            # demangled
    mangled: str | None
    what: str | None            # None: unknown (not a runtime_error/logic_error family)
    bases: list[str] = field(default_factory=list)
    object_address: int | None = None
    uncaught: int | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"type": self.type, "mangled": self.mangled, "what": self.what,
                "bases": self.bases, "object": self.object_address,
                "uncaught_exceptions": self.uncaught, "warnings": self.warnings}


class ExceptionError(Exception):
    """No exception could be read: the warning's text."""


def _ptr(read, address: int) -> int:
    return int.from_bytes(read(address, 8), "little")


def _c_string(read, address: int, limit: int = 1024) -> str:
    raw, terminated = c_string(read, address, limit)
    if not terminated:
        raise ExceptionError(f"no NUL within {limit} bytes at {address:#x}")
    return raw.decode("utf-8", "replace")


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


def in_flight(read, globals_address: int, demangle, class_vtables: dict[int, str]
              ) -> InFlight | None:
    """The exception std::terminate was called for; None when none is in
    flight (terminate called for another reason).  ``class_vtables``: the
    address points of the type_info vtables (``_ZTVN10__cxxabiv1...E`` + 16)
    -> 'si' / 'vmi' / 'class'."""
    caught = _ptr(read, globals_address)
    uncaught = int.from_bytes(read(globals_address + 8, 4), "little")
    if caught == 0:
        return None
    cls = read(caught + UNWIND_HEADER, 8)
    if cls == GNU_CXX_DEPENDENT:
        raise ExceptionError("a dependent exception (std::rethrow_exception): its "
                             "primary object is not followed")
    if cls != GNU_CXX:
        raise ExceptionError(f"the in-flight exception at {caught:#x} has no GNU C++ "
                             f"exception class ({cls!r}): a foreign or corrupt header")
    tinfo = _ptr(read, caught)
    obj = caught + HEADER_SIZE
    mangled = _c_string(read, _ptr(read, tinfo + 8), 512)
    if mangled.startswith("*"):             # local types: GCC marks a unique name with '*'
        mangled = mangled[1:]
    name = demangle(mangled) or mangled
    out = InFlight(name, mangled, None, object_address=obj, uncaught=uncaught)
    bases = _bases(read, tinfo, class_vtables, out.warnings)
    out.bases = [demangle(b) or b for b in bases]
    for b in [mangled] + bases:
        if b in MESSAGE_BASES:
            try:
                out.what = _c_string(read, _ptr(read, obj + 8), 4096)
            except Exception as exc:  # noqa: BLE001
                out.warnings.append(f"what() of the {name} at {obj:#x} is unreadable: {exc}")
            break
    return out


def _bases(read, tinfo: int, vtables: dict[int, str], warnings: list[str]) -> list[str]:
    """Mangled names of every base class (breadth first), from the type_info
    objects' own vtables."""
    out, queue, seen = [], [tinfo], set()
    while queue and len(seen) < MAX_CHAIN:
        t = queue.pop(0)
        if t in seen:
            warnings.append("the exception's base classes loop: garbage type_info")
            break
        seen.add(t)
        kind = vtables.get(_ptr(read, t))
        children = []
        if kind == "si":
            children = [_ptr(read, t + 16)]
        elif kind == "vmi":
            count = int.from_bytes(read(t + 20, 4), "little")
            if count > MAX_CHAIN:
                warnings.append(f"a type_info claims {count} bases: garbage")
                break
            children = [_ptr(read, t + 24 + 16 * i) for i in range(count)]
        for c in children:
            name = _c_string(read, _ptr(read, c + 8), 512)
            out.append(name.lstrip("*"))
            queue.append(c)
    return out
