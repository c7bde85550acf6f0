"""gdb commands: thin layers of argparse -> target -> analysis -> render.

``register()`` is idempotent, so sourcing gdbinit.py twice is harmless.
"""
from __future__ import annotations

_registered = False


def register() -> None:
    global _registered
    if _registered:
        return
    from . import (base, crash_triage, deadlock_graph, isa_check, isa_scan, py_stacks,
                   spill_audit)
    base.register_settings()
    isa_check.IsaCheckCommand()
    isa_scan.IsaScanCommand()
    deadlock_graph.DeadlockGraphCommand()
    spill_audit.SpillAuditCommand()
    crash_triage.CrashTriageCommand()
    py_stacks.PyStacksCommand()
    _registered = True
