"""crash-triage on the everyday corpus (tests/e2e/everyday.py): real runtimes
crashing as users meet them.  Every expectation comes from what the runtime
printed on stderr, what the program printed about itself, nm/objdump/readelf
and the file system -- never from gdbext.  Kernel cores with and without
glibc debug info, a second run of every program, and live + gcore for a
representative subset must sign alike."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.e2e import everyday
from tests.e2e.gdb_session import GdbSession, assert_no_traceback
from tests.host import GDB, REPO, core_file_offset, run, unlimited_core

pytestmark = pytest.mark.xdist_group("everyday-corpus")


def triage(*args, timeout=900) -> list[dict]:
    proc = subprocess.run([sys.executable, "-m", "gdbext", "triage", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert_no_traceback(proc.stderr)
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    first = everyday.make(tmp_path_factory.mktemp("everyday-1"))
    second = everyday.make(tmp_path_factory.mktemp("everyday-2"))
    if not first:
        pytest.skip(f"no everyday fixture was built: {first.skipped}")
    # the same cases both times (a crash the second run did not make is a failure)
    assert [c.case.name for c in first] == [c.case.name for c in second], first.skipped
    return first, second


@pytest.fixture(scope="session")
def records(corpus):
    first, second = corpus
    one = triage(*[c.core for c in first], "--jobs", "2", "--no-summary")
    two = triage(*[c.core for c in second], "--jobs", "2", "--no-summary")
    bare = triage(*[c.core for c in first], "--jobs", "2", "--no-summary",
                  "--debug-file-directory", "/nonexistent")
    one, two, bare = (everyday.by_core(first, one), everyday.by_core(second, two),
                      everyday.by_core(first, bare))
    return ({c.case.name: (c, one[c.case.name]) for c in first}, two, bare, first.skipped)


def defined(binary) -> set[str]:
    """Function names the program defines, demangled by nm (Rust hashes kept)."""
    out = run(["nm", "-C", "--defined-only", str(binary)]).stdout
    return {m.group(1) for m in re.finditer(r"^[0-9a-f]+ [tTW] (.+)$", out, re.M)}


def triaged(records, name):
    one, skipped = records[0], records[3]
    if name not in one:            # only what the corpus itself could not make, with why
        assert name in skipped, f"{name}: no core and no reason"
        pytest.skip(f"{name}: {skipped[name]}")
    crash, r = one[name]
    assert r["status"] == "ok", (name, r["error"])
    return crash, r["triage"]


@pytest.mark.parametrize("name", [c.name for c in everyday.CASES])
def test_same_signature_across_runs_and_debug_info(records, name):
    crash, t = triaged(records, name)
    assert records[1][name]["signature"] == t["signature"], name
    assert records[2][name]["signature"] == t["signature"], name     # no glibc debug info
    assert t["stop"]["signo"] == crash.case.signal or t["interrupted"], name
    sig = t["signature"]
    # the top frame is the program's own code (nm), never the runtime's machinery
    if crash.case.needs != "python":
        top = sig["frames"][0]
        assert any(d == top or d.startswith(top + "::h") or d.startswith(top + "(")
                   for d in defined(crash.case.exe)), (name, sig)
        assert not re.match(r"(abort|raise|core::panicking|std::|__cxa|std::terminate)",
                            top), sig


def test_every_bug_signs_apart_and_rust_panics_differ(records):
    one = records[0]
    by_bug: dict[str, set[str]] = {}
    for name, (crash, r) in one.items():
        by_bug.setdefault(crash.case.bug, set()).add(r["signature"]["id"])
    ids = [next(iter(s)) for s in by_bug.values()]
    assert all(len(s) == 1 for s in by_bug.values())
    assert len(set(ids)) == len(ids), by_bug            # two bugs never share one
    rust = [r["signature"]["id"] for n, (_, r) in one.items() if n.startswith("rust-")]
    assert len(set(rust)) == len(rust)


def test_glibc_malloc_checks_read_from_abort_msg(records):
    for name in ("c-double-free", "c-corrupt-top", "c-twin-free"):
        crash, t = triaged(records, name)
        assert crash.facts["kind"] == "malloc-check"
        assert t["verdict"] == "heap-corruption"
        assert t["reason"]["details"]["check"] == crash.facts["message"]   # glibc's words
        assert t["reason"]["certainty"] == "exact"
        assert t["signature"]["key"] == crash.facts["message"]
        assert t["class"]["rating"] == "probably-exploitable"


def test_assertion_fields(records):
    for name in ("c-assert", "c-twin-assert"):
        crash, t = triaged(records, name)
        d, f = t["reason"]["details"], crash.facts
        assert t["verdict"] == "assertion-failed"
        assert (d["file"], d["line"], d["function"], d["expression"]) == (
            f["file"], f["line"], f["function"], f["expression"])
        assert t["signature"]["frames"][0] == f["function"]


def test_assert_and_double_free_in_one_function_are_two_bugs(records):
    _, a = triaged(records, "c-twin-assert")
    _, b = triaged(records, "c-twin-free")
    assert "validate_entry" in a["signature"]["frames"]
    assert "validate_entry" in b["signature"]["frames"]
    assert a["signature"]["id"] != b["signature"]["id"]
    assert a["signature"]["verdict"] != b["signature"]["verdict"]


def test_stack_smash_stops_at_the_garbage_return(records):
    crash, t = triaged(records, "c-stack-smash")
    assert crash.facts["kind"] == "stack-protector"
    assert t["verdict"] == "stack-smashing"
    assert t["signature"]["frames"] == ["read_header"]
    # the fixture fills the buffer with 'A': the return address read back is 0x41...
    assert t["stack_smashed"]["return_address"] == 0x4141414141414141


def test_fortify_names_the_caller(records):
    crash, t = triaged(records, "c-fortify")
    assert crash.facts["kind"] == "fortify"
    assert t["verdict"] == "buffer-overflow"
    assert t["signature"]["frames"][0] == "set_tag"
    assert "strcpy" not in t["signature"]["frames"]


def test_write_to_string_literal_names_rodata(records):
    crash, t = triaged(records, "c-strlit")
    assert t["verdict"] == "write-to-read-only" and t["access"] == "write"
    assert t["region"]["section"] == ".rodata"
    dump = run(["objdump", "-s", "-j", ".rodata", str(crash.case.exe)]).stdout
    assert "read-only" in dump            # the literal does live in .rodata


def test_sigbus_names_the_truncated_file(records):
    crash, t = triaged(records, "c-sigbus")
    facts = dict(re.findall(r"^(\w+)=(.*)$", crash.stdout, re.M))
    assert t["verdict"] == "mapping-past-eof"
    assert t["region"]["path"] == facts["mapped_file"]
    assert t["region"]["file_size"] == os.path.getsize(facts["mapped_file"])
    assert t["stop"]["addr"] == int(facts["mapped_at"], 16) + 4096


def test_null_read(records):
    _, t = triaged(records, "c-null-read")
    assert t["verdict"] == "null-read" and t["stop"]["addr"] == 0
    assert t["class"]["rating"] == "probably-not-exploitable"


CXX_THROWN = ["cxx-runtime", "cxx-custom", "cxx-int", "cxx-thread", "cxx-noexcept", "cxx-dtor",
              "cxx-rethrow-thread", "cxx-plain", "cxx-nested"]


@pytest.mark.parametrize("name", CXX_THROWN)
def test_uncaught_exception_type_and_what(records, name):
    crash, t = triaged(records, name)
    d = t["reason"]["details"]
    assert crash.facts["kind"] == "uncaught-exception"
    assert t["verdict"] == "uncaught-exception"
    assert d["type"] == crash.facts["type"]           # libstdc++'s own words
    if crash.facts["what"] is not None:
        assert d["what"] == crash.facts["what"]
    else:
        assert d["what"].startswith("none")
    assert t["signature"]["key"] == crash.facts["type"]


def undefined(binary) -> set[str]:
    """Symbols the program imports (nm -u)."""
    return set(run(["nm", "-u", "-C", str(binary)]).stdout.split())


def test_rethrown_exception_is_followed_to_its_primary(records):
    """std::rethrow_exception raises a dependent exception: the type and
    what() are the primary's, the report says it was rethrown, and a direct
    throw is never called rethrown."""
    crash, t = triaged(records, "cxx-rethrow-thread")
    d = t["reason"]["details"]
    assert any(s.startswith("std::rethrow_exception") for s in undefined(crash.case.exe))
    assert (d["type"], d["what"]) == (crash.facts["type"], crash.facts["what"])
    assert d["rethrown"] == "std::rethrow_exception"
    assert "rethrown by std::rethrow_exception" in t["headline"]
    assert d["references"] >= 1          # rethrow_exception holds one reference
    assert d["terminate"].startswith("no handler")
    assert t["reason"]["certainty"] == "exact"
    # the rethrow site on main is the top frame, not the worker that threw
    assert t["signature"]["frames"][0] == "deliver_result"
    for name in CXX_THROWN:
        if name != "cxx-rethrow-thread" and name not in records[3]:
            assert "rethrown" not in triaged(records, name)[1]["reason"]["details"], name


def test_nested_exception_outer_and_inner(records):
    crash, t = triaged(records, "cxx-nested")
    d = t["reason"]["details"]
    facts = dict(re.findall(r"^(nested_\w+)=(.*)$", crash.stdout, re.M))  # the program's words
    inner_type = run(["c++filt", "-t", facts["nested_type"]]).stdout.strip()
    assert d["type"] == crash.facts["type"] and d["what"] == crash.facts["what"]
    assert "std::nested_exception" in d["bases"]
    assert d["nested"] == [{"type": inner_type, "what": facts["nested_what"]}]
    assert t["signature"]["frames"][0] == "connect_db"      # not throw_with_nested's templates


def test_must_not_throw_and_throw_during_unwinding(records):
    _, t = triaged(records, "cxx-noexcept")
    assert "must-not-throw" in t["reason"]["details"]["terminate"]
    assert t["signature"]["frames"][:2] == ["check_limit", "commit_txn"]
    crash, t = triaged(records, "cxx-dtor")
    # the destructor printed std::uncaught_exceptions() just before it threw
    others = int(re.search(r"^uncaught_exceptions=(\d+)$", crash.stdout, re.M).group(1))
    d = t["reason"]["details"]
    assert others >= 1 and d["uncaught"] == others
    assert "during stack unwinding" in d["terminate"]
    assert t["signature"]["frames"][0] == "rollback_guard::~rollback_guard"


@pytest.mark.parametrize("name, verdict, key", [
    ("cxx-rethrow-none", "terminate", "rethrow-without-exception"),
    ("cxx-pure-virtual", "pure-virtual-call", "pure-virtual-call")])
def test_terminate_without_an_exception_invents_none(records, name, verdict, key):
    crash, t = triaged(records, name)
    assert crash.facts["kind"] == "terminate-no-exception"     # libstdc++ printed no type
    assert bool(crash.facts.get("pure_virtual")) == (verdict == "pure-virtual-call")
    d = t["reason"]["details"]
    assert t["verdict"] == verdict and "type" not in d and d["exception"] == "none"
    assert t["signature"]["key"] == key
    assert t["reason"]["certainty"] == "exact"


RUST_PANICS = ["rust-index", "rust-unwrap", "rust-expect", "rust-thread", "rust-format",
               "rust-payload", "rust-v0-ffi"]


def std_thread_handle_symbols(exe) -> bool:
    """Whether this std keeps its thread handle in the thread-locals
    std::thread::current::{CURRENT, id::ID} (rust 1.84+), by nm."""
    out = run(["nm", "-C", str(exe)]).stdout
    return all(re.search(rf"^[0-9a-f]+ [bB] std(?:\[[0-9a-f]+\])?::thread::current::{s}$",
                         out, re.M) for s in ("CURRENT", r"id::ID"))


def assert_rust_panic_as_std_printed(t, f, name, exe=None):
    """The reason equals what std's default hook printed on stderr: thread,
    location and message (std formats the message before the hook runs)."""
    d = t["reason"]["details"]
    assert t["verdict"] == "rust-panic", (name, t["headline"])
    assert d["location"] == f"{f['file']}:{f['line']}:{f['column']}", (name, d)
    assert d["message"] == f["message"], (name, d)
    assert d["message_certainty"] == "exact", (name, d)
    # std's PanicHookInfo, or -- a panic that could not start unwinding, rustc
    # 1.85 -- the exception std had moved the message into
    assert re.match(r"(std's PanicHookInfo|the Rust exception) ", d["message_source"]), (name, d)
    if f["thread"] == "main" or exe is None or std_thread_handle_symbols(exe):
        assert d["thread"] == f["thread"], (name, d)
    else:       # an older std: its handle is not read; unknown from a core, never a guess
        assert d["thread"] in (f["thread"], "unknown"), (name, d)
    assert f"panicked at {d['location']}: {f['message']}" in t["headline"]
    assert f"thread '{f['thread']}'" in t["headline"] or d["thread"] == "unknown"


@pytest.mark.parametrize("name", RUST_PANICS)
def test_rust_panic_location_message_and_thread(records, name):
    crash, t = triaged(records, name)
    d, f = t["reason"]["details"], crash.facts
    exe = crash.case.exe
    assert_rust_panic_as_std_printed(t, f, name, exe)
    # no glibc debug info: the same facts (the readers need none)
    bare = records[2][name]
    assert bare["status"] == "ok"
    assert_rust_panic_as_std_printed(bare["triage"], f, name, exe)
    assert bare["triage"]["reason"]["details"]["thread_source"] == d["thread_source"]
    if f["thread"] != "main" and std_thread_handle_symbols(exe):
        assert "CURRENT" in d["thread_source"], d   # a kernel core has no comm: std's handle
    std = defined(crash.case.exe)         # the panic entries this std has (nm)
    if "index out of bounds" in f["message"] and name != "rust-v0-ffi":
        assert d["kind"] == "index-out-of-bounds"
    if "Option::unwrap()" in f["message"] and any(
            n.startswith("core::option::unwrap_failed") for n in std):
        assert d["kind"] == "unwrap-none"
    if "cannot unwind" in f["message"]:
        assert d["kind"] == "cannot-unwind"
    # the message carries run-time values: it stays out of the signature
    assert f["message"] not in t["signature"]["text"]
    assert t["signature"]["key"] == d["kind"]


def test_rust_runtime_values_do_not_split_a_signature(records, tmp_path):
    """The same panic with other run-time values (one more argument: another
    index) prints another message and signs the same."""
    crash, t = triaged(records, "rust-format")
    case = everyday.Case("rust-format-2", ("panic_abort", "format", "again"), everyday.A,
                         "rust-format", "rust")
    other = everyday.run_case(case, tmp_path / "again")
    assert other.facts["message"] != crash.facts["message"]
    (r,) = triage(other.core, "--no-summary")
    assert r["status"] == "ok", r["error"]
    assert r["triage"]["reason"]["details"]["message"] == other.facts["message"]
    assert r["triage"]["signature"] == t["signature"]


def test_rust_stack_overflow_from_the_signal_frame(records):
    crash, t = triaged(records, "rust-overflow")
    assert crash.facts["kind"] == "stack-overflow"
    assert t["stop"]["signal"] == "SIGSEGV" and t["stop"]["source"] == "signal-frame"
    assert t["verdict"] == "stack-overflow"
    assert t["interrupted"]["certainty"] == "exact"
    assert t["interrupted"]["handler"]["runtime"] == "rust-std"      # std's guard-page handler
    assert t["signature"]["frames"] == ["overflow::descend"]
    # the overflowing thread's name, as std's handler printed it (a kernel core has no comm)
    handler = t["interrupted"]["handler"]
    if std_thread_handle_symbols(crash.case.exe):
        assert handler["thread"] == crash.facts["thread"], handler
        assert f"thread '{crash.facts['thread']}' has overflowed its stack" in handler["what"]
    else:
        assert handler["thread"] in (crash.facts["thread"], None), handler


def test_python_processes(records):
    for name, verdict in (("py-string-at", "null-read"), ("py-fatal", "python-fatal-error")):
        crash, t = triaged(records, name)
        assert t["verdict"] == verdict
        assert t["python"]["interpreter"] == everyday.PYTHON.name
        assert t["python"]["lwp"] == crash.pid and t["python"]["evidence"] == "exact"
    crash, t = triaged(records, "py-fatal")
    assert t["reason"]["details"]["message"] == crash.facts["message"]   # CPython's words
    stack = [(f["file"], f["line"], f["function"]) for f in t["python"]["frames"]]
    assert stack == crash.facts["python_stack"]         # CPython's own traceback, line for line
    assert t["signature"]["frames"][0] == f"pycrash.py:{stack[0][2]}"


def test_python_line_the_script_crashed_at(records):
    """ctypes.string_at(0): the script prints the line it is about to crash
    at; crash-triage shows it, and batch records carry the stack."""
    crash, t = triaged(records, "py-string-at")
    line = int(re.search(r"^line=(\d+)$", crash.stdout, re.M).group(1))
    script = str(everyday.EVERYDAY / "pycrash.py")
    mine = [(f["line"], f["function"]) for f in t["python"]["frames"] if f["file"] == script]
    assert mine[0] == (line, "read_message")
    assert f"{script}:{line} in read_message" in t["python"]["stack"]
    assert t["signature"]["frames"][0] == "pycrash.py:read_message"
    record = records[0]["py-string-at"][1]
    assert record["python"]["frames"] == t["python"]["frames"]
    assert records[0]["c-double-free"][1]["python"] is None


def test_metadata_like_coredumpctl(records):
    crash, t = triaged(records, "c-double-free")
    m = t["metadata"]
    assert m["pid"] == crash.pid and m["uid"] == os.getuid()
    assert m["command"].endswith("everyday double_free")
    assert m["executable"] == str(crash.case.exe)
    libc = next(x for x in m["modules"] if "/libc.so" in x["path"])
    notes = run(["readelf", "-n", libc["path"]]).stdout
    assert re.search(r"Build ID: ([0-9a-f]+)", notes).group(1) == libc["build_id"]
    assert libc["build_id_source"] == "memory"
    for case in ("c-double-free", "py-string-at"):   # objects only: no locale archive, no cache
        for module in triaged(records, case)[1]["metadata"]["modules"]:
            with open(module["path"], "rb") as fh:
                assert fh.read(4) == b"\x7fELF", module["path"]


def test_group_by_crash_point(corpus):
    first, _ = corpus
    cores = [c.core for c in first]
    proc = subprocess.run([sys.executable, "-m", "gdbext", "triage", *map(str, cores),
                           "--jobs", "2", "--group", "crash-point", "--out", os.devnull],
                          capture_output=True, text=True, timeout=900, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert_no_traceback(proc.stderr)
    assert "crash point" in proc.stdout
    lines = {l.split()[1]: l for l in proc.stdout.splitlines()[1:] if l.strip()}
    if "c-twin-free" not in first.skipped:
        # twin_free's and double_free's top frame is release(): one crash point, two bugs
        assert lines["release"].split()[0] == "2" and lines["release"].split()[2] == "2"


# --- live, gcore and bad input ----------------------------------------------------------
LIVE = ["c-double-free", "cxx-runtime", "rust-index", "rust-thread", "rust-overflow", "c-strlit",
        "cxx-thread", "cxx-dtor", "cxx-rethrow-thread", "cxx-nested", "cxx-pure-virtual"]


@pytest.mark.parametrize("debuginfo", [True, False])
@pytest.mark.parametrize("name", LIVE)
def test_live_and_gcore_sign_like_the_kernel_core(records, name, debuginfo, tmp_path):
    crash, t = triaged(records, name)
    argv = crash.case.command(tmp_path)
    with GdbSession(argv[0], debuginfo=debuginfo, cwd=tmp_path, timeout=120) as gdb:
        out = gdb.cmd(f"run {' '.join(argv[1:])} >out.txt 2>err.txt </dev/null", timeout=120)
        assert "received signal SIG" in out, out
        live = gdb.json("crash-triage --json")
        gdb.cmd(f"gcore {tmp_path / 'gcore.core'}", timeout=120)
    with GdbSession(argv[0], "-ex", f"core-file {tmp_path / 'gcore.core'}",
                    debuginfo=debuginfo, cwd=tmp_path) as gdb:
        gcore = gdb.json("crash-triage --json")
    assert live["target"] == "live" and gcore["target"] == "core"
    if name in RUST_PANICS:         # std's stderr of this very run (err.txt)
        printed = everyday.stderr_facts((tmp_path / "err.txt").read_text())
        assert_rust_panic_as_std_printed(live, printed, name, crash.case.exe)
        assert_rust_panic_as_std_printed(gcore, printed, name, crash.case.exe)
    assert live["signature"] == t["signature"], (live["headline"], t["headline"])
    assert gcore["signature"] == t["signature"], (gcore["headline"], t["headline"])
    if name.startswith("cxx-"):                    # the same exception read three ways
        assert live["reason"] == t["reason"] and gcore["reason"] == t["reason"]
    if name == "rust-overflow":                    # live: gdb stops at the fault itself
        assert live["stop"]["signal"] == "SIGSEGV" and live["interrupted"] is None


def test_qemu_user_core_is_a_sigill_not_a_hang(tmp_path):
    if shutil.which("qemu-x86_64") is None:
        pytest.skip("qemu-user is not installed")
    isa = everyday.FIXTURES / "isa_crash"
    proc = subprocess.run(["qemu-x86_64", str(isa), "trap"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, preexec_fn=unlimited_core,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    cores = sorted(tmp_path.glob("qemu_isa_crash_*.core"))
    if not cores:
        pytest.skip("qemu wrote no guest core")
    notes = run(["readelf", "-n", str(cores[0])]).stdout
    assert "NT_SIGINFO" not in notes and "NT_PRSTATUS" in notes
    with GdbSession(str(isa), "-ex", f"core-file {cores[0]}", debuginfo=False,
                    cwd=tmp_path) as gdb:
        r = gdb.json("crash-triage --json")
    assert r["stop"]["signal"] == "SIGILL" and r["stop"]["source"] == "pr_cursig"
    assert r["signature"]["class"] == "SIGILL"
    assert r["ran"] == ["isa-check"]


def test_qemu_user_null_read_signs_as_the_kernel_core(records, tmp_path):
    """A qemu-user guest core has no NT_SIGINFO and no NT_FILE: the fault
    address comes from the instruction (inferred, and said so) and the
    batch finds the executable from the command line.  It must land in the
    kernel core's group, whose si_addr plain gdb reads."""
    if shutil.which("qemu-x86_64") is None:
        pytest.skip("qemu-user is not installed")
    crash, native = triaged(records, "c-null-read")
    si_addr = run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                   "-ex", "p/x $_siginfo._sifields._sigfault.si_addr", str(crash.case.exe),
                   str(crash.core)]).stdout
    si_addr = int(re.search(r"= (0x[0-9a-f]+)", si_addr).group(1), 16)
    proc = subprocess.run(["qemu-x86_64", str(crash.case.exe), *crash.case.argv[1:]],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          preexec_fn=unlimited_core, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    cores = sorted(tmp_path.glob("qemu_*.core"))
    if not cores:
        pytest.skip("qemu wrote no guest core")
    notes = run(["readelf", "-n", str(cores[0])]).stdout
    assert "NT_SIGINFO" not in notes and "NT_FILE" not in notes
    [record] = triage(str(cores[0]), "--no-summary")        # no --exe: from NT_PRPSINFO
    assert record["executable"] == str(crash.case.exe)
    assert any("no NT_FILE note" in w for w in record["warnings"])
    t = record["triage"]
    assert t["stop"]["source"] == "pr_cursig" and t["verdict"] == native["verdict"]
    assert t["fault"]["address"] == si_addr and t["fault"]["address_from"] == "operand"
    assert "no siginfo" in t["class"]["explanation"]
    assert t["signature"] == native["signature"]


def test_garbage_abort_msg_is_a_warning(records, tmp_path):
    crash, _ = triaged(records, "c-double-free")
    out = run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
               "-iex", "set debug-file-directory /nonexistent",
               "-ex", "x/gx &__abort_msg", str(crash.case.exe), str(crash.core)]).stdout
    pointer = int(re.search(r":\s+(0x[0-9a-f]+)", out).group(1), 16)
    bad = tmp_path / "bad.core"
    shutil.copy(crash.core, bad)
    with open(bad, "r+b") as fh:                   # an absurd size field
        fh.seek(core_file_offset(bad, pointer))
        fh.write((0xFFFFFFF0).to_bytes(4, "little"))
    with GdbSession(str(crash.case.exe), "-ex", f"core-file {bad}", debuginfo=False,
                    cwd=tmp_path) as gdb:
        text = gdb.cmd("crash-triage")
        r = gdb.json("crash-triage --json")
    assert_no_traceback(text)
    assert r["verdict"] == "abort" and r["reason"] is None
    assert any("absurd size" in w for w in r["warnings"]), r["warnings"]


