"""The checker: one test per code, a clean realistic ruleset, every error collected, and
robustness on arbitrary well-formed trees."""

from __future__ import annotations

import re
from datetime import date, time
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dsl import nodes as n
from dsl.checker import CHECKS, check, check_text
from dsl.diagnostics import Diagnostic, RulesetError
from dsl.exact import Fraction
from dsl.loader import Program, load_ruleset
from dsl.parser import parse_text
from dsl.types import (
    NUMBER,
    UNITS,
    BadValue,
    Env,
    NotConstant,
    const_value,
    money,
    quantity,
    type_of,
)

HEADER = """\
ruleset "Test" {
  currency EUR
  country FR
}
"""
BODY = """\
vat standard 20% category S
family voice "Voice"
product SIP {
  label "SIP trunk"
  kind recurring
  family voice
  billing in_advance
  periodicity monthly
  vat standard
  price 10 EUR
}
"""
PRELUDE = HEADER + BODY


def diagnostics(text: str) -> list[Diagnostic]:
    return check_text(text, "t.bareme")


def at(text: str, needle: str, start: int = 0) -> tuple[int, int]:
    """(line, column), 1-based, of `needle` in `text` from offset `start`."""
    i = text.index(needle, start)
    line = text.count("\n", 0, i) + 1
    return line, i - (text.rfind("\n", 0, i) + 1) + 1


def only(text: str, code: str) -> Diagnostic:
    ds = diagnostics(text)
    assert [d.code for d in ds] == [code], ds
    return ds[0]


def test_prelude_is_clean() -> None:
    assert diagnostics(PRELUDE) == []


