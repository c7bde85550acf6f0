"""Crash signatures that group duplicates.

A signature is the signal class, the verdict, the key fact (missing feature,
fault kind, lock pattern) and the top meaningful frames as bare names.  It
must come out the same across runs (no addresses, offsets, pids or paths),
machines (no CPU or library build ids) and debug-info presence (debug info
names a GCC clone `foo`, the ELF symbol says `foo.isra.0`; C++ debug info
says `ns::f`, the demangled symbol `ns::f(int) const`).
"""
from __future__ import annotations

import os
import re

try:        # the same SHA-256 as hashlib's, without importing OpenSSL (~3 ms a gdb)
    from _sha256 import sha256
except ImportError:     # Python 3.12+ names it _sha2; other builds may lack it
    from hashlib import sha256

from ..knowledge.skip_frames import SKIP_OBJECT_PATTERNS, is_machinery
from ..knowledge.triage import SIGNATURE_SKIP_FUNCTIONS, SIGNATURE_SKIP_OBJECTS
from ..record import record

_SKIP_OBJECT = re.compile("|".join(SIGNATURE_SKIP_OBJECTS + SKIP_OBJECT_PATTERNS))
_SYSTEM_OBJECT = re.compile("|".join(SIGNATURE_SKIP_OBJECTS))
# GCC/LLVM clones and local copies: foo.cold, foo.isra.0, foo.constprop.0.isra.0,
# foo.part.1, foo.lto_priv.0, foo.llvm.1234; gdb's "foo [clone .cold]", and
# gdb 13's "foo[cold]" for the minimal symbol foo.cold (no debug info).
_CLONE = re.compile(r"(?:\.(?:cold|hot|isra|constprop|part|lto_priv|localalias|clone|"
                    r"specialized|llvm|plt)(?:\.\d+)*)+$")
_GDB_CLONE = re.compile(r"\s*\[(?:clone [^\]]*|cold)\]")
_OMP_FN = re.compile(r"(\._omp_fn)\.\d+")           # GCC's outlined OpenMP regions
_RUST_HASH = re.compile(r"::h[0-9a-f]{16}$")         # legacy Rust mangling
_RUST_DISAMBIGUATOR = re.compile(r"\[[0-9a-f]{1,16}\]")  # v0 crate ids
# A Rust program's main function: with debug info gdb ends the backtrace there
# (its language main), without it walks on through std::rt to rustc's C main.
_RUST_MAIN = re.compile(r"[A-Za-z_]\w*::main\Z")
_QUALIFIERS = re.compile(r"\s*(?:const|volatile|&&|&|noexcept)\s*$")
_OPEN, _CLOSE = "<([{", ">)]}"


def normalise_function(name: str | None, objfile: str | None = None) -> str:
    """A frame's function as a stable bare name; an unnamed frame is its
    object's file name in angle brackets (never an address)."""
    if not name or name == "??":
        return f"<{os.path.basename(objfile)}>" if objfile else "??"
    name = _GDB_CLONE.sub("", name.strip())
    name = _RUST_DISAMBIGUATOR.sub("", _RUST_HASH.sub("", name))
    name = _strip_return_type(_strip_parameters(name))
    name = _OMP_FN.sub(r"\1", name)
    return _CLONE.sub("", name) or "??"


def _strip_parameters(name: str) -> str:
    """'ns::f(int, char*) const' -> 'ns::f'; 'operator()(int)' -> 'operator()'."""
    while True:
        stripped = _QUALIFIERS.sub("", name)
        if stripped == name:
            break
        name = stripped
    if not name.endswith(")") or name.endswith("operator()"):
        return name                 # gdb's bare "operator()" of a lambda: no parameters
    depth = 0
    for i in range(len(name) - 1, -1, -1):
        c = name[i]
        if c in _CLOSE:
            depth += 1
        elif c in _OPEN:
            depth -= 1
            if depth == 0:
                return name[:i].rstrip() if i else name
    return name


def _strip_return_type(name: str) -> str:
    """'void ns::f<int>' -> 'ns::f<int>': demangled template functions carry
    their return type; spaces inside brackets and 'operator new' stay."""
    depth, cut = 0, -1
    for i, c in enumerate(name):
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        elif c == " " and depth == 0 and not name[:i].endswith("operator"):
            cut = i
    return name[cut + 1:] if cut >= 0 and name[cut + 1:] else name


