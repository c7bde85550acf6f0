"""The driver side of `gdbext triage`'s worker gdbs (gdbext/cli/workers.py):
framing, pipes that never fill, a hang and a death, against a stand-in
process that speaks the worker's line protocol.  What a real gdb does with
real cores is tests/e2e/test_triage_workers.py."""
from __future__ import annotations

import sys
import time

from gdbext.cli import gdb_batch, workers
from gdbext.cli.gdb_batch import GdbOptions

# Reads jobs; per job: BIG bytes on both pipes, the report line, then END on
# both, except for cores named "hang" (sleeps) and "die" (words, exit 3).
SPEAKER = r'''#!{python}
import json, os, sys, time
for line in sys.stdin:
    job = json.loads(line)
    if job["core"] == "hang":
        time.sleep(3600)
    if job["core"] == "die":
        sys.stderr.write("warning: something\nI give up on " + job["core"] + "\n")
        sys.stderr.flush()
        os._exit(3)
    sys.stderr.write("warning: noise\n" * {big})
    sys.stdout.write("x" * 1000 + "\n" * 1 + ("y" * 100 + "\n") * {big})
    sys.stdout.write('{{"schema": "gdbext/crash-triage/1", "core": "%s"}}\n' % job["core"])
    for stream in (sys.stdout, sys.stderr):
        stream.write("\n@gdbext-worker-end %s clean\n" % job["id"])
        stream.flush()
'''


def speaker(tmp_path, big=2000):
    path = tmp_path / "speaker"
    path.write_text(SPEAKER.format(python=sys.executable, big=big))
    path.chmod(0o755)
    return GdbOptions(gdb=str(path), timeout=30)


def test_a_job_reads_both_pipes_to_their_end_lines_without_blocking(tmp_path):
    worker = workers.Worker(speaker(tmp_path, big=4000))    # ~400 KB: more than a pipe holds
    try:
        for n, core in enumerate(("a", "b"), 1):
            out = worker.run({"id": n, "core": core}, time.monotonic() + 30)
            assert out.kind == "done"
            assert out.out.strip().splitlines()[-1] == \
                '{"schema": "gdbext/crash-triage/1", "core": "%s"}' % core
            assert out.err.count("warning: noise") == 4000
            assert "@gdbext-worker-end" not in out.out + out.err
    finally:
        worker.kill()


def test_a_job_past_its_deadline_kills_the_worker(tmp_path):
    worker = workers.Worker(speaker(tmp_path))
    started = time.monotonic()
    out = worker.run({"id": 1, "core": "hang"}, started + 1)
    assert out.kind == "timeout"
    assert time.monotonic() - started < 15
    assert worker.proc.poll() is not None and not worker.alive


def test_a_worker_that_dies_leaves_its_last_words(tmp_path):
    worker = workers.Worker(speaker(tmp_path))
    assert worker.run({"id": 1, "core": "ok"}, time.monotonic() + 30).kind == "done"
    out = worker.run({"id": 2, "core": "die"}, time.monotonic() + 30)
    assert out.kind == "died" and out.returncode == 3
    assert gdb_batch.gdb_error(out.err, out.returncode) == "I give up on die"


def test_gdb_crash_is_named_by_its_signal_not_its_bug_report_address():
    stderr = ("\n\nFatal signal: Segmentation fault\n----- Backtrace -----\n0x1 ???\n"
              "A fatal error internal to GDB has been detected, further\n"
              "For instructions, see:\n<https://www.gnu.org/software/gdb/bugs/>.\n")
    assert gdb_batch.gdb_error(stderr, -11) == \
        "gdb crashed: Fatal signal: Segmentation fault (exit status -11)"
    # crash-triage's own error wins
    assert gdb_batch.gdb_error("crash-triage: no process or core\n" + stderr, -11) == \
        "crash-triage: no process or core"


def test_a_core_gdb_refuses_is_named_by_gdb_s_reason():
    stderr = ('"/c/xfsz.core" is not a core dump: file format not recognized\n'
              "crash-triage: no process or core: attach PID, run the program, or core-file "
              "CORE first\n")
    assert gdb_batch.gdb_error(stderr, 0) == ('gdb could not load the core: "/c/xfsz.core" '
                                               "is not a core dump: file format not recognized")


def test_paths_a_gdb_command_line_cannot_carry():
    assert workers.needs_own_gdb("/tmp/a\nb")
    assert workers.needs_own_gdb("/tmp/core ")
    assert not workers.needs_own_gdb("/tmp/it's a \"core\" dir/core file")


def test_the_checks_before_gdb_are_bounded_by_the_timeout(tmp_path, monkeypatch):
    """A FIFO that inputs.refusal did not see (swapped in after it looked):
    the core reader's open() waits for a writer forever; --timeout still
    ends the core's turn, with a record that says where it stalled."""
    import os
    from gdbext.cli import inputs
    fifo = tmp_path / "late.core"
    os.mkfifo(fifo)
    monkeypatch.setattr(inputs, "refusal", lambda path, what="a core file": None)
    record = gdb_batch.new_record(str(fifo))
    started = time.monotonic()
    go, exe = gdb_batch.prepare_within(record, gdb_batch.Job(str(fifo)), 1.0)
    took = time.monotonic() - started
    assert (go, exe) == (False, None) and 0.9 < took < 5, took
    assert record["status"] == "timeout"
    assert record["error"].startswith("no answer in 1 s (--timeout): the checks before gdb")
    with open(fifo, "wb"):             # a writer: the abandoned reader thread ends
        pass
