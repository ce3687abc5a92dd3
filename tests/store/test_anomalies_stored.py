"""Every anomaly kind through the store, on SQLite and on PostgreSQL: for each kind the
simulator knows, a scenario that triggers it and one that does not.

Each scenario is a data-set directory of CSV files imported with ``import_directory`` (as
``bareme import`` does), a run of December 2026 simulated from the store with
``simulate_period`` (usage of November), and the anomalies read back from the database with a
new connection: the ``anomalies`` rows of the run, not the in-memory ``Simulation``.

The thresholds come from the ruleset's settings (not the defaults: 40 %, 30 EUR, 1 month), so a
run that ignored them would report other anomalies. Two kinds cannot come from an import:
- legal identifiers the data-set loader refuses (an invalid SIREN or IBAN, a French customer
  without SIREN) are written into the stored rows directly (a store filled before the loader
  checked them, or edited by hand), which the run must still report;
- a discount line after its window is what an evaluator bug would produce: the evaluator's
  grants are given a longer window than the ruleset's (``engine.evaluator.run.grants_for``
  patched), the check compares with the ruleset's.
"""

from __future__ import annotations

import ast
import csv
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

import engine.evaluator.run as evaluator_run
import simulator.anomalies as anomalies_module
from engine.evaluator.discounts import Grant
from engine.pipeline import CompiledRuleset, compile_ruleset, load_data
from engine.store.db import Store, open_store
from engine.store.importer import ImportRefused, import_directory
from engine.store.runs import approve_run, find_run
from engine.store.schema import Anomaly, CustomerRow, Invoice, InvoiceLine
from engine.store.simulation import simulate_period
from simulator import simulate
from simulator.anomalies import CHECKS, AnomalyConfig

PERIOD = "2026-12"  # bills usage of November 2026
PREVIOUS = "2026-11"

# The small ruleset of tests/simulator/conftest.py, with anomaly thresholds in its settings.
RULESET = """
ruleset "Sim" {
    currency EUR country FR timezone "Europe/Paris"
    anomaly_variation_percent 40%
    anomaly_variation_amount 30 EUR
    anomaly_idle_months 1
}
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
    label "Trunk" kind recurring family voice billing in_advance periodicity monthly
    vat standard cost 8 EUR price 20 EUR
}
product VOICE {
    label "Appels" kind usage family voice unit second vat standard cost 0.01 EUR
    price by zone DEST per minute { FR_FIXED: 0.02 EUR  FR_MOBILE: 0.10 EUR }
}
product ROUTER {
    label "Routeur" kind recurring family equipment billing in_advance periodicity quarterly
    vat standard price 45 EUR
}
discount WELCOME { label "Bienvenue" percent 20% on product TRUNK for 2 months order 1 }
commitment C12 {
    label "Engagement 12 mois" duration 12 months renewal none termination_fee remaining_value
}
commitment T12 {
    label "Engagement 12 mois reconductible" duration 12 months renewal tacit 12 months
    termination_fee remaining_value
}
"""
CONFIG = AnomalyConfig(variation_percent=Decimal(40), variation_amount=Decimal(30), idle_months=1)


# ------------------------------------------------------------------------- data-set rows
COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "legal_name", "country", "siren", "vat_number", "iban"),
    "subscriptions": (
        "subscription_id",
        "customer_id",
        "product",
        "quantity",
        "start_date",
        "end_date",
        "line_id",
        "unit_price",
        "commitment",
        "commitment_start",
    ),
    "quantity_changes": ("subscription_id", "effective_date", "quantity"),
    "usage": ("record_id", "line_id", "product", "start_time", "quantity", "destination"),
    "discounts": ("grant_id", "customer_id", "discount", "start_date", "subscription_id"),
}
Row = dict[str, str]
Files = dict[str, list[Row]]

VALID_SIREN = "732829320"


