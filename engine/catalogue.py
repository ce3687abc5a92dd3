"""Lower a checked ruleset into the catalogue the billing run reads.

`build_catalogue(program)` turns declarations into immutable domain values (`Product`,
`PriceBook`, `Discount`, `CommitmentTerm`, `InvoicingRule`, `VatRate`...). Prices, conditions and
fee formulas stay as tree nodes: the run evaluates them through a `Pricer` back end (compiled
closures or the reference interpreter), so both back ends read the same tree. Every value keeps
the span of the rule that declared it, for traces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from dsl import nodes as n
from dsl.exact import Fraction
from dsl.loader import Program
from engine.calendar import Periodicity
from engine.evaluator.reference import eval_expr
from engine.evaluator.values import UNITS, Value
from engine.money import RoundingMode, RoundingRule
from engine.proration import ProrationMethod, ProrationPolicy

EU_COUNTRIES = frozenset(
    ["AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"]
)

DEFAULT_PRORATION = ProrationPolicy("actual_days", ProrationMethod.ACTUAL_DAYS)


def where(span: n.Span) -> str:
    return f"{span.file}:{span.line}"


@dataclass(frozen=True)
class VatRate:
    name: str
    rate: Decimal  # percent
    category: str
    mention: str | None
    span: n.Span


@dataclass(frozen=True)
class Product:
    code: str
    label: str
    kind: str  # recurring | usage | one_shot
    family: str | None
    billing: str  # in_advance | in_arrears
    periodicity: Periodicity
    anchor: int
    vat: str
    accounting: str | None
    cost: n.Expr | None
    proration: ProrationPolicy
    proration_span: n.Span | None
    unit: str | None  # record unit of a usage product
    rating: str | None
    pricing: n.Pricing | None
    price_span: n.Span
    span: n.Span


@dataclass(frozen=True)
class PriceVersion:
    """A price in force from `since` (None: from the start), for everyone or new subscribers."""

    since: date | None
    new_only: bool
    pricing: n.Pricing
    span: n.Span
    label: str | None = None


@dataclass(frozen=True)
class PriceBook:
    """Every price of the ruleset: (price list or None for the base, product) -> versions."""

    versions: Mapping[tuple[str | None, str], tuple[PriceVersion, ...]]
    segment_lists: Mapping[str, str]  # customer segment -> price list
    change_dates: Mapping[str, tuple[date, ...]]  # product -> dates where a version starts

    def pricing_on(
        self, pricelist: str | None, product: str, on: date, subscription_start: date
    ) -> tuple[PriceVersion | None, str | None]:
        """The version in force on `on`; returns it with the list it came from."""
        for lst in (pricelist, None) if pricelist else (None,):
            versions = self.versions.get((lst, product))
            if not versions:
                continue
            chosen = None
            for v in versions:
                if v.since is not None and v.since > on:
                    break
                if v.new_only and v.since is not None and subscription_start < v.since:
                    continue
                chosen = v
            if chosen is not None:
                return chosen, lst
        return None, None


@dataclass(frozen=True)
class Discount:
    code: str
    label: str
    percent: n.Expr | None
    fixed: n.Expr | None
    target: n.Target
    months: int | None
    days: int | None
    until: date | None
    permanent: bool
    when: n.Expr | None
    order: int
    automatic: bool
    allow_negative: bool
    span: n.Span


@dataclass(frozen=True)
class CommitmentTerm:
    name: str
    label: str
    duration_months: int
    renewal_months: int | None
    termination_fee: n.Expr | None
    cap: n.Expr | None
    minimum_spend: n.Expr | None
    minimum_spend_target: n.Target | None
    span: n.Span
    fee_span: n.Span | None


@dataclass(frozen=True)
class InvoicingRule:
    segments: tuple[str, ...]
    group_by: tuple[str, ...]
    order_by: tuple[str, ...]
    series: str | None
    span: n.Span


@dataclass(frozen=True)
class ZoneTable:
    name: str
    prefixes: Mapping[str, str]  # digits -> zone
    max_len: int
    span: n.Span

    def zone_of(self, digits: str) -> str | None:
        for k in range(min(self.max_len, len(digits)), 0, -1):
            z = self.prefixes.get(digits[:k])
            if z is not None:
                return z
        return None


@dataclass(frozen=True)
class TaxRule:
    kind: str  # reverse_charge | export
    mention: str
    category: str
    span: n.Span


@dataclass(frozen=True)
class Rounding:
    unit_price: RoundingRule | None
    line: RoundingRule
    vat: RoundingRule
    line_span: n.Span | None = None
    vat_span: n.Span | None = None


@dataclass(frozen=True)
class Catalogue:
    name: str
    root: str
    currency: str
    country: str
    timezone: str
    settings: Mapping[str, Value]
    consts: Mapping[str, Value]
    products: Mapping[str, Product]
    families: Mapping[str, str]
    vat_rates: Mapping[str, VatRate]
    taxes: Mapping[str, TaxRule]
    prices: PriceBook
    discounts: Mapping[str, Discount]
    commitments: Mapping[str, CommitmentTerm]
    invoicing: tuple[InvoicingRule, ...]
    zones: Mapping[str, ZoneTable]
    rounding: Rounding
    ratings: Mapping[str, n.RatingDecl] = field(default_factory=dict)
    rate_decks: Mapping[str, n.RateDeckDecl] = field(default_factory=dict)
    time_bands: Mapping[str, n.TimeBandsDecl] = field(default_factory=dict)

    def invoicing_for(self, segment: str | None) -> InvoicingRule:
        default = None
        for rule in self.invoicing:
            if segment is not None and segment in rule.segments:
                return rule
            if not rule.segments and default is None:
                default = rule
        return default or InvoicingRule((), ("customer",), ("site", "family", "product"), None, n.NO_SPAN)

    def pricelist_for(self, explicit: str | None, segment: str | None) -> str | None:
        if explicit:
            return explicit
        if segment is not None:
            return self.prices.segment_lists.get(segment)
        return None


def _text(block: n.BlockDecl | n.InvoicingDecl | n.TaxDecl, key: str) -> str | None:
    for a in block.attrs:
        if isinstance(a, n.TextAttr) and a.key == key:
            return a.value
    return None


def _duration(e: n.Expr | None, const_nodes: Mapping[str, n.Expr]) -> tuple[int, str] | None:
    """A duration attribute as (count, 'months' | 'days'), following constants."""
    if e is None:
        return None
    node: n.Expr = e
    seen: set[str] = set()
    while isinstance(node, n.Name) and node.id in const_nodes and node.id not in seen:
        seen.add(node.id)
        node = const_nodes[node.id]
    if isinstance(node, n.QuantityLit) and UNITS[node.unit][0] in ("months", "days"):
        value = eval_expr(node, {})
        assert isinstance(value, Fraction)
        return int(value), UNITS[node.unit][0]
    return None


def _eval_consts(decls: Mapping[str, n.Expr]) -> dict[str, Value]:
    values: dict[str, Value] = {}

    def value(name: str, stack: tuple[str, ...]) -> Value:
        if name in values:
            return values[name]
        expr = decls[name]
        deps = {x.id for x in _names(expr) if x.id in decls and x.id not in stack}
        for dep in sorted(deps):
            value(dep, (*stack, name))
        values[name] = eval_expr(expr, values)
        return values[name]

    for name in sorted(decls):
        value(name, ())
    return values


def _names(e: n.Expr) -> list[n.Name]:
    if isinstance(e, n.Name):
        return [e]
    out: list[n.Name] = []
    for child in (
        getattr(e, "left", None),
        getattr(e, "right", None),
        getattr(e, "operand", None),
    ):
        if child is not None:
            out.extend(_names(child))
    if isinstance(e, n.Call):
        for a in e.args:
            out.extend(_names(a))
    return out


def build_catalogue(program: Program) -> Catalogue:
    const_nodes = {d.name: d.expr for d in program.decls() if isinstance(d, n.Const)}
    consts = _eval_consts(const_nodes)
    settings: dict[str, Value] = {}
    name = program.root
    for d in program.decls():
        if isinstance(d, n.RulesetHeader):
            name = d.name
            for s in d.settings:
                settings[s.key] = s.value.id if isinstance(s.value, n.Name) else eval_expr(s.value, consts)

    prorations: dict[str, ProrationPolicy] = {}
    proration_spans: dict[str, n.Span] = {}
    for d in program.decls():
        if isinstance(d, n.ProrationDecl):
            method = d.word("method") or "actual_days"
            minimum = _duration(d.expr("minimum"), const_nodes)
            prorations[d.name] = ProrationPolicy(
                d.name, ProrationMethod(method), minimum[0] if minimum and minimum[1] == "days" else 0
            )
            proration_spans[d.name] = d.span
    default_proration_name = settings.get("default_proration")
    default_proration = (
        prorations.get(str(default_proration_name), DEFAULT_PRORATION)
        if default_proration_name
        else DEFAULT_PRORATION
    )

    families = {d.name: d.label for d in program.decls() if isinstance(d, n.FamilyDecl)}
    vat_rates: dict[str, VatRate] = {}
    for d in program.decls():
        if isinstance(d, n.VatDecl):
            category = d.category or ("S" if d.rate > 0 else "Z")
            vat_rates[d.name] = VatRate(d.name, d.rate, category, d.mention, d.span)
    taxes: dict[str, TaxRule] = {}
    for d in program.decls():
        if isinstance(d, n.TaxDecl):
            default_cat = "AE" if d.kind == "reverse_charge" else "G"
            taxes[d.kind] = TaxRule(
                d.kind, _text(d, "mention") or "", _text(d, "category") or default_cat, d.span
            )

    products: dict[str, Product] = {}
    base_versions: dict[tuple[str | None, str], list[PriceVersion]] = {}
    for d in program.decls():
        if not isinstance(d, n.ProductDecl):
            continue
        per = d.first("periodicity")
        price = d.first("price")
        pricing = price.pricing if isinstance(price, n.PriceAttr) else None
        proration_name = d.word("proration")
        products[d.name] = Product(
            code=d.name,
            label=_text(d, "label") or d.name,
            kind=d.word("kind") or "recurring",
            family=d.word("family"),
            billing=d.word("billing") or "in_advance",
            periodicity=Periodicity(per.periodicity) if isinstance(per, n.PeriodicityAttr) else Periodicity.MONTHLY,
            anchor=(per.anchor or 1) if isinstance(per, n.PeriodicityAttr) else 1,
            vat=d.word("vat") or "",
            accounting=_text(d, "accounting"),
            cost=d.expr("cost"),
            proration=prorations.get(proration_name, default_proration) if proration_name else default_proration,
            proration_span=proration_spans.get(proration_name or str(default_proration_name or "")),
            unit=d.word("unit"),
            rating=d.word("rating"),
            pricing=pricing,
            price_span=price.span if price is not None else d.span,
            span=d.span,
        )
        if pricing is not None:
            base_versions.setdefault((None, d.name), []).append(
                PriceVersion(None, False, pricing, price.span if price else d.span)
            )

    segment_lists: dict[str, str] = {}
    for d in program.decls():
        if isinstance(d, n.PriceListDecl):
            for seg in d.segments:
                segment_lists.setdefault(seg, d.name)
            for e in d.entries:
                base_versions.setdefault((d.name, e.product), []).append(
                    PriceVersion(None, False, e.pricing, e.span)
                )
    change_dates: dict[str, set[date]] = {}
    for d in program.decls():
        if isinstance(d, n.EffectiveDecl):
            for entry in d.entries:
                pairs: list[tuple[str | None, n.PriceEntry]]
                if isinstance(entry, n.PriceEntry):
                    pairs = [(None, entry)]
                else:
                    pairs = [(entry.name, e) for e in entry.entries]
                for lst, e in pairs:
                    base_versions.setdefault((lst, e.product), []).append(
                        PriceVersion(d.date, d.new_only, e.pricing, e.span, d.label)
                    )
                    change_dates.setdefault(e.product, set()).add(d.date)
    versions = {
        k: tuple(sorted(v, key=lambda pv: (pv.since or date.min, pv.new_only)))
        for k, v in base_versions.items()
    }
    prices = PriceBook(
        versions,
        segment_lists,
        {p: tuple(sorted(ds)) for p, ds in change_dates.items()},
    )

    discounts: dict[str, Discount] = {}
    for d in program.decls():
        if not isinstance(d, n.DiscountDecl):
            continue
        on = d.first("on")
        until = d.first("until")
        order = d.first("order")
        flags = {a.key for a in d.attrs if isinstance(a, n.FlagAttr)}
        window = _duration(d.expr("for"), const_nodes)
        discounts[d.name] = Discount(
            code=d.name,
            label=_text(d, "label") or d.name,
            percent=d.expr("percent"),
            fixed=d.expr("fixed"),
            target=on.target if isinstance(on, n.OnAttr) else n.Target("line"),
            months=window[0] if window and window[1] == "months" else None,
            days=window[0] if window and window[1] == "days" else None,
            until=until.value if isinstance(until, n.DateAttr) else None,
            permanent="permanent" in flags,
            when=d.expr("when"),
            order=order.value if isinstance(order, n.NumberAttr) else 0,
            automatic="automatic" in flags,
            allow_negative="allow_negative" in flags,
            span=d.span,
        )

    commitments: dict[str, CommitmentTerm] = {}
    for d in program.decls():
        if not isinstance(d, n.CommitmentDecl):
            continue
        duration = _duration(d.expr("duration"), const_nodes)
        renewal = _duration(d.expr("renewal"), const_nodes)
        spend = d.first("minimum_spend")
        fee = d.first("termination_fee")
        commitments[d.name] = CommitmentTerm(
            name=d.name,
            label=_text(d, "label") or d.name,
            duration_months=duration[0] if duration else 0,
            renewal_months=renewal[0] if renewal else None,
            termination_fee=d.expr("termination_fee"),
            cap=d.expr("cap"),
            minimum_spend=spend.amount if isinstance(spend, n.MinimumSpendAttr) else None,
            minimum_spend_target=spend.target if isinstance(spend, n.MinimumSpendAttr) else None,
            span=d.span,
            fee_span=fee.span if fee is not None else None,
        )

    invoicing: list[InvoicingRule] = []
    for d in program.decls():
        if isinstance(d, n.InvoicingDecl):
            group: tuple[str, ...] = ("customer",)
            order_by: tuple[str, ...] = ("site", "family", "product")
            for a in d.attrs:
                if isinstance(a, n.KeysAttr) and a.key == "group_by":
                    group = a.values
                if isinstance(a, n.KeysAttr) and a.key == "order_by":
                    order_by = a.values
            invoicing.append(InvoicingRule(d.segments, group, order_by, _text(d, "series"), d.span))

    zones: dict[str, ZoneTable] = {}
    for d in program.decls():
        if isinstance(d, n.ZonesDecl):
            table = {_digits(e.prefix): e.zone for e in d.entries}
            zones[d.name] = ZoneTable(d.name, table, max((len(k) for k in table), default=0), d.span)

    unit_price_rule = None
    line_rule = RoundingRule(Decimal("0.01"), RoundingMode.HALF_UP)
    vat_rule = RoundingRule(Decimal("0.01"), RoundingMode.HALF_UP)
    line_span = vat_span = None
    for d in program.decls():
        if isinstance(d, n.RoundingDecl):
            for r in d.rules:
                rule = RoundingRule(r.step, RoundingMode(r.mode))
                if r.target == "unit_price":
                    unit_price_rule = rule
                elif r.target == "line":
                    line_rule, line_span = rule, r.span
                elif r.target == "vat":
                    vat_rule, vat_span = rule, r.span

    return Catalogue(
        name=name,
        root=program.root,
        currency=str(settings.get("currency", "EUR")),
        country=str(settings.get("country", "FR")),
        timezone=str(settings.get("timezone", "Europe/Paris")),
        settings=settings,
        consts=consts,
        products=products,
        families=families,
        vat_rates=vat_rates,
        taxes=taxes,
        prices=prices,
        discounts=discounts,
        commitments=commitments,
        invoicing=tuple(invoicing),
        zones=zones,
        rounding=Rounding(unit_price_rule, line_rule, vat_rule, line_span, vat_span),
        ratings={d.name: d for d in program.decls() if isinstance(d, n.RatingDecl)},
        rate_decks={d.name: d for d in program.decls() if isinstance(d, n.RateDeckDecl)},
        time_bands={d.name: d for d in program.decls() if isinstance(d, n.TimeBandsDecl)},
    )


def _digits(prefix: str) -> str:
    return "".join(ch for ch in prefix if ch.isdigit())
