"""A C string in the target's memory, for the readers that must recognise
one without knowing the structure that holds it.  Pure: ``read(address,
length) -> bytes`` raises on unreadable memory."""
from __future__ import annotations


def c_string(read, address: int, limit: int = 4096) -> tuple[bytes, bool]:
    """The bytes at ``address`` up to the first NUL, at most ``limit`` of
    them, and whether the NUL was found.  Reads in chunks that never cross a
    64-byte boundary, so a string that ends just before an unmapped page is
    read whole."""
    out = bytearray()
    while len(out) < limit:
        n = min(64 - (address + len(out)) % 64, limit - len(out))
        chunk = read(address + len(out), n)
        nul = chunk.find(b"\0")
        if nul >= 0:
            return bytes(out + chunk[:nul]), True
        out += chunk
    return bytes(out), False


def printable_c_string(read, address: int, limit: int = 512) -> str | None:
    """The NUL-terminated printable text at ``address``, else None."""
    try:
        raw, terminated = c_string(read, address, limit)
    except Exception:  # noqa: BLE001 - unreadable: not one
        return None
    if not terminated:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text and text.isprintable() else None
