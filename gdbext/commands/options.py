"""Each command's options, defined once: gdb's commands parse their line
with these parsers, and `gdbext COMMAND` (cli/command.py) builds its shell
options from the same ones.  No gdb import: the shell CLI imports this."""
from __future__ import annotations

import argparse

from ..errors import GdbextError


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


def _formatter(prog: str) -> argparse.HelpFormatter:
    # A fixed width: argparse would import shutil (with bz2, lzma) for the
    # terminal's, and gdb's `help` shows the command's own text anyway.
    return argparse.HelpFormatter(prog, width=80)


def parser(prog: str) -> argparse.ArgumentParser:
    p = _Parser(prog=prog, add_help=False, allow_abbrev=False, formatter_class=_formatter)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def _max_frames(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--max-frames", type=frame_count, metavar="N",
                   help=f"{what} (default: set gdbext max-frames, 64)")


def _cpu(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cpu", metavar="NAME",
                   help="check against a named microarchitecture or level (archspec)")


def _address(p: argparse.ArgumentParser, what: str) -> argparse.ArgumentParser:
    p.add_argument("address", nargs="*", metavar="ADDRESS", help=what)
    return p


def isa_check() -> argparse.ArgumentParser:
    p = parser("isa-check")
    _cpu(p)
    _max_frames(p, "frames shown of the stopped thread")
    return _address(p, "any gdb expression; default: the selected frame's pc")


def isa_scan() -> argparse.ArgumentParser:
    p = parser("isa-scan")
    _cpu(p)
    p.add_argument("--limit", type=int, default=30, metavar="N",
                   help="functions listed per object in text output (default 30)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="processes decoding in parallel (default: one per usable core "
                        "for objects over 4 MB of code)")
    p.add_argument("--level", action="store_true",
                   help="the lowest x86-64 level (v1-v4) and the named CPUs that run "
                        "every function, with the functions that set it")
    p.add_argument("object", nargs="*", metavar="OBJFILE|all",
                   help="a file, a loaded object's name, or all; default: the program")
    return p


def deadlock_graph() -> argparse.ArgumentParser:
    p = parser("deadlock-graph")
    p.add_argument("--dot", metavar="FILE", help="also write a Graphviz graph to FILE")
    _max_frames(p, "frames read per thread")
    return p


def spill_audit() -> argparse.ArgumentParser:
    p = parser("spill-audit")
    _max_frames(p, "frames followed for the CFA chain")
    return _address(p, "another instruction of the same frame (any gdb expression)")


def crash_triage() -> argparse.ArgumentParser:
    p = parser("crash-triage")
    _max_frames(p, "frames followed per thread")
    p.add_argument("--no-metadata", action="store_true",
                   help="leave out the process facts (command, uid, modules, build-ids)")
    return p


def py_stacks() -> argparse.ArgumentParser:
    p = parser("py-stacks")
    p.add_argument("--native", action="store_true",
                   help="interleave the native frames (and scan past unwinding failures)")
    p.add_argument("--locks", action="store_true",
                   help="also the threading locks threads wait for and hold")
    _max_frames(p, "frames read per thread")
    p.add_argument("threads", nargs="*", metavar="THREAD",
                   help="gdb thread numbers (default: all)")
    return p


# gdb command -> the function that builds its parser
PARSERS = {"isa-check": isa_check, "isa-scan": isa_scan, "deadlock-graph": deadlock_graph,
           "spill-audit": spill_audit, "crash-triage": crash_triage, "py-stacks": py_stacks}
