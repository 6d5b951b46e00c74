"""What a FHIR resource counts as: its patient, its key, its key's text for people, or why it
is a bad row. The rules, written once, on the few fields they read.

- A `Patient` is its own patient (its `id`). Any other resource belongs to the patient its
  `subject` references, else the one its `patient` references: a `reference` that is
  `Patient/ID`, or a URL ending in `Patient/ID` (a version, `/_history/N`, may follow). A
  resource that names no patient that way is counted under `NO_PATIENT` (in the totals only).
- An `Observation`'s key is its first coding's `code` (key mode "code"; the key's label is that
  coding's `display`, else the `code.text`), or its `code.text`, else its first coding's
  `display` (key mode "text"; no label). Any other resource's key is its `resourceType`.
- Bad rows: a resource without a `resourceType` string, one of a type not asked for, an
  Observation without the field its key comes from.

A field counts only when it holds a value of its JSON type, and a string only when it is not
empty; anything else is as if it were absent (a `subject` that is a string names no patient).
The rules read an `IdentifiedResource` (msgspec Structs of just these fields);
`resource_from_json` makes one from what `json.loads` returned; the fast path decodes
`CodeResource` or `TextResource` (the fields one key mode needs), which `judge` reads the same
way, so the paths cannot disagree on what a resource means.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, ClassVar, Literal, Union

import msgspec

from export_tally.core.counts.tally import NO_PATIENT

KeyMode = Literal["code", "text"]

Counted = tuple[str, str, str | None]
"""(patient_id or NO_PATIENT, key, the key's label or None)."""

_PATIENT_REFERENCE = re.compile(r"(?:^|/)Patient/([^/]+)(?:/_history/[^/]+)?\Z")


# gc=False: these hold only strings and each other, never a cycle, and millions are made;
# frozen: they are hashable, so a Counter counts equal ones in C.
class Reference(msgspec.Struct, frozen=True, gc=False):
    reference: str | None = None


class Coding(msgspec.Struct, frozen=True, gc=False):
    code: str | None = None
    display: str | None = None


class CodeableConcept(msgspec.Struct, frozen=True, gc=False):
    coding: tuple[Coding, ...] | None = None
    text: str | None = None


class IdentifiedResource(msgspec.Struct, frozen=True, gc=False):
    """Every field of a resource that the rules read."""

    resourceType: str  # the FHIR name, which msgspec matches
    id: str | None = None
    subject: Reference | None = None
    patient: Reference | None = None
    code: CodeableConcept | None = None


# What the fast path decodes: only what the key mode's keys need, and no `id` (so that equal
# ones are many: Observations differ in their ids alone). A field left out is a ClassVar that
# reads as absent, so `judge` reads every form alike. Labels are read from the full form of the
# first line of each key.
class _CodeOnly(msgspec.Struct, frozen=True, gc=False):
    code: str | None = None
    display: ClassVar[None] = None


class _CodesOnly(msgspec.Struct, frozen=True, gc=False):
    coding: tuple[_CodeOnly, ...] | None = None
    text: ClassVar[None] = None


class CodeResource(msgspec.Struct, frozen=True, gc=False):
    """A resource as key mode "code" counts it."""

    resourceType: str
    subject: Reference | None = None
    patient: Reference | None = None
    code: _CodesOnly | None = None
    id: ClassVar[None] = None


class _DisplayOnly(msgspec.Struct, frozen=True, gc=False):
    display: str | None = None
    code: ClassVar[None] = None


class _TextsOnly(msgspec.Struct, frozen=True, gc=False):
    coding: tuple[_DisplayOnly, ...] | None = None
    text: str | None = None


class TextResource(msgspec.Struct, frozen=True, gc=False):
    """A resource as key mode "text" counts it."""

    resourceType: str
    subject: Reference | None = None
    patient: Reference | None = None
    code: _TextsOnly | None = None
    id: ClassVar[None] = None


FastResource = Any
"""What the fast path counts: a `CodeResource`, a `TextResource` or one of `tagged_forms`."""
AnyResource = Any


def fast_form(mode: KeyMode, types: frozenset[str] | None = None) -> Any:
    """The type the fast path decodes in key mode `mode` when `types` are asked for (None:
    any): `CodeResource` or `TextResource` for any type, else `tagged_forms`' union."""
    if types is None:
        return CodeResource if mode == "code" else TextResource
    return Union[tagged_forms(mode, types)]  # noqa: UP007 (a union of types made at run time)


@lru_cache(maxsize=16)
def tagged_forms(mode: KeyMode, types: frozenset[str]) -> tuple[type[msgspec.Struct], ...]:
    """One Struct a resourceType asked for, tagged by it (msgspec reads the `resourceType`
    once, as a key into these, instead of making and counting a string a line), plus one for
    the empty resourceType, so that the union always has two members: a union requires the
    tag, where a lone tagged Struct would take an object without one. An `Observation` holds
    the fields of the key mode's form, a `Patient` its `id` (so Patients count on the fast
    path), any other type its references alone."""
    return tuple(_tagged(kind, mode) for kind in sorted(types | {""}))


def _tagged(kind: str, mode: KeyMode) -> type[msgspec.Struct]:
    fields: list[tuple[str, Any, Any]] = [("subject", Reference | None, None)]
    absent: dict[str, Any] = {"resourceType": kind}  # what `judge` reads of a field left out
    if kind == "Observation":
        # FHIR's Observation has no `patient`: one field less to decode, hash and compare a
        # line. The rules still read it when the subject names no patient, so such a form is
        # incomplete (`needs_full_form`).
        fields.append(("code", (_CodesOnly if mode == "code" else _TextsOnly) | None, None))
        absent["patient"] = None
    else:
        fields.append(("patient", Reference | None, None))
        absent["code"] = None
    if kind == "Patient":
        fields.append(("id", str | None, None))
    else:
        absent["id"] = None
    return msgspec.defstruct(
        "TaggedResource",
        fields,
        tag_field="resourceType",
        tag=kind,
        frozen=True,
        gc=False,
        namespace=absent,
        module=__name__,
    )


def needs_full_form(resource: FastResource, verdict: Counted) -> bool:
    """Whether the fast form `resource` leaves out a field that the verdict on its line may
    depend on, so that its line must go one by one: an untagged Patient (no `id`), or a tagged
    Observation (no `patient`) whose subject names no patient."""
    if isinstance(resource, CodeResource | TextResource):
        return resource.resourceType == "Patient"
    return verdict[0] == NO_PATIENT and "patient" not in resource.__struct_fields__


def patient_in_reference(reference: Reference | None) -> str | None:
    """The patient id a Reference names, or None."""
    if reference is None or not reference.reference:
        return None
    return _patient_in_text(reference.reference)


@lru_cache(maxsize=4096)
def _patient_in_text(text: str) -> str | None:
    match = _PATIENT_REFERENCE.search(text)
    return None if match is None else match.group(1)


def judge(resource: AnyResource, mode: KeyMode, types: frozenset[str] | None) -> Counted | str:
    """What a resource counts as, or why it is a bad row (a one-line reason). A fast form
    gives the same patient and key as the full form of the same line, and no label."""
    kind = resource.resourceType
    if not kind:
        return "resourceType is empty"
    if types is not None and kind not in types:
        return f"resourceType {kind!r} is not among those asked for ({', '.join(sorted(types))})"
    if kind == "Patient":
        patient = resource.id
    else:
        patient = patient_in_reference(resource.subject) or patient_in_reference(resource.patient)
    if kind != "Observation":
        return (patient or NO_PATIENT, kind, None)
    code = resource.code
    first = code.coding[0] if code is not None and code.coding else None
    text = code.text if code is not None else None
    if mode == "code":
        if first is None or not first.code:
            return "Observation has no code.coding[0].code"
        return (patient or NO_PATIENT, first.code, first.display or text or None)
    key = text or (first.display if first is not None else None)
    if not key:
        return "Observation has neither code.text nor code.coding[0].display"
    return (patient or NO_PATIENT, key, None)


def resource_from_json(value: Any) -> IdentifiedResource | str:
    """The Resource in what `json.loads` returned, under the rules above, or why it is a bad
    row. Takes any JSON value (the full decoder's path: every line the fast path declines)."""
    if not isinstance(value, dict):
        return f"not a JSON object but a JSON {_json_type(value)}"
    kind = value.get("resourceType")
    if kind is None:
        return "JSON object has no resourceType"
    if not isinstance(kind, str):
        return f"resourceType is a JSON {_json_type(kind)}, not a string"
    return IdentifiedResource(
        resourceType=kind,
        id=_string(value.get("id")),
        subject=_reference(value.get("subject")),
        patient=_reference(value.get("patient")),
        code=_concept(value.get("code")),
    )


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _reference(value: Any) -> Reference | None:
    return Reference(_string(value.get("reference"))) if isinstance(value, dict) else None


def _concept(value: Any) -> CodeableConcept | None:
    if not isinstance(value, dict):
        return None
    coding = value.get("coding")
    first = coding[0] if isinstance(coding, list) and coding else None
    codings = (
        (Coding(_string(first.get("code")), _string(first.get("display"))),)
        if isinstance(first, dict)
        else ()
    )
    return CodeableConcept(codings, _string(value.get("text")))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"
