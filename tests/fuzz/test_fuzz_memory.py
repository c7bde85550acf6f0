"""Fuzz what reads glibc's structures out of the inferior through a
``read(address, length)`` callable: the cpu_features locator and snapshot
(isa/glibc_snapshot) and the blocked-on classifier (locks/classify).

The memory here behaves as target.read_bytes does under gdb: exactly the
bytes, or GdbextError for unmapped memory, and OverflowError -- what gdb's
read_memory raises -- for an address outside [0, 2**64) or a negative length
(checked on gdb 13).  A read of more than a MiB fails the test: gdb allocates
the whole buffer first and dies on a huge one.  A variant also answers short
(fewer bytes than asked).  Contract: a result or GdbextError, nothing else,
and no unbounded loop."""
from __future__ import annotations

import struct
from dataclasses import dataclass, fields

from hypothesis import example
from hypothesis import strategies as st
from iced_x86 import Decoder, Mnemonic

from gdbext.errors import GdbextError
from gdbext.isa.cpu import CpuFacts
from gdbext.isa.glibc_snapshot import TableLocation, locate_table, read_snapshot
from gdbext.knowledge import blocking as kb
from gdbext.knowledge.glibc_cpu_features import BASIC_SIZE, INDEX_LEAVES
from gdbext.locks import classify as cl
from gdbext.runtimes import glibc_threads as gt
from tests.fuzz.common import fuzz

MASK64 = (1 << 64) - 1
MAX_READ = 1 << 20
u64 = st.integers(0, MASK64)


class Memory:
    """Regions of bytes at addresses; reads as target.read_bytes under gdb."""

    def __init__(self, regions: dict[int, bytes], short: bool = False):
        self.regions, self.short = dict(regions), short

    def __call__(self, address: int, length: int) -> bytes:
        if not 0 <= address <= MASK64 or length < 0 or length > MASK64:
            raise OverflowError("can't convert to unsigned")     # gdb's read_memory
        assert length <= MAX_READ, f"read of {length} bytes at {address:#x}: gdb would die"
        for start, data in self.regions.items():
            if start <= address < start + len(data):
                got = data[address - start:address - start + length]
                if len(got) == length or (self.short and got):
                    return got
        raise GdbextError(f"cannot read {length} bytes at {address:#x}")


# --- glibc's cpu_features ---------------------------------------------------

CODE_AT = 0x7F0000001000


def _disp32(value: int) -> bytes:
    return struct.pack("<i", value)


# x86-64 pieces of __x86_get_cpuid_feature_leaf's shapes, each a strategy of bytes.
s8, s32 = st.integers(-128, 127), st.integers(-2**31, 2**31 - 1)
PIECES = {
    "lea_rip": st.builds(lambda d: b"\x48\x8d\x05" + _disp32(d), s32),
    "cmp8": st.builds(lambda i: b"\x83\xff" + struct.pack("<b", i), s8),
    "cmp32": st.builds(lambda i: b"\x81\xff" + _disp32(i), s32),
    "cmp_rdi": st.builds(lambda i: b"\x48\x83\xff" + struct.pack("<b", i), s8),
    "ja": st.builds(lambda r: b"\x77" + struct.pack("<b", r), s8),
    "mov_rip": st.builds(lambda d: b"\x48\x8b\x05" + _disp32(d), s32),
    "mov_edi": st.just(b"\x89\xff"),
    "shl": st.builds(lambda i: b"\x48\xc1\xe7" + bytes([i]), st.integers(0, 255)),
    "imul8": st.builds(lambda i: b"\x48\x6b\xff" + struct.pack("<b", i), s8),
    "imul32": st.builds(lambda i: b"\x48\x69\xff" + _disp32(i), s32),
    "lea_idx32": st.builds(lambda d: b"\x48\x8d\x84\x07" + _disp32(d), s32),
    "lea_idx8": st.builds(lambda d: b"\x48\x8d\x44\x07" + struct.pack("<b", d), s8),
    "ret": st.just(b"\xc3"),
    "xor": st.just(b"\x31\xc0"),
    "junk": st.binary(min_size=1, max_size=8),
}
SHARED = ("lea_rip", "cmp8", "ja", "mov_rip", "mov_edi", "shl", "lea_idx32", "ret")
STATIC = ("cmp8", "ja", "lea_rip", "mov_edi", "imul8", "lea_idx32", "ret", "xor", "ret")


@st.composite
def feature_leaf_code(draw):
    """The function's bytes: glibc's two shapes with random immediates and
    displacements, or a random sequence of the same pieces."""
    names = draw(st.sampled_from([SHARED, STATIC]) | st.lists(st.sampled_from(sorted(PIECES)),
                                                                max_size=12))
    return b"".join(draw(PIECES[n]) for n in names)


