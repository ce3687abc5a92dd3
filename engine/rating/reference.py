"""Reference rater: a plain per-record Python implementation of every rating rule (the oracle).

It is deliberately naive (dict lookups per prefix length, ``zoneinfo`` per instant, one second
at a time for the ``split`` band policy, ``fractions.Fraction`` money) so that it can be read
against the rules and used to check :mod:`engine.rating.kernel`.  Rules, in order, per record:

1. unanswered (``answered`` false or duration 0) with policy ``drop`` -> status dropped;
2. callee normalised (:func:`engine.rating.numbers.normalise`); invalid -> status invalid;
3. deck in force at the call's local start date, longest prefix; none -> status unrouted
   (zone "", 0 s, amount 0, cost 0);
4. unanswered with policy ``free`` -> 0; ``connect_fee`` -> the connect fee (rounded like any
   amount, then capped; no minimum charge); status unanswered, 0 s;
5. ``billed = first if d <= first else first + ceil((d - first) / next) * next`` with the
   plan's increments or the row's; then ``billed = max(billed, minimum_duration_s)``;
6. allowances, chronologically (start, record id) per line or pool: ``used`` billed seconds are
   free (the first seconds of the call); fair use flags records once the cap is crossed;
7. exact amount ``A = [connect_fee if used == 0] + sum_b(seconds_b * price_b) / 60`` over the
   ``billed - used`` priced seconds, all in the start band (``call_start``) or per band of each
   second (``split``, see :class:`engine.rating.plan.TimeBands`);
8. **rounding**: ``per_call_rounding = (step, mode)`` rounds ``A`` to a multiple of ``step``
   micro (up = ceiling, down = floor, half_up, half_even); ``None`` keeps ``A`` exact
   (a Fraction with denominator dividing 60); then ``max(A, minimum_charge)`` if ``used == 0``;
   then ``min(A, max_per_call_micro)``;
9. cost: the same steps with ``cost_deck`` (its own increments, no allowance, no cap).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import holidays as holidays_lib

from dsl.exact import Fraction
from engine.rating.numbers import normalise
from engine.rating.plan import (
    BILLABLE_STATUSES,
    OFFPEAK,
    PEAK,
    STATUS_DROPPED,
    STATUS_INVALID,
    STATUS_RATED,
    STATUS_UNANSWERED,
    STATUS_UNROUTED,
    WEEKEND,
    RateDeck,
    RateDeckRow,
    RatingPlan,
    TimeBands,
)


@dataclass(frozen=True)
class CallRecord:
    record_id: int
    line_id: str | int
    start_utc: int  # UTC epoch seconds
    duration_s: int
    callee: str
    answered: bool = True


@dataclass
class RatedCall:
    record_id: int
    line_id: str | int
    status: int
    zone: str
    band: int  # band at the start instant, -1 when not routed
    billed_s: int
    amount: Fraction  # micro-units (an integer Fraction when per-call rounding is set)
    cost: Fraction
    allowance_used_s: int = 0
    fair_use_flag: bool = False


@dataclass(frozen=True)
class RefLine:
    line_id: str | int
    zone: str
    calls: int
    billed_s: int
    amount: Fraction
    cost: Fraction


class _Bands:
    def __init__(self, b: TimeBands) -> None:
        self.b = b
        self.tz = ZoneInfo(b.tz)
        self._hol: dict[int, object] = {}

    def is_holiday(self, d: date) -> bool:
        if not self.b.holidays_country:
            return False
        h = self._hol.get(d.year)
        if h is None:
            h = holidays_lib.country_holidays(self.b.holidays_country, years=d.year)
            self._hol[d.year] = h
        return d in h  # type: ignore[operator]

    def local(self, utc: int) -> datetime:
        return datetime.fromtimestamp(utc, UTC).astimezone(self.tz)

    def band(self, utc: int) -> int:
        lt = self.local(utc)
        if lt.weekday() in self.b.weekend_days or self.is_holiday(lt.date()):
            return WEEKEND
        sod = lt.hour * 3600 + lt.minute * 60 + lt.second
        if lt.weekday() in self.b.peak_days and self.b.peak_start_s <= sod < self.b.peak_end_s:
            return PEAK
        return OFFPEAK


def find_row(deck: RateDeck, number: str, local_day: date) -> RateDeckRow | None:
    """Longest prefix among rows in force on ``local_day`` (latest effective date wins)."""
    best: dict[str, RateDeckRow] = {}
    for r in deck.rows:
        if r.effective_date is not None and r.effective_date > local_day:
            continue
        cur = best.get(r.prefix)
        if cur is None or (cur.effective_date or date.min) < (r.effective_date or date.min):
            best[r.prefix] = r
    for n in range(len(number), 0, -1):
        hit = best.get(number[:n])
        if hit is not None:
            return hit
    return None


def billed_seconds(d: int, first: int, nxt: int) -> int:
    if d <= first:
        return first
    return first + -(-(d - first) // nxt) * nxt


def round_micro(a: Fraction, step: int, mode: str) -> Fraction:
    q = a / step
    fl = q.numerator // q.denominator
    rem = q - fl
    if mode == "down" or rem == 0:
        k = fl
    elif mode == "up":
        k = fl + 1
    elif mode == "half_up":
        k = fl + 1 if rem >= Fraction(1, 2) else fl
    else:  # half_even
        k = fl + 1 if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and fl % 2 == 1) else fl
    return Fraction(k * step)


class ReferenceRater:
    def __init__(self, plan: RatingPlan, pools: Mapping[str | int, str | int] | None = None):
        self.plan = plan
        self.bands = _Bands(plan.bands)
        self.pools = dict(pools or {})

    def _amount(self, row: RateDeckRow, start: int, offset: int, seconds: int,
                used: int, unanswered: bool, cap: bool) -> Fraction:
        p = self.plan
        if unanswered:
            a = Fraction(row.connect_fee) if p.unanswered == "connect_fee" else Fraction(0)
        else:
            a = Fraction(row.connect_fee if used == 0 else 0)
            if p.bands.policy == "call_start":
                a += Fraction(seconds * row.price(self.bands.band(start)), 60)
            else:
                for i in range(seconds):
                    a += Fraction(row.price(self.bands.band(start + offset + i)), 60)
        if p.per_call_rounding is not None:
            a = round_micro(a, *p.per_call_rounding)
        if not unanswered and used == 0:
            a = max(a, Fraction(row.minimum_charge))
        if cap and p.max_per_call_micro is not None:
            a = min(a, Fraction(p.max_per_call_micro))
        return a

    def _billed(self, row: RateDeckRow, d: int, use_plan_incr: bool) -> int:
        p = self.plan
        if use_plan_incr and p.increments is not None:
            first, nxt = p.increments
        else:
            first, nxt = row.first_increment_s, row.next_increment_s
        return max(billed_seconds(d, first, nxt), p.minimum_duration_s)

    def rate(self, records: Iterable[CallRecord]) -> list[RatedCall]:
        """Rate records (any order); results in input order."""
        p = self.plan
        recs = list(records)
        out: list[RatedCall] = []
        pre: list[tuple[RateDeckRow | None, bool]] = []
        for r in recs:
            unanswered = (not r.answered) or r.duration_s == 0
            if unanswered and p.unanswered == "drop":
                out.append(RatedCall(r.record_id, r.line_id, STATUS_DROPPED, "", -1, 0,
                                     Fraction(0), Fraction(0)))
                pre.append((None, True))
                continue
            num = normalise(r.callee, p.default_country_code)
            if num is None:
                out.append(RatedCall(r.record_id, r.line_id, STATUS_INVALID, "", -1, 0,
                                     Fraction(0), Fraction(0)))
                pre.append((None, True))
                continue
            day = self.bands.local(r.start_utc).date()
            row = find_row(p.deck, num, day)
            if row is None:
                out.append(RatedCall(r.record_id, r.line_id, STATUS_UNROUTED, "", -1, 0,
                                     Fraction(0), Fraction(0)))
                pre.append((None, True))
                continue
            band = self.bands.band(r.start_utc)
            status = STATUS_UNANSWERED if unanswered else STATUS_RATED
            billed = 0 if unanswered else self._billed(row, r.duration_s, True)
            out.append(RatedCall(r.record_id, r.line_id, status, row.zone, band, billed,
                                 Fraction(0), Fraction(0)))
            pre.append((row, unanswered))
        # allowances and fair use, chronological
        order = sorted(range(len(recs)), key=lambda i: (recs[i].start_utc, recs[i].record_id))
        remaining: list[dict[object, int]] = [{} for _ in p.allowances]
        fair: dict[object, int] = {}
        for i in order:
            rc = out[i]
            if rc.status != STATUS_RATED:
                continue
            left = rc.billed_s
            for k, al in enumerate(p.allowances):
                if al.zones and rc.zone not in al.zones:
                    continue
                holder = self._holder(rc.line_id, al.scope)
                rem = remaining[k].get(holder, al.quantity_s)
                take = min(rem, left)
                remaining[k][holder] = rem - take
                left -= take
                rc.allowance_used_s += take
            if p.fair_use is not None:
                holder = self._holder(rc.line_id, p.fair_use.scope)
                fair[holder] = fair.get(holder, 0) + rc.billed_s
                rc.fair_use_flag = fair[holder] > p.fair_use.cap_s
        # amounts
        for r, rc, (row, unanswered) in zip(recs, out, pre, strict=True):
            if row is None:
                continue
            used = rc.allowance_used_s
            rc.amount = self._amount(row, r.start_utc, used, rc.billed_s - used, used,
                                     unanswered, True)
            if p.cost_deck is not None:
                num = normalise(r.callee, p.default_country_code)
                assert num is not None
                crow = find_row(p.cost_deck, num, self.bands.local(r.start_utc).date())
                if crow is not None:
                    cb = 0 if unanswered else self._billed(crow, r.duration_s, False)
                    rc.cost = self._amount(crow, r.start_utc, 0, cb, 0, unanswered, False)
        return out

    def _holder(self, line_id: str | int, scope: str) -> object:
        if scope == "pooled":
            return ("pool", self.pools.get(line_id, ("line", line_id)))
        return ("line", line_id)


def rate_reference(plan: RatingPlan, records: Iterable[CallRecord],
                   pools: Mapping[str | int, str | int] | None = None) -> list[RatedCall]:
    return ReferenceRater(plan, pools).rate(records)


def invoice_lines_reference(rated: Iterable[RatedCall]) -> list[RefLine]:
    """GROUP BY (line_id, zone) over billable statuses, sorted by (str(line_id), zone)."""
    acc: dict[tuple[str | int, str], list] = {}
    for rc in rated:
        if rc.status not in BILLABLE_STATUSES:
            continue
        a = acc.setdefault((rc.line_id, rc.zone), [0, 0, Fraction(0), Fraction(0)])
        a[0] += 1
        a[1] += rc.billed_s
        a[2] += rc.amount
        a[3] += rc.cost
    return [RefLine(k[0], k[1], *v) for k, v in sorted(acc.items(), key=lambda kv: (str(kv[0][0]), kv[0][1]))]
