"""The one decoding policy for bytes read from a core or a process (its
notes' pr_fname/pr_psargs, NT_FILE paths, environ, auxv strings, thread
names, what gdb prints of them): UTF-8, and any byte that is not shown as
``\\xNN``.  Never an exception, so no record is lost to an encoding; the
text stays printable by gdb and valid in JSON (a surrogate escape would be
neither); the odd byte stays visible (U+FFFD would hide which one)."""
from __future__ import annotations

ERRORS = "backslashreplace"


def decode(raw: bytes) -> str:
    return raw.decode("utf-8", ERRORS)


def lenient(get):
    """``get()``, a str that gdb decodes strictly from bytes it read (thread
    names, gdb.execute(..., to_string=True), file names): when those bytes
    are not UTF-8, the same text decoded by the policy.  The error carries
    the whole input (UnicodeDecodeError.object), so nothing is re-run."""
    try:
        return get()
    except UnicodeDecodeError as exc:
        return decode(bytes(exc.object))
