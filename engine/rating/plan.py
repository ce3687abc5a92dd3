"""Rating plan: the frozen, DSL-independent interface of the usage rating engine.

The ruleset language compiles its ``rate_deck``, ``time_bands`` and ``rating`` blocks into the
dataclasses of this module; the kernel (:mod:`engine.rating.kernel`) and the reference rater
(:mod:`engine.rating.reference`) only read them.  Everything here is immutable and hashable.

Units (contract, shared by every module of ``engine.rating``):

* money is an integer number of **micro-units** (1 micro = 0.000001 of the currency);
  prices are **micro-units per minute**; no float ever touches money;
* durations are integer **seconds**;
* timestamps are integer **UTC epoch seconds**; local time (bands, holidays, effective dates)
  is computed in ``TimeBands.tz`` (Europe/Paris).

Rate decks are loaded from CSV by :func:`load_rate_deck`; it reports *every* problem as a
:class:`DeckError` (``deck.csv:12:price_peak: not an integer 'abc'``; rows count the header as
row 1, like a spreadsheet) and returns no deck when there is any error.

Rounding in this module: none.  A ``decimal`` price (``0.0125`` EUR) is converted to micro-units
exactly (``12500``); a price with more than 6 decimals cannot be converted exactly and is a deck
error, never rounded.  All per-call rounding is described by :attr:`RatingPlan.per_call_rounding`
and done in the kernel (see :mod:`engine.rating.kernel`).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Literal

PriceUnit = Literal["micro", "decimal"]
BandPolicy = Literal["call_start", "split"]
AllowanceScope = Literal["line", "pooled"]
UnansweredPolicy = Literal["drop", "free", "connect_fee"]
RoundingMode = Literal["up", "down", "half_up", "half_even"]

ROUNDING_MODES: tuple[str, ...] = ("up", "down", "half_up", "half_even")

#: band codes used in every result array
PEAK, OFFPEAK, WEEKEND = 0, 1, 2
BAND_NAMES: tuple[str, ...] = ("peak", "offpeak", "weekend")

MAX_PREFIX_DIGITS = 15


# ----------------------------------------------------------------------------------- rate decks
@dataclass(frozen=True)
class ColumnMapping:
    """Which CSV column holds which field of a rate deck row.

    Defaults are the header names of the benchmark kit's ``ratedeck.csv``.  ``effective_date``
    names an *optional* column (ISO ``YYYY-MM-DD``): when the file has it, a row applies from
    that local date on; when absent (or ``None``) every row applies from the beginning of time.
    Columns of the file that are not mapped are errors (a typo in a header must not silently drop
    data) unless listed in ``ignore_columns`` (e.g. a supplier's "description" column).
    """

    prefix: str = "prefix"
    zone: str = "zone"
    price_peak: str = "price_peak"
    price_offpeak: str = "price_offpeak"
    price_weekend: str = "price_weekend"
    connect_fee: str = "connect_fee"
    first_increment_s: str = "first_incr_s"
    next_increment_s: str = "next_incr_s"
    minimum_charge: str = "min_charge"
    effective_date: str | None = "effective_date"
    ignore_columns: frozenset[str] = frozenset()

    def required(self) -> tuple[tuple[str, str], ...]:
        """(field, column) pairs that must be present in the header."""
        return (
            ("prefix", self.prefix),
            ("zone", self.zone),
            ("price_peak", self.price_peak),
            ("price_offpeak", self.price_offpeak),
            ("price_weekend", self.price_weekend),
            ("connect_fee", self.connect_fee),
            ("first_increment_s", self.first_increment_s),
            ("next_increment_s", self.next_increment_s),
            ("minimum_charge", self.minimum_charge),
        )


@dataclass(frozen=True)
class RateDeckRow:
    """One destination prefix.  Prices in micro-units per minute, fees in micro-units."""

    prefix: str  # digits only, 1..15, E.164 without '+' ("44", "447", "4474")
    zone: str
    price_peak: int
    price_offpeak: int
    price_weekend: int
    connect_fee: int = 0
    first_increment_s: int = 60
    next_increment_s: int = 60
    minimum_charge: int = 0
    effective_date: date | None = None  # None: in force since the beginning of time

    def price(self, band: int) -> int:
        return (self.price_peak, self.price_offpeak, self.price_weekend)[band]


@dataclass(frozen=True)
class RateDeck:
    """A rate deck: rows with unique (prefix, effective_date).

    The deck in force for a call is, for each prefix, its row with the latest effective date on
    or before the call's local start date; the longest such prefix of the number wins.
    """

    name: str
    rows: tuple[RateDeckRow, ...]
    source_path: str | None = None

    def zones(self) -> tuple[str, ...]:
        """Sorted distinct zones; the kernel's zone index i means ``zones()[i]``."""
        return tuple(sorted({r.zone for r in self.rows}))


@dataclass(frozen=True)
class DeckError:
    file: str
    row: int  # 1 = header row
    column: str  # column name, "" when the error is about the whole row
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.row}:{self.column}: {self.message}"


