"""The loader's decisions without gdb: which layout, which Python a site-packages
belongs to, which compiled modules gdb's Python could not load, and the
~/.gdbinit edit."""
from __future__ import annotations

import re
import sys
from pathlib import Path

from gdbext import gdbinit as loader
from gdbext.cli import gdbinit as cli
from tests.host import REPO


def test_the_stand_ins_cover_every_command():
    names = set()
    for module in (REPO / "gdbext" / "commands").glob("*.py"):
        names |= set(re.findall(r'^    NAME = "([\w-]+)"$', module.read_text(), re.M))
    assert set(loader.COMMANDS) == names


def test_a_checkout_uses_its_venv_for_gdbs_minor_first(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "gdbinit.py").write_text("")
    for minor in ("3.12", "3.11"):
        (tmp_path / ".venv" / "lib" / f"python{minor}" / "site-packages").mkdir(parents=True)
    layout = loader.find_layout(str(tmp_path / "gdbext"), environ={}, running=(3, 11, 2))
    assert layout.checkout and layout.root == str(tmp_path)
    assert layout.site_dir.endswith("python3.11/site-packages")
    assert f"make -C {tmp_path} setup" in layout.fix("python3.11")


def _installed(tmp_path: Path, minor: str, cfg: str | None) -> loader.Layout:
    sp = tmp_path / "venv" / "lib" / f"python{minor}" / "site-packages"
    (sp / "gdbext").mkdir(parents=True)
    if cfg is not None:
        (tmp_path / "venv" / "pyvenv.cfg").write_text(cfg)
    return loader.find_layout(str(sp / "gdbext"), environ={})


def test_installed_for_reads_pyvenv_cfg_and_the_path(tmp_path):
    layout = _installed(tmp_path, "3.12", "home = /x/bin\nversion_info = 3.12.1.final.0\n")
    assert not layout.checkout and layout.venv == str(tmp_path / "venv")
    assert loader.installed_for(layout) == "3.12.1"
    message = loader.mismatch(layout, running=(3, 11, 2), python="/usr/bin/python3.11")
    assert message.startswith("gdbext: not loaded: ")
    assert "Python 3.12.1" in message and "Python 3.11.2" in message
    assert "/usr/bin/python3.11 -m venv DIR" in message and "\n" not in message
    assert "pip install GDBEXT-WHEEL" in message       # pip recorded no source
    info = Path(layout.site_dir) / "gdbext-0.1.0.dist-info"
    info.mkdir()
    (info / "direct_url.json").write_text('{"url": "file:///w/dist/gdbext-0.1.0-py3-none-any.whl"}')
    assert "pip install /w/dist/gdbext-0.1.0-py3-none-any.whl && DIR/bin/gdbext gdbinit " \
        "--install" in loader.mismatch(layout, running=(3, 11, 2))
    assert loader.mismatch(layout, running=(3, 12, 7)) is None


def test_the_path_decides_when_pyvenv_cfg_disagrees_or_is_missing(tmp_path):
    assert loader.installed_for(_installed(tmp_path / "a", "3.10", "version = 3.9.1\n")) == "3.10"
    assert loader.installed_for(_installed(tmp_path / "b", "3.13", None)) == "3.13"


def test_abi_tags_gdbs_python_cannot_load(tmp_path):
    layout = _installed(tmp_path, "3.11", None)
    iced = Path(layout.site_dir) / "iced_x86"
    iced.mkdir()
    suffixes = [".cpython-311-x86_64-linux-gnu.so", ".abi3.so", ".so"]
    for name in ("_a.abi3.so", "_b.cpython-311-x86_64-linux-gnu.so", "_c.so"):
        (iced / name).write_bytes(b"")
    assert loader.unloadable_modules(layout, suffixes) == []
    (iced / "_d.cpython-312-x86_64-linux-gnu.so").write_bytes(b"")
    assert loader.unloadable_modules(layout, suffixes) == ["_d.cpython-312-x86_64-linux-gnu.so"]
    assert "_d.cpython-312" in loader.mismatch(layout, running=(3, 11, 2), suffixes=suffixes)


def test_install_is_idempotent_and_keeps_what_was_there(tmp_path):
    init = tmp_path / ".gdbinit"
    init.write_text("set history save on")
    line = "source /v/lib/python3.11/site-packages/gdbext/gdbinit.py"
    assert cli.install(init, line) == (True, f"added to {init}: {line}")
    assert cli.install(init, line)[0] is True
    assert init.read_text() == f"set history save on\n{line}\n"
    ok, what = cli.install(init, "source /w/lib/python3.11/site-packages/gdbext/gdbinit.py")
    assert not ok and "already loads another gdbext" in what
    assert init.read_text() == f"set history save on\n{line}\n"


def test_the_checkout_shim_counts_as_a_loader():
    assert cli.loads_gdbext(f"source {REPO / 'gdbinit.py'}") == str(REPO / "gdbinit.py")
    assert cli.loads_gdbext("source ~/other/gdbinit.py") is None
    assert cli.loads_gdbext("set pagination off") is None


def test_the_printed_line_names_this_package():
    assert loader.gdbinit_line() == f"source {REPO / 'gdbext' / 'gdbinit.py'}"
    assert sys.modules["gdbext.gdbinit"].__file__.endswith("gdbinit.py")
