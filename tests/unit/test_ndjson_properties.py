"""Hypothesis: the NDJSON counter agrees with a naive json.loads counter on generated resources
(shuffled key order, whitespace, escapes, extra and nested fields, repeated keys, bad lines), and
any chunking of a body gives the same result as one chunk."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from export_tally.core.aggregation import BodyResult
from export_tally.core.counts.tally import Tally
from export_tally.core.ndjson import NdjsonBadRowError, NdjsonCountingParser
from tests.support.fhir_reference import count_body


class Pairs(list[tuple[str, Any]]):
    """A JSON object written as these pairs, in this order (a key may repeat)."""


TEXTS = st.one_of(
    st.sampled_from(["P1", "P2", "8867-4", "heart_rate", "Heart rate", ""]),
    st.text(st.sampled_from('aZ9-_ ./"\\é€\U0001f600\t\u2028'), min_size=1, max_size=6),
)
REFERENCES = st.one_of(
    st.builds(lambda p: f"Patient/{p}", TEXTS),
    st.sampled_from(
        [
            "https://x.org/fhir/Patient/P1",
            "Patient/P2/_history/2",
            "Patient/P1/_history/",
            "Group/G",
            "urn:uuid:1",
            "Patient/",
            "#c",
        ]
    ),
)
ODD_VALUES: st.SearchStrategy[Any] = st.sampled_from(
    [None, 7, 1.5, True, [], "Patient/P1", {"x": 1}]
)


def maybe(draw: st.DrawFn, strategy: st.SearchStrategy[Any]) -> Any:
    """Usually a value of `strategy`; sometimes of another JSON type (the rules ignore it)."""
    return draw(ODD_VALUES) if draw(st.integers(0, 9)) == 0 else draw(strategy)


@st.composite
def objects(draw: st.DrawFn, fields: dict[str, Any]) -> Pairs:
    """`fields` in any order, with extra fields and sometimes a decoy before a repeated key."""
    pairs = Pairs(draw(st.permutations(list(fields.items()))))
    for _ in range(draw(st.integers(0, 2))):
        pairs.insert(draw(st.integers(0, len(pairs))), (draw(st.sampled_from(["system", "note", "extension"])), draw(ODD_VALUES)))  # fmt: skip
    if pairs and draw(st.integers(0, 5)) == 0:
        key, _ = draw(st.sampled_from(pairs))
        pairs.insert(0, (key, draw(ODD_VALUES)))  # the first of a repeated key loses
    return pairs


@st.composite
def resources(draw: st.DrawFn) -> Pairs:
    kind = draw(st.sampled_from(["Observation"] * 4 + ["Patient", "Condition", "", None]))
    fields: dict[str, Any] = {}
    if kind is not None:
        fields["resourceType"] = kind if draw(st.integers(0, 19)) else 7
    if draw(st.booleans()):
        fields["id"] = maybe(draw, TEXTS)
    for name in ("subject", "patient"):
        if draw(st.integers(0, 3)):
            fields[name] = (
                draw(objects({"reference": maybe(draw, REFERENCES)}))
                if draw(st.integers(0, 9))
                else draw(ODD_VALUES)
            )
    if draw(st.integers(0, 9)):
        codings = [
            draw(objects({"code": maybe(draw, TEXTS), "display": maybe(draw, TEXTS)}))
            for _ in range(draw(st.integers(0, 2)))
        ]
        concept: dict[str, Any] = {"coding": codings if draw(st.integers(0, 9)) else "x"}
        if draw(st.booleans()):
            concept["text"] = maybe(draw, TEXTS)
        fields["code"] = draw(objects(concept))
    if draw(st.booleans()):  # nested fields that reuse the names the rules read
        decoy = {"subject": {"reference": "Patient/NESTED"}, "code": {"coding": [{"code": "N"}]}}
        fields["contained"] = [draw(objects({"resourceType": "Observation", **decoy}))]
    return draw(objects(fields))


@st.composite
def json_text(draw: st.DrawFn, value: Any) -> str:
    """`value` as JSON, with random whitespace and escapes."""
    space = st.sampled_from(["", "", " ", "\t", " \r "])
    if isinstance(value, Pairs | dict):
        pairs = value if isinstance(value, Pairs) else list(value.items())
        inner = ",".join(
            draw(space) + draw(json_text(k)) + draw(space) + ":" + draw(space) + draw(json_text(v)) + draw(space)
            for k, v in pairs
        )  # fmt: skip
        return "{" + (inner or draw(space)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(draw(space) + draw(json_text(v)) + draw(space) for v in value) + "]"
    if isinstance(value, str):
        out = []
        for char in value:
            plain = json.dumps(char, ensure_ascii=False)[1:-1]
            style = draw(st.integers(0, 5))
            if style == 0:
                out.append(json.dumps(char)[1:-1] if ord(char) > 0xFFFF else f"\\u{ord(char):04x}")
            elif style == 1 and char == "/":
                out.append("\\/")
            else:
                out.append(plain)
        return '"' + "".join(out) + '"'
    return json.dumps(value)


BAD_LINES = st.sampled_from(
    ["not json", "[1]", "{}", '{"resourceType":"Observation","x":NaN}', '{"a":1} {"b":2}', "\x0c"]
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    lines = [draw(json_text(draw(resources()))) for _ in range(draw(st.integers(0, 12)))]
    for _ in range(draw(st.integers(0, 2))):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(["", " ", "\r"])))
    if draw(st.integers(0, 3)) == 0:
        lines.insert(draw(st.integers(0, len(lines))), draw(BAD_LINES))
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines)
    body = (text + ("\n" if draw(st.booleans()) else "")).encode("utf-8")
    if draw(st.integers(0, 9)) == 0:
        body = body.replace(b"\xc3\xa9", b"\xc3", 1)  # an invalid UTF-8 sequence, if é is there
    return body


@st.composite
def chunkings(draw: st.DrawFn, body: bytes) -> list[bytes]:
    if draw(st.booleans()):
        size = draw(st.integers(1, 9))
        return [body[i : i + size] for i in range(0, len(body), size)]
    cuts = sorted(set(draw(st.lists(st.integers(0, len(body)), max_size=12))))
    return [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]


def run(chunks: list[bytes], **options: Any) -> BodyResult[Tally] | tuple[str, int]:
    parser = NdjsonCountingParser(**options)
    try:
        for chunk in chunks:
            parser.feed(chunk)
        return parser.finish()
    except NdjsonBadRowError as error:
        return ("bad row", error.line_number)


TYPES = st.sampled_from(
    [
        None,  # any type: the untagged fast forms
        frozenset({"Observation"}),  # the tagged forms from here on
        frozenset({"Observation", "Patient"}),
        frozenset({"Observation", "Patient", "Condition", ""}),
    ]
)


def check_against_reference(
    body: bytes, chunks: list[bytes], key_mode: str, lines: int, types: frozenset[str] | None
) -> None:
    expected = count_body(body, key_mode, types)
    for on_bad_row in ("skip", "fail"):
        options = {"key_mode": key_mode, "types": types, "piece_lines": lines}
        whole = run([body], on_bad_row=on_bad_row, **options)
        assert run(chunks, on_bad_row=on_bad_row, **options) == whole
        if on_bad_row == "fail" and expected.bad_lines:
            assert whole == ("bad row", expected.bad_lines[0])
            continue
        assert isinstance(whole, BodyResult)
        assert dict(whole.aggregate.counts) == dict(expected.counts)
        assert dict(whole.aggregate.labels) == expected.labels
        assert whole.rows == expected.rows
        assert (whole.skipped, whole.skipped_lines) == (
            len(expected.bad_lines),
            tuple(expected.bad_lines[:5]),
        )


@settings(max_examples=12, deadline=None)
@given(st.data(), bodies(), st.sampled_from(["code", "text"]), st.sampled_from([1, 3, 256]), TYPES)
def test_any_chunking_matches_one_chunk_and_the_naive_counter(
    data: st.DataObject, body: bytes, key_mode: str, lines: int, types: frozenset[str] | None
) -> None:
    check_against_reference(body, data.draw(chunkings(body)), key_mode, lines, types)


@pytest.mark.slow  # Hypothesis at a full example count
@settings(max_examples=500, deadline=None)
@given(st.data(), bodies(), st.sampled_from(["code", "text"]), st.sampled_from([1, 3, 256]), TYPES)
def test_many_chunkings_match_one_chunk_and_the_naive_counter(
    data: st.DataObject, body: bytes, key_mode: str, lines: int, types: frozenset[str] | None
) -> None:
    check_against_reference(body, data.draw(chunkings(body)), key_mode, lines, types)
