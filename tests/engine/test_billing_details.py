"""Line details a case file does not show: accounting codes, purchase cost, legal mentions,
traces and explanations, imports and constants across files, JSON data sets."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from dsl.loader import load_ruleset
from engine.catalogue import build_catalogue
from engine.dataset import load_dataset
from engine.evaluator.run import bill
from engine.pipeline import refs_of

MAIN = """ruleset "Details" { currency EUR country FR timezone "Europe/Paris" }
import "catalogue/taxes.bareme"
const SIP_PRICE = 49.90 EUR
product SIP_TRUNK_10 {
    label "SIP Trunk 10 canaux"
    kind recurring
    billing in_advance
    periodicity monthly
    vat standard
    accounting "706110"
    cost 18.50 EUR
    price SIP_PRICE
}
"""
TAXES = """vat standard 20% category S
reverse_charge {
    mention "Autoliquidation - article 283-2 du CGI"
}
"""


def _setup(tmp: Path, customers: list[dict[str, str]], subs: list[dict[str, str]]) -> tuple[Path, Path]:
    (tmp / "catalogue").mkdir()
    (tmp / "catalogue" / "taxes.bareme").write_text(TAXES, encoding="utf-8")
    root = tmp / "main.bareme"
    root.write_text(MAIN, encoding="utf-8")
    data = tmp / "data"
    data.mkdir()
    # JSON data files are accepted like CSV ones (docs/dataset.md).
    (data / "customers.json").write_text(json.dumps(customers), encoding="utf-8")
    (data / "subscriptions.json").write_text(json.dumps(subs), encoding="utf-8")
    return root, data


def test_imports_constants_accounting_cost_mentions_and_traces(tmp_path: Path) -> None:
    root, data = _setup(
        tmp_path,
        [
            {"customer_id": "C1", "legal_name": "Alpha", "country": "FR", "siren": "732829320"},
            {"customer_id": "C2", "legal_name": "Beta BV", "country": "BE", "vat_number": "BE0403019261"},
        ],
        [
            {"subscription_id": "A1", "customer_id": "C1", "product": "SIP_TRUNK_10", "quantity": "2", "start_date": "2026-11-12"},
            {"subscription_id": "A2", "customer_id": "C2", "product": "SIP_TRUNK_10", "quantity": 1, "start_date": "2026-01-01"},
        ],
    )
    catalogue = build_catalogue(load_ruleset(root))
    loaded = load_dataset(data, refs_of(catalogue))
    assert not loaded.errors
    result = bill(catalogue, loaded.dataset, "2026-12")
    c1, c2 = result.invoices
    regularisation = next(line for line in c1.lines if line.kind == "regularisation")
    assert regularisation.accounting_code == "706110"
    # 2 x 49.90 x 19/30 = 63.2066... -> 63.21; cost 2 x 18.50 x 19/30 = 23.4333 -> 23.43
    assert (regularisation.amount, regularisation.cost) == (Decimal("63.21"), Decimal("23.43"))
    assert regularisation.explain.startswith("SIP Trunk 10 canaux, 12-30 Nov 2026, 2 x 19/30 days x 49.90 = 63.21 (")
    rules = [step.rule for step in regularisation.trace]
    assert rules == ["subscription", "price", "proration", "billing", "vat", "rounding"]
    assert regularisation.trace[-1].text == "63.206667... (exactly 9481/150) -> 63.21 (HALF_UP to 0.01, at the line)"
    assert all(step.source for step in regularisation.trace)
    # reverse charge: 0 %, category AE, the legal mention on the invoice and in the breakdown
    assert c2.mentions == ("Autoliquidation - article 283-2 du CGI",)
    assert [(v.category, v.rate, v.base, v.vat) for v in c2.vat_breakdown] == [("AE", Decimal(0), Decimal("49.90"), Decimal("0.00"))]
    assert c2.vat_breakdown[0].mention == "Autoliquidation - article 283-2 du CGI"
    assert c2.lines[0].trace[-2].source.endswith("taxes.bareme:2")
