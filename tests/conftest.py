"""The vacuity check's selection (scripts/vacuity-check, tests/host.VACUITY)."""
from __future__ import annotations

from tests.host import VACUITY


def pytest_collection_modifyitems(config, items):
    """In the "missing" run, leave out the negative tests whose answer needs
    no package -- usage errors, which gdbext's argument parsing refuses
    before it imports anything (`negative(answered_without_packages=True)`):
    they answer rightly there, and the "unloaded" run proves they can fail."""
    if VACUITY != "missing":
        return
    kept, left = [], []
    for item in items:
        exempt = any(m.kwargs.get("answered_without_packages")
                     for m in item.iter_markers("negative"))
        (left if exempt else kept).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept
