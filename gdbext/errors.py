"""The one exception type that carries a user-facing, one-line message."""


class GdbextError(Exception):
    """A problem the user can act on.  Commands turn it into gdb.GdbError."""


class UndecodableError(GdbextError):
    """The bytes at an address are no instruction: crash-triage then asks
    isa-check, which names garbage, a newer ISA or a jump into data."""


class UnmappedCodeError(GdbextError):
    """The pc (or ADDRESS) is in no mapping: the program jumped there, so
    crash-triage explains the jump instead of an instruction."""

    def __init__(self, message: str, address: int):
        super().__init__(message)
        self.address = address
