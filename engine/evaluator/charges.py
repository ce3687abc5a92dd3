"""Charges: invoice lines before discounts, segmentation and rounding, and the run context.

A `Charge` holds the exact amount (a Fraction) and the trace steps that explain it; rounding
happens once, when charges become `InvoiceLine`s (engine.evaluator.invoicing). `RunContext` is
what every stage of the run reads: the catalogue, the pricer back end and the run's periods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

from engine.calendar import Period, add_months, month_period
from engine.catalogue import Catalogue, Product, VatRate, where
from engine.evaluator.backend import Pricer
from engine.invoice import TraceStep
from engine.model import Customer, Subscription

KIND_RANK = {
    "recurring": 0,
    "regularisation": 1,
    "one_shot": 2,
    "usage": 3,
    "termination_fee": 4,
    "true_up": 5,
    "discount": 6,
    "invoice_discount": 7,
}


@dataclass
class Charge:
    kind: str
    customer: Customer
    product: Product | None
    description: str
    quantity: Fraction
    unit_price: Fraction
    exact: Fraction  # excl. VAT, not rounded
    period: Period | None
    rule: str
    trace: list[TraceStep]
    explain_formula: str  # "19/30 days x 49.90"
    vat: VatRate
    subscription_id: str | None = None
    site_id: str | None = None
    account_id: str | None = None
    share: Fraction = Fraction(1)  # served share of the billing period (for fixed discounts)
    cost: Fraction | None = None
    records: tuple[str, ...] = ()
    parent: Charge | None = None  # the charge a discount line discounts
    base_quantity: Fraction | None = None  # the subscription's quantity (`when quantity`)
    delta: bool = False  # a regularisation of a quantity or price change (actual - advance)
    sort_extra: tuple[object, ...] = ()
    discounts: list[Charge] = field(default_factory=list)

    @property
    def family(self) -> str | None:
        return self.product.family if self.product else None


@dataclass(frozen=True)
class RunContext:
    catalogue: Catalogue
    pricer: Pricer
    period: Period  # the run's month: in-advance charges of periods starting in it
    usage_period: Period  # the month before: usage, one-shots, regularisations, fees
    period_text: str
    # Per-run memo of values that many subscriptions share (period amounts, trace steps...).
    # Keys are built only from immutable values, so the memo never changes a result.
    memo: dict[object, object] = field(default_factory=dict, compare=False, repr=False)

    @staticmethod
    def for_period(catalogue: Catalogue, pricer: Pricer, period_text: str) -> RunContext:
        p = month_period(period_text)
        previous = Period(add_months(p.start, -1), p.start)
        return RunContext(catalogue, pricer, p, previous, period_text)


ONE_DAY = timedelta(days=1)


@lru_cache(maxsize=1 << 16)
def fraction_to_decimal(x: Fraction, places: int = 6) -> Decimal:
    """Exact Decimal when the fraction terminates within `places`, else rounded half-up."""
    den = x.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den == 1 and max(twos, fives) <= places:
        scale = max(twos, fives)
        return (Decimal(x.numerator * (10**scale) // x.denominator)).scaleb(-scale)
    from engine.money import RoundingMode, RoundingRule

    return RoundingRule(Decimal(1).scaleb(-places), RoundingMode.HALF_UP).apply(x)


@lru_cache(maxsize=1 << 16)
def fmt_num(x: Fraction | Decimal, places: int = 6) -> str:
    d = fraction_to_decimal(x, places) if isinstance(x, Fraction) else x
    text = format(d, "f")
    return text


@lru_cache(maxsize=1 << 16)
def fmt_money(x: Fraction) -> str:
    """Money in traces: at least two decimals, exact when it terminates (49.90, 0.0125)."""
    d = fraction_to_decimal(x, 6)
    if -d.as_tuple().exponent < 2:  # type: ignore[operator]
        d = d.quantize(Decimal("0.01"))
    return format(d, "f")


def subscription_trace(sub: Subscription) -> TraceStep:
    end = sub.end_date.isoformat() if sub.end_date else "open-ended"
    text = f"subscription {sub.subscription_id}: {sub.product} x {sub.quantity} from {sub.start_date.isoformat()} to {end}"
    if sub.quantity_changes:
        changes = ", ".join(f"{c.quantity} from {c.effective_date.isoformat()}" for c in sub.quantity_changes)
        text += f"; quantity {changes}"
    return step("subscription", text, "data: subscriptions")


def step(rule: str, text: str, source: str) -> TraceStep:
    """A trace step built without re-validation (the engine only builds well-typed steps)."""
    return TraceStep(rule, text, source)


@lru_cache(maxsize=1 << 14)
def period_label(p: Period) -> str:
    return p.label()


def product_source(product: Product) -> str:
    return where(product.span)


def in_period(d: date, p: Period) -> bool:
    return p.start <= d < p.end
