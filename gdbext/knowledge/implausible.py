"""Instructions a user-mode x86-64 program does not execute on any current CPU.

Met in an object's .text they are almost always bytes of data (constant
tables, jump tables) that a linear sweep decoded as code, so isa-scan reports
them as "likely data" and never as a feature the object needs.  Kept out on
purpose: RTM (xbegin/xend, real user code: glibc's lock elision), XOP/FMA4/TBM
(AMD-only but real: OpenSSL's ChaCha20 has an XOP path), VIA PadLock (OpenSSL's
padlock engine), and 3DNow! -- long obsolete, but real in old kernels still
shipped (Debian's OpenBLAS has femms in its OPTERON kernels): inside a
function it is code a CPU without it cannot run; outside every function,
isa-scan counts it as data by its place alone, like any other bytes there.
Privileged (CPL 0) instructions are told by iced-x86's ``is_privileged`` and
need no row here.

Keys are the feature names isa-scan reports (/proc/cpuinfo spelling, or
iced's name lower-cased where the CPUID table has no row).
"""
from __future__ import annotations

OBSOLETE: dict[str, str] = {
    # SDM vol. 2B, RSM: #UD when not in system-management mode.
    "smm": "rsm, valid only in system-management mode",
    # SDM vol. 3C ch. 31 (VMX instructions #UD outside VMX operation, #GP at CPL > 0
    # in VMX root) and AMD APM vol. 2 §15.5 (VMRUN & co. need CPL 0 and EFER.SVME).
    "vmx": "VMX, a hypervisor's instructions",
    "svm": "AMD SVM, a hypervisor's instructions",
    "skinit": "AMD SKINIT, secure boot of a hypervisor",
    "skinit|svm": "AMD SVM/SKINIT, a hypervisor's instructions",
    # SDM vol. 2B, GETSEC: #UD unless CR4.SMXE, which Linux sets only under tboot.
    "smx": "GETSEC (Intel TXT), for a measured launch",
}


def why(feature: str) -> str | None:
    """Why an instruction needing ``feature`` is not plausible user code, or None."""
    return OBSOLETE.get(feature)
