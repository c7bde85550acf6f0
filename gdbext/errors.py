"""The one exception type that carries a user-facing, one-line message."""


class GdbextError(Exception):
    """A problem the user can act on.  Commands turn it into gdb.GdbError."""
