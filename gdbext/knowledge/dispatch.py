"""How libraries pick a kernel per CPU, how to recognise the kernel they picked,
and the environment knobs that override the choice.

Feature names are /proc/cpuinfo spellings.  A ``Kernel`` row says what every
kernel of that variant may execute; the hint for a crash is the best variant
whose features the CPU has all of.  Add a library by adding a ``Library`` row.

Sources: OpenBLAS ``driver/others/dynamic.c`` (core names, ``OPENBLAS_CORETYPE``,
model-based choice); the symbols of numpy 2.4's bundled ``libscipy_openblas64_``
(cores PRESCOTT, NEHALEM, SANDYBRIDGE, HASWELL, SKYLAKEX); Intel oneMKL developer
reference ("Instruction set specific dispatching", ``MKL_ENABLE_INSTRUCTIONS``,
``MKL_CBWR``); glibc ``sysdeps/x86_64/multiarch/ifunc-*.h`` and the
``glibc.cpu.hwcaps`` tunable; numpy ``doc/source/reference/simd`` (dispatch
targets, ``NPY_DISABLE_CPU_FEATURES``).
"""
from __future__ import annotations

from collections import namedtuple   # not typing.NamedTuple: typing costs ~10 ms per gdb

_V2 = ("cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3")
_V3 = _V2 + ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave")
_V4 = _V3 + ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")
_SKX = ("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl")


# variant       as it appears in the symbol or file name
# knob_value    the knob's value in a hint (see Library.hint_from)
# rank          higher = newer/faster; the hint picks the highest usable
# features      what the variant is expected to use; for OpenBLAS the report
#               computes it from the library's code instead
# vendor        "AuthenticAMD"/"GenuineIntel": preferred on ties
# checks        OpenBLAS: the features get_coretype() tests before it returns
#               this core (support_avx() and friends); a core with none is
#               chosen by model alone; check_function: the function that tests
Kernel = namedtuple("Kernel", "variant knob_value rank features vendor checks check_function",
                    defaults=("", (), ""))

# symbol_pattern  regex over the function name ("" = any)
# object_pattern  regex over the object's path ("" = any); the variant is the
#                 "variant" group of whichever pattern has one
# knob            environment variable that forces a variant (None: none)
# chooses_by      how the library picks: "model" or "features"
# hint_from       knob value from the "best" usable kernel or the "faulting" one
# fix             the hint's action, {knob}/{value} filled in
Library = namedtuple("Library", "name symbol_pattern object_pattern knob chooses_by hint_from "
                     "kernels fix")


AMD, INTEL = "AuthenticAMD", "GenuineIntel"

# get_coretype() in OpenBLAS driver/others/dynamic.c (0.3.21 .. 0.3.28 read):
# support_avx() tests CPUID.1:ECX AVX+OSXSAVE and XCR0 ymm state; support_avx2()
# adds CPUID.7:EBX[5]; support_avx512() tests AVX512VL (7:EBX[31]) and XCR0 zmm
# state; support_avx512_bf16() adds 7.1:EAX[5]; support_amx_bf16() tests
# AMX-BF16.  The family-15h cores and Zen are returned for their family/model
# after support_avx() alone.
_AVX = (("avx",), "support_avx()")
_AVX2 = (("avx", "avx2"), "support_avx2()")
_AVX512 = (("avx", "avx512vl"), "support_avx512()")
_BF16 = (("avx", "avx512vl", "avx512_bf16"), "support_avx512_bf16()")
_AMX = (("amx_bf16",), "support_amx_bf16()")

