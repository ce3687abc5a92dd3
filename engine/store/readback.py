"""The data set back out of the store: ``engine.model.DataSet`` built from the tables.

The result is the ``DataSet`` that ``engine.dataset.load_dataset`` gives for the same rows:
same models, same values (decimals with their written form, timestamps with their offset), same
order (by identifier; usage by start time then record id).

Usage records can be limited to a run's usage period (``usage_period``): a run bills the usage
of the month before its billing period, and the store holds many months. What else the run
sees, so that its "outside the period" check reports real problems and not the store's history:
- records up to one day after the period (stamped in the next month by a time-zone slip, or
  already imported: the run reports them as billed by a later run);
- before the period: without a previous run, records of the day before (a time-zone slip);
  with one (``late_after_batch``: the last import batch that run saw), every record written by a
  later import, whatever its date: CDRs that arrived late, which no run will bill any more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from engine.calendar import get_zone, month_period, previous_month
from engine.model import (
    Account,
    Customer,
    DataSet,
    DiscountGrant,
    OneShot,
    QuantityChange,
    Site,
    Subscription,
    UsageRecord,
)
from engine.store.schema import (
    AccountRow,
    Base,
    CustomerRow,
    DiscountGrantRow,
    OneShotRow,
    QuantityChangeRow,
    SiteRow,
    SubscriptionRow,
    UsageRow,
)

__all__ = ["load_dataset_from_store", "usage_window"]

_MARGIN = dt.timedelta(days=1)


def usage_window(period: str, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) instants of the usage period of billing ``period`` (YYYY-MM): the month
    before, in time zone ``tz``."""
    usage = previous_month(month_period(period))
    zone = get_zone(tz)
    start = dt.datetime.combine(usage.start, dt.time(), zone)
    end = dt.datetime.combine(usage.end, dt.time(), zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def _fields(model: type[Any], row: Any, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    names = [n for n in model.model_fields if n not in exclude]
    return {n: getattr(row, n) for n in names}


def _all(session: Session, orm: type[Base], order: Callable[[Any], Any]) -> list[Any]:
    return sorted(session.scalars(select(orm)), key=order)


def load_dataset_from_store(
    session: Session,
    *,
    usage_period: tuple[dt.datetime, dt.datetime] | None = None,
    late_after_batch: int | None = None,
) -> DataSet:
    """The stored data set; with ``usage_period`` (``usage_window``), only the usage a run of
    that period needs (module docstring), else every usage record."""
    changes: dict[str, list[QuantityChange]] = {}
    all_changes: list[QuantityChange] = []
    for row in _all(session, QuantityChangeRow, lambda r: (r.subscription_id, r.effective_date)):
        change = QuantityChange(**_fields(QuantityChange, row))
        changes.setdefault(change.subscription_id, []).append(change)
        all_changes.append(change)
    customers = [
        Customer(**_fields(Customer, r))
        for r in _all(session, CustomerRow, lambda r: r.customer_id)
    ]
    sites = [Site(**_fields(Site, r)) for r in _all(session, SiteRow, lambda r: r.site_id)]
    accounts = [
        Account(**_fields(Account, r)) for r in _all(session, AccountRow, lambda r: r.account_id)
    ]
    subscriptions = [
        Subscription(
            **_fields(Subscription, r, ("quantity_changes",)),
            quantity_changes=tuple(changes.get(r.subscription_id, ())),
        )
        for r in _all(session, SubscriptionRow, lambda r: r.subscription_id)
    ]
    one_shots = [
        OneShot(**_fields(OneShot, r)) for r in _all(session, OneShotRow, lambda r: r.charge_id)
    ]
    discounts = [
        DiscountGrant(**_fields(DiscountGrant, r))
        for r in _all(session, DiscountGrantRow, lambda r: r.grant_id)
    ]
    query = select(
        UsageRow.record_id,
        UsageRow.line_id,
        UsageRow.product,
        UsageRow.start_time,
        UsageRow.quantity,
        UsageRow.destination,
    )
    if usage_period is not None:
        start, end = usage_period
        if late_after_batch is None:
            query = query.where(
                UsageRow.start_utc >= start - _MARGIN, UsageRow.start_utc < end + _MARGIN
            )
        else:
            query = query.where(
                or_(
                    and_(UsageRow.start_utc >= start, UsageRow.start_utc < end + _MARGIN),
                    and_(UsageRow.start_utc < start, UsageRow.batch_id > late_after_batch),
                )
            )
    usage = [
        UsageRecord(
            record_id=r.record_id,
            line_id=r.line_id,
            product=r.product,
            start_time=dt.datetime.fromisoformat(r.start_time),
            quantity=r.quantity,
            destination=r.destination,
        )
        for r in session.execute(query)
    ]
    usage.sort(key=lambda u: (u.start_time, u.record_id))
    return DataSet(
        customers=tuple(customers),
        sites=tuple(sites),
        accounts=tuple(accounts),
        subscriptions=tuple(subscriptions),
        quantity_changes=tuple(all_changes),
        one_shots=tuple(one_shots),
        usage=tuple(usage),
        discounts=tuple(discounts),
    )
