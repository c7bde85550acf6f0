"""Fixture programs, cores and expectations for the end-to-end tests.

Expectations come from the fixture's own output, binutils (nm, objdump) and
the host's /proc/cpuinfo -- never from gdbext.
"""
from __future__ import annotations

import functools
import re
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.host import FIXTURES, GDB, host_has, parse_announcement, run
from tests.host import kernel_core as host_kernel_core

ISA_CRASH = FIXTURES / "isa_crash"


@dataclass(frozen=True)
class IsaMode:
    """What one isa_crash mode executes, from the Intel SDM / AMD APM."""
    name: str
    features: frozenset[str]      # cpuinfo names the instruction needs
    encoding: str
    signal: str                   # what the kernel sends when it faults
    code: str
    faults_by_design: bool        # a null load, ud2: faults on every CPU

    @property
    def host_has_features(self) -> bool:   # from /proc/cpuinfo
        if self.name == "apx":
            return host_has("apx_f")
        return host_has(*self.features)

    @property
    def crashes(self) -> bool:
        return self.faults_by_design or not self.host_has_features

    @property
    def expected_verdict(self) -> str:
        if self.name == "apx":
            return "undecodable"
        return "supported" if self.host_has_features else "unsupported"

    @property
    def expected_missing(self) -> list[str]:
        return sorted(f for f in self.features if not host_has(f))


MODES = {
    "fma4": IsaMode("fma4", frozenset({"fma4"}), "VEX", "SIGILL", "ILL_ILLOPN", False),
    "avx512": IsaMode("avx512", frozenset({"avx512f", "avx512vl"}), "EVEX", "SIGILL",
                      "ILL_ILLOPN", False),
    "baseline": IsaMode("baseline", frozenset(), "legacy", "SIGSEGV", "SEGV_MAPERR", True),
    "trap": IsaMode("trap", frozenset(), "legacy", "SIGILL", "ILL_ILLOPN", True),
    "apx": IsaMode("apx", frozenset(), "none", "SIGILL", "ILL_ILLOPN", False),
}


@pytest.fixture(scope="session")
def isa_crash() -> Path:
    assert ISA_CRASH.exists(), f"{ISA_CRASH} is missing: run 'make setup' first"
    return ISA_CRASH


@pytest.fixture(scope="session")
def symbols(isa_crash) -> dict[str, int]:
    """Static addresses from nm (unrelocated: the PIE's file addresses)."""
    out = run(["nm", str(isa_crash)]).stdout
    return {m.group(2): int(m.group(1), 16)
            for m in re.finditer(r"^([0-9a-f]+) \w (\S+)$", out, re.M)}


def objdump_at(binary: Path, address: int) -> tuple[str, str]:
    """(bytes, mnemonic) of the instruction objdump shows at a file address."""
    out = run(["objdump", "-d", "-w",
               f"--start-address={address:#x}", f"--stop-address={address + 16:#x}",
               str(binary)]).stdout
    m = re.search(rf"^\s*{address:x}:\s+((?:[0-9a-f]{{2}} )+)\s*(\S+)", out, re.M)
    assert m, out
    return m.group(1).strip(), m.group(2)


@pytest.fixture(scope="session")
def kernel_core(tmp_path_factory, isa_crash):
    """Cores written by the kernel, one per mode, made on first use."""
    @functools.cache                   # a skip raises, so only real cores are cached
    def make(mode: str) -> tuple[Path, dict]:
        if not MODES[mode].crashes:
            pytest.skip(f"this host runs the {mode} instruction: the fixture does not crash")
        core, stdout, signo = host_kernel_core([str(isa_crash), mode],
                                               tmp_path_factory.mktemp(f"kcore-{mode}"))
        assert signo == getattr(signal, MODES[mode].signal), (mode, signo)
        facts = parse_announcement(stdout)
        return core, facts
    return make


@pytest.fixture(scope="session")
def gcore_core(tmp_path_factory, isa_crash):
    """Cores written by gdb's gcore at the fault (or at a breakpoint on it)."""
    @functools.cache
    def make(mode: str) -> tuple[Path, dict]:
        cwd = tmp_path_factory.mktemp(f"gcore-{mode}")
        out, core = cwd / "out.txt", cwd / "gcore.core"
        stop = [] if MODES[mode].crashes else ["-ex", f"break {mode}_fault"]
        run([GDB, "-nx", "-nh", "-batch", "-iex", "set debuginfod enabled off", *stop,
             "-ex", f"run {mode} >{out} 2>&1 </dev/null", "-ex", f"gcore {core}",
             str(isa_crash)], cwd=cwd)
        assert core.exists()
        return core, parse_announcement(out.read_text())
    return make


@pytest.fixture
def hang(tmp_path):
    """start(name, *args) of tests/e2e/hung.py; every program started is
    killed at the end."""
    from tests.e2e.hung import start
    started = []

    def make(name, *args):
        h = start(name, *args, cwd=tmp_path)
        started.append(h)
        return h
    yield make
    for h in started:
        h.proc.kill()
        h.proc.wait()
