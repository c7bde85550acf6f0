"""Feature attribution over an instruction corpus assembled by `as` at test time.

Expected features are the CPUID flags in the Intel SDM vol. 2 / AMD APM vol. 4
opcode tables, written as /proc/cpuinfo names.  Each instruction is aligned to
16 bytes so the test, not the decoder, knows where each one starts.
"""
from __future__ import annotations

import subprocess

import pytest

from gdbext.isa.decode import decode
from gdbext.knowledge.cpuid_features import XCR0_AMX_STATE as AMX, XCR0_EVEX_STATE as EVEX_STATE, XCR0_YMM_STATE as YMM

L, V, E, X = "legacy", "VEX", "EVEX", "XOP"

# (AT&T source, cpuinfo features, encoding, XCR0 state needed)
CORPUS = [
    # baseline x86-64: nothing to report
    ("movq (%rax), %rbx", set(), L, 0),
    ("cmove %rax, %rbx", set(), L, 0),
    ("addps %xmm1, %xmm0", set(), L, 0),
    ("cvtsi2sd %rax, %xmm0", set(), L, 0),
    ("cpuid", set(), L, 0),
    # FMA3 vs FMA4, and the EVEX forms of the same mnemonic
    ("vfmadd231pd %ymm2, %ymm1, %ymm0", {"fma"}, V, YMM),
    ("vfmadd132ss %xmm2, %xmm1, %xmm0", {"fma"}, V, YMM),
    ("vfmaddpd %xmm4, %xmm1, %xmm0, %xmm4", {"fma4"}, V, YMM),
    ("vfmaddps %ymm4, %ymm1, %ymm0, %ymm4", {"fma4"}, V, YMM),
    ("vfmadd231pd %zmm2, %zmm1, %zmm0", {"avx512f"}, E, EVEX_STATE),
    ("vfmadd231pd %ymm18, %ymm1, %ymm0", {"avx512f", "avx512vl"}, E, EVEX_STATE),
    # VEX vs EVEX of one mnemonic
    ("vpaddd %xmm2, %xmm1, %xmm0", {"avx"}, V, YMM),
    ("vpaddd %ymm2, %ymm1, %ymm0", {"avx2"}, V, YMM),
    ("{evex} vpaddd %ymm2, %ymm1, %ymm0", {"avx512f", "avx512vl"}, E, EVEX_STATE),
    ("vpaddd %zmm2, %zmm1, %zmm0", {"avx512f"}, E, EVEX_STATE),
    ("vpaddw %zmm2, %zmm1, %zmm0", {"avx512bw"}, E, EVEX_STATE),
    # AVX-VNNI (VEX) vs AVX512-VNNI (EVEX)
    ("{vex} vpdpbusd %ymm2, %ymm1, %ymm0", {"avx_vnni"}, V, YMM),
    ("vpdpbusd %zmm2, %zmm1, %zmm0", {"avx512_vnni"}, E, EVEX_STATE),
    ("{evex} vpdpbusd %ymm2, %ymm1, %ymm0", {"avx512_vnni", "avx512vl"}, E, EVEX_STATE),
    # SSE3 is "pni", LZCNT is "abm"
    ("addsubpd %xmm1, %xmm0", {"pni"}, L, 0),
    ("haddps %xmm1, %xmm0", {"pni"}, L, 0),
    ("lddqu (%rax), %xmm0", {"pni"}, L, 0),
    ("lzcnt %rax, %rbx", {"abm"}, L, 0),
    ("tzcnt %rax, %rbx", {"bmi1"}, L, 0),
    # VEX-encoded GPR instructions need no vector state
    ("andn %rax, %rbx, %rcx", {"bmi1"}, V, 0),
    ("pdep %rax, %rbx, %rcx", {"bmi2"}, V, 0),
    ("shlx %rax, %rbx, %rcx", {"bmi2"}, V, 0),
    ("popcnt %rax, %rbx", {"popcnt"}, L, 0),
    ("movbe (%rax), %ebx", {"movbe"}, L, 0),
    ("crc32q %rax, %rbx", {"sse4_2"}, L, 0),
    ("pshufb %xmm1, %xmm0", {"ssse3"}, L, 0),
    ("pmulld %xmm1, %xmm0", {"sse4_1"}, L, 0),
    ("extrq $1, $2, %xmm0", {"sse4a"}, L, 0),
    ("sha256rnds2 %xmm0, %xmm1, %xmm2", {"sha_ni"}, L, 0),
    ("sha1rnds4 $0, %xmm1, %xmm2", {"sha_ni"}, L, 0),
    ("aesenc %xmm1, %xmm0", {"aes"}, L, 0),
    ("pclmulqdq $0, %xmm1, %xmm0", {"pclmulqdq"}, L, 0),
    ("gf2p8mulb %xmm1, %xmm0", {"gfni"}, L, 0),
    ("rdrand %rax", {"rdrand"}, L, 0),
    ("rdseed %rax", {"rdseed"}, L, 0),
    ("adcx %rax, %rbx", {"adx"}, L, 0),
    ("vcvtph2ps %xmm1, %ymm0", {"f16c"}, V, YMM),
    ("vzeroupper", {"avx"}, V, YMM),
    ("xtest", {"hle|rtm"}, L, 0),
    ("xend", {"rtm"}, L, 0),
    ("vpcmov %xmm3, %xmm2, %xmm1, %xmm0", {"xop"}, X, YMM),
    ("vprotd %xmm1, %xmm2, %xmm3", {"xop"}, X, YMM),
    ("vpternlogd $1, %zmm1, %zmm2, %zmm3", {"avx512f"}, E, EVEX_STATE),
    ("vpopcntd %zmm1, %zmm2", {"avx512_vpopcntdq"}, E, EVEX_STATE),
    ("vpermb %zmm1, %zmm2, %zmm3", {"avx512vbmi"}, E, EVEX_STATE),
    ("vpmadd52luq %zmm1, %zmm2, %zmm3", {"avx512ifma"}, E, EVEX_STATE),
    ("vaddph %zmm1, %zmm2, %zmm3", {"avx512_fp16"}, E, EVEX_STATE),
    ("vdpbf16ps %zmm1, %zmm2, %zmm3", {"avx512_bf16", "avx512f"}, E, EVEX_STATE),
    ("vp2intersectd %zmm1, %zmm2, %k2", {"avx512_vp2intersect", "avx512f"}, E, EVEX_STATE),
    ("kmovw %k1, %eax", {"avx512f"}, V, EVEX_STATE),
    ("kmovb %k1, %eax", {"avx512dq"}, V, EVEX_STATE),
    ("kmovq %k1, %rax", {"avx512bw"}, V, EVEX_STATE),
    ("tdpbssd %tmm1, %tmm2, %tmm3", {"amx_int8"}, V, AMX),
    ("tdpbf16ps %tmm1, %tmm2, %tmm3", {"amx_bf16"}, V, AMX),
    ("tilerelease", {"amx_tile"}, V, AMX),
    ("clflushopt (%rax)", {"clflushopt"}, L, 0),
    ("clwb (%rax)", {"clwb"}, L, 0),
    ("clzero", {"clzero"}, L, 0),
    ("rdpid %rax", {"rdpid"}, L, 0),
    ("movdiri %rax, (%rbx)", {"movdiri"}, L, 0),
    ("xsaveopt (%rax)", {"xsaveopt"}, L, 0),
    ("xsavec (%rax)", {"xsavec"}, L, 0),
    ("prefetchw (%rax)", {"3dnowprefetch"}, L, 0),
    ("rdtscp", {"rdtscp"}, L, 0),
]


