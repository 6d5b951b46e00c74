"""One digest of everything that decides the bodies' bytes: the dataset's definition and the format.

A body follows from its export's parameters, the event types' parameters, the downloads derived
from them, and the generator's code (whose changes bump `generate.FORMAT_VERSION`). The fingerprint
is the SHA-256 of all of these written as canonical JSON. The body-size table records the
fingerprint it was generated for, and the server refuses a table made for another one; cache
entries and ETags are keyed by it, so an edit of the definition can never serve old bytes under
a current name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from functools import cache

from export_server.dataset import EVENTS, EXPORTS, EventSpec, ExportSpec, derive_downloads
from export_server.generate import FORMAT_VERSION


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot fingerprint {value!r}")


def definition(
    exports: Mapping[str, ExportSpec], events: Mapping[str, EventSpec], format_version: str
) -> dict[str, object]:
    """The definition as plain JSON values: every field of every spec, and the derived downloads.

    Every dataclass field is included, so a field added to a spec is fingerprinted too. Event
    parameters are written as floats, so `75` and `75.0` (the same draws) fingerprint alike.
    """
    return {
        "format_version": format_version,
        "events": [
            {**asdict(event), "mu": float(event.mu), "sigma": float(event.sigma)}
            for event in events.values()
        ],
        "exports": [
            {**asdict(spec), "derived": [d.metadata() for d in derive_downloads(spec)]}
            for spec in exports.values()
        ],
    }


def fingerprint_of(
    exports: Mapping[str, ExportSpec], events: Mapping[str, EventSpec], format_version: str
) -> str:
    """The SHA-256 (64 hex digits) of the definition's canonical JSON."""
    text = json.dumps(
        definition(exports, events, format_version),
        sort_keys=True, separators=(",", ":"), default=_json_value,
    )  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()


@cache
def definition_fingerprint() -> str:
    """The fingerprint of the dataset this server serves."""
    return fingerprint_of(EXPORTS, EVENTS, FORMAT_VERSION)
