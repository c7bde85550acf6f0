"""`gdbext gdbinit [--install]`: the line that loads the commands into gdb.

The line sources the loader inside this installed package; gdb's own Python
runs it, so the check that gdb's Python is the one this package was installed
for happens here too, before anything is written."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from .. import gdbinit as loader
from . import EXIT_OK, EXIT_USAGE

SOURCE_LINE = re.compile(r"^\s*source\s+(.*?)\s*$")


ASK_PYTHON = ("python import sys, os; print('python=%d.%d.%d' % sys.version_info[:3]); "
              "print('stdlib=' + os.path.dirname(os.__file__))")


def ask_gdb(gdb: str) -> str:
    """What ``gdb --version`` and its Python say of themselves; "" when it cannot run."""
    try:
        return subprocess.run([gdb, "-nx", "-nh", "-batch", "-ex", "show version",
                               "-ex", ASK_PYTHON], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def gdb_python(gdb: str, said: str | None = None) -> tuple[int, int, int] | None:
    """The version of the Python ``gdb`` embeds; None when it cannot be asked."""
    m = re.search(r"^python=(\d+)\.(\d+)\.(\d+)$", ask_gdb(gdb) if said is None else said,
                  re.M)
    return tuple(int(x) for x in m.groups()) if m else None


def interpreter_problem(gdb: str, said: str | None = None) -> str | None:
    """One line when ``gdb`` would refuse this package (another minor version)."""
    theirs = gdb_python(gdb, said)
    ours = "%d.%d.%d" % sys.version_info[:3]
    if theirs is None:
        return (f"cannot ask {gdb} which Python it embeds (not found, or built without "
                f"Python); this gdbext is installed for Python {ours}")
    if theirs[:2] != sys.version_info[:2]:
        layout = loader.find_layout(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        python = f"/usr/bin/python{theirs[0]}.{theirs[1]}"
        if not os.path.isfile(python):
            python = f"python{theirs[0]}.{theirs[1]}"
        return (f"this gdbext is installed for Python {ours}, but {gdb} embeds Python "
                f"{'%d.%d.%d' % theirs}: gdb would not load it; fix: {layout.fix(python)}")
    return None


def loads_gdbext(line: str) -> str | None:
    """The file a ~/.gdbinit line sources when it is a gdbext loader."""
    m = SOURCE_LINE.match(line)
    if not m:
        return None
    path = os.path.expanduser(m.group(1))
    if path.endswith(os.path.join("gdbext", "gdbinit.py")):
        return path
    if os.path.basename(path) == "gdbinit.py":       # a checkout's shim, wherever it is
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                head = fh.read(200)
        except OSError:
            return None
        return path if "gdbext" in head else None
    return None


def install(init_file: Path, line: str) -> tuple[bool, str]:
    """Append ``line`` to ``init_file`` unless a gdbext loader is there already;
    (all is well, what was done)."""
    try:
        text = init_file.read_text(encoding="utf-8") if init_file.exists() else ""
    except OSError as exc:
        return False, f"cannot read {init_file}: {exc.strerror}"
    want = line.split(None, 1)[1]
    for existing in text.splitlines():
        path = loads_gdbext(existing)
        if path is None:
            continue
        if os.path.realpath(path) == os.path.realpath(want):
            return True, f"{init_file} already has: {line}"
        return False, (f"{init_file} already loads another gdbext: {existing.strip()}; "
                       f"replace that line with: {line}")
    try:
        with open(init_file, "a", encoding="utf-8") as fh:
            if text and not text.endswith("\n"):
                fh.write("\n")
            fh.write(line + "\n")
    except OSError as exc:
        return False, f"cannot write {init_file}: {exc.strerror}"
    return True, f"added to {init_file}: {line}"


def run(args) -> int:
    line = loader.gdbinit_line()
    problem = None if args.no_check else interpreter_problem(args.gdb)
    if not args.install:
        print(line)
        if problem:
            print(f"gdbext gdbinit: warning: {problem}", file=sys.stderr)
        return EXIT_OK
    if problem:
        print(f"gdbext gdbinit: {problem}; nothing written", file=sys.stderr)
        return EXIT_USAGE
    ok, what = install(Path(args.file).expanduser(), line)
    print(f"gdbext gdbinit: {what}", file=sys.stdout if ok else sys.stderr)
    return EXIT_OK if ok else EXIT_USAGE


def version(args) -> int:
    """`gdbext --version`: this gdbext, the gdb it runs ($GDB or gdb) and the
    Python that gdb embeds, which is the one gdbext's analysis runs in."""
    import shutil
    from .. import __version__
    gdb = os.environ.get("GDB", "gdb")
    print(f"gdbext {__version__} ({os.path.dirname(loader.loader_path())})")
    print(f"shell CLI: Python {sys.version.split()[0]} ({sys.executable})")
    said = ask_gdb(gdb)
    first = next((l for l in said.splitlines() if l.startswith("GNU gdb")), None)
    if first is None:
        print(f"gdbext: {gdb} does not run (install gdb, or set GDB=PATH)", file=sys.stderr)
        return EXIT_USAGE
    print(f"gdb: {first} ({shutil.which(gdb) or gdb})")
    python = gdb_python(gdb, said)
    stdlib = re.search(r"^stdlib=(.*)$", said, re.M)
    if python is None:
        print("gdb's Python: none (gdb is built without Python: gdbext cannot run in it)")
        return EXIT_USAGE
    print(f"gdb's Python: {'%d.%d.%d' % python} ({stdlib.group(1) if stdlib else '?'}): the "
          "analysis runs in it")
    problem = interpreter_problem(gdb, said)
    if problem:
        print(f"gdbext: warning: {problem}", file=sys.stderr)
    return EXIT_OK
