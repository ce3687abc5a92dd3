"""Usage charges: the previous month's records priced per zone or per unit, one line per group.

A record belongs to the subscription with its `line_id` in service on the record's local date;
without one it is rejected as a phantom line (never dropped, never billed silently). Zone
pricing normalises the destination to E.164 digits, finds its zone by longest prefix and prices
the record's quantity per the pricing unit (90 s at 0.02 EUR per minute = 0.03 EUR), exactly;
the line total is rounded once, at the line. Records outside the usage period are counted, not
billed (they belong to another run).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction

from dsl import nodes as n
from engine.calendar import local_date
from engine.catalogue import Product, where
from engine.evaluator.charges import Charge, RunContext, fmt_money, fmt_num, subscription_trace
from engine.evaluator.values import unit_factor
from engine.invoice import RejectedRecord, TraceStep
from engine.model import DataSet, Subscription, UsageRecord


def normalise_number(raw: str, country_code: str = "33") -> str | None:
    """E.164 digits of a dialled number: +33..., 0033..., national 0X... -> 33X...; else None."""
    text = "".join(ch for ch in raw if not ch.isspace() and ch not in "-.()")
    if text.startswith("+"):
        digits = text[1:]
    elif text.startswith("00"):
        digits = text[2:]
    elif text.startswith("0"):
        digits = country_code + text[1:]
    else:
        digits = text
    if not digits.isdigit() or len(digits) < 4:
        return None
    return digits


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


def usage_charges(ctx: RunContext, data: DataSet) -> UsageOutcome:
    cat = ctx.catalogue
    groups: dict[tuple[str, str, str, str], _Group] = {}
    rejected: list[RejectedRecord] = []
    outside = billed = 0
    country_code = "33" if cat.country == "FR" else "33"
    for rec in sorted(data.usage, key=lambda r: r.record_id):
        day = local_date(rec.start_time, cat.timezone)
        if not (ctx.usage_period.start <= day < ctx.usage_period.end):
            outside += 1
            continue
        reason = _price_record(ctx, data, rec, day, groups, country_code)
        if reason is not None:
            rejected.append(RejectedRecord(record_id=rec.record_id, line_id=rec.line_id, reason=reason))
        else:
            billed += 1
    out: dict[str, list[Charge]] = defaultdict(list)
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
    return UsageOutcome(dict(out), len(data.usage), billed, outside, rejected)


def _price_record(
    ctx: RunContext,
    data: DataSet,
    rec: UsageRecord,
    day: object,
    groups: dict[tuple[str, str, str, str], _Group],
    country_code: str,
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
