"""Anomalies a billing lead reviews before emission (docs: /work/shared/domain.md, "The billing
cycle"), found from the data set and a run's result.

Contract:
- `find_anomalies(catalogue, data, period, result, previous=None, config=None)` is pure: it
  runs the checks of `CHECKS` in that order and returns their anomalies, each check's in a
  stable order (customer, line, record or invoice key), so the same inputs give the same list.
- Every anomaly names the check that found it (`rule`, "anomaly.<check>"), its `kind` (what
  KPIs count), and the customer, subscription, record or invoice it is about.
- Severities: "error" (money is wrong or lost: phantom lines, unrated or duplicate records,
  invalid legal identifiers, a discount past its window), "warning" (to look at before emission),
  "info" (housekeeping: expired grants, records that a later run bills).
- Usage dates are local dates in the ruleset's time zone, as the billing run reads them; the
  run of period P bills usage of P-1 (its "usage period").
- Legal identifiers are checked with python-stdnum, for the customers invoiced in the run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta, tzinfo
from decimal import Decimal
from functools import cached_property
from typing import Any

from stdnum import iban as stdnum_iban
from stdnum.eu import vat as stdnum_vat
from stdnum.exceptions import ValidationError
from stdnum.fr import siren as stdnum_siren

from dsl.exact import Fraction
from engine.calendar import Period, add_months, get_zone, month_period
from engine.catalogue import EU_COUNTRIES, Catalogue
from engine.evaluator.discounts import Grant
from engine.invoice import Invoice, InvoiceLine, RunResult
from engine.model import Customer, DataSet, Subscription, UsageRecord

__all__ = ["CHECKS", "Anomaly", "AnomalyConfig", "find_anomalies"]

ERROR, WARNING, INFO = "error", "warning", "info"
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Anomaly:
    kind: str
    message: str
    rule: str
    customer_id: str | None = None
    subscription_id: str | None = None
    record_id: str | None = None
    invoice_key: str | None = None
    severity: str = WARNING  # "error" | "warning" | "info"

    def as_dict(self) -> dict[str, str | None]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "rule": self.rule,
            "message": self.message,
            "customer_id": self.customer_id,
            "subscription_id": self.subscription_id,
            "record_id": self.record_id,
            "invoice_key": self.invoice_key,
        }


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, Fraction):
        return Decimal(value.numerator) / Decimal(value.denominator)
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return Decimal(value)
    return None


@dataclass(frozen=True)
class AnomalyConfig:
    """Thresholds of the checks.

    - `variation_percent` and `variation_amount`: an invoice is flagged when it moves by more
      than both from the previous period's invoice with the same key;
    - `idle_months`: a subscription with a line and no usage record for that many whole months
      (up to the end of the usage period) is flagged.
    """

    variation_percent: Decimal = Decimal(30)
    variation_amount: Decimal = Decimal(50)
    idle_months: int = 2

    def __post_init__(self) -> None:
        if self.idle_months < 1:
            raise ValueError(f"idle_months must be at least 1, not {self.idle_months}")
        if self.variation_percent < 0 or self.variation_amount < 0:
            raise ValueError("variation thresholds must not be negative")

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> AnomalyConfig:
        """Thresholds from the ruleset's settings, defaults for those not given:
        `anomaly_variation_percent 30%` (a percentage), `anomaly_variation_amount 50 EUR`,
        `anomaly_idle_months 2 months` (or a plain number)."""
        values: dict[str, Any] = {}
        percent = _decimal(settings.get("anomaly_variation_percent"))
        if percent is not None:  # a percentage is held as a share: 30% is 3/10
            values["variation_percent"] = percent * 100
        amount = _decimal(settings.get("anomaly_variation_amount"))
        if amount is not None:
            values["variation_amount"] = amount
        months = _decimal(settings.get("anomaly_idle_months"))
        if months is not None:
            values["idle_months"] = int(months)
        return cls(**values)


@dataclass
class CheckContext:
    """What every check reads; derived lookups are computed once, on first use."""

    catalogue: Catalogue
    data: DataSet
    period: Period  # the run's month
    result: RunResult
    previous: RunResult | None
    config: AnomalyConfig
    last_use: Mapping[str, date] = field(default_factory=dict)  # lines used outside `data`

    @property
    def usage_period(self) -> Period:
        return Period(add_months(self.period.start, -1), self.period.start)

    @cached_property
    def _zone(self) -> tzinfo:
        return get_zone(self.catalogue.timezone)

    def day(self, record: UsageRecord) -> date:
        """The record's local date in the ruleset's time zone (engine.calendar.local_date)."""
        return record.start_time.astimezone(self._zone).date()

    @cached_property
    def dated_usage(self) -> list[tuple[date, UsageRecord]]:
        return [(self.day(r), r) for r in self.data.usage]

    @cached_property
    def period_usage(self) -> list[UsageRecord]:
        """Records of the usage period, by record id (the run's order)."""
        p = self.usage_period
        return sorted(
            (r for d, r in self.dated_usage if p.start <= d < p.end), key=lambda r: r.record_id
        )

    @cached_property
    def phantom_ids(self) -> frozenset[str]:
        return frozenset(
            r.record_id
            for r in self.period_usage
            if self.data.subscription_for_line(r.line_id, self.day(r)) is None
        )

    @cached_property
    def invoiced_customers(self) -> frozenset[str]:
        return frozenset(i.customer_id for i in self.result.invoices)

    def owner(self, record: UsageRecord) -> Subscription | None:
        return self.data.subscription_for_line(record.line_id, self.day(record))


Check = Callable[[CheckContext], Iterable[Anomaly]]


def _count(items: Sequence[object], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


# ------------------------------------------------------------------------------------ usage
def _nearest(subs: Sequence[Subscription], day: date) -> Subscription | None:
    """The subscription whose service dates come closest to `day` (the line's last holder
    before it, or the next one)."""

    def gap(s: Subscription) -> int:
        if day < s.start_date:
            return (s.start_date - day).days
        return 0 if s.end_date is None or day <= s.end_date else (day - s.end_date).days

    return min(subs, key=lambda s: (gap(s), s.start_date), default=None)


def phantom_lines(ctx: CheckContext) -> Iterator[Anomaly]:
    """Records on a line with no subscription in service on their date ("phantom trunk": a
    service that works but is never billed). One anomaly per line."""
    by_line: dict[str, list[UsageRecord]] = {}
    for r in ctx.period_usage:
        if r.record_id in ctx.phantom_ids:
            by_line.setdefault(r.line_id, []).append(r)
    for line in sorted(by_line):
        records = sorted(by_line[line], key=lambda r: (r.start_time, r.record_id))
        first, last = ctx.day(records[0]), ctx.day(records[-1])
        nearest = _nearest(ctx.data.subscriptions_by_line.get(line, ()), first)
        where = (
            f"; the line belongs to subscription {nearest.subscription_id} of {nearest.customer_id} "
            f"from {nearest.start_date.isoformat()} to {nearest.end_date.isoformat() if nearest.end_date else 'open-ended'}"
            if nearest
            else "; no subscription has this line"
        )
        yield Anomaly(
            kind="phantom_line",
            rule="anomaly.phantom_line",
            severity=ERROR,
            message=(
                f"line {line}: {_count(records, 'usage record')} from {first.isoformat()} to {last.isoformat()} "
                f"with no subscription in service (service used, never billed){where}"
            ),
            customer_id=nearest.customer_id if nearest else None,
            subscription_id=nearest.subscription_id if nearest else None,
            record_id=records[0].record_id,
        )


def idle_subscriptions(ctx: CheckContext) -> Iterator[Anomaly]:
    """Subscriptions with a line (usage expected) in service over the last `idle_months` months
    of usage (up to the end of the usage period) without a single record on the line."""
    end = ctx.usage_period.end
    window = Period(add_months(end, -ctx.config.idle_months), end)
    used = {r.line_id for d, r in ctx.dated_usage if window.start <= d < window.end}
    used.update(line for line, day in ctx.last_use.items() if window.start <= day < window.end)
    for sub in sorted(ctx.data.subscriptions, key=lambda s: (s.customer_id, s.subscription_id)):
        if sub.line_id is None or sub.line_id in used:
            continue
        if sub.start_date > window.start or not sub.is_active_on(window.last_day):
            continue
        yield Anomaly(
            kind="idle_subscription",
            rule="anomaly.idle_subscription",
            severity=WARNING,
            message=(
                f"subscription {sub.subscription_id} ({sub.product}, line {sub.line_id}) in service "
                f"since {sub.start_date.isoformat()} has no usage from {window.start.isoformat()} to "
                f"{window.last_day.isoformat()} ({ctx.config.idle_months} months): service not provisioned or unused?"
            ),
            customer_id=sub.customer_id,
            subscription_id=sub.subscription_id,
        )


def unrated_usage(ctx: CheckContext) -> Iterator[Anomaly]:
    """Records the run rejected for another reason than a phantom line: no zone for the
    destination, no price for the zone or product, no destination... (never billed at 0)."""
    rejected = {
        r.record_id: r for r in ctx.result.usage_rejected if r.record_id not in ctx.phantom_ids
    }
    if not rejected:
        return
    records = {r.record_id: r for r in ctx.period_usage if r.record_id in rejected}
    for record_id in sorted(rejected):
        rej = rejected[record_id]
        record = records.get(record_id)
        sub = ctx.owner(record) if record is not None else None
        yield Anomaly(
            kind="unrated_usage",
            rule="anomaly.unrated_usage",
            severity=ERROR,
            message=f"record {record_id} on line {rej.line_id} is not billed: {rej.reason}",
            customer_id=sub.customer_id if sub else None,
            subscription_id=sub.subscription_id if sub else None,
            record_id=record_id,
        )


def duplicate_usage(ctx: CheckContext) -> Iterator[Anomaly]:
    """Records of the usage period with the same line, start time, destination and quantity:
    the same call logged twice is billed twice. One anomaly per group, on its second record."""
    groups: dict[tuple[object, ...], list[UsageRecord]] = {}
    for r in ctx.period_usage:
        groups.setdefault((r.line_id, r.start_time, r.destination, r.quantity), []).append(r)
    dups = [g for g in groups.values() if len(g) > 1]
    for group in sorted(dups, key=lambda g: g[0].record_id):
        first = group[0]
        sub = ctx.owner(first)
        ids = ", ".join(r.record_id for r in group)
        yield Anomaly(
            kind="duplicate_usage",
            rule="anomaly.duplicate_usage",
            severity=ERROR,
            message=(
                f"records {ids} on line {first.line_id} are the same call ({first.start_time.isoformat()}, "
                f"{first.destination or 'no destination'}, quantity {first.quantity}): billed {len(group)} times"
            ),
            customer_id=sub.customer_id if sub else None,
            subscription_id=sub.subscription_id if sub else None,
            record_id=group[1].record_id,
        )


def usage_outside_period(ctx: CheckContext) -> Iterator[Anomaly]:
    """Records dated outside the usage period, per line: before it they are late (no run bills
    them any more: warning), after it a later run bills them (info)."""
    p = ctx.usage_period
    groups: dict[tuple[str, bool], list[UsageRecord]] = {}
    for d, r in ctx.dated_usage:
        if not (p.start <= d < p.end):
            groups.setdefault((r.line_id, d < p.start), []).append(r)
    for line, late in sorted(groups, key=lambda k: (k[0], not k[1])):
        records = sorted(groups[(line, late)], key=lambda r: (r.start_time, r.record_id))
        first, last = ctx.day(records[0]), ctx.day(records[-1])
        sub = ctx.owner(records[0])
        when = (
            f"before the usage period {p.label()}: no run bills them any more"
            if late
            else f"after the usage period {p.label()}: a later run bills them"
        )
        yield Anomaly(
            kind="usage_outside_period",
            rule="anomaly.usage_outside_period",
            severity=WARNING if late else INFO,
            message=f"line {line}: {_count(records, 'record')} from {first.isoformat()} to {last.isoformat()}, {when}",
            customer_id=sub.customer_id if sub else None,
            subscription_id=sub.subscription_id if sub else None,
            record_id=records[0].record_id,
        )


# --------------------------------------------------------------------------------- invoices
def invoice_variation(ctx: CheckContext) -> Iterator[Anomaly]:
    """Invoices whose total excl. VAT moves by more than `variation_percent` % AND
    `variation_amount` from the previous run's invoice with the same key (no previous run: no
    check)."""
    if ctx.previous is None:
        return
    before = {inv.invoice_key: inv for inv in ctx.previous.invoices}
    limit_pct, limit_amount = ctx.config.variation_percent, ctx.config.variation_amount
    for inv in sorted(ctx.result.invoices, key=lambda i: i.invoice_key):
        old = before.get(inv.invoice_key)
        if old is None:
            continue
        delta = inv.total_excl_vat - old.total_excl_vat
        if abs(delta) <= limit_amount:
            continue
        pct = None if old.total_excl_vat == 0 else abs(delta) * 100 / abs(old.total_excl_vat)
        if pct is not None and pct <= limit_pct:
            continue
        pct_text = (
            "from zero"
            if pct is None
            else f"{'+' if delta > 0 else '-'}{pct.quantize(Decimal('0.1'))} %"
        )
        yield Anomaly(
            kind="invoice_variation",
            rule="anomaly.invoice_variation",
            severity=WARNING,
            message=(
                f"invoice {inv.invoice_key}: {inv.total_excl_vat} {inv.currency} excl. VAT against "
                f"{old.total_excl_vat} in {ctx.previous.period} ({'+' if delta > 0 else ''}{delta}, {pct_text}; "
                f"thresholds {limit_pct} % and {limit_amount})"
            ),
            customer_id=inv.customer_id,
            invoice_key=inv.invoice_key,
        )


def invoice_totals(ctx: CheckContext) -> Iterator[Anomaly]:
    """Invoices totalling zero or less (a credit note to confirm, or a forgotten charge)."""
    for inv in sorted(ctx.result.invoices, key=lambda i: i.invoice_key):
        if inv.total_incl_vat > 0:
            continue
        zero = inv.total_incl_vat == 0
        yield Anomaly(
            kind="zero_invoice" if zero else "negative_invoice",
            rule="anomaly.invoice_total",
            severity=WARNING,
            message=(
                f"invoice {inv.invoice_key} totals {inv.total_incl_vat} {inv.currency} incl. VAT "
                + (
                    "(nothing to bill: should it be issued?)"
                    if zero
                    else "(a credit note: check the credits)"
                )
                + f", {len(inv.lines)} line{'s' if len(inv.lines) != 1 else ''}"
            ),
            customer_id=inv.customer_id,
            invoice_key=inv.invoice_key,
        )


# ------------------------------------------------------------------------ legal identifiers
def _invalid(module: Any, value: str) -> str | None:
    try:
        module.validate(value)
    except ValidationError as exc:
        return str(exc)
    return None


def _vat_country(number: str) -> str:
    prefix = stdnum_vat.compact(number)[:2].upper()
    return "GR" if prefix == "EL" else prefix


def legal_identifiers(ctx: CheckContext) -> Iterator[Anomaly]:
    """SIREN of French customers (mandatory), VAT numbers (valid, of the customer's country;
    needed by EU customers abroad for reverse charge), IBANs when given; python-stdnum checks
    them. Only customers invoiced in the run are checked."""
    seller = ctx.catalogue.country.upper()
    for c in sorted(ctx.data.customers, key=lambda c: c.customer_id):
        if c.customer_id not in ctx.invoiced_customers:
            continue
        yield from _customer_ids(c, seller, "reverse_charge" in ctx.catalogue.taxes)


def _customer_ids(c: Customer, seller: str, reverse_charge: bool) -> Iterator[Anomaly]:
    country = c.country.upper()
    who = f"customer {c.customer_id} ({c.legal_name})"
    if country == "FR":
        if not c.siren:
            yield Anomaly(
                "invalid_siren",
                f"{who}: SIREN missing (mandatory for a French customer)",
                "anomaly.siren",
                c.customer_id,
                severity=ERROR,
            )
        elif (why := _invalid(stdnum_siren, c.siren)) is not None:
            yield Anomaly(
                "invalid_siren",
                f"{who}: invalid SIREN {c.siren!r} ({why})",
                "anomaly.siren",
                c.customer_id,
                severity=ERROR,
            )
    if c.vat_number:
        why = _invalid(stdnum_vat, c.vat_number)
        if why is None and _vat_country(c.vat_number) != country:
            why = f"a VAT number of {_vat_country(c.vat_number)} for a customer in {country}"
        if why is not None:
            yield Anomaly(
                "invalid_vat_number",
                f"{who}: invalid VAT number {c.vat_number!r} ({why})",
                "anomaly.vat_number",
                c.customer_id,
                severity=ERROR,
            )
    elif country in EU_COUNTRIES and country != seller:
        effect = (
            "invoiced with domestic VAT instead of reverse charge"
            if reverse_charge
            else "intra-EU invoices need the buyer's VAT number"
        )
        yield Anomaly(
            "invalid_vat_number",
            f"{who} in {country}: VAT number missing ({effect})",
            "anomaly.vat_number",
            c.customer_id,
            severity=WARNING,
        )
    if c.iban and (why := _invalid(stdnum_iban, c.iban)) is not None:
        yield Anomaly(
            "invalid_iban",
            f"{who}: invalid IBAN {c.iban!r} ({why})",
            "anomaly.iban",
            c.customer_id,
            severity=ERROR,
        )


# -------------------------------------------------------------------- discounts, commitments
_DISCOUNT_RULE = re.compile(r"^discount (\S+) \(")
_GRANT_SOURCE = re.compile(r"\(data: discounts grant ([^)]+)\)$")
_AUTO_SOURCE = re.compile(r"\(automatic for subscription ([^)]+)\)$")


def _line_windows(
    ctx: CheckContext, inv: Invoice, line: InvoiceLine, code: str
) -> list[Period | None]:
    """The windows of the grants behind a discount line, from its trace (else every grant of
    that discount for the customer)."""
    discount = ctx.catalogue.discounts[code]
    for step in line.trace:
        if step.rule != f"discount {code}":
            continue
        if (m := _GRANT_SOURCE.search(step.text)) and (
            g := ctx.data.discounts_by_id.get(m.group(1))
        ):
            return [Grant(discount, g.start_date, g.subscription_id, "").window]
        if (m := _AUTO_SOURCE.search(step.text)) and (
            s := ctx.data.subscriptions_by_id.get(m.group(1))
        ):
            return [Grant(discount, s.start_date, s.subscription_id, "").window]
    return [
        Grant(discount, g.start_date, g.subscription_id, "").window
        for g in ctx.data.discounts_by_customer.get(inv.customer_id, ())
        if g.discount == code
    ]


def discount_after_window(ctx: CheckContext) -> Iterator[Anomaly]:
    """Discount lines whose service period starts after the end of the discount's window (a
    discount that should have ended but still applies): the window comes from the catalogue's
    discount and the grant named in the line's trace."""
    for inv in sorted(ctx.result.invoices, key=lambda i: i.invoice_key):
        for line in inv.lines:
            if line.kind not in ("discount", "invoice_discount") or line.period_start is None:
                continue
            m = _DISCOUNT_RULE.match(line.rule)
            if m is None or m.group(1) not in ctx.catalogue.discounts:
                continue
            code = m.group(1)
            if ctx.catalogue.discounts[code].permanent:
                continue
            windows = _line_windows(ctx, inv, line, code)
            if not windows or any(w is not None and line.period_start < w.end for w in windows):
                continue
            ends = sorted(w.last_day.isoformat() for w in windows if w is not None)
            yield Anomaly(
                kind="expired_discount",
                rule="anomaly.discount_after_window",
                severity=ERROR,
                message=(
                    f"invoice {inv.invoice_key}: discount {code} ({line.amount}) applied from "
                    f"{line.period_start.isoformat()} but its window ended on {', '.join(ends) or 'its start'}"
                ),
                customer_id=inv.customer_id,
                subscription_id=line.subscription_id,
                invoice_key=inv.invoice_key,
            )


def expired_grants(ctx: CheckContext) -> Iterator[Anomaly]:
    """Discount grants whose window ended before the run's period but that are still in the
    data (housekeeping: they no longer apply to charges of this period)."""
    for g in sorted(ctx.data.discounts, key=lambda g: (g.customer_id, g.grant_id)):
        discount = ctx.catalogue.discounts.get(g.discount)
        if discount is None or discount.permanent:
            continue
        window = Grant(discount, g.start_date, g.subscription_id, "").window
        if window is not None and window.end > ctx.period.start:
            continue
        ended = window.last_day.isoformat() if window is not None else g.start_date.isoformat()
        yield Anomaly(
            kind="expired_grant",
            rule="anomaly.expired_grant",
            severity=INFO,
            message=f"grant {g.grant_id} of {g.discount} to {g.customer_id} ended on {ended} and is still in the data",
            customer_id=g.customer_id,
            subscription_id=g.subscription_id,
        )


def ended_commitments(ctx: CheckContext) -> Iterator[Anomaly]:
    """Subscriptions still open whose commitment term, without tacit renewal, ended on or
    before the period start: renew, re-commit or terminate (nobody decided)."""
    for sub in sorted(ctx.data.subscriptions, key=lambda s: (s.customer_id, s.subscription_id)):
        if sub.commitment is None or sub.end_date is not None or sub.start_date > ctx.period.start:
            continue
        term = ctx.catalogue.commitments.get(sub.commitment)
        if term is None or term.renewal_months or term.duration_months <= 0:
            continue
        end = add_months(sub.effective_commitment_start, term.duration_months)
        if end > ctx.period.start:
            continue
        yield Anomaly(
            kind="commitment_ended",
            rule="anomaly.commitment_ended",
            severity=WARNING,
            message=(
                f"subscription {sub.subscription_id} ({sub.product}): commitment {term.name} "
                f"({term.duration_months} months from {sub.effective_commitment_start.isoformat()}, no tacit renewal) "
                f"ended on {(end - _ONE_DAY).isoformat()}; no end date and no new commitment"
            ),
            customer_id=sub.customer_id,
            subscription_id=sub.subscription_id,
        )


CHECKS: tuple[Check, ...] = (
    phantom_lines,
    idle_subscriptions,
    unrated_usage,
    duplicate_usage,
    usage_outside_period,
    invoice_variation,
    invoice_totals,
    legal_identifiers,
    discount_after_window,
    expired_grants,
    ended_commitments,
)


def find_anomalies(
    catalogue: Catalogue,
    data: DataSet,
    period: str,
    result: RunResult,
    *,
    previous: RunResult | None = None,
    config: AnomalyConfig | None = None,
    checks: Iterable[Check] = CHECKS,
    last_use: Mapping[str, date] | None = None,
) -> tuple[Anomaly, ...]:
    """Every anomaly of the run of `period` (see the module contract). `last_use`: the last
    day (ruleset time zone) each line was used according to records not in `data` (a store
    reads back only the usage the run needs; the idle check looks further back)."""
    ctx = CheckContext(
        catalogue=catalogue,
        data=data,
        period=month_period(period),
        result=result,
        previous=previous,
        config=config or AnomalyConfig.from_settings(catalogue.settings),
        last_use=last_use or {},
    )
    return tuple(a for check in checks for a in check(ctx))
