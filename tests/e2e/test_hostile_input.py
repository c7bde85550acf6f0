"""Hostile input for every command: nothing loaded, a file but no process,
bad flags, junk and truncated cores, a pc in no mapping, an rsp pointing
nowhere, a stack a million frames deep.  Each answer is one line or a
report with warnings, never a traceback, and gdb stays usable.

Facts come from the hostile fixture's own output (the unmapped target, its
rsp), nm, the core's program headers and /proc -- never from gdbext.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from tests.e2e import damaged
from tests.e2e.gdb_session import GdbSession, assert_no_traceback, assert_one_error_line
from tests.host import FIXTURES, GDB, REPO, facts_of, kernel_core, run

HOSTILE = FIXTURES / "hostile"
COMMANDS = ("isa-check", "isa-scan", "deadlock-graph", "spill-audit", "crash-triage")
NEED_REGISTERS = ("deadlock-graph", "spill-audit", "crash-triage")
DEFAULT_MAX_FRAMES = 64         # README: set gdbext max-frames


def _usable(gdb: GdbSession) -> None:
    assert gdb.cmd("print 6*7").strip().endswith("= 42")


def _report_or_line(out: str, command: str) -> None:
    """Either one error line or a report that starts with the command."""
    assert_no_traceback(out)
    lines = [line for line in out.strip().splitlines() if line.strip()]
    assert lines and lines[0].startswith(f"{command}: "), out


def _skip_when_gdb_itself_dies(*args: str) -> None:
    """Plain gdb (no gdbext) on the same damaged file: gdb 16 hits its own
    internal-error (i387_supply_fxsave) or a fatal signal on some of them --
    nothing of ours to test there."""
    plain = subprocess.run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                            *args, "-ex", "info registers rip"], capture_output=True,
                           text=True, errors="replace", timeout=120, stdin=subprocess.DEVNULL)
    said = plain.stdout + plain.stderr
    died = [l for l in said.splitlines() if "internal-error" in l or "Fatal signal" in l]
    if died or plain.returncode < 0:
        pytest.skip(f"plain gdb itself dies on this core: {died[0] if died else plain.returncode}")


@pytest.fixture(scope="module")
def cores(tmp_path_factory) -> dict[str, tuple]:
    """mode -> (kernel core, the fixture's facts), one run per mode."""
    base = tmp_path_factory.mktemp("hostile")
    out = {}
    for mode in ("badjump", "badstack", "endless"):
        core, stdout, signo = kernel_core([str(HOSTILE), mode], base / mode)
        assert signo == 11, (mode, signo)
        out[mode] = (core, facts_of(stdout))
    return out


def _nm(name: str) -> tuple[int, int]:
    """(address, size) of a function in the fixture, from nm -S."""
    m = re.search(rf"^([0-9a-f]+) ([0-9a-f]+) [Tt] {name}$",
                  run(["nm", "-S", str(HOSTILE)]).stdout, re.M)
    assert m, name
    return int(m.group(1), 16), int(m.group(2), 16)


def _load_bias(gdb: GdbSession) -> int:
    """Run-time minus link-time address of the PIE: gdb's address of main
    against nm's."""
    runtime = int(re.search(r"0x[0-9a-f]+", gdb.cmd("print &main")).group(0), 16)
    return runtime - _nm("main")[0]


# --- nothing to examine -----------------------------------------------------
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("json_", [False, True], ids=["text", "json"])
def test_nothing_loaded(command, json_, tmp_path):
    with GdbSession(cwd=tmp_path) as gdb:
        line = assert_one_error_line(gdb.cmd(command + (" --json" if json_ else "")),
                                     command)
        assert "no process" in line or "no program" in line, line
        _usable(gdb)


@pytest.mark.parametrize("command", NEED_REGISTERS + ("isa-check",))
def test_file_without_process(command, tmp_path):
    with GdbSession(str(HOSTILE), cwd=tmp_path) as gdb:
        assert_one_error_line(gdb.cmd(command), command, "no process or core")
        _usable(gdb)


@pytest.mark.parametrize("junk", ["random", "empty", "elf-header-only"])
def test_junk_core_leaves_the_file_and_one_line(junk, cores, tmp_path):
    path = tmp_path / f"{junk}.core"
    real = cores["endless"][0].read_bytes()
    path.write_bytes({"random": os.urandom(65536), "empty": b"",
                      "elf-header-only": real[:64]}[junk])
    with GdbSession(str(HOSTILE), cwd=tmp_path) as gdb:
        gdb.cmd(f"core-file {path}")          # gdb refuses it in its own words
        for command in NEED_REGISTERS:
            assert_one_error_line(gdb.cmd(command), command, "no process or core")
        _usable(gdb)


@pytest.mark.parametrize("command,args,needle", [
    ("isa-check", "--bogus", "unrecognized arguments: --bogus"),
    ("isa-check", "--cpu no-such-cpu", "no-such-cpu"),
    ("isa-scan", "--bogus", "unrecognized arguments: --bogus"),
    ("deadlock-graph", "--max-frames 0", "must be 1 or more"),
    ("deadlock-graph", "--max-frames", "expected one argument"),
    ("deadlock-graph", "--dot /nonexistent/dir/g.dot", "cannot write /nonexistent/dir/g.dot"),
    ("spill-audit", "--max-frames x", "not a number: x"),
    ("spill-audit", "no_such_symbol", "cannot evaluate 'no_such_symbol'"),
    ("crash-triage", "extra", "unrecognized arguments: extra"),
    ("crash-triage", "--max-frames -3", "must be 1 or more"),
])
def test_bad_flags_are_one_line(command, args, needle, cores, tmp_path):
    core, _ = cores["badstack"]
    with GdbSession(str(HOSTILE), str(core), cwd=tmp_path) as gdb:
        regs = gdb.cmd("info registers")
        assert_one_error_line(gdb.cmd(f"{command} {args}"), command, needle)
        assert gdb.cmd("info registers") == regs
        _usable(gdb)


def test_bounds_are_settings_that_refuse_zero(tmp_path):
    with GdbSession(cwd=tmp_path) as gdb:
        assert "gdbext max-frames is 64." in gdb.cmd("show gdbext max-frames")
        out = gdb.cmd("set gdbext max-frames 0")
        assert "must be 1 or more" in out
        assert "gdbext max-frames is 64." in gdb.cmd("show gdbext max-frames")
        gdb.cmd("set gdbext max-threads 7")
        shown = gdb.cmd("show gdbext")
        assert "gdbext max-threads is 7." in shown and "gdbext max-nodes is" in shown


# --- a pc in no mapping -------------------------------------------------------
def test_pc_in_no_mapping(cores, tmp_path):
    core, facts = cores["badjump"]
    target = int(facts["target"], 16)
    with GdbSession(str(HOSTILE), str(core), cwd=tmp_path) as gdb:
        for command in ("isa-check", "spill-audit"):
            assert_one_error_line(gdb.cmd(command), command, f"{target:#x}", "not mapped")
        r = gdb.json("crash-triage --json")
        bias = _load_bias(gdb)
    assert r["verdict"] == "jump-to-unmapped" and r["errors"] == []
    f = r["finding"]
    assert f["target"] == target
    start, size = _nm(facts["caller"])
    assert start <= f["return_address"] - bias < start + size       # returns into jump_to
    assert f["caller"] == facts["caller"] and f["how"] == "call"
    assert r["signature"]["key"] == "call"
    assert r["signature"]["frames"][1] == facts["caller"]


def test_pc_in_no_mapping_live(tmp_path):
    with GdbSession(str(HOSTILE), cwd=tmp_path) as gdb:
        out = gdb.cmd("run badjump </dev/null")
        facts = facts_of(out)
        assert "SIGSEGV" in out
        r = gdb.json("crash-triage --json")
        assert r["verdict"] == "jump-to-unmapped"
        assert r["finding"]["target"] == int(facts["target"], 16)
        assert r["finding"]["caller"] == facts["caller"]
        _usable(gdb)


# --- rsp pointing at nothing -------------------------------------------------
def test_stack_pointer_nowhere(cores, tmp_path):
    core, facts = cores["badstack"]
    rsp = int(facts["rsp"], 16)
    with GdbSession(str(HOSTILE), str(core), cwd=tmp_path) as gdb:
        assert gdb.cmd("p/x $rsp").split("=")[1].strip() == f"{rsp:#x}"
        s = gdb.json("spill-audit --json")
        assert s["verdict"] == "bad-stack-pointer"
        assert s["fault"]["si_addr"] == rsp - 8          # the push's slot
        d = gdb.json("deadlock-graph --json")
        assert [t["lwp"] for t in d["threads"]] == [int(facts["pid"])]
        t = gdb.json("crash-triage --json")
        assert t["verdict"] == "bad-stack-pointer"
        assert t["frames"][0]["function"] == facts["function"]
        _report_or_line(gdb.cmd("isa-check"), "isa-check")
        _usable(gdb)


# --- a stack walk that never ends ---------------------------------------------
def _frame_rows(spill: dict) -> int:
    return len(spill["stack"]["frames"])


@pytest.mark.parametrize("bound", [None, 5])
def test_a_million_frames_stop_at_the_bound(bound, cores, tmp_path):
    core, facts = cores["endless"]
    # ulimit -s / 8-byte frames: far more levels than any bound.
    depth = 8 * 1024 * 1024 // int(facts["frame_bytes"])
    expected = bound or DEFAULT_MAX_FRAMES
    assert depth > 100 * expected
    with GdbSession(str(HOSTILE), str(core), cwd=tmp_path) as gdb:
        if bound:
            gdb.cmd(f"set gdbext max-frames {bound}")
        s = gdb.json("spill-audit --json")
        assert _frame_rows(s) == expected
        assert any(f"stopped at {expected} frames" in w for w in s["warnings"])
        t = gdb.json("crash-triage --json")
        assert any(f"stopped at {expected} frames" in w for w in t["warnings"])
        assert t["verdict"] == "stack-overflow"
        assert [f["function"] for f in t["frames"]] == [facts["function"]]   # collapsed
        once = gdb.json("spill-audit --json --max-frames 3")          # the flag wins
        assert _frame_rows(once) == 3
        _usable(gdb)


def test_a_million_frames_live(tmp_path):
    with GdbSession(str(HOSTILE), cwd=tmp_path, timeout=120) as gdb:
        assert "SIGSEGV" in gdb.cmd("run endless </dev/null")
        t = gdb.json("crash-triage --json")
        assert any(f"stopped at {DEFAULT_MAX_FRAMES} frames" in w for w in t["warnings"])
        out = gdb.cmd("deadlock-graph")
        _report_or_line(out, "deadlock-graph")
        _usable(gdb)


# --- a truncated core -----------------------------------------------------------
def _file_image_size(core) -> int:
    """Where the core's last segment ends in the file, from its program headers."""
    from elftools.elf.elffile import ELFFile
    with open(core, "rb") as f:
        return max(s["p_offset"] + s["p_filesz"] for s in ELFFile(f).iter_segments())


@pytest.mark.parametrize("keep", [0.5, 0.05])
def test_truncated_core_says_so(keep, cores, tmp_path):
    core, _ = cores["endless"]
    whole = _file_image_size(core)
    cut = tmp_path / "cut.core"
    shutil.copyfile(core, cut)
    with open(cut, "r+b") as fh:
        fh.truncate(int(whole * keep))
    have = cut.stat().st_size
    with GdbSession(str(HOSTILE), str(cut), cwd=tmp_path) as gdb:
        # gdb loads a core whose notes survived the cut (the 50 % one);
        # then every report must name the cut, else each answer is one line.
        loaded = "no registers" not in gdb.cmd("info registers rip")
        assert loaded or keep < 0.5
        for command in COMMANDS:
            out = gdb.cmd(f"{command} --json")
            assert_no_traceback(out)
            if loaded and command in NEED_REGISTERS:
                r = gdb.json(f"{command} --json")
                assert any(f"truncated: {have} of {whole} bytes" in w
                           for w in r["warnings"]), (command, r["warnings"])
            elif not out.lstrip().startswith("{"):
                assert_one_error_line(out, command)
        _usable(gdb)


# --- the batch CLI on the same inputs ------------------------------------------
def test_batch_cli_on_hostile_cores(cores, tmp_path):
    gdbext = REPO / ".venv" / "bin" / "gdbext"
    paths = [str(cores[m][0]) for m in ("badjump", "badstack", "endless")]
    proc = subprocess.run([str(gdbext), "triage", "-j", "2", "--exe", str(HOSTILE), *paths],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()
               if line.startswith("{")]
    assert [r["verdict"] for r in records] == ["jump-to-unmapped", "bad-stack-pointer",
                                               "stack-overflow"]


def test_batch_cli_never_opens_what_is_not_a_file(cores, tmp_path):
    """A FIFO named on the command line (opening it waits for a writer:
    before this, forever and before any --timeout), /dev/null, and in a
    directory a FIFO, a socket, a symbolic link loop, a link to a device and
    a subdirectory, around a real core: each special file gets a record that
    names its kind (what os.lstat/os.stat say, computed here), the
    subdirectory a summary line, and the real core its right record."""
    import socket
    import stat as st
    core, facts = cores["badjump"]
    d = tmp_path / "d"
    d.mkdir()
    shutil.copyfile(core, d / "a.core")
    os.mkfifo(d / "f.core")
    os.symlink("loop2", d / "loop1")
    os.symlink("loop1", d / "loop2")
    os.symlink("/dev/null", d / "null")
    (d / "sub").mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d / "s.sock"))
    named_fifo = tmp_path / "x.core"
    os.mkfifo(named_fifo)
    kinds = {"FIFO": st.S_ISFIFO, "socket": st.S_ISSOCK, "character device": st.S_ISCHR}
    expected = {}
    for path in [named_fifo, "/dev/null", *sorted(d.iterdir())]:
        if os.path.basename(path) == "sub":
            continue
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            assert exc.errno == 40              # ELOOP
            expected[str(path)] = "symbolic link that loops"
            continue
        expected[str(path)] = next((k for k, test in kinds.items() if test(mode)), None)
    gdbext = REPO / ".venv" / "bin" / "gdbext"
    try:
        proc = subprocess.run([str(gdbext), "triage", "--timeout", "20", "-j", "2",
                               "--exe", str(HOSTILE), str(named_fifo), "/dev/null", str(d)],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
    finally:
        sock.close()
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 1, proc.stderr            # some inputs gave an error record
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["core"] for r in records] == list(expected)    # every input, in order
    for r in records:
        kind = expected[r["core"]]
        if kind is None:                                 # the real core
            assert r["status"] == "ok", r["error"]
            assert r["verdict"] == "jump-to-unmapped"
            assert r["triage"]["finding"]["target"] == int(facts["target"], 16)
        else:
            assert r["status"] == "error" and r["error"].startswith("refused: "), r
            assert kind in r["error"], (kind, r["error"])
    assert f"1 directory inside the directories given not searched" in proc.stderr
    assert str(d / "sub") in proc.stderr
    assert f"{len(expected)} core(s): 1 triaged" in proc.stderr


