"""`set gdbext ...` and `show gdbext`: the extension's settings.

Kept apart from the commands so that registering them imports nothing but
the bounds table."""
from __future__ import annotations

import gdb

from ..knowledge.bounds import BOUNDS


class _Prefix(gdb.Command):
    def __init__(self, name, doc):
        self.__doc__ = doc
        super().__init__(name, gdb.COMMAND_DATA, gdb.COMPLETE_NONE, True)


class _ShowAll(_Prefix):
    """`show gdbext`: every setting, like `show print`."""

    def invoke(self, argument, from_tty):
        for name in ("debug", *BOUNDS):
            value = gdb.parameter(f"gdbext {name}")
            shown = {True: "on", False: "off"}.get(value, value)
            gdb.write(f"gdbext {name} is {shown}.\n")


class DebugParameter(gdb.Parameter):
    """Show Python tracebacks when a gdbext command fails internally."""

    set_doc = "Set whether gdbext shows tracebacks of internal errors."
    show_doc = "Show whether gdbext shows tracebacks of internal errors."

    def __init__(self):
        super().__init__("gdbext debug", gdb.COMMAND_DATA, gdb.PARAM_BOOLEAN)
        self.value = False

    def get_show_string(self, svalue):
        return f"gdbext debug is {svalue}."


class BoundParameter(gdb.Parameter):
    """A bound on a walk through the program (knowledge/bounds.py): 1 or more."""

    def __init__(self, bound):
        self.__doc__ = f"The most {bound.what}."
        self.set_doc = f"Set the most {bound.what}."
        self.show_doc = f"Show the most {bound.what}."
        super().__init__(f"gdbext {bound.name}", gdb.COMMAND_DATA, gdb.PARAM_ZUINTEGER)
        self.value = self._accepted = bound.default
        self._name = bound.name

    def get_set_string(self):
        if self.value < 1:              # 0 would mean "walk nothing"
            rejected, self.value = self.value, self._accepted
            raise gdb.GdbError(f"gdbext {self._name} must be 1 or more, not {rejected}")
        self._accepted = self.value
        return ""

    def get_show_string(self, svalue):
        return f"gdbext {self._name} is {svalue}."


def register_settings() -> None:
    _Prefix("set gdbext", "Settings of the gdbext extension.")
    _ShowAll("show gdbext", "Show settings of the gdbext extension.")
    DebugParameter()
    for bound in BOUNDS.values():
        BoundParameter(bound)
