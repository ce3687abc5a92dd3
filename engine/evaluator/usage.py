"""Usage charges: the previous month's records priced per zone or per unit, one line per group.

A record belongs to the subscription with its `line_id` in service on the record's local date;
without one it is rejected as a phantom line (never dropped, never billed silently). Zone
pricing normalises the destination to E.164 digits, finds its zone by longest prefix and prices
the record's quantity per the pricing unit (90 s at 0.02 EUR per minute = 0.03 EUR), exactly;
the line total is rounded once, at the line. Records outside the usage period are counted, not
billed (they belong to another run).

Usage products with a `rating` are rated by the vectorised engine (engine/rating), through the
plan compiled from the ruleset (engine/evaluator/rating_plans.py): increments, time bands,
connect fees, minimum charges, allowances and per-call rounding apply per call, and each line's
trace lists its calls. Unanswered calls the rating drops are counted, not billed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from dsl import nodes as n
from dsl.exact import Fraction
from engine.calendar import local_date
from engine.catalogue import Product, where
from engine.evaluator.charges import (
    Charge,
    RunContext,
    fmt_money,
    fmt_num,
    step,
    subscription_trace,
)
from engine.evaluator.rating_plans import MICRO, ProductRating, RatingSetupError, product_rating
from engine.evaluator.values import unit_factor
from engine.invoice import RejectedRecord, TraceStep
from engine.model import DataSet, Subscription, UsageRecord
from engine.rating.kernel import rate_records
from engine.rating.numbers import normalise
from engine.rating.plan import BAND_NAMES, STATUS_DROPPED, STATUS_INVALID, STATUS_UNROUTED


def normalise_number(raw: str, country_code: str = "33") -> str | None:
    """E.164 digits of a dialled number: +33..., 0033..., national 0X... -> 33X...; else None.
    The same rules as the rating engine's (engine.rating.numbers.normalise)."""
    text = "".join(ch for ch in raw if not ch.isspace() and ch not in "-.()")
    return normalise(text, country_code)


# `_price_record` returns None (priced), a reason (rejected), or this: rated later, in a batch.
DEFERRED = "deferred to the rating engine"


@dataclass
class _Group:
    sub: Subscription
    product: Product
    zone: str
    price: Fraction | None
    pricing: n.Pricing
    per: str
    span: n.Span
    quantity: Fraction = Fraction(0)  # in the record unit
    exact: Fraction = Fraction(0)
    records: list[str] = field(default_factory=list)


@dataclass
class UsageOutcome:
    charges_by_customer: dict[str, list[Charge]]
    read: int
    billed: int
    outside: int
    rejected: list[RejectedRecord]
    unanswered: int = 0


