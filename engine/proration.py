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

from dataclasses import dataclass
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


@dataclass(frozen=True)
class ProrationPolicy:
    name: str
    method: ProrationMethod
    minimum_days: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.method, ProrationMethod):
            object.__setattr__(self, "method", ProrationMethod(self.method))
        if isinstance(self.minimum_days, bool) or not isinstance(self.minimum_days, int):
            raise TypeError("minimum_days must be an integer")
        if self.minimum_days < 0:
            raise ValueError(f"minimum_days must be >= 0, not {self.minimum_days}")


def days_30_position(d: date) -> int:
    """Boundary position of ``d`` on the 30-day-month axis."""
    return 30 * (12 * d.year + d.month) + min(d.day - 1, 30)


def day_count(method: ProrationMethod, period: Period) -> int:
    """Length of ``period`` in the day count of ``method`` (calendar days for ``none``)."""
    if method is ProrationMethod.DAYS_30:
        return days_30_position(period.end) - days_30_position(period.start)
    return period.days


@dataclass(frozen=True)
class _Share:
    served: int  # days counted for the service (after the minimum)
    total: int  # days of the billing period
    raw: int  # days counted before the minimum
    minimum_applied: bool


def _share(policy: ProrationPolicy, billing_period: Period, served: Period) -> _Share:
    inside = billing_period.intersect(served)
    total = day_count(policy.method, billing_period)
    if inside is None:
        return _Share(0, total, 0, False)
    if policy.method is ProrationMethod.NONE:
        return _Share(total, total, inside.days, False)
    raw = day_count(policy.method, inside)
    counted = raw
    minimum_applied = False
    if inside != billing_period and raw < policy.minimum_days:
        counted = min(policy.minimum_days, total)
        minimum_applied = counted > raw
    return _Share(counted, total, raw, minimum_applied)


def served_fraction(policy: ProrationPolicy, billing_period: Period, served: Period) -> Fraction:
    """Exact share of ``billing_period`` billed for service over ``served``."""
    share = _share(policy, billing_period, served)
    if share.total == 0:
        # Degenerate days_30 period (e.g. [Jan 31, Feb 1)): served means fully served.
        return Fraction(1) if billing_period.intersect(served) is not None else Fraction(0)
    return min(Fraction(share.served, share.total), Fraction(1))


def served_days(policy: ProrationPolicy, billing_period: Period, served: Period) -> int:
    """Days counted for ``served`` in ``billing_period`` (numerator of the fraction)."""
    return _share(policy, billing_period, served).served


def describe_fraction(policy: ProrationPolicy, billing_period: Period, served: Period) -> str:
    """Explain the fraction for an invoice line, e.g. ``19/30 days``."""
    share = _share(policy, billing_period, served)
    if policy.method is ProrationMethod.NONE:
        return "whole period" if share.served else "not served"
    text = f"{share.served}/{share.total} days"
    if share.minimum_applied:
        text += f" (minimum {policy.minimum_days} days, {share.raw} served)"
    return text
