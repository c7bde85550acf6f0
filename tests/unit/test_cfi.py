"""cfa_rule_at checked against an independent oracle: the row tables that
`readelf -wN --debug-dump=frames-interp` (binutils) prints for real libraries
and for a shared object compiled here with gcc.  Every row of each sampled FDE
is asked about at its first byte, its middle and its last byte.

-wN: without it readelf also follows .gnu_debuglink to an installed separate
debug file, whose .eh_frame is NOBITS, and exits 1.
"""
from __future__ import annotations

import bisect
import glob
import functools
import random
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gdbext.errors import GdbextError
from gdbext.spill import cfi
from gdbext.spill.cfi import CfaRule, cfa_rule_at, fde_bounds, lookup

from tests.host import debian_python, have

LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
LIBM = "/lib/x86_64-linux-gnu/libm.so.6"
BIG = ["/usr/bin/gdb", str(debian_python())]
# timing only: the newest LLVM library installed (Debian 12 has libLLVM-15 here)
HUGE = (sorted(glob.glob("/usr/lib/x86_64-linux-gnu/libLLVM*.so.*"),
               key=lambda p: [int(n) for n in re.findall(r"\d+", Path(p).name)])
        or ["/usr/lib/x86_64-linux-gnu/libLLVM-N.so.1"])[-1]

pytestmark = pytest.mark.skipif(not have("readelf"), reason="needs binutils' readelf")


# --- the oracle -------------------------------------------------------------

@dataclass
class Row:
    loc: int
    cfa: str                  # rsp+8, rbp+16, r10+0, exp
    cols: dict[str, str]      # readelf column -> u, s, c-16, v-40, exp, r0 (rax), ...


@dataclass
class Entry:
    offset: int
    start: int = 0
    end: int = 0
    cie: int = 0              # an FDE's CIE offset
    aug: str = ""             # a CIE's augmentation string
    rows: list[Row] = field(default_factory=list)


CIE_LINE = re.compile(r'^([0-9a-f]+) [0-9a-f]+ [0-9a-f]+ CIE "([^"]*)"')
FDE_LINE = re.compile(r"^([0-9a-f]+) [0-9a-f]+ [0-9a-f]+ FDE cie=([0-9a-f]+) pc=([0-9a-f]+)\.\.([0-9a-f]+)")
ROW_LINE = re.compile(r"^([0-9a-f]{16}) (.*)$")
TOKEN = re.compile(r"r\d+ \([^)]*\)|\S+")     # "r0 (rax)" is one value


@functools.lru_cache(maxsize=8)
def readelf_frames(path: str) -> tuple[dict[int, Entry], list[Entry]]:
    """CIEs by offset and FDEs of .eh_frame, as readelf interprets them."""
    out = subprocess.run(["readelf", "-wN", "--debug-dump=frames-interp", path], check=True,
                         capture_output=True, text=True).stdout
    cies: dict[int, Entry] = {}
    fdes: list[Entry] = []
    entry, columns, in_eh_frame = None, [], False
    for line in out.splitlines():
        if line.startswith("Contents of the "):
            in_eh_frame = line.startswith("Contents of the .eh_frame section")
            entry = None
            continue
        if not in_eh_frame:
            continue
        if m := CIE_LINE.match(line):
            entry = cies[int(m[1], 16)] = Entry(int(m[1], 16), aug=m[2])
        elif m := FDE_LINE.match(line):
            entry = Entry(int(m[1], 16), int(m[3], 16), int(m[4], 16), int(m[2], 16))
            fdes.append(entry)
        elif line.startswith("   LOC"):
            columns = line.split()[2:]
        elif entry is not None and (m := ROW_LINE.match(line)):
            cfa, *values = TOKEN.findall(m[2])
            assert len(values) == len(columns), f"cannot split readelf row {line!r}"
            entry.rows.append(Row(int(m[1], 16), cfa, dict(zip(columns, values))))
    return cies, fdes


