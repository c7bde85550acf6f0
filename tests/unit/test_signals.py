"""Signal and si_code names against the C library's own headers."""
from __future__ import annotations

import signal
import subprocess

import pytest

from gdbext.knowledge.signals import CODES, GENERIC_CODES, SIGNALS, code_name


def test_signal_numbers_match_python():
    for number, name in SIGNALS.items():
        if hasattr(signal, name):
            assert getattr(signal, name) == number, name


@pytest.fixture(scope="module")
def c_constants(tmp_path_factory) -> dict[str, int]:
    names = [n for table in CODES.values() for n in table.values()] + list(GENERIC_CODES.values())
    d = tmp_path_factory.mktemp("sigcodes")
    body = "".join(f'#ifdef {n}\n printf("{n} %d\\n", (int){n});\n#endif\n' for n in names)
    (d / "codes.c").write_text("#define _GNU_SOURCE\n#include <signal.h>\n#include <stdio.h>\n"
                               f"int main(void) {{\n{body} return 0;\n}}\n")
    subprocess.run(["gcc", "-o", str(d / "codes"), str(d / "codes.c")], check=True)
    out = subprocess.run([str(d / "codes")], capture_output=True, text=True, check=True).stdout
    return {n: int(v) for n, v in (line.split() for line in out.splitlines())}


def test_code_names_match_glibc_headers(c_constants):
    assert len(c_constants) >= 30
    for signame, table in CODES.items():
        for value, name in table.items():
            if name in c_constants:
                assert c_constants[name] == value, name
                assert code_name(getattr(signal, signame), value) == name


def test_generic_codes():
    assert code_name(signal.SIGSEGV, 0x80) == "SI_KERNEL"
    assert code_name(signal.SIGILL, 2) == "ILL_ILLOPN"
    assert code_name(signal.SIGILL, -6) == "SI_TKILL"
