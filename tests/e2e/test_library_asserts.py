"""Assertions that are not the program's: glibc's own (pthread_mutex_lock.c
on a mutex whose lock word the program cleared) and libstdc++'s
_GLIBCXX_ASSERTIONS precondition checks (fixtures/faults/library_asserts.*,
built here).  The facts come from the runtimes' own stderr and plain gdb's
backtrace: never "the program's own assertion", never a std::terminate that
did not happen."""
from __future__ import annotations

import re
import signal

import pytest

from tests.e2e.built import NO_GLIBC_DEBUG, build, kernel_core, triage
from tests.host import GDB, run


def crash(tmp_path, compiler: str, source: str, *flags: str):
    exe = build(compiler, source, tmp_path, "-g", *flags, "-lpthread")
    proc, core = kernel_core([str(exe)], tmp_path / "cwd", signal.SIGABRT)
    bt = run([GDB, "-nx", "-batch", *NO_GLIBC_DEBUG, "-ex", "bt", str(exe), str(core)]).stdout
    return proc.stderr, triage(exe, core), bt


def test_an_assertion_inside_glibc_is_not_the_program_s(tmp_path):
    stderr, r, bt = crash(tmp_path, "gcc", "library_asserts.c", "-O1")
    # glibc <= 2.36 asserts on itself through __assert_fail (assert/assert.c);
    # 2.37+ through __libc_assert_fail (assert/__libc_assert_fail.c)
    said = (re.search(r"^[^:]+: (?P<file>[^:]+):(?P<line>\d+): (?P<function>[^:]+): "
                      r"Assertion `(?P<expression>.*)' failed\.$", stderr, re.M)
            or re.search(r"^Fatal glibc error: (?P<file>[^:]+):(?P<line>\d+) "
                         r"\((?P<function>[^)]*)\): assertion failed: (?P<expression>.*)$",
                         stderr, re.M))
    assert said, stderr
    reason = r["reason"]
    assert r["verdict"] == "assertion-failed" and reason["runtime"] == "glibc"
    assert (reason["details"]["file"], reason["details"]["line"],
            reason["details"]["expression"]) == (said["file"], int(said["line"]),
                                                 said["expression"])
    # plain gdb: abort() came from inside libc's pthread_mutex_lock, which the
    # program called (glibc 2.41's __libc_assert_fail is not exported: `??`)
    assert re.search(r" in abort \(.*(\n#\d+ .* from \S*libc\.so\.6)*\n#\d+ .* in "
                     r"\S*pthread_mutex_lock \(.*\n#\d+ .* in update_table ", bt), bt
    assert reason["details"]["inside"] == "glibc"
    assert r["class"]["rule"] == "abort:assertion-failed:glibc"
    assert r["frames"][0]["function"] == "update_table"


def test_a_glibcxx_assertion_is_not_a_terminate(tmp_path):
    # -O0: operator[] stays a function of its own, the frame that called the check
    stderr, r, bt = crash(tmp_path, "g++", "library_asserts.cpp", "-O0",
                          "-D_GLIBCXX_ASSERTIONS")
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
