"""Where the target's files are: a library rebuilt after the core, the
original files under a sysroot, a process in its own mount namespace whose
library differs from the host's at the same path, and a process behind
qemu-user's gdb stub (gdb lists no shared libraries there).

Truth: readelf's build-ids and nm's symbols of the files the test builds,
plain gdb's own view of the core (its pc, `info proc mappings`), the CPUID
a probe program prints under the same qemu CPU model -- never gdbext.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.gdb_session import GdbSession, assert_no_traceback
from tests.host import FIXTURES, GDB, REPO, find_kernel_core, gdbext_cli, \
    kernel_cores_land_in_cwd, unlimited_core

FOO_V1 = "int foo_sum(int *p, int n) { int s = 0; for (int i = 0; i < n; i++) s += p[i]; " \
         "return s; }\n"
FOO_V2 = ("int pad1(int *p) { int s = 0; for (int i = 0; i < 100; i++) s += p[i] * i; "
          "return s; }\nint pad2(int *p) { p[3] = 7; return pad1(p); }\n"
          "int foo_sum(int *p, int n) { int s = 1; for (int i = 0; i < n; i++) s *= p[i]; "
          "return s; }\n")
MAIN = ("#include <stdio.h>\nint foo_sum(int *p, int n);\n"
        "int main(void) { printf(\"%d\\n\", foo_sum((int *)0, 4)); return 0; }\n")


def _gcc(*args: str) -> None:
    subprocess.run(["gcc", *args], check=True, capture_output=True)


def _build_id(path) -> str:
    notes = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True).stdout
    return re.search(r"Build ID: ([0-9a-f]+)", notes).group(1)


def _plain(*args: str, cwd=None) -> str:
    return subprocess.run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                           *args], capture_output=True, text=True, cwd=cwd).stdout


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    """prog calls foo_sum(NULL) in libfoo.so and dies (a kernel core); then
    libfoo.so is rebuilt with other code, as a later deployment would."""
    if not kernel_cores_land_in_cwd():
        pytest.skip("core_pattern does not write kernel cores into the cwd")
    d = tmp_path_factory.mktemp("rebuilt")
    (d / "foo.c").write_text(FOO_V1)
    (d / "main.c").write_text(MAIN)
    _gcc("-O1", "-shared", "-fPIC", "-o", str(d / "libfoo.so"), str(d / "foo.c"))
    _gcc("-O1", "-o", str(d / "prog"), str(d / "main.c"), f"-L{d}", "-lfoo",
         f"-Wl,-rpath,{d}")
    proc = subprocess.run([str(d / "prog")], cwd=d, preexec_fn=unlimited_core,
                          capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGSEGV
    core = next(d.glob("core*"), None)
    assert core is not None
    original = d / "original"
    original.mkdir()
    shutil.copy(d / "libfoo.so", original / "libfoo.so")
    pc = int(re.search(r"= (0x[0-9a-f]+)", _plain(str(d / "prog"), str(core), "-ex",
                                                   "p/x $pc")).group(1), 16)
    maps = _plain(str(d / "prog"), str(core), "-ex", "info proc mappings")
    base = min(int(m.group(1), 16) for m in re.finditer(
        r"^\s*(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+0x0\s+(?:\S+\s+)?\S*/libfoo\.so\s*$",
        maps, re.M))
    nm = subprocess.run(["nm", "-D", str(d / "libfoo.so")], capture_output=True,
                        text=True).stdout
    assert re.search(r" T foo_sum$", nm, re.M)
    (d / "foo.c").write_text(FOO_V2)            # the rebuild
    _gcc("-O1", "-shared", "-fPIC", "-o", str(d / "libfoo.so"), str(d / "foo.c"))
    assert _build_id(d / "libfoo.so") != _build_id(original / "libfoo.so")
    # what gdb itself now calls the crashing function: a name from the new build
    wrong = re.search(r"^(\S+) in section", _plain(str(d / "prog"), str(core), "-ex",
                                                    f"info symbol {pc:#x}"), re.M)
    return dict(dir=d, core=core, prog=d / "prog", pc=pc, base=base, original=original,
                wrong=wrong.group(1) if wrong else None)


def _triage(case, *extra: str) -> dict:
    with GdbSession(str(case["prog"]), *extra, str(case["core"]), debuginfo=False) as gdb:
        result = gdb.json("crash-triage --json")
        text = gdb.cmd("crash-triage")
    assert_no_traceback(text)
    return result, text


def test_a_library_rebuilt_since_the_core_is_never_read(rebuilt):
    """The file here is another build: the report says so with both
    build-ids, the faulting instruction is unknown (its bytes are not in the
    core), the frame is libfoo.so+offset (plain gdb's pc minus the mapping
    plain gdb shows), and no name from the new build appears."""
    case = rebuilt
    result, text = _triage(case)
    ran, here = _build_id(case["original"] / "libfoo.so"), _build_id(case["dir"] / "libfoo.so")
    assert any("libfoo.so: the file here is not the build that crashed" in w
               for w in result["warnings"]), result["warnings"]
    unknown = [e["error"] for e in result["errors"] if "the instruction is unknown" in e["error"]]
    assert unknown and f"build-id {here}, the process ran build-id {ran}" in unknown[0]
    offset = f"libfoo.so+{case['pc'] - case['base']:#x}"
    assert result["frames"][0]["function"] == offset, result["frames"]
    assert offset in result["signature"]["text"]
    assert result["class"]["class"] == "null-access", result["class"]
    if case["wrong"]:
        assert case["wrong"] not in text, text


def test_the_original_files_under_a_sysroot_explain_it_again(rebuilt, tmp_path):
    """The build that ran, copied under a sysroot at its path: read from
    there, the crash is foo_sum's again (nm), a null read, with no warning."""
    case = rebuilt
    root = tmp_path / "sysroot"
    (root / str(case["dir"]).lstrip("/")).mkdir(parents=True)
    shutil.copy(case["original"] / "libfoo.so", root / str(case["dir"]).lstrip("/"))
    result, _text = _triage(case, "-iex", f"set sysroot {root}")
    assert result["frames"][0]["function"] == "foo_sum", result["frames"]
    assert result["class"]["class"] == "null-read"
    assert not [w for w in result["warnings"] if "libfoo.so" in w], result["warnings"]
    # the batch, as a fleet's cores are triaged: gdbext triage --sysroot DIR
    batch = subprocess.run([*gdbext_cli(module=True), "triage", "--no-summary", "--sysroot", str(root),
                            str(case["core"])],
                           capture_output=True, text=True, timeout=300, cwd=REPO,
                           env=dict(os.environ, PYTHONPATH=str(REPO)))
    [record] = [json.loads(line) for line in batch.stdout.splitlines() if line.startswith("{")]
    assert "foo_sum" in record["signature"]["text"], record


