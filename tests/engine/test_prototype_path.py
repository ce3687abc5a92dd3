"""The whole-period fast path (one prototype line per price, quantity and period, copied for
each subscription; unchanged periods not regularised) bills exactly what the general path
bills: pieces, proration and regularisation for every subscription."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from engine.evaluator import recurring
from engine.evaluator.run import bill
from engine.model import Customer, DataSet, Subscription
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
        # subscriptions from before and after 2027-01-01, when SIP prices for new
        # subscriptions start: the start date picks the price of otherwise alike lines
        "new-prices": synthetic_dataset(cat, "2027-07", customers=400, subscriptions=2000, seed=8),
    }


@pytest.mark.parametrize("source", ["example", "synthetic", "new-prices"])
@pytest.mark.parametrize("period", ["2026-12", "2027-01", "2027-07"])
def test_prototypes_bill_what_the_general_path_bills(example, source, period, monkeypatch):
    cat, datasets = example
    data = datasets[source]
    fast = bill(cat, data, period)
    monkeypatch.setattr(recurring, "PROTOTYPES", False)
    general = bill(cat, data, period)
    assert fast.as_dict() == general.as_dict()
    assert sum(len(i.lines) for i in fast.invoices) > 50  # the comparison saw a real run


@pytest.mark.pure_python
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


@pytest.mark.parametrize("end", [None, date(2027, 6, 15)])
def test_start_dates_around_new_prices_keep_their_own_prices(example, monkeypatch, end):
    """Two SIP trunks alike in the run (same quantity, same course inside its periods) but
    one started before the prices for new subscriptions of 2027-01-01 and one after: they
    share no memoised line, whether steady or ending in the usage month."""
    cat, _ = example
    customer = Customer(customer_id="C1", legal_name="Client", country="FR", siren="732829320")
    subs = tuple(
        Subscription(
            subscription_id=sid, customer_id="C1", product="SIP_TRUNK_10", quantity=Decimal(2),
            start_date=start, end_date=end,
        )
        for sid, start in (("S-OLD", date(2026, 12, 1)), ("S-NEW", date(2027, 2, 1)))
    )
    data = DataSet(customers=(customer,), subscriptions=subs)
    fast = bill(cat, data, "2027-07")
    monkeypatch.setattr(recurring, "PROTOTYPES", False)
    general = bill(cat, data, "2027-07")
    assert fast.as_dict() == general.as_dict()
    amounts = {line.subscription_id: line.unit_price for inv in fast.invoices for line in inv.lines}
    assert amounts["S-OLD"] != amounts["S-NEW"]


def test_slices_billed_with_one_context_bill_what_they_bill_alone(example):
    """Partitions of one data set share a run context (its memo: prototypes, prices, steps)."""
    from engine.evaluator.run import run_context
    from simulator.partition import split_dataset

    cat, datasets = example
    slices = [s.dataset() for s in split_dataset(datasets["synthetic"], 4)]
    shared = run_context(cat, "2026-12")
    together = [bill(cat, d, "2026-12", context=shared).as_dict() for d in slices]
    alone = [bill(cat, d, "2026-12").as_dict() for d in slices]
    assert together == alone
    with pytest.raises(ValueError, match="another catalogue, period or tracing"):
        bill(cat, slices[0], "2027-01", context=shared)
    with pytest.raises(ValueError, match="another catalogue, period or tracing"):
        recurring_revenue_of(cat, slices[0], shared)
    from engine.evaluator.backend import make_pricer

    with pytest.raises(ValueError, match="give the pricer to run_context"):
        bill(cat, slices[0], "2026-12", make_pricer("reference"), context=shared)


def recurring_revenue_of(cat, data, context):
    from engine.evaluator.run import recurring_revenue

    return recurring_revenue(cat, data, "2026-12", context=context)  # a traced context
