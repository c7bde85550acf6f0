"""The crash-triage report: one verdict, a stable signature, and the report
of every analysis that ran.  Text and JSON."""
from __future__ import annotations

from .. import render
from ..knowledge.triage import (ARITHMETIC_VERDICT, SELF_SIGNAL_DEFAULT,
                                SELF_SIGNAL_VERDICT)
from .signature import NamedFrame, Signature
from .stop import Stop
from ..record import field, record

SCHEMA = "gdbext/crash-triage/1"
# spill-audit verdicts that are not about alignment: one line in the text
BRIEF_SPILL_VERDICTS = ("not-alignment", "non-canonical-address", "stack-overflow",
                        "bad-stack-pointer")


@record
class TriageReport:
    """What crash-triage prints."""
    target: str
    stop: Stop
    thread: dict | None                     # num, lwp, name of the thread examined
    reports: dict = field(default_factory=dict)    # command -> its report object
    errors: list[tuple[str, str]] = field(default_factory=list)
    frames: list[NamedFrame] = field(default_factory=list)
    signature: Signature | None = None
    warnings: list[str] = field(default_factory=list)
    finding: object | None = None           # crash-triage's own explanation (triage/jump.py)
    reason: object | None = None            # a runtime's own words (triage/evidence.py)
    fault_class: object | None = None       # the rule table's class (triage/fault_class.py)
    fault_facts: object | None = None
    interrupted: object | None = None       # the fault a signal handler was handling
    handler: dict | None = None             # the handler that ran on that fault
    smashed: dict | None = None             # the caller frame whose return address is garbage
    interpreter: str | None = None          # a Python process: its interpreter
    python: object | None = None            # triage.python.PythonView (the CPython reader)
    scanned: int = 0                        # frames found by stack scanning (inferred)
    metadata: dict | None = None            # coredumpctl-like facts (triage/metadata.py)
    _json: dict = field(default_factory=dict, repr=False)

    def report_json(self, name: str) -> dict:
        """One analysis's JSON, built once: the signature's key and the
        combined JSON both read it, and 10,000 threads make it costly."""
        if name not in self._json:
            self._json[name] = self.reports[name].to_json()
        return self._json[name]

    @property
    def python_stack(self) -> list[str] | None:
        """The Python stack that explains the crash, innermost first."""
        return self.python.lines() if self.python is not None else None

    @property
    def primary(self):
        return next(iter(self.reports.values()), None)

    @property
    def verdict(self) -> str:
        if self.reason is not None:
            return self.reason.verdict
        if self.fault_class is not None and (self.primary is None or self.primary.verdict
                                             in ("not-alignment", "stack-overflow",
                                                 "non-canonical-address")
                                             or self.stop.code is None):
            return self.fault_class.name
        if self.primary is not None:
            return self.primary.verdict
        if self.finding is not None:
            return self.finding.to_json()["verdict"]
        if self.stop.commands:
            return "unexplained"            # every analysis failed: see errors
        if self.stop.origin == "self":
            return SELF_SIGNAL_VERDICT.get(self.stop.name, SELF_SIGNAL_DEFAULT)
        return ARITHMETIC_VERDICT if self.stop.name == "SIGFPE" else "unexplained"

    def headline(self) -> str:
        if self.stop.origin == "trap":      # a breakpoint or a step: not a hang, not a crash
            what = f"stopped at a debug trap ({self.stop.name})"
        elif self.stop.klass == "hang":     # the frames are wait sites, not a crash site
            what = f"hang ({self.stop.name or 'no signal'})"
        else:
            what = self.stop.name + (f" in {self.frames[0].function}" if self.frames else "")
        if self.reason is not None:
            detail = f"{self.verdict.upper()} - {self.reason.summary}"
        elif self.fault_class is not None and self.verdict == self.fault_class.name:
            detail = (f"{self.verdict.upper()} - {self.fault_class.explanation} "
                      f"[{self.fault_class.rating}]")
        elif self.primary is not None:
            detail = self.primary.headline().split(": ", 1)[-1]
        elif self.finding is not None:
            detail = f"{self.verdict} - {self.finding.explanation[0]}"
        elif self.errors:
            detail = f"{self.verdict} - {self.errors[0][0]} failed: {self.errors[0][1]}"
        else:
            detail = f"{self.verdict} - {self.stop.describe()}"
        return f"crash-triage: {what}: {detail}"

    def to_json(self) -> dict:
        return {
            "schema": SCHEMA,
            "verdict": self.verdict,
            "headline": self.headline(),
            "target": self.target,
            "stop": self.stop.to_json(),
            "thread": self.thread,
            "ran": list(self.reports),
            "signature": self.signature.to_json() if self.signature else None,
            "frames": [f.to_json() for f in self.frames],
            "reports": {name: self.report_json(name) for name in self.reports},
            "finding": self.finding.to_json() if self.finding is not None else None,
            "reason": self.reason.to_json() if self.reason is not None else None,
            "class": self.fault_class.to_json() if self.fault_class is not None else None,
            "access": self.fault_facts.access if self.fault_facts is not None else None,
            "region": (self.fault_facts.region.to_json() if self.fault_facts is not None
                       and self.fault_facts.region is not None else None),
            "fault": self._fault_json(),
            "interrupted": dict(self.interrupted.to_json(), handler=self.handler)
            if self.interrupted is not None else None,
            "stack_smashed": self.smashed,
            "python": dict({"interpreter": self.interpreter, "stack": self.python_stack},
                           **(self.python.to_json() if self.python is not None else {}))
            if self.interpreter else None,
            "scanned_frames": self.scanned,
            "metadata": self.metadata,
            "errors": [{"command": c, "error": e} for c, e in self.errors],
            "warnings": self.warnings,
        }

    def _fault_json(self) -> dict | None:
        """The facts the fault rules saw: the address and where it came from,
        the faulting instruction's facts."""
        f = self.fault_facts
        if f is None:
            return None
        return {"address": f.addr, "address_from": f.address_from,
                "instruction": f.insn.to_json() if f.insn is not None else None,
                "syscall": f.syscall}

    def _python_rows(self) -> list[tuple[str, str]]:
        py = self.python
        from ..runtimes.cpython import DEFAULT_RECURSION_LIMIT, collapsed_lines
        if py is None:
            return [("python", f"a Python process ({self.interpreter}); its Python stack "
                               "is not read" + (" (see the warnings)" if self.warnings
                                                else ""))]
        version = f"CPython {py.version}" if py.version else self.interpreter
        rows = []
        if py.frames:
            whose = "the crashing thread" if py.evidence == "exact" else py.source
            head = f"{version}, LWP {py.lwp} ({whose}; {py.evidence})"
            body = [f"  {line}" for line in collapsed_lines(py.frames, py.depth, py.outer,
                                                             py.middle_same)]
            if py.truncated and py.depth is None:
                body.append("  ... (max-frames)")
            rows.append(("python", head + "\n" + "\n".join(body)))
        limit = py.recursion_limit
        if limit is not None and limit > DEFAULT_RECURSION_LIMIT:
            rows.append(("recursion", f"sys.setrecursionlimit({limit:,}): raised above the "
                         f"default {DEFAULT_RECURSION_LIMIT:,}"
                         + (f", and the stack is {py.depth:,} Python frames deep: "
                            "RecursionError could not stop the recursion before the C stack "
                            "ran out" if self.verdict == "stack-overflow" and py.depth
                            else "")))
        else:
            rows.append(("python", f"{version}: {py.source}"))
        if py.gil is not None:
            owner = py.gil.get("owner")
            rows.append(("gil", f"held by LWP {owner} ({py.gil.get('evidence')})"
                                + (" - the crashing thread" if self.thread and owner ==
                                   self.thread.get("lwp") else "") if owner
                         else f"not held ({py.gil.get('why')})"))
        return rows

    def to_text(self) -> str:
        t = self.thread
        rows = [("stop", self.stop.describe()
                 + (f"; thread {t['num']} (LWP {t['lwp']})" if t else ""))]
        if self.frames:
            joiner = ", " if self.stop.klass == "hang" else " < "
            label = "wait sites" if self.stop.klass == "hang" else "frames"
            rows.append((label, joiner.join(f.function for f in self.frames)))
        rows.append(("ran", ", ".join(self.reports) or (
            "its own analysis of the jump (no instruction to audit)" if self.finding
            else f"the {self.reason.runtime} reader" if self.reason is not None
            else "the fault rules" if self.fault_class is not None
            else "nothing (no analysis applies)")))
        if self.reason is not None:
            rows += self.reason.rows()
        if self.fault_class is not None:
            rows.append(("class", f"{self.fault_class.name} ({self.fault_class.rating}; "
                                  f"rule {self.fault_class.rule})"))
            if self.reason is not None:
                rows.append(("why", self.fault_class.explanation))
        if self.fault_facts is not None and self.fault_facts.access:
            f = self.fault_facts
            rows.append(("access", f.access + (f" at {f.addr:#x}" if f.addr is not None
                                               else "") + (
                (" (the instruction's operand: a #GP's si_addr 0 is no address)"
                 if f.code is not None else
                 " (the instruction's operand: the core has no siginfo; inferred)")
                if f.address_from == "operand" and f.addr is not None else "")))
        if self.interrupted is not None:
            i = self.interrupted
            who = (self.handler or {}).get("what") or "a signal handler"
            at = f" ({self.handler['function']})" if self.handler and \
                self.handler["function"] not in who else ""
            what = ("siginfo" if i.source == "siginfo" else
                    "sigcontext's trapno/err/cr2: the handler took no siginfo")
            rows.append(("handler", f"{who}{at}; the fault is read from the kernel's signal "
                                    f"frame #{i.level}, its {what} ({i.to_json()['certainty']})"))
        if self.smashed is not None:
            rows.append(("stack", f"stack smashed: frame #{self.smashed['frame']} returns to "
                                  f"{self.smashed['return_address']:#x}, which maps to "
                                  "nothing; the frames past it are garbage"))
        if self.scanned:
            rows.append(("unwind", f"gdb's unwinder stopped; {self.scanned} caller frame(s) "
                                   "found by stack scanning (inferred)"))
        if self.interpreter:
            rows += self._python_rows()
        if self.metadata:
            from .metadata import rows as metadata_rows
            rows += metadata_rows(self.metadata)
        if self.signature:
            rows.append(("signature", f"{self.signature.id}  {self.signature.text}"))
        if self.finding is not None:
            rows += [("why", line) for line in self.finding.explanation[1:]]
            rows += [("fix", line) for line in self.finding.advice]
        rows += self._stack_rows()
        rows += [("error", f"{c}: {e}") for c, e in self.errors]
        rows += [("warning", w) for w in self.warnings]
        parts = [self.headline(), render.block(rows)]
        parts += [self._analysis_text(name, r) for name, r in self.reports.items()]
        return "\n\n".join(parts)

    def _analysis_text(self, name: str, report) -> str:
        """An analysis's own text; spill-audit's on a fault that is not about
        alignment is one line (its JSON stays whole)."""
        if name == "spill-audit" and report.verdict in BRIEF_SPILL_VERDICTS:
            return (f"{report.headline()} (`spill-audit` shows its instruction, stack and "
                    "slots; --json has them)")
        return report.to_text()

    def _stack_rows(self) -> list[tuple[str, str]]:
        """spill-audit's explanation of a stack overflow, as crash-triage rows."""
        spill = self.reports.get("spill-audit")
        audit = getattr(spill, "audit", None)
        if audit is None or spill.verdict not in ("stack-overflow", "bad-stack-pointer"):
            return []
        return ([("why", line) for line in audit.stack_notes]
                + [("fix", line) for line in audit.stack_advice])
