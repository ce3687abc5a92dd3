"""Runs in the store: draft -> approved -> emitted.

- At most one run per period (a UNIQUE constraint). Simulating a period again replaces its
  draft atomically: the old draft (with its invoices, lines and anomalies) is deleted and the
  new one inserted in one transaction, so readers see either the old draft or the new one.
- An approved or emitted run is frozen: simulating its period again is refused
  (``RunFrozen``), and nothing of it changes except emission (approved -> emitted).
- A stored run gives back its ``RunResult`` exactly (``run_result``): every invoice is kept as
  its full JSON document (``Invoice.as_dict()``), plus one row per line with its trace for
  queries.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.calendar import month_period, previous_month
from engine.store.db import Store, StoreError
from engine.store.schema import Anomaly, Invoice, InvoiceLine, Run

if TYPE_CHECKING:  # imported when needed: emitters stay quick to start
    from engine.invoice import Invoice as InvoiceModel
    from engine.invoice import RunResult

__all__ = [
    "RunFrozen",
    "RunNotFound",
    "SavedRun",
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


@dataclass(frozen=True)
class SavedRun:
    run_id: int
    period: str
    replaced_run_id: int | None
    invoice_count: int
    anomaly_count: int


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


def _invoice_row(run_id: int, inv: InvoiceModel) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "invoice_key": inv.invoice_key,
        "customer_id": inv.customer_id,
        "customer_name": inv.customer_name,
        "period": inv.period,
        "issue_date": inv.issue_date,
        "currency": inv.currency,
        "total_excl_vat": inv.total_excl_vat,
        "total_vat": inv.total_vat,
        "total_incl_vat": inv.total_incl_vat,
        "status": "draft",
        "document": inv.as_dict(),
    }


def _line_rows(invoice_id: int, inv: InvoiceModel) -> list[dict[str, Any]]:
    return [
        {
            "invoice_id": invoice_id,
            "position": position,
            "kind": line.kind,
            "description": line.description,
            "product": line.product,
            "family": line.family,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "amount": line.amount,
            "vat_category": line.vat_category,
            "vat_rate": line.vat_rate,
            "period_start": line.period_start,
            "period_end": line.period_end,
            "subscription_id": line.subscription_id,
            "site_id": line.site_id,
            "account_id": line.account_id,
            "accounting_code": line.accounting_code,
            "rule": line.rule,
            "explain": line.explain,
            "trace": [step.as_dict() for step in line.trace],
        }
        for position, line in enumerate(inv.lines, start=1)
    ]


def save_simulation(
    store: Store,
    *,
    period: str,
    simulation: SimulationLike,
    ruleset_id: int,
    executor: str,
    workers: int | None = None,
    previous_run_id: int | None = None,
    data_batch_id: int | None = None,
    invoice_series: str | None = None,
) -> SavedRun:
    """Store ``simulation`` as the draft run of ``period``, replacing the existing draft in the
    same transaction. Raises RunFrozen when the period's run is approved or emitted."""
    result = simulation.result
    if result.period != period:
        raise StoreError(f"the simulation is of {result.period}, not {period}")
    keys = [inv.invoice_key for inv in result.invoices]
    if len(set(keys)) != len(keys):
        raise StoreError("the simulation has two invoices with the same invoice key")
    try:
        with store.write() as session:
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
                anomaly_count=len(simulation.anomalies),
                timings=_jsonable(dict(simulation.timings)),
                kpis=_jsonable(dict(simulation.kpis.as_dict())),
                result_meta=result.model_dump(mode="json", exclude={"invoices"}),
            )
            session.add(run)
            session.flush()
            invoices = sorted(result.invoices, key=lambda i: i.invoice_key)
            if invoices:
                ids = session.scalars(
                    insert(Invoice).returning(Invoice.id, sort_by_parameter_order=True),
                    [_invoice_row(run.id, inv) for inv in invoices],
                ).all()
                lines = [
                    row
                    for invoice_id, inv in zip(ids, invoices, strict=True)
                    for row in _line_rows(invoice_id, inv)
                ]
                for start in range(0, len(lines), 5000):
                    session.execute(insert(InvoiceLine), lines[start : start + 5000])
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
                for a in simulation.anomalies
            ]
            if anomalies:
                session.execute(insert(Anomaly), anomalies)
            return SavedRun(run.id, period, replaced, len(invoices), len(anomalies))
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
    """The run's ``RunResult`` as the simulator produced it."""
    from engine.invoice import Invoice as InvoiceModel
    from engine.invoice import RunResult

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
