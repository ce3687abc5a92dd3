"""`bareme import`: data set round trip, idempotent re-import, rejected rows kept with reasons."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import func, select
from store.store_support import ACME, ACME_DATA
from typer.testing import CliRunner

from cli.store_commands import register
from engine.pipeline import CompiledRuleset, load_data
from engine.store.db import Store
from engine.store.importer import ImportRefused, import_directory
from engine.store.readback import load_dataset_from_store, usage_window
from engine.store.schema import (
    Base,
    CustomerRow,
    ImportBatch,
    ImportFile,
    RejectedRowRecord,
    Ruleset,
    RulesetFile,
    SubscriptionRow,
    UsageRow,
)

DATA_TABLES = (
    "customers",
    "sites",
    "billing_accounts",
    "subscriptions",
    "quantity_changes",
    "one_shots",
    "usage_records",
    "discount_grants",
)


def _dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every data table, every column (batch ids included), sorted."""
    out = {}
    with store.snapshot() as session:
        for name in DATA_TABLES:
            table = Base.metadata.tables[name]
            rows = session.execute(select(table)).all()
            out[name] = sorted(tuple(str(v) for v in r) for r in rows)
    return out


def test_round_trip_gives_back_the_same_dataset(store: Store, acme: CompiledRuleset) -> None:
    outcome = import_directory(store, ACME_DATA, acme)
    assert outcome.load.ok
    with store.snapshot() as session:
        back = load_dataset_from_store(session)
    assert back == outcome.load.dataset
    # exactly, not only numerically equal: written forms and offsets are kept
    original = {s.subscription_id: s for s in outcome.load.dataset.subscriptions}
    for sub in back.subscriptions:
        assert str(sub.quantity) == str(original[sub.subscription_id].quantity)
        assert str(sub.unit_price) == str(original[sub.subscription_id].unit_price)
    assert [u.start_time.isoformat() for u in back.usage] == [
        u.start_time.isoformat() for u in outcome.load.dataset.usage
    ]
    assert back.subscriptions_by_id["SUB00157"].unit_price == Decimal("39.00")
    assert str(back.subscriptions_by_id["SUB00157"].unit_price) == "39.00"
    report = {t.table: t for t in outcome.report.tables}
    for table, counts in outcome.load.counts.items():
        assert report[table].read == counts.read == report[table].stored + report[table].rejected
        assert report[table].inserted == counts.accepted

    # usage read for a run: its usage period, one day around it, late records
    start, end = usage_window("2026-12", "Europe/Paris")
    assert start == dt.datetime(2026, 10, 31, 23, 0, tzinfo=dt.UTC)
    assert end == dt.datetime(2026, 11, 30, 23, 0, tzinfo=dt.UTC)
    with store.snapshot() as session:
        window = load_dataset_from_store(session, usage_period=(start, end))
        later = load_dataset_from_store(
            session, usage_period=usage_window("2027-02", "Europe/Paris")
        )
        late = load_dataset_from_store(
            session, usage_period=usage_window("2027-01", "Europe/Paris"), late_after_batch=0
        )
        none_late = load_dataset_from_store(
            session,
            usage_period=usage_window("2027-01", "Europe/Paris"),
            late_after_batch=outcome.report.batch_id,
        )
    # the example holds November usage (and a few records stamped just outside it)
    assert window.usage == outcome.load.dataset.usage
    assert later.usage == ()
    assert later.subscriptions == outcome.load.dataset.subscriptions
    assert len(late.usage) == len(outcome.load.dataset.usage)  # all written after batch 0
    assert {u.start_time.date() for u in none_late.usage} == {dt.date(2026, 12, 1)}


def test_reimport_is_idempotent(
    store: Store, acme: CompiledRuleset, tmp_path: Path, small_data: Path
) -> None:
    first = import_directory(store, small_data, acme)
    before = _dump(store)
    second = import_directory(store, small_data, acme)
    assert not second.report.changed
    assert _dump(store) == before
    for t in second.report.tables:
        assert (t.inserted, t.updated, t.unchanged) == (0, 0, t.stored)
    with store.snapshot() as session:
        assert session.scalar(select(func.count()).select_from(Ruleset)) == 1
        assert session.scalar(select(func.count()).select_from(ImportBatch)) == 2
        hashes = session.execute(
            select(ImportFile.batch_id, ImportFile.file_name, ImportFile.sha256)
        ).all()
        by_batch: dict[int, dict[str, str | None]] = {}
        for batch_id, name, sha in hashes:
            by_batch.setdefault(batch_id, {})[name] = sha
        assert by_batch[first.report.batch_id] == by_batch[second.report.batch_id]
        files = session.scalars(select(RulesetFile.path)).all()
        assert sorted(files) == [
            "acme.bareme",
            "acme/rating.bareme",
            "acme/taxes.bareme",
            "acme/wholesale-2026.csv",
        ]

    # a changed copy: one customer renamed, one usage record added -> upserted, nothing lost
    changed = tmp_path / "changed"
    changed.mkdir()
    for f in small_data.iterdir():
        (changed / f.name).write_bytes(f.read_bytes())
    customers = (changed / "customers.csv").read_text(encoding="utf-8")
    (changed / "customers.csv").write_text(
        customers.replace("Électricité Nicolas EURL", "Électricité Nicolas SARL"), encoding="utf-8"
    )
    with (changed / "usage.csv").open("a", encoding="utf-8") as f:
        f.write("V9999999,TRK10005,VOICE_FIXED,2026-11-20T10:00:00+01:00,61,+33478112233\n")
    third = import_directory(store, changed, acme)
    report = {t.table: t for t in third.report.tables}
    assert (report["customers"].updated, report["customers"].inserted) == (1, 0)
    assert (report["usage"].updated, report["usage"].inserted) == (0, 1)
    assert report["subscriptions"].unchanged == report["subscriptions"].stored
    with store.snapshot() as session:
        renamed = session.get(CustomerRow, "C0001")
        assert renamed is not None
        assert renamed.legal_name == "Électricité Nicolas SARL"
        assert renamed.batch_id == third.report.batch_id
        assert session.get(CustomerRow, "C0002").batch_id == first.report.batch_id  # type: ignore[union-attr]
        assert session.get(UsageRow, "V9999999") is not None


