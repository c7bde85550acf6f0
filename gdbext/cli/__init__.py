"""The `gdbext` command line: spawns gdb and never imports it.

    gdbext COMMAND TARGET [OPTIONS]         one gdb command (isa-check, deadlock-graph...)
                                            on -p PID, CORE [EXECUTABLE] or --remote
    gdbext triage CORE... [-p PID...]       JSON Lines, then a grouped summary
    gdbext triage --coredumpctl [MATCH...]  the cores systemd-coredump kept
    gdbext gdbinit [--install]              the line that loads the commands into gdb
"""
from __future__ import annotations

import argparse
import os
import sys

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_FINDING = 1        # gdbext COMMAND: what it found is wrong (exit_status.py)
# gdb's commands, each also `gdbext COMMAND` (cli/command.py)
COMMANDS = ("isa-check", "isa-scan", "deadlock-graph", "spill-audit", "crash-triage",
            "py-stacks")


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError("must be more than 0")
        return value
    return parse


def _pids(text: str) -> list[int]:
    try:
        pids = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a process id: {text}") from None
    if not pids or min(pids) <= 0:
        raise argparse.ArgumentTypeError(f"not a process id: {text}")
    return pids


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="gdbext", description="Native crash forensics from the shell: runs gdb with "
        "the gdbext extension on a process, a core or a gdbserver and prints the command's "
        "report; triages many cores and processes at once; and prints the line that loads "
        "the extension into your gdb.",
        epilog="`gdbext COMMAND --help` for each; exit status of the analyses: 0 nothing "
        "wrong found, 1 a finding, 2 the target could not be analysed.")
    top.add_argument("--version", action="store_true",
                     help="this gdbext, and the gdb and Python it runs")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    from .command_help import SUMMARY
    for name in COMMANDS:
        sub.add_parser(name, help=SUMMARY[name], add_help=False)
    t = sub.add_parser(
        "triage", help="crash-triage every core and process; JSON Lines and a summary by "
        "signature",
        description="Run gdb's crash-triage on each core and live process and write one "
        "JSON record for each, then a summary grouped by crash signature.  --jobs gdbs work "
        "at once; each triages core after core (loading one, then unloading it and "
        "everything gdbext learnt of it), so gdb's start-up and the analysis' imports are "
        "paid once per gdb.  A live process (-p) gets a gdb of its own that attaches, "
        "reads and detaches: a hang explained without writing a core (--gcore DIR keeps "
        "one); the records of the processes come first, then the cores'.",
        epilog="examples:\n"
        "  gdbext triage /var/crash/                 every core in a directory\n"
        "  gdbext triage -p 1234 -p 5678,5679        three hung processes, no core written\n"
        "  gdbext triage -p 1234 --gcore /tmp/keep core.999   a process (its core kept) "
        "and a core\n\n"
        "exit status: 0 every core and process triaged; 1 some gave an error or timed "
        "out (their records say why); 2 usage error or nothing to triage; 130 interrupted.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("cores", nargs="*", metavar="CORE",
                   help="core files, or directories of them (with --coredumpctl: "
                   "coredumpctl MATCH arguments: PID, COMM, EXE or FIELD=VALUE)")
    t.add_argument("-p", "--pid", dest="pids", action="append", type=_pids, default=[],
                   metavar="PID[,PID...]",
                   help="a live process to triage (repeatable): attached, read, detached")
    t.add_argument("--gcore", metavar="DIR",
                   help="also write each live process's core to DIR/core.PID (gdb's gcore)")
    t.add_argument("--exe", metavar="PATH",
                   help="the program of every core (default: the file the core maps at "
                   "AT_PHDR, from its NT_FILE note)")
    t.add_argument("--coredumpctl", action="store_true",
                   help="triage the cores systemd-coredump kept (coredumpctl list MATCH...)")
    t.add_argument("-j", "--jobs", type=_positive(int), metavar="N",
                   default=len(os.sched_getaffinity(0)),
                   help="cores triaged at once (default: the CPUs this process may use)")
    t.add_argument("--timeout", type=_positive(float), default=120.0, metavar="SECONDS",
                   help="per core; its gdb is killed after this and a fresh one takes the "
                   "next core (default 120)")
    t.add_argument("--cores-per-gdb", type=_positive(int), default=100, metavar="N",
                   help="cores one gdb triages before a fresh one replaces it (default 100, "
                   "which bounds what a long-lived gdb grows to). 1 starts a fresh gdb for "
                   "every core, as before: slower, but no gdb reads a core after another -- "
                   "to rule out that one core's triage affects the next")
    cache = t.add_mutually_exclusive_group()
    cache.add_argument("--index-cache", metavar="DIR",
                   help="keep gdb's symbol indexes of the libraries' debug info in DIR, for "
                   "later runs too (default: a temporary directory, for this run only)")
    cache.add_argument("--no-index-cache", action="store_true",
                   help="let every gdb index the debug info it reads itself (gdb's default)")
    t.add_argument("--out", metavar="FILE",
                   help="write the JSON Lines here instead of stdout (the summary then goes "
                   "to stdout)")
    t.add_argument("--no-summary", action="store_true", help="records only")
    t.add_argument("--group", choices=("signature", "crash-point"), default="signature",
                   help="the summary's grouping: by full signature (default), or by the "
                   "top frame of the program's own code only")
    t.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                   help="progress bar on stderr (default: when stderr is a terminal)")
    t.add_argument("--gdb", default=os.environ.get("GDB", "gdb"), metavar="PATH",
                   help="the gdb to run (default $GDB or gdb)")
    t.add_argument("--sysroot", metavar="DIR",
                   help="where the cores' libraries are (gdb's set sysroot)")
    t.add_argument("--debug-file-directory", metavar="DIR",
                   help="gdb's set debug-file-directory")
    t.add_argument("--max-frames", type=_positive(int), metavar="N",
                   help="frames followed per thread (crash-triage --max-frames)")
    g = sub.add_parser(
        "gdbinit", help="print the line that loads the gdb commands (--install: into ~/.gdbinit)",
        description="Print `source .../gdbext/gdbinit.py`, the line that loads isa-check, "
        "deadlock-graph and the other commands into gdb from this installed package, after "
        "checking that gdb embeds the Python this package is installed for.",
        epilog="exit status: 0 printed, added, or already there; 2 (with --install) gdb's "
        "Python is another version or cannot be asked, or the file already loads another "
        "gdbext, or cannot be written.")
    g.add_argument("--install", action="store_true",
                   help="append the line to ~/.gdbinit unless it is there (run it twice: one line)")
    g.add_argument("--file", default="~/.gdbinit", metavar="PATH",
                   help="the gdb init file for --install (default ~/.gdbinit)")
    g.add_argument("--gdb", default=os.environ.get("GDB", "gdb"), metavar="PATH",
                   help="the gdb whose Python is checked (default $GDB or gdb)")
    g.add_argument("--no-check", action="store_true",
                   help="do not run gdb to check its Python")
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] in COMMANDS:   # its own parser: TARGET, then its gdb options
            from .command import main as command
            return command(argv[0], argv[1:])
        args = parser().parse_args(argv)
        if args.version:
            from .gdbinit import version
            return version(args)
        if args.command is None:
            parser().error("a COMMAND is needed")
        if args.command == "gdbinit":
            from .gdbinit import run
        else:
            from .triage import run
        return run(args)
    except KeyboardInterrupt:
        print("gdbext: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:    # the driver's own failure: one line, never a traceback
        print(f"gdbext: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_USAGE
