"""``bareme import``: a data-set directory into the store, idempotently, losing nothing.

- The directory is validated by ``engine.dataset.load_dataset`` against the ruleset (every
  error of every row). With errors the import is refused, unless ``skip_invalid``: then the
  invalid rows are left out and kept in ``rejected_rows`` with their original cells and every
  reason. File-level errors (unreadable, ambiguous or unknown files) always refuse.
- Rows are upserted by their natural identifiers (``customer_id``...; a quantity change by
  subscription and effective date): a row already stored with the same values is left alone,
  so importing the same files again changes no data (only a new batch is logged, with its
  counts: 0 inserted, 0 updated). The store is cumulative: rows absent from a later import are
  kept (usage of several months accumulates).
- Per file, ``rows_read = rows_stored + rows_rejected`` (a CHECK constraint) and
  ``rows_stored = inserted + updated + unchanged``; every file's SHA-256 is kept per batch.
- The whole import is one transaction; imports are serialised (advisory lock on PostgreSQL,
  ``BEGIN IMMEDIATE`` on SQLite).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import RowMapping, insert, select, tuple_, update
from sqlalchemy.orm import Session

from engine.dataset import DataError, LoadResult, RejectedRow
from engine.model import DataSet
from engine.pipeline import CompiledRuleset, load_data
from engine.store.db import Store, StoreError
from engine.store.rulesets import ruleset_source, store_ruleset
from engine.store.schema import (
    AccountRow,
    Base,
    CustomerRow,
    DiscountGrantRow,
    ImportBatch,
    ImportFile,
    OneShotRow,
    QuantityChangeRow,
    RejectedRowRecord,
    SiteRow,
    SubscriptionRow,
    UsageRow,
)

__all__ = [
    "IMPORT_ORDER",
    "ImportOutcome",
    "ImportRefused",
    "ImportReport",
    "TableReport",
    "import_directory",
    "store_load_result",
]

_IMPORT_LOCK = 0x6261_7269  # pg advisory lock key
_CHUNK = 500


@dataclass(frozen=True)
class _Spec:
    table: str  # data-set table name (docs/dataset.md)
    model: type[Base]
    keys: tuple[str, ...]


# Parents before children (foreign keys).
IMPORT_ORDER: tuple[_Spec, ...] = (
    _Spec("customers", CustomerRow, ("customer_id",)),
    _Spec("sites", SiteRow, ("site_id",)),
    _Spec("accounts", AccountRow, ("account_id",)),
    _Spec("subscriptions", SubscriptionRow, ("subscription_id",)),
    _Spec("quantity_changes", QuantityChangeRow, ("subscription_id", "effective_date")),
    _Spec("one_shots", OneShotRow, ("charge_id",)),
    _Spec("usage", UsageRow, ("record_id",)),
    _Spec("discounts", DiscountGrantRow, ("grant_id",)),
)


class ImportRefused(StoreError):
    """The data set has errors (and no ``skip_invalid``, or errors it cannot skip)."""

    def __init__(self, message: str, load: LoadResult) -> None:
        super().__init__(message)
        self.load = load


@dataclass(frozen=True)
class TableReport:
    table: str
    file_name: str
    sha256: str
    read: int
    stored: int
    rejected: int
    inserted: int
    updated: int
    unchanged: int


@dataclass(frozen=True)
class ImportReport:
    batch_id: int
    ruleset_id: int
    tables: tuple[TableReport, ...]

    @property
    def changed(self) -> bool:
        return any(t.inserted or t.updated for t in self.tables)


@dataclass(frozen=True)
class ImportOutcome:
    load: LoadResult
    report: ImportReport


def _rows(table: str, data: DataSet) -> list[dict[str, Any]]:
    if table == "usage":
        return [
            {
                "record_id": u.record_id,
                "line_id": u.line_id,
                "product": u.product,
                "start_time": u.start_time.isoformat(),
                "start_utc": u.start_time.astimezone(dt.UTC),
                "quantity": u.quantity,
                "destination": u.destination,
            }
            for u in data.usage
        ]
    models: Sequence[Any] = getattr(data, table)
    exclude = {"quantity_changes"} if table == "subscriptions" else set()
    return [m.model_dump(exclude=exclude) for m in models]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return str(a) == str(b)  # same value and same written form
    return bool(a == b)


def _key(row: Mapping[str, Any] | RowMapping, keys: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(row[k] for k in keys)


def _upsert(
    session: Session, spec: _Spec, rows: list[dict[str, Any]], batch_id: int
) -> tuple[int, int, int]:
    """(inserted, updated, unchanged).

    Rows already stored are looked up by identifier, chunk by chunk, except in a table that
    was empty before this import: every row is new there (the loader refuses duplicate
    identifiers), and on PostgreSQL the lookups in a table just filled, without statistics,
    would scan it whole each time."""
    model: Any = spec.model
    columns = [c for c in rows[0] if c != "start_utc"] if rows else []
    inserted = updated = unchanged = 0
    empty = session.execute(select(getattr(model, spec.keys[0])).limit(1)).first() is None
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        stored: dict[tuple[Any, ...], Any] = {}
        if not empty:
            key_cols = [getattr(model, k) for k in spec.keys]
            if len(spec.keys) == 1:
                condition = key_cols[0].in_([r[spec.keys[0]] for r in chunk])
            else:
                condition = tuple_(*key_cols).in_([_key(r, spec.keys) for r in chunk])
            stored = {
                _key(row._mapping, spec.keys): row._mapping
                for row in session.execute(
                    select(*[getattr(model, c) for c in columns]).where(condition)
                )
            }
        new: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        for row in chunk:
            before = stored.get(_key(row, spec.keys))
            if before is None:
                new.append({**row, "batch_id": batch_id})
            elif all(_same(before[c], row[c]) for c in columns):
                unchanged += 1
            else:
                changed.append({**row, "batch_id": batch_id})
        if new:
            session.execute(insert(model.__table__), new)
            inserted += len(new)
        if changed:
            session.execute(update(model), changed)
            updated += len(changed)
    return inserted, updated, unchanged


def _text(value: str) -> str:
    """Text storable everywhere (PostgreSQL refuses NUL characters)."""
    return value.replace("\x00", "\ufffd")


def _check_storable(table: str, file_name: str, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        for column, value in row.items():
            if isinstance(value, str) and "\x00" in value:
                key = next(iter(row.values()))
                raise StoreError(
                    f"{file_name}: {table} {key!r}: column {column} holds a NUL character, "
                    "which a database cannot store; fix the file"
                )


def _reason(error: DataError) -> dict[str, Any]:
    return {
        "file": error.file,
        "row": error.row,
        "column": error.column,
        "message": _text(error.message),
        "hint": None if error.hint is None else _text(error.hint),
        "cascade": error.cascade,
        "text": _text(str(error)),
    }


def _file_hashes(directory: Path, names: Iterable[str]) -> dict[str, str]:
    return {name: hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in names}


def store_load_result(
    store: Store,
    load: LoadResult,
    directory: Path,
    compiled: CompiledRuleset,
    hashes: Mapping[str, str],
) -> ImportReport:
    """Store a loaded data set (see the module docstring); raises ImportRefused."""
    if not load.billable:
        if load.skip_invalid:
            message = f"{len(load.file_errors)} file errors cannot be skipped; nothing imported"
        else:
            message = (
                f"{len(load.errors)} data errors; nothing imported "
                "(fix them or pass --skip-invalid)"
            )
        raise ImportRefused(message, load)
    source = ruleset_source(compiled)
    by_file = {name: table for table, name in load.files.items()}
    rejected: dict[str, list[RejectedRow]] = {}
    for row in load.rejected:
        rejected.setdefault(by_file.get(row.file, row.file), []).append(row)
    with store.write() as session:
        store.advisory_lock(session, _IMPORT_LOCK)
        ruleset = store_ruleset(session, source)
        batch = ImportBatch(
            directory=str(directory),
            ruleset_id=ruleset.id,
            skip_invalid=load.skip_invalid,
            created_at=dt.datetime.now(dt.UTC),
        )
        session.add(batch)
        session.flush()
        reports: list[TableReport] = []
        for spec in IMPORT_ORDER:
            rows = _rows(spec.table, load.dataset)
            _check_storable(spec.table, load.files.get(spec.table, spec.table), rows)
            inserted, updated, unchanged = _upsert(session, spec, rows, batch.id)
            file_name = load.files.get(spec.table)
            if file_name is None:
                continue  # no file for this table: nothing read, nothing stored
            counts = load.counts[spec.table]
            if counts.accepted != len(rows):  # a bug in the loader, never the user's data
                raise StoreError(
                    f"{file_name}: {counts.accepted} rows accepted but {len(rows)} to store"
                )
            record = ImportFile(
                batch_id=batch.id,
                table_name=spec.table,
                file_name=file_name,
                sha256=hashes.get(file_name),
                rows_read=counts.read,
                rows_stored=len(rows),
                rows_rejected=counts.rejected,
                rows_inserted=inserted,
                rows_updated=updated,
                rows_unchanged=unchanged,
            )
            record.rejected = [
                RejectedRowRecord(
                    row_number=r.row,
                    raw={_text(k): _text(v) for k, v in r.raw.items()},
                    reasons=[_reason(e) for e in r.reasons],
                )
                for r in rejected.get(spec.table, [])
            ]
            session.add(record)
            reports.append(
                TableReport(
                    spec.table,
                    file_name,
                    hashes.get(file_name, ""),
                    counts.read,
                    len(rows),
                    counts.rejected,
                    inserted,
                    updated,
                    unchanged,
                )
            )
        session.flush()
        return ImportReport(batch.id, ruleset.id, tuple(reports))


def import_directory(
    store: Store, directory: Path, compiled: CompiledRuleset, *, skip_invalid: bool = False
) -> ImportOutcome:
    """Load ``directory`` against ``compiled`` and store it. Raises ``DataSetError`` (no
    directory, no customers file) and ``ImportRefused`` (data errors)."""
    directory = Path(directory)
    # Hashed before reading, so that a hash never describes a newer file than the rows stored.
    candidates = (
        sorted(
            p.name
            for p in directory.iterdir()
            if p.is_file() and p.suffix.lower() in (".csv", ".json")
        )
        if directory.is_dir()
        else []
    )
    hashes = _file_hashes(directory, candidates)
    load = load_data(directory, compiled.catalogue, skip_invalid)
    report = store_load_result(store, load, directory, compiled, hashes)
    return ImportOutcome(load, report)
