"""Billing calendar: periods, months, billing periodicities and time zones.

Contract:
- ``Period(start, end)`` is a non-empty half-open date interval ``[start, end)``; ``last_day``
  is the inclusive end shown to customers. Periods are immutable and ordered by (start, end).
- Billing periods of a periodicity and an anchor day (1..28) tile time: every date belongs to
  exactly one billing period, consecutive periods touch without gap or overlap. Monthly periods
  start every month on the anchor day, quarterly ones in January/April/July/October, yearly
  ones in January.
- Timestamps without an offset are local time in the given IANA time zone; a local time that
  does not exist (spring-forward gap) is refused, an ambiguous one (autumn fold) is the first
  occurrence (fold=0, summer time). Parsed timestamps carry the fixed UTC offset in force in
  that zone at that instant (``+01:00`` / ``+02:00`` for Paris), never a ZoneInfo: comparison,
  sorting and hashing of aware datetimes with a ZoneInfo are wrong around the autumn fold
  (PEP 495), those of fixed offsets are exact.
- Dates are strict ISO ``YYYY-MM-DD``.
"""

from __future__ import annotations

import calendar as _stdlib_calendar
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "DEFAULT_TIMEZONE",
    "Period",
    "Periodicity",
    "add_months",
    "billing_period_containing",
    "billing_periods_starting_in",
    "get_zone",
    "local_date",
    "month_period",
    "next_month",
    "parse_date",
    "parse_timestamp",
    "previous_month",
]

DEFAULT_TIMEZONE = "Europe/Paris"

_MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ONE_DAY = timedelta(days=1)


def _day_label(d: date, *, with_month: bool = True, with_year: bool = True) -> str:
    parts = [str(d.day)]
    if with_month:
        parts.append(_MONTH_ABBR[d.month - 1])
    if with_year:
        parts.append(str(d.year))
    return " ".join(parts)


class Period:
    """A non-empty half-open date interval ``[start, end)``, ordered by (start, end).

    Written out rather than a frozen dataclass: a run builds hundreds of thousands, and mypyc
    compiles this class (engine.evaluator.native) to a native one only when its constructor,
    comparisons and hash are plain methods. Read-only: ``start`` and ``end`` are properties."""

    __slots__ = ("_start", "_end", "_days", "_last_day")

    def __init__(self, start: date, end: date) -> None:
        if type(start) is not date or type(end) is not date:  # the common case costs two checks
            for name, value in (("start", start), ("end", end)):
                if isinstance(value, datetime) or not isinstance(value, date):
                    raise TypeError(f"Period.{name} must be a date, not {type(value).__name__}")
        if end <= start:
            raise ValueError(f"empty period: end {end} is not after start {start}")
        self._start = start
        self._end = end
        # Computed when first asked (most periods never are), then kept.
        self._days = -1
        self._last_day: date | None = None

    @property
    def start(self) -> date:
        return self._start

    @property
    def end(self) -> date:
        return self._end

    @property
    def days(self) -> int:
        if self._days < 0:
            self._days = (self._end - self._start).days
        return self._days

    @property
    def last_day(self) -> date:
        """Inclusive end (the last day served/billed)."""
        last = self._last_day
        if last is None:
            last = self._last_day = self._end - _ONE_DAY
        return last

    @classmethod
    def from_inclusive(cls, first_day: date, last_day: date) -> Period:
        """The period from ``first_day`` to ``last_day``, both included."""
        return cls(first_day, last_day + _ONE_DAY)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        return self._start == other._start and self._end == other._end

    def __hash__(self) -> int:
        return hash((self._start, self._end))

    def __lt__(self, other: Period) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        return (self._start, self._end) < (other._start, other._end)

    def __le__(self, other: Period) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        return (self._start, self._end) <= (other._start, other._end)

    def __gt__(self, other: Period) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        return (self._start, self._end) > (other._start, other._end)

    def __ge__(self, other: Period) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        return (self._start, self._end) >= (other._start, other._end)

    def __repr__(self) -> str:
        return f"Period(start={self._start!r}, end={self._end!r})"

    def __reduce__(self) -> tuple[type[Period], tuple[date, date]]:
        return (Period, (self._start, self._end))

    def contains(self, d: date) -> bool:
        return self.start <= d < self.end

    def __contains__(self, d: object) -> bool:
        return isinstance(d, date) and not isinstance(d, datetime) and self.contains(d)

    def covers(self, other: Period) -> bool:
        """True when ``other`` lies entirely inside this period."""
        return self.start <= other.start and other.end <= self.end

    def overlaps(self, other: Period) -> bool:
        return self.start < other.end and other.start < self.end

    def intersect(self, other: Period) -> Period | None:
        start = max(self.start, other.start)
        end = min(self.end, other.end)
        return Period(start, end) if start < end else None

    def split(self, at: date) -> tuple[Period, Period]:
        """``[start, at)`` and ``[at, end)``; ``at`` must lie strictly inside the period."""
        if not self.start < at < self.end:
            raise ValueError(f"cannot split {self} at {at}: the date must be strictly inside")
        return Period(self.start, at), Period(at, self.end)

    def iter_days(self) -> Iterator[date]:
        d = self.start
        while d < self.end:
            yield d
            d += _ONE_DAY

    def label(self) -> str:
        """Customer-facing inclusive label: ``12-30 Nov 2026``, ``1 Nov 2026 - 31 Jan 2027``."""
        first, last = self.start, self.last_day
        if first == last:
            return _day_label(first)
        if (first.year, first.month) == (last.year, last.month):
            return f"{first.day}-{_day_label(last)}"
        if first.year == last.year:
            return f"{_day_label(first, with_year=False)} - {_day_label(last)}"
        return f"{_day_label(first)} - {_day_label(last)}"

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MONTH_RE = re.compile(r"([0-9]{4})-([0-9]{2})")


