"""CPUID family/model -> microarchitecture, for x86-64 CPUs that archspec describes.

Sources: LLVM ``llvm/lib/TargetParser/Host.cpp`` (getIntelProcessorTypeAndSubtype,
getAMDProcessorTypeAndSubtype) and GCC ``common/config/i386/cpuinfo.h``.  The
name is an archspec microarchitecture, whose feature list says what a CPU of
that model is expected to have; ``label`` is what users know it as.

A hypervisor can report any family/model with any feature bits: the point of
this table is to notice when the two disagree (the "Opteron 63xx class" virtual
CPU with fma4 clear, which made OpenBLAS pick its Piledriver kernels).
"""
from __future__ import annotations

from collections import namedtuple   # not typing.NamedTuple: typing costs ~10 ms per gdb


# vendor: CPUID leaf 0 vendor string; family: display family; models:
# inclusive display-model ranges; microarch: archspec name
CpuModel = namedtuple("CpuModel", "vendor family models microarch label")


def _r(*spec) -> tuple[tuple[int, int], ...]:
    return tuple((m, m) if isinstance(m, int) else m for m in spec)


AMD, HYGON, INTEL = "AuthenticAMD", "HygonGenuine", "GenuineIntel"

# First match wins: exact models before ranges that contain them.
CPU_MODELS: tuple[CpuModel, ...] = (
    CpuModel(AMD, 0x10, _r((0x00, 0xFF)), "k10", "K10 (Barcelona, Shanghai, Istanbul)"),
    CpuModel(AMD, 0x15, _r(0x02, (0x10, 0x1F)), "piledriver",
             "Piledriver (Opteron 63xx/43xx, FX-83xx, Trinity, Richland)"),
    CpuModel(AMD, 0x15, _r((0x00, 0x0F)), "bulldozer", "Bulldozer (Opteron 62xx, FX-81xx)"),
    CpuModel(AMD, 0x15, _r((0x30, 0x3F)), "steamroller", "Steamroller (Kaveri)"),
    CpuModel(AMD, 0x15, _r((0x60, 0x7F)), "excavator", "Excavator (Carrizo, Bristol Ridge)"),
    CpuModel(AMD, 0x17, _r((0x30, 0x3F), 0x47, (0x60, 0x7F), (0x84, 0x87), (0x90, 0xAF)),
             "zen2", "Zen 2 (EPYC 7002, Ryzen 3000/4000)"),
    CpuModel(AMD, 0x17, _r((0x00, 0xFF)), "zen", "Zen / Zen+ (EPYC 7001, Ryzen 1000/2000)"),
    CpuModel(HYGON, 0x18, _r((0x00, 0xFF)), "zen", "Hygon Dhyana (Zen)"),
    CpuModel(AMD, 0x19, _r((0x10, 0x1F), (0x60, 0x7F), (0xA0, 0xAF)), "zen4",
             "Zen 4 (EPYC 9004, Ryzen 7000)"),
    CpuModel(AMD, 0x19, _r((0x00, 0x0F), (0x20, 0x5F)), "zen3", "Zen 3 (EPYC 7003, Ryzen 5000)"),
    CpuModel(AMD, 0x1A, _r((0x00, 0x7F)), "zen5", "Zen 5 (EPYC 9005, Ryzen 9000)"),
    CpuModel(INTEL, 6, _r(0x0F, 0x16, 0x17, 0x1D), "core2", "Core 2"),
    CpuModel(INTEL, 6, _r(0x1A, 0x1E, 0x1F, 0x2E), "nehalem", "Nehalem"),
    CpuModel(INTEL, 6, _r(0x25, 0x2C, 0x2F), "westmere", "Westmere"),
    CpuModel(INTEL, 6, _r(0x2A, 0x2D), "sandybridge", "Sandy Bridge"),
    CpuModel(INTEL, 6, _r(0x3A, 0x3E), "ivybridge", "Ivy Bridge"),
    CpuModel(INTEL, 6, _r(0x3C, 0x3F, 0x45, 0x46), "haswell", "Haswell"),
    CpuModel(INTEL, 6, _r(0x3D, 0x47, 0x4F, 0x56), "broadwell", "Broadwell"),
    CpuModel(INTEL, 6, _r(0x4E, 0x5E, 0x8E, 0x9E, 0xA5, 0xA6), "skylake",
             "Skylake client (also Kaby/Coffee/Comet Lake)"),
    CpuModel(INTEL, 6, _r(0x55), "skylake_avx512",
             "Skylake-SP/X (Cascade Lake from stepping 7)"),
    CpuModel(INTEL, 6, _r(0x57, 0x85), "mic_knl", "Xeon Phi (Knights Landing/Mill)"),
    CpuModel(INTEL, 6, _r(0x66), "cannonlake", "Cannon Lake"),
    CpuModel(INTEL, 6, _r(0x6A, 0x6C, 0x7D, 0x7E, 0x8C, 0x8D), "icelake",
             "Ice Lake / Tiger Lake"),
    CpuModel(INTEL, 6, _r(0x8F, 0xCF), "sapphirerapids", "Sapphire/Emerald Rapids"),
    CpuModel(INTEL, 6, _r(0x97, 0x9A, 0xB7, 0xBA, 0xBF, 0xAA, 0xAC), "alderlake",
             "Alder/Raptor/Meteor Lake (hybrid: no AVX-512)"),
    CpuModel(INTEL, 6, _r(0xC5, 0xC6, 0xB5), "arrowlake", "Arrow Lake"),
)

# Intel family 6 model 0x55 steppings that are later microarchitectures.
STEPPING_UPGRADES: dict[tuple[str, int, int], tuple[tuple[int, str, str], ...]] = {
    (INTEL, 6, 0x55): ((7, "cascadelake", "Cascade Lake"),),
}
