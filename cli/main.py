"""Entry point of the ``stonetrail`` command (placeholder until the CLI lands)."""


def main() -> None:
    """Run the CLI."""