@st.composite
def memory_for(draw, code: bytes, address: int, short: bool) -> Memory:
    """Memory holding a pointer at every rip-relative load of ``code`` (a GOT
    slot), random regions elsewhere."""
    regions = {}
    for ins in Decoder(64, code, ip=address):
        if ins.is_ip_rel_memory_operand and draw(st.integers(0, 7)):
            regions[ins.ip_rel_memory_address] = struct.pack(
                "<Q", draw(st.sampled_from([0x7F0000100000, 0, 8]) | u64))
    for _ in range(draw(st.integers(0, 2))):
        regions[draw(u64)] = draw(st.binary(max_size=64))
    return Memory(regions, short)


def _snapshot_region(loc: TableLocation, records: list[bytes]) -> tuple[int, bytes]:
    basic = struct.pack("<5I", 2, 16, 0x1A, 2, 1)
    table = b"".join(r.ljust(loc.stride, b"\0") for r in records)
    return (loc.table - BASIC_SIZE) & MASK64, basic + table


@example(code=bytes.fromhex("83ff08" "488d05f47f0000" "48c1e73f" "488d840784000000" "c3"),
         short=False, data=None)                              # shl $63: a 2**63-byte stride
@example(code=bytes.fromhex("83ff08" "488d0500000000" "48c1e705" "488d8407f0ffffff" "c3"),
         short=False, data=None)                              # a negative displacement
@example(code=bytes.fromhex("83ff00" "488d0500000000" "486bffff" "488d840700000000" "c3"),
         short=False, data=None)                              # imul $-1: a 2**64-1 stride
@fuzz(feature_leaf_code(), st.booleans(), st.data(), weight=1.5)
def test_locate_table_and_read_snapshot_give_facts_or_one_error(code, short, data):
    read = data.draw(memory_for(code, CODE_AT, short)) if data else Memory({})
    try:
        loc = locate_table(code, CODE_AT, read)
    except GdbextError:
        return
    assert 0 <= loc.table <= MASK64
    if data and data.draw(st.booleans()):
        count = max(1, min(loc.count, 9))
        stride = loc.stride if 32 <= loc.stride <= 4096 else 32
        records = data.draw(st.lists(st.binary(min_size=0, max_size=stride), min_size=count,
                                     max_size=count))
        at, blob = _snapshot_region(TableLocation(loc.table, stride, count), records)
        read.regions[at] = blob
    try:
        facts = read_snapshot(loc, read)
    except GdbextError:
        return
    assert isinstance(facts, CpuFacts) and (1, 0) in facts.leaves


@fuzz(st.sampled_from([SHARED, STATIC]), st.integers(0, 63), st.integers(5, 6),
      st.integers(0, 0x400), st.lists(st.tuples(*[st.integers(0, 2**32 - 1)] * 8),
                                      min_size=9, max_size=9).filter(lambda r: any(r[0][:4])),
      weight=0.5)
def test_glibc_shapes_are_located_exactly(shape, bound, shift, displacement, records):
    """The two shapes glibc is built in, with any bound, scale and offset: the
    table is where the code says and every record reads back."""
    base = 0x7F0000200000
    parts = {"cmp8": b"\x83\xff" + bytes([bound]),
             "lea_idx32": b"\x48\x8d\x84\x07" + _disp32(displacement),
             "shl": b"\x48\xc1\xe7" + bytes([shift]),
             "imul8": b"\x48\x6b\xff" + bytes([1 << shift]),
             "ja": b"\x77\x10", "mov_edi": b"\x89\xff", "ret": b"\xc3", "xor": b"\x31\xc0",
             "lea_rip": b"\x48\x8d\x05" + _disp32(0), "mov_rip": b"\x48\x8b\x05" + _disp32(0)}
    code = b"".join(parts[n] for n in shape)
    regions = {}
    for ins in Decoder(64, code, ip=CODE_AT):
        if ins.is_ip_rel_memory_operand and ins.mnemonic == Mnemonic.MOV:
            regions[ins.ip_rel_memory_address] = struct.pack("<Q", base)    # the GOT slot
        elif ins.is_ip_rel_memory_operand and shape is STATIC:
            base = ins.ip_rel_memory_address
    read = Memory(regions)
    loc = locate_table(code, CODE_AT, read)
    assert (loc.table, loc.stride, loc.count) == (base + displacement, 1 << shift, bound + 1)
    count = min(loc.count, len(INDEX_LEAVES))
    at, blob = _snapshot_region(loc, [struct.pack("<8I", *r) for r in records[:count]]
                                + [b""] * (loc.count - count))
    read.regions[at] = blob
    facts = read_snapshot(loc, read)
    for leaf, words in zip(INDEX_LEAVES, records[:count]):
        assert facts.leaves[leaf] == words[:4] and facts.active[leaf] == words[4:]


