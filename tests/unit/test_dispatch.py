"""Dispatch diagnosis on synthetic CPUs: kernel names as the libraries spell
them (OpenBLAS DYNAMIC_ARCH suffixes, glibc multiarch, numpy 2.x targets,
oneMKL per-ISA libraries) and what a user should set instead."""
from __future__ import annotations

import pytest

from gdbext.isa.cpu import CpuFacts
from gdbext.isa.dispatch import best_kernel, diagnose, recognise, variants_in
from gdbext.isa.model import implied_microarch
from gdbext.isa.profiles import profile_cpu
from gdbext.knowledge import dispatch as kd
from gdbext.knowledge.cpuid_features import BY_NAME
from gdbext.record import replace


def cpu_like(profile: str, *, signature: int | None = None, clear=(), vendor=None) -> CpuFacts:
    """A 'process' CPU record built from an archspec profile, with some bits cleared
    and a CPUID.1:EAX signature (family/model/stepping) of our choosing."""
    facts = profile_cpu(profile)
    leaves = {k: list(v) for k, v in facts.leaves.items()}
    for name in clear:
        b = BY_NAME[name]
        leaves[(b.leaf, b.subleaf)][("eax", "ebx", "ecx", "edx").index(b.register)] &= ~(1 << b.bit)
    if signature is not None:
        leaves[(1, 0)][0] = signature
    vendor = vendor or facts.vendor_hint or "GenuineIntel"
    b, d, c = (int.from_bytes(vendor.encode()[i:i + 4], "little") for i in (0, 4, 8))
    leaves[(0, 0)] = [0xD, b, c, d]
    return replace(facts, source="process", profile=None,
                               leaves={k: tuple(v) for k, v in leaves.items()})


# AMD family 15h model 02h: CPUID.1:EAX = ext family 6 (0xf + 6), base family 0xf, model 2
OPTERON_63XX = 0x00600F20


def test_every_table_feature_is_a_known_cpuid_bit():
    unknown = {(lib.name, k.variant, f) for lib in kd.LIBRARIES for k in lib.kernels
               for f in k.features if f not in BY_NAME}
    assert not unknown


@pytest.mark.parametrize("function, objfile, library, variant", [
    ("dgemm_kernel_PILEDRIVER", "/x/numpy.libs/libopenblasp-r0.so", "OpenBLAS", "PILEDRIVER"),
    ("dgemm_itcopy_SKYLAKEX", "/x/libscipy_openblas64_.so", "OpenBLAS", "SKYLAKEX"),
    ("sgemm_kernel_OPTERON_SSE3", "/usr/lib/libopenblas.so.0", "OpenBLAS", "OPTERON_SSE3"),
    ("__memmove_avx512_unaligned_erms", "/lib/x86_64-linux-gnu/libc.so.6",
     "glibc string/memory ifunc", "avx512"),
    ("__strlen_evex", "/lib/x86_64-linux-gnu/libc.so.6", "glibc string/memory ifunc", "evex"),
    ("DOUBLE_add_X86_V4", "/site-packages/numpy/_core/_multiarray_umath.so",
     "numpy SIMD dispatch", "X86_V4"),
    ("mkl_blas_avx512_dgemm_kernel", "/opt/intel/lib/libmkl_avx512.so.2", "Intel oneMKL",
     "avx512"),
])
def test_kernels_are_recognised_by_name(function, objfile, library, variant):
    lib, kernel = recognise(function, objfile)
    assert (lib.name, kernel.variant) == (library, variant)


@pytest.mark.parametrize("function, objfile", [
    ("main", "/usr/bin/prog"), ("dgemm_kernel_MYCHIP", "/x/libopenblas.so"),
    ("memcpy", "/lib/x86_64-linux-gnu/libc.so.6"), (None, None),
])
def test_other_code_is_not_a_kernel(function, objfile):
    assert recognise(function, objfile) is None


