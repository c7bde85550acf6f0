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
# explain: FaultFacts -> str; id: the rule's own name when several rules give
# one class (shown as "rule fault:ID")
Rule = namedtuple("Rule", "name match rating explain id", defaults=(None,))


def _where(f) -> str:
    r = f.region
    if r is None:
        return "no mapping"
    if r.section:
        return f"{r.section} of {r.object}"
    if r.object:
        return r.object
    what = r.name or "an anonymous mapping"
    return f"{what} [{r.start:#x}, {r.end:#x}) {r.perms}" if r.end else what


def _poisoned(addr) -> bool:
    if addr is None or addr < NEAR_NULL:
        return False
    low = addr & 0xFFFFFFFF
    if low in POISON_WORDS or (addr >> 32) in POISON_WORDS:
        return True
    raw = addr.to_bytes(8, "little")
    return raw[0] in POISON_BYTES and len(set(raw[:4])) == 1 and len(set(raw)) <= 2


def _canonical(address: int) -> bool:
    top = address >> 47            # 48-bit virtual addresses (LA57 not assumed)
    return top == 0 or top == (1 << 17) - 1


def _pointers(f):
    """The pointer the instruction dereferenced, and the address it faulted at."""
    seen = []
    for value in ((f.insn.pointer if f.insn else None), f.addr):
        if value is not None and value not in seen:
            seen.append(value)
    return seen


# glibc >= 2.32 safe-linking (malloc/malloc.c, PROTECT_PTR): a free chunk's
# tcache/fastbin next pointer is stored as (pos >> 12) ^ next, pos being the
# address of the field itself.  The last chunk of a bin stores pos >> 12: a
# value in [heap_lo >> 12, heap_hi >> 12).  A freed object's first field read
# as a pointer therefore lands there, or demangles into the heap.
SAFE_LINK_PAGES_MAX = 1 << 16


def safe_linked(f):
    """(value, what, heap range) when a pointer is a safe-linked free-list link."""
    for value in _pointers(f):
        for lo, hi in f.heaps:
            if lo >> 12 <= value < hi >> 12:
                return value, "the end of a free list: (pos >> 12) ^ NULL", (lo, hi)
            pages = range(lo >> 12, min(hi >> 12, (lo >> 12) + SAFE_LINK_PAGES_MAX))
            for page in pages:
                plain = value ^ page
                if lo <= plain < hi and plain % 16 == 0 and plain >> 12 >= page:
                    return value, f"a link to {plain:#x}: (pos >> 12) ^ next", (lo, hi)
    return None


def _safe_linked_text(f) -> str:
    value, what, (lo, hi) = safe_linked(f)
    return (f"the pointer {value:#x} is a glibc safe-linked free-list link ({what}; "
            f"heap [{lo:#x}, {hi:#x}), malloc.c PROTECT_PTR): the object holding it was "
            "freed and its first field reused by tcache or a fastbin - a use after free")


def _bad_code(f, address) -> bool:
    """Not an address code can run at: non-canonical, near NULL or unmapped."""
    return address is not None and (not _canonical(address) or address < NEAR_NULL
                                     or not f.executable(address))


def _ret_text(f) -> str:
    i = f.insn
    where = f" at [rsp] = {i.address:#x}" if i.address is not None else ""
    fill = ""
    raw = i.target.to_bytes(8, "little")
    if len(set(raw)) == 1:
        fill = f" (eight {raw[0]:#04x} bytes: the data that overflowed a stack buffer)"
    why = "not canonical, so the CPU refused it (#GP)" if not _canonical(i.target) \
        else "no code there"
    return (f"`{i.text}` would return to {i.target:#x}{fill}, the return address{where}: "
            f"{why}; a stack buffer overflow overwrote the saved return address")


def _branch_text(f) -> str:
    i = f.insn
    return (f"`{i.text}` {'calls' if i.flow == 'call' else 'jumps'} to {i.target:#x} "
            f"(from {i.target_from}), which is not canonical: a corrupt function "
            "pointer, vtable or jump table")


def _jump_how(f) -> str:
    j = f.jump or {}
    if j.get("how") == "tail-call" and j.get("callee"):
        return (f"{j['callee']} jumped there (a tail call through a function pointer; "
                f"{j.get('caller') or 'its caller'} called {j['callee']})")
    if j.get("how") == "call" and j.get("certainty") == "exact":
        return f"{j.get('caller') or 'the caller'} called it: `{j.get('call')}`"
    if j.get("how") == "call":
        return (f"probably the call `{j.get('call')}` in {j.get('caller') or 'the caller'} "
                "(its operand holds the pc now; inferred)")
    return "a jump or a return took it there"


