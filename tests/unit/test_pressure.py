"""Blocks, vector-register liveness and spill slots, checked on code assembled by
`as` or compiled by gcc at test time.

Expected values come from the assembly the test writes: label addresses from `nm`,
live counts worked out by hand from the instruction semantics (Intel SDM vol. 2:
VEX writes zero bits MAXVL-1:128, legacy SSE writes leave them alone, MOVSS's load
form zeroes bits 127:32 while its register form keeps them), slot offsets from the
frame the test builds.  For the gcc case the oracle is a regex over objdump's
disassembly.
"""
from __future__ import annotations

import re
import subprocess
import textwrap

import pytest

from gdbext.spill.pressure import analyse_function

BASE = 0x401000          # runtime address the code is analysed at


def _assemble(tmp_path, body: str, func: str = "f") -> tuple[bytes, dict[str, int]]:
    """Assemble ``body``; return the bytes from label ``func`` to ``<func>_end`` and
    every label's runtime address."""
    src, obj, binary = tmp_path / "t.s", tmp_path / "t.o", tmp_path / "t.bin"
    src.write_text(".text\n" + textwrap.dedent(body) + "\n")
    subprocess.run(["as", "--64", "-o", str(obj), str(src)], check=True)
    subprocess.run(["objcopy", "-O", "binary", "-j", ".text", str(obj), str(binary)], check=True)
    text = binary.read_bytes()
    labels = {}
    for line in subprocess.run(["nm", str(obj)], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tT":
            labels[parts[2]] = int(parts[0], 16)
    lo, hi = labels[func], labels.get(f"{func}_end", len(text))
    return text[lo:hi], {k: BASE + v - lo for k, v in labels.items()}


def _analyse(tmp_path, body: str):
    code, labels = _assemble(tmp_path, body)
    return analyse_function(code, BASE), labels


def _live_sequence(fp) -> list[int]:
    """Live count before each instruction, in address order over the whole function."""
    return [n for b in fp.blocks for n in b.live_at_pc.values()]


# ---------------------------------------------------------------------------
# blocks

BLOCKS = """
f:
    vmovdqu (%rdi), %ymm0
    call ext                      # a call does not end a block
    test %esi, %esi
    je b_skip
b_after_jcc:
    vpaddd %ymm0, %ymm0, %ymm0
b_loop:
    vpaddd %ymm1, %ymm0, %ymm0
    dec %esi
    jnz b_loop
b_after_loop:
    jmp b_end
b_after_jmp:
    ud2
b_after_ud2:
    hlt
b_skip:
    jmp *%rax
b_after_ijmp:
    vmovdqu %ymm0, (%rdi)
b_end:
    vzeroupper
    ret
b_after_ret:
    ret
f_end:
ext:
    ret
"""


def test_blocks_start_at_labels(tmp_path):
    fp, at = _analyse(tmp_path, BLOCKS)
    starts = [b.start for b in fp.blocks]
    assert starts == sorted(at[k] for k in at if k not in ("f_end", "ext"))
    first = fp.blocks[0]
    assert (first.instructions, first.end) == (4, at["b_after_jcc"])
    by_start = {b.start: b for b in fp.blocks}
    assert set(by_start[at["f"]].successors) == {at["b_skip"], at["b_after_jcc"]}
    assert set(by_start[at["b_loop"]].successors) == {at["b_loop"], at["b_after_loop"]}
    assert by_start[at["b_after_loop"]].successors == (at["b_end"],)
    assert by_start[at["b_after_jmp"]].successors == ()          # ud2
    assert by_start[at["b_after_ud2"]].successors == ()          # hlt
    assert by_start[at["b_end"]].successors == ()                # ret
    # an indirect jmp may reach any block nothing else reaches (jump-table cases)
    assert set(by_start[at["b_skip"]].successors) == {
        at["b_after_jmp"], at["b_after_ud2"], at["b_after_ijmp"], at["b_after_ret"]}
    assert fp.block_at(at["b_loop"] + 2).start == at["b_loop"]
    assert fp.block_at(at["f_end"]) is None


def test_undecodable_bytes_end_a_block(tmp_path):
    fp, at = _analyse(tmp_path, """
    f:
        vmovdqu (%rdi), %ymm0
    bad:
        .byte 0x06                # push %es: not an x86-64 instruction
    after:
        vmovdqu %ymm0, (%rsi)
        ret
    f_end:
    """)
    assert [(b.start, b.end) for b in fp.blocks] == [(at["f"], at["bad"]),
                                                     (at["after"], at["f_end"])]
    assert fp.blocks[0].successors == ()
    assert fp.undecodable_bytes == 1
    assert analyse_function(b"\x06\x06\x06", BASE).blocks == ()
    assert analyse_function(b"", BASE).blocks == ()
    cut = analyse_function(bytes.fromhex("c5fe6f07c5fe7f"), BASE)     # second vmovdqu cut
    assert cut.instructions == 1 and cut.undecodable_bytes == 3


def test_max_instructions_bounds_the_work(tmp_path):
    code, _ = _assemble(tmp_path, "f:\n" + "    vpaddd %ymm1, %ymm0, %ymm0\n" * 50 + "f_end:\n")
    fp = analyse_function(code, BASE, max_instructions=10)
    assert fp.truncated and fp.instructions == 10
    assert fp.blocks[0].end == BASE + 40                 # 4-byte VEX instructions


# ---------------------------------------------------------------------------
# liveness

def test_sixteen_live_ymm(tmp_path):
    defs = "".join(f"    vpbroadcastd {4 * k}(%rdi), %ymm{k}\n" for k in range(16))
    adds = "".join(f"    vpaddd %ymm{k}, %ymm0, %ymm0\n" for k in range(1, 16))
    fp, at = _analyse(tmp_path, "f:\n" + defs + "use:\n" + adds +
                      "    vmovdqu %ymm0, (%rsi)\n    vzeroupper\n    ret\nf_end:\n")
    assert fp.register_file == 16
    (block,) = fp.blocks
    # k registers live before the k-th def; 16 before the first add, one fewer per add
    assert list(block.live_at_pc.values()) == (list(range(16)) + list(range(16, 1, -1))
                                               + [1, 0, 0])
    assert block.vector_registers_live_max == 16
    assert block.vector_registers_used == tuple(f"ymm{k}" for k in range(16))
    assert fp.live_registers_at(at["use"]) == tuple(f"ymm{k}" for k in range(16))
    assert fp.oversized_blocks() == []                   # full, but nothing spilled


@pytest.mark.parametrize("idiom, store", [
    ("vpxor %ymm3, %ymm3, %ymm3", "vmovdqu %ymm3, (%rdi)"),
    ("vpxor %xmm3, %xmm3, %xmm3", "vmovdqu %ymm3, (%rdi)"),   # VEX: upper zeroed too
    ("vxorps %ymm3, %ymm3, %ymm3", "vmovups %ymm3, (%rdi)"),
    ("vpsubq %ymm3, %ymm3, %ymm3", "vmovdqu %ymm3, (%rdi)"),
    ("vpandn %ymm3, %ymm3, %ymm3", "vmovdqu %ymm3, (%rdi)"),
    ("vandnps %ymm3, %ymm3, %ymm3", "vmovups %ymm3, (%rdi)"),
    ("pxor %xmm3, %xmm3", "movdqu %xmm3, (%rdi)"),
    ("xorps %xmm3, %xmm3", "movups %xmm3, (%rdi)"),
    ("xorpd %xmm3, %xmm3", "movupd %xmm3, (%rdi)"),
    ("psubd %xmm3, %xmm3", "movdqu %xmm3, (%rdi)"),
    ("pandn %xmm3, %xmm3", "movdqu %xmm3, (%rdi)"),
    ("andnps %xmm3, %xmm3", "movups %xmm3, (%rdi)"),
])
def test_zeroing_idiom_defines_without_reading(tmp_path, idiom, store):
    fp, _ = _analyse(tmp_path, f"f:\n    {idiom}\n    {store}\n    ret\nf_end:\n")
    assert _live_sequence(fp) == [0, 1, 0]


@pytest.mark.parametrize("not_idiom, live_before", [
    ("vpcmpeqd %ymm3, %ymm3, %ymm3", 1),    # all ones, but not in the idiom rule
    ("vpxor %ymm4, %ymm3, %ymm3", 2),       # different sources
    ("vpxor (%rsi), %ymm3, %ymm3", 1),      # memory source
])
def test_not_zeroing_idioms_read(tmp_path, not_idiom, live_before):
    fp, _ = _analyse(tmp_path, f"f:\n    {not_idiom}\n    vmovdqu %ymm3, (%rdi)\n"
                               "    ret\nf_end:\n")
    assert _live_sequence(fp) == [live_before, 1, 0]


def test_mask_registers_are_counted_apart(tmp_path):
    idiom, _ = _analyse(tmp_path, "f:\n    kxorw %k1, %k1, %k1\n    kmovw %k1, (%rdi)\n"
                                  "    ret\nf_end:\n")
    merge, _ = _analyse(tmp_path, "f:\n    kxorw %k2, %k1, %k1\n    kmovw %k1, (%rdi)\n"
                                  "    ret\nf_end:\n")
    assert idiom.blocks[0].mask_registers_live_max == 1
    assert merge.blocks[0].mask_registers_live_max == 2
    assert _live_sequence(merge) == [0, 0, 0]            # no vector register involved
    assert merge.register_file == 16                     # kxorw is VEX, not EVEX


@pytest.mark.parametrize("body, expected", [
    # VEX write to xmm zeroes bits 255:128: the first ymm2 value is dead
    ("vmovaps (%rdi), %ymm2\n vmovaps (%rsi), %xmm2\n vmovaps %ymm2, (%rdx)\n ret",
     [0, 0, 1, 0]),
    # legacy write to xmm keeps bits 255:128, which the ymm store reads
    ("vmovaps (%rdi), %ymm2\n movaps (%rsi), %xmm2\n vmovaps %ymm2, (%rdx)\n ret",
     [0, 1, 1, 0]),
    ("vmovaps (%rdi), %ymm2\n pxor %xmm2, %xmm2\n vmovaps %ymm2, (%rdx)\n ret",
     [0, 1, 1, 0]),
    # pure SSE: a legacy load replaces all of bits 127:0, nothing reads higher
    ("movaps (%rdi), %xmm2\n addps %xmm2, %xmm2\n movaps %xmm2, (%rsi)\n ret",
     [0, 1, 1, 0]),
    # MOVSS load form zeroes bits 127:32; the register form merges into them
    ("movss (%rdi), %xmm0\n movaps %xmm0, (%rsi)\n ret", [0, 1, 0]),
    ("movss %xmm1, %xmm0\n movaps %xmm0, (%rsi)\n ret", [2, 1, 0]),
    # legacy pinsrd merges a lane
    ("pinsrd $1, (%rdi), %xmm5\n movdqa %xmm5, (%rsi)\n ret", [1, 1, 0]),
    # vzeroupper keeps bits 127:0 (and does not make all 16 live); vzeroall kills
    ("vmovaps (%rdi), %ymm1\n vzeroupper\n movaps %xmm1, (%rsi)\n ret", [0, 1, 1, 0]),
    ("vmovaps (%rdi), %ymm1\n vzeroall\n movaps %xmm1, (%rsi)\n ret", [0, 0, 1, 0]),
    # EVEX merge-masking reads the old destination, zero-masking does not
    ("kmovw (%rdx), %k1\n vmovdqu32 (%rdi), %zmm3{%k1}\n vmovdqu32 %zmm3, (%rsi)\n ret",
     [1, 1, 1, 0]),
    ("kmovw (%rdx), %k1\n vmovdqu32 (%rdi), %zmm3{%k1}{z}\n vmovdqu32 %zmm3, (%rsi)\n ret",
     [0, 0, 1, 0]),
    # FMA reads its destination
    ("vfmadd231ps %ymm1, %ymm2, %ymm3\n vmovups %ymm3, (%rsi)\n ret", [3, 1, 0]),
])
def test_partial_and_full_writes(tmp_path, body, expected):
    fp, _ = _analyse(tmp_path, "f:\n " + body + "\nf_end:\n")
    assert _live_sequence(fp) == expected


@pytest.mark.parametrize("body, expected", [
    # every vector register is caller-saved: the ymm5 read after the call is a new value
    ("vmovaps (%rdi), %ymm9\n call ext\n vmovaps %ymm9, (%rsi)\n ret", [0, 0, 1, 0]),
    # xmm0/xmm1 set in the block right before the call are its arguments
    ("vmovaps (%rdi), %xmm0\n vmovaps (%rsi), %xmm1\n call ext\n ret", [0, 1, 2, 0]),
    # xmm8 is not an argument register
    ("vmovaps (%rdi), %xmm8\n call ext\n ret", [0, 0, 0]),
    # a tail call passes arguments too
    ("vmovaps (%rdi), %xmm0\n jmp ext", [0, 1]),
])
def test_calls(tmp_path, body, expected):
    fp, _ = _analyse(tmp_path, "f:\n " + body + "\nf_end:\next:\n ret\n")
    assert _live_sequence(fp) == expected


def test_liveness_flows_around_a_loop(tmp_path):
    fp, at = _analyse(tmp_path, """
    f:
        vmovdqu (%rdi), %ymm0
        vmovdqu (%rsi), %ymm1
        vmovdqu (%rdx), %ymm2          # read only after the loop
    loop:
        vpaddd %ymm1, %ymm0, %ymm0
        dec %ecx
        jnz loop
    after:
        vpaddd %ymm2, %ymm0, %ymm0
        vmovdqu %ymm0, (%rdi)
        vzeroupper
        ret
    f_end:
    """)
    loop = fp.block_at(at["loop"])
    assert list(loop.live_at_pc.values()) == [3, 3, 3]     # ymm0-2 live around the back edge
    assert list(fp.block_at(at["f"]).live_at_pc.values()) == [0, 1, 2]


def test_register_file(tmp_path):
    avx2, _ = _analyse(tmp_path, "f:\n vpaddd %ymm15, %ymm1, %ymm1\n ret\nf_end:\n")
    high, _ = _analyse(tmp_path, "f:\n vpaddd %ymm17, %ymm1, %ymm1\n ret\nf_end:\n")
    evex, _ = _analyse(tmp_path, "f:\n {evex} vpaddd %ymm2, %ymm1, %ymm1\n ret\nf_end:\n")
    assert (avx2.register_file, high.register_file, evex.register_file) == (16, 32, 32)
    assert high.blocks[0].vector_registers_used == ("ymm1", "ymm17")


# ---------------------------------------------------------------------------
# spill slots

def test_spill_store_and_reloads(tmp_path):
    fp, at = _analyse(tmp_path, """
    f:
        sub $0x68, %rsp
        vmovdqu (%rdi), %ymm3
    spill:
        vmovdqa %ymm3, 0x20(%rsp)
    dead_store:
        vmovdqa %ymm4, 0x40(%rsp)      # never read back: not a spill slot
        mov %rax, (%rsp)
    gpr_slot:
        vmovq (%rsp), %xmm5            # read, but never stored from a vector register
        vmovdqa %ymm6, (%rbx)          # not the stack
        vpaddd (%rbx), %ymm6, %ymm6
    folded:
        vpaddd 0x20(%rsp), %ymm1, %ymm1
    reload:
        vmovdqa 0x20(%rsp), %ymm2
        add $0x68, %rsp
        vzeroupper
        ret
    f_end:
    """)
    (slot,) = fp.slots
    assert (slot.base, slot.offset, slot.cfa_relative, slot.size) == ("rsp", -0x68 + 0x20 - 8,
                                                                       True, 32)
    assert [(a.pc, a.kind, a.size) for a in slot.accesses] == [
        (at["spill"], "store", 32), (at["folded"], "folded-reload", 32),
        (at["reload"], "reload", 32)]
    assert slot.accesses[1].text == "vpaddd 0x20(%rsp),%ymm1,%ymm1"
    assert (fp.spill_stores, fp.spill_reloads) == (1, 2)
    assert fp.slot_at(at["folded"]) is slot
    assert fp.slot_at(at["dead_store"]) is None and fp.slot_at(at["gpr_slot"]) is None
    assert (fp.blocks[0].spill_stores, fp.blocks[0].spill_reloads) == (1, 2)


def test_rsp_delta_is_normalised_across_push(tmp_path):
    fp, at = _analyse(tmp_path, """
    f:
        sub $0x20, %rsp
    st:
        vmovdqu %ymm1, (%rsp)
        push %rbx
    ld:
        vpaddd 8(%rsp), %ymm2, %ymm2   # the same slot, 8 bytes further from rsp
    other:
        vmovq (%rsp), %xmm3            # the pushed rbx, next to the slot
        pop %rbx
    ld2:
        vmovdqu (%rsp), %ymm0
        add $0x20, %rsp
        ret
    f_end:
    """)
    (slot,) = fp.slots
    assert slot.cfa_relative and slot.offset == -0x28
    assert [a.pc for a in slot.accesses] == [at["st"], at["ld"], at["ld2"]]
    assert fp.slot_at(at["other"]) is None


def test_rsp_delta_follows_the_cfg_past_an_early_return(tmp_path):
    fp, at = _analyse(tmp_path, """
    f:
        sub $0x28, %rsp
    st:
        vmovaps %xmm0, 0x10(%rsp)
        test %edi, %edi
        je later
        add $0x28, %rsp               # early return: rsp back at the entry value
        ret
    later:                            # reached from the je, still 0x28 below
    ld:
        vaddps 0x10(%rsp), %xmm1, %xmm1
        add $0x28, %rsp
        ret
    f_end:
    """)
    (slot,) = fp.slots
    assert (slot.offset, slot.cfa_relative) == (-0x28 + 0x10 - 8, True)
    assert [a.pc for a in slot.accesses] == [at["st"], at["ld"]]


def test_disagreeing_paths_start_an_epoch(tmp_path):
    fp, at = _analyse(tmp_path, """
    f:
        test %edi, %edi
        je join
        push %rbx                     # one path is 8 bytes lower
    join:
        vmovaps %xmm0, (%rsp)
        vaddps (%rsp), %xmm1, %xmm1
        ret
    f_end:
    """)
    (slot,) = fp.slots
    assert (slot.offset, slot.cfa_relative, slot.epoch) == (0, False, at["join"])


def test_rbp_frame_slots_meet_rsp_slots(tmp_path):
    fp, at = _analyse(tmp_path, """
    f:
        push %rbp
        mov %rsp, %rbp
        sub $0x30, %rsp
    st:
        vmovaps %xmm0, -0x20(%rbp)     # CFA - 0x30
    ld:
        vaddps 0x10(%rsp), %xmm1, %xmm1   # CFA - 8 - 0x30 + 0x10 - 8 = CFA - 0x30
        leave
        ret
    f_end:
    """)
    (slot,) = fp.slots
    assert (slot.base, slot.offset, slot.cfa_relative) == ("rbp", -0x30, True)
    assert [(a.pc, a.kind) for a in slot.accesses] == [(at["st"], "store"),
                                                       (at["ld"], "folded-reload")]


def test_rbp_as_a_general_register_is_not_a_frame(tmp_path):
    fp, _ = _analyse(tmp_path, """
    f:
        push %rbp
        mov %rdi, %rbp
        vmovaps %xmm0, (%rbp)
        vaddps (%rbp), %xmm1, %xmm1
        pop %rbp
        ret
    f_end:
    """)
    assert fp.slots == () and fp.spill_stores == 0


@pytest.mark.parametrize("spill", ["vmovd %xmm5, 0x14(%rsp)", "vpextrd $1, %xmm5, 0x14(%rsp)"])
def test_seed_shape_vpinsrd_reload_in_a_full_block(tmp_path, spill):
    defs = "".join(f"    vpbroadcastd {4 * k}(%rdi), %ymm{k}\n" for k in range(16))
    adds = "".join(f"    vpaddd %ymm{k}, %ymm0, %ymm0\n" for k in range(1, 16))
    fp, at = _analyse(tmp_path, f"""
f:
    push %rbp
    mov %rsp, %rbp
realign:
    and $-32, %rsp
    sub $0x60, %rsp
{defs}
spill:
    {spill}
    vpaddd %ymm6, %ymm5, %ymm5
seed:
    vpinsrd $0x1, 0x14(%rsp), %xmm5, %xmm5
{adds}
    vmovdqu %ymm0, (%rsi)
    vzeroupper
    leave
    ret
f_end:
""")
    (block,) = fp.blocks
    assert block.vector_registers_live_max == 16 == fp.register_file
    slot = fp.slot_at(at["seed"])
    assert slot is not None
    assert (slot.base, slot.offset, slot.cfa_relative, slot.epoch) == ("rsp", 0x14, False,
                                                                      at["realign"])
    assert [(a.pc, a.kind, a.size) for a in slot.accesses] == [
        (at["spill"], "store", 4), (at["seed"], "folded-reload", 4)]
    assert slot.accesses[1].text.startswith("vpinsrd ")
    assert "0x14(%rsp)" in slot.accesses[1].text
    assert fp.oversized_blocks() == [block]


# ---------------------------------------------------------------------------
# compiled code

ACCUMULATORS = 24


def _acc_source() -> str:
    k = range(ACCUMULATORS)
    return "\n".join([
        "#include <xmmintrin.h>",
        "__m128 acc(const float *p, long n)",
        "{",
        *(f"    __m128 a{i} = _mm_set1_ps({i}.0f);" for i in k),
        "    for (long i = 0; i < n; i++) {",
        "        __m128 x = _mm_loadu_ps(p + 4 * i);",
        *(f"        a{i} = _mm_add_ps(_mm_mul_ps(a{i}, x), x);" for i in k),
        "    }",
        "    return " + " + ".join(f"a{i}" for i in k) + ";",
        "}", ""])


_STORE = re.compile(r"\s(?:v?mov(?:aps|ups|apd|upd|dqa|dqu|ss|sd|d|q))\s+%[xy]mm\d+,"
                    r"(-?0x[0-9a-f]+)?\(%rsp\)$")
_READ = re.compile(r"\s(-?0x[0-9a-f]+)?\(%rsp\),(?:.*,)?%[xy]mm\d+$")


def test_gcc_spills_24_accumulators(tmp_path):
    (tmp_path / "acc.c").write_text(_acc_source())
    obj = tmp_path / "acc.o"
    subprocess.run(["gcc", "-O2", "-c", "-o", str(obj), str(tmp_path / "acc.c")], check=True)
    subprocess.run(["objcopy", "-O", "binary", "-j", ".text", str(obj),
                    str(tmp_path / "acc.bin")], check=True)
    nm = subprocess.run(["nm", "-S", str(obj)], capture_output=True, text=True,
                        check=True).stdout
    addr, size = next((int(p[0], 16), int(p[1], 16)) for p in map(str.split, nm.splitlines())
                      if len(p) == 4 and p[3] == "acc")
    code = (tmp_path / "acc.bin").read_bytes()[addr:addr + size]

    # oracle: rsp-relative stores from xmm whose displacement an xmm instruction reads
    # (gcc adjusts rsp once, before any of these accesses)
    listing = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(obj)],
                             capture_output=True, text=True, check=True).stdout
    lines = [ln.rstrip() for ln in listing.split("<acc>:", 1)[1].splitlines()]
    stores = [int(m.group(1) or "0", 16) for m in map(_STORE.search, lines) if m]
    reads = {int(m.group(1) or "0", 16) for m in map(_READ.search, lines) if m}
    expected_stores = sum(d in reads for d in stores)
    assert expected_stores > 0

    fp = analyse_function(code, BASE)
    assert fp.spill_stores == expected_stores
    assert fp.register_file == 16
    oversized = fp.oversized_blocks()
    assert oversized
    # the loop (its block branches to itself) is one of them
    assert any(b.start in b.successors for b in oversized)


# ---------------------------------------------------------------------------
# size

def test_a_twenty_thousand_instruction_block(tmp_path):
    """One 20k-instruction AVX2 block: 16 live ymm, a spill and a folded reload per round."""
    unit = ("".join(f"    vpaddd %ymm{(k + 1) % 16}, %ymm{k}, %ymm{k}\n" for k in range(16))
            + "    vmovdqa %ymm3, 0x20(%rsp)\n    vpaddd 0x20(%rsp), %ymm4, %ymm4\n"
            + "    vpinsrd $1, 0x14(%rsp), %xmm5, %xmm5\n    vmovd %xmm5, 0x14(%rsp)\n")
    rounds = 20_000 // 20
    code, _ = _assemble(tmp_path, "f:\n    sub $0x48, %rsp\n" + unit * rounds
                        + "    add $0x48, %rsp\n    vzeroupper\n    ret\nf_end:\n")
    fp = analyse_function(code, BASE)      # its speed is bench/spill_audit_speed.py's, not a test's
    assert fp.instructions == 20 * rounds + 4
    assert fp.spill_stores == 2 * rounds and fp.spill_reloads == 2 * rounds
    assert fp.oversized_blocks() == [fp.blocks[0]]
