"""The hostile-core corpus (issue 28): seeded mutants of real cores, run
through crash-triage in gdb (one `gdb -batch` per mutant) and through
`gdbext triage`, each answer sorted into: a report with warnings, a clean
report (no warning), a one-line refusal, an internal error, a traceback, a
lost record (batch), a hang of ours, a hang of gdb's own (no prompt after
loading the core: gdb blocks before any command runs), gdb crashing.

Sources, made here: kernel cores of fixtures/hostile badjump and badstack,
and gdb's gcore of a sleeping `sleep`.  Families: truncations at every
structure, byte flips in each note, absurd values in the ELF header,
program headers, note headers and registers, zeroed and self-referencing
stack memory, program headers past the end of the file, a relabelled
e_machine, bytes that are not UTF-8 in the notes, wrong executables (a text
file, an aarch64 program, another x86-64 program) and files that are not
cores.  Offsets come from this script's own parse of the ELF and gABI note
layouts (tests/e2e/damaged.py), never from gdbext.

    python bench/hostile_cores.py [--seed N] [--per-source N] [--out docs/hostile-cores.md]

SEED (default 28) fixes the mutants; the summary is printed and written.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.e2e import damaged  # noqa: E402
from tests.host import FIXTURES, bench_core  # noqa: E402

GDB = os.environ.get("GDB", "gdb")
GDBEXT = REPO / ".venv" / "bin" / "gdbext"
TIMEOUT = 60                      # per mutant, in gdb and in the batch
LOADED = "@gdbext-bench-loaded"   # echoed once gdb has loaded the core: a later hang is ours
INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 32, 1 << 63,
               (1 << 64) - 1)
PR_REG, RIP, RSP, RBP = 112, 16, 19, 4      # elf_prstatus.pr_reg, user_regs_struct indexes


def sources(work: Path) -> list[tuple[str, Path, str]]:
    """(name, core, executable) of the real cores mutated."""
    out = []
    hostile = FIXTURES / "hostile"
    for mode in ("badjump", "badstack"):
        core = bench_core([str(hostile), mode], work / f"src-{mode}")
        if core is not None:
            out.append((f"kernel-{mode}", core, str(hostile)))
    proc = subprocess.Popen(["sleep", "600"])
    try:
        exe = os.readlink(f"/proc/{proc.pid}/exe")
        core = work / "src-gcore" / "sleep.core"
        core.parent.mkdir()
        subprocess.run([GDB, "-nx", "-nh", "-batch", "-p", str(proc.pid), "-ex",
                        f"gcore {core}"], capture_output=True, timeout=120)
    finally:
        proc.kill()
        proc.wait()
    if core.is_file():
        out.append(("gcore-sleep", core, exe))
    return out


def _phdrs(core: bytes):
    phoff, = struct.unpack_from("<Q", core, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", core, 0x36)
    return phoff, phentsize, [struct.unpack_from("<IIQQQQQQ", core, phoff + i * phentsize)
                              for i in range(phnum)]


def _put(data: bytearray, at: int, value: int, size: int) -> None:
    if 0 <= at <= len(data) - size:
        data[at:at + size] = (value & ((1 << 8 * size) - 1)).to_bytes(size, "little")


def mutants(core: bytes, rng: random.Random, per_source: int):
    """(family, what, bytes) for one source core."""
    phoff, phentsize, phdrs = _phdrs(core)
    notes = list(damaged.notes(core))
    loads = [p for p in phdrs if p[0] == 1 and p[5] > 0]
    out = []
    # truncations at every structure, and inside each
    cuts = {0, 16, 63, 64, phoff + phentsize // 2, phoff + phentsize * len(phdrs)}
    for name, n_type, at, desc, size in notes:
        cuts |= {at, at + 6, desc, desc + size // 2}
    for p in loads[:8]:
        cuts |= {p[2], p[2] + p[5] // 2}
    cuts |= {len(core) - 1, len(core) // 2}
    for cut in sorted(c for c in cuts if 0 <= c < len(core)):
        out.append(("truncation", f"cut at {cut}", core[:cut]))
    # byte flips in each note's desc
    for name, n_type, at, desc, size in notes:
        for _ in range(3):
            if size:
                data = bytearray(core)
                i = desc + rng.randrange(size)
                data[i] ^= rng.randrange(1, 256)
                out.append(("note-flip", f"{name.decode(errors='replace')}/{n_type:#x} "
                            f"byte {i - desc}", bytes(data)))
    # absurd values: ELF header, program headers, note headers, registers, NT_FILE
    fields = [("e_phoff", 0x20, 8), ("e_phentsize", 0x36, 2), ("e_phnum", 0x38, 2),
              ("e_shoff", 0x28, 8), ("e_shnum", 0x3C, 2)]
    for i in rng.sample(range(len(phdrs)), min(6, len(phdrs))):
        base = phoff + i * phentsize
        fields += [(f"phdr{i}.p_offset", base + 8, 8), (f"phdr{i}.p_vaddr", base + 16, 8),
                   (f"phdr{i}.p_filesz", base + 32, 8), (f"phdr{i}.p_memsz", base + 40, 8)]
    for name, n_type, at, desc, size in notes[:12]:
        fields += [(f"note{n_type:#x}.namesz", at, 4), (f"note{n_type:#x}.descsz", at + 4, 4)]
        if name == b"CORE" and n_type == damaged.NT_PRSTATUS:
            fields += [(f"prstatus.{r}", desc + PR_REG + 8 * k, 8)
                       for r, k in (("rip", RIP), ("rsp", RSP), ("rbp", RBP))]
        if name == b"CORE" and n_type == damaged.NT_FILE:
            fields += [("nt_file.count", desc, 8), ("nt_file.page_size", desc + 8, 8)]
    for what, at, size in fields:
        for value in rng.sample(INTERESTING, 2):
            data = bytearray(core)
            _put(data, at, value, size)
            out.append(("absurd-value", f"{what} = {value:#x}", bytes(data)))
    # zeroed and self-referencing stack memory (the segment the first rsp is in)
    regs = damaged.prstatus(core)
    if regs:
        rsp, = struct.unpack_from("<Q", core, regs[0][0] + PR_REG + 8 * RSP)
        stack = next((p for p in loads if p[3] <= rsp < p[3] + p[5]), None)
        if stack is not None:
            data = bytearray(core)
            data[stack[2]:stack[2] + stack[5]] = bytes(stack[5])
            out.append(("memory", "stack zeroed", bytes(data)))
            data = bytearray(core)
            for off in range(0, stack[5] - 7, 8):
                struct.pack_into("<Q", data, stack[2] + off, stack[3] + off)
            out.append(("memory", "stack words point at themselves", bytes(data)))
    for p in rng.sample(loads, min(4, len(loads))):
        data = bytearray(core)
        data[p[2]:p[2] + p[5]] = bytes(p[5])
        out.append(("memory", f"segment {p[3]:#x} zeroed", bytes(data)))
    # program headers past the end of the file
    for i in rng.sample(range(len(phdrs)), min(4, len(phdrs))):
        data = bytearray(core)
        _put(data, phoff + i * phentsize + 8, len(core) + rng.randrange(1, 1 << 20), 8)
        out.append(("past-end", f"phdr{i}.p_offset past the end", bytes(data)))
    # registers: pc 0, all zero, no register note; e_machine relabelled
    out.append(("registers", "rip = 0", damaged.pc_zero(core)[0]))
    out.append(("registers", "registers zeroed", damaged.registers_zeroed(core)[0]))
    out.append(("registers", "no NT_PRSTATUS", damaged.no_prstatus(core)[0]))
    for machine in (damaged.EM_AARCH64, damaged.EM_ARM, 3):
        out.append(("relabelled", f"e_machine = {machine}", damaged.relabelled(core, machine)))
    # bytes that are not UTF-8 in pr_fname, pr_psargs and NT_FILE paths
    for name, n_type, at, desc, size in notes:
        if name == b"CORE" and n_type in (damaged.NT_PRPSINFO, damaged.NT_FILE):
            for _ in range(3):
                data = bytearray(core)
                if n_type == damaged.NT_PRPSINFO:
                    data[desc + rng.choice([40, 41, 56, 57, 60])] = 0x89
                else:
                    paths = bytes(core[desc:desc + size]).rstrip(b"\0")
                    start = paths.find(b"/", len(paths) // 2) if b"/" in paths else -1
                    if start < 0:
                        continue
                    data[desc + start + rng.randrange(1, 4)] = rng.choice([0x89, 0xFF, 0xC3])
                out.append(("not-utf8", f"byte in {n_type:#x}", bytes(data)))
    rng.shuffle(out)
    return out[:per_source]


def not_cores(work: Path, rng: random.Random) -> list[tuple[str, str, Path]]:
    out = []
    for what, data in [("empty", b""), ("random 64 KiB", rng.randbytes(64 << 10)),
                       ("text", b"not a core\n" * 100),
                       ("ELF executable", Path("/bin/true").read_bytes()),
                       ("ELF header only", Path("/bin/true").read_bytes()[:64])]:
        path = work / f"notcore-{len(out)}.core"
        path.write_bytes(data)
        out.append(("not-a-core", what, path))
    return out


def in_gdb(core: Path, exe: str | None) -> str:
    """How crash-triage in a one-shot gdb answered on ``core``."""
    argv = [GDB, "-nx", "-nh", "-q", "-batch", "-iex", "set debuginfod enabled off",
            "-iex", "set auto-load python-scripts off", "-ex", f"source {REPO / 'gdbinit.py'}",
            "-ex", f"echo {LOADED}\\n", "-ex", "crash-triage --json"]
    argv += ([exe] if exe else []) + ["-c", str(core)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                              timeout=TIMEOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    except subprocess.TimeoutExpired as exc:
        seen = (exc.stdout or b"")
        seen = seen.decode(errors="replace") if isinstance(seen, bytes) else seen
        return "hang-ours" if LOADED in seen else "hang-gdb"
    text = proc.stdout + proc.stderr
    if "Traceback" in text:
        return "traceback"
    if proc.returncode < 0 or "Fatal signal" in text or "internal-error:" in text:
        return "gdb-crashed"
    line = next((l for l in proc.stdout.splitlines() if l.startswith('{"schema"')), None)
    if line is None:
        ours = [l for l in proc.stderr.splitlines() if l.startswith("crash-triage:")]
        if any("internal error" in l for l in ours):
            return "internal-error"
        return "refusal" if len(ours) == 1 else "no-answer"
    report = json.loads(line)
    if "internal error" in line:
        return "internal-error"
    return "warned" if report.get("warnings") else "clean"


def in_batch(cases: list[dict], exe: str | None, work: Path) -> dict[str, str]:
    """Each core's outcome in one `gdbext triage` run (-j 2)."""
    out = work / f"records-{abs(hash(exe))}.jsonl"
    argv = [str(GDBEXT), "triage", "-j", "2", "--timeout", str(TIMEOUT), "--no-summary",
            "--out", str(out)] + (["--exe", exe] if exe else []) + [c["path"] for c in cases]
    proc = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                          timeout=TIMEOUT * len(cases) + 300)
    records = {}
    if out.exists():
        for line in out.read_text(errors="replace").splitlines():
            r = json.loads(line)
            records[r["core"]] = r
    if "Traceback" in proc.stderr:
        return {c["path"]: "traceback" for c in cases}
    result = {}
    for c in cases:
        r = records.get(c["path"])
        if r is None:
            result[c["path"]] = "lost"
        elif "internal error" in json.dumps(r):
            result[c["path"]] = "internal-error"
        elif r["status"] == "timeout":
            result[c["path"]] = "hang"
        elif r["status"] == "error":
            result[c["path"]] = "refusal"
        else:
            result[c["path"]] = "warned" if r["warnings"] or r["triage"].get("warnings") \
                else "clean"
    return result


