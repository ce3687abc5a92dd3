"""Semantic checks of a loaded ruleset: every error, never only the first.

`check(program)` runs the passes of `CHECKS` in order; each is a pure function
`f(program, ctx) -> list[Diagnostic]` reading the program and a `Context` built once (symbol
tables, constant types and values, the ruleset's currency). The result is sorted by file (in
program order), line, column and code, without duplicates.

Codes (stable; docs/semantics.md says what the language means):

- E100 unknown name (product, family, vat, proration, zones, pricelist, discount, rating,
  rate_deck, time_bands, const, zone, expression variable or function), with "did you mean";
- E101 duplicate declaration (same kind and name), hint "first declared at file:line";
- E102 type or unit error;
- E103 product without `vat`;
- E104 discount without an end (`for`, `until`, `permanent`), or with more than one;
- E107 unreachable rule (tiers out of order, a tier after `above`, an effective block that
  changes nothing, a discount for 0 months or whose condition is always false);
- E108 overlapping rules (one product twice in a price list or effective block, two price
  lists or invoicing blocks for one segment, two effective prices on one date, two discounts
  with the same `order` on overlapping targets, a zone prefix given twice);
- E109 missing mandatory attribute;
- E110 attribute given twice where only one is allowed;
- E111 invalid value;
- E112 wrong kind (an attribute or pricing that does not fit the product's kind, a percent
  price on an unknown target, `price by zone` on an undeclared zones table, a usage product
  without `unit`);
- E113 unknown ruleset setting or bad setting value;
- E114 money in another currency than the ruleset's;
- E115 constants that depend on each other in a cycle.

`check_paths(paths)` loads and checks several root rulesets, for `bareme check`.
"""

from __future__ import annotations

import zoneinfo
from collections import deque
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from dsl import nodes as n
from dsl.diagnostics import Diagnostic, RulesetError
from dsl.exact import Fraction
from dsl.loader import LoadError, Program, load_ruleset, load_text
from dsl.types import (
    CURRENCIES,
    NUMBER,
    UNITS,
    UNKNOWN,
    BadValue,
    Env,
    EvalError,
    Type,
    Value,
    compatible,
    const_value,
    did_you_mean,
    expect,
    money,
    type_of,
)

__all__ = [
    "CHECKS",
    "COMMITMENT_VARIABLES",
    "DISCOUNT_VARIABLES",
    "ISO_COUNTRIES",
    "KNOWN_SETTINGS",
    "Context",
    "build_context",
    "check",
    "check_paths",
    "check_text",
]

KNOWN_SETTINGS = (
    "currency",
    "country",
    "timezone",
    "default_proration",
    "seller_name",
    "seller_siren",
    "seller_vat",
    "seller_address",
    "payment_terms",
    "late_penalty",
    "recovery_indemnity",
    "anomaly_variation_percent",
    "anomaly_variation_amount",
    "anomaly_idle_months",
    "invoice_series",
)
TEXT_SETTINGS = ("seller_name", "seller_address", "invoice_series", "seller_siren", "seller_vat")

_ISO_CODES = (
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ "
    "BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM "
    "DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS "
    "GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN "
    "KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ "
    "MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM "
    "PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV "
    "SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI "
    "VN VU WF WS YE YT ZA ZM ZW "
)
ISO_COUNTRIES = frozenset(_ISO_CODES.split())

# EN 16931 / UNCL 5305 VAT category codes.
VAT_CATEGORIES = ("S", "Z", "E", "AE", "K", "G", "O", "L", "M", "B")
PRODUCT_KINDS = ("recurring", "usage", "one_shot")
PRORATION_METHODS = ("actual_days", "days_30", "none")


def _discount_variables() -> dict[str, Type]:
    return {
        "quantity": NUMBER,
        "volume": NUMBER,
        "commitment_months": NUMBER,
        "months_since_start": NUMBER,
    }


def _commitment_variables(currency: str | None) -> dict[str, Type]:
    return {
        "remaining_months": NUMBER,
        "elapsed_months": NUMBER,
        "monthly_price": money(currency),
        "commitment_value": money(currency),
        "remaining_value": money(currency),
    }


DISCOUNT_VARIABLES: Mapping[str, Type] = _discount_variables()
COMMITMENT_VARIABLES: Mapping[str, Type] = _commitment_variables(None)

# Declaration kinds that have a name, as the user writes them.
_NAMED_KINDS: dict[type, str] = {
    n.Const: "const",
    n.VatDecl: "vat",
    n.ProrationDecl: "proration",
    n.FamilyDecl: "family",
    n.ProductDecl: "product",
    n.PriceListDecl: "pricelist",
    n.DiscountDecl: "discount",
    n.CommitmentDecl: "commitment",
    n.ZonesDecl: "zones",
    n.RateDeckDecl: "rate_deck",
    n.TimeBandsDecl: "time_bands",
    n.RatingDecl: "rating",
}


def _at(span: n.Span) -> str:
    return f"{span.file}:{span.line}"


# ------------------------------------------------------------------------------ context
@dataclass
class Context:
    """What every pass reads: built once from the program, never changed by a pass."""

    program: Program
    header: n.RulesetHeader | None
    currency: str | None
    symbols: dict[str, dict[str, n.Decl]]  # kind -> name -> first declaration
    const_exprs: dict[str, n.Expr]
    const_types: dict[str, Type]
    const_values: dict[str, Value]
    file_order: dict[str, int]
    family_products: dict[str, set[str]] = field(default_factory=dict)

    @property
    def env(self) -> Env:
        """Constants only: what most expressions see."""
        return Env({}, self.const_types, self.currency, "a constant expression")

    def scoped(self, variables: Mapping[str, Type], scope: str) -> Env:
        return Env(variables, self.const_types, self.currency, scope)

    def names(self, kind: str) -> dict[str, n.Decl]:
        return self.symbols.get(kind, {})

    def product(self, name: str) -> n.ProductDecl | None:
        d = self.names("product").get(name)
        return d if isinstance(d, n.ProductDecl) else None

    def product_kind(self, name: str) -> str | None:
        p = self.product(name)
        if p is None:
            return None
        a = p.first("kind")
        return a.value if isinstance(a, n.WordAttr) and a.value in PRODUCT_KINDS else None

    def product_unit(self, name: str) -> str | None:
        p = self.product(name)
        a = p.first("unit") if p is not None else None
        return a.value if isinstance(a, n.WordAttr) else None

    def value(self, expr: n.Expr) -> Value | None:
        """The exact value of a constant expression, or None (variables, errors)."""
        try:
            return const_value(expr, self.const_values)
        except EvalError:
            return None


def _const_refs(e: n.Expr) -> list[str]:
    out: list[str] = []
    stack: list[n.Expr] = [e]
    while stack:
        x = stack.pop()
        if isinstance(x, n.Name):
            out.append(x.id)
        elif isinstance(x, n.Call):
            stack.extend(reversed(x.args))
        elif isinstance(x, n.Binary | n.Compare | n.BoolOp):
            stack.extend((x.right, x.left))
        elif isinstance(x, n.Not | n.Neg):
            stack.append(x.operand)
    out.reverse()
    return out


