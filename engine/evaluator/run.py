"""A billing run: ruleset catalogue + data set + period -> invoices.

`bill(catalogue, data, period, pricer)` is pure: same inputs, same invoices, byte for byte,
whatever the order of the input rows (every collection is walked in identifier order). Stages,
per customer: recurring and regularisation charges, termination fees, one-shots, usage (rated
once for the whole run), percentage-priced products, line discounts, minimum-spend true-ups, then
segmentation into invoices with invoice discounts, VAT and totals.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from dsl import nodes as n
from dsl.exact import Fraction
from engine.calendar import Period
from engine.catalogue import Catalogue, where
from engine.evaluator.backend import Pricer, make_pricer
from engine.evaluator.charges import (
    UNTRACED,
    Charge,
    RunContext,
    fmt_money,
    fmt_num,
    fraction_sum,
    subscription_trace,
)
from engine.evaluator.discounts import Grant, grants_for, line_discounts
from engine.evaluator.invoicing import build_invoices, segment_key
from engine.evaluator.recurring import recurring_charges, termination_fee
from engine.evaluator.usage import usage_charges
from engine.invoice import Invoice, RunResult, TraceStep
from engine.model import Customer, DataSet


def one_shot_charges(ctx: RunContext, customer: Customer, data: DataSet) -> list[Charge]:
    cat = ctx.catalogue
    out: list[Charge] = []
    pricelist = cat.pricelist_for(customer.pricelist, customer.segment)
    for os in sorted(data.one_shots_by_customer.get(customer.customer_id, ()), key=lambda o: o.charge_id):
        if not (ctx.usage_period.start <= os.date < ctx.usage_period.end):
            continue
        product = cat.products.get(os.product)
        if product is None:
            continue
        qty = Fraction(os.quantity)
        version, lst = cat.prices.pricing_on(pricelist, product.code, os.date, os.date)
        if os.unit_price is not None:
            up = Fraction(os.unit_price)
            exact = qty * up
            price_text, source = f"price {fmt_money(up)} per unit (charge {os.charge_id})", "data: one_shots.unit_price"
        elif version is not None:
            exact = ctx.pricer.period_amount(version.pricing, qty, cat.consts)
            unit = ctx.pricer.unit_price(version.pricing, cat.consts)
            up = unit if unit is not None else (exact / qty if qty else exact)
            origin = f"price list {lst}" if lst else "base price"
            price_text, source = f"{product.code}: {fmt_money(up)} per unit ({origin})", where(version.span)
        else:
            continue
        cost = None
        if product.cost is not None:
            c = ctx.pricer.expr(product.cost, cat.consts)
            if isinstance(c, Fraction):
                cost = c * qty
        description = product.label + (f" - {os.description}" if os.description else "")
        out.append(
            Charge(
                kind="one_shot",
                customer=customer,
                product=product,
                description=description,
                quantity=qty,
                unit_price=up,
                exact=exact,
                period=Period(os.date, os.date.fromordinal(os.date.toordinal() + 1)),
                rule=f"product {product.code} ({source if source.startswith('data') else where(version.span if version else product.span)})",
                trace=[
                    TraceStep(rule="one_shot", text=f"charge {os.charge_id} of {os.date.isoformat()}: {product.code} x {os.quantity}", source="data: one_shots"),
                    TraceStep(rule="price", text=price_text, source=source),
                ],
                explain_formula=(f"{fmt_num(qty)} x " if qty != 1 else "") + fmt_money(up),
                vat=cat.vat_rates[product.vat],
                site_id=os.site_id,
                account_id=os.account_id,
                cost=cost,
                sort_extra=(os.charge_id,),
            )
        )
    return out


def percent_charges(ctx: RunContext, customer: Customer, data: DataSet, base: list[Charge]) -> list[Charge]:
    """Products priced as a percentage of other lines (support contracts...)."""
    cat = ctx.catalogue
    out: list[Charge] = []
    percent_products = ctx.memo.get("percent_products")
    if percent_products is None:
        percent_products = frozenset(c for c, p in cat.products.items() if isinstance(p.pricing, n.PercentPricing))
        ctx.memo["percent_products"] = percent_products
    assert isinstance(percent_products, frozenset)
    subs = [s for s in data.subscriptions_by_customer.get(customer.customer_id, ()) if s.product in percent_products]
    if not subs:
        return out
    # The lines of the invoice the percentage line goes on (segmentation by family aside:
    # a support contract priced on the voice lines is not itself a voice line).
    group_by = tuple(g for g in cat.invoicing_for(customer.segment).group_by if g != "family")
    keys: dict[tuple[str | None, str | None], tuple[tuple[str, str], ...]] = {}

    def key_of(site_id: str | None, account_id: str | None) -> tuple[tuple[str, str], ...]:
        key = keys.get((site_id, account_id))
        if key is None:
            key = keys[(site_id, account_id)] = segment_key(site_id, account_id, None, group_by)
        return key

    priced = [(c, p, key_of(c.site_id, c.account_id)) for c in base if (p := c.product) is not None]
    for sub in sorted(subs, key=lambda s: s.subscription_id):
        product = cat.products.get(sub.product)
        if product is None or not isinstance(product.pricing, n.PercentPricing):
            continue
        served = sub.service_within(ctx.period)
        if served is None:
            continue
        pricing = product.pricing
        t = pricing.target
        own = key_of(sub.site_id, sub.account_id)
        names = t.names
        if t.kind == "family":
            matched = [c for c, p, key in priced if key == own and p.family in names]
        elif t.kind == "product":
            matched = [c for c, p, key in priced if key == own and p.code in names]
        else:
            matched = []
        total = fraction_sum(c.exact for c in matched)
        rate = ctx.memo.get(("percent_rate", product.code))
        if rate is None:
            rate = ctx.memo[("percent_rate", product.code)] = ctx.pricer.expr(pricing.rate, cat.consts)
        assert isinstance(rate, Fraction)
        qty = Fraction(sub.quantity_on(served.start))
        share = Fraction(served.days, ctx.period.days)
        exact = rate * total * qty * share
        what = f"{t.kind} {', '.join(t.names)}"
        out.append(
            Charge(
                kind="recurring",
                customer=customer,
                product=product,
                description=product.label,
                quantity=qty,
                unit_price=rate * total,
                exact=exact,
                period=served,
                rule=f"product {product.code} ({where(pricing.span)})",
                trace=[
                    subscription_trace(sub) if ctx.traced else UNTRACED,
                    TraceStep(
                        rule="price",
                        text=f"{fmt_num(rate * 100)}% of the {len(matched)} lines of {what} in this run ({fmt_money(total)})",
                        source=where(pricing.span),
                    ),
                ],
                explain_formula=(f"{fmt_num(qty)} x " if qty != 1 else "")
                + (f"{served.days}/{ctx.period.days} days x " if share != 1 else "")
                + f"{fmt_num(rate * 100)}% of {fmt_money(total)}",
                vat=cat.vat_rates[product.vat],
                subscription_id=sub.subscription_id,
                site_id=sub.site_id,
                account_id=sub.account_id,
            )
        )
    return out


def true_ups(ctx: RunContext, customer: Customer, data: DataSet, charges: list[Charge]) -> list[Charge]:
    """Minimum-spend commitments: make up the month's spend on the target to the minimum."""
    cat = ctx.catalogue
    out: list[Charge] = []
    subs = sorted(data.subscriptions_by_customer.get(customer.customer_id, ()), key=lambda s: s.subscription_id)
    seen: set[str] = set()
    for sub in subs:
        term = cat.commitments.get(sub.commitment or "")
        if term is None or term.minimum_spend is None or term.name in seen:
            continue
        if sub.service_within(ctx.usage_period) is None:
            continue
        seen.add(term.name)
        t = term.minimum_spend_target
        counted = [c for c in charges if c.kind not in ("termination_fee", "true_up")]
        if t is not None and t.kind == "family":
            counted = [c for c in counted if c.product is not None and c.product.family in t.names]
        elif t is not None and t.kind == "product":
            counted = [c for c in counted if c.product is not None and c.product.code in t.names]
        elif t is not None and t.kind not in ("invoice", "line"):
            counted = []
        spent = fraction_sum(c.exact for c in counted)
        minimum = ctx.pricer.expr(term.minimum_spend, cat.consts)
        assert isinstance(minimum, Fraction)
        if spent >= minimum:
            continue
        product = cat.products[sub.product]
        missing = minimum - spent
        out.append(
            Charge(
                kind="true_up",
                customer=customer,
                product=product,
                description=f"Minimum spend true-up ({term.label})",
                quantity=Fraction(1),
                unit_price=missing,
                exact=missing,
                period=ctx.usage_period,
                rule=f"commitment {term.name} ({where(term.span)})",
                trace=[
                    TraceStep(
                        rule=f"commitment {term.name}",
                        text=f"minimum spend {fmt_money(minimum)}: billed {fmt_money(spent)} in this run, true-up {fmt_money(missing)}",
                        source=where(term.span),
                    )
                ],
                explain_formula=f"minimum {fmt_money(minimum)} - billed {fmt_money(spent)}",
                vat=cat.vat_rates[product.vat],
                subscription_id=sub.subscription_id,
                site_id=sub.site_id,
                account_id=sub.account_id,
            )
        )
    return out


