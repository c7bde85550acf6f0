"""Where an FDE-less asm function keeps its return address, from its code:
on Debian's OpenBLAS kernel (the truth from objdump of its entry code) and
on small hand-encoded functions for the cases that must give no rule."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from gdbext import elf_file
from gdbext.unwind.asm_prologue import return_address_rule

START = 0x1000
SUB_20 = bytes.fromhex("4883ec20")          # sub $0x20,%rsp
MOV_RSP_RBX = bytes.fromhex("4889e3")       # mov %rsp,%rbx
AND_64 = bytes.fromhex("4883e4c0")          # and $-64,%rsp
TEST = bytes.fromhex("4885ff")              # test %rdi,%rdi
NOP = b"\x90"
RESTORE = bytes.fromhex("4889dc")           # mov %rbx,%rsp
ADD_20 = bytes.fromhex("4883c420")          # add $0x20,%rsp
RET = b"\xc3"


def _realigning(body: bytes) -> tuple[bytes, int]:
    """sub/mov rsp->rbx/and; a branch over ``body``; the epilogue restoring
    rsp from rbx.  Returns the code and the address of the body's first byte."""
    entry = SUB_20 + MOV_RSP_RBX + AND_64 + TEST
    jump = b"\x74" + bytes([len(body)])     # je over the body, to the epilogue
    code = entry + jump + body + RESTORE + b"\x48\x8b\x1c\x24" + ADD_20 + RET
    return code, START + len(entry) + len(jump)


def test_rsp_copy_survives_the_realigned_body():
    code, body = _realigning(NOP * 4)
    rule = return_address_rule(code, START, body + 2)
    assert (rule.register, rule.offset) == ("rbx", 0x20)
    assert "mov rbx,rsp" in rule.how


def test_at_entry_and_inside_the_entry_block_rsp_itself():
    code, _ = _realigning(NOP)
    assert (return_address_rule(code, START, START).register,
            return_address_rule(code, START, START).offset) == ("rsp", 0)
    after_sub = return_address_rule(code, START, START + len(SUB_20))
    assert (after_sub.register, after_sub.offset) == ("rsp", 0x20)


def test_a_body_that_writes_the_copy_gives_no_rule():
    code, body = _realigning(NOP + bytes.fromhex("31db") + NOP)     # xor %ebx,%ebx
    assert return_address_rule(code, START, body) is None


def test_an_indirect_jump_gives_no_rule():
    code, body = _realigning(NOP + bytes.fromhex("ffe0") + NOP)     # jmp *%rax
    assert return_address_rule(code, START, body) is None


def test_pc_in_the_epilogue_past_the_reload_gives_no_rule():
    code, body = _realigning(NOP * 2)
    reload = body + 2 + len(RESTORE)                        # mov (%rsp),%rbx
    assert return_address_rule(code, START, reload).register == "rbx"   # not run yet
    assert return_address_rule(code, START, reload + 4) is None


def test_a_frameless_function_with_a_call_keeps_rsp():
    # push %rbp; sub $0x10,%rsp; call next; nop; add $0x10,%rsp; pop %rbp; ret
    code = bytes.fromhex("55" "4883ec10" "e800000000" "90" "4883c410" "5d" "c3")
    rule = return_address_rule(code, START, START + 10)
    assert (rule.register, rule.offset) == ("rsp", 0x18)


def test_a_pc_between_instructions_or_outside_gives_no_rule():
    code, _ = _realigning(NOP)
    assert return_address_rule(code, START, START + 1) is None
    assert return_address_rule(code, START, START + len(code)) is None


OPENBLAS = Path("/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0")
KERNEL = "dgemm_kernel_PILEDRIVER"


@pytest.mark.skipif(not OPENBLAS.exists(), reason="Debian's libopenblas0-pthread is not "
                    "installed (make setup installs it)")
def test_openblas_piledriver_kernel_keeps_entry_rsp_in_rbx():
    [func] = [f for f in elf_file.functions(str(OPENBLAS)) if f.name == KERNEL]
    listing = subprocess.run(["objdump", "-d", "--no-show-raw-insn",
                              f"--start-address={func.start:#x}",
                              f"--stop-address={func.end:#x}", str(OPENBLAS)],
                             capture_output=True, text=True, check=True).stdout
    insns = re.findall(r"^[ \t]*([0-9a-f]+):[ \t]+(\S+)[ \t]*(.*)$", listing, re.M)
    # The truth from objdump: the first `sub $N,%rsp` (after an endbr64 in a
    # CET build: OpenBLAS 0.3.29 on Debian 13), then `mov %rsp,%rbx` with no
    # other rsp change between; the only later writes of rbx follow `mov
    # %rbx,%rsp` (the epilogue).
    first = next(i for i, (_, op, _a) in enumerate(insns) if op != "endbr64")
    frame = int(re.fullmatch(r"\$0x([0-9a-f]+),%rsp", insns[first][2]).group(1), 16)
    copy = next(i for i, (_, op, args) in enumerate(insns) if (op, args) == ("mov", "%rsp,%rbx"))
    assert not any(args.endswith(",%rsp") for _, _, args in insns[first + 1:copy])
    restore = next(i for i, (_, op, args) in enumerate(insns) if (op, args) == ("mov", "%rbx,%rsp"))
    [text] = [s for s in elf_file.code_sections(str(OPENBLAS)) if s.name == ".text"]
    code = text.data[func.start - text.address:func.end - text.address]
    # a pc in the body (the middle of the kernel) and the restore itself
    for addr in (int(insns[len(insns) // 2][0], 16), int(insns[restore][0], 16)):
        rule = return_address_rule(code, func.start, addr)
        assert (rule.register, rule.offset) == ("rbx", frame), (hex(addr), rule)
    # past the reload of rbx in the epilogue nothing is claimed
    assert return_address_rule(code, func.start, int(insns[restore + 2][0], 16)) is None


def test_a_call_in_the_entry_block_does_not_end_the_stepping():
    # sub $0x20,%rsp; call next; mov %rsp,%rbx; and $-64,%rsp; test; je; nop; restore...
    entry = SUB_20 + bytes.fromhex("e800000000") + MOV_RSP_RBX + AND_64 + TEST
    code = entry + b"\x74\x01" + NOP + RESTORE + ADD_20 + RET
    rule = return_address_rule(code, START, START + len(entry) + 2)
    assert (rule.register, rule.offset) == ("rbx", 0x20)
    # ... and a write of the copy after the call, still in the entry block, counts
    entry = SUB_20 + MOV_RSP_RBX + bytes.fromhex("e800000000") + bytes.fromhex("31db") \
        + AND_64 + TEST
    code = entry + b"\x74\x01" + NOP + RESTORE + ADD_20 + RET
    assert return_address_rule(code, START, START + len(entry) + 2) is None
