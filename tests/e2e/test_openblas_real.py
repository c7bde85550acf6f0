"""isa-check on real OpenBLAS builds: Debian's libopenblas0-pthread and numpy's
wheel, driven by fixtures/dispatch/blas_driver (dlopen + cblas_dgemm).

Truth: the core the library names itself (openblas_get_corename(), printed by
the driver), nm/objdump/strings of the library, /proc/cpuinfo.
"""
from __future__ import annotations

import re
import shutil
import signal
import subprocess

import pytest

from tests.e2e.conftest import objdump_at
from tests.e2e.gdb_session import GdbSession
from tests.host import FIXTURES, find_kernel_core, host_has, kernel_cores_land_in_cwd, \
    unlimited_core
from tests.real_libs import (NUMPY_PINS, cores_in, debian_openblas, dynamic_functions,
                             embedded_version,
                             numpy_wheel_openblas, objdump_instructions, sized_functions,
                             variant_isa)

DRIVER = FIXTURES / "blas_driver"


def crash(lib, core_type: str, cwd, *symbol_affixes, emulate: str | None = None
          ) -> tuple[dict, object]:
    """Run the driver with OPENBLAS_CORETYPE; (its own words, the kernel core),
    or under ``qemu-x86_64 -cpu EMULATE`` (its guest core)."""
    if emulate is None and not kernel_cores_land_in_cwd():
        pytest.skip("core_pattern does not write kernel cores into the cwd")
    qemu = ["qemu-x86_64", "-cpu", emulate] if emulate else []
    proc = subprocess.run([*qemu, str(DRIVER), str(lib), *symbol_affixes], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=unlimited_core, stdin=subprocess.DEVNULL,
                          env={"PATH": "/usr/bin:/bin", "OPENBLAS_CORETYPE": core_type,
                               "OPENBLAS_NUM_THREADS": "1"})
    m = re.search(r"pid=(\d+) core=(\w+)", proc.stdout)
    assert m, proc.stdout + proc.stderr
    said = {"pid": int(m.group(1)), "core": m.group(2)}
    if "survived" in proc.stdout:
        pytest.skip(f"this CPU runs OpenBLAS's {said['core']} kernels: nothing crashes")
    assert proc.returncode == -signal.SIGILL, proc
    if emulate:
        [core] = sorted(cwd.glob(f"qemu_{DRIVER.name}_*.core"))
        return said, core
    return said, find_kernel_core(cwd, said["pid"])


def check_variant_facts(d: dict, lib) -> None:
    """The report's per-variant features against objdump of the same functions."""
    truth = variant_isa(lib, d["variant"])
    code = d["variant_code"]
    assert d["requires_source"] == "code" and code["functions"] == truth["functions"]
    for feature in ("xop", "fma4", "fma", "avx512f"):
        assert (feature in code["features"]) == truth[feature], (feature, truth)


@pytest.fixture(scope="module")
def debian_piledriver(tmp_path_factory):
    if host_has("fma4"):
        pytest.skip("this CPU has fma4: Piledriver kernels run here")
    lib = debian_openblas()
    cwd = tmp_path_factory.mktemp("openblas-debian")
    said, core = crash(lib, "Piledriver", cwd)
    return lib, said, core, cwd


@pytest.mark.parametrize("debuginfo", [True, False], ids=["debuginfo", "nodebuginfo"])
def test_debian_openblas_forced_piledriver(debian_piledriver, debuginfo):
    lib, said, core, cwd = debian_piledriver
    with GdbSession(str(DRIVER), "-ex", f"core-file {core}", debuginfo=debuginfo,
                    cwd=cwd) as gdb:
        r = gdb.json("isa-check --json")
        text = gdb.cmd("isa-check")
    funcs = dynamic_functions(lib)
    assert said["core"] == "Piledriver" and r["symbol"].endswith("_PILEDRIVER")
    _, mnemonic = objdump_at(lib, funcs[r["symbol"]] + r["offset"])
    assert mnemonic == r["mnemonic"]
    assert r["verdict"] == "unsupported"
    d = r["dispatch"]
    assert (d["library"], d["variant"]) == ("OpenBLAS", "PILEDRIVER")
    check_variant_facts(d, lib)
    assert set(d["missing"]) == {f for f in d["requires"] if not host_has(f)}
    # what the library chose, read from its gotoblas pointer, is what it said
    assert d["chosen"]["core"] == said["core"].upper()
    assert d["cause"] == "environment" and d["knob_value"] == "Piledriver"
    assert d["library_facts"]["version"]["version"] == embedded_version(lib)
    assert d["library_facts"]["python_package"] is None
    # the portable fix first, then a core this library has and this CPU runs
    assert r["hints"][0].startswith("unset OPENBLAS_CORETYPE")
    best = d["suggested_value"].upper()
    assert best in cores_in(lib)
    truth = variant_isa(lib, best)
    assert not (truth["fma4"] and not host_has("fma4"))
    assert not (truth["avx512f"] and not host_has("avx512f"))
    assert not (truth["xop"] and not host_has("xop"))
    assert "XOP" not in text.upper() or truth["xop"] or variant_isa(lib, "PILEDRIVER")["xop"]
    assert f"OpenBLAS {embedded_version(lib)}" in text
    # the family/model line only when it bears on the crash: here the override chose the
    # kernel, so it shows only if the model is expected to have a feature the CPU lacks
    import archspec.cpu
    model = r["microarchitecture"]
    expected = set(archspec.cpu.TARGETS[model["name"]].features) if model else set()
    relevant = bool(set(r["missing"]) & expected - {f for f in expected if host_has(f)})
    assert (model is not None and model["relevant"]) == relevant
    assert ("\n  model " in text) == relevant


