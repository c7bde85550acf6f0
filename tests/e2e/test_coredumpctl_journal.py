"""`gdbext triage --coredumpctl` against a real journal: a systemd-journald
of its own (a journal namespace, so the host's journal is untouched) stores
the entries systemd-coredump would send it -- the fields systemd-coredump(8)
documents, the core in the journal itself (Storage=journal) or beside it
(COREDUMP_FILENAME, Storage=external), or not kept at all -- and the real
coredumpctl (scripts/fetch-coredumpctl) reads that journal back for gdbext.

Truth: the fixture's own announcement (pid, mode), coredumpctl's own
listing, and gdbext's triage of the same kernel cores given as files."""
from __future__ import annotations

import array
import fcntl
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import ISA_CRASH
from tests.host import REPO, kernel_core, parse_announcement, records_by_core

TOOLS = REPO / "build" / "coredumpctl"
JOURNALD = next((p for p in (Path("/lib/systemd/systemd-journald"),
                             Path("/usr/lib/systemd/systemd-journald")) if p.exists()), None)
COREDUMP_MESSAGE_ID = "fc2e22bc6ee647b6b90729ab34a250b1"   # SD_MESSAGE_COREDUMP (sd-messages.h)


def _coredumpctl() -> Path:
    if (TOOLS / "coredumpctl").exists():
        return TOOLS / "coredumpctl"
    why = (TOOLS / "not-built").read_text().strip() if (TOOLS / "not-built").exists() else None
    assert why, f"{TOOLS}/coredumpctl is missing and the build did not say why (make setup)"
    pytest.skip(why)


def _native_field(name: str, value: bytes) -> bytes:
    """journald's native protocol: NAME=value, or NAME, a 64-bit length and
    the bytes for binary values (systemd.journal-fields(7), "native protocol")."""
    if b"\n" in value or name == "COREDUMP":
        return name.encode() + b"\n" + struct.pack("<Q", len(value)) + value + b"\n"
    return name.encode() + b"=" + value + b"\n"


def _send(sock: Path, fields: dict[str, str | bytes]) -> None:
    """One entry through a sealed memfd, as sd_journal_sendv does for large ones."""
    payload = b"".join(_native_field(k, v if isinstance(v, bytes) else v.encode())
                       for k, v in fields.items())
    fd = os.memfd_create("journal-entry", os.MFD_ALLOW_SEALING)
    try:
        os.write(fd, payload)
        seals = 1 | 2 | 4 | 8          # F_SEAL_SEAL | SHRINK | GROW | WRITE (fcntl.h)
        fcntl.fcntl(fd, 1033, seals)    # F_ADD_SEALS
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendmsg([], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))],
                      0, str(sock))
    finally:
        os.close(fd)


def _entry(pid: int, signal: int, name: str, exe: Path, argv: str) -> dict[str, str]:
    """The fields systemd-coredump 252's submit_coredump() logs with a core."""
    return {"MESSAGE_ID": COREDUMP_MESSAGE_ID, "PRIORITY": "2",
            "MESSAGE": f"Process {pid} ({exe.name}) of user 0 dumped core.",
            "COREDUMP_PID": str(pid), "COREDUMP_UID": "0", "COREDUMP_GID": "0",
            "COREDUMP_SIGNAL": str(signal), "COREDUMP_SIGNAL_NAME": name,
            "COREDUMP_TIMESTAMP": str(int(time.time() * 1e6)), "COREDUMP_RLIMIT": "-1",
            "COREDUMP_COMM": exe.name[:15], "COREDUMP_EXE": str(exe),
            "COREDUMP_CMDLINE": argv}


@pytest.fixture
def journal(tmp_path):
    """A journald of its own namespace; yields (its socket, stop) where
    stop() flushes and returns the journal's directory."""
    if JOURNALD is None:
        pytest.skip("no systemd-journald on this host")
    if os.geteuid() != 0:
        pytest.skip("systemd-journald needs root")
    if not Path("/etc/machine-id").exists():
        pytest.skip("no /etc/machine-id: journald cannot name its journal")
    namespace = f"gdbexttest{os.getpid()}"
    machine = Path("/etc/machine-id").read_text().strip()
    places = [Path(f"/var/log/journal/{machine}.{namespace}"),
              Path(f"/run/log/journal/{machine}.{namespace}"),
              Path(f"/run/systemd/journal.{namespace}")]
    log = tmp_path / "journald.log"
    proc = subprocess.Popen([str(JOURNALD), namespace], stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, env=dict(os.environ,
                                                               SYSTEMD_LOG_TARGET="console"))
    sock = places[2] / "socket"
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)

        def stop() -> Path:
            time.sleep(0.5)                 # let it take the last datagram
            proc.terminate()
            proc.wait(timeout=10)
            found = [p for p in places[:2] if p.is_dir()]
            assert found, log.read_text()
            return found[0]
        yield sock, stop
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for place in places:
            shutil.rmtree(place, ignore_errors=True)