def customer(cid: str = "C1", **kw: str) -> Row:
    return {
        "customer_id": cid,
        "legal_name": f"{cid} SAS",
        "country": "FR",
        "siren": VALID_SIREN,
    } | kw


def sub(sid: str = "A1", cid: str = "C1", product: str = "TRUNK", **kw: str) -> Row:
    values = {"subscription_id": sid, "customer_id": cid, "product": product}
    return values | {"quantity": "1", "start_date": "2026-01-01"} | kw


def call(rid: str, line: str, when: str, seconds: int = 60, to: str = "+33145678901") -> Row:
    return {
        "record_id": rid,
        "line_id": line,
        "product": "VOICE",
        "start_time": when,
        "quantity": str(seconds),
        "destination": to,
    }


def grant(gid: str, start: str, cid: str = "C1", discount: str = "WELCOME") -> Row:
    return {"grant_id": gid, "customer_id": cid, "discount": discount, "start_date": start}


def change(sid: str, effective: str, quantity: int) -> Row:
    return {"subscription_id": sid, "effective_date": effective, "quantity": str(quantity)}


def files(
    customers: list[Row] | None = None,
    subscriptions: list[Row] | None = None,
    usage: list[Row] | None = None,
    **more: list[Row],
) -> Files:
    out: Files = {"customers": customers if customers is not None else [customer()]}
    out["subscriptions"] = subscriptions if subscriptions is not None else [sub()]
    if usage:
        out["usage"] = usage
    out.update(more)
    return out


