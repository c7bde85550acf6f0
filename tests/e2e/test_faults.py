"""crash-triage's fault classes on real crashes of a real program
(fixtures/faults/faults.c, built here with gcc -O2, with and without -g, no
stack protector): a return through a smashed return address, NULL callbacks
reached by tail calls, a call into the heap, allocator poison, a list walked
after free (glibc's safe-linked tcache pointers), main-thread recursion,
free() of an interior pointer, integer division faults.

Every expectation comes from outside gdbext: plain gdb's $_siginfo and
registers, objdump of the faulting function, readelf of the core, what the
program printed about itself and glibc's own stderr.  Kernel cores of both
builds, with and without glibc debug info, and live + gcore must sign alike;
different bugs must sign apart."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.e2e.gdb_session import GdbSession, assert_no_traceback
from tests.host import GDB, REPO, find_kernel_core, kernel_cores_land_in_cwd, records_by_core, \
    run, unlimited_core

pytestmark = pytest.mark.xdist_group("fault-corpus")

SOURCE = REPO / "fixtures" / "faults" / "faults.c"
MODES = {
    "smashret": ("smashret",), "nullfn-file": ("nullfn-file",),
    "nullfn-net": ("nullfn-net",), "jumpheap": ("jumpheap",), "poison": ("poison",),
    "uaf-list": ("uaf-list",), "recurse": ("recurse",), "badfree": ("badfree",),
    "divzero": ("divide", "100", "0"), "intmin": ("divide", "-2147483648", "-1"),
}
BUILDS = {"plain": [], "g": ["-g"]}


@pytest.fixture(scope="session")
def programs(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    out = tmp_path_factory.mktemp("faults-bin")
    built = {}
    for build, flags in BUILDS.items():
        exe = out / f"faults-{build}"
        run(["gcc", "-O2", "-fno-stack-protector", "-U_FORTIFY_SOURCE", *flags, "-o",
             str(exe), str(SOURCE)])
        built[build] = exe
    return built


class Crash:
    def __init__(self, exe, core, stdout, stderr, argv):
        self.exe, self.core, self.stdout, self.stderr, self.argv = (exe, core, stdout,
                                                                    stderr, argv)

    def printed(self, name: str) -> int:
        return int(re.search(rf"^{name}=(0x[0-9a-f]+)$", self.stdout, re.M).group(1), 16)


@pytest.fixture(scope="session")
def crashes(programs, tmp_path_factory):
    if not kernel_cores_land_in_cwd():
        pytest.skip("core_pattern does not write kernel cores into the cwd")
    root = tmp_path_factory.mktemp("faults-cores")
    out = {}
    for build, exe in programs.items():
        for mode, argv in MODES.items():
            cwd = root / f"{build}-{mode}"
            cwd.mkdir()
            proc = subprocess.run([str(exe), *argv], cwd=cwd, capture_output=True, text=True,
                                  timeout=120, preexec_fn=unlimited_core,
                                  stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"})
            assert proc.returncode < 0, (mode, proc.returncode, proc.stderr)
            pid = int(re.search(r"pid=(\d+)", proc.stdout).group(1))
            core = find_kernel_core(cwd, pid)
            assert core is not None, f"no kernel core in {cwd}"
            out[build, mode] = Crash(exe, core, proc.stdout, proc.stderr, argv)
    return out


def batch(*args) -> list[dict]:
    proc = subprocess.run([sys.executable, "-m", "gdbext", "triage", *map(str, args)],
                          capture_output=True, text=True, timeout=900, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert_no_traceback(proc.stderr)
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def triaged(crashes):
    """(build, mode) -> crash-triage JSON of the kernel core, and the same
    without glibc debug info."""
    keys = list(crashes)
    cores = [crashes[k].core for k in keys]
    named = {key: crashes[key].core for key in keys}
    full = records_by_core(named, batch(*cores, "--jobs", "2", "--no-summary"))
    bare = records_by_core(named, batch(*cores, "--jobs", "2", "--no-summary",
                                        "--debug-file-directory", "/nonexistent"))
    out = {}
    for key in keys:
        a, b = full[key], bare[key]
        assert a["status"] == "ok" and b["status"] == "ok", (key, a.get("error"))
        out[key] = (a["triage"], b["triage"])
    return out


def plain_gdb(crash: Crash, *commands: str) -> str:
    """Plain gdb (no gdbext) on the core: the independent view."""
    argv = [GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off"]
    for c in commands:
        argv += ["-ex", c]
    return run(argv + [str(crash.exe), str(crash.core)]).stdout


def si_code(crash: Crash) -> int:
    return int(re.search(r"\$1 = (-?\d+)", plain_gdb(crash, "p $_siginfo.si_code")).group(1))


def objdump(exe, function: str) -> str:
    return run(["objdump", "-d", "--no-show-raw-insn", f"--disassemble={function}",
                str(exe)]).stdout


def both(triaged, mode):
    """Each build's triage, with and without glibc debug info: one signature."""
    records = [r for build in BUILDS for r in triaged[build, mode]]
    assert len({json.dumps(r["signature"], sort_keys=True) for r in records}) == 1, \
        [r["headline"] for r in records]
    return records