@pytest.fixture(scope="module")
def assembled(tmp_path_factory) -> bytes:
    d = tmp_path_factory.mktemp("corpus")
    src = "".join(f"\t.balign 16, 0xcc\n\t{line}\n" for line, *_ in CORPUS)
    (d / "corpus.s").write_text("\t.text\n" + src)
    subprocess.run(["as", "--64", "-o", str(d / "corpus.o"), str(d / "corpus.s")], check=True)
    subprocess.run(["objcopy", "-O", "binary", "-j", ".text", str(d / "corpus.o"),
                    str(d / "corpus.bin")], check=True)
    return (d / "corpus.bin").read_bytes()


@pytest.mark.parametrize("index", range(len(CORPUS)), ids=[c[0] for c in CORPUS])
def test_feature_attribution(assembled, index):
    source, features, encoding, xcr0 = CORPUS[index]
    from gdbext.isa.verdict import feature_statuses

    chunk = assembled[16 * index:16 * index + 16]
    ins = decode(chunk, 0x1000)
    assert ins.undecodable is None, (source, chunk.hex())
    assert chunk[ins.length:].strip(b"\xcc") == b"", "decoded length disagrees with as"
    names = {f.name for f in feature_statuses(ins.iced_features, None)}
    assert (names, ins.encoding, ins.xcr0_required) == (features, encoding, xcr0), source
