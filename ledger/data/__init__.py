"""Reference data shipped with the package (copied from shared/data): real mines and 2023 production."""
