"""Real third-party libraries the tests drive, and facts about them computed
with binutils (nm, objdump, strings) -- never with gdbext.

Debian's libopenblas (libopenblas0-pthread, installed by `make setup`) and
numpy's wheels (pip download into build/wheels, each installed with --target
into a site-packages folder there so the library sits next to its dist-info).
The wheels are pinned, not "whatever is newest today": the oldest numpy that
bundles scipy-openblas (2.0, `gotoblas` exported) and the newest here (2.5,
`gotoblas` and its tables local symbols only).  The wheels only provide the
library (a C driver loads it), so each is taken for a Python it was built for.
"""
from __future__ import annotations

import bisect
import fcntl
import functools
import glob
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.host import REPO, run

DEBIAN_OPENBLAS = Path("/usr/lib/x86_64-linux-gnu/libopenblas.so.0")
WHEELS = REPO / "build" / "wheels"
# numpy version -> (a Python it has wheels for, their platform tag)
NUMPY_PINS = {"2.0.2": ("3.11", "manylinux_2_17_x86_64"),
              "2.5.5": ("3.13", "manylinux_2_28_x86_64")}

# XOP's mnemonics (AMD APM vol. 4): objdump spells them so.
XOP = re.compile(r"^(vpcmov|vpperm|vprot[bwdq]|vpsh[al][bwdq]|vpmacs|vpmadcs|vfrcz|vphadd[bwdu]"
                 r"|vphsub|vpcom)")
# FMA4: vfmadd/vfmsub/vfnmadd/vfnmsub/vfmaddsub/vfmsubadd without the 132/213/231 digits.
FMA4 = re.compile(r"^vf(?:n?m(?:add|sub)|maddsub|msubadd)(?:ps|pd|ss|sd)$")
FMA3 = re.compile(r"^vf(?:n?m(?:add|sub)|maddsub|msubadd)(?:132|213|231)")


def debian_openblas() -> Path:
    if not DEBIAN_OPENBLAS.exists():
        pytest.skip("Debian's libopenblas0-pthread is not installed (make setup installs it)")
    return DEBIAN_OPENBLAS.resolve()


@functools.lru_cache(maxsize=4)
def _numpy_wheel(version: str) -> Path | None:
    WHEELS.mkdir(parents=True, exist_ok=True)
    # pytest-xdist workers may all get here first: one downloads and installs
    with open(WHEELS / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _download_and_install(version)


def _download_and_install(version: str) -> Path | None:
    python, platform = NUMPY_PINS[version]
    wheels = sorted(WHEELS.glob(f"numpy-{version}-*.whl"))
    if not wheels:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet",
                               "--no-deps", "--only-binary=:all:", "--python-version", python,
                               "--platform", platform, "-d", str(WHEELS),
                               f"numpy=={version}"], capture_output=True, text=True)
        wheels = sorted(WHEELS.glob(f"numpy-{version}-*.whl"))
        if proc.returncode or not wheels:
            return None
    site = WHEELS / f"numpy-{version}" / "site-packages"
    if not glob.glob(str(site / "numpy.libs" / "libscipy_openblas*.so")):
        # unpacked as pip would lay it out (a wheel is a zip of site-packages);
        # not installed, since it may be for another Python than the venv's
        import zipfile
        with zipfile.ZipFile(wheels[-1]) as wheel:
            wheel.extractall(site)
    return wheels[-1]


def numpy_wheel_openblas(version: str) -> tuple[Path, str]:
    """(the OpenBLAS bundled in numpy VERSION's wheel, numpy's version from the
    wheel's file name)."""
    wheel = _numpy_wheel(version)
    if wheel is None:
        pytest.skip(f"cannot download numpy {version}'s wheel (no registry?)")
    site = WHEELS / f"numpy-{version}" / "site-packages"
    lib = sorted(site.glob("numpy.libs/libscipy_openblas*.so"))
    assert lib, f"{wheel} bundles no OpenBLAS"
    return lib[0], wheel.name.split("-")[1]


@functools.lru_cache(maxsize=4)
def dynamic_functions(lib: Path) -> dict[str, int]:
    """Function symbols from nm -D (name -> address)."""
    return {name: start for name, (start, _) in sized_functions(lib).items()}


@functools.lru_cache(maxsize=4)
def sized_functions(lib: Path) -> dict[str, tuple[int, int]]:
    """Function symbols with sizes from nm -D -S and nm -S (name -> (start, end))."""
    out = run(["nm", "-D", "-S", "--defined-only", str(lib)]).stdout
    out += subprocess.run(["nm", "-S", "--defined-only", str(lib)], capture_output=True,
                          text=True).stdout
    return {m.group(3): (int(m.group(1), 16), int(m.group(1), 16) + int(m.group(2), 16))
            for m in re.finditer(r"^([0-9a-f]+) ([0-9a-f]+) [TtWi] (\S+)$", out, re.M)}


@functools.lru_cache(maxsize=16)
def objdump_instructions(lib: Path, start: int, stop: int) -> list[tuple[int, str, str]]:
    """objdump -d of [start, stop): [(address, mnemonic, operands)]."""
    out = run(["objdump", "-d", "--no-show-raw-insn", "-w", f"--start-address={start:#x}",
               f"--stop-address={stop:#x}", str(lib)]).stdout
    return [(int(m.group(1), 16), m.group(2), m.group(3)) for m in
            re.finditer(r"^\s+([0-9a-f]+):\s+(\S+)[ \t]*(.*)$", out, re.M)]


def variant_isa(lib: Path, variant: str) -> dict[str, bool]:
    """What objdump shows the functions named *_VARIANT doing."""
    ranges = sorted(r for name, r in sized_functions(lib).items()
                    if name.endswith("_" + variant))
    starts = [lo for lo, _ in ranges]
    insns = []
    if not ranges:
        return {"functions": 0, "xop": False, "fma4": False, "fma": False, "avx512f": False}
    span = (ranges[0][0], max(hi for _, hi in ranges))
    for address, mnemonic, ops in objdump_instructions(lib, *span):
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0 and address < ranges[i][1]:
            insns.append((mnemonic, ops))
    mnemonics = {m for m, _ in insns}
    return {
        "functions": len(set(ranges)),
        "xop": any(XOP.match(m) for m in mnemonics),
        "fma4": any(FMA4.match(m) for m in mnemonics),
        "fma": any(FMA3.match(m) for m in mnemonics),
        "avx512f": any("%zmm" in ops or re.search(r"\{%k[1-7]\}", ops) for _, ops in insns),
    }


def embedded_version(lib: Path) -> str:
    out = run(["strings", "-n", "8", str(lib)]).stdout
    m = re.search(r"OpenBLAS (\d+\.\d+\.\d+(?:\.\d+)*) ", out)
    assert m, "no OpenBLAS version string"
    return m.group(1)


def cores_in(lib: Path) -> set[str]:
    """Cores with a table of their own: gotoblas_<CORE> in .data, exported (nm
    -D says D) or, in numpy 2.5's wheel, local (nm says d)."""
    out = run(["nm", "-D", "--defined-only", str(lib)]).stdout
    out += subprocess.run(["nm", "--defined-only", str(lib)], capture_output=True,
                          text=True).stdout
    return set(re.findall(r"^[0-9a-f]+ [Dd] gotoblas_([A-Z0-9_]+)$", out, re.M))
