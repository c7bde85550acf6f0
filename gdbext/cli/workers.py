"""Long-lived gdbs that triage core after core (the gdb side is
gdb_worker.py): gdb's start-up, the loader and the analysis' imports are paid
once per worker, not once per core.  Spawns gdb; never imports it.

One Worker is one `gdb -batch` process that reads jobs on stdin.  Its stdout
and stderr are drained by two threads into one queue, so no pipe ever fills;
a job is complete when its END line has come on both pipes.  A job that does
not finish in time kills the worker's process group; a worker that dies
(gdb crashing on a hostile core) gives that core gdb's last words.  Either
way the next job gets a fresh worker.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time

from .gdb_batch import (GdbOptions, Job, finish, gdb_options_argv, new_record,
                        prepare_within, timed_out, triage_command, triage_one)

END = "@gdbext-worker-end"          # gdb_worker.END; not imported: that module needs gdb
# When gdbext cannot load in this gdb (the loader said why: another Python)
# the worker says so and ends; the driver then gives every core a one-shot
# gdb, whose crash-triage stand-in answers with the loader's reason.
UNAVAILABLE = "@gdbext-worker-unavailable"
BOOTSTRAP = f"""\
import importlib
try:
    w = importlib.import_module("gdbext.cli.gdb_worker")
except ImportError:
    print({UNAVAILABLE!r}, flush=True)
else:
    w.serve()
"""
SERVE = f"python exec({BOOTSTRAP!r})"


def worker_argv(opts: GdbOptions) -> list[str]:
    return gdb_options_argv(opts) + ["-ex", SERVE]


def needs_own_gdb(path: str) -> bool:
    """A path a gdb command line cannot carry (a line break ends the command,
    trailing blanks are cut): such a core gets a one-shot gdb, which takes
    it as argv."""
    return any(c in path for c in "\n\r\0") or path != path.rstrip()


class Outcome:
    def __init__(self, kind: str, out: str, err: str, returncode: int | None):
        self.kind, self.out, self.err, self.returncode = kind, out, err, returncode


class Worker:
    """One gdb serving jobs; not thread-safe: one driver thread owns it."""

    def __init__(self, opts: GdbOptions):
        self.proc = subprocess.Popen(worker_argv(opts), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.events: queue.Queue = queue.Queue()
        self.served = 0
        self.alive = True
        for name, stream in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            threading.Thread(target=self._drain, args=(name, stream), daemon=True).start()

    def _drain(self, name: str, stream) -> None:
        for raw in iter(stream.readline, b""):
            self.events.put((name, raw.decode("utf-8", "replace")))
        self.events.put((name, None))

    def run(self, payload: dict, deadline: float) -> Outcome:
        """Send one job; its stdout and stderr, once both say END (done), or
        when gdb exits (died) or the deadline passes (timeout)."""
        self.served += 1
        try:
            self.proc.stdin.write((json.dumps(payload) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            pass                         # it died: its exit shows on the pipes
        text = {"out": [], "err": []}
        ended: dict[str, str] = {}
        closed = set()
        marker = f"{END} {payload['id']} "
        while len(ended) + len(closed - set(ended)) < 2:
            try:
                name, line = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                return Outcome("timeout", "".join(text["out"]), "".join(text["err"]), None)
            if line is None:
                closed.add(name)
            elif line.startswith(marker):
                ended[name] = line[len(marker):].strip()
            elif name not in ended:
                text[name].append(line)
        out, err = "".join(text["out"]), "".join(text["err"])
        if len(ended) < 2:               # gdb exited before the job was done
            self.alive = False
            return Outcome("died", out, err, self._wait())
        if "dirty" in ended.values():
            self.close()
        return Outcome("done", out, err, None)

    def _wait(self) -> int | None:
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.returncode

    def kill(self) -> None:
        self.alive = False
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)    # gdb and anything it started
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()

    def close(self) -> None:
        """Let it finish on end of input; kill it if it does not."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.kill()


