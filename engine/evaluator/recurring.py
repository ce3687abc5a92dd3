"""Recurring charges of a subscription for one run: in advance, regularisation, in arrears.

See docs/semantics.md "The billing run and its periods". A billing period is charged in
*pieces*: the parts of the period with one quantity and one price version. In advance, the
pieces come from the subscription's state on the period's first day; actually served pieces come
from every activation, termination and quantity change. The regularisation of a period is,
interval by interval, actual minus advance, so the lines of a period always add up (exactly,
before rounding) to the prorated charge of what was really served.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache

from dsl import nodes as n
from dsl.exact import Fraction
from engine.calendar import (
    Period,
    add_months,
    billing_period_containing,
    billing_periods_starting_in,
)
from engine.catalogue import PriceVersion, Product, where
from engine.evaluator.charges import (
    ONE_DAY,
    UNTRACED,
    Charge,
    RunContext,
    fmt_money,
    fmt_num,
    period_label,
    step,
    subscription_trace,
)
from engine.invoice import TraceStep
from engine.model import Customer, Subscription
from engine.proration import ProrationMethod, ProrationPolicy, describe_fraction, served_fraction


@dataclass(frozen=True)
class Piece:
    """Part of a billing period with one quantity and one price."""

    span: Period
    quantity: Fraction
    version: PriceVersion | None
    pricelist: str | None


def periods_closing_in(product: Product, window: Period) -> Iterator[Period]:
    """Billing periods that end within (window.start, window.end]: regularised or billed in arrears."""
    bp = billing_period_containing(product.periodicity, product.anchor, window.start)
    while bp.start < window.end:
        if window.start < bp.end <= window.end:
            yield bp
        bp = billing_period_containing(product.periodicity, product.anchor, bp.end)


@dataclass(frozen=True)
class ProductPlan:
    """The billing periods a product bills in this run, shared by all its subscriptions."""

    advance: tuple[Period, ...]  # periods starting in the run's month (in advance only)
    closing: tuple[Period, ...]  # periods ending in the usage month: regularised or in arrears
    window: Period | None  # from the first period's start to the last one's end
    price_cuts: bool  # a price version starts strictly inside the window


def _plan_of(ctx: RunContext, product: Product, advance: tuple[Period, ...], closing: tuple[Period, ...]) -> ProductPlan:
    periods = advance + closing
    window = Period(min(p.start for p in periods), max(p.end for p in periods)) if periods else None
    cuts = window is not None and any(
        window.start < d < window.end for d in ctx.catalogue.prices.change_dates.get(product.code, ())
    )
    return ProductPlan(advance, closing, window, cuts)


def product_plan(ctx: RunContext, product: Product) -> ProductPlan:
    key = ("plan", product.code)
    plan = ctx.memo.get(key)
    if plan is None:
        advance = (
            tuple(billing_periods_starting_in(product.periodicity, product.anchor, ctx.period))
            if product.billing == "in_advance"
            else ()
        )
        plan = ctx.memo[key] = _plan_of(ctx, product, advance, tuple(periods_closing_in(product, ctx.usage_period)))
    assert isinstance(plan, ProductPlan)
    return plan


def advance_plan(ctx: RunContext, product: Product) -> ProductPlan:
    """The product's plan without its closing periods: the in-advance lines only."""
    key = ("advance_plan", product.code)
    plan = ctx.memo.get(key)
    if plan is None:
        plan = ctx.memo[key] = _plan_of(ctx, product, product_plan(ctx, product).advance, ())
    assert isinstance(plan, ProductPlan)
    return plan


def is_steady(sub: Subscription, plan: ProductPlan) -> bool:
    """True when nothing happens to the subscription during the run's periods: in service
    throughout, no quantity change, no price change. Then in advance equals actual, and every
    period is charged whole: the fast path."""
    w = plan.window
    if w is None:
        return True
    if sub.start_date > w.start or plan.price_cuts:
        return False
    if sub.end_date is not None and sub.end_date < w.last_day:
        return False
    return not any(w.start < c.effective_date < w.end for c in sub.quantity_changes)


