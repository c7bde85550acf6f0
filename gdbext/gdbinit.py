"""gdbext's loader: gdb runs this file with `source /path/to/gdbext/gdbinit.py`.

`gdbext gdbinit` prints that line for wherever the package is installed, and
`gdbext gdbinit --install` puts it in ~/.gdbinit.  Standard library only: gdb
embeds its own Python, which knows nothing of the venv the package lives in.

Two layouts, told apart by what is beside the package:
  installed   .../lib/python3.X/site-packages/gdbext/gdbinit.py: that
              site-packages goes on sys.path (with its .pth files);
  checkout    /repo/gdbext/gdbinit.py beside /repo/pyproject.toml: the repo
              and its venv (/repo/.venv or $GDBEXT_VENV) go on sys.path.
Either way nothing else is added (never the current directory), and when the
site-packages belongs to another Python than gdb's -- another minor version,
or compiled modules gdb's Python cannot load -- the loader says so in one line
and leaves sys.path alone.  Sourcing it twice is harmless.

Importing this module (gdbext.gdbinit) only defines functions: the batch CLI
and the tests use them without gdb.
"""
_gdbext_saved = dict(globals())   # sourced into gdb's __main__: restored at the end

import glob
import importlib.machinery
import os
import re
import site
import sys

# The gdb commands, for the stand-ins that answer when the package cannot load
# (tests/unit/test_gdbinit.py checks this against gdbext.commands).
COMMANDS = ("isa-check", "isa-scan", "deadlock-graph", "spill-audit", "crash-triage",
            "py-stacks")
# Dependencies with compiled modules: their file names carry the ABI they were built for.
COMPILED = ("iced_x86",)


def loader_path() -> str:
    """This file, as `source` should name it."""
    return os.path.realpath(os.path.abspath(__file__))


def gdbinit_line() -> str:
    """The one line for ~/.gdbinit."""
    return f"source {loader_path()}"


class Layout:
    """Where the package is and which site-packages it needs."""

    def __init__(self, root: str, checkout: bool, site_dir: "str | None", venv: "str | None"):
        self.root = root            # the directory that holds the gdbext package
        self.checkout = checkout
        self.site_dir = site_dir    # the dependencies' site-packages (None: none found)
        self.venv = venv            # the venv that owns site_dir, when there is one

    def fix(self, python: str) -> str:
        """How to get a site-packages for gdb's Python (``python``)."""
        if self.checkout:
            import shlex
            return (f"make -C {shlex.quote(self.root)} setup (it builds the venv with gdb's "
                    "Python)")
        return (f"a venv of gdb's Python: {python} -m venv DIR && DIR/bin/pip install "
                f"{self.installed_from()} && DIR/bin/gdbext gdbinit --install")

    def installed_from(self) -> str:
        """The wheel or directory pip installed this package from (its
        direct_url.json), else a placeholder."""
        import json
        import shlex
        import urllib.parse
        if not self.site_dir:
            return "GDBEXT-WHEEL"
        for record in glob.glob(os.path.join(self.site_dir, "gdbext-*.dist-info",
                                             "direct_url.json")):
            try:
                with open(record, encoding="utf-8") as fh:
                    url = json.load(fh).get("url", "")
            except (OSError, ValueError, AttributeError):
                continue
            if url.startswith("file://"):
                return shlex.quote(urllib.parse.unquote(url[len("file://"):]))
        return "GDBEXT-WHEEL"


def find_layout(package_dir: str, environ=os.environ, running=sys.version_info) -> Layout:
    root = os.path.dirname(package_dir)
    if os.path.isfile(os.path.join(root, "pyproject.toml")) and \
            os.path.isfile(os.path.join(root, "gdbinit.py")):
        venv = environ.get("GDBEXT_VENV") or os.path.join(root, ".venv")
        wanted = "python%d.%d" % tuple(running[:2])
        sites = sorted(glob.glob(os.path.join(venv, "lib", "python3*", "site-packages")),
                       key=lambda p: os.path.basename(os.path.dirname(p)) != wanted)
        return Layout(root, True, sites[0] if sites else None, venv)
    venv = os.path.dirname(os.path.dirname(os.path.dirname(root)))
    if not os.path.isfile(os.path.join(venv, "pyvenv.cfg")):
        venv = None
    return Layout(root, False, root, venv)


def installed_for(layout: Layout) -> "str | None":
    """The version of the Python that owns the site-packages: the venv's
    pyvenv.cfg, else the pythonX.Y in its path; None when neither says."""
    if layout.site_dir is None:
        return None
    m = re.search(r"/lib/python(\d+\.\d+)/(?:site|dist)-packages/*$", layout.site_dir)
    minor = m.group(1) if m else None
    if layout.venv:
        try:
            with open(os.path.join(layout.venv, "pyvenv.cfg"), encoding="utf-8") as fh:
                text = fh.read()
        except OSError:
            text = ""
        v = re.search(r"^\s*version(?:_info)?\s*=\s*(\d+\.\d+(?:\.\d+)?)", text, re.M)
        if v and (minor is None or v.group(1) == minor or v.group(1).startswith(minor + ".")):
            return v.group(1)
    return minor