def test_return_through_a_smashed_return_address(crashes, triaged):
    for build in BUILDS:
        crash = crashes[build, "smashret"]
        assert si_code(crash) == 0x80                   # SI_KERNEL: a #GP, si_addr is no address
        out = plain_gdb(crash, "x/i $pc", "x/gx $rsp")
        assert re.search(r"=> 0x[0-9a-f]+ <parse_name\+\d+>:\s+ret", out), out
        assert re.search(r":\s+0x4141414141414141$", out, re.M), out
    for t in both(triaged, "smashret"):
        assert t["verdict"] == "return-to-bad-address"
        assert t["class"]["rating"] == "exploitable"
        assert "0x4141414141414141" in t["class"]["explanation"]
        assert t["fault"]["instruction"]["target"] == 0x4141414141414141
        assert t["signature"]["frames"][0] == "parse_name"


def test_null_callbacks_through_tail_calls_are_two_bugs(crashes, triaged, programs):
    for build, exe in programs.items():
        for function in ("run_file", "run_net"):   # both leave by `jmp *` (a tail call)
            assert re.search(r"\bjmp\s+\*", objdump(exe, function)), function
    for mode, callee in (("nullfn-file", "run_file"), ("nullfn-net", "run_net")):
        crash = crashes["plain", mode]
        assert re.search(r"\$1 = 0x0\b", plain_gdb(crash, "p/x $pc"))
        for t in both(triaged, mode):
            assert t["verdict"] == "call-to-null"
            assert t["class"]["rating"] == "probably-exploitable"
            assert t["finding"]["how"] == "tail-call"
            assert t["finding"]["callee"] == callee
            assert t["signature"]["frames"][:2] == [callee, "main"]
            assert not any("that call took the bad target" in line
                           for line in t["finding"]["explanation"])
    a = triaged["plain", "nullfn-file"][0]["signature"]["id"]
    b = triaged["plain", "nullfn-net"][0]["signature"]["id"]
    assert a != b


def core_segment(core, address: int) -> str:
    """The flags of the core's PT_LOAD holding ``address`` (readelf)."""
    out = run(["readelf", "-lW", str(core)]).stdout
    for m in re.finditer(r"^\s+LOAD\s+0x[0-9a-f]+ (0x[0-9a-f]+) 0x[0-9a-f]+ 0x[0-9a-f]+ "
                         r"(0x[0-9a-f]+) (.{3})", out, re.M):
        lo, size = int(m.group(1), 16), int(m.group(2), 16)
        if lo <= address < lo + size:
            return m.group(3).replace(" ", "")
    return ""