def _setting_word(s: n.Setting) -> str | None:
    if isinstance(s.value, n.Name):
        return s.value.id
    if isinstance(s.value, n.StringLit):
        return s.value.value
    return None


def build_context(program: Program) -> Context:
    header = program.header()
    currency = None
    if header is not None:
        for s in header.settings:
            if s.key == "currency":
                word = _setting_word(s)
                if word in CURRENCIES:
                    currency = word
                break
    symbols: dict[str, dict[str, n.Decl]] = {}
    for d in program.decls():
        kind = _NAMED_KINDS.get(type(d))
        if kind is not None:
            symbols.setdefault(kind, {}).setdefault(d.name, d)  # type: ignore[union-attr]
    const_exprs = {
        name: d.expr for name, d in symbols.get("const", {}).items() if isinstance(d, n.Const)
    }
    # Constant types, in dependency order; constants in a cycle are UNKNOWN (E115 says why).
    types: dict[str, Type] = {}
    visiting: set[str] = set()

    def resolve(name: str) -> Type:
        if name in types:
            return types[name]
        if name in visiting:
            return UNKNOWN
        visiting.add(name)
        for dep in _const_refs(const_exprs[name]):
            if dep in const_exprs:
                resolve(dep)
        visiting.discard(name)
        if name in types:  # resolved through a cycle
            return types[name]
        env = Env({}, {k: types.get(k, UNKNOWN) for k in const_exprs}, currency)
        cyclic = _find_cycle(name, const_exprs) is not None
        types[name] = UNKNOWN if cyclic else type_of(const_exprs[name], env, [])
        return types[name]

    for name in const_exprs:
        resolve(name)
    values: dict[str, Value] = {}
    for name, e in const_exprs.items():
        if types[name].is_unknown:
            continue
        try:
            values[name] = const_value(e, const_exprs)
        except EvalError:
            continue
    families: dict[str, set[str]] = {}
    for name, d in symbols.get("product", {}).items():
        if isinstance(d, n.ProductDecl):
            fam = d.first("family")
            if isinstance(fam, n.WordAttr):
                families.setdefault(fam.value, set()).add(name)
    return Context(
        program=program,
        header=header,
        currency=currency,
        symbols=symbols,
        const_exprs=const_exprs,
        const_types=types,
        const_values=values,
        file_order={f.path: i for i, f in enumerate(program.files)},
        family_products=families,
    )


# ------------------------------------------------------------------------------ helpers
Out = list[Diagnostic]


def _err(out: Out, code: str, msg: str, node: n.Node | n.Span, hint: str | None = None) -> None:
    span = node if isinstance(node, n.Span) else node.span
    out.append(Diagnostic(code, msg, span, hint))


_KIND_LABELS = {
    "rate_deck": "rate deck",
    "time_bands": "time bands",
    "pricelist": "price list",
    "zones": "zones table",
}


def _ref(ctx: Context, out: Out, kind: str, name: str, node: n.Node, code: str = "E100") -> bool:
    """Report an unknown `kind` named `name`. True when the name is declared."""
    known = ctx.names(kind)
    if name in known:
        return True
    label = _KIND_LABELS.get(kind, kind)
    hint = did_you_mean(name, known) or (None if known else f"no {label} is declared")
    _err(out, code, f"unknown {label} '{name}'", node, hint)
    return False


def _check_repeats(out: Out, decl: n.BlockDecl, what: str, repeatable: Iterable[str] = ()) -> None:
    allowed = set(repeatable)
    first: dict[str, n.Attr] = {}
    for a in decl.attrs:
        key = n.attr_key(a)
        if key in allowed:
            continue
        if key in first:
            hint = f"first given at {_at(first[key].span)}"
            if key == "price":
                hint += "; a product has one base price, give later prices in an `effective` block"
            _err(out, "E110", f"'{key}' given twice in {what} {decl.name}", a, hint)
        else:
            first[key] = a


def _nonneg(ctx: Context, out: Out, expr: n.Expr, t: Type, what: str) -> Value | None:
    """The constant value of a checked expression; E111 when it is negative or uncomputable."""
    if t.is_unknown:
        return None
    try:
        v = const_value(expr, ctx.const_values)
    except BadValue as e:
        _err(out, "E111", f"{what} cannot be computed: {e.message}", expr)
        return None
    except EvalError:
        return None
    if isinstance(v.value, Fraction) and v.value < 0:
        _err(out, "E111", f"{what} is negative ({v})", expr)
    return v


def _is_money(t: Type) -> bool:
    return t.kind == "money"


def _is_duration(t: Type) -> bool:
    return t.kind == "duration"


def _target_products(ctx: Context, t: n.Target) -> set[str] | None:
    """Products a target covers: None for `line` (all) and `invoice` (handled apart)."""
    if t.kind == "product":
        return set(t.names)
    if t.kind == "family":
        out: set[str] = set()
        for f in t.names:
            out |= ctx.family_products.get(f, set()) or {f"family:{f}"}
        return out
    return None


def _check_target(ctx: Context, out: Out, t: n.Target, code: str = "E100") -> None:
    if t.kind == "product":
        for name in t.names:
            _ref(ctx, out, "product", name, t, code)
    elif t.kind == "family":
        for name in t.names:
            _ref(ctx, out, "family", name, t, code)
    elif t.kind not in ("invoice", "line"):
        _err(out, "E111", f"unknown target '{t.kind}'", t)


