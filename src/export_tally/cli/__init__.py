"""The command line: argv and the environment resolved into Settings, the run, the console
(progress, notices, the run summary), exit codes, and the bundled server. The only package that
touches argv, the environment, stdout, stderr and the exit status; it sits above `render`."""

from export_tally.cli.command import main, main_entry

__all__ = ["main", "main_entry"]