def _has_new_only(ctx: RunContext, product: str) -> bool:
    """Whether some price of the product applies to new subscriptions only (then the price
    depends on the subscription's start date)."""
    new_only = ctx.memo.get(("new_only", product))
    if new_only is None:
        new_only = any(
            v.new_only for (_lst, code), vs in ctx.catalogue.prices.versions.items() if code == product for v in vs
        )
        ctx.memo[("new_only", product)] = new_only
    return bool(new_only)


def _new_price_class(ctx: RunContext, product: str, start: date) -> tuple[bool, ...]:
    """What of a subscription's start date picks its prices: whether it started on or after
    each date from which a price applies to new subscriptions only (PriceBook.pricing_on)."""
    key = ("new_only_since", product)
    since = ctx.memo.get(key)
    if since is None:
        since = ctx.memo[key] = tuple(
            sorted(
                {
                    v.since
                    for (_lst, code), vs in ctx.catalogue.prices.versions.items()
                    if code == product
                    for v in vs
                    if v.new_only and v.since is not None
                }
            )
        )
    assert isinstance(since, tuple)
    return tuple(start >= d for d in since)


def _clone_for(proto: Charge, customer: Customer, sub: Subscription, sub_step: TraceStep) -> Charge:
    """The prototype's line for `sub`: its own subscription step, and its own price step when
    its price is the contract's (the step names the subscription)."""
    if sub.unit_price is None:
        trace = [sub_step, *proto.trace[1:]]
    else:
        trace = [sub_step, _contract_price_step(sub), *proto.trace[2:]]
    # Positional, in field order: the hottest constructor of a run (one per steady line).
    return Charge(
        proto.kind, customer, proto.product, proto.description, proto.quantity, proto.unit_price,
        proto.exact, proto.period, proto.rule, trace, proto.explain_formula, proto.vat,
        sub.subscription_id, sub.site_id, sub.account_id, proto.share, proto.cost, proto.records,
        None, proto.base_quantity, proto.delta, proto.sort_extra, proto,
    )


def pricing_on(
    ctx: RunContext, pricelist: str | None, product: str, on: date, start: date
) -> tuple[PriceVersion | None, str | None]:
    """`PriceBook.pricing_on`, memoised (subscriptions share prices)."""
    new_only = _has_new_only(ctx, product)
    key = ("price", pricelist, product, on, start if new_only else None)
    hit = ctx.memo.get(key)
    if hit is None:
        hit = ctx.catalogue.prices.pricing_on(pricelist, product, on, start)
        ctx.memo[key] = hit
    return hit  # type: ignore[return-value]