def _exec_text(f, what) -> str:
    return f"the pc {f.pc:#x} {what}: {_jump_how(f)}"


def _divisor(f) -> str:
    i = f.insn
    if i is None or i.divisor is None:
        return "the divisor"
    return f"the divisor {i.divisor}" + (f" = {i.divisor_value}"
                                         if i.divisor_value is not None else "")


def _int_min(f) -> bool:
    i = f.insn
    return bool(i and i.signed and i.divisor_value == -1 and i.size
                and i.dividend_value == -(1 << (i.size * 8 - 1)))


SI_KERNEL = 0x80
FPE_INTDIV, FPE_INTOVF = 1, 2


# Faults: SIGSEGV, SIGBUS, SIGFPE (SIGILL has isa-check).
def _seccomp_text(f) -> str:
    s = f.syscall or {}
    name = f" ({s['name']})" if s.get("name") else ""
    at = f" made at {f.addr:#x}" if f.addr else ""
    abi = f", {s['abi']} ABI" if s.get("abi") else ""
    return (f"the process's seccomp filter refused system call {s.get('number', '?')}{name}"
            f"{at}{abi}: code ran a system call its sandbox forbids (SECCOMP_RET_TRAP or "
            "KILL) - a new code path, a libc or runtime that now uses another call "
            "(clone3, openat2, statx...), or injected code")


