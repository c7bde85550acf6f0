"""A real gdb driven through pexpect, with the extension sourced (but for
the vacuity check's "unloaded" mode: tests/host.VACUITY).

Each test gets a fresh gdb.  A pager or a (y or n) query is a test failure:
the commands must never ask.
"""
from __future__ import annotations

import json
import os

import pexpect

from tests.host import GDB, REPO, loader_args

PROMPT = "(gdbext-test) "
NO_DEBUG_INFO = ["-iex", "set debug-file-directory /nonexistent"]


class GdbSession:
    def __init__(self, *args: str, debuginfo: bool = True, cwd=None, timeout: int = 60,
                 env: dict | None = None):
        argv = ["-nx", "-nh", "-q",
                "-iex", "set pagination off", "-iex", "set width 0", "-iex", "set height 0",
                "-iex", "set confirm off", "-iex", "set style enabled off",
                "-iex", "set editing off", "-iex", "set debuginfod enabled off",
                "-iex", f"set prompt {PROMPT}"]
        if not debuginfo:
            argv += NO_DEBUG_INFO
        argv += [*loader_args(), *args]
        env = dict(os.environ, TERM="dumb", LC_ALL="C.UTF-8", **(env or {}))
        self.child = pexpect.spawn(GDB, argv, cwd=str(cwd or REPO), env=env, echo=False,
                                   encoding="utf-8", codec_errors="replace",
                                   dimensions=(1000, 1000), timeout=timeout)
        self.child.delaybeforesend = None
        self.child.delayafterread = None
        self.child.delayafterclose = 0
        self.child.delayafterterminate = 0
        self.startup = self._wait()

    def _wait(self, timeout=None) -> str:
        index = self.child.expect_exact([PROMPT, "(y or n)", "--Type <RET>", pexpect.EOF],
                                        timeout=timeout)
        out = self.child.before
        if index != 0:
            raise AssertionError(f"gdb did not return to its prompt (got {index}): {out}")
        return out.replace("\r\n", "\n")

    def cmd(self, command: str, timeout=None) -> str:
        self.child.sendline(command)
        return self._wait(timeout)

    def json(self, command: str) -> dict:
        out = self.cmd(command)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        assert len(lines) == 1, f"expected one JSON object from {command!r}, got:\n{out}"
        return json.loads(lines[0])

    def value(self, expression: str) -> str:
        return self.cmd(f"printf \"%s\\n\", {expression}").strip()

    def close(self):
        if self.child.isalive():
            self.child.sendline("kill")
            self.child.sendline("quit")
            self.child.expect(pexpect.EOF, timeout=10)
        self.child.close(force=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def assert_no_traceback(output: str) -> None:
    assert "Traceback" not in output and "Python Exception" not in output, output


def assert_one_error_line(out: str, command: str, *needles: str) -> str:
    """A user error: exactly one line, prefixed with the command, naming the
    problem -- never a traceback."""
    assert_no_traceback(out)
    lines = [line for line in out.strip().splitlines() if line.strip()]
    assert len(lines) == 1, out
    line = lines[0]
    assert line.startswith(f"{command}: "), line
    for needle in needles:
        assert needle in line, line
    return line
