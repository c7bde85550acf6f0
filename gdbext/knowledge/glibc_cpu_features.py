"""glibc's snapshot of the CPU in ld.so: ``_rtld_global_ro._dl_x86_cpu_features``.

sysdeps/x86/include/cpu-features.h (glibc 2.33+):

    struct cpu_features_basic { kind, max_cpuid, family, model, stepping }  20 bytes
    struct cpuid_feature_internal { cpuid {eax,ebx,ecx,edx}; active {eax,ebx,ecx,edx} }  32 bytes
    struct cpu_features { basic; features[CPUID_INDEX_MAX]; ... }

The table's address, record size and count are read from the code of libc's
exported ``__x86_get_cpuid_feature_leaf`` at run time, so a layout change moves
with the code; only the index -> leaf order below is fixed (it is ABI: the
index is the argument of that exported function).
"""

FUNCTION = "__x86_get_cpuid_feature_leaf"

# CPUID_INDEX_* -> (leaf, subleaf)
INDEX_LEAVES = (
    (0x1, 0), (0x7, 0), (0x80000001, 0), (0xD, 1), (0x80000007, 0),
    (0x80000008, 0), (0x7, 1), (0x19, 0), (0x14, 0),
)

BASIC_SIZE = 20            # kind, max_cpuid, family, model, stepping (uint32 each)

# enum cpu_features_kind
KINDS = {0: None, 1: "GenuineIntel", 2: "AuthenticAMD", 3: "CentaurHauls/Shanghai", 4: "other"}