def write_dataset(directory: Path, data: Files) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for table, rows in data.items():
        with (directory / f"{table}.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, COLUMNS[table], restval="")
            writer.writeheader()
            writer.writerows(rows)
    return directory


# ------------------------------------------------------------------------- scenarios
@dataclass(frozen=True)
class Expected:
    """One anomaly of the kind under test, as stored."""

    severity: str
    customer_id: str | None = None
    subscription_id: str | None = None
    record_id: str | None = None
    invoice_key: str | None = None
    message: str = ""  # a part of the message


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str
    rule: str
    data: Files
    expected: tuple[Expected, ...] = ()  # empty: the kind must not be reported
    previous: bool = False  # simulate and approve November first
    late: Files = field(default_factory=dict)  # rows imported after November's run
    stored_edits: dict[str, dict[str, str | None]] = field(default_factory=dict)  # customers
    patch: Callable[[pytest.MonkeyPatch], None] | None = None

    @property
    def triggers(self) -> bool:
        return bool(self.expected)


def _longer_discount_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """The evaluator sees every discount granted for 12 months (the ruleset says 2): the
    discount lines it writes after the real window are what the check is for."""
    original = evaluator_run.grants_for

    def grants_for(*args: Any, **kwargs: Any) -> list[Grant]:
        return [
            Grant(replace(g.discount, months=12), g.start, g.subscription_id, g.source)
            if g.discount.months is not None
            else g
            for g in original(*args, **kwargs)
        ]

    monkeypatch.setattr(evaluator_run, "grants_for", grants_for)


PLAIN = files()
ON_LINE = {"line_id": "L1"}
NOVEMBER_CALL = call("R1", "L1", "2026-11-03T10:00:00")

SCENARIOS: tuple[Scenario, ...] = (
    # ---------------------------------------------------------------- phantom line
    Scenario(
        "phantom-line-left-and-never-subscribed",
        "phantom_line",
        "anomaly.phantom_line",
        files(
            subscriptions=[sub(line_id="L1", end_date="2026-11-10")],
            usage=[
                call("R1", "L1", "2026-11-05T10:00:00"),
                call("R2", "L1", "2026-11-20T10:00:00"),  # after A1 left the line
                call("R4", "L9", "2026-11-05T10:00:00"),
                call("R3", "L9", "2026-11-04T10:00:00"),
            ],
        ),
        (
            Expected(
                "error",
                "C1",
                "A1",
                "R2",
                message="line L1: 1 usage record from 2026-11-20 to 2026-11-20 with no "
                "subscription in service (service used, never billed); the line belongs to "
                "subscription A1 of C1 from 2026-01-01 to 2026-11-10",
            ),
            Expected(
                "error",
                record_id="R3",
                message="line L9: 2 usage records from 2026-11-04 to 2026-11-05",
            ),
        ),
    ),
    Scenario(
        "phantom-line-none-when-subscribed",
        "phantom_line",
        "anomaly.phantom_line",
        files(subscriptions=[sub(**ON_LINE)], usage=[NOVEMBER_CALL]),
    ),
    # ---------------------------------------------------------------- idle subscription
    Scenario(
        "idle-subscription-without-november-usage",
        "idle_subscription",
        "anomaly.idle_subscription",
        files(
            customers=[customer("C1"), customer("C2")],
            subscriptions=[sub(**ON_LINE), sub("B1", "C2", line_id="L2")],
            usage=[call("R1", "L2", "2026-11-30T23:00:00")],  # B1 is used, A1 is not
        ),
        (
            Expected(
                "warning",
                "C1",
                "A1",
                message="has no usage from 2026-11-01 to 2026-11-30 (1 months)",
            ),
        ),
    ),
    Scenario(
        "idle-subscription-none-with-usage-recent-start-or-no-line",
        "idle_subscription",
        "anomaly.idle_subscription",
        files(
            subscriptions=[
                sub(**ON_LINE),
                sub("A2", line_id="L2", start_date="2026-11-02"),  # not a whole month yet
                sub("A3"),  # no line: no usage expected
            ],
            usage=[call("R1", "L1", "2026-11-01T00:30:00")],
        ),
    ),
    # ---------------------------------------------------------------- unrated usage
    Scenario(
        "unrated-usage-zone-without-price",
        "unrated_usage",
        "anomaly.unrated_usage",
        files(
            subscriptions=[sub(**ON_LINE)],
            usage=[
                call("R1", "L1", "2026-11-03T10:00:00", to="+9991234567"),
                call("R2", "L9", "2026-11-03T10:00:00", to="+9991234567"),  # phantom instead
                call("R3", "L1", "2026-11-04T10:00:00", to="0612345678"),
            ],
        ),
        (
            Expected(
                "error",
                "C1",
                "A1",
                "R1",
                message="record R1 on line L1 is not billed: zone UNALLOCATED has no price in VOICE",
            ),
        ),
    ),
    Scenario(
        "unrated-usage-none-when-every-record-is-priced",
        "unrated_usage",
        "anomaly.unrated_usage",
        files(
            subscriptions=[sub(**ON_LINE)],
            usage=[
                call("R1", "L1", "2026-11-03T10:00:00", to="0612345678"),
                call("R2", "L1", "2026-11-04T10:00:00", to="+33145678901"),
            ],
        ),
    ),
    # ---------------------------------------------------------------- duplicate usage
    Scenario(
        "duplicate-usage-same-call-three-times",
        "duplicate_usage",
        "anomaly.duplicate_usage",
        files(
            subscriptions=[sub(**ON_LINE)],
            usage=[
                call("R1", "L1", "2026-11-03T10:00:00"),
                call("R2", "L1", "2026-11-03T10:00:00"),
                call("R3", "L1", "2026-11-03T09:00:00Z"),  # the same instant, in UTC
                call("R4", "L1", "2026-11-03T10:00:00", seconds=61),
            ],
        ),
        (Expected("error", "C1", "A1", "R2", message="records R1, R2, R3 on line L1"),),
    ),
    Scenario(
        "duplicate-usage-none-when-quantity-or-time-differs",
        "duplicate_usage",
        "anomaly.duplicate_usage",
        files(
            subscriptions=[sub(**ON_LINE)],
            usage=[
                call("R1", "L1", "2026-11-03T10:00:00", seconds=60),
                call("R2", "L1", "2026-11-03T10:00:00", seconds=61),
                call("R3", "L1", "2026-11-03T10:00:01", seconds=60),
            ],
        ),
    ),
    # ---------------------------------------------------------------- usage outside period
    Scenario(
        "usage-outside-period-at-both-ends",
        "usage_outside_period",
        "anomaly.usage_outside_period",
        files(
            subscriptions=[sub(**ON_LINE)],
            usage=[
                call("R1", "L1", "2026-10-31T23:30:00"),  # local time: October
                call("R3", "L1", "2026-12-01T00:10:00+01:00"),  # December: the next run's
                call("R4", "L1", "2026-11-30T23:05:00Z"),  # 1 December 00:05 in Paris
                call("R5", "L1", "2026-11-15T10:00:00"),
            ],
        ),
        (
            Expected(
                "warning",
                "C1",
                "A1",
                "R1",
                message="line L1: 1 record from 2026-10-31 to 2026-10-31, before the usage period",
            ),
            Expected(
                "info",
                "C1",
                "A1",
                "R4",
                message="line L1: 2 records from 2026-12-01 to 2026-12-01, after the usage period",
            ),
        ),
    ),
    Scenario(
        "usage-outside-period-late-record-imported-after-the-previous-run",
        "usage_outside_period",
        "anomaly.usage_outside_period",
        files(subscriptions=[sub(**ON_LINE)], usage=[NOVEMBER_CALL]),
        (
            Expected(
                "warning",
                "C1",
                "A1",
                "R0",
                message="line L1: 1 record from 2026-10-10 to 2026-10-10, before the usage period",
            ),
        ),
        previous=True,
        late={"usage": [call("R0", "L1", "2026-10-10T10:00:00")]},
    ),
    Scenario(
        "usage-outside-period-none-for-a-record-the-previous-run-billed",
        "usage_outside_period",
        "anomaly.usage_outside_period",
        files(
            subscriptions=[sub(**ON_LINE)],
            usage=[call("R0", "L1", "2026-10-10T10:00:00"), NOVEMBER_CALL],
        ),
        previous=True,
    ),
    Scenario(
        "usage-outside-period-none-when-every-record-is-in-november",
        "usage_outside_period",
        "anomaly.usage_outside_period",
        files(
            subscriptions=[sub(**ON_LINE)],
            usage=[
                call("R1", "L1", "2026-11-01T00:00:00"),
                call("R2", "L1", "2026-11-30T23:59:59"),
            ],
        ),
    ),
    # ---------------------------------------------------------------- invoice variation
    Scenario(
        # +40 EUR, +200 %: over the ruleset's 30 EUR and 40 % (under the default 50 EUR)
        "invoice-variation-over-both-thresholds",
        "invoice_variation",
        "anomaly.invoice_variation",
        files(quantity_changes=[change("A1", "2026-12-01", 3)]),
        (
            Expected(
                "warning",
                "C1",
                invoice_key="C1",
                message="invoice C1: 60.00 EUR excl. VAT against 20.00 in 2026-11 "
                "(+40.00, +200.0 %",
            ),
        ),
        previous=True,
    ),
    Scenario(
        # +80 EUR but +40 %: not over the ruleset's 40 % (over the default 30 %)
        "invoice-variation-none-under-the-percent-threshold",
        "invoice_variation",
        "anomaly.invoice_variation",
        files(
            subscriptions=[sub(quantity="10")],
            quantity_changes=[change("A1", "2026-12-01", 14)],
        ),
        previous=True,
    ),
    # ---------------------------------------------------------------- invoice totals
    Scenario(
        "zero-invoice",
        "zero_invoice",
        "anomaly.invoice_total",
        files(subscriptions=[sub(unit_price="0")]),
        (Expected("warning", "C1", invoice_key="C1", message="(nothing to bill"),),
    ),
    Scenario(
        "zero-invoice-none-for-a-positive-one", "zero_invoice", "anomaly.invoice_total", PLAIN
    ),
    Scenario(
        "negative-invoice-after-a-termination",
        "negative_invoice",
        "anomaly.invoice_total",
        files(subscriptions=[sub(end_date="2026-11-10")]),  # November billed in advance
        (
            Expected(
                "warning",
                "C1",
                invoice_key="C1",
                message="invoice C1 totals -16.00 EUR incl. VAT (a credit note: check the "
                "credits), 1 line",
            ),
        ),
    ),
    Scenario(
        "negative-invoice-none-for-a-positive-one",
        "negative_invoice",
        "anomaly.invoice_total",
        PLAIN,
    ),
    # ---------------------------------------------------------------- legal identifiers
    Scenario(
        "invalid-siren-stored-wrong-or-missing",
        "invalid_siren",
        "anomaly.siren",
        files(
            customers=[customer("C1"), customer("C2"), customer("C3")],
            subscriptions=[sub("A1", "C1"), sub("A2", "C2"), sub("A3", "C3")],
        ),
        (
            Expected("error", "C1", message="customer C1 (C1 SAS): invalid SIREN '732829321'"),
            Expected("error", "C2", message="customer C2 (C2 SAS): SIREN missing"),
        ),
        stored_edits={"C1": {"siren": "732829321"}, "C2": {"siren": None}},
    ),
    Scenario(
        "invalid-siren-none-when-valid",
        "invalid_siren",
        "anomaly.siren",
        files(
            customers=[customer(), customer("C2", country="CH", siren="")],
            subscriptions=[sub(), sub("A2", "C2")],
        ),
    ),
    Scenario(
        "invalid-vat-number-missing-or-of-another-country",
        "invalid_vat_number",
        "anomaly.vat_number",
        files(
            customers=[
                customer("C1", country="BE", siren=""),
                customer("C2", country="BE", siren="", vat_number="FR44732829320"),
                customer("C3", country="BE", siren="", vat_number="BE0403019261"),
            ],
            subscriptions=[sub("A1", "C1"), sub("A2", "C2"), sub("A3", "C3")],
        ),
        (
            Expected(
                "warning",
                "C1",
                message="customer C1 (C1 SAS) in BE: VAT number missing (invoiced with "
                "domestic VAT instead of reverse charge)",
            ),
            Expected("error", "C2", message="a VAT number of FR for a customer in BE"),
        ),
    ),
    Scenario(
        "invalid-vat-number-none-when-valid-or-not-needed",
        "invalid_vat_number",
        "anomaly.vat_number",
        files(
            customers=[
                customer("C1", vat_number="FR44732829320"),
                customer("C2", country="BE", siren="", vat_number="BE0403019261"),
                customer("C3", country="CH", siren=""),  # export: no VAT number needed
            ],
            subscriptions=[sub("A1", "C1"), sub("A2", "C2"), sub("A3", "C3")],
        ),
    ),
    Scenario(
        "invalid-iban-stored",
        "invalid_iban",
        "anomaly.iban",
        files(
            customers=[customer("C1"), customer("C2", iban="FR7610278450983511004748450")],
            subscriptions=[sub("A1", "C1"), sub("A2", "C2")],
        ),
        (Expected("error", "C1", message="invalid IBAN 'FR7610278450983511004748451'"),),
        stored_edits={"C1": {"iban": "FR7610278450983511004748451"}},
    ),
    Scenario(
        "invalid-iban-none-when-valid",
        "invalid_iban",
        "anomaly.iban",
        files(customers=[customer(iban="FR7610278450983511004748450")]),
    ),
    # ---------------------------------------------------------------- discounts
    Scenario(
        "expired-discount-line-after-its-window",
        "expired_discount",
        "anomaly.discount_after_window",
        files(discounts=[grant("G1", "2026-09-15")]),  # window 15 Sep - 14 Nov 2026
        (
            Expected(
                "error",
                "C1",
                "A1",
                invoice_key="C1",
                message="invoice C1: discount WELCOME (-4.00) applied from 2026-12-01 but its "
                "window ended on 2026-11-14",
            ),
        ),
        patch=_longer_discount_windows,
    ),
    Scenario(
        "expired-discount-none-inside-its-window",
        "expired_discount",
        "anomaly.discount_after_window",
        files(discounts=[grant("G1", "2026-11-15")]),  # window 15 Nov 2026 - 14 Jan 2027
    ),
    Scenario(
        "expired-grant-still-in-the-data",
        "expired_grant",
        "anomaly.expired_grant",
        files(discounts=[grant("G1", "2026-06-01"), grant("G2", "2026-10-15")]),
        (Expected("info", "C1", message="grant G1 of WELCOME to C1 ended on 2026-07-31"),),
    ),
    Scenario(
        "expired-grant-none-while-running",
        "expired_grant",
        "anomaly.expired_grant",
        files(discounts=[grant("G2", "2026-10-15")]),  # window to 14 December
    ),
    # ---------------------------------------------------------------- commitments
    Scenario(
        "commitment-ended-without-renewal",
        "commitment_ended",
        "anomaly.commitment_ended",
        files(
            subscriptions=[
                sub(commitment="C12", commitment_start="2025-06-01"),
                sub("A2", commitment="C12", commitment_start="2026-03-01"),
            ]
        ),
        (
            Expected(
                "warning",
                "C1",
                "A1",
                message="subscription A1 (TRUNK): commitment C12 (12 months from 2025-06-01, "
                "no tacit renewal) ended on 2026-05-31",
            ),
        ),
    ),
    Scenario(
        "commitment-ended-none-renewed-running-or-terminated",
        "commitment_ended",
        "anomaly.commitment_ended",
        files(
            subscriptions=[
                sub("A1", commitment="T12", commitment_start="2025-06-01"),  # tacit renewal
                sub("A2", commitment="C12", commitment_start="2026-03-01"),  # still running
                sub(
                    "A3",
                    commitment="C12",
                    commitment_start="2025-06-01",
                    end_date="2026-12-31",
                ),  # terminated
            ]
        ),
    ),
)


# ------------------------------------------------------------------------- kinds known
def _anomaly_kinds(node: ast.AST) -> set[str]:
    """The kinds of the ``Anomaly(...)`` built under ``node`` (a constant, or either branch of a
    conditional); a kind computed otherwise fails, so that it gets a scenario too."""
    kinds: set[str] = set()
    for call_node in ast.walk(node):
        if not (
            isinstance(call_node, ast.Call)
            and isinstance(call_node.func, ast.Name)
            and call_node.func.id == "Anomaly"
        ):
            continue
        kind = next((k.value for k in call_node.keywords if k.arg == "kind"), None)
        if kind is None:
            kind = call_node.args[0]
        options = [kind.body, kind.orelse] if isinstance(kind, ast.IfExp) else [kind]
        for option in options:
            assert isinstance(option, ast.Constant) and isinstance(option.value, str), (
                f"an anomaly kind this test cannot read: {ast.unparse(kind)}"
            )
            kinds.add(option.value)
    return kinds


def kinds_by_check() -> dict[str, set[str]]:
    """Each check of ``CHECKS`` with the kinds it reports (its own ``Anomaly(...)`` and those of
    the module's functions it calls)."""
    tree = ast.parse(inspect.getsource(anomalies_module))
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}

    def reach(name: str, seen: set[str]) -> set[str]:
        seen.add(name)
        kinds = _anomaly_kinds(functions[name])
        for called in ast.walk(functions[name]):
            if isinstance(called, ast.Name) and called.id in functions and called.id not in seen:
                kinds |= reach(called.id, seen)
        return kinds

    return {check.__name__: reach(check.__name__, set()) for check in CHECKS}


