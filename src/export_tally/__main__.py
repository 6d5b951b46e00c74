"""`python -m export_tally`: the same as the `cli` script."""

from export_tally.cli import main_entry

main_entry()
