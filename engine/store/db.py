"""Opening a store: database URLs, engines, transactions, migrations, one-line errors.

- ``--db`` takes a SQLAlchemy URL: ``sqlite:///bareme.db`` (the embedded default, a file in the
  current directory), ``postgresql://user@host:5432/dbname`` (read as
  ``postgresql+psycopg://``, psycopg 3). Anything else is refused (a bare word is no file name).
- Every problem opening the database is a ``StoreUnavailable`` whose message is one line:
  ``cannot open database URL: reason`` (password hidden).
- The schema is only ever created and evolved by the Alembic migrations
  (``upgrade_database``), never by ``metadata.create_all``.
- SQLite: foreign keys on, WAL journal, a 30 s busy timeout, ``secure_delete = FAST``; pysqlite's implicit transaction
  handling is replaced by explicit ``BEGIN`` statements so that writers that must not
  interleave (emission, imports) take the write lock up front with ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import URL, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session

from engine.runtime import gc_paused
from engine.store.types import dump_json

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "DEFAULT_URL",
    "MIGRATIONS",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "alembic_config",
    "current_revision",
    "describe_error",
    "display_url",
    "gc_paused",
    "head_revision",
    "make_engine",
    "normalise_url",
    "open_store",
    "upgrade_database",
]

DEFAULT_URL = "sqlite:///bareme.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_SQLITE_BUSY_TIMEOUT_S = 30
_PG_CONNECT_TIMEOUT_S = 10
_MIGRATION_LOCK = 0x6261_7265  # pg advisory lock key ("bare")


class StoreError(Exception):
    """A store operation refused or failed; the message is one line meant for the user."""


class StoreUnavailable(StoreError):
    """The database cannot be opened (bad URL, unreachable server, missing schema...)."""


def display_url(url: URL | str) -> str:
    """The URL with its password hidden."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def normalise_url(value: str | URL) -> URL:
    """The SQLAlchemy URL for ``--db``; raises StoreUnavailable for an unusable one."""
    if isinstance(value, URL):
        url = value
    else:
        raw = value.strip()
        if not raw:
            raise StoreUnavailable("cannot open database '': empty --db URL")
        if "://" not in raw:  # a bare word (a typo, a port...) must not create a file
            raise StoreUnavailable(
                f"cannot open database {value}: not a database URL "
                "(e.g. sqlite:///bareme.db or postgresql://user@host/dbname)"
            )
        try:
            url = make_url(raw)
        except ArgumentError:
            raise StoreUnavailable(
                f"cannot open database {value}: not a database URL "
                "(e.g. sqlite:///bareme.db or postgresql://user@host/dbname)"
            ) from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreUnavailable(
            f"cannot open database {display_url(url)}: unsupported database {backend!r} "
            "(sqlite:///FILE or postgresql://...)"
        )
    return url


def describe_error(exc: BaseException) -> str:
    """A short, one-line reason for a connection error."""
    orig = getattr(exc, "orig", None) or exc
    message = str(orig).strip() or type(orig).__name__
    low = message.lower()
    if "connection refused" in low:
        return "connection refused"
    if "could not translate host name" in low or "name or service not known" in low:
        return "unknown host"
    if "timeout expired" in low or "timed out" in low:
        return "connection timed out"
    found = re.search(r'database "([^"]+)" does not exist', message)
    if found:
        return f'database "{found.group(1)}" does not exist'
    if "password authentication failed" in low:
        return "password authentication failed"
    if "no password supplied" in low:
        return "a password is needed"
    if "file is not a database" in low:
        return "not an SQLite database file"
    first = message.splitlines()[0].strip()
    first = re.sub(r"^(connection failed:\s*)", "", first)
    return first[:200]


def _unavailable(url: URL | str, exc: BaseException | str) -> StoreUnavailable:
    reason = exc if isinstance(exc, str) else describe_error(exc)
    return StoreUnavailable(f"cannot open database {display_url(url)}: {reason}")


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _sqlite_begin)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # Some builds (Debian's) zero every deleted page, which doubles the cost of replacing
        # a draft run (0.9 s more at 100k subscriptions); FAST zeroes what costs no extra I/O.
        cursor.execute("PRAGMA secure_delete = FAST")
    finally:
        cursor.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))