def test_the_seed_virtual_opteron_without_fma4():
    """The seed: a VM reports an Opteron 63xx (Piledriver) model with fma4 clear."""
    cpu = cpu_like("piledriver", signature=OPTERON_63XX, clear=("fma4", "xop", "tbm"))
    model = implied_microarch(cpu)
    assert model.microarch == "piledriver"
    assert set(model.expected_absent) == {"fma4", "xop", "tbm"}
    f = diagnose("dgemm_kernel_PILEDRIVER", "/x/libopenblas.so", cpu, {}, None, model)
    assert f.library == "OpenBLAS" and f.variant == "PILEDRIVER"
    # the table's expectation (no library code here): Piledriver's kernels use FMA4
    # and FMA3, not XOP (decoded from Debian's libopenblas 0.3.21)
    assert f.missing == ["fma4"] and not f.forced_by_environment and f.requires_source == "table"
    assert f.cause == "model"
    assert "tested only avx (support_avx())" in f.explanation[-1]
    # avx (and nothing newer in the build) is what this CPU can run
    assert f.best == "Sandybridge"
    assert len(f.hints) == 1 and "OPENBLAS_CORETYPE=Sandybridge" in f.hints[0]


def test_override_in_environment_is_named_as_the_cause():
    cpu = cpu_like("zen3", vendor="AuthenticAMD")
    f = diagnose("dgemm_kernel_PILEDRIVER", None, cpu, {"OPENBLAS_CORETYPE": "piledriver"},
                 {"PRESCOTT", "SANDYBRIDGE", "HASWELL", "ZEN", "PILEDRIVER", "SKYLAKEX"})
    assert f.forced_by_environment and f.knob_value == "piledriver"
    assert f.cause == "environment"
    assert f.best == "Zen"                       # same rank as Haswell: vendor decides
    assert f.hints[0].startswith("unset OPENBLAS_CORETYPE") and "portable" in f.hints[0]
    assert "OPENBLAS_CORETYPE=Zen" in f.hints[1] and "specific to this CPU" in f.hints[1]


def test_hint_only_names_cores_the_library_contains():
    cpu = cpu_like("icelake")
    lib, _ = recognise("dgemm_kernel_SKYLAKEX", None)
    numpy_build = variants_in(["dgemm_kernel_PRESCOTT", "dgemm_kernel_HASWELL",
                               "dgemm_itcopy_SKYLAKEX", "openblas_get_config"], lib)
    assert numpy_build == {"PRESCOTT", "HASWELL", "SKYLAKEX"}
    assert best_kernel(lib, cpu, numpy_build).variant == "SKYLAKEX"
    assert best_kernel(lib, cpu_like("haswell"), numpy_build).variant == "HASWELL"


def test_feature_dispatching_library_points_at_migration():
    cpu = cpu_like("haswell")
    f = diagnose("__memmove_avx512_unaligned_erms", "/lib/x86_64-linux-gnu/libc.so.6", cpu,
                 {}, None)
    assert "avx512f" in f.missing
    assert f.cause == "features"
    assert f.best == "glibc.cpu.hwcaps=-AVX512F"


def test_kernel_the_cpu_runs_gets_no_hint():
    f = diagnose("dgemm_kernel_HASWELL", None, cpu_like("zen2", vendor="AuthenticAMD"), {})
    assert f.missing == [] and f.hints == [] and f.cause is None


@pytest.mark.parametrize("vendor, signature, microarch", [
    # (vendor, CPUID.1:EAX, microarchitecture) from LLVM Host.cpp / Intel and AMD guides
    ("AuthenticAMD", 0x00600F12, "bulldozer"),     # Opteron 6200
    ("AuthenticAMD", 0x00600F20, "piledriver"),    # Opteron 6300
    ("AuthenticAMD", 0x00610F01, "piledriver"),    # Trinity model 10h
    ("AuthenticAMD", 0x00630F01, "steamroller"),
    ("AuthenticAMD", 0x00800F12, "zen"),           # EPYC 7001
    ("AuthenticAMD", 0x00830F10, "zen2"),          # EPYC 7002
    ("AuthenticAMD", 0x00A00F11, "zen3"),          # EPYC 7003
    ("AuthenticAMD", 0x00A10F11, "zen4"),          # EPYC 9004
    ("AuthenticAMD", 0x00B00F21, "zen5"),          # EPYC 9005 (Turin)
    ("GenuineIntel", 0x000306C3, "haswell"),
    ("GenuineIntel", 0x00050654, "skylake_avx512"),
    ("GenuineIntel", 0x00050657, "cascadelake"),
    ("GenuineIntel", 0x000606A6, "icelake"),
    ("GenuineIntel", 0x000806F8, "sapphirerapids"),
])
def test_family_model_names_the_microarchitecture(vendor, signature, microarch):
    cpu = cpu_like("x86_64", signature=signature, vendor=vendor)
    assert implied_microarch(cpu).microarch == microarch


