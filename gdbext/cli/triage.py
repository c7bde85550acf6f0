"""`gdbext triage`: a pool of --jobs batch gdbs, each triaging core after
core (workers.py), one record per core in the order given, then a summary
grouped by signature.  Cores are handed out one at a time to whichever
worker is free.  Nothing is kept between runs unless --index-cache DIR is
given, so one core per invocation in a job system works the same."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed

from . import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, coredumpctl, inputs, one_shot, summary
from .gdb_batch import LOADER, GdbOptions, Job, new_record
from .progress import Progress
from .workers import OneShotRunner, Runners, WorkerRunner


def run(args) -> int:
    skipped: list[str] = []
    problem = _check_tools(args)
    if problem:
        return _usage(problem)
    if args.coredumpctl:
        try:
            entries = coredumpctl.list_entries(args.cores)
        except coredumpctl.Unavailable as exc:
            return _usage(str(exc))
        work = [_from_coredumpctl(e, args.exe) for e in entries]
    else:
        if not args.cores and not args.pids:
            return _usage("no cores given (CORE..., -p PID or --coredumpctl)")
        found = inputs.expand(args.cores)
        skipped = found.skipped_directories
        work = [_from_file(Job(path, args.exe)) if why is None else _refused(path, why)
                for path, why in found.cores]
    work = [_from_file(Job(None, pid=pid)) for pids in args.pids for pid in pids] + work
    if not work:
        return _usage("no cores to triage" + _skipped_line(skipped, "; "))
    with _output(args.out) as sink, _index_cache(args) as index_cache:
        opts = GdbOptions(args.gdb, args.timeout, args.sysroot, args.debug_file_directory,
                          args.max_frames, index_cache,
                          os.path.abspath(args.gcore) if args.gcore else None)
        per_gdb = args.cores_per_gdb
        runners = Runners(lambda: OneShotRunner(opts) if per_gdb == 1
                          else WorkerRunner(opts, per_gdb))
        records = _run_pool(work, runners, args.jobs, sink,
                            Progress(len(work), enabled={"auto": None, "always": True,
                                                         "never": False}[args.progress]))
    if not args.no_summary:
        stream = sys.stdout if args.out and args.out != "-" else sys.stderr
        print(summary.table(records, group_by=args.group) + _skipped_line(skipped, "\n"),
              file=stream)
    return EXIT_OK if all(r["status"] == "ok" for r in records) else EXIT_SOME_FAILED


def _check_tools(args) -> str | None:
    if shutil.which(args.gdb) is None:
        return f"{args.gdb} not found (install gdb, or --gdb PATH)"
    if not LOADER.is_file():
        return f"{LOADER} is missing: the gdbext package is incomplete (reinstall it)"
    exe_refused = args.exe and inputs.refusal(args.exe, "an executable")
    if args.exe and (exe_refused or not os.path.isfile(args.exe)):
        return f"--exe {args.exe}: {exe_refused or 'no such file'}"
    if args.gcore and not os.path.isdir(args.gcore):
        return f"--gcore {args.gcore}: no such directory"
    if args.index_cache and not os.path.isdir(args.index_cache):
        return f"--index-cache {args.index_cache}: no such directory"
    return None


def _usage(message: str) -> int:
    print(f"gdbext triage: {message}", file=sys.stderr)
    return EXIT_USAGE


def _skipped_line(skipped: list[str], sep: str) -> str:
    if not skipped:
        return ""
    return (f"{sep}{len(skipped)} director{'y' if len(skipped) == 1 else 'ies'} inside the "
            f"directories given not searched (name them to triage their cores): "
            f"{', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}")


def _from_file(job: Job):
    return lambda runner: runner.triage(job)


def _refused(path: str, why: str):
    """An input that is not opened at all (inputs.refusal): its record says why."""
    return lambda runner: dict(new_record(path, why), seconds=0.0)


def _from_coredumpctl(entry: coredumpctl.Entry, exe: str | None):
    def work(runner):
        with tempfile.TemporaryDirectory(prefix="gdbext-core-") as tmp:
            try:
                path = coredumpctl.dump(entry, tmp)
            except ValueError as exc:
                return new_record(entry.label, str(exc))
            return runner.triage(Job(path, exe or entry.exe, entry.label))
    return work


def _run_pool(work, runners: Runners, jobs: int, sink, progress: Progress) -> list[dict]:
    """Records in input order, each written as soon as those before it are.
    The pool's threads take the work in order, each as it becomes free."""
    records: list[dict | None] = [None] * len(work)
    written = 0
    with ThreadPoolExecutor(max_workers=min(jobs, len(work))) as pool:
        futures = {pool.submit(lambda w: w(runners.get()), w): i for i, w in enumerate(work)}
        try:
            for future in as_completed(futures):
                i = futures[future]
                records[i] = future.result()
                progress.update(records[i]["status"] == "ok")
                while written < len(records) and records[written] is not None:
                    sink.write(json.dumps(records[written]) + "\n")
                    sink.flush()
                    written += 1
        finally:
            progress.close()
            for f in futures:
                f.cancel()
            interrupted = sys.exc_info()[0] is not None
            if interrupted:
                one_shot.interrupt_all()    # attached gdbs detach, then end
            runners.stop_all(now=interrupted)   # interrupted: kill the workers (cores)
    return records


@contextlib.contextmanager
def _index_cache(args):
    """gdb's index-cache: the symbol indexes gdb builds for the libraries'
    debug info (libc6-dbg's, a Rust program's), written once and read by
    every later gdb instead of indexing the DWARF again."""
    if args.no_index_cache:
        yield None
    elif args.index_cache:
        yield os.path.abspath(args.index_cache)
    else:
        with tempfile.TemporaryDirectory(prefix="gdbext-index-") as tmp:
            yield tmp


@contextlib.contextmanager
def _output(path: str | None):
    if not path or path == "-":
        yield sys.stdout
        return
    with open(path, "w") as fh:          # only where the user asked
        yield fh