# ------------------------------------------------------------------------------ one per code
# (id, snippet appended to PRELUDE, code, text where the span starts, message part, hint part)
CASES: list[tuple[str, str, str, str, str, str | None]] = [
    (
        "E100-family",
        'product X { label "x" kind one_shot family voic vat standard price 1 EUR }',
        "E100",
        "family voic",
        "unknown family 'voic'",
        "did you mean 'voice'?",
    ),
    (
        "E100-variable",
        "discount D { percent 5% on product SIP for 3 months when quantiy > 2 }",
        "E100",
        "quantiy",
        "unknown name 'quantiy' in a discount condition",
        "did you mean 'quantity'?",
    ),
    (
        "E100-const",
        "const RATE = 10%\nconst PRICE = 10 EUR * RATEE",
        "E100",
        "RATEE",
        "unknown name 'RATEE'",
        "did you mean 'RATE'?",
    ),
    (
        "E100-pricelist-product",
        'pricelist L for segment "sme" { SPI: 9 EUR }',
        "E100",
        "SPI: 9 EUR",
        "unknown product 'SPI'",
        "did you mean 'SIP'?",
    ),
    (
        "E101",
        'family voice "Voix"',
        "E101",
        'family voice "Voix"',
        "duplicate declaration: family voice",
        "first declared at t.bareme:6",
    ),
    (
        "E102-add",
        "const BAD = 10 EUR + 5 minutes",
        "E102",
        "10 EUR + 5 minutes",
        "cannot add money (EUR) and quantity (minutes)",
        "multiply a price by a number",
    ),
    (
        "E102-price-not-money",
        'product X { label "x" kind one_shot vat standard price 12 }',
        "E102",
        "12 }",
        "the price of product X must be money, got number",
        "add the currency: 12 EUR",
    ),
    (
        "E102-when",
        "discount D { percent 5% on product SIP for 3 months when quantity + 1 }",
        "E102",
        "quantity + 1",
        "`when` must be a condition (true or false), got number",
        None,
    ),
    (
        "E102-for",
        "discount D { percent 5% on product SIP for 3 }",
        "E102",
        "3 }",
        "`for` must be a duration, got number",
        "for example `for 3 months`",
    ),
    (
        "E102-termination-fee",
        "commitment C { duration 12 months termination_fee remaining_months }",
        "E102",
        "remaining_months }",
        "`termination_fee` must be money, got number",
        None,
    ),
    (
        "E103",
        'product X { label "x" kind one_shot price 1 EUR }',
        "E103",
        "product X",
        "product X has no `vat`",
        "vat standard",
    ),
    (
        "E104-no-end",
        "discount D { percent 5% on product SIP }",
        "E104",
        "discount D",
        "discount D never ends",
        "`permanent` if it really never ends",
    ),
    (
        "E104-two-ends",
        "discount D { percent 5% on product SIP for 3 months permanent }",
        "E104",
        "permanent",
        "discount D has two ends: for and permanent",
        "keep one of",
    ),
    (
        "E107-tiers-order",
        'product X { label "x" kind recurring billing in_advance periodicity monthly vat standard\n'
        "  price graduated { up to 10: 5 EUR up to 10: 4 EUR above: 3 EUR } }",
        "E107",
        "up to 10: 4 EUR",
        "unreachable tier: up to 10 is not above the previous bound (10)",
        "strictly increasing",
    ),
    (
        "E107-after-above",
        'product X { label "x" kind recurring billing in_advance periodicity monthly vat standard\n'
        "  price volume { up to 10: 5 EUR above: 3 EUR up to 20: 1 EUR } }",
        "E107",
        "up to 20: 1 EUR",
        "unreachable tier: it comes after `above`",
        "`above` at t.bareme:",
    ),
    (
        "E107-last-not-above",
        'product X { label "x" kind recurring billing in_advance periodicity monthly vat standard\n'
        "  price graduated { up to 10: 5 EUR up to 20: 4 EUR } }",
        "E107",
        "up to 20: 4 EUR",
        "the last tier of product X is bounded",
        "end with `above: PRICE`",
    ),
    (
        "E107-effective-changes-nothing",
        "effective 2027-01-01 { SIP: 10 EUR }",
        "E107",
        "effective 2027-01-01",
        "effective 2027-01-01 changes nothing",
        "remove the block",
    ),
    (
        "E108-pricelist-twice",
        'pricelist L for segment "sme" { SIP: 9 EUR SIP: 8 EUR }',
        "E108",
        "SIP: 8 EUR",
        "SIP is priced twice in price list L",
        "first priced at t.bareme:16",
    ),
    (
        "E108-segment",
        'pricelist L for segment "sme" { SIP: 9 EUR }\npricelist M for segment "pme", "sme" { }',
        "E108",
        "pricelist M",
        'segment "sme" has two price lists: L and M',
        "L declared at t.bareme:16",
    ),
    (
        "E108-effective-same-date",
        "effective 2027-01-01 { SIP: 11 EUR }\neffective 2027-01-01 for new subscriptions { SIP: 12 EUR }",
        "E108",
        "SIP: 12 EUR",
        "two prices of SIP take effect on 2027-01-01",
        "the other one is at t.bareme:16",
    ),
    (
        "E108-discount-order",
        "discount A { percent 5% on family voice for 3 months order 10 automatic }\n"
        "discount B { fixed 1 EUR on product SIP permanent order 10 }",
        "E108",
        "order 10 }",
        "discounts A and B have the same order 10",
        "A is at t.bareme:16",
    ),
    (
        "E108-zone-prefix",
        'zones Z { "33" FR "44" UK "33" FR2 }',
        "E108",
        '"33" FR2',
        "prefix 33 given twice in zones Z (first: FR)",
        "first given at t.bareme:16",
    ),
    (
        "E108-invoicing",
        'invoicing for segment "sme" { series "A" }\ninvoicing for segment "sme" { series "B" }',
        "E108",
        'invoicing for segment "sme" { series "B" }',
        'two invoicing blocks for segment "sme"',
        "the other one is at t.bareme:16",
    ),
    (
        "E109-product-label",
        "product X { kind one_shot vat standard price 1 EUR }",
        "E109",
        "product X",
        "product X has no `label`",
        "printed on invoices",
    ),
    (
        "E109-recurring-periodicity",
        'product X { label "x" kind recurring billing in_advance vat standard price 1 EUR }',
        "E109",
        "product X",
        "recurring product X has no `periodicity`",
        "monthly, quarterly or yearly",
    ),
    (
        "E109-discount-on",
        "discount D { percent 5% for 3 months }",
        "E109",
        "discount D",
        "discount D has no `on`",
        "on product A, B",
    ),
    (
        "E109-commitment-duration",
        "commitment C { renewal none }",
        "E109",
        "commitment C",
        "commitment C has no `duration`",
        "duration 24 months",
    ),
    (
        "E110-price-twice",
        'product X { label "x" kind one_shot vat standard price 1 EUR price 2 EUR }',
        "E110",
        "price 2 EUR",
        "'price' given twice in product X",
        "give later prices in an `effective` block",
    ),
    (
        "E111-anchor",
        'product X { label "x" kind recurring billing in_advance periodicity monthly anchor 31\n'
        "  vat standard price 1 EUR }",
        "E111",
        "periodicity monthly anchor 31",
        "anchor day 31 is not between 1 and 28",
        "days 29-31",
    ),
    (
        "E111-percent",
        "discount D { percent 120% on product SIP for 3 months }",
        "E111",
        "120%",
        "discount D takes 120%, more than 100%",
        None,
    ),
    (
        "E111-negative-price",
        'product X { label "x" kind one_shot vat standard price -5 EUR }',
        "E111",
        "-5 EUR",
        "the price of product X is negative (-5 EUR)",
        None,
    ),
    (
        "E111-rounding",
        "rounding { line 0 half_up }",
        "E111",
        "line 0 half_up",
        "rounding step of line must be more than 0",
        None,
    ),
    (
        "E111-increments",
        "rating R { increments 0/1 }",
        "E111",
        "increments 0/1",
        "the first increment must be at least 1 second",
        "60/60",
    ),
    (
        "E111-vat",
        "vat high 120%",
        "E111",
        "vat high 120%",
        "VAT rate 120% of high is not between 0% and 100%",
        None,
    ),
    (
        "E112-zone-pricing-recurring",
        'zones Z { "33" FR }\nproduct X { label "x" kind recurring billing in_advance periodicity monthly\n'
        "  vat standard price by zone Z per minute { FR: 1 EUR } }",
        "E112",
        "by zone Z",
        "zone pricing is for usage products; X is recurring",
        None,
    ),
    (
        "E112-unit-on-recurring",
        'product X { label "x" kind one_shot vat standard unit second price 1 EUR }',
        "E112",
        "unit second",
        "`unit` is only for usage products; X is one_shot",
        None,
    ),
    (
        "E112-billing-on-one-shot",
        'product X { label "x" kind one_shot vat standard billing in_advance price 1 EUR }',
        "E112",
        "billing in_advance",
        "`billing` does not apply to one-shot product X",
        "billed once",
    ),
    (
        "E112-percent-unknown-family",
        'product X { label "x" kind recurring billing in_advance periodicity monthly vat standard\n'
        "  price percent 10% of family voise }",
        "E112",
        "family voise",
        "unknown family 'voise'",
        "did you mean 'voice'?",
    ),
    (
        "E112-undeclared-zones",
        'zones DEST { "33" FR }\nproduct X { label "x" kind usage unit second vat standard\n'
        "  price by zone DESTS per minute { FR: 1 EUR } }",
        "E112",
        "by zone DESTS",
        "unknown zones table 'DESTS'",
        "did you mean 'DEST'?",
    ),
    (
        "E112-usage-without-unit",
        'product X { label "x" kind usage vat standard price 1 EUR }',
        "E112",
        "product X",
        "usage product X has no `unit`",
        "unit second",
    ),
    (
        "E114",
        'product X { label "x" kind one_shot vat standard price 10 USD }',
        "E114",
        "10 USD",
        "amount in USD but the ruleset's currency is EUR",
        "write 10 EUR",
    ),
    (
        "E115",
        "const A = B + 1\nconst B = C * 2\nconst C = A",
        "E115",
        "const A",
        "constants depend on each other: A -> B -> C -> A",
        "defined in terms of itself",
    ),
]


