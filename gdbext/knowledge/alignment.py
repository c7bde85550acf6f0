"""Which x86 memory operands must be aligned, and to what (Intel SDM vol. 1
§14.9 and vol. 2 per instruction; AMD APM vol. 4 "misaligned access").

Only these fault with #GP on a misaligned address in user mode (AC off,
AMD's misaligned-SSE mode off under Linux):
- the explicitly aligned moves, whatever the encoding: 16 bytes for legacy
  and VEX.128, 32 for VEX.256, the operand size (16/32/64) for EVEX;
- legacy (non-VEX) SSE instructions with a 16-byte memory operand, except
  the forms that say they take any alignment;
- FXSAVE/FXRSTOR (16), XSAVE*/XRSTOR* (64), CMPXCHG16B (16).
Never: VEX/EVEX arithmetic, MOVUPS/MOVDQU/LDDQU and their V-forms, scalar or
partial operands (movss, movq, (v)pinsrd).
"""
from __future__ import annotations

# Explicitly aligned moves: the required alignment is the operand size.
ALIGNED_MOVES = frozenset({
    "MOVAPS", "MOVAPD", "MOVDQA", "MOVNTPS", "MOVNTPD", "MOVNTDQ", "MOVNTDQA",
    "VMOVAPS", "VMOVAPD", "VMOVDQA", "VMOVDQA32", "VMOVDQA64",
    "VMOVNTPS", "VMOVNTPD", "VMOVNTDQ", "VMOVNTDQA",
})

# Fixed alignment whatever the operand size.
FIXED = {
    "FXSAVE": 16, "FXSAVE64": 16, "FXRSTOR": 16, "FXRSTOR64": 16,
    "XSAVE": 64, "XSAVE64": 64, "XSAVEOPT": 64, "XSAVEOPT64": 64, "XSAVEC": 64,
    "XSAVEC64": 64, "XSAVES": 64, "XSAVES64": 64, "XRSTOR": 64, "XRSTOR64": 64,
    "XRSTORS": 64, "XRSTORS64": 64, "CMPXCHG16B": 16,
}

# Legacy SSE with a 16-byte operand that accepts any alignment.
LEGACY_UNALIGNED = frozenset({
    "MOVUPS", "MOVUPD", "MOVDQU", "LDDQU", "MASKMOVDQU",
    "PCMPESTRI", "PCMPESTRM", "PCMPISTRI", "PCMPISTRM",   # SSE4.2 string compares
})

LEGACY_SSE_OPERAND = 16

# The rule's wording in reports, by kind.
RULES = {
    "aligned-move": "{mnemonic} requires a {n}-byte aligned operand (an explicitly aligned move)",
    "legacy-sse": "legacy-SSE {mnemonic} with a 16-byte memory operand requires 16-byte "
                  "alignment (the VEX form would not)",
    "fixed": "{mnemonic} requires a {n}-byte aligned operand",
    "none-vex": "{encoding} {mnemonic} takes any alignment: VEX/EVEX instructions other than "
                "the aligned moves never fault on a misaligned operand",
    "none-unaligned": "{mnemonic} takes any alignment (an unaligned form)",
    "none-partial": "{mnemonic} reads or writes {size} byte(s): scalar and partial operands "
                    "take any alignment",
    "none-memory": "{mnemonic} has no memory operand with an alignment rule",
}
