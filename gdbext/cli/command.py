"""`gdbext COMMAND TARGET [OPTIONS]`: one gdb command on a process, a core or
a gdbserver, from the shell.  The command's options are its own (one
definition: commands/options.py); gdb runs it as a user would and the report
is printed unchanged, then the exit status says what was found
(exit_status.py).  Spawns gdb; never imports it."""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import textwrap

from ..commands.options import PARSERS
from ..record import field, record
from . import command_help, exit_status, inputs, live, one_shot
from .gdb_batch import LOADER, GdbOptions, Job, gdb_error, gdb_options_argv, new_record, \
    prepare

BEGIN = "@gdbext-report-begin"      # gdb_command.BEGIN
# Commands that read no DWARF (unless --native asks for native frames' lines).
NO_DEBUG_INFO = {"py-stacks"}
END = "@gdbext-report-end"          # gdb_command.END; not imported: that module needs gdb
END_OUTCOME = "python import gdbext.cli.gdb_command as c; c.end()"
# commands that also read a file with no process: the first argument may be one
FILE_COMMANDS = {"isa-check", "isa-scan"}
ET_CORE = 4


@record
class Target:
    """What gdb is pointed at, and the command's own arguments."""
    kind: str                           # live, core, remote, file (a program, no process)
    pid: int | None = None
    core: str | None = None
    executable: str | None = None
    remote: str | None = None
    arguments: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


class CannotAnalyse(Exception):
    """The target cannot be analysed: the one line that says why."""