@pytest.mark.parametrize(
    ("snippet", "code", "needle", "message", "hint"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_each_code(snippet: str, code: str, needle: str, message: str, hint: str | None) -> None:
    text = PRELUDE + snippet + "\n"
    d = only(text, code)
    assert (d.span.file, d.span.line, d.span.column) == (
        "t.bareme",
        *at(text, needle, len(PRELUDE)),
    )
    assert message in d.message
    if hint is None:
        assert d.hint is None or d.hint
    else:
        assert d.hint is not None and hint in d.hint
    assert d.severity == "error"


@pytest.mark.parametrize(
    ("setting", "needle", "message", "hint"),
    [
        (
            "curency EUR",
            "curency EUR",
            "unknown ruleset setting 'curency'",
            "did you mean 'currency'?",
        ),
        (
            "currency EURO",
            "EURO",
            "currency must be one of EUR, USD, GBP, CHF",
            "did you mean 'EUR'?",
        ),
        ("country fr", "fr", "country must be an ISO 3166 alpha-2 code", "did you mean 'FR'?"),
        (
            'timezone "Europe/Pariss"',
            '"Europe/Pariss"',
            "unknown time zone",
            "did you mean 'Europe/Paris'?",
        ),
        ('seller_siren "123456789"', '"123456789"', "invalid SIREN", "Luhn"),
    ],
)
def test_E113_settings(setting: str, needle: str, message: str, hint: str) -> None:
    text = f'ruleset "Test" {{\n  {setting}\n}}\n' + BODY
    d = only(text, "E113")
    assert (d.span.line, d.span.column) == at(text, needle)
    assert message in d.message
    assert d.hint is not None and hint in d.hint


def test_E106_and_E105_are_loader_codes_reported_by_check_text() -> None:
    [d] = check_text('import "no-such-file-here.bareme"\n', "t.bareme")
    assert d.code == "E106"
    assert (d.span.line, d.span.column) == (1, 1)


# ------------------------------------------------------------------------------ collection
def test_all_errors_are_collected() -> None:
    text = (
        PRELUDE
        + 'product A { label "a" kind one_shot price 1 EUR }\n'  # E103 no vat
        + "discount D { percent 5% on product SIP }\n"  # E104 never ends
        + 'product B { label "b" kind one_shot vat standard price 2 USD }\n'  # E114
        + "pricelist L { SIP: 1 EUR SIP: 2 EUR }\n"  # E108
        + "const X = 3 EUR * 2 EUR\n"  # E102
    )
    ds = diagnostics(text)
    assert [(d.code, d.span.line) for d in ds] == [
        ("E103", 16),
        ("E104", 17),
        ("E114", 18),
        ("E108", 19),
        ("E102", 20),
    ]


def test_diagnostics_are_sorted_and_unique() -> None:
    text = PRELUDE + 'const B = A\nconst A = 1 EUR + 1\nfamily voice "x"\n'
    ds = diagnostics(text)
    keys = [(d.span.line, d.span.column, d.code) for d in ds]
    assert keys == sorted(keys)
    assert len(set(ds)) == len(ds)


def test_checks_are_pure_functions_of_the_program() -> None:
    program_text = PRELUDE + "discount D { percent 5% on product SIP }\n"
    first = diagnostics(program_text)
    assert diagnostics(program_text) == first
    assert all(callable(f) for f in CHECKS) and len(CHECKS) >= 10


# ------------------------------------------------------------------------------ clean rulesets
CLEAN = """\
ruleset "Acme Telecom" {
  currency EUR
  country FR
  timezone "Europe/Paris"
  default_proration daily
  seller_name "Acme Telecom SAS"
  seller_siren "732829320"
  payment_terms "30 days"
  recovery_indemnity 40 EUR
}
const SETUP = 49 EUR
const INDEX = 3%
rounding { unit_price 0.0001 half_up line 0.01 half_up vat 0.01 half_even }
vat standard 20% category S
vat exempt 0% category E mention "Exonéré"
reverse_charge { mention "Autoliquidation" }
export { mention "Exportation" }
proration daily { method actual_days minimum 15 days }
family voice "Voice"
family access "Access"
product FIBRE {
  label "Fibre FTTO 100M"
  kind recurring
  family access
  billing in_advance
  periodicity monthly anchor 1
  vat standard
  proration daily
  cost 200 EUR
  price 450 EUR
}
product SIP {
  label "SIP trunk channel"
  kind recurring
  family voice
  billing in_advance
  periodicity monthly
  vat standard
  price graduated { up to 10: 12.50 EUR flat 15 EUR up to 50: 10 EUR above: 8 EUR }
}
product INSTALL { label "Installation" kind one_shot vat standard price SETUP }
product CALLS {
  label "Outgoing calls"
  kind usage
  family voice
  unit second
  vat standard
  rating std
  price by zone DEST per minute { FR_FIXED: 0.01 EUR FR_MOBILE: 0.05 EUR INTL: 0.20 EUR }
}
product DATA { label "Data" kind usage unit byte vat standard price package of 500 MB at 2 EUR free 20 GB }
product SMS { label "SMS" kind usage unit sms vat standard price 0.12 EUR per sms }
product SUPPORT {
  label "Support"
  kind recurring
  billing in_arrears
  periodicity quarterly
  vat standard
  price percent 10% of family voice
}
zones DEST { "331" FR_FIXED "336" FR_MOBILE "337" FR_MOBILE "44" INTL "447" INTL }
rate_deck wholesale { prices in micro column prefix "Prefix" file "deck.csv" }
time_bands fr { peak monday .. friday from 08:00 to 20:00 weekend saturday, sunday holidays FR }
rating std {
  cost deck wholesale
  bands fr
  increments 60/60
  minimum_duration 1 second
  unanswered drop
  per_call_rounding 0.0001 half_up
  allowance 100 minutes on zones FR_FIXED, FR_MOBILE per line
  fair_use 5000 minutes per customer
  maximum_per_call 50 EUR
  country FR
}
pricelist SME for segment "sme" { SIP: 11 EUR FIBRE: 400 EUR }
pricelist BIG for segment "enterprise", "public" { SIP: volume { up to 100: 10 EUR above: 7 EUR } }
effective 2027-01-01 "2027 prices" {
  FIBRE: 450 EUR * (100% + INDEX)
  pricelist SME { SIP: 11.50 EUR }
}
effective 2027-01-01 for new subscriptions { SIP: 13 EUR }
discount WELCOME { label "Welcome" percent 20% on product SIP, FIBRE for 3 months order 10 automatic }
discount LOYAL {
  fixed 5 EUR
  on family voice
  until 2027-12-31
  when commitment_months >= 24 and quantity > 2 and not (months_since_start < 1)
  order 20
}
discount GLOBAL { percent 2% on invoice permanent order 30 }
commitment C24 {
  label "24 months"
  duration 24 months
  renewal tacit 12 months
  termination_fee min(remaining_value, commitment_value * 50%)
  cap max(1000 EUR, monthly_price * 3)
  minimum_spend 100 EUR on family voice
}
invoicing { group by customer, site order by site, family, product series "FA" }
invoicing for segment "public" { group by customer, account series "FP" }
"""


def test_realistic_clean_ruleset_has_no_diagnostics() -> None:
    assert diagnostics(CLEAN) == []


ACME = Path(__file__).resolve().parents[2] / "rulesets" / "acme.bareme"


@pytest.mark.skipif(not ACME.exists(), reason="example ruleset not present")
def test_the_example_ruleset_is_clean() -> None:
    assert check(load_ruleset(ACME)) == []


# ------------------------------------------------------------------------------ types
def test_types_and_units() -> None:
    def t(src: str, env: Env | None = None) -> str:
        expr = parse_text(f"const X = {src}").decls[0]
        assert isinstance(expr, n.Const)
        return str(type_of(expr.expr, env or Env(currency="EUR")))

    assert t("1 minute + 30 seconds") == "quantity (time)"
    assert t("2 minutes * 3") == "quantity (minutes)"
    assert t("10 EUR * 20%") == "money (EUR)"
    assert t("10 EUR / 4 EUR") == "number"
    assert t("2 years + 3 months") == "duration (months)"
    assert t("max(1 EUR, 2 EUR) > 0 EUR") == "boolean"
    assert (
        t(
            "remaining_months * monthly_price",
            Env({"remaining_months": NUMBER, "monthly_price": money("EUR")}, currency="EUR"),
        )
        == "money (EUR)"
    )
    assert UNITS["GB"].type == quantity("data")
    with pytest.raises(RulesetError) as info:
        t("3 days + 1 month")
    assert info.value.diagnostics[0].message == "cannot add duration (days) and duration (month)"


def test_const_value_is_exact() -> None:
    def v(src: str, consts: dict[str, n.Expr] | None = None) -> object:
        c = parse_text(f"const X = {src}").decls[0]
        assert isinstance(c, n.Const)
        return const_value(c.expr, consts or {})

    assert v("0.1 EUR * 3").value == Fraction(3, 10)  # type: ignore[attr-defined]
    assert v("10 EUR / 3").value == Fraction(10, 3)  # type: ignore[attr-defined]
    assert v("1 minute + 30 seconds").in_unit("minutes") == Fraction(3, 2)  # type: ignore[attr-defined]
    assert v("100 EUR * (100% + 3%)").value == Fraction(103)  # type: ignore[attr-defined]
    assert str(v("round(2.345 EUR, 2)")) == "2.35 EUR"
    assert v("2027-01-01 < 2027-06-30").value is True  # type: ignore[attr-defined]
    consts = {"A": n.NumberLit(Decimal("2"))}
    assert v("A * 3", consts).value == 6  # type: ignore[arg-type, attr-defined]
    with pytest.raises(NotConstant):
        v("quantity + 1")
    with pytest.raises(BadValue):
        v("1 EUR / 0")


# ------------------------------------------------------------------------------ robustness
NAMES = st.sampled_from(["A", "B", "SIP", "voice", "standard", "std", "DEST", "FR", "quantity", ""])
DECIMALS = st.decimals(
    min_value=-1000, max_value=1000, places=2, allow_nan=False, allow_infinity=False
)
LITERALS = st.one_of(
    st.builds(n.NumberLit, DECIMALS),
    st.builds(n.MoneyLit, DECIMALS, st.sampled_from(["EUR", "USD", "XXX"])),
    st.builds(n.PercentLit, DECIMALS),
    st.builds(n.QuantityLit, DECIMALS, st.sampled_from([*UNITS, "parsec"])),
    st.builds(n.DateLit, st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))),
    st.builds(n.StringLit, st.text(max_size=5)),
    st.builds(n.BoolLit, st.booleans()),
    st.builds(n.Name, NAMES),
)
EXPRS = st.recursive(
    LITERALS,
    lambda inner: st.one_of(
        st.builds(n.Binary, st.sampled_from(["+", "-", "*", "/", "%"]), inner, inner),
        st.builds(n.Compare, st.sampled_from(["<", "<=", "==", "!=", ">", ">="]), inner, inner),
        st.builds(n.BoolOp, st.sampled_from(["and", "or"]), inner, inner),
        st.builds(n.Not, inner),
        st.builds(n.Neg, inner),
        st.builds(
            n.Call,
            st.sampled_from(["min", "max", "abs", "ceil", "floor", "round", "sqrt"]),
            st.lists(inner, max_size=3).map(tuple),
        ),
    ),
    max_leaves=6,
)
TARGETS = st.one_of(
    st.builds(n.Target, st.just("product"), st.lists(NAMES, min_size=1, max_size=2).map(tuple)),
    st.builds(n.Target, st.just("family"), st.tuples(NAMES)),
    st.builds(n.Target, st.sampled_from(["invoice", "line", "planet"])),
)
TIERS = st.builds(n.Tier, st.none() | EXPRS, EXPRS, st.none() | EXPRS)
PRICINGS = st.one_of(
    st.builds(n.UnitPricing, EXPRS, st.none() | st.sampled_from(["minute", "MB", "days", "x"])),
    st.builds(n.FlatPricing, EXPRS),
    st.builds(
        n.TieredPricing,
        st.sampled_from(["graduated", "volume", "odd"]),
        st.lists(TIERS, max_size=4).map(tuple),
    ),
    st.builds(n.PackagePricing, EXPRS, EXPRS, st.none() | EXPRS),
    st.builds(n.PercentPricing, EXPRS, TARGETS),
    st.builds(
        n.ZonePricing,
        NAMES,
        st.sampled_from(["minute", "GB", "month"]),
        st.lists(st.builds(n.ZoneRate, NAMES, EXPRS), max_size=3).map(tuple),
    ),
)
WORD_KEYS = [
    "kind",
    "family",
    "billing",
    "vat",
    "proration",
    "unit",
    "rating",
    "method",
    "deck",
    "cost_deck",
    "bands",
    "unanswered",
    "country",
    "holidays",
    "prices_in",
    "policy",
]
WORD_VALUES = st.one_of(
    NAMES,
    st.sampled_from(
        [
            "recurring",
            "usage",
            "one_shot",
            "second",
            "sms",
            "in_advance",
            "actual_days",
            "days_30",
            "micro",
        ]
    ),
)
ATTRS = st.one_of(
    st.builds(
        n.TextAttr, st.sampled_from(["label", "mention", "series", "file"]), st.text(max_size=4)
    ),
    st.builds(n.WordAttr, st.sampled_from(WORD_KEYS), WORD_VALUES),
    st.builds(
        n.ExprAttr,
        st.sampled_from(
            [
                "cost",
                "percent",
                "fixed",
                "for",
                "when",
                "duration",
                "renewal",
                "termination_fee",
                "cap",
                "minimum",
                "minimum_duration",
                "maximum_per_call",
            ]
        ),
        EXPRS,
    ),
    st.builds(n.PriceAttr, PRICINGS),
    st.builds(
        n.PeriodicityAttr, st.sampled_from(["monthly", "weekly"]), st.none() | st.integers(-1, 40)
    ),
    st.builds(n.OnAttr, TARGETS),
    st.builds(
        n.DateAttr,
        st.just("until"),
        st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1)),
    ),
    st.builds(n.NumberAttr, st.just("order"), st.integers(-3, 3)),
    st.builds(
        n.FlagAttr, st.sampled_from(["permanent", "automatic", "allow_negative", "no_renewal"])
    ),
    st.builds(n.MinimumSpendAttr, EXPRS, st.none() | TARGETS),
    st.builds(
        n.KeysAttr,
        st.sampled_from(["group_by", "order_by", "weekend"]),
        st.lists(NAMES, max_size=2).map(tuple),
    ),
    st.builds(n.ColumnAttr, NAMES, st.text(max_size=3)),
    st.builds(
        n.PeakAttr,
        st.sampled_from(["monday", "friday", "someday"]),
        st.just("friday"),
        st.times(),
        st.sampled_from([time(8), time(20)]),
    ),
    st.builds(n.IncrementsAttr, st.integers(-1, 61), st.integers(-1, 61)),
    st.builds(n.RoundingAttr, st.just("per_call_rounding"), DECIMALS, st.just("half_up")),
    st.builds(
        n.AllowanceAttr,
        EXPRS,
        st.lists(NAMES, max_size=2).map(tuple),
        st.sampled_from(["line", "x"]),
    ),
    st.builds(n.FairUseAttr, EXPRS, st.sampled_from(["line", "customer"])),
)
BLOCK_ATTRS = st.lists(ATTRS, max_size=6).map(tuple)
ENTRIES = st.lists(st.builds(n.PriceEntry, NAMES, PRICINGS), max_size=3).map(tuple)
DECLS = st.one_of(
    st.builds(
        n.RulesetHeader,
        st.text(max_size=3),
        st.lists(
            st.builds(
                n.Setting,
                st.sampled_from(
                    [
                        "currency",
                        "country",
                        "timezone",
                        "default_proration",
                        "seller_siren",
                        "seller_vat",
                        "seller_name",
                        "recovery_indemnity",
                        "colour",
                    ]
                ),
                st.one_of(LITERALS, st.builds(n.Name, st.sampled_from(["EUR", "FR", "UTC", "xx"]))),
            ),
            max_size=4,
        ).map(tuple),
    ),
    st.builds(n.Const, NAMES, EXPRS),
    st.builds(
        n.VatDecl,
        NAMES,
        st.decimals(min_value=0, max_value=200, places=1),
        st.none() | st.sampled_from(["S", "Q"]),
        st.none() | st.text(max_size=3),
    ),
    st.builds(
        n.RoundingDecl,
        st.lists(
            st.builds(
                n.RoundingRule, st.sampled_from(["line", "vat"]), DECIMALS, st.just("half_up")
            ),
            max_size=3,
        ).map(tuple),
    ),
    st.builds(
        n.TaxDecl,
        st.sampled_from(["reverse_charge", "export"]),
        st.lists(
            st.builds(n.TextAttr, st.sampled_from(["mention", "category"]), st.text(max_size=3)),
            max_size=2,
        ).map(tuple),
    ),
    st.builds(n.FamilyDecl, NAMES, st.text(max_size=3)),
    *[
        st.builds(cls, NAMES, BLOCK_ATTRS)
        for cls in (
            n.ProrationDecl,
            n.ProductDecl,
            n.DiscountDecl,
            n.CommitmentDecl,
            n.RateDeckDecl,
            n.TimeBandsDecl,
            n.RatingDecl,
        )
    ],
    st.builds(n.PriceListDecl, NAMES, st.lists(NAMES, max_size=2).map(tuple), ENTRIES),
    st.builds(
        n.EffectiveDecl,
        st.sampled_from([date(2027, 1, 1), date(2026, 1, 1)]),
        st.booleans(),
        st.none() | st.text(max_size=3),
        st.lists(
            st.one_of(
                st.builds(n.PriceEntry, NAMES, PRICINGS),
                st.builds(n.EffectivePriceList, NAMES, ENTRIES),
            ),
            max_size=3,
        ).map(tuple),
    ),
    st.builds(n.InvoicingDecl, st.lists(NAMES, max_size=2).map(tuple), BLOCK_ATTRS),
    st.builds(
        n.ZonesDecl,
        NAMES,
        st.lists(
            st.builds(n.ZoneEntry, st.sampled_from(["33", "33", "+44", "x1", ""]), NAMES),
            max_size=4,
        ).map(tuple),
    ),
)
CODE = re.compile(r"^[EW]\d{3}$")


