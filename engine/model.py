"""Immutable input data of a billing run, as listed in docs/dataset.md.

Contract:
- One pydantic model per data-set file; models are frozen, strict (typed values only: a float
  never becomes a Decimal, a string never becomes a date) and refuse unknown fields.
- Legal identifiers (SIREN, VAT, IBAN) and references between files are checked by the loader
  (engine.dataset), not here; the models only hold well-typed values.
- A subscription is served from ``start_date`` to ``end_date`` inclusive (open-ended when
  ``end_date`` is None); its quantity changes are attached sorted by effective date.
- ``DataSet`` holds tuples of every model plus read-only lookups built once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from operator import attrgetter
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationInfo, field_validator

from engine.calendar import Period

__all__ = [
    "Account",
    "Customer",
    "DataSet",
    "DiscountGrant",
    "OneShot",
    "QuantityChange",
    "Site",
    "Subscription",
    "UsageRecord",
]

_ONE_DAY = dt.timedelta(days=1)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")


class Customer(_Record):
    customer_id: str
    legal_name: str
    country: str
    siren: str | None = None
    vat_number: str | None = None
    address: str | None = None
    postal_code: str | None = None
    city: str | None = None
    segment: str | None = None
    pricelist: str | None = None
    iban: str | None = None
    email: str | None = None


class Site(_Record):
    site_id: str
    customer_id: str
    name: str
    address: str | None = None
    postal_code: str | None = None
    city: str | None = None
    country: str | None = None


class Account(_Record):
    account_id: str
    customer_id: str
    name: str


class QuantityChange(_Record):
    subscription_id: str
    effective_date: dt.date
    quantity: Decimal


class Subscription(_Record):
    subscription_id: str
    customer_id: str
    product: str
    quantity: Decimal
    start_date: dt.date
    end_date: dt.date | None = None
    site_id: str | None = None
    account_id: str | None = None
    line_id: str | None = None
    unit_price: Decimal | None = None
    commitment: str | None = None
    commitment_start: dt.date | None = None
    quantity_changes: tuple[QuantityChange, ...] = ()

    @field_validator("quantity_changes")
    @classmethod
    def _sorted_changes(
        cls, changes: tuple[QuantityChange, ...], info: ValidationInfo
    ) -> tuple[QuantityChange, ...]:
        own_id = info.data.get("subscription_id")
        for change in changes:
            if change.subscription_id != own_id:
                raise ValueError(
                    f"quantity change of {change.subscription_id!r} attached to {own_id!r}"
                )
        return tuple(sorted(changes, key=lambda c: c.effective_date))

    @property
    def service_end(self) -> dt.date | None:
        """Exclusive end of service (the day after ``end_date``), None when open-ended."""
        return None if self.end_date is None else self.end_date + _ONE_DAY

    @property
    def effective_commitment_start(self) -> dt.date:
        return self.commitment_start or self.start_date

    def is_active_on(self, d: dt.date) -> bool:
        return self.start_date <= d and (self.end_date is None or d <= self.end_date)

    def service_within(self, within: Period) -> Period | None:
        """The part of ``within`` where the subscription is in service."""
        start = max(within.start, self.start_date)
        end = within.end if self.service_end is None else min(within.end, self.service_end)
        return Period(start, end) if start < end else None

    def quantity_on(self, d: dt.date) -> Decimal:
        """Quantity in force on ``d``; zero outside the service dates."""
        if not self.is_active_on(d):
            return Decimal(0)
        quantity = self.quantity
        for change in self.quantity_changes:
            if change.effective_date > d:
                break
            quantity = change.quantity
        return quantity

    def segments(self, within: Period) -> list[tuple[Period, Decimal]]:
        """Sub-periods of ``within`` in service, split at every quantity change, in order.

        Segments are not merged when a change keeps the same quantity (each one traces back
        to a data row).
        """
        served = self.service_within(within)
        if served is None:
            return []
        cuts = sorted(
            {
                c.effective_date
                for c in self.quantity_changes
                if served.start < c.effective_date < served.end
            }
        )
        bounds = [served.start, *cuts, served.end]
        return [
            (Period(a, b), self.quantity_on(a)) for a, b in zip(bounds, bounds[1:], strict=False)
        ]


class OneShot(_Record):
    charge_id: str
    customer_id: str
    product: str
    date: dt.date
    quantity: Decimal = Decimal(1)
    unit_price: Decimal | None = None
    description: str | None = None
    site_id: str | None = None
    account_id: str | None = None


class UsageRecord(_Record):
    record_id: str
    line_id: str
    product: str
    start_time: AwareDatetime
    quantity: Decimal
    destination: str | None = None


class DiscountGrant(_Record):
    grant_id: str
    customer_id: str
    discount: str
    start_date: dt.date
    subscription_id: str | None = None


_M = TypeVar("_M")


def _index(items: Sequence[_M], key: str) -> Mapping[str, _M]:
    return MappingProxyType(dict(zip(map(attrgetter(key), items), items, strict=True)))


def _group(items: Sequence[_M], key: str) -> Mapping[str, tuple[_M, ...]]:
    # attrgetter and no setdefault: the lookups of every partition of a run are built here
    groups: dict[str, list[_M]] = {}
    get = groups.get
    for value, item in zip(map(attrgetter(key), items), items, strict=True):
        if value is not None:
            members = get(value)
            if members is None:
                groups[value] = [item]
            else:
                members.append(item)
    return MappingProxyType({k: tuple(v) for k, v in groups.items()})


@dataclass(frozen=True)
class DataSet:
    """A loaded, validated data set. Equality compares the records, not the lookups."""

    customers: tuple[Customer, ...] = ()
    sites: tuple[Site, ...] = ()
    accounts: tuple[Account, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    quantity_changes: tuple[QuantityChange, ...] = ()
    one_shots: tuple[OneShot, ...] = ()
    usage: tuple[UsageRecord, ...] = ()
    discounts: tuple[DiscountGrant, ...] = ()

    customers_by_id: Mapping[str, Customer] = field(init=False, repr=False, compare=False)
    sites_by_id: Mapping[str, Site] = field(init=False, repr=False, compare=False)
    accounts_by_id: Mapping[str, Account] = field(init=False, repr=False, compare=False)
    subscriptions_by_id: Mapping[str, Subscription] = field(init=False, repr=False, compare=False)
    one_shots_by_id: Mapping[str, OneShot] = field(init=False, repr=False, compare=False)
    discounts_by_id: Mapping[str, DiscountGrant] = field(init=False, repr=False, compare=False)
    sites_by_customer: Mapping[str, tuple[Site, ...]] = field(init=False, repr=False, compare=False)
    accounts_by_customer: Mapping[str, tuple[Account, ...]] = field(
        init=False, repr=False, compare=False
    )
    subscriptions_by_customer: Mapping[str, tuple[Subscription, ...]] = field(
        init=False, repr=False, compare=False
    )
    subscriptions_by_line: Mapping[str, tuple[Subscription, ...]] = field(
        init=False, repr=False, compare=False
    )
    one_shots_by_customer: Mapping[str, tuple[OneShot, ...]] = field(
        init=False, repr=False, compare=False
    )
    discounts_by_customer: Mapping[str, tuple[DiscountGrant, ...]] = field(
        init=False, repr=False, compare=False
    )
    usage_by_line: Mapping[str, tuple[UsageRecord, ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for name in (
            "customers",
            "sites",
            "accounts",
            "subscriptions",
            "quantity_changes",
            "one_shots",
            "usage",
            "discounts",
        ):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        lookups: dict[str, Mapping[str, Any]] = {
            "customers_by_id": _index(self.customers, "customer_id"),
            "sites_by_id": _index(self.sites, "site_id"),
            "accounts_by_id": _index(self.accounts, "account_id"),
            "subscriptions_by_id": _index(self.subscriptions, "subscription_id"),
            "one_shots_by_id": _index(self.one_shots, "charge_id"),
            "discounts_by_id": _index(self.discounts, "grant_id"),
            "sites_by_customer": _group(self.sites, "customer_id"),
            "accounts_by_customer": _group(self.accounts, "customer_id"),
            "subscriptions_by_customer": _group(self.subscriptions, "customer_id"),
            "subscriptions_by_line": _group(
                sorted(self.subscriptions, key=attrgetter("start_date", "subscription_id")),
                "line_id",
            ),
            "one_shots_by_customer": _group(self.one_shots, "customer_id"),
            "discounts_by_customer": _group(self.discounts, "customer_id"),
            "usage_by_line": _group(self.usage, "line_id"),
        }
        for name, mapping in lookups.items():
            object.__setattr__(self, name, mapping)

    def subscription_for_line(self, line_id: str, on: dt.date) -> Subscription | None:
        """The subscription with ``line_id`` in service on ``on`` (the latest started)."""
        found = None
        for subscription in self.subscriptions_by_line.get(line_id, ()):
            if subscription.is_active_on(on):
                found = subscription
        return found
