"""The exit status of `gdbext COMMAND`, from what the command found.

    0  nothing wrong found
    1  a finding: a deadlock, an instruction this CPU cannot run (or runs as
       another), a stack or alignment fault explained, a crash classified
    2  the target could not be analysed (one line on stderr says why), or
       the command line is wrong
    130 interrupted (Ctrl-C; cli/__init__.py): the process was detached first
"""
from __future__ import annotations

from . import EXIT_FINDING as FINDING, EXIT_OK as NOTHING, EXIT_USAGE as CANNOT

# command -> the verdicts that are a finding; every other verdict is not
FINDINGS = {
    "isa-check": {"unsupported", "os-disabled", "runs-differently"},
    "isa-scan": {"unsupported", "runs-differently"},
    "deadlock-graph": {"deadlock"},
    "spill-audit": {"stack-spill-fault", "misaligned-stack", "non-canonical-address",
                    "stack-overflow", "bad-stack-pointer"},
    "crash-triage": {"deadlock"},       # a hang's; a crash is a finding whatever its verdict
    "py-stacks": set(),                 # a listing: no verdict
}
# crash-triage's stop.origin of a crash: a fault, or a signal the process sent itself
CRASH_ORIGINS = {"fault", "self"}


def of(outcome: dict) -> int:
    """0 or 1 for a command that ran (commands/base.py's outcome)."""
    if outcome["command"] == "crash-triage" and outcome.get("origin") in CRASH_ORIGINS:
        return FINDING
    return FINDING if outcome.get("verdict") in FINDINGS[outcome["command"]] else NOTHING
