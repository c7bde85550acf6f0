"""CPUID and XGETBV of the machine gdb runs on, executed from gdb's own Python.

Two tiny machine-code stubs are copied into an anonymous mapping that is made
executable after it is written (never writable and executable at once) and
called through ctypes.  They describe gdb's host, so they are valid for a
native target only.
"""
from __future__ import annotations

import ctypes
import mmap
import os
from functools import lru_cache

from ..errors import GdbextError
from .cpu import WANTED_LEAVES, CpuFacts

# void cpuid(uint32 leaf, uint32 subleaf, uint32 out[4])   (System V ABI)
CPUID_STUB = bytes.fromhex(
    "53"            # push %rbx            (callee-saved, cpuid clobbers it)
    "89f8"          # mov  %edi,%eax
    "89f1"          # mov  %esi,%ecx
    "4989d0"        # mov  %rdx,%r8
    "0fa2"          # cpuid
    "418900"        # mov  %eax,(%r8)
    "41895804"      # mov  %ebx,0x4(%r8)
    "41894808"      # mov  %ecx,0x8(%r8)
    "4189500c"      # mov  %edx,0xc(%r8)
    "5b"            # pop  %rbx
    "c3"            # ret
)
# uint64 xgetbv(uint32 index)
XGETBV_STUB = bytes.fromhex(
    "89f9"          # mov  %edi,%ecx
    "0f01d0"        # xgetbv
    "48c1e220"      # shl  $0x20,%rdx
    "4809d0"        # or   %rdx,%rax
    "c3"            # ret
)


def host_is_x86_64() -> bool:
    return os.uname().machine.lower() in ("x86_64", "amd64")


@lru_cache(maxsize=1)
def _stubs():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    size = mmap.PAGESIZE
    page = libc.mmap(None, size, mmap.PROT_READ | mmap.PROT_WRITE,
                     mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    if page in (None, ctypes.c_void_p(-1).value):
        raise GdbextError("cannot map memory for the CPUID stub")
    ctypes.memmove(page, CPUID_STUB, len(CPUID_STUB))
    ctypes.memmove(page + 64, XGETBV_STUB, len(XGETBV_STUB))
    if libc.mprotect(page, size, mmap.PROT_READ | mmap.PROT_EXEC) != 0:
        raise GdbextError(f"cannot make the CPUID stub executable (errno {ctypes.get_errno()})")
    cpuid = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.c_uint32,
                             ctypes.POINTER(ctypes.c_uint32))(page)
    xgetbv = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint32)(page + 64)
    return cpuid, xgetbv


def cpuid(leaf: int, subleaf: int = 0) -> tuple[int, int, int, int]:
    out = (ctypes.c_uint32 * 4)()
    _stubs()[0](leaf, subleaf, out)
    return tuple(out)  # type: ignore[return-value]


@lru_cache(maxsize=1)
def read_native_cpu() -> CpuFacts:
    """This host's CPU: raw CPUID leaves and XCR0."""
    if not host_is_x86_64():
        raise GdbextError(f"this host is {os.uname().machine}, not x86-64: no native CPUID")
    facts = CpuFacts(source="native")
    max_basic = cpuid(0)[0]
    max_ext = cpuid(0x80000000)[0]
    for leaf, sub in WANTED_LEAVES:
        top = max_ext if leaf >= 0x80000000 else max_basic
        if leaf > top or (leaf == 7 and sub > 0 and sub > facts.leaves.get((7, 0), (0,))[0]):
            continue
        facts.leaves[(leaf, sub)] = cpuid(leaf, sub)
    if facts.os_xsave:
        # XGETBV raises #UD unless CR4.OSXSAVE is set: checked just above.
        facts.xcr0 = int(_stubs()[1](0))
        facts.xcr0_source = "XGETBV"
    else:
        facts.xcr0_source = "CR4.OSXSAVE clear: only x87/SSE state is enabled"
    return facts
