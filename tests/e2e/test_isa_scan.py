"""isa-scan: a static sweep whose counts and gaps are checked against objdump,
nm and the host's /proc/cpuinfo."""
from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

import pytest

from tests.e2e.gdb_session import GdbSession, assert_one_error_line
from tests.host import FIXTURES, host_has, run

LIBRARY = FIXTURES / "libminiblas.so"
# What the single ISA-specific instruction of each fixture kernel needs (SDM/APM).
KERNEL_NEEDS = {"dgemm_kernel_PRESCOTT": {"pni"}, "dgemm_kernel_SANDYBRIDGE": {"avx"},
                "dgemm_kernel_HASWELL": {"fma"}, "dgemm_kernel_PILEDRIVER": {"fma4"},
                "dgemm_kernel_SKYLAKEX": {"avx512f"}}
ISA_CRASH_NEEDS = {"fma4_kernel": {"fma4"}, "avx512_kernel": {"avx512f", "avx512vl"}}


def objdump_count(path, mnemonic: str) -> int:
    out = run(["objdump", "-d", "-w", str(path)]).stdout
    return len(re.findall(rf"^\s*[0-9a-f]+:\s+(?:[0-9a-f]{{2}} )+\s*{mnemonic}\s", out, re.M))


def gaps(obj: dict) -> dict[str, set]:
    return {f["name"]: set(f["missing"]) for f in obj["functions"]}


def test_baseline_profile_flags_every_extension(isa_crash, tmp_path):
    with GdbSession(cwd=tmp_path) as gdb:
        r = gdb.json(f"isa-scan --json --cpu x86_64 {isa_crash}")
        text = gdb.cmd(f"isa-scan --cpu x86_64 {isa_crash}")
    (obj,) = r["objects"]
    found = gaps(obj)
    for function, needs in ISA_CRASH_NEEDS.items():
        assert needs <= found[function], (function, found)
    counts = {f["name"]: f["instructions"] for f in obj["features"]}
    assert counts["fma4"] == objdump_count(isa_crash, "vfmaddpd")
    assert r["verdict"] == "unsupported"
    assert "cannot run" in text and "fma4_kernel" in text


def test_host_cpu_gaps_follow_proc_cpuinfo(isa_crash, tmp_path):
    with GdbSession(str(isa_crash), cwd=tmp_path) as gdb:
        r = gdb.json("isa-scan --json")
    found = gaps(r["objects"][0])
    for function, needs in ISA_CRASH_NEEDS.items():
        assert (function in found) == (not host_has(*needs)), (function, found)
    assert r["cpu"]["source"] == "native"


def test_loaded_library_by_name_and_all(tmp_path):
    program = FIXTURES / "dispatch_crash"
    with GdbSession(str(program), cwd=tmp_path, debuginfo=False) as gdb:
        gdb.cmd("break miniblas_dgemm")
        gdb.cmd(f"run >{tmp_path}/out 2>&1 </dev/null", timeout=60)
        r = gdb.json("isa-scan --json libminiblas")
        everything = gdb.json("isa-scan --json --limit 0 all")
    (obj,) = r["objects"]
    assert obj["path"] == str(LIBRARY)
    assert r["cpu"]["source"] == "process"
    expected = {k for k, needs in KERNEL_NEEDS.items() if not host_has(*needs)}
    assert set(gaps(obj)) == expected
    paths = {o["path"] for o in everything["objects"]}
    assert str(LIBRARY) in paths and str(program) in paths
    assert any(re.search(r"/libc\.so\.6$", p) for p in paths)


@pytest.mark.parametrize("make_file, needle", [
    (None, "no such file or loaded object"),
    (lambda p: p.write_text("not an ELF\n"), "is not an ELF file"),
    ("aarch64", "unsupported architecture"),
])
def test_bad_files_give_one_line(make_file, needle, isa_crash, tmp_path):
    path = tmp_path / "object"
    if make_file == "aarch64":
        shutil.copy(isa_crash, path)
        with open(path, "r+b") as f:         # e_machine = EM_AARCH64 (183)
            f.seek(18)
            f.write((183).to_bytes(2, "little"))
    elif make_file is not None:
        make_file(path)
    with GdbSession(cwd=tmp_path) as gdb:
        assert_one_error_line(gdb.cmd(f"isa-scan {path}"), "isa-scan", needle)
        assert gdb.cmd("print 6*7").strip().endswith("= 42")


@pytest.mark.parametrize("command, needle", [
    ("isa-scan", "no program loaded"),
    ("isa-scan all", "no loaded objects"),
    ("isa-scan --limit -1 /bin/true", "--limit must be 0 or more"),
    ("isa-scan --bogus", "unrecognized arguments"),
    ("isa-scan --cpu nosuchcpu /bin/true", "unknown CPU profile"),
    ("isa-scan --level --cpu haswell /bin/true", "drop --cpu"),
])
def test_usage_errors(command, needle, tmp_path):
    with GdbSession(cwd=tmp_path) as gdb:
        assert_one_error_line(gdb.cmd(command), "isa-scan", needle)


