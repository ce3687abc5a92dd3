"""Properties of a billing run over generated rulesets and data sets.

- the compiled evaluator equals the reference interpreter (differential test);
- results do not depend on the order of input rows;
- invoice totals equal the sum of their lines, VAT is computed per rate on the sum (EN 16931);
- the regularisation lines of a period add up, exactly, to the prorated actual charge.
"""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsl.exact import Fraction
from dsl.loader import load_text
from engine.calendar import Period
from engine.catalogue import build_catalogue
from engine.dataset import load_dataset
from engine.evaluator.backend import make_pricer
from engine.evaluator.charges import RunContext
from engine.evaluator.recurring import recurring_charges
from engine.evaluator.run import bill
from engine.invoice import RunResult
from engine.pipeline import refs_of

SIRENS = ["732829320", "552100554", "542065479", "443061841"]
PERIODS = ["2026-11", "2026-12", "2027-01", "2027-02"]


def money() -> st.SearchStrategy[str]:
    return st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2).map(str)


@st.composite
def pricing(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["unit", "unit_const", "flat", "graduated", "volume", "package"]))
    if kind == "unit":
        return f"{draw(money())} EUR"
    if kind == "unit_const":
        return f"BASE * {draw(st.integers(1, 4))} + {draw(money())} EUR"
    if kind == "flat":
        return f"flat {draw(money())} EUR"
    if kind == "package":
        return f"package of {draw(st.integers(1, 10))} at {draw(money())} EUR free {draw(st.integers(0, 5))}"
    bounds = sorted(draw(st.sets(st.integers(1, 60), min_size=1, max_size=3)))
    tiers = " ".join(
        f"up to {b}: {draw(money())} EUR" + (f" flat {draw(money())} EUR" if draw(st.booleans()) else "")
        for b in bounds
    )
    return f"{kind} {{ {tiers} above: {draw(money())} EUR }}"


@st.composite
def ruleset(draw: st.DrawFn) -> str:
    parts = [
        'ruleset "Generated" { currency EUR country FR timezone "Europe/Paris" }',
        "const BASE = 10.50 EUR",
        "vat standard 20% category S",
        "vat reduced 5.5% category S",
        'reverse_charge { mention "Autoliquidation" }',
        'family voice "Voix"',
        'family data "Data"',
        "proration calendar { method actual_days }",
        "proration thirty { method days_30 }",
        "proration whole { method none }",
        "proration min10 { method actual_days minimum 10 days }",
        "rounding { line 0.01 MODE vat 0.01 half_up }".replace(
            "MODE", draw(st.sampled_from(["half_up", "half_even", "down"]))
        ),
    ]
    for i in range(3):
        parts.append(
            f"""product P{i} {{
    label "Produit {i}"
    kind recurring
    family {draw(st.sampled_from(["voice", "data"]))}
    billing {draw(st.sampled_from(["in_advance", "in_arrears"]))}
    periodicity {draw(st.sampled_from(["monthly", "monthly anchor 15", "quarterly"]))}
    vat {draw(st.sampled_from(["standard", "reduced"]))}
    proration {draw(st.sampled_from(["calendar", "thirty", "whole", "min10"]))}
    price {draw(pricing())}
}}"""
        )
    if draw(st.booleans()):
        # price changes inside the runs' periods, for everyone or for new subscriptions only
        for since in sorted(draw(st.sets(st.sampled_from(["2026-10-01", "2026-11-16", "2027-01-01"]), max_size=2))):
            new_only = " for new subscriptions" if draw(st.booleans()) else ""
            parts.append(f'effective {since}{new_only} "Tarifs {since}" {{ P0: {draw(money())} EUR }}')
    parts.append(
        f"""discount D1 {{
    label "Remise"
    percent {draw(st.integers(1, 100))}%
    on family {draw(st.sampled_from(["voice", "data"]))}
    for {draw(st.integers(1, 6))} months
    order 1
}}
discount D2 {{
    label "Remise fixe"
    fixed {draw(money())} EUR
    on product P{draw(st.integers(0, 2))}
    until 2027-03-31
    order 2
}}
discount D3 {{
    label "Remise facture"
    {draw(st.sampled_from(["percent 5%", "fixed 20 EUR"]))}
    on invoice
    permanent
    order 3
}}
commitment C12 {{
    label "Engagement"
    duration 12 months
    termination_fee min(remaining_value, commitment_value * 50%)
    cap 300 EUR
}}"""
    )
    parts.append(
        "invoicing { group by customer, GROUP order by ORDER }".replace(
            "GROUP", draw(st.sampled_from(["site", "account", "family"]))
        ).replace("ORDER", draw(st.sampled_from(["site, family, product", "product", "kind, start"])))
    )
    return "\n".join(parts) + "\n"


def _date(draw: st.DrawFn, lo: date, hi: date) -> date:
    return lo + timedelta(days=draw(st.integers(0, (hi - lo).days)))


