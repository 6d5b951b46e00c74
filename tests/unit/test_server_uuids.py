"""Download ids in paths: accepted and rejected exactly as pydantic-core 2.50 (Rust's `uuid` crate)
did when the server was a FastAPI app. Every expected value below was that library's answer (its
`ctx.error`), recorded before pydantic left the project."""

from __future__ import annotations

import uuid

import pytest

from export_server.errors import InvalidUuidError
from export_server.uuids import parse_uuid

CASES = [
    ('', 'invalid length: found 0'),
    ('x', 'invalid character: found `x` at 0'),
    ('not-a-uuid', 'invalid character: found `n` at 0'),
    ('123', 'invalid length: found 3'),
    ('f725622a22ea4accaab8810ec8b5e2c', 'invalid length: found 31'),
    ('f725622a22ea4accaab8810ec8b5e2c60', 'invalid length: found 33'),
    ('f725622a-22ea-4acc-aab8-810ec8b5e2c60', 'invalid group length in group 4: expected 12, found 13'),
    ('f725622a-22ea-4acc-aab8-810ec8b5e2c', 'invalid group length in group 4: expected 12, found 11'),
    ('f725622a2-2ea-4acc-aab8-810ec8b5e2c6', 'invalid group length in group 0: expected 8, found 9'),
    ('f725622a-22ea4-acc-aab8-810ec8b5e2c6', 'invalid group length in group 1: expected 4, found 5'),
    ('f725622a-22ea-4acca-ab8-810ec8b5e2c6', 'invalid group length in group 2: expected 4, found 5'),
    ('f725622a-22ea-4acc-aab88-10ec8b5e2c6', 'invalid group length in group 3: expected 4, found 5'),
    ('f725622a22ea-4acc-aab8-810ec8b5e2c6', 'invalid group count: expected 5, found 4'),
    ('f725622a-22ea-4acc-aab8-810ec8b5e2c6-0', 'invalid group count: expected 5, found 6'),
    ('------------------------------------', 'invalid group count: expected 5, found 37'),
    ('--------------------------------', 'invalid group count: expected 5, found 33'),
    ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'invalid group count: expected 5, found 1'),
    ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'invalid length: found 45'),
    ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'invalid length: found 46'),
    ('é', 'invalid character: found `é` at 0'),
    ('f725622a-22ea-4acc-aab8-810ec8b5e2cé', 'invalid character: found `é` at 35'),
    ('�', 'invalid character: found `�` at 0'),
    ('€€€€€€€€€€€€', 'invalid character: found `€` at 0'),
    ('{}', 'invalid group count: expected 5, found 1'),
    ('{x}', 'invalid character: found `x` at 1'),
    ('{f725622a-22ea-4acc-aab8-810ec8b5e2c6', 'invalid character: found `{` at 0'),
    ('{f725622a-22ea-4acc-aab8-810ec8b5e2c6}0', 'invalid character: found `{` at 0'),
    ('{f725622a22ea4accaab8810ec8b5e2c6}', 'invalid group count: expected 5, found 1'),
    ('{f725622a-22ea-4acc-aab8-810ec8b5e2š}', 'invalid group length in group 4: expected 12, found 12'),
    ('{f725622a-22ea-4acc-aab8-810ec8b5e2c60}', 'invalid group length in group 4: expected 12, found 15'),
    ('{g725622a-22ea-4acc-aab8-810ec8b5e2c6}', 'invalid character: found `g` at 0'),
    ('urn:uuid:', 'invalid group count: expected 5, found 1'),
    ('urn:uuid:x', 'invalid character: found `x` at 9'),
    ('urn:uuid:f725622a-22ea-4acc-aab8-810ec8b5e2š', 'invalid group length in group 4: expected 12, found 12'),
    ('urn:uuid:f725622a-22ea-4acc-aab8-810ec8b5e2c60', 'invalid length: found 46'),
    ('urn:uuid:f725622a22ea4accaab8810ec8b5e2c6', 'invalid group count: expected 5, found 1'),
    ('URN:UUID:f725622a-22ea-4acc-aab8-810ec8b5e2c6', 'invalid character: found `U` at 0'),
    ('urn:uuid:{aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}', 'invalid character: found `{` at 0'),
    ('{urn:uuid:aaaaaaaaaaaaaaaaaaaaaaaaa}', 'invalid character: found `{` at 0'),
    ('f725622a-22ea-4acc-aab8-810ec8b5e2š', 'invalid group length in group 4: expected 12, found 12'),
    ('šššššššššššššššš', 'invalid length: found 32'),
    ('ĭĭĭĭĭĭĭĭĭĭĭĭĭĭĭĭ', 'invalid group count: expected 5, found 17'),
    ('ĭ', 'invalid group count: expected 5, found 2'),
    (' f725622a-22ea-4acc-aab8-810ec8b5e2c6', 'invalid character: found ` ` at 0'),
    ('0x25622a22ea4accaab8810ec8b5e2c6', 'invalid character: found `x` at 1'),
    ('f725622a22ea4acc_ab8810ec8b5e2c6', 'invalid character: found `_` at 16'),
    ('+725622a22ea4accaab8810ec8b5e2c6', 'invalid character: found `+` at 0'),
    ('f725622a_22ea_4acc_aab8_810ec8b5e2c6', 'invalid character: found `_` at 8'),
    ('f725622a-22ea-4acc-aab8-810ec8b5e2c6', 'f725622a-22ea-4acc-aab8-810ec8b5e2c6'),
    ('F725622A-22EA-4ACC-AAB8-810EC8B5E2C6', 'f725622a-22ea-4acc-aab8-810ec8b5e2c6'),
    ('f725622a22ea4accaab8810ec8b5e2c6', 'f725622a-22ea-4acc-aab8-810ec8b5e2c6'),
    ('{f725622a-22ea-4acc-aab8-810ec8b5e2c6}', 'f725622a-22ea-4acc-aab8-810ec8b5e2c6'),
    ('urn:uuid:F725622A-22EA-4ACC-AAB8-810EC8B5E2C6', 'f725622a-22ea-4acc-aab8-810ec8b5e2c6'),
    ('00000000-0000-0000-0000-000000000000', '00000000-0000-0000-0000-000000000000'),
]  # fmt: skip


@pytest.mark.parametrize("text, answer", CASES)
def test_parses_or_rejects_as_pydantic_did(text: str, answer: str) -> None:
    try:
        got = str(parse_uuid(text))
    except InvalidUuidError as exc:
        got = str(exc)
    assert got == answer


def test_accepted_spellings_give_the_same_uuid() -> None:
    # The four spellings the crate accepts, any case: and nothing else Python's parser would take.
    want = uuid.UUID("f725622a-22ea-4acc-aab8-810ec8b5e2c6")
    for text in (str(want), want.hex, "{" + str(want).upper() + "}", "urn:uuid:" + str(want)):
        assert parse_uuid(text) == want
    for text in ("urn:" + str(want), "uuid:" + str(want), want.hex[:8] + "-" + want.hex[8:]):
        with pytest.raises(InvalidUuidError):
            parse_uuid(text)
