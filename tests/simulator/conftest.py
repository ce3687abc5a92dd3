"""Shared builders of the simulator tests: a small ruleset and in-memory records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from dsl.checker import check
from dsl.loader import load_text
from engine.calendar import parse_timestamp
from engine.catalogue import Catalogue, build_catalogue
from engine.model import Customer, Subscription, UsageRecord

# Two products billed on lines (a trunk in advance, calls by zone), a quarterly rental (active
# but not billed in most months), a welcome discount for 2 months, commitments with and without
# tacit renewal, reverse charge for EU customers.
RULESET = """
ruleset "Sim" { currency EUR country FR timezone "Europe/Paris" }
vat standard 20% category S
reverse_charge { mention "Autoliquidation" }
family voice "Voix"
family equipment "Equipements"
zones DEST {
    "331" FR_FIXED
    "336" FR_MOBILE
    "999" UNALLOCATED
}
product TRUNK {
    label "Trunk"
    kind recurring
    family voice
    billing in_advance
    periodicity monthly
    vat standard
    cost 8 EUR
    price 20 EUR
}
product VOICE {
    label "Appels"
    kind usage
    family voice
    unit second
    vat standard
    cost 0.01 EUR
    price by zone DEST per minute {
        FR_FIXED: 0.02 EUR
        FR_MOBILE: 0.10 EUR
    }
}
product ROUTER {
    label "Routeur"
    kind recurring
    family equipment
    billing in_advance
    periodicity quarterly
    vat standard
    price 45 EUR
}
discount WELCOME {
    label "Bienvenue"
    percent 20%
    on product TRUNK
    for 2 months
    order 1
}
commitment C12 {
    label "Engagement 12 mois"
    duration 12 months
    renewal none
    termination_fee remaining_value
}
commitment T12 {
    label "Engagement 12 mois reconductible"
    duration 12 months
    renewal tacit 12 months
    termination_fee remaining_value
}
"""

# Every per-customer rule: price lists, percentage pricing, automatic, granted and invoice
# discounts, commitments with fees and minimum spend, segmentation by site and by account,
# usage by zone, one-shots, three tax regimes.
RICH_RULESET = """
ruleset "Partitions" { currency EUR country FR timezone "Europe/Paris" }
vat standard 20% category S
vat exempt 0% category E mention "Exonération de TVA, article 261-4-4 du CGI"
reverse_charge { mention "Autoliquidation" }
export { mention "Exonération de TVA, article 262 I du CGI" }
family voice "Voix"
family data "Data"
family services "Services"
zones DEST {
    "331" FR_FIXED  "332" FR_FIXED  "336" FR_MOBILE  "44" UK  "447" UK_MOBILE  "999" UNALLOCATED
}
proration THIRTY { method days_30 }
product SIP {
    label "SIP Trunk" kind recurring family voice billing in_advance periodicity monthly
    vat standard cost 18.50 EUR price 49.90 EUR
}
product SEATS {
    label "Postes" kind recurring family voice billing in_advance periodicity monthly
    proration THIRTY vat standard cost 4.20 EUR
    price graduated { up to 10: 12 EUR flat 15 EUR  up to 50: 10 EUR  above: 8 EUR }
}
product FIBRE {
    label "Fibre" kind recurring family data billing in_advance periodicity monthly
    vat standard cost 95 EUR price 179 EUR
}
product ROUTER {
    label "Routeur" kind recurring family data billing in_advance periodicity quarterly
    vat standard price 45 EUR
}
product SUPPORT {
    label "Support" kind recurring family services billing in_advance periodicity monthly
    vat standard price percent 10% of family voice
}
product VOICE {
    label "Appels" kind usage family voice unit second vat standard cost 0.01 EUR
    price by zone DEST per minute { FR_FIXED: 0.02 EUR  FR_MOBILE: 0.10 EUR  UK: 0.08 EUR  UK_MOBILE: 0.20 EUR }
}
product INSTALL {
    label "Installation" kind one_shot family data vat standard cost 450 EUR price 690 EUR
}
product TRAINING {
    label "Formation" kind one_shot family services vat exempt price 450 EUR
}
pricelist SME for segment "sme" { SIP: 46.90 EUR  FIBRE: 169 EUR }
discount WELCOME { label "Bienvenue" percent 20% on product SIP for 3 months order 10 }
discount VOLUME { label "Volume" percent 10% on product SEATS when volume >= 20 permanent automatic order 20 }
discount MIGRATION { label "Mois offert" percent 100% on line for 1 months order 40 }
discount GESTURE { label "Geste" fixed 50 EUR on invoice for 1 months order 90 }
commitment E12 { label "Engagement 12 mois" duration 12 months renewal tacit 12 months termination_fee remaining_months * monthly_price }
commitment E36 {
    label "Engagement 36 mois" duration 36 months renewal none
    termination_fee remaining_value * 50% cap 1500 EUR minimum_spend 100 EUR on family voice
}
invoicing { group by customer, site order by site, family, product }
invoicing for segment "enterprise" { group by customer, account order by account, family, product }
"""


def compile_text(text: str, checked: bool = True) -> Catalogue:
    program = load_text(text, "sim.bareme")
    if checked:
        errors = [d for d in check(program) if d.severity == "error"]
        assert not errors, [f"{d.code} {d.message}" for d in errors]
    return build_catalogue(program)


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return compile_text(RULESET)


@pytest.fixture(scope="session")
def rich_catalogue() -> Catalogue:
    return compile_text(RICH_RULESET)


@pytest.fixture(scope="session")
def ruleset_text() -> str:
    return RULESET


@pytest.fixture(scope="session")
def compile_ruleset() -> Callable[..., Catalogue]:
    return compile_text


class Records:
    """Short constructors for in-memory records (strict models: real dates and decimals)."""

    @staticmethod
    def customer(cid: str = "C1", **kw: Any) -> Customer:
        values: dict[str, Any] = {"legal_name": f"{cid} SAS", "country": "FR", "siren": "732829320"}
        values.update(kw)
        return Customer(customer_id=cid, **values)

    @staticmethod
    def sub(sid: str = "A1", cid: str = "C1", product: str = "TRUNK", **kw: Any) -> Subscription:
        values: dict[str, Any] = {"quantity": Decimal(1), "start_date": date(2026, 1, 1)}
        values.update(kw)
        for key in ("quantity", "unit_price"):
            if isinstance(values.get(key), int | str):
                values[key] = Decimal(values[key])
        return Subscription(subscription_id=sid, customer_id=cid, product=product, **values)

    @staticmethod
    def call(
        rid: str, line: str, when: str, seconds: int = 60, to: str = "+33145678901"
    ) -> UsageRecord:
        stamp: datetime = parse_timestamp(when)
        return UsageRecord(
            record_id=rid,
            line_id=line,
            product="VOICE",
            start_time=stamp,
            quantity=Decimal(seconds),
            destination=to,
        )


@pytest.fixture(scope="session")
def rec() -> type[Records]:
    return Records


def _real_simulator_package() -> None:
    """Under pytest, `tests/` comes first on sys.path and this folder (no __init__.py) makes
    `simulator` a namespace package whose __init__ never runs: `from simulator import simulate`
    would fail, here and in the command line's lazy imports. Load the real package instead."""
    import importlib.util
    import sys
    from pathlib import Path

    current = sys.modules.get("simulator")
    if current is not None and getattr(current, "__file__", None):
        return
    root = Path(__file__).resolve().parents[2] / "simulator"
    spec = importlib.util.spec_from_file_location(
        "simulator", root / "__init__.py", submodule_search_locations=[str(root)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["simulator"] = module
    spec.loader.exec_module(module)


_real_simulator_package()
