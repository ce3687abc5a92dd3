"""The whole-period fast path (one prototype line per price, quantity and period, copied for
each subscription; unchanged periods not regularised) bills exactly what the general path
bills: pieces, proration and regularisation for every subscription."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.evaluator import recurring
from engine.evaluator.run import bill
from engine.pipeline import compile_ruleset, load_data
from simulator.synthetic import synthetic_dataset

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def example():
    compiled = compile_ruleset(ROOT / "rulesets" / "acme.bareme")
    cat = compiled.catalogue
    return cat, {
        "example": load_data(ROOT / "rulesets" / "acme-data", cat).dataset,
        "synthetic": synthetic_dataset(cat, "2026-12", customers=400, subscriptions=2000, seed=7),
    }


@pytest.mark.parametrize("source", ["example", "synthetic"])
@pytest.mark.parametrize("period", ["2026-12", "2027-01", "2027-07"])
def test_prototypes_bill_what_the_general_path_bills(example, source, period, monkeypatch):
    cat, datasets = example
    data = datasets[source]
    fast = bill(cat, data, period)
    monkeypatch.setattr(recurring, "PROTOTYPES", False)
    general = bill(cat, data, period)
    assert fast.as_dict() == general.as_dict()
    assert sum(len(i.lines) for i in fast.invoices) > 50  # the comparison saw a real run


def test_the_fast_path_is_taken(example, monkeypatch):
    cat, datasets = example
    calls = []
    original = recurring._whole_period

    def spy(*args):
        calls.append(args[2].subscription_id)
        return original(*args)

    monkeypatch.setattr(recurring, "_whole_period", spy)
    bill(cat, datasets["synthetic"], "2026-12")
    assert len(calls) > 1000