def test_unknown_models_and_profiles_imply_nothing():
    assert implied_microarch(cpu_like("x86_64", signature=0x00000F41, vendor="GenuineIntel")) is None
    assert implied_microarch(profile_cpu("piledriver")) is None
    assert implied_microarch(None) is None


def test_no_unset_advice_when_the_model_picks_the_same_kernel():
    cpu = cpu_like("piledriver", signature=OPTERON_63XX, clear=("fma4", "xop"))
    f = diagnose("dgemm_kernel_PILEDRIVER", None, cpu, {"OPENBLAS_CORETYPE": "PILEDRIVER"},
                 None, implied_microarch(cpu))
    assert f.forced_by_environment
    assert not f.hints[0].startswith("unset")    # unsetting would pick Piledriver again
    assert "OPENBLAS_CORETYPE=Sandybridge" in f.hints[0]


def _use(variant, **features):
    from gdbext.isa.variants import VariantUse
    return VariantUse(variant, 3, sum(features.values()), dict(features))


def test_variant_features_come_from_the_decoded_code_not_the_table():
    """A build whose Piledriver kernels use FMA4 and FMA3 only, on a Zen 3."""
    cpu = cpu_like("zen3", vendor="AuthenticAMD")
    uses = {"PILEDRIVER": _use("PILEDRIVER", avx=40, fma4=5, fma=1),
            "ZEN": _use("ZEN", avx=9, avx2=3, fma=4)}.get
    f = diagnose("dgemm_kernel_PILEDRIVER", "/x/libopenblas.so", cpu,
                 {"OPENBLAS_CORETYPE": "Piledriver"}, {"PILEDRIVER", "ZEN"}, None, uses)
    assert f.requires_source == "code" and f.requires == ["avx", "fma4", "fma"]
    assert f.missing == ["fma4"]
    assert f.best == "Zen" and "ZEN needs only avx, fma, avx2" in f.hints[1]


def test_a_feature_gated_core_is_not_called_a_model_choice():
    """SkylakeX is returned only after support_avx512(): a CPU without avx512vl
    running it was not chosen by family/model."""
    cpu = cpu_like("zen3", vendor="AuthenticAMD")
    uses = {"SKYLAKEX": _use("SKYLAKEX", avx512f=10, avx512vl=2)}.get
    f = diagnose("dgemm_itcopy_SKYLAKEX", "/x/libopenblas.so", cpu, {}, {"SKYLAKEX"},
                 implied_microarch(cpu), uses, {"core": "SKYLAKEX", "source": "test"})
    assert f.cause == "features" and "support_avx512()" in f.explanation[-1]
    assert "different CPU" in f.explanation[-1]


def test_a_family_15h_core_is_a_model_choice_with_avx_alone():
    cpu = cpu_like("piledriver", signature=OPTERON_63XX, clear=("fma4", "xop"))
    uses = {"PILEDRIVER": _use("PILEDRIVER", avx=40, fma4=5)}.get
    f = diagnose("dgemm_kernel_PILEDRIVER", "/x/libopenblas.so", cpu, {}, {"PILEDRIVER"},
                 implied_microarch(cpu), uses, {"core": "PILEDRIVER", "source": "test"})
    assert f.cause == "model" and f.checks == ["avx"]
    assert "never tests fma4" in f.explanation[-1]


def test_no_process_says_what_would_happen():
    cpu = profile_cpu("x86_64_v2")
    uses = {"SKYLAKEX": _use("SKYLAKEX", avx512f=10, avx512vl=2, avx=4)}.get
    f = diagnose("dgemm_itcopy_SKYLAKEX", "/x/libopenblas.so", cpu, None, {"SKYLAKEX"},
                 None, uses, None)
    assert f.cause == "unknown"
    assert "only OPENBLAS_CORETYPE=SkylakeX would run it" in f.explanation[-1]
