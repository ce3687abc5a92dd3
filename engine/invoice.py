"""Invoices as the engine produces them: lines with their traces, VAT breakdown, totals.

These are immutable values. Amounts are `Decimal`, already rounded as the ruleset says; the
exact (unrounded) amount of a line is kept in its trace (the rounding step) so that anyone can
re-derive the rounding. `as_dict` gives the documented JSON schema (docs/output.md): amounts as
decimal strings, dates ISO.

Invoices and run results are pydantic models (validated when read back from a store); lines and
trace steps, by far the most numerous objects of a run, are named tuples, which pydantic
validates as fields all the same: immutable, built 6x and unpickled 3.5x faster than frozen
dataclasses (the results of a partitioned run travel back from worker processes pickled). Being
tuples, they compare equal to plain tuples of the same values: compare lines with lines.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from operator import itemgetter
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict

_M = TypeVar("_M", bound=BaseModel)


class TraceStep(NamedTuple):
    """One reason behind a line: which rule did what, and where that rule is written."""

    rule: str  # "price", "proration", "discount WELCOME", "rounding"...
    text: str  # in words: "19/30 days (actual days) of 12-30 Nov 2026"
    source: str  # "rulesets/acme.bareme:42:5", or "data: subscriptions.csv"

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "text": self.text, "source": self.source}

    def __reduce__(self) -> tuple[type[TraceStep], tuple[str, ...]]:
        # The class and its fields (a named tuple's default goes through copyreg): the results
        # of a partitioned run travel back from worker processes pickled.
        return (TraceStep, tuple(self))


class InvoiceLine(NamedTuple):
    kind: str  # recurring | regularisation | usage | one_shot | discount | invoice_discount
    #            termination_fee | true_up
    description: str
    product: str | None
    family: str | None
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal  # excl. VAT, rounded
    vat_category: str
    vat_rate: Decimal  # percent, e.g. 20
    period_start: date | None
    period_end: date | None  # inclusive
    rule: str  # the rule that priced the line, with its source position
    trace: tuple[TraceStep, ...]
    explain: str  # the trace in one sentence
    subscription_id: str | None = None
    site_id: str | None = None
    account_id: str | None = None
    accounting_code: str | None = None
    cost: Decimal | None = None  # purchase cost of the line, for margin
    records: tuple[str, ...] = ()  # usage record ids behind a usage line

    def __reduce__(self) -> tuple[type[InvoiceLine], tuple[Any, ...]]:
        return (InvoiceLine, tuple(self))  # as TraceStep's

    def as_dict(self, *, with_trace: bool = True) -> dict[str, Any]:
        """The documented JSON object; `with_trace=False` leaves "trace" None (for a caller
        that encodes the trace steps itself)."""
        return {
            "kind": self.kind,
            "description": self.description,
            "product": self.product,
            "family": self.family,
            "quantity": str(self.quantity),
            "unit_price": str(self.unit_price),
            "amount": str(self.amount),
            "vat_category": self.vat_category,
            "vat_rate": str(self.vat_rate),
            "period_start": self.period_start.isoformat() if self.period_start else None,
            "period_end": self.period_end.isoformat() if self.period_end else None,
            "rule": self.rule,
            "trace": [t.as_dict() for t in self.trace] if with_trace else None,
            "explain": self.explain,
            "subscription_id": self.subscription_id,
            "site_id": self.site_id,
            "account_id": self.account_id,
            "accounting_code": self.accounting_code,
            "cost": None if self.cost is None else str(self.cost),
            "records": list(self.records),
        }


# The setters of BaseModel's slots, called directly: `object.__setattr__` looks each one up
# by name, which is most of the cost of building a model the engine computed itself.
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def _trusted(cls: type[_M], values: dict[str, Any]) -> _M:
    """A model from values the engine computed itself, every field given: what
    `model_construct` does, without its per-field alias and default lookups (a run builds tens
    of thousands of invoices)."""
    model = object.__new__(cls)
    _set_dict(model, values)
    _set_fields_set(model, set(values))
    _set_extra(model, None)
    _set_private(model, None)
    return model


class VatSubtotal(BaseModel):
    model_config = ConfigDict(frozen=True)

    category: str  # EN 16931 VAT category code: S, Z, E, AE, G, O
    rate: Decimal
    base: Decimal  # sum of the line amounts at this rate
    vat: Decimal  # rounded once, on the base (EN 16931 BR-CO-17)
    mention: str | None = None

    @classmethod
    def trusted(cls, category: str, rate: Decimal, base: Decimal, vat: Decimal, mention: str | None) -> VatSubtotal:
        return _trusted(cls, {"category": category, "rate": rate, "base": base, "vat": vat, "mention": mention})

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Field values only, as Invoice's (pydantic's own pickling carries its private state
        # and sets it back through Python: a third of the time to pickle a run's invoices).
        d = self.__dict__
        return (_vat_subtotal, (d["category"], d["rate"], d["base"], d["vat"], d["mention"]))

    def as_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "rate": str(self.rate),
            "base": str(self.base),
            "vat": str(self.vat),
            "mention": self.mention,
        }


class Invoice(BaseModel):
    model_config = ConfigDict(frozen=True)

    invoice_key: str  # customer and segment: "C042/site:S1"
    customer_id: str
    customer_name: str
    site_id: str | None
    account_id: str | None
    family: str | None
    period: str  # YYYY-MM
    issue_date: date
    currency: str
    lines: tuple[InvoiceLine, ...]
    vat_breakdown: tuple[VatSubtotal, ...]
    total_excl_vat: Decimal
    total_vat: Decimal
    total_incl_vat: Decimal
    mentions: tuple[str, ...] = ()

    @classmethod
    def trusted(cls, **values: Any) -> Invoice:
        """An invoice the engine built (no validation); every field must be given."""
        if values.keys() != _INVOICE_KEYS:  # a constant: `model_fields` costs a lookup per call
            raise TypeError(f"Invoice.trusted needs every field: {sorted(_INVOICE_KEYS ^ values.keys())}")
        return _trusted(cls, values)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Field values only (see TraceStep.__reduce__): read back without validation, as built.
        return (_invoice_from_values, _invoice_values(self.__dict__))

    def as_dict(self, *, with_traces: bool = True) -> dict[str, Any]:
        return {
            "invoice_key": self.invoice_key,
            "customer_id": self.customer_id,
            "customer_name": self.customer_name,
            "site_id": self.site_id,
            "account_id": self.account_id,
            "family": self.family,
            "period": self.period,
            "issue_date": self.issue_date.isoformat(),
            "currency": self.currency,
            "lines": [line.as_dict(with_trace=with_traces) for line in self.lines],
            "vat_breakdown": [v.as_dict() for v in self.vat_breakdown],
            "total_excl_vat": str(self.total_excl_vat),
            "total_vat": str(self.total_vat),
            "total_incl_vat": str(self.total_incl_vat),
            "mentions": list(self.mentions),
        }


class RejectedRecord(BaseModel):
    """A usage record the run could not bill, with why (it is never silently dropped)."""

    model_config = ConfigDict(frozen=True)

    record_id: str
    line_id: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"record_id": self.record_id, "line_id": self.line_id, "reason": self.reason}


class RunResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    ruleset: str
    period: str
    currency: str
    invoices: tuple[Invoice, ...]
    usage_read: int = 0
    usage_billed: int = 0
    usage_outside_period: int = 0
    usage_rejected: tuple[RejectedRecord, ...] = ()
    usage_unanswered: int = 0  # unanswered calls a rating drops: counted, never billed

    @property
    def total_excl_vat(self) -> Decimal:
        return sum((i.total_excl_vat for i in self.invoices), Decimal(0))

    @property
    def total_vat(self) -> Decimal:
        return sum((i.total_vat for i in self.invoices), Decimal(0))

    @property
    def total_incl_vat(self) -> Decimal:
        return sum((i.total_incl_vat for i in self.invoices), Decimal(0))

    def as_dict(self) -> dict[str, Any]:
        return {
            "ruleset": self.ruleset,
            "period": self.period,
            "currency": self.currency,
            "invoice_count": len(self.invoices),
            "total_excl_vat": str(self.total_excl_vat),
            "total_vat": str(self.total_vat),
            "total_incl_vat": str(self.total_incl_vat),
            "usage": {
                "read": self.usage_read,
                "billed": self.usage_billed,
                "outside_period": self.usage_outside_period,
                "unanswered": self.usage_unanswered,
                "rejected": len(self.usage_rejected),
                "rejected_records": [r.as_dict() for r in self.usage_rejected],
            },
            "invoices": [i.as_dict() for i in self.invoices],
        }


_INVOICE_FIELDS = tuple(Invoice.model_fields)
_INVOICE_KEYS = dict.fromkeys(_INVOICE_FIELDS).keys()
_invoice_values = itemgetter(*_INVOICE_FIELDS)
_vat_subtotal = VatSubtotal.trusted


def _invoice_from_values(*values: Any) -> Invoice:
    return _trusted(Invoice, dict(zip(_INVOICE_FIELDS, values, strict=True)))