_DIGITS = re.compile(r"[0-9]+")
_MICRO_INT = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")


def parse_micro(text: str, unit: PriceUnit) -> tuple[int | None, str | None]:
    """Parse a money cell into micro-units exactly.  Returns (value, error message)."""
    s = text.strip()
    if unit == "micro":
        if not _MICRO_INT.fullmatch(s):
            return None, f"not an integer {text!r}"
        return int(s), None
    m = _DECIMAL.fullmatch(s)
    if not m:
        return None, f"not a decimal {text!r}"
    sign, whole, frac = m.group(1), m.group(2), m.group(3) or ""
    if len(frac) > 6:
        return None, f"more than 6 decimals {text!r} (not exact in micro-units)"
    v = int(whole) * 1_000_000 + int(frac.ljust(6, "0") or "0")
    return (-v if sign else v), None


def load_rate_deck(
    path: str | Path,
    mapping: ColumnMapping | None = None,
    price_unit: PriceUnit = "micro",
    name: str | None = None,
) -> tuple[RateDeck | None, list[DeckError]]:
    """Load and validate a rate deck CSV (UTF-8, header row, ``,`` separated).

    Returns ``(deck, [])`` or ``(None, errors)`` with every error found: header/mapping
    mismatches (reported at row 1 naming the column), bad integers/decimals/dates, negative
    money, bad increments, prefixes that are not 1-15 digits, empty zones, zones with no price
    (empty price cells), and duplicate prefixes (same prefix and same effective date).
    Money columns (prices, connect fee, minimum charge) use ``price_unit``.
    """
    mapping = mapping or ColumnMapping()
    p = Path(path)
    fname = p.name
    errors: list[DeckError] = []
    try:
        raw = p.read_bytes()
    except OSError as e:
        return None, [DeckError(fname, 0, "", f"cannot read file: {e}")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return None, [DeckError(fname, 0, "", f"not UTF-8: {e}")]
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return None, [DeckError(fname, 1, "", "empty file (no header row)")]
    header = [h.strip() for h in header]
    pos: dict[str, int] = {}
    for i, h in enumerate(header):
        if h in pos:
            errors.append(DeckError(fname, 1, h, "duplicate column"))
        pos[h] = i
    for _, col in mapping.required():
        if col not in pos:
            errors.append(DeckError(fname, 1, col, "missing column (required by the mapping)"))
    known = {c for _, c in mapping.required()} | set(mapping.ignore_columns)
    if mapping.effective_date:
        known.add(mapping.effective_date)
    for h in header:
        if h not in known:
            errors.append(DeckError(fname, 1, h, "unknown column (not in the mapping)"))
    if errors:
        return None, errors

    has_eff = bool(mapping.effective_date) and mapping.effective_date in pos
    rows: list[RateDeckRow] = []
    seen: dict[tuple[str, date | None], int] = {}
    money_fields = ("price_peak", "price_offpeak", "price_weekend", "connect_fee", "minimum_charge")
    for rowno, rec in enumerate(reader, start=2):
        if not rec or all(not c.strip() for c in rec):
            continue  # blank line
        if len(rec) != len(header):
            errors.append(DeckError(fname, rowno, "",
                                    f"expected {len(header)} columns, got {len(rec)}"))
            continue

        def cell(col: str, rec: list[str] = rec) -> str:
            return rec[pos[col]].strip()

        ok = True
        prefix = cell(mapping.prefix)
        if prefix.startswith("+"):
            prefix = prefix[1:]
        if not _DIGITS.fullmatch(prefix) or len(prefix) > MAX_PREFIX_DIGITS:
            errors.append(DeckError(fname, rowno, mapping.prefix,
                                    f"prefix must be 1-{MAX_PREFIX_DIGITS} digits {cell(mapping.prefix)!r}"))
            ok = False
        zone = cell(mapping.zone)
        if not zone:
            errors.append(DeckError(fname, rowno, mapping.zone, "empty zone"))
            ok = False
        vals: dict[str, int] = {}
        for f in money_fields:
            col = getattr(mapping, f)
            c = cell(col)
            if c == "":
                if f.startswith("price"):
                    errors.append(DeckError(fname, rowno, col, f"zone {zone!r} has no price"))
                    ok = False
                else:
                    vals[f] = 0
                continue
            v, err = parse_micro(c, price_unit)
            if err is not None or v is None:
                errors.append(DeckError(fname, rowno, col, err or "bad value"))
                ok = False
            elif v < 0:
                errors.append(DeckError(fname, rowno, col, f"negative amount {c!r}"))
                ok = False
            else:
                vals[f] = v
        for f in ("first_increment_s", "next_increment_s"):
            col = getattr(mapping, f)
            c = cell(col)
            if not _DIGITS.fullmatch(c):
                errors.append(DeckError(fname, rowno, col, f"not an integer {c!r}"))
                ok = False
            elif int(c) < 1 or int(c) > 86400:
                errors.append(DeckError(fname, rowno, col, f"increment must be 1..86400 s, got {c}"))
                ok = False
            else:
                vals[f] = int(c)
        eff: date | None = None
        if has_eff:
            assert mapping.effective_date is not None
            c = cell(mapping.effective_date)
            if c:
                try:
                    eff = date.fromisoformat(c)
                except ValueError:
                    errors.append(DeckError(fname, rowno, mapping.effective_date,
                                            f"not a date (YYYY-MM-DD) {c!r}"))
                    ok = False
        if not ok:
            continue
        key = (prefix, eff)
        if key in seen:
            what = f"duplicate prefix {prefix!r}" + (f" for effective date {eff}" if eff else "")
            errors.append(DeckError(fname, rowno, mapping.prefix, f"{what} (first at row {seen[key]})"))
            continue
        seen[key] = rowno
        rows.append(RateDeckRow(prefix=prefix, zone=zone, price_peak=vals["price_peak"],
                                price_offpeak=vals["price_offpeak"],
                                price_weekend=vals["price_weekend"],
                                connect_fee=vals["connect_fee"],
                                first_increment_s=vals["first_increment_s"],
                                next_increment_s=vals["next_increment_s"],
                                minimum_charge=vals["minimum_charge"], effective_date=eff))
    if not rows and not errors:
        errors.append(DeckError(fname, 1, "", "no rows"))
    if errors:
        return None, errors
    return RateDeck(name=name or p.stem, rows=tuple(rows), source_path=str(p)), []


# ----------------------------------------------------------------------------------- time bands
@dataclass(frozen=True)
class TimeBands:
    """Peak / off-peak / weekend bands, in local time of ``tz``.

    Band of an instant (local wall clock in ``tz``, DST-correct):

    * weekend if its weekday (Mon=0 .. Sun=6) is in ``weekend_days`` or its date is a public
      holiday of ``holidays_country`` (via the ``holidays`` package; ``"FR"``: 1 Jan, Easter
      Monday, 1 May, 8 May, Ascension, Whit Monday, 14 Jul, 15 Aug, 1 Nov, 11 Nov, 25 Dec);
    * else peak if its weekday is in ``peak_days`` and ``peak_start <= local time < peak_end``;
    * else off-peak.

    ``policy``:

    * ``"call_start"``: the whole call is priced in the band of its start instant;
    * ``"split"``: increments are applied to the **whole call** first (``billed_s``), then the
      billed seconds are allocated to bands **in order**: billed second ``i`` (0-based) belongs to
      the band of instant ``start + i`` (real elapsed seconds, so a DST night has 23 or 25
      hours); rounding-up seconds beyond the real end therefore fall in the band that follows the
      end.  The call's exact amount is ``connect_fee + sum(seconds_b * price_b) / 60``; per-call
      rounding happens once, on that sum.
    """

    weekend_days: frozenset[int] = frozenset({5, 6})
    peak_days: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    peak_start: time = time(8, 0)
    peak_end: time = time(20, 0)
    holidays_country: str | None = None
    policy: BandPolicy = "call_start"
    tz: str = "Europe/Paris"

    def __post_init__(self) -> None:
        if self.policy not in ("call_start", "split"):
            raise ValueError(f"unknown band policy {self.policy!r}")
        if not self.peak_start <= self.peak_end:
            raise ValueError("peak_start must not be after peak_end")
        for d in self.weekend_days | self.peak_days:
            if not 0 <= d <= 6:
                raise ValueError(f"weekday must be 0..6 (Mon=0), got {d}")

    @property
    def peak_start_s(self) -> int:
        t = self.peak_start
        return t.hour * 3600 + t.minute * 60 + t.second

    @property
    def peak_end_s(self) -> int:
        t = self.peak_end
        return t.hour * 3600 + t.minute * 60 + t.second


# ----------------------------------------------------------------------------------- allowances
@dataclass(frozen=True)
class Allowance:
    """Included seconds ("forfait") per line or pooled across a customer's lines.

    Consumed in chronological order (start time, then record id) by answered, routed calls whose
    zone is in ``zones`` (empty: every zone).  It counts **billed** seconds (after increments and
    minimum duration).  A call that exhausts it mid-call is split: its first ``used`` billed
    seconds are free, the remaining ``billed_s - used`` seconds are priced at the call's band
    prices (with policy ``split``, the free seconds are the first seconds of the call) with no
    new increment.  Connect fee and minimum charge are charged only to calls that start outside
    the allowance (``used == 0``); a call fully or partly covered pays no connect fee and no
    minimum charge.  Several allowances apply in plan order, each to what the previous left.
    """

    name: str
    quantity_s: int
    zones: frozenset[str] = frozenset()
    scope: AllowanceScope = "line"

    def __post_init__(self) -> None:
        if self.quantity_s < 0:
            raise ValueError("allowance quantity must be >= 0")
        if self.scope not in ("line", "pooled"):
            raise ValueError(f"unknown allowance scope {self.scope!r}")


@dataclass(frozen=True)
class FairUse:
    """Fair-use cap: once the cumulative billed seconds of a line (or pool), in chronological
    order, exceed ``cap_s``, the record that crosses the cap and every later one are flagged
    (still rated and billed, never dropped)."""

    cap_s: int
    scope: AllowanceScope = "line"


# ----------------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class RatingPlan:
    """Everything needed to rate usage records.  See :mod:`engine.rating.kernel` for the order
    of the rules.

    * ``increments``: ``(first_s, next_s)`` overriding every deck row's increments;
    * ``minimum_duration_s``: minimum billed duration of an answered call, applied after the
      increments (``billed = max(billed, minimum_duration_s)``);
    * ``unanswered`` (duration 0 or not answered): ``drop`` (not billed, not on invoice lines),
      ``free`` (an invoice-line call with 0 s and 0 amount) or ``connect_fee`` (0 s, charged the
      connect fee only: no minimum charge);
    * ``per_call_rounding``: ``(step_micro, mode)``; each call's amount is rounded to a multiple
      of ``step_micro`` with ``mode`` in up/down/half_up/half_even (on the exact amount, before
      minimum charge and cap).  ``None``: exact amounts (in 1/60 micro) are kept to the invoice
      line, whose total is then a ``fractions.Fraction`` of micro-units;
    * ``max_per_call_micro``: cap on a call's amount (after the minimum charge);
    * ``cost_deck``: a supplier deck rating the same records at purchase cost (same bands,
      rounding and unanswered/minimum duration rules, the cost deck's own increments, no
      allowance, no cap) to compute margins.
    """

    deck: RateDeck
    bands: TimeBands = field(default_factory=TimeBands)
    default_country_code: str = "33"
    increments: tuple[int, int] | None = None
    minimum_duration_s: int = 0
    unanswered: UnansweredPolicy = "drop"
    per_call_rounding: tuple[int, RoundingMode] | None = None
    max_per_call_micro: int | None = None
    allowances: tuple[Allowance, ...] = ()
    fair_use: FairUse | None = None
    cost_deck: RateDeck | None = None

    def __post_init__(self) -> None:
        if not self.default_country_code.isdigit() or not 1 <= len(self.default_country_code) <= 3:
            raise ValueError("default_country_code must be 1-3 digits")
        if self.increments is not None and (self.increments[0] < 1 or self.increments[1] < 1):
            raise ValueError("increments must be >= 1 s")
        if self.unanswered not in ("drop", "free", "connect_fee"):
            raise ValueError(f"unknown unanswered policy {self.unanswered!r}")
        if self.per_call_rounding is not None:
            step, mode = self.per_call_rounding
            if step < 1 or mode not in ROUNDING_MODES:
                raise ValueError(f"bad per_call_rounding {self.per_call_rounding!r}")
        if self.minimum_duration_s < 0:
            raise ValueError("minimum_duration_s must be >= 0")
        if self.max_per_call_micro is not None and self.max_per_call_micro < 0:
            raise ValueError("max_per_call_micro must be >= 0")


# ----------------------------------------------------------------------------------- statuses
#: record statuses shared by the kernel, the reference rater and the importer
STATUS_RATED = 0  # answered, routed, priced (possibly 0 when covered by an allowance)
STATUS_UNROUTED = 1  # no prefix of the deck in force matches: zone "", 0 s, 0 amount
STATUS_UNANSWERED = 2  # unanswered, policy free / connect_fee: 0 s, 0 or the connect fee
STATUS_DROPPED = 3  # unanswered, policy drop: not on any invoice line
STATUS_INVALID = 4  # called number not normalisable: not on any invoice line
STATUS_NAMES: tuple[str, ...] = ("rated", "unrouted", "unanswered", "dropped", "invalid_number")
#: statuses that appear on invoice lines
BILLABLE_STATUSES: tuple[int, ...] = (STATUS_RATED, STATUS_UNROUTED, STATUS_UNANSWERED)