@given(st.lists(DECLS, max_size=8), st.lists(DECLS, max_size=3))
def test_check_never_raises_on_arbitrary_trees(main: list[n.Decl], lib: list[n.Decl]) -> None:
    program = Program(
        "main.bareme",
        (n.RulesetFile("lib.bareme", tuple(lib)), n.RulesetFile("main.bareme", tuple(main))),
        {},
    )
    ds = check(program)
    assert isinstance(ds, list)
    for d in ds:
        assert isinstance(d, Diagnostic)
        assert CODE.match(d.code), d
        assert d.message
    assert ds == check(program)  # deterministic


_GRAMMAR = (Path(__file__).resolve().parents[2] / "dsl" / "grammar.lark").read_text()
_KEYWORDS = set(re.findall(r'"([A-Za-z_]+)"', _GRAMMAR))
_TOKENS = re.compile(
    r'"[^"\n]*"|\d{4}-\d{2}-\d{2}|\d{2}:\d{2}|\d+(?:\.\d+)?|[A-Za-z_][A-Za-z0-9_]*'
)
_UNIT_WORDS = sorted(UNITS)
_CURRENCY_WORDS = ["EUR", "USD", "GBP", "CHF"]
_NAME_POOL = [
    "SIP",
    "FIBRE",
    "voice",
    "access",
    "std",
    "DEST",
    "quantity",
    "volume",
    "INDEX",
    "SETUP",
    "FR_FIXED",
    "INTL",
    "SME",
    "daily",
    "wholesale",
    "fr",
    "nope",
    "remaining_value",
]


