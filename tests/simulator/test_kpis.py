"""KPIs of a small December 2026 run computed by hand.

C1: trunk A1 (20.00, cost 8.00) on line L1 with a 20 % welcome discount (grant from 15 Nov:
    -4.00), November calls 90 s to a fixed number (0.03, cost 0.015 -> 0.02) and 120 s to a
    mobile (0.20, cost 0.02); a quarterly router A2 (45.00, no cost) active but not billed in
    December (its quarters start in January, April...).
C2: trunk B1 terminated on 10 Nov: credit 20/30 x 20.00 = -13.33 (cost -5.33), a credit note.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from rich.console import Console

from engine.calendar import month_period
from engine.evaluator.run import bill, recurring_revenue
from engine.model import DataSet, DiscountGrant
from engine.pipeline import compile_ruleset, load_data
from simulator.anomalies import Anomaly
from simulator.kpis import (
    Forecast,
    Margin,
    compute_kpis,
    forecast_periods,
    line_zone,
    recurring_forecast,
)
from simulator.simulation import simulate
from simulator.summary import render_summary
from simulator.synthetic import synthetic_dataset

PERIOD = "2026-12"
D = Decimal
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "rulesets" / "acme.bareme"
EXAMPLE_DATA = ROOT / "rulesets" / "acme-data"


@pytest.fixture(scope="module")
def data(rec) -> DataSet:
    return DataSet(
        customers=(rec.customer("C1"), rec.customer("C2")),
        subscriptions=(
            rec.sub("A1", "C1", line_id="L1"),
            rec.sub("A2", "C1", "ROUTER"),
            rec.sub("B1", "C2", end_date=date(2026, 11, 10)),
        ),
        usage=(
            rec.call("R1", "L1", "2026-11-03T10:00:00", seconds=90, to="+33145678901"),
            rec.call("R2", "L1", "2026-11-04T10:00:00", seconds=120, to="0612345678"),
            rec.call("R3", "L9", "2026-11-04T10:00:00"),
        ),
        discounts=(
            DiscountGrant(
                grant_id="G1", customer_id="C1", discount="WELCOME", start_date=date(2026, 11, 15)
            ),
        ),
    )


@pytest.fixture(scope="module")
def kpis(catalogue, data):
    result = bill(catalogue, data, PERIOD)
    found = (
        Anomaly("phantom_line", "m", "anomaly.phantom_line", severity="error"),
        Anomaly("idle_subscription", "m", "anomaly.idle_subscription"),
        Anomaly("idle_subscription", "m", "anomaly.idle_subscription"),
    )
    return compute_kpis(catalogue, data, PERIOD, result, found)


def test_totals_and_services(kpis):
    assert (kpis.invoices, kpis.total_excl_vat) == (2, D("2.90"))
    assert (kpis.activated_services, kpis.billed_services, kpis.unbilled_services) == (
        2,
        1,
        ("A2",),
    )
    assert kpis.billed_ratio == D("50.00")


def test_revenue_by_family_and_zone(kpis):
    assert kpis.revenue_by_family == {"voice": D("2.90")}  # 20 - 4 + 0.03 + 0.20 - 13.33
    assert kpis.revenue_by_zone == {"FR_FIXED": D("0.03"), "FR_MOBILE": D("0.20")}


def test_margins(kpis):
    assert kpis.margin_by_customer == {
        "C1": Margin(D("16.23"), D("8.04")),
        "C2": Margin(D("-13.33"), D("-5.33")),
    }
    assert kpis.margin_by_customer["C1"].margin == D("8.19")
    assert kpis.margin_by_product == {
        "TRUNK": Margin(D("2.67"), D("2.67")),
        "VOICE": Margin(D("0.23"), D("0.04")),
    }
    assert kpis.margin_by_zone == {
        "FR_FIXED": Margin(D("0.03"), D("0.02")),
        "FR_MOBILE": Margin(D("0.20"), D("0.02")),
    }
    assert kpis.margin_total == Margin(D("2.90"), D("2.71"))


def test_credit_notes_and_negative_lines(kpis):
    assert (kpis.credit_notes, kpis.credit_notes_total) == (1, D("-13.33"))
    assert (kpis.negative_lines, kpis.negative_lines_total) == (2, D("-17.33"))
    assert kpis.negative_lines_by_kind == {"discount": D("-4.00"), "regularisation": D("-13.33")}


def test_anomaly_counts(kpis):
    assert kpis.anomalies_by_kind == {"phantom_line": 1, "idle_subscription": 2}
    assert kpis.anomalies_by_severity == {"error": 1, "warning": 2}


def test_recurring_forecast_of_the_next_three_months(kpis):
    # January: trunk 20.00 with the welcome discount on 1-14 Jan (14/31 x -4.00 = -1.81), and
    # the router's first quarter 45.00; February and March: the trunk alone.
    assert kpis.forecast == (
        Forecast("2027-01", D("65.00"), D("-1.81")),
        Forecast("2027-02", D("20.00"), D("0")),
        Forecast("2027-03", D("20.00"), D("0")),
    )
    assert kpis.forecast[0].net == D("63.19")
    assert forecast_periods("2026-11", 3) == ["2026-12", "2027-01", "2027-02"]


def test_forecast_runner_is_used(catalogue, data):
    seen: list[str] = []

    def revenue(period: str):
        seen.append(period)
        return recurring_revenue(catalogue, data, period)

    assert recurring_forecast(catalogue, data, PERIOD, months=2, revenue=revenue) == recurring_forecast(
        catalogue, data, PERIOD, months=2
    )
    assert seen == ["2027-01", "2027-02"]


def _from_invoice_lines(catalogue, data, period):
    """The forecast's definition read off the invoices of a full run."""
    start = month_period(period).start
    in_advance = {c for c, p in catalogue.products.items() if p.kind == "recurring" and p.billing == "in_advance"}
    recurring = discounts = D(0)
    for inv in bill(catalogue, data, period).invoices:
        for line in inv.lines:
            if line.product not in in_advance or line.period_start is None or line.period_start < start:
                continue
            if line.kind == "recurring":
                recurring += line.amount
            elif line.kind == "discount":
                discounts += line.amount
    return recurring, discounts


