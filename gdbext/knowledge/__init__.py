"""Knowledge as data: CPUID bits, signal codes, trap instructions.

Nothing here imports gdb or a third-party package, so tables can be read by
any layer (and by tests) at no cost.
"""
