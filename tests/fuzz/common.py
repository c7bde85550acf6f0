"""What every fuzz test shares: how many examples, the hypothesis settings,
the count of executed cases and a watchdog against endless loops.

GDBEXT_FUZZ_EXAMPLES sets the examples per test (weighted per test by cost),
small by default so tests/fuzz takes seconds inside ``make test``;
``make fuzz`` raises it past 100,000 cases in all.  The short run is
derandomized (the same cases every time, CI is not flaky); GDBEXT_FUZZ_RANDOM=1
draws new ones.  No example database: nothing is written outside build/.
"""
from __future__ import annotations

import functools
import os
import signal

from hypothesis import HealthCheck, Phase, given, settings

EXAMPLES = int(os.environ.get("GDBEXT_FUZZ_EXAMPLES", "30"))
RANDOM = os.environ.get("GDBEXT_FUZZ_RANDOM") == "1"
# GDBEXT_FUZZ_EXPLICIT=0 skips the @example regressions: does the search alone find them?
EXPLICIT = os.environ.get("GDBEXT_FUZZ_EXPLICIT") != "0"
WATCHDOG_SECONDS = 20               # one case taking this long is a hang, not slowness

CASES = [0]                         # examples executed by this process (a worker under xdist)


class Hang(Exception):
    """One case ran longer than WATCHDOG_SECONDS: a parser looping without bound."""


def _alarm(_signum, _frame):
    raise Hang(f"one case ran for more than {WATCHDOG_SECONDS} s")


def fuzz(*strategies, weight: float = 1.0, **named):
    """@given with the project's settings; every executed example is counted and
    runs under a SIGALRM watchdog."""
    def decorate(test):
        @functools.wraps(test)
        def counted(*args, **kwargs):
            CASES[0] += 1
            previous = signal.signal(signal.SIGALRM, _alarm)
            signal.alarm(WATCHDOG_SECONDS)
            try:
                return test(*args, **kwargs)
            finally:
                signal.alarm(0)
                signal.signal(signal.SIGALRM, previous)
        return settings(
            max_examples=max(1, round(EXAMPLES * weight)),
            derandomize=not RANDOM,
            database=None,
            deadline=None,
            print_blob=True,
            phases=[p for p in Phase if EXPLICIT or p != Phase.explicit],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                   HealthCheck.filter_too_much, HealthCheck.large_base_example],
        )(given(*strategies, **named)(counted))
    return decorate


# --- mutations of a well-formed input ---------------------------------------

INTERESTING = (0, 1, 2, 3, 4, 7, 8, 12, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000,
               0xFFFFFFFF, 1 << 32, 1 << 63, (1 << 64) - 1)


def mutations(st, *, max_mutations: int = 4):
    """A list of edits to apply to bytes (see mutate): positions are fractions
    of the length so they land anywhere whatever the input's size."""
    where = st.floats(0, 1, allow_nan=False)
    edit = st.one_of(
        st.tuples(st.just("truncate"), where, st.just(0)),
        st.tuples(st.just("flip"), where, st.integers(0, 255)),
        st.tuples(st.just("u32"), where, st.sampled_from(INTERESTING) | st.integers(0, 2**32 - 1)),
        st.tuples(st.just("u64"), where, st.sampled_from(INTERESTING)),
        st.tuples(st.just("u16"), where, st.sampled_from((0, 1, 0xFFFF, 56, 64, 0x8000))),
        st.tuples(st.just("insert"), where, st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("delete"), where, st.integers(1, 16)),
    )
    return st.lists(edit, max_size=max_mutations)


def mutate(data: bytes, edits) -> bytes:
    out = bytearray(data)
    for kind, where, value in edits:
        at = min(int(where * len(out)), max(len(out) - 1, 0))
        if kind == "truncate":
            del out[at:]
        elif kind == "flip" and out:
            out[at] ^= value or 1
        elif kind in ("u16", "u32", "u64"):
            size = {"u16": 2, "u32": 4, "u64": 8}[kind]
            out[at:at + size] = (value & ((1 << 8 * size) - 1)).to_bytes(size, "little")
        elif kind == "insert":
            out[at:at] = value
        elif kind == "delete":
            del out[at:at + value]
    return bytes(out)
