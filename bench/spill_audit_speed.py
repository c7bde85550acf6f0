"""spill-audit on a fault at the end of a 20,000-instruction AVX2 function,
against gdb's own `disassemble` of that function (the baseline a user would
reach for).  The function is generated and assembled here: 16 ymm
accumulators kept live, spills and folded reloads to the stack, then an
aligned store to a misaligned slot (a frame-layout bug).  Goal: the audit in <= 1 s.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GDB = os.environ.get("GDB", "gdb")
OUT = REPO / "build" / "bench"
INSTRUCTIONS = int(os.environ.get("INSTRUCTIONS", "20000"))
REPEAT = int(os.environ.get("REPEAT", "3"))

SCRIPT = """
import time, gdb
def best(cmd):
    times = []
    for _ in range(REPEAT):
        t = time.perf_counter(); gdb.execute(cmd, to_string=True)
        times.append(time.perf_counter() - t)
    return min(times)
print("RESULT", best("spill-audit --json"), best("disassemble"))
"""


def generate(path: Path) -> None:
    rng = random.Random(7)
    body = ["vpxor %ymm{0},%ymm{0},%ymm{0}".format(i) for i in range(16)]
    ops = ["vpaddd", "vpmulld", "vpxor", "vpand", "vpor", "vpsubd"]
    while len(body) < INSTRUCTIONS - 4:
        a, b = rng.randrange(16), rng.randrange(16)
        r = rng.random()
        if r < 0.08:
            body.append(f"vmovdqa %ymm{a},{32 * rng.randrange(32)}(%rsp)")        # spill
        elif r < 0.16:
            body.append(f"{rng.choice(ops)} {32 * rng.randrange(32)}(%rsp),%ymm{a},%ymm{a}")
        else:
            body.append(f"{rng.choice(ops)} %ymm{b},%ymm{a},%ymm{a}")
    body.append("vmovdqa %ymm3,8(%rsp)")          # misaligned aligned store: #GP
    path.write_text("\n".join([
        "  .text", "  .globl big_kernel", "  .type big_kernel,@function", "big_kernel:",
        "  .cfi_startproc", "  push %rbp", "  .cfi_def_cfa_offset 16",
        "  .cfi_offset %rbp,-16", "  mov %rsp,%rbp", "  .cfi_def_cfa_register %rbp",
        "  and $-32,%rsp", "  sub $0x400,%rsp",          # realigned: the spills are fine
        *("  " + line for line in body),
        "  leave", "  .cfi_def_cfa %rsp,8", "  ret", "  .cfi_endproc",
        "  .size big_kernel,.-big_kernel",
        "  .globl main", "main:", "  sub $8,%rsp", "  call big_kernel", "  xor %eax,%eax",
        "  add $8,%rsp", "  ret", '  .section .note.GNU-stack,"",@progbits', ""]))


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    src, exe = OUT / "big_kernel.S", OUT / "big_kernel"
    generate(src)
    subprocess.run(["gcc", "-o", str(exe), str(src)], check=True)
    script = OUT / "bench_spill_audit.py"
    script.write_text(SCRIPT.replace("REPEAT", str(REPEAT)))
    out = subprocess.run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
                          "-ex", f"source {REPO / 'gdbinit.py'}", "-ex", "run",
                          "-ex", f"source {script}", str(exe)], capture_output=True, text=True)
    line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT")), None)
    if line is None:
        sys.exit(f"no result:\n{out.stdout}\n{out.stderr}")
    _, audit, disassemble = line.split()
    audit, disassemble = float(audit), float(disassemble)
    print(f"function: {INSTRUCTIONS} instructions, fault at its end; best of {REPEAT}")
    print(f"spill-audit --json {audit:.3f} s (goal <= 1 s), gdb disassemble {disassemble:.3f} s"
          f" ({audit / disassemble:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