# x86-64 psABI 1.0 §3.1.1 "Micro-Architecture Levels", cpuinfo spellings.
PSABI = {1: set(), 2: {"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"}}
PSABI[3] = PSABI[2] | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
PSABI[4] = PSABI[3] | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}


def psabi_level(features: set) -> int | None:
    return next((n for n in (1, 2, 3, 4) if features <= PSABI[n]), None)


def objdump_functions_using(path, pattern: str) -> set[str]:
    """Functions (objdump's <symbol>: headers) with a line matching pattern."""
    out = run(["objdump", "-d", "-w", str(path)]).stdout
    found, current = set(), None
    for line in out.splitlines():
        m = re.match(r"^[0-9a-f]+ <([^>]+)>:$", line)
        if m:
            current = m.group(1)
        elif current and re.search(pattern, line):
            found.add(current)
    return found


def test_level_of_a_v3_build():
    exe = FIXTURES / "built_v3"
    # VEX/AVX instructions and ymm registers (v3), and none of v4's zmm/opmask
    v3 = objdump_functions_using(exe, r"\t(v[a-z0-9]+|shrx|shlx|sarx|rorx|mulx|andn)\s|%ymm")
    v4 = objdump_functions_using(exe, r"%zmm|%k[0-7]")
    assert v3 and not v4
    with GdbSession() as gdb:
        r = gdb.json(f"isa-scan --json --level {exe}")
        text = gdb.cmd(f"isa-scan --level {exe}")
    assert r["schema"] == "gdbext/isa-scan-level/1"
    assert r["level"] == "x86-64-v3"
    (obj,) = r["objects"]
    assert {f["name"] for f in obj["set_by"]} == v3
    assert obj["functions_that_cannot_run"]["x86-64-v2"] == len(v3)
    assert obj["functions_that_cannot_run"]["x86-64-v3"] == 0
    assert "haswell" in r["cpus"] and not {"nehalem", "sandybridge"} & set(r["cpus"])
    assert text.startswith("isa-scan: x86-64-v3 - every function runs")


def test_level_of_a_baseline_build():
    with GdbSession() as gdb:
        r = gdb.json(f"isa-scan --json --level {FIXTURES / 'built_base'}")
    assert r["level"] == "x86-64-v1" and r["objects"][0]["set_by"] == []
    assert "nocona" in r["cpus"]          # the first x86-64 Intel CPU runs it


def test_level_names_the_kernels_that_set_it():
    """libminiblas's kernels, one ISA instruction each (KERNEL_NEEDS): FMA4 is in
    no level, so the object is above v4 and no named CPU has FMA4 and AVX-512."""
    with GdbSession() as gdb:
        r = gdb.json(f"isa-scan --json --level {LIBRARY}")
    (obj,) = r["objects"]
    needs = dict(KERNEL_NEEDS)
    # the dispatcher reads XCR0 with xgetbv (XSAVE, a v3 feature) behind its OSXSAVE test
    needs.update({f: {"xsave"} for f in objdump_functions_using(LIBRARY, r"\txgetbv")})
    assert "miniblas_init" in needs
    need = {k: psabi_level(v) for k, v in needs.items()}
    assert r["level"] == "above x86-64-v4" and r["cpus"] == []
    assert {f["name"] for f in obj["set_by"]} == {k for k, n in need.items() if n is None}
    for n in (1, 2, 3, 4):
        expected = sum(1 for lvl in need.values() if lvl is None or lvl > n)
        assert obj["functions_that_cannot_run"][f"x86-64-v{n}"] == expected, n
    levels = {f["name"]: f["level"] for f in obj["functions"]}
    for k, n in need.items():
        assert levels[k] == (f"x86-64-v{n}" if n else "above x86-64-v4"), k


DEBIAN_OPENBLAS = Path("/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0")


def test_real_3dnow_in_a_function_is_code(tmp_path):
    """Debian's OpenBLAS keeps femms (3DNow!) in its OPTERON kernels: inside a
    function it is an instruction a Haswell lacks, not data (objdump per
    function, a sample of 25)."""
    if not DEBIAN_OPENBLAS.exists():
        pytest.skip("libopenblas0-pthread is not installed")
    out = run(["nm", "-D", "-S", "--defined-only", str(DEBIAN_OPENBLAS)]).stdout
    opteron = sorted((int(a, 16), int(a, 16) + int(s, 16), n) for a, s, n in
                     re.findall(r"^([0-9a-f]+) ([0-9a-f]+) [Tt] (\w+_OPTERON\w*)$", out, re.M))
    assert opteron
    with GdbSession(cwd=tmp_path, timeout=300) as gdb:
        r = gdb.json(f"isa-scan --json --cpu haswell {DEBIAN_OPENBLAS}")
    reported = {f["name"]: set(f["missing"]) for f in r["objects"][0]["functions"]}
    with_femms = 0
    for start, end, name in random.Random(27).sample(opteron, min(25, len(opteron))):
        text = run(["objdump", "-d", f"--start-address={start:#x}",
                    f"--stop-address={end:#x}", str(DEBIAN_OPENBLAS)]).stdout
        if re.search(r"\tfemms", text):
            with_femms += 1
            assert "3dnow" in reported.get(name, set()), name
    assert with_femms
