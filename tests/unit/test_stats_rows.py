"""The stats fast path's own pieces: the bulk checks of event times, and the value rules."""

from __future__ import annotations

import pytest

from export_tally.core.stats.row_rules import (
    entry_key,
    fixed_width_times,
    parse_instant,
    parse_value,
    real_hours,
    widened,
)

T = b"2025-08-26T00:00:07.123456Z"
T7 = "2025-08-26T00:00:07"


@pytest.mark.parametrize(
    ("times", "widened"),
    [
        pytest.param([T, T], [T, T], id="wide"),
        pytest.param([b"2025-08-26T00:00:07Z"], [b"2025-08-26T00:00:07.000000Z"], id="narrow"),
        pytest.param([b"2025-08-26T00:00:07.1234Z"], None, id="four-digits"),
        pytest.param([b"2025-08-26T00:00:07.123456+"], None, id="no-z"),
        pytest.param([b"2025-08-26T00:00:07X"], None, id="narrow-without-z"),
        pytest.param([T, b"2025-08-26T00:00:07"], None, id="too-short"),
        pytest.param([b"2025-08-26T00:00:07.12345Z", b"2025-08-26T00:00:07.1234567Z"], None, id="lengths-compensate"),
        pytest.param([b"2025-08-26 00:00:07.123456Z"], None, id="space"),
        pytest.param([b"2025-08-26T00:00:0x.123456Z"], None, id="letter"),
        pytest.param([b"2025-08-26T00:60:07.123456Z"], None, id="minute-60"),
        pytest.param([b"2025-08-26T00:00:60Z"], None, id="second-60"),
        pytest.param([b"2025-08-26T00:59:59.999999Z"], [b"2025-08-26T00:59:59.999999Z"], id="last-second"),
    ],
)  # fmt: skip
def test_fixed_width_times(times: list[bytes], widened: list[bytes] | None) -> None:
    assert fixed_width_times(times) == widened


@pytest.mark.parametrize(
    ("hours", "real"),
    [
        pytest.param([b"2025-08-26T00", b"2025-08-26T23", b"2025-08-27T00"], True, id="day-boundary"),
        pytest.param([b"2024-02-29T12"], True, id="leap-day"),
        pytest.param([b"2025-02-29T12"], False, id="no-leap-day"),
        pytest.param([b"2025-08-26T23", b"2025-08-26T24"], False, id="hour-24"),
        pytest.param([b"2025-00-01T00"], False, id="month-0"),
        pytest.param([b"0000-01-01T00"], False, id="year-0"),
    ],
)  # fmt: skip
def test_real_hours(hours: list[bytes], real: bool) -> None:
    times = [hour + b":00:00.000000Z" for hour in hours]
    for in_order in (True, False):
        known: set[bytes] = set()
        assert real_hours(times, in_order, known) is real
        if real:
            assert known == set(hours)
    assert real_hours(times[::-1], False, set()) is real


def test_real_hours_checks_every_hour_between_in_order() -> None:
    times = [b"2025-08-26T22:00:00.000000Z", b"2025-08-26T24:00:00.000000Z"]
    times += [b"2025-08-26T25:00:00.000000Z"] * 3 + [b"2025-08-27T00:00:00.000000Z"]
    assert not real_hours(times, True, set())
    assert not real_hours(times, True, {b"2025-08-26T22", b"2025-08-27T00"})


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        (f"{T7}Z", 1_756_166_407_000_000),
        (f"{T7}.000001Z", 1_756_166_407_000_001),
        (f"{T7}+00:00", 1_756_166_407_000_000),
        ("2025-08-26T02:00:07+02:00", 1_756_166_407_000_000),
        ("1969-12-31T23:59:59.999999Z", -1),
        (T7, None),
        ("nonsense", None),
    ],
)
def test_parse_instant(text: str, micros: int | None) -> None:
    assert parse_instant(text) == micros


def test_parse_value() -> None:
    assert parse_value("72") == 72
    assert type(parse_value("72")) is int
    assert parse_value("-0.25") == -0.25
    assert parse_value("1e3") is None


def test_known_hours_stay_few() -> None:
    known = {b"%04d-01-01T00" % year for year in range(1, 5000)}
    assert real_hours([b"2025-08-26T00:00:00.000000Z"], True, known)
    assert known == {b"2025-08-26T00"}


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        (b"P1,heart_rate,72", (b"P1", b"heart_rate")),
        (b"P1,x,-0.25", (b"P1", b"x")),
        (b"P1,x,+4", (b"P1", b"x")),
        (b",x,72", None),
        (b"P1,,72", None),
        (b"P1,x,", None),
        (b"P1,x,1e3", None),
        (b"P1,x,72.", None),
        (b"P1,x, 72", None),
    ],
)
def test_entry_key(entry: bytes, key: tuple[bytes, bytes] | None) -> None:
    assert entry_key(entry) == key
    assert entry_key(entry + b"\n", line_end=True) == key
    assert entry_key(entry, line_end=True) is None  # the line end is what ends the proof


@pytest.mark.parametrize(
    "entry",
    [b"P1,x,72\n\n", b"P1\n,x,72\n", b"P1,x\n,72\n", b"P1,x,7\n2\n", b"\nP1,x,72\n"],
)
def test_entry_key_with_line_end_wants_that_one_lf(entry: bytes) -> None:
    assert entry_key(entry, line_end=True) is None


def test_widened() -> None:
    assert widened(b"2025-08-26T00:00:07Z") == b"2025-08-26T00:00:07.000000Z"
    assert widened(T) == T
