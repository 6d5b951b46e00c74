"""NDJSON: FHIR resources, one a line, to counts (pure: bytes in, values out).

- `lines`: chunks to pieces of whole lines, line numbers, the bad-row policy
- `resources`: what a resource counts as (patient, key, label) or why it is a bad row
- `decoding`: bytes to resources, a piece at once where proved exact (msgspec), else per line
- `counting`: `NdjsonCountingParser`
- `statistics`: `NdjsonStatsParser` (`--stats`)

The run's aggregators (`core.counts.parser.CountAggregator`, `core.stats.parser.StatsAggregator`)
make these parsers for a file of format "ndjson".

docs/ndjson.md says what is counted, the proof of the fast path, and how fast it is.
"""

from export_tally.core.ndjson.counting import NdjsonCountingParser
from export_tally.core.ndjson.lines import NdjsonBadRowError, NdjsonFormatError
from export_tally.core.ndjson.resources import KeyMode
from export_tally.core.ndjson.statistics import NdjsonStatsParser

__all__ = [
    "KeyMode",
    "NdjsonBadRowError",
    "NdjsonCountingParser",
    "NdjsonFormatError",
    "NdjsonStatsParser",
]
