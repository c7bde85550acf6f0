# gdbext loader: `source /path/to/gdbinit.py` in gdb.
#
# Standard library only.  It puts this repository's venv (.venv beside this
# file, or $GDBEXT_VENV) ahead of the system dist-packages, puts the
# repository root on sys.path (never the current directory), and registers
# the commands.  Sourcing it twice is harmless.
import glob
import os
import site
import sys


def _gdbext_setup_paths():
    here = os.path.dirname(os.path.realpath(os.path.expanduser(__file__)))
    venv = os.environ.get("GDBEXT_VENV") or os.path.join(here, ".venv")
    wanted = "python%d.%d" % sys.version_info[:2]
    candidates = sorted(glob.glob(os.path.join(venv, "lib", "python3*", "site-packages")),
                        key=lambda p: os.path.basename(os.path.dirname(p)) != wanted)
    front = []
    if candidates:
        before = list(sys.path)
        site.addsitedir(candidates[0])        # runs .pth files (editable installs)
        front = [p for p in sys.path if p not in before]
    if here not in front:
        front.insert(0, here)
    rest = [p for p in sys.path if p not in front]
    sys.path[:] = front + rest


try:
    __file__
except NameError:  # `python exec(open(...).read())`: guessing the cwd would import from it
    __file__ = None

if __file__ is None:
    import gdb
    gdb.write("gdbext: load it with `source /path/to/gdbinit.py` (where it is cannot be "
              "told otherwise, and the current directory is never trusted)\n", gdb.STDERR)
else:
    _gdbext_setup_paths()

    import gdbext.commands  # noqa: E402

    gdbext.commands.register()
