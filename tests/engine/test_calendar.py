"""Tests of engine.calendar: periods, months, billing periodicities, time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.calendar import (
    Period,
    Periodicity,
    add_months,
    billing_period_containing,
    billing_periods_starting_in,
    local_date,
    month_period,
    next_month,
    parse_date,
    parse_timestamp,
    previous_month,
)

P = Periodicity


def period(start: str, end: str) -> Period:
    return Period(date.fromisoformat(start), date.fromisoformat(end))


# --------------------------------------------------------------------------- Period


def test_period_basics() -> None:
    nov = period("2026-11-01", "2026-12-01")
    assert nov.days == 30
    assert nov.last_day == date(2026, 11, 30)
    assert nov.contains(date(2026, 11, 1))
    assert nov.contains(date(2026, 11, 30))
    assert not nov.contains(date(2026, 12, 1))
    assert not nov.contains(date(2026, 10, 31))
    assert date(2026, 11, 15) in nov
    assert Period.from_inclusive(date(2026, 11, 12), date(2026, 11, 30)) == period(
        "2026-11-12", "2026-12-01"
    )
    assert str(nov) == "[2026-11-01, 2026-12-01)"
    assert len(list(nov.iter_days())) == 30


def test_period_refuses_empty_or_reversed() -> None:
    with pytest.raises(ValueError):
        period("2026-11-01", "2026-11-01")
    with pytest.raises(ValueError):
        period("2026-11-02", "2026-11-01")
    with pytest.raises(TypeError):
        Period(datetime(2026, 11, 1), date(2026, 12, 1))


def test_period_intersect_and_split() -> None:
    nov = period("2026-11-01", "2026-12-01")
    assert nov.intersect(period("2026-11-12", "2027-01-01")) == period("2026-11-12", "2026-12-01")
    assert nov.intersect(period("2026-12-01", "2027-01-01")) is None  # touching only
    assert nov.intersect(period("2026-10-01", "2026-11-02")) == period("2026-11-01", "2026-11-02")
    first, second = nov.split(date(2026, 11, 12))
    assert first == period("2026-11-01", "2026-11-12")
    assert second == period("2026-11-12", "2026-12-01")
    assert first.days + second.days == nov.days
    with pytest.raises(ValueError):
        nov.split(date(2026, 11, 1))
    with pytest.raises(ValueError):
        nov.split(date(2026, 12, 1))
    assert nov.covers(first) and not first.covers(nov)
    assert nov.overlaps(first) and not first.overlaps(second)


def test_periods_are_ordered() -> None:
    a = period("2026-11-01", "2026-11-15")
    b = period("2026-11-01", "2026-12-01")
    c = period("2026-11-02", "2026-11-03")
    assert sorted([c, b, a]) == [a, b, c]


@pytest.mark.parametrize(
    ("start", "end", "label"),
    [
        ("2026-11-12", "2026-12-01", "12-30 Nov 2026"),
        ("2026-11-01", "2027-02-01", "1 Nov 2026 - 31 Jan 2027"),
        ("2026-11-15", "2026-12-15", "15 Nov - 14 Dec 2026"),
        ("2026-11-03", "2026-11-04", "3 Nov 2026"),
        ("2028-02-01", "2028-03-01", "1-29 Feb 2028"),
        ("2026-01-01", "2027-01-01", "1 Jan - 31 Dec 2026"),
    ],
)
def test_period_label(start: str, end: str, label: str) -> None:
    assert period(start, end).label() == label


# --------------------------------------------------------------------------- months


def test_month_period() -> None:
    assert month_period("2026-11") == period("2026-11-01", "2026-12-01")
    assert month_period("2026-12") == period("2026-12-01", "2027-01-01")
    assert month_period("2028-02").days == 29


@pytest.mark.parametrize(
    "text", ["2026-13", "2026-00", "2026-1", "202611", "2026-11-01", "", "Nov"]
)
def test_month_period_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="period must be YYYY-MM"):
        month_period(text)


def test_previous_and_next_month() -> None:
    assert previous_month(month_period("2026-01")) == month_period("2025-12")
    assert previous_month(month_period("2026-03")) == month_period("2026-02")
    assert next_month(month_period("2026-12")) == month_period("2027-01")


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        ("2026-01-31", 1, "2026-02-28"),
        ("2028-01-31", 1, "2028-02-29"),
        ("2026-03-31", -1, "2026-02-28"),
        ("2026-05-31", 1, "2026-06-30"),
        ("2026-11-15", 2, "2027-01-15"),
        ("2026-01-15", -13, "2024-12-15"),
        ("2028-02-29", 12, "2029-02-28"),
        ("2026-01-01", 0, "2026-01-01"),
    ],
)
def test_add_months(start: str, months: int, expected: str) -> None:
    assert add_months(date.fromisoformat(start), months) == date.fromisoformat(expected)


def test_parse_date_is_strict() -> None:
    assert parse_date("2026-11-03") == date(2026, 11, 3)
    for bad in ("20261103", "2026-11-3", "03/11/2026", "2026-02-30", "2026-W45-1", " 2026-11-03"):
        with pytest.raises(ValueError):
            parse_date(bad)


# --------------------------------------------------------------------------- billing periods


@pytest.mark.parametrize(
    ("periodicity", "anchor", "day", "start", "end"),
    [
        (P.MONTHLY, 1, "2026-11-14", "2026-11-01", "2026-12-01"),
        (P.MONTHLY, 15, "2026-11-14", "2026-10-15", "2026-11-15"),
        (P.MONTHLY, 15, "2026-11-15", "2026-11-15", "2026-12-15"),
        (P.MONTHLY, 15, "2027-01-02", "2026-12-15", "2027-01-15"),
        (P.QUARTERLY, 1, "2026-05-20", "2026-04-01", "2026-07-01"),
        (P.QUARTERLY, 10, "2026-04-05", "2026-01-10", "2026-04-10"),
        (P.QUARTERLY, 10, "2026-01-09", "2025-10-10", "2026-01-10"),
        (P.QUARTERLY, 28, "2026-12-31", "2026-10-28", "2027-01-28"),
        (P.YEARLY, 1, "2026-07-14", "2026-01-01", "2027-01-01"),
        (P.YEARLY, 5, "2026-01-03", "2025-01-05", "2026-01-05"),
    ],
)
def test_billing_period_containing(
    periodicity: Periodicity, anchor: int, day: str, start: str, end: str
) -> None:
    found = billing_period_containing(periodicity, anchor, date.fromisoformat(day))
    assert found == period(start, end)


def test_billing_period_refuses_bad_anchor() -> None:
    for anchor in (0, 29, 31, -1):
        with pytest.raises(ValueError):
            billing_period_containing(P.MONTHLY, anchor, date(2026, 1, 1))


def test_billing_periods_starting_in() -> None:
    q4 = period("2026-10-01", "2027-01-01")
    assert billing_periods_starting_in(P.MONTHLY, 15, q4) == [
        period("2026-10-15", "2026-11-15"),
        period("2026-11-15", "2026-12-15"),
        period("2026-12-15", "2027-01-15"),
    ]
    assert billing_periods_starting_in(P.QUARTERLY, 1, q4) == [period("2026-10-01", "2027-01-01")]
    assert billing_periods_starting_in(P.YEARLY, 1, q4) == []
    assert billing_periods_starting_in(P.MONTHLY, 1, month_period("2026-11")) == [
        month_period("2026-11")
    ]


periodicities = st.sampled_from(list(Periodicity))
anchors = st.integers(min_value=1, max_value=28)
days = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))


@given(periodicity=periodicities, anchor=anchors, d=days)
def test_billing_periods_tile_time(periodicity: Periodicity, anchor: int, d: date) -> None:
    current = billing_period_containing(periodicity, anchor, d)
    assert current.contains(d)
    assert current.start.day == anchor
    assert (current.start.month - 1) % periodicity.months == 0
    assert add_months(current.start, periodicity.months) == current.end
    # Every day of the period maps back to the same period: no overlap.
    assert billing_period_containing(periodicity, anchor, current.start) == current
    assert billing_period_containing(periodicity, anchor, current.last_day) == current
    # The neighbours touch it: no gap.
    following = billing_period_containing(periodicity, anchor, current.end)
    assert following.start == current.end
    preceding = billing_period_containing(periodicity, anchor, current.start - timedelta(days=1))
    assert preceding.end == current.start


@given(
    periodicity=periodicities,
    anchor=anchors,
    start=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
    length=st.integers(min_value=1, max_value=800),
)
def test_billing_periods_starting_in_matches_brute_force(
    periodicity: Periodicity, anchor: int, start: date, length: int
) -> None:
    window = Period(start, start + timedelta(days=length))
    found = billing_periods_starting_in(periodicity, anchor, window)
    expected = sorted(
        {
            billing_period_containing(periodicity, anchor, d)
            for d in window.iter_days()
            if billing_period_containing(periodicity, anchor, d).start == d
        }
    )
    assert found == expected
    for a, b in zip(found, found[1:], strict=False):
        assert a.end == b.start


# --------------------------------------------------------------------------- time zones


def test_parse_timestamp_with_offset() -> None:
    ts = parse_timestamp("2026-11-03T14:05:00+01:00")
    assert ts == datetime(2026, 11, 3, 13, 5, tzinfo=UTC)
    assert ts.utcoffset() == timedelta(hours=1)
    assert parse_timestamp("2026-11-03T13:05:00Z") == ts
    assert parse_timestamp("2026-11-03T14:05") == ts  # local time in Europe/Paris
    assert parse_timestamp("2026-11-03 14:05:00") == ts
    assert parse_timestamp("2026-11-03T14:05:00.250000+01:00").microsecond == 250000
    assert parse_timestamp("2026-11-03T14:05", tz="UTC") == datetime(2026, 11, 3, 14, 5, tzinfo=UTC)


def test_spring_forward_gap_does_not_exist() -> None:
    with pytest.raises(ValueError, match="does not exist"):
        parse_timestamp("2026-03-29T02:30")
    with pytest.raises(ValueError, match="does not exist"):
        parse_timestamp("2026-03-29T02:00:00")
    # Just before and after the gap are fine.
    assert parse_timestamp("2026-03-29T01:59:59").utcoffset() == timedelta(hours=1)
    assert parse_timestamp("2026-03-29T03:00:00").utcoffset() == timedelta(hours=2)
    # With an explicit offset the instant is unambiguous.
    assert parse_timestamp("2026-03-29T02:30:00+01:00") == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_autumn_fold_takes_first_occurrence() -> None:
    ts = parse_timestamp("2026-10-25T02:30")
    assert ts.fold == 0
    assert ts.utcoffset() == timedelta(hours=2)  # still summer time
    assert ts == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    second = parse_timestamp("2026-10-25T02:30+01:00")
    assert second == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert second - ts == timedelta(hours=1)


@pytest.mark.parametrize(
    "text",
    ["2026-11-03", "20261103T1405", "2026-11-03T14", "2026-11-03T25:00", "yesterday", ""],
)
def test_parse_timestamp_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="invalid timestamp"):
        parse_timestamp(text)


def test_unknown_time_zone() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        parse_timestamp("2026-11-03T14:05", tz="Europe/Atlantis")


def test_local_date() -> None:
    late = parse_timestamp("2026-11-30T23:30:00Z")
    assert local_date(late) == date(2026, 12, 1)
    assert local_date(late, "UTC") == date(2026, 11, 30)
    with pytest.raises(ValueError):
        local_date(datetime(2026, 11, 30, 23, 30))


def test_fold_timestamps_compare_sort_and_hash_by_instant() -> None:
    first = parse_timestamp("2026-10-25T02:45")  # 00:45 UTC, summer time
    second = parse_timestamp("2026-10-25T02:15+01:00")  # 01:15 UTC, winter time
    assert first < second
    assert sorted([second, first]) == [first, second]
    same_as_first = parse_timestamp("2026-10-25T00:45:00Z")
    assert same_as_first == first
    assert len({first, same_as_first, second}) == 2
    assert first.utcoffset() == timedelta(hours=2)
    assert second.utcoffset() == timedelta(hours=1)