# --- the blocked-on classifier ---------------------------------------------------

@dataclass
class FrameInfo:                    # gdbext.target.FrameInfo's shape (target imports gdb)
    level: int
    pc: int
    function: str | None
    objfile: str | None
    file: str | None = None
    line: int | None = None


@dataclass
class ThreadSnapshot:               # gdbext.target.ThreadSnapshot's shape
    num: int
    lwp: int
    name: str | None
    regs: dict
    in_syscall: bool
    frames: list
    frames_truncated: bool


def test_the_snapshot_shapes_match_gdbext_target():
    """These stand-ins have target's fields (read from its source: importing
    it needs gdb)."""
    import ast
    from pathlib import Path

    import gdbext
    tree = ast.parse((Path(gdbext.__file__).parent / "target.py").read_text())
    found = {node.name: [s.target.id for s in node.body if isinstance(s, ast.AnnAssign)]
             for node in tree.body if isinstance(node, ast.ClassDef)}
    for cls in (FrameInfo, ThreadSnapshot):
        assert found[cls.__name__] == [f.name for f in fields(cls)], cls.__name__


FUNCTIONS = ([fn for fn, _ in kb.FRAME_KINDS] + list(kb.LOADER_FRAMES)
             + ["__GI___pthread_mutex_lock", "___pthread_cond_wait", "__pthread_cond_wait_common",
                "gomp_team_barrier_wait_end", "__kmp_suspend_64", "nanosleep", "clock_nanosleep",
                "poll", "main", "worker", None])
OBJFILES = ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2",
            "/usr/lib/x86_64-linux-gnu/libgomp.so.1", "/usr/lib/llvm-14/lib/libomp.so.5",
            "/opt/intel/libiomp5.so", "/srv/app/server", "linux-vdso.so.1", None]
FUTEX_OPS = [0, 128, 6, 134, 9, 137, 11, 13, 141, 1, 0x7F, 0xFFFFFFFF]
SYSCALLS = [kb.SYS_FUTEX, kb.SYS_RESTART_SYSCALL, 0, 7, 35, 61, 230, 232, 24, 1 << 63, MASK64]


@st.composite
def lock_words(draw, lwps: list[int]) -> bytes:
    """40 bytes shaped like a pthread_mutex_t / rwlock / gomp barrier, or random."""
    tid = draw(st.sampled_from(lwps) | st.integers(-2**31, 2**31 - 1))
    kind = draw(st.sampled_from([0, 1, 2, 3, 16, 32, 33, 48, 49]) | st.integers(-2**31, 2**31 - 1))
    shape = draw(st.integers(0, 3))
    if shape == 0:          # mutex: __lock __count __owner __nusers __kind
        lock = draw(st.sampled_from([0, 1, 2, tid & 0x3FFFFFFF, (tid & 0x3FFFFFFF) | 1 << 31]))
        words = struct.pack("<IIiIi", lock & 0xFFFFFFFF, draw(st.integers(0, 5)), tid, 1, kind)
    elif shape == 1:        # rwlock: __cur_writer at +24
        words = bytes(24) + struct.pack("<i", tid)
    elif shape == 2:        # gomp barrier: total, generation, ..., awaited at +64, +68
        words = struct.pack("<II", draw(st.integers(0, 70000)), 0).ljust(64, b"\0") + \
            struct.pack("<II", draw(st.integers(0, 70000)), draw(st.integers(0, 70000)))
    else:
        words = draw(st.binary(max_size=80))
    return words + draw(st.binary(max_size=16))