def usage_charges(ctx: RunContext, data: DataSet) -> UsageOutcome:
    cat = ctx.catalogue
    groups: dict[tuple[str, str, str, str], _Group] = {}
    rejected: list[RejectedRecord] = []
    outside = billed = 0
    country_code = "33"
    deferred: dict[tuple[str, str], _Batch] = {}
    for rec in sorted(data.usage, key=lambda r: r.record_id):
        day = local_date(rec.start_time, cat.timezone)
        if not (ctx.usage_period.start <= day < ctx.usage_period.end):
            outside += 1
            continue
        reason = _price_record(ctx, data, rec, day, groups, country_code, deferred)
        if reason is None:
            billed += 1
        elif reason is not DEFERRED:
            rejected.append(RejectedRecord(record_id=rec.record_id, line_id=rec.line_id, reason=reason))
    out: dict[str, list[Charge]] = defaultdict(list)
    unanswered = 0
    for batch_key in sorted(deferred):
        batch_billed, batch_unanswered, batch_rejected = _rate_batch(ctx, data, deferred[batch_key], out)
        billed += batch_billed
        unanswered += batch_unanswered
        rejected.extend(batch_rejected)
    rejected.sort(key=lambda r: r.record_id)
    for key in sorted(groups):
        g = groups[key]
        customer = data.customers_by_id[g.sub.customer_id]
        factor = Fraction(unit_factor(g.product.unit or "unit"), unit_factor(g.per))
        qty = g.quantity * factor
        if isinstance(g.pricing, n.ZonePricing | n.UnitPricing):
            exact = g.exact
            up = g.price if g.price is not None else Fraction(0)
        else:
            exact = ctx.pricer.period_amount(g.pricing, qty, cat.consts)
            up = exact / qty if qty else Fraction(0)
        zone_text = f" - {g.zone}" if g.zone else ""
        trace = [
            subscription_trace(g.sub),
            TraceStep(
                rule="usage",
                text=(
                    f"{len(g.records)} records of {g.product.code} on line {g.sub.line_id} in "
                    f"{ctx.usage_period.label()}{zone_text}: {fmt_num(g.quantity)} {g.product.unit} = "
                    f"{fmt_num(qty)} {g.per}"
                ),
                source="data: usage",
            ),
            TraceStep(
                rule="price",
                text=(
                    f"{fmt_money(up)} per {g.per}" + (f" in zone {g.zone}" if g.zone else "")
                    if g.price is not None
                    else f"{type(g.pricing).__name__} on {fmt_num(qty)} {g.per} = {fmt_money(exact)}"
                ),
                source=where(g.span),
            ),
        ]
        cost = None
        if g.product.cost is not None:
            c = ctx.pricer.expr(g.product.cost, cat.consts)
            if isinstance(c, Fraction):
                cost = c * qty
        out[customer.customer_id].append(
            Charge(
                kind="usage",
                customer=customer,
                product=g.product,
                description=g.product.label + zone_text,
                quantity=qty,
                unit_price=up,
                exact=exact,
                period=ctx.usage_period,
                rule=f"product {g.product.code} ({where(g.span)})",
                trace=trace,
                explain_formula=f"{len(g.records)} records, {fmt_num(qty, 4)} {g.per} x {fmt_money(up)}",
                vat=cat.vat_rates[g.product.vat],
                subscription_id=g.sub.subscription_id,
                site_id=g.sub.site_id,
                account_id=g.sub.account_id,
                cost=cost,
                records=tuple(g.records),
                sort_extra=(g.zone,),
            )
        )
    return UsageOutcome(dict(out), len(data.usage), billed, outside, rejected, unanswered)


def _price_record(
    ctx: RunContext,
    data: DataSet,
    rec: UsageRecord,
    day: object,
    groups: dict[tuple[str, str, str, str], _Group],
    country_code: str,
    deferred: dict[tuple[str, str], _Batch],
) -> str | None:
    cat = ctx.catalogue
    sub = data.subscription_for_line(rec.line_id, day)  # type: ignore[arg-type]
    if sub is None:
        return f"no subscription in service on line {rec.line_id} on {day} (phantom line)"
    product = cat.products.get(rec.product)
    if product is None or product.kind != "usage":
        return f"{rec.product} is not a usage product"
    customer = data.customers_by_id[sub.customer_id]
    pricelist = cat.pricelist_for(customer.pricelist, customer.segment)
    version, _ = cat.prices.pricing_on(pricelist, product.code, day, sub.start_date)  # type: ignore[arg-type]
    if version is None:
        return f"no price for {product.code} (rating plans are priced by the rating engine)"
    pricing = version.pricing
    if product.rating is not None:
        batch_key = (product.code, f"{version.span}{version.since}")
        batch = deferred.get(batch_key)
        if batch is None:
            batch = deferred[batch_key] = _Batch(product, version.pricing, version.span)
        batch.items.append((rec, sub))
        return DEFERRED
    qty = Fraction(rec.quantity)
    zone = ""
    price: Fraction | None = None
    per = product.unit or "unit"
    if isinstance(pricing, n.ZonePricing):
        if not rec.destination:
            return "no destination for a zone-priced record"
        digits = normalise_number(rec.destination, country_code)
        if digits is None:
            return f"destination {rec.destination!r} is not a phone number"
        table = cat.zones.get(pricing.zones)
        found = table.zone_of(digits) if table else None
        if found is None:
            return f"destination {rec.destination} matches no zone of {pricing.zones}"
        zone = found
        price = ctx.pricer.zone_price(pricing, zone, cat.consts)
        if price is None:
            return f"zone {zone} has no price in {product.code}"
        per = pricing.per
    elif isinstance(pricing, n.UnitPricing):
        price = ctx.pricer.unit_price(pricing, cat.consts)
        per = pricing.per or per
    key = (sub.subscription_id, product.code, zone, str(version.span) + repr(version.since))
    g = groups.get(key)
    if g is None:
        g = _Group(sub, product, zone, price, pricing, per, version.span)
        groups[key] = g
    g.quantity += qty
    if price is not None:
        g.exact += qty * Fraction(unit_factor(product.unit or "unit"), unit_factor(per)) * price
    g.records.append(rec.record_id)
    return None


