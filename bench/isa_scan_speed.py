"""isa-scan against `objdump -d` on numpy's bundled OpenBLAS (~20 MB of .text).

Baseline: `objdump -d FILE > /dev/null` (binutils' disassembler, no feature
analysis).  Measured: a whole `gdb -batch` run of `isa-scan --json FILE`
(gdb start-up, imports, ELF reading, decoding every instruction).  Best of
REPEAT runs each; the goal is a ratio <= 0.5.

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


def best(argv: list[str]) -> float:
    times = []
    for _ in range(REPEAT):
        t = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    lib = openblas()
    text = int(subprocess.run(["size", "-A", str(lib)], capture_output=True, text=True,
                              check=True).stdout.split(".text")[1].split()[0])
    objdump = best(["objdump", "-d", str(lib)])
    scan = best([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                 "-ex", f"source {REPO / 'gdbinit.py'}", "-ex", f"isa-scan --json {lib}"])
    print(f"file: {lib.name} ({text / 1e6:.1f} MB of .text), best of {REPEAT}")
    print(f"objdump -d (baseline):   {objdump:6.2f} s")
    print(f"isa-scan --json in gdb:  {scan:6.2f} s  ({scan / objdump:.2f}x objdump; goal <= 0.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
