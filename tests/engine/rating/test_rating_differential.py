"""Differential test: the vectorised kernel equals the reference rater on generated decks,
plans and records (nested prefixes, effective dates, both band policies, holidays, DST nights,
every unanswered policy and rounding mode, allowances, fair use, cost deck), including when the
records are rated in two chronological batches (allowance state carried)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsl.exact import Fraction
from engine.rating.kernel import LineIndex, Rater, invoice_lines, rate_records
from engine.rating.numbers import normalise_array
from engine.rating.plan import (
    STATUS_NAMES,
    Allowance,
    FairUse,
    RateDeck,
    RateDeckRow,
    RatingPlan,
    TimeBands,
)
from engine.rating.reference import CallRecord, invoice_lines_reference, rate_reference

UTC = ZoneInfo("UTC")
# instants near interesting boundaries: DST nights, 11 Nov, a Friday midnight, peak edges
BASES = [int(datetime(*a, tzinfo=UTC).timestamp()) for a in (
    (2026, 3, 29, 0, 50), (2026, 10, 25, 0, 50), (2026, 11, 10, 22, 50), (2026, 11, 13, 22, 50),
    (2026, 11, 10, 6, 50), (2026, 11, 10, 18, 50), (2026, 6, 30, 21, 50), (2026, 7, 1, 12, 0))]

PREFIX_POOL = ["1", "12", "33", "331", "3312", "33123", "336", "3361", "44", "447", "4474",
               "44745", "447451", "4474512", "49", "491", "4915", "33612", "3", "4"]


@st.composite
def decks(draw: st.DrawFn, name: str = "d") -> RateDeck:
    prefixes = draw(st.lists(st.sampled_from(PREFIX_POOL), min_size=1, max_size=10, unique=True))
    rows = []
    zones = ["Z1", "Z2", "Z3", "Z4"]
    for p in prefixes:
        dates = draw(st.lists(st.sampled_from([None, date(2026, 7, 1), date(2026, 11, 11)]),
                              min_size=1, max_size=2, unique=True))
        for eff in dates:
            pk = draw(st.integers(0, 200_000))
            rows.append(RateDeckRow(
                p, draw(st.sampled_from(zones)), pk, draw(st.integers(0, pk)),
                draw(st.integers(0, pk)), draw(st.sampled_from([0, 0, 5000, 79000])),
                draw(st.sampled_from([1, 30, 60, 7])), draw(st.sampled_from([1, 6, 60, 13])),
                draw(st.sampled_from([0, 0, 10000, 100000])), eff))
    return RateDeck(name, tuple(rows))


@st.composite
def plans(draw: st.DrawFn) -> RatingPlan:
    deck = draw(decks())
    bands = TimeBands(
        weekend_days=frozenset(draw(st.sets(st.integers(0, 6), max_size=3))),
        peak_days=frozenset(draw(st.sets(st.integers(0, 6), max_size=7))),
        peak_start=draw(st.sampled_from([time(8), time(3), time(0)])),
        peak_end=draw(st.sampled_from([time(20), time(23, 59, 59), time(8, 30)])),
        holidays_country=draw(st.sampled_from([None, "FR"])),
        policy=draw(st.sampled_from(["call_start", "split"])))
    if bands.peak_start > bands.peak_end:
        bands = TimeBands(policy=bands.policy, holidays_country=bands.holidays_country)
    zones = draw(st.sets(st.sampled_from(["Z1", "Z2", "Z3", "Z4"]), max_size=2))
    allowances = tuple(
        Allowance(f"a{i}", draw(st.integers(0, 400)), frozenset(zones) if i == 0 else frozenset(),
                  draw(st.sampled_from(["line", "pooled"])))
        for i in range(draw(st.integers(0, 2))))
    return RatingPlan(
        deck=deck, bands=bands,
        increments=draw(st.sampled_from([None, None, (30, 6), (60, 60)])),
        minimum_duration_s=draw(st.sampled_from([0, 0, 45])),
        unanswered=draw(st.sampled_from(["drop", "free", "connect_fee"])),
        per_call_rounding=draw(st.sampled_from([None, (1, "up"), (1, "down"), (1000, "half_up"),
                                                (500, "half_even")])),
        max_per_call_micro=draw(st.sampled_from([None, None, 150_000])),
        allowances=allowances,
        fair_use=draw(st.sampled_from([None, FairUse(200, "line"), FairUse(300, "pooled")])),
        cost_deck=draw(st.one_of(st.none(), decks("cost"))))


@st.composite
def records(draw: st.DrawFn) -> list[CallRecord]:
    n = draw(st.integers(1, 25))
    out = []
    for _i in range(n):
        p = draw(st.sampled_from(PREFIX_POOL + ["999"]))
        digits = p + draw(st.text("0123456789", min_size=max(0, 9 - len(p)),
                                  max_size=12 - len(p)))
        fmt = draw(st.sampled_from(["+", "+", "00", "nat", "bad"]))
        if fmt == "+":
            callee = "+" + digits
        elif fmt == "00":
            callee = "00" + digits
        elif fmt == "nat":
            callee = "0" + digits[2:] if digits.startswith("33") and digits[2:3] != "0" \
                else "+" + digits
        else:
            callee = draw(st.sampled_from(["", "abc", "12345", "+33", digits]))
        start = draw(st.sampled_from(BASES)) + draw(st.integers(0, 3 * 3600))
        dur = draw(st.one_of(st.just(0), st.integers(1, 90), st.integers(90, 4000)))
        out.append(CallRecord(draw(st.integers(1, 40)), draw(st.sampled_from(["A", "B", "C"])),
                              start, dur, callee, draw(st.booleans()) or dur > 0))
    return out


POOLS = {"A": "P1", "B": "P1"}


def _kernel_view(b, zone_names, i):  # type: ignore[no-untyped-def]
    return (STATUS_NAMES[b.status[i]], zone_names[b.zone[i]], int(b.billed_s[i]),
            Fraction(int(b.price_micro[i]), b.den), Fraction(int(b.cost_micro[i]), b.den),
            int(b.allowance_used_s[i]), bool(b.fair_use[i]))


def _ref_view(rc):  # type: ignore[no-untyped-def]
    return (STATUS_NAMES[rc.status], rc.zone, rc.billed_s, rc.amount, rc.cost,
            rc.allowance_used_s, rc.fair_use_flag)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans(), records())
def test_kernel_equals_reference(plan: RatingPlan, recs: list[CallRecord]) -> None:
    ref = rate_reference(plan, recs, POOLS)
    k = rate_records(plan, [r.line_id for r in recs], [r.start_utc for r in recs],
                     [r.duration_s for r in recs], [r.callee for r in recs],
                     [r.answered for r in recs], [r.record_id for r in recs], POOLS)
    for i, rc in enumerate(ref):
        assert _kernel_view(k.batch, k.zone_names, i) == _ref_view(rc), (i, recs[i])
    assert [(str(a), z, c, b, am, co) for a, z, c, b, am, co in invoice_lines(k)] == \
        [(str(x.line_id), x.zone, x.calls, x.billed_s, x.amount, x.cost)
         for x in invoice_lines_reference(ref)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans(), records(), st.integers(0, 25))
def test_two_chronological_batches_equal_one(plan: RatingPlan, recs: list[CallRecord],
                                             cut: int) -> None:
    recs = sorted(recs, key=lambda r: (r.start_utc, r.record_id))
    ref = rate_reference(plan, recs, POOLS)
    r = Rater(plan)
    lines = LineIndex()
    li = lines.encode([x.line_id for x in recs])
    pools = LineIndex()
    pool = pools.encode([POOLS.get(x, x) for x in lines.ids])[li]
    cut = min(cut, len(recs))
    got = []
    for part in (slice(0, cut), slice(cut, len(recs))):
        sub = recs[part]
        if not sub:
            continue
        b = r.rate(li[part], np.array([x.start_utc for x in sub]),
                   np.array([x.duration_s for x in sub]),
                   normalise_array([x.callee for x in sub], plan.default_country_code),
                   np.array([x.answered for x in sub]), np.array([x.record_id for x in sub]),
                   pool[part])
        got += [_kernel_view(b, r.zone_names, i) for i in range(len(sub))]
    assert got == [_ref_view(rc) for rc in ref]