def _bad_dataset(tmp_path: Path) -> Path:
    data = tmp_path / "bad"
    data.mkdir()
    (data / "customers.csv").write_text(
        "customer_id,legal_name,country,siren\n"
        "C1,Alpha SAS,FR,732829320\n"
        "C2,Beta SAS,FR,123456789\n"  # bad SIREN (checksum)
        "C3,Gamma SARL,FR,552100554\n",
        encoding="utf-8",
    )
    (data / "sites.csv").write_text(
        "site_id,customer_id,name\nS1,C1,Siège\nS2,C2,Agence\n",  # S2: parent rejected
        encoding="utf-8",
    )
    (data / "subscriptions.csv").write_text(
        "subscription_id,customer_id,product,quantity,start_date,unit_price\n"
        "SUB1,C1,SIP_TRUNK_10,2,2026-01-01,49.90\n"
        "SUB2,C1,SIP_TRUNK_1O,1,2026-01-01,\n"  # typo in the product code
        "SUB3,C3,FTTO_100,-1,2026-13-01,\n",  # negative quantity, bad date
        encoding="utf-8",
    )
    (data / "usage.csv").write_text(
        "record_id,line_id,product,start_time,quantity,destination\n"
        "V1,L1,VOICE_FIXED,2026-11-03T10:00:00+01:00,60,+33478112233\n"
        "V2,L1,VOICE_FIXED,yesterday,60,+33478112233\n",
        encoding="utf-8",
    )
    return data


def test_invalid_rows_refuse_the_import_unless_skipped(
    store: Store, acme: CompiledRuleset, tmp_path: Path
) -> None:
    data = _bad_dataset(tmp_path)
    with pytest.raises(ImportRefused) as info:
        import_directory(store, data, acme)
    assert len(info.value.load.errors) >= 5
    with store.snapshot() as session:
        assert session.scalar(select(func.count()).select_from(ImportBatch)) == 0
        assert session.scalar(select(func.count()).select_from(CustomerRow)) == 0

    outcome = import_directory(store, data, acme, skip_invalid=True)
    expected = load_data(data, acme.catalogue, skip_invalid=True)
    with store.snapshot() as session:
        assert load_dataset_from_store(session) == expected.dataset
        files = {f.table_name: f for f in session.scalars(select(ImportFile))}
        for table, counts in expected.counts.items():
            if table not in files:
                assert counts.read == 0
                continue
            f = files[table]
            assert (f.rows_read, f.rows_stored, f.rows_rejected) == (
                counts.read,
                counts.accepted,
                counts.rejected,
            )
            assert f.rows_read == f.rows_stored + f.rows_rejected
            assert len(f.rejected) == f.rows_rejected
        rejected = {
            (r.file.table_name, r.row_number): r for r in session.scalars(select(RejectedRowRecord))
        }
        assert set(rejected) == {
            ("customers", 3),
            ("sites", 3),
            ("subscriptions", 3),
            ("subscriptions", 4),
            ("usage", 3),
        }
        siren = rejected[("customers", 3)]
        assert siren.raw == {
            "customer_id": "C2",
            "legal_name": "Beta SAS",
            "country": "FR",
            "siren": "123456789",
        }
        assert any(r["column"] == "siren" for r in siren.reasons)
        assert rejected[("sites", 3)].reasons[0]["cascade"] is True
        typo = rejected[("subscriptions", 3)].reasons
        assert any(r["hint"] == "SIP_TRUNK_10" for r in typo)
        assert len(rejected[("subscriptions", 4)].reasons) >= 2  # every reason, not the first
        assert all(r["text"].startswith(r["file"]) for rr in rejected.values() for r in rr.reasons)
        stored = session.get(SubscriptionRow, "SUB1")
        assert stored is not None and str(stored.unit_price) == "49.90"
    assert sum(t.rejected for t in outcome.report.tables) == 5


def test_cli_import_lists_every_error_and_the_counts(db_url: str, tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    data = _bad_dataset(tmp_path)
    base = ["import", str(data), "--ruleset", str(ACME), "--db", db_url]
    refused = runner.invoke(app, base)
    assert refused.exit_code == 1
    errors = refused.stderr.strip().splitlines()
    assert f"{data}/customers.csv:3:siren: " in refused.stderr
    assert any(line.startswith(f"{data}/subscriptions.csv:3:product: ") for line in errors)
    assert "nothing imported" in errors[-1]
    done = runner.invoke(app, [*base, "--skip-invalid"])
    assert done.exit_code == 0, done.stderr
    assert "customers.csv" in done.stdout and "5 invalid rows left out" in done.stdout
    assert f"{data}/customers.csv:3:siren: " in done.stderr  # the reasons are still listed
    again = runner.invoke(app, [*base, "--skip-invalid"])
    assert again.exit_code == 0
    assert "nothing changed" in again.stdout
