"""What the CPU's family/model says it is, and which expected features it lacks.

The model comes from CPUID leaf 1 (via ``CpuFacts``), the expectation from
archspec's feature list for that microarchitecture.  A gap means the CPU (or
the hypervisor describing it) reports a model that libraries dispatching on
the model -- not on feature bits -- will trust.
"""
from __future__ import annotations

from ..knowledge.cpu_models import CPU_MODELS, STEPPING_UPGRADES
from ..knowledge.cpuid_features import BY_NAME
from .cpu import CpuFacts
from .profiles import ALIASES
from ..record import field, record


@record
class ModelFinding:
    """A CPU model whose features the process's CPUID contradicts."""
    microarch: str                  # archspec name
    label: str
    expected_absent: list[str] = field(default_factory=list)   # cpuinfo names

    def to_json(self) -> dict:
        return {"name": self.microarch, "label": self.label,
                "expected_absent": list(self.expected_absent)}

    def describe(self, short: bool = False) -> str:
        text = f"family/model say {self.label} (archspec {self.microarch})"
        if self.expected_absent and not short:
            text += ("; such a CPU has " + ", ".join(self.expected_absent)
                     + " but this CPUID reports them absent: a virtual CPU model with "
                     "features masked, or a CPU the table does not know")
        return text


def implied_microarch(cpu: CpuFacts | None) -> ModelFinding | None:
    """The microarchitecture family/model names, or None when unknown."""
    if cpu is None or cpu.source == "profile" or cpu.family is None:
        return None
    vendor, family, model = cpu.vendor, cpu.family, cpu.model
    for row in CPU_MODELS:
        if row.vendor == vendor and row.family == family and any(
                lo <= model <= hi for lo, hi in row.models):
            name, label = row.microarch, row.label
            for min_stepping, up_name, up_label in STEPPING_UPGRADES.get(
                    (vendor, family, model), ()):
                if cpu.stepping is not None and cpu.stepping >= min_stepping:
                    name, label = up_name, up_label
            return ModelFinding(name, label, _expected_absent(name, cpu))
    return None


def _expected_absent(microarch: str, cpu: CpuFacts) -> list[str]:
    import archspec.cpu

    target = archspec.cpu.TARGETS.get(microarch)
    if target is None:
        return []
    absent = []
    for feature in sorted(target.features):
        bit = BY_NAME.get(ALIASES.get(feature, feature))
        if bit is not None and cpu.bit(bit) is False:
            absent.append(bit.name)
    return absent
