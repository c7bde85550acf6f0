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

# What the last command found, for `gdbext COMMAND` (cli/gdb_command.py reads
# it after the command): its name, verdict and, for crash-triage, the stop's
# origin.  None while a command runs and after one that failed.
last_outcome: dict | None = None

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Import name -> the distribution that provides it.
DEPENDENCIES = {"iced_x86": "iced-x86", "tabulate": "tabulate", "elftools": "pyelftools",
                "archspec": "archspec"}


def missing_dependencies(modules) -> list[str]:
    return [DEPENDENCIES.get(m, m) for m in modules if importlib.util.find_spec(m) is None]


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


def outcome(name: str, result) -> dict:
    """What a script acts on: the report's verdict (py-stacks has none) and,
    for crash-triage, who stopped the process (a crash or a hang)."""
    stop = getattr(result, "stop", None)
    return {"command": name, "verdict": getattr(result, "verdict", None),
            "origin": getattr(stop, "origin", None)}


class GdbextCommand:
    """Base class.  Subclasses set NAME, PARSER, NEEDS and implement run(args).

    Not a gdb.Command: gdb holds the light stand-in of commands/__init__.py,
    which imports the module and hands invoke() and complete() to this."""

    NAME = ""
    PARSER: argparse.ArgumentParser
    NEEDS: tuple[str, ...] = ()

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
        global last_outcome
        last_outcome = None
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
                last_outcome = outcome(self.NAME, result)
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