# ------------------------------------------------------------------------------ pricing
def _check_pricing(
    ctx: Context, out: Out, pricing: n.Pricing, product: str | None, where: str
) -> None:
    """Type and value checks of one price, for `product` (None when it is unknown)."""
    kind = ctx.product_kind(product) if product else None
    unit = ctx.product_unit(product) if product else None
    record_unit = UNITS.get(unit or "")
    unit_dim = (
        record_unit.dimension
        if record_unit is not None and record_unit.kind == "quantity"
        else None
    )
    env = ctx.env

    def price(expr: n.Expr, what: str) -> Value | None:
        hint = None
        if isinstance(expr, n.NumberLit):
            hint = f"add the currency: {expr.value} {ctx.currency or 'EUR'}"
        t = expect(expr, env, out, _is_money, f"{what} must be money", hint)
        return _nonneg(ctx, out, expr, t, what)

    def per_unit(word: str | None, node: n.Node) -> None:
        if word is None:
            return
        u = UNITS.get(word)
        if u is None or u.kind != "quantity":
            _err(out, "E102", f"cannot price per '{word}': not a time, data or count unit", node)
        elif unit_dim is not None and u.dimension != unit_dim:
            _err(
                out,
                "E102",
                f"price per {word} ({u.dimension}) but {product} counts in {unit} ({unit_dim})",
                node,
            )

    def amount_type(t: Type) -> bool:
        """Tier bounds and package sizes: a count, or a quantity of the records' dimension."""
        if t.kind == "number":
            return True
        if kind in ("recurring", "one_shot"):
            return False  # subscriptions and charges count plain units
        return t.kind == "quantity" and (unit_dim is None or t.param == unit_dim)

    amount_what = "a number" + (f" or a quantity of {unit_dim}" if unit_dim else "")

    if isinstance(pricing, n.UnitPricing):
        price(pricing.price, f"the price of {where}")
        if kind == "usage":
            per_unit(pricing.per, pricing)
    elif isinstance(pricing, n.FlatPricing):
        price(pricing.price, f"the flat price of {where}")
    elif isinstance(pricing, n.TieredPricing):
        _check_tiers(ctx, out, pricing, where, amount_type, amount_what, price)
    elif isinstance(pricing, n.PackagePricing):
        st = expect(pricing.size, env, out, amount_type, f"a package size must be {amount_what}")
        sv = _nonneg(ctx, out, pricing.size, st, "the package size")
        if sv is not None and isinstance(sv.value, Fraction) and sv.value == 0:
            _err(out, "E111", "the package size must be more than 0", pricing.size)
        price(pricing.price, f"the package price of {where}")
        if pricing.free is not None:
            ft = expect(pricing.free, env, out, amount_type, f"free units must be {amount_what}")
            if not st.is_unknown and not ft.is_unknown and not compatible(st, ft):
                _err(out, "E102", f"free units ({ft}) and package size ({st}) differ", pricing.free)
            _nonneg(ctx, out, pricing.free, ft, "the free units")
    elif isinstance(pricing, n.PercentPricing):
        rt = expect(
            pricing.rate, env, out, lambda t: t.kind == "percent", "a share must be a percent"
        )
        _nonneg(ctx, out, pricing.rate, rt, "the percent")
        tgt = pricing.target
        _check_target(ctx, out, tgt, "E112")
        if product is not None and tgt.kind == "product" and product in tgt.names:
            _err(out, "E112", f"{product} cannot be priced as a percent of itself", tgt)
        if product is not None and tgt.kind == "family":
            p = ctx.product(product)
            fam = p.first("family") if p else None
            if isinstance(fam, n.WordAttr) and fam.value in tgt.names:
                _err(
                    out,
                    "E112",
                    f"{product} is in family {fam.value}: it cannot be a percent of its own family",
                    tgt,
                )
    elif isinstance(pricing, n.ZonePricing):
        if kind is not None and kind != "usage":
            _err(
                out,
                "E112",
                f"zone pricing is for usage products; {product} is {kind}",
                pricing,
            )
        per_unit(pricing.per, pricing)
        table = ctx.names("zones").get(pricing.zones)
        if table is None:
            _ref(ctx, out, "zones", pricing.zones, pricing, "E112")
        zones = {e.zone for e in table.entries} if isinstance(table, n.ZonesDecl) else None
        seen: dict[str, n.ZoneRate] = {}
        for r in pricing.rates:
            if zones is not None and r.zone not in zones:
                _err(
                    out,
                    "E100",
                    f"unknown zone '{r.zone}' (not in zones {pricing.zones})",
                    r,
                    did_you_mean(r.zone, zones),
                )
            if r.zone in seen:
                _err(
                    out,
                    "E108",
                    f"zone {r.zone} priced twice in {where}",
                    r,
                    f"first priced at {_at(seen[r.zone].span)}",
                )
            else:
                seen[r.zone] = r
            price(r.price, f"the price of zone {r.zone}")
    else:  # pragma: no cover - every pricing type is handled above
        _err(out, "E102", f"unknown pricing {type(pricing).__name__}", pricing)


def _check_tiers(
    ctx: Context,
    out: Out,
    pricing: n.TieredPricing,
    where: str,
    amount_type: Callable[[Type], bool],
    amount_what: str,
    price: Callable[[n.Expr, str], Value | None],
) -> None:
    env = ctx.env
    if pricing.mode not in ("graduated", "volume"):
        _err(out, "E111", f"unknown tier mode '{pricing.mode}'", pricing)
    previous: Value | None = None
    previous_tier: n.Tier | None = None
    bound_type: Type | None = None
    open_seen: n.Tier | None = None
    for tier in pricing.tiers:
        if open_seen is not None:
            _err(
                out,
                "E107",
                "unreachable tier: it comes after `above`",
                tier,
                f"`above` at {_at(open_seen.span)} already takes every remaining unit",
            )
        if tier.up_to is None:
            open_seen = open_seen or tier
        else:
            t = expect(tier.up_to, env, out, amount_type, f"a tier bound must be {amount_what}")
            if bound_type is not None and not t.is_unknown and not compatible(bound_type, t):
                _err(out, "E102", f"tier bounds mix {bound_type} and {t}", tier.up_to)
                t = UNKNOWN
            if not t.is_unknown:
                bound_type = bound_type or t
            v = _nonneg(ctx, out, tier.up_to, t, "a tier bound")
            if v is not None and isinstance(v.value, Fraction):
                if previous is not None and isinstance(previous.value, Fraction):
                    if v.value <= previous.value and open_seen is None:
                        _err(
                            out,
                            "E107",
                            f"unreachable tier: up to {v} is not above the previous bound ({previous})",
                            tier,
                            "tier bounds must be strictly increasing",
                        )
                elif v.value == 0 and open_seen is None:
                    _err(out, "E107", "unreachable tier: up to 0 holds no unit", tier)
                if previous is None or (
                    isinstance(previous.value, Fraction) and v.value > previous.value
                ):
                    previous = v
        price(tier.price, f"a tier price of {where}")
        if tier.flat is not None:
            price(tier.flat, f"a tier's flat fee of {where}")
        previous_tier = tier
    if previous_tier is not None and previous_tier.up_to is not None and open_seen is None:
        _err(
            out,
            "E107",
            f"the last tier of {where} is bounded: units above it have no price",
            previous_tier,
            "end with `above: PRICE`",
        )
    if not pricing.tiers:
        _err(out, "E109", f"{pricing.mode} pricing of {where} has no tier", pricing)


# ------------------------------------------------------------------------------ passes
def check_header(program: Program, ctx: Context) -> Out:
    """E101 second header; E110 setting twice; E113 unknown setting or bad value."""
    out: Out = []
    first_header: n.RulesetHeader | None = None
    for d in program.decls():
        if not isinstance(d, n.RulesetHeader):
            continue
        if first_header is None:
            first_header = d
        else:
            _err(
                out,
                "E101",
                f'ruleset header "{d.name}" declared twice',
                d,
                f"first declared at {_at(first_header.span)}",
            )
        seen: dict[str, n.Setting] = {}
        for s in d.settings:
            if s.key in seen:
                _err(
                    out,
                    "E110",
                    f"setting '{s.key}' given twice",
                    s,
                    f"first given at {_at(seen[s.key].span)}",
                )
                continue
            seen[s.key] = s
            _check_setting(ctx, out, s)
    return out