NS_A = "#include <unistd.h>\nvoid ns_wait_a(void) { for (;;) pause(); }\n" \
       "void ns_entry(void) { ns_wait_a(); }\n"
NS_B = ("#include <pthread.h>\nstatic pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;\n"
        "void ns_wait_b(void) { pthread_mutex_lock(&m); pthread_mutex_lock(&m); }\n"
        "void ns_entry(void) { ns_wait_b(); }\n")
NS_PROG = ("#include <dlfcn.h>\n#include <stdio.h>\n#include <unistd.h>\n"
           "int main(int argc, char **argv) {\n"
           "  void *h = dlopen(argv[1], RTLD_NOW);\n"
           "  if (!h) { printf(\"dlopen: %s\\n\", dlerror()); return 1; }\n"
           "  void (*f)(void) = (void (*)(void))dlsym(h, \"ns_entry\");\n"
           "  printf(\"pid=%d\\n\", getpid()); fflush(stdout);\n  f();\n  return 0;\n}\n")


def test_a_process_in_its_own_mount_namespace_is_read_through_its_files(tmp_path):
    """The process runs in a mount namespace where lib/libns.so is another
    build (a bind mount, as a container's image would be): gdbext reads the
    process's file (/proc/PID/root): its build-id (readelf of the mounted
    file) with no mismatch, and the self-deadlock in ns_wait_b, a function
    only that build has (nm)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) for a mount namespace")
    (tmp_path / "lib").mkdir()
    (tmp_path / "alt").mkdir()
    (tmp_path / "a.c").write_text(NS_A)
    (tmp_path / "b.c").write_text(NS_B)
    (tmp_path / "prog.c").write_text(NS_PROG)
    host_lib, ns_lib = tmp_path / "lib" / "libns.so", tmp_path / "alt" / "libns.so"
    _gcc("-O1", "-g", "-shared", "-fPIC", "-o", str(host_lib), str(tmp_path / "a.c"))
    _gcc("-O1", "-g", "-shared", "-fPIC", "-o", str(ns_lib), str(tmp_path / "b.c"),
         "-lpthread")
    _gcc("-O1", "-g", "-o", str(tmp_path / "prog"), str(tmp_path / "prog.c"), "-ldl")
    assert re.search(r" T ns_wait_b$", subprocess.run(["nm", "-D", str(ns_lib)],
                     capture_output=True, text=True).stdout, re.M)
    out = tmp_path / "out.txt"
    with open(out, "w") as fh:
        proc = subprocess.Popen(["unshare", "-m", "sh", "-c",
                                 f"mount --bind {ns_lib} {host_lib} && exec {tmp_path}/prog "
                                 f"{host_lib}"], stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "pid=" not in out.read_text():
            if proc.poll() is not None and "propagation" in out.read_text():
                pytest.skip(f"no mount namespace here: {out.read_text().strip()}")  # a chroot
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.05)
        time.sleep(0.3)
        pid = int(re.search(r"pid=(\d+)", out.read_text()).group(1))
        with GdbSession(str(tmp_path / "prog"), "-ex", f"attach {pid}",
                        debuginfo=False) as gdb:
            result = gdb.json("crash-triage --json")
            gdb.cmd("detach")
        # gdb told to read the host's files (set sysroot /): its names are the
        # host build's; ns_wait_a never ran (nm: only the host's build has it)
        with GdbSession(str(tmp_path / "prog"), "-iex", "set sysroot /", "-ex",
                        f"attach {pid}", debuginfo=False) as gdb:
            host = gdb.json("crash-triage --json")
    finally:
        proc.kill()
        proc.wait()
    assert re.search(r" T ns_wait_a$", subprocess.run(["nm", "-D", str(host_lib)],
                     capture_output=True, text=True).stdout, re.M)
    [site] = host["signature"]["frames"]
    assert site.startswith("libns.so+0x") and "ns_wait_a" not in json.dumps(host), site
    assert any(f"build-id {_build_id(ns_lib)}" in w for w in host["warnings"]), host["warnings"]
    modules = {os.path.basename(m["path"]): m for m in result["metadata"]["modules"]}
    assert modules["libns.so"]["build_id"] == _build_id(ns_lib) != _build_id(host_lib)
    assert "mismatch" not in modules["libns.so"], modules["libns.so"]
    assert not [w for w in result["warnings"] if "libns.so" in w], result["warnings"]
    assert result["signature"]["frames"] == ["ns_wait_b"], result["signature"]


PROBE = ("#include <cpuid.h>\n#include <stdio.h>\nint main(void) {\n"
         "  unsigned a, b, c, d;\n  __get_cpuid(1, &a, &b, &c, &d);\n"
         "  unsigned family = (a >> 8) & 0xf, model = (a >> 4) & 0xf;\n"
         "  if (family == 6 || family == 15) model |= ((a >> 16) & 0xf) << 4;\n"
         "  if (family == 15) family += (a >> 20) & 0xff;\n"
         "  __get_cpuid(0x80000001, &a, &b, &c, &d);\n"
         "  printf(\"family=%u model=%u fma4=%u\\n\", family, model, (c >> 16) & 1);\n"
         "  return 0;\n}\n")


def test_isa_check_behind_qemus_gdb_stub(tmp_path):
    """qemu-x86_64 -cpu Nehalem -g PORT: gdb lists no libc there, yet
    isa-check reads glibc's CPUID snapshot through the dynamic linker's own
    list in memory: the CPU a probe program reads under the same qemu model
    (family, model, no fma4), the verdict unsupported, no 'glibc older than
    2.33'."""
    if not shutil.which("qemu-x86_64"):
        pytest.skip("qemu-user is not installed (make setup installs it)")
    isa_crash = FIXTURES / "isa_crash"
    (tmp_path / "probe.c").write_text(PROBE)
    _gcc("-O1", "-o", str(tmp_path / "probe"), str(tmp_path / "probe.c"))
    said = subprocess.run(["qemu-x86_64", "-cpu", "Nehalem", str(tmp_path / "probe")],
                          capture_output=True, text=True, timeout=60).stdout
    probe = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", said)}
    assert probe["fma4"] == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    qemu = subprocess.Popen(["qemu-x86_64", "-cpu", "Nehalem", "-g", str(port),
                             str(isa_crash), "fma4"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        with GdbSession(str(isa_crash), "-ex", f"target remote 127.0.0.1:{port}",
                        debuginfo=False) as gdb:
            listed = gdb.cmd("info sharedlibrary")
            stop = gdb.cmd("continue")
            result = gdb.json("isa-check --json")
            triage = gdb.json("crash-triage --json")
            siginfo = gdb.cmd("p $_siginfo")
    finally:
        qemu.kill()
        qemu.wait()
    assert "SIGILL" in stop, stop
    assert "libc.so" not in listed, listed      # gdb's own view: no libc (gdb 16: ld.so only)
    # crash-triage: the stub serves no siginfo, but reported SIGILL -- a fault,
    # not a hang; the frame is the fixture's fma4 kernel (nm)
    served = "si_signo = 4" in siginfo       # gdb 16 gets it from the stub, gdb 13 does not
    assert triage["stop"]["signal"] == "SIGILL"
    assert triage["stop"]["source"] == ("siginfo" if served else "remote-stop"), triage["stop"]
    assert triage["verdict"] == "unsupported", triage["headline"]
    assert re.search(r" T fma4_kernel$", subprocess.run(["nm", str(isa_crash)],
                     capture_output=True, text=True).stdout, re.M)
    assert triage["frames"][0]["function"] == "fma4_kernel"
    cpu = result["cpu"]
    assert (cpu["source"], cpu["family"], cpu["model"]) == \
        ("process", probe["family"], probe["model"]), cpu
    assert result["verdict"] == "unsupported" and "fma4" in result["missing"], result
    assert not [w for w in result["warnings"] if "2.33" in w], result["warnings"]


def _untraced(pid: int) -> None:
    deadline = time.monotonic() + 10
    while re.search(r"^TracerPid:\s*[1-9]", open(f"/proc/{pid}/status").read(), re.M):
        assert time.monotonic() < deadline, "still traced"
        time.sleep(0.05)


@pytest.mark.parametrize("debuginfo", [True, False])
@pytest.mark.parametrize("name", ["abba", "loader_gomp"])
def test_crash_triage_behind_gdbserver_reads_as_attached(name, debuginfo, hang, tmp_path):
    """The same hung process, attached directly and then behind Debian's
    gdbserver (gdb given no file: it reads the program and libraries from
    the target): the same verdict, signature, command line and modules with
    their build-ids -- the direct attach is the oracle, and its modules are
    checked against readelf."""
    from tests.e2e.test_deadlock_graph import gdbserver_report, report
    h = hang(name)
    remote = gdbserver_report(h, debuginfo, tmp_path, "crash-triage --json")
    _untraced(h.pid)                    # gdbserver has let go before gdb attaches
    direct = report(h, "attach", debuginfo, tmp_path, "crash-triage --json")
    for key in ("verdict", "headline"):
        assert remote[key] == direct[key], (key, remote[key], direct[key])
    assert remote["signature"]["id"] == direct["signature"]["id"]
    modules = {m["path"]: m["build_id"] for m in direct["metadata"]["modules"]}
    for path, bid in modules.items():
        assert bid == _build_id(path), path
    assert {m["path"]: m["build_id"] for m in remote["metadata"]["modules"]} == modules
    assert remote["metadata"]["command"] == direct["metadata"]["command"]
    assert not [w for w in remote["warnings"] if "cannot open" in w or "target:" in w], \
        remote["warnings"]


def test_code_the_core_lacks_and_no_file_provides_is_not_decoded_from_zeros(tmp_path):
    """strlen(NULL) faults in libc; the core is read with a sysroot that has
    no libc (a fleet's partial copy).  Plain gdb then answers zeros for
    libc's code (x/2bx reads 00 00), which would decode as a write
    (`add %al,(%rax)`).  gdbext says the instruction is unknown and why,
    names the frame libc.so.6+offset, and calls it a null access -- while
    read with the host's libc it is the read plain gdb shows."""
    if not kernel_cores_land_in_cwd():
        pytest.skip("core_pattern does not write kernel cores into the cwd")
    (tmp_path / "p.c").write_text("#include <stdio.h>\n#include <string.h>\n"
                                  "int main(int argc, char **argv) {\n"
                                  "  const char *volatile p = argc > 5 ? argv[0] : 0;\n"
                                  "  printf(\"%zu\\n\", strlen(p));\n  return 0;\n}\n")
    _gcc("-O1", "-o", str(tmp_path / "prog"), str(tmp_path / "p.c"))
    proc = subprocess.run([str(tmp_path / "prog")], cwd=tmp_path, preexec_fn=unlimited_core,
                          capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGSEGV
    core = next(tmp_path.glob("core*"))
    empty = tmp_path / "sysroot"
    empty.mkdir()
    plain = subprocess.run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                            "-iex", f"set sysroot {empty}", str(tmp_path / "prog"), str(core),
                            "-ex", "x/2bx $pc"], capture_output=True, text=True)
    said = plain.stdout + plain.stderr      # gdb 13 answers zeros; gdb 16 cannot read it
    assert re.search(r":\s+0x00\s+0x00\s*$", said, re.M) or "Cannot access memory" in said, said
    with GdbSession(str(tmp_path / "prog"), "-iex", f"set sysroot {empty}", str(core),
                    debuginfo=False) as gdb:
        result = gdb.json("crash-triage --json")
    assert result["frames"][0]["function"].startswith("libc.so.6+0x"), result["frames"]
    assert any("the instruction is unknown" in e["error"] for e in result["errors"]), result
    assert result["class"]["class"] == "null-access", result["class"]
    with GdbSession(str(tmp_path / "prog"), str(core), debuginfo=False) as gdb:
        host = gdb.json("crash-triage --json")
    assert host["class"]["class"] == "null-read", host["class"]     # the host's libc ran it