def test_recurring_revenue_is_what_the_invoice_lines_add_up_to():
    compiled = compile_ruleset(EXAMPLE)
    cat = compiled.catalogue
    example = load_data(EXAMPLE_DATA, cat).dataset
    synthetic = synthetic_dataset(cat, "2026-12", customers=300, subscriptions=1500, seed=3)
    checked = 0
    for data in (example, synthetic):
        for period in ("2026-12", "2027-01", "2027-02", "2027-07"):
            expected = _from_invoice_lines(cat, data, period)
            assert recurring_revenue(cat, data, period) == expected, period
            checked += expected[0] != 0 and expected[1] != 0
    assert checked >= 4  # the comparison saw both recurring lines and discounts


def test_as_dict_is_decimal_strings(kpis):
    out = kpis.as_dict()
    assert out["total_excl_vat"] == "2.90"
    assert out["services"] == {
        "activated": 2,
        "billed": 1,
        "billed_percent": "50.00",
        "unbilled": ["A2"],
    }
    assert out["margin_by_product"]["TRUNK"] == {
        "revenue": "2.67",
        "cost": "2.67",
        "margin": "0.00",
    }
    assert out["forecast"][0] == {
        "period": "2027-01",
        "recurring": "65.00",
        "discounts": "-1.81",
        "net": "63.19",
    }
    assert list(out["anomalies_by_kind"]) == ["idle_subscription", "phantom_line"]


def test_zone_of_usage_lines_only(catalogue, data):
    lines = [line for inv in bill(catalogue, data, PERIOD).invoices for line in inv.lines]
    assert sorted(z for z in (line_zone(catalogue, line) for line in lines) if z) == [
        "FR_FIXED",
        "FR_MOBILE",
    ]


def test_summary_renders_the_simulation(catalogue, data):
    sim = simulate(catalogue, data, PERIOD, executor="serial")
    console = Console(record=True, width=120, color_system=None)
    render_summary(sim, console, examples=1)
    text = console.export_text()
    for expected in (
        "Sim: simulation of the 2026-12 run",
        "2 invoices, 5 lines; total excl. VAT 2.90 EUR",
        "services: 1 billed of 2 active on the 1st (50.00 %)",
        "credit notes: 1 (-13.33 EUR)",
        "Revenue by family",
        "margin on costed lines: revenue 2.90, cost 2.71, margin 0.19 EUR",
        "2027-01",
        "phantom_line (1)",
        "error line L9: 1 usage record from 2026-11-04",
        "negative_invoice (1)",
        "durations: partition",
    ):
        assert expected in text, expected


def test_summary_without_anomalies(catalogue, rec):
    data = DataSet(customers=(rec.customer(),), subscriptions=(rec.sub(),))
    console = Console(record=True, width=100, color_system=None)
    render_summary(simulate(catalogue, data, PERIOD, executor="serial", forecast_months=0), console)
    assert "no anomaly" in console.export_text()
