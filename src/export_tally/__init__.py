"""export-tally: exact counts from a bulk-export server's CSV downloads."""

# The one place the version is written: pyproject.toml reads it from here (hatch's version source),
# so that knowing it costs no import of importlib.metadata at start-up.
__version__ = "0.1.0"
