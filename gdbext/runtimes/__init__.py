"""What a runtime leaves in memory: one pure reader each, over read(address, length)."""