def test_jump_into_the_heap_is_an_nx_violation(crashes, triaged):
    for build in BUILDS:
        crash = crashes[build, "jumpheap"]
        code = crash.printed("code")
        assert si_code(crash) == 2                       # SEGV_ACCERR: mapped, not executable
        assert re.search(rf"\$1 = {code:#x}\b", plain_gdb(crash, "p/x $pc"))
        assert core_segment(crash.core, code) == "RW"    # no E
        for t in triaged[build, "jumpheap"]:
            assert t["verdict"] == "execute-non-executable"
            assert t["class"]["rating"] == "exploitable"
            assert t["access"] == "execute" and t["region"]["perms"] == "rw-"
            spill = t["reports"]["spill-audit"]
            assert spill["fault"]["kind"] == "instruction-fetch"
            assert spill["fault"]["effective_address"] is None
            assert spill["instruction"]["writes"] is False
    both(triaged, "jumpheap")


def test_allocator_poison_behind_a_general_protection_fault(crashes, triaged):
    crash = crashes["plain", "poison"]
    assert si_code(crash) == 0x80
    out = plain_gdb(crash, "x/i $pc")
    base = re.search(r"mov\s+(?:0x[0-9a-f]+)?\(%(\w+)\),", out).group(1)
    value = int(re.search(r"\$1 = (0x[0-9a-f]+)", plain_gdb(crash, f"p/x ${base}")).group(1),
                16)
    assert value == 0xDEADBEEFDEADBEEF
    for t in both(triaged, "poison"):
        assert t["verdict"] == "use-after-free"
        assert t["class"]["rule"] == "fault:allocator-fill"
        assert t["fault"]["address_from"] == "operand"
        assert t["fault"]["address"] == value


def test_safe_linked_tcache_pointer_is_a_use_after_free(crashes, triaged):
    for build in BUILDS:
        crash = crashes[build, "uaf-list"]
        out = plain_gdb(crash, "x/i $pc")
        base = re.search(r"\(%(\w+)\)", out).group(1)
        pointer = int(re.search(r"\$1 = (0x[0-9a-f]+)",
                                plain_gdb(crash, f"p/x ${base}")).group(1), 16)
        # the heap holding the freed node (the program printed it), from the core
        node = crash.printed("node")
        heap = re.search(r"^\s+LOAD\s+0x[0-9a-f]+ (0x[0-9a-f]+) 0x[0-9a-f]+ 0x[0-9a-f]+ "
                         r"(0x[0-9a-f]+)", "\n".join(
                             l for l in run(["readelf", "-lW", str(crash.core)]).stdout
                             .splitlines() if "LOAD" in l and _holds(l, node)), re.M)
        lo, hi = int(heap.group(1), 16), int(heap.group(1), 16) + int(heap.group(2), 16)
        # glibc's PROTECT_PTR(pos, next) = (pos >> 12) ^ next, pos = &node->next = node:
        # the last chunk of a bin stores pos >> 12, another a heap address mangled
        assert lo >> 12 <= pointer < hi >> 12 or lo <= pointer ^ (node >> 12) < hi
        for t in triaged[build, "uaf-list"]:
            assert t["verdict"] == "use-after-free"
            assert t["class"]["rule"] == "fault:safe-linked-pointer"
            assert f"{pointer:#x}" in t["class"]["explanation"]
    both(triaged, "uaf-list")


def _holds(line: str, address: int) -> bool:
    m = re.search(r"LOAD\s+0x[0-9a-f]+ (0x[0-9a-f]+) 0x[0-9a-f]+ 0x[0-9a-f]+ (0x[0-9a-f]+)",
                  line)
    return bool(m) and int(m.group(1), 16) <= address < int(m.group(1), 16) + int(
        m.group(2), 16)


def test_main_thread_recursion_is_no_stack_clash(crashes, triaged, programs):
    for build, exe in programs.items():
        frame = re.search(r"sub\s+\$0x([0-9a-f]+),%rsp", objdump(exe, "walk"))
        assert frame and int(frame.group(1), 16) < 4096      # a small step, every call
        for t in triaged[build, "recurse"]:
            assert t["verdict"] == "stack-overflow"
            spill = t["reports"]["spill-audit"]
            assert spill["fault"]["kind"] == "stack-overflow"
            text = " ".join(spill["explanation"] + spill["advice"])
            assert "stack-clash" not in text and "in one step" not in text
    both(triaged, "recurse")


