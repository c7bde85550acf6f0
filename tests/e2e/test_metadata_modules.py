"""crash-triage's modules are the objects the process ran, as gdb loads them:
not a file the process only read.  Rust std's backtrace printer maps libc's
separate .debug file (when libc6-dbg is installed) to symbolise a panic's
backtrace; the core's NT_FILE lists it, but it is no module.

Truth: gdb's own `info proc mappings` (the core's NT_FILE) and `info
sharedlibrary`, never gdbext.
"""
from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.e2e.gdb_session import GdbSession
from tests.host import FIXTURES, GDB, kernel_cores_land_in_cwd, find_kernel_core, unlimited_core

PANIC = FIXTURES / "everyday" / "panic_abort"


def test_a_debug_file_mapped_to_print_a_backtrace_is_no_module(tmp_path):
    if not PANIC.exists():
        pytest.skip("make setup builds the Rust fixtures")
    if not kernel_cores_land_in_cwd():
        pytest.skip("core_pattern does not write kernel cores into the cwd")
    proc = subprocess.run([str(PANIC), "index"], cwd=tmp_path, capture_output=True, text=True,
                          preexec_fn=unlimited_core, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "RUST_BACKTRACE": "1"})
    pid = int(re.search(r"pid=(\d+)", proc.stdout).group(1))
    core = find_kernel_core(tmp_path, pid)
    assert core is not None
    plain = subprocess.run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                            "-ex", "info proc mappings", "-ex", "info sharedlibrary",
                            str(PANIC), str(core)], capture_output=True, text=True).stdout
    # gdb 13 indents the rows; gdb 16 does not, and ends them with a space
    mapped = set(re.findall(r"^\s*0x[0-9a-f]+\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+"
                            r"(?:\S+\s+)?(/\S+)[ \t]*$", plain, re.M))
    if not any(p.endswith(".debug") for p in mapped):
        pytest.skip("std's backtrace mapped no .debug file here (libc6-dbg missing, or this "
                    "std does not read it)")
    loaded = {os.path.realpath(p) for p in re.findall(r"^0x[0-9a-f]+\s+0x[0-9a-f]+\s+\S+"
                                                       r"(?:\s+\(\*\))?\s+(/\S+)$", plain, re.M)}
    assert loaded, plain
    with GdbSession(str(PANIC), str(core)) as gdb:
        modules = {os.path.realpath(m["path"])
                   for m in gdb.json("crash-triage --json")["metadata"]["modules"]}
    assert not any(p.endswith(".debug") for p in modules), modules
    assert modules == loaded | {os.path.realpath(PANIC)}, (modules, loaded)


def _build_id(path) -> str:
    notes = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True).stdout
    return re.search(r"Build ID: ([0-9a-f]+)", notes).group(1)


@pytest.fixture(scope="module")
def relative_dlopen(tmp_path_factory):
    """A kernel core of CPython whose ctypes loaded its C library by a
    relative name (CDLL("./libext.so")) and crashed in it; and an impostor
    libext.so, another build of that name, in another directory."""
    if not kernel_cores_land_in_cwd():
        pytest.skip("core_pattern does not write kernel cores into the cwd")
    ran = tmp_path_factory.mktemp("ran")
    (ran / "ext.c").write_text(
        "#include <stddef.h>\nsize_t sum_buf(const unsigned char *p, size_t n) {\n"
        "  size_t s = 0;\n  for (size_t i = 0; i < n; i++) s += p[i];\n  return s;\n}\n")
    subprocess.run(["gcc", "-g", "-O1", "-shared", "-fPIC", "-o", str(ran / "libext.so"),
                    str(ran / "ext.c")], check=True)
    script = ("import ctypes, os\nlib = ctypes.CDLL('./libext.so')\n"
              "print(f'pid={os.getpid()}', flush=True)\n"
              "lib.sum_buf(ctypes.c_void_p(16), ctypes.c_size_t(8))\n")
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"
    proc = subprocess.run([python, "-c", script], cwd=ran, capture_output=True, text=True,
                          preexec_fn=unlimited_core, timeout=60)
    assert proc.returncode == -11, proc.stderr
    pid = int(re.search(r"pid=(\d+)", proc.stdout).group(1))
    core = find_kernel_core(ran, pid)
    assert core is not None
    other = tmp_path_factory.mktemp("elsewhere")
    impostor = tmp_path_factory.mktemp("impostor")
    (impostor / "o.c").write_text("int sum_buf(void) { return 1; }\nint other(void) { return 2; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(impostor / "libext.so"),
                    str(impostor / "o.c")], check=True)
    exe = os.path.realpath(python)
    return dict(ran=ran, core=core, exe=exe, elsewhere=other, impostor=impostor)


