"""The persistent index beside a ledger file: derived from the log, rebuildable from it at any time, checked
against it on open and never trusted for what is signed (DESIGN.md §6, docs/adr/0018)."""
