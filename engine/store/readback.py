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
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import and_, func, or_, select
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
from engine.store.db import gc_paused
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
_M = TypeVar("_M", bound=BaseModel)


def usage_window(period: str, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) instants of the usage period of billing ``period`` (YYYY-MM): the month
    before, in time zone ``tz``."""
    usage = previous_month(month_period(period))
    zone = get_zone(tz)
    start = dt.datetime.combine(usage.start, dt.time(), zone)
    end = dt.datetime.combine(usage.end, dt.time(), zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def line_last_use(
    session: Session, since: dt.datetime, before: dt.datetime, tz: str
) -> dict[str, dt.date]:
    """For each line used in [since, before) (instants), the day (in ``tz``) of its last record
    there: what the idle-line check needs of the months before the usage period, without
    reading their records back."""
    zone = get_zone(tz)
    query = (
        select(UsageRow.line_id, func.max(UsageRow.start_utc))
        .where(UsageRow.start_utc >= since, UsageRow.start_utc < before)
        .group_by(UsageRow.line_id)
    )
    return {line: last.astimezone(zone).date() for line, last in session.execute(query)}


def _read(
    session: Session,
    orm: type[Base],
    model: type[_M],
    order: Callable[[_M], Any],
    **extra: Callable[[dict[str, Any]], Any],
) -> list[_M]:
    """Every row of ``orm`` as ``model`` (validated), sorted by ``order`` in Python (code point
    order on every database). Columns are selected by the model's field names (no ORM
    objects); ``extra`` computes further fields from a row's values."""
    names = [n for n in model.model_fields if n not in extra]
    rows = session.execute(select(*(getattr(orm, n) for n in names)))
    out: list[_M] = []
    for row in rows:
        values = dict(zip(names, row, strict=True))
        for name, compute in extra.items():
            values[name] = compute(values)
        out.append(model(**values))
    out.sort(key=order)
    return out


def load_dataset_from_store(
    session: Session,
    *,
    usage_period: tuple[dt.datetime, dt.datetime] | None = None,
    late_after_batch: int | None = None,
) -> DataSet:
    """The stored data set; with ``usage_period`` (``usage_window``), only the usage a run of
    that period needs (module docstring), else every usage record."""
    with gc_paused():
        return _load(session, usage_period, late_after_batch)


def _load(
    session: Session,
    usage_period: tuple[dt.datetime, dt.datetime] | None,
    late_after_batch: int | None,
) -> DataSet:
    all_changes = _read(
        session, QuantityChangeRow, QuantityChange, lambda c: (c.subscription_id, c.effective_date)
    )
    changes: dict[str, list[QuantityChange]] = {}
    for change in all_changes:
        changes.setdefault(change.subscription_id, []).append(change)
    customers = _read(session, CustomerRow, Customer, lambda c: c.customer_id)
    sites = _read(session, SiteRow, Site, lambda s: s.site_id)
    accounts = _read(session, AccountRow, Account, lambda a: a.account_id)
    subscriptions = _read(
        session,
        SubscriptionRow,
        Subscription,
        lambda s: s.subscription_id,
        quantity_changes=lambda v: tuple(changes.get(v["subscription_id"], ())),
    )
    one_shots = _read(session, OneShotRow, OneShot, lambda o: o.charge_id)
    discounts = _read(session, DiscountGrantRow, DiscountGrant, lambda d: d.grant_id)
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