def expected(row: Row) -> tuple[str, dict[str, int], set[str]]:
    """The CFA, the c+N registers and the exp registers of one readelf row."""
    saved, exprs = {}, set()
    for col, value in row.cols.items():
        name = "rip" if col == "ra" else col
        if m := re.fullmatch(r"c([+-]\d+)", value):
            saved[name] = int(m[1])
        elif value == "exp":
            exprs.add(name)
    return row.cfa, saved, exprs


def probe_pcs(fde: Entry, rows: list[Row]) -> list[int]:
    """Each row's first byte, middle and last byte, inside the FDE."""
    pcs = {fde.start, fde.end - 1}
    for i, row in enumerate(rows):
        nxt = rows[i + 1].loc if i + 1 < len(rows) else fde.end
        pcs.update((row.loc, (row.loc + nxt) // 2, nxt - 1))
    return sorted(pc for pc in pcs if fde.start <= pc < fde.end)


def mismatches(path: str, fde: Entry, cies: dict[int, Entry]) -> list[str]:
    # An FDE whose instructions are all nops gets no table: its rows are the CIE's.
    rows = fde.rows or cies[fde.cie].rows
    locs = [r.loc for r in rows]
    signal = "S" in cies[fde.cie].aug
    bad = []
    if fde_bounds(path, fde.start) != (fde.start, fde.end):
        bad.append(f"fde_bounds({fde.start:#x}) = {fde_bounds(path, fde.start)}")
    for pc in probe_pcs(fde, rows):
        got = lookup(path, pc)
        if not rows:
            if isinstance(got, CfaRule):
                bad.append(f"{pc:#x}: readelf has no rule, got {got.cfa}")
            continue
        want = expected(rows[bisect.bisect_right(locs, pc) - 1])
        if not isinstance(got, CfaRule):
            bad.append(f"{pc:#x}: {got}; readelf {want}")
            continue
        have_ = (got.cfa, got.saved, set(got.saved_expressions))
        if have_ != want or (got.fde_start, got.fde_end) != (fde.start, fde.end) \
                or got.signal_frame != signal or got.pc != pc:
            bad.append(f"{pc:#x} in FDE {fde.offset:#x}: got {have_} signal={got.signal_frame}, "
                       f"readelf {want} signal={signal}")
    return bad


def check_against_readelf(path: str, sample: int | None, seed: int = 20240601) -> int:
    cies, fdes = readelf_frames(path)
    fdes = [f for f in fdes if f.end > f.start]
    chosen = fdes if sample is None or sample >= len(fdes) else random.Random(seed).sample(fdes, sample)
    # Signal frames (glibc's __restore_rt) are rare; always include them.
    chosen += [f for f in fdes if "S" in cies[f.cie].aug and f not in chosen]
    bad = [m for fde in chosen for m in mismatches(path, fde, cies)]
    assert not bad, f"{len(bad)} mismatches in {path}, first: " + "\n".join(bad[:15])
    return len(chosen)


def existing(*paths: str) -> list:
    """Each path as a case; one that is not installed here skips, naming it."""
    return [pytest.param(p, marks=pytest.mark.skipif(not Path(p).exists(),
                                                     reason=f"{p} is not installed"))
            for p in paths]


# --- real files --------------------------------------------------------------

@pytest.mark.parametrize("path", existing(LIBC, LIBM, *BIG))
def test_sampled_fdes_match_readelf(path):
    assert check_against_readelf(path, sample=200) >= 200


@pytest.mark.skipif(not Path(LIBC).exists(), reason="no glibc at the Debian path")
def test_glibc_restore_rt_is_a_signal_frame_with_expression_rules():
    cies, fdes = readelf_frames(LIBC)
    sig = [f for f in fdes if "S" in cies[f.cie].aug]
    assert sig, "glibc's __restore_rt has a CIE with augmentation 'S'"
    rule = cfa_rule_at(LIBC, sig[0].start + 1)
    assert rule.signal_frame and rule.expression and rule.register is None
    assert rule.cfa_expression[0] == 0x77            # DW_OP_breg7 (rsp): CFA read from the sigcontext
    assert "rip" in rule.saved_expressions and "rip" not in rule.saved


def test_pc_outside_every_fde_is_none():
    cies, fdes = readelf_frames(LIBC)
    spans = sorted((f.start, f.end) for f in fdes if f.end > f.start)
    gap = next(end for (_, end), (nxt, _) in zip(spans, spans[1:]) if nxt > end)
    assert cfa_rule_at(LIBC, gap) is None and fde_bounds(LIBC, gap) is None
    assert "no FDE" in lookup(LIBC, gap)
    assert cfa_rule_at(LIBC, spans[0][0] - 1) is None
    assert cfa_rule_at(LIBC, spans[-1][1] + 0x100000) is None
    assert cfa_rule_at(LIBC, 0) is None


# --- a shared object built here ----------------------------------------------

SOURCE = r"""
#include <immintrin.h>
extern void sink(void *);
extern long ext(long);

long normal(long a, long b) { long x = ext(a); long y = ext(b + x); return x * y + ext(x - y); }

/* 32-byte aligned locals: GCC realigns with push rbp; mov rbp,rsp; and rsp,-32 */
void realign(int n) {
    __m256 v[4] __attribute__((aligned(32)));
    for (int i = 0; i < 4; i++) v[i] = _mm256_set1_ps((float)(i * n));
    sink(v);
}

/* ... and with alloca too, through a DRAP register: CFA = r10, then an expression */
void realign_drap(int n) {
    __m256 v[4] __attribute__((aligned(32)));
    char *buf = __builtin_alloca(n);
    for (int i = 0; i < 4; i++) v[i] = _mm256_set1_ps((float)(i * n));
    sink(v); sink(buf);
}

/* a cleanup under -fexceptions: a "zPLR" CIE and an LSDA pointer in the FDE */
static void cb(int *p) { ext(*p); }
long with_cleanup(long a) { int x __attribute__((cleanup(cb))) = (int)a; return ext(a) + x; }

__asm__(
    ".text\n.globl asm_cfi\n.type asm_cfi,@function\nasm_cfi:\n"
    ".cfi_startproc\n"
    "push %rbx\n.cfi_adjust_cfa_offset 8\n.cfi_offset %rbx, -16\n"
    "test %rdi, %rdi\njz 1f\n"
    ".cfi_remember_state\n"
    "pop %rbx\n.cfi_adjust_cfa_offset -8\n.cfi_restore %rbx\n"
    ".globl asm_cfi_ret\nasm_cfi_ret:\nret\n"
    ".cfi_restore_state\n"
    "1:\n.globl asm_cfi_restored\nasm_cfi_restored:\n"
    "push %rbp\n.cfi_adjust_cfa_offset 8\n.cfi_offset %rbp, -24\n"
    "mov %rsp, %rbp\n.cfi_def_cfa_register %rbp\n"
    ".cfi_escape 0x2e, 0x10\n"                           /* DW_CFA_GNU_args_size 16 */
    ".fill 300, 1, 0x90\n"                               /* -> DW_CFA_advance_loc2 */
    ".globl asm_cfi_mid\nasm_cfi_mid:\n"
    ".cfi_undefined %r12\n.cfi_same_value %r13\n.cfi_register %r14, %rax\n"
    ".cfi_val_offset %r15, -40\n.cfi_offset %r11, 8\n"   /* 8: DW_CFA_offset_extended_sf */
    ".fill 70000, 1, 0x90\n"                             /* -> DW_CFA_advance_loc4 */
    ".globl asm_cfi_far\nasm_cfi_far:\n"
    "leave\n.cfi_def_cfa %rsp, 16\n.cfi_restore %rbp\n"
    "pop %rbx\n.cfi_def_cfa_offset 8\n.cfi_restore %rbx\n"
    "ret\n.cfi_endproc\n.size asm_cfi, .-asm_cfi\n"
    ".globl asm_sig\n.type asm_sig,@function\nasm_sig:\n"
    ".cfi_startproc\n.cfi_signal_frame\nnop\n.cfi_def_cfa_offset 16\nnop\nret\n"
    ".cfi_endproc\n.size asm_sig, .-asm_sig\n"
    /* opcodes gas does not emit by itself, one row each */
    ".globl asm_escapes\n.type asm_escapes,@function\nasm_escapes:\n"
    ".cfi_startproc\nnop\n"
    ".cfi_escape 0x12, 0x07, 0x7e\nnop\n"               /* def_cfa_sf rsp, -2 * -8 */
    ".cfi_escape 0x13, 0x7d\nnop\n"                     /* def_cfa_offset_sf -3 * -8 */
    ".cfi_escape 0x2f, 0x0c, 0x05\nnop\n"               /* GNU_negative_offset_extended r12 */
    ".cfi_escape 0x16, 0x03, 0x02, 0x77, 0x10\nnop\n"   /* val_expression rbx */
    ".cfi_escape 0x10, 0x06, 0x02, 0x77, 0x00\nnop\n"   /* expression rbp */
    ".cfi_escape 0x0f, 0x02, 0x77, 0x08\nnop\n"         /* def_cfa_expression breg7 8 */
    ".cfi_escape 0x0e, 0x20\nnop\n"                     /* def_cfa_offset: still an expression */
    ".cfi_escape 0x0d, 0x06\nnop\n"                     /* def_cfa_register rbp */
    ".cfi_escape 0x06, 0x0c\nnop\n"                     /* restore_extended r12, absent in the CIE */
    ".cfi_offset %rip, -16\nnop\n"
    ".cfi_escape 0x06, 0x10\nnop\n"                     /* restore_extended rip: the CIE's c-8 */
    ".cfi_escape 0x14, 0x03, 0x02\nnop\n"               /* val_offset rbx */
    ".cfi_escape 0x15, 0x03, 0x7f\nnop\n"               /* val_offset_sf rbx */
    "ret\n.cfi_endproc\n.size asm_escapes, .-asm_escapes\n");
"""


def build(tmp: Path, name: str, *flags: str) -> str:
    src = tmp / "cfi_test.c"
    src.write_text(SOURCE)
    out = tmp / name
    subprocess.run(["gcc", "-O2", "-mavx2", "-fexceptions", "-fPIC", "-shared", *flags,
                    "-o", str(out), str(src)], check=True, capture_output=True)
    return str(out)


def symbols(path: str) -> dict[str, int]:
    out = subprocess.run(["nm", "-D", "--defined-only", path], check=True,
                         capture_output=True, text=True).stdout
    return {parts[2]: int(parts[0], 16) for parts in map(str.split, out.splitlines()) if len(parts) == 3}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if not have("gcc"):
        pytest.skip("needs gcc")
    return build(tmp_path_factory.mktemp("cfi"), "cfi_test.so")


def rules_in(path: str, start: int, end: int) -> list[CfaRule]:
    return [cfa_rule_at(path, pc) for pc in range(start, end)]


def test_built_object_matches_readelf_at_every_row(built):
    check_against_readelf(built, sample=None)


def test_normal_function_saves_callee_saved_registers(built):
    start, end = fde_bounds(built, symbols(built)["normal"])
    rules = rules_in(built, start, end)
    assert rules[0].cfa == "rsp+8" and rules[0].saved == {"rip": -8}
    assert any(len(r.saved) > 1 for r in rules)
    assert all(r.register == "rsp" for r in rules)


def test_realigned_frame_is_rbp_based(built):
    start, end = fde_bounds(built, symbols(built)["realign"])
    cfas = {r.cfa for r in rules_in(built, start, end)}
    assert "rbp+16" in cfas, cfas


def test_drap_frame_goes_through_r10_and_an_expression(built):
    start, end = fde_bounds(built, symbols(built)["realign_drap"])
    rules = rules_in(built, start, end)
    cfas = {r.cfa for r in rules}
    assert "r10+0" in cfas and "exp" in cfas, cfas
    drap = [r for r in rules if r.expression]
    assert all(r.register is None and r.offset is None and r.cfa_expression for r in drap)
    assert any("rbp" in r.saved_expressions for r in drap)


def test_asm_remember_restore_and_the_rarer_opcodes(built):
    sym = symbols(built)
    assert cfa_rule_at(built, sym["asm_cfi"]).cfa == "rsp+8"
    ret = cfa_rule_at(built, sym["asm_cfi_ret"])
    assert ret.cfa == "rsp+8" and ret.saved == {"rip": -8}
    restored = cfa_rule_at(built, sym["asm_cfi_restored"])          # restore_state undid the pop
    assert restored.cfa == "rsp+16" and restored.saved == {"rbx": -16, "rip": -8}
    mid = cfa_rule_at(built, sym["asm_cfi_mid"] + 5)                 # after advance_loc2 and args_size
    assert mid.cfa == "rbp+24" and mid.saved == {"rbx": -16, "rbp": -24, "r11": 8, "rip": -8}
    far = cfa_rule_at(built, sym["asm_cfi_far"] + 1)                 # after advance_loc4 and leave
    assert far.cfa == "rsp+16" and far.saved == {"rbx": -16, "r11": 8, "rip": -8}
    assert not far.signal_frame


def test_signal_frame_augmentation(built):
    sym = symbols(built)
    rule = cfa_rule_at(built, sym["asm_sig"] + 1)
    assert rule.signal_frame and rule.cfa == "rsp+16"


def test_escaped_opcodes(built):
    base = symbols(built)["asm_escapes"]
    cfas = [cfa_rule_at(built, base + i).cfa for i in range(10)]
    assert cfas == ["rsp+8", "rsp+16", "rsp+24", "rsp+24", "rsp+24", "rsp+24", "exp", "exp",
                    "rbp+32", "rbp+32"]
    assert cfa_rule_at(built, base + 3).saved == {"r12": 40, "rip": -8}
    assert cfa_rule_at(built, base + 8).saved_expressions == {"rbp": b"\x77\x00"}
    assert "r12" not in cfa_rule_at(built, base + 9).saved
    assert cfa_rule_at(built, base + 10).saved["rip"] == -16
    assert cfa_rule_at(built, base + 11).saved["rip"] == -8
    assert "rbx" not in cfa_rule_at(built, base + 13).saved      # val_offset: a value, not a slot


def test_no_eh_frame_hdr_gives_a_reason(tmp_path):
    if not have("gcc"):
        pytest.skip("needs gcc")
    path = build(tmp_path, "nohdr.so", "-Wl,--no-eh-frame-hdr")
    pc = symbols(path)["normal"]
    assert cfa_rule_at(path, pc) is None and fde_bounds(path, pc) is None
    assert "no .eh_frame_hdr" in lookup(path, pc)


def test_separate_debug_file_has_no_contents(built, tmp_path):
    if not have("objcopy"):
        pytest.skip("needs objcopy")
    debug = tmp_path / "cfi_test.debug"
    subprocess.run(["objcopy", "--only-keep-debug", built, str(debug)], check=True)
    pc = symbols(built)["normal"]
    assert cfa_rule_at(str(debug), pc) is None
    assert "no contents" in lookup(str(debug), pc)


# --- corrupt input -------------------------------------------------------------

def section(path: str, name: str) -> tuple[int, int, int]:
    """(file offset, size, address) of a section, from readelf."""
    out = subprocess.run(["readelf", "-SW", path], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        fields = line.replace("[ ", "[").split()
        if len(fields) > 5 and fields[1] == name:
            return int(fields[4], 16), int(fields[5], 16), int(fields[3], 16)
    raise AssertionError(f"{path} has no {name}")


def patched(src: str, dst: Path, edits: dict[int, bytes]) -> str:
    data = bytearray(Path(src).read_bytes())
    for offset, new in edits.items():
        data[offset:offset + len(new)] = new
    dst.write_bytes(bytes(data))
    return str(dst)


def only_none_or_rule(path: str, pcs: list[int]) -> list[CfaRule]:
    """Lookups that may fail only as None (or GdbextError for the file itself)."""
    rules = []
    for pc in pcs:
        try:
            rule = cfa_rule_at(path, pc)
            bounds = fde_bounds(path, pc)
        except GdbextError:
            continue
        if rule is not None:
            assert rule.fde_start <= pc < rule.fde_end
            rules.append(rule)
        if bounds is not None:
            assert bounds[0] <= pc < bounds[1]
    return rules


def libc_pcs(count: int, seed: int = 7) -> list[int]:
    _, fdes = readelf_frames(LIBC)
    rng = random.Random(seed)
    return [rng.randrange(f.start, f.end) for f in rng.choices([f for f in fdes if f.end > f.start], k=count)]


def test_truncated_file_is_none(tmp_path):
    path = tmp_path / "libc-1MiB.so"
    path.write_bytes(Path(LIBC).read_bytes()[:1 << 20])
    pc = libc_pcs(1)[0]
    assert cfa_rule_at(str(path), pc) is None
    assert "unreadable" in lookup(str(path), pc)


def test_not_an_elf_file_raises_the_project_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not an ELF file\n")
    with pytest.raises(GdbextError):
        cfa_rule_at(str(path), 0x1000)
    with pytest.raises(GdbextError):
        cfa_rule_at(str(tmp_path / "missing.so"), 0x1000)


def test_unsupported_hdr_version_is_none(tmp_path):
    hdr_off, _, _ = section(LIBC, ".eh_frame_hdr")
    path = patched(LIBC, tmp_path / "v2.so", {hdr_off: b"\x02"})
    pc = libc_pcs(1)[0]
    assert cfa_rule_at(path, pc) is None and fde_bounds(path, pc) is None
    assert "version 2" in lookup(path, pc)


def test_table_pointing_at_a_cie_is_none(tmp_path):
    hdr_off, hdr_size, hdr_addr = section(LIBC, ".eh_frame_hdr")
    _, _, frame_addr = section(LIBC, ".eh_frame")
    count = (hdr_size - 12) // 8
    # every FDE pointer -> .eh_frame+0, glibc's first CIE (datarel: relative to the hdr)
    cie = (frame_addr - hdr_addr).to_bytes(4, "little", signed=True)
    edits = {hdr_off + 12 + 8 * i + 4: cie for i in range(count)}
    path = patched(LIBC, tmp_path / "cie.so", edits)
    pcs = libc_pcs(50)
    assert all(cfa_rule_at(path, pc) is None for pc in pcs)
    assert "points at a CIE" in lookup(path, pcs[0])


def test_garbage_in_the_search_table_never_raises(tmp_path):
    hdr_off, hdr_size, _ = section(LIBC, ".eh_frame_hdr")
    rng = random.Random(3)
    for trial in range(4):
        # Garbage FDE pointers in the table; the locations stay sorted.
        edits = {hdr_off + 12 + 8 * rng.randrange((hdr_size - 12) // 8) + 4: rng.randbytes(4)
                 for _ in range(3000)}
        if trial == 3:                        # and a header whose count overruns the section
            edits[hdr_off + 8] = (1 << 30).to_bytes(4, "little")
        path = patched(LIBC, tmp_path / f"table{trial}.so", edits)
        only_none_or_rule(path, libc_pcs(400, seed=trial))
    assert "entries" in lookup(path, libc_pcs(1)[0])


def test_garbage_in_eh_frame_never_raises(built, tmp_path):
    """Random bytes over .eh_frame: every lookup is a rule, None, or nothing worse."""
    for path_src, pcs in ((built, None), (LIBC, libc_pcs(300))):
        off, size, _ = section(path_src, ".eh_frame")
        if pcs is None:
            _, fdes = readelf_frames(built)
            pcs = [pc for f in fdes for pc in range(f.start, min(f.end, f.start + 64))]
        rng = random.Random(11)
        survived = 0
        for trial in range(12):
            edits = {off + rng.randrange(size): bytes([rng.randrange(256)])
                     for _ in range(max(4, size // (20 * (trial + 1))))}
            if trial % 4 == 0:                # a run of 0xff: huge lengths, LEB128 without end
                start = off + rng.randrange(size - 64)
                edits[start] = b"\xff" * 64
            path = patched(path_src, tmp_path / f"frame{trial}.so", edits)
            survived += len(only_none_or_rule(path, pcs))
        assert survived < 12 * len(pcs)       # the garbage did reach the parser


def test_corrupt_cfa_instructions_are_none_with_a_reason(built, tmp_path):
    """A DW_CFA opcode no one defines in the FDE of `normal`."""
    cies, fdes = readelf_frames(built)
    pc = symbols(built)["normal"]
    fde = next(f for f in fdes if f.start <= pc < f.end)
    off, _, _ = section(built, ".eh_frame")
    # length, CIE pointer, pc begin, pc range (sdata4 each), augmentation length 0
    first_insn = off + fde.offset + 4 + 4 + 4 + 4 + 1
    path = patched(built, tmp_path / "badop.so", {first_insn: b"\x3f"})
    assert cfa_rule_at(path, fde.end - 1) is None
    assert "unknown DW_CFA opcode 0x3f" in lookup(path, fde.end - 1)
    assert fde_bounds(path, pc) == (fde.start, fde.end)     # the header is still fine


def test_interpreter_bounds():
    """remember_state nesting and instruction count are capped, not unbounded."""
    cie = cfi._Cie(1, -8, 0x1B, True, False, cfi._Insns(b"", 0))
    deep = bytes([0x0A] * (cfi.MAX_STACK + 1))
    with pytest.raises(cfi._Corrupt, match="too deep"):
        cfi._Machine(cie).run(cfi._Cursor(deep, 0, len(deep), 0), 0, None)
    many = bytes(cfi.MAX_INSNS + 1)                          # DW_CFA_nop
    with pytest.raises(cfi._Corrupt, match="more than"):
        cfi._Machine(cie).run(cfi._Cursor(many, 0, len(many), 0), 0, None)
    endless = b"\x0e" + b"\xff" * 12                         # def_cfa_offset, LEB128 never ends
    with pytest.raises(cfi._Corrupt, match="LEB128"):
        cfi._Machine(cie).run(cfi._Cursor(endless, 0, len(endless), 0), 0, None)
    unbalanced = b"\x0b"
    with pytest.raises(cfi._Corrupt, match="without remember_state"):
        cfi._Machine(cie).run(cfi._Cursor(unbalanced, 0, 1, 0), 0, None)


# --- cost ---------------------------------------------------------------------

@pytest.mark.parametrize("path", existing(LIBC, *BIG, HUGE))
def test_time_1000_lookups(path, capsys):
    """Measured, not asserted: first lookup (reads the table) and 1,000 more."""
    rng = random.Random(5)
    cfi._index.cache_clear()
    t0 = time.perf_counter()
    index = cfi._index(*cfi._key(path))
    first = time.perf_counter() - t0
    assert isinstance(index, cfi._Index)
    starts = [loc + index.base for loc in index.locs]
    pcs = [rng.choice(starts) + rng.randrange(64) for _ in range(1000)]
    t0 = time.perf_counter()
    found = sum(cfa_rule_at(path, pc) is not None for pc in pcs)
    elapsed = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\n{path}: {len(starts)} FDEs, table read {first * 1e3:.1f} ms, "
              f"1000 lookups {elapsed * 1e3:.1f} ms ({found} with a rule)")
    assert found > 900
