"""Installed as a Python user installs it: a wheel built from these sources, in
a fresh venv made with gdb's own Python, used from another directory with the
checkout nowhere on sys.path.  gdb loads the commands from site-packages, the
batch CLI finds the loader there, `gdbext gdbinit --install` is idempotent,
and a site-packages of another Python gets one line naming both versions."""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.gdb_session import assert_no_traceback
from tests.host import FIXTURES, GDB, REPO, kernel_core, parse_announcement

pytestmark = pytest.mark.xdist_group("install")     # one worker builds the wheel and venv
PROBE = "python import sys; print('python=%d.%d.%d' % sys.version_info[:3])"


def clean_env(home: Path) -> dict:
    """No way back to the checkout: no PYTHONPATH, no venv variables, a scratch HOME."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "GDBEXT_VENV", "VIRTUAL_ENV")}
    env.update(HOME=str(home), LC_ALL="C.UTF-8")
    return env


def sh(argv, cwd, env, timeout=600, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check:
        assert proc.returncode == 0, f"{argv}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def python_version(python: str) -> str | None:
    try:
        out = subprocess.run([python, "-c", "import sys, venv, ensurepip; "
                              "print('%d.%d.%d' % sys.version_info[:3])"],
                             capture_output=True, text=True, timeout=60).stdout.strip()
    except OSError:
        return None
    return out if re.fullmatch(r"\d+\.\d+\.\d+", out) else None


@pytest.fixture(scope="session")
def gdb_python() -> str:
    """gdb's embedded Python version, from gdb itself."""
    out = subprocess.run([GDB, "-nx", "-nh", "-batch", "-ex", PROBE], capture_output=True,
                         text=True, check=True).stdout
    return re.search(r"^python=(\S+)$", out, re.M).group(1)


def minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the sources (a build leaves build/ and *.egg-info
    behind, and build/ is the fixtures')."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "gdbext", src / "gdbext",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path_factory.mktemp("dist")
    # As the README says: pip builds it in an isolated environment with setuptools.
    sh([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, src], cwd=dist,
       env=clean_env(dist))
    wheels = list(dist.glob("gdbext-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def make_venv(python: str, where: Path, wheel: Path, *pip_args: str) -> Path:
    sh([python, "-m", "venv", where], cwd=where.parent, env=clean_env(where.parent))
    sh([where / "bin" / "python", "-m", "pip", "install", "-q", *pip_args, wheel],
       cwd=where.parent, env=clean_env(where.parent))
    return where


@pytest.fixture(scope="session")
def fresh_venv(tmp_path_factory, wheel, gdb_python) -> Path:
    """A venv made with gdb's Python (as scripts/make-venv finds it) holding only the wheel
    and its dependencies."""
    name = f"python{minor(gdb_python)}"
    python = f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else shutil.which(name)
    if python is None or python_version(python) is None:
        pytest.skip(f"no {name} with venv here to build a venv for gdb's Python")
    return make_venv(python, tmp_path_factory.mktemp("fresh") / "venv", wheel)


@pytest.fixture(scope="session")
def trap_core(tmp_path_factory):
    """A kernel core of isa_crash's ud2: (core, what the fixture printed, signal)."""
    return kernel_core([str(FIXTURES / "isa_crash"), "trap"], tmp_path_factory.mktemp("core"))


def site_packages(venv: Path) -> Path:
    found = glob.glob(str(venv / "lib" / "python3*" / "site-packages"))
    assert len(found) == 1, found
    return Path(found[0])


def gdbinit_line(venv: Path, cwd: Path) -> str:
    out = sh([venv / "bin" / "gdbext", "gdbinit"], cwd=cwd, env=clean_env(cwd)).stdout
    lines = out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("source "), out
    return lines[0]


def gdb_batch(*args, cwd: Path, init_files=False) -> subprocess.CompletedProcess:
    skip_init = [] if init_files else ["-nx", "-nh"]
    return sh([GDB, *skip_init, "-batch", "-iex", "set debuginfod enabled off", *args],
              cwd=cwd, env=clean_env(cwd), check=False, timeout=300)


def test_the_wheel_carries_the_loader_and_no_checkout_files(wheel):
    import zipfile
    names = zipfile.ZipFile(wheel).namelist()
    assert "gdbext/gdbinit.py" in names and "gdbext/commands/isa_check.py" in names
    assert not [n for n in names if n.startswith(("tests/", "fixtures/", "bench/"))]
    ours = sorted(str(p.relative_to(REPO)) for p in (REPO / "gdbext").rglob("*.py"))
    assert sorted(n for n in names if n.startswith("gdbext/")) == ours


def test_gdb_loads_the_commands_from_the_installed_package(fresh_venv, trap_core, tmp_path):
    core, printed, _ = trap_core
    line = gdbinit_line(fresh_venv, tmp_path)
    loader = Path(line.split(None, 1)[1])
    assert loader == site_packages(fresh_venv) / "gdbext" / "gdbinit.py"
    proc = gdb_batch("-ex", line, "-ex", "help isa-check",
                     "-ex", "python import gdbext, sys, json; "
                            "print('where=' + json.dumps([gdbext.__file__, sys.path]))",
                     "-ex", "isa-check --json", str(FIXTURES / "isa_crash"), str(core),
                     cwd=tmp_path)
    assert_no_traceback(proc.stdout + proc.stderr)
    assert "Usage: isa-check [--json] [--cpu NAME] [ADDRESS]" in proc.stdout
    where, path = json.loads(re.search(r"^where=(.*)$", proc.stdout, re.M).group(1))
    assert where == str(site_packages(fresh_venv) / "gdbext" / "__init__.py")
    assert not [p for p in path if p in ("", ".") or p.startswith(str(REPO))], path
    report = json.loads(next(l for l in proc.stdout.splitlines() if l.startswith("{")))
    assert report["address"] == int(parse_announcement(printed)["fault"], 16)
    assert report["mnemonic"] == "ud2"       # what isa_crash's trap mode executes


def test_gdbext_triage_works_from_another_directory(fresh_venv, trap_core, tmp_path):
    core, printed, signo = trap_core
    proc = sh([fresh_venv / "bin" / "gdbext", "triage", "--no-summary", "--jobs", "1", core],
              cwd=tmp_path, env=clean_env(tmp_path))
    assert_no_traceback(proc.stderr)
    [record] = [json.loads(l) for l in proc.stdout.splitlines() if l.strip()]
    assert record["status"] == "ok", record
    stop = record["triage"]["stop"]
    assert stop["signo"] == signo and stop["signal"] == "SIGILL"
    assert stop["addr"] == int(parse_announcement(printed)["fault"], 16)
    assert record["triage"]["thread"]["lwp"] == int(parse_announcement(printed)["pid"])


def test_gdbinit_install_twice_leaves_one_line_and_gdb_reads_it(fresh_venv, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gdbinit").write_text("set history save off")      # no final newline
    cli = fresh_venv / "bin" / "gdbext"
    first = sh([cli, "gdbinit", "--install"], cwd=tmp_path, env=clean_env(home))
    second = sh([cli, "gdbinit", "--install"], cwd=tmp_path, env=clean_env(home))
    line = gdbinit_line(fresh_venv, tmp_path)
    assert "added to" in first.stdout and "already has" in second.stdout
    assert (home / ".gdbinit").read_text().splitlines() == ["set history save off", line]
    proc = sh([GDB, "-batch", "-ex", "help isa-check"], cwd=tmp_path, env=clean_env(home))
    assert "Usage: isa-check" in proc.stdout, proc.stdout + proc.stderr


def test_install_refuses_a_second_gdbext_loader(fresh_venv, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    other = "source /somewhere/else/gdbext/gdbinit.py\n"
    (home / ".gdbinit").write_text(other)
    proc = sh([fresh_venv / "bin" / "gdbext", "gdbinit", "--install"], cwd=tmp_path,
              env=clean_env(home), check=False)
    assert proc.returncode == 2 and "already loads another gdbext" in proc.stderr, proc
    assert (home / ".gdbinit").read_text() == other


def _one_mismatch_line(stderr: str, theirs: str, ours: str) -> str:
    lines = [l for l in stderr.splitlines() if l.startswith("gdbext:")]
    assert len(lines) == 1, stderr
    line = lines[0]
    assert f"Python {theirs}" in line and f"Python {ours}" in line and "fix:" in line, line
    return line


def _other_python(gdb_python: str) -> tuple[str, str] | None:
    """An interpreter of another minor version (>= 3.9, what the wheel requires), and its
    version: pythonX.Y on PATH, Debian's, or pyenv's."""
    names = [shutil.which(f"python3.{x}") for x in range(9, 15)]
    names += sorted(glob.glob("/usr/bin/python3.*")) + sorted(
        glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3")))
    for python in filter(None, names):
        if not re.search(r"python3(\.\d+)?$", python):
            continue
        version = python_version(python)
        if version and minor(version) != minor(gdb_python) and \
                tuple(map(int, version.split(".")[:2])) >= (3, 9):
            return python, version
    return None


def test_another_minor_version_gets_one_line_naming_both(wheel, gdb_python, trap_core,
                                                         tmp_path):
    found = _other_python(gdb_python)
    if found is None:
        pytest.skip(f"no Python but {minor(gdb_python)} on this machine")
    python, version = found
    venv = make_venv(python, tmp_path / "other", wheel)
    assert site_packages(venv).parent.name == f"python{minor(version)}"
    line = gdbinit_line(venv, tmp_path)
    before = gdb_batch("-ex", "python import sys; print(sys.path)", cwd=tmp_path).stdout
    proc = gdb_batch("-ex", line, "-ex", "isa-check", "-ex", "python import sys; print(sys.path)",
                     "-ex", "print 6*7", str(FIXTURES / "isa_crash"), str(trap_core[0]),
                     cwd=tmp_path)
    assert_no_traceback(proc.stdout + proc.stderr)
    message = _one_mismatch_line(proc.stderr, version, gdb_python)
    assert str(venv) in message and f"pip install {wheel} " in message   # what pip recorded
    assert f"isa-check: {message[len('gdbext: '):]}" in proc.stderr   # the command says why
    assert before.strip() in proc.stdout                               # sys.path untouched
    assert "$1 = 42" in proc.stdout
    # The batch CLI (which runs on that Python) gets gdb's answer in each record.
    triage = sh([venv / "bin" / "gdbext", "triage", "--no-summary", trap_core[0]], cwd=tmp_path,
                env=clean_env(tmp_path), check=False)
    assert triage.returncode == 1, triage
    [record] = [json.loads(l) for l in triage.stdout.splitlines() if l.strip()]
    assert record["status"] == "error"
    assert record["error"] == f"crash-triage: {message[len('gdbext: '):]}"
    # `gdbext gdbinit --install` from that venv refuses before writing.
    home = tmp_path / "home"
    home.mkdir()
    refused = sh([venv / "bin" / "gdbext", "gdbinit", "--install"], cwd=tmp_path,
                 env=clean_env(home), check=False)
    assert refused.returncode == 2, refused
    assert f"Python {version}" in refused.stderr and f"Python {gdb_python}" in refused.stderr
    assert not (home / ".gdbinit").exists()


def test_a_compiled_module_for_another_abi_gets_one_line(fresh_venv, gdb_python, tmp_path):
    """iced-x86 ships one abi3 module, loadable by every CPython 3: a site-packages
    where it carries another interpreter's tag (as a cp312-only wheel would) stands
    for a dependency built for another ABI."""
    sp = tmp_path / "venv" / "lib" / f"python{minor(gdb_python)}" / "site-packages"
    shutil.copytree(site_packages(fresh_venv) / "gdbext", sp / "gdbext")
    shutil.copytree(site_packages(fresh_venv) / "iced_x86", sp / "iced_x86")
    [compiled] = (sp / "iced_x86").glob("*.so")
    other = "313" if minor(gdb_python) == "3.12" else "312"
    foreign = compiled.with_name(f"{compiled.name.split('.')[0]}.cpython-{other}-x86_64-linux-gnu.so")
    compiled.rename(foreign)
    proc = gdb_batch("-ex", f"source {sp / 'gdbext' / 'gdbinit.py'}", "-ex", "isa-scan",
                     cwd=tmp_path)
    assert_no_traceback(proc.stdout + proc.stderr)
    lines = [l for l in proc.stderr.splitlines() if l.startswith("gdbext:")]
    assert len(lines) == 1 and foreign.name in lines[0] and gdb_python in lines[0], proc.stderr
    assert "isa-scan: not loaded" in proc.stderr