def _split_by_price(ctx: RunContext, product: Product, span: Period) -> list[Period]:
    cuts = [d for d in ctx.catalogue.prices.change_dates.get(product.code, ()) if span.start < d < span.end]
    bounds = [span.start, *cuts, span.end]
    return [Period(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]


def _pieces(
    ctx: RunContext,
    customer: Customer,
    sub: Subscription,
    product: Product,
    segments: list[tuple[Period, Fraction]],
) -> list[Piece]:
    pricelist = ctx.catalogue.pricelist_for(customer.pricelist, customer.segment)
    out: list[Piece] = []
    for seg, qty in segments:
        for part in _split_by_price(ctx, product, seg):
            version, lst = pricing_on(ctx, pricelist, product.code, part.start, sub.start_date)
            out.append(Piece(part, qty, version, lst))
    return out


def actual_pieces(ctx: RunContext, customer: Customer, sub: Subscription, product: Product, bp: Period) -> list[Piece]:
    segments = [(p, Fraction(q)) for p, q in sub.segments(bp)]
    if product.proration.method is ProrationMethod.NONE and segments:
        # The whole period at the quantity of its first served day.
        segments = [(bp, segments[0][1])]
    return _pieces(ctx, customer, sub, product, segments)


def advance_pieces(ctx: RunContext, customer: Customer, sub: Subscription, product: Product, bp: Period) -> list[Piece]:
    if not sub.is_active_on(bp.start):
        return []
    return _pieces(ctx, customer, sub, product, [(bp, as_fraction(sub.quantity_on(bp.start)))])


_FRACTIONS: dict[Decimal, Fraction] = {}


def as_fraction(d: Decimal) -> Fraction:
    """Quantities repeat a lot: convert each distinct Decimal once."""
    f = _FRACTIONS.get(d)
    if f is None:
        if len(_FRACTIONS) > 100_000:
            _FRACTIONS.clear()
        f = _FRACTIONS[d] = Fraction(d)
    return f


def period_amount(ctx: RunContext, sub: Subscription, piece: Piece) -> Fraction:
    """The charge for a whole billing period at the piece's quantity and price."""
    if sub.unit_price is not None:
        return piece.quantity * as_fraction(sub.unit_price)
    if piece.version is None or isinstance(piece.version.pricing, n.PercentPricing | n.ZonePricing):
        return Fraction(0)  # priced from other lines or from usage, not per period
    q = piece.quantity
    key = ("amount", id(piece.version), q.numerator, q.denominator)
    hit = ctx.memo.get(key)
    if hit is None:
        hit = ctx.pricer.period_amount(piece.version.pricing, piece.quantity, ctx.catalogue.consts)
        ctx.memo[key] = hit
    assert isinstance(hit, Fraction)
    return hit


def _unit_price(ctx: RunContext, version: PriceVersion) -> Fraction | None:
    key = ("unit", id(version))
    if key not in ctx.memo:
        ctx.memo[key] = ctx.pricer.unit_price(version.pricing, ctx.catalogue.consts)
    return ctx.memo[key]  # type: ignore[return-value]


def unit_price_of(ctx: RunContext, sub: Subscription, piece: Piece) -> Fraction:
    if sub.unit_price is not None:
        return as_fraction(sub.unit_price)
    if piece.version is None:
        return Fraction(0)
    up = _unit_price(ctx, piece.version)
    if up is not None:
        return up
    amount = period_amount(ctx, sub, piece)
    return amount / piece.quantity if piece.quantity else amount


def _no_minimum(policy: ProrationPolicy) -> ProrationPolicy:
    return ProrationPolicy(policy.name, policy.method, 0) if policy.minimum_days else policy


def _contract_price_step(sub: Subscription) -> TraceStep:
    assert sub.unit_price is not None
    return TraceStep(
        rule="price",
        text=f"contract price {fmt_money(as_fraction(sub.unit_price))} per unit (subscription {sub.subscription_id})",
        source="data: subscriptions.unit_price",
    )


def _price_step(ctx: RunContext, sub: Subscription, piece: Piece, product: Product) -> TraceStep:
    if sub.unit_price is not None:
        return _contract_price_step(sub)
    if piece.version is None:
        return TraceStep(rule="price", text="no price in force", source=where(product.span))
    origin = f"price list {piece.pricelist}" if piece.pricelist else "base price"
    if piece.version.since is not None:
        origin += f", in force from {piece.version.since.isoformat()}"
        if piece.version.new_only:
            origin += " for new subscriptions"
    amount = period_amount(ctx, sub, piece)
    up = ctx.pricer.unit_price(piece.version.pricing, ctx.catalogue.consts)
    if up is not None:
        text = f"{product.code}: {fmt_money(up)} per unit per period ({origin})"
    else:
        kind = type(piece.version.pricing).__name__.replace("Pricing", "").lower()
        text = f"{product.code}: {kind} price for quantity {fmt_num(piece.quantity)} = {fmt_money(amount)} per period ({origin})"
    return TraceStep(rule="price", text=text, source=where(piece.version.span))


def _piece_price_step(ctx: RunContext, sub: Subscription, piece: Piece, product: Product) -> TraceStep:
    """The price step of a piece, shared by the pieces at the same price and quantity."""
    if sub.unit_price is not None:
        return _price_step(ctx, sub, piece, product)  # names the subscription
    q = piece.quantity
    return _cached_step(
        ctx,
        ("price_step", id(piece.version), piece.pricelist, q.numerator, q.denominator, product.code),
        lambda: _price_step(ctx, sub, piece, product),
    )


def _formula(qty: Fraction, unit_price: Fraction, frac_text: str | None) -> str:
    parts = []
    if qty != 1:
        parts.append(fmt_num(qty))
    if frac_text:
        parts.append(frac_text)
    parts.append(fmt_money(unit_price))
    return " x ".join(parts)


def _cached_step(ctx: RunContext, key: tuple[object, ...], build: Callable[[], TraceStep]) -> TraceStep:
    hit = ctx.memo.get(key)
    if hit is None:
        hit = build()
        ctx.memo[key] = hit
    assert isinstance(hit, TraceStep)
    return hit


def _sub_step(ctx: RunContext, sub: Subscription) -> TraceStep:
    if not ctx.traced:
        return UNTRACED
    return _cached_step(ctx, ("sub", sub.subscription_id), lambda: subscription_trace(sub))


@lru_cache(maxsize=4096)
def _product_rule(code: str, span: n.Span) -> str:
    """`product CODE (file:line)`: one string per price version, shared by its lines."""
    return f"product {code} ({where(span)})"


def _proration_source(product: Product) -> str:
    return _proration_where(product.proration_span)


@lru_cache(maxsize=4096)
def _proration_where(span: n.Span | None) -> str:
    return where(span) if span else "default: actual days"


def _line_for_piece(
    ctx: RunContext,
    customer: Customer,
    sub: Subscription,
    product: Product,
    bp: Period,
    piece: Piece,
    kind: str,
    note: str,
) -> Charge:
    policy = _no_minimum(product.proration)
    whole = piece.span == bp
    share = Fraction(1) if whole else served_fraction(policy, bp, piece.span)
    full = period_amount(ctx, sub, piece)
    partial = share != 1
    exact = full * share if partial else full
    frac_text = describe_fraction(policy, bp, piece.span) if partial else None
    up = unit_price_of(ctx, sub, piece)
    # Unit pricing shows quantity x unit price; other models show the period amount once.
    if sub.unit_price is None and (piece.version is None or _unit_price(ctx, piece.version) is None):
        qty, up = Fraction(1), full
    else:
        qty = piece.quantity
    price_step = _piece_price_step(ctx, sub, piece, product)
    proration_source = _proration_source(product)
    if partial:
        proration_step = step(
            "proration",
            f"{period_label(piece.span)}: {frac_text} of {period_label(bp)} ({policy.name}, {policy.method.value})",
            proration_source,
        )
    else:
        proration_step = _cached_step(
            ctx, ("whole", product.code, bp),
            lambda: step("proration", f"{period_label(bp)}: whole period", proration_source),
        )
    note_step = _cached_step(
        ctx, ("note", product.code, note), lambda: step("billing", note, where(product.span))
    )
    trace = [_sub_step(ctx, sub), price_step, proration_step, note_step]
    cost = None
    if product.cost is not None:
        cost_value = ctx.memo.get(("cost", product.code))
        if cost_value is None:
            cost_value = ctx.pricer.expr(product.cost, ctx.catalogue.consts)
            ctx.memo[("cost", product.code)] = cost_value
        if isinstance(cost_value, Fraction):
            cost = cost_value * piece.quantity * share
    version_span = piece.version.span if piece.version else product.span
    return Charge(
        kind=kind,
        customer=customer,
        product=product,
        description=product.label,
        quantity=qty,
        unit_price=up,
        exact=exact,
        period=piece.span,
        rule=_product_rule(product.code, version_span),
        trace=trace,
        explain_formula=_formula(qty, up, frac_text),
        vat=ctx.catalogue.vat_rates[product.vat],
        subscription_id=sub.subscription_id,
        site_id=sub.site_id,
        account_id=sub.account_id,
        share=share,
        cost=cost,
        base_quantity=piece.quantity,
    )


def _regularisation(
    ctx: RunContext, customer: Customer, sub: Subscription, product: Product, bp: Period
) -> list[Charge]:
    actual = actual_pieces(ctx, customer, sub, product, bp)
    advance = advance_pieces(ctx, customer, sub, product, bp)
    bounds = sorted({bp.start, bp.end} | {p.span.start for p in actual + advance} | {p.span.end for p in actual + advance})
    policy = _no_minimum(product.proration)

    def at(pieces: list[Piece], d: date) -> Piece | None:
        for p in pieces:
            if p.span.start <= d < p.span.end:
                return p
        return None

    # Elementary intervals with the same (actual, advance) state are merged into one line.
    runs: list[tuple[Period, Piece | None, Piece | None]] = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        pa, pb = at(actual, a), at(advance, a)
        key = (
            (pa.quantity, pa.version) if pa else None,
            (pb.quantity, pb.version) if pb else None,
        )
        if runs and runs[-1][0].end == a:
            last = runs[-1]
            last_key = (
                (last[1].quantity, last[1].version) if last[1] else None,
                (last[2].quantity, last[2].version) if last[2] else None,
            )
            if last_key == key:
                runs[-1] = (Period(last[0].start, b), pa, pb)
                continue
        runs.append((Period(a, b), pa, pb))

    charges: list[Charge] = []
    for span, pa, pb in runs:
        amount_a = period_amount(ctx, sub, Piece(span, pa.quantity, pa.version, pa.pricelist)) if pa else Fraction(0)
        amount_b = period_amount(ctx, sub, Piece(span, pb.quantity, pb.version, pb.pricelist)) if pb else Fraction(0)
        if amount_a == amount_b:
            continue
        if pa is not None and pb is None:
            charges.append(
                _line_for_piece(
                    ctx, customer, sub, product, bp, Piece(span, pa.quantity, pa.version, pa.pricelist),
                    "regularisation", f"regularisation of {bp.label()} (in advance): service from {span.start.isoformat()} not yet billed",
                )
            )
            continue
        if pa is None and pb is not None:
            credit = _line_for_piece(
                ctx, customer, sub, product, bp, Piece(span, pb.quantity, pb.version, pb.pricelist),
                "regularisation", f"credit on {bp.label()} (billed in advance): no service from {span.start.isoformat()}",
            )
            credit.exact = -credit.exact
            credit.quantity = -credit.quantity
            credit.description = f"{product.label} (credit)"
            credit.explain_formula = "-" + credit.explain_formula if credit.explain_formula else ""
            credit.share = -credit.share
            if credit.cost is not None:
                credit.cost = -credit.cost
            charges.append(credit)
            continue
        assert pa is not None and pb is not None
        share = served_fraction(policy, bp, span)
        delta_full = amount_a - amount_b
        frac_text = describe_fraction(policy, bp, span) if share != 1 else None
        unit_a = unit_price_of(ctx, sub, pa)
        unit_b = unit_price_of(ctx, sub, pb)
        unit_based = sub.unit_price is not None or (
            pa.version is not None
            and ctx.pricer.unit_price(pa.version.pricing, ctx.catalogue.consts) is not None
        )
        if unit_based and unit_a == unit_b:
            qty, up = pa.quantity - pb.quantity, unit_a
        else:
            qty, up = Fraction(1), delta_full
        what = (
            f"quantity {fmt_num(pb.quantity)} -> {fmt_num(pa.quantity)}"
            if pa.quantity != pb.quantity
            else "price change"
        )
        trace = [
            _sub_step(ctx, sub),
            _piece_price_step(ctx, sub, pa, product),
            TraceStep(
                rule="regularisation",
                text=f"{span.label()}: {what}; billed in advance {fmt_money(amount_b)} per period, due {fmt_money(amount_a)}",
                source=where(product.span),
            ),
            TraceStep(
                rule="proration",
                text=f"{span.label()}: {frac_text or 'whole period'} of {bp.label()} ({policy.name})",
                source=_proration_source(product),
            ),
        ]
        charges.append(
            Charge(
                kind="regularisation",
                customer=customer,
                product=product,
                description=f"{product.label} ({what})",
                quantity=qty,
                unit_price=up,
                exact=delta_full * share,
                period=span,
                rule=f"product {product.code} ({where(pa.version.span if pa.version else product.span)})",
                trace=trace,
                explain_formula=_formula(qty, up, frac_text),
                vat=ctx.catalogue.vat_rates[product.vat],
                subscription_id=sub.subscription_id,
                site_id=sub.site_id,
                account_id=sub.account_id,
                share=share if delta_full >= 0 else -share,
                base_quantity=pa.quantity,
                delta=True,
            )
        )
    charges.extend(_minimum_period(ctx, customer, sub, product, bp, actual))
    return charges


def _minimum_period(
    ctx: RunContext, customer: Customer, sub: Subscription, product: Product, bp: Period, actual: list[Piece]
) -> list[Charge]:
    """A minimum billable period tops up a partly served period served less than the minimum."""
    minimum = product.proration.minimum_days
    if not minimum or not actual or product.proration.method is ProrationMethod.NONE:
        return []
    policy = _no_minimum(product.proration)
    served = sum((served_fraction(policy, bp, p.span) for p in actual), Fraction(0))
    if served >= 1:
        return []
    target = served_fraction(product.proration, bp, Period(actual[0].span.start, actual[-1].span.end))
    missing = target - served
    if missing <= 0:
        return []
    last = actual[-1]
    full = period_amount(ctx, sub, last)
    charge = _line_for_piece(ctx, customer, sub, product, bp, last, "regularisation", "minimum billable period")
    charge.exact = full * missing
    charge.share = missing
    charge.description = f"{product.label} (minimum billable period {minimum} days)"
    charge.explain_formula = f"minimum {minimum} days: {fmt_num(missing)} of the period x {fmt_money(full)}"
    charge.trace.append(
        TraceStep(
            rule="proration",
            text=f"minimum billable period {minimum} days: served share {fmt_num(served)}, billed {fmt_num(target)}",
            source=where(product.proration_span) if product.proration_span else where(product.span),
        )
    )
    return [charge]


def _whole_period(ctx: RunContext, customer: Customer, sub: Subscription, product: Product, bp: Period) -> Charge:
    """The line of a whole period at one quantity and one price: billed in advance (the state on
    the period's start), or in arrears for a period served throughout without change. Such
    lines differ between subscriptions only by who they belong to (and which contract names
    their price), so one prototype per (price list or contract price, quantity, period) serves
    every subscription."""
    pricelist = ctx.catalogue.pricelist_for(customer.pricelist, customer.segment)
    qty = as_fraction(sub.quantity_on(bp.start))
    key = (
        "steady", product.code, pricelist, qty.numerator, qty.denominator, bp,
        _new_price_class(ctx, product.code, sub.start_date), sub.unit_price,
    )
    proto = ctx.memo.get(key)
    if proto is None:
        note = (
            f"billed in advance for {period_label(bp)} (state on {bp.start.isoformat()})"
            if product.billing == "in_advance"
            else f"billed in arrears for {period_label(bp)}"
        )
        pieces = advance_pieces(ctx, customer, sub, product, bp)
        proto = _line_for_piece(ctx, customer, sub, product, bp, pieces[0], "recurring", note)
        ctx.memo[key] = proto
    assert isinstance(proto, Charge)
    return _clone_for(proto, customer, sub, _sub_step(ctx, sub))


def _price_cut_inside(ctx: RunContext, product: Product, bp: Period) -> bool:
    return any(bp.start < d < bp.end for d in ctx.catalogue.prices.change_dates.get(product.code, ()))


def _unchanged_over(ctx: RunContext, sub: Subscription, product: Product, bp: Period) -> bool:
    """In service throughout the period at one quantity and one price: then what was billed in
    advance is what is due (nothing to regularise), and in arrears the period is billed whole."""
    if sub.start_date > bp.start or (sub.end_date is not None and sub.end_date < bp.last_day):
        return False
    if any(bp.start < c.effective_date < bp.end for c in sub.quantity_changes):
        return False
    return not _price_cut_inside(ctx, product, bp)


#: Whole periods from shared prototypes (`_whole_period`). Off, every line takes the general
#: path (pieces, regularisation); a test checks that both give the same invoices.
PROTOTYPES = True


def _course_key(ctx: RunContext, customer: Customer, sub: Subscription, product: Product, plan: ProductPlan) -> tuple[object, ...]:
    """What a subscription's recurring lines depend on, but for whose lines they are: its
    course within the plan's window (start, end, quantities and their changes there, each date
    only when it falls inside), its price list or contract price, and which prices for new
    subscriptions its start date entitles it to."""
    w = plan.window
    assert w is not None
    start = sub.start_date if sub.start_date > w.start else None
    end = sub.end_date if sub.end_date is not None and sub.end_date < w.last_day else None
    first = max(sub.start_date, w.start)
    changes = tuple((c.effective_date, c.quantity) for c in sub.quantity_changes if first < c.effective_date < w.end)
    return (
        "course", product.code, bool(plan.closing), ctx.catalogue.pricelist_for(customer.pricelist, customer.segment),
        start, end, sub.quantity_on(first), changes, sub.unit_price,
        _new_price_class(ctx, product.code, sub.start_date),
    )


def recurring_charges(
    ctx: RunContext, customer: Customer, sub: Subscription, product: Product, *, closing: bool = True
) -> list[Charge]:
    """The subscription's recurring lines in this run: the periods billed in advance, and the
    periods closing in the usage month (regularised, or billed in arrears); with `closing`
    False, the periods billed in advance only."""
    if product.pricing is not None and isinstance(product.pricing, n.PercentPricing):
        return []  # priced from the other lines: engine.evaluator.run
    plan = product_plan(ctx, product) if closing else advance_plan(ctx, product)
    fast = PROTOTYPES
    steady = fast and is_steady(sub, plan)  # nothing changes in any of the run's periods
    if not fast or steady:
        return _recurring_charges(ctx, customer, sub, product, plan, steady)
    # Subscriptions that start, end or change alike within the run's periods get the same
    # lines (prorations, regularisations, credits...): computed once, copied for each.
    key = _course_key(ctx, customer, sub, product, plan)
    protos = ctx.memo.get(key)
    if protos is None:
        protos = ctx.memo[key] = tuple(_recurring_charges(ctx, customer, sub, product, plan, False))
    assert isinstance(protos, tuple)
    sub_step = _sub_step(ctx, sub)
    return [_clone_for(p.proto or p, customer, sub, sub_step) for p in protos]


def _recurring_charges(
    ctx: RunContext, customer: Customer, sub: Subscription, product: Product, plan: ProductPlan, steady: bool
) -> list[Charge]:
    out: list[Charge] = []
    fast = PROTOTYPES
    if product.billing == "in_advance":
        for bp in plan.advance:
            if not sub.is_active_on(bp.start):
                continue
            if steady or (fast and not _price_cut_inside(ctx, product, bp)):
                out.append(_whole_period(ctx, customer, sub, product, bp))
                continue
            for piece in advance_pieces(ctx, customer, sub, product, bp):
                out.append(
                    _line_for_piece(
                        ctx, customer, sub, product, bp, piece, "recurring",
                        f"billed in advance for {bp.label()} (state on {bp.start.isoformat()})",
                    )
                )
        for bp in plan.closing:
            if steady or (fast and _unchanged_over(ctx, sub, product, bp)):
                continue
            out.extend(_regularisation(ctx, customer, sub, product, bp))
    else:
        for bp in plan.closing:
            if steady or (fast and _unchanged_over(ctx, sub, product, bp)):
                if sub.is_active_on(bp.start):
                    out.append(_whole_period(ctx, customer, sub, product, bp))
                continue
            actual = actual_pieces(ctx, customer, sub, product, bp)
            for piece in actual:
                out.append(
                    _line_for_piece(
                        ctx, customer, sub, product, bp, piece, "recurring", f"billed in arrears for {bp.label()}"
                    )
                )
            out.extend(_minimum_period(ctx, customer, sub, product, bp, actual))
    return out


def months_between(start: date, end: date) -> int:
    """Whole months from start to end, a started month counting whole (end exclusive)."""
    if end <= start:
        return 0
    m = max(0, (end.year - start.year) * 12 + end.month - start.month - 1)
    while add_months(start, m) < end:
        m += 1
    return m


def completed_months(start: date, end: date) -> int:
    """Whole months completed from start to end (a started month does not count)."""
    if end <= start:
        return 0
    m = (end.year - start.year) * 12 + end.month - start.month
    while m > 0 and add_months(start, m) > end:
        m -= 1
    return m


def commitment_end(start: date, duration: int, renewal: int | None, terminated: date) -> date:
    """End (exclusive) of the commitment term in force on `terminated`, with tacit renewals."""
    end = add_months(start, duration)
    while renewal and end <= terminated:
        end = add_months(end, renewal)
    return end


def termination_fee(ctx: RunContext, customer: Customer, sub: Subscription, product: Product) -> list[Charge]:
    if sub.commitment is None or sub.end_date is None:
        return []
    if not (ctx.usage_period.start <= sub.end_date < ctx.usage_period.end):
        return []
    term = ctx.catalogue.commitments.get(sub.commitment)
    if term is None or term.termination_fee is None:
        return []
    start = sub.effective_commitment_start
    service_end = sub.end_date + ONE_DAY
    end = commitment_end(start, term.duration_months, term.renewal_months, sub.end_date)
    if service_end >= end:
        return []
    remaining = months_between(service_end, end)
    elapsed = months_between(start, service_end) if service_end > start else 0
    pieces = _pieces(ctx, customer, sub, product, [(Period(sub.end_date, service_end), Fraction(sub.quantity_on(sub.end_date)))])
    period_price = period_amount(ctx, sub, pieces[0]) if pieces else Fraction(0)
    monthly = period_price / product.periodicity.months
    env = dict(ctx.catalogue.consts)
    env.update(
        remaining_months=Fraction(remaining),
        elapsed_months=Fraction(elapsed),
        monthly_price=monthly,
        commitment_value=monthly * term.duration_months,
        remaining_value=monthly * remaining,
    )
    fee = ctx.pricer.expr(term.termination_fee, env)
    assert isinstance(fee, Fraction)
    capped = ""
    if term.cap is not None:
        cap = ctx.pricer.expr(term.cap, env)
        assert isinstance(cap, Fraction)
        if fee > cap:
            fee, capped = cap, f", capped at {fmt_money(cap)}"
    if fee <= 0:
        return []
    trace = [
        subscription_trace(sub),
        TraceStep(
            rule=f"commitment {term.name}",
            text=(
                f"{term.duration_months} months from {start.isoformat()}"
                + (f", tacit renewal {term.renewal_months} months" if term.renewal_months else "")
                + f": term ends {end.isoformat()}, service ended {sub.end_date.isoformat()}"
            ),
            source=where(term.span),
        ),
        TraceStep(
            rule="termination_fee",
            text=(
                f"remaining_months={remaining}, elapsed_months={elapsed}, monthly_price={fmt_money(monthly)}, "
                f"commitment_value={fmt_money(monthly * term.duration_months)} -> fee {fmt_money(fee)}{capped}"
            ),
            source=where(term.fee_span or term.span),
        ),
    ]
    return [
        Charge(
            kind="termination_fee",
            customer=customer,
            product=product,
            description=f"Early termination fee: {product.label} ({term.label}, {remaining} months remaining)",
            quantity=Fraction(1),
            unit_price=fee,
            exact=fee,
            period=Period(service_end, end),
            rule=f"commitment {term.name} ({where(term.fee_span or term.span)})",
            trace=trace,
            explain_formula=f"{remaining} months remaining -> {fmt_money(fee)}{capped}",
            vat=ctx.catalogue.vat_rates[product.vat],
            subscription_id=sub.subscription_id,
            site_id=sub.site_id,
            account_id=sub.account_id,
        )
    ]
