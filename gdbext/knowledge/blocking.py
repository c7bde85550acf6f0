"""What a blocked thread looks like on x86-64 Linux with glibc 2.31-2.39.

Facts from the kernel's syscall table (arch/x86/entry/syscalls/syscall_64.tbl),
include/uapi/linux/futex.h, glibc's sysdeps/nptl/bits/struct_mutex.h,
struct_rwlock.h and nptl/descr.h, checked on the fixtures (glibc 2.36) with
libc6-dbg: fixtures/deadlock/NOTES-research.md.
"""
from __future__ import annotations

SYS_FUTEX = 202
SYS_FUTEX_WAITV = 449

# syscall number -> (state, what)
SYSCALL_STATES: dict[int, tuple[str, str]] = {
    0: ("io", "read"), 1: ("io", "write"), 7: ("io", "poll"), 17: ("io", "pread64"),
    18: ("io", "pwrite64"), 19: ("io", "readv"), 20: ("io", "writev"), 23: ("io", "select"),
    24: ("running", "sched_yield"), 34: ("sleep", "pause"), 35: ("sleep", "nanosleep"),
    42: ("io", "connect"), 43: ("io", "accept"), 44: ("io", "sendto"), 45: ("io", "recvfrom"),
    46: ("io", "sendmsg"), 47: ("io", "recvmsg"), 61: ("join", "wait4"),
    72: ("io", "fcntl"), 73: ("io", "flock"), 74: ("io", "fsync"),
    128: ("sleep", "rt_sigtimedwait"), 130: ("sleep", "rt_sigsuspend"),
    230: ("sleep", "clock_nanosleep"), 232: ("io", "epoll_wait"), 247: ("join", "waitid"),
    270: ("io", "pselect6"), 271: ("io", "ppoll"), 281: ("io", "epoll_pwait"),
    288: ("io", "accept4"), 299: ("io", "recvmmsg"), 441: ("io", "epoll_pwait2"),
}

# restart_syscall(2): a sleep or poll interrupted by a signal (or a ptrace
# attach) resumes as this call, with the original arguments gone.  The frames
# still say what it was.
SYS_RESTART_SYSCALL = 219
RESTARTED_BY_FRAME: tuple[tuple[str, tuple[str, str]], ...] = (
    ("clock_nanosleep", ("sleep", "clock_nanosleep")), ("nanosleep", ("sleep", "nanosleep")),
    ("usleep", ("sleep", "nanosleep")), ("sleep", ("sleep", "nanosleep")),
    ("poll", ("io", "poll")), ("ppoll", ("io", "ppoll")), ("select", ("io", "select")),
    ("pselect", ("io", "pselect6")), ("epoll_wait", ("io", "epoll_wait")),
    ("epoll_pwait", ("io", "epoll_pwait")),
)

# futex op (cmd bits only: FUTEX_PRIVATE_FLAG 128 and FUTEX_CLOCK_REALTIME 256 masked)
FUTEX_CMD_MASK = 0x7F
FUTEX_WAIT, FUTEX_LOCK_PI, FUTEX_WAIT_BITSET, FUTEX_WAIT_REQUEUE_PI, FUTEX_LOCK_PI2 = 0, 6, 9, 11, 13
FUTEX_WAITS = frozenset({FUTEX_WAIT, FUTEX_WAIT_BITSET, FUTEX_WAIT_REQUEUE_PI})
FUTEX_PI_LOCKS = frozenset({FUTEX_LOCK_PI, FUTEX_LOCK_PI2})
FUTEX_SHARED = 128                # new_sem.private of a process-shared semaphore
FUTEX_PRIVATE_FLAG = 128          # in the op: the word is private to the process (linux/futex.h)
FUTEX_TID_MASK = 0x3FFFFFFF       # PI futex word: owner TID | WAITERS | OWNER_DIED

