"""Facts about the host computed without gdbext: /proc/cpuinfo, core settings,
tool paths.  Tests derive their expectations from here."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "build" / "fixtures"
GDB = os.environ.get("GDB", "gdb")

# scripts/vacuity-check runs the negative tests (pytest -m negative) with
# gdbext disabled, where every one of them must fail: "unloaded" -- gdb never
# sources gdbinit.py and the batch CLI is a program that does nothing;
# "missing" -- GDBEXT_VENV names no venv, so the packages cannot be imported.
VACUITY = os.environ.get("GDBEXT_TEST_VACUITY", "")
assert VACUITY in ("", "unloaded", "missing"), f"GDBEXT_TEST_VACUITY={VACUITY!r}"


def gdbext_cli(module: bool = False, python=None) -> list[str]:
    """The installed `gdbext` command of the checkout's venv, or (``module``)
    `python -m gdbext` with ``python`` (default: this interpreter); a
    program that does nothing in the vacuity check's "unloaded" mode."""
    if VACUITY == "unloaded":
        return ["true"]
    if module:
        import sys
        return [str(python or sys.executable), "-m", "gdbext"]
    return [str(REPO / ".venv" / "bin" / "gdbext")]


def loader_args() -> list[str]:
    """gdb's arguments that load gdbext (none in the "unloaded" mode)."""
    return [] if VACUITY == "unloaded" else ["-ex", f"source {REPO / 'gdbinit.py'}"]


@lru_cache(maxsize=1)
def cpuinfo() -> dict[str, str]:
    """The first processor's fields from /proc/cpuinfo."""
    fields: dict[str, str] = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    return frozenset(cpuinfo().get("flags", "").split())


def host_has(*features: str) -> bool:
    return all(f in cpu_flags() for f in features)


def core_pattern() -> str:
    return Path("/proc/sys/kernel/core_pattern").read_text().strip()


def kernel_cores_land_in_cwd() -> bool:
    """True when the kernel writes a plain file named after core_pattern in the cwd."""
    pattern = core_pattern()
    return not pattern.startswith("|") and "/" not in pattern


def find_kernel_core(directory: Path, pid: int) -> Path | None:
    pattern = core_pattern()
    name = pattern.replace("%p", str(pid)).replace("%%", "%")
    for candidate in (directory / name, directory / f"{name}.{pid}", directory / "core",
                      directory / f"core.{pid}"):
        if candidate.exists():
            return candidate
    found = sorted(directory.glob("core*"))
    return found[0] if found else None


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, **kw)


def parse_announcement(text: str) -> dict[str, str]:
    """isa_crash prints 'pid=N mode=M fault=0x...' about itself."""
    m = re.search(r"pid=(\d+) mode=(\w+) fault=(0x[0-9a-f]+)", text)
    assert m, f"fixture did not announce itself: {text!r}"
    return {"pid": m.group(1), "mode": m.group(2), "fault": m.group(3)}


def unlimited_core() -> None:
    """preexec_fn for a child that should leave a kernel core.  A shell
    without job control (a background `make test`, CI) starts us with
    SIGINT and SIGQUIT ignored, which the child would inherit: a watchdog's
    SIGQUIT would then leave no core.  Restore their defaults."""
    import resource
    import signal
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    for sig in (signal.SIGQUIT, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)


def glibc_field_address(binary, core, field: str) -> int | None:
    """The address of a glibc/ld.so object field in a core, found by plain gdb
    through glibc's debug info (independently of gdbext); None without it."""
    # without the debug info gdb fails the print, and -batch exits 1: no check
    out = subprocess.run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                          "-ex", f"print &{field}", str(binary), str(core)],
                         capture_output=True, text=True).stdout
    m = re.search(r"\(unsigned int \*\) (0x[0-9a-f]+)", out)
    return int(m.group(1), 16) if m else None


def core_file_offset(core, address: int) -> int:
    """Where a virtual address of the dumped process lies in the core file."""
    from elftools.elf.elffile import ELFFile
    with open(core, "rb") as f:
        for seg in ELFFile(f).iter_segments():
            if (seg["p_type"] == "PT_LOAD"
                    and seg["p_vaddr"] <= address < seg["p_vaddr"] + seg["p_filesz"]):
                return seg["p_offset"] + address - seg["p_vaddr"]
    raise AssertionError(f"{address:#x} is not in the core's file image")


def facts_of(text: str) -> dict[str, str]:
    """The `key=value` lines a fixture prints about itself."""
    return dict(re.findall(r"^(\w+)=(.*?)\r?$", text, re.M))


def kernel_core(argv: list[str], cwd: Path) -> tuple[Path, str, int]:
    """Run a fixture that crashes; (its kernel core, its stdout, the signal)."""
    if not kernel_cores_land_in_cwd():
        import pytest
        pytest.skip("core_pattern does not write kernel cores into the cwd")
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60,
                          preexec_fn=unlimited_core, env={"PATH": "/usr/bin:/bin"},
                          stdin=subprocess.DEVNULL)
    assert proc.returncode < 0, proc
    pid = int(re.search(r"pid=(\d+)", proc.stdout).group(1))   # every fixture says it first
    core = find_kernel_core(cwd, pid)
    assert core is not None, f"no kernel core in {cwd}"
    return core, proc.stdout, -proc.returncode


