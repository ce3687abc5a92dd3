"""Hand-computed expectations for every rating rule, checked on both the reference rater and
the vectorised kernel (they must agree record for record)."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from dsl.exact import Fraction
from engine.rating.kernel import invoice_lines, rate_records
from engine.rating.plan import (
    OFFPEAK,
    PEAK,
    STATUS_DROPPED,
    STATUS_INVALID,
    STATUS_NAMES,
    STATUS_RATED,
    STATUS_UNANSWERED,
    STATUS_UNROUTED,
    WEEKEND,
    Allowance,
    FairUse,
    RateDeck,
    RateDeckRow,
    RatingPlan,
    TimeBands,
)
from engine.rating.reference import CallRecord, invoice_lines_reference, rate_reference

PARIS = ZoneInfo("Europe/Paris")


def utc(local: str) -> int:
    """Paris wall-clock 'YYYY-MM-DD HH:MM:SS' -> UTC epoch seconds (fold=0)."""
    return int(datetime.fromisoformat(local).replace(tzinfo=PARIS).timestamp())


def row(prefix: str, zone: str, peak: int, off: int, we: int, connect: int = 0,
        first: int = 60, nxt: int = 60, minc: int = 0, eff: str | None = None) -> RateDeckRow:
    from datetime import date
    return RateDeckRow(prefix, zone, peak, off, we, connect, first, nxt, minc,
                       date.fromisoformat(eff) if eff else None)


DECK = RateDeck("test", (
    row("331", "FR-FIXED", 6000, 3000, 1200, first=30, nxt=6),
    row("336", "FR-MOBILE", 12000, 6000, 6000),
    row("338", "FR-SPECIAL", 80000, 80000, 80000, connect=79000, first=1, nxt=1, minc=100000),
    row("44", "GB", 6000, 3000, 3000, connect=5000),
    row("447", "GB-MOBILE", 30000, 30000, 30000, connect=5000),
    row("4474", "GB-SPECIAL", 90000, 90000, 90000, connect=5000),
))

ROUND = (1, "up")


def plan(**kw: object) -> RatingPlan:
    kw.setdefault("deck", DECK)
    kw.setdefault("per_call_rounding", ROUND)
    return RatingPlan(**kw)  # type: ignore[arg-type]


def rec(i: int, start: str, dur: int, callee: str, line: object = "L1",
        answered: bool = True) -> CallRecord:
    return CallRecord(i, line, utc(start), dur, callee, answered)  # type: ignore[arg-type]


def both(p: RatingPlan, recs: list[CallRecord], pools: dict | None = None) -> list:
    """Rate with both raters, assert they agree, return the reference results."""
    ref = rate_reference(p, recs, pools)
    k = rate_records(p, [r.line_id for r in recs], [r.start_utc for r in recs],
                     [r.duration_s for r in recs], [r.callee for r in recs],
                     [r.answered for r in recs], [r.record_id for r in recs], pools)
    b = k.batch
    for i, rc in enumerate(ref):
        got = (STATUS_NAMES[b.status[i]], k.zone_names[b.zone[i]], int(b.billed_s[i]),
               Fraction(int(b.price_micro[i]), b.den), Fraction(int(b.cost_micro[i]), b.den),
               int(b.allowance_used_s[i]), bool(b.fair_use[i]))
        want = (STATUS_NAMES[rc.status], rc.zone, rc.billed_s, rc.amount, rc.cost,
                rc.allowance_used_s, rc.fair_use_flag)
        assert got == want, (i, got, want)
        if rc.band >= 0:
            assert int(b.band[i]) == rc.band
    kl = invoice_lines(k)
    rl = invoice_lines_reference(ref)
    assert [(str(a), z, c, bs, am, co) for a, z, c, bs, am, co in kl] == \
        [(str(x.line_id), x.zone, x.calls, x.billed_s, x.amount, x.cost) for x in rl]
    return ref


# Tuesday 2026-11-10 is a plain weekday
WEEKDAY = "2026-11-10"


@pytest.mark.parametrize(("dur", "billed"), [(1, 30), (29, 30), (30, 30), (31, 36), (36, 36),
                                            (37, 42)])
def test_increments_30_6(dur: int, billed: int) -> None:
    r = both(plan(), [rec(1, f"{WEEKDAY} 10:00:00", dur, "+33123456789")])[0]
    assert r.billed_s == billed
    assert r.amount == billed * 100  # 6000 micro/min at peak = 100 micro/s
    assert r.band == PEAK


def test_plan_increments_override_deck() -> None:
    r = both(plan(increments=(60, 60)), [rec(1, f"{WEEKDAY} 10:00:00", 61, "+33123456789")])[0]
    assert r.billed_s == 120
    assert r.amount == 12000


def test_minimum_duration() -> None:
    r = both(plan(minimum_duration_s=45), [rec(1, f"{WEEKDAY} 10:00:00", 10, "+33123456789")])
    assert r[0].billed_s == 45


@pytest.mark.parametrize(("callee", "zone"), [
    ("+442071234567", "GB"), ("+447123456789", "GB-MOBILE"), ("+447412345678", "GB-SPECIAL"),
    ("00447412345678", "GB-SPECIAL"), ("00442071234567", "GB"), ("+4475123456789", "GB-MOBILE"),
])
def test_nested_prefixes_longest_wins(callee: str, zone: str) -> None:
    assert both(plan(), [rec(1, f"{WEEKDAY} 10:00:00", 60, callee)])[0].zone == zone


@pytest.mark.parametrize("callee", ["0612345678", "0033612345678", "+33612345678"])
def test_national_and_international_formats(callee: str) -> None:
    r = both(plan(), [rec(1, f"{WEEKDAY} 10:00:00", 60, callee)])[0]
    assert (r.zone, r.amount) == ("FR-MOBILE", 12000)


def test_invalid_and_unrouted_numbers() -> None:
    rs = both(plan(), [rec(1, f"{WEEKDAY} 10:00:00", 60, "abc"),
                       rec(2, f"{WEEKDAY} 10:00:00", 60, "+99912345678"),
                       rec(3, f"{WEEKDAY} 10:00:00", 60, "612345678"),
                       rec(4, f"{WEEKDAY} 10:00:00", 60, "")])
    assert [r.status for r in rs] == [STATUS_INVALID, STATUS_UNROUTED, STATUS_INVALID,
                                      STATUS_INVALID]
    assert rs[1].amount == 0 and rs[1].zone == ""


def test_band_boundary_call_start_and_split() -> None:
    recs = [rec(1, f"{WEEKDAY} 19:59:30", 60, "+33612345678"),
            rec(2, f"{WEEKDAY} 07:59:50", 60, "+33612345678")]
    a, b = both(plan(), recs)
    assert (a.band, a.amount) == (PEAK, 12000)
    assert (b.band, b.amount) == (OFFPEAK, 6000)
    a, b = both(plan(bands=TimeBands(policy="split")), recs)
    assert a.amount == 30 * 200 + 30 * 100  # 30 s peak + 30 s off-peak
    assert b.amount == 10 * 100 + 50 * 200  # 10 s off-peak + 50 s peak


def test_split_increments_apply_to_whole_call_then_bands_in_order() -> None:
    # 31 s at 19:59:50 on FR-FIXED (30/6): billed 36 s; first 10 s peak, then 26 s off-peak
    # (the 5 rounding-up seconds past the real end fall in the band that follows)
    r = both(plan(bands=TimeBands(policy="split")),
             [rec(1, f"{WEEKDAY} 19:59:50", 31, "+33123456789")])[0]
    assert r.billed_s == 36
    assert r.amount == Fraction(10 * 6000 + 26 * 3000, 60)


def test_across_midnight_into_weekend() -> None:
    # Friday 2026-11-13 23:59:00, 120 s to FR-FIXED: 60 s off-peak Friday + 60 s weekend
    recs = [rec(1, "2026-11-13 23:59:00", 120, "+33123456789")]
    assert both(plan(), recs)[0].amount == 2 * 3000
    assert both(plan(bands=TimeBands(policy="split")), recs)[0].amount == 3000 + 1200


def test_across_midnight_weekday_to_weekday() -> None:
    # Tuesday 23:59:30 -> Wednesday 00:00:30: off-peak on both sides
    r = both(plan(bands=TimeBands(policy="split")),
             [rec(1, f"{WEEKDAY} 23:59:30", 60, "+33612345678")])[0]
    assert r.amount == 6000


def test_holiday_is_weekend_band() -> None:
    recs = [rec(1, "2026-11-11 10:00:00", 60, "+33612345678")]  # Armistice, a Wednesday
    assert both(plan(), recs)[0].band == PEAK
    r = both(plan(bands=TimeBands(holidays_country="FR")), recs)[0]
    assert (r.band, r.amount) == (WEEKEND, 6000)
    # the day after is a normal Thursday
    r = both(plan(bands=TimeBands(holidays_country="FR")),
             [rec(1, "2026-11-12 10:00:00", 60, "+33612345678")])[0]
    assert r.band == PEAK


def test_holiday_split_at_midnight() -> None:
    # Tuesday 2026-11-10 23:59:30 (off-peak) -> 11 Nov (holiday: weekend band)
    r = both(plan(bands=TimeBands(holidays_country="FR", policy="split")),
             [rec(1, "2026-11-10 23:59:30", 60, "+33123456789")])[0]
    assert r.amount == Fraction(30 * 3000 + 30 * 1200, 60)


ALL_PEAK_FROM_3 = dict(weekend_days=frozenset(), peak_days=frozenset(range(7)),
                       peak_start=time(3, 0), peak_end=time(20, 0), policy="split")


def test_dst_spring_forward_night() -> None:
    # 2026-03-29: 02:00 CET -> 03:00 CEST.  01:59:00 CET + 120 real seconds = 03:01:00 CEST:
    # 60 s before 03:00 (off-peak), 60 s after (peak: 03:00-20:00 here, every day)
    start = utc("2026-03-29 01:59:00")
    assert start == int(datetime(2026, 3, 29, 0, 59, tzinfo=ZoneInfo("UTC")).timestamp())
    p = plan(bands=TimeBands(**ALL_PEAK_FROM_3))  # type: ignore[arg-type]
    r = both(p, [CallRecord(1, "L1", start, 120, "+33612345678")])[0]
    assert r.amount == 6000 + 12000
    # Monday 2026-03-30 06:30 UTC is 08:30 CEST: peak (it would be 07:30 in winter time)
    r = both(plan(), [CallRecord(2, "L1", utc("2026-03-30 08:30:00"), 60, "+33612345678")])[0]
    assert r.band == PEAK
    assert utc("2026-03-30 08:30:00") == int(datetime(2026, 3, 30, 6, 30,
                                                      tzinfo=ZoneInfo("UTC")).timestamp())


def test_dst_fall_back_night() -> None:
    # 2026-10-25: 03:00 CEST -> 02:00 CET.  02:59:00 CEST (00:59 UTC) + 120 s = 02:01 CET:
    # never reaches 03:00 local, all off-peak (a naive wall clock would say 03:01)
    start = int(datetime(2026, 10, 25, 0, 59, tzinfo=ZoneInfo("UTC")).timestamp())
    p = plan(bands=TimeBands(**ALL_PEAK_FROM_3))  # type: ignore[arg-type]
    r = both(p, [CallRecord(1, "L1", start, 120, "+33612345678")])[0]
    assert r.amount == 12000
    # a call in the repeated hour, second occurrence (01:30 UTC = 02:30 CET): off-peak
    r = both(p, [CallRecord(2, "L1", start + 1860, 3600, "+33612345678")])[0]
    assert r.amount == Fraction(1800 * 6000 + 1800 * 12000, 60)


def test_connect_fee_and_minimum_charge() -> None:
    rs = both(plan(), [rec(1, f"{WEEKDAY} 10:00:00", 10, "+33812345678"),
                       rec(2, f"{WEEKDAY} 10:00:00", 30, "+33812345678"),
                       rec(3, f"{WEEKDAY} 10:00:00", 60, "+442071234567")])
    assert rs[0].amount == 100000  # 79000 + ceil(10 * 80000 / 60) = 92334 < minimum 100000
    assert rs[1].amount == 119000  # 79000 + 40000
    assert rs[2].amount == 5000 + 6000


def test_per_call_rounding_modes_and_exact() -> None:
    # 10 s on 338: 79000 + 13333.33.. micro
    recs = [rec(1, f"{WEEKDAY} 10:00:00", 10, "+33812345678")]
    nomin = RateDeck("d", (row("338", "S", 80000, 80000, 80000, connect=79000, first=1, nxt=1),))
    assert both(plan(deck=nomin, per_call_rounding=None), recs)[0].amount == \
        Fraction(79000 * 60 + 10 * 80000, 60)
    assert both(plan(deck=nomin, per_call_rounding=(1, "down")), recs)[0].amount == 92333
    assert both(plan(deck=nomin, per_call_rounding=(1, "up")), recs)[0].amount == 92334
    assert both(plan(deck=nomin, per_call_rounding=(10000, "half_up")), recs)[0].amount == 90000
    assert both(plan(deck=nomin, per_call_rounding=(1000, "up")), recs)[0].amount == 93000
    # half_even on an exact tie: 30 s at 1000 micro/min = 500 micro -> step 1000
    tie = RateDeck("t", (row("338", "S", 1000, 1000, 1000, first=1, nxt=1),))
    recs30 = [rec(1, f"{WEEKDAY} 10:00:00", 30, "+33812345678"),
              rec(2, f"{WEEKDAY} 10:00:00", 90, "+33812345678")]
    assert [r.amount for r in both(plan(deck=tie, per_call_rounding=(1000, "half_even")),
                                   recs30)] == [0, 2000]
    assert [r.amount for r in both(plan(deck=tie, per_call_rounding=(1000, "half_up")),
                                   recs30)] == [1000, 2000]


def test_exact_amounts_sum_to_fraction_lines() -> None:
    p = plan(per_call_rounding=None)
    rs = both(p, [rec(1, f"{WEEKDAY} 10:00:00", 10, "+33812345678"),
                  rec(2, f"{WEEKDAY} 10:00:00", 11, "+33812345678")])
    total = invoice_lines_reference(rs)[0].amount
    assert total == Fraction(100000 * 2)  # both under the minimum charge
    p = plan(per_call_rounding=None, deck=RateDeck("d", (row("338", "S", 100, 100, 100, first=1,
                                                             nxt=1),)))
    rs = both(p, [rec(1, f"{WEEKDAY} 10:00:00", 1, "+33812345678"),
                  rec(2, f"{WEEKDAY} 10:00:00", 1, "+33812345678")])
    assert invoice_lines_reference(rs)[0].amount == Fraction(200, 60)


def test_max_per_call() -> None:
    r = both(plan(max_per_call_micro=50000), [rec(1, f"{WEEKDAY} 10:00:00", 600,
                                                  "+33812345678")])[0]
    assert r.amount == 50000


def test_unanswered_policies() -> None:
    recs = [rec(1, f"{WEEKDAY} 10:00:00", 0, "+442071234567"),
            rec(2, f"{WEEKDAY} 10:00:00", 25, "+442071234567", answered=False),
            rec(3, f"{WEEKDAY} 10:00:00", 0, "+33812345678")]
    rs = both(plan(unanswered="drop"), recs)
    assert [r.status for r in rs] == [STATUS_DROPPED] * 3
    assert invoice_lines_reference(rs) == []
    rs = both(plan(unanswered="free"), recs)
    assert [(r.status, r.billed_s, r.amount) for r in rs] == [(STATUS_UNANSWERED, 0, 0)] * 3
    assert [(x.zone, x.calls) for x in invoice_lines_reference(rs)] == [("FR-SPECIAL", 1),
                                                                       ("GB", 2)]
    rs = both(plan(unanswered="connect_fee"), recs)
    # connect fee only: no minimum charge on the 338 call
    assert [r.amount for r in rs] == [5000, 5000, 79000]


def test_pooled_allowance_exhausted_mid_call() -> None:
    deck = RateDeck("a", (row("331", "FR-FIXED", 6000, 3000, 1200, connect=1000, first=30,
                              nxt=6),
                          row("44", "GB", 6000, 3000, 3000, connect=5000)))
    al = Allowance("forfait", 120, frozenset({"FR-FIXED"}), "pooled")
    p = plan(deck=deck, allowances=(al,))
    pools = {"L1": "C1", "L2": "C1", "L3": "C2"}
    recs = [rec(1, f"{WEEKDAY} 09:00:00", 60, "+33123456789", "L1"),  # 60 free, 60 left
            rec(2, f"{WEEKDAY} 09:10:00", 90, "+442071234567", "L2"),  # other zone: priced
            rec(3, f"{WEEKDAY} 09:20:00", 89, "+33123456789", "L2"),  # billed 90: 60 free + 30
            rec(4, f"{WEEKDAY} 09:30:00", 30, "+33123456789", "L1"),  # allowance gone
            rec(5, f"{WEEKDAY} 09:40:00", 30, "+33123456789", "L3")]  # other pool: free
    rs = both(p, list(reversed(recs)), pools)[::-1]  # input order must not matter
    assert [r.allowance_used_s for r in rs] == [60, 0, 60, 0, 30]
    assert rs[0].amount == 0
    assert rs[1].amount == 5000 + 12000
    assert rs[2].amount == 30 * 100  # the overflow only: no connect fee, no new increment
    assert rs[3].amount == 1000 + 3000  # outside the allowance: connect fee + 30 s
    assert rs[4].amount == 0


def test_line_allowance_and_chronological_tie_break() -> None:
    al = Allowance("forfait", 60, frozenset(), "line")
    p = plan(allowances=(al,))
    # same start: record id decides (2 before 5)
    recs = [rec(5, f"{WEEKDAY} 09:00:00", 60, "+33612345678", "L1"),
            rec(2, f"{WEEKDAY} 09:00:00", 60, "+33612345678", "L1"),
            rec(3, f"{WEEKDAY} 09:00:00", 60, "+33612345678", "L2")]
    rs = both(p, recs)
    assert [r.allowance_used_s for r in rs] == [0, 60, 60]
    assert [r.amount for r in rs] == [12000, 0, 0]


def test_allowance_with_split_bands_frees_first_seconds() -> None:
    # 60 s free, call of 120 s from 19:59:00: the free seconds are 19:59:00-20:00:00 (peak),
    # the 60 priced seconds are off-peak
    p = plan(bands=TimeBands(policy="split"), allowances=(Allowance("f", 60),))
    r = both(p, [rec(1, f"{WEEKDAY} 19:59:00", 120, "+33612345678")])[0]
    assert r.amount == 6000


def test_fair_use_flags_without_dropping() -> None:
    p = plan(fair_use=FairUse(cap_s=100, scope="line"))
    rs = both(p, [rec(1, f"{WEEKDAY} 09:00:00", 60, "+33612345678"),
                  rec(2, f"{WEEKDAY} 09:05:00", 60, "+33612345678"),
                  rec(3, f"{WEEKDAY} 09:10:00", 60, "+33612345678"),
                  rec(4, f"{WEEKDAY} 09:10:00", 60, "+33612345678", "L2")])
    assert [r.fair_use_flag for r in rs] == [False, True, True, False]
    assert all(r.status == STATUS_RATED and r.amount == 12000 for r in rs)


def test_cost_deck_margin() -> None:
    cost = RateDeck("supplier", (row("33", "FR", 3000, 1500, 1000, first=1, nxt=1),
                                 row("4474", "GB-X", 50000, 50000, 50000, connect=2000)))
    p = plan(cost_deck=cost)
    rs = both(p, [rec(1, f"{WEEKDAY} 10:00:00", 31, "+33612345678"),
                  rec(2, f"{WEEKDAY} 10:00:00", 61, "+447412345678"),
                  rec(3, f"{WEEKDAY} 10:00:00", 61, "+442071234567")])
    assert [(r.amount, r.cost) for r in rs] == [(12000, 1550), (5000 + 180000, 2000 + 100000),
                                                (5000 + 12000, 0)]


def test_effective_dates() -> None:
    deck = RateDeck("e", (row("33", "FR", 6000, 6000, 6000, eff="2026-01-01"),
                          row("33", "FR", 12000, 12000, 12000, eff="2026-07-01"),
                          row("336", "FR-MOB", 30000, 30000, 30000, eff="2026-07-01")))
    rs = both(plan(deck=deck), [rec(1, "2026-06-30 23:59:00", 60, "+33612345678"),
                                rec(2, "2026-07-01 00:00:30", 60, "+33612345678"),
                                rec(3, "2026-07-01 00:00:30", 60, "+33123456789"),
                                rec(4, "2025-12-31 23:00:00", 60, "+33123456789")])
    assert [(r.zone, r.amount) for r in rs] == [("FR", 6000), ("FR-MOB", 30000),
                                                ("FR", 12000), ("", 0)]


def test_invoice_lines_group_by_line_and_zone() -> None:
    rs = both(plan(), [rec(1, f"{WEEKDAY} 10:00:00", 60, "+33612345678", "A"),
                       rec(2, f"{WEEKDAY} 11:00:00", 30, "+33612345678", "A"),
                       rec(3, f"{WEEKDAY} 11:00:00", 0, "+33612345678", "A"),
                       rec(4, f"{WEEKDAY} 11:00:00", 30, "+99912345678", "A"),
                       rec(5, f"{WEEKDAY} 11:00:00", 30, "+33123456789", "B")])
    lines = invoice_lines_reference(rs)
    assert [(x.line_id, x.zone, x.calls, x.billed_s, x.amount) for x in lines] == [
        ("A", "", 1, 0, 0), ("A", "FR-MOBILE", 2, 120, 24000), ("B", "FR-FIXED", 1, 30, 3000)]


def test_kernel_batches_carry_allowance_state() -> None:
    from engine.rating.kernel import Rater
    from engine.rating.numbers import normalise_array
    p = plan(allowances=(Allowance("f", 90),))
    r = Rater(p)
    used = []
    for start in ("09:00:00", "09:10:00"):
        b = r.rate(np.array([0]), np.array([utc(f"{WEEKDAY} {start}")]), np.array([60]),
                   normalise_array(["+33612345678"]))
        used.append(int(b.allowance_used_s[0]))
    assert used == [60, 30]
