"""glibc's internal spellings of the wait calls fold to the public names the
rules know.  The spellings are the frames gdb showed with libc6-dbg on
glibc 2.36 (sem_wait, sem_timedwait, sem_clockwait, pthread_join, mutexes,
condvars) and a C++ start routine with its arguments."""
from __future__ import annotations

import pytest

from gdbext.knowledge import blocking as kb
from gdbext.locks.classify import _norm

SEEN = {
    "__new_sem_wait": "sem_wait", "__new_sem_wait_slow64": "sem_wait",
    "sem_wait@@GLIBC_2.34": "sem_wait", "___sem_timedwait64": "sem_timedwait",
    "___sem_clockwait64": "sem_clockwait", "__old_sem_wait": "sem_wait",
    "___pthread_cond_wait": "pthread_cond_wait",
    "__pthread_cond_wait_common": "pthread_cond_wait",
    "__pthread_cond_timedwait64": "pthread_cond_timedwait",
    "__pthread_clockjoin_ex": "pthread_clockjoin", "pthread_timedjoin_np": "pthread_timedjoin",
    "__GI___pthread_mutex_lock": "pthread_mutex_lock", "__lll_lock_wait": "lll_lock_wait",
    "__pthread_mutex_cond_lock": "pthread_mutex_cond_lock",
    "__pthread_rwlock_rdlock_full64": "pthread_rwlock_rdlock",
    "__kmp_launch_worker(void*)": "kmp_launch_worker",
}


@pytest.mark.parametrize("spelling, public", sorted(SEEN.items()))
def test_spellings_fold_to_the_public_name(spelling, public):
    assert _norm(spelling) == public


def test_every_rule_name_is_already_folded():
    names = (kb.MUTEX_FRAMES | kb.RWLOCK_FRAMES | kb.SEMAPHORE_FRAMES | kb.JOIN_FRAMES
             | {fn for fn, _ in kb.FRAME_KINDS})
    assert {n for n in names if _norm(n) != n} == set()
