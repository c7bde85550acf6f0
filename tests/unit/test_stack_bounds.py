"""spill-audit's stack-bounds judgement and its Rust-aware advice, on
synthetic registers and mappings (the real faults are in tests/e2e)."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from gdbext.spill.audit import FunctionInfo, Signal, build
from gdbext.spill.stack import Frame
from gdbext.spill.stack_bounds import StackBounds, left_the_stack, thread_stack


@dataclass
class M:
    start: int
    end: int
    perms: str

    @property
    def readable(self):
        return self.perms[0] == "r"


STACK_LO, STACK_HI, GUARD_LO = 0x7f0000010000, 0x7f0000020000, 0x7f000000f000
MAPS = [M(GUARD_LO, STACK_LO, "---p"), M(STACK_LO, STACK_HI, "rw-p"),
        M(0x7f0000100000, 0x7f0000200000, "r-xp")]
VMOVAPS_RCX = bytes.fromhex("c5fc2941e0")       # vmovaps %ymm0,-0x20(%rcx)
MOVAPS_RSP = bytes.fromhex("0f29442410")        # movaps %xmm0,0x10(%rsp)
MOVAPS_RDI = bytes.fromhex("0f2807")            # movaps (%rdi),%xmm0


def readable(address):
    return any(m.start <= address < m.end and m.readable for m in MAPS)


def test_bounds_come_from_the_mapping_holding_the_cfa():
    b = thread_stack(STACK_HI - 0x100, MAPS)
    assert (b.lo, b.hi, b.guard_lo, b.guard_hi) == (STACK_LO, STACK_HI, GUARD_LO, STACK_LO)
    assert b.sure == "inferred"
    assert thread_stack(0x1234, MAPS) is None


def test_a_registered_provider_wins():
    from gdbext.spill import stack_bounds
    exact = StackBounds(1, 2, source="struct pthread", sure="exact")
    stack_bounds.PROVIDERS.append(lambda anchor: exact)
    try:
        assert thread_stack(STACK_HI - 8, MAPS) is exact
    finally:
        stack_bounds.PROVIDERS.pop()


def test_guard_hit_and_jump_over_the_guard():
    b = thread_stack(STACK_HI - 8, MAPS)
    assert left_the_stack(GUARD_LO + 8, STACK_LO + 8, b) == "guard"
    far_rsp = STACK_LO - 0x30000
    assert left_the_stack(far_rsp - 0x78, far_rsp, b) == "clash"
    assert left_the_stack(STACK_LO + 8, STACK_LO + 8, b) is None    # inside the stack
    assert left_the_stack(0x1000, STACK_LO + 0x100, b) is None      # a null-ish pointer


@pytest.mark.parametrize("language, needle, absent", [
    (None, "-fstack-clash-protection", "RUST_MIN_STACK"),
    ("rust", "RUST_MIN_STACK", "-fstack-clash-protection"),
])
def test_a_frame_past_the_guard_is_a_stack_overflow(language, needle, absent):
    rsp = STACK_LO - 0x30000
    cfa = STACK_HI - 0x400
    frames = [Frame(0, 0x555555556000, "clash_kernel", rsp, cfa),
              Frame(1, 0x555555557000, "caller", cfa, STACK_HI - 0x100)]
    a = build(0x555555556000, VMOVAPS_RCX, {"rsp": rsp, "rcx": rsp - 0x58, "rip": 0},
              Signal(11, 1, rsp - 0x78), frames, FunctionInfo("clash_kernel", None, None,
                                                              "unknown"),
              None, None, readable, stack=thread_stack(cfa, MAPS), language=language)
    assert (a.fault_kind, a.verdict) == ("stack-clash", "stack-overflow")
    assert a.frame_bytes == cfa - rsp
    advice = " ".join(a.advice)
    assert needle in advice and absent not in advice
    assert "never touched the guard" in " ".join(a.explanation)


def test_rust_misaligned_entry_blames_the_trampoline():
    rsp = STACK_HI - 0x208                       # entered with CFA % 16 == 8
    frames = [Frame(0, 0x1000, "_ZN4fold6kernel17h0123456789abcdefE", rsp, rsp + 0x20),
              Frame(1, 0x2000, "green_switch", rsp + 0x20, rsp + 0x48)]
    a = build(0x1000, MOVAPS_RSP, {"rsp": rsp, "rip": 0x1000}, Signal(11, 0x80, 0), frames,
              FunctionInfo("_ZN4fold6kernel17h0123456789abcdefE", None, None, "unknown"),
              None, None, readable, language="rust")
    assert a.stack_diagnosis == "entered-misaligned"
    advice = " ".join(a.advice)
    assert "trampoline" in advice and "-C llvm-args=-stackrealign" in advice
    assert "force_align_arg_pointer))" not in advice


def test_rust_misaligned_pointer_points_at_debug_assertions():
    a = build(0x1000, MOVAPS_RDI, {"rsp": STACK_HI - 0x200, "rdi": 0x7f0000010004,
                                   "rip": 0x1000}, Signal(11, 0x80, 0),
              [Frame(0, 0x1000, "f", STACK_HI - 0x200, STACK_HI - 0x1f0)],
              FunctionInfo("f", None, None, "unknown"), None, None, readable,
              language="rust")
    assert a.verdict == "other"
    assert "slice::from_raw_parts" in " ".join(a.advice)
