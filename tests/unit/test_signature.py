"""Crash signatures: names normalised the way debug info and ELF symbols
disagree in practice, frames chosen outside the runtimes, ids stable."""
from __future__ import annotations

from collections import namedtuple

import pytest

from gdbext.triage.signature import (Signature, deadlock_key, isa_key, meaningful_frames,
                                     normalise_function, spill_key)
from gdbext.triage.stop import classify


@pytest.mark.parametrize("raw, bare", [
    ("kernel", "kernel"),
    ("kernel.cold", "kernel"),                       # GCC's cold split, ELF symbol
    ("kernel.isra.0", "kernel"),
    ("kernel.constprop.0.isra.0", "kernel"),
    ("kernel.part.1", "kernel"),
    ("kernel.lto_priv.0", "kernel"),
    ("kernel.llvm.1234567", "kernel"),
    ("kernel [clone .cold]", "kernel"),               # gdb's spelling of a clone
    ("main[cold]", "main"),                           # gdb 13's spelling of main.cold
    ("ns::Cls::run(int, char const*) const", "ns::Cls::run"),   # demangled ELF symbol
    ("ns::Cls::run", "ns::Cls::run"),                 # the same with debug info
    ("void ns::apply<int>(std::vector<int, std::allocator<int> >&)", "ns::apply<int>"),
    ("unsigned long hash<unsigned long>(unsigned long)", "hash<unsigned long>"),
    ("ns::Cls::operator()(int)", "ns::Cls::operator()"),
    ("operator()", "operator()"),                    # gdb's DWARF name of a lambda frame
    ("ns::operator new(unsigned long)", "ns::operator new"),
    ("(anonymous namespace)::helper(int)", "(anonymous namespace)::helper"),
    ("mycrate::worker::run::h0123456789abcdef", "mycrate::worker::run"),   # legacy Rust
    ("mycrate[1a2b3c4d]::worker::run", "mycrate::worker::run"),            # Rust v0
    ("ctor_omp_init._omp_fn.0", "ctor_omp_init._omp_fn"),
    ("ctor_omp_init._omp_fn.12", "ctor_omp_init._omp_fn"),
])
def test_normalise_function(raw, bare):
    assert normalise_function(raw) == bare


def test_an_unnamed_frame_is_its_file_never_an_address():
    assert normalise_function(None, "/opt/app/lib/libjit.so") == "<libjit.so>"
    assert normalise_function("??", None) == "??"


LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
GOMP = "/lib/x86_64-linux-gnu/libgomp.so.1"


def test_meaningful_frames_skip_runtimes_and_collapse_recursion():
    frames = [("__futex_abstimed_wait_common", LIBC), ("gomp_team_barrier_wait_end", GOMP),
              ("solve.cold", "/srv/app"), ("solve", "/srv/app"), ("solve", "/srv/app"),
              ("main", "/srv/app"), ("__libc_start_call_main", LIBC), ("_start", "/srv/app")]
    got = meaningful_frames(frames, 3)
    assert [f.function for f in got] == ["solve", "main"]
    assert got[0].object == "app"                     # a file name, not a path


def test_all_runtime_frames_fall_back_to_the_innermost():
    got = meaningful_frames([("memcpy", LIBC), ("start_thread", LIBC)], 3)
    assert [f.function for f in got] == ["memcpy"]
    assert meaningful_frames([], 3) == []


def test_signature_text_and_id_are_stable():
    a = Signature("SIGILL", "unsupported", "avx512f", ("kernel", "main"))
    b = Signature("SIGILL", "unsupported", "avx512f", ("kernel", "main"))
    assert a.text == "SIGILL|unsupported|avx512f|kernel<main"
    assert a.id == b.id and len(a.id) == 12
    # ids recorded by earlier versions stay valid: the first 12 hex of SHA-256
    assert a.id == __import__("hashlib").sha256(a.text.encode()).hexdigest()[:12]
    assert Signature("SIGILL", "unsupported", "fma4", ("kernel", "main")).id != a.id
    assert Signature("hang", "no-deadlock", "", ()).text == "hang|no-deadlock|-|-"
    # a hang's frames are the sorted wait sites of several threads, not a chain
    assert Signature("hang", "deadlock", "lock-order", ("t1", "t2")).text == \
        "hang|deadlock|lock-order|t1,t2"


