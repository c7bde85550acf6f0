"""crash-triage on a SIGSEGV whose handler aborted (fixtures/faults/
handler_abort.c, built here): with SA_SIGINFO the kernel's signal frame
holds the siginfo; installed with signal() the same slot holds whatever was
on the stack, and only the sigcontext's trap data tell the fault -- which
the interrupted instruction must confirm.  Either way the report is the read
the program printed it would make, and the bug signs as the same read
without a handler.  The signal comes from the kernel's exit status."""
from __future__ import annotations

import re
import signal

import pytest

from tests.e2e.built import build, kernel_core, triage


@pytest.fixture(scope="module")
def crashes(tmp_path_factory):
    root = tmp_path_factory.mktemp("handler-abort")
    exe = build("gcc", "handler_abort.c", root, "-O2", "-fno-optimize-sibling-calls")
    out = {}
    for mode, sig in (("plain", signal.SIGABRT), ("siginfo", signal.SIGABRT),
                      ("none", signal.SIGSEGV)):
        proc, core = kernel_core([str(exe), mode], root / mode, sig)
        addr = int(re.search(r"addr=(0x[0-9a-f]+)", proc.stdout).group(1), 16)
        out[mode] = (addr, triage(exe, core))
    return out


@pytest.mark.parametrize("mode, source", [("plain", "sigcontext"), ("siginfo", "siginfo")])
def test_the_fault_a_handler_aborted_on_is_the_read_the_program_made(crashes, mode, source):
    addr, r = crashes[mode]
    assert r["stop"]["signal"] == "SIGSEGV" and r["stop"]["addr"] == addr
    assert r["interrupted"]["source"] == source
    assert r["interrupted"]["certainty"] == ("inferred" if source == "sigcontext" else "exact")
    assert r["verdict"] == "null-read" and r["fault"]["address"] == addr
    assert r["frames"][0]["function"] == "read_config"


def test_a_handler_does_not_change_the_signature(crashes):
    assert crashes["plain"][1]["signature"] == crashes["siginfo"][1]["signature"] == \
        crashes["none"][1]["signature"]