FAULT_RULES: tuple[Rule, ...] = (
    # SIGSYS with SYS_SECCOMP (uapi/asm-generic/siginfo.h): no instruction faulted
    Rule("seccomp-violation", lambda f: f.signo == 31 and f.code == 1, UNKNOWN, _seccomp_text),
    Rule("stack-overflow", lambda f: f.stack_overflow, PROBABLY_NOT,
         lambda f: "the thread ran out of stack (its guard page or its size limit): "
                   "unbounded recursion or a huge stack frame"),
    # a ret whose return address is garbage: CERT's ReturnAv
    Rule("return-to-bad-address", lambda f: f.signo == 11 and f.insn is not None
         and f.insn.flow == "ret" and _bad_code(f, f.insn.target), EXPLOITABLE, _ret_text),
    Rule("branch-to-bad-address", lambda f: f.signo == 11 and f.insn is not None
         and f.insn.flow in ("call", "jmp") and f.insn.target is not None
         and not _canonical(f.insn.target), EXPLOITABLE, _branch_text),
    # the pc itself faulted (si_addr == pc): CERT's SegFaultOnPc(NearNull)
    Rule("call-to-null", lambda f: f.access == "execute" and f.pc is not None
         and f.pc < NEAR_NULL, PROBABLY,
         lambda f: _exec_text(f, "is near NULL") + ": a NULL function pointer called"),
    Rule("execute-non-executable", lambda f: f.access == "execute" and f.region is not None
         and f.pc is not None and not f.executable(f.pc), EXPLOITABLE,
         lambda f: _exec_text(f, f"lies in {_where(f)}, which is mapped without execute "
                                 "permission (a DEP/NX violation)")
         + "; code run from data: injected code or a pointer to data used as code"),
    Rule("jump-to-unmapped", lambda f: f.access == "execute" and f.jump is not None
         and f.region is None, EXPLOITABLE,
         lambda f: _exec_text(f, "is in no mapping")),
    Rule("execute-violation", lambda f: f.access == "execute", EXPLOITABLE,
         lambda f: _exec_text(f, f"is in {_where(f)}")),
    Rule("stack-segment-fault", lambda f: f.signo == 7 and f.code == SI_KERNEL, UNKNOWN,
         lambda f: "a stack-segment fault (#SS, SIGBUS with SI_KERNEL): an access through "
                   "rsp or rbp at a non-canonical address - the stack or frame pointer "
                   "itself is corrupt" + (f" (`{f.insn.text}`)" if f.insn else "")),
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
    # the instruction unknown (its bytes are not in the core and the file here
    # is another build): a fault near NULL, but not whether it read or wrote
    Rule("null-access", lambda f: f.access is None and f.insn is None and f.addr is not None
         and f.addr < NEAR_NULL and f.signo == 11, PROBABLY_NOT,
         lambda f: f"an access near NULL ({f.addr:#x}): a null pointer plus a field offset "
                   "(the instruction is unknown, so whether it read or wrote is too)"),
    Rule("null-read", lambda f: f.addr is not None and f.addr < NEAR_NULL
         and f.signo == 11, PROBABLY_NOT,
         lambda f: f"a read near NULL ({f.addr:#x}): a null pointer plus a field offset"),
    Rule("use-after-free", lambda f: any(_poisoned(p) for p in _pointers(f)), EXPLOITABLE,
         lambda f: f"the address {next(p for p in _pointers(f) if _poisoned(p)):#x} is "
                   "allocator fill: a pointer read out of a freed or uninitialised object",
         "allocator-fill"),
    Rule("use-after-free", lambda f: f.signo == 11 and safe_linked(f) is not None,
         EXPLOITABLE, _safe_linked_text, "safe-linked-pointer"),
    Rule("non-canonical-address", lambda f: f.signo == 11 and f.addr is not None
         and not _canonical(f.addr), UNKNOWN,
         lambda f: f"a {f.access or 'access'} through {f.addr:#x}, which is not canonical "
                   "(bits 63..47 differ; #GP, the kernel gave no address): a corrupt or "
                   "uninitialised pointer"),
    Rule("write-violation", lambda f: f.access == "write", EXPLOITABLE,
         lambda f: f"a write to {f.addr:#x} ({_where(f)}) that faulted"
         if f.addr is not None else "a write that faulted (no address known)"),
    Rule("general-protection", lambda f: f.signo == 11 and f.code == SI_KERNEL, UNKNOWN,
         lambda f: "a general-protection fault (#GP; si_code SI_KERNEL, si_addr is not an "
                   "address)" + (f" at `{f.insn.text}`" if f.insn else "")
                   + ": a privileged instruction, a bad segment or a non-canonical "
                     "address the instruction does not show"),
    Rule("read-violation", lambda f: f.signo == 11, UNKNOWN,
         lambda f: f"a read of {f.addr:#x} ({_where(f)}) that faulted"
         if f.addr is not None else "a read that faulted (the kernel gave no address)"),
    Rule("bus-error", lambda f: f.signo == 7, UNKNOWN,
         lambda f: "a bus error: the memory exists in the mapping but not behind it"),
    # SIGFPE: x86's #DE gives FPE_INTDIV for a zero divisor and for INT_MIN / -1
    Rule("integer-overflow", lambda f: f.signo == 8 and (f.code == FPE_INTOVF or _int_min(f)),
         PROBABLY_NOT,
         lambda f: f"`{f.insn.text}`: {f.insn.dividend_value} / -1 does not fit in "
                   f"{f.insn.size * 8} bits (the most negative integer divided by -1)"
         if _int_min(f) else "a signed integer overflow trapped (into)"),
    Rule("integer-divide-by-zero", lambda f: f.signo == 8 and f.code == FPE_INTDIV
         and (f.insn is None or f.insn.divisor_value in (0, None)), PROBABLY_NOT,
         lambda f: (f"`{f.insn.text}`: {_divisor(f)}" if f.insn and f.insn.divisor
                    else "an integer division by zero")
         + (": a division by zero" if f.insn and f.insn.divisor_value == 0
            else " (its value is not known here)")),
    Rule("integer-divide-error", lambda f: f.signo == 8 and f.code == FPE_INTDIV,
         PROBABLY_NOT,
         lambda f: f"`{f.insn.text}`: the quotient does not fit its register "
                   f"({_divisor(f)}, dividend {f.insn.dividend_value})"),
    Rule("floating-point-exception", lambda f: f.signo == 8, PROBABLY_NOT,
         lambda f: "an unmasked floating-point exception (the program enabled traps with "
                   "feenableexcept or the MXCSR)"),
)

