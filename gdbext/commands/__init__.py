"""gdb commands: thin layers of argparse -> target -> analysis -> render.

``register()`` is idempotent, so sourcing gdbinit.py twice is harmless.
"""
from __future__ import annotations

_registered = False


def register() -> None:
    global _registered
    if _registered:
        return
    from . import base, isa_check
    base.register_settings()
    isa_check.IsaCheckCommand()
    _registered = True