def _check_setting(ctx: Context, out: Out, s: n.Setting) -> None:
    if s.key not in KNOWN_SETTINGS:
        hint = did_you_mean(s.key, KNOWN_SETTINGS) or "settings: " + ", ".join(KNOWN_SETTINGS)
        _err(out, "E113", f"unknown ruleset setting '{s.key}'", s, hint)
        return
    word = _setting_word(s)
    if s.key == "currency":
        if word not in CURRENCIES:
            _err(
                out,
                "E113",
                f"currency must be one of {', '.join(CURRENCIES)}, got {word or 'a ' + str(type_of(s.value, Env(), []))}",
                s.value,
                did_you_mean(word.upper(), CURRENCIES) if word else None,
            )
    elif s.key == "country":
        if word is None or word not in ISO_COUNTRIES:
            hint = "a two-letter ISO 3166 code such as FR, BE, DE"
            if word and word.upper() in ISO_COUNTRIES:
                hint = f"did you mean '{word.upper()}'?"
            _err(
                out,
                "E113",
                f"country must be an ISO 3166 alpha-2 code, got {word or '?'}",
                s.value,
                hint,
            )
    elif s.key == "timezone":
        if word is None or not _valid_zone(word):
            _err(
                out,
                "E113",
                f"unknown time zone {word!r}" if word else "timezone must be a quoted zone name",
                s.value,
                did_you_mean(word, _zones()) if word else 'for example "Europe/Paris"',
            )
    elif s.key == "default_proration":
        if word is None:
            _err(out, "E113", "default_proration must name a proration", s.value)
        else:
            _ref(ctx, out, "proration", word, s.value)
    elif s.key in TEXT_SETTINGS:
        if not isinstance(s.value, n.StringLit):
            _err(out, "E113", f"{s.key} must be a quoted text", s.value)
        elif s.key == "seller_siren" and not _valid_id("siren", s.value.value):
            _err(out, "E113", f"invalid SIREN {s.value.value!r}", s.value, "9 digits, Luhn-checked")
        elif s.key == "seller_vat" and not _valid_id("vat", s.value.value):
            _err(out, "E113", f"invalid VAT number {s.value.value!r}", s.value)
    elif s.key in ("recovery_indemnity", "anomaly_variation_amount"):
        t = expect(s.value, ctx.env, out, _is_money, f"{s.key} must be money")
        _nonneg(ctx, out, s.value, t, s.key)
    elif s.key == "anomaly_variation_percent":
        expect(s.value, ctx.env, out, lambda t: t.kind == "percent", "anomaly_variation_percent must be a percentage (30%)")
    elif s.key == "anomaly_idle_months":
        expect(
            s.value,
            ctx.env,
            out,
            lambda t: t.kind == "number" or (t.kind == "duration" and t.param == "months"),
            "anomaly_idle_months must be a number of months (2, or 2 months)",
        )


def _valid_zone(key: str) -> bool:
    if key not in _zones():
        return False
    try:
        zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


_ZONES: list[set[str]] = []


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.append(set(zoneinfo.available_timezones()) | {"UTC"})
    return _ZONES[0]


def _valid_id(kind: str, value: str) -> bool:
    try:
        if kind == "siren":
            from stdnum.fr import siren

            return bool(siren.is_valid(value))
        from stdnum.eu import vat

        return bool(vat.is_valid(value))
    except ImportError:  # pragma: no cover - python-stdnum is a dependency
        return True


def check_duplicates(program: Program, ctx: Context) -> Out:
    """E101: two declarations of the same kind and name, one `rounding`, one tax rule each."""
    out: Out = []
    first: dict[tuple[str, str], n.Decl] = {}
    for d in program.decls():
        kind = _NAMED_KINDS.get(type(d))
        if kind is not None:
            key = (kind, d.name)  # type: ignore[union-attr]
        elif isinstance(d, n.RoundingDecl):
            key = ("rounding", "")
        elif isinstance(d, n.TaxDecl):
            key = (d.kind, "")
        else:
            continue
        if key in first:
            what = f"{key[0]} {key[1]}".strip()
            _err(
                out,
                "E101",
                f"duplicate declaration: {what} is already declared",
                d,
                f"first declared at {_at(first[key].span)}",
            )
        else:
            first[key] = d
    return out


def check_consts(program: Program, ctx: Context) -> Out:
    """E115 constant cycles; E100/E102/E114/E111 in constant expressions."""
    out: Out = []
    reported: set[frozenset[str]] = set()
    for d in program.decls():
        if not isinstance(d, n.Const):
            continue
        if d.name in ctx.const_exprs and ctx.const_exprs[d.name] is d.expr:
            cycle = _find_cycle(d.name, ctx.const_exprs)
            if cycle:
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    _err(
                        out,
                        "E115",
                        "constants depend on each other: " + " -> ".join([*cycle, cycle[0]]),
                        d,
                        "a constant cannot be defined in terms of itself",
                    )
                continue
        t = type_of(d.expr, ctx.env, out)
        _nonneg_value_only(ctx, out, d.expr, t, f"constant {d.name}")
    return out


def _nonneg_value_only(ctx: Context, out: Out, expr: n.Expr, t: Type, what: str) -> None:
    if t.is_unknown:
        return
    try:
        const_value(expr, ctx.const_values)
    except BadValue as e:
        _err(out, "E111", f"{what} cannot be computed: {e.message}", expr)
    except EvalError:
        return


def _find_cycle(name: str, const_exprs: Mapping[str, n.Expr]) -> list[str] | None:
    """The shortest dependency path from `name` back to itself, or None."""
    queue: deque[list[str]] = deque([[name]])
    seen: set[str] = set()
    while queue:
        path = queue.popleft()
        for dep in _const_refs(const_exprs[path[-1]]):
            if dep == name:
                return path
            if dep in const_exprs and dep not in seen:
                seen.add(dep)
                queue.append([*path, dep])
    return None


def check_taxes(program: Program, ctx: Context) -> Out:
    """VAT rates (E111), rounding rules (E110, E111), reverse charge and export (E109, E110)."""
    out: Out = []
    rounding_seen: dict[str, n.RoundingRule] = {}
    for d in program.decls():
        if isinstance(d, n.VatDecl):
            if not (d.rate.is_finite() and 0 <= d.rate <= 100):
                _err(out, "E111", f"VAT rate {d.rate}% of {d.name} is not between 0% and 100%", d)
            if d.category is not None and d.category not in VAT_CATEGORIES:
                _err(
                    out,
                    "E111",
                    f"unknown VAT category '{d.category}'",
                    d,
                    did_you_mean(d.category, VAT_CATEGORIES)
                    or "EN 16931 categories: " + ", ".join(VAT_CATEGORIES),
                )
        elif isinstance(d, n.RoundingDecl):
            for r in d.rules:
                if not (r.step.is_finite() and r.step > 0):
                    _err(out, "E111", f"rounding step of {r.target} must be more than 0", r)
                if r.target in rounding_seen:
                    _err(
                        out,
                        "E110",
                        f"rounding of {r.target} given twice",
                        r,
                        f"first given at {_at(rounding_seen[r.target].span)}",
                    )
                else:
                    rounding_seen[r.target] = r
        elif isinstance(d, n.TaxDecl):
            seen: dict[str, n.TextAttr] = {}
            for a in d.attrs:
                if a.key in seen:
                    _err(
                        out,
                        "E110",
                        f"'{a.key}' given twice in {d.kind}",
                        a,
                        f"first given at {_at(seen[a.key].span)}",
                    )
                seen.setdefault(a.key, a)
            if "mention" not in seen:
                _err(out, "E109", f"{d.kind} needs a `mention` (the legal text on the invoice)", d)
    return out