@st.composite
def dataset(draw: st.DrawFn) -> dict[str, list[dict[str, str]]]:
    n_customers = draw(st.integers(1, 4))
    customers, sites, accounts, subs, changes, grants = [], [], [], [], [], []
    for c in range(n_customers):
        cid = f"C{c}"
        country = draw(st.sampled_from(["FR", "FR", "BE"]))
        customers.append(
            {
                "customer_id": cid,
                "legal_name": f"Client {c}",
                "country": country,
                "siren": SIRENS[c] if country == "FR" else "",
                "vat_number": "BE0403019261" if country == "BE" else "",
            }
        )
        for s in range(draw(st.integers(0, 2))):
            sites.append({"site_id": f"{cid}S{s}", "customer_id": cid, "name": f"Site {s}"})
        accounts.append({"account_id": f"{cid}K", "customer_id": cid, "name": "Compte"})
        for k in range(draw(st.integers(1, 4))):
            sid = f"{cid}A{k}"
            start = _date(draw, date(2026, 6, 1), date(2027, 1, 31))
            end = ""
            if draw(st.booleans()):
                end = (start + timedelta(days=draw(st.integers(0, 200)))).isoformat()
            my_sites = [x["site_id"] for x in sites if x["customer_id"] == cid]
            subs.append(
                {
                    "subscription_id": sid,
                    "customer_id": cid,
                    "product": f"P{draw(st.integers(0, 2))}",
                    "quantity": str(draw(st.integers(0, 80))),
                    "start_date": start.isoformat(),
                    "end_date": end,
                    "site_id": draw(st.sampled_from(["", *my_sites])),
                    "account_id": draw(st.sampled_from(["", f"{cid}K"])),
                    "unit_price": draw(st.sampled_from(["", "", "", "39.90"])),
                    "commitment": draw(st.sampled_from(["", "C12"])),
                }
            )
            if draw(st.booleans()):
                last = date.fromisoformat(end) if end else date(2027, 3, 1)
                if last > start:
                    changes.append(
                        {
                            "subscription_id": sid,
                            "effective_date": _date(draw, start + timedelta(days=1), last).isoformat(),
                            "quantity": str(draw(st.integers(0, 80))),
                        }
                    )
        for g, code in enumerate(draw(st.lists(st.sampled_from(["D1", "D2", "D3"]), max_size=3, unique=True))):
            grants.append(
                {
                    "grant_id": f"{cid}G{g}",
                    "customer_id": cid,
                    "discount": code,
                    "start_date": _date(draw, date(2026, 6, 1), date(2027, 1, 31)).isoformat(),
                }
            )
    return {
        "customers": customers,
        "sites": sites,
        "accounts": accounts,
        "subscriptions": subs,
        "quantity_changes": changes,
        "discounts": grants,
    }


