"""CSV rows -> FHIR R4 resources, deterministically, with pre-built byte templates.

Each CSV row `patient_id,event_time,event_type,value` becomes one Observation line. The line is
one `bytes % tuple` of the event type's template: no JSON encoder runs per row. The NDJSON length
of a block of rows is known without building it (`ndjson_length`), from the CSV length and a few
`bytes.count`s, which is what lets a file's length, and any byte range of it, be answered before
a byte of it is made. The mapping is documented in docs/fhir.md.

Assumptions about the rows (true of every body `generate.py` makes): four fields, no quotes; the
value an integer; the time `YYYY-MM-DDThh:mm:ss[.ffffff]Z`; no `.` but the time's.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

# This project's own code system, for event types that have no LOINC code.
EVENT_TYPE_SYSTEM = "urn:export-tally:event-type"
PATIENT_ID_SYSTEM = "urn:export-tally:patient-id"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
VITAL_SIGNS = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs",
            "display": "Vital Signs",
        }
    ]
}
# Digits of a row number in an id: every export has fewer than 10**ROW_DIGITS rows a download.
ROW_DIGITS = 8


@dataclass(frozen=True)
class EventCoding:
    """How one event type is coded: LOINC code and display, UCUM unit code and its display."""

    code: str
    display: str
    unit_code: str
    unit: str


LOINC_CODINGS: dict[str, EventCoding] = {
    "heart_rate": EventCoding("8867-4", "Heart rate", "/min", "beats/minute"),
    "spo2": EventCoding("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", "%"),
    "bp_sys": EventCoding("8480-6", "Systolic blood pressure", "mm[Hg]", "mmHg"),
    "bp_dia": EventCoding("8462-4", "Diastolic blood pressure", "mm[Hg]", "mmHg"),
}  # fmt: skip

# Where a row's fields go in a template, in order; `%` elsewhere is escaped.
_ROW, _TIME, _PATIENT, _VALUE = "@@row@@", "@@time@@", "@@patient@@", "@@value@@"


def _observation_text(event_type: str) -> str:
    """The Observation line of `event_type` with markers where a row's fields go."""
    known = LOINC_CODINGS.get(event_type)
    if known is not None:
        coding = {"system": LOINC, "code": known.code, "display": known.display}
        unit, unit_code = known.unit, known.unit_code
    else:
        coding = {"system": EVENT_TYPE_SYSTEM, "code": event_type, "display": event_type}
        unit, unit_code = "1", "1"  # UCUM's unity: a count or a score without a known unit
    resource = {
        "resourceType": "Observation",
        "id": _ROW,
        "meta": {"lastUpdated": _TIME},
        "status": "final",
        "category": [VITAL_SIGNS],
        "code": {"coding": [coding], "text": event_type},
        "subject": {"reference": "Patient/" + _PATIENT},
        "effectiveDateTime": _TIME,
        "valueQuantity": {"value": 0, "unit": unit, "system": UCUM, "code": unit_code},
    }
    text = json.dumps(resource, separators=(",", ":"), ensure_ascii=False)
    return text.replace('"value":0', '"value":' + _VALUE, 1) + "\n"


@dataclass(frozen=True)
class Template:
    """One event type's Observation line, cut where a row's fields go.

    A line is `head`, the row number in ROW_DIGITS digits, `after_row`, time, `middle`, patient,
    AFTER_PATIENT, time, AFTER_TIME, value, `tail`. `fixed` is its length without the time,
    patient and value.
    """

    head: bytes
    after_row: bytes
    middle: bytes
    tail: bytes

    @property
    def fixed(self) -> int:
        parts = (self.head, self.after_row, self.middle, AFTER_PATIENT, AFTER_TIME, self.tail)
        return ROW_DIGITS + sum(map(len, parts))


AFTER_PATIENT = b'"},"effectiveDateTime":"'
AFTER_TIME = b'","valueQuantity":{"value":'


@cache
def observation_template(prefix: str, event_type: bytes) -> Template:
    """The template for rows of `event_type` in the file whose ids start with `prefix`."""
    head, text = _observation_text(event_type.decode()).split(_ROW)
    after_row, text = text.split(_TIME, 1)
    middle, text = text.split(_PATIENT)
    after_patient, text = text.split(_TIME)
    after_time, tail = text.split(_VALUE)
    assert (after_patient.encode(), after_time.encode()) == (AFTER_PATIENT, AFTER_TIME)
    return Template((head + prefix).encode(), after_row.encode(), middle.encode(), tail.encode())


def id_prefix(export_id: str, download_index: int) -> str:
    """What every Observation id of a download starts with: ids are `<export>-<index>-<row>`."""
    return f"{export_id}-{download_index}-"


