"""KPIs of a billing run, as a billing lead follows them month after month.

Contract:
- `compute_kpis(catalogue, data, period, result, anomalies, forecast=None)` is pure; amounts
  are exact `Decimal` sums of the rounded invoice lines (excl. VAT); `Kpis.as_dict()` renders
  them as decimal strings, every mapping sorted by key.
- Billed vs activated services: subscriptions in service on the period's first day, and those
  of them with at least one invoice line in the run.
- Margin = amount - cost over the lines that carry a cost (the products' `cost`), together with
  the discount lines of those products (a discount lowers the margin); lines without a cost are
  left out of margins (not counted at zero cost).
- Zones: the zone of a usage line is the part of its description after the product's label
  ("Appels - FR_MOBILE"), as the run writes it (engine.evaluator.usage).
- Revenue by family: invoice-level discounts have no family; they count under "(none)".
- Credit notes are invoices totalling less than zero; negative lines are every line below zero
  (credits, regularisations, discounts), per kind.
- Recurring revenue forecast: each of the next `months` periods is re-evaluated on the same
  data set and its in-advance recurring lines (products billed `in_advance`, kind "recurring",
  for service from the period's start) are summed, with the discounts on them: what the current
  subscriptions will bill if nothing changes (terminations and price changes already in the
  data included; no new sales, no usage). The lines are rounded as on the invoice, but no
  invoice is built (`engine.evaluator.run.recurring_revenue`); a test checks the figures
  against the invoice lines of a full `bill` of the same periods.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.calendar import add_months, month_period
from engine.catalogue import Catalogue
from engine.evaluator.run import recurring_revenue
from engine.invoice import InvoiceLine, RunResult
from engine.model import DataSet
from simulator.anomalies import Anomaly

__all__ = ["Forecast", "Kpis", "Margin", "compute_kpis", "forecast_periods", "recurring_forecast"]

ZERO = Decimal("0.00")  # sums of rounded lines keep two places, even when empty
NO_FAMILY = "(none)"


@dataclass(frozen=True)
class Margin:
    revenue: Decimal = ZERO  # amounts of the lines with a cost, and of their discounts
    cost: Decimal = ZERO

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost

    def __add__(self, other: Margin) -> Margin:
        return Margin(self.revenue + other.revenue, self.cost + other.cost)

    def as_dict(self) -> dict[str, str]:
        return {"revenue": str(self.revenue), "cost": str(self.cost), "margin": str(self.margin)}


@dataclass(frozen=True)
class Forecast:
    period: str
    recurring: Decimal  # in-advance recurring lines, before discounts
    discounts: Decimal  # discount lines on them (negative)

    @property
    def net(self) -> Decimal:
        return self.recurring + self.discounts

    def as_dict(self) -> dict[str, str]:
        return {
            "period": self.period,
            "recurring": str(self.recurring),
            "discounts": str(self.discounts),
            "net": str(self.net),
        }


@dataclass(frozen=True)
class Kpis:
    period: str
    currency: str
    invoices: int
    total_excl_vat: Decimal
    total_vat: Decimal
    total_incl_vat: Decimal
    activated_services: int  # subscriptions in service on the period's first day
    billed_services: int  # of those, with at least one line in the run
    unbilled_services: tuple[str, ...]  # the others' subscription ids
    revenue_by_family: Mapping[str, Decimal]
    revenue_by_zone: Mapping[str, Decimal]
    margin_total: Margin
    margin_by_customer: Mapping[str, Margin]
    margin_by_product: Mapping[str, Margin]
    margin_by_zone: Mapping[str, Margin]
    credit_notes: int
    credit_notes_total: Decimal
    negative_lines: int
    negative_lines_total: Decimal
    negative_lines_by_kind: Mapping[str, Decimal]
    anomalies_by_kind: Mapping[str, int]
    anomalies_by_severity: Mapping[str, int]
    forecast: tuple[Forecast, ...] = field(default=())

    @property
    def billed_ratio(self) -> Decimal | None:
        """Billed / activated services, in percent (None without activated services)."""
        if not self.activated_services:
            return None
        return (Decimal(self.billed_services) * 100 / Decimal(self.activated_services)).quantize(
            Decimal("0.01")
        )

    def as_dict(self) -> dict[str, Any]:
        def amounts(m: Mapping[str, Decimal]) -> dict[str, str]:
            return {k: str(m[k]) for k in sorted(m)}

        def margins(m: Mapping[str, Margin]) -> dict[str, dict[str, str]]:
            return {k: m[k].as_dict() for k in sorted(m)}

        ratio = self.billed_ratio
        return {
            "period": self.period,
            "currency": self.currency,
            "invoices": self.invoices,
            "total_excl_vat": str(self.total_excl_vat),
            "total_vat": str(self.total_vat),
            "total_incl_vat": str(self.total_incl_vat),
            "services": {
                "activated": self.activated_services,
                "billed": self.billed_services,
                "billed_percent": None if ratio is None else str(ratio),
                "unbilled": list(self.unbilled_services),
            },
            "revenue_by_family": amounts(self.revenue_by_family),
            "revenue_by_zone": amounts(self.revenue_by_zone),
            "margin": self.margin_total.as_dict(),
            "margin_by_customer": margins(self.margin_by_customer),
            "margin_by_product": margins(self.margin_by_product),
            "margin_by_zone": margins(self.margin_by_zone),
            "credit_notes": {"count": self.credit_notes, "total": str(self.credit_notes_total)},
            "negative_lines": {
                "count": self.negative_lines,
                "total": str(self.negative_lines_total),
                "by_kind": amounts(self.negative_lines_by_kind),
            },
            "anomalies_by_kind": {
                k: self.anomalies_by_kind[k] for k in sorted(self.anomalies_by_kind)
            },
            "anomalies_by_severity": {
                k: self.anomalies_by_severity[k] for k in sorted(self.anomalies_by_severity)
            },
            "forecast": [f.as_dict() for f in self.forecast],
        }


def line_zone(catalogue: Catalogue, line: InvoiceLine) -> str | None:
    """The destination zone of a usage line, from its description "<label> - <ZONE>"."""
    if line.kind != "usage" or line.product is None:
        return None
    product = catalogue.products.get(line.product)
    if product is None:
        return None
    prefix = product.label + " - "
    return line.description[len(prefix) :] if line.description.startswith(prefix) else None


def forecast_periods(period: str, months: int = 3) -> list[str]:
    start = month_period(period).start
    return [add_months(start, k).strftime("%Y-%m") for k in range(1, months + 1)]


def recurring_forecast(
    catalogue: Catalogue,
    data: DataSet,
    period: str,
    *,
    months: int = 3,
    revenue: Callable[[str], tuple[Decimal, Decimal]] | None = None,
) -> tuple[Forecast, ...]:
    """In-advance recurring revenue of the next `months` periods, with its line discounts: what
    the in-advance recurring lines (and their discounts) of each period's run add up to
    (`engine.evaluator.run.recurring_revenue`, or `revenue(period)`, e.g. a partitioned one)."""
    runner = revenue or (lambda p: recurring_revenue(catalogue, data, p))
    out: list[Forecast] = []
    for p in forecast_periods(period, months):
        recurring, discounts = runner(p)
        out.append(Forecast(p, recurring, discounts))
    return tuple(out)


def compute_kpis(
    catalogue: Catalogue,
    data: DataSet,
    period: str,
    result: RunResult,
    anomalies: Iterable[Anomaly] = (),
    *,
    forecast: Sequence[Forecast] | None = None,
    forecast_months: int = 3,
) -> Kpis:
    """The run's KPIs; `forecast` None re-bills the next `forecast_months` periods here."""
    start = month_period(period).start
    if forecast is None:
        forecast = recurring_forecast(catalogue, data, period, months=forecast_months)
    costed = {code for code, p in catalogue.products.items() if p.cost is not None}
    billed_subs: set[str] = set()
    by_family: defaultdict[str, Decimal] = defaultdict(Decimal)
    by_zone: defaultdict[str, Decimal] = defaultdict(Decimal)
    neg_by_kind: defaultdict[str, Decimal] = defaultdict(Decimal)
    m_customer: dict[str, Margin] = {}
    m_product: dict[str, Margin] = {}
    m_zone: dict[str, Margin] = {}
    negative_lines = credit_notes = 0
    credit_total = ZERO
    for inv in result.invoices:
        if inv.total_excl_vat < 0:
            credit_notes += 1
            credit_total += inv.total_excl_vat
        for line in inv.lines:
            if line.subscription_id is not None:
                billed_subs.add(line.subscription_id)
            by_family[line.family or NO_FAMILY] += line.amount
            zone = line_zone(catalogue, line)
            if zone is not None:
                by_zone[zone] += line.amount
            if line.amount < 0:
                negative_lines += 1
                neg_by_kind[line.kind] += line.amount
            if line.cost is not None:
                m = Margin(line.amount, line.cost)
            elif line.kind == "discount" and line.product in costed:
                m = Margin(line.amount, ZERO)
            else:
                continue
            m_customer[inv.customer_id] = m_customer.get(inv.customer_id, Margin()) + m
            if line.product is not None:
                m_product[line.product] = m_product.get(line.product, Margin()) + m
            if zone is not None:
                m_zone[zone] = m_zone.get(zone, Margin()) + m
    activated = sorted(s.subscription_id for s in data.subscriptions if s.is_active_on(start))
    unbilled = tuple(s for s in activated if s not in billed_subs)
    listed = list(anomalies)
    return Kpis(
        period=period,
        currency=result.currency,
        invoices=len(result.invoices),
        total_excl_vat=result.total_excl_vat,
        total_vat=result.total_vat,
        total_incl_vat=result.total_incl_vat,
        activated_services=len(activated),
        billed_services=len(activated) - len(unbilled),
        unbilled_services=unbilled,
        revenue_by_family=dict(by_family),
        revenue_by_zone=dict(by_zone),
        margin_total=sum(m_customer.values(), Margin()),
        margin_by_customer=m_customer,
        margin_by_product=m_product,
        margin_by_zone=m_zone,
        credit_notes=credit_notes,
        credit_notes_total=credit_total,
        negative_lines=negative_lines,
        negative_lines_total=sum(neg_by_kind.values(), ZERO),
        negative_lines_by_kind=dict(neg_by_kind),
        anomalies_by_kind=dict(Counter(a.kind for a in listed)),
        anomalies_by_severity=dict(Counter(a.severity for a in listed)),
        forecast=tuple(forecast),
    )