def test_free_of_an_interior_pointer(crashes, triaged):
    crash = crashes["plain", "badfree"]
    assert "free(): invalid pointer" in crash.stderr        # glibc's own words
    for t in both(triaged, "badfree"):
        assert t["reason"]["details"]["check"] == "free(): invalid pointer"
        assert t["class"]["class"] == "invalid-free"
        assert "interior pointer" in t["class"]["explanation"]
        assert "malloc never returned" in t["class"]["explanation"]


@pytest.mark.parametrize("mode, verdict", [("divzero", "integer-divide-by-zero"),
                                           ("intmin", "integer-overflow")])
def test_integer_division_faults_name_the_divisor(crashes, triaged, programs, mode, verdict):
    crash = crashes["plain", mode]
    assert si_code(crash) == 1                               # FPE_INTDIV (x86 #DE)
    divisor = re.search(r"\bidiv\s+(\S+)", objdump(programs["plain"], "average")).group(1)
    for t in both(triaged, mode):
        assert t["verdict"] == verdict
        assert t["class"]["rating"] == "probably-not-exploitable"
        assert t["fault"]["instruction"]["divisor"] == divisor
        assert t["fault"]["instruction"]["divisor_value"] == int(crash.argv[2])
        if mode == "divzero":
            assert f"{divisor} = 0" in t["class"]["explanation"]
        else:
            assert crash.argv[1] in t["class"]["explanation"]


def test_text_shows_spill_audit_in_one_line_when_not_about_alignment(crashes):
    for mode in ("poison", "uaf-list", "recurse"):
        crash = crashes["plain", mode]
        with GdbSession(str(crash.exe), "-ex", f"core-file {crash.core}",
                        cwd=crash.core.parent) as gdb:
            text = gdb.cmd("crash-triage --no-metadata")
            full = gdb.json("crash-triage --json --no-metadata")
        assert_no_traceback(text)
        assert len([l for l in text.splitlines() if l.startswith("spill-audit:")]) == 1
        assert "stack slots:" not in text and "NOT-ALIGNMENT - not an alignment fault\n" \
            not in text
        assert full["reports"]["spill-audit"]["stack_view"]     # the JSON keeps it all


LIVE = ["smashret", "nullfn-file", "jumpheap", "poison", "uaf-list", "divzero"]


@pytest.mark.parametrize("debuginfo", [True, False])
@pytest.mark.parametrize("mode", LIVE)
def test_live_and_gcore_sign_like_the_kernel_core(crashes, triaged, mode, debuginfo,
                                                  tmp_path):
    crash = crashes["g" if debuginfo else "plain", mode]
    kernel = triaged["g" if debuginfo else "plain", mode][0]
    with GdbSession(str(crash.exe), debuginfo=debuginfo, cwd=tmp_path, timeout=120) as gdb:
        out = gdb.cmd(f"run {' '.join(crash.argv)} >out.txt 2>err.txt </dev/null",
                      timeout=120)
        assert "received signal SIG" in out, out
        live = gdb.json("crash-triage --json --no-metadata")
        gdb.cmd(f"gcore {tmp_path / 'gcore.core'}", timeout=120)
    with GdbSession(str(crash.exe), "-ex", f"core-file {tmp_path / 'gcore.core'}",
                    debuginfo=debuginfo, cwd=tmp_path) as gdb:
        gcore = gdb.json("crash-triage --json --no-metadata")
    assert live["target"] == "live" and gcore["target"] == "core"
    assert live["signature"] == kernel["signature"], (live["headline"], kernel["headline"])
    assert gcore["signature"] == kernel["signature"], (gcore["headline"], kernel["headline"])
