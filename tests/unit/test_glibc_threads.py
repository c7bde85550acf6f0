"""glibc's struct pthread through its _thread_db_* descriptors, on libc's
own bytes: the descriptors are read from the real libc file (its .dynsym and
.rodata, found with pyelftools), and a descriptor in memory is built from
them.  The offsets are never written here."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from gdbext.errors import GdbextError
from gdbext.runtimes import glibc_threads as gt

LIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")


def libc_descriptors() -> dict[str, bytes]:
    """name -> the bytes libc stores for each _thread_db_* symbol we use."""
    from elftools.elf.elffile import ELFFile
    out = {}
    with LIBC.open("rb") as fh:
        elf = ELFFile(fh)
        dynsym = elf.get_section_by_name(".dynsym")
        for sym in dynsym.iter_symbols():
            name = sym.name.split("@")[0]
            if name in gt.SYMBOLS and sym["st_shndx"] != "SHN_UNDEF":
                section = elf.get_section(sym["st_shndx"])
                at = sym["st_value"] - section["sh_addr"] + section["sh_offset"]
                fh.seek(at)
                out[name] = fh.read(sym["st_size"] or 12)
    return out


@pytest.fixture(scope="module")
def descriptors():
    if not LIBC.exists():
        pytest.skip("no x86-64 glibc here")
    found = libc_descriptors()
    assert gt.DESCRIPTOR_PREFIX + "tid" in found
    return found


def memory(blocks: dict[int, bytes]):
    def read(address: int, length: int) -> bytes:
        for start, data in blocks.items():
            if start <= address and address + length <= start + len(data):
                return data[address - start:address - start + length]
        raise GdbextError(f"cannot read {length} bytes at {address:#x}")
    return read


def symbols_at(found: dict[str, bytes], base: int = 0x10000):
    """Lay the descriptors out in fake memory; address_of finds them."""
    places = {name: base + 64 * i for i, name in enumerate(sorted(found))}
    read = memory({places[n]: found[n] for n in found})
    return read, places.get


def test_layout_from_the_real_libc(descriptors):
    read, address_of = symbols_at(descriptors)
    layout = gt.PthreadLayout.read(read, address_of)
    bits, count, offset = struct.unpack("<III", descriptors["_thread_db_pthread_tid"][:12])
    assert layout.field("tid") == gt.Field(bits, count, offset) and bits == 32
    start = struct.unpack("<III", descriptors["_thread_db_pthread_start_routine"][:12])
    assert layout.field("start_routine") == gt.Field(*start) and start[0] == 64
    size, = struct.unpack("<I", descriptors["_thread_db_sizeof_pthread"][:4])
    assert layout.size == size and offset < size


def test_a_descriptor_is_confirmed_by_its_tid(descriptors):
    read, address_of = symbols_at(descriptors)
    layout = gt.PthreadLayout.read(read, address_of)
    pointer, lwp, routine = 0x7F0000001000, 4242, 0x7F00DEADBEEF
    block = bytearray(layout.size)
    struct.pack_into("<i", block, layout.field("tid").offset, lwp)
    struct.pack_into("<Q", block, layout.field("start_routine").offset, routine)
    both = memory({pointer: bytes(block), **{0x10000: b""}})
    d = gt.descriptor(both, layout, pointer, lwp)
    assert (d.tid, d.start_routine, d.confirmed) == (lwp, routine, True)
    assert gt.descriptor(both, layout, pointer, lwp + 1).confirmed is False
    assert gt.tid_field_address(layout, pointer) == pointer + layout.field("tid").offset
    assert gt.descriptor(both, layout, 0, lwp) is None                  # no thread pointer
    assert gt.descriptor(both, layout, 0x7F0000900000, lwp) is None     # unreadable


def test_implausible_descriptors_are_refused(descriptors):
    read, address_of = symbols_at({k: v for k, v in descriptors.items()
                                   if not k.endswith("_tid")})
    with pytest.raises(gt.LayoutError, match="tid"):
        gt.PthreadLayout.read(read, address_of)
    bad = dict(descriptors, _thread_db_pthread_tid=struct.pack("<III", 64, 1, 720))
    read, address_of = symbols_at(bad)
    with pytest.raises(gt.LayoutError, match="not a field"):
        gt.PthreadLayout.read(read, address_of)
    huge = dict(descriptors, _thread_db_sizeof_pthread=struct.pack("<I", 1 << 30))
    read, address_of = symbols_at(huge)
    with pytest.raises(gt.LayoutError, match="size"):
        gt.PthreadLayout.read(read, address_of)