# pthread_mutex_t (40 bytes): __lock@0 __count@4 __owner@8 __nusers@12 __kind@16
MUTEX_SIZE, MUTEX_OWNER, MUTEX_COUNT, MUTEX_KIND = 40, 8, 4, 16
MUTEX_KINDS = {0: "normal", 1: "recursive", 2: "errorcheck", 3: "adaptive"}
MUTEX_ROBUST, MUTEX_PI = 16, 32
MUTEX_KIND_LIMIT = 1024        # type, robust, PI, PP, pshared, elision bits: all below
FUTEX_WAITERS, FUTEX_OWNER_DIED = 1 << 31, 1 << 30
# When FUTEX_LOCK_PI fails with EDEADLK (the kernel walked the PI chain and
# found a cycle) or ESRCH, glibc parks the thread forever on a zero word on
# its own stack (nptl/pthread_mutex_lock.c, "Delay the thread indefinitely",
# glibc 2.18-2.40).  The mutex is then only found in the thread's callee-saved
# registers or stack slots: glibc 2.36 keeps &mutex->__data.__kind live in r14
# across that wait, so a candidate may point at the mutex or at its __kind.
PARKED_WORD_NEAR_RSP = 4096       # the parked word is a local of the locking frame
PARKED_STACK_SCAN = 512           # bytes above rsp searched for the mutex pointer
PARKED_REGISTERS = ("rbx", "rbp", "r12", "r13", "r14", "r15")
PARKED_POINTER_OFFSETS = (0, MUTEX_KIND)
# pthread_rwlock_t (56 bytes): readers wait on +8 (__wrphase_futex), writers on +12
# (__writers_futex); the writer's TID is __cur_writer@24; readers are not recorded.
RWLOCK_WAIT_OFFSETS = {8: "reader", 12: "writer"}
RWLOCK_CUR_WRITER = 24
# pthread_join waits on &pd->tid with the joined thread's TID as the expected
# value; where tid lies in struct pthread is read from libc's descriptors
# (runtimes/glibc_threads.py).

# ld.so's _rtld_global: the loader's recursive mutexes, by offset per glibc release
# (elf/rtld.c struct rtld_global): offset -> (name, glibc releases)
RTLD_GLOBAL_SYMBOLS = ("_rtld_global", "_rtld_local")
RTLD_LOCKS: dict[int, str] = {
    2312: "_dl_load_lock",          # 2.31
    2352: "_dl_load_write_lock",
    2440: "_dl_load_lock",          # 2.32-2.34
    2480: "_dl_load_write_lock",
    2568: "_dl_load_lock",          # 2.35-2.39
    2608: "_dl_load_write_lock",
    2648: "_dl_load_tls_lock",
}

# Frame names, as classify._norm spells them (glibc's internal aliases and
# symbol versions folded: __new_sem_wait_slow64 -> sem_wait,
# __pthread_clockjoin_ex -> pthread_clockjoin, ___pthread_mutex_lock ->
# pthread_mutex_lock).  The public ones are exported, so they name frames
# without debug info too.  A wait is taken for a kind of lock only when a
# frame says so or the lock's own fields are consistent with it.
MUTEX_FRAMES = frozenset({"pthread_mutex_lock", "pthread_mutex_timedlock",
                          "pthread_mutex_clocklock", "pthread_mutex_cond_lock",
                          "lll_lock_wait", "lll_robust_lock_wait"})
RWLOCK_READ_FRAMES = frozenset({"pthread_rwlock_rdlock", "pthread_rwlock_timedrdlock",
                                "pthread_rwlock_clockrdlock"})
RWLOCK_WRITE_FRAMES = frozenset({"pthread_rwlock_wrlock", "pthread_rwlock_timedwrlock",
                                 "pthread_rwlock_clockwrlock"})
RWLOCK_FRAMES = RWLOCK_READ_FRAMES | RWLOCK_WRITE_FRAMES
SEMAPHORE_FRAMES = frozenset({"sem_wait", "sem_timedwait", "sem_clockwait"})
JOIN_FRAMES = frozenset({"pthread_join", "pthread_timedjoin", "pthread_clockjoin"})
# Waits with no owner to find, named by their frames: kind per frame name.
FRAME_KINDS: tuple[tuple[str, str], ...] = (
    ("pthread_cond_wait", "condvar"), ("pthread_cond_timedwait", "condvar"),
    ("pthread_cond_clockwait", "condvar"), ("pthread_barrier_wait", "barrier"),
    # a signaller waiting for the old group's waiters to leave (glibc 2.25+
    # __condvar_quiesce_and_switch_g1): brief, and owned by no one
    ("pthread_cond_signal", "condvar"), ("pthread_cond_broadcast", "condvar"),
    ("lll_lock_wait_private", "lock"),
) + tuple((f, "join") for f in sorted(JOIN_FRAMES)) \
  + tuple((f, "mutex") for f in sorted(MUTEX_FRAMES)) \
  + tuple((f, "rwlock") for f in sorted(RWLOCK_FRAMES))
FRAMES_LOOKED_AT = 8            # the lock call is within the first frames of a wait

