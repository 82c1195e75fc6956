"""The ``stonetrail`` command-line tool: a thin click layer over :mod:`ledger`."""