# --- bytes that are not UTF-8 in a core's notes ----------------------------------
def _notes(core: bytes):
    """(name, type, desc offset, desc size) of every note, from the ELF64
    program headers and the gABI note layout -- the test's own parse."""
    import struct
    phoff, = struct.unpack_from("<Q", core, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", core, 0x36)
    for i in range(phnum):
        p_type, _, off, _, _, size = struct.unpack_from("<IIQQQQ", core, phoff + i * phentsize)
        at = off
        while p_type == 4 and at + 12 <= off + size:
            namesz, descsz, n_type = struct.unpack_from("<III", core, at)
            desc = at + 12 + (namesz + 3 & ~3)
            yield core[at + 12:at + 12 + namesz].rstrip(b"\0"), n_type, desc, descsz
            at = desc + (descsz + 3 & ~3)


def _with_byte_0x89(core) -> tuple[bytes, bytes]:
    """A copy of ``core`` with byte 0x89 in pr_psargs (elf_prpsinfo offset 56,
    include/uapi/linux/elfcore.h) and in the last NT_FILE path; the edited
    core and its psargs bytes as they now are."""
    data = bytearray(core.read_bytes())
    psargs = None
    for name, n_type, desc, size in list(_notes(bytes(data))):
        if name == b"CORE" and n_type == 3:                  # NT_PRPSINFO
            data[desc + 57] = 0x89
            psargs = bytes(data[desc + 56:desc + 136]).split(b"\0")[0]
        if name == b"CORE" and n_type == 0x46494C45:         # NT_FILE
            paths = bytes(data[desc:desc + size]).rstrip(b"\0")
            data[desc + paths.rfind(b"\0") + 3] = 0x89       # 3rd byte of the last path
    assert psargs and b"\x89" in psargs
    return bytes(data), psargs


def test_a_byte_that_is_not_utf8_loses_no_record(cores, tmp_path):
    """0x89 in pr_psargs and an NT_FILE path: the batch record (whose worker
    lost it to a UnicodeDecodeError) and crash-triage in gdb report the same
    crash, and both show the command line with the byte as \\x89."""
    core, facts = cores["badjump"]
    data, psargs = _with_byte_0x89(core)
    bad = tmp_path / "bytes.core"
    bad.write_bytes(data)
    shown = psargs.decode("utf-8", "backslashreplace").strip()     # the kernel pads with a blank
    gdbext = REPO / ".venv" / "bin" / "gdbext"
    proc = subprocess.run([str(gdbext), "triage", "--no-summary", "--exe", str(HOSTILE),
                           str(bad)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert "Traceback" not in proc.stderr
    [record] = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert record["status"] == "ok", record["error"]
    with GdbSession(str(HOSTILE), str(bad), cwd=tmp_path) as gdb:
        inside = gdb.json("crash-triage --json")
        _usable(gdb)
    for r in (record["triage"], inside):
        assert r["verdict"] == "jump-to-unmapped" and r["errors"] == []
        assert r["finding"]["target"] == int(facts["target"], 16)
        assert r["metadata"]["command"] == shown, r["metadata"]["command"]
    assert record["signature"] == inside["signature"]


def test_a_thread_name_that_is_not_utf8_loses_no_record(tmp_path):
    """A live process names its thread b"py\\x89name" (prctl PR_SET_NAME):
    before, the driver's read of /proc/PID/status raised UnicodeDecodeError
    and the whole batch ended in one `internal error` line.  The name the
    record shows is /proc's bytes, read here, decoded by the policy."""
    script = ("import ctypes, os, sys, time\n"
              "ctypes.CDLL(None).prctl(15, b'py\\x89name', 0, 0, 0)\n"   # PR_SET_NAME
              "print(os.getpid(), flush=True)\ntime.sleep(120)\n")
    proc = subprocess.Popen(["python3", "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(proc.stdout.readline())
        with open(f"/proc/{pid}/task/{pid}/comm", "rb") as fh:
            comm = fh.read().rstrip(b"\n")
        assert comm == b"py\x89name"
        gdbext = REPO / ".venv" / "bin" / "gdbext"
        out = subprocess.run([str(gdbext), "triage", "--no-summary", "-p", str(pid)],
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert proc.poll() is None                      # still running, detached
    finally:
        proc.kill()
        proc.wait()
    assert "Traceback" not in out.stderr and "internal error" not in out.stderr, out.stderr
    [record] = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert record["status"] == "ok", record["error"]
    threads = record["triage"]["metadata"]["threads"]
    assert [t["name"] for t in threads if t["lwp"] == pid] == \
        [comm.decode("utf-8", "backslashreplace")]


# --- damaged cores: a warning that names the damage, never an internal error ----
AARCH64_PROGRAM = FIXTURES / "arch" / "arch_aarch64"
I386_PROGRAM = FIXTURES / "arch" / "arch_i386"


@pytest.fixture(scope="module")
def gcore_of_sleep(tmp_path_factory):
    """gdb's gcore of a sleeping `sleep`: (core, its program from /proc)."""
    d = tmp_path_factory.mktemp("gcore")
    proc = subprocess.Popen(["sleep", "300"])
    try:
        exe = os.readlink(f"/proc/{proc.pid}/exe")
        core = d / "sleep.core"
        run([GDB, "-nx", "-nh", "-batch", "-p", str(proc.pid), "-ex", f"gcore {core}"])
    finally:
        proc.kill()
        proc.wait()
    assert core.is_file()
    return core, exe


def _prstatus_sizes(core) -> set[int]:
    """The NT_PRSTATUS sizes readelf -n prints."""
    out = run(["readelf", "-n", str(core)]).stdout
    return {int(x, 16) for x in re.findall(r"^\s+CORE\s+0x([0-9a-f]+)\s+NT_PRSTATUS", out, re.M)}


def _batch(*args, cwd) -> list[dict]:
    gdbext = REPO / ".venv" / "bin" / "gdbext"
    proc = subprocess.run([str(gdbext), "triage", "--no-summary", "-j", "2", *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=cwd)
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("damage", ["pc-zero", "registers-zeroed", "no-prstatus"])
@pytest.mark.parametrize("source", ["kernel", "gcore"])
def test_damaged_registers_are_named_not_internal_errors(damage, source, cores,
                                                         gcore_of_sleep, tmp_path):
    """rip = 0 (deadlock-graph: OverflowError before), all registers zero,
    no register note at all ("internal error: error: PC not available"
    before): each report keeps going and warns of the damage it can name."""
    core, exe = (cores["badjump"][0], str(HOSTILE)) if source == "kernel" else gcore_of_sleep
    raw = core.read_bytes()
    lwps = [lwp for _, _, lwp in damaged.prstatus(raw)]
    assert lwps
    data = {"pc-zero": lambda: damaged.pc_zero(raw)[0],
            "registers-zeroed": lambda: damaged.registers_zeroed(raw)[0],
            "no-prstatus": lambda: damaged.no_prstatus(raw)[0]}[damage]()
    bad = tmp_path / f"{damage}.core"
    bad.write_bytes(data)
    _skip_when_gdb_itself_dies(exe, str(bad))
    with GdbSession(exe, str(bad), cwd=tmp_path) as gdb:
        reports = {c: gdb.cmd(f"{c} --json") for c in NEED_REGISTERS}
        one_liners = {c: gdb.cmd(c) for c in ("isa-check", "spill-audit")}
        _usable(gdb)
    for out in (*reports.values(), *one_liners.values()):
        assert_no_traceback(out)
        assert "internal error" not in out, out
    triage = json.loads(next(l for l in reports["crash-triage"].splitlines()
                             if l.startswith("{")))
    [record] = _batch("--exe", exe, bad, cwd=tmp_path)
    assert record["status"] == "ok", record["error"]
    assert "internal error" not in json.dumps(record)
    for warnings in (triage["warnings"], record["warnings"]):
        said = [w for w in warnings if w.startswith("damaged core: ")]
        assert said, warnings
        if damage == "no-prstatus":
            assert "no NT_PRSTATUS note" in said[0]
        else:
            assert f"LWP {lwps[0]} (pc 0x0 in no code mapping" in said[0], said
            if damage == "registers-zeroed":
                assert "sp 0x0 in no writable mapping" in said[0], said
    if damage == "no-prstatus":
        for command, out in one_liners.items():
            assert_one_error_line(out, command, "the core records no program counter for "
                                  "thread 1")


@pytest.mark.parametrize("case", ["x86-64 as aarch64", "i386 as arm"])
def test_a_relabelled_core_is_named_by_its_header_and_doubted(case, cores, tmp_path):
    """e_machine rewritten: the refusal names the header's machine (an ELF32
    ARM core was "i386" in gdb) and says the register notes are the size of
    another machine's (readelf -n's size)."""
    if case == "x86-64 as aarch64":
        core, machine, said, real = cores["badjump"][0], damaged.EM_AARCH64, "aarch64", \
            "i386:x86-64"
    else:
        if not I386_PROGRAM.exists():
            pytest.skip("no arch_i386 fixture")
        core, _, _ = kernel_core([str(I386_PROGRAM), "ud2"], tmp_path / "i386")
        machine, said, real = damaged.EM_ARM, "arm", "i386"
    [size] = _prstatus_sizes(core)
    bad = tmp_path / "relabelled.core"
    bad.write_bytes(damaged.relabelled(core.read_bytes(), machine))
    _skip_when_gdb_itself_dies("-c", str(bad))
    expected = (f"unsupported architecture: {said} (gdbext supports x86-64 only); the core "
                f"looks damaged: the ELF header says {said}, yet the NT_PRSTATUS notes are "
                f"{size} bytes, the size of {real}'s")
    with GdbSession("-c", str(bad), cwd=tmp_path) as gdb:
        line = assert_one_error_line(gdb.cmd("crash-triage"), "crash-triage")
        _usable(gdb)
    assert expected in line, line
    [record] = _batch(bad, cwd=tmp_path)
    assert record["status"] == "error" and expected in record["error"], record["error"]


@pytest.mark.parametrize("wrong", ["aarch64 program", "text file"])
def test_the_wrong_executable_is_named(wrong, cores, tmp_path):
    """A text file or an aarch64 program given as the executable of an
    x86-64 kernel core: the batch warns and reads the core without it (the
    verdict stays the fixture's); gdb, which loads the aarch64 program, warns
    too (a text file it refuses itself)."""
    core, facts = cores["badjump"]
    if wrong == "text file":
        exe = tmp_path / "notes.txt"
        exe.write_text("not a program\n")
    else:
        exe = AARCH64_PROGRAM
        if not exe.exists():
            pytest.skip("no arch_aarch64 fixture")
        assert "AArch64" in run(["readelf", "-h", str(exe)]).stdout
    [record] = _batch("--exe", exe, core, cwd=tmp_path)
    assert record["status"] == "ok" and record["verdict"] == "jump-to-unmapped"
    assert record["triage"]["finding"]["target"] == int(facts["target"], 16)
    doubt = [w for w in record["warnings"] if w.startswith(f"wrong executable: {exe} ")]
    assert doubt and ("is an aarch64 program" if wrong != "text file" else
                      "is not an ELF file") in doubt[0], record["warnings"]
    if wrong == "aarch64 program":
        with GdbSession(str(exe), str(core), cwd=tmp_path) as gdb:
            r = gdb.json("crash-triage --json")
        assert any(w.startswith(f"wrong executable: {exe} is an aarch64 program")
                   for w in r["warnings"]), r["warnings"]


@pytest.mark.parametrize("damage", ["load-moved", "signal-rewritten"])
def test_damaged_layout_and_signal_are_named(damage, cores, tmp_path):
    """A PT_LOAD moved off its page, or NT_SIGINFO saying SIGBUS where the
    dumping thread's pr_cursig says SIGSEGV (as the fixture died): the report
    warns, naming the segment or both signals."""
    core, facts = cores["badjump"]
    raw = core.read_bytes()
    [(_, _, lwp)] = damaged.prstatus(raw)
    assert cores["badjump"][0] and int(facts["pid"]) == lwp
    if damage == "load-moved":
        data, vaddr = damaged.load_moved(raw)
        expected = f"PT_LOAD at {vaddr:#x}: not page-aligned"
    else:
        data = damaged.signal_rewritten(raw, 7)                 # SIGBUS
        expected = f"NT_SIGINFO says signal 7 but the thread that dumped (LWP {lwp}) " \
            "records signal 11"                                 # the fixture's SIGSEGV
    bad = tmp_path / f"{damage}.core"
    bad.write_bytes(data)
    with GdbSession(str(HOSTILE), str(bad), cwd=tmp_path) as gdb:
        r = gdb.json("crash-triage --json")
        _usable(gdb)
    [record] = _batch("--exe", HOSTILE, bad, cwd=tmp_path)
    for warnings in (r["warnings"], record["warnings"]):
        assert any(w.startswith("damaged core: ") and expected in w for w in warnings), \
            warnings


@pytest.mark.parametrize("command", ["crash-triage", "deadlock-graph"])
def test_gdbext_command_on_a_fifo_is_one_line(command, tmp_path):
    """`gdbext COMMAND FIFO` opened the FIFO to read its ELF type, and waited
    for a writer forever; now one line, exit status 2."""
    fifo = tmp_path / "x.core"
    os.mkfifo(fifo)
    gdbext = REPO / ".venv" / "bin" / "gdbext"
    proc = subprocess.run([str(gdbext), command, str(fifo)], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == f"gdbext {command}: not a core gdbext can read: refused: " \
        "a FIFO (named pipe), not a core file: not opened (reading it could block)"