KINDS = ("warned", "clean", "refusal", "internal-error", "traceback", "lost", "hang-ours",
         "hang", "hang-gdb", "gdb-crashed", "no-answer")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=28)
    ap.add_argument("--per-source", type=int, default=200)
    ap.add_argument("--out", default=str(REPO / "docs" / "hostile-cores.md"))
    ap.add_argument("--cases", help="also write every input's outcome here (JSON Lines)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gdbext-hostile-") as tmp:
        work = Path(tmp)
        cases = []
        text_exe = work / "notes.txt"
        text_exe.write_text("not a program\n")
        for name, core, exe in sources(work):
            raw = core.read_bytes()
            for i, (family, what, data) in enumerate(mutants(raw, rng, args.per_source)):
                path = work / f"{name}-{i:03d}.core"
                path.write_bytes(data)
                cases.append(dict(source=name, family=family, what=what, path=str(path), exe=exe))
            for wrong in (str(text_exe), str(FIXTURES / "arch" / "arch_aarch64"), "/bin/true"):
                path = work / f"{name}-wrong-{Path(wrong).name}.core"
                shutil.copyfile(core, path)
                cases.append(dict(source=name, family="wrong-executable", what=wrong,
                                  path=str(path), exe=wrong))
        for family, what, path in not_cores(work, rng):
            cases.append(dict(source="-", family=family, what=what, path=str(path), exe=None))
        for c in cases:
            c["gdb"] = in_gdb(Path(c["path"]), c["exe"])
        by_exe = collections.defaultdict(list)
        for c in cases:
            by_exe[c["exe"]].append(c)
        for exe, group in by_exe.items():
            for path, kind in in_batch(group, exe, work).items():
                next(c for c in group if c["path"] == path)["batch"] = kind
                if kind == "hang" and next(c for c in group if c["path"] == path)["gdb"] \
                        == "hang-gdb":
                    next(c for c in group if c["path"] == path)["batch"] = "hang-gdb"
                elif kind == "hang":
                    next(c for c in group if c["path"] == path)["batch"] = "hang-ours"
    if args.cases:
        with open(args.cases, "w") as fh:
            for c in cases:
                fh.write(json.dumps({k: v for k, v in c.items() if k != "path"}) + "\n")
    summary = render(cases, args.seed, time.monotonic() - started)
    print(summary)
    Path(args.out).write_text(summary)


