"""x86-64 levels, what an object was built for, FDE bounds and the frames'
inlined rows -- pure readers checked against the psABI text, readelf and gcc."""
from __future__ import annotations

import re
import shutil
import struct
import subprocess

from dataclasses import dataclass, field

import pytest

from gdbext.elf_file import Function
from gdbext.frames_view import frames_text
from gdbext.isa import build_target, levels
from gdbext.isa.profiles import profile_cpu
from gdbext.isa.scan import _regions
from gdbext.spill import cfi

# x86-64 psABI 1.0 §3.1.1, Figure 3.1 "Micro-Architecture Levels" (cpuinfo names).
PSABI = [set(), {"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"}]
PSABI.append(PSABI[1] | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe",
                         "xsave"})
PSABI.append(PSABI[2] | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"})


def test_levels_are_the_psabi_levels():
    assert [set(f) for f in levels.level_features()] == PSABI


@pytest.mark.parametrize("features, level", [
    (set(), "x86-64-v1"), ({"popcnt"}, "x86-64-v2"), ({"avx2", "fma"}, "x86-64-v3"),
    ({"avx512vl"}, "x86-64-v4"), ({"aes"}, "above x86-64-v4"), ({"hle|rtm"}, "above x86-64-v4"),
    ({"sse2", "mmx"}, "x86-64-v1"),              # baseline features need no level
])
def test_level_of(features, level):
    assert levels.level_name(levels.level_of(features)) == level


@pytest.mark.parametrize("profile, level", [
    ("nehalem", 1), ("sandybridge", 1), ("haswell", 2), ("skylake_avx512", 3), ("zen4", 3),
    ("x86_64", 0)])
def test_cpu_level_of_profiles(profile, level):
    reached, lacks, known = levels.cpu_level(profile_cpu(profile))
    assert (reached, known) == (level, True)
    assert bool(lacks) == (level < 3)


def test_cpu_level_wants_xcr0_state():
    cpu = profile_cpu("haswell")
    cpu.xcr0 = 0x3                       # the OS left AVX state disabled
    reached, lacks, known = levels.cpu_level(cpu)
    assert reached == 1 and known and any("XCR0" in m for m in lacks)


@pytest.mark.parametrize("march, name", [
    ("x86-64", "x86_64"), ("x86-64-v3", "x86_64_v3"), ("haswell", "haswell"),
    ("znver3", "zen3"), ("skylake-avx512", "skylake_avx512"), ("corei7", "nehalem"),
    ("native", None)])
def test_march_names(march, name):
    assert levels.march_target(march) == name


def _note(props: list[tuple[int, int]]) -> bytes:
    desc = b"".join(struct.pack("<III", t, 4, v) + b"\0" * 4 for t, v in props)
    return struct.pack("<III", 4, len(desc), 5) + b"GNU\0" + desc


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc")
def test_isa_note_as_readelf_reads_it(tmp_path):
    """gcc -mneeded and gas -mx86-used-note write the ISA level bits; the
    reader agrees with readelf -n."""
    src = tmp_path / "f.c"
    src.write_text("float f(float *a, int n) { float s = 0; for (int i = 0; i < n; i++) "
                   "s += a[i] * a[i]; return s; }\n")
    obj = tmp_path / "f.o"
    subprocess.run(["gcc", "-O3", "-march=x86-64-v3", "-mneeded", "-Wa,-mx86-used-note=yes",
                    "-c", str(src), "-o", str(obj)], check=True)
    notes = subprocess.run(["readelf", "-n", str(obj)], capture_output=True, text=True,
                           check=True).stdout
    needed, used = build_target._isa_note(str(obj))
    want_needed = re.search(r"x86 ISA needed: (.*)", notes).group(1).split(", ")
    want_used = re.search(r"x86 ISA used: (.*)", notes).group(1).split(", ")
    assert needed == want_needed and used == want_used


def test_producer_switches(monkeypatch):
    from gdbext.spill.provenance import BuildInfo
    info = BuildInfo(producers=["GNU C17 12.2.0 -mtune=generic -march=x86-64 -mavx2 "
                                "-mno-avx2 -mfma -msse4.2 -g -O2"], debug_info=True)
    monkeypatch.setattr("gdbext.spill.provenance.read_build_info", lambda path: info)
    monkeypatch.setattr(build_target, "_isa_note", lambda path: (None, None))
    b = build_target.read_build_target("/nonexistent")
    assert (b.march, b.archspec, b.level) == ("x86-64", "x86_64", 0)
    assert b.features == ["fma", "sse4_2"]


def test_rust_producer_records_nothing(monkeypatch):
    from gdbext.spill.provenance import BuildInfo
    info = BuildInfo(producers=["clang LLVM (rustc version 1.95.0)"], debug_info=True)
    monkeypatch.setattr("gdbext.spill.provenance.read_build_info", lambda path: info)
    monkeypatch.setattr(build_target, "_isa_note", lambda path: (None, None))
    b = build_target.read_build_target("/nonexistent")
    assert not b.known and "rustc records no target-cpu" in b.not_recorded
    [hint] = build_target.advice(b, profile_cpu("nehalem"),
                                 levels.cpu_level(profile_cpu("nehalem")), ["avx"])
    assert "is_x86_feature_detected!" in hint and "target-cpu=x86-64-v2" in hint


def test_fde_ranges_match_readelf():
    path = "/bin/true" if shutil.which("true") == "/bin/true" else shutil.which("true")
    out = subprocess.run(["readelf", "--debug-dump=frames", path], capture_output=True,
                         text=True, check=True).stdout
    want = sorted({(int(a, 16), int(b, 16)) for a, b in
                   re.findall(r" FDE cie=\S+ pc=([0-9a-f]+)\.\.([0-9a-f]+)", out) if a != b})
    assert cfi.fde_ranges(path) == want and want


def test_fde_walk_refuses_a_corrupt_length():
    with pytest.raises(cfi._Corrupt):
        cfi._walk_fdes(struct.pack("<II", 0x1000, 0), 0x1000)


def test_regions_cover_every_byte_once():
    funcs = [Function(0x10, 0x20, "a"), Function(0x18, 0x30, "nested"),
             Function(0x40, 0x50, "b")]
    spans = list(_regions(funcs, [f.start for f in funcs], 0x0, 0x60))
    assert spans == [(0x0, 0x10, False), (0x10, 0x18, True), (0x18, 0x30, True),
                     (0x30, 0x40, False), (0x40, 0x50, True), (0x50, 0x60, False)]
    assert list(_regions([], [], 0, 8, bounded=False)) == [(0, 8, True)]
    assert list(_regions([], [], 0, 8, bounded=True)) == [(0, 8, False)]


@dataclass
class StackFrame:                   # target.StackFrame's fields frames_view reads
    level: int
    pc: int
    rsp: int | None
    cfa: int | None
    function: str | None
    objfile: str | None
    inlined: int = 0
    evidence: str = "exact"
    inlined_names: tuple = field(default=())


def test_inlined_frames_are_rows():
    frames = [StackFrame(2, 0x1000, None, None, "outer", "/bin/prog", 2,
                         inlined_names=("_mm256_storeu_ps", "helper")),
              StackFrame(3, 0x2000, None, None, "main", "/bin/prog")]
    text = frames_text(frames)
    rows = [line.split()[0] for line in text.splitlines()[1:]]
    assert rows == ["#0", "#1", "#2", "#3"]
    assert "_mm256_storeu_ps" in text and "inlined into #2" in text


@pytest.mark.parametrize("name, twin", [
    ("_mm_load_ps", "_mm_loadu_ps"), ("_mm256_store_ps", "_mm256_storeu_ps"),
    ("_mm512_load_si512", "_mm512_loadu_si512"), ("_mm_store_si128", "_mm_storeu_si128"),
    ("core::core_arch::x86::sse::_mm_load_ps", "_mm_loadu_ps"),
    ("core::ptr::read<u64>", "core::ptr::read_unaligned"),
    ("_mm_stream_ps", None), ("_mm_add_ps", None), ("memcpy", None)])
def test_unaligned_twins(name, twin):
    from gdbext.spill.audit import unaligned_form
    assert unaligned_form(name) == twin
