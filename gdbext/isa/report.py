"""The isa-check report: one data object rendered as text or JSON."""
from __future__ import annotations

from .. import frames_view, render
from ..knowledge.cpuid_features import xcr0_names
from ..knowledge.signals import code_name, signal_name
from .cpu import CpuFacts
from .decode import DecodedInstruction
from .verdict import IsaJudgement
from ..record import field, record

# Only for annotations: the dispatch and model modules load when a report needs them.
DispatchFinding = ModelFinding = object

SCHEMA = "gdbext/isa-check/1"

HEADLINES = {
    "supported": "this CPU runs this instruction",
    "unsupported": "this CPU lacks {missing}",
    "os-disabled": "the CPU has the feature but the OS did not enable its register state",
    "runs-differently": "this CPU lacks {soft}: it runs an older instruction instead, "
                        "without a fault",
    "undecodable": "the bytes at this address are not a known instruction",
    "unknown": "cannot tell whether this CPU runs this instruction",
}


@record
class IsaCheckReport:
    """What isa-check prints."""
    instruction: DecodedInstruction
    judgement: IsaJudgement
    cpu: CpuFacts | None
    target: str                            # live | core | exec | remote
    symbol: str | None = None
    offset: int | None = None
    function: str | None = None
    objfile: str | None = None
    signal: dict | None = None             # {signo, code, addr}
    warnings: list[str] = field(default_factory=list)
    model: ModelFinding | None = None      # what family/model says the CPU is
    dispatch: DispatchFinding | None = None
    environment: dict | None = None        # {source, knobs: {name: value}}
    hints: list[str] = field(default_factory=list)
    variant_note: str | None = None        # a kernel variant that runs fine here
    frames: list | None = None             # target.StackFrame of the stopped thread
    python: object | None = None           # triage.python.PythonView: the Python line
    build: object | None = None            # build_target.BuildTarget of the object
    cpu_level: tuple | None = None         # levels.cpu_level(): (index, next lacks, known)

    @property
    def verdict(self) -> str:
        return self.judgement.verdict

    # --- JSON -------------------------------------------------------------
    def signal_json(self) -> dict | None:
        if self.signal is None:
            return None
        signo, code = self.signal["signo"], self.signal["code"]
        return {"signo": signo, "code": code, "name": signal_name(signo),
                "code_name": None if code is None else code_name(signo, code),
                "addr": self.signal.get("addr"),
                "source": self.signal.get("source", "siginfo")}

    def level_json(self) -> dict | None:
        if self.cpu_level is None:
            return None
        from .levels import level_name
        reached, lacks, known = self.cpu_level
        return {"level": level_name(reached) if known else None,
                "at_least": level_name(reached) if reached is not None else None,
                "next_level_lacks": lacks, "known": known}

    def level_text(self) -> str | None:
        if self.cpu_level is None or self.cpu is None:
            return None
        from .levels import level_name
        reached, lacks, known = self.cpu_level
        if not known:
            return (f"at least {level_name(reached)} (the CPU record lacks a leaf the next "
                    "level needs)")
        if reached is not None and reached < 3:
            return (f"{level_name(reached)}: lacks " + ", ".join(lacks)
                    + f" of {level_name(reached + 1)} (x86-64 psABI levels, from archspec)")
        return f"{level_name(reached)} (x86-64 psABI levels, from archspec)"

    def to_json(self) -> dict:
        ins, j = self.instruction, self.judgement
        return {
            "schema": SCHEMA,
            "verdict": j.verdict,
            "address": ins.address,
            "symbol": self.symbol,
            "offset": self.offset,
            "function": self.function,
            "object": self.objfile,
            "instruction": ins.text,
            "mnemonic": ins.mnemonic or None,
            "bytes": render.hexbytes(ins.raw),
            "length": ins.length,
            "encoding": ins.encoding,
            "vector_length": ins.vector_length,
            "features": [f.name for f in j.features],
            "feature_details": [f.to_json() for f in j.features],
            "missing": j.missing,
            "kernel_hidden": j.kernel_hidden,
            "xcr0_required": j.xcr0_required,
            "xcr0_missing": j.xcr0_missing,
            "trap": ins.trap,
            "privileged": ins.privileged,
            "reasons": j.reasons,
            "cpu": self.cpu.to_json() if self.cpu else None,
            "signal": self.signal_json(),
            "built_for": self.build.to_json() if self.build is not None else None,
            "cpu_level": self.level_json(),
            "microarchitecture": ({**self.model.to_json(), "relevant": self.model_relevant()}
                                  if self.model else None),
            "dispatch": self.dispatch.to_json() if self.dispatch else None,
            "kernel_variant": self.variant_note,
            "environment": self.environment,
            "hints": self.hints,
            "frames": frames_view.frames_json(self.frames) if self.frames is not None
            else None,
            "scanned_frames": frames_view.scanned(self.frames or []),
            "python": frames_view.python_json(self.python),
            "target": self.target,
            "warnings": self.warnings,
        }

    def model_relevant(self) -> bool:
        """The family/model line bears on this report only when the library
        chose its kernel by model, or the model explains a missing feature."""
        if self.model is None:
            return False
        if self.dispatch is not None and self.dispatch.cause == "model":
            return True
        return bool(set(self.judgement.missing) & set(self.model.expected_absent))

    def _library_line(self) -> str | None:
        facts = self.dispatch.library_facts if self.dispatch else {}
        parts = []
        version = facts.get("version")
        if version:
            parts.append(f"{self.dispatch.library} {version['version']}, from "
                         f"{version['source']}")
        package = facts.get("python_package")
        if package:
            parts.append(f"installed by the Python package {package['name']} "
                         f"{package['version']} ({package['metadata']})")
        return "; ".join(parts) or None

    # --- text -------------------------------------------------------------
    def headline(self) -> str:
        j = self.judgement
        if j.kernel_hidden and j.verdict == "supported":
            names = ", ".join(h["feature"] for h in j.kernel_hidden)
            return (f"isa-check: supported - the CPU runs it, but the kernel hides {names} "
                    "(marked do-not-use)")
        if self.instruction.trap and j.verdict == "supported":
            return f"isa-check: deliberate trap ({self.instruction.mnemonic}), not an ISA problem"
        if self.instruction.privileged and j.verdict == "supported":
            return ("isa-check: supported - but privileged: in user mode it raises #GP "
                    "(SIGSEGV, SI_KERNEL)")
        soft = ", ".join(f.name for f in j.features if f.present is False and f.runs_as)
        text = HEADLINES[j.verdict].format(missing=", ".join(j.missing), soft=soft)
        return f"isa-check: {j.verdict} - {text}"

    def _where(self) -> str:
        ins = self.instruction
        place = render.hexaddr(ins.address)
        if self.symbol:
            place += f" <{self.symbol}+{self.offset}>" if self.offset else f" <{self.symbol}>"
        if self.objfile:
            place += f" in {self.objfile}"
        return place

    def _requirements(self) -> str:
        j, cpu = self.judgement, self.cpu
        state = {True: "present", False: "MISSING", None: "unknown"}
        # Side by side where known: raw CPUID, glibc's usable bits, the kernel's flags.
        extra = [("glibc active", "active", {True: "yes", False: "NO", None: "?"}),
                 ("/proc/cpuinfo", "kernel", {True: "yes", False: "NO", None: "?"})]
        extra = [e for e in extra if any(getattr(f, e[1]) is not None for f in j.features)]
        rows = [[f.name, f.where or "(no CPUID bit)", state[f.present]]
                + [names[getattr(f, attr)] for _, attr, names in extra] for f in j.features]
        if j.xcr0_required:
            xcr0 = cpu.effective_xcr0() if cpu else None
            have = ("unknown" if xcr0 is None else
                    f"DISABLED (XCR0 {xcr0:#x})" if j.xcr0_missing else f"enabled (XCR0 {xcr0:#x})")
            rows.append(["XCR0 state", f"{'+'.join(xcr0_names(j.xcr0_required))} "
                                       f"({j.xcr0_required:#x})", have] + [""] * len(extra))
        if not rows:
            return "nothing beyond baseline x86-64"
        return render.table(rows, ["feature", "where", "CPUID"] + [e[0] for e in extra])

    def to_text(self) -> str:
        ins = self.instruction
        rows = [("address", self._where())]
        sig = self.signal_json()
        if sig and sig["code"] is None:
            rows.append(("signal", render.prose([
                f"{sig['name']} (from NT_PRSTATUS pr_cursig: the core has no NT_SIGINFO, "
                "so no si_code or si_addr)"])))
        elif sig:
            rows.append(("signal", f"{sig['name']} ({sig['code_name']})"
                         + (f", si_addr {sig['addr']:#x}" if sig["addr"] is not None else "")))
        rows.append(("bytes", render.hexbytes(ins.raw)))
        rows.append(("instruction", ins.text))
        if not ins.undecodable:
            enc = ins.encoding + (f", {ins.vector_length}-bit" if ins.vector_length else "")
            rows.append(("encoding", enc))
            rows.append(("requires", self._requirements()))
        rows.append(("cpu", self.cpu.describe() if self.cpu else "none: no CPU facts"))
        level = self.level_text()
        if level:
            rows.append(("cpu level", render.prose([level])))
        if self.build is not None:
            rows.append(("built for", render.prose(self.build.describe()
                                                   or ["nothing recorded"])))
        if self.model and self.model_relevant():
            rows.append(("model", render.prose([self.model.describe()])))
        for note in self.cpu.notes if self.cpu else ():
            rows.append(("cpu note", render.prose([note])))
        if self.variant_note and not self.dispatch:
            rows.append(("kernel", render.prose([self.variant_note])))
        if self.dispatch:
            rows.append(("kernel", render.prose(self.dispatch.explanation)))
            library = self._library_line()
            if library:
                rows.append(("library", render.prose([library])))
        if self.environment is not None:
            knobs = self.environment["knobs"]
            rows.append(("environment", render.prose(
                [" ".join(f"{k}={v}" for k, v in sorted(knobs.items()))
                 or "no dispatch knobs set",
                 f"(from {self.environment['source']})"])))
        if self.judgement.reasons:
            rows.append(("why", render.prose(self.judgement.reasons)))
        for h in self.hints:
            rows.append(("fix", render.prose([h])))
        if self.frames:
            rows.append(("frames", frames_view.frames_text(self.frames,
                                                           self.python is not None)))
        if self.python is not None:
            rows.append(("python", frames_view.python_text(self.python)))
        for w in self.warnings:
            rows.append(("warning", render.prose([w])))
        return self.headline() + "\n" + render.block(rows)
