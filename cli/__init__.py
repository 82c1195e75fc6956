"""The ``stonetrail`` command-line tool: a thin click layer over :mod:`ledger` (:mod:`stonetrail_cli.main`)."""