def test_the_scenarios_cover_every_anomaly_kind() -> None:
    by_check = kinds_by_check()
    assert all(by_check.values()), f"a check without a readable kind: {by_check}"
    known = set().union(*by_check.values())
    assert len(known) >= 14  # phantom_line ... commitment_ended, at the time of writing
    triggered = {s.kind for s in SCENARIOS if s.triggers}
    quiet = {s.kind for s in SCENARIOS if not s.triggers}
    assert triggered == known, f"kinds without a triggering scenario: {known - triggered}"
    assert quiet == known, f"kinds without a non-triggering scenario: {known - quiet}"
    names = [s.name for s in SCENARIOS]
    assert len(set(names)) == len(names)


# ------------------------------------------------------------------------- running a scenario
@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> CompiledRuleset:
    path = tmp_path_factory.mktemp("ruleset") / "sim.bareme"
    path.write_text(RULESET, encoding="utf-8")
    made = compile_ruleset(path)
    assert AnomalyConfig.from_settings(made.catalogue.settings) == CONFIG
    return made


def _merge(data: Files, late: Files) -> Files:
    return {t: data.get(t, []) + late.get(t, []) for t in {*data, *late}}


def _edit_customers(session: Session, edits: dict[str, dict[str, str | None]]) -> None:
    for cid, values in edits.items():
        done = session.execute(
            update(CustomerRow).where(CustomerRow.customer_id == cid).values(**values)
        )
        assert done.rowcount == 1  # type: ignore[attr-defined]


