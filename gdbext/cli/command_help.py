"""The shell help of `gdbext COMMAND`: what it does and real examples (data).
What each command answers is in gdb's `help COMMAND` (commands/help.py)."""

SUMMARY = {
    "isa-check": "which CPU features the faulting instruction needs, and whether the CPU "
                 "that ran the process had them",
    "isa-scan": "which CPU features an object uses, and which functions this CPU cannot run",
    "deadlock-graph": "what every thread waits for, who holds it, and the cycles",
    "spill-audit": "why a SIMD instruction raised a general-protection or stack fault",
    "crash-triage": "why the process stopped, with the analysis that applies, and a "
                    "signature",
    "py-stacks": "every thread's Python stack, without Python debug info",
}

EXAMPLES = {
    "isa-check": """\
  gdbext isa-check core.1234                  the instruction that raised SIGILL
  gdbext isa-check core.1234 ./prog --json    the same, with the program named, as JSON
  gdbext isa-check -p 1234 --cpu x86-64-v3    the stopped thread's pc, judged against v3
  gdbext isa-check ./prog 'dgemm_kernel+22'   an instruction in a file, no process""",
    "isa-scan": """\
  gdbext isa-scan /usr/lib/x86_64-linux-gnu/libopenblas.so.0 --cpu x86-64-v2
  gdbext isa-scan -p 1234 all                 everything the process has loaded
  gdbext isa-scan core.1234 ./prog            the program of a core""",
    "deadlock-graph": """\
  gdbext deadlock-graph -p 1234               attach, read, detach: the hang explained
  gdbext deadlock-graph -p 1234 --json        one JSON object, as inside gdb
  gdbext deadlock-graph core.1234 --dot g.dot then: dot -Tsvg g.dot > g.svg
  gdbext deadlock-graph --remote host:2345    a process under gdbserver --attach""",
    "spill-audit": """\
  gdbext spill-audit core.1234                the instruction that raised SIGSEGV/SIGBUS
  gdbext spill-audit core.1234 ./prog --json""",
    "crash-triage": """\
  gdbext crash-triage core.1234               a crash, classified and signed
  gdbext crash-triage -p 1234 --json          a live process: its hang, if any
  gdbext triage core.* -p 1234                many targets: JSON Lines and a summary""",
    "py-stacks": """\
  gdbext py-stacks -p 1234                    every thread's Python stack, like py-spy dump
  gdbext py-stacks -p 1234 --native --locks   native frames interleaved; the locks
  gdbext py-stacks core.1234 /usr/bin/python3.11 1 2   threads 1 and 2 of a core""",
}

TARGETS = """\
TARGET is one of:
  -p PID                 a running process: gdb attaches, reads and detaches (the process
                         is never written to or resumed; Ctrl-C detaches before exiting)
  CORE [EXECUTABLE]      a core file; the executable defaults to the one the core names
  --remote HOST:PORT     a process under gdbserver (gdbserver --attach :PORT PID)"""

EXIT = """\
exit status: 0 nothing wrong found; 1 a finding (a deadlock, an instruction the CPU cannot
run, a stack or alignment fault explained, a crashed process); 2 the target could not be
analysed, with one line saying why (no such process, ptrace_scope, another tracer, not a
core gdb can load) or a wrong command line; 130 interrupted."""