def check_prorations(program: Program, ctx: Context) -> Out:
    """proration blocks: one method (E110, E111), a minimum in days (E102, E111)."""
    out: Out = []
    for d in program.decls():
        if not isinstance(d, n.ProrationDecl):
            continue
        _check_repeats(out, d, "proration")
        method = d.first("method")
        if isinstance(method, n.WordAttr) and method.value not in PRORATION_METHODS:
            _err(out, "E111", f"unknown proration method '{method.value}'", method)
        minimum = d.first("minimum")
        if isinstance(minimum, n.ExprAttr):
            t = expect(
                minimum.expr,
                ctx.env,
                out,
                lambda t: t.kind == "duration" and t.param == "days",
                "a proration minimum must be a number of days",
            )
            _nonneg(ctx, out, minimum.expr, t, "the proration minimum")
    return out


_PRODUCT_REPEATABLE = ("mention", "description")


def check_products(program: Program, ctx: Context) -> Out:
    """Products: mandatory attributes (E103, E109), kind rules (E112), references (E100),
    values (E102, E111) and their own price."""
    out: Out = []
    for d in program.decls():
        if not isinstance(d, n.ProductDecl):
            continue
        _check_repeats(out, d, "product", _PRODUCT_REPEATABLE)
        name = d.name
        kind_attr = d.first("kind")
        kind = kind_attr.value if isinstance(kind_attr, n.WordAttr) else None
        if kind is not None and kind not in PRODUCT_KINDS:
            _err(
                out,
                "E111",
                f"unknown product kind '{kind}'",
                kind_attr or d,
                did_you_mean(kind, PRODUCT_KINDS),
            )
            kind = None
        if d.first("label") is None:
            _err(
                out, "E109", f"product {name} has no `label`", d, "the label is printed on invoices"
            )
        if kind_attr is None:
            _err(
                out, "E109", f"product {name} has no `kind`", d, "kind recurring, usage or one_shot"
            )
        if d.first("vat") is None:
            _err(out, "E103", f"product {name} has no `vat`", d, _vat_hint(ctx))
        if d.first("price") is None and not (kind == "usage" and d.first("rating") is not None):
            hint = "a usage product may instead name its `rating`" if kind == "usage" else None
            _err(out, "E109", f"product {name} has no `price`", d, hint)
        if kind == "recurring":
            if d.first("billing") is None:
                _err(
                    out,
                    "E109",
                    f"recurring product {name} has no `billing`",
                    d,
                    "billing in_advance or in_arrears",
                )
            if d.first("periodicity") is None:
                _err(
                    out,
                    "E109",
                    f"recurring product {name} has no `periodicity`",
                    d,
                    "periodicity monthly, quarterly or yearly",
                )
        if kind == "one_shot":
            for key in ("periodicity", "billing", "proration"):
                for a in d.all(key):
                    _err(
                        out,
                        "E112",
                        f"`{key}` does not apply to one-shot product {name}",
                        a,
                        "one-shot charges are billed once, on order or delivery",
                    )
        if kind is not None and kind != "usage":
            for key in ("rating", "unit"):
                for a in d.all(key):
                    _err(out, "E112", f"`{key}` is only for usage products; {name} is {kind}", a)
        if kind == "usage":
            unit = d.first("unit")
            if unit is None:
                _err(
                    out,
                    "E112",
                    f"usage product {name} has no `unit`",
                    d,
                    "the unit of its records: unit second, unit byte, unit sms...",
                )
            elif isinstance(unit, n.WordAttr):
                u = UNITS.get(unit.value)
                if u is None or u.kind != "quantity":
                    _err(
                        out,
                        "E102",
                        f"unit '{unit.value}' of {name} is not a time, data or count unit",
                        unit,
                    )
        for a in d.attrs:
            _check_product_attr(ctx, out, d, a)
    return out


def _vat_hint(ctx: Context) -> str:
    rates = sorted(ctx.names("vat"))
    if rates:
        return "name its VAT rate: " + ", ".join(f"vat {r}" for r in rates[:3])
    return "declare a rate (`vat standard 20% category S`) and name it in the product"


def _check_product_attr(ctx: Context, out: Out, d: n.ProductDecl, a: n.Attr) -> None:
    key = n.attr_key(a)
    if isinstance(a, n.WordAttr):
        ref_kinds = {"vat": "vat", "family": "family", "proration": "proration", "rating": "rating"}
        if key in ref_kinds:
            _ref(ctx, out, ref_kinds[key], a.value, a)
        elif key == "billing" and a.value not in ("in_advance", "in_arrears"):
            _err(out, "E111", f"unknown billing mode '{a.value}'", a)
    elif isinstance(a, n.PeriodicityAttr):
        if a.periodicity not in ("monthly", "quarterly", "yearly"):
            _err(out, "E111", f"unknown periodicity '{a.periodicity}'", a)
        if a.anchor is not None and not 1 <= a.anchor <= 28:
            _err(
                out,
                "E111",
                f"anchor day {a.anchor} is not between 1 and 28",
                a,
                "days 29-31 do not exist in every month",
            )
    elif isinstance(a, n.ExprAttr) and key == "cost":
        t = expect(a.expr, ctx.env, out, _is_money, "a cost must be money")
        _nonneg(ctx, out, a.expr, t, f"the cost of {d.name}")
    elif isinstance(a, n.PriceAttr):
        _check_pricing(ctx, out, a.pricing, d.name, f"product {d.name}")


def check_pricelists(program: Program, ctx: Context) -> Out:
    """Price lists: products (E100), one entry per product (E108), one list per segment (E108)."""
    out: Out = []
    segments: dict[str, n.PriceListDecl] = {}
    for d in program.decls():
        if not isinstance(d, n.PriceListDecl):
            continue
        for seg in dict.fromkeys(d.segments):
            if seg in segments and segments[seg] is not d:
                _err(
                    out,
                    "E108",
                    f'segment "{seg}" has two price lists: {segments[seg].name} and {d.name}',
                    d,
                    f"{segments[seg].name} declared at {_at(segments[seg].span)}",
                )
            else:
                segments.setdefault(seg, d)
        _check_entries(ctx, out, d.entries, f"price list {d.name}")
    return out


