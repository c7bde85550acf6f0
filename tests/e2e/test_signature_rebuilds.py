"""One bug, one signature, whether the program was built with -g or not.

GCC moves a function's unlikely path into ``pick.cold``; without debug info
gdb 13 names a frame there ``pick[cold]``, with it ``pick``.  The program is
built both ways and crashes in the cold part; its kernel cores must sign
alike, with the function nm knows as the signature's top frame.
"""
from __future__ import annotations

import re
import subprocess

import pytest

from tests.e2e.gdb_session import GdbSession, assert_no_traceback
from tests.host import have, kernel_core

SOURCE = r"""
#include <stdio.h>
#include <unistd.h>
#ifndef BASE
#define BASE 10
#endif
__attribute__((noinline)) int pick(int mode) {
    switch (mode) { case 0: return BASE; case 1: return 20; }
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


def _build_id(exe) -> str:
    out = subprocess.run(["readelf", "-n", str(exe)], capture_output=True, text=True).stdout
    return out.split("Build ID:")[1].split()[0]


@pytest.mark.skipif(not have("gcc"), reason="gcc is not installed")
def test_a_core_read_with_another_build_says_so(tmp_path):
    crashed = _build(tmp_path, "crashed")
    rebuilt = _build(tmp_path, "rebuilt", "-DBASE=11")           # a one-constant change
    assert _build_id(crashed) != _build_id(rebuilt)
    core = kernel_core([str(crashed)], tmp_path / "run")[0]
    with GdbSession(str(rebuilt), str(core)) as gdb:
        report = gdb.json("crash-triage --json")
        text = gdb.cmd("crash-triage")
    assert_no_traceback(text)
    mismatch = report["metadata"]["executable_mismatch"]
    assert mismatch["loaded_build_id"] == _build_id(rebuilt)
    assert mismatch["crashed_build_id"] == _build_id(crashed)
    assert any(_build_id(crashed) in w and "not the build that crashed" in w
               for w in report["warnings"]), report["warnings"]
    assert "not the build that crashed" in text
    with GdbSession(str(crashed), str(core)) as gdb:      # the right build: no such warning
        report = gdb.json("crash-triage --json")
    assert "executable_mismatch" not in report["metadata"]
    assert not any("not the build that crashed" in w for w in report["warnings"])


RUST_ABORT = r"""
fn validate(n: usize) {
    if n % 2 == 1 {
        eprintln!("invariant violated: odd {n}");
        std::process::abort();
    }
}
fn main() {
    println!("pid={}", std::process::id());
    validate(std::env::args().count());
}
"""


def _rustc() -> str | None:
    from pathlib import Path
    for rustc in ("rustc", str(Path.home() / ".cargo" / "bin" / "rustc")):
        if subprocess.run(["sh", "-c", f"command -v {rustc}"], capture_output=True).returncode == 0:
            return rustc
    return None


def test_rust_process_abort_is_no_panic_and_signs_alike_with_and_without_g(tmp_path):
    """std::process::abort() passes none of std's panic machinery: the
    catch_unwind frames under every Rust main are not a panic.  Built with
    and without -g (gdb ends a -g backtrace at the crate's main), one signature."""
    rustc = _rustc()
    if rustc is None:
        pytest.skip("no rustc (make setup installs Debian's)")
    src = tmp_path / "rabort.rs"
    src.write_text(RUST_ABORT)
    reports = []
    for name, flags in (("plain", ["-O"]), ("debug", ["-O", "-g"])):
        exe = tmp_path / name
        subprocess.run([rustc, *flags, "-o", str(exe), str(src)], check=True)
        core, _, signo = kernel_core([str(exe)], tmp_path / f"run-{name}")
        assert signo == 6
        with GdbSession(str(exe), str(core)) as gdb:
            reports.append(gdb.json("crash-triage --json"))
        defined = subprocess.run(["nm", "-C", "--defined-only", str(exe)], capture_output=True,
                                 text=True).stdout
        top = reports[-1]["signature"]["frames"][0]
        assert re.search(rf" [tT] {re.escape(top)}(?:::h[0-9a-f]{{16}})?$", defined, re.M), top
    for t in reports:
        assert t["verdict"] == "abort" and t["reason"] is None, (t["headline"], t["reason"])
    assert reports[0]["signature"]["text"] == reports[1]["signature"]["text"]