def customer_charges(
    ctx: RunContext,
    customer: Customer,
    data: DataSet,
    usage: list[Charge],
    discounted: Callable[[Charge], bool] | None = None,
    advance_only: bool = False,
) -> tuple[list[Charge], list[Grant]]:
    """Every charge of the customer's run (discount lines included, invoice discounts not), and
    the customer's discount grants. With `discounted`, only the charges it accepts get their
    discount lines, and there are no minimum-spend true-ups (the revenue forecast). With
    `advance_only`, only the lines of periods billed in advance and their discounts (no
    regularisation, fee, one-shot, usage or percentage line): for a customer without
    percentage-priced products, whose lines would depend on all the others."""
    cat = ctx.catalogue
    charges: list[Charge] = []
    for sub in sorted(data.subscriptions_by_customer.get(customer.customer_id, ()), key=lambda s: s.subscription_id):
        product = cat.products.get(sub.product)
        if product is None or product.kind != "recurring":
            continue
        if advance_only:
            if product.billing == "in_advance":
                charges.extend(recurring_charges(ctx, customer, sub, product, closing=False))
            continue
        charges.extend(recurring_charges(ctx, customer, sub, product))
        charges.extend(termination_fee(ctx, customer, sub, product))
    if not advance_only:
        charges.extend(one_shot_charges(ctx, customer, data))
        charges.extend(usage)
        charges.extend(percent_charges(ctx, customer, data, charges))
    grants = grants_for(ctx, customer, data)
    if discounted is not None:
        charges.extend(line_discounts(ctx, customer, data, [c for c in charges if discounted(c)], grants))
        return charges, grants
    charges.extend(line_discounts(ctx, customer, data, charges, grants))
    charges.extend(true_ups(ctx, customer, data, charges))
    return charges, grants