def write_dataset(tables: dict[str, list[dict[str, str]]], directory: Path, shuffle_seed: int | None = None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        if not rows:
            continue
        rows = list(rows)
        if shuffle_seed is not None:
            random.Random(shuffle_seed).shuffle(rows)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        (directory / f"{name}.csv").write_text(buf.getvalue(), encoding="utf-8")


def run(text: str, directory: Path, period: str, backend: str = "compiled") -> RunResult:
    catalogue = build_catalogue(load_text(text, "gen.bareme"))
    loaded = load_dataset(directory, refs_of(catalogue), tz=catalogue.timezone)
    assert not loaded.errors, [str(e) for e in loaded.errors]
    return bill(catalogue, loaded.dataset, period, make_pricer(backend))


def as_json(result: RunResult) -> str:
    return json.dumps(result.as_dict(), sort_keys=True)


PROPS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@PROPS
@given(text=ruleset(), tables=dataset(), period=st.sampled_from(PERIODS))
def test_compiled_equals_reference(text: str, tables: dict[str, list[dict[str, str]]], period: str, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("data")
    write_dataset(tables, d)
    assert as_json(run(text, d, period, "compiled")) == as_json(run(text, d, period, "reference"))


@PROPS
@given(text=ruleset(), tables=dataset(), period=st.sampled_from(PERIODS), seed=st.integers(0, 10_000))
def test_row_order_does_not_matter(text: str, tables: dict[str, list[dict[str, str]]], period: str, seed: int, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    a, b = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    write_dataset(tables, a)
    write_dataset(tables, b, shuffle_seed=seed)
    assert as_json(run(text, a, period)) == as_json(run(text, b, period))


@PROPS
@given(text=ruleset(), tables=dataset(), period=st.sampled_from(PERIODS))
def test_totals_and_vat_per_rate(text: str, tables: dict[str, list[dict[str, str]]], period: str, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("data")
    write_dataset(tables, d)
    result = run(text, d, period)
    for inv in result.invoices:
        assert inv.total_excl_vat == sum((line.amount for line in inv.lines), Decimal(0))
        bases: dict[tuple[str, Decimal], Decimal] = {}
        for line in inv.lines:
            assert line.amount == line.amount.quantize(Decimal("0.01"))
            key = (line.vat_category, line.vat_rate)
            bases[key] = bases.get(key, Decimal(0)) + line.amount
        assert {(v.category, v.rate): v.base for v in inv.vat_breakdown} == bases
        for v in inv.vat_breakdown:
            # EN 16931 BR-CO-17: VAT of a rate = base x rate, rounded once (half up to the cent).
            assert v.vat == (v.base * v.rate / 100).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
        assert inv.total_vat == sum((v.vat for v in inv.vat_breakdown), Decimal(0))
        assert inv.total_incl_vat == inv.total_excl_vat + inv.total_vat


UNIT_RULESET = """
ruleset "R" { currency EUR country FR }
vat standard 20% category S
product P {
    label "P"
    kind recurring
    billing BILLING
    periodicity monthly
    vat standard
    price 49.90 EUR
}
"""


@settings(max_examples=60, deadline=None)
@given(
    billing=st.sampled_from(["in_advance", "in_arrears"]),
    start=st.dates(date(2026, 10, 1), date(2026, 11, 30)),
    end=st.one_of(st.none(), st.dates(date(2026, 11, 1), date(2026, 12, 31))),
    q0=st.integers(0, 50),
    changes=st.lists(st.tuples(st.dates(date(2026, 11, 2), date(2026, 11, 30)), st.integers(0, 50)), max_size=3, unique_by=lambda c: c[0]),
)
def test_period_charges_add_up_to_the_prorated_whole(billing: str, start: date, end: date | None, q0: int, changes: list[tuple[date, int]]) -> None:
    """Whatever happens in November, the lines billed for November (in advance on the November
    run, regularised on the December run; or in arrears) add up, exactly before rounding, to
    49.90 x sum(quantity x days served) / 30."""
    from engine.model import Customer, DataSet, QuantityChange, Subscription

    if end is not None and end < start:
        end = start
    catalogue = build_catalogue(load_text(UNIT_RULESET.replace("BILLING", billing), "r.bareme"))
    product = catalogue.products["P"]
    customer = Customer(customer_id="C", legal_name="C", country="FR")
    qc = tuple(
        QuantityChange(subscription_id="S", effective_date=d, quantity=Decimal(q))
        for d, q in changes
        if d > start and (end is None or d <= end)
    )
    sub = Subscription(
        subscription_id="S", customer_id="C", product="P", quantity=Decimal(q0), start_date=start, end_date=end, quantity_changes=qc
    )
    DataSet(customers=(customer,), subscriptions=(sub,))
    november = Period(date(2026, 11, 1), date(2026, 12, 1))
    total = Fraction(0)
    for run_period in ("2026-11", "2026-12"):
        ctx = RunContext.for_period(catalogue, make_pricer("compiled"), run_period)
        for charge in recurring_charges(ctx, customer, sub, product):
            if charge.period is not None and november.start <= charge.period.start < november.end:
                total += charge.exact
    expected = Fraction(0)
    day = november.start
    while day < november.end:
        expected += Fraction(sub.quantity_on(day))
        day += timedelta(days=1)
    assert total == Fraction("49.90") * expected / 30


def _with_twins(tables: dict[str, list[dict[str, str]]]) -> dict[str, list[dict[str, str]]]:
    """Each subscription with twins that differ from it in one thing: none (another id), a
    start 400 days earlier (the same course within the run when both started before it), the
    contract price, the quantity, the quantity changes. Twins with the same course share the
    fast path's memoised lines; a dependency missing from its key makes twins that differ in it
    share lines, which the general path tells apart."""
    subs, changes = list(tables["subscriptions"]), list(tables["quantity_changes"])
    for s in tables["subscriptions"]:
        sid = s["subscription_id"]
        own = [c for c in tables["quantity_changes"] if c["subscription_id"] == sid]
        earlier = (date.fromisoformat(s["start_date"]) - timedelta(days=400)).isoformat()
        twins = {
            "T": ({}, own),
            "E": ({"start_date": earlier}, own),
            "U": ({"unit_price": "" if s["unit_price"] else "39.90"}, own),
            "N": ({"quantity": str(int(s["quantity"]) + 1)}, own),
            "C": ({}, []),
        }
        for suffix, (changed, twin_changes) in twins.items():
            subs.append({**s, **changed, "subscription_id": sid + suffix})
            changes += [{**c, "subscription_id": sid + suffix} for c in twin_changes]
    return {**tables, "subscriptions": subs, "quantity_changes": changes}


@PROPS
@given(text=ruleset(), tables=dataset(), period=st.sampled_from(PERIODS))
def test_fast_path_equals_general_path(text: str, tables: dict[str, list[dict[str, str]]], period: str, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    """Whole-period prototypes and memoised courses (engine.evaluator.recurring) bill what
    pieces, proration and regularisation bill for every subscription on its own."""
    from engine.evaluator import recurring

    d = tmp_path_factory.mktemp("data")
    write_dataset(_with_twins(tables), d)
    fast = as_json(run(text, d, period))
    recurring.PROTOTYPES = False
    try:
        general = as_json(run(text, d, period))
    finally:
        recurring.PROTOTYPES = True
    assert fast == general
