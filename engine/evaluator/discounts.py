"""Discounts: one negative line per discounted line, and invoice-level discounts.

A grant (from the data, or every subscription for an `automatic` discount) opens a window: `for
N months` from its start, `until` a date (inclusive), or `permanent`. A line is discounted in
proportion to the days of its service period inside the window. Discounts apply in ascending
`order` (then code); each percent applies to what is left of the line after the previous ones;
a discount never takes a line past zero unless `allow_negative`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property, lru_cache

from dsl import nodes as n
from dsl.exact import Fraction
from engine.calendar import Period, add_months
from engine.catalogue import Discount, where
from engine.evaluator.charges import (
    UNTRACED,
    Charge,
    RunContext,
    fmt_money,
    fmt_num,
    period_label,
    step,
)
from engine.evaluator.recurring import completed_months
from engine.evaluator.values import Value
from engine.model import Customer, DataSet, Subscription


@dataclass(frozen=True)
class Grant:
    discount: Discount
    start: date
    subscription_id: str | None
    source: str

    @cached_property
    def window(self) -> Period | None:
        d = self.discount
        if d.months is not None:
            end = add_months(self.start, d.months)
        elif d.days is not None:
            end = self.start + timedelta(days=d.days)
        elif d.until is not None:
            end = d.until + timedelta(days=1)
        else:
            end = date.max
        return Period(self.start, end) if self.start < end else None

    def window_text(self) -> str:
        d = self.discount
        if d.months is not None:
            return f"for {d.months} months from {self.start.isoformat()}"
        if d.days is not None:
            return f"for {d.days} days from {self.start.isoformat()}"
        if d.until is not None:
            return f"from {self.start.isoformat()} until {d.until.isoformat()}"
        return f"permanent from {self.start.isoformat()}"


def grants_for(ctx: RunContext, customer: Customer, data: DataSet) -> list[Grant]:
    """The customer's grants from the data, and its automatic invoice discounts (once per
    customer, from their first subscription). Automatic line discounts are granted to every
    subscription, from its start; `line_discounts` grants them as it meets the subscription's
    lines (`automatic_grant`), so a customer's thousands of subscriptions do not each carry a
    grant of every automatic discount."""
    cat = ctx.catalogue
    grants: list[Grant] = []
    for g in data.discounts_by_customer.get(customer.customer_id, ()):
        d = cat.discounts.get(g.discount)
        if d is not None:
            grants.append(Grant(d, g.start_date, g.subscription_id, f"data: discounts grant {g.grant_id}"))
    subs = data.subscriptions_by_customer.get(customer.customer_id, ())
    for d in cat.discounts.values():
        if d.automatic and d.target.kind == "invoice" and subs:
            first = min(s.start_date for s in subs)
            grants.append(Grant(d, first, None, f"automatic for customer {customer.customer_id}"))
    return sorted(grants, key=_grant_order)


def automatic_grant(d: Discount, sub: Subscription) -> Grant:
    """An automatic line discount, granted to the subscription from its start."""
    return Grant(d, sub.start_date, sub.subscription_id, f"automatic for subscription {sub.subscription_id}")


def _automatic_line_discounts(ctx: RunContext) -> tuple[Discount, ...]:
    hit = ctx.memo.get("automatic_line_discounts")
    if hit is None:
        hit = ctx.memo["automatic_line_discounts"] = tuple(
            d for d in ctx.catalogue.discounts.values() if d.automatic and d.target.kind != "invoice"
        )
    return hit  # type: ignore[return-value]


def _grant_order(g: Grant) -> tuple[int, str, date, str, str]:
    return (g.discount.order, g.discount.code, g.start, g.subscription_id or "", g.source)


def _targets(d: Discount, charge: Charge) -> bool:
    t = d.target
    if t.kind == "product":
        return charge.product is not None and charge.product.code in t.names
    if t.kind == "family":
        return charge.family is not None and charge.family in t.names
    return t.kind == "line"


def _volume(ctx: RunContext, d: Discount, subs: tuple[Subscription, ...]) -> Fraction:
    total = Fraction(0)
    on = ctx.period.start
    for s in subs:
        product = ctx.catalogue.products.get(s.product)
        if product is None or not s.is_active_on(on):
            continue
        t = d.target
        if (
            (t.kind == "product" and product.code in t.names)
            or (t.kind == "family" and product.family in t.names)
            or t.kind in ("line", "invoice")
        ):
            total += Fraction(s.quantity_on(on))
    return total


ONE = Fraction(1)


WHEN_VARIABLES = frozenset({"quantity", "volume", "commitment_months", "months_since_start"})


def _when_variables(ctx: RunContext, d: Discount) -> frozenset[str]:
    key = ("when_variables", d.code)
    hit = ctx.memo.get(key)
    if hit is None:
        assert d.when is not None
        hit = ctx.memo[key] = n.names_in(d.when) & WHEN_VARIABLES
    return hit  # type: ignore[return-value]


def _constant(ctx: RunContext, d: Discount, expr: n.Expr) -> tuple[Fraction, str]:
    """A discount's percent or fixed amount (constants only), with the percent as text."""
    key = ("discount_value", d.code, id(expr))
    hit = ctx.memo.get(key)
    if hit is None:
        value = ctx.pricer.expr(expr, ctx.catalogue.consts)
        assert isinstance(value, Fraction)
        hit = ctx.memo[key] = (value, fmt_num(value * 100))
    return hit  # type: ignore[return-value]