def customer_invoices(
    ctx: RunContext, customer: Customer, data: DataSet, usage: list[Charge]
) -> list[Invoice]:
    charges, grants = customer_charges(ctx, customer, data, usage)
    if not charges:
        return []
    invoice_grants = [g for g in grants if g.discount.target.kind == "invoice"]
    return build_invoices(ctx, customer, charges, invoice_grants)


def run_context(
    catalogue: Catalogue, period: str, pricer: Pricer | None = None, *, traced: bool = True
) -> RunContext:
    """The context of billing `period`: give it to every `bill` of the slices of one data set
    (or `recurring_revenue`, untraced), so that they share what their subscriptions have in
    common (prototype lines, prices, steps). Its memo is only valid for one data set: steps are
    memoised by subscription id."""
    return RunContext.for_period(catalogue, pricer or make_pricer("compiled"), period, traced=traced)


def _context_for(
    context: RunContext | None, catalogue: Catalogue, period: str, pricer: Pricer | None, traced: bool
) -> RunContext:
    if context is None:
        return run_context(catalogue, period, pricer, traced=traced)
    if context.catalogue is not catalogue or context.period_text != period or context.traced != traced:
        raise ValueError(f"the run context is for another catalogue, period or tracing than {period}")
    if pricer is not None and pricer is not context.pricer:
        raise ValueError("give the pricer to run_context, not beside a context that has its own")
    return context


