"""glibc's last words before abort(): ``__abort_msg``.

``__abort_msg`` is exported GLIBC_PRIVATE in libc's .dynsym (present in the
stripped Debian libc), a pointer to ``struct abort_msg_s { unsigned int size;
char msg[]; }`` (glibc include/stdlib.h).  ``__libc_message`` (sysdeps/posix/
libc_fatal.c, 2.26-2.36) mmaps it, ``size`` being the page-rounded mapping,
and sets it just before abort() for:

- malloc's checks: ``malloc_printerr(str)`` -> "%s\\n" (malloc/malloc.c)
- ``__assert_fail``: "%s%s%s:%u: %s%sAssertion `%s' failed.\\n"
  (progname, ": ", file, line, function, ": ", expression; assert/assert.c)
- ``__assert_perror_fail``: "...: %s%sUnexpected error: %s.\\n"
- ``__fortify_fail(msg)``: "*** %s ***: terminated\\n" (debug/fortify_fail.c),
  called by ``__stack_chk_fail`` with "stack smashing detected" and by
  ``__chk_fail`` with "buffer overflow detected"
- ``__libc_fatal`` from the _FORTIFY_SOURCE printf checks: "*** %n in
  writable segment detected ***\n", "*** invalid %N$ use detected ***\n"
  (stdio-common/vfprintf-internal.c): no ": terminated"
- 2.37+: "Fatal glibc error: %s" prefixes some internal checks; glibc's own
  assert() inside libc is ``__libc_assert_fail`` (assert/__libc_assert_fail.c):
  "Fatal glibc error: %s:%s (%s): assertion failed: %s\n" (file, line,
  function, expression) -- 2.41's pthread_mutex_lock checks say it so.

Pure: ``read(address, length) -> bytes`` raises on unreadable memory.
"""
from __future__ import annotations

import re
from ..record import field, record
from ..text import decode

MAX_SIZE = 1 << 20          # a message mapping bigger than this is garbage
MAX_TEXT = 4096

# malloc_printerr's callers all name the function that checked ("free(): ...",
# "malloc(): ...") or the corruption ("double free or corruption (!prev)",
# "corrupted size vs. prev_size"): malloc/malloc.c.
_MALLOC = re.compile(r"^(?:(?:free|malloc|realloc|calloc|munmap_chunk|mremap_chunk|"
                     r"malloc_consolidate|_int_malloc|_int_free|tcache_thread_shutdown|"
                     r"malloc_check|memalign|posix_memalign|pvalloc|valloc)\(\): |"
                     r"double free or corruption|corrupted |"
                     r"malloc\(\)|free\(\))")
_ASSERT = re.compile(r"^(?:(?P<program>[^\n]*?): )?(?P<file>[^\n]+?):(?P<line>\d+): "
                     r"(?:(?P<function>[^\n]+?): )?Assertion `(?P<expression>.*)' failed\.$",
                     re.S)
_PERROR = re.compile(r"^(?:(?P<program>[^\n]*?): )?(?P<file>[^\n]+?):(?P<line>\d+): "
                     r"(?:(?P<function>[^\n]+?): )?Unexpected error: (?P<error>.*)\.$", re.S)
_LIBC_ASSERT = re.compile(r"^Fatal glibc error: (?P<file>[^\n]+?):(?P<line>\d+) "
                          r"\((?P<function>[^\n]*?)\): assertion failed: (?P<expression>.*)$",
                          re.S)
_FORTIFY = re.compile(r"^\*\*\* (?P<what>.+) \*\*\*(?:: terminated)?$", re.S)
_FORTIFY_KINDS = {"stack smashing detected": ("stack-protector", "stack-smashing"),
                  "buffer overflow detected": ("fortify", "buffer-overflow")}


