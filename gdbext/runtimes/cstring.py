"""A C string in the target's memory, for the readers that must recognise
one without knowing the structure that holds it.  Pure: ``read(address,
length) -> bytes`` raises on unreadable memory."""
from __future__ import annotations


def printable_c_string(read, address: int, limit: int = 512) -> str | None:
    """The NUL-terminated printable text at ``address``, else None."""
    out = bytearray()
    while len(out) < limit:
        n = min(64 - (address + len(out)) % 64, limit - len(out))
        try:
            chunk = read(address + len(out), n)
        except Exception:  # noqa: BLE001 - unreadable: not one
            return None
        nul = chunk.find(b"\0")
        out += chunk if nul < 0 else chunk[:nul]
        if nul >= 0:
            break
    else:
        return None
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text and text.isprintable() else None
