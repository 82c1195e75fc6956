"""The ``stonetrail`` command-line tool: a thin click layer over :mod:`ledger`."""

# The command modules use main's helpers and main registers them at its end: load main first, whichever
# submodule is imported, so that the import order never matters.
from . import main as _main  # noqa: F401
