"""From a customer's charges to invoices: tax regime, segmentation, order, rounding, totals.

Rounding points (docs/semantics.md): each line's exact amount is rounded once with the ruleset's
`line` rule (default HALF_UP to 0.01); VAT is computed per (category, rate) on the sum of the
rounded lines and rounded once with the `vat` rule (EN 16931 BR-CO-17); totals are sums.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from functools import lru_cache

from dsl.exact import Fraction
from engine.catalogue import EU_COUNTRIES, Catalogue, VatRate, where
from engine.evaluator.charges import (
    KIND_RANK,
    Charge,
    RunContext,
    fmt_money,
    fraction_to_decimal,
    period_label,
    step,
)
from engine.evaluator.discounts import Grant, invoice_discount_amounts
from engine.invoice import Invoice, InvoiceLine, TraceStep, VatSubtotal
from engine.model import Customer
from engine.money import RoundingRule

ZERO = Decimal(0)


def tax_regime(cat: Catalogue, customer: Customer) -> tuple[str, VatRate | None, str | None]:
    """('domestic', None, None) or the rule replacing every line's VAT for this customer."""
    country = customer.country.upper()
    if country == cat.country.upper():
        return "domestic", None, None
    if country in EU_COUNTRIES and customer.vat_number and "reverse_charge" in cat.taxes:
        rule = cat.taxes["reverse_charge"]
        return "reverse_charge", VatRate("reverse_charge", Decimal(0), rule.category, rule.mention, rule.span), where(rule.span)
    if country not in EU_COUNTRIES and "export" in cat.taxes:
        rule = cat.taxes["export"]
        return "export", VatRate("export", Decimal(0), rule.category, rule.mention, rule.span), where(rule.span)
    return "domestic", None, None


def _unit_price(cat: Catalogue, x: Fraction) -> Decimal:
    rule = cat.rounding.unit_price
    if rule is not None:
        return rule.apply(x)
    return fraction_to_decimal(x, 6)


@lru_cache(maxsize=1 << 12)
def _rule_source(rule: str) -> str:
    """`acme.bareme:12` out of `product SIP (acme.bareme:12)`."""
    return rule.split("(")[-1].rstrip(")")


def to_line(
    cat: Catalogue,
    c: Charge,
    vat: VatRate,
    regime_source: str | None,
    memo: dict[object, object] | None = None,
) -> InvoiceLine:
    memo = {} if memo is None else memo
    proto = c.proto
    if proto is not None:
        # A copy of a steady-state line: only the owner and its own first trace steps differ
        # (the prototype's line adds the VAT and rounding steps to the same steps).
        key = (
            ("proto_line", id(proto))
            if vat is c.vat and regime_source is None  # the charge's own VAT: the prototype's
            else ("proto_line", id(proto), vat.name, vat.category, vat.rate, vat.mention, regime_source)
        )
        line = memo.get(key)
        if line is None:
            line = memo[key] = to_line(cat, proto, vat, regime_source, memo)
        assert isinstance(line, InvoiceLine)
        return InvoiceLine(
            line.kind, line.description, line.product, line.family, line.quantity,
            line.unit_price, line.amount, line.vat_category, line.vat_rate, line.period_start,
            line.period_end, line.rule, (*c.trace, *line.trace[len(c.trace):]), line.explain,
            c.subscription_id, c.site_id, c.account_id, line.accounting_code, line.cost,
            line.records,
        )
    rule: RoundingRule = cat.rounding.line
    exact = c.exact
    rounded_key = ("rounded", exact.numerator, exact.denominator)
    hit = memo.get(rounded_key)
    if hit is None:
        amount = rule.apply(exact)
        exact_6 = fraction_to_decimal(exact, 6)
        exact_text = (
            fmt_money(exact)
            if exact_6 == exact
            else f"{exact_6}... (exactly {exact.numerator}/{exact.denominator})"
        )
        rounding_step = step(
            "rounding",
            f"{exact_text} -> {amount} ({rule.describe()}, at the line)",
            where(cat.rounding.line_span) if cat.rounding.line_span else "default: HALF_UP to 0.01 at the line",
        )
        hit = (amount, rounding_step)
        memo[rounded_key] = hit
    amount, rounding_step = hit  # type: ignore[misc]
    assert isinstance(rounding_step, TraceStep)
    vat_key = ("vat_step", vat.name, vat.category, vat.rate, regime_source)
    vat_step = memo.get(vat_key)
    if not isinstance(vat_step, TraceStep):
        if regime_source is not None:
            text = f"{vat.name}: {vat.category} {vat.rate}% ({vat.mention or ''})".rstrip(" ()")
            vat_step = step("vat", text, regime_source)
        else:
            vat_step = step("vat", f"{vat.name}: {vat.category} {vat.rate}%", where(vat.span))
        memo[vat_key] = vat_step
    trace = (*c.trace, vat_step, rounding_step)
    period = c.period
    period_text = period_label(period) if period is not None else ""
    explain = f"{c.description}, {period_text}" if period_text else c.description
    explain += f", {c.explain_formula} = {amount} ({_rule_source(c.rule)})"
    product = c.product
    return InvoiceLine(
        kind=c.kind,
        description=c.description,
        product=product.code if product else None,
        family=product.family if product else None,
        quantity=fraction_to_decimal(c.quantity, 6),
        unit_price=_unit_price(cat, c.unit_price),
        amount=amount,
        vat_category=vat.category,
        vat_rate=vat.rate,
        period_start=period.start if period else None,
        period_end=period.last_day if period else None,
        rule=c.rule,
        trace=trace,
        explain=explain,
        subscription_id=c.subscription_id,
        site_id=c.site_id,
        account_id=c.account_id,
        accounting_code=product.accounting if product else None,
        cost=None if c.cost is None else rule.apply(c.cost),
        records=c.records,
    )


