"""A synthetic customer base for a ruleset, built in memory: for tests, benchmarks and demos.

`synthetic_dataset(catalogue, period, customers=..., subscriptions=..., seed=...)` returns a
`DataSet` over the catalogue's own products, deterministic for a given seed. It exercises what a
run meets in production: French customers with valid SIRENs, EU customers under reverse charge,
exports, sites and billing accounts, activations, terminations and quantity changes inside the
usage period (the month before `period`), commitments, discount grants, one-shot charges, and,
when `usage_per_line` > 0, usage records on subscribed lines, with a few phantom records (lines
on no subscription), records outside the usage period, duplicates and, when the ruleset has an
unpriced zone, unrated records. A few lines move from one customer to another inside the usage
period (one subscription ends, another customer's starts the next day on the same line).

Legal identifiers are generated valid (checked with python-stdnum); the generator never creates
the data errors that `engine.dataset.load_dataset` would refuse.

`write_dataset(data, directory)` writes a `DataSet` as a data-set directory of CSV files
(docs/dataset.md), the one `bareme import DIR` and `bareme run --data DIR` read: loading it back
with `engine.dataset.load_dataset` gives the same `DataSet` (values and written forms), with the
usage in the loader's order (start time, then record id).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from stdnum import luhn

from dsl import nodes as n
from engine.calendar import Period, add_months, get_zone, month_period
from engine.catalogue import Catalogue, Product
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

__all__ = ["synthetic_dataset", "write_dataset"]

_ONE_DAY = timedelta(days=1)
_VALID_IBANS = (
    "FR7610278450983511004748450",
    "FR7610278035644791791556881",
    "FR1420041010050500013M02606",
)
_CITIES = ("Lyon", "Paris", "Nantes", "Lille", "Bordeaux", "Marseille", "Rennes", "Grenoble")


def _siren(rng: random.Random) -> str:
    body = f"{rng.randrange(10_000_000, 99_999_999)}"
    return body + luhn.calc_check_digit(body)


def _be_vat(rng: random.Random) -> str:
    base = rng.randrange(2_000_000, 19_999_999)  # 8 digits with a leading 0 or 1
    return f"BE{base:08d}{97 - base % 97:02d}"


@dataclass(frozen=True)
class _UsageKind:
    product: Product
    destinations: tuple[str, ...]  # E.164 prefixes of priced zones (zone pricing only)
    unpriced: tuple[str, ...]  # prefixes of zones without a price


def _usage_kinds(cat: Catalogue) -> dict[str | None, list[_UsageKind]]:
    """Usage products by family, with the destination prefixes their pricing can rate."""
    out: dict[str | None, list[_UsageKind]] = {}
    for code in sorted(cat.products):
        product = cat.products[code]
        if product.kind != "usage":
            continue
        version, _ = cat.prices.pricing_on(None, code, date.max, date.min)
        pricing = version.pricing if version is not None else product.pricing
        if pricing is None:
            continue
        priced: tuple[str, ...] = ()
        unpriced: tuple[str, ...] = ()
        if isinstance(pricing, n.ZonePricing):
            table = cat.zones.get(pricing.zones)
            if table is None:
                continue
            zones = {r.zone for r in pricing.rates}
            # Prefixes long enough not to be shadowed by a longer one of another zone.
            priced = tuple(
                sorted(p for p, z in table.prefixes.items() if z in zones and len(p) >= 2)
            )
            unpriced = tuple(sorted(p for p, z in table.prefixes.items() if z not in zones))
            if not priced:
                continue
        out.setdefault(product.family, []).append(_UsageKind(product, priced, unpriced))
    return out


def _quantity(rng: random.Random, product: Product) -> Decimal:
    if isinstance(product.pricing, n.PercentPricing):
        return Decimal(1)
    if isinstance(product.pricing, n.TieredPricing):
        return Decimal(rng.choice((1, 2, 5, 8, 12, 20, 25, 40, 60)))
    return Decimal(1) if rng.random() < 0.85 else Decimal(rng.randint(2, 6))


def synthetic_dataset(
    catalogue: Catalogue,
    period: str,
    *,
    customers: int = 50,
    subscriptions: int = 150,
    usage_per_line: int = 0,
    seed: int = 1,
) -> DataSet:
    """A deterministic data set of `customers` customers and exactly `subscriptions`
    subscriptions (at least one each) over the catalogue's recurring products, for the run of
    `period` (YYYY-MM). `usage_per_line` records on average per subscribed line, in the usage
    period."""
    if customers < 1 or subscriptions < customers:
        raise ValueError("need at least one customer and one subscription per customer")
    rng = random.Random(seed)
    run = month_period(period)
    usage_period = Period(add_months(run.start, -1), run.start)
    recurring = [p for code, p in sorted(catalogue.products.items()) if p.kind == "recurring"]
    if not recurring:
        raise ValueError("the ruleset has no recurring product")
    one_shot = [p for code, p in sorted(catalogue.products.items()) if p.kind == "one_shot"]
    usage_kinds = _usage_kinds(catalogue)
    segments = sorted(
        set(catalogue.prices.segment_lists) | {s for r in catalogue.invoicing for s in r.segments}
    )
    by_account = {s for r in catalogue.invoicing for s in r.segments if "account" in r.group_by}
    commitments = sorted(catalogue.commitments)
    granted = [d for code, d in sorted(catalogue.discounts.items()) if not d.automatic]
    eu_reverse = "reverse_charge" in catalogue.taxes

    custs: list[Customer] = []
    sites: list[Site] = []
    accounts: list[Account] = []
    for i in range(1, customers + 1):
        cid = f"C{i:06d}"
        u = rng.random()
        country = "FR" if u < 0.9 or not eu_reverse else ("BE" if u < 0.96 else "CH")
        segment = rng.choice(segments) if segments and rng.random() < 0.6 else None
        custs.append(
            Customer(
                customer_id=cid,
                legal_name=f"Client {i} SAS",
                country=country,
                siren=_siren(rng) if country == "FR" else None,
                vat_number=_be_vat(rng) if country == "BE" else None,
                city=rng.choice(_CITIES),
                segment=segment,
                iban=rng.choice(_VALID_IBANS) if rng.random() < 0.3 else None,
            )
        )
        for k in range(1, 2 + (rng.random() < 0.3) + (rng.random() < 0.1)):
            sites.append(
                Site(
                    site_id=f"{cid}-S{k}", customer_id=cid, name=f"Site {k} - {rng.choice(_CITIES)}"
                )
            )
        if rng.random() < 0.15 or segment in by_account:
            for a in (1, 2):
                accounts.append(
                    Account(account_id=f"{cid}-A{a}", customer_id=cid, name=f"Centre de coûts {a}")
                )

    sites_of: dict[str, list[str]] = {}
    for site in sites:
        sites_of.setdefault(site.customer_id, []).append(site.site_id)
    accounts_of: dict[str, list[str]] = {}
    for account in accounts:
        accounts_of.setdefault(account.customer_id, []).append(account.account_id)

    # Exactly `subscriptions` subscriptions: one per customer, the rest spread unevenly.
    owners = [c.customer_id for c in custs]
    weights = [rng.paretovariate(1.5) for _ in owners]
    owners += rng.choices(owners, weights=weights, k=subscriptions - customers)
    owners.sort()

    subs: list[dict[str, object]] = []
    line_no = 0
    for k, cid in enumerate(owners, start=1):
        product = rng.choice(recurring)
        u = rng.random()
        if u < 0.08:
            start = usage_period.start + timedelta(days=rng.randrange(usage_period.days))
        else:
            start = usage_period.start - timedelta(days=rng.randint(1, 1500))
        v = rng.random()
        end: date | None = None
        if v < 0.06:
            end = max(start, usage_period.start + timedelta(days=rng.randrange(usage_period.days)))
        elif v < 0.08:
            end = max(start, usage_period.start - timedelta(days=rng.randint(1, 200)))
        elif v < 0.09:
            end = run.start + timedelta(days=rng.randrange(run.days))
        line_id = None
        if product.family in usage_kinds or (None in usage_kinds and rng.random() < 0.3):
            line_no += 1
            line_id = f"L{line_no:07d}"
        commitment = None
        commitment_start = None
        # (no commitment on percent-priced products: the engine cannot price their termination fee)
        if commitments and rng.random() < 0.4 and not isinstance(product.pricing, n.PercentPricing):
            commitment = rng.choice(commitments)
            commitment_start = start + timedelta(days=rng.choice((0, 0, 0, 30, 200)))
        subs.append(
            {
                "subscription_id": f"S{k:07d}",
                "customer_id": cid,
                "product": product.code,
                "quantity": _quantity(rng, product),
                "start_date": start,
                "end_date": end,
                "site_id": rng.choice(sites_of[cid]),
                "account_id": rng.choice(accounts_of[cid]) if cid in accounts_of else None,
                "line_id": line_id,
                "unit_price": Decimal("39.90")
                if rng.random() < 0.02 and isinstance(product.pricing, n.UnitPricing)
                else None,
                "commitment": commitment,
                "commitment_start": commitment_start,
            }
        )

    # Lines moving to another customer inside the usage period.
    last_but_one = usage_period.end - 2 * _ONE_DAY
    ended = [
        s
        for s in subs
        if s["line_id"]
        and isinstance(s["end_date"], date)
        and usage_period.start <= s["end_date"] <= last_but_one
    ]
    lined = [s for s in subs if s["line_id"] and s["end_date"] is None]
    for old in rng.sample(ended, min(len(ended), max(1, len(subs) // 500))):
        takers = [
            s
            for s in rng.sample(lined, min(len(lined), 8))
            if s["customer_id"] != old["customer_id"]
        ]
        if not takers:
            continue
        new = takers[0]
        lined.remove(new)
        new["line_id"] = old["line_id"]
        new["start_date"] = old["end_date"] + _ONE_DAY  # type: ignore[operator]
        if new["commitment_start"] is not None:
            new["commitment_start"] = new["start_date"]

    changes: list[QuantityChange] = []
    built: list[Subscription] = []
    for s in subs:
        own: tuple[QuantityChange, ...] = ()
        first, last = s["start_date"], s["end_date"]
        assert isinstance(first, date) and (last is None or isinstance(last, date))
        product = catalogue.products[str(s["product"])]
        if rng.random() < 0.03 and not isinstance(product.pricing, n.PercentPricing):
            effective = usage_period.start + timedelta(days=rng.randint(1, usage_period.days - 1))
            if first < effective and (last is None or effective <= last):
                qty = s["quantity"]
                assert isinstance(qty, Decimal)
                own = (
                    QuantityChange(
                        subscription_id=str(s["subscription_id"]),
                        effective_date=effective,
                        quantity=qty + rng.randint(1, 5),
                    ),
                )
                changes.extend(own)
        built.append(Subscription(**s, quantity_changes=own))  # type: ignore[arg-type]

    one_shots: list[OneShot] = []
    if one_shot:
        for c in custs:
            if rng.random() < 0.05:
                product = rng.choice(one_shot)
                one_shots.append(
                    OneShot(
                        charge_id=f"OS{len(one_shots) + 1:06d}",
                        customer_id=c.customer_id,
                        product=product.code,
                        date=usage_period.start + timedelta(days=rng.randrange(usage_period.days)),
                        site_id=rng.choice(sites_of[c.customer_id]),
                    )
                )

    grants: list[DiscountGrant] = []
    if granted:
        subs_of: dict[str, list[Subscription]] = {}
        for sub in built:
            subs_of.setdefault(sub.customer_id, []).append(sub)
        for c in custs:
            if rng.random() < 0.05:
                d = rng.choice(granted)
                own_subs = subs_of[c.customer_id]
                target = rng.choice(own_subs) if d.target.kind == "line" else None
                grants.append(
                    DiscountGrant(
                        grant_id=f"G{len(grants) + 1:06d}",
                        customer_id=c.customer_id,
                        discount=d.code,
                        start_date=run.start - timedelta(days=rng.randint(0, 120)),
                        subscription_id=target.subscription_id if target else None,
                    )
                )

    usage = (
        _usage(rng, catalogue, built, usage_kinds, usage_period, usage_per_line)
        if usage_per_line > 0
        else []
    )
    return DataSet(
        customers=tuple(custs),
        sites=tuple(sites),
        accounts=tuple(accounts),
        subscriptions=tuple(built),
        quantity_changes=tuple(changes),
        one_shots=tuple(one_shots),
        usage=tuple(usage),
        discounts=tuple(grants),
    )


def _timestamp(rng: random.Random, day: date, tz: str) -> datetime:
    local = datetime.combine(
        day, time(rng.randrange(7, 21), rng.randrange(60), rng.randrange(60)), get_zone(tz)
    )
    offset = local.utcoffset()
    assert offset is not None
    return local.replace(tzinfo=timezone(offset))


def _usage(
    rng: random.Random,
    catalogue: Catalogue,
    subs: Sequence[Subscription],
    kinds: dict[str | None, list[_UsageKind]],
    usage_period: Period,
    per_line: int,
) -> list[UsageRecord]:
    tz = catalogue.timezone
    records: list[UsageRecord] = []
    every_kind = [k for ks in kinds.values() for k in ks]

    def record(
        line: str, kind: _UsageKind, day: date, destination_prefix: str | None = None
    ) -> UsageRecord:
        product = kind.product
        destination = None
        if kind.destinations:
            prefix = destination_prefix or rng.choice(kind.destinations)
            destination = (
                "+"
                + prefix
                + "".join(rng.choice("0123456789") for _ in range(max(4, 11 - len(prefix))))
            )
            quantity = Decimal(rng.choice((0, 12, 45, 75, 90, 180, 600)))
        elif product.unit in ("byte", "bytes", "kB", "MB", "GB"):
            quantity = Decimal(rng.randrange(1, 3_000_000_000))
        else:
            quantity = Decimal(rng.randint(1, 5))
        return UsageRecord(
            record_id=f"U{len(records) + 1:09d}",
            line_id=line,
            product=product.code,
            start_time=_timestamp(rng, day, tz),
            quantity=quantity,
            destination=destination,
        )

    for sub in subs:
        if sub.line_id is None:
            continue
        served = sub.service_within(usage_period)
        if served is None:
            continue
        family = catalogue.products[sub.product].family
        own = kinds.get(family) or every_kind
        for _ in range(rng.randint(0, 2 * per_line)):
            kind = rng.choice(own)
            records.append(
                record(sub.line_id, kind, served.start + timedelta(days=rng.randrange(served.days)))
            )
        # a duplicate CDR (same line, time, destination, quantity)
        if rng.random() < 0.01 and records and records[-1].line_id == sub.line_id:
            dup = records[-1]
            records.append(dup.model_copy(update={"record_id": f"U{len(records) + 1:09d}"}))
    if every_kind:
        zoned = [k for k in every_kind if k.destinations]
        for p in range(max(1, len(subs) // 1000)):  # phantom lines, records outside the period
            kind = rng.choice(every_kind)
            records.append(
                record(
                    f"PHANTOM{p:04d}",
                    kind,
                    usage_period.start + timedelta(days=rng.randrange(usage_period.days)),
                )
            )
            lined = [
                s
                for s in rng.sample(list(subs), min(len(subs), 20))
                if s.line_id and s.end_date is None and s.start_date <= usage_period.start
            ]
            if lined:
                records.append(
                    record(
                        str(lined[0].line_id),
                        kind,
                        usage_period.start - timedelta(days=rng.randint(1, 40)),
                    )
                )
            unpriced = [k for k in zoned if k.unpriced]
            if unpriced and lined:
                k = unpriced[0]
                records.append(
                    record(
                        str(lined[0].line_id),
                        k,
                        usage_period.start + timedelta(days=3),
                        rng.choice(k.unpriced),
                    )
                )
    return records


def _cell(table: str, column: str, value: object) -> str:
    """The CSV text the loader reads back as ``value`` (same value, same written form)."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        text = str(value)
        if "E" in text or "e" in text or not value.is_finite():
            raise ValueError(f"{table}.{column}: {text} has no plain decimal form")
        return text
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{table}.{column}: {value} has no UTC offset")
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        if value == "" or value != value.strip():
            raise ValueError(
                f"{table}.{column}: {value!r} would not read back (empty or padded text)"
            )
        return value
    raise TypeError(f"{table}.{column}: cannot write a {type(value).__name__}")


def write_dataset(data: DataSet, directory: Path | str) -> dict[str, int]:
    """Write ``data`` as a data-set directory of UTF-8 CSV files (every column of
    docs/dataset.md, one file per table, tables without rows left out except customers);
    returns the rows written per file. The directory is created if needed; existing files of
    the data-set tables are replaced. Raises ValueError for a value the format cannot carry
    exactly (a decimal with an exponent, padded text, a naive timestamp)."""
    from engine.dataset import TABLE_COLUMNS

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    for table, columns in TABLE_COLUMNS.items():
        rows = getattr(data, table)
        for ext in ("csv", "json"):
            (out / f"{table}.{ext}").unlink(missing_ok=True)
        if not rows and table != "customers":
            continue
        with open(out / f"{table}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows([_cell(table, c, getattr(row, c)) for c in columns] for row in rows)
        written[f"{table}.csv"] = len(rows)
    return written