@st.composite
def blocked_processes(draw):
    """(threads, memory, rtld_global): threads in syscalls with registers
    pointing into memory that holds lock-shaped words, or anywhere at all."""
    lwps = draw(st.lists(st.integers(1, 2**22), min_size=1, max_size=6, unique=True))
    # Addresses: lock-sized blocks, one near the top and one near 0 of the address space.
    places = draw(st.lists(st.sampled_from([0x10, 0x1000, 0x7F0000300000, MASK64 - 40])
                           | st.integers(0x1000, 0x7FFFFFFFFFFF), min_size=1, max_size=5))
    regions = {}
    for at in places:
        regions[at] = draw(lock_words(lwps))
    stack = 0x7FFC00000000                          # 70 words, a few of them pointers
    words = [0] * draw(st.integers(0, 70))
    for i, value in draw(st.lists(st.tuples(st.integers(0, 69), st.sampled_from(places) | u64),
                                  max_size=4)):
        if i < len(words):
            words[i] = value
    regions[stack] = struct.pack(f"<{len(words)}Q", *words)
    threads = []
    for num, lwp in enumerate(lwps, 1):
        where = draw(st.sampled_from(places))
        uaddr = draw(st.sampled_from([where, where + 4, where + 8, where + 12, stack + 16, 0, 4])
                     | u64) & MASK64
        regs = {"rip": draw(u64), "rsp": draw(st.sampled_from([stack, 0, MASK64]) | u64),
                "orig_rax": draw(st.sampled_from(SYSCALLS) | u64),
                "rdi": uaddr, "rsi": draw(st.sampled_from(FUTEX_OPS) | u64),
                "rdx": draw(st.sampled_from(lwps + [0, 1]) | u64)}
        for r in kb.PARKED_REGISTERS:
            if draw(st.booleans()):
                regs[r] = (draw(st.sampled_from(places) | u64)
                           + draw(st.sampled_from([0, kb.MUTEX_KIND]))) & MASK64
        for r in draw(st.lists(st.sampled_from(sorted(regs)), max_size=3)):
            regs.pop(r, None)                        # registers gdb could not read
        frames = [FrameInfo(level, draw(u64), draw(st.sampled_from(FUNCTIONS)),
                            draw(st.sampled_from(OBJFILES)),
                            draw(st.sampled_from([None, "x.c"])),
                            draw(st.none() | st.integers(0, 9)))
                  for level in range(draw(st.integers(0, 10)))]
        threads.append(ThreadSnapshot(num, lwp, draw(st.none() | st.just(f"t{num}")), regs,
                                      draw(st.booleans()), frames, draw(st.booleans())))
    rtld = draw(st.none() | st.tuples(st.sampled_from(places) | u64, st.integers(0, 4096)))
    return threads, Memory(regions, short=draw(st.booleans())), rtld


@example(process=([ThreadSnapshot(1, 7, None, {"orig_rax": kb.SYS_FUTEX, "rdi": 0, "rsi": 0,
                                               "rdx": 0}, True,
                                   [FrameInfo(0, 0, None, OBJFILES[2])],
                                   False)],
                  Memory({}), None))                    # a gomp barrier read at 0 - 4
@example(process=([ThreadSnapshot(1, 1, None, {"orig_rax": kb.SYS_FUTEX, "rdi": 16, "rsi": 0,
                                               "rdx": 1, "rsp": 0x1000}, True, [], False),
                   ThreadSnapshot(2, 2, None, {"orig_rax": kb.SYS_FUTEX, "rdi": 16, "rsi": 0,
                                               "rdx": 1, "rsp": 0x1000}, True, [], False)],
                  Memory({16: struct.pack("<iIi", 1, 0, 2)}, short=True), None))  # a short read
@fuzz(blocked_processes(), weight=0.5)
def test_classify_gives_a_state_for_every_thread(process):
    threads, read, rtld = process
    states = cl.classify(threads, read, rtld)
    assert [s.num for s in states] == [t.num for t in threads]
    lwps = {t.lwp for t in threads}
    for s in states:
        assert s.state in ("blocked", "sleep", "io", "running", "syscall", "join", "unknown")
        if s.blocked_on is not None:
            b = s.blocked_on
            assert b.to_json()["kind"] == b.kind and all(isinstance(e, str) for e in b.evidence)
            if b.kind in ("rwlock", "loader-lock", "join", "omp-barrier"):
                assert set(b.owner_lwps) <= lwps | set(b.gone)  # (a PI word may name any TID)
            assert set(b.gone) <= set(b.owner_lwps) and not set(b.gone) & lwps
    assert cl.walks_needed(states) <= {t.num for t in threads}
    for t in threads:
        cl.registers_wanted(t.regs)
        cl.wait_site(t.frames)


@fuzz(u64, st.binary(max_size=80), st.booleans())
def test_gomp_barrier_counts_are_evidence_or_nothing(uaddr, words, short):
    read = Memory({uaddr - 4 if uaddr >= 4 else 0: words}, short)
    out = cl._gomp_barrier_counts(read, uaddr)
    assert isinstance(out, list) and all(isinstance(e, str) for e in out)


# --- glibc's struct pthread descriptors ---------------------------------------

@fuzz(st.dictionaries(st.sampled_from(gt.SYMBOLS), st.binary(max_size=16)),
      st.integers(0, 2**48), st.binary(max_size=64), st.integers(0, 2**31), st.booleans())
def test_pthread_layout_is_a_layout_or_a_layout_error(symbols, pointer, block, lwp, short):
    places = {name: 0x1000 + 32 * i for i, name in enumerate(sorted(symbols))}
    read = Memory({**{places[n]: symbols[n] for n in symbols}, pointer & MASK64: block},
                  short)
    try:
        layout = gt.PthreadLayout.read(read, places.get)
    except gt.LayoutError:
        return
    assert "tid" in layout.fields
    d = gt.descriptor(read, layout, pointer, lwp)
    assert d is None or (d.confirmed == (d.tid == lwp))
