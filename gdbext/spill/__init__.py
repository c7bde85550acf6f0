"""Where a frame keeps its CFA and saved registers, from the ELF file's unwind tables."""