def _replacement(token: str) -> st.SearchStrategy[str] | None:
    """Something of the same lexical class, so the text still parses most of the time."""
    if token.startswith('"') or re.fullmatch(r"\d{2}:\d{2}", token):
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", token):
        return st.sampled_from(["2026-01-01", "2027-01-01", "2027-06-30", "2020-02-29"])
    if token[0].isdigit():
        return st.sampled_from(["0", "1", "3", "10", "24", "31", "100", "150", "0.5"])
    if token in _CURRENCY_WORDS:
        return st.sampled_from(_CURRENCY_WORDS)
    if token in UNITS:
        return st.sampled_from(_UNIT_WORDS)
    if token in _KEYWORDS:
        return None
    return st.sampled_from(_NAME_POOL)


_SPOTS = [(m.start(), m.end(), _replacement(m.group(0))) for m in _TOKENS.finditer(CLEAN)]
_MUTABLE = [(a, b, r) for a, b, r in _SPOTS if r is not None]


@settings(suppress_health_check=[HealthCheck.filter_too_much])
@given(st.data())
def test_check_never_raises_on_mutated_valid_text(data: st.DataObject) -> None:
    picks = data.draw(st.lists(st.sampled_from(_MUTABLE), min_size=1, max_size=5, unique=True))
    text = CLEAN
    for start, end, repl in sorted(picks, key=lambda p: -p[0]):
        assert repl is not None
        text = text[:start] + data.draw(repl) + text[end:]
    try:
        parse_text(text, "t.bareme")
    except RulesetError:
        assume(False)
    ds = check_text(text, "t.bareme")
    assert all(CODE.match(d.code) for d in ds)
    assert ds == check_text(text, "t.bareme")
