"""Charges: invoice lines before discounts, segmentation and rounding, and the run context.

A `Charge` holds the exact amount (a Fraction) and the trace steps that explain it; rounding
happens once, when charges become `InvoiceLine`s (engine.evaluator.invoicing). `RunContext` is
what every stage of the run reads: the catalogue, the pricer back end and the run's periods.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache

from dsl.exact import Fraction
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


_ONE = Fraction(1)


class Charge:
    """One line before segmentation and rounding. A plain class rather than a dataclass: a
    run builds one per line, and compiled (engine.evaluator.native) its constructor is then
    native code, where a dataclass keeps its generated Python `__init__`."""

    __slots__ = (
        "kind", "customer", "product", "description", "quantity", "unit_price", "exact", "period",
        "rule", "trace", "explain_formula", "vat", "subscription_id", "site_id", "account_id",
        "share", "cost", "records", "parent", "base_quantity", "delta", "sort_extra", "proto",
    )  # fmt: skip

    def __init__(
        self,
        kind: str,
        customer: Customer,
        product: Product | None,
        description: str,
        quantity: Fraction,
        unit_price: Fraction,
        exact: Fraction,  # excl. VAT, not rounded
        period: Period | None,
        rule: str,
        trace: list[TraceStep],
        explain_formula: str,  # "19/30 days x 49.90"
        vat: VatRate,
        subscription_id: str | None = None,
        site_id: str | None = None,
        account_id: str | None = None,
        share: Fraction = _ONE,  # served share of the billing period (for fixed discounts)
        cost: Fraction | None = None,
        records: tuple[str, ...] = (),
        parent: Charge | None = None,  # the charge a discount line discounts
        base_quantity: Fraction | None = None,  # the subscription's quantity (`when quantity`)
        delta: bool = False,  # a regularisation of a quantity or price change (actual - advance)
        sort_extra: tuple[object, ...] = (),
        # The steady-state line this one copies with another subscription's ids (recurring
        # fast path): everything but the owner and the subscription trace step is the
        # prototype's.
        proto: Charge | None = None,
    ) -> None:
        self.kind = kind
        self.customer = customer
        self.product = product
        self.description = description
        self.quantity = quantity
        self.unit_price = unit_price
        self.exact = exact
        self.period = period
        self.rule = rule
        self.trace = trace
        self.explain_formula = explain_formula
        self.vat = vat
        self.subscription_id = subscription_id
        self.site_id = site_id
        self.account_id = account_id
        self.share = share
        self.cost = cost
        self.records = records
        self.parent = parent
        self.base_quantity = base_quantity
        self.delta = delta
        self.sort_extra = sort_extra
        self.proto = proto

    def __repr__(self) -> str:
        return f"Charge({self.kind}, {self.subscription_id}, {self.description!r}, {self.exact})"

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
    # False when only amounts are wanted (the revenue forecast): the steps that name one
    # subscription or one discount grant are then not written out.
    traced: bool = True
    # Per-run memo of values that many subscriptions share (period amounts, trace steps...).
    # Keys are built only from immutable values, so the memo never changes a result.
    memo: dict[object, object] = field(default_factory=dict, compare=False, repr=False)

    @staticmethod
    def for_period(catalogue: Catalogue, pricer: Pricer, period_text: str, *, traced: bool = True) -> RunContext:
        p = month_period(period_text)
        previous = Period(add_months(p.start, -1), p.start)
        return RunContext(catalogue, pricer, p, previous, period_text, traced)


ONE_DAY = timedelta(days=1)


def fraction_to_decimal(x: Fraction, places: int = 6) -> Decimal:
    """Exact Decimal when the fraction terminates within `places`, else rounded half-up."""
    # Cached on the integers: hashing a Fraction costs a modular inverse.
    return _ratio_to_decimal(x.numerator, x.denominator, places)


@lru_cache(maxsize=1 << 16)
def _ratio_to_decimal(num: int, den: int, places: int) -> Decimal:
    d = den
    twos = fives = 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d == 1 and max(twos, fives) <= places:
        scale = max(twos, fives)
        return (Decimal(num * (10**scale) // den)).scaleb(-scale)
    from engine.rounding import RoundingMode, round_ratio

    return Decimal(f"{round_ratio(num * 10**places, den, RoundingMode.HALF_UP)}E-{places}")


def fmt_num(x: Fraction | Decimal, places: int = 6) -> str:
    if isinstance(x, Fraction):
        return _fmt_ratio(x.numerator, x.denominator, places)
    return format(x, "f")


@lru_cache(maxsize=1 << 16)
def _fmt_ratio(num: int, den: int, places: int) -> str:
    return format(_ratio_to_decimal(num, den, places), "f")


def fmt_money(x: Fraction) -> str:
    """Money in traces: at least two decimals, exact when it terminates (49.90, 0.0125)."""
    return _fmt_money(x.numerator, x.denominator)


@lru_cache(maxsize=1 << 16)
def _fmt_money(num: int, den: int) -> str:
    d = _ratio_to_decimal(num, den, 6)
    if -d.as_tuple().exponent < 2:  # type: ignore[operator]
        d = d.quantize(Decimal("0.01"))
    return format(d, "f")


def fraction_sum(values: Iterable[Fraction]) -> Fraction:
    """Exact sum of fractions: numerators added per denominator first (a run's amounts share a
    few denominators: cents, days of a month...), then one Fraction addition per denominator."""
    by_denominator: dict[int, int] = {}
    for v in values:
        d = v.denominator
        by_denominator[d] = by_denominator.get(d, 0) + v.numerator
    total = Fraction(0)
    for d, num in by_denominator.items():
        total += Fraction(num, d)
    return total


def subscription_trace(sub: Subscription) -> TraceStep:
    end = sub.end_date.isoformat() if sub.end_date else "open-ended"
    text = f"subscription {sub.subscription_id}: {sub.product} x {sub.quantity} from {sub.start_date.isoformat()} to {end}"
    if sub.quantity_changes:
        changes = ", ".join(f"{c.quantity} from {c.effective_date.isoformat()}" for c in sub.quantity_changes)
        text += f"; quantity {changes}"
    return step("subscription", text, "data: subscriptions")


#: The step standing for a subscription's or a grant's own steps in an untraced run.
UNTRACED = TraceStep("untraced", "not traced: amounts only", "")


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
