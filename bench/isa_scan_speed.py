"""isa-scan against `objdump -d` on numpy's bundled OpenBLAS (~20 MB of .text).

Baseline: `objdump -d FILE > /dev/null` (binutils' disassembler, no feature
analysis).  Measured: a whole `gdb -batch` run of `isa-scan --json --jobs N
FILE` (gdb start-up, imports, ELF reading, decoding every instruction) for
N = 1 (gdb's Python alone) and N = 2, 3... up to the usable cores (gdb's
Python plus N-1 workers of the venv's Python).  Best of REPEAT runs each,
runs interleaved so that a noisy neighbour hurts every variant alike; the
goal is a ratio <= 0.25 on a 2-core machine.  Also prints the CPU time
(user+sys of gdb and its workers), which load from other processes does
not inflate.

The library comes from the numpy wheel on the package index (pip download,
cached in build/bench); set OPENBLAS_LIB=PATH to measure another file.
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GDB = os.environ.get("GDB", "gdb")
CACHE = REPO / "build" / "bench"
REPEAT = int(os.environ.get("REPEAT", "3"))


def openblas() -> Path:
    if os.environ.get("OPENBLAS_LIB"):
        return Path(os.environ["OPENBLAS_LIB"])
    CACHE.mkdir(parents=True, exist_ok=True)
    found = sorted(CACHE.glob("numpy.libs/libscipy_openblas*.so"))
    if found:
        return found[0]
    if not glob.glob(str(CACHE / "numpy-*.whl")):
        subprocess.run([str(REPO / ".venv" / "bin" / "pip"), "download", "--quiet",
                        "--no-deps", "--only-binary=:all:", "-d", str(CACHE), "numpy"],
                       check=True)
    wheel = sorted(glob.glob(str(CACHE / "numpy-*.whl")))[-1]
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if "openblas" in n and n.endswith(".so")]
        if not names:
            sys.exit(f"{wheel} bundles no OpenBLAS")
        zf.extract(names[0], CACHE)
    return CACHE / names[0]


def measure(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children)."""
    before = os.times()
    t = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - t
    after = os.times()
    return wall, (after.children_user - before.children_user
                  + after.children_system - before.children_system)


def main() -> int:
    lib = openblas()
    text = int(subprocess.run(["size", "-A", str(lib)], capture_output=True, text=True,
                              check=True).stdout.split(".text")[1].split()[0])
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    variants = {"objdump -d (baseline)": ["objdump", "-d", str(lib)]}
    for jobs in range(1, max(2, cores) + 1):
        variants[f"isa-scan --jobs {jobs}"] = [
            GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
            "-ex", f"source {REPO / 'gdbinit.py'}", "-ex", f"isa-scan --json --jobs {jobs} {lib}"]
    best: dict[str, tuple[float, float]] = {}
    for _ in range(REPEAT):
        for name, argv in variants.items():
            wall, cpu = measure(argv)
            if name not in best or wall < best[name][0]:
                best[name] = (wall, cpu)
    base = best["objdump -d (baseline)"][0]
    load = os.getloadavg()[0]
    print(f"file: {lib.name} ({text / 1e6:.1f} MB of .text), best of {REPEAT}, "
          f"{cores} usable cores, load average {load:.1f}")
    for name, (wall, cpu) in best.items():
        ratio = "" if name.startswith("objdump") else f"  ({wall / base:.2f}x objdump)"
        print(f"{name:<24} {wall:6.2f} s wall, {cpu:6.2f} s CPU{ratio}")
    one = best["isa-scan --jobs 1"][0]
    for jobs in range(2, max(2, cores) + 1):
        wall = best[f"isa-scan --jobs {jobs}"][0]
        print(f"scaling: --jobs {jobs} runs in {wall / one:.2f}x the time of --jobs 1")
    print("goal: <= 0.25x objdump with every core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
