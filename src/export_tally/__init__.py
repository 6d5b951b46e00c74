"""export-tally: exact counts from a bulk-export server's CSV downloads."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("export-tally")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