def _check_entries(ctx: Context, out: Out, entries: Iterable[n.PriceEntry], where: str) -> None:
    seen: dict[str, n.PriceEntry] = {}
    for e in entries:
        known = _ref(ctx, out, "product", e.product, e)
        if e.product in seen:
            _err(
                out,
                "E108",
                f"{e.product} is priced twice in {where}",
                e,
                f"first priced at {_at(seen[e.product].span)}",
            )
        else:
            seen[e.product] = e
        _check_pricing(ctx, out, e.pricing, e.product if known else None, f"{e.product} in {where}")


def check_effective(program: Program, ctx: Context) -> Out:
    """Effective blocks: references (E100), prices (E102, E111), one price per product and list
    and date (E108), blocks that change nothing (E107)."""
    out: Out = []
    blocks = [d for d in program.decls() if isinstance(d, n.EffectiveDecl)]
    by_date: dict[tuple[date, str | None, str], n.PriceEntry] = {}
    for d in blocks:
        where = f"effective {d.date.isoformat()}"
        in_block: dict[tuple[str | None, str], n.PriceEntry] = {}
        for list_name, e in _effective_entries(d):
            if list_name is not None and not _ref(ctx, out, "pricelist", list_name, e):
                list_name = f"?{list_name}"
            known = _ref(ctx, out, "product", e.product, e)
            scope = f" (price list {list_name})" if list_name else ""
            if (list_name, e.product) in in_block:
                _err(
                    out,
                    "E108",
                    f"{e.product}{scope} is priced twice in {where}",
                    e,
                    f"first priced at {_at(in_block[(list_name, e.product)].span)}",
                )
                continue
            in_block[(list_name, e.product)] = e
            key = (d.date, list_name, e.product)
            if key in by_date:
                _err(
                    out,
                    "E108",
                    f"two prices of {e.product}{scope} take effect on {d.date.isoformat()}",
                    e,
                    f"the other one is at {_at(by_date[key].span)}",
                )
            else:
                by_date[key] = e
            _check_pricing(
                ctx, out, e.pricing, e.product if known else None, f"{e.product} in {where}"
            )
    out.extend(_redundant_effective(ctx, program, blocks))
    return out


def _effective_entries(d: n.EffectiveDecl) -> list[tuple[str | None, n.PriceEntry]]:
    out: list[tuple[str | None, n.PriceEntry]] = []
    for item in d.entries:
        if isinstance(item, n.PriceEntry):
            out.append((None, item))
        else:
            out.extend((item.name, e) for e in item.entries)
    return out


def _redundant_effective(ctx: Context, program: Program, blocks: list[n.EffectiveDecl]) -> Out:
    """E107 for an effective block whose every price is the one already in force."""
    out: Out = []
    current: dict[tuple[str | None, str], n.Pricing] = {}
    mixed: set[tuple[str | None, str]] = set()  # a `for new subscriptions` price was given
    for name, prod in ctx.names("product").items():
        price = prod.first("price") if isinstance(prod, n.ProductDecl) else None
        if isinstance(price, n.PriceAttr):
            current[(None, name)] = price.pricing
    for pl in ctx.names("pricelist").values():
        if isinstance(pl, n.PriceListDecl):
            for e in pl.entries:
                current.setdefault((pl.name, e.product), e.pricing)
    for d in sorted(blocks, key=lambda b: b.date):  # stable: same date keeps source order
        entries = [((ln, e.product), e.pricing) for ln, e in _effective_entries(d)]
        if entries and all(
            current.get(k) == pr and (d.new_only or k not in mixed) for k, pr in entries
        ):
            _err(
                out,
                "E107",
                f"effective {d.date.isoformat()} changes nothing: every price it gives is already in force",
                d,
                "remove the block, or change its prices",
            )
        for k, pr in entries:
            current[k] = pr
            if d.new_only:
                mixed.add(k)
    return out


_DISCOUNT_REPEATABLE = ("mention", "description")
_ENDS = ("for", "until", "permanent")


def check_discounts(program: Program, ctx: Context) -> Out:
    """Discounts: amount and target (E109, E110), one end (E104), types (E102), values (E111),
    unreachable ones (E107) and overlapping stacking orders (E108)."""
    out: Out = []
    env = ctx.scoped(_discount_variables(), "a discount condition")
    ordered: list[tuple[int, n.DiscountDecl, n.Target]] = []
    for d in program.decls():
        if not isinstance(d, n.DiscountDecl):
            continue
        name = d.name
        _check_repeats(out, d, "discount", _DISCOUNT_REPEATABLE)
        percent, fixed = d.first("percent"), d.first("fixed")
        if percent is None and fixed is None:
            _err(
                out,
                "E109",
                f"discount {name} has no amount",
                d,
                "give `percent 10%` or `fixed 5 EUR`",
            )
        if percent is not None and fixed is not None:
            _err(
                out,
                "E110",
                f"discount {name} gives both `percent` and `fixed`",
                fixed,
                "a discount is either a percent or a fixed amount; declare two discounts",
            )
        on = d.first("on")
        if on is None:
            _err(
                out,
                "E109",
                f"discount {name} has no `on`",
                d,
                "on product A, B | on family F | on line | on invoice",
            )
        elif isinstance(on, n.OnAttr):
            _check_target(ctx, out, on.target)
        ends = [a for a in d.attrs if n.attr_key(a) in _ENDS]
        kinds = list(dict.fromkeys(n.attr_key(a) for a in ends))
        if not ends:
            _err(
                out,
                "E104",
                f"discount {name} never ends",
                d,
                "add `for N months`, `until DATE`, or `permanent` if it really never ends",
            )
        elif len(kinds) > 1:
            second = next(a for a in ends if n.attr_key(a) == kinds[1])
            _err(
                out,
                "E104",
                f"discount {name} has two ends: {' and '.join(kinds)}",
                second,
                "keep one of `for`, `until`, `permanent`",
            )
        if isinstance(percent, n.ExprAttr):
            t = expect(
                percent.expr,
                ctx.env,
                out,
                lambda t: t.kind == "percent",
                "`percent` must be a percent",
                f"write {percent.expr.value}%" if isinstance(percent.expr, n.NumberLit) else None,
            )
            v = _nonneg(ctx, out, percent.expr, t, f"the percent of {name}")
            if v is not None and isinstance(v.value, Fraction):
                if v.value > 100:
                    _err(out, "E111", f"discount {name} takes {v}, more than 100%", percent.expr)
                elif v.value == 0:
                    _err(
                        out,
                        "E107",
                        f"discount {name} takes 0%: it never changes a line",
                        percent.expr,
                    )
        if isinstance(fixed, n.ExprAttr):
            t = expect(fixed.expr, ctx.env, out, _is_money, "`fixed` must be money")
            _nonneg(ctx, out, fixed.expr, t, f"the amount of {name}")
        for a in d.all("for"):
            if isinstance(a, n.ExprAttr):
                t = expect(
                    a.expr,
                    ctx.env,
                    out,
                    _is_duration,
                    "`for` must be a duration",
                    "for example `for 3 months` or `for 90 days`",
                )
                v = _nonneg(ctx, out, a.expr, t, f"the duration of {name}")
                if v is not None and v.value == 0:
                    _err(out, "E107", f"discount {name} lasts 0 {t.param}: it never applies", a)
        when = d.first("when")
        if isinstance(when, n.ExprAttr):
            t = expect(
                when.expr,
                env,
                out,
                lambda t: t.kind == "boolean",
                "`when` must be a condition (true or false)",
            )
            if not t.is_unknown:
                v = ctx.value(when.expr)
                if v is not None and v.value is False:
                    _err(
                        out,
                        "E107",
                        f"discount {name} never applies: its condition is always false",
                        when,
                    )
        order = d.first("order")
        if isinstance(order, n.NumberAttr):
            if order.value < 0:
                _err(out, "E111", f"stacking order of {name} is negative", order)
            if isinstance(on, n.OnAttr):
                ordered.append((order.value, d, on.target))
    _overlapping_orders(ctx, out, ordered)
    return out


