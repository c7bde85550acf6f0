"""A corpus of real cores made at test time from the fixtures of all three
families, a healthy process and a self-abort, each with what the crash is --
from the fixture's own words, the host's /proc/cpuinfo and nm, never from
gdbext."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.conftest import MODES
from tests.e2e.hung import DEADLOCK, abort_when_blocked, start
from tests.host import FIXTURES, GDB, facts_of, find_kernel_core, kernel_core, run

SPILL = FIXTURES / "spill"
SPILL_NAMES = ["sse_stub", "avx128_stub", "ymm_realigned", "layout_bug", "noncanonical",
               "stack_overflow", "seed_vpinsrd"]
# What each hang fixture is, as its source says (fixtures/deadlock/*.c).
HANGS = {"abba": ("deadlock", "lock-order"), "cycle3": ("deadlock", "lock-order"),
         "loader_gomp": ("deadlock", "loader-lock-openmp"),
         "sleepholder": ("no-deadlock", "held-while-sleep"),
         "idle": ("deadlock", "all-threads-blocked")}


@dataclass(frozen=True)
class CorpusCore:
    name: str                   # family:fixture[:mode]
    core: Path
    exe: Path
    klass: str                  # the signature's class
    verdict: str
    key: str
    first_frame: str | None     # the faulting function (faults)
    functions: frozenset[str]   # functions the fixture defines (nm): where frames must be


def defined_functions(*binaries: Path) -> frozenset[str]:
    names = set()
    for b in binaries:
        names |= set(re.findall(r"^[0-9a-f]+ [tTW] (\S+)$", run(["nm", str(b)]).stdout, re.M))
    return frozenset(names)


def containing_function(binary: Path, label: str) -> str:
    """The sized function symbol (nm -S) whose range holds ``label``."""
    out = run(["nm", "-S", "--defined-only", str(binary)]).stdout
    at = {m.group(2): int(m.group(1), 16)
          for m in re.finditer(r"^([0-9a-f]+) \w (\S+)$", out, re.M)}[label]
    for m in re.finditer(r"^([0-9a-f]+) ([0-9a-f]+) [tT] (\S+)$", out, re.M):
        start, size = int(m.group(1), 16), int(m.group(2), 16)
        if start <= at < start + size:
            return m.group(3)
    raise AssertionError(f"no function holds {label}")


def make(directory: Path) -> list[CorpusCore]:
    out = []
    isa = FIXTURES / "isa_crash"
    for mode, m in MODES.items():
        if not m.crashes:
            continue
        core, _, signo = kernel_core([str(isa), mode], directory / f"isa-{mode}")
        fault = m.signal == "SIGSEGV"
        # baseline_fault is `movq (%rdi),%rax` called with NULL (isa_kernels.S): a read
        # near NULL, the fault rules' null-read; ud2 is a trap.
        verdict = "null-read" if fault else m.expected_verdict
        key = ("null-read" if fault else "trap-ud2" if mode == "trap"
               else "undecodable" if verdict == "undecodable" else "+".join(m.expected_missing))
        out.append(CorpusCore(f"isa:{mode}", core, isa, m.signal, verdict, key,
                              containing_function(isa, f"{mode}_fault"),
                              defined_functions(isa)))
    for name in SPILL_NAMES:
        binary = SPILL / name
        core, stdout, _ = kernel_core([str(binary)], directory / f"spill-{name}")
        facts = facts_of(stdout)
        verdict, key = facts["expect_verdict"], facts["expect_kind"]
        if verdict == "not-alignment" and int(facts.get("expect_si_addr", "-1"), 0) in \
                range(0x10000):
            # not an alignment fault: crash-triage names it by the fault rules -- the
            # fixture reads through a pointer below mmap_min_addr (its `pointer=`)
            verdict = key = "null-read"
        out.append(CorpusCore(f"spill:{name}", core, binary, facts["expect_signal"],
                              verdict, key, facts["kernel"], defined_functions(binary)))
    for name, (verdict, key) in HANGS.items():
        cwd = directory / f"hang-{name}"
        cwd.mkdir(parents=True)
        h = start(name, cwd=cwd)
        libs = [DEADLOCK / "libctor_gomp.so"] if name == "loader_gomp" else []
        functions = defined_functions(DEADLOCK / name, *libs)
        gcore = cwd / "gcore.core"
        run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off",
             "-p", str(h.pid), "-ex", f"gcore {gcore}"], cwd=cwd)
        abort_when_blocked(h)
        h.proc.wait(timeout=60)
        core = find_kernel_core(cwd, h.pid)
        assert core is not None
        for label, path in (("", core), (":gcore", gcore)):
            out.append(CorpusCore(f"hang:{name}{label}", path, DEADLOCK / name, "hang",
                                  verdict, key, None, functions))
    core, stdout, signo = kernel_core([str(DEADLOCK / "idle"), "abort"], directory / "abort")
    assert signo == 6
    out.append(CorpusCore("abort:idle", core, DEADLOCK / "idle", "SIGABRT", "abort", "",
                          re.search(r"abort=(\w+)", stdout).group(1),
                          defined_functions(DEADLOCK / "idle")))
    return out