@dataclass(frozen=True)
class StoredRun:
    run_id: int
    previous_run_id: int | None
    anomaly_count: int
    anomalies: list[dict[str, Any]]  # the rows, in id order
    in_memory: list[dict[str, Any]]  # the simulation's, as returned by simulate_period
    discount_lines: int


def run_scenario(
    scenario: Scenario,
    db_url: str,
    directory: Path,
    compiled: CompiledRuleset,
    monkeypatch: pytest.MonkeyPatch,
) -> StoredRun:
    with open_store(db_url, migrate=False) as store:
        import_directory(store, write_dataset(directory, scenario.data), compiled)
        if scenario.previous:
            november = simulate_period(store, PREVIOUS, compiled, executor="serial")
            approve_run(store, november.run_id)
        if scenario.late:
            data = _merge(scenario.data, scenario.late)
            import_directory(store, write_dataset(directory, data), compiled)
        if scenario.stored_edits:
            with store.write() as session:
                _edit_customers(session, scenario.stored_edits)
        with monkeypatch.context() as patched:
            if scenario.patch is not None:
                scenario.patch(patched)
            december = simulate_period(store, PERIOD, compiled, executor="serial")
        in_memory = [a.as_dict() for a in december.simulation.anomalies]
    # read back with a new connection
    with open_store(db_url, migrate=False) as reader, reader.snapshot() as session:
        run = find_run(session, PERIOD)
        assert run.id == december.run_id
        rows = session.scalars(
            select(Anomaly).where(Anomaly.run_id == run.id).order_by(Anomaly.id)
        ).all()
        discount_lines = session.scalars(
            select(InvoiceLine.id)
            .join(Invoice)
            .where(Invoice.run_id == run.id, InvoiceLine.kind == "discount")
        ).all()
        return StoredRun(
            run.id,
            run.previous_run_id,
            run.anomaly_count,
            [
                {
                    "kind": a.kind,
                    "severity": a.severity,
                    "rule": a.rule,
                    "message": a.message,
                    "customer_id": a.customer_id,
                    "subscription_id": a.subscription_id,
                    "record_id": a.record_id,
                    "invoice_key": a.invoice_key,
                }
                for a in rows
            ],
            in_memory,
            len(discount_lines),
        )