def test_key_facts():
    assert isa_key({"missing": ["avx512vl", "avx512f"]}) == "avx512f+avx512vl"
    assert isa_key({"missing": [], "trap": "ud2 raises #UD", "mnemonic": "ud2"}) == "trap-ud2"
    assert isa_key({"missing": [], "verdict": "undecodable"}) == "undecodable"
    assert spill_key({"fault": {"kind": "misaligned-access"}}) == "misaligned-access"
    assert deadlock_key({"cycles": [[1, 2]], "patterns": ["lock-order"]}) == "lock-order"
    assert deadlock_key({"cycles": [[1, 2], [3]], "patterns": [None, "self-deadlock"]}) == \
        "cycle+self-deadlock"
    assert deadlock_key({"cycles": [], "stalled_holders": [{"lwp": 5, "state": "sleep"}]}) \
        == "held-while-sleep"
    assert deadlock_key({"cycles": [], "stalled_holders": []}) == ""


# --- why the process stopped -------------------------------------------------
SIGILL, SIGABRT, SIGSEGV, SIGSTOP, SIGINT, SIGTRAP, SIGFPE = 4, 6, 11, 19, 2, 5, 8
SI_USER, SI_TKILL, SI_KERNEL = 0, -6, 0x80
SignalInfo = namedtuple("SignalInfo", "signo code addr sender_pid syscall arch",
                        defaults=(None, None))   # target.SignalInfo's shape


@pytest.mark.parametrize("signo, code, sender, origin, klass, commands", [
    (SIGILL, 2, None, "fault", "SIGILL", ("isa-check",)),
    (SIGSEGV, SI_KERNEL, None, "fault", "SIGSEGV", ("spill-audit",)),   # #GP
    (SIGSEGV, 1, None, "fault", "SIGSEGV", ("spill-audit",)),
    (7, 2, None, "fault", "SIGBUS", ("spill-audit",)),
    (SIGFPE, 1, None, "fault", "SIGFPE", ()),
    (SIGABRT, SI_TKILL, 100, "self", "SIGABRT", ()),          # abort()
    (SIGABRT, SI_USER, 555, "external", "hang", ("deadlock-graph",)),   # a watchdog
    (SIGSEGV, SI_USER, 555, "external", "hang", ("deadlock-graph",)),   # kill -SEGV
    (SIGSTOP, SI_KERNEL, None, "external", "hang", ("deadlock-graph",)),  # attach
    (SIGINT, SI_KERNEL, None, "external", "hang", ("deadlock-graph",)),   # Ctrl-C
    (SIGTRAP, SI_KERNEL, None, "trap", "hang", ("deadlock-graph",)),  # a breakpoint (int3)
    (SIGTRAP, 1, None, "trap", "hang", ("deadlock-graph",)),          # TRAP_BRKPT
    (SIGTRAP, SI_USER, 555, "external", "hang", ("deadlock-graph",)),  # kill -TRAP
    (31, 1, None, "fault", "SIGSYS", ()),                     # seccomp's SYS_SECCOMP
    (31, SI_USER, 555, "external", "hang", ("deadlock-graph",)),      # kill -SYS
    (None, None, None, "none", "hang", ("deadlock-graph",)),
])
def test_stop_classification(signo, code, sender, origin, klass, commands):
    info = None if signo is None else SignalInfo(signo, code, None, sender)
    stop = classify(info, 100)
    assert (stop.origin, stop.klass, stop.commands) == (origin, klass, commands)


def test_a_breakpoint_is_not_sent_from_outside():
    stop = classify(SignalInfo(SIGTRAP, SI_KERNEL, None, None), 100)
    assert "not a signal sent from outside" in stop.describe()
