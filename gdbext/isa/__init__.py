"""Pure ISA analysis: decoding, CPU facts, verdicts.  No gdb import here."""
