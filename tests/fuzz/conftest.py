"""Counts the fuzz cases executed (across xdist workers) and prints
"fuzz: N cases, M failures" at the end of a run that collected tests/fuzz."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from tests.fuzz import common

# Hypothesis keeps caches under .hypothesis/ in the working directory; keep
# anything it writes under build/ instead of the source tree.
set_hypothesis_home_dir(Path(__file__).resolve().parents[2] / "build" / "hypothesis")

_KEY = "gdbext_fuzz_cases"


def pytest_sessionfinish(session):
    output = getattr(session.config, "workeroutput", None)
    if output is not None:                  # an xdist worker: hand the count to the controller
        output[_KEY] = common.CASES[0]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    common.CASES[0] += getattr(node, "workeroutput", {}).get(_KEY, 0)


def pytest_terminal_summary(terminalreporter):
    if not common.CASES[0]:
        return
    failed = [r for kind in ("failed", "error") for r in terminalreporter.stats.get(kind, [])
              if "tests/fuzz/" in getattr(r, "nodeid", "")]
    terminalreporter.write_line(f"fuzz: {common.CASES[0]} cases, {len(failed)} failures "
                                f"({common.EXAMPLES} examples per test and weight)")
