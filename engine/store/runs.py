"""Runs in the store: draft -> approved -> emitted.

- At most one run per period (a UNIQUE constraint). Simulating a period again replaces its
  draft atomically: the old draft (with its invoices, lines and anomalies) is deleted and the
  new one inserted in one transaction, so readers see either the old draft or the new one.
- An approved or emitted run is frozen: simulating its period again is refused
  (``RunFrozen``), and nothing of it changes except emission (approved -> emitted).
- A stored run gives back its ``RunResult`` exactly (``run_result``): every invoice is kept as
  its full JSON document (``Invoice.as_dict()``, the lines' traces included), plus one row per
  line for queries (its trace stays in the document, stored once).
- A draft is written in bulk (100,000 subscriptions give ~27,000 invoices and ~120,000 lines,
  ~160 MB of JSON): invoices in batches, each a DBAPI ``executemany`` of values converted by the
  columns' own types (``_bulk_insert``), each trace step encoded once (``encode_invoice``), the
  garbage collector paused.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _json_str
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError
from sqlalchemy.orm import Session

from engine.calendar import month_period, previous_month
from engine.store.db import Store, StoreError, gc_paused
from engine.store.schema import Anomaly, Invoice, InvoiceLine, Run
from engine.store.types import JSONText

if TYPE_CHECKING:  # imported when needed: emitters stay quick to start
    from engine.invoice import Invoice as InvoiceModel
    from engine.invoice import RunResult, TraceStep

__all__ = [
    "RunFrozen",
    "RunNotFound",
    "SavedRun",
    "PendingLike",
    "SimulationLike",
    "approve_run",
    "check_simulable",
    "find_run",
    "list_runs",
    "previous_run",
    "run_document",
    "run_result",
    "save_simulation",
]

_PERIOD = re.compile(r"\d{4}-\d{2}")


class RunNotFound(StoreError):
    pass


class RunFrozen(StoreError):
    pass


class AnomalyLike(Protocol):
    """What ``simulator.Anomaly`` holds."""

    @property
    def kind(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def rule(self) -> str | None: ...
    @property
    def customer_id(self) -> str | None: ...
    @property
    def subscription_id(self) -> str | None: ...
    @property
    def record_id(self) -> str | None: ...
    @property
    def invoice_key(self) -> str | None: ...
    @property
    def severity(self) -> str: ...


class KpisLike(Protocol):
    def as_dict(self) -> Mapping[str, Any]: ...


class SimulationLike(Protocol):
    """What ``simulator.simulate`` returns (``simulator.Simulation``)."""

    @property
    def result(self) -> RunResult: ...

    @property
    def anomalies(self) -> Sequence[AnomalyLike]: ...

    @property
    def kpis(self) -> KpisLike: ...

    @property
    def timings(self) -> Mapping[str, float]: ...


class PendingLike(Protocol):
    """What ``simulator.simulating`` yields (``simulator.PendingSimulation``): the run and its
    anomalies, the KPIs still being computed (the forecast) until ``finish()``."""

    @property
    def result(self) -> RunResult: ...

    @property
    def anomalies(self) -> Sequence[AnomalyLike]: ...

    def finish(self) -> SimulationLike: ...


@dataclass(frozen=True)
class SavedRun:
    run_id: int
    period: str
    replaced_run_id: int | None
    invoice_count: int
    anomaly_count: int
    # the simulation's timings plus "store" (seconds spent writing the draft), as stored
    timings: Mapping[str, float] = field(default_factory=dict)  # float-ok: seconds


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _jsonable(value: Any) -> Any:
    """Plain JSON values (decimals, dates... as strings)."""
    return json.loads(json.dumps(value, default=str))


def find_run(session: Session, ref: str | int, *, lock: bool = False) -> Run:
    """The run with id ``ref``, or of period ``ref`` (YYYY-MM). ``lock``: FOR UPDATE."""
    text = str(ref).strip()
    query = select(Run)
    if text.isdigit():
        query = query.where(Run.id == int(text))
    elif _PERIOD.fullmatch(text):
        query = query.where(Run.period == text)
    else:
        raise RunNotFound(f"no run {text!r}: give a run id or a period YYYY-MM (see bareme runs)")
    if lock:
        query = query.with_for_update()
    run = session.scalars(query.execution_options(populate_existing=True)).first()
    if run is None:
        what = f"run {text}" if text.isdigit() else f"run for period {text}"
        raise RunNotFound(f"no {what} (see bareme runs)")
    return run


def _frozen_message(run: Run) -> str:
    return (
        f"run {run.id} of {run.period} is {run.status}: it is frozen, "
        f"{run.period} cannot be simulated again"
    )


def check_simulable(session: Session, period: str) -> Run | None:
    """The draft a new simulation of ``period`` would replace; RunFrozen when frozen."""
    run = session.scalars(select(Run).where(Run.period == period)).first()
    if run is not None and run.status != "draft":
        raise RunFrozen(_frozen_message(run))
    return run


def previous_run(session: Session, period: str) -> Run | None:
    """The run of the period before ``period`` (any status), if any."""
    before = previous_month(month_period(period)).start.strftime("%Y-%m")
    return session.scalars(select(Run).where(Run.period == before)).first()


_INVOICE_COLUMNS = (
    "run_id",
    "invoice_key",
    "customer_id",
    "customer_name",
    "period",
    "issue_date",
    "currency",
    "total_excl_vat",
    "total_vat",
    "total_incl_vat",
    "status",
    "document",
)


def _invoice_row(run_id: int, inv: InvoiceModel, document: JSONText) -> tuple[Any, ...]:
    return (
        run_id,
        inv.invoice_key,
        inv.customer_id,
        inv.customer_name,
        inv.period,
        inv.issue_date,
        inv.currency,
        inv.total_excl_vat,
        inv.total_vat,
        inv.total_incl_vat,
        "draft",
        document,
    )


_LINE_COLUMNS = (
    "invoice_id",
    "position",
    "kind",
    "description",
    "product",
    "family",
    "quantity",
    "unit_price",
    "amount",
    "vat_category",
    "vat_rate",
    "period_start",
    "period_end",
    "subscription_id",
    "site_id",
    "account_id",
    "accounting_code",
    "rule",
    "explain",
)


def _line_rows(invoice_id: int, inv: InvoiceModel) -> Iterator[tuple[Any, ...]]:
    for position, line in enumerate(inv.lines, start=1):
        yield (
            invoice_id,
            position,
            line.kind,
            line.description,
            line.product,
            line.family,
            line.quantity,
            line.unit_price,
            line.amount,
            line.vat_category,
            line.vat_rate,
            line.period_start,
            line.period_end,
            line.subscription_id,
            line.site_id,
            line.account_id,
            line.accounting_code,
            line.rule,
            line.explain,
        )


def _bulk_insert(
    session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """INSERT ``rows`` (values in ``columns`` order) into ``table`` with one DBAPI
    ``executemany``: the statement compiled by SQLAlchemy for the session's database, every value
    converted by its column's own type (the bind processors, checks included, that
    ``session.execute(insert(table), dicts)`` applies), without that call's bookkeeping per
    row, which is most of the time of writing a run's lines."""
    connection = session.connection()
    dialect = connection.dialect
    compiled = insert(table).inline().compile(dialect=dialect, column_keys=list(columns))
    convert = [
        (index, processor)
        for index, name in enumerate(columns)
        if (processor := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
        is not None
    ]
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        _copy_rows(connection, table, columns, rows, convert, compiled.string)
        return
    order: list[int] | None = None  # positional parameters: their order in the statement
    if dialect.positional:
        position = {name: index for index, name in enumerate(columns)}
        order = [position[name] for name in compiled.positiontup or ()]
    params: list[Any] = []
    try:
        for row in rows:
            values = list(row)
            for index, processor in convert:
                values[index] = processor(values[index])
            if order is None:
                params.append(dict(zip(columns, values, strict=True)))
            else:
                params.append(tuple(values[i] for i in order))
    except (TypeError, ValueError) as exc:  # as session.execute reports a value it cannot bind
        raise _unbindable(exc, compiled.string) from exc
    if params:
        connection.exec_driver_sql(compiled.string, params)


def _unbindable(exc: Exception, statement: str) -> StatementError:
    return StatementError(
        f"({type(exc).__module__}.{type(exc).__name__}) {exc}", statement, None, exc
    )


def _copy_rows(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    convert: Sequence[tuple[int, Any]],
    statement: str,
) -> None:
    """PostgreSQL: the rows through ``COPY ... FROM STDIN`` (psycopg), in the transaction of
    ``connection``: a tenth of the time of an ``executemany``, same values."""
    quote = connection.dialect.identifier_preparer.quote
    sql = f"COPY {quote(table.name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    driver = connection.connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                values = list(row)
                for index, processor in convert:
                    values[index] = processor(values[index])
                copy.write_row(values)
    except (TypeError, ValueError) as exc:
        raise _unbindable(exc, statement) from exc
    except Exception as exc:  # a psycopg error: as SQLAlchemy wraps it (IntegrityError...)
        dbapi = connection.dialect.loaded_dbapi
        if isinstance(exc, dbapi.Error):
            raise DBAPIError.instance(sql, None, exc, dbapi.Error) from exc
        raise


# A line's trace inside its invoice's document is a placeholder while the document is encoded,
# then replaced by the trace's own encoding, made of its steps' encodings (lines share steps:
# each is encoded once). The placeholder (a NUL and a random token) is not met in real text; if
# it were, the document would be encoded plainly.
_MARK = f"\x00trace:{secrets.token_hex(8)}:"
_MARK_JSON = re.compile(re.escape(json.dumps(_MARK)[:-1]) + r'(\d+)"')


def encode_step(step: TraceStep) -> str:
    """``json.dumps(step.as_dict())``, byte for byte, without its per-call overhead (a run at
    100,000 subscriptions has some 600,000 steps to encode)."""
    return (
        f'{{"rule": {_json_str(step.rule)}, "text": {_json_str(step.text)}, '
        f'"source": {_json_str(step.source)}}}'
    )


def encode_invoice(inv: InvoiceModel, steps: dict[int, str] | None = None) -> JSONText:
    """``json.dumps(inv.as_dict())``, byte for byte, encoding each trace step once per ``steps``
    cache (keyed by the step's identity: the caller keeps the steps alive while it uses the
    cache; lines share many of their steps)."""
    steps = {} if steps is None else steps
    document = inv.as_dict(with_traces=False)
    lines = document["lines"]
    traces: list[JSONText] = []
    for line in inv.lines:
        parts = []
        for step in line.trace:
            encoded = steps.get(id(step))
            if encoded is None:
                encoded = steps[id(step)] = encode_step(step)
            parts.append(encoded)
        # json.dumps of a list: items separated by ", "
        traces.append(JSONText("[" + ", ".join(parts) + "]"))
    for position, line_doc in enumerate(lines):
        line_doc["trace"] = f"{_MARK}{position}"
    text, count = _MARK_JSON.subn(lambda m: traces[int(m[1])], json.dumps(document))
    if count != len(lines):  # a placeholder in the data itself: encode plainly
        for line_doc, trace in zip(lines, traces, strict=True):
            line_doc["trace"] = json.loads(trace)
        text = json.dumps(document)
    return JSONText(text)


_CHUNK = 2000  # invoices per batch: the encoded documents of one batch at a time in memory


def save_simulation(
    store: Store,
    *,
    period: str,
    simulation: SimulationLike | None = None,
    pending: PendingLike | None = None,
    ruleset_id: int,
    executor: str,
    workers: int | None = None,
    previous_run_id: int | None = None,
    data_batch_id: int | None = None,
    invoice_series: str | None = None,
    started: float | None = None,  # float-ok: time.perf_counter() value
) -> SavedRun:
    """Store ``simulation`` as the draft run of ``period``, replacing the existing draft in the
    same transaction. Raises RunFrozen when the period's run is approved or emitted.

    Give the finished ``simulation``, or a ``pending`` one: then its invoices, lines and
    anomalies are written while its forecast goes on elsewhere, and ``pending.finish()`` gives
    the KPIs and timings stored with the run, before the commit.

    The run's timings are the simulation's plus "store": the seconds from ``started`` (a
    ``time.perf_counter()`` value, default: this call) until every row is written (the wait
    for a pending simulation and the commit excluded)."""
    clock = time.perf_counter() if started is None else started
    if (simulation is None) == (pending is None):
        raise TypeError("save_simulation takes a simulation or a pending one")
    run_of = simulation if simulation is not None else pending
    assert run_of is not None
    result = run_of.result
    if result.period != period:
        raise StoreError(f"the simulation is of {result.period}, not {period}")
    keys = [inv.invoice_key for inv in result.invoices]
    if len(set(keys)) != len(keys):
        raise StoreError("the simulation has two invoices with the same invoice key")
    try:
        with gc_paused(), store.write() as session:
            old = session.scalars(select(Run).where(Run.period == period).with_for_update()).first()
            replaced: int | None = None
            if old is not None:
                if old.status != "draft":
                    raise RunFrozen(_frozen_message(old))
                replaced = old.id
                session.execute(delete(Run).where(Run.id == old.id))
                session.expunge(old)
            run = Run(
                period=period,
                ruleset_id=ruleset_id,
                status="draft",
                created_at=_now(),
                executor=executor,
                workers=workers,
                data_batch_id=data_batch_id,
                previous_run_id=previous_run_id,
                invoice_series=invoice_series,
                currency=result.currency,
                invoice_count=len(result.invoices),
                total_excl_vat=result.total_excl_vat,
                total_vat=result.total_vat,
                total_incl_vat=result.total_incl_vat,
                anomaly_count=len(run_of.anomalies),
                timings=_jsonable(dict(simulation.timings)) if simulation is not None else {},
                kpis=_jsonable(dict(simulation.kpis.as_dict())) if simulation is not None else {},
                result_meta=result.model_dump(mode="json", exclude={"invoices"}),
            )
            session.add(run)
            session.flush()
            invoices = sorted(result.invoices, key=lambda i: i.invoice_key)
            step_texts: dict[int, str] = {}  # the run's trace steps, each encoded once
            invoice_table, line_table = Invoice.__table__, InvoiceLine.__table__
            assert isinstance(invoice_table, Table) and isinstance(line_table, Table)
            for start in range(0, len(invoices), _CHUNK):
                batch = invoices[start : start + _CHUNK]
                encoded = [encode_invoice(inv, step_texts) for inv in batch]
                _bulk_insert(
                    session,
                    invoice_table,
                    _INVOICE_COLUMNS,
                    [
                        _invoice_row(run.id, inv, document)
                        for inv, document in zip(batch, encoded, strict=True)
                    ],
                )
                keys = [inv.invoice_key for inv in batch]
                ids = dict(
                    session.execute(
                        select(Invoice.invoice_key, Invoice.id).where(
                            Invoice.run_id == run.id, Invoice.invoice_key.in_(keys)
                        )
                    ).all()
                )
                _bulk_insert(
                    session,
                    line_table,
                    _LINE_COLUMNS,
                    (row for inv in batch for row in _line_rows(ids[inv.invoice_key], inv)),
                )
            anomalies = [
                {
                    "run_id": run.id,
                    "kind": a.kind,
                    "severity": a.severity,
                    "message": a.message,
                    "rule": a.rule,
                    "customer_id": a.customer_id,
                    "subscription_id": a.subscription_id,
                    "record_id": a.record_id,
                    "invoice_key": a.invoice_key,
                }
                for a in run_of.anomalies
            ]
            if anomalies:
                session.execute(insert(Anomaly), anomalies)
            store_s = time.perf_counter() - clock
            if simulation is None:
                assert pending is not None
                simulation = pending.finish()
                run.kpis = _jsonable(dict(simulation.kpis.as_dict()))
            timings = {**_jsonable(dict(simulation.timings)), "store": store_s}
            run.timings = timings
            session.flush()
            return SavedRun(run.id, period, replaced, len(invoices), len(anomalies), timings)
    except IntegrityError:
        raise StoreError(
            f"another simulation of {period} was stored at the same time; nothing stored "
            "from this one (run it again)"
        ) from None


def approve_run(store: Store, ref: str | int) -> Run:
    """draft -> approved (the run and its invoices); the run is then frozen."""
    with store.write() as session:
        run = find_run(session, ref, lock=True)
        if run.status != "draft":
            raise StoreError(f"run {run.id} of {run.period} is already {run.status}")
        now = _now()
        run.status = "approved"
        run.approved_at = now
        session.execute(update(Invoice).where(Invoice.run_id == run.id).values(status="approved"))
        session.flush()
        return run


def list_runs(session: Session) -> list[Run]:
    return list(session.scalars(select(Run).order_by(Run.period.desc())))


def run_result(session: Session, run: Run) -> RunResult:
    """The run's ``RunResult`` as the simulator produced it (validated again: a stored document
    is data read back). The garbage collector is paused: a run at 100,000 subscriptions is
    ~150 MB of documents, read into millions of small acyclic objects."""
    from engine.invoice import Invoice as InvoiceModel
    from engine.invoice import RunResult

    with gc_paused():
        documents = session.scalars(select(Invoice.document).where(Invoice.run_id == run.id)).all()
        invoices = sorted(
            (InvoiceModel.model_validate(doc) for doc in documents), key=lambda i: i.invoice_key
        )
        return RunResult.model_validate({**run.result_meta, "invoices": invoices})


def _money(value: Any) -> str | None:
    return None if value is None else str(value)


def _ts(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def run_summary(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "period": run.period,
        "status": run.status,
        "ruleset": {"id": run.ruleset_id, "sha256": run.ruleset.sha256, "name": run.ruleset.name},
        "created_at": _ts(run.created_at),
        "approved_at": _ts(run.approved_at),
        "emitted_at": _ts(run.emitted_at),
        "executor": run.executor,
        "workers": run.workers,
        "data_batch_id": run.data_batch_id,
        "previous_run_id": run.previous_run_id,
        "invoice_series": run.invoice_series,
        "currency": run.currency,
        "invoice_count": run.invoice_count,
        "anomaly_count": run.anomaly_count,
        "total_excl_vat": _money(run.total_excl_vat),
        "total_vat": _money(run.total_vat),
        "total_incl_vat": _money(run.total_incl_vat),
        "timings": run.timings,
        "kpis": run.kpis,
    }


def run_document(session: Session, run: Run) -> dict[str, Any]:
    """Everything about a run as JSON: summary, usage counts, invoices (with numbers once
    emitted, and credit notes), anomalies."""
    invoices = session.scalars(select(Invoice).where(Invoice.run_id == run.id)).all()
    out = run_summary(run)
    out["usage"] = {
        "read": run.result_meta.get("usage_read", 0),
        "billed": run.result_meta.get("usage_billed", 0),
        "outside_period": run.result_meta.get("usage_outside_period", 0),
        "rejected_records": run.result_meta.get("usage_rejected", []),
    }
    out["invoices"] = [
        {
            "number": inv.number,
            "status": inv.status,
            "series": inv.series,
            "emitted_at": _ts(inv.emitted_at),
            "credit_notes": [c.number for c in inv.credit_notes],
            **inv.document,
        }
        for inv in sorted(invoices, key=lambda i: i.invoice_key)
    ]
    out["anomalies"] = [
        {
            "kind": a.kind,
            "severity": a.severity,
            "message": a.message,
            "rule": a.rule,
            "customer_id": a.customer_id,
            "subscription_id": a.subscription_id,
            "record_id": a.record_id,
            "invoice_key": a.invoice_key,
        }
        for a in run.anomalies
    ]
    return out
