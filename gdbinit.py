# gdbext loader for a checkout: `source /path/to/gdbext/gdbinit.py` in gdb.
#
# A shim: the loader is gdbext/gdbinit.py, inside the package, so that an
# installed wheel carries it too (`gdbext gdbinit` prints its line).  Sourcing
# this file twice is harmless.
try:
    __file__
except NameError:  # `python exec(open(...).read())`: guessing the cwd would import from it
    import gdb
    gdb.write("gdbext: load it with `source /path/to/gdbinit.py` (where it is cannot be "
              "told otherwise, and the current directory is never trusted)\n", gdb.STDERR)
else:
    def _gdbext_shim(here):
        # The loader as a module of its own: gdb's __main__ keeps only what it had.
        import importlib.util
        import os
        loader = os.path.join(os.path.dirname(os.path.realpath(os.path.expanduser(here))),
                              "gdbext", "gdbinit.py")
        spec = importlib.util.spec_from_file_location("_gdbext_loader", loader)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.main(loader)

    _gdbext_shim(__file__)
    del _gdbext_shim
