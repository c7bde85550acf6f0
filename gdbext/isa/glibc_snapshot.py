"""The crashing machine's CPUID, from glibc's cpu_features in the target's memory.

Works wherever the target's memory can be read: live, remote and core files
from another machine.  Pure: memory comes in through a ``read(addr, n)``
callable, so tests can feed bytes.
"""
from __future__ import annotations

import struct
from collections.abc import Callable

from iced_x86 import Code, Decoder, Mnemonic, OpKind, Register

from ..errors import GdbextError
from ..knowledge.glibc_cpu_features import BASIC_SIZE, INDEX_LEAVES, KINDS
from .cpu import CpuFacts
from ..record import record

Read = Callable[[int, int], bytes]
MASK64 = (1 << 64) - 1
MAX_STRIDE = 4096     # glibc's record is 32 bytes; a bigger "stride" is not its table


@record
class TableLocation:
    """Where glibc's cpu_features table lies in the process."""
    table: int        # address of features[0]
    stride: int       # bytes per record
    count: int        # records


def locate_table(code: bytes, address: int, read: Read) -> TableLocation:
    """Follow ``__x86_get_cpuid_feature_leaf``: bounds check on %edi, base pointer
    (a GOT load, or a rip-relative lea after the bounds check), scale, offset."""
    count = stride = base = offset = None
    for ins in Decoder(64, code, ip=address):
        m = ins.mnemonic
        if ins.code == Code.INVALID or (m == Mnemonic.RET and offset is not None):
            break
        if (m == Mnemonic.CMP and ins.op0_kind == OpKind.REGISTER
                and ins.op_register(0) in (Register.EDI, Register.RDI)
                and ins.op1_kind in _IMMEDIATES):
            count = ins.immediate(1) + 1
        elif m == Mnemonic.MOV and ins.is_ip_rel_memory_operand:
            base = struct.unpack("<Q", _read(read, ins.ip_rel_memory_address, 8))[0]
        elif m == Mnemonic.LEA and ins.is_ip_rel_memory_operand:
            if count is not None and base is None:   # before the check: the fallback
                base = ins.ip_rel_memory_address
        elif m == Mnemonic.SHL and ins.op1_kind == OpKind.IMMEDIATE8:
            stride = 1 << ins.immediate(1)
        elif m == Mnemonic.IMUL and ins.op_count == 3:
            stride = ins.immediate(2)
        elif m == Mnemonic.LEA and ins.memory_index != Register.NONE:
            offset = ins.memory_displacement
    if None in (count, stride, base, offset):
        raise GdbextError("glibc's __x86_get_cpuid_feature_leaf does not have the expected "
                          "shape (bounds check, base, scale, offset)")
    # iced gives a negative displacement as its 64-bit two's complement: the
    # sum wraps as the CPU's does, else it is no address (found by tests/fuzz).
    return TableLocation((base + offset) & MASK64, stride, count)


def _read(read: Read, address: int, size: int) -> bytes:
    """Exactly size bytes or GdbextError, whatever the reader does with an
    address outside [0, 2**64) (gdb: OverflowError) or a short answer."""
    data = read(address & MASK64, size)
    if len(data) != size:
        raise GdbextError(f"cannot read {size} bytes at {address & MASK64:#x}")
    return data


_IMMEDIATES = (OpKind.IMMEDIATE8, OpKind.IMMEDIATE8TO32, OpKind.IMMEDIATE32)


def read_snapshot(loc: TableLocation, read: Read) -> CpuFacts:
    """CPU record from the table: raw CPUID per leaf, glibc's active bits as notes."""
    # The stride's upper bound matters: `shl $63` gives a 2**63-byte read, and
    # gdb allocates a read's whole buffer first (found by tests/fuzz).
    if not 32 <= loc.stride <= MAX_STRIDE or not 1 <= loc.count <= 64:
        raise GdbextError(f"implausible glibc cpu_features table (stride {loc.stride}, "
                          f"{loc.count} records)")
    kind, max_cpuid, family, model, stepping = struct.unpack(
        "<5I", _read(read, loc.table - BASIC_SIZE, BASIC_SIZE))
    raw = _read(read, loc.table, loc.stride * loc.count)
    facts = CpuFacts(source="process")
    facts.vendor_hint = KINDS.get(kind)
    facts.max_basic_leaf = max_cpuid
    active: dict[tuple[int, int], tuple[int, int, int, int]] = {}
    for i, leaf in enumerate(INDEX_LEAVES[:loc.count]):
        # glibc leaves a record zero when the CPU lacks the leaf: all bits clear
        words = struct.unpack_from("<8I", raw, i * loc.stride)
        facts.leaves[leaf] = words[:4]
        active[leaf] = words[4:]
    facts.active = active
    if not any(facts.leaves[(1, 0)]):
        raise GdbextError("glibc's cpu_features table is empty (not initialised yet?)")
    if (facts.family, facts.model, facts.stepping) != (family, model, stepping):
        facts.notes.append(f"glibc's basic record says family {family:#x} model {model:#x} "
                           f"stepping {stepping}; leaf 1 says otherwise")
    return facts
