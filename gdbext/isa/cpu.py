"""One record of what a CPU is and can do, built from raw CPUID leaves.

Every source (this host's CPUID, later glibc's snapshot in a process or core,
a named profile) produces the same record, so verdicts do not care where the
bits came from -- the record says it in ``source``.
"""
from __future__ import annotations

import struct
from ..record import field, record

from ..knowledge.cpuid_features import HYPERVISOR, OSXSAVE, CpuidBit

Regs = tuple[int, int, int, int]          # eax, ebx, ecx, edx
_REG_INDEX = {"eax": 0, "ebx": 1, "ecx": 2, "edx": 3}

# Leaves a CPU record is built from (leaf, subleaf); each is read only when the
# CPU's maximum basic/extended leaf reaches it.
WANTED_LEAVES: tuple[tuple[int, int], ...] = (
    (0, 0), (1, 0), (7, 0), (7, 1), (0xD, 0), (0xD, 1), (0x14, 0), (0x19, 0),
    (0x80000000, 0), (0x80000001, 0), (0x80000002, 0), (0x80000003, 0),
    (0x80000004, 0), (0x80000007, 0), (0x80000008, 0),
)


@record
class CpuFacts:
    """The CPU that ran the process: CPUID leaves, XCR0, and where they came from."""
    source: str                                  # native | process | core-notes | profile
    leaves: dict[tuple[int, int], Regs] = field(default_factory=dict)
    xcr0: int | None = None                      # None: not known
    xcr0_source: str | None = None
    notes: list[str] = field(default_factory=list)
    vendor_hint: str | None = None               # when leaf 0 was not recorded
    profile: str | None = None                   # archspec name, for source "profile"
    max_basic_leaf: int | None = None            # when leaf 0 was not recorded
    # glibc's "usable" bits per leaf (CPU and OS and tunables agree), if known
    active: dict[tuple[int, int], Regs] = field(default_factory=dict)
    hwcap: int | None = None                     # auxv AT_HWCAP (CPUID.1:EDX as the kernel saw it)
    hwcap2: int | None = None                    # auxv AT_HWCAP2 (bit 1: FSGSBASE enabled)
    kernel_flags: frozenset[str] | None = None   # /proc/cpuinfo flags, when this host's CPU
    kernel_flags_source: str | None = None

    def bit(self, b: CpuidBit) -> bool | None:
        """The bit's value; False for a leaf the CPU does not have; None when
        the leaf was not read and cannot be known to be absent."""
        regs = self.leaves.get((b.leaf, b.subleaf))
        if regs is None:
            return False if self.leaf_absent(b.leaf, b.subleaf) else None
        return bool(regs[_REG_INDEX[b.register]] >> b.bit & 1)

    def leaf_absent(self, leaf: int, subleaf: int) -> bool:
        """Beyond the CPU's maximum (sub)leaf: CPUID has no such leaf, so every
        feature bit in it is clear."""
        if leaf >= 0x80000000:
            top = self.leaves.get((0x80000000, 0))
            return top is not None and leaf > top[0]
        top = self.leaves.get((0, 0))
        max_basic = top[0] if top else self.max_basic_leaf
        if max_basic is not None and leaf > max_basic:
            return True
        if leaf == 7 and subleaf > 0:
            seven = self.leaves.get((7, 0))
            return seven is not None and subleaf > seven[0]
        return False

    @property
    def vendor(self) -> str | None:
        regs = self.leaves.get((0, 0))
        if regs is None:
            return self.vendor_hint
        return struct.pack("<III", regs[1], regs[3], regs[2]).decode("ascii", "replace")

    def _signature(self) -> tuple[int, int, int] | None:
        regs = self.leaves.get((1, 0))
        if regs is None:
            return None
        eax = regs[0]
        base_family, base_model, stepping = eax >> 8 & 0xF, eax >> 4 & 0xF, eax & 0xF
        family = base_family + (eax >> 20 & 0xFF if base_family == 0xF else 0)
        model = base_model | ((eax >> 16 & 0xF) << 4 if base_family in (6, 0xF) else 0)
        return family, model, stepping

    @property
    def family(self) -> int | None:
        sig = self._signature()
        return sig and sig[0]

    @property
    def model(self) -> int | None:
        sig = self._signature()
        return sig and sig[1]

    @property
    def stepping(self) -> int | None:
        sig = self._signature()
        return None if sig is None else sig[2]

    @property
    def model_name(self) -> str | None:
        parts = [self.leaves.get((leaf, 0)) for leaf in (0x80000002, 0x80000003, 0x80000004)]
        if any(p is None for p in parts):
            return None
        raw = b"".join(struct.pack("<IIII", *p) for p in parts)
        return raw.split(b"\0", 1)[0].decode("ascii", "replace").strip() or None

    @property
    def hypervisor(self) -> bool | None:
        return self.bit(HYPERVISOR)

    @property
    def os_xsave(self) -> bool | None:
        return self.bit(OSXSAVE)

    def effective_xcr0(self) -> int | None:
        """XCR0 as the CPU applies it: with CR4.OSXSAVE clear only x87/SSE work."""
        if self.os_xsave is False:
            return 0x3
        return self.xcr0

    def active_bit(self, b: CpuidBit) -> bool | None:
        regs = self.active.get((b.leaf, b.subleaf))
        return None if regs is None else bool(regs[_REG_INDEX[b.register]] >> b.bit & 1)

    def xcr0_from_active(self) -> int | None:
        """A lower bound on XCR0 from glibc's active bits: glibc marks AVX,
        AVX-512 and AMX usable only after checking XCR0 itself."""
        if not self.active:
            return None
        xcr0 = 0x3
        for bit, mask in ((CpuidBit("avx", 1, 0, "ecx", 28), 0x6),
                          (CpuidBit("avx512f", 7, 0, "ebx", 16), 0xE6),
                          (CpuidBit("amx_tile", 7, 0, "edx", 24), 0x60000)):
            if self.active_bit(bit):
                xcr0 |= mask
        return xcr0

    def to_json(self) -> dict:
        return {
            "source": self.source, "vendor": self.vendor, "family": self.family,
            "model": self.model, "stepping": self.stepping, "model_name": self.model_name,
            "hypervisor": self.hypervisor, "profile": self.profile, "xcr0": self.xcr0,
            "xcr0_source": self.xcr0_source, "hwcap": self.hwcap, "hwcap2": self.hwcap2,
            "kernel_flags_source": self.kernel_flags_source,
            "notes": list(self.notes),
        }

    def describe(self) -> str:
        origin = SOURCE_NAMES.get(self.source, self.source)
        if self.profile:
            return f"profile {self.profile} ({self.vendor or 'any vendor'}), from archspec"
        if self.family is None:
            return f"{origin}: no CPUID data"
        name = f' "{self.model_name}"' if self.model_name else ""
        hv = ", under a hypervisor" if self.hypervisor else ""
        xcr0 = (f"\nXCR0 {self.xcr0:#x} ({self.xcr0_source})" if self.xcr0 is not None else "")
        return (f"{self.vendor} family {self.family:#x} model {self.model:#x} stepping "
                f"{self.stepping}{name}{hv}\nfrom {origin}{xcr0}")


SOURCE_NAMES = {
    "process": "glibc's CPUID snapshot in the process (the machine it ran on)",
    "native": "this host's CPUID instruction",
    "core-notes": "the core file's notes",
    "profile": "a named CPU profile",
}
