"""The signature skip list (knowledge/skip_frames.py): the runtime's
machinery is skipped whole-name, and a program's own function that merely
starts like one (abort_transaction, free_list) is not."""
from __future__ import annotations

import pytest

from gdbext.knowledge.skip_frames import is_machinery
from gdbext.triage.signature import meaningful_frames, normalise_function

# Frame names gdb 13 printed for g++ 12 / libstdc++ programs reaching std::terminate
# (std::thread, std::rethrow_exception, std::throw_with_nested, a noexcept function).
CXX_MACHINERY = [
    "std::terminate()", "__cxxabiv1::__terminate(void (*)())", "__cxa_throw",
    "__cxa_rethrow", "__cxa_pure_virtual", "__cxa_call_terminate", "__gxx_personality_v0",
    "_Unwind_RaiseException", "_Unwind_RaiseException_Phase2",
    "__gnu_cxx::__verbose_terminate_handler()",
    "std::rethrow_exception(std::__exception_ptr::exception_ptr)",
    "std::__exception_ptr::exception_ptr::_M_release()",
    "std::__throw_with_nested_impl<std::runtime_error>(std::runtime_error&&)",
    "void std::throw_with_nested<std::runtime_error>(std::runtime_error&&)",
    "std::__invoke_impl<void, void (*)()>(std::__invoke_other, void (*&&)())",
    "std::__invoke<void (*)()>(void (*&&)())",
    "std::thread::_Invoker<std::tuple<void (*)()> >::_M_invoke<0ul>(std::_Index_tuple<0ul>)",
    "std::thread::_State_impl<std::thread::_Invoker<std::tuple<void (*)()> > >::_M_run()",
    "execute_native_thread_routine", "std::__throw_out_of_range_fmt(char const*, ...)",
]


@pytest.mark.parametrize("name", CXX_MACHINERY)
def test_cxx_terminate_machinery_is_skipped(name):
    assert is_machinery(normalise_function(name)), normalise_function(name)


@pytest.mark.parametrize("name", ["abort_transaction", "raise_salary", "free_list",
                                  "malloc_arena_stats", "stdx::terminate_all",
                                  "corestats::flush", "allocator_pool::grow",
                                  "rollback_guard::~rollback_guard", "shape::log_area",
                                  "deliver_result", "connect_db"])
def test_a_program_function_that_starts_like_machinery_is_kept(name):
    assert not is_machinery(name)


@pytest.mark.parametrize("name", [
    "core::cell::panic_already_borrowed", "core::ptr::drop_in_place<dropunwind::Txn>",
    "alloc::raw_vec::finish_grow", "std::alloc::rust_oom",
    "std::function<void ()>::operator()", "std::__basic_future<int>::_M_get_result",
    "std::vector<int, std::allocator<int> >::operator[]", "__gnu_cxx::__ops::__iter_less_iter"])
def test_the_standard_libraries_code_is_machinery(name):
    """Rust's core/alloc/std and libstdc++'s templates compiled into the
    program (names from real g++ 12 and rustc 1.95 backtraces)."""
    assert is_machinery(normalise_function(name))


def test_user_frame_tops_a_rethrow_stack():
    frames = [(None, "/lib/x86_64-linux-gnu/libc.so.6"), ("raise", "/lib/libc.so.6"),
              ("abort", "/lib/libc.so.6"), ("std::terminate()", None),
              ("std::rethrow_exception(std::__exception_ptr::exception_ptr)", None),
              ("deliver_result()", "/bin/prog"), ("main", "/bin/prog")]
    assert [f.function for f in meaningful_frames(frames, 3)] == ["deliver_result", "main"]
