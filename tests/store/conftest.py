"""Fixtures of the store tests: every store test runs on SQLite and on PostgreSQL.

PostgreSQL: each test gets its own database, ``CREATE DATABASE bareme_test_<random> TEMPLATE
<migrated template>`` through the database of BAREME_TEST_POSTGRES_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/test), dropped at the end. When the server is
unreachable these tests are skipped, unless BAREME_REQUIRE_POSTGRES=1 (CI), then they fail.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from store.store_support import (
    ACME,
    StoredSimulation,
    synthetic_result,
    write_small_dataset,
)

from engine.pipeline import CompiledRuleset, compile_ruleset
from engine.store.db import Store, open_store, upgrade_database

PG_URL = os.environ.get(
    "BAREME_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_PG = os.environ.get("BAREME_REQUIRE_POSTGRES") == "1"
BACKENDS = ("sqlite", "postgresql")


def _pg_admin_url() -> URL:
    url = make_url(PG_URL)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def _pg_problem() -> str | None:
    try:
        engine = create_engine(_pg_admin_url(), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any reason: reported as the skip/failure reason
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


class PostgresServer:
    """Creates and drops the test databases."""

    def __init__(self) -> None:
        self.admin = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
        self.prefix = f"bareme_test_{os.getpid()}_{secrets.token_hex(3)}"
        self.count = 0
        self.template: str | None = None

    def url(self, name: str) -> str:
        return _pg_admin_url().set(database=name).render_as_string(hide_password=False)

    def create(self, *, migrated: bool = True) -> str:
        self.count += 1
        name = f"{self.prefix}_{self.count}"
        if migrated:
            if self.template is None:
                self.template = f"{self.prefix}_template"
                with self.admin.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{self.template}"'))
                upgrade_database(self.url(self.template))
            source = f' TEMPLATE "{self.template}"'
        else:
            source = ""
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{source}'))
        return name

    def drop(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        if self.template is not None:
            self.drop(self.template)
        self.admin.dispose()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    problem = _pg_problem()
    if problem is not None:
        message = f"PostgreSQL unreachable at {make_url(PG_URL).render_as_string()}: {problem}"
        if REQUIRE_PG:
            pytest.fail(f"{message} (BAREME_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade_database(f"sqlite:///{path}")
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, sqlite_template: Path
) -> Iterator[str]:
    """A migrated, empty store for this test."""
    if backend == "sqlite":
        path = tmp_path / "bareme.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = server.create()
    try:
        yield server.url(name)
    finally:
        server.drop(name)


@pytest.fixture
def empty_db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database without any table (for the migration tests)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = server.create(migrated=False)
    try:
        yield server.url(name)
    finally:
        server.drop(name)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url, migrate=False)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def acme() -> CompiledRuleset:
    return compile_ruleset(ACME)


@pytest.fixture
def small_data(tmp_path: Path) -> Path:
    return write_small_dataset(tmp_path / "data")


@pytest.fixture
def approved_runs(store: Store) -> Callable[..., list[int]]:
    """Store approved synthetic runs: ``approved_runs(["2030-01", ...], invoices=20)``."""
    from engine.store.rulesets import RulesetSource, store_ruleset
    from engine.store.runs import approve_run, save_simulation

    def make(
        periods: list[str], invoices: int = 20, issue_date: dt.date | None = None
    ) -> list[int]:
        with store.write() as session:
            ruleset_id = store_ruleset(
                session, RulesetSource("test.bareme", "test", (("test.bareme", "x"),), "0" * 64)
            ).id
        ids = []
        for period in periods:
            saved = save_simulation(
                store,
                period=period,
                simulation=StoredSimulation(
                    synthetic_result(period, invoices, issue_date=issue_date)
                ),
                ruleset_id=ruleset_id,
                executor="serial",
            )
            approve_run(store, saved.run_id)
            ids.append(saved.run_id)
        return ids

    return make