# Aborts explained by a runtime's reason (triage/evidence.py, fault_class.for_abort): verdict -> rating.
ABORT_RATINGS: dict[str, tuple[str, str]] = {
    "heap-corruption": (PROBABLY, "glibc found its heap metadata corrupted: a double free, "
                        "an overflow of a heap block or a write after free"),
    "stack-smashing": (EXPLOITABLE, "a stack buffer overflow overwrote the canary "
                       "(and the return address behind it)"),
    "buffer-overflow": (PROBABLY, "a fortified copy would have overflowed its "
                        "destination; _FORTIFY_SOURCE stopped it"),
    "fortify-check": (PROBABLY, "a _FORTIFY_SOURCE check failed"),
    "assertion-failed": (PROBABLY_NOT, "the program's own assertion failed"),
    # assertions that are not the program's (for_abort: details "inside"/"checker")
    "assertion-failed:glibc": (PROBABLY_NOT, "an assertion inside glibc failed: the program "
                               "broke one of glibc's preconditions or corrupted its state - "
                               "e.g. a pthread_mutex_t overwritten, used after "
                               "pthread_mutex_destroy, or unlocked by a thread that does not "
                               "own it"),
    "assertion-failed:libstdc++": (PROBABLY_NOT, "a standard-library precondition check "
                                   "(_GLIBCXX_ASSERTIONS) failed: an index out of range, "
                                   "front()/back()/pop of an empty container, a null "
                                   "unique_ptr dereferenced..."),
    "uncaught-exception": (PROBABLY_NOT, "a C++ exception nobody caught: std::terminate"),
    "terminate": (PROBABLY_NOT, "std::terminate called without an exception in flight"),
    "pure-virtual-call": (UNKNOWN, "a pure virtual method called through an object under "
                          "construction or destruction, or through one already freed"),
    "rust-panic": (PROBABLY_NOT, "a Rust panic with panic=abort, or one that could not "
                   "unwind"),
    "rust-oom": (PROBABLY_NOT, "an allocation failed: out of memory, a limit (ulimit -v, a "
                 "cgroup), or an absurd size the program computed (Vec::with_capacity of "
                 "an unchecked length)"),
    "python-fatal-error": (UNKNOWN, "CPython gave up (Py_FatalError)"),
    "glibc-fatal-error": (UNKNOWN, "glibc found an internal inconsistency"),
    "abort-message": (UNKNOWN, "glibc left a message before abort"),
}

# glibc's malloc checks (malloc/malloc.c, glibc 2.36: the malloc_printerr
# strings), most specific first: (message regex, class, explanation).  The
# message is read from __abort_msg; the class says which heap bug it is.
MALLOC_CHECKS: tuple[tuple[str, str, str], ...] = (
    (r"^(?:free|munmap_chunk|mremap_chunk|realloc)\(\): invalid pointer$", "invalid-free",
     "free() or realloc() was given a pointer malloc never returned: glibc checks that the "
     "pointer is 16-byte aligned, that its chunk does not wrap the address space and, for "
     "a chunk whose header says mmapped (munmap_chunk, mremap_chunk), that it is a whole "
     "page mapping - an interior pointer (into the middle of a block), a stack or static "
     "address, a pointer from another allocator, or garbage"),
    (r"^free\(\): invalid size$|^realloc\(\): invalid old size$", "invalid-free",
     "the chunk header before the freed pointer has an impossible size: the pointer is not "
     "the start of a malloc block (an interior or foreign pointer), or the header was "
     "overwritten by an underflow of the block before it"),
    (r"double free detected in tcache", "double-free",
     "the freed block is already in its tcache bin (its key field points at the thread's "
     "tcache): the same pointer freed twice"),
    (r"^double free or corruption \((?:fasttop|!prev)\)$", "double-free",
     "the freed block is already free (fasttop: it is the head of its fastbin; !prev: the "
     "next chunk's PREV_INUSE bit says so): a double free, or a write that cleared that "
     "bit"),
    (r"^double free or corruption \((?:top|out)\)$", "invalid-free",
     "the freed pointer is the top chunk or lies outside the arena: freed twice after the "
     "arena grew past it, or a pointer malloc never returned"),
    (r"invalid next size|^malloc\(\): corrupted top size$|^corrupted size vs\. prev_size",
     "heap-overflow",
     "the size field of the chunk after a block is impossible: a write ran past the end of "
     "the block before it (a heap buffer overflow) and overwrote the next chunk's header"
     " (for 'corrupted top size': the top chunk's)"),
    (r"double-linked list|unsorted chunks|smallbin|unaligned (?:tcache|fastbin) chunk|"
     r"memory corruption|mismatching next->prev_size|invalid next->prev_inuse|"
     r"invalid chunk size|invalid size \(unsorted\)|too many chunks",
     "free-list-corruption",
     "a free chunk's links or size were overwritten while it sat in a bin: a write through "
     "a pointer to freed memory (use after free) or an overflow into a free chunk"),
)
