"""Compile a usage product's rating rules from the checked tree into an `engine.rating` plan.

A usage product with `rating R` is rated by the vectorised rating engine (engine/rating): the
ruleset's `rating`, `rate_deck` and `time_bands` blocks become a `RatingPlan`. Selling prices
come from the rating's own `deck` (a supplier-layout CSV mapped with `column`), or from the
product's `price by zone Z per minute { ... }`, which becomes a deck with one row per prefix of
the zones table (the same price in every band). A zone of the table without a price stays in
the deck at price 0 and is listed in `unpriced_zones`: its records are rejected, never billed
at 0 nor caught by a shorter prefix. Only checked nodes are read; nothing is evaluated from text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from pathlib import Path

import phonenumbers

from dsl import nodes as n
from dsl.exact import Fraction
from engine.catalogue import Catalogue, Product, where
from engine.evaluator.backend import Pricer
from engine.evaluator.values import UNITS, EvaluationError
from engine.rating.plan import (
    Allowance,
    ColumnMapping,
    FairUse,
    RateDeck,
    RateDeckRow,
    RatingPlan,
    TimeBands,
    load_rate_deck,
)

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MICRO = 1_000_000


class RatingSetupError(Exception):
    """A rating block that cannot be turned into a plan (unreadable deck file...)."""


@dataclass(frozen=True)
class ProductRating:
    plan: RatingPlan
    unpriced_zones: frozenset[str]
    source: str  # where the rating rule is written
    description: str  # the rules in words, for traces


def _micro(value: Fraction, what: str) -> int:
    micro = value * MICRO
    if micro.denominator != 1:
        raise EvaluationError(f"{what} is not a whole number of micro-units: {value}")
    return int(micro)


def _value(pricer: Pricer, e: n.Expr, cat: Catalogue) -> Fraction:
    v = pricer.expr(e, cat.consts)
    if not isinstance(v, Fraction):
        raise EvaluationError(f"expected a number, got {v!r}")
    return v


def load_deck(decl: n.RateDeckDecl) -> RateDeck:
    file_attr = next((a for a in decl.attrs if isinstance(a, n.TextAttr) and a.key == "file"), None)
    if file_attr is None:
        raise RatingSetupError(f"rate deck {decl.name} has no file ({where(decl.span)})")
    base = Path(decl.span.file).parent
    path = base / file_attr.value
    columns = {a.field: a.header for a in decl.attrs if isinstance(a, n.ColumnAttr)}
    defaults = ColumnMapping()
    mapping = ColumnMapping(**{k: v for k, v in columns.items() if hasattr(defaults, k)})  # type: ignore[arg-type]
    unit = decl.word("prices_in") or "micro"
    deck, errors = load_rate_deck(path, mapping, "decimal" if unit == "decimal" else "micro", decl.name)
    if deck is None:
        shown = "; ".join(str(e) for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise RatingSetupError(f"rate deck {decl.name} ({where(decl.span)}): {shown}{more}")
    return deck


def _bands(decl: n.TimeBandsDecl | None, tz: str) -> TimeBands:
    if decl is None:
        return TimeBands(tz=tz)
    kwargs: dict[str, object] = {"tz": tz}
    for a in decl.attrs:
        if isinstance(a, n.PeakAttr):
            first, last = DAYS.index(a.first_day), DAYS.index(a.last_day)
            kwargs["peak_days"] = frozenset(range(first, last + 1))
            kwargs["peak_start"] = a.start
            kwargs["peak_end"] = a.end if a.end != time(0, 0) else time(23, 59, 59)
        elif isinstance(a, n.KeysAttr) and a.key == "weekend":
            kwargs["weekend_days"] = frozenset(DAYS.index(d) for d in a.values)
        elif isinstance(a, n.WordAttr) and a.key == "holidays":
            kwargs["holidays_country"] = a.value
        elif isinstance(a, n.WordAttr) and a.key == "policy":
            kwargs["policy"] = a.value
    return TimeBands(**kwargs)  # type: ignore[arg-type]


def _zone_deck(cat: Catalogue, pricer: Pricer, product: Product, pricing: n.ZonePricing, increments: tuple[int, int]) -> tuple[RateDeck, frozenset[str]]:
    table = cat.zones.get(pricing.zones)
    if table is None:
        raise RatingSetupError(f"{product.code}: no zones table {pricing.zones}")
    per_minute = Fraction(60, UNITS[pricing.per][1])  # price per `per` unit -> per minute
    prices: dict[str, int] = {}
    for rate in pricing.rates:
        prices[rate.zone] = _micro(_value(pricer, rate.price, cat) * per_minute, f"{product.code} price of {rate.zone}")
    rows = []
    unpriced = set()
    for prefix, zone in sorted(table.prefixes.items()):
        price = prices.get(zone)
        if price is None:
            unpriced.add(zone)
            price = 0
        rows.append(
            RateDeckRow(
                prefix=prefix,
                zone=zone,
                price_peak=price,
                price_offpeak=price,
                price_weekend=price,
                first_increment_s=increments[0],
                next_increment_s=increments[1],
            )
        )
    return RateDeck(f"{product.code} by zone {pricing.zones}", tuple(rows), where(pricing.span)), frozenset(unpriced)


def product_rating(cat: Catalogue, pricer: Pricer, product: Product, pricing: n.Pricing | None) -> ProductRating:
    """The plan rating `product`'s records (its `rating` block and its zone prices)."""
    assert product.rating is not None
    decl = cat.ratings[product.rating]
    increments_attr = decl.first("increments")
    increments = (increments_attr.first, increments_attr.next) if isinstance(increments_attr, n.IncrementsAttr) else None
    deck_name = decl.word("deck")
    unpriced: frozenset[str] = frozenset()
    if deck_name is not None:
        deck = load_deck(cat.rate_decks[deck_name])
    elif isinstance(pricing, n.ZonePricing):
        deck, unpriced = _zone_deck(cat, pricer, product, pricing, increments or (1, 1))
    else:
        raise RatingSetupError(
            f"{product.code}: a rated usage product needs `price by zone` or a `deck` in rating {decl.name}"
        )
    cost_name = decl.word("cost_deck")
    cost_deck = load_deck(cat.rate_decks[cost_name]) if cost_name else None
    bands = _bands(cat.time_bands.get(decl.word("bands") or ""), cat.timezone)
    minimum = decl.expr("minimum_duration")
    rounding = decl.first("per_call_rounding")
    per_call = None
    if isinstance(rounding, n.RoundingAttr):
        step = Fraction(rounding.step) * MICRO
        if step.denominator != 1:
            raise RatingSetupError(f"per_call_rounding {rounding.step} is finer than a micro-unit ({where(rounding.span)})")
        mode = {"ceiling": "up", "floor": "down", "up": "up", "down": "down"}.get(rounding.mode, rounding.mode)
        if mode not in ("up", "down", "half_up", "half_even"):
            raise RatingSetupError(f"per_call_rounding mode {rounding.mode} is not supported for calls ({where(rounding.span)})")
        per_call = (int(step), mode)
    maximum = decl.expr("maximum_per_call")
    allowances: list[Allowance] = []
    fair_use = None
    for a in decl.attrs:
        if isinstance(a, n.AllowanceAttr):
            seconds = _value(pricer, a.amount, cat)
            allowances.append(
                Allowance(
                    name=f"{decl.name} allowance {len(allowances) + 1}",
                    quantity_s=int(seconds),
                    zones=frozenset(a.zones),
                    scope="pooled" if a.scope == "customer" else "line",
                )
            )
        elif isinstance(a, n.FairUseAttr):
            fair_use = FairUse(int(_value(pricer, a.amount, cat)), "pooled" if a.scope == "customer" else "line")
    country = decl.word("country") or cat.country
    code = phonenumbers.country_code_for_region(country) or 33
    plan = RatingPlan(
        deck=deck,
        bands=bands,
        default_country_code=str(code),
        increments=increments if deck_name is not None else None,
        minimum_duration_s=int(_value(pricer, minimum, cat)) if minimum is not None else 0,
        unanswered=decl.word("unanswered") or "drop",  # type: ignore[arg-type]
        per_call_rounding=per_call,  # type: ignore[arg-type]
        max_per_call_micro=_micro(_value(pricer, maximum, cat), "maximum_per_call") if maximum is not None else None,
        allowances=tuple(allowances),
        fair_use=fair_use,
        cost_deck=cost_deck,
    )
    parts = []
    if increments:
        parts.append(f"increments {increments[0]}/{increments[1]}")
    if plan.minimum_duration_s:
        parts.append(f"minimum {plan.minimum_duration_s} s")
    if per_call:
        parts.append(f"per-call rounding {rounding.step} {rounding.mode}")  # type: ignore[union-attr]
    for al in allowances:
        parts.append(
            f"{al.quantity_s // 60} min included per {'customer' if al.scope == 'pooled' else 'line'}"
            + (f" on {', '.join(sorted(al.zones))}" if al.zones else "")
        )
    if plan.max_per_call_micro is not None:
        parts.append(f"at most {Fraction(plan.max_per_call_micro, MICRO)} per call")
    return ProductRating(plan, unpriced, where(decl.span), f"rating {decl.name}: " + (", ".join(parts) or "per second"))
