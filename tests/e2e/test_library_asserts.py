"""Assertions that are not the program's: glibc's own (pthread_mutex_lock.c
on a mutex whose lock word the program cleared) and libstdc++'s
_GLIBCXX_ASSERTIONS precondition checks (fixtures/faults/library_asserts.*,
built here).  The facts come from the runtimes' own stderr and plain gdb's
backtrace: never "the program's own assertion", never a std::terminate that
did not happen."""
from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess

import pytest

from tests.host import GDB, REPO, find_kernel_core, kernel_cores_land_in_cwd, run, \
    unlimited_core

FAULTS = REPO / "fixtures" / "faults"
BASE = [GDB, "-nx", "-q", "-batch", "-iex", "set debuginfod enabled off",
        "-iex", "set debug-file-directory /nonexistent"]


def crash(tmp_path, compiler: str, source: str, *flags: str, opt: str = "-O1"):
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed")
    if not kernel_cores_land_in_cwd():
        pytest.skip("core_pattern does not write kernel cores into the cwd")
    exe = tmp_path / "prog"
    run([compiler, opt, "-g", *flags, "-o", str(exe), str(FAULTS / source), "-lpthread"])
    proc = subprocess.run([str(exe)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, preexec_fn=unlimited_core, stdin=subprocess.DEVNULL)
    assert proc.returncode == -signal.SIGABRT, (proc.returncode, proc.stderr)
    core = find_kernel_core(tmp_path, int(re.search(r"pid=(\d+)", proc.stdout).group(1)))
    assert core is not None
    out = subprocess.run(BASE + ["-ex", f"source {REPO / 'gdbinit.py'}",
                                 "-ex", "crash-triage --json", str(exe), str(core)],
                         capture_output=True, text=True, timeout=120)
    assert "Traceback" not in out.stdout + out.stderr
    report = json.loads(next(l for l in out.stdout.splitlines() if l.startswith("{")))
    bt = subprocess.run(BASE + ["-ex", "bt", str(exe), str(core)], capture_output=True,
                        text=True, timeout=120).stdout
    return proc.stderr, report, bt


def test_an_assertion_inside_glibc_is_not_the_program_s(tmp_path):
    stderr, r, bt = crash(tmp_path, "gcc", "library_asserts.c")
    said = re.search(r"^[^:]+: ([^:]+):(\d+): ([^:]+): Assertion `(.*)' failed\.$", stderr, re.M)
    assert said, stderr
    reason = r["reason"]
    assert r["verdict"] == "assertion-failed" and reason["runtime"] == "glibc"
    assert (reason["details"]["file"], reason["details"]["line"],
            reason["details"]["expression"]) == (said.group(1), int(said.group(2)),
                                                 said.group(4))
    # plain gdb: __assert_fail was called from libc (pthread_mutex_lock), not the program
    assert re.search(r"__assert_fail.*\n#\d+ .* in \S*pthread_mutex_lock", bt), bt
    assert reason["details"]["inside"] == "glibc"
    assert r["class"]["rule"] == "abort:assertion-failed:glibc"
    assert "the program's own" not in r["class"]["explanation"]
    assert r["frames"][0]["function"] == "update_table"


def test_a_glibcxx_assertion_is_not_a_terminate(tmp_path):
    # -O0: operator[] stays a function of its own, the frame that called the check
    stderr, r, bt = crash(tmp_path, "g++", "library_asserts.cpp", "-D_GLIBCXX_ASSERTIONS",
                          opt="-O0")
    assert "Assertion '__n < this->size()' failed." in stderr
    if "__glibcxx_assert_fail" not in bt:
        pytest.skip("this libstdc++ inlines its assertion (GCC < 12): no frame to read")
    assert "std::terminate" not in bt and "__terminate" not in bt
    called_from = re.search(r"__glibcxx_assert_fail.*\n#\d+ .* in (.+?) \(", bt).group(1)
    reason = r["reason"]
    assert r["verdict"] == "assertion-failed" and reason["runtime"] == "libstdc++"
    assert reason["details"]["function"].startswith("std::vector<int")
    assert "operator[]" in reason["details"]["function"] and "operator[]" in called_from
    assert r["class"]["rule"] == "abort:assertion-failed:libstdc++"