def _vaddr(core, offset: int) -> int:
    """The dumped process's address of a core file offset."""
    from elftools.elf.elffile import ELFFile
    with open(core, "rb") as f:
        for seg in ELFFile(f).iter_segments():
            if seg["p_type"] == "PT_LOAD" and \
                    seg["p_offset"] <= offset < seg["p_offset"] + seg["p_filesz"]:
                return seg["p_vaddr"] + offset - seg["p_offset"]
    raise AssertionError(f"offset {offset:#x} is not in a PT_LOAD segment")


@pytest.mark.parametrize("corrupt, needle", [
    (lambda own: 0xDEAD0000, "unreadable"),
    (lambda own: own, "back into itself"),
    (lambda own: 0, "no primary"),
])
def test_corrupt_dependent_exception_is_a_warning(records, tmp_path, corrupt, needle):
    """A real std::rethrow_exception core with its dependent header's
    primaryException overwritten: a warning, the frames still signed."""
    crash, t = triaged(records, "cxx-rethrow-thread")
    data = crash.core.read_bytes()
    # the dependent header's exception_class, "GNUCC++\x01" as the little-endian u64
    # eh_ptr.cc stores; primaryException is the header's first word, 80 bytes before
    found = [m.start() for m in re.finditer(re.escape(b"\x01++CCUNG"), data)]
    found = [o for o in found if int.from_bytes(data[o - 80:o - 72], "little") % 16 == 0
             and int.from_bytes(data[o - 80:o - 72], "little")]
    assert found, "no dependent exception header in the core"
    bad = tmp_path / "bad.core"
    shutil.copy(crash.core, bad)
    with open(bad, "r+b") as fh:
        for o in found:
            fh.seek(o - 80)
            fh.write(corrupt(_vaddr(crash.core, o - 80)).to_bytes(8, "little"))
    with GdbSession(str(crash.case.exe), "-ex", f"core-file {bad}", debuginfo=False,
                    cwd=tmp_path) as gdb:
        text = gdb.cmd("crash-triage")
        r = gdb.json("crash-triage --json")
    assert_no_traceback(text)
    assert r["verdict"] == "uncaught-exception" and r["reason"]["certainty"] == "inferred"
    assert any(needle in w for w in r["warnings"]), r["warnings"]
    assert r["signature"]["frames"] == t["signature"]["frames"]
