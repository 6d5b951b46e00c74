"""`python -m export_tally`: the same as the `cli` script."""

from export_tally.cli.command import main_entry

main_entry()
