"""Tests of engine.proration: exact served fractions and their additivity."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dsl.exact import Fraction
from engine.calendar import Period, Periodicity, billing_period_containing, month_period
from engine.proration import (
    ProrationMethod,
    ProrationPolicy,
    day_count,
    days_30_position,
    describe_fraction,
    served_days,
    served_fraction,
)

ACTUAL = ProrationPolicy("actual", ProrationMethod.ACTUAL_DAYS)
DAYS_30 = ProrationPolicy("thirty", ProrationMethod.DAYS_30)
WHOLE = ProrationPolicy("whole", ProrationMethod.NONE)


def period(start: str, end: str) -> Period:
    return Period(date.fromisoformat(start), date.fromisoformat(end))


NOV = month_period("2026-11")


def test_actual_days_examples() -> None:
    served = period("2026-11-12", "2027-03-01")
    assert served_fraction(ACTUAL, NOV, served) == Fraction(19, 30)
    assert describe_fraction(ACTUAL, NOV, served) == "19/30 days"
    assert served_fraction(ACTUAL, month_period("2026-02"), period("2026-02-15", "2026-03-01")) == (
        Fraction(14, 28)
    )
    assert served_fraction(ACTUAL, month_period("2028-02"), period("2028-02-15", "2028-03-01")) == (
        Fraction(15, 29)
    )
    assert served_fraction(ACTUAL, NOV, NOV) == 1
    assert served_fraction(ACTUAL, NOV, period("2026-12-01", "2027-01-01")) == 0
    assert describe_fraction(ACTUAL, NOV, period("2026-12-01", "2027-01-01")) == "0/30 days"
    quarter = period("2026-01-01", "2026-04-01")
    assert served_fraction(ACTUAL, quarter, period("2026-03-01", "2026-04-01")) == Fraction(31, 90)


def test_days_30_examples() -> None:
    feb = month_period("2026-02")
    jan = month_period("2026-01")
    assert served_fraction(DAYS_30, NOV, period("2026-11-12", "2026-12-01")) == Fraction(19, 30)
    # February counts 30 days: from the 15th, 16 days remain (28th counts 3).
    assert served_fraction(DAYS_30, feb, period("2026-02-15", "2026-03-01")) == Fraction(16, 30)
    assert describe_fraction(DAYS_30, feb, period("2026-02-15", "2026-03-01")) == "16/30 days"
    assert served_fraction(DAYS_30, feb, period("2026-02-01", "2026-02-28")) == Fraction(27, 30)
    # A 31-day month counts 30: the 31st weighs nothing.
    assert served_fraction(DAYS_30, jan, period("2026-01-01", "2026-01-31")) == 1
    assert served_fraction(DAYS_30, jan, period("2026-01-31", "2026-02-01")) == 0
    assert served_fraction(DAYS_30, jan, period("2026-01-16", "2026-02-01")) == Fraction(15, 30)
    assert day_count(ProrationMethod.DAYS_30, period("2026-01-01", "2027-01-01")) == 360
    assert days_30_position(date(2026, 1, 31)) == days_30_position(date(2026, 2, 1))


def test_none_method() -> None:
    assert served_fraction(WHOLE, NOV, period("2026-11-30", "2026-12-05")) == 1
    assert served_fraction(WHOLE, NOV, period("2026-12-01", "2026-12-05")) == 0
    assert describe_fraction(WHOLE, NOV, period("2026-11-30", "2026-12-05")) == "whole period"
    assert describe_fraction(WHOLE, NOV, period("2026-12-01", "2026-12-05")) == "not served"


def test_minimum_days() -> None:
    policy = ProrationPolicy("min5", ProrationMethod.ACTUAL_DAYS, minimum_days=5)
    two_days = period("2026-11-29", "2026-12-01")
    assert served_fraction(policy, NOV, two_days) == Fraction(5, 30)
    assert served_days(policy, NOV, two_days) == 5
    assert describe_fraction(policy, NOV, two_days) == "5/30 days (minimum 5 days, 2 served)"
    assert served_fraction(policy, NOV, period("2026-11-11", "2026-12-01")) == Fraction(20, 30)
    assert served_fraction(policy, NOV, NOV) == 1
    assert served_fraction(policy, NOV, period("2026-12-01", "2026-12-02")) == 0
    capped = ProrationPolicy("min45", ProrationMethod.ACTUAL_DAYS, minimum_days=45)
    assert served_fraction(capped, NOV, two_days) == 1
    thirty = ProrationPolicy("min10", ProrationMethod.DAYS_30, minimum_days=10)
    assert served_fraction(thirty, month_period("2026-01"), period("2026-01-31", "2026-02-05")) == (
        Fraction(10, 30)
    )
    with pytest.raises(ValueError):
        ProrationPolicy("bad", ProrationMethod.ACTUAL_DAYS, minimum_days=-1)


def test_policy_accepts_method_names() -> None:
    policy = ProrationPolicy("p", "days_30")  # type: ignore[arg-type]
    assert policy.method is ProrationMethod.DAYS_30


# --------------------------------------------------------------------------- properties

dates = st.dates(min_value=date(2023, 1, 1), max_value=date(2029, 12, 31))
additive_policies = st.sampled_from([ACTUAL, DAYS_30])


@st.composite
def billing_periods(draw: st.DrawFn) -> Period:
    """Billing periods of every periodicity and anchor, or arbitrary spans."""
    if draw(st.booleans()):
        return billing_period_containing(
            draw(st.sampled_from(list(Periodicity))),
            draw(st.integers(min_value=1, max_value=28)),
            draw(dates),
        )
    start = draw(dates)
    return Period(start, start + timedelta(days=draw(st.integers(min_value=1, max_value=400))))


@st.composite
def spans(draw: st.DrawFn, around: Period) -> Period:
    start = draw(st.dates(min_value=around.start - timedelta(days=40), max_value=around.last_day))
    end = draw(
        st.dates(min_value=start + timedelta(days=1), max_value=around.end + timedelta(days=40))
    )
    return Period(start, end)


@given(policy=additive_policies, data=st.data())
def test_additivity_split_at_any_date(policy: ProrationPolicy, data: st.DataObject) -> None:
    billing = data.draw(billing_periods())
    served = data.draw(spans(billing))
    assume(served.days >= 2)
    at = data.draw(st.dates(min_value=served.start + timedelta(days=1), max_value=served.last_day))
    first, second = served.split(at)
    whole = served_fraction(policy, billing, served)
    assert served_fraction(policy, billing, first) + served_fraction(policy, billing, second) == (
        whole
    )


@given(policy=additive_policies, data=st.data())
def test_additivity_over_many_cuts(policy: ProrationPolicy, data: st.DataObject) -> None:
    billing = data.draw(billing_periods())
    inner = sorted(
        set(
            data.draw(
                st.lists(
                    st.dates(min_value=billing.start, max_value=billing.end),
                    max_size=6,
                )
            )
        )
        | {billing.start, billing.end}
    )
    pieces = [Period(a, b) for a, b in zip(inner, inner[1:], strict=False)]
    assert sum(served_fraction(policy, billing, p) for p in pieces) == 1


@pytest.mark.parametrize(
    "month", ["2024-02", "2026-02", "2028-02", "2026-01", "2026-04", "2026-12"]
)
def test_daily_pieces_sum_to_one(month: str) -> None:
    billing = month_period(month)
    for policy in (ACTUAL, DAYS_30):
        days = [Period(d, d + timedelta(days=1)) for d in billing.iter_days()]
        assert sum(served_fraction(policy, billing, p) for p in days) == 1


@given(data=st.data(), minimum=st.integers(min_value=0, max_value=40))
def test_fraction_bounds_and_monotony(data: st.DataObject, minimum: int) -> None:
    method = data.draw(st.sampled_from(list(ProrationMethod)))
    policy = ProrationPolicy("p", method, minimum_days=minimum)
    billing = data.draw(billing_periods())
    served = data.draw(spans(billing))
    fraction = served_fraction(policy, billing, served)
    assert 0 <= fraction <= 1
    assert (fraction == 0) == (
        billing.intersect(served) is None
        or (method is ProrationMethod.DAYS_30 and minimum == 0 and fraction == 0)
    )
    assert served_fraction(policy, billing, billing) == 1
    # Serving more never bills less.
    longer = Period(served.start, served.end + timedelta(days=data.draw(st.integers(0, 40)) + 1))
    assert served_fraction(policy, billing, longer) >= fraction
