"""libstdc++'s standard exceptions uncaught: what() of the types whose text
is a constant (knowledge/cxx_exceptions.py), bad_variant_access's reason,
a user class whose what() returns a literal, std::system_error's and
std::future_error's error code and category, and filesystem_error (which
overrides what(): unknown, never the base's stored message).

Oracles: fixtures/everyday/whats (a g++ program printing each standard
exception's e.what()) for the table; libstdc++'s verbose terminate handler
on stderr for each crash; the code value and category name the program
printed before it threw.  Kernel cores of the -O1 -g build and of an -O2
stripped build, with and without glibc debug info."""
from __future__ import annotations

import errno
import re

import pytest

from gdbext.knowledge import cxx_exceptions
from tests.e2e import everyday
from tests.e2e.test_everyday import triage
from tests.host import FIXTURES, run

pytestmark = pytest.mark.xdist_group("everyday-corpus")
WHATS = FIXTURES / "everyday" / "whats"
MODES = ["bad-alloc", "variant", "optional", "weak-ptr", "system-error", "future-error",
         "user-constant"]
BUILDS = ["uncaught", "uncaught_stripped"]


def test_table_matches_what_libstdcxx_returns():
    if not WHATS.exists():
        pytest.skip(f"{WHATS} was not built (make setup)")
    printed = {}
    for line in run([str(WHATS)]).stdout.splitlines():
        mangled, what = line.split("\t", 1)
        printed.setdefault(mangled, []).append(what)
    for mangled, text in cxx_exceptions.CONSTANT_WHAT.items():
        assert printed.get(mangled) == [text], (mangled, printed.get(mangled))
    # bad_variant_access: the reason std::get gives, then the default one
    assert printed["St18bad_variant_access"] == ["std::get: wrong index for variant",
                                                 "bad variant access"]


@pytest.fixture(scope="module")
def crashes(tmp_path_factory):
    out = {}
    base = tmp_path_factory.mktemp("cxx-what")
    for build in BUILDS:
        for mode in MODES + ["fs-error"]:
            case = everyday.Case(f"{build}-{mode}", (build, mode), everyday.A, mode)
            out[(build, mode)] = everyday.run_case(case, base / case.name)
    keys = list(out)
    cores = [out[k].core for k in keys]
    with_debug = triage(*cores, "--jobs", "2", "--no-summary")
    bare = triage(*cores, "--jobs", "2", "--no-summary",
                  "--debug-file-directory", "/nonexistent")
    return {k: (out[k], a, b) for k, a, b in zip(keys, with_debug, bare)}


def details(record) -> dict:
    assert record["status"] == "ok", record.get("error")
    t = record["triage"]
    assert t["verdict"] == "uncaught-exception", t["headline"]
    return t["reason"]["details"]


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("mode", MODES)
def test_what_as_libstdcxx_printed_it(crashes, build, mode):
    crash, *records = crashes[(build, mode)]
    f = crash.facts
    assert f["kind"] == "uncaught-exception" and f["what"], crash.stderr
    for record in records:                  # glibc debug info or none: the same
        d = details(record)
        assert d["type"] == f["type"]
        assert d["what"] == f["what"], (build, mode, d)
        assert f"uncaught {f['type']}: {f['what']}" in record["triage"]["headline"]
        if f["type"] in ("std::bad_alloc", "std::bad_optional_access", "std::bad_weak_ptr"):
            assert d["what_from"] == "libstdc++'s constant for this type"
        if mode == "user-constant":         # no table: its own code returns the literal
            assert d["what_from"].startswith("its what() returns a constant")


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("mode", ["system-error", "future-error"])
def test_error_code_and_category(crashes, build, mode):
    crash, *records = crashes[(build, mode)]
    printed = dict(re.findall(r"^(error_\w+)=(.*)$", crash.stdout, re.M))   # the program's
    for record in records:
        d = details(record)
        assert d["error"] == {"value": int(printed["error_value"]),
                              "category": printed["error_category"]}
        assert f"[{printed['error_category']}:{printed['error_value']}]" in \
            record["triage"]["headline"]


@pytest.mark.parametrize("build", BUILDS)
def test_overridden_what_is_unknown_not_the_base_message(crashes, build):
    """filesystem_error's what() is its own (paths appended): the stored
    system_error message is not what it returns, so it is not reported."""
    crash, *records = crashes[(build, "fs-error")]
    assert crash.facts["type"] == "std::filesystem::__cxx11::filesystem_error"
    assert "[/nonexistent/ledger.db]" in crash.facts["what"]    # libstdc++'s what()
    for record in records:
        d = details(record)
        assert d["type"] == crash.facts["type"]
        assert d["what"].startswith("unknown"), d
        assert d["error"]["value"] == errno.ENOENT      # the file the program asked for


def test_stripped_frames_are_module_plus_offset(crashes):
    """An unnamed frame of the stripped program signs as module+0xoffset:
    each offset is a return address in its .text (objdump: the instruction
    ending there is a call), and both debug-info settings sign alike."""
    exe = FIXTURES / "everyday" / "uncaught_stripped"
    text = re.search(r"\.text\s+PROGBITS\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)",
                     run(["readelf", "-SW", str(exe)]).stdout)
    start, size = int(text.group(1), 16), int(text.group(2), 16)
    # objdump's whole .text: each instruction's address and byte count
    ends = {}
    for m in re.finditer(r"^\s+([0-9a-f]+):\t((?:[0-9a-f]{2} )+)\s*\t(\S+)",
                         run(["objdump", "-d", "-j", ".text", str(exe)]).stdout, re.M):
        ends[int(m.group(1), 16) + len(m.group(2).split())] = m.group(3)
    for mode in MODES:
        crash, debug, bare = crashes[("uncaught_stripped", mode)]
        frames = debug["triage"]["signature"]["frames"]
        assert frames and all(re.fullmatch(r"uncaught_stripped\+0x[0-9a-f]+", f)
                              for f in frames), frames
        assert bare["triage"]["signature"] == debug["triage"]["signature"]
        assert debug["triage"]["headline"].startswith(f"crash-triage: SIGABRT in {frames[0]}:")
        for f in frames:
            offset = int(f.split("+")[1], 16)
            assert start <= offset < start + size
            assert ends.get(offset, "").startswith("call"), (f, ends.get(offset))
