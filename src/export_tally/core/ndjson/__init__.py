"""NDJSON: FHIR resources, one a line, to counts (pure: bytes in, values out).

- `lines`: chunks to pieces of whole lines, line numbers, the bad-row policy
- `resources`: what a resource counts as (patient, key, label) or why it is a bad row
- `decoding`: bytes to resources, a piece at once where proved exact (msgspec), else per line
- `counting`: `NdjsonCountingParser` and `NdjsonCountAggregator`
- `statistics`: `NdjsonStatsParser` and `NdjsonStatsAggregator` (`--stats`)

docs/ndjson.md says what is counted, the proof of the fast path, and how fast it is.
"""

from export_tally.core.ndjson.counting import NdjsonCountAggregator, NdjsonCountingParser
from export_tally.core.ndjson.lines import NdjsonBadRowError, NdjsonFormatError
from export_tally.core.ndjson.resources import KeyMode
from export_tally.core.ndjson.statistics import NdjsonStatsAggregator, NdjsonStatsParser

__all__ = [
    "KeyMode",
    "NdjsonBadRowError",
    "NdjsonCountAggregator",
    "NdjsonCountingParser",
    "NdjsonFormatError",
    "NdjsonStatsAggregator",
    "NdjsonStatsParser",
]
