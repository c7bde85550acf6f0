"""isa-scan on Debian's stripped libcrypto: function bounds from .eh_frame.

Oracles: the FDE ranges readelf prints (--debug-dump=frames), the exported
symbols nm prints, and objdump's disassembly of each range, read against the
x86-64 psABI's v2 level (what an x86-64-v2 CPU lacks shows in the operands:
ymm/zmm/opmask registers, VEX/EVEX mnemonics, and the named extensions)."""
from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from tests.e2e.gdb_session import GdbSession, assert_no_traceback
from tests.host import run

LIBCRYPTO = Path("/usr/lib/x86_64-linux-gnu/libcrypto.so.3")
# Instructions an x86-64-v2 CPU lacks (psABI v2 = SSE4.2, POPCNT, CX16, LAHF):
# AES-NI, PCLMULQDQ, SHA, ADX, BMI1/2 (VEX), MOVBE, RDRAND/RDSEED, XSAVE, RTM.
BEYOND_V2 = re.compile(
    r"^(aes\w+|pclmul\w*|sha1\w+|sha256\w+|adcx|adox|mulx|rorx|sarx|shlx|shrx|andn|bextr|"
    r"blsi|blsmsk|blsr|bzhi|pdep|pext|movbe|rdrand|rdseed|xgetbv|xsave\w*|xrstor\w*|"
    r"xbegin|xend|xabort|xtest)$")
VECTOR_V3 = re.compile(r"%[yz]mm\d|%k[0-7]\b")
LINE = re.compile(r"^\s*([0-9a-f]+):\s+(?:[0-9a-f]{2} )+\s*(\S+)[ ]*(.*)$", re.M)


def fde_ranges() -> list[tuple[int, int]]:
    out = run(["readelf", "--debug-dump=frames", str(LIBCRYPTO)]).stdout
    return sorted({(int(a, 16), int(b, 16)) for a, b in
                   re.findall(r" FDE cie=\S+ pc=([0-9a-f]+)\.\.([0-9a-f]+)", out) if a != b})


def exported_functions() -> dict[int, int]:
    out = run(["nm", "-D", "-S", "--defined-only", str(LIBCRYPTO)]).stdout
    return {int(m.group(1), 16): int(m.group(1), 16) + int(m.group(2), 16)
            for m in re.finditer(r"^([0-9a-f]+) ([0-9a-f]+) [TtWi] ", out, re.M)}


def beyond_v2(start: int, end: int) -> list[str]:
    """objdump's instructions in [start, end) that an x86-64-v2 CPU cannot run."""
    out = run(["objdump", "-d", "-w", f"--start-address={start:#x}",
               f"--stop-address={end:#x}", str(LIBCRYPTO)]).stdout
    found = []
    for m in LINE.finditer(out.replace("\t", " ")):
        if len(found) > 3:
            break
        mnemonic, operands = m.group(2), m.group(3)
        if mnemonic in ("rex", "data16", "bnd", "notrack", "ds", "cs"):
            mnemonic, _, operands = operands.partition(" ")
        vex = mnemonic.startswith("v") and mnemonic not in ("verr", "verw")
        if vex or VECTOR_V3.search(operands) or BEYOND_V2.match(mnemonic):
            found.append(f"{m.group(1)}: {mnemonic} {operands}")
    return found