def bench_core(argv: list[str], cwd: Path, env=None) -> Path | None:
    """For the benches: run a program that crashes and says pid=N first; its
    kernel core, or None (no core written, or no pid printed)."""
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120,
                          preexec_fn=unlimited_core, env=env or {"PATH": "/usr/bin:/bin"})
    m = re.search(r"pid=(\d+)", proc.stdout)
    return find_kernel_core(cwd, int(m.group(1))) if m else None


def kernel_futex_view(pid: int) -> tuple[set[int], dict[int, int]]:
    """The kernel's view of a process gdb holds stopped: its tasks, and the
    futex word of each task inside futex(2) (/proc/PID/task/T/syscall)."""
    tasks = {int(t) for t in os.listdir(f"/proc/{pid}/task")}
    waits = {}
    for t in tasks:
        try:
            fields = Path(f"/proc/{pid}/task/{t}/syscall").read_text().split()
        except OSError:
            continue
        if fields and fields[0] == "202":
            waits[t] = int(fields[1], 16)
    return tasks, waits


@lru_cache(maxsize=1)
def gdb_python_version() -> str:
    """X.Y of the Python that gdb embeds, asked of gdb itself."""
    out = run([GDB, "-nx", "-nh", "-batch", "-ex",
               'python import sys; print("pyver=%d.%d" % sys.version_info[:2])']).stdout
    return re.search(r"pyver=(3\.\d+)", out).group(1)


def debian_python() -> Path:
    """Debian's interpreter of gdb's Python version (3.11 on Debian 12, 3.13 on
    13): the release's python3-numpy is built for it, `make setup` installs it.
    Tests skip with its path named when it is absent."""
    return Path(f"/usr/bin/python{gdb_python_version()}")


def pyenv_python(version: str, stripped: bool = False) -> Path | None:
    """pyenv's newest build of minor VERSION ('3.12'), or None; ``stripped``:
    the copy `make setup` made of it with libpython stripped to .dynsym
    (scripts/strip-pythons), or None."""
    if stripped:
        copy = FIXTURES / "pystripped" / version / "bin" / f"python{version}"
        return copy if copy.exists() else None
    root = Path(os.path.expanduser("~/.pyenv/versions"))
    found = sorted(root.glob(f"{version}.*/bin/python{version}"),
                   key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.parent.name)])
    return found[-1] if found else None


def interpreter_params(minors=("3.11", "3.12", "3.13"), stripped: bool = True) -> list:
    """pytest params of every CPython build to test, each skipping with its
    name when absent: Debian's (gdb's Python version, interpreter in the
    executable), pyenv's shared-libpython builds of MINORS, and their copies
    with libpython stripped as distributions ship it."""
    import pytest
    debian = debian_python()
    out = [pytest.param(debian, id=f"debian-{debian.name[len('python'):]}-static",
                        marks=pytest.mark.skipif(not debian.exists(), reason=f"no {debian}"))]
    for version in minors:
        for strip in (False, True) if stripped else (False,):
            p = pyenv_python(version, stripped=strip)
            kind = "stripped" if strip else "shared"
            out.append(pytest.param(p, id=f"pyenv-{version}-{kind}", marks=pytest.mark.skipif(
                p is None, reason=f"no pyenv {version}" + (" (stripped copy)" if strip else ""))))
    return out


def records_by_core(cores: dict, records: list[dict]) -> dict:
    """`gdbext triage` records matched to the cores they are for, by path:
    name -> record for ``cores`` (name -> core path).  Exactly one record per
    core, none missing, none extra -- never a zip that quietly shortens."""
    assert len(records) == len(cores), (len(records), len(cores))
    by_path = {r["core"]: r for r in records}
    assert set(by_path) == {str(core) for core in cores.values()}, sorted(by_path)
    return {name: by_path[str(core)] for name, core in cores.items()}


@contextlib.contextmanager
def gdbserver(pid: int):
    """Debian's gdbserver attached to ``pid`` on a free local port: yields
    "127.0.0.1:PORT" once it listens; killed at the end if still there."""
    import shutil
    import socket
    if not shutil.which("gdbserver"):
        import pytest
        pytest.skip("no gdbserver (make setup installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(["gdbserver", "--attach", f"127.0.0.1:{port}", str(pid)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in server.stdout:
            if "Listening on port" in line:
                break
        yield f"127.0.0.1:{port}"
        server.wait(timeout=30)         # gdb detached: gdbserver ends
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()


def libpython_with_dwarf(version: str) -> Path:
    """pyenv's libpython of ``version`` when it carries DWARF (skips otherwise)."""
    import pytest
    python = pyenv_python(version)
    if python is None:
        pytest.skip(f"no pyenv {version}")
    lib = python.parent.parent / "lib" / f"libpython{version}.so.1.0"
    if ".debug_info" not in run(["readelf", "-S", str(lib)]).stdout:
        pytest.skip(f"{lib} has no DWARF")
    return lib