@dataclass
class _Batch:
    """Records of one rated product and price version, rated together by the engine."""

    product: Product
    pricing: n.Pricing
    span: n.Span
    items: list[tuple[UsageRecord, Subscription]] = field(default_factory=list)


@dataclass
class _RatedGroup:
    sub: Subscription
    zone: str
    calls: int = 0
    billed_s: int = 0
    amount: int = 0  # in 1/den micro-units
    cost: int = 0
    allowance_s: int = 0
    fair_use: int = 0
    records: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)


def _plan(ctx: RunContext, batch: _Batch) -> ProductRating:
    key = ("rating_plan", batch.product.code, str(batch.span))
    hit = ctx.memo.get(key)
    if hit is None:
        hit = product_rating(ctx.catalogue, ctx.pricer, batch.product, batch.pricing)
        ctx.memo[key] = hit
    assert isinstance(hit, ProductRating)
    return hit


def _rate_batch(
    ctx: RunContext, data: DataSet, batch: _Batch, out: dict[str, list[Charge]]
) -> tuple[int, int, list[RejectedRecord]]:
    """Rate a batch with the vectorised engine; returns (billed, unanswered dropped, rejected)."""
    cat = ctx.catalogue
    rejected: list[RejectedRecord] = []
    try:
        rating = _plan(ctx, batch)
    except (RatingSetupError, KeyError) as e:
        reason = f"cannot rate {batch.product.code}: {e}"
        return 0, 0, [RejectedRecord(record_id=r.record_id, line_id=r.line_id, reason=reason) for r, _ in batch.items]
    items = []
    for rec, sub in batch.items:
        if rec.quantity != rec.quantity.to_integral_value() or rec.quantity < 0:
            rejected.append(RejectedRecord(record_id=rec.record_id, line_id=rec.line_id, reason=f"duration {rec.quantity} is not a whole number of seconds"))
        else:
            items.append((rec, sub))
    rated = rate_records(
        rating.plan,
        [sub.subscription_id for _, sub in items],
        [int(rec.start_time.timestamp()) for rec, _ in items],
        [int(rec.quantity) for rec, _ in items],
        [rec.destination or "" for rec, _ in items],
        answered=[rec.quantity > 0 for rec, _ in items],
        record_id=list(range(len(items))),
        pools={sub.subscription_id: sub.customer_id for _, sub in items},
    )
    b = rated.batch
    groups: dict[tuple[str, str], _RatedGroup] = {}
    billed = unanswered = 0
    for i, (rec, sub) in enumerate(items):
        status = int(b.status[i])
        zone = rated.zone_names[int(b.zone[i])]
        if status == STATUS_INVALID:
            rejected.append(RejectedRecord(record_id=rec.record_id, line_id=rec.line_id, reason=f"destination {rec.destination!r} is not a phone number"))
            continue
        if status == STATUS_UNROUTED:
            rejected.append(RejectedRecord(record_id=rec.record_id, line_id=rec.line_id, reason=f"destination {rec.destination} matches no zone of {rating.plan.deck.name}"))
            continue
        if zone in rating.unpriced_zones:
            rejected.append(RejectedRecord(record_id=rec.record_id, line_id=rec.line_id, reason=f"zone {zone} has no price in {batch.product.code}"))
            continue
        if status == STATUS_DROPPED:
            unanswered += 1
            continue
        billed += 1
        g = groups.get((sub.subscription_id, zone))
        if g is None:
            g = groups[(sub.subscription_id, zone)] = _RatedGroup(sub, zone)
        amount, cost = int(b.price_micro[i]), int(b.cost_micro[i])
        g.calls += 1
        g.billed_s += int(b.billed_s[i])
        g.amount += amount
        g.cost += cost
        g.allowance_s += int(b.allowance_used_s[i])
        g.fair_use += int(bool(b.fair_use[i]))
        g.records.append(rec.record_id)
        band = BAND_NAMES[int(b.band[i])] if int(b.band[i]) >= 0 else "-"
        used = int(b.allowance_used_s[i])
        g.details.append(
            f"{rec.record_id} {rec.start_time.isoformat(timespec='seconds')} to {rec.destination} ({zone}, {band}): "
            f"{rec.quantity} s, billed {int(b.billed_s[i])} s"
            + (f", {used} s included" if used else "")
            + f" = {fmt_money(Fraction(amount, b.den * MICRO))}"
            + (" [fair use exceeded]" if b.fair_use[i] else "")
        )
    per_minute = isinstance(batch.pricing, n.ZonePricing) and batch.pricing.per == "minute"
    for key in sorted(groups):
        g = groups[key]
        customer = data.customers_by_id[g.sub.customer_id]
        exact = Fraction(g.amount, b.den * MICRO)
        chargeable_s = g.billed_s - g.allowance_s
        qty = Fraction(chargeable_s, 60)
        zone_price = None
        if isinstance(batch.pricing, n.ZonePricing):
            zone_price = ctx.pricer.zone_price(batch.pricing, g.zone, cat.consts)
        up = exact / qty if qty else Fraction(0)
        trace = [
            subscription_trace(g.sub),
            step(
                "usage",
                f"{g.calls} calls of {batch.product.code} on line {g.sub.line_id} to {g.zone} in {ctx.usage_period.label()}: "
                f"billed {g.billed_s} s" + (f", {g.allowance_s} s included" if g.allowance_s else "")
                + f", {chargeable_s} s charged" + (f"; {g.fair_use} calls beyond fair use" if g.fair_use else ""),
                "data: usage",
            ),
            step("rating", rating.description, rating.source),
        ]
        if zone_price is not None:
            trace.append(step("price", f"{fmt_money(zone_price)} per {batch.pricing.per if isinstance(batch.pricing, n.ZonePricing) else 'minute'} in zone {g.zone}", where(batch.span)))
        trace.extend(step("call", d, "data: usage") for d in g.details)
        formula = f"{g.calls} calls, {fmt_num(qty, 4)} min charged"
        if zone_price is not None and per_minute:
            formula += f" at {fmt_money(zone_price)}/min"
        out[customer.customer_id].append(
            Charge(
                kind="usage",
                customer=customer,
                product=batch.product,
                description=f"{batch.product.label} - {g.zone}",
                quantity=qty,
                unit_price=zone_price if zone_price is not None else up,
                exact=exact,
                period=ctx.usage_period,
                rule=f"product {batch.product.code} ({where(batch.span)})",
                trace=trace,
                explain_formula=formula,
                vat=cat.vat_rates[batch.product.vat],
                subscription_id=g.sub.subscription_id,
                site_id=g.sub.site_id,
                account_id=g.sub.account_id,
                cost=Fraction(g.cost, b.den * MICRO) if b.has_cost else None,
                records=tuple(g.records),
                sort_extra=(g.zone,),
            )
        )
    return billed, unanswered, rejected
