"""Runs in the store: simulate (from the stored data set), draft replaced, approved and
emitted runs frozen, emission numbering, credit notes."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.pipeline import CompiledRuleset, load_data
from engine.store.db import Store, StoreError
from engine.store.emission import check_format, create_credit_note, emit_run
from engine.store.importer import import_directory
from engine.store.runs import RunFrozen, approve_run, find_run, run_document, run_result
from engine.store.schema import Anomaly, CreditNote, Invoice, InvoiceLine, NumberSeries, Run
from engine.store.simulation import simulate_period
from simulator import simulate


@pytest.fixture
def loaded(store: Store, acme: CompiledRuleset, small_data: Path) -> Store:
    import_directory(store, small_data, acme)
    return store


def _count(store: Store, model: type, *where: object) -> int:
    with store.snapshot() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_a_run_from_the_store_equals_the_run_from_the_files(
    loaded: Store, acme: CompiledRuleset, small_data: Path
) -> None:
    stored = simulate_period(loaded, "2026-12", executor="serial")
    direct = simulate(
        acme.catalogue, load_data(small_data, acme.catalogue).dataset, "2026-12", executor="serial"
    )
    assert stored.simulation.result == direct.result
    assert stored.simulation.anomalies == direct.anomalies
    with loaded.snapshot() as session:
        run = find_run(session, stored.run_id)
        assert run_result(session, run) == direct.result  # stored exactly
        assert run.status == "draft" and run.period == "2026-12"
        assert run.total_incl_vat == direct.result.total_incl_vat
        assert run.invoice_series == "FA"
        lines = session.scalars(
            select(InvoiceLine).join(Invoice).where(Invoice.run_id == run.id)
        ).all()
        assert len(lines) == sum(len(i.lines) for i in direct.result.invoices)
        assert all(line.explain for line in lines)
        kinds = session.scalars(select(Anomaly.kind).where(Anomaly.run_id == run.id)).all()
        assert sorted(kinds) == sorted(a.kind for a in direct.anomalies)
        # documents come back as written, key order included (what `show`/`demo` print)
        documents = [
            document
            for _, document in sorted(
                (row.invoice_key, row.document)
                for row in session.execute(
                    select(Invoice.invoice_key, Invoice.document).where(Invoice.run_id == run.id)
                )
            )
        ]
        expected = sorted(direct.result.invoices, key=lambda i: i.invoice_key)
        assert [json.dumps(d) for d in documents] == [json.dumps(i.as_dict()) for i in expected]
    # the stored ruleset version compiles back to the same run
    again = simulate_period(loaded, "2026-12", executor="serial")
    assert again.simulation.result == direct.result


def test_simulating_again_replaces_the_draft_atomically(loaded: Store) -> None:
    first = simulate_period(loaded, "2026-12", executor="serial")
    invoices = _count(loaded, Invoice, Invoice.run_id == first.run_id)
    assert invoices > 0
    second = simulate_period(loaded, "2026-12", executor="serial")
    assert second.replaced_run_id == first.run_id and second.run_id != first.run_id
    assert _count(loaded, Run) == 1
    assert _count(loaded, Invoice, Invoice.run_id == first.run_id) == 0
    assert _count(loaded, Anomaly, Anomaly.run_id == first.run_id) == 0
    assert _count(loaded, Invoice, Invoice.run_id == second.run_id) == invoices


def test_approved_and_emitted_runs_are_frozen(loaded: Store) -> None:
    draft = simulate_period(loaded, "2026-12", executor="serial")
    with pytest.raises(StoreError, match="approve it first"):
        emit_run(loaded, draft.run_id)
    approved = approve_run(loaded, "2026-12")
    assert approved.id == draft.run_id and approved.approved_at is not None
    with pytest.raises(StoreError, match="already approved"):
        approve_run(loaded, draft.run_id)
    with pytest.raises(RunFrozen, match=f"run {draft.run_id} of 2026-12 is approved"):
        simulate_period(loaded, "2026-12", executor="serial")
    emit_run(loaded, draft.run_id)
    with pytest.raises(RunFrozen, match="is emitted"):
        simulate_period(loaded, "2026-12", executor="serial")
    with pytest.raises(StoreError, match="already emitted"):
        emit_run(loaded, draft.run_id)
    assert _count(loaded, Run) == 1
    with loaded.snapshot() as session:
        assert all(i.status == "emitted" for i in session.scalars(select(Invoice)))


def test_the_previous_period_is_compared(loaded: Store) -> None:
    december = simulate_period(loaded, "2026-12", executor="serial")
    january = simulate_period(loaded, "2027-01", executor="serial")
    assert january.previous_run_id == december.run_id
    # the data set holds November usage only: January's invoices drop against December's
    assert any(a.kind == "invoice_variation" for a in january.simulation.anomalies)
    # ...and the November records are not "outside the period" noise for January
    assert not any(a.kind == "usage_outside_period" for a in january.simulation.anomalies)
    with loaded.snapshot() as session:
        assert find_run(session, january.run_id).previous_run_id == december.run_id


def test_late_usage_is_reported_once_imported(
    loaded: Store, acme: CompiledRuleset, small_data: Path
) -> None:
    simulate_period(loaded, "2026-12", executor="serial")
    with (small_data / "usage.csv").open("a", encoding="utf-8") as f:
        f.write("V9999999,TRK10001,VOICE_FIXED,2026-11-10T10:00:00+01:00,61,+33478112233\n")
    import_directory(loaded, small_data, acme)  # a November record arrives after December's run
    january = simulate_period(loaded, "2027-01", executor="serial")
    late = [a for a in january.simulation.anomalies if a.kind == "usage_outside_period"]
    assert [(a.record_id, a.severity) for a in late] == [("V9999999", "warning")]


def test_emission_numbers_in_invoice_key_order(loaded: Store) -> None:
    december = simulate_period(loaded, "2026-12", executor="serial")
    january = simulate_period(loaded, "2027-01", executor="serial")
    approve_run(loaded, december.run_id)
    approve_run(loaded, january.run_id)
    first = emit_run(loaded, december.run_id, number_format="FA-{year}-{seq:06d}")
    n = first.count
    assert (first.first, first.last) == ("FA-2026-000001", f"FA-2026-{n:06d}")
    with pytest.raises(StoreError, match="cannot change"):
        emit_run(loaded, january.run_id, number_format="X-{seq}")
    second = emit_run(loaded, january.run_id, number_format="FA-{year}-{seq:06d}")
    assert second.first == f"FA-2027-{n + 1:06d}"
    with loaded.snapshot() as session:
        rows = session.execute(
            select(Invoice.invoice_key, Invoice.seq, Invoice.number, Invoice.emitted_at).where(
                Invoice.run_id == december.run_id
            )
        ).all()
        by_key = sorted(rows, key=lambda r: r.invoice_key)
        assert [r.seq for r in by_key] == list(range(1, n + 1))
        assert all(r.emitted_at is not None for r in rows)
        series = session.get(NumberSeries, "FA")
        assert series is not None and series.next_value == n + second.count + 1
        run = find_run(session, december.run_id)
        assert run.status == "emitted" and run.emitted_at is not None
        doc = run_document(session, run)
        assert [i["number"] for i in doc["invoices"]] == [r.number for r in by_key]


def test_numbers_follow_issue_dates(store: Store, approved_runs: Callable[..., list[int]]) -> None:
    december, january = approved_runs(["2026-12", "2027-01"], invoices=3)
    emit_run(store, january)
    with pytest.raises(StoreError, match="numbers must follow issue dates"):
        emit_run(store, december)
    assert _count(store, Invoice, Invoice.run_id == december, Invoice.number.is_not(None)) == 0
    with store.snapshot() as session:
        assert find_run(session, december).status == "approved"


def test_number_formats_are_checked() -> None:
    check_format("FA-{year}-{seq:06d}")
    check_format("{series}{month}{seq}")
    for bad, why in (
        ("FA-{year}", "needs {seq}"),
        ("FA-{client}-{seq}", "unknown field"),
        ("FA-{seq", "bad number format"),
    ):
        with pytest.raises(StoreError, match=why):
            check_format(bad)


def test_credit_notes_reverse_an_emitted_invoice(
    store: Store, approved_runs: Callable[..., list[int]]
) -> None:
    (run_id,) = approved_runs(["2026-12"], invoices=3)
    emit_run(store, run_id)
    day = dt.date(2026, 12, 5)
    note = create_credit_note(store, "FA-2026-000002", "wrong price", issue_date=day)
    assert note.number == "AV-2026-000001"
    assert note.total_incl_vat == -Decimal("121.50")
    with pytest.raises(StoreError, match="already fully credited by AV-2026-000001"):
        create_credit_note(store, "FA-2026-000002", "again", issue_date=day)
    with pytest.raises(StoreError, match="no emitted invoice"):
        create_credit_note(store, "FA-2026-999999", "x", issue_date=day)
    with pytest.raises(StoreError, match="needs a reason"):
        create_credit_note(store, "FA-2026-000001", "  ", issue_date=day)
    with pytest.raises(StoreError, match="after 2026-12-04"):
        create_credit_note(store, "FA-2026-000001", "x", issue_date=dt.date(2026, 12, 4))
    second = create_credit_note(store, "FA-2026-000003", "closed", issue_date=day)
    assert second.number == "AV-2026-000002"
    with store.snapshot() as session:
        credit = session.scalars(select(CreditNote).where(CreditNote.seq == 1)).one()
        original = credit.invoice
        assert original.number == "FA-2026-000002"
        doc = credit.document
        assert doc["credited_invoice"]["number"] == "FA-2026-000002"
        assert doc["reason"] == "wrong price"
        assert [line["amount"] for line in doc["lines"]] == [
            str(-Decimal(line["amount"])) for line in original.document["lines"]
        ]
        assert Decimal(doc["total_excl_vat"]) == -original.total_excl_vat
        assert doc["lines"][0]["trace"][-1]["rule"] == "credit note"
        assert session.get(NumberSeries, "AV").next_value == 3  # type: ignore[union-attr]
        assert session.get(NumberSeries, "FA").next_value == 4  # type: ignore[union-attr]
        assert original.status == "emitted"