class WorkerRunner:
    """What one driver thread uses to triage its jobs: a Worker it keeps
    until it has served ``per_gdb`` cores, timed out or died."""

    def __init__(self, opts: GdbOptions, per_gdb: int):
        self.opts, self.per_gdb = opts, per_gdb
        self.worker: Worker | None = None
        self.lock = threading.Lock()
        self.next_id = 0
        self.stopped = False
        self.spawn_error = "stopped"
        self.unavailable = False        # gdbext cannot load in this gdb: one-shot gdbs

    def triage(self, job: Job) -> dict:
        started = time.monotonic()
        record = new_record(job.label or job.core)
        try:
            # a live process gets its own gdb, which detaches however the run ends
            if job.pid is not None or self.unavailable or needs_own_gdb(job.core) or \
                    needs_own_gdb(job.executable or ""):
                return triage_one(job, self.opts)
            go, executable = prepare_within(record, job, self.opts.timeout)
            if go:
                self._triage(record, job, executable, started)
                if self.unavailable:
                    return triage_one(job, self.opts)
        finally:
            record["seconds"] = round(time.monotonic() - started, 3)
        return record

    def _triage(self, record: dict, job: Job, executable: str | None, started: float) -> None:
        payload = {"core": os.path.abspath(job.core),
                   "executable": os.path.abspath(executable) if executable else None,
                   "command": triage_command(self.opts)}
        for attempt in (1, 2):
            fresh = self.worker is None
            worker = self._worker()
            if worker is None:
                record["error"] = f"cannot run {self.opts.gdb}: {self.spawn_error}"
                return
            self.next_id += 1
            outcome = worker.run(dict(payload, id=self.next_id), started + self.opts.timeout)
            if outcome.kind != "done" or not worker.alive or worker.served >= self.per_gdb:
                self._retire()
            if outcome.kind == "died" and UNAVAILABLE in outcome.out.splitlines():
                self.unavailable = True     # triage() asks a one-shot gdb
                return
            if outcome.kind == "timeout":
                timed_out(record, self.opts.timeout)
                return
            if outcome.kind == "died" and not fresh and attempt == 1:
                continue                 # maybe what the cores before left: once more, alone
            finish(record, outcome.out, outcome.err, outcome.returncode)
            return

    def _worker(self) -> Worker | None:
        if self.worker is None:
            try:
                with self.lock:
                    if self.stopped:
                        return None
                    self.worker = Worker(self.opts)
            except OSError as exc:
                self.spawn_error = exc.strerror
                return None
        return self.worker

    def _retire(self) -> None:
        with self.lock:
            worker, self.worker = self.worker, None
        if worker is not None:
            worker.close() if worker.alive else worker.kill()

    def stop(self, now: bool) -> None:
        """End the worker: let it finish on end of input (the batch is over),
        or kill it and the job it runs (interrupted)."""
        with self.lock:
            self.stopped = True
            worker, self.worker = self.worker, None
        if worker is not None:
            worker.kill() if now else worker.close()


class OneShotRunner:
    """--cores-per-gdb 1: a fresh gdb per core, its argv naming the core."""

    def __init__(self, opts: GdbOptions):
        self.opts = opts

    def triage(self, job: Job) -> dict:
        return triage_one(job, self.opts)

    def stop(self, now: bool) -> None:
        pass


class Runners:
    """One runner per driver thread, made on first use; all stopped at the end."""

    def __init__(self, make):
        self.make = make
        self.local = threading.local()
        self.all: list = []
        self.lock = threading.Lock()

    def get(self):
        runner = getattr(self.local, "runner", None)
        if runner is None:
            runner = self.local.runner = self.make()
            with self.lock:
                self.all.append(runner)
        return runner

    def stop_all(self, now: bool) -> None:
        with self.lock:
            runners = list(self.all)
        for runner in runners:
            runner.stop(now)
