"""Other architectures: on an i386 program (a kernel core, a live SIGILL under
`run`, a sleeping process attached to, the file with no process) and on an
aarch64 file in gdb-multiarch, every command answers one line
`<command>: unsupported architecture: <name> ...`, never a traceback, and gdb
stays usable with the process still stopped where it was.  `gdbext triage`
gives an i386 core an error record naming the architecture and exits 1.

The architecture's name comes from gdb's own `show architecture`, checked
against readelf's Machine; the addresses from what the fixture prints
(fixtures/arch/)."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e import gdb_session
from tests.e2e.gdb_session import GdbSession, assert_one_error_line
from tests.host import FIXTURES, GDB, facts_of, gdbext_cli, have, kernel_core, run

ARCH = FIXTURES / "arch"
I386 = ARCH / "arch_i386"
AARCH64 = ARCH / "arch_aarch64"
GDB_MULTIARCH = "gdb-multiarch"

# Every command, as typed and with --json (each one takes it).
COMMANDS = [f"{name}{flag}" for name in ("isa-check", "isa-scan", "deadlock-graph",
                                          "spill-audit", "crash-triage")
            for flag in ("", " --json")]
# Forms that look at something else than the stop: an ADDRESS, every loaded object.
I386_EXTRA = ["isa-check ud2_fault", "isa-scan all"]

# readelf -h "Machine:" -> gdb's architecture name, to check gdb's own answer.
READELF_MACHINE = {"Intel 80386": "i386", "AArch64": "aarch64"}


def readelf_architecture(path: Path) -> str:
    machine = re.search(r"^\s*Machine:\s*(.+?)\s*$", run(["readelf", "-h", str(path)]).stdout,
                        re.M).group(1)
    return READELF_MACHINE[machine]


def nm_address(path: Path, symbol: str) -> int:
    m = re.search(rf"^([0-9a-f]+) \w {re.escape(symbol)}$", run(["nm", str(path)]).stdout, re.M)
    assert m, f"no {symbol} in {path}"
    return int(m.group(1), 16)


def shown_architecture(gdb: GdbSession) -> str:
    """gdb's current architecture, from `show architecture`."""
    out = gdb.cmd("show architecture")
    m = re.search(r'\(currently "([^"]+)"\)', out) or re.search(r'is set to "([^"]+)"', out)
    assert m, out
    return m.group(1)


def assert_every_command_unsupported(gdb: GdbSession, arch: str, extra=()) -> None:
    for command in [*COMMANDS, *extra]:
        name = command.split()[0]
        line = assert_one_error_line(gdb.cmd(command), name)
        assert line.startswith(f"{name}: unsupported architecture: {arch} "), (command, line)


def process_state(pid: int) -> str:
    status = Path(f"/proc/{pid}/status").read_text()
    return re.search(r"^State:\s*(.+)$", status, re.M).group(1)


def assert_pc(gdb: GdbSession, address: int, instruction: str) -> None:
    """gdb still answers about the stopped thread, at the same place."""
    regs = gdb.cmd("info registers eip")
    assert re.search(rf"^eip\s+{address:#x}\b", regs, re.M), regs
    disassembly = gdb.cmd("x/i $pc")
    assert re.search(rf"=> {address:#x}\b.*\s{instruction}\b", disassembly), disassembly


@pytest.fixture(scope="module")
def i386() -> Path:
    assert I386.exists(), f"{I386} is missing: run 'make setup' first"
    assert readelf_architecture(I386) == "i386"
    return I386


@pytest.fixture(scope="module")
def i386_core(i386, tmp_path_factory) -> tuple[Path, dict]:
    """The kernel's core of `arch_i386 ud2` and what the program printed."""
    core, stdout, signo = kernel_core([str(i386), "ud2"], tmp_path_factory.mktemp("i386-core"))
    assert signo == signal.SIGILL
    return core, facts_of(stdout)


def test_i386_kernel_core(i386, i386_core, tmp_path):
    core, facts = i386_core
    with GdbSession(str(i386), str(core), cwd=tmp_path) as gdb:
        arch = shown_architecture(gdb)
        assert arch == readelf_architecture(i386) == "i386"
        assert_every_command_unsupported(gdb, arch, I386_EXTRA)
        assert_pc(gdb, int(facts["fault"], 16), "ud2")
        signo = gdb.cmd("print $_siginfo.si_signo").strip()
        assert signo.endswith(f"= {int(signal.SIGILL)}"), signo