def recurring_revenue(
    catalogue: Catalogue,
    data: DataSet,
    period: str,
    pricer: Pricer | None = None,
    customers: list[str] | None = None,
    context: RunContext | None = None,
) -> tuple[Decimal, Decimal]:
    """The in-advance recurring revenue of `period` and the line discounts on it, each line
    rounded as on the invoice: what the invoice lines of `bill` for that period add up to
    (kinds "recurring" and "discount" of in-advance products, for service from the period's
    start; regularisations of earlier periods are not recurring revenue), without building
    the invoices. The recurring revenue forecast runs this for the next periods."""
    ctx = _context_for(context, catalogue, period, pricer, traced=False)
    usage = usage_charges(ctx, data)
    wanted = None if customers is None else set(customers)
    in_advance = {
        code for code, p in catalogue.products.items() if p.kind == "recurring" and p.billing == "in_advance"
    }
    percent = {code for code, p in catalogue.products.items() if isinstance(p.pricing, n.PercentPricing)}
    start = ctx.period.start
    rule = catalogue.rounding.line

    def counted(c: Charge) -> bool:
        return c.product is not None and c.product.code in in_advance and c.period is not None and c.period.start >= start

    recurring = discounts = Decimal(0)
    for customer in sorted(data.customers, key=lambda c: c.customer_id):
        if wanted is not None and customer.customer_id not in wanted:
            continue
        subs = data.subscriptions_by_customer.get(customer.customer_id, ())
        charges, _ = customer_charges(
            ctx, customer, data, usage.charges_by_customer.get(customer.customer_id, []),
            # discounts of other lines and true-ups never count (and a line's discounts only
            # depend on the line)
            discounted=lambda c: c.kind == "recurring" and counted(c),
            # a percentage line counts, and depends on the lines of other kinds
            advance_only=not any(s.product in percent for s in subs),
        )
        for c in charges:
            if not counted(c):
                continue
            if c.kind == "recurring":
                recurring += rule.apply(c.exact)
            elif c.kind == "discount":
                discounts += rule.apply(c.exact)
    return recurring, discounts


def bill(
    catalogue: Catalogue,
    data: DataSet,
    period: str,
    pricer: Pricer | None = None,
    customers: list[str] | None = None,
    context: RunContext | None = None,
) -> RunResult:
    """Bill `period` (YYYY-MM). `customers` restricts the run to some customers (partitions);
    `context` (`run_context`) is shared by the bills of the slices of one data set."""
    ctx = _context_for(context, catalogue, period, pricer, traced=True)
    usage = usage_charges(ctx, data)
    wanted = None if customers is None else set(customers)
    invoices: list[Invoice] = []
    for customer in sorted(data.customers, key=lambda c: c.customer_id):
        if wanted is not None and customer.customer_id not in wanted:
            continue
        invoices.extend(customer_invoices(ctx, customer, data, usage.charges_by_customer.get(customer.customer_id, [])))
    return RunResult(
        ruleset=catalogue.name,
        period=period,
        currency=catalogue.currency,
        invoices=tuple(invoices),
        usage_read=usage.read,
        usage_billed=usage.billed,
        usage_outside_period=usage.outside,
        usage_rejected=tuple(usage.rejected),
        usage_unanswered=usage.unanswered,
    )