def parse_date(text: str) -> date:
    """Strict ISO date ``YYYY-MM-DD``; ValueError otherwise."""
    if not _DATE_RE.fullmatch(text):
        raise ValueError(f"invalid date {text!r}: expected YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"invalid date {text!r}: no such day") from None


def _month_start(year: int, month: int) -> date:
    return date(year, month, 1)


def add_months(d: date, n: int) -> date:
    """``d`` shifted by ``n`` months, the day clamped to the end of the target month."""
    index = d.year * 12 + (d.month - 1) + n
    year, month0 = divmod(index, 12)
    month = month0 + 1
    last = _stdlib_calendar.monthrange(year, month)[1]
    return date(year, month, min(d.day, last))


def month_period(text: str) -> Period:
    """``"2026-11"`` -> ``[2026-11-01, 2026-12-01)``."""
    match = _MONTH_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1:
        raise ValueError("period must be YYYY-MM")
    start = _month_start(int(match.group(1)), int(match.group(2)))
    return Period(start, add_months(start, 1))


def previous_month(period: Period) -> Period:
    """The calendar month before the month containing ``period.start``."""
    start = add_months(_month_start(period.start.year, period.start.month), -1)
    return Period(start, add_months(start, 1))


def next_month(period: Period) -> Period:
    """The calendar month after the month containing ``period.start``."""
    start = add_months(_month_start(period.start.year, period.start.month), 1)
    return Period(start, add_months(start, 1))


class Periodicity(StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"

    @property
    def months(self) -> int:
        return {"monthly": 1, "quarterly": 3, "yearly": 12}[self.value]


def _check_anchor(anchor_day: int) -> None:
    if isinstance(anchor_day, bool) or not isinstance(anchor_day, int) or not 1 <= anchor_day <= 28:
        raise ValueError(f"anchor day must be an integer from 1 to 28, not {anchor_day!r}")


def billing_period_containing(periodicity: Periodicity, anchor_day: int, d: date) -> Period:
    """The billing period of ``periodicity`` (starting on ``anchor_day``) that contains ``d``."""
    _check_anchor(anchor_day)
    months = Periodicity(periodicity).months
    index = d.year * 12 + (d.month - 1)  # months since year 0
    if d.day < anchor_day:
        index -= 1
    index -= index % months  # align on Jan (and Apr/Jul/Oct for quarterly)
    year, month0 = divmod(index, 12)
    start = date(year, month0 + 1, anchor_day)
    return Period(start, add_months(start, months))


def billing_periods_starting_in(
    periodicity: Periodicity, anchor_day: int, window: Period
) -> list[Period]:
    """Billing periods whose start date lies in ``window``, in chronological order."""
    current = billing_period_containing(periodicity, anchor_day, window.start)
    months = Periodicity(periodicity).months
    if current.start < window.start:
        current = Period(current.end, add_months(current.end, months))
    periods: list[Period] = []
    while current.start < window.end:
        periods.append(current)
        current = Period(current.end, add_months(current.end, months))
    return periods


def get_zone(tz: str) -> ZoneInfo:
    """The IANA time zone ``tz``; ValueError when unknown."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r}") from None


_TIMESTAMP_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?P<offset>Z|[+-][0-9]{2}:[0-9]{2})?"
)


def _fixed_offset(dt: datetime) -> datetime:
    offset = dt.utcoffset()
    assert offset is not None
    fixed = _FIXED_OFFSETS.get(offset)
    if fixed is None:
        fixed = _FIXED_OFFSETS.setdefault(offset, timezone(offset))
    return dt.replace(tzinfo=fixed, fold=0)


_FIXED_OFFSETS: dict[timedelta, timezone] = {}


def parse_timestamp(text: str, tz: str = DEFAULT_TIMEZONE) -> datetime:
    """Parse an ISO 8601 timestamp into an aware datetime at ``tz``'s local offset.

    Accepted: ``2026-11-03T14:05:00+01:00``, ``2026-11-03T14:05:00Z``, ``2026-11-03 14:05``
    (local time in ``tz``), optional seconds and microseconds.
    """
    zone = get_zone(tz)
    match = _TIMESTAMP_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid timestamp {text!r}: expected YYYY-MM-DDTHH:MM[:SS][+HH:MM|Z]")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"invalid timestamp {text!r}: no such date or time") from None
    if parsed.tzinfo is not None:
        return _fixed_offset(parsed.astimezone(zone))
    local = parsed.replace(tzinfo=zone, fold=0)
    roundtrip = local.astimezone(UTC).astimezone(zone)
    if roundtrip.replace(tzinfo=None) != parsed:
        raise ValueError(
            f"invalid timestamp {text!r}: this local time does not exist in {tz} "
            "(clocks skip it when summer time starts)"
        )
    return _fixed_offset(local)


def local_date(dt: datetime, tz: str = DEFAULT_TIMEZONE) -> date:
    """The calendar date of the aware datetime ``dt`` in time zone ``tz``."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"local_date needs an aware datetime, got naive {dt.isoformat()}")
    return dt.astimezone(get_zone(tz)).date()
