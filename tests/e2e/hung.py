"""Fixture processes that hang on purpose (fixtures/deadlock), started and
read through their own protocol (fixtures/deadlock/common.h)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.host import FIXTURES, unlimited_core

DEADLOCK = FIXTURES / "deadlock"


@dataclass
class Hung:
    proc: subprocess.Popen
    pid: int
    roles: dict[str, list[int]] = field(default_factory=dict)   # role -> tids
    locks: dict[str, int] = field(default_factory=dict)
    waits: dict[int, int] = field(default_factory=dict)         # tid -> futex address

    def tid(self, role: str) -> int:
        (tid,) = self.roles[role]
        return tid


def learn(hung: Hung, line: str) -> None:
    """One line of the fixture protocol (fixtures/deadlock/common.h)."""
    if m := re.search(r"role=(\w+) tid=(\d+)", line):
        hung.roles.setdefault(m.group(1), []).append(int(m.group(2)))
    elif m := re.search(r"lock=(\w+) addr=(0x[0-9a-f]+)", line):
        hung.locks[m.group(1)] = int(m.group(2), 16)
    elif m := re.search(r"wait tid=(\d+) futex=(0x[0-9a-f]+)", line):
        hung.waits[int(m.group(1))] = int(m.group(2), 16)


def start(name: str, *args: str, cwd: Path) -> Hung:
    # RLIMIT_CORE unlimited: a SIGABRT then leaves a kernel core in cwd.
    proc = subprocess.Popen([str(DEADLOCK / name), *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
                            env={"PATH": "/usr/bin:/bin"}, preexec_fn=unlimited_core)
    hung = Hung(proc, proc.pid)
    deadline = time.monotonic() + 30
    for line in proc.stdout:
        learn(hung, line)
        if line.strip() == "ready":
            return hung
        assert time.monotonic() < deadline, "fixture never got ready"
    raise AssertionError(f"{name} exited: {proc.wait()}")


def abort_when_blocked(h: Hung) -> None:
    """SIGABRT the process, as a watchdog would, once main is in futex(2).
    `ready` is printed just before main itself blocks: without the wait the
    signal may catch it on its way there."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if Path(f"/proc/{h.pid}/syscall").read_text().split()[0] == "202":
            break
        time.sleep(0.01)
    os.kill(h.pid, signal.SIGABRT)
