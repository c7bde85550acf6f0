"""The everyday-crash corpus: real runtimes (glibc's malloc checks, assert,
the stack protector, fortify; libstdc++'s terminate; Rust std's panic and
stack-overflow handlers; CPython) crashing the way users meet them.

Each case's expectations come from what the runtime itself printed on stderr
(the same words it leaves in memory) and from nm -- never from gdbext.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.host import (FIXTURES, debian_python, find_kernel_core, kernel_cores_land_in_cwd,
                        records_by_core, unlimited_core)

EVERYDAY = FIXTURES / "everyday"
PYTHON = debian_python()      # Debian's build of gdb's Python: _PyRuntime in the executable


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]          # relative to EVERYDAY, except the interpreter
    signal: int
    bug: str                       # the bug it is: cases with one bug sign alike
    needs: str = ""                # "rust" or "python": skipped when missing

    @property
    def exe(self) -> Path:
        return PYTHON if self.needs == "python" else EVERYDAY / self.argv[0]

    def command(self, cwd: Path) -> list[str]:
        if self.needs == "python":
            return [str(PYTHON), str(EVERYDAY / self.argv[0]), *self.argv[1:]]
        return [str(EVERYDAY / self.argv[0]), *[a.replace("{cwd}", str(cwd))
                                               for a in self.argv[1:]]]

    def available(self) -> str | None:
        """Why this case cannot run here, else None.  A missing program is a
        skip only when the build step said why (fixtures/everyday/everyday.mk
        writes `not-built`); otherwise it is a failure, not a quiet skip."""
        if self.needs == "python" and not PYTHON.exists():
            return f"{PYTHON} is not installed"
        if not self.exe.exists():
            said = not_built().get(self.exe.name)
            assert said, f"{self.exe} is missing and the build did not say why (make setup)"
            return f"{self.exe.name} was not built here: {said}"
        return None


def not_built() -> dict[str, str]:
    """The programs the build step left out, with its reason."""
    try:
        text = (EVERYDAY / "not-built").read_text()
    except FileNotFoundError:
        return {}
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


A, S, B = signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS
CASES = [
    Case("c-double-free", ("everyday", "double_free"), A, "double-free"),
    Case("c-corrupt-top", ("everyday", "corrupt_top"), A, "corrupt-top"),
    Case("c-assert", ("everyday", "assert"), A, "assert"),
    Case("c-stack-smash", ("everyday", "stack_smash"), A, "stack-smash"),
    Case("c-fortify", ("everyday", "fortify"), A, "fortify"),
    Case("c-strlit", ("everyday", "strlit"), S, "strlit"),
    Case("c-sigbus", ("everyday", "sigbus", "{cwd}"), B, "sigbus"),
    Case("c-null-read", ("everyday", "null_read"), S, "null-read"),
    Case("c-twin-assert", ("everyday", "twin_assert"), A, "twin-assert"),
    Case("c-twin-free", ("everyday", "twin_free"), A, "twin-free"),
    Case("cxx-runtime", ("uncaught", "runtime"), A, "cxx-runtime"),
    Case("cxx-custom", ("uncaught", "custom"), A, "cxx-custom"),
    Case("cxx-int", ("uncaught", "int"), A, "cxx-int"),
    Case("cxx-thread", ("uncaught", "thread"), A, "cxx-thread"),
    Case("cxx-noexcept", ("uncaught", "noexcept"), A, "cxx-noexcept"),
    Case("cxx-dtor", ("uncaught", "dtor"), A, "cxx-dtor"),
    Case("cxx-rethrow-none", ("uncaught", "rethrow-none"), A, "cxx-rethrow-none"),
    Case("cxx-rethrow-thread", ("uncaught", "rethrow-thread"), A, "cxx-rethrow-thread"),
    Case("cxx-plain", ("uncaught", "plain"), A, "cxx-plain"),
    Case("cxx-nested", ("uncaught", "nested"), A, "cxx-nested"),
    Case("cxx-pure-virtual", ("uncaught", "pure-virtual"), A, "cxx-pure-virtual"),
    Case("rust-index", ("panic_abort", "index"), A, "rust-index", "rust"),
    Case("rust-unwrap", ("panic_abort", "unwrap"), A, "rust-unwrap", "rust"),
    Case("rust-expect", ("panic_abort", "expect"), A, "rust-expect", "rust"),
    Case("rust-thread", ("panic_abort", "thread"), A, "rust-thread", "rust"),
    Case("rust-format", ("panic_abort", "format"), A, "rust-format", "rust"),
    Case("rust-payload", ("panic_abort", "payload"), A, "rust-payload", "rust"),
    Case("rust-v0-ffi", ("panic_unwind", "ffi"), A, "rust-ffi", "rust"),
    Case("rust-overflow", ("overflow",), A, "rust-overflow", "rust"),
    Case("py-string-at", ("pycrash.py", "string_at"), S, "py-string-at", "python"),
    Case("py-fatal", ("pycrash.py", "fatal"), A, "py-fatal", "python"),
]
BY_NAME = {c.name: c for c in CASES}


@dataclass
class Crash:
    case: Case
    core: Path
    stdout: str
    stderr: str
    cwd: Path
    facts: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return int(re.search(r"pid=(\d+)", self.stdout).group(1))


def run_case(case: Case, cwd: Path) -> Crash:
    """Run the case to its kernel core."""
    why = case.available()
    if why:
        pytest.skip(why)
    if not kernel_cores_land_in_cwd():
        pytest.skip("core_pattern does not write kernel cores into the cwd")
    cwd.mkdir(parents=True, exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
    proc = subprocess.run(case.command(cwd), cwd=cwd, capture_output=True, text=True,
                          timeout=120, preexec_fn=unlimited_core, env=env,
                          stdin=subprocess.DEVNULL)
    if case.name == "rust-v0-ffi" and proc.returncode == 101:
        # before Rust 1.81 a panic unwound out of an extern "C" fn instead of aborting
        pytest.skip("this rustc lets a panic unwind out of an extern \"C\" fn (Rust < 1.81)")
    assert proc.returncode == -case.signal, (case.name, proc.returncode, proc.stderr[-2000:])
    pid = int(re.search(r"pid=(\d+)", proc.stdout).group(1))
    core = find_kernel_core(cwd, pid)
    assert core is not None, f"no kernel core in {cwd}"
    return Crash(case, core, proc.stdout, proc.stderr, cwd, stderr_facts(proc.stderr))


class Made(list):
    """The crashes made, in CASES order; ``skipped``: case name -> why not."""
    skipped: dict[str, str]


def make(directory: Path, names=None) -> Made:
    out = Made()
    out.skipped = {}
    for case in CASES:
        if names is not None and case.name not in names:
            continue
        why = case.available()
        if why is not None:
            out.skipped[case.name] = why
            continue
        try:
            out.append(run_case(case, directory / case.name))
        except pytest.skip.Exception as skip:     # this toolchain cannot make that crash
            out.skipped[case.name] = str(skip)
    return out


def by_core(crashes, records: list[dict]) -> dict[str, dict]:
    """Batch records by case name, matched by core path (tests/host.py)."""
    return records_by_core({c.case.name: c.core for c in crashes}, records)


# --- what the runtime printed, parsed with the runtime's own format strings ----
def stderr_facts(text: str) -> dict:
    """The reason the runtime printed: glibc's __libc_message / __assert_fail
    formats, libstdc++'s verbose terminate handler, Rust's default panic hook
    and stack-overflow handler, CPython's fatal_error."""
    f: dict = {}
    m = re.search(r"^(?:.*?: )?(\S+?):(\d+): (.+?): Assertion `(.*)' failed\.$", text, re.M)
    if m:
        f.update(kind="assertion", file=m.group(1), line=int(m.group(2)),
                 function=m.group(3), expression=m.group(4))
    m = re.search(r"^\*\*\* (.+) \*\*\*: terminated$", text, re.M)
    if m:
        f.update(kind={"stack smashing detected": "stack-protector",
                       "buffer overflow detected": "fortify"}.get(m.group(1), "other"),
                 message=m.group(1))
    m = re.search(r"^((?:free|malloc|realloc|double free|corrupted|munmap_chunk)[^\n]*)$",
                  text, re.M)
    if m and "kind" not in f:
        f.update(kind="malloc-check", message=m.group(1))
    m = re.search(r"terminate called after throwing an instance of '(.+)'\n(?:  what\(\):  (.*))?",
                  text)
    if m:
        f.update(kind="uncaught-exception", type=m.group(1), what=m.group(2))
    if re.search(r"^terminate called without an active exception$", text, re.M):
        f.update(kind="terminate-no-exception")
    if re.search(r"^pure virtual method called$", text, re.M):   # __cxa_pure_virtual's words
        f["pure_virtual"] = True
    found = list(re.finditer(r"^thread '(.+?)' (?:\(\d+\) )?panicked at (.+?):(\d+):(\d+):\n(.*)$",
                             text, re.M))
    m = found[-1] if found else None       # a panic while panicking: the last one aborted
    if m:
        f.update(kind="rust-panic", thread=m.group(1), file=m.group(2), line=int(m.group(3)),
                 column=int(m.group(4)), message=m.group(5))
    old = list(re.finditer(r"^thread '(.+?)' panicked at '(.*)', (.+?):(\d+):(\d+)$",
                           text, re.M))      # Rust < 1.73: the message first
    if old and not found:
        m = old[-1]
        f.update(kind="rust-panic", thread=m.group(1), file=m.group(3), line=int(m.group(4)),
                 column=int(m.group(5)), message=m.group(2))
    m = re.search(r"^thread '(.+?)' (?:\(\d+\) )?has overflowed its stack$", text, re.M)
    if m:
        f.update(kind="stack-overflow", thread=m.group(1))
    m = re.search(r"^Fatal Python error: (.*)$", text, re.M)
    if m:
        f.update(kind="python-fatal", message=m.group(1))
        # CPython's own traceback of the thread that gave up (faulthandler's format)
        block = text.split("(most recent call first):", 1)[-1]
        f["python_stack"] = [(p, int(l), fn) for p, l, fn in re.findall(
            r'^  File "(.+)", line (\d+) in (\S+)$', block, re.M)]
    return f


