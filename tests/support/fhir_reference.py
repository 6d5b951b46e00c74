"""A naive NDJSON counter, written apart from the core, to check the core against.

Every line is decoded whole by `json.loads` and read with plain dict lookups, by the rules of
docs/ndjson.md ("What is counted"), written out again here without sharing code with
`export_tally.core.ndjson`: whole-body UTF-8 split into lines, no fast path, no Structs.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

NO_PATIENT = ""


@dataclass
class ReferenceCount:
    """What the naive counter found: counts per (patient, key), labels, bad rows' line
    numbers (1-based), and rows (non-blank lines)."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    labels: dict[str, str] = field(default_factory=dict)
    bad_lines: list[int] = field(default_factory=list)
    rows: int = 0
    keys: set[str] = field(default_factory=set)  # every key counted so far


def text(value: Any) -> str | None:
    """A non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def patient_of_reference(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    reference = text(value.get("reference"))
    if reference is None:
        return None
    parts = reference.split("/")
    if len(parts) >= 4 and parts[-2] == "_history" and parts[-1]:
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1]:
        return parts[-1]
    return None


def count_line(
    resource: Any, key_mode: str, types: frozenset[str] | None
) -> tuple[str, str, str | None] | None:
    """(patient, key, label) of one decoded line, or None for a bad row."""
    if not isinstance(resource, dict):
        return None
    kind = resource.get("resourceType")
    if not isinstance(kind, str) or not kind:
        return None
    if types is not None and kind not in types:
        return None
    if kind == "Patient":
        patient = text(resource.get("id"))
    else:
        patient = patient_of_reference(resource.get("subject")) or patient_of_reference(
            resource.get("patient")
        )
    patient = patient or NO_PATIENT
    if kind != "Observation":
        return patient, kind, None
    code = resource.get("code")
    code = code if isinstance(code, dict) else {}
    codings = code.get("coding")
    first = codings[0] if isinstance(codings, list) and codings else None
    first = first if isinstance(first, dict) else {}
    if key_mode == "code":
        key = text(first.get("code"))
        label = text(first.get("display")) or text(code.get("text"))
    else:
        key = text(code.get("text")) or text(first.get("display"))
        label = None
    return None if key is None else (patient, key, label)


def count_body(
    body: bytes, key_mode: str = "code", types: frozenset[str] | None = None
) -> ReferenceCount:
    """Count a whole NDJSON body the naive way."""
    found = ReferenceCount()
    body = body.removeprefix(b"\xef\xbb\xbf")
    for number, line in enumerate(body.split(b"\n"), start=1):
        if not line.strip(b" \t\r"):
            continue
        found.rows += 1
        try:
            resource = json.loads(line.decode("utf-8"), parse_int=float)
        except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError too
            resource = None
        counted = None if resource is None else count_line(resource, key_mode, types)
        if counted is None:
            found.bad_lines.append(number)
            continue
        patient, key, label = counted
        if key not in found.keys and label is not None:
            found.labels[key] = label  # the first line counted under a key gives its label
        found.keys.add(key)
        found.counts[patient, key] += 1
    return found
