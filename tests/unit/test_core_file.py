"""The core-file note reader on synthetic cores laid out as the kernel's
fs/binfmt_elf.c writes them, and on broken ones."""
from __future__ import annotations

import struct

import pytest

from gdbext import core_file
from gdbext.cli import summary


def note(n_type: int, desc: bytes, name: bytes = b"CORE\0") -> bytes:
    pad = lambda b: b + b"\0" * (-len(b) % 4)   # noqa: E731
    return struct.pack("<III", len(name), len(desc), n_type) + pad(name) + pad(desc)


def prpsinfo(fname: bytes, psargs: bytes, pid: int) -> bytes:
    raw = bytearray(136)
    struct.pack_into("<i", raw, 24, pid)
    raw[40:40 + len(fname)] = fname
    raw[56:56 + len(psargs)] = psargs
    return bytes(raw)


def file_note(maps: list[tuple[int, int, int, str]], page: int = 4096) -> bytes:
    head = struct.pack("<QQ", len(maps), page)
    body = b"".join(struct.pack("<QQQ", s, e, o) for s, e, o, _ in maps)
    return head + body + b"".join(p.encode() + b"\0" for _, _, _, p in maps)


def elf_core(notes: bytes, e_type: int = 4, machine: int = 62) -> bytes:
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<HH", header, 16, e_type, machine)
    struct.pack_into("<Q", header, 32, 64)             # e_phoff
    struct.pack_into("<HH", header, 54, 56, 1)         # e_phentsize, e_phnum
    phdr = struct.pack("<IIQQQQQQ", 4, 0, 64 + 56, 0, 0, len(notes), 0, 4)
    return bytes(header) + phdr + notes


MAPS = [(0x5000, 0x6000, 0, "/usr/lib/libfoo.so"), (0x400000, 0x401000, 0, "/srv/app/server"),
        (0x401000, 0x402000, 1, "/srv/app/server")]


def test_reads_command_pid_signal_mappings_and_executable(tmp_path):
    auxv = struct.pack("<QQQQQQ", 3, 0x400040, 31, 0x7ffc0000, 0, 0)   # AT_PHDR, AT_EXECFN
    xsave = bytearray(1088)
    struct.pack_into("<Q", xsave, 464, 0x2E7)           # XCR0 where Linux puts it
    xsave = bytes(xsave)
    data = elf_core(note(3, prpsinfo(b"server", b"/srv/app/server --port 1", 4242))
                    + note(0x53494749, struct.pack("<iii", 11, 0, 1) + bytes(116))
                    + note(6, auxv) + note(0x46494C45, file_note(MAPS))
                    + note(0x202, xsave, name=b"LINUX\0"))
    path = tmp_path / "core"
    path.write_bytes(data)
    facts = core_file.read(str(path))
    assert (facts.command, facts.pid, facts.signo, facts.machine) == ("server", 4242, 11, 62)
    assert facts.arguments == "/srv/app/server --port 1"
    assert [m.path for m in facts.mappings] == [m[3] for m in MAPS]
    assert facts.mappings[2].page_offset == 4096
    assert facts.auxv == {3: 0x400040, 31: 0x7ffc0000}
    assert facts.executable() == "/srv/app/server"      # the file mapped at AT_PHDR
    assert facts.xcr0 == 0x2E7


def test_without_auxv_the_command_name_finds_the_executable(tmp_path):
    path = tmp_path / "core"
    path.write_bytes(elf_core(note(3, prpsinfo(b"server", b"", 1))
                              + note(0x46494C45, file_note(MAPS))))
    assert core_file.read(str(path)).executable() == "/srv/app/server"


@pytest.mark.parametrize("data, message", [
    (b"", "not a 64-bit little-endian ELF file"),
    (b"garbage" * 20, "not a 64-bit little-endian ELF file"),
    (b"\x7fELF\x01\x01" + bytes(58), "not a 64-bit little-endian ELF file"),
    (elf_core(b"", e_type=2), "not a core"),
])
def test_not_a_core_is_one_error(tmp_path, data, message):
    path = tmp_path / "x"
    path.write_bytes(data)
    with pytest.raises(core_file.CoreFileError, match=message):
        core_file.read(str(path))


def test_broken_notes_give_fewer_facts_not_exceptions(tmp_path):
    lying = struct.pack("<QQ", 1 << 40, 4096)             # a count the note cannot hold
    good = elf_core(note(3, prpsinfo(b"server", b"", 1)) + note(0x46494C45, lying))
    path = tmp_path / "core"
    for cut in range(0, len(good), 7):                     # every truncation
        path.write_bytes(good[:cut])
        try:
            facts = core_file.read(str(path))
        except core_file.CoreFileError:
            continue
        assert facts.mappings == []


def record(core, sig_id=None, error=None):
    sig = {"id": sig_id, "class": "SIGILL", "verdict": "unsupported", "key": "fma4",
           "frames": ["k", "main"], "text": "x"} if sig_id else None
    return {"core": core, "signature": sig, "status": "ok" if sig else "error",
            "error": error, "headline": None}


def test_summary_groups_largest_first_and_counts_errors():
    records = [record("a", "111"), record("b", "222"), record("c", "222"),
               record("d", error="not a 64-bit little-endian ELF file"), record("e", "222")]
    groups = summary.group(records)
    assert [(g["id"], g["count"]) for g in groups] == [("222", 3), ("111", 1), (None, 1)]
    assert groups[0]["cores"] == ["b", "c", "e"]
    text = summary.table(records)
    assert text.splitlines()[-1] == ("5 core(s): 4 triaged into 2 signature(s), 1 error(s), "
                                     "0 timeout(s)")