def _flagged_by_full_objdump(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    import bisect
    starts = [a for a, _ in ranges]
    out = run(["objdump", "-d", "-w", str(LIBCRYPTO)]).stdout.replace("\t", " ")
    flagged = set()
    for m in LINE.finditer(out):
        ip = int(m.group(1), 16)
        i = bisect.bisect_right(starts, ip) - 1
        if i < 0 or ip >= ranges[i][1] or ranges[i] in flagged:
            continue
        mnemonic, operands = m.group(2), m.group(3)
        vex = mnemonic.startswith("v") and mnemonic not in ("verr", "verw")
        if vex or VECTOR_V3.search(operands) or BEYOND_V2.match(mnemonic):
            flagged.add(ranges[i])
    return sorted(flagged)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    if not LIBCRYPTO.exists():
        pytest.skip(f"{LIBCRYPTO} is missing (scripts/setup-packages installs libssl3)")
    assert ".symtab" not in run(["readelf", "-S", str(LIBCRYPTO)]).stdout   # stripped
    with GdbSession(cwd=tmp_path_factory.mktemp("scan"), timeout=300) as gdb:
        text = gdb.cmd(f"isa-scan --cpu x86-64-v2 --limit 5 {LIBCRYPTO}")
        r = gdb.json(f"isa-scan --json --cpu x86-64-v2 {LIBCRYPTO}")
        two = gdb.json(f"isa-scan --json --jobs 2 --cpu x86-64-v2 {LIBCRYPTO}")
    assert_no_traceback(text)
    return text, r, two


def test_every_fde_that_cannot_run_is_counted(scanned):
    text, r, _ = scanned
    (obj,) = r["objects"]
    fdes = fde_ranges()
    symbols = exported_functions()
    fde_end = dict(fdes)
    reported = {f["start"]: f for f in obj["functions"]}
    # Every reported range is an exported symbol or an FDE (cut at a symbol).
    for start, f in reported.items():
        if start in symbols:
            assert f["end"] == symbols[start]
        else:
            assert start in fde_end and f["end"] <= fde_end[start], f
            assert re.fullmatch(r"\w+\+0x[0-9a-f]+|fde@0x[0-9a-f]+", f["name"]), f["name"]
    uncovered = [(a, b) for a, b in fdes if not any(s <= a < e for s, e in symbols.items())]
    assert obj["from_fdes"] >= len(uncovered) * 9 // 10 > 1000
    # objdump over each reported range finds what it lacks; over a sample of
    # the others finds nothing a v2 CPU lacks.
    for start, f in reported.items():
        assert beyond_v2(start, f["end"]), (f["name"], hex(start))
    rng = random.Random(27)
    others = [(a, b) for a, b in uncovered if a not in reported]
    for a, b in rng.sample(others, 80):
        assert not beyond_v2(a, b), (hex(a), hex(b), beyond_v2(a, b))
    # Completeness: every FDE range that one objdump -d of the whole file shows
    # holding such an instruction is reported (a range objdump entered out of
    # step, after data, is disassembled again on its own).
    flagged = _flagged_by_full_objdump(uncovered)
    assert len(flagged) > 50
    for a, b in flagged:
        if a not in reported:
            assert not beyond_v2(a, b), (hex(a), hex(b), beyond_v2(a, b))
    head = re.match(r"isa-scan: unsupported - (\d+) function\(s\)", text)
    assert head and int(head.group(1)) == len(obj["functions"]) > 50
    assert r["verdict"] == "unsupported"


def test_data_in_text_is_not_a_feature(scanned):
    text, r, _ = scanned
    (obj,) = r["objects"]
    names = {f["name"] for f in obj["features"]}
    # Constant tables between the asm functions decode as 3DNow!, VMX, RSM:
    # never features the library needs.
    assert not names & {"3dnow", "vmx", "smm", "svm"}, names
    assert obj["outside_functions"]["bytes"] > 0
    text_size = int(re.search(r"\.text\s+(\d+)", run(["size", "-A", str(LIBCRYPTO)]).stdout)
                    .group(1))
    covered = sum(b - a for a, b in fde_ranges())
    assert obj["outside_functions"]["bytes"] <= obj["bytes"] - covered + 0x1000
    assert obj["bytes"] >= text_size
    assert obj["data_like"] and obj["unattributed"] == 0
    assert "likely data" in text and "outside every function and FDE" in text


def test_workers_agree(scanned):
    _, one, two = scanned
    a, b = one["objects"][0], two["objects"][0]
    a.pop("processes"), b.pop("processes")
    assert a == b