def render(cases: list[dict], seed: int, seconds: float) -> str:
    families = sorted({c["family"] for c in cases})
    lines = ["# The hostile-core corpus", "",
             f"`python bench/hostile_cores.py --seed {seed}` (`make hostile-cores`): "
             f"{len(cases)} inputs from {len({c['source'] for c in cases}) - 1} real cores "
             f"and {sum(c['family'] == 'not-a-core' for c in cases)} files that are not "
             f"cores, run through crash-triage in gdb and through `gdbext triage -j 2`, "
             f"in {seconds / 60:.1f} min. Written by that script; see its docstring for the "
             f"families. The seed fixes the mutations; the source cores are made afresh "
             f"(new pids and addresses), so the counts move by a few between runs.", ""]
    for side, key in (("crash-triage in gdb", "gdb"), ("gdbext triage", "batch")):
        counts = collections.Counter(c[key] for c in cases)
        lines += [f"## {side}", "",
                  "| family | " + " | ".join(KINDS) + " |",
                  "|---" * (len(KINDS) + 1) + "|"]
        for fam in families + ["all"]:
            row = collections.Counter(c[key] for c in cases if fam in ("all", c["family"]))
            lines.append(f"| {fam} | " + " | ".join(str(row.get(k, 0)) for k in KINDS) + " |")
        lines += ["", "totals: " + ", ".join(f"{k} {counts.get(k, 0)}" for k in KINDS), ""]
    bad = [c for c in cases if c["gdb"] in ("internal-error", "traceback", "hang-ours")
           or c["batch"] in ("internal-error", "traceback", "lost", "hang-ours")]
    lines += ["## Inputs that failed the goal (internal error, traceback, lost, our hang)", ""]
    lines += [f"- {c['source']} {c['family']}: {c['what']} -> gdb {c['gdb']}, "
              f"batch {c['batch']}" for c in bad] or ["none"]
    clean = [c for c in cases if c["family"] not in ("not-a-core",)
             and "clean" in (c["gdb"], c["batch"])]
    lines += ["", "## Reports with no warning (the damage did not show, or did not matter)",
              "", f"{len(clean)} inputs; by family: " + ", ".join(
                  f"{f} {n}" for f, n in collections.Counter(c['family'] for c in clean)
                  .most_common()), ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
