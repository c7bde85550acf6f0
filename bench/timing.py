"""The one timing rule of the benches: the best wall time of REPEAT runs."""
from __future__ import annotations

import subprocess
import time


def best(fn, repeat: int) -> float:
    """Fastest of ``repeat`` calls of ``fn()``, in seconds."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def best_run(argv: list[str], repeat: int) -> float:
    """Fastest of ``repeat`` runs of the command ``argv``, output discarded."""
    return best(lambda: subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL),
                repeat)
