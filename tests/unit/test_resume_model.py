"""Dropped connections, modelled: whatever the cut points, resuming or restarting counts exactly.

fetch.py resumes a cut body at the first byte not yet fed (the parser just goes on), or restarts
it with a fresh parser when the server has no ranges. Both must equal the stdlib's count of the
whole body, wherever the cuts fall (mid-line, mid-quoted-field, between CR and LF).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from export_tally.core.parse import CountingParser
from tests.unit.test_parse_properties import dict_reader_counts, valid_bodies

# Hypothesis at its full example counts: the slow tier (uv run pytest -m slow).
pytestmark = pytest.mark.slow


def deliveries(data: st.DataObject, body: bytes) -> list[list[bytes]]:
    """Attempts: each delivers a prefix of what is left, in random pieces; the last completes."""
    attempts = []
    offset = 0
    for _ in range(data.draw(st.integers(0, 4))):
        cut = data.draw(st.integers(offset, len(body)))
        attempts.append(pieces(data, body[offset:cut]))
        offset = cut
    attempts.append(pieces(data, body[offset:]))
    return attempts


def pieces(data: st.DataObject, part: bytes) -> list[bytes]:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(part)), max_size=4)))
    return [part[a:b] for a, b in zip([0, *cuts], [*cuts, len(part)], strict=True)]


@settings(max_examples=150, deadline=None)
@given(st.data(), valid_bodies())
def test_resumed_body_counts_like_the_stdlib(
    data: st.DataObject, generated: tuple[bytes, int]
) -> None:
    body, rows = generated
    parser = CountingParser()
    for attempt in deliveries(data, body):
        for piece in attempt:
            parser.feed(piece)
    result = parser.finish()
    assert result.rows == rows
    assert dict(result.tally.counts) == dict(dict_reader_counts(body))


@settings(max_examples=100, deadline=None)
@given(st.data(), valid_bodies())
def test_restarted_body_counts_like_the_stdlib(
    data: st.DataObject, generated: tuple[bytes, int]
) -> None:
    body, rows = generated
    cut = data.draw(st.integers(0, len(body)))
    abandoned = CountingParser()
    abandoned.feed(body[:cut])  # a partial count, thrown away with its parser
    parser = CountingParser()
    for piece in pieces(data, body):
        parser.feed(piece)
    result = parser.finish()
    assert result.rows == rows
    assert dict(result.tally.counts) == dict(dict_reader_counts(body))
