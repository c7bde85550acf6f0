"""What kind of crash a fault or an abort is, and how bad: a rule table in
the spirit of CERT's `exploitable` (lib/rules.py: match, description,
explanation, in priority order; the first rule that matches wins).

Ratings are CERT's: exploitable, probably-exploitable,
probably-not-exploitable, unknown.  A rule sees ``FaultFacts``
(triage/fault_class.py); one that raises is skipped with a warning.
"""
from __future__ import annotations

from collections import namedtuple

NEAR_NULL = 0x10000             # Linux's default vm.mmap_min_addr: nothing maps below
# Fill patterns allocators and debug runtimes write into freed or fresh memory
# (MSVC debug heap, jemalloc junk/poison, glibc MALLOC_PERTURB_ users, Go,
# valgrind): a pointer made of one of these bytes came from a dead object.
POISON_BYTES = frozenset({0xDD, 0xFE, 0xEE, 0xCD, 0xAB, 0x5A, 0xA5, 0xBE, 0xEF, 0xCC})
POISON_WORDS = (0xDEADBEEF, 0xFEEEFEEE, 0xBAADF00D, 0xDEADC0DE, 0xFDFDFDFD)

EXPLOITABLE, PROBABLY, PROBABLY_NOT, UNKNOWN = (
    "exploitable", "probably-exploitable", "probably-not-exploitable", "unknown")


# name: the class, verdict and signature key; match: FaultFacts -> bool;
# explain: FaultFacts -> str
Rule = namedtuple("Rule", "name match rating explain")


def _where(f) -> str:
    r = f.region
    if r is None:
        return "no mapping"
    what = f"{r.section} of {r.object}" if r.section else (r.object or "an anonymous mapping")
    return what


def _poisoned(addr) -> bool:
    if addr is None or addr < NEAR_NULL:
        return False
    low = addr & 0xFFFFFFFF
    if low in POISON_WORDS or (addr >> 32) in POISON_WORDS:
        return True
    raw = addr.to_bytes(8, "little")
    return raw[0] in POISON_BYTES and len(set(raw[:4])) == 1 and len(set(raw)) <= 2


# Faults: SIGSEGV, SIGBUS (and SIGILL/SIGFPE have their own analyses).
FAULT_RULES: tuple[Rule, ...] = (
    Rule("stack-overflow", lambda f: f.stack_overflow, PROBABLY_NOT,
         lambda f: "the stack ran into its guard page: unbounded recursion or a huge "
                   "stack frame"),
    Rule("execute-violation", lambda f: f.access == "execute", EXPLOITABLE,
         lambda f: f"the pc itself faulted: execution went to {_where(f)}"),
    Rule("mapping-past-eof", lambda f: f.signo == 7 and f.region is not None
         and f.region.path is not None and f.code == 2, PROBABLY_NOT,
         lambda f: f"read of {f.region.path} past its end: the file is "
                   f"{'now ' + str(f.region.file_size) + ' bytes' if f.region.file_size is not None else 'shorter than the mapping'}"
                   f", the access is at file offset {f.region.file_offset_of(f.addr):#x} "
                   "(truncated after mmap)"),
    Rule("write-to-read-only", lambda f: f.access == "write" and f.region is not None
         and f.region.readonly, PROBABLY_NOT,
         lambda f: f"a write into {_where(f)}, which is read-only "
                   "(a string literal or a const table)"),
    Rule("null-write", lambda f: f.access == "write" and f.addr is not None
         and f.addr < NEAR_NULL, PROBABLY_NOT,
         lambda f: f"a write near NULL ({f.addr:#x}): a null pointer plus a field offset"),
    Rule("null-read", lambda f: f.addr is not None and f.addr < NEAR_NULL
         and f.signo == 11, PROBABLY_NOT,
         lambda f: f"a read near NULL ({f.addr:#x}): a null pointer plus a field offset"),
    Rule("use-after-free", lambda f: _poisoned(f.addr), EXPLOITABLE,
         lambda f: f"the address {f.addr:#x} is allocator fill: a pointer read out of a "
                   "freed or uninitialised object"),
    Rule("write-violation", lambda f: f.access == "write", EXPLOITABLE,
         lambda f: f"a write to {f.addr:#x} ({_where(f)}) that faulted"),
    Rule("read-violation", lambda f: f.signo == 11, UNKNOWN,
         lambda f: f"a read of {f.addr:#x} ({_where(f)}) that faulted"
         if f.addr is not None else "a read that faulted (the kernel gave no address)"),
    Rule("bus-error", lambda f: f.signo == 7, UNKNOWN,
         lambda f: "a bus error: the memory exists in the mapping but not behind it"),
)

# Aborts explained by a runtime's reason (triage/reasons.py): verdict -> rating.
ABORT_RATINGS: dict[str, tuple[str, str]] = {
    "heap-corruption": (PROBABLY, "glibc found its heap metadata corrupted: a double free, "
                        "an overflow of a heap block or a write after free"),
    "stack-smashing": (EXPLOITABLE, "a stack buffer overflow overwrote the canary "
                       "(and the return address behind it)"),
    "buffer-overflow": (PROBABLY, "a fortified copy would have overflowed its "
                        "destination; _FORTIFY_SOURCE stopped it"),
    "fortify-check": (PROBABLY, "a _FORTIFY_SOURCE check failed"),
    "assertion-failed": (PROBABLY_NOT, "the program's own assertion failed"),
    "uncaught-exception": (PROBABLY_NOT, "a C++ exception nobody caught: std::terminate"),
    "terminate": (PROBABLY_NOT, "std::terminate called without an exception in flight"),
    "pure-virtual-call": (UNKNOWN, "a pure virtual method called through an object under "
                          "construction or destruction, or through one already freed"),
    "rust-panic": (PROBABLY_NOT, "a Rust panic with panic=abort, or one that could not "
                   "unwind"),
    "python-fatal-error": (UNKNOWN, "CPython gave up (Py_FatalError)"),
    "glibc-fatal-error": (UNKNOWN, "glibc found an internal inconsistency"),
    "abort-message": (UNKNOWN, "glibc left a message before abort"),
}