def _triage(case, cwd) -> dict:
    with GdbSession(case["exe"], str(case["core"]), cwd=str(cwd), debuginfo=False) as gdb:
        return gdb.json("crash-triage --json")


def _plain_row(case, cwd) -> tuple[str, str]:
    """(address or "", name) of libext.so's row in plain gdb's `info
    sharedlibrary` run from ``cwd``: gdb 13 looks the link map's relative
    name up from its own directory; gdb 16 finds the core's own file."""
    plain = subprocess.run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                            "-ex", "info sharedlibrary", case["exe"], str(case["core"])],
                           cwd=cwd, capture_output=True, text=True).stdout
    m = re.search(r"^\s*(0x[0-9a-f]+)?\s+(?:0x[0-9a-f]+\s+)?(?:Yes|No)(?: \(\*\))?\s+"
                  r"(\S*libext\.so)\s*$", plain, re.M)
    assert m, plain
    return m.group(1) or "", m.group(2)


def test_a_library_gdb_cannot_find_from_here_is_named_with_the_fix(relative_dlopen):
    """Read from another directory, gdb 13 finds no ./libext.so (its own
    `info sharedlibrary` says No, with no address) and every frame in it is
    unnamed: the report says which file the process ran, its build-id
    (readelf), and the solib-search-path that finds it.  A gdb that finds
    the core's own file (16) gets no such warning."""
    case = relative_dlopen
    address, name = _plain_row(case, case["elsewhere"])
    report = _triage(case, case["elsewhere"])
    said = [w for w in report["warnings"] if "libext.so" in w]
    if address:
        assert said == [] and report["frames"][0]["function"] == "sum_buf", report
        return
    assert name == "./libext.so"
    real = case["ran"] / "libext.so"
    [w] = said
    assert f"the process ran {real}, build-id {_build_id(real)}" in w, w
    assert f"set solib-search-path {case['ran']}" in w, w
    assert f"working directory ({case['elsewhere']})" in w, w


def test_another_build_of_that_name_here_is_called_so(relative_dlopen):
    """An impostor ./libext.so in gdb's directory: gdb 13 reads it (its list
    shows the relative name with an address); the report says it is another
    build, with both build-ids (readelf).  A gdb that reads the core's own
    file instead (16): no warning."""
    case = relative_dlopen
    address, name = _plain_row(case, case["impostor"])
    report = _triage(case, case["impostor"])
    said = [w for w in report["warnings"] if "libext.so" in w]
    if name != "./libext.so":
        assert name == str(case["ran"] / "libext.so") and said == [], (name, said)
        return
    assert address
    [w] = said
    assert (f"gdb read ./libext.so with build-id {_build_id(case['impostor'] / 'libext.so')}"
            f" for {case['ran'] / 'libext.so'}, which ran with build-id "
            f"{_build_id(case['ran'] / 'libext.so')}") in w, w


def test_read_where_it_ran_there_is_nothing_to_say(relative_dlopen):
    """From the program's own directory gdb reads the very file: no warning
    about it, and the crash is signed in sum_buf (nm: the library defines it)."""
    case = relative_dlopen
    nm = subprocess.run(["nm", "-D", str(case["ran"] / "libext.so")], capture_output=True,
                        text=True).stdout
    assert re.search(r" T sum_buf$", nm, re.M)
    report = _triage(case, case["ran"])
    assert report["schema"].startswith("gdbext/crash-triage/")
    assert not [w for w in report["warnings"] if "libext.so" in w], report["warnings"]
    assert report["frames"][0]["function"] == "sum_buf", report["frames"]
