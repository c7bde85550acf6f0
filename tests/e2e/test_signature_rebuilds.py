"""One bug, one signature, whether the program was built with -g or not.

GCC moves a function's unlikely path into ``pick.cold``; without debug info
gdb 13 names a frame there ``pick[cold]``, with it ``pick``.  The program is
built both ways and crashes in the cold part; its kernel cores must sign
alike, with the function nm knows as the signature's top frame.
"""
from __future__ import annotations

import subprocess

import pytest

from tests.e2e.gdb_session import GdbSession, assert_no_traceback
from tests.host import have, kernel_core

SOURCE = r"""
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) int pick(int mode) {
    switch (mode) { case 0: return 10; case 1: return 20; }
    __builtin_trap();               /* "can't happen": GCC puts it in pick.cold */
}
int main(int argc, char **argv) {
    printf("pid=%d\n", getpid());
    fflush(stdout);
    printf("%d\n", pick(argc + 1));
    return 0;
}
"""


def _build(tmp_path, name: str, *flags: str):
    src = tmp_path / "cold.c"
    src.write_text(SOURCE)
    exe = tmp_path / name
    subprocess.run(["gcc", "-O2", *flags, "-o", str(exe), str(src)], check=True)
    return exe


def _signature(exe, core) -> dict:
    with GdbSession(str(exe), str(core)) as gdb:
        out = gdb.cmd("crash-triage --json")
        assert_no_traceback(out)
        return gdb.json("crash-triage --json")["signature"]


@pytest.mark.skipif(not have("gcc"), reason="gcc is not installed")
def test_a_cold_partition_signs_alike_with_and_without_debug_info(tmp_path):
    plain = _build(tmp_path, "plain")
    symbols = subprocess.run(["nm", str(plain)], capture_output=True, text=True).stdout.split()
    if "pick.cold" not in symbols:
        pytest.skip("this gcc did not split pick into a cold part")
    debug = _build(tmp_path, "debug", "-g")
    signatures = [_signature(exe, kernel_core([str(exe)], tmp_path / f"run-{exe.name}")[0])
                  for exe in (plain, debug)]
    assert signatures[0]["frames"][0] == "pick", signatures[0]
    assert signatures[0]["text"] == signatures[1]["text"], signatures
    assert signatures[0]["id"] == signatures[1]["id"]