@record
class AbortMessage:
    """glibc's __abort_msg, parsed into its kind and fields."""
    text: str
    kind: str                   # malloc-check, assertion, assert-perror, stack-protector,
                                # fortify, fortify-other, glibc-fatal, other
    verdict: str                # crash-triage's verdict for it
    fields: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        """What tells two aborts of this kind apart, stable across builds:
        malloc's check, the assertion's expression, the fortify check."""
        if self.kind == "malloc-check":
            return self.text
        if self.kind in ("assertion", "assert-perror"):
            return self.fields.get("expression") or self.fields.get("error") or ""
        if self.kind == "fortify-other":
            return self.fields.get("check", "")
        return ""

    def to_json(self) -> dict:
        return {"text": self.text, "kind": self.kind, "verdict": self.verdict,
                "fields": self.fields}


def parse(text: str) -> AbortMessage:
    """The message's kind and fields, from glibc's own format strings."""
    text = text.rstrip("\n")
    m = _ASSERT.match(text)
    if m:
        f = {k: v for k, v in m.groupdict().items() if v is not None}
        f["line"] = int(f["line"])
        return AbortMessage(text, "assertion", "assertion-failed", f)
    m = _LIBC_ASSERT.match(text)
    if m:       # glibc's assert on itself: by its format, never the program's
        f = dict(m.groupdict(), line=int(m.group("line")), inside="glibc")
        return AbortMessage(text, "assertion", "assertion-failed", f)
    m = _PERROR.match(text)
    if m:
        f = {k: v for k, v in m.groupdict().items() if v is not None}
        f["line"] = int(f["line"])
        return AbortMessage(text, "assert-perror", "assertion-failed", f)
    m = _FORTIFY.match(text)
    if m:
        kind, verdict = _FORTIFY_KINDS.get(m.group("what"), ("fortify-other", "fortify-check"))
        return AbortMessage(text, kind, verdict, {"check": m.group("what")})
    if _MALLOC.match(text):
        function = text.split("(): ", 1)[0] if "(): " in text else None
        f = {"check": text}
        if function:
            f["function"] = function
        return AbortMessage(text, "malloc-check", "heap-corruption", f)
    if text.startswith("Fatal glibc error: "):
        return AbortMessage(text, "glibc-fatal", "glibc-fatal-error",
                            {"check": text[len("Fatal glibc error: "):]})
    return AbortMessage(text, "other", "abort-message", {})


class AbortMessageError(Exception):
    """__abort_msg points at something that is not a message: the warning."""


def read_message(read, pointer: int) -> AbortMessage | None:
    """The message ``__abort_msg`` (whose value is ``pointer``) points at;
    None when it is NULL (no glibc check fired).  AbortMessageError for a
    pointer or a size that cannot be one."""
    if pointer == 0:
        return None
    try:
        size = int.from_bytes(read(pointer, 4), "little")
    except Exception:  # noqa: BLE001 - any unreadable memory is the same finding
        raise AbortMessageError(f"__abort_msg points to unreadable memory ({pointer:#x})") \
            from None
    if not 8 <= size <= MAX_SIZE:
        raise AbortMessageError(f"__abort_msg at {pointer:#x} has an absurd size {size}")
    raw = bytearray()
    want = min(size - 4, MAX_TEXT)
    address = pointer + 4
    while len(raw) < want:
        n = min(256 - (address + len(raw)) % 256, want - len(raw))
        try:
            chunk = read(address + len(raw), n)
        except Exception:  # noqa: BLE001
            break
        nul = chunk.find(b"\0")
        if nul >= 0:
            raw += chunk[:nul]
            break
        raw += chunk
    else:
        if len(raw) >= want:
            raise AbortMessageError(f"__abort_msg at {pointer:#x} is not NUL-terminated "
                                    f"within {want} bytes")
    if not raw:
        raise AbortMessageError(f"__abort_msg at {pointer:#x} holds no text")
    judged = raw.decode("utf-8", "replace")     # U+FFFD counts as one unprintable byte
    if sum(not (c.isprintable() or c in "\n\t") for c in judged) > len(judged) // 10:
        raise AbortMessageError(f"__abort_msg at {pointer:#x} holds no text (binary bytes)")
    return parse(decode(raw))
