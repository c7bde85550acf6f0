"""What every gdbext command shares: option parsing, completion, errors, JSON,
dependency checks and restoring the user's selection."""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import traceback

import gdb

from .. import gdbinit, target
from ..errors import GdbextError

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Import name -> the distribution that provides it.
DEPENDENCIES = {"iced_x86": "iced-x86", "tabulate": "tabulate", "elftools": "pyelftools",
                "archspec": "archspec"}


def missing_dependencies(modules) -> list[str]:
    return [DEPENDENCIES.get(m, m) for m in modules if importlib.util.find_spec(m) is None]


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as GdbextError instead of exiting gdb."""

    def error(self, message):
        raise GdbextError(f"{self.prog}: {message} (see 'help {self.prog}')")

    def exit(self, status=0, message=None):
        raise GdbextError(message.strip() if message else f"{self.prog}: exited")


def frame_count(text: str) -> int:
    """argparse type of --max-frames: a bound on frames followed."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def max_frames(args) -> int:
    """--max-frames for this run, else ``set gdbext max-frames``."""
    return getattr(args, "max_frames", None) or target.bound("max-frames")


def threads_and_registers(hint: str) -> str:
    """The target's kind when it has threads and registers (a process or a
    core of x86-64), else a one-line error ending with ``hint``."""
    kind = target.kind()
    if kind != "none":                  # a file of another machine: say that, not "no process"
        target.require_x86_64()
    if kind not in ("live", "core", "remote"):
        raise GdbextError(f"no process or core: {hint}")
    return kind


def parser(prog: str) -> argparse.ArgumentParser:
    p = _Parser(prog=prog, add_help=False, allow_abbrev=False)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def split_options(argument: str, parser: argparse.ArgumentParser) -> list[str]:
    """Leading options as argv, then the rest of the line verbatim as one
    argument: a gdb expression keeps its quotes and spaces ('file.c'::func)."""
    takes_value = {o for a in parser._actions if a.nargs != 0 for o in a.option_strings}
    argv, rest = [], argument.strip()
    while rest.startswith("-") and not re.match(r"-[\d(]", rest):
        token, rest = _next_token(rest)
        if token == "--":
            break
        argv.append(token)
        if token in takes_value and rest:
            value, rest = _next_token(rest)
            argv.append(value)
    return argv + ([rest] if rest else [])


def _next_token(text: str) -> tuple[str, str]:
    m = re.match(r"(\S+)\s*", text)
    return m.group(1), text[m.end():]


class GdbextCommand(gdb.Command):
    """Base class.  Subclasses set NAME, PARSER, NEEDS and implement run(args)."""

    NAME = ""
    PARSER: argparse.ArgumentParser
    NEEDS: tuple[str, ...] = ()

    def __init__(self):
        super().__init__(self.NAME, gdb.COMMAND_USER)

    # gdb does not filter complete() results, and '-' breaks words, so `word`
    # may be only the tail of the option being typed: match on the whole token
    # and return what replaces `word`.
    def complete(self, text, word):
        word = word or ""
        token = "" if not text or text[-1].isspace() else text.split()[-1]
        if token.startswith("-"):
            head = token[:len(token) - len(word)]
            options = [o for a in self.PARSER._actions for o in a.option_strings]
            return sorted(o[len(head):] for o in options if o.startswith(token))
        return gdb.COMPLETE_EXPRESSION

    def invoke(self, argument, from_tty):
        self.dont_repeat()
        try:
            args = self.PARSER.parse_args(split_options(argument, self.PARSER))
            missing = missing_dependencies(self.NEEDS)
            if missing:
                raise GdbextError(
                    f"{self.NAME}: missing Python package(s) {', '.join(missing)} for gdb's "
                    f"Python; fix: {gdbinit.missing_fix(PACKAGE_DIR, missing)}")
            with target.preserved_selection():
                result = self.run(args)
            if result is not None and hasattr(result, "warnings"):
                result.warnings.extend(target.core_warnings())
            if result is not None:
                if getattr(args, "json", False):
                    gdb.write(json.dumps(result.to_json(), sort_keys=False) + "\n")
                else:
                    gdb.write(result.to_text() + "\n")
        except GdbextError as exc:
            message = str(exc)
            if not message.startswith(self.NAME + ":"):
                message = f"{self.NAME}: {message}"
            raise gdb.GdbError(message) from None
        except gdb.GdbError:
            raise
        except Exception as exc:  # an internal failure is one line, never a traceback
            if target.is_debug_enabled():
                gdb.write(traceback.format_exc())
            raise gdb.GdbError(f"{self.NAME}: internal error: {type(exc).__name__}: {exc} "
                               "(set gdbext debug on for the traceback)") from None

    def run(self, args):
        raise NotImplementedError


class _Prefix(gdb.Command):
    def __init__(self, name, doc):
        self.__doc__ = doc
        super().__init__(name, gdb.COMMAND_DATA, gdb.COMPLETE_NONE, True)


class _ShowAll(_Prefix):
    """`show gdbext`: every setting, like `show print`."""

    def invoke(self, argument, from_tty):
        from ..knowledge.bounds import BOUNDS
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
    from ..knowledge.bounds import BOUNDS
    _Prefix("set gdbext", "Settings of the gdbext extension.")
    _ShowAll("show gdbext", "Show settings of the gdbext extension.")
    DebugParameter()
    for bound in BOUNDS.values():
        BoundParameter(bound)
