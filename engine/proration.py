"""Proration: which exact share of a billing period a partial service is billed.

Contract:
- ``served_fraction`` returns an exact ``Fraction`` in [0, 1]; only the part of ``served``
  inside ``billing_period`` counts.
- ``actual_days``: served calendar days / calendar days of the billing period.
- ``days_30``: every month counts 30 days whatever its length, through the boundary position
  ``p(d) = 30 * (12 * year + month) + min(day - 1, 30)``; the day count of ``[s, e)`` is
  ``p(e) - p(s)`` (so the 31st weighs nothing and the end of February weighs extra days).
- ``none``: the whole period as soon as one day is served.
- Without a minimum, ``actual_days`` and ``days_30`` are additive: splitting ``served`` at any
  date gives fractions whose sum is exactly the fraction of the whole.
- ``minimum_days``: a non-empty partial service counts at least that many days (in the method's
  day count), the fraction being capped at 1.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from dsl.exact import Fraction
from engine.calendar import Period

__all__ = [
    "ProrationMethod",
    "ProrationPolicy",
    "day_count",
    "days_30_position",
    "describe_fraction",
    "served_days",
    "served_fraction",
]


class ProrationMethod(StrEnum):
    ACTUAL_DAYS = "actual_days"
    DAYS_30 = "days_30"
    NONE = "none"


class ProrationPolicy:
    """A named proration: its method and the minimum of days a partial service counts.

    Written out rather than a frozen dataclass, as `Period` (engine/calendar.py): mypyc
    compiles this module. Read-only; `method` also takes the method's name."""

    __slots__ = ("_name", "_method", "_minimum_days")

    def __init__(self, name: str, method: ProrationMethod | str, minimum_days: int = 0) -> None:
        if isinstance(minimum_days, bool) or not isinstance(minimum_days, int):
            raise TypeError("minimum_days must be an integer")
        if minimum_days < 0:
            raise ValueError(f"minimum_days must be >= 0, not {minimum_days}")
        self._name = name
        self._method = method if isinstance(method, ProrationMethod) else ProrationMethod(method)
        self._minimum_days = minimum_days

    @property
    def name(self) -> str:
        return self._name

    @property
    def method(self) -> ProrationMethod:
        return self._method

    @property
    def minimum_days(self) -> int:
        return self._minimum_days

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProrationPolicy):
            return NotImplemented
        return (self._name, self._method, self._minimum_days) == (other._name, other._method, other._minimum_days)

    def __hash__(self) -> int:
        return hash((self._name, self._method, self._minimum_days))

    def __repr__(self) -> str:
        return f"ProrationPolicy(name={self._name!r}, method={self._method!r}, minimum_days={self._minimum_days!r})"

    def __reduce__(self) -> tuple[type[ProrationPolicy], tuple[str, ProrationMethod, int]]:
        return (ProrationPolicy, (self._name, self._method, self._minimum_days))


def days_30_position(d: date) -> int:
    """Boundary position of ``d`` on the 30-day-month axis."""
    return 30 * (12 * d.year + d.month) + min(d.day - 1, 30)


def day_count(method: ProrationMethod, period: Period) -> int:
    """Length of ``period`` in the day count of ``method`` (calendar days for ``none``)."""
    if method is ProrationMethod.DAYS_30:
        return days_30_position(period.end) - days_30_position(period.start)
    return period.days


def _share(policy: ProrationPolicy, billing_period: Period, served: Period) -> tuple[int, int, int, bool]:
    """(days counted, days of the billing period, days served before the minimum, whether the
    minimum applied)."""
    inside = billing_period.intersect(served)
    method = policy.method
    total = day_count(method, billing_period)
    if inside is None:
        return (0, total, 0, False)
    if method is ProrationMethod.NONE:
        return (total, total, inside.days, False)
    raw = day_count(method, inside)
    counted = raw
    minimum_applied = False
    if inside != billing_period and raw < policy.minimum_days:
        counted = min(policy.minimum_days, total)
        minimum_applied = counted > raw
    return (counted, total, raw, minimum_applied)


def served_fraction(policy: ProrationPolicy, billing_period: Period, served: Period) -> Fraction:
    """Exact share of ``billing_period`` billed for service over ``served``."""
    counted, total, _, _ = _share(policy, billing_period, served)
    if total == 0:
        # Degenerate days_30 period (e.g. [Jan 31, Feb 1)): served means fully served.
        return Fraction(1) if billing_period.intersect(served) is not None else Fraction(0)
    return min(Fraction(counted, total), Fraction(1))


def served_days(policy: ProrationPolicy, billing_period: Period, served: Period) -> int:
    """Days counted for ``served`` in ``billing_period`` (numerator of the fraction)."""
    return _share(policy, billing_period, served)[0]


def describe_fraction(policy: ProrationPolicy, billing_period: Period, served: Period) -> str:
    """Explain the fraction for an invoice line, e.g. ``19/30 days``."""
    counted, total, raw, minimum_applied = _share(policy, billing_period, served)
    if policy.method is ProrationMethod.NONE:
        return "whole period" if counted else "not served"
    text = f"{counted}/{total} days"
    if minimum_applied:
        text += f" (minimum {policy.minimum_days} days, {raw} served)"
    return text
