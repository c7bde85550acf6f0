"""python -m gdbext: the batch command line (see gdbext.cli)."""
import sys

from .cli import main

sys.exit(main())