def _overlapping_orders(
    ctx: Context, out: Out, ordered: list[tuple[int, n.DiscountDecl, n.Target]]
) -> None:
    for i, (order, d, target) in enumerate(ordered):
        for order0, d0, target0 in ordered[:i]:
            if order != order0 or d0.name == d.name:
                continue
            if _targets_overlap(ctx, target0, target):
                _err(
                    out,
                    "E108",
                    f"discounts {d0.name} and {d.name} have the same order {order}"
                    " and can apply to the same lines",
                    d.first("order") or d,
                    f"{d0.name} is at {_at(d0.span)}; give them different orders so stacking is explicit",
                )
                break


def _targets_overlap(ctx: Context, a: n.Target, b: n.Target) -> bool:
    if (a.kind == "invoice") != (b.kind == "invoice"):
        return False
    if a.kind == "invoice":
        return True
    pa, pb = _target_products(ctx, a), _target_products(ctx, b)
    if pa is None or pb is None:
        return True  # `on line` covers every line
    return bool(pa & pb)


_COMMITMENT_REPEATABLE = ("mention", "description")


def check_commitments(program: Program, ctx: Context) -> Out:
    """Commitments: a duration (E109, E102, E111), renewal, fees and minimum spend (E102)."""
    out: Out = []
    fee_env = ctx.scoped(_commitment_variables(ctx.currency), "a termination fee")
    for d in program.decls():
        if not isinstance(d, n.CommitmentDecl):
            continue
        _check_repeats(out, d, "commitment", _COMMITMENT_REPEATABLE)
        if d.first("renewal") is not None and d.first("no_renewal") is not None:
            _err(
                out,
                "E110",
                f"commitment {d.name} has both `renewal tacit` and `renewal none`",
                d.first("no_renewal") or d,
            )
        duration = d.first("duration")
        if duration is None:
            _err(out, "E109", f"commitment {d.name} has no `duration`", d, "duration 24 months")
        for a in d.attrs:
            if isinstance(a, n.ExprAttr) and a.key in ("duration", "renewal"):
                t = expect(
                    a.expr, ctx.env, out, _is_duration, f"`{a.key}` must be a duration (12 months)"
                )
                v = _nonneg(ctx, out, a.expr, t, f"the {a.key} of {d.name}")
                if v is not None and v.value == 0:
                    _err(out, "E111", f"the {a.key} of {d.name} must be more than 0", a.expr)
            elif isinstance(a, n.ExprAttr) and a.key in ("termination_fee", "cap"):
                t = expect(a.expr, fee_env, out, _is_money, f"`{a.key}` must be money")
                _nonneg(ctx, out, a.expr, t, f"the {a.key.replace('_', ' ')} of {d.name}")
            elif isinstance(a, n.MinimumSpendAttr):
                t = expect(a.amount, ctx.env, out, _is_money, "`minimum_spend` must be money")
                _nonneg(ctx, out, a.amount, t, f"the minimum spend of {d.name}")
                if a.target is not None:
                    _check_target(ctx, out, a.target)
    return out


def check_invoicing(program: Program, ctx: Context) -> Out:
    """Invoicing blocks: one per segment (E108), attributes once (E110)."""
    out: Out = []
    seen: dict[str, n.InvoicingDecl] = {}
    for d in program.decls():
        if not isinstance(d, n.InvoicingDecl):
            continue
        first: dict[str, n.Attr] = {}
        for a in d.attrs:
            key = n.attr_key(a)
            if key in first and key != "mention":
                _err(
                    out,
                    "E110",
                    f"'{key}' given twice in invoicing",
                    a,
                    f"first given at {_at(first[key].span)}",
                )
            first.setdefault(key, a)
        for seg in dict.fromkeys(d.segments or ("",)):
            if seg in seen:
                what = f'segment "{seg}"' if seg else "the default (no segment)"
                _err(
                    out,
                    "E108",
                    f"two invoicing blocks for {what}",
                    d,
                    f"the other one is at {_at(seen[seg].span)}",
                )
            else:
                seen[seg] = d
    return out


def check_zones(program: Program, ctx: Context) -> Out:
    """Zones tables: prefixes of digits (E111), each once (E108)."""
    out: Out = []
    for d in program.decls():
        if not isinstance(d, n.ZonesDecl):
            continue
        seen: dict[str, n.ZoneEntry] = {}
        for e in d.entries:
            digits = e.prefix[1:] if e.prefix.startswith("+") else e.prefix
            if not digits.isascii() or not digits.isdigit():
                _err(
                    out,
                    "E111",
                    f"zone prefix {e.prefix!r} is not made of digits",
                    e,
                    'E.164 country code and digits, e.g. "331"',
                )
                continue
            if digits in seen:
                first = seen[digits]
                same = " (same zone)" if first.zone == e.zone else f" (first: {first.zone})"
                _err(
                    out,
                    "E108",
                    f"prefix {e.prefix} given twice in zones {d.name}{same}",
                    e,
                    f"first given at {_at(first.span)}",
                )
            else:
                seen[digits] = e
    return out


