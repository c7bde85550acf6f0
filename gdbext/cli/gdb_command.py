"""Inside gdb: the end of one command's report for `gdbext COMMAND`
(cli/command.py starts the gdb and reads its output).  The report itself is
the command's own, printed as in any gdb; before it the driver has gdb echo
BEGIN, and after it this writes END and what the command found (its verdict:
commands/base.py's last_outcome), from which the driver takes its exit
status.  Runs in gdb's Python; the driver never imports it."""
from __future__ import annotations

import json

from .. import target

BEGIN = "@gdbext-report-begin"      # command.BEGIN
END = "@gdbext-report-end"          # + JSON: the outcome, or null when the command failed


def end() -> None:
    from ..commands import base
    target.say(f"{END} {json.dumps(base.last_outcome)}\n")
