"""CPUID/XGETBV run from gdb's-Python-style ctypes stub, checked against the
kernel's view in /proc/cpuinfo."""
from __future__ import annotations

import pytest

from gdbext.isa.decode import decode
from gdbext.isa.native_cpu import CPUID_STUB, XGETBV_STUB, host_is_x86_64, read_native_cpu
from gdbext.knowledge.cpuid_features import CPUID_BITS
from tests.host import cpu_flags, cpuinfo

pytestmark = pytest.mark.skipif(not host_is_x86_64(), reason="needs an x86-64 host")


def _listing(code: bytes) -> list[str]:
    out, offset = [], 0
    while offset < len(code):
        ins = decode(code[offset:], offset)
        assert ins.undecodable is None
        out.append(ins.text)
        offset += ins.length
    return out


def test_stubs_are_the_documented_instructions():
    assert _listing(CPUID_STUB) == [
        "push %rbx", "mov %edi,%eax", "mov %esi,%ecx", "mov %rdx,%r8", "cpuid",
        "mov %eax,(%r8)", "mov %ebx,4(%r8)", "mov %ecx,8(%r8)", "mov %edx,0xc(%r8)",
        "pop %rbx", "ret"]
    assert _listing(XGETBV_STUB) == [
        "mov %edi,%ecx", "xgetbv", "shl $0x20,%rdx", "or %rdx,%rax", "ret"]


def test_identity_matches_proc_cpuinfo():
    cpu, info = read_native_cpu(), cpuinfo()
    assert cpu.vendor == info["vendor_id"]
    assert cpu.family == int(info["cpu family"])
    assert cpu.model == int(info["model"])
    assert cpu.stepping == int(info["stepping"])
    assert cpu.model_name == info["model name"]
    assert cpu.hypervisor == ("hypervisor" in cpu_flags())


def test_kernel_flags_are_a_subset_of_raw_cpuid():
    """The kernel may hide a CPUID bit (clearcpuid, noxsave) but never invents one
    that lives in a CPUID register."""
    cpu = read_native_cpu()
    checked = 0
    for b in CPUID_BITS.values():
        if b.name in cpu_flags():
            assert cpu.bit(b) is True, f"{b.name} in /proc/cpuinfo but {b.describe()} = 0"
            checked += 1
    assert checked >= 20


def test_xcr0_enables_what_the_kernel_advertises():
    cpu = read_native_cpu()
    xcr0 = cpu.effective_xcr0()
    if "avx" in cpu_flags():          # the kernel clears avx when XCR0 lacks ymm state
        assert xcr0 & 0x6 == 0x6
    if "avx512f" in cpu_flags():
        assert xcr0 & 0xE6 == 0xE6
    if "amx_tile" in cpu_flags():
        assert xcr0 & 0x60000 == 0x60000
    assert xcr0 & 0x3 == 0x3          # x87 and SSE are always on under Linux
