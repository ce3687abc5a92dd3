"""Vectorised rating kernel (numpy over whole batches; no Python loop per record).

Contract: same rules, in the same order, as the reference rater (:mod:`engine.rating.reference`,
whose docstring lists them); results are identical record for record (a differential test checks
it).  Inputs per batch: dense line indices, UTC epoch seconds, durations (s), normalised called
numbers (:class:`engine.rating.numbers.NormalisedNumbers`), answered flags and an ordering key
(record id).  Batches can be chained: allowance and fair-use state is carried by the
:class:`Rater`; consumption is chronological within a batch and batches are consumed in the order
given (exact when batches are in time order, as a switch's files are).

Implementation:

* longest-prefix match: per effective-date version of the deck, a dense lookup table on the
  first ``K = min(longest prefix, 6)`` digits (10^6 int16 row indices, 2 MB; shorter prefixes
  written first and overwritten by longer ones); a slot under which a longer-than-K prefix
  exists is marked and those records fall back to one ``searchsorted`` per prefix length
  (longest first).  Measured on the kit (2,199 prefixes, lengths 1-7): K=7 (20 MB) 6.4 ms,
  K=6 7.6 ms (0.09 % of records fall back), K=5 8.5 ms, per-length searchsorted alone 206 ms
  per million numbers;
* increments: a table per distinct (first, next) pair, indexed by duration (0..86400 s);
* local time: :class:`engine.rating.localtime.TzTable` (UTC offset per 15-min slot, DST-correct);
* bands, increments, connect fee, allowances (segmented cumulative sums over records sorted by
  holder, start, record id), per-call rounding, minimum charge, cap and cost deck: int64 numpy.

**Money and rounding.**  Amounts are computed exactly in int64 *sixtieths of a micro-unit*
(``60 * connect_fee + sum(seconds_b * price_per_min_b)``), never in floats.  With
``per_call_rounding = (step, mode)`` each call's amount is rounded once, here, to a multiple of
``step`` micro with ``mode`` (up: ceiling, down: floor, half_up, half_even), then minimum charge
and cap apply, and the result arrays are in micro (``den == 1``).  With ``None`` no rounding is
done: arrays stay in sixtieths (``den == 60``) and invoice-line totals are exact
``Fraction(sum, 60)`` micro.  int64 bounds: a line total must stay below 9.2e18 / den micro.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from dsl.exact import Fraction
from engine.rating._vec import P10
from engine.rating.localtime import SLOT, TzTable
from engine.rating.numbers import NormalisedNumbers, normalise_array
from engine.rating.plan import (
    BILLABLE_STATUSES,
    STATUS_DROPPED,
    STATUS_INVALID,
    STATUS_RATED,
    STATUS_UNANSWERED,
    STATUS_UNROUTED,
    RateDeck,
    RatingPlan,
    TimeBands,
)

LUT_MAX_DIGITS = 6
MAX_TABLE_DURATION = 86400
_NO_DATE = -(10**9)
_EPOCH_ORD = date(1970, 1, 1).toordinal()


def _day_number(d: date | None) -> int:
    return _NO_DATE if d is None else d.toordinal() - _EPOCH_ORD


# ------------------------------------------------------------------------------ deck matching
class _Snapshot:
    """Rows in force from one effective date: a K-digit dense table + per-length fallback."""

    def __init__(self, prefixes: Sequence[str], rows: Sequence[int], nrows: int) -> None:
        maxlen = max((len(p) for p in prefixes), default=1)
        k = min(maxlen, LUT_MAX_DIGITS)
        self.k = k
        dt = np.int16 if nrows < 32000 else np.int32
        lut = np.full(10**k, -1, dtype=dt)
        order = sorted(range(len(prefixes)), key=lambda i: len(prefixes[i]))
        long_slots: list[int] = []
        for i in order:
            p = prefixes[i]
            if len(p) <= k:
                lo = int(p) * 10 ** (k - len(p))
                lut[lo: lo + 10 ** (k - len(p))] = rows[i]
            else:
                long_slots.append(int(p[:k]))
        if long_slots:
            lut[np.array(long_slots, dtype=np.int64)] = -2
        self.lut = lut
        self.has_long = bool(long_slots)
        by_len: dict[int, list[tuple[int, int]]] = {}
        for p, r in zip(prefixes, rows, strict=True):
            by_len.setdefault(len(p), []).append((int(p), r))
        self.lengths = sorted(by_len, reverse=True)
        self.keys: dict[int, np.ndarray] = {}
        self.ids: dict[int, np.ndarray] = {}
        for ln, items in by_len.items():
            items.sort()
            self.keys[ln] = np.array([a for a, _ in items], dtype=np.int64)
            self.ids[ln] = np.array([b for _, b in items], dtype=np.int64)

    def match(self, value: np.ndarray, nd: np.ndarray) -> np.ndarray:
        """Deck row index of the longest matching prefix, -1 when none (nd >= 7 > k)."""
        key = value // P10[nd - self.k]
        r = self.lut[key].astype(np.int64)
        if self.has_long:
            need = np.flatnonzero(r == -2)
            if need.size:
                r[need] = self.match_slow(value[need], nd[need])
        return r

    def match_slow(self, value: np.ndarray, nd: np.ndarray) -> np.ndarray:
        out = np.full(value.shape, -1, dtype=np.int64)
        for ln in self.lengths:
            keys, ids = self.keys[ln], self.ids[ln]
            ok = (nd >= ln) & (out < 0)
            if not ok.any():
                continue
            k = value // P10[np.clip(nd - ln, 0, 18)]
            pos = np.minimum(np.searchsorted(keys, k), len(keys) - 1)
            hit = ok & (keys[pos] == k)
            out[hit] = ids[pos[hit]]
        return out


class CompiledDeck:
    """Numeric form of a :class:`RateDeck`: per-row arrays (with a trailing all-zero sentinel
    row for "no route") and one matching snapshot per distinct effective date."""

    def __init__(self, deck: RateDeck, zone_index: Mapping[str, int]) -> None:
        rows = deck.rows
        n = len(rows)
        self.n = n
        self.price = np.array([[r.price_peak, r.price_offpeak, r.price_weekend] for r in rows]
                              + [[0, 0, 0]], dtype=np.int64).reshape(-1)
        self.connect = np.array([r.connect_fee for r in rows] + [0], dtype=np.int64)
        self.first = np.array([r.first_increment_s for r in rows] + [1], dtype=np.int64)
        self.next = np.array([r.next_increment_s for r in rows] + [1], dtype=np.int64)
        self.minc = np.array([r.minimum_charge for r in rows] + [0], dtype=np.int64)
        self.zone = np.array([zone_index.get(r.zone, 0) for r in rows] + [0], dtype=np.int32)
        self._billed_lut: dict[tuple[tuple[int, int] | None, int], tuple[np.ndarray,
                                                                         np.ndarray]] = {}
        days = sorted({_day_number(r.effective_date) for r in rows})
        self.version_days = np.array(days, dtype=np.int64)
        self.snapshots: list[_Snapshot] = []
        for d in days:
            best: dict[str, tuple[int, int]] = {}
            for i, r in enumerate(rows):
                rd = _day_number(r.effective_date)
                if rd <= d and (r.prefix not in best or best[r.prefix][0] < rd):
                    best[r.prefix] = (rd, i)
            pfx = list(best)
            self.snapshots.append(_Snapshot(pfx, [best[p][1] for p in pfx], n))

    def billed_table(self, override: tuple[int, int] | None, min_dur: int
                     ) -> tuple[np.ndarray, np.ndarray] | None:
        """(class per row, flat table class * 86401 + duration -> billed seconds) for the
        distinct (first, next) increment pairs, when there are at most 16; the sentinel row
        and duration 0 bill 0 s.  None when a table would not pay off."""
        key = (override, min_dur)
        if key in self._billed_lut:
            return self._billed_lut[key]
        pairs = [override] * self.n if override else \
            list(zip(self.first[:-1].tolist(), self.next[:-1].tolist(), strict=True))
        distinct = sorted(set(pairs))
        if len(distinct) > 16:
            return None
        cls = np.array([distinct.index(pr) for pr in pairs] + [len(distinct)], dtype=np.int64)
        d = np.arange(MAX_TABLE_DURATION + 1, dtype=np.int64)
        tabs = []
        for first, nxt in distinct:
            b = np.where(d <= first, first, first + (d - first + nxt - 1) // nxt * nxt)
            b = np.maximum(b, min_dur)
            b[0] = 0
            tabs.append(b)
        tabs.append(np.zeros(MAX_TABLE_DURATION + 1, dtype=np.int64))  # sentinel: unrouted
        res = (cls * (MAX_TABLE_DURATION + 1), np.concatenate(tabs).astype(np.int32))
        self._billed_lut[key] = res
        return res

    def match(self, num: NormalisedNumbers, local_day: np.ndarray | None,
              sel: np.ndarray) -> np.ndarray:
        """Row per record (``n`` = sentinel when unrouted or not selected)."""
        if len(self.snapshots) == 1 and self.version_days[0] == _NO_DATE and sel.all():
            r = self.snapshots[0].match(num.value, num.ndigits)
            r[r < 0] = self.n
            return r
        out = np.full(num.value.shape, self.n, dtype=np.int64)
        if len(self.snapshots) == 1 and self.version_days[0] == _NO_DATE:
            idx = np.flatnonzero(sel)
            r = self.snapshots[0].match(num.value[idx], num.ndigits[idx])
            out[idx] = np.where(r >= 0, r, self.n)
            return out
        assert local_day is not None
        ver = np.searchsorted(self.version_days, local_day, side="right") - 1
        for v, snap in enumerate(self.snapshots):
            idx = np.flatnonzero(sel & (ver == v))
            if idx.size:
                r = snap.match(num.value[idx], num.ndigits[idx])
                out[idx] = np.where(r >= 0, r, self.n)
        return out


# ------------------------------------------------------------------------------ bands
class BandCalc:
    def __init__(self, bands: TimeBands) -> None:
        self.b = bands
        self.tz = TzTable(bands.tz)
        self.weekend_dow = np.array([d in bands.weekend_days for d in range(7)])
        self.peak_dow = np.array([d in bands.peak_days for d in range(7)])
        self.ps = bands.peak_start_s
        self.pe = bands.peak_end_s
        self._hol_years: dict[int, set[int]] = {}
        self._slot_cache: tuple[int, int, np.ndarray] | None = None

    def _holiday_days(self, d0: int, d1: int) -> np.ndarray:
        """bool table over local day numbers d0..d1."""
        tab = np.zeros(d1 - d0 + 1, dtype=bool)
        if not self.b.holidays_country:
            return tab
        y0 = date.fromordinal(d0 + _EPOCH_ORD).year
        y1 = date.fromordinal(d1 + _EPOCH_ORD).year
        for y in range(y0, y1 + 1):
            s = self._hol_years.get(y)
            if s is None:
                import holidays as holidays_lib  # imported on first use (large)

                h = holidays_lib.country_holidays(self.b.holidays_country, years=y)
                s = {dd.toordinal() - _EPOCH_ORD for dd in h}
                self._hol_years[y] = s
            for dn in s:
                if d0 <= dn <= d1:
                    tab[dn - d0] = True
        return tab

    def band_local(self, local: np.ndarray) -> np.ndarray:
        """Band code (0 peak, 1 off-peak, 2 weekend) of local wall-clock seconds."""
        days = local // 86400
        sod = local - days * 86400
        dow = (days + 3) % 7
        we = self.weekend_dow[dow]
        if self.b.holidays_country and local.size:
            d0 = int(days.min())
            we = we | self._holiday_days(d0, int(days.max()))[days - d0]
        pk = self.peak_dow[dow] & (sod >= self.ps) & (sod < self.pe)
        return np.where(we, 2, np.where(pk, 0, 1)).astype(np.int8)

    def band_utc(self, utc: np.ndarray) -> np.ndarray:
        """Band of UTC instants.  When the peak hours fall on quarter hours, the band is
        constant over each 15-minute slot of UTC time (offsets are quarter hours too), so a
        table per slot of the days present replaces the per-record local-time arithmetic."""
        if utc.size == 0 or self.ps % SLOT or self.pe % SLOT:
            return self.band_local(self.tz.to_local(utc))
        d0 = int(utc.min()) // 86400
        d1 = int(utc.max()) // 86400
        c = self._slot_cache
        if c is None or not (c[0] <= d0 and d1 <= c[1]):
            if d1 - d0 > 400:
                return self.band_local(self.tz.to_local(utc))
            starts = np.arange(d0 * 86400, (d1 + 1) * 86400, SLOT, dtype=np.int64)
            offs = self.tz.offsets_utc(starts)
            if (offs % SLOT).any():
                return self.band_local(self.tz.to_local(utc))
            c = self._slot_cache = (d0, d1, self.band_local(starts + offs))
        return c[2][(utc - c[0] * 86400) // SLOT]

    def split(self, t0: np.ndarray, length: np.ndarray) -> np.ndarray:
        """Seconds per band (n, 3) of the ``length`` seconds starting at UTC ``t0``."""
        n = t0.size
        out = np.zeros((n, 3), dtype=np.int64)
        idx = np.flatnonzero(length > 0)
        if idx.size == 0:
            return out
        lo = int(t0[idx].min())
        hi = int((t0[idx] + length[idx]).max())
        trans = self.tz.transitions(lo, hi)
        t = t0.astype(np.int64).copy()
        rem = length.astype(np.int64).copy()
        while idx.size:
            tt = t[idx]
            local = self.tz.to_local(tt)
            band = self.band_local(local)
            sod = local % 86400
            nb = np.where(sod < self.ps, self.ps, np.where(sod < self.pe, self.pe, 86400)) - sod
            seg = np.minimum(rem[idx], nb)
            if trans.size:
                j = np.searchsorted(trans, tt, side="right")
                nt = np.where(j < trans.size, trans[np.minimum(j, trans.size - 1)] - tt, 1 << 62)
                seg = np.minimum(seg, nt)
            out[idx, band] += seg
            t[idx] = tt + seg
            rem[idx] -= seg
            idx = idx[rem[idx] > 0]
        return out


# ------------------------------------------------------------------------------ results
@dataclass
class RatedBatch:
    """Per-record results.  ``price_micro``/``cost_micro`` are in units of ``1/den`` micro
    (``den`` 1 with per-call rounding, 60 without)."""

    line: np.ndarray  # int64 dense line index
    zone: np.ndarray  # int32 zone code: 0 = "" (unrouted / not routed), i = zone_names[i]
    band: np.ndarray  # int8 band at the start instant, -1 when not routed
    billed_s: np.ndarray  # int64
    price_micro: np.ndarray  # int64 (sale amount)
    cost_micro: np.ndarray  # int64 (purchase cost, 0 without cost deck)
    allowance_used_s: np.ndarray  # int64
    status: np.ndarray  # uint8, engine.rating.plan.STATUS_*
    fair_use: np.ndarray  # bool
    den: int
    has_cost: bool = True  # False: cost_micro is all zeros (no cost deck)

    def __len__(self) -> int:
        return len(self.status)

    def take(self, idx: np.ndarray) -> RatedBatch:
        """The records at ``idx``."""
        return RatedBatch(self.line[idx], self.zone[idx], self.band[idx], self.billed_s[idx],
                          self.price_micro[idx], self.cost_micro[idx],
                          self.allowance_used_s[idx], self.status[idx], self.fair_use[idx],
                          self.den, self.has_cost)


def _round(a: np.ndarray, step: int, mode: str) -> np.ndarray:
    """Round amounts in sixtieths of a micro to multiples of ``step`` micro (result in micro)."""
    q = 60 * step
    if mode == "up":  # amounts are >= 0
        k = (a + (q - 1)) // q
    elif mode == "down":
        k = a // q
    elif mode == "half_up":
        k = (2 * a + q) // (2 * q)
    else:  # half_even
        f = a // q
        r = a - f * q
        k = f + ((2 * r > q) | ((2 * r == q) & (f % 2 == 1)))
    return k * step


class _HolderState:
    """Carried per-holder integer state (remaining allowance or used fair-use seconds)."""

    def __init__(self, init: int) -> None:
        self.init = init
        self.v = np.full(0, init, dtype=np.int64)

    def ensure(self, n: int) -> None:
        if n > self.v.size:
            self.v = np.concatenate([self.v, np.full(max(n, 2 * self.v.size) - self.v.size,
                                                     self.init, dtype=np.int64)])


def _segments(holder_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(segment start flags, segment id per element) of a sorted holder array."""
    n = holder_sorted.size
    st = np.ones(n, dtype=bool)
    st[1:] = holder_sorted[1:] != holder_sorted[:-1]
    return st, np.cumsum(st) - 1