# Waits that ought to have an owner, or whose owner cannot be ruled out:
# blocked on one without a timeout and with no owner found, the verdict is
# "unknown" rather than "no-deadlock".  Condition variables and barriers are
# not here: they wait for an event any thread may bring, and idle pools wait
# on them in every healthy process.
OWNERLESS_UNKNOWN = {
    "semaphore": "a semaphore has no owner: any thread may post it",
    "futex": "a futex word no rule recognised: its owner is not recorded",
    "lock": "a glibc-internal lock (stdio, malloc, the loader's private locks) records "
            "no owner",
    "mutex": "the mutex records no owner (__owner = 0)",
    "rwlock": "readers hold the rwlock and glibc does not record readers",
    # CPython (locks/python_waits.py)
    "gil": "the GIL is locked but its last_holder is no thread state of the process, or "
           "the GIL is changing hands",
    "py-lock": "a threading.Lock records no owner, and no active 'with' on a Python frame "
               "shows who took it (acquire() by hand, or taken from C)",
    "py-rlock": "the RLock's rlock_owner is no thread state of the process",
    "py-join": "the joined thread's state lock has no thread state that owns it",
    "py-semaphore": "a threading.Semaphore has no owner: any thread may release it",
}
# What deadlock-graph says of an RLock owner (a pthread_t) whose descriptor
# reads tid 0: the thread ended here holding it, or was a thread of the parent
# whose descriptor glibc's fork() reclaimed in the child.
FORK_RECLAIMED = "its descriptor here reads tid 0"
# ... and how that thread ended, when its descriptor says (glibc_threads.ended).
THREAD_ENDED = {
    "forked": (f"{FORK_RECLAIMED} and its cancelhandling has no EXITING bit: it never "
               "exited -- glibc's fork() reclaimed it in this process, a thread of the parent "
               "that held the lock when fork() copied the process"),
    "exited": (f"{FORK_RECLAIMED} and its cancelhandling has the EXITING bit: that thread "
               "returned (or was cancelled) holding the lock"),
    "joined": ("its descriptor here reads tid -1 (pthread_join's mark): that thread exited "
               "holding the lock and was joined"),
}
# Python waits that end when another thread notifies them (threading.Condition
# under Event, Barrier, queue.Queue): like a condition variable, no owner and
# no "unknown" -- idle workers wait so in every healthy process.
NOTIFY_WAITS = {
    "py-condition": "a threading.Condition wait ends when another thread notifies it: no "
                    "thread holds it",
}
# OpenMP runtimes: a team is the threads the runtime started (their start
# routine lies in the runtime's object), else the threads with its frames.
OPENMP_RUNTIMES = {r"/libgomp\.so": "GNU libgomp", r"/libomp\.so": "LLVM libomp",
                   r"/libiomp5\.so": "Intel libiomp5"}
# Start routines that name the runtime that made a thread (names only where
# the object has symbols: Debian's libgomp and libomp are stripped, and then
# the object alone says it).
THREAD_STARTS = {"gomp_thread_start": "GNU libgomp worker",
                 "__kmp_launch_worker": "LLVM/Intel OpenMP worker",
                 "__kmp_launch_monitor": "LLVM/Intel OpenMP monitor",
                 "blas_thread_server": "OpenBLAS worker",
                 "pythread_wrapper": "CPython thread"}
# Objects whose frames are "the system", not the user's wait site.
RUNTIME_OBJECTS = (r"/libc\.so", r"/libc-2\.", r"/ld-linux", r"/libpthread",
                   r"linux-vdso") + tuple(OPENMP_RUNTIMES)
# Locks whose owner is recorded: the edge reads "held by" rather than "waiting for".
HELD_KINDS = frozenset({"mutex", "loader-lock", "rwlock", "gil", "py-lock", "py-rlock"})
# Frames showing a thread is inside the dynamic loader, holding its lock.
LOADER_FRAMES = ("dlopen", "dlmopen", "_dl_open", "dl_open_worker", "_dl_init", "call_init",
                 "_dl_catch_exception", "dlclose", "_dl_close", "_dl_fini")

# libgomp's gomp_barrier_t (config/linux/bar.h, GCC 4.9-14): total is
# aligned(64) at +0, generation at +4, awaited aligned(64) at +64 (counts
# down at team barriers), awaited_final at +68 (counts down at the barrier
# that ends a parallel region).  Waiters futex-wait on &generation, so the
# barrier's base is the futex word - 4.  Checked on libgomp1 12.2 (Debian 12).
GOMP_BARRIER_FUTEX_FIELD = 4
GOMP_BARRIER_TOTAL = 0
GOMP_BARRIER_AWAITED = 64
GOMP_BARRIER_AWAITED_FINAL = 68