@record(frozen=True)
class NamedFrame:
    """A frame of the signature: normalised function and object name."""
    function: str               # normalised
    object: str | None          # file name only: paths differ between machines

    def to_json(self) -> dict:
        return {"function": self.function, "object": self.object}


def meaningful_frames(frames, limit: int, skip_objects=None) -> list[NamedFrame]:
    """The first ``limit`` frames outside libc and the runtimes and their
    machinery (knowledge/skip_frames.py), named stably, recursion collapsed;
    ``frames`` are (function, objfile) pairs from the innermost;
    ``skip_objects`` a regex of more objects to skip (the interpreter of a
    Python process).  When every frame is a runtime's, the innermost named
    one outside the C library stands for them."""
    out: list[NamedFrame] = []
    first = fallback = None
    for function, objfile in frames:
        frame = NamedFrame(normalise_function(function, objfile),
                           os.path.basename(objfile) if objfile else None)
        first = first or frame
        if fallback is None and function and function != "??" and not (
                objfile and _SYSTEM_OBJECT.search(objfile)):
            fallback = frame
        if (objfile and (_SKIP_OBJECT.search(objfile) or (
                skip_objects and re.search(skip_objects, objfile)))) \
                or frame.function in SIGNATURE_SKIP_FUNCTIONS or is_machinery(frame.function):
            continue
        if out and out[-1] == frame:
            continue
        if out and frame.function == "main" and _RUST_MAIN.match(out[-1].function):
            break       # rustc's C main shim: gdb's -g walk ends at the crate's main
        out.append(frame)
        if len(out) == limit:
            break
    return out or ([fallback or first] if first else [])


def smashed_at(frames, maps) -> int | None:
    """The index of the first caller frame whose return address maps to
    nothing (no function, no object, and ``maps(pc)`` false): the stack was
    overwritten there, and every frame from it on is garbage.  ``frames``:
    (pc, function, objfile), innermost first."""
    for i, (pc, function, objfile) in enumerate(frames):
        if i and not objfile and (not function or function == "??") and not maps(pc):
            return i
    return None


@record(frozen=True)
class Signature:
    """The crash's signature: its text and id."""
    klass: str                  # SIGILL, SIGSEGV, SIGBUS, SIGFPE, hang, SIGABRT...
    verdict: str
    key: str                    # the one fact that tells two crashes of a class apart
    frames: tuple[str, ...]     # innermost first

    @property
    def joiner(self) -> str:
        """'<' for a crash's call chain (callee first); ',' for the sorted
        wait sites of the threads in a hang."""
        return "," if self.klass == "hang" else "<"

    @property
    def text(self) -> str:
        return "|".join((self.klass, self.verdict, self.key or "-",
                         self.joiner.join(self.frames) or "-"))

    @property
    def id(self) -> str:
        return sha256(self.text.encode()).hexdigest()[:12]

    def to_json(self) -> dict:
        return {"id": self.id, "text": self.text, "class": self.klass,
                "verdict": self.verdict, "key": self.key, "frames": list(self.frames)}


# --- the key fact, from each command's JSON ----------------------------------
def isa_key(report: dict) -> str:
    if report.get("missing"):
        return "+".join(sorted(report["missing"]))
    if report.get("trap"):              # ud2, int3: deliberate, named by the instruction
        return f"trap-{report.get('mnemonic')}"
    if report.get("verdict") == "undecodable":
        return "undecodable"
    return report.get("mnemonic") or ""


def spill_key(report: dict) -> str:
    return (report.get("fault") or {}).get("kind") or ""


def deadlock_key(report: dict) -> str:
    if report.get("cycles") or report.get("orphaned") or report.get("all_blocked"):
        # a cycle, an owner that is gone, or every thread asleep for good
        return "+".join(sorted({p or "cycle" for p in report.get("patterns") or [None]}))
    stalled = sorted({h["state"] for h in report.get("stalled_holders") or []})
    return "+".join(f"held-while-{s}" for s in stalled)