def unloadable_modules(layout: Layout, suffixes=None) -> "list[str]":
    """Compiled modules of the dependencies that gdb's Python cannot load: the
    ABI tag in their file name (cpython-312-x86_64-linux-gnu, abi3) is none of
    its extension suffixes.  An untagged .so says nothing, and passes."""
    if layout.site_dir is None:
        return []
    suffixes = suffixes if suffixes is not None else importlib.machinery.EXTENSION_SUFFIXES
    bad = []
    for name in COMPILED:
        for path in sorted(glob.glob(os.path.join(layout.site_dir, name, "*.so"))):
            tag = re.search(r"(\.(?:cpython-|pypy|abi)[^.]*\.so)$", path)
            if tag and tag.group(1) not in suffixes:
                bad.append(os.path.basename(path))
    return bad


def gdb_python() -> str:
    """gdb's own interpreter as a command: /usr/bin/python3.X when it exists."""
    name = "python%d.%d" % sys.version_info[:2]
    for prefix in (sys.base_exec_prefix, sys.exec_prefix, "/usr"):
        path = os.path.join(prefix, "bin", name)
        if os.path.isfile(path):
            return path
    return name


def mismatch(layout: Layout, running=sys.version_info, suffixes=None,
             python: "str | None" = None) -> "str | None":
    """One line when the site-packages is for another Python than gdb's, else None."""
    running_text = "%d.%d.%d" % tuple(running[:3])
    theirs = installed_for(layout)
    where = layout.venv or layout.site_dir
    python = python or gdb_python()
    if theirs is not None and tuple(int(x) for x in theirs.split(".")[:2]) != tuple(running[:2]):
        return (f"gdbext: not loaded: {where} is for Python {theirs}, but gdb embeds Python "
                f"{running_text}; fix: {layout.fix(python)}")
    bad = unloadable_modules(layout, suffixes)
    if bad:
        return (f"gdbext: not loaded: {where} holds {', '.join(bad)}, built for another Python "
                f"than gdb's {running_text}; fix: {layout.fix(python)}")
    return None


def missing_fix(package_dir: str, missing: "list[str]") -> str:
    """How to install dependencies that gdb's Python cannot find."""
    layout = find_layout(package_dir)
    if layout.checkout:
        import shlex
        return f"make -C {shlex.quote(layout.root)} setup"
    pip = (os.path.join(layout.venv, "bin", "python") if layout.venv else gdb_python())
    return f"{pip} -m pip install {' '.join(missing)}"


def _put_on_sys_path(layout: Layout) -> None:
    """The package's root and site-packages first, in that order; nothing else."""
    front = []
    if layout.site_dir and layout.checkout:
        # The root comes first anyway, so the venv's .pth files are not run:
        # pip's editable-install finder among them costs ~10 ms and would
        # outrank the root on sys.meta_path.
        front = [layout.site_dir]
    elif layout.site_dir:
        before = list(sys.path)
        site.addsitedir(layout.site_dir)    # runs .pth files (editable installs)
        front = [p for p in sys.path if p not in before]
        if layout.site_dir in before:
            front.insert(0, layout.site_dir)
    if layout.root in front:
        front.remove(layout.root)
    front.insert(0, layout.root)
    sys.path[:] = front + [p for p in sys.path if p not in front]


def _stand_ins(message: str) -> None:
    """Commands that answer with ``message``, so `isa-check` says why it is not there."""
    import gdb
    if "gdbext.commands" in sys.modules:     # a loader that worked came first: keep it
        return
    for name in COMMANDS:
        cls = type("Unloaded", (gdb.Command,), {
            "__doc__": f"{name}: not available.\n{message}",
            "invoke": lambda self, arg, from_tty, _n=name: _refuse(_n, message)})
        cls(name, gdb.COMMAND_USER)


def _refuse(name: str, message: str):
    import gdb
    raise gdb.GdbError(f"{name}: {message[len('gdbext: '):]}")


def main(path: str) -> None:
    import gdb
    layout = find_layout(os.path.dirname(os.path.realpath(os.path.expanduser(path))))
    problem = mismatch(layout)
    if problem:
        gdb.write(problem + "\n", gdb.STDERR)
        _stand_ins(problem)
        return
    _put_on_sys_path(layout)
    try:
        import gdbext.commands
        gdbext.commands.register()
    except Exception as exc:   # one line, never a traceback at gdb's startup
        gdb.write(f"gdbext: not loaded: {type(exc).__name__}: {exc}\n", gdb.STDERR)


if __name__ == "__main__":
    def _gdbext_load():
        try:
            path = __file__
        except NameError:  # `python exec(open(...).read())`: where it is cannot be told
            import gdb
            gdb.write("gdbext: load it with `source /path/to/gdbext/gdbinit.py` (`gdbext "
                      "gdbinit` prints that line; the current directory is never trusted)\n",
                      gdb.STDERR)
            return
        # Run as a module of its own, so gdb's __main__ keeps only what it had.
        import importlib.util
        spec = importlib.util.spec_from_file_location("_gdbext_loader", path)
        loader = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loader)
        loader.main(path)

    def _gdbext_restore(names, saved):
        for name in [n for n in names if n not in saved]:
            del names[name]
        names.update(saved)

    try:
        _gdbext_load()
    finally:
        _gdbext_restore(globals(), _gdbext_saved)
