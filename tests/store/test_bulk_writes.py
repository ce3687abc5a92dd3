"""A draft written in bulk (engine.store.runs.save_simulation) reads back exactly: documents and
traces byte for byte, ids of lines matched to their invoices across batches, values checked by
the column types as before; the run's timings frame the simulator's with the store's."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.exc import StatementError
from store.store_support import StoredSimulation, synthetic_result

from engine.invoice import Invoice as InvoiceModel
from engine.invoice import InvoiceLine as LineModel
from engine.invoice import TraceStep
from engine.pipeline import CompiledRuleset
from engine.store import runs
from engine.store.db import Store
from engine.store.importer import import_directory
from engine.store.rulesets import RulesetSource, store_ruleset
from engine.store.runs import encode_invoice, encode_step, find_run, run_result, save_simulation
from engine.store.schema import Invoice, InvoiceLine, Run
from engine.store.simulation import simulate_period


def _ruleset(store: Store) -> int:
    with store.write() as session:
        source = RulesetSource("test.bareme", "test", (("test.bareme", "x"),), "0" * 64)
        return store_ruleset(session, source).id


def _awkward(inv: InvoiceModel, i: int) -> InvoiceModel:
    """More lines and steps, non-ASCII text, a text that looks like the encoder's placeholder."""
    line = inv.lines[0]
    extra = [
        line._replace(
            description=f"Ligne {k} – coûts « é » trace:{k}",
            quantity=Decimal("2.500"),
            unit_price=Decimal("49.90"),
            amount=Decimal("124.75"),
            period_start=None,
            period_end=None,
            trace=tuple(
                TraceStep(rule=f"step {s}", text=f"{runs._MARK}{s}", source=f"x:{s}:1")
                for s in range(k + 1)
            ),
        )
        for k in range(i % 4)
    ]
    return inv.model_copy(update={"lines": (line, *extra)})


def test_encoding_once_gives_the_plain_json_texts() -> None:
    for i, inv in enumerate(synthetic_result("2030-01", 6).invoices):
        inv = _awkward(inv, i + 2)
        assert encode_invoice(inv) == json.dumps(inv.as_dict())


def test_a_draft_written_in_batches_reads_back_exactly(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "_CHUNK", 4)  # several batches of invoices
    result = synthetic_result("2030-01", 11)
    result = result.model_copy(
        update={"invoices": tuple(_awkward(inv, i) for i, inv in enumerate(result.invoices))}
    )
    saved = save_simulation(
        store,
        period="2030-01",
        simulation=StoredSimulation(result, timings={"evaluate": 1.5}),
        ruleset_id=_ruleset(store),
        executor="serial",
    )
    assert saved.invoice_count == 11
    assert set(saved.timings) == {"evaluate", "store"} and saved.timings["store"] >= 0
    by_key = {inv.invoice_key: inv for inv in result.invoices}
    with store.snapshot() as session:
        run = find_run(session, saved.run_id)
        assert run.timings == saved.timings
        assert run_result(session, run) == result
        stored = session.scalars(select(Invoice).where(Invoice.run_id == run.id)).all()
        assert sorted(i.invoice_key for i in stored) == sorted(by_key)
        for invoice in stored:
            expected = by_key[invoice.invoice_key]
            assert json.dumps(invoice.document) == json.dumps(expected.as_dict())
            assert invoice.status == "draft" and invoice.number is None
            assert invoice.total_incl_vat == expected.total_incl_vat
            lines = session.scalars(
                select(InvoiceLine)
                .where(InvoiceLine.invoice_id == invoice.id)
                .order_by(InvoiceLine.position)
            ).all()
            assert [line.position for line in lines] == list(range(1, len(expected.lines) + 1))
            for position, (row, line) in enumerate(zip(lines, expected.lines, strict=True)):
                # the line's trace is in the document only
                assert invoice.document["lines"][position]["trace"] == [step.as_dict() for step in line.trace]
                assert row.explain == line.explain
                assert row.description == line.description
                assert str(row.quantity) == str(line.quantity)  # written form kept
                assert str(row.unit_price) == str(line.unit_price)
                assert row.amount == line.amount
                assert (row.period_start, row.period_end) == (line.period_start, line.period_end)
    # simulating again replaces the draft (old rows gone, new ones complete)
    again = save_simulation(
        store,
        period="2030-01",
        simulation=StoredSimulation(result),
        ruleset_id=_ruleset(store),
        executor="serial",
    )
    assert again.replaced_run_id == saved.run_id
    with store.snapshot() as session:
        assert session.scalars(select(Run.id)).all() == [again.run_id]
        assert run_result(session, find_run(session, again.run_id)) == result


def test_values_are_still_checked_by_their_column_types(store: Store) -> None:
    result = synthetic_result("2030-01", 3)
    bad_line: LineModel = result.invoices[1].lines[0]._replace(amount=Decimal("1.0000001"))
    bad = result.invoices[1].model_copy(update={"lines": (bad_line,)})
    result = result.model_copy(update={"invoices": (result.invoices[0], bad, result.invoices[2])})
    with pytest.raises(StatementError, match="more than 6 decimals"):
        save_simulation(
            store,
            period="2030-01",
            simulation=StoredSimulation(result),
            ruleset_id=_ruleset(store),
            executor="serial",
        )
    with store.snapshot() as session:  # nothing stored
        assert session.scalars(select(Run.id)).all() == []
        assert session.scalars(select(Invoice.id)).all() == []


def test_the_run_timings_frame_the_simulation_with_the_store(
    store: Store, acme: CompiledRuleset, small_data: Path
) -> None:
    import_directory(store, small_data, acme)
    simulated = simulate_period(store, "2026-12", executor="serial")
    timings = simulated.simulation.timings
    names = list(timings)
    assert names[0] == "read" and names[-1] == "store"
    assert {"partition", "evaluate", "anomalies", "kpis"} <= set(names[1:-1])
    assert all(isinstance(v, float) and v >= 0 for v in timings.values())
    with store.snapshot() as session:
        assert find_run(session, simulated.run_id).timings == dict(timings)


@settings(max_examples=200, deadline=None)
@given(rule=st.text(), text=st.text(), source=st.text())
def test_a_step_encodes_as_json_dumps_does(rule: str, text: str, source: str) -> None:
    step = TraceStep(rule=rule, text=text, source=source)
    assert encode_step(step) == json.dumps(step.as_dict())