def test_triage_reads_a_real_journal_through_coredumpctl(journal, tmp_path):
    real = _coredumpctl()
    sock, stop = journal
    cores = {}
    for mode, signal, name in (("trap", 4, "SIGILL"), ("baseline", 11, "SIGSEGV")):
        core, stdout, signo = kernel_core([str(ISA_CRASH), mode], tmp_path / mode)
        assert signo == signal
        cores[mode] = (core, int(parse_announcement(stdout)["pid"]))
    trap, trap_pid = cores["trap"]
    base, base_pid = cores["baseline"]
    _send(sock, _entry(trap_pid, 4, "SIGILL", ISA_CRASH, f"{ISA_CRASH} trap")
          | {"COREDUMP": trap.read_bytes()})                       # Storage=journal
    # Storage=external: compressed, as systemd-coredump keeps it (coredumpctl
    # decompresses by the suffix); zstd is what Debian's systemd 252 uses
    if shutil.which("zstd") is None:
        pytest.skip("no zstd to compress the external core as systemd-coredump does")
    kept = tmp_path / f"core.isa_crash.0.{base_pid}.zst"
    subprocess.run(["zstd", "-q", "-o", str(kept), str(base)], check=True)
    _send(sock, _entry(base_pid, 11, "SIGSEGV", ISA_CRASH, f"{ISA_CRASH} baseline")
          | {"COREDUMP_FILENAME": str(kept)})
    gone_pid = 4_000_000 + os.getpid() % 100_000                    # a crash whose core was not kept
    _send(sock, _entry(gone_pid, 6, "SIGABRT", ISA_CRASH, f"{ISA_CRASH} gone"))
    directory = stop()

    # coredumpctl's own view of the journal
    listed = json.loads(subprocess.run([str(real), "--no-pager", f"--directory={directory}",
                                        "--json=short", "list"], capture_output=True,
                                       text=True, check=True).stdout)
    assert [(e["pid"], e["corefile"]) for e in listed] == \
        [(trap_pid, "journal"), (base_pid, "present"), (gone_pid, "none")], listed

    # gdbext, with coredumpctl reading that journal
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "coredumpctl").write_text(f'#!/bin/sh\nexec {real} --directory={directory} "$@"\n')
    (shim / "coredumpctl").chmod(0o755)
    env = dict(os.environ, PYTHONPATH=str(REPO), PATH=f"{shim}:{os.environ['PATH']}")
    proc = subprocess.run([sys.executable, "-m", "gdbext", "triage", "--coredumpctl",
                           "--no-summary", "--jobs", "1"], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=600)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, proc.stderr              # one crash without its core
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["core"] for r in records] == [f"coredumpctl:{pid}:{ISA_CRASH}"
                                            for pid in (trap_pid, base_pid, gone_pid)]
    from_journal, from_file, gone = records
    assert gone["status"] == "error" and "did not keep this core (corefile: none)" \
        in gone["error"], gone
    # the same cores given as files: the same triage
    direct = subprocess.run([sys.executable, "-m", "gdbext", "triage", "--no-summary",
                             "--jobs", "1", str(trap), str(base)], capture_output=True,
                            text=True, cwd=tmp_path, env=env, timeout=600)
    want = records_by_core({"trap": trap, "baseline": base},
                           [json.loads(l) for l in direct.stdout.splitlines()
                            if l.startswith("{")])
    for got, mode, pid in ((from_journal, "trap", trap_pid), (from_file, "baseline", base_pid)):
        assert got["status"] == "ok", got["error"]
        for field in ("signature", "verdict", "headline", "executable"):
            assert got[field] == want[mode][field], (mode, field)
        assert got["triage"]["metadata"]["pid"] == pid
    assert from_journal["signature"]["class"] == "SIGILL"
    assert from_file["signature"]["class"] == "SIGSEGV"
