"""What a library file says about itself: its version string and, when the
path shows it was installed by a Python package, that package's version.

Pure over files on disk.  OpenBLAS embeds "OpenBLAS <version> <build flags>"
(``openblas_get_config()``'s text, driver/others/openblas_get_config.c); a
wheel's bundled library sits in ``site-packages/<pkg>.libs/`` next to
``<pkg>-<version>.dist-info``.
"""
from __future__ import annotations

import os
import re

from .. import elf_file
from ..errors import GdbextError

VERSION_PATTERNS = {
    "OpenBLAS": re.compile(rb"OpenBLAS (\d+\.\d+\.\d+(?:\.[0-9a-z]+)*) "),
}
MAX_FILE = 1 << 28


def version_string(path: str, library: str) -> dict | None:
    """{"version", "source"} from the library's embedded string, or None."""
    pattern = VERSION_PATTERNS.get(library)
    if pattern is None:
        return None
    try:
        rodata = next((sec for sec in elf_file.sections(path) if sec.name == ".rodata"), None)
        if rodata is None or rodata.size > MAX_FILE:
            return None
        with open(path, "rb") as fh:
            fh.seek(rodata.offset)
            m = pattern.search(fh.read(rodata.size))
    except (OSError, GdbextError):
        return None
    if m is None:
        return None
    return {"version": m.group(1).decode(), "source": "the string embedded in the library"}


def python_package(path: str) -> dict | None:
    """{"name", "version", "metadata"} of the Python distribution whose
    directory holds ``path`` (``numpy.libs/`` or ``numpy/``), or None."""
    real = os.path.realpath(path)
    parts = real.split(os.sep)
    for i in range(len(parts) - 2, 0, -1):
        if parts[i] in ("site-packages", "dist-packages"):
            top = parts[i + 1] if i + 1 < len(parts) - 1 else None
            if top is None:
                return None
            name = top[:-5] if top.endswith(".libs") else top
            return _distribution(os.sep.join(parts[:i + 1]), name)
    return None


def _distribution(site: str, name: str) -> dict | None:
    wanted = name.lower().replace("-", "_")
    try:
        entries = os.listdir(site)
    except OSError:
        return None
    for entry in sorted(entries):
        m = re.match(r"(.+?)-(\d[^-]*?)\.(dist-info|egg-info)$", entry)
        if m and m.group(1).lower().replace("-", "_") == wanted:
            return {"name": m.group(1), "version": m.group(2),
                    "metadata": os.path.join(site, entry)}
    return None
