"""gdb commands: thin layers of argparse -> target -> analysis -> render.

Registering a command imports nothing of it: gdb holds a stand-in with the
command's help (help.py), and the command's module is imported the first
time it is run or completed.  So `source gdbinit.py` costs the settings and
this table; a gdb that runs only crash-triage never imports py-stacks.
``register()`` is idempotent, so sourcing gdbinit.py twice is harmless.
"""
from __future__ import annotations

import gc
import importlib

# gdb command -> (module of this package, its GdbextCommand class)
COMMANDS = {
    "isa-check": ("isa_check", "IsaCheckCommand"),
    "isa-scan": ("isa_scan", "IsaScanCommand"),
    "deadlock-graph": ("deadlock_graph", "DeadlockGraphCommand"),
    "spill-audit": ("spill_audit", "SpillAuditCommand"),
    "crash-triage": ("crash_triage", "CrashTriageCommand"),
    "py-stacks": ("py_stacks", "PyStacksCommand"),
}

_registered = False


def command(name: str):
    """The command's implementation (a base.GdbextCommand), imported on first use."""
    module, cls = COMMANDS[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)()


def _missing(name: str, exc: ImportError) -> str:
    from .. import gdbinit
    from .base import DEPENDENCIES, PACKAGE_DIR
    top = (exc.name or "").split(".")[0]
    if not top:
        return f"{name}: not available: {exc}"
    package = DEPENDENCIES.get(top, top)
    return (f"{name}: missing Python package(s) {package} for gdb's Python; fix: "
            f"{gdbinit.missing_fix(PACKAGE_DIR, [package])}")


def register() -> None:
    global _registered
    if _registered:
        return
    import gdb

    from . import settings
    from .help import HELP

    class Deferred(gdb.Command):
        def __init__(self, name):
            self.__doc__ = HELP[name]
            self._name, self._real = name, None
            super().__init__(name, gdb.COMMAND_USER)

        def _command(self):
            if self._real is None:
                self._real = command(self._name)
            return self._real

        def invoke(self, argument, from_tty):
            self.dont_repeat()
            # No cyclic GC while a command runs: it makes few cycles, and the
            # collections its imports and reads trigger (about 20 in a
            # crash-triage) each walk gdb's whole Python heap.  Restored after.
            collecting = gc.isenabled()
            gc.disable()
            try:
                try:
                    real = self._command()
                except ImportError as exc:   # a dependency gdb's Python cannot find: one line
                    raise gdb.GdbError(_missing(self._name, exc)) from None
                real.invoke(argument, from_tty)
            finally:
                if collecting:
                    gc.enable()

        def complete(self, text, word):
            try:
                return self._command().complete(text, word)
            except ImportError:
                return gdb.COMPLETE_NONE

    settings.register_settings()
    for name in COMMANDS:
        Deferred(name)
    _registered = True
