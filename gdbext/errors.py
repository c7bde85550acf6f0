"""The one exception type that carries a user-facing, one-line message."""


class GdbextError(Exception):
    """A problem the user can act on.  Commands turn it into gdb.GdbError."""


class UndecodableError(GdbextError):
    """The bytes at an address are no instruction: crash-triage then asks
    isa-check, which names garbage, a newer ISA or a jump into data."""
