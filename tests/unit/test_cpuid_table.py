"""The CPUID knowledge table against independent sources: archspec's cpuid.json
and iced-x86's own list of features."""
from __future__ import annotations

import json
from pathlib import Path

import archspec
import iced_x86

from gdbext.knowledge.cpuid_features import ANY_OF, BASELINE, CPUID_BITS


def _archspec_bits() -> dict[str, set[tuple[int, int, str, int]]]:
    data = json.loads((Path(archspec.__path__[0]) / "json/cpu/cpuid.json").read_text())
    bits = {}
    for group in data["flags"] + data["extension-flags"]:
        leaf, sub = group["input"]["eax"], group["input"]["ecx"]
        for b in group["bits"]:
            # a name may appear twice (archspec lists syscall at EDX[10] and [11])
            bits.setdefault(b["name"], set()).add((leaf, sub, b["register"], b["bit"]))
    return bits


def test_every_bit_archspec_knows_agrees():
    theirs = _archspec_bits()
    compared = 0
    for iced_name, ours in CPUID_BITS.items():
        if ours.name in theirs:
            assert (ours.leaf, ours.subleaf, ours.register, ours.bit) in theirs[ours.name], iced_name
            compared += 1
    assert compared >= 90, f"only {compared} rows could be cross-checked"


def test_every_iced_feature_is_placed():
    """A feature iced reports must be a CPUID bit, an OR of bits, or baseline --
    except ones no 64-bit user-mode program meets (other vendors, other modes)."""
    exotic_prefixes = ("CYRIX_", "PADLOCK_", "INTEL8086_ONLY", "INTEL286_ONLY", "INTEL386_",
                       "INTEL486_A_ONLY", "FPU287XL_ONLY", "FPU387SL_ONLY", "IA64", "KNC",
                       "CENTAUR_", "SEV", "TDX", "SGX", "SMM", "UDBG", "MOV_TR", "OSS",
                       "CL1INVMB", "INVEPT", "INVVPID", "UMOV", "TSE", "RMPQUERY", "PCONFIG")
    names = [n for n in dir(iced_x86.CpuidFeature) if n.isupper()]
    unplaced = [n for n in names if n not in CPUID_BITS and n not in ANY_OF
                and n not in BASELINE and not n.startswith(exotic_prefixes)]
    assert unplaced == []


def test_cpuinfo_names_are_unique_per_bit():
    seen = {}
    for iced_name, b in CPUID_BITS.items():
        key = (b.leaf, b.subleaf, b.register, b.bit)
        assert seen.setdefault(key, b.name) == b.name, iced_name
