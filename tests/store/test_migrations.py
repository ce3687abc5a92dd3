"""The schema comes from the Alembic migrations only; `--db` URLs and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from store.store_support import run_cli
from typer.testing import CliRunner

from cli.store_commands import register
from engine.store.db import (
    StoreUnavailable,
    alembic_config,
    current_revision,
    head_revision,
    normalise_url,
    open_store,
    upgrade_database,
)
from engine.store.schema import Base

TABLES = {
    "customers",
    "sites",
    "billing_accounts",
    "subscriptions",
    "quantity_changes",
    "one_shots",
    "usage_records",
    "discount_grants",
    "import_batches",
    "import_files",
    "rejected_rows",
    "rulesets",
    "ruleset_files",
    "runs",
    "invoices",
    "invoice_lines",
    "anomalies",
    "credit_notes",
    "number_series",
}


def test_migrations_apply_from_empty_and_match_the_models(empty_db_url: str) -> None:
    upgrade_database(empty_db_url)
    store = open_store(empty_db_url, migrate=False)
    try:
        assert current_revision(store) == head_revision()
        assert set(inspect(store.engine).get_table_names()) >= TABLES
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        store.close()
    # idempotent, and reversible
    upgrade_database(empty_db_url)
    command.downgrade(alembic_config(normalise_url(empty_db_url)), "base")
    upgrade_database(empty_db_url)
    store = open_store(empty_db_url, migrate=False)
    store.close()


def test_a_database_without_the_schema_is_refused_in_one_line(empty_db_url: str) -> None:
    if empty_db_url.startswith("sqlite"):
        with pytest.raises(StoreUnavailable, match="no such file"):
            open_store(empty_db_url, migrate=False)
        return
    with pytest.raises(StoreUnavailable, match="no Barème schema") as info:
        open_store(empty_db_url, migrate=False)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://postgres@127.0.0.1:1/test", "connection refused"),
        ("mysql://u@h/db", "unsupported database"),
        ("sqlite:////no/such/directory/x.db", "does not exist"),
        ("postgresql+nosuchdriver://u@h/db", "cannot open database"),
    ],
)
def test_bad_urls_give_one_clear_line(url: str, reason: str) -> None:
    with pytest.raises(StoreUnavailable) as info:
        open_store(url)
    message = str(info.value)
    assert message.startswith("cannot open database ")
    assert reason in message
    assert "\n" not in message


def test_passwords_are_never_shown() -> None:
    with pytest.raises(StoreUnavailable) as info:
        open_store("postgresql://postgres:s3cret@127.0.0.1:1/test")
    assert "s3cret" not in str(info.value)


def test_urls_are_normalised_and_bare_words_refused(tmp_path: Path) -> None:
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url(f"sqlite:///{tmp_path}/x.db").get_backend_name() == "sqlite"
    with pytest.raises(StoreUnavailable, match="not a database URL"):
        normalise_url("3000")
    assert not (tmp_path / "3000").exists()


def test_cli_unreachable_database_exits_2_with_one_line(tmp_path: Path) -> None:
    # a real process: exit code 2 and one line, no traceback
    done = run_cli("runs", "--db", "postgresql://postgres@127.0.0.1:1/test", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr == (
        "bareme: cannot open database postgresql://postgres@127.0.0.1:1/test: connection refused\n"
    )
    app = typer.Typer()
    register(app)
    for args in (
        ["approve", "3", "--db", "postgresql://postgres@127.0.0.1:1/test"],
        ["emit", "3", "--db", f"sqlite:///{tmp_path}/missing.db"],
        ["show", "3", "--db", "nosuch://x"],
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("bareme: cannot open database "), lines
    assert not (tmp_path / "missing.db").exists()


def test_sqlite_connections_get_the_store_settings(tmp_path: Path) -> None:
    from sqlalchemy import text

    from engine.store.db import open_store

    store = open_store(f"sqlite:///{tmp_path / 'settings.db'}")
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA secure_delete")).scalar() == 2  # FAST
    store.engine.dispose()


def test_line_traces_come_back_from_the_documents_on_downgrade(db_url: str) -> None:
    """Revision 0002 drops the line rows' copy of the traces; going back to 0001 fills the
    column again from the invoices' documents."""
    import json

    from sqlalchemy import text
    from store.store_support import StoredSimulation, synthetic_result

    from engine.store.db import make_engine
    from engine.store.rulesets import RulesetSource, store_ruleset
    from engine.store.runs import save_simulation

    store = open_store(db_url, migrate=False)
    try:
        with store.write() as session:
            source = RulesetSource("test.bareme", "test", (("test.bareme", "x"),), "0" * 64)
            ruleset_id = store_ruleset(session, source).id
        result = synthetic_result("2030-01", 5)
        save_simulation(
            store, period="2030-01", simulation=StoredSimulation(result), ruleset_id=ruleset_id, executor="serial"
        )
    finally:
        store.close()
    command.downgrade(alembic_config(normalise_url(db_url)), "0001")
    engine = make_engine(normalise_url(db_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT i.invoice_key, l.position, l.trace FROM invoice_lines l"
                    " JOIN invoices i ON i.id = l.invoice_id"
                )
            ).all()
    finally:
        engine.dispose()
    by_key = {inv.invoice_key: inv for inv in result.invoices}
    assert len(rows) == sum(len(inv.lines) for inv in result.invoices) > 0
    for key, position, trace in rows:
        value = json.loads(trace) if isinstance(trace, str) else trace
        assert value == [step.as_dict() for step in by_key[key].lines[position - 1].trace]
    upgrade_database(db_url)  # and forward again
    open_store(db_url, migrate=False).close()
