"""isa-scan: a static sweep whose counts and gaps are checked against objdump,
nm and the host's /proc/cpuinfo."""
from __future__ import annotations

import re
import shutil

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
])
def test_usage_errors(command, needle, tmp_path):
    with GdbSession(cwd=tmp_path) as gdb:
        assert_one_error_line(gdb.cmd(command), "isa-scan", needle)