def segment_key(
    site_id: str | None, account_id: str | None, family: str | None, group_by: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    """Which of the customer's invoices a line goes on (customer is implied)."""
    parts: list[tuple[str, str]] = []
    for g in group_by:
        if g == "site" and site_id:
            parts.append(("site", site_id))
        elif g == "account" and account_id:
            parts.append(("account", account_id))
        elif g == "family" and family:
            parts.append(("family", family))
    return tuple(parts)


def _group_key(c: Charge, group_by: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return segment_key(c.site_id, c.account_id, c.family, group_by)


def _order_key(c: Charge, order_by: tuple[str, ...]) -> tuple[object, ...]:
    key: list[object] = []
    for o in order_by:
        if o == "site":
            key.append(c.site_id or "")
        elif o == "account":
            key.append(c.account_id or "")
        elif o == "family":
            key.append(c.family or "~")
        elif o == "product":
            key.append(c.product.code if c.product else "~")
        elif o == "kind":
            key.append(KIND_RANK.get(c.kind, 9))
        elif o == "start":
            key.append(c.period.start.isoformat() if c.period else "")
    key.extend(
        [
            c.product.code if c.product else "~",
            c.period.start.isoformat() if c.period else "",
            KIND_RANK.get(c.kind, 9),
            c.subscription_id or "",
            *[str(x) for x in c.sort_extra],
            c.description,
        ]
    )
    return tuple(key)


def build_invoices(
    ctx: RunContext,
    customer: Customer,
    charges: list[Charge],
    invoice_grants: list[Grant],
) -> list[Invoice]:
    cat = ctx.catalogue
    rule = cat.invoicing_for(customer.segment)
    regime, override, regime_source = tax_regime(cat, customer)
    groups: dict[tuple[tuple[str, str], ...], list[Charge]] = defaultdict(list)
    for c in charges:
        owner = c.parent or c
        groups[_group_key(owner, rule.group_by)].append(c)
    invoices: list[Invoice] = []
    given: set[str] = set()
    owner_keys: dict[int, tuple[object, ...]] = {}  # a line and its discounts share their owner's key

    def sort_key(c: Charge) -> tuple[object, ...]:
        owner = c.parent or c
        okey = owner_keys.get(id(owner))
        if okey is None:
            okey = owner_keys[id(owner)] = _order_key(owner, rule.order_by)
        if not c.sort_extra and c.parent is None:
            return (okey, 0)
        return (okey, 0 if c.parent is None else 1, *[str(x) for x in c.sort_extra])

    for key in sorted(groups):
        members = groups[key]

        ordered = sorted(members, key=sort_key)
        lines = [to_line(cat, c, override or c.vat, regime_source if override else None, ctx.memo) for c in ordered]
        lines.extend(_invoice_discount_lines(ctx, lines, invoice_grants, given, override, regime_source))
        invoices.append(_invoice(ctx, customer, key, lines, override))
    return invoices


def _invoice_discount_lines(
    ctx: RunContext,
    lines: list[InvoiceLine],
    grants: list[Grant],
    given: set[str],
    override: VatRate | None,
    regime_source: str | None,
) -> list[InvoiceLine]:
    cat = ctx.catalogue
    out: list[InvoiceLine] = []
    for grant in grants:
        bases: dict[tuple[str, Decimal], Decimal] = defaultdict(Decimal)
        for line in lines + out:
            bases[(line.vat_category, line.vat_rate)] += line.amount
        split = invoice_discount_amounts(ctx, grant, dict(bases), grant.source not in given)
        if split is None:
            continue
        if grant.discount.fixed is not None:
            given.add(grant.source)  # a fixed amount is given once, on the first invoice that can take it
        parts, how = split
        rounded = [cat.rounding.line.apply(x) for _, x in parts]
        # Fixed amounts: the rounded parts must add up to the rounded whole (largest base absorbs it).
        whole = cat.rounding.line.apply(sum((x for _, x in parts), Fraction(0)))
        if rounded:
            rounded[0] += whole - sum(rounded, ZERO)
        d = grant.discount
        for (vat_key, exact), amount in zip(parts, rounded, strict=True):
            if amount == 0:
                continue
            category, rate = vat_key
            out.append(
                InvoiceLine(
                    kind="invoice_discount",
                    description=d.label + (f" (VAT {rate}%)" if len(parts) > 1 else ""),
                    product=None,
                    family=None,
                    quantity=Decimal(1),
                    unit_price=amount,
                    amount=amount,
                    vat_category=category,
                    vat_rate=rate,
                    period_start=ctx.period.start,
                    period_end=ctx.period.last_day,
                    rule=f"discount {d.code} ({where(d.span)})",
                    trace=(
                        TraceStep(
                            rule=f"discount {d.code}",
                            text=f"{d.label}: {how}, share of the {category} {rate}% base ({fmt_money(exact)} exact); granted {grant.window_text()} ({grant.source})",
                            source=where(d.span),
                        ),
                    ),
                    explain=f"{d.label}, {ctx.period.label()}, {how} = {amount} ({where(d.span)})",
                )
            )
    return out


def _invoice(
    ctx: RunContext,
    customer: Customer,
    key: tuple[tuple[str, str], ...],
    lines: list[InvoiceLine],
    override: VatRate | None,
) -> Invoice:
    cat = ctx.catalogue
    bases: dict[tuple[str, Decimal], Decimal] = defaultdict(Decimal)
    mentions_by_key: dict[tuple[str, Decimal], str | None] = {}
    vat_by_cat = ctx.memo.get("vat_mentions")
    if not isinstance(vat_by_cat, dict):
        vat_by_cat = ctx.memo["vat_mentions"] = {(v.category, v.rate): v.mention for v in cat.vat_rates.values()}
    for line in lines:
        k = (line.vat_category, line.vat_rate)
        bases[k] += line.amount
        mentions_by_key[k] = override.mention if override else vat_by_cat.get(k)
    breakdown = []
    vat_rule = cat.rounding.vat
    for k in sorted(bases, key=lambda k: (-k[1], k[0])):
        base = bases[k]
        # base x rate / 100, exactly: both are decimals, so as integer ratios.
        bn, bd = base.as_integer_ratio()
        rn, rd = k[1].as_integer_ratio()
        vat = vat_rule.apply_ratio(bn * rn, bd * rd * 100)
        breakdown.append(VatSubtotal.trusted(k[0], k[1], base, vat, mentions_by_key.get(k)))
    total_excl = sum((line.amount for line in lines), ZERO)
    total_vat = sum((v.vat for v in breakdown), ZERO)
    mentions = tuple(sorted({v.mention for v in breakdown if v.mention}))
    invoice_key = customer.customer_id + "".join(f"/{a}:{b}" for a, b in key)
    parts = dict(key)
    return Invoice.trusted(
        invoice_key=invoice_key,
        customer_id=customer.customer_id,
        customer_name=customer.legal_name,
        site_id=parts.get("site"),
        account_id=parts.get("account"),
        family=parts.get("family"),
        period=ctx.period_text,
        issue_date=ctx.period.start,
        currency=cat.currency,
        lines=tuple(lines),
        vat_breakdown=tuple(breakdown),
        total_excl_vat=total_excl,
        total_vat=total_vat,
        total_incl_vat=total_excl + total_vat,
        mentions=mentions,
    )
