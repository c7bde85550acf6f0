"""The fault rule table, the faulting-instruction facts and the jump
explanation, on instruction bytes as the assembler encodes them (the e2e
tests in tests/e2e/test_faults.py run them on real crashes)."""
from __future__ import annotations

import struct

import pytest

from gdbext.knowledge.fault_rules import FAULT_RULES, safe_linked
from gdbext.spill.stack_bounds import StackBounds, left_the_stack
from gdbext.triage import fault_class, instruction, jump

PC = 0x555555555000


def reader(words: dict[int, int]):
    def read(address, length):
        if address not in words:
            raise ValueError(f"unreadable {address:#x}")
        return struct.pack("<Q", words[address])[:length]
    return read


def facts(**kw):
    base = dict(signo=11, code=1, addr=None, pc=PC, access=None, region=None)
    base.update(kw)
    return fault_class.FaultFacts(**base)


def test_ret_target_comes_from_the_stack():
    rsp = 0x7FFC00001000
    got = instruction.decode(PC, b"\xc3", {"rsp": rsp}, reader({rsp: 0x4141414141414141}))
    assert (got.flow, got.target, got.address) == ("ret", 0x4141414141414141, rsp)
    c = fault_class.classify(facts(code=0x80, insn=got, address_from="operand"))
    assert (c.name, c.rating) == ("return-to-bad-address", "exploitable")
    assert "0x4141414141414141" in c.explanation


def test_a_ret_to_good_code_is_not_smashed():
    rsp = 0x7FFC00001000
    got = instruction.decode(PC, b"\xc3", {"rsp": rsp}, reader({rsp: PC + 0x40}))
    f = facts(code=0x80, insn=got, exec_ranges=((PC, PC + 0x1000),))
    assert fault_class.classify(f).name == "general-protection"


def test_jmp_through_a_register_and_idiv():
    got = instruction.decode(PC, b"\xff\xe0", {"rax": 0xDEAD000000000000}, reader({}))
    assert (got.flow, got.target, got.target_from) == ("jmp", 0xDEAD000000000000, "%rax")
    div = instruction.decode(PC, b"\xf7\xfe", {"rsi": 0xFFFFFFFF00000000, "rax": 100},
                             reader({}))
    assert (div.divisor, div.divisor_value, div.dividend_value, div.size) == ("%esi", 0, 100,
                                                                               4)
    assert fault_class.classify(facts(signo=8, code=1, insn=div)).name == \
        "integer-divide-by-zero"
    over = instruction.decode(PC, b"\xf7\xfe", {"rsi": 0xFFFFFFFF, "rax": 0x80000000},
                              reader({}))
    assert fault_class.classify(facts(signo=8, code=1, insn=over)).name == "integer-overflow"


def test_execute_classes():
    tail = {"how": "tail-call", "callee": "run_file", "caller": "main"}
    c = fault_class.classify(facts(addr=0, pc=0, access="execute", jump=tail))
    assert (c.name, c.rating) == ("call-to-null", "probably-exploitable")
    assert "run_file jumped there" in c.explanation
    heap = fault_class.Region(None, None, None, 0x5000_0000, 0, False, end=0x5002_1000,
                              perms="rw-")
    c = fault_class.classify(facts(code=2, addr=0x5000_02A0, pc=0x5000_02A0, access="execute",
                                   region=heap, exec_ranges=((PC, PC + 0x1000),)))
    assert (c.name, c.rating) == ("execute-non-executable", "exploitable")
    assert "rw-" in c.explanation


def test_safe_linked_pointers():
    heap = ((0x560205616000, 0x560205637000),)
    node = instruction.InstructionFacts("add 0x8(%rdi),%rax", pointer=0x560205616)
    assert safe_linked(facts(insn=node, addr=0x56020561E, heaps=heap))
    mangled = (0x5602056162A0 >> 12) ^ 0x5602056162C0
    node = instruction.InstructionFacts("add 0x8(%rdi),%rax", pointer=mangled)
    assert safe_linked(facts(insn=node, addr=mangled + 8, heaps=heap))
    c = fault_class.classify(facts(insn=node, addr=mangled + 8, access="read", heaps=heap))
    assert (c.name, c.rule) == ("use-after-free", "fault:safe-linked-pointer")
    wild = instruction.InstructionFacts("mov (%rax),%rax", pointer=0x7F0012345678)
    assert not safe_linked(facts(insn=wild, addr=0x7F0012345678, heaps=heap))


@pytest.mark.parametrize("message, name, needle", [
    ("free(): invalid pointer", "invalid-free", "interior pointer"),
    # glibc 2.36 malloc.c mremap_chunk: realloc() of a stack address whose header
    # word happened to carry IS_MMAPPED
    ("mremap_chunk(): invalid pointer", "invalid-free", "stack or static address"),
    ("free(): double free detected in tcache 2", "double-free", "freed twice"),
    ("double free or corruption (fasttop)", "double-free", "double free"),
    ("free(): invalid next size (fast)", "heap-overflow", "ran past the end"),
    ("malloc(): corrupted top size", "heap-overflow", "top chunk"),
    ("malloc(): unaligned tcache chunk detected", "free-list-corruption", "use after free"),
])
def test_malloc_checks_by_message(message, name, needle):
    c = fault_class.for_abort("heap-corruption", {"check": message})
    assert c.name == name and needle in c.explanation and c.rating == "probably-exploitable"
    assert fault_class.for_abort("heap-corruption", {"check": "something new"}).name == \
        "heap-corruption"


def test_stack_limit_is_no_clash():
    main = StackBounds(0x7FFE00000000, 0x7FFE00800000)       # no guard mapping below
    rsp = main.lo - 48
    assert left_the_stack(rsp - 8, rsp, main, step=272) == "limit"
    assert left_the_stack(rsp - 8, rsp, main, step=0x10000) == "clash"
    assert left_the_stack(main.lo - 0x30000, main.lo - 0x30000 + 8, main) == "clash"


def test_tail_call_named_by_the_direct_call_target():
    callee, ret = 0x555555555180, 0x555555555070
    call = b"\xe8" + struct.pack("<i", callee - ret)
    j = jump.explain(0, 0x7FFC0000, ret, "main", b"\x90\x90" + call, {}, reader({}),
                     lambda a: {callee: "run"}.get(a))
    assert (j.how, j.callee) == ("tail-call", "run")
    assert not any("that call took the bad target" in line for line in j.explanation)
    direct = jump.explain(callee, 0x7FFC0000, ret, "main", b"\x90\x90" + call, {},
                          reader({}), lambda a: None)
    assert direct.how == "call" and direct.certain
    nothing = jump.explain(0x1234, 0x7FFC0000, 0x41414141, None, b"\x41" * 7)
    assert nothing.how == "jump-or-return"


def test_a_stack_segment_fault_is_no_null_write():
    """SIGBUS with SI_KERNEL (#SS) also has si_addr 0, which is no address."""
    push = instruction.decode(PC, b"\x50", {"rsp": 0x8000000000000010}, reader({}))
    c = fault_class.classify(facts(signo=7, code=0x80, addr=None, access=push.access,
                                   insn=push, address_from="operand"))
    assert c.name == "stack-segment-fault"