@pytest.mark.parametrize(
    "scenario",
    # a patched evaluator needs its pure-Python modules (see tests/conftest.py)
    [pytest.param(s, marks=pytest.mark.pure_python) if s.patch else s for s in SCENARIOS],
    ids=[s.name for s in SCENARIOS],
)
def test_anomaly_through_the_store(
    scenario: Scenario,
    db_url: str,
    tmp_path: Path,
    compiled: CompiledRuleset,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored = run_scenario(scenario, db_url, tmp_path / "data", compiled, monkeypatch)
    # every anomaly of the run is stored, field for field, in the run's order
    assert stored.anomalies == stored.in_memory
    assert stored.anomaly_count == len(stored.anomalies)
    assert (stored.previous_run_id is not None) == scenario.previous

    found = [a for a in stored.anomalies if a["kind"] == scenario.kind]
    got = [
        (
            a["rule"],
            a["severity"],
            a["customer_id"],
            a["subscription_id"],
            a["record_id"],
            a["invoice_key"],
        )
        for a in found
    ]
    want = [
        (scenario.rule, e.severity, e.customer_id, e.subscription_id, e.record_id, e.invoice_key)
        for e in scenario.expected
    ]
    assert got == want, [a["message"] for a in found]
    for anomaly, expected in zip(found, scenario.expected, strict=True):
        assert expected.message in anomaly["message"]
    if scenario.kind == "expired_discount":
        # the discount is on the invoice either way: only its dates differ
        assert stored.discount_lines == 1


# ------------------------------------------------------------------------- around the table
INVALID_IDENTIFIERS = [
    pytest.param({"siren": "732829321"}, id="siren"),
    pytest.param({"siren": ""}, id="siren-missing"),
    pytest.param({"iban": "FR7610278450983511004748451"}, id="iban"),
]


@pytest.mark.parametrize("values", INVALID_IDENTIFIERS)
def test_the_import_refuses_what_the_stored_edits_write(
    values: dict[str, str], store: Store, tmp_path: Path, compiled: CompiledRuleset
) -> None:
    """Why the SIREN and IBAN scenarios edit stored rows: no import stores such values."""
    directory = write_dataset(tmp_path / "data", files(customers=[customer(**values)]))
    with pytest.raises(ImportRefused, match="nothing imported") as refused:
        import_directory(store, directory, compiled)
    [error] = [e for e in refused.value.load.errors if not e.cascade]  # the subscription's: cascade
    assert (error.file, error.row, error.column) == ("customers.csv", 2, next(iter(values)))
    with store.snapshot() as session:
        assert session.scalars(select(CustomerRow.customer_id)).all() == []


IDLE_RULESET = RULESET.replace("anomaly_idle_months 1", "anomaly_idle_months 2")


def test_idle_subscription_sees_every_month_of_its_window(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "idle.bareme"
    path.write_text(IDLE_RULESET, encoding="utf-8")
    two_months = compile_ruleset(path)
    directory = write_dataset(
        tmp_path / "data",
        files(
            subscriptions=[sub(**ON_LINE)],
            usage=[call("R1", "L1", "2026-10-15T10:00:00")],  # inside Oct-Nov: not idle
        ),
    )
    direct = simulate(
        two_months.catalogue,
        load_data(directory, two_months.catalogue).dataset,
        PERIOD,
        executor="serial",
    )
    assert not [a for a in direct.anomalies if a.kind == "idle_subscription"]
    import_directory(store, directory, two_months)
    stored = simulate_period(store, PERIOD, two_months, executor="serial")
    with store.snapshot() as session:
        kinds = session.scalars(select(Anomaly.kind).where(Anomaly.run_id == stored.run_id)).all()
    assert "idle_subscription" not in kinds
    # and a line last used before the window is idle, from the store as from the files
    directory = write_dataset(
        tmp_path / "data2",
        files(subscriptions=[sub(**ON_LINE)], usage=[call("R1", "L1", "2026-09-30T10:00:00")]),
    )
    import_directory(store, directory, two_months)
    stored = simulate_period(store, PERIOD, two_months, executor="serial")
    with store.snapshot() as session:
        kinds = session.scalars(select(Anomaly.kind).where(Anomaly.run_id == stored.run_id)).all()
    assert "idle_subscription" in kinds
