"""isa-check against gdb's own `x/i` on the same instruction, inside one gdb.

Baseline: `x/i ADDR` (gdb's disassembler, no feature analysis).  Reports the
first isa-check (which imports iced-x86 and runs the CPUID stub) and the warm
per-call cost, each as a ratio to x/i; then the first call in Debian's 30 MB
libopenblas (goal <= 50 ms: only the one instruction is read) and the first
call on one of its kernels judged against a CPU that cannot run it (that one
decodes the kernel variant's functions, once per library).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GDB = os.environ.get("GDB", "gdb")
BINARY = REPO / "build" / "fixtures" / "isa_crash"
CALLS = int(os.environ.get("CALLS", "300"))

SCRIPT = f"""
import time, gdb
def per_call(cmd, n):
    t = time.perf_counter()
    for _ in range(n):
        gdb.execute(cmd, to_string=True)
    return (time.perf_counter() - t) / n * 1000
t = time.perf_counter(); gdb.execute("isa-check fma4_fault", to_string=True)
first = (time.perf_counter() - t) * 1000
xi = per_call("x/i fma4_fault", {CALLS})
warm = per_call("isa-check fma4_fault", {CALLS})
warm_json = per_call("isa-check --json fma4_fault", {CALLS})
print(f"x/i (gdb baseline):        {{xi:8.3f}} ms/call")
print(f"isa-check, first call:     {{first:8.3f}} ms  ({{first / xi:.0f}}x x/i; imports iced-x86, runs CPUID)")
print(f"isa-check, warm:           {{warm:8.3f}} ms/call  ({{warm / xi:.1f}}x x/i)")
print(f"isa-check --json, warm:    {{warm_json:8.3f}} ms/call  ({{warm_json / xi:.1f}}x x/i)")
"""


LIBRARY = Path("/usr/lib/x86_64-linux-gnu/libopenblas.so.0")
LIBRARY_SCRIPT = """
import time, gdb
t = time.perf_counter(); gdb.execute("isa-check 'dgemm_beta_PRESCOTT'", to_string=True)
first = (time.perf_counter() - t) * 1000
t = time.perf_counter()
gdb.execute("isa-check --cpu x86-64-v2 'dgemm_kernel_HASWELL'+64", to_string=True)
variant = (time.perf_counter() - t) * 1000
t = time.perf_counter()
gdb.execute("isa-check --cpu x86-64-v2 'dgemm_kernel_HASWELL'+64", to_string=True)
again = (time.perf_counter() - t) * 1000
print(f"first isa-check in LIBNAME: {{first:8.1f}} ms  (goal <= 50 ms)")
print(f"then a HASWELL kernel on x86-64-v2:   {{variant:8.1f}} ms (decodes the variant)")
print(f"the same again (cached per library):  {{again:8.1f}} ms")
"""


def library_first_call() -> None:
    if not LIBRARY.exists():
        print(f"{LIBRARY} missing (make setup installs libopenblas0-pthread)")
        return
    script = REPO / "build" / "bench_isa_check_lib.py"
    script.write_text(LIBRARY_SCRIPT.replace("LIBNAME", LIBRARY.name).replace("{{", "{")
                      .replace("}}", "}"))
    out = subprocess.run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                          "-ex", f"source {REPO / 'gdbinit.py'}", "-ex", f"source {script}",
                          str(LIBRARY.resolve())], capture_output=True, text=True, check=True)
    print(out.stdout, end="")


def main() -> int:
    if not BINARY.exists():
        print(f"{BINARY} missing: run make setup", file=sys.stderr)
        return 1
    script = REPO / "build" / "bench_isa_check.py"
    script.write_text(SCRIPT)
    out = subprocess.run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                          "-ex", f"source {REPO / 'gdbinit.py'}", "-ex", f"source {script}",
                          str(BINARY)], capture_output=True, text=True, check=True)
    print(out.stdout, end="")
    library_first_call()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