def _exclusive_segmented_cumsum(x: np.ndarray, seg_start: np.ndarray,
                                seg_id: np.ndarray) -> np.ndarray:
    cs = np.cumsum(x)
    excl = cs - x
    base = excl[np.flatnonzero(seg_start)]
    return excl - base[seg_id]


class Rater:
    """Stateful vectorised rater for one plan (allowances and fair use carry across batches)."""

    def __init__(self, plan: RatingPlan) -> None:
        self.plan = plan
        self.zone_names: tuple[str, ...] = ("",) + plan.deck.zones()
        zidx = {z: i for i, z in enumerate(self.zone_names)}
        self.deck = CompiledDeck(plan.deck, zidx)
        self.cost_deck = CompiledDeck(plan.cost_deck, {}) if plan.cost_deck is not None else None
        self.bands = BandCalc(plan.bands)
        self.tz = self.bands.tz
        self.den = 1 if plan.per_call_rounding is not None else 60
        self._allow_state = [_HolderState(a.quantity_s) for a in plan.allowances]
        self._allow_zone = [
            np.array([(not a.zones) or z in a.zones for z in self.zone_names], dtype=bool)
            for a in plan.allowances]
        self._fair_state = _HolderState(0)
        self._needs_day = len(self.deck.snapshots) > 1 or self.deck.version_days[0] != _NO_DATE
        if self.cost_deck is not None:
            self._needs_day |= len(self.cost_deck.snapshots) > 1 or \
                self.cost_deck.version_days[0] != _NO_DATE

    # -------------------------------------------------------------------------------------
    def _amounts(self, cd: CompiledDeck, row: np.ndarray, start: np.ndarray, band: np.ndarray,
                 billed: np.ndarray, used: np.ndarray | None, answered: np.ndarray, cap: bool,
                 all_answered: bool) -> np.ndarray:
        """Amount per record (0 for the sentinel row: its prices and fees are 0), rounded
        per call when the plan says so, then minimum charge and cap."""
        p = self.plan
        priced = billed if used is None else billed - used
        conn = cd.connect[row]
        if used is not None:
            conn = conn * (used == 0)  # a call starting inside an allowance: no connect fee
        if not all_answered and p.unanswered != "connect_fee":
            conn = conn * answered
        a = conn * 60
        if p.bands.policy == "call_start":
            pidx = row * 3
            pidx += band
            a += priced * cd.price[pidx]
        else:
            idx = np.flatnonzero(priced > 0)
            if idx.size:
                t0 = start[idx] if used is None else start[idx] + used[idx]
                sec = self.bands.split(t0, priced[idx])
                r3 = row[idx] * 3
                a[idx] += sec[:, 0] * cd.price[r3] + sec[:, 1] * cd.price[r3 + 1] + \
                    sec[:, 2] * cd.price[r3 + 2]
        if p.per_call_rounding is not None:
            a = _round(a, *p.per_call_rounding)
        minc = cd.minc[row]
        if self.den != 1:
            minc = minc * self.den
        if used is not None:
            minc = minc * (used == 0)
        if not all_answered:
            minc = minc * answered
        np.maximum(a, minc, out=a)
        if cap and p.max_per_call_micro is not None:
            np.minimum(a, p.max_per_call_micro * self.den, out=a)
        return a

    def _billed(self, cd: CompiledDeck, row: np.ndarray, dur: np.ndarray,
                plan_incr: bool) -> np.ndarray:
        """Billed seconds per record (0 for the sentinel row and for duration 0)."""
        p = self.plan
        override = p.increments if plan_incr else None
        if dur.size and int(dur.max()) <= MAX_TABLE_DURATION and int(dur.min()) >= 0:
            t = cd.billed_table(override, p.minimum_duration_s)
            if t is not None:
                base, table = t
                return table[base[row] + dur].astype(np.int64)
        if plan_incr and p.increments is not None:
            first: np.ndarray | int = p.increments[0]
            nxt: np.ndarray | int = p.increments[1]
        else:
            first, nxt = cd.first[row], cd.next[row]
        b = np.where(dur <= first, first, first + ((dur - first + nxt - 1) // nxt) * nxt)
        if p.minimum_duration_s:
            b = np.maximum(b, p.minimum_duration_s)
        b[(dur <= 0) | (row == cd.n)] = 0
        return b.astype(np.int64)

    def rate(self, line: np.ndarray, start: np.ndarray, duration: np.ndarray,
             numbers: NormalisedNumbers, answered: np.ndarray | None = None,
             order_key: np.ndarray | None = None, pool: np.ndarray | None = None,
             local: np.ndarray | None = None) -> RatedBatch:
        """Rate one batch.  ``line``/``pool``: dense int64 holder indices (``pool`` defaults to
        ``line``); ``start``: UTC epoch s; ``order_key``: tie-breaker after start (record id;
        default input position); ``local``: optional precomputed local wall-clock seconds."""
        p = self.plan
        n = start.size
        line = np.asarray(line, dtype=np.int64)
        dur = np.asarray(duration, dtype=np.int64)
        ans = dur > 0
        if answered is not None:
            ans &= answered
        drop = p.unanswered == "drop"
        valid = numbers.valid
        if local is None and self._needs_day:
            local = self.tz.to_local(start)
        day = local // 86400 if local is not None and self._needs_day else None
        row = self.deck.match(numbers, day, valid)
        routed = row < self.deck.n
        if drop:
            routed &= ans
            row = np.where(routed, row, self.deck.n)
        # status: dropped > invalid number > unrouted > unanswered > rated
        u8 = np.uint8
        status = np.where(routed, np.where(ans, u8(STATUS_RATED), u8(STATUS_UNANSWERED)),
                          np.where(valid, u8(STATUS_UNROUTED), u8(STATUS_INVALID)))
        if drop:
            status[~ans] = STATUS_DROPPED
        rated = status == STATUS_RATED
        band = self.bands.band_local(local) if local is not None else \
            self.bands.band_utc(start)
        band[~routed] = -1
        billed = self._billed(self.deck, row, dur, True)  # 0 when unrouted or duration 0
        all_answered = drop or bool(ans.all())
        if not all_answered:
            billed *= rated
        used: np.ndarray | None = None
        fair = np.zeros(n, dtype=bool)
        zone = self.deck.zone[row]
        if p.allowances or p.fair_use is not None:
            used, fair = self._consume(line, pool if pool is not None else line, start,
                                       order_key, rated, zone, billed)
            if not p.allowances:
                used = None
        amount = self._amounts(self.deck, row, start, band, billed, used, ans, True,
                               all_answered)
        cost = np.zeros(n, dtype=np.int64)
        if self.cost_deck is not None:
            crow = self.cost_deck.match(numbers, day, routed)
            cb = self._billed(self.cost_deck, crow, dur, False)
            if not all_answered:
                cb *= rated
            cost = self._amounts(self.cost_deck, crow, start, band, cb, None, ans, False,
                                 all_answered)
        if used is None:
            used = np.zeros(n, dtype=np.int64)
        return RatedBatch(line=line, zone=zone, band=band, billed_s=billed, price_micro=amount,
                          cost_micro=cost, allowance_used_s=used, status=status, fair_use=fair,
                          den=self.den, has_cost=self.cost_deck is not None)

    def _consume(self, line: np.ndarray, pool: np.ndarray, start: np.ndarray,
                 order_key: np.ndarray | None, rated: np.ndarray, zone: np.ndarray,
                 billed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.plan
        n = start.size
        used = np.zeros(n, dtype=np.int64)
        fair = np.zeros(n, dtype=bool)
        cand = np.flatnonzero(rated)
        if cand.size == 0:
            return used, fair
        ok = order_key[cand] if order_key is not None else cand
        chrono = cand[np.lexsort((ok, start[cand]))]
        left = billed.copy()
        holders = {"line": line, "pooled": pool}
        for k, al in enumerate(p.allowances):
            sel = chrono[self._allow_zone[k][zone[chrono]]]
            if sel.size == 0:
                continue
            h = holders[al.scope][sel]
            o = np.argsort(h, kind="stable")
            s_idx = sel[o]
            hs = h[o]
            st = self._allow_state[k]
            st.ensure(int(hs.max()) + 1)
            seg_start, seg_id = _segments(hs)
            x = left[s_idx]
            before = _exclusive_segmented_cumsum(x, seg_start, seg_id)
            rem0 = st.v[hs]
            u = np.clip(rem0 - before, 0, x)
            used[s_idx] += u
            left[s_idx] -= u
            # new remaining per holder: rem0 - sum(u) over its segment
            tot = np.add.reduceat(u, np.flatnonzero(seg_start))
            hh = hs[seg_start]
            st.v[hh] = st.v[hh] - tot
        if p.fair_use is not None:
            h = holders[p.fair_use.scope][chrono]
            o = np.argsort(h, kind="stable")
            s_idx = chrono[o]
            hs = h[o]
            st = self._fair_state
            st.ensure(int(hs.max()) + 1)
            seg_start, seg_id = _segments(hs)
            x = billed[s_idx]
            incl = _exclusive_segmented_cumsum(x, seg_start, seg_id) + x + st.v[hs]
            fair[s_idx] = incl > p.fair_use.cap_s
            tot = np.add.reduceat(x, np.flatnonzero(seg_start))
            hh = hs[seg_start]
            st.v[hh] += tot
        return used, fair


# ------------------------------------------------------------------------------ aggregation
@dataclass
class InvoiceLines:
    """Invoice lines grouped by (line, zone): arrays, sorted by (line index, zone code)."""

    line: np.ndarray  # dense line index
    zone: np.ndarray  # zone code (0 = "")
    calls: np.ndarray
    billed_s: np.ndarray
    amount: np.ndarray  # in 1/den micro
    cost: np.ndarray  # in 1/den micro
    den: int

    def amount_micro(self, i: int) -> int | Fraction:
        v = int(self.amount[i])
        return v if self.den == 1 else Fraction(v, self.den)

    def cost_micro(self, i: int) -> int | Fraction:
        v = int(self.cost[i])
        return v if self.den == 1 else Fraction(v, self.den)


class InvoiceAccumulator:
    """Streaming GROUP BY (line, zone) over billable records.  State is per group (a dense
    (line x zone) -> group id table of int32 plus four int64 sums per group), not per record."""

    def __init__(self, n_zones: int, den: int = 1) -> None:
        self.nz = n_zones
        self.den = den
        self.gid = np.full(0, -1, dtype=np.int32)
        self.n_groups = 0
        self.keys = np.zeros(0, dtype=np.int64)
        self.calls = np.zeros(0, dtype=np.int64)
        self.billed = np.zeros(0, dtype=np.int64)
        self.amount = np.zeros(0, dtype=np.int64)
        self.cost = np.zeros(0, dtype=np.int64)

    def _grow_groups(self, need: int) -> None:
        cap = self.calls.size
        if need <= cap:
            return
        new = max(need, cap + cap // 2, 1024)
        for name in ("keys", "calls", "billed", "amount", "cost"):
            a = getattr(self, name)
            b = np.zeros(new, dtype=np.int64)
            b[: a.size] = a
            setattr(self, name, b)

    def add(self, b: RatedBatch) -> None:
        self.add_arrays(b.line, b.zone, b.status, b.billed_s, b.price_micro,
                        b.cost_micro if b.has_cost else None)

    def add_arrays(self, line: np.ndarray, zone: np.ndarray, status: np.ndarray,
                   billed: np.ndarray, amount: np.ndarray, cost: np.ndarray | None) -> None:
        """Add per-record results (``cost`` None: no cost deck).  Integer arrays of any width
        (the importer's worker processes send them narrowed); sums are int64."""
        if line.size == 0:
            return
        # records that are not billable go to group key -1 -> slot 0 of the table, dropped
        billable = status <= STATUS_UNANSWERED
        key = line.astype(np.int64, copy=False) * self.nz + zone
        key += 1
        if not billable.all():
            key *= billable
        kmax = int(key.max()) + 1
        if kmax > self.gid.size:
            g = np.full(max(kmax, 2 * self.gid.size), -1, dtype=np.int32)
            g[: self.gid.size] = self.gid
            self.gid = g
        if self.gid.size and self.gid[0] < 0:
            self.gid[0] = self._dummy()
        gid = self.gid[key]
        new = gid < 0
        if new.any():
            kn = key[new]
            # distinct new keys without sorting: write each position into the table, one
            # write per key survives, and that position represents the key
            pos = np.arange(kn.size, dtype=np.int32)
            self.gid[kn] = pos
            nk = kn[self.gid[kn] == pos]
            self._grow_groups(self.n_groups + nk.size)
            ids = np.arange(self.n_groups, self.n_groups + nk.size, dtype=np.int32)
            self.gid[nk] = ids
            self.keys[ids] = nk
            self.n_groups += nk.size
            gid = self.gid[key]
        # int64 operands: ``np.add.at`` has a fast path only when the value's dtype is the
        # target's (measured: 25x slower with int32 values into int64 sums)
        np.add.at(self.calls, gid, 1)
        np.add.at(self.billed, gid, billed.astype(np.int64, copy=False))
        np.add.at(self.amount, gid, amount.astype(np.int64, copy=False))
        if cost is not None:
            np.add.at(self.cost, gid, cost.astype(np.int64, copy=False))

    def _dummy(self) -> int:
        self._grow_groups(self.n_groups + 1)
        self.keys[self.n_groups] = 0
        self.n_groups += 1
        return self.n_groups - 1

    def result(self) -> InvoiceLines:
        ng = self.n_groups
        # the (line x zone) table is indexed by key: its used slots, in order, are the sorted
        # keys (a scan of the table instead of a sort of the groups; slot 0 holds the records
        # that are not billable)
        used = np.flatnonzero(self.gid >= 0)
        used = used[used > 0]
        o = self.gid[used].astype(np.int64)
        k = used - 1
        return InvoiceLines(line=k // self.nz, zone=k % self.nz, calls=self.calls[:ng][o],
                            billed_s=self.billed[:ng][o], amount=self.amount[:ng][o],
                            cost=self.cost[:ng][o], den=self.den)


# ------------------------------------------------------------------------------ functional API
class LineIndex:
    """Dense indices for external line ids (any hashable: int or str)."""

    def __init__(self) -> None:
        self.index: dict[object, int] = {}
        self.ids: list[object] = []

    def encode(self, values: Iterable[object]) -> np.ndarray:
        out = []
        for v in values:
            i = self.index.get(v)
            if i is None:
                i = self.index[v] = len(self.ids)
                self.ids.append(v)
            out.append(i)
        return np.array(out, dtype=np.int64)


@dataclass
class RatedRecords:
    batch: RatedBatch
    line_ids: list[object]  # dense line index -> external id
    zone_names: tuple[str, ...]


def rate_records(plan: RatingPlan, line_id: Sequence[object], start_utc: Sequence[int] | np.ndarray,
                 duration_s: Sequence[int] | np.ndarray, callee: Sequence[str | None] | pa.Array,
                 answered: Sequence[bool] | np.ndarray | None = None,
                 record_id: Sequence[int] | np.ndarray | None = None,
                 pools: Mapping[object, object] | None = None) -> RatedRecords:
    """Rate in-memory records in one batch (convenience API over :class:`Rater`).
    ``pools`` maps a line id to its pool (customer) for pooled allowances / fair use; a line
    without a pool is its own pool."""
    lines = LineIndex()
    li = lines.encode(line_id)
    pool_index = LineIndex()
    pool = pool_index.encode([(pools or {}).get(x, ("line", x)) for x in lines.ids])[li] \
        if len(li) else np.zeros(0, dtype=np.int64)
    nums = normalise_array(callee if isinstance(callee, pa.Array) else list(callee),
                           plan.default_country_code)
    r = Rater(plan)
    b = r.rate(li, np.asarray(start_utc, dtype=np.int64), np.asarray(duration_s, dtype=np.int64),
               nums, None if answered is None else np.asarray(answered, dtype=bool),
               None if record_id is None else np.asarray(record_id, dtype=np.int64), pool)
    return RatedRecords(b, lines.ids, r.zone_names)


def invoice_lines(rated: RatedRecords) -> list[tuple[object, str, int, int, int | Fraction,
                                                     int | Fraction]]:
    """(line_id, zone, calls, billed_s, amount_micro, cost_micro) per (line, zone), sorted by
    (str(line_id), zone); amounts are int micro, or Fraction micro without per-call rounding."""
    acc = InvoiceAccumulator(len(rated.zone_names), rated.batch.den)
    acc.add(rated.batch)
    res = acc.result()
    out = []
    for i in range(len(res.line)):
        out.append((rated.line_ids[int(res.line[i])], rated.zone_names[int(res.zone[i])],
                    int(res.calls[i]), int(res.billed_s[i]), res.amount_micro(i),
                    res.cost_micro(i)))
    out.sort(key=lambda t: (str(t[0]), t[1]))
    return out


__all__ = [
    "BILLABLE_STATUSES",
    "CompiledDeck",
    "InvoiceAccumulator",
    "InvoiceLines",
    "LineIndex",
    "RatedBatch",
    "RatedRecords",
    "Rater",
    "invoice_lines",
    "rate_records",
]
