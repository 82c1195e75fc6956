"""StoneTrail: signed, hash-linked custody records for individual diamonds, verifiable offline."""

__version__ = "0.1.0"
