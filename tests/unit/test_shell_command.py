"""`gdbext COMMAND`'s pure parts: the gdb command line built from the shell
options (checked with the gdb command's own parser), the report between the
markers, the exit status, and gdb's attach failures in one line."""
from __future__ import annotations

import os

import pytest

from gdbext.cli import command, exit_status, live
from gdbext.commands.options import PARSERS


@pytest.mark.parametrize("name, argv", [
    ("deadlock-graph", ["-p", "1", "--json", "--dot", "g.dot", "--max-frames", "0x10"]),
    ("py-stacks", ["-p", "1", "--native", "--locks", "3", "4"]),
    ("isa-scan", ["-p", "1", "--cpu", "x86-64-v2", "--limit", "5", "all"]),
    ("crash-triage", ["--remote", "h:1", "--no-metadata", "--json"]),
])
def test_the_gdb_line_parses_as_the_shell_options_did(name, argv):
    args = command.parser(name).parse_intermixed_args(argv)
    line = command.command_line(name, args, list(args.where))
    head, *words = line.split()
    assert head == name
    again = PARSERS[name]().parse_args(words)        # what gdb's command will parse
    for key, value in vars(again).items():
        shell = getattr(args, key, None)
        if key in ("address", "object", "threads"):
            assert value == list(args.where), line
        else:
            assert value == shell, (key, line)


def test_a_value_gdb_cannot_carry_is_refused():
    args = command.parser("deadlock-graph").parse_intermixed_args(
        ["-p", "1", "--dot", "my graph.dot"])
    with pytest.raises(command.CannotAnalyse, match="blanks"):
        command.command_line("deadlock-graph", args, [])


def test_the_report_is_what_lies_between_the_markers():
    report = 'deadlock-graph: DEADLOCK - x\n  {"not": "the end"}\n'
    out = ("[New LWP 12]\n0x7f in __futex_wait () from libc.so.6\n"
           f"{command.BEGIN}\n{report}{command.END} "
           '{"command": "deadlock-graph", "verdict": "deadlock", "origin": null}\n'
           "[Inferior 1 (process 11) detached]\n")
    got, outcome = command.split_output(out)
    assert got == report and outcome["verdict"] == "deadlock"
    assert command.split_output(f"{command.BEGIN}\n{command.END} null\n") == ("", None)
    assert command.split_output("gdb said nothing of ours\n") == ("", None)


@pytest.mark.parametrize("outcome, status", [
    ({"command": "deadlock-graph", "verdict": "deadlock"}, 1),
    ({"command": "deadlock-graph", "verdict": "unknown"}, 0),
    ({"command": "isa-check", "verdict": "supported"}, 0),
    ({"command": "isa-check", "verdict": "os-disabled"}, 1),
    ({"command": "crash-triage", "verdict": "unexplained", "origin": "fault"}, 1),
    ({"command": "crash-triage", "verdict": "no-deadlock", "origin": "none"}, 0),
    ({"command": "py-stacks", "verdict": None}, 0),
])
def test_exit_status(outcome, status):
    assert exit_status.of(outcome) == status


def test_attach_failures_in_one_line():
    mine = os.getpid()
    traced = live.attach_failure(f"warning: process {mine} is already traced by process 1\n"
                                 "ptrace: Operation not permitted.\n", mine)
    assert f"process {mine} is already traced by process 1 (" in traced
    assert live.attach_failure("ptrace: No such process.\n", 99) == "no such process: 99"
    assert live.attach_failure("[New LWP 5]\n", 5) is None
