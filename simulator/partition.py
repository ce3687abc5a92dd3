"""Split a data set into partitions billed independently, and merge their results.

Contract:
- A partition holds whole customers: a customer's subscriptions, sites, billing accounts,
  quantity changes, one-shots and discount grants always stay together (discounts, minimum
  spend, percentage pricing and segmentation into invoices are per customer, so all of a
  customer's accounts are billed in one partition).
- Customers that share a `line_id` (a line that moved from one customer to another) stay in the
  same partition: a usage record belongs to the subscription holding its line on its date, so
  every subscription of a line must be seen together.
- Usage records follow their line. Records on a line of no subscription go to a partition of
  their own (the last one), so that phantom records are reported exactly once.
- Partitions are balanced by subscription count: groups of customers, heaviest first, go to the
  lightest partition (ties by customer id and partition number). The plan depends only on the
  data, never on row order; empty partitions are dropped.
- `merge_results` gives back the `RunResult` that one `bill` over the whole data set produces:
  invoices in customer id order (each customer's own order kept), usage counters summed,
  rejected records sorted by record id. It is independent of the order results arrive in.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from operator import attrgetter

from engine.invoice import RunResult
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

__all__ = ["DataSlice", "merge_results", "plan_partitions", "split_dataset"]


@dataclass(frozen=True)
class DataSlice:
    """The records of one partition. Unlike a `DataSet` (whose lookups are mapping proxies) it
    pickles, so it can travel to a worker process; `dataset()` rebuilds the lookups there."""

    index: int
    customers: tuple[Customer, ...] = ()
    sites: tuple[Site, ...] = ()
    accounts: tuple[Account, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    quantity_changes: tuple[QuantityChange, ...] = ()
    one_shots: tuple[OneShot, ...] = ()
    usage: tuple[UsageRecord, ...] = ()
    discounts: tuple[DiscountGrant, ...] = ()

    @property
    def weight(self) -> int:
        return len(self.subscriptions)

    def dataset(self) -> DataSet:
        return DataSet(**{f.name: getattr(self, f.name) for f in fields(self) if f.name != "index"})


class _Groups:
    """Union-find over customer ids."""

    def __init__(self, ids: Iterable[str]) -> None:
        self.parent = {i: i for i in ids}

    def find(self, x: str) -> str:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = sorted((ra, rb))
            self.parent[hi] = lo


def plan_partitions(data: DataSet, partitions: int) -> list[tuple[str, ...]]:
    """Customer ids of each partition (at most `partitions`, none empty), each sorted."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, not {partitions}")
    groups = _Groups(c.customer_id for c in data.customers)
    for subs in data.subscriptions_by_line.values():
        if len(subs) > 1:  # a line that moved: rare, so the common case costs one len()
            for other in subs[1:]:
                groups.union(subs[0].customer_id, other.customer_id)
    members: dict[str, list[str]] = {}
    for c in data.customers:
        members.setdefault(groups.find(c.customer_id), []).append(c.customer_id)
    by_customer = data.subscriptions_by_customer
    weight = {
        root: sum(len(by_customer.get(cid, ())) for cid in ids) or 1 for root, ids in members.items()
    }
    bins: list[list[str]] = [[] for _ in range(partitions)]
    heap = [(0, i) for i in range(partitions)]
    for root in sorted(members, key=lambda r: (-weight[r], r)):
        load, i = heapq.heappop(heap)
        bins[i].extend(members[root])
        heapq.heappush(heap, (load + weight[root], i))
    planned = [tuple(sorted(b)) for b in bins if b]
    return sorted(planned)


def split_dataset(data: DataSet, partitions: int) -> list[DataSlice]:
    """The data set cut into at most `partitions` customer partitions, plus one partition of
    the usage records whose line is on no subscription (when there are any)."""
    plan = plan_partitions(data, partitions) if data.customers else []
    where = {cid: i for i, ids in enumerate(plan) for cid in ids}
    count = len(plan) + 1  # the last one: records on lines of no subscription
    buckets: dict[str, list[list[object]]] = {
        f.name: [[] for _ in range(count)] for f in fields(DataSlice) if f.name != "index"
    }

    def put(table: str, items: Sequence[object], key: str) -> None:
        bucket = buckets[table]
        owner = attrgetter(key)
        for item in items:
            bucket[where[owner(item)]].append(item)

    put("customers", data.customers, "customer_id")
    put("sites", data.sites, "customer_id")
    put("accounts", data.accounts, "customer_id")
    put("subscriptions", data.subscriptions, "customer_id")
    put("one_shots", data.one_shots, "customer_id")
    put("discounts", data.discounts, "customer_id")
    # Lookups through the data set's own indexes: no table over every subscription or line
    # is built for the few quantity changes, nor when there is no usage.
    subscriptions = data.subscriptions_by_id
    for change in data.quantity_changes:
        buckets["quantity_changes"][where[subscriptions[change.subscription_id].customer_id]].append(change)
    by_line = data.subscriptions_by_line
    for record in data.usage:
        subs = by_line.get(record.line_id)
        buckets["usage"][where[subs[0].customer_id] if subs else count - 1].append(record)
    slices = [
        DataSlice(i, **{name: tuple(lists[i]) for name, lists in buckets.items()})  # type: ignore[arg-type]
        for i in range(count)
    ]
    if not slices[-1].usage:
        slices.pop()
    return slices


def merge_results(
    results: Iterable[RunResult], *, ruleset: str, period: str, currency: str
) -> RunResult:
    """One run's result from its partitions' results (see the module contract)."""
    parts = list(results)
    invoices = [inv for r in parts for inv in r.invoices]
    invoices.sort(key=lambda inv: inv.customer_id)  # stable: a customer's own order is kept
    rejected = [rec for r in parts for rec in r.usage_rejected]
    rejected.sort(key=lambda rec: (rec.record_id, rec.line_id, rec.reason))
    return RunResult(
        ruleset=ruleset,
        period=period,
        currency=currency,
        invoices=tuple(invoices),
        usage_read=sum(r.usage_read for r in parts),
        usage_billed=sum(r.usage_billed for r in parts),
        usage_outside_period=sum(r.usage_outside_period for r in parts),
        usage_rejected=tuple(rejected),
        usage_unanswered=sum(r.usage_unanswered for r in parts),
    )
