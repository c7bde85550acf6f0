"""gdbext: native crash forensics for gdb (isa-check, and more to come).

Importing this package is cheap: heavy modules (iced-x86, tabulate) are
imported inside the commands that need them.
"""

__version__ = "0.1.0"