def _condition_holds(ctx: RunContext, d: Discount, variables: dict[str, Value]) -> bool:
    """`when` of `d` with these values of the variables it reads (and the ruleset's constants)."""
    key = ("when", d.code, *sorted(variables.items()))
    hit = ctx.memo.get(key)
    if hit is None:
        assert d.when is not None
        hit = ctx.memo[key] = bool(ctx.pricer.expr(d.when, {**ctx.catalogue.consts, **variables}))
    return hit  # type: ignore[return-value]


def _discount_rule(d: Discount) -> str:
    return _discount_rule_text(d.code, d.span)


@lru_cache(maxsize=1024)
def _discount_rule_text(code: str, span: n.Span) -> str:
    return f"discount {code} ({where(span)})"


def line_discounts(
    ctx: RunContext, customer: Customer, data: DataSet, charges: list[Charge], all_grants: list[Grant]
) -> list[Charge]:
    """Discount lines for the customer's charges (not invoice-level ones)."""
    grants = [g for g in all_grants if g.discount.target.kind != "invoice"]
    automatic = _automatic_line_discounts(ctx)
    if not grants and not automatic:
        return []
    subs = data.subscriptions_by_customer.get(customer.customer_id, ())
    subs_by_id = {s.subscription_id: s for s in subs}
    granted: dict[tuple[str, str], Grant] = {}
    volumes: dict[str, Fraction] = {}
    # Grants restricted to one subscription only meet that subscription's lines: index them so
    # a customer with thousands of lines does not pair every line with every grant.
    general = [g for g in grants if g.subscription_id is None]
    by_subscription: dict[str, list[Grant]] = {}
    for g in grants:
        if g.subscription_id is not None:
            by_subscription.setdefault(g.subscription_id, []).append(g)
    out: list[Charge] = []
    for charge in charges:
        if charge.kind not in ("recurring", "regularisation", "usage", "one_shot") or charge.period is None:
            continue
        own = by_subscription.get(charge.subscription_id or "", [])
        sub = subs_by_id.get(charge.subscription_id or "")
        if automatic and sub is not None:
            meeting = [d for d in automatic if _targets(d, charge)]
            if meeting:
                own = own + [
                    granted.get((d.code, sub.subscription_id))
                    or granted.setdefault((d.code, sub.subscription_id), automatic_grant(d, sub))
                    for d in meeting
                ]
                own.sort(key=_grant_order)
        candidates = sorted(general + own, key=_grant_order) if own and general else (own or general)
        if not candidates:
            continue
        remaining = charge.exact
        for grant in candidates:
            d = grant.discount
            if not _targets(d, charge):
                continue
            window = grant.window
            if window is None:
                continue
            period = charge.period
            whole = window.start <= period.start and period.end <= window.end
            inside = period if whole else window.intersect(period)
            if inside is None:
                continue
            overlap = ONE if whole else Fraction(inside.days, period.days)
            if d.when is not None:
                # Only the variables the condition reads are computed; the condition is
                # evaluated once per discount and values of those variables.
                env: dict[str, Value] = {}
                wanted = _when_variables(ctx, d)
                if "quantity" in wanted:
                    env["quantity"] = abs(charge.base_quantity if charge.base_quantity is not None else charge.quantity)
                if "volume" in wanted:
                    env["volume"] = volumes[d.code] if d.code in volumes else volumes.setdefault(d.code, _volume(ctx, d, subs))
                if "commitment_months" in wanted:
                    commitment = ctx.catalogue.commitments.get(sub.commitment) if sub and sub.commitment else None
                    env["commitment_months"] = Fraction(commitment.duration_months if commitment else 0)
                if "months_since_start" in wanted:
                    env["months_since_start"] = Fraction(completed_months(sub.start_date, period.start) if sub else 0)
                if not _condition_holds(ctx, d, env):
                    continue
            if d.percent is not None:
                rate, rate_text = _constant(ctx, d, d.percent)
                amount = -rate * remaining
                if not whole:
                    amount *= overlap
                how = f"{rate_text}% of {fmt_money(remaining)}"
            else:
                assert d.fixed is not None
                if charge.delta:
                    # A fixed amount per period was given on the period's own line; a change of
                    # quantity or price during the period does not give it again.
                    continue
                fixed, _ = _constant(ctx, d, d.fixed)
                sign = 1 if remaining >= 0 else -1
                amount = -fixed * abs(charge.share) * overlap * sign
                how = f"{fmt_money(fixed)} per period" + (f" x {fmt_num(abs(charge.share))} of the period" if abs(charge.share) != 1 else "")
            clamped = ""
            if not d.allow_negative:
                if remaining >= 0 and amount < -remaining:
                    amount, clamped = -remaining, " (limited to the line: a discount never makes it negative)"
                elif remaining < 0 and amount > -remaining:
                    amount, clamped = -remaining, " (limited to the credit)"
            if amount == 0:
                continue
            overlap_text = "" if whole else f" x {inside.days}/{period.days} days in the discount window"
            trace = (
                [
                    step(
                        f"discount {d.code}",
                        f"{d.label}: {how}{overlap_text}{clamped}; granted {grant.window_text()} ({grant.source})",
                        where(d.span),
                    ),
                    step("discounted line", f"{charge.description}, {period_label(period)}", charge.rule),
                ]
                if ctx.traced
                else [UNTRACED]
            )
            out.append(
                Charge(
                    kind="discount",
                    customer=customer,
                    product=charge.product,
                    description=f"{d.label} ({charge.description})",
                    quantity=ONE,
                    unit_price=amount,
                    exact=amount,
                    period=period,
                    rule=_discount_rule(d),
                    trace=trace,
                    explain_formula=how + overlap_text,
                    vat=charge.vat,
                    subscription_id=charge.subscription_id,
                    site_id=charge.site_id,
                    account_id=charge.account_id,
                    parent=charge,
                    sort_extra=(d.order, d.code),
                )
            )
            remaining += amount
    return out