OPENBLAS = Library(
    # ctrmm_kernel_LC_PILEDRIVER, chemv_U_PILEDRIVER: upper-case parts before the core
    "OpenBLAS", r"^[a-z][A-Za-z0-9_]*?_(?P<variant>[A-Z][A-Z0-9]+(?:_SSE3)?)$",
    "", "OPENBLAS_CORETYPE", "model", "best",
    (
        Kernel("OPTERON", "Opteron", 5, ("sse2",), AMD),
        Kernel("PRESCOTT", "Prescott", 10, ("pni",)),
        Kernel("OPTERON_SSE3", "Opteron_SSE3", 10, ("pni",), AMD),
        Kernel("ATOM", "Atom", 15, ("ssse3",), INTEL),
        Kernel("NANO", "Nano", 15, ("ssse3",)),
        Kernel("CORE2", "Core2", 20, ("ssse3",), INTEL),
        Kernel("BOBCAT", "Bobcat", 20, ("ssse3", "sse4a"), AMD),
        Kernel("PENRYN", "Penryn", 25, ("sse4_1",), INTEL),
        Kernel("DUNNINGTON", "Dunnington", 25, ("sse4_1",), INTEL),
        Kernel("BARCELONA", "Barcelona", 26, ("pni", "sse4a"), AMD),
        Kernel("NEHALEM", "Nehalem", 30, ("sse4_2", "popcnt"), INTEL),
        Kernel("SANDYBRIDGE", "Sandybridge", 40, ("avx",), INTEL, *_AVX),
        Kernel("BULLDOZER", "Bulldozer", 41, ("avx", "fma4"), AMD, *_AVX),
        Kernel("PILEDRIVER", "Piledriver", 42, ("avx", "fma", "fma4"), AMD, *_AVX),
        Kernel("STEAMROLLER", "Steamroller", 43, ("avx", "fma", "fma4"), AMD, *_AVX),
        Kernel("EXCAVATOR", "Excavator", 44, ("avx", "avx2", "fma", "fma4"), AMD, *_AVX),
        Kernel("HASWELL", "Haswell", 50, ("avx", "avx2", "fma"), INTEL, *_AVX2),
        Kernel("ZEN", "Zen", 50, ("avx", "avx2", "fma"), AMD, *_AVX),
        Kernel("SKYLAKEX", "SkylakeX", 60, ("avx2", "fma") + _SKX, "", *_AVX512),
        Kernel("COOPERLAKE", "Cooperlake", 62, ("avx2", "fma") + _SKX + ("avx512_bf16",),
               "", *_BF16),
        Kernel("SAPPHIRERAPIDS", "SapphireRapids", 64,
               ("avx2", "fma") + _SKX + ("avx512_bf16", "amx_tile", "amx_bf16"), "", *_AMX),
    ),
    "set {knob}={value} in its environment",
)

MKL = Library(
    "Intel oneMKL", "",
    r"libmkl_(?P<variant>def|mc3|mc|avx512_mic|avx512|avx2|avx)\.so", "MKL_ENABLE_INSTRUCTIONS",
    "features", "best",
    (
        Kernel("def", "SSE4_2", 5, ("sse2",)),
        Kernel("mc", "SSE4_2", 20, ("ssse3",)),
        Kernel("mc3", "SSE4_2", 30, ("sse4_2", "popcnt")),
        Kernel("avx", "AVX", 40, ("avx",)),
        Kernel("avx2", "AVX2", 50, ("avx2", "fma")),
        Kernel("avx512", "AVX512", 60, _SKX),
        Kernel("avx512_mic", "AVX512_MIC", 55, ("avx512f", "avx512cd")),
    ),
    "set {knob}={value} (or MKL_CBWR={value}) in its environment",
)

GLIBC = Library(
    "glibc string/memory ifunc",
    r"^__[a-z0-9_]+?_(?P<variant>sse2|ssse3|sse4_1|sse4_2|avx512|evex512|evex|avx2|avx)"
    r"(?:_[a-z0-9_]+)?$",
    r"/libc[.-][^/]*$", "GLIBC_TUNABLES", "features", "faulting",
    (
        Kernel("sse2", "glibc.cpu.hwcaps=-AVX2,-AVX512F", 10, ("sse2",)),
        Kernel("ssse3", "glibc.cpu.hwcaps=-AVX2,-AVX512F", 20, ("ssse3",)),
        Kernel("sse4_1", "glibc.cpu.hwcaps=-AVX2,-AVX512F", 25, ("sse4_1",)),
        Kernel("sse4_2", "glibc.cpu.hwcaps=-AVX2,-AVX512F", 30, ("sse4_2",)),
        Kernel("avx", "glibc.cpu.hwcaps=-AVX2,-AVX512F", 40, ("avx",)),
        Kernel("avx2", "glibc.cpu.hwcaps=-AVX512F,-AVX512VL", 50, ("avx", "avx2", "bmi2")),
        Kernel("evex", "glibc.cpu.hwcaps=-AVX512F", 60, ("avx2", "avx512vl", "avx512bw", "bmi2")),
        Kernel("evex512", "glibc.cpu.hwcaps=-AVX512F", 61, ("avx512f", "avx512vl", "avx512bw", "bmi2")),
        Kernel("avx512", "glibc.cpu.hwcaps=-AVX512F", 62, ("avx512f", "avx512vl", "avx512bw", "bmi2")),
    ),
    "set {knob}={value} in its environment",
)