@pytest.mark.parametrize("numpy", sorted(NUMPY_PINS))
def test_numpy_wheel_forced_skylakex(numpy, tmp_path):
    """The core numpy's OpenBLAS chose, read from its `gotoblas` -- exported
    in numpy 2.0's wheel, a local symbol in 2.5's.  On a CPU with AVX-512 the
    driver runs under qemu-x86_64 as a Haswell, which has none."""
    emulate = None
    if host_has("avx512f", "avx512vl"):
        if shutil.which("qemu-x86_64") is None:
            pytest.skip("this CPU runs AVX-512 and qemu-user is not installed")
        emulate = "Haswell"
    lib, numpy_version = numpy_wheel_openblas(numpy)
    said, core = crash(lib, "SkylakeX", tmp_path, "scipy_", "64_", emulate=emulate)
    with GdbSession(str(DRIVER), "-ex", f"core-file {core}", debuginfo=False,
                    cwd=tmp_path) as gdb:
        r = gdb.json("isa-check --json")
    d = r["dispatch"]
    assert said["core"] == "SkylakeX" and d["variant"] == "SKYLAKEX"
    check_variant_facts(d, lib)
    assert d["chosen"]["core"] == "SKYLAKEX" and d["cause"] == "environment"
    assert d["library_facts"]["version"]["version"] == embedded_version(lib)
    assert d["library_facts"]["python_package"]["version"] == numpy_version
    assert d["suggested_value"].upper() in cores_in(lib)


@pytest.mark.parametrize("numpy", sorted(NUMPY_PINS))
def test_no_process_judges_against_the_cores_the_library_has(numpy):
    """--cpu with a file and no process: the hint names only cores this build
    contains (numpy's wheel has no Zen or family-15h tables)."""
    lib, _ = numpy_wheel_openblas(numpy)
    funcs = sized_functions(lib)
    kernel = next(n for n in funcs if n.startswith("dgemm_kernel_") and n.endswith("SKYLAKEX"))
    start, end = funcs[kernel]
    # the first AVX-512 instruction of the kernel, by objdump
    address = next(a for a, _m, ops in objdump_instructions(lib, start, end) if "%zmm" in ops)
    with GdbSession(str(lib), debuginfo=False) as gdb:
        r = gdb.json(f"isa-check --json --cpu zen3 '{kernel}'+{address - start}")
    assert r["verdict"] == "unsupported" and "avx512f" in r["missing"]
    d = r["dispatch"]
    assert d["cause"] == "unknown" and d["chosen"] is None
    assert d["suggested_value"].upper() in cores_in(lib)
    truth = variant_isa(lib, d["suggested_value"].upper())
    assert not truth["avx512f"]          # zen3 has no AVX-512


@pytest.mark.parametrize("feature", ["avx512f", "fma4"])
def test_variant_lacks_stops_early_and_agrees_with_objdump(feature):
    """variant_lacks (which stops decoding at the first use of a lacking
    feature) against objdump's view of the same functions, and against the
    whole decode (variant_use) -- which it must not leave half-cached."""
    from gdbext.isa import variants
    from gdbext.knowledge.dispatch import LIBRARIES
    lib = debian_openblas()
    pattern = next(l for l in LIBRARIES if l.name == "OpenBLAS").symbol_pattern
    for variant in ("SKYLAKEX", "HASWELL", "PILEDRIVER", "ZEN"):
        variants._CACHE.clear()
        said = variants.variant_lacks(str(lib), pattern, variant, lambda f: f == feature)
        assert said == variant_isa(lib, variant)[feature], (variant, feature)
        whole = variants.variant_use(str(lib), pattern, variant)
        assert (feature in whole.required) == said
        assert variants.variant_lacks(str(lib), pattern, variant,
                                      lambda f: f == feature) == said   # from the cache
