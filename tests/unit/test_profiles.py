"""--cpu profiles: verdicts follow archspec's microarchitecture data."""
from __future__ import annotations

import archspec.cpu
import pytest

from gdbext.errors import GdbextError
from gdbext.isa.decode import decode
from gdbext.isa.profiles import profile_cpu
from gdbext.isa.verdict import judge

X86 = sorted(n for n, t in archspec.cpu.TARGETS.items() if t.family.name == "x86_64")

# bytes -> the archspec feature names the instruction needs (Intel SDM / AMD APM)
INSTRUCTIONS = {
    "c4e3f969e410": {"fma4"},                       # vfmaddpd
    "62a37d2025c0ff": {"avx512f", "avx512vl"},      # vpternlogd $0xff,%ymm16,...
    "c5f5fec2": {"avx2"},                           # vpaddd %ymm2,%ymm1,%ymm0
    "c4e2f5a8c2": {"fma"},                          # vfmadd213pd %ymm2,%ymm1,%ymm0
    "0f38cbd1": {"sha_ni"},                         # sha256rnds2
    "c4e2735eda": {"amx_int8"},                     # tdpbssd %tmm1,%tmm2,%tmm3
    "660f3800c1": {"ssse3"},                        # pshufb
    "660fd0c1": {"sse3"},                           # addsubpd (archspec: sse3)
}


@pytest.mark.parametrize("name", X86)
def test_verdicts_follow_archspec(name):
    features = archspec.cpu.TARGETS[name].features
    cpu = profile_cpu(name)
    for code, needs in INSTRUCTIONS.items():
        j = judge(decode(bytes.fromhex(code) + b"\x90" * 8, 0), cpu)
        expected = "supported" if needs <= features else "unsupported"
        assert j.verdict == expected, (name, code, j.missing)


def test_level_names_are_accepted_with_dashes():
    assert profile_cpu("x86-64-v3").profile == "x86_64_v3"


def test_unknown_profile_lists_close_matches():
    with pytest.raises(GdbextError, match="close matches: .*skylake_avx512"):
        profile_cpu("skylake-avx")