NUMPY = Library(
    "numpy SIMD dispatch",
    r"^[A-Za-z0-9_]+?_(?P<variant>X86_V[234]|AVX512_(?:SKX|CLX|CNL|ICL|SPR|KNL|KNM)|AVX512F|"
    r"AVX512CD|FMA3|AVX2|AVX|F16C|SSE41|SSE42|SSSE3|SSE3|POPCNT)$",
    r"numpy/", "NPY_DISABLE_CPU_FEATURES", "features", "faulting",
    (
        Kernel("SSE3", "SSE3", 10, ("pni",)),
        Kernel("SSSE3", "SSSE3", 15, ("ssse3",)),
        Kernel("SSE41", "SSE41", 20, ("sse4_1",)),
        Kernel("SSE42", "SSE42", 25, ("sse4_2",)),
        Kernel("POPCNT", "POPCNT", 26, ("popcnt",)),
        Kernel("X86_V2", "X86_V2", 30, _V2),
        Kernel("AVX", "AVX", 40, ("avx",)),
        Kernel("F16C", "F16C", 42, ("f16c",)),
        Kernel("FMA3", "FMA3", 45, ("fma",)),
        Kernel("AVX2", "AVX2", 48, ("avx2",)),
        Kernel("X86_V3", "X86_V3", 50, _V3),
        Kernel("AVX512F", "AVX512F", 55, ("avx512f",)),
        Kernel("AVX512CD", "AVX512CD", 56, ("avx512f", "avx512cd")),
        Kernel("AVX512_KNL", "AVX512_KNL", 56, ("avx512f", "avx512cd", "avx512er", "avx512pf")),
        Kernel("AVX512_KNM", "AVX512_KNM", 57, ("avx512f", "avx512_4vnniw")),
        Kernel("X86_V4", "X86_V4", 60, _V4),
        Kernel("AVX512_SKX", "AVX512_SKX", 60, _SKX),
        Kernel("AVX512_CLX", "AVX512_CLX", 61, _SKX + ("avx512_vnni",)),
        Kernel("AVX512_CNL", "AVX512_CNL", 62, _SKX + ("avx512ifma", "avx512vbmi")),
        Kernel("AVX512_ICL", "AVX512_ICL", 63,
               _SKX + ("avx512_vnni", "avx512ifma", "avx512vbmi", "avx512_vbmi2",
                       "avx512_bitalg", "avx512_vpopcntdq")),
        Kernel("AVX512_SPR", "AVX512_SPR", 64, _SKX + ("avx512_fp16",)),
    ),
    "set {knob}={value} in its environment (disables this target)",
)

# Tried in order: the first library whose object and symbol patterns match wins.
LIBRARIES: tuple[Library, ...] = (MKL, GLIBC, NUMPY, OPENBLAS)

# Environment variables that change which kernels run: name -> what it does.
KNOBS: dict[str, str] = {
    "OPENBLAS_CORETYPE": "OpenBLAS: force a core (case-insensitive core name)",
    "OPENBLAS_VERBOSE": "OpenBLAS: 2 prints the chosen core at load",
    "OPENBLAS_NUM_THREADS": "OpenBLAS: worker threads",
    "MKL_ENABLE_INSTRUCTIONS": "MKL: highest instruction set to dispatch to",
    "MKL_CBWR": "MKL: conditional numerical reproducibility branch (pins the code path)",
    "MKL_DEBUG_CPU_TYPE": "MKL (old releases): force a code path on AMD CPUs",
    "NPY_DISABLE_CPU_FEATURES": "numpy: dispatch targets not to use",
    "NPY_ENABLE_CPU_FEATURES": "numpy: the only dispatch targets to use",
    "GLIBC_TUNABLES": "glibc: glibc.cpu.hwcaps masks features for ifunc selection",
    "LD_PRELOAD": "objects loaded before all others (may replace BLAS or libc functions)",
    "LD_LIBRARY_PATH": "where shared libraries are looked up first",
}