_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def check_rating(program: Program, ctx: Context) -> Out:
    """Rate decks, time bands and ratings: references (E100), attributes once (E110), values
    (E102, E111), allowances consistent with the products that use the rating (E102)."""
    out: Out = []
    all_zones = {
        e.zone for z in ctx.names("zones").values() if isinstance(z, n.ZonesDecl) for e in z.entries
    }
    for d in program.decls():
        if isinstance(d, n.RateDeckDecl):
            _check_repeats(out, d, "rate_deck")
            p = d.first("prices_in")
            if isinstance(p, n.WordAttr) and p.value not in ("micro", "decimal"):
                _err(out, "E111", f"unknown price unit '{p.value}'", p)
        elif isinstance(d, n.TimeBandsDecl):
            _check_repeats(out, d, "time_bands", ("peak",))
            for a in d.attrs:
                if isinstance(a, n.PeakAttr):
                    if a.start >= a.end:
                        _err(
                            out,
                            "E111",
                            f"peak hours end ({a.end:%H:%M}) before they start ({a.start:%H:%M})",
                            a,
                        )
                    for day in (a.first_day, a.last_day):
                        if day not in _DAYS:
                            _err(out, "E111", f"unknown day '{day}'", a)
                elif (
                    isinstance(a, n.WordAttr)
                    and a.key == "holidays"
                    and a.value not in ISO_COUNTRIES
                ):
                    _err(
                        out, "E111", f"holidays must name a country (FR, BE...), got '{a.value}'", a
                    )
        elif isinstance(d, n.RatingDecl):
            _check_repeats(out, d, "rating", ("allowance",))
            dims = _rating_dimensions(ctx, d.name)
            for a in d.attrs:
                _check_rating_attr(ctx, out, d, a, dims, all_zones)
    return out


def _rating_dimensions(ctx: Context, rating: str) -> set[str]:
    """Dimensions of the record units of the usage products that use `rating`."""
    dims: set[str] = set()
    for name, p in ctx.names("product").items():
        r = p.first("rating") if isinstance(p, n.ProductDecl) else None
        unit = UNITS.get(ctx.product_unit(name) or "")
        if isinstance(r, n.WordAttr) and r.value == rating and unit is not None:
            dims.add(unit.dimension)
    return dims


def _check_rating_attr(
    ctx: Context, out: Out, d: n.RatingDecl, a: n.Attr, dims: set[str], all_zones: set[str]
) -> None:
    env = ctx.env
    if isinstance(a, n.WordAttr):
        if a.key in ("deck", "cost_deck"):
            _ref(ctx, out, "rate_deck", a.value, a)
        elif a.key == "bands":
            _ref(ctx, out, "time_bands", a.value, a)
        elif a.key == "country" and a.value not in ISO_COUNTRIES:
            _err(out, "E111", f"country must be an ISO 3166 alpha-2 code, got '{a.value}'", a)
        elif a.key == "unanswered" and a.value not in ("drop", "free", "connect_fee"):
            _err(out, "E111", f"unknown unanswered policy '{a.value}'", a)
    elif isinstance(a, n.IncrementsAttr):
        for label, v in (("first", a.first), ("next", a.next)):
            if v < 1:
                _err(
                    out,
                    "E111",
                    f"the {label} increment must be at least 1 second, got {v}",
                    a,
                    "60/60 bills whole minutes, 30/1 a first 30 s then per second",
                )
    elif isinstance(a, n.RoundingAttr):
        if not (a.step.is_finite() and a.step > 0):
            _err(out, "E111", "per-call rounding step must be more than 0", a)
    elif isinstance(a, n.ExprAttr) and a.key == "minimum_duration":
        t = expect(
            a.expr,
            env,
            out,
            lambda t: t.kind == "quantity" and t.param == "time",
            "`minimum_duration` must be a time (60 seconds)",
        )
        _nonneg(ctx, out, a.expr, t, "the minimum duration")
    elif isinstance(a, n.ExprAttr) and a.key == "maximum_per_call":
        t = expect(a.expr, env, out, _is_money, "`maximum_per_call` must be money")
        _nonneg(ctx, out, a.expr, t, "the maximum per call")
    elif isinstance(a, n.AllowanceAttr | n.FairUseAttr):
        key = n.attr_key(a)
        t = expect(
            a.amount,
            env,
            out,
            lambda t: t.kind == "quantity",
            f"`{key}` must be a quantity (1000 minutes, 20 GB)",
        )
        if t.kind == "quantity" and dims and t.param not in dims:
            _err(
                out,
                "E102",
                f"{key} is a {t.param} quantity ({t.unit or t.param}) but the products"
                f" rated by {d.name} count " + " and ".join(sorted(dims)),
                a.amount,
            )
        _nonneg(ctx, out, a.amount, t, f"the {key}")
        if a.scope not in ("line", "customer"):
            _err(out, "E111", f"unknown scope '{a.scope}'", a)
        if isinstance(a, n.AllowanceAttr):
            for z in a.zones:
                if z not in all_zones:
                    _err(out, "E100", f"unknown zone '{z}'", a, did_you_mean(z, all_zones))


CheckFn = Callable[[Program, Context], list[Diagnostic]]

CHECKS: tuple[CheckFn, ...] = (
    check_header,
    check_duplicates,
    check_consts,
    check_taxes,
    check_prorations,
    check_products,
    check_pricelists,
    check_effective,
    check_discounts,
    check_commitments,
    check_invoicing,
    check_zones,
    check_rating,
)


# ------------------------------------------------------------------------------ entry points
def check(program: Program) -> list[Diagnostic]:
    """Every semantic problem of `program`, sorted by file (program order), line and column."""
    try:
        ctx = build_context(program)
    except RecursionError:
        span = program.files[0].span if program.files else n.NO_SPAN
        return [Diagnostic("E004", "constants nested too deeply", span)]
    found: list[Diagnostic] = []
    for fn in CHECKS:
        try:
            found.extend(fn(program, ctx))
        except RecursionError:
            span = program.files[0].span if program.files else n.NO_SPAN
            found.append(Diagnostic("E004", f"ruleset nested too deeply ({fn.__name__})", span))
    order = ctx.file_order
    unique = list(dict.fromkeys(found))
    unique.sort(
        key=lambda d: (
            order.get(d.span.file, len(order)),
            d.span.file,
            d.span.line,
            d.span.column,
            d.code,
        )
    )
    return unique


def check_text(text: str, path: str = "<string>") -> list[Diagnostic]:
    """Parse, load and check `text`: syntax and import errors, else semantic ones."""
    try:
        program = load_text(text, path)
    except RulesetError as e:
        return list(e.diagnostics)
    return check(program)


def check_paths(
    paths: list[Path], sources: MutableMapping[str, str] | None = None
) -> tuple[list[Program], list[Diagnostic]]:
    """Load and check each root ruleset of `paths` (for `bareme check`). Returns the programs
    that loaded and every diagnostic, loader errors included. When `sources` is given it
    receives the text of every file read, failed loads included, for rendering."""
    programs: list[Program] = []
    diagnostics: list[Diagnostic] = []
    for path in paths:
        try:
            program = load_ruleset(Path(path))
        except LoadError as e:
            diagnostics.extend(e.diagnostics)
            if sources is not None:
                sources.update(e.sources)
            continue
        except RulesetError as e:  # pragma: no cover - the loader raises LoadError
            diagnostics.extend(e.diagnostics)
            continue
        if sources is not None:
            sources.update(program.sources)
        programs.append(program)
        diagnostics.extend(check(program))
    return programs, list(dict.fromkeys(diagnostics))