def invoice_discount_amounts(
    ctx: RunContext,
    grant: Grant,
    bases: dict[tuple[str, Decimal], Decimal],
    first_invoice: bool,
) -> tuple[list[tuple[tuple[str, Decimal], Fraction]], str] | None:
    """Split an invoice-level discount across VAT groups. Fixed amounts go on the customer's
    first invoice only; percent discounts on every invoice."""
    d = grant.discount
    window = grant.window
    inside = window.intersect(ctx.period) if window else None
    if inside is None:
        return None
    overlap = Fraction(inside.days, ctx.period.days)
    net = sum((Fraction(v) for v in bases.values()), Fraction(0))
    if net <= 0 and not d.allow_negative:
        return None
    keys = sorted(bases, key=lambda k: (-bases[k], k))
    if d.percent is not None:
        rate = ctx.pricer.expr(d.percent, ctx.catalogue.consts)
        assert isinstance(rate, Fraction)
        parts = [(k, -rate * Fraction(bases[k]) * overlap) for k in keys]
        return [p for p in parts if p[1] != 0], f"{fmt_num(rate * 100)}% of the invoice"
    if not first_invoice:
        return None
    assert d.fixed is not None
    fixed = ctx.pricer.expr(d.fixed, ctx.catalogue.consts)
    assert isinstance(fixed, Fraction)
    total = fixed * overlap
    if not d.allow_negative and total > net:
        total = net
    if net == 0:
        return None
    parts = [(k, -total * Fraction(bases[k]) / net) for k in keys]
    return [p for p in parts if p[1] != 0], f"{fmt_money(fixed)} on the invoice"
