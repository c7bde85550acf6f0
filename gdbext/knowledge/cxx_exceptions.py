"""libstdc++'s standard exceptions whose what() is not a stored message.

Read only for the exact (most derived) type named by the thrown object's
type_info: a user class deriving from one of these may override what(), so
a derived type gets its what() from its own code instead (a function that
returns one constant string, decoded; runtimes/cxx.py).  Each text is the
string literal the cited libstdc++ source returns (GCC 7-14), and each was
checked against ``e.what()`` printed by a g++ 12 program (tests/e2e/
test_cxx_what.py builds it: the program is the oracle, not this table).
"""
from __future__ import annotations

# mangled type name (type_info::name()) -> what()
CONSTANT_WHAT = {
    "St9exception": "std::exception",                   # libsupc++/eh_exception.cc
    "St13bad_exception": "std::bad_exception",          # libsupc++/eh_exception.cc
    "St9bad_alloc": "std::bad_alloc",                   # libsupc++/new_handler.cc
    "St20bad_array_new_length": "std::bad_array_new_length",  # libsupc++/bad_array_new.cc
    "St8bad_cast": "std::bad_cast",                     # libsupc++/bad_cast.cc
    "St10bad_typeid": "std::bad_typeid",                # libsupc++/bad_typeid.cc
    "St17bad_function_call": "bad_function_call",       # src/c++11/functional.cc
    "St12bad_weak_ptr": "bad_weak_ptr",                 # src/c++11/shared_ptr.cc
    "St19bad_optional_access": "bad optional access",   # include/std/optional (inline)
    "St12bad_any_cast": "bad any_cast",                 # include/std/any (inline)
}

# bad_variant_access { vptr; const char *_M_reason; }: what() returns
# _M_reason ("bad variant access" by default, "std::get: wrong index for
# variant" from std::get...; include/std/variant, GCC 8-14)
REASON_POINTER = {"St18bad_variant_access": 8}

# std::error_code { int _M_value; const error_category *_M_cat; } right after
# a runtime_error / logic_error base (vptr + __cow_string: 16 bytes):
# system_error (include/std/system_error; its children ios_base::failure
# [abi:cxx11], filesystem_error) and future_error (include/std/future).
ERROR_CODE_AT = {"St12system_error": 16, "St12future_error": 16}

# libstdc++'s exported what() functions that return the stored message at
# object+8 (a COW string: one pointer to the characters).  A vtable whose
# what slot is another function overrides what() (filesystem_error keeps
# its text elsewhere).
MESSAGE_WHAT = (
    "_ZNKSt13runtime_error4whatEv",     # src/c++98/stdexcept.cc: _M_msg.c_str()
    "_ZNKSt11logic_error4whatEv",       # src/c++98/stdexcept.cc
    "_ZNKSt12future_error4whatEv",      # src/c++11/future.cc: logic_error::what()
    "_ZNKSt8ios_base7failureB5cxx114whatEv",   # src/c++11/cxx11-ios_failure.cc:
                                        # runtime_error::what()
    "_ZNKSt8ios_base7failure4whatEv",   # src/c++98/ios_failure.cc (old ABI; derives
                                        # std::exception, _M_msg after the vptr)
)
MESSAGE_TYPES = {"St8ios_base7failure": "std::ios_base::failure"}   # old-ABI failure

# Virtual slots (Itanium C++ ABI 2.5.2: declaration order, a virtual
# destructor takes two slots, complete then deleting):
WHAT_SLOT = 2       # std::exception: ~exception, what (libsupc++/exception.h)
NAME_SLOT = 2       # std::error_category: ~error_category, name (system_error)