def make_engine(url: URL) -> Engine:
    try:
        if url.get_backend_name() == "sqlite":
            engine = create_engine(
                url,
                connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_S},
                json_serializer=dump_json,
                future=True,
            )
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        return create_engine(
            url,
            connect_args={"connect_timeout": _PG_CONNECT_TIMEOUT_S},
            json_serializer=dump_json,
            pool_pre_ping=True,
        )
    except (NoSuchModuleError, ArgumentError, ImportError) as exc:
        raise _unavailable(url, exc) from None


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return Path(database)


class Store:
    """An open store: one engine, sessions and transactions on it."""

    def __init__(self, url: URL, engine: Engine, shown: str | None = None) -> None:
        self.url = url
        self.shown = shown or display_url(url)  # the URL as the user gave it, password hidden
        self.engine = engine
        self.dialect = engine.dialect.name
        # SQLite writers take the write lock up front (BEGIN IMMEDIATE).
        self._immediate = (
            engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            if self.dialect == "sqlite"
            else engine
        )

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One read-write transaction (committed at the end, rolled back on error).

        On SQLite it starts with ``BEGIN IMMEDIATE``: the write lock is taken at once, so two
        writers never interleave (and never fail late on a stale snapshot). On PostgreSQL the
        callers lock the rows they depend on (``SELECT ... FOR UPDATE``, advisory locks).
        """
        with Session(self._immediate, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read-only transaction that sees one consistent state of the database."""
        bind = (
            self.engine.execution_options(isolation_level="REPEATABLE READ")
            if self.dialect == "postgresql"
            else self.engine
        )
        with Session(bind, expire_on_commit=False) as session:
            yield session  # closing the session rolls the (read-only) transaction back

    def advisory_lock(self, session: Session, key: int) -> None:
        """Serialise transactions using ``key`` (PostgreSQL; on SQLite use ``immediate``)."""
        if self.dialect == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def alembic_config(url: URL | str | None = None) -> Config:
    """An Alembic configuration for the store's migrations (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        rendered = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(store: Store) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with store.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _upgrade(store: Store, revision: str) -> None:
    from alembic import command

    config = alembic_config()
    bind = store._immediate  # SQLite: BEGIN IMMEDIATE, concurrent migrators queue up
    with bind.begin() as connection:
        if store.dialect == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _connect_check(store: Store) -> None:
    try:
        with store.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except (DBAPIError, SQLAlchemyError, OSError) as exc:
        store.close()
        raise _unavailable(store.shown, exc) from None


def open_store(db: str | URL = DEFAULT_URL, *, migrate: bool = True) -> Store:
    """Open the store at ``db``.

    ``migrate``: bring the schema up to date first (creating it in an empty database, and the
    SQLite file when missing). Without it the database must already hold the current schema.
    """
    url = normalise_url(db)
    shown = display_url(db)
    path = _sqlite_file(url)
    if path is not None:
        if not migrate and not path.exists():
            raise _unavailable(shown, "no such file (import a data set first)")
        if not path.parent.exists():
            raise _unavailable(shown, f"directory {path.parent} does not exist")
    store = Store(url, make_engine(url), shown)
    _connect_check(store)
    try:
        if migrate:
            _upgrade(store, "head")
        else:
            current, head = current_revision(store), head_revision()
            if current is None:
                raise _unavailable(shown, "no Barème schema in it (import a data set first)")
            if current != head:
                raise _unavailable(
                    shown,
                    f"schema at revision {current}, this version needs {head} (run bareme migrate)",
                )
    except StoreError:
        store.close()
        raise
    except (DBAPIError, OSError) as exc:
        store.close()
        raise _unavailable(shown, exc) from None
    return store


def upgrade_database(url: str | URL, revision: str = "head") -> None:
    """Apply the migrations to ``url`` up to ``revision`` (``head``: the latest)."""
    normal = normalise_url(url)
    store = Store(normal, make_engine(normal), display_url(url))
    _connect_check(store)
    try:
        _upgrade(store, revision)
    except (DBAPIError, OSError) as exc:
        raise _unavailable(store.shown, exc) from None
    finally:
        store.close()