def parser(name: str) -> argparse.ArgumentParser:
    """The shell parser of ``name``: TARGET, the driver's options, and the
    command's own options (the same objects gdb's command parses with)."""
    own = PARSERS[name]()
    positional = next((a.metavar for a in own._actions if not a.option_strings), None)
    p = argparse.ArgumentParser(
        prog=f"gdbext {name}",
        usage=f"gdbext {name} (-p PID | CORE [EXECUTABLE] | --remote HOST:PORT) "
              f"[OPTIONS]" + (f" [{positional} ...]" if positional else ""),
        description=textwrap.fill(f"{command_help.SUMMARY[name]}: gdb's {name} from the "
                                  f"shell (gdb's `help {name}` says what it reads and "
                                  "reports).", 88) + f"\n\n{command_help.TARGETS}",
        epilog=f"examples:\n{command_help.EXAMPLES[name]}\n\n{command_help.EXIT}",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    where = p.add_mutually_exclusive_group()
    where.add_argument("-p", "--pid", type=int, metavar="PID", help="attach to this process")
    where.add_argument("--remote", metavar="HOST:PORT",
                       help="a gdbserver (gdb's target remote HOST:PORT)")
    p.add_argument("where", nargs="*", metavar="CORE [EXECUTABLE]" +
                   (f" {positional}" if positional else ""),
                   help="a core and its program" + (f"; then the command's {positional}"
                                                    if positional else ""))
    group = p.add_argument_group(f"{name}'s options (as in gdb)")
    for action in own._actions:
        if action.option_strings:
            group._add_action(action)
    p.add_argument("--exe", metavar="PATH", help="the program (instead of EXECUTABLE)")
    p.add_argument("--sysroot", metavar="DIR", help="where the target's libraries are "
                   "(gdb's set sysroot)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                   help="give up after this long (default 600); an attached process is "
                   "detached first")
    p.add_argument("--gdb", default=os.environ.get("GDB", "gdb"), metavar="PATH",
                   help="the gdb to run (default $GDB or gdb)")
    return p


def main(name: str, argv: list[str]) -> int:
    args = parser(name).parse_intermixed_args(argv)
    try:
        target = resolve(name, args)
        line = command_line(name, args, target.arguments)
        if shutil.which(args.gdb) is None:
            raise CannotAnalyse(f"{args.gdb} not found (install gdb, or --gdb PATH)")
        if not LOADER.is_file():
            raise CannotAnalyse(f"{LOADER} is missing: the gdbext package is incomplete")
        for warning in target.warnings:
            print(f"gdbext {name}: warning: {warning}", file=sys.stderr)
        return run(name, line, target, args)
    except CannotAnalyse as exc:
        said = str(exc)                 # the command's own line already names it
        print(f"gdbext {said}" if said.startswith(f"{name}: ") else f"gdbext {name}: {said}",
              file=sys.stderr)
        return exit_status.CANNOT


def resolve(name: str, args) -> Target:
    """TARGET from -p, --remote or the leading arguments: CORE, then its
    EXECUTABLE when the next one is a program; the rest are the command's.
    isa-check and isa-scan also take a program or object with no process."""
    rest = list(args.where)
    if args.pid is not None:
        problem = live.problem(args.pid)
        if problem:
            raise CannotAnalyse(problem)
        return Target("live", pid=args.pid, executable=args.exe, arguments=rest)
    if args.remote:
        return Target("remote", remote=args.remote, executable=args.exe, arguments=rest)
    if not rest:
        raise CannotAnalyse("no target: give -p PID, CORE [EXECUTABLE] or --remote HOST:PORT")
    first = rest.pop(0)
    kind = _elf_type(first)
    if kind != ET_CORE and kind is not None and name in FILE_COMMANDS:
        if name == "isa-scan":          # the object is the command's own argument
            return Target("file", arguments=[first] + rest)
        return Target("file", executable=first, arguments=rest)
    exe = args.exe
    if exe is None and rest and _elf_type(rest[0]) not in (None, ET_CORE):
        exe = rest.pop(0)
    record_ = new_record(first)
    go, executable = prepare(record_, Job(first, exe))
    if not go:
        raise CannotAnalyse(f"not a core gdbext can read: {record_['error']}")
    return Target("core", core=first, executable=executable, arguments=rest,
                  warnings=record_["warnings"])


def _elf_type(path: str) -> int | None:
    """e_type of an ELF file; None for anything else, and for what is not a
    regular file (a FIFO would block the open: inputs.refusal)."""
    if inputs.refusal(path) is not None:
        return None
    try:
        with open(path, "rb") as fh:
            head = fh.read(18)
    except OSError:
        return None
    if len(head) < 18 or head[:4] != b"\x7fELF":
        return None
    return int.from_bytes(head[16:18], "little" if head[5] == 1 else "big")


def command_line(name: str, args, arguments: list[str]) -> str:
    """The gdb command line: the command's options as given, then its
    arguments (gdb's commands read leading options, then the rest)."""
    words = [name]
    for action in PARSERS[name]()._actions:
        if not action.option_strings:
            continue
        value = getattr(args, action.dest)
        if value is None or value is False or value == action.default:
            continue
        words.append(action.option_strings[-1])
        if action.nargs != 0:
            text = str(value)
            if not text or re.search(r"\s", text):
                raise CannotAnalyse(f"{action.option_strings[-1]} {text!r}: gdb's command "
                                    "line cannot carry an empty value or one with blanks")
            words.append(text)
    return " ".join(words + arguments)


def gdb_argv(target: Target, line: str, opts: GdbOptions) -> list[str]:
    argv = gdb_options_argv(opts) + ([target.executable] if target.executable else [])
    if target.kind in ("live", "remote"):
        argv += one_shot.INTERRUPTIBLE
    if target.kind == "live":
        argv += ["-p", str(target.pid)]
    elif target.kind == "core":
        argv += ["-c", target.core]
    elif target.kind == "remote":
        argv += ["-ex", f"target remote {target.remote}"]
    argv += ["-ex", f"echo {BEGIN}\\n", "-ex", line, "-ex", END_OUTCOME]
    if target.kind in ("live", "remote"):
        argv += ["-ex", "detach"]      # gdb would at its exit too; say it
    return argv


def run(name: str, line: str, target: Target, args) -> int:
    opts = GdbOptions(gdb=args.gdb, timeout=args.timeout, sysroot=args.sysroot,
                      debug_info=name not in NO_DEBUG_INFO or bool(getattr(args, "native", False)))
    attached = target.kind in ("live", "remote")
    try:
        out, err, returncode = one_shot.run(gdb_argv(target, line, opts), args.timeout,
                                            live=attached, pid=target.pid)
    except OSError as exc:
        raise CannotAnalyse(f"cannot run {args.gdb}: {exc.strerror}") from None
    except one_shot.Timeout:
        raise CannotAnalyse(f"no answer in {args.timeout:g} s (--timeout)"
                            + ("; the process was detached" if attached else "")) from None
    report, outcome = split_output(out)
    if report:
        write(report)
    if outcome is not None:
        return exit_status.of(outcome)
    raise CannotAnalyse(why_not(name, target, err, returncode))


def write(report: str) -> None:
    """The report on stdout; a reader that went away (| head) is no error."""
    try:
        sys.stdout.write(report)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def split_output(out: str) -> tuple[str, dict | None]:
    """The report gdb printed between BEGIN and END, and the outcome END
    carries (None when the command failed or never ran)."""
    start = out.find(BEGIN + "\n")
    if start < 0:
        return "", None
    body = out[start + len(BEGIN) + 1:]
    ends = list(re.finditer(rf"^{re.escape(END)} (.*)$", body, re.M))
    if not ends:
        return body, None
    try:
        outcome = json.loads(ends[-1].group(1))
    except ValueError:
        outcome = None
    return body[:ends[-1].start()], outcome


def why_not(name: str, target: Target, err: str, returncode: int | None) -> str:
    """One line: why gdb could not analyse the target."""
    if target.kind == "live":
        failed = live.attach_failure(err, target.pid)
        if failed:
            return failed
    if target.kind == "remote":
        said = [l for l in err.splitlines() if target.remote in l or "Remote" in l
                or "onnection" in l]
        if said:
            return f"cannot reach {target.remote}: {said[-1].strip()}"
    return gdb_error(err, returncode, name)
