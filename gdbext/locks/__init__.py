"""Why threads are blocked and who they wait for (pure: no gdb import)."""
