"""isa-scan on every core: chunks of an object's code decoded by worker
processes of the venv's Python, while gdb's own interpreter decodes its share.

gdb's embedded Python is never the worker executable (``sys.executable``
inside gdb names /usr/bin/python, which may not exist, and would start a
gdb-less interpreter anyway): the worker is the venv's ``bin/python``,
found from where iced-x86 is installed.  A worker reads the file itself (the
parent sends the path, the file's size and mtime, the section names and the
chunk offsets, never the bytes) and answers with a pickled partial
``ScanResult``.  Any worker failure falls back to decoding that share here.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path

from .. import elf_file
from ..errors import GdbextError

WORKER_TIMEOUT = 600


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def worker_python() -> str | None:
    """The venv's interpreter: the one iced-x86 is installed for."""
    explicit = os.environ.get("GDBEXT_VENV")
    candidates = [Path(explicit)] if explicit else []
    try:
        import iced_x86
        site = Path(iced_x86.__file__).resolve().parent.parent     # .../site-packages
        candidates.append(site.parent.parent.parent)                 # the venv
    except (ImportError, IndexError):
        pass
    for venv in candidates:
        for name in ("python3", "python"):
            exe = venv / "bin" / name
            if (venv / "pyvenv.cfg").exists() and os.access(exe, os.X_OK):
                return str(exe)
    exe = sys.executable
    if exe and os.access(exe, os.X_OK) and "gdb" not in os.path.basename(exe) \
            and not _inside_gdb():
        return exe
    return None


def _inside_gdb() -> bool:
    return "gdb" in sys.modules


def scan_parallel(path, sections, functions, cpu, chunks, jobs: int):
    from .scan import scan_chunks

    python = worker_python()
    shares = [chunks[i::jobs] for i in range(jobs)]
    if python is None:
        alone = scan_chunks(path, sections, functions, cpu, chunks)
        alone.worker_failures = 1
        return [alone]
    key = elf_file.file_key(path)
    root = str(Path(__file__).resolve().parent.parent.parent)
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    procs = []
    for share in shares[1:]:
        lo, hi = _span(sections, share)
        job = {"path": path, "key": key, "sections": [(s.name, s.address) for s in sections],
               "chunks": share, "cpu": cpu, "bounded": bool(functions),
               "functions": [f for f in functions if lo <= f.start < hi]}
        try:
            proc = subprocess.Popen([python, "-m", "gdbext.isa.scan_workers"], env=env,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
        except OSError:
            proc = None
        procs.append((proc, share, pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)))
    feeders = []
    for proc, _share, payload in procs:          # fed by threads while this one decodes
        if proc is not None:
            feeder = threading.Thread(target=_feed, args=(proc, payload), daemon=True)
            feeder.start()
            feeders.append(feeder)
    partials = [scan_chunks(path, sections, functions, cpu, shares[0])]
    for feeder in feeders:
        feeder.join()
    for proc, share, _payload in procs:
        partials.append(_collect(proc, share, path, sections, functions, cpu))
    return partials


def _feed(proc, payload: bytes) -> None:
    try:
        proc.stdin.write(payload)
        proc.stdin.close()
    except OSError:
        pass


def _collect(proc, share, path, sections, functions, cpu):
    from .scan import scan_chunks
    if proc is not None:
        try:
            out = proc.stdout.read()
            proc.stdout.close()
            if proc.wait(timeout=WORKER_TIMEOUT) == 0:
                return pickle.loads(out)
        except (subprocess.TimeoutExpired, pickle.UnpicklingError, EOFError, OSError,
                AttributeError, ImportError):
            proc.kill()
            proc.wait()
    redone = scan_chunks(path, sections, functions, cpu, share)
    redone.processes, redone.worker_failures = 0, 1
    return redone


def _span(sections, share) -> tuple[int, int]:
    lo = min(sections[c.section].address + c.start for c in share)
    hi = max(sections[c.section].address + c.end for c in share)
    return lo, hi


def _sections_from_file(path: str, wanted) -> list:
    """The named sections' bytes, read with struct (no pyelftools import)."""
    table = {(s.name, s.address): s for s in elf_file.sections(path)}
    out = []
    with open(path, "rb") as fh:
        for name, address in wanted:
            sec = table.get((name, address))
            if sec is None:
                raise GdbextError(f"{path}: no section {name} at {address:#x}")
            elf_file.seek(fh, sec.offset)
            out.append(elf_file.CodeSection(name, address, fh.read(sec.size)))
    return out


def main() -> int:
    from .scan import scan_chunks
    job = pickle.load(sys.stdin.buffer)
    if elf_file.file_key(job["path"]) != tuple(job["key"]):
        print("the file changed", file=sys.stderr)
        return 1
    sections = _sections_from_file(job["path"], job["sections"])
    result = scan_chunks(job["path"], sections, job["functions"], job["cpu"], job["chunks"],
                         job.get("bounded"))
    sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    return 0


if __name__ == "__main__":
    sys.exit(main())
