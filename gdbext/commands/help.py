"""The help of each gdb command, as `help isa-check` shows it.

Data only: gdb takes a command's help when the command is registered, and
the commands are registered before their modules are imported (see
__init__.py), so `source gdbinit.py` does not pay for the analysis modules.
"""

HELP = {
    "isa-check": """Decode an instruction and check its CPUID features against the CPU.

Usage: isa-check [--json] [--cpu NAME] [ADDRESS] [--max-frames N]

Decodes the instruction at the selected frame's pc (or at ADDRESS, any gdb
expression), names the exact CPUID features it needs in /proc/cpuinfo
spelling with their leaf/register/bit, the XCR0 state the OS must enable,
and checks both against the CPU the process ran on: glibc's CPUID snapshot
in the process or core, else this machine's CPUID and XGETBV.  With
ADDRESS it also works with no process, from the executable file's bytes.

Verdicts: supported, unsupported (the CPU lacks a feature), os-disabled
(the CPU has it, XCR0 does not enable its state), undecodable (garbage, or
an ISA newer than the decoder such as APX), unknown.  ud2 and int3 are
named as deliberate traps.

In a process or core, the selected thread's frames follow; where gdb's
unwinder gives up (an asm kernel that reuses rsp leaves a caller at pc 0),
the callers found by stack scanning, marked inferred.  In a Python process
(the executable is python*, or a libpython is loaded) the Python line that
led to the fault, read by the CPython reader without debug info: the
thread's own Python stack, or for a library's worker thread the one Python
thread driving that library (inferred).

Options:
  --json        print one JSON object (schema "gdbext/isa-check/1")
  --cpu NAME    judge against a named CPU instead: x86-64-v2/v3/v4, haswell,
                skylake_avx512, icelake, sapphirerapids, zen..zen5,
                piledriver... (archspec's microarchitecture data)
  --max-frames N  frames shown of the stopped thread
                (default: set gdbext max-frames, 64)

Examples:
  isa-check                      the instruction that raised SIGILL
  isa-check --json               the same, as JSON
  isa-check $pc+6                the next instruction
  isa-check dgemm_kernel+22108   an instruction in a file, no process needed
  isa-check --cpu x86-64-v3      would this run on any x86-64-v3 machine?""",
    "isa-scan": """Sweep an object's code for the CPU features it uses.

Usage: isa-scan [--json] [--cpu NAME | --level] [--limit N] [--jobs N] [OBJFILE|all]

Decodes every instruction in the executable sections of OBJFILE (a path, or
the name of a loaded library such as libopenblas), counts the instructions
per CPUID feature, and lists the functions (from the ELF symbols, and from
.eh_frame in a stripped object) that hold instructions the CPU cannot run.
Bytes outside every function are reported as likely data.  The CPU is the one the process ran on
(glibc's snapshot), this host's, or --cpu NAME.  "all" scans every object
the process has loaded.  Addresses are the file's link-time addresses.

Options:
  --json        print one JSON object (schema "gdbext/isa-scan/1")
  --cpu NAME    judge against a named CPU: x86-64-v2/v3/v4, haswell, zen3 ...
  --level       the lowest x86-64 level (v1-v4) and the named CPUs that run
                every function, with the functions that set it
  --limit N     list at most N functions per object in text (default 30)
  --jobs N      decode with N processes: gdb's Python and N-1 workers of the
                venv's Python (default: one per usable core, for objects with
                more than 4 MB of code)

Examples:
  isa-scan                          the program itself
  isa-scan libopenblas              a loaded library, by name
  isa-scan --cpu x86-64-v3 all      would everything loaded run on any v3 CPU?
  isa-scan --level ./prog           which x86-64 level does it need, and why?
  isa-scan /usr/lib/libfoo.so       any x86-64 ELF file, no process needed""",
    "deadlock-graph": """Find lock cycles across all threads, live or post-mortem, without debug info.

Usage: deadlock-graph [--json] [--dot FILE] [--max-frames N]

Reads each thread's frame-0 registers (the futex syscall's word, op, expected
value and timeout) and the lock it points at: the owner TID of a mutex, the
writer of an rwlock, the value of a semaphore, the thread a pthread_join waits
for, the glibc loader lock inside _rtld_global, an OpenMP barrier and the team
members that have not arrived (GNU libgomp, LLVM libomp, Intel libiomp5; the
team is the threads whose start routine, read from glibc's thread
descriptors, lies in the runtime).  In a CPython process (3.11+, read from
_PyRuntime without debug info) also the GIL (its holder from
_PyRuntime.ceval.gil, its waiters parked in take_gil), threading.Lock and
RLock (the lock whose sem_t is the futex word; an RLock's owner exact, a
Lock's holder inferred from an active 'with') and Thread.join; a Python
thread's wait site is its innermost Python line.  A lock is named only when
a frame of the lock call, its own fields or its address confirm it; "exact"
marks an owner read from such a lock's owner field.

The verdict is one of:
  deadlock     a cycle of waits, or a lock whose owner is no thread of the
               process (held across fork() by a thread of the parent, or
               held by a thread that exited): never released
  unknown      no cycle among the owners found, but threads wait without a
               timeout on locks whose owners cannot be known (semaphores,
               unrecognised futexes)
  no-deadlock  neither
Names from debug info are a bonus; it never resumes or changes the process.

Options:
  --json          print one JSON object (schema "gdbext/deadlock-graph/1")
  --dot FILE      write the wait-for graph as Graphviz DOT (cycles in red)
  --max-frames N  frames read per thread for wait sites and evidence
                  (default: set gdbext max-frames, 64)

Bounds: set gdbext max-frames N, set gdbext max-threads N; the report says
when a walk stopped at one.

Examples:
  deadlock-graph                     attached to a hung process, or on its core
  deadlock-graph --dot hang.dot      then: dot -Tsvg hang.dot > hang.svg""",
    "spill-audit": """Explain a general-protection or stack fault in vectorized code.

Usage: spill-audit [--json] [--max-frames N] [ADDRESS]

Reads the signal ($_siginfo, or the core's NT_SIGINFO) and decodes the
faulting instruction: its memory operand, the effective address from the
registers (fs/gs bases and rip-relative included) and the alignment rule it
obeys -- aligned moves need 16/32/64 bytes by vector length, legacy-SSE
16-byte operands need 16, fxsave 16, xsave 64, cmpxchg16b 16; VEX/EVEX
arithmetic and scalar or partial operands need none.  Then the stack: the
CFA of every frame from gdb's unwinder (cross-checked with the one unwind
entry that covers the pc) and its residue mod 16, realignment in the
prologue, the outermost frame entered misaligned and the caller that did
it.  Then pressure: the function's basic blocks, the faulting block's size,
vector registers used and live at once, and whether the faulting operand is
a spill slot and where it was stored.  Where gdb's unwinder gives up (a pc
of 0 above an asm kernel), the callers found by stack scanning follow,
marked inferred (their CFA is unknown).  In a Python process (the
executable is python*, or a libpython is loaded), the Python line that led
to the fault -- the ctypes call, the extension's caller -- read by the
CPython reader without debug info.

Verdicts: stack-spill-fault, misaligned-stack, non-canonical-address,
stack-overflow, bad-stack-pointer, not-alignment, other.  It never resumes
or changes the process.

Options:
  --json          print one JSON object (schema "gdbext/spill-audit/1")
  --max-frames N  frames followed for the CFA chain
                  (default: set gdbext max-frames, 64)

Examples:
  spill-audit                  the instruction that raised SIGSEGV/SIGBUS
  spill-audit --json
  spill-audit $pc-4            another instruction of the same frame""",
    "crash-triage": """Explain why the process stopped, with the analysis that applies, and sign the crash.

Usage: crash-triage [--json] [--max-frames N] [--no-metadata]

Reads the signal that stopped the selected thread (NT_SIGINFO, else the
core's pr_cursig) and runs:
  SIGILL (a fault)             isa-check
  SIGSEGV, SIGBUS (a fault)    spill-audit, and isa-check when the
                               instruction does not decode; the fault's
                               class (null read, write to read-only data,
                               past the end of a mapped file, stack
                               overflow...) from a rule table, with a rating
  no fault: attached, Ctrl-C,  deadlock-graph
  SIGSTOP, a watchdog's kill
A signal the process sent itself (abort, raise) is explained from what the
runtime left in memory, without debug info: glibc's __abort_msg (malloc's
checks, assert, stack protector, fortify), libstdc++'s uncaught exception
(type, what()), Rust std's panic location and its stack-overflow handler,
CPython's fatal error.  In a Python process the crashing thread's Python
stack and the GIL holder are shown.  One analysis that fails becomes an
error line in the report; the others still run.

The signature groups duplicates: signal class | verdict | key fact (missing
feature, fault class, reason class, lock pattern) | top frames outside libc
and the runtimes (a skip list), as bare names, or the Python frames when no
native frame is the program's own.  The same crash gives the same signature
live, from gcore and from a kernel core, with or without debug info; its id
is the first 12 hex digits of the text's SHA-256.  For a hang the frames
are the wait sites of the threads in the cycle, sorted.

Options:
  --json          print one JSON object (schema "gdbext/crash-triage/1")
  --max-frames N  frames followed per thread (default: set gdbext max-frames, 64)
  --no-metadata   leave out the process facts (command, uid, modules, build-ids)

Examples:
  crash-triage             on a core: gdb PROGRAM CORE -ex crash-triage
  crash-triage --json      what `gdbext triage` collects for each core""",
    "py-stacks": """Show every thread's Python stack, live or from a core, without Python debug info.

Usage: py-stacks [--native] [--locks] [--json] [--max-frames N] [THREAD...]

Reads CPython's own structures (_PyRuntime, found in the .dynsym of the
executable or libpython): interpreters, thread states (native_thread_id is
the LWP), and each thread's chain of interpreter frames: function, file and
line (from the code object's line table at the frame's instruction).  The
thread holding the GIL is marked, and threads parked in take_gil say so.
Versions read: CPython 3.11 and 3.12 (layout tables), 3.13 and 3.14
(_Py_DebugOffsets published by the interpreter).

Options:
  --native        interleave the native frames: each _PyEval_EvalFrameDefault
                  is followed by the Python frames it runs.  Where gdb's
                  unwinder stops (an asm kernel, a pc of 0), the stack is
                  scanned for return addresses; those frames are marked
                  "inferred".
  --locks         also list the threading.Lock/RLock objects threads wait
                  for (the futex word is the lock's sem_t: exact) and who
                  holds them (an RLock's owner, a joined thread's state lock:
                  exact; a Lock whose __exit__ an active 'with' keeps on a
                  frame's value stack: inferred)
  --json          print one JSON object (schema "gdbext/py-stacks/1")
  --max-frames N  Python and native frames per thread (default: set gdbext
                  max-frames, 64)
  THREAD...       gdb thread numbers to show (default: every thread)

Examples:
  py-stacks                  all Python threads of an attached process or core
  py-stacks --native 1       thread 1, native and Python frames together""",
}
