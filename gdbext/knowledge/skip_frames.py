"""Frames a crash signature skips: the machinery every crash of a kind goes
through on its way to abort, whatever the bug.  Like Socorro's "irrelevant"
and "prefix" lists (socorro/signature/siglists/), matched against the
normalised function name (no parameters, no Rust hash).  Objects (libc,
ld.so, libstdc++, libgcc_s...) are skipped whole in knowledge/triage.py.

A runtime statically linked into the program (Rust std, a static libstdc++)
is only recognisable by name, hence most of these.
"""
from __future__ import annotations

import re

SKIP_FUNCTION_PATTERNS = (
    # glibc: abort and raise, the malloc checks, assert, fortify, the stack protector
    r"abort", r"raise", r"__GI_raise", r"__GI_abort", r"pthread_kill", r"__pthread_kill.*",
    r"__libc_message", r"malloc_printerr", r"_int_(?:free|malloc|realloc|memalign)",
    r"__libc_(?:free|malloc|realloc|calloc)", r"free", r"malloc", r"realloc", r"calloc",
    r"tcache_.*", r"__assert_fail(?:_base)?", r"__assert_perror_fail", r"__fortify_fail",
    r"__chk_fail", r"__stack_chk_fail(?:_local)?", r"__\w+_chk",
    # libstdc++ / libsupc++: terminate and the throw path
    r"std::terminate", r"__cxxabiv1::__terminate", r"__cxa_\w+",
    r"__gnu_cxx::__verbose_terminate_handler", r"_Unwind_\w+",
    r"__cxxabiv1::__\w+", r"__gxx_personality_\w+", r"_Unwind_RaiseException_Phase2",
    r"std::rethrow_exception", r"std::__exception_ptr::.*", r"std::current_exception",
    r"std::throw_with_nested<.*>", r"std::__throw_with_nested_impl<.*>",
    r"std::rethrow_if_nested<.*>", r"std::__rethrow_if_nested_impl<.*>",
    r"std::nested_exception::rethrow_nested", r"std::__throw_\w+",
    # std::thread's entry: header templates inlined into the program, libstdc++'s routine
    r"std::__invoke(?:_impl|_r)?<.*>", r"execute_native_thread_routine",
    # The standard libraries themselves: libstdc++'s header templates compiled
    # into the program (std::function::operator(), std::future::get,
    # std::vector::operator[] under _GLIBCXX_ASSERTIONS) and Rust's core, alloc
    # and std crates (RefCell::borrow_mut, drop_in_place, the thread start-up
    # closures): the bug is in the caller, whichever container it misused.
    r"std::.*", r"__gnu_cxx::.*", r"core::.*", r"alloc::.*",
    # Rust std and core: the panic path, abort, the stack-overflow handler
    r"core::panicking::.*", r"std::panicking::.*", r"std::rt::.*", r"panic_abort::.*",
    r"__rust_\w+", r"__rustc::.*", r"rust_panic", r"rust_begin_unwind",
    r"std::sys::.*", r"std::sys_common::.*", r"std::process::abort",
    r"core::option::(?:unwrap|expect)_failed",
    r"core::result::unwrap_failed", r"core::ops::function::.*", r"core::slice::index::.*",
    r"std::thread::.*", r"core::intrinsics::.*", r"std::panic::(?:panic_any|resume_unwind)\b.*",
    # CPython's fatal-error helpers and faulthandler
    r"Py_FatalError", r"_Py_FatalError\w*", r"fatal_error(?:_exit)?", r"faulthandler_\w+",
    # signal-handler machinery
    r"__restore_rt", r"<signal handler called>",
    # sanitizers' reporting
    r"__sanitizer::.*", r"__asan::.*", r"__ubsan::.*",
)
# One group around the alternation: \Z must end every pattern, or "abort" would
# skip a program's abort_transaction and "free" its free_list.
SKIP_FUNCTIONS = re.compile("(?:" + "|".join(f"(?:{p})" for p in SKIP_FUNCTION_PATTERNS)
                            + r")\Z")

# Objects of language runtimes a signature skips, besides knowledge/triage.py's.
SKIP_OBJECT_PATTERNS = (r"/libffi\.so", r"/_ctypes[^/]*\.so", r"/libpython3\.\d+",
                        r"/libasan\.so", r"/libubsan\.so")


def is_machinery(function: str) -> bool:
    return bool(SKIP_FUNCTIONS.match(function))


# Python files of the standard library: /usr/lib/python3.11/ctypes/__init__.py,
# ~/.pyenv/versions/3.11.7/lib/python3.11/threading.py; not site-/dist-packages.
PYTHON_STDLIB = re.compile(r"/lib/python3(?:\.\d+)?/(?!(?:site|dist)-packages/)(.+)$")


# Rust std/core/alloc and libstdc++'s header templates compiled into the
# program (std::mutex::lock, Mutex<T>::lock...): a wait site is their
# caller, the program's frame (deadlock-graph)
STD_LIBRARY_FRAME = re.compile(r"(?:std|core|alloc|__gnu_cxx)(?:\[[0-9a-f]+\])?::"
                               r"|<(?:std|core|alloc)::"
                               r"|__gthread_\w+\Z")   # libstdc++'s gthr-default.h wrappers