def test_i386_live_sigill_under_run(i386, tmp_path):
    with GdbSession(str(i386), cwd=tmp_path) as gdb:
        out = gdb.cmd("run ud2 </dev/null")
        assert "Program received signal SIGILL" in out, out
        facts = facts_of(out)
        pid, fault = int(facts["pid"]), int(facts["fault"], 16)
        assert process_state(pid).startswith("t")             # stopped by the tracer
        arch = shown_architecture(gdb)
        assert arch == readelf_architecture(i386)
        assert_every_command_unsupported(gdb, arch, I386_EXTRA)
        assert_pc(gdb, fault, "ud2")
        assert process_state(pid).startswith("t"), "a command resumed the process"
        assert "process " + str(pid) in gdb.cmd("info inferiors")


@pytest.fixture
def sleeping_i386(i386):
    """`arch_i386 pause` waiting in pause(): (pid, its facts); killed afterwards."""
    proc = subprocess.Popen([str(i386), "pause"], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        lines = []
        while not lines or not lines[-1].startswith("next="):
            line = proc.stdout.readline()
            assert line, f"arch_i386 pause ended: {lines}"
            lines.append(line)
        facts = facts_of("".join(lines))
        pid = int(facts["pid"])
        assert pid == proc.pid
        for _ in range(100):                    # into the syscall
            if process_state(pid).startswith("S"):
                break
            time.sleep(0.02)
        yield pid, facts
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_i386_attached_while_sleeping(sleeping_i386, tmp_path):
    pid, facts = sleeping_i386
    with GdbSession(cwd=tmp_path) as gdb:
        out = gdb.cmd(f"attach {pid}")
        assert "Attaching to" in out, out
        arch = shown_architecture(gdb)
        assert arch == readelf_architecture(I386)
        assert_every_command_unsupported(gdb, arch, I386_EXTRA)
        # Still stopped in the attach, at the instruction after pause's int $0x80.
        assert_pc(gdb, int(facts["resume"], 16), "jmp")
        assert process_state(pid).startswith("t"), "a command resumed the process"
        gdb.cmd("detach")
    for _ in range(100):                                     # left as it was: asleep again
        if process_state(pid).startswith("S"):
            break
        time.sleep(0.02)
    assert process_state(pid).startswith("S"), process_state(pid)


def test_i386_file_without_process(i386, tmp_path):
    with GdbSession(str(i386), cwd=tmp_path) as gdb:
        arch = shown_architecture(gdb)
        assert arch == readelf_architecture(i386)
        assert_every_command_unsupported(gdb, arch, I386_EXTRA)
        address = nm_address(i386, "_start")
        out = gdb.cmd("x/i _start")
        assert re.search(rf"{address:#x} <_start>:\s+cmp", out), out
        assert "<null>" in gdb.cmd("info inferiors")            # no process was started


@pytest.fixture
def multiarch(monkeypatch):
    """GdbSession runs gdb-multiarch (the suite's gdb understands x86 only)."""
    if not have(GDB_MULTIARCH):
        pytest.skip("gdb-multiarch is not installed (make packages installs it)")
    if not AARCH64.exists():
        pytest.skip(f"{AARCH64} was not built: aarch64-linux-gnu-as/-ld missing "
                    "(binutils-aarch64-linux-gnu; make packages installs it)")
    monkeypatch.setattr(gdb_session, "GDB", GDB_MULTIARCH)


def test_aarch64_file_in_gdb_multiarch(multiarch, tmp_path):
    with GdbSession(str(AARCH64), cwd=tmp_path) as gdb:
        arch = shown_architecture(gdb)
        assert arch == readelf_architecture(AARCH64) == "aarch64"
        assert_every_command_unsupported(gdb, arch, ["isa-check udf_fault", "isa-scan all"])
        address = nm_address(AARCH64, "udf_fault")
        out = gdb.cmd("x/i udf_fault")
        assert re.search(rf"^\s*{address:#x} <[^>]+>:\s+udf\s", out), out


@pytest.mark.negative(answered_without_packages=True)    # read from the core's ELF header
def test_batch_cli_gives_i386_core_an_error_record(i386, i386_core, tmp_path):
    core, _ = i386_core
    shown = run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                 "-ex", "show architecture", str(i386), str(core)]).stdout
    arch = re.search(r'\(currently "([^"]+)"\)', shown).group(1)
    proc = subprocess.run([*gdbext_cli(), "triage", str(core)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, proc                     # documented: some cores failed
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    (record,) = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert record["core"] == str(core) and record["status"] == "error"
    assert record["triage"] is None and record["signature"] is None
    assert record["error"].startswith(f"unsupported architecture: {arch} "), record