# A row number's digits are a high and a low half; a run of numbers takes its low halves as one
# slice of this table (twice over, so that a run that wraps past 9999 is one slice too).
_HALF = 10 ** (ROW_DIGITS // 2)
_LOW_HALVES = [b"%0*d" % (ROW_DIGITS // 2, i) for i in range(_HALF)] * 2


def _row_numbers(head: bytes, numbers: range) -> tuple[list[bytes], list[bytes]]:
    """The rows' heads with the high half of their number, and the low halves, in order."""
    heads: list[bytes] = []
    lows: list[bytes] = []
    start, stop = numbers.start, numbers.stop
    while start < stop:
        high, low = divmod(start, _HALF)
        n = min(stop - start, _HALF - low)
        heads += [head + b"%0*d" % (ROW_DIGITS // 2, high)] * n
        lows += _LOW_HALVES[low : low + n]
        start += n
    return heads, lows


class _Parts(dict[bytes, bytes]):
    """Event type -> one part of its template, each built the first time its type is met."""

    def __init__(self, prefix: str, part: str) -> None:
        super().__init__()
        self.prefix = prefix
        self.part = part

    def __missing__(self, event_type: bytes) -> bytes:
        value: bytes = getattr(observation_template(self.prefix, event_type), self.part)
        self[event_type] = value
        return value


def observations(
    rows: bytes, first_row: int, prefix: str, keep: frozenset[bytes] | None = None
) -> tuple[bytes, int]:
    """The Observation lines of whole CSV rows (each ending in LF), and how many there are.

    `first_row` is the first row's number (1 = the first row after the header). `keep`, when
    given, is the patient ids whose rows are kept; the others are skipped (their numbers too).

    No Python code runs per row without `keep`: the fields come from one `split`, each column
    is a slice of it, the type-dependent parts come from `map`s over dict lookups, and the
    line's parts are interleaved by slice assignment, then joined once.
    """
    fields = rows.replace(b"\n", b",").split(b",")
    n = len(fields) // 4
    if len(fields) != 4 * n + 1 or fields[-1]:
        raise ValueError("not whole rows of four fields")
    patients, times, types, values = fields[0:-1:4], fields[1::4], fields[2::4], fields[3::4]
    numbers = range(first_row, first_row + n)
    template = observation_template(prefix, b"")  # any type's: its head names no type
    heads, lows = _row_numbers(template.head, numbers)
    if keep is not None:
        kept = [i for i, patient in enumerate(patients) if patient in keep]
        patients, times, types, values, heads, lows = (
            [column[i] for i in kept] for column in (patients, times, types, values, heads, lows)
        )
        n = len(kept)
    parts: list[bytes] = [b""] * (11 * n)
    parts[0::11] = heads
    parts[1::11] = lows
    parts[2::11] = [template.after_row] * n
    parts[3::11] = times
    parts[4::11] = map(_Parts(prefix, "middle").__getitem__, types)
    parts[5::11] = patients
    parts[6::11] = [AFTER_PATIENT] * n
    parts[7::11] = times
    parts[8::11] = [AFTER_TIME] * n
    parts[9::11] = values
    parts[10::11] = map(_Parts(prefix, "tail").__getitem__, types)
    return b"".join(parts), n


def ndjson_length(rows: bytes, prefix: str, event_types: Iterable[str]) -> int:
    """The length of `observations(rows, ...)` without `keep`, computed without building it.

    Per row the line holds the time twice and the patient and value once, where the CSV row
    holds each once plus the type and three commas and a LF: so the line is the CSV row plus
    the type's fixed part, plus the time again, minus the type and four bytes. A time is 20
    bytes, or 27 with microseconds (one `.` each). Raises ValueError if a row's type is not among
    `event_types` (the rows would not be counted right).
    """
    n = rows.count(b"\n")
    total = len(rows) + 20 * n + 7 * rows.count(b".")
    typed = 0
    for event_type in event_types:
        encoded = event_type.encode()
        of_type = rows.count(b"," + encoded + b",")
        typed += of_type
        template = observation_template(prefix, encoded)
        total += of_type * (template.fixed - len(encoded) - 4)
    if typed != n:
        raise ValueError("rows of an event type the export does not list")
    return total


def patient_line(patient_id: str, last_updated: str) -> bytes:
    """The Patient resource of one patient id, as one NDJSON line."""
    resource = {
        "resourceType": "Patient",
        "id": patient_id,
        "meta": {"lastUpdated": last_updated},
        "identifier": [{"system": PATIENT_ID_SYSTEM, "value": patient_id}],
    }
    return json.dumps(resource, separators=(",", ":")).encode() + b"\n"


def time_key(event_time: bytes) -> bytes:
    """A CSV time as `YYYY-MM-DDThh:mm:ss.ffffff`: keys compare as the times they stand for."""
    return event_time[:19] + (event_time[19:26] if len(event_time) == 27 else b".000000")


def rows_after(rows: bytes, since_key: bytes) -> tuple[bytes, int]:
    """The rows (whole, in time order) whose time is later than `since_key` (see `time_key`),
    and how many rows before them were left out."""
    lines = rows.split(b"\n")[:-1]
    keys = [time_key(line.split(b",", 2)[1]) for line in lines]
    cut = bisect_right(keys, since_key)
    return b"".join(line + b"\n" for line in lines[cut:]), cut
