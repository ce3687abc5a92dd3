"""Emission: invoice numbers in one unbroken chronological sequence per series; credit notes.

``emit_run`` numbers every invoice of an approved run and marks the invoices and the run
emitted in ONE transaction:

1. lock the run row (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the whole transaction
   holds the write lock from ``BEGIN IMMEDIATE``) and check it is approved;
2. create the series row if missing (``INSERT ... ON CONFLICT DO NOTHING``) and lock it
   (``SELECT ... FOR UPDATE``): concurrent emitters on the same series queue here, each one
   reading ``next_value`` only once the previous one has committed or rolled back;
3. refuse a run whose invoices are dated before the last invoice already numbered in the
   series (numbers must follow issue dates);
4. give ``next_value``, ``next_value + 1``... to the invoices in ``invoice_key`` order (code
   point order, the same on every database), set ``next_value`` past them, mark the run
   emitted, commit.

A process that dies at any point before the commit leaves nothing of the run emitted (the
database rolls the transaction back); after it, all of it. Numbers are never taken from a
sequence object (which would leave gaps on rollback): only from the locked series row, inside
the transaction that uses them. ``UNIQUE(number)`` and ``UNIQUE(series, seq)`` back this up.

Test hook: when ``BAREME_TEST_EMIT_PAUSE`` is set (seconds), the invoices are updated one at a
time with that pause between them, to widen the window for the crash tests.
"""

from __future__ import annotations

import datetime as dt
import os
import string
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine.store.db import Store, StoreError
from engine.store.runs import find_run
from engine.store.schema import CreditNote, Invoice, NumberSeries, Run

__all__ = [
    "DEFAULT_CREDIT_SERIES",
    "DEFAULT_INVOICE_SERIES",
    "DEFAULT_NUMBER_FORMAT",
    "PAUSE_ENV",
    "CreditNoteResult",
    "EmitResult",
    "check_format",
    "create_credit_note",
    "emit_run",
    "format_number",
]

DEFAULT_INVOICE_SERIES = "FA"
DEFAULT_CREDIT_SERIES = "AV"
DEFAULT_NUMBER_FORMAT = "{series}-{year}-{seq:06d}"
PAUSE_ENV = "BAREME_TEST_EMIT_PAUSE"
_FIELDS = {"series", "year", "month", "seq"}
_CHUNK = 1000


@dataclass(frozen=True)
class EmitResult:
    run_id: int
    period: str
    series: str
    count: int
    first: str | None
    last: str | None


@dataclass(frozen=True)
class CreditNoteResult:
    number: str
    invoice_number: str
    total_incl_vat: Decimal
    currency: str


def check_format(number_format: str) -> None:
    """Refuse a format that cannot number invoices uniquely (``{seq}`` is mandatory)."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(number_format) if name}
    except ValueError as exc:
        raise StoreError(f"bad number format {number_format!r}: {exc}") from None
    unknown = fields - _FIELDS
    if unknown:
        raise StoreError(
            f"bad number format {number_format!r}: unknown field {{{sorted(unknown)[0]}}} "
            "(use {series}, {year}, {month}, {seq})"
        )
    if "seq" not in fields:
        raise StoreError(f"bad number format {number_format!r}: it needs {{seq}}")
    try:
        format_number(number_format, "FA", 1, dt.date(2026, 1, 1))
    except (ValueError, KeyError, IndexError) as exc:
        raise StoreError(f"bad number format {number_format!r}: {exc}") from None


def format_number(number_format: str, series: str, seq: int, issue_date: dt.date) -> str:
    return number_format.format(
        series=series, year=issue_date.year, month=f"{issue_date.month:02d}", seq=seq
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _lock_series(
    store: Store, session: Session, name: str, number_format: str | None
) -> NumberSeries:
    """The series row, created when missing, locked until the end of the transaction."""
    if number_format is not None:
        check_format(number_format)
    now = _now()
    values = {
        "name": name,
        "next_value": 1,
        "format": number_format or DEFAULT_NUMBER_FORMAT,
        "created_at": now,
        "updated_at": now,
    }
    insert = postgresql.insert if store.dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(NumberSeries).values(**values).on_conflict_do_nothing(index_elements=["name"])
    )
    series = session.scalars(
        select(NumberSeries)
        .where(NumberSeries.name == name)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if number_format is not None and series.format != number_format:
        raise StoreError(
            f"series {name} numbers as {series.format!r}; its format cannot change "
            f"(asked {number_format!r})"
        )
    return series


def _pause() -> float:  # float-ok: a test hook's sleep in seconds, not money
    value = os.environ.get(PAUSE_ENV)
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))  # float-ok
    except ValueError:
        return 0.0


def emit_run(
    store: Store,
    ref: str | int,
    *,
    series: str | None = None,
    number_format: str | None = None,
) -> EmitResult:
    """Number and emit every invoice of an approved run, atomically (module docstring).

    ``series``: default the ruleset's ``invoice_series`` (kept with the run), else "FA".
    ``number_format``: only when the series is created (then it cannot change)."""
    if series is not None and (not series or len(series) > 32):
        raise StoreError(f"bad series name {series!r}")
    pause = _pause()
    with store.write() as session:
        run = find_run(session, ref, lock=True)
        series = series or run.invoice_series or DEFAULT_INVOICE_SERIES
        if run.status == "emitted":
            raise StoreError(f"run {run.id} of {run.period} is already emitted")
        if run.status != "approved":
            raise StoreError(
                f"run {run.id} of {run.period} is a {run.status}: approve it first "
                f"(bareme approve {run.id})"
            )
        numbering = _lock_series(store, session, series, number_format)
        rows = session.execute(
            select(Invoice.id, Invoice.invoice_key, Invoice.issue_date, Invoice.status).where(
                Invoice.run_id == run.id
            )
        ).all()
        if any(r.status != "approved" for r in rows):
            raise StoreError(f"run {run.id}: some invoices are not approved; nothing emitted")
        rows = sorted(rows, key=lambda r: r.invoice_key)
        if rows:
            # the last number's date (numbers follow dates): one step down UNIQUE(series, seq)
            last_date = session.scalar(
                select(Invoice.issue_date)
                .where(Invoice.series == series, Invoice.seq.is_not(None))
                .order_by(Invoice.seq.desc())
                .limit(1)
            )
            first_date = min(r.issue_date for r in rows)
            if last_date is not None and first_date < last_date:
                raise StoreError(
                    f"run {run.id} of {run.period}: its invoices are dated {first_date}, before "
                    f"the last invoice of series {series} ({last_date}); numbers must follow "
                    "issue dates, nothing emitted"
                )
        now = _now()
        start = numbering.next_value
        numbers = [
            format_number(numbering.format, series, start + i, r.issue_date)
            for i, r in enumerate(rows)
        ]
        params = [
            {
                "id": r.id,
                "status": "emitted",
                "series": series,
                "seq": start + i,
                "number": numbers[i],
                "emitted_at": now,
            }
            for i, r in enumerate(rows)
        ]
        chunk = 1 if pause else _CHUNK
        for offset in range(0, len(params), chunk):
            if pause and offset:
                time.sleep(pause)
            session.execute(update(Invoice), params[offset : offset + chunk])
        numbering.next_value = start + len(rows)
        numbering.updated_at = now
        run.status = "emitted"
        run.emitted_at = now
        session.flush()
        return EmitResult(
            run.id,
            run.period,
            series,
            len(rows),
            numbers[0] if numbers else None,
            numbers[-1] if numbers else None,
        )


def _negate(value: Any) -> Any:
    if value is None:
        return None
    return str(-Decimal(str(value)))


def _credit_document(
    invoice: Invoice, number: str, issue_date: dt.date, reason: str
) -> dict[str, Any]:
    original = invoice.document
    lines = []
    for position, line in enumerate(original.get("lines", []), start=1):
        reversed_line = dict(line)
        for key in ("quantity", "amount", "cost"):
            reversed_line[key] = _negate(line.get(key))
        reversed_line["trace"] = [
            *line.get("trace", []),
            {
                "rule": "credit note",
                "text": f"reversal of line {position} of invoice {invoice.number}: {reason}",
                "source": f"credit note {number}",
            },
        ]
        reversed_line["explain"] = (
            f"Reversal of line {position} of invoice {invoice.number}. {line.get('explain', '')}"
        ).strip()
        lines.append(reversed_line)
    vat = [
        {**v, "base": _negate(v.get("base")), "vat": _negate(v.get("vat"))}
        for v in original.get("vat_breakdown", [])
    ]
    return {
        "document_type": "credit_note",
        "number": number,
        "issue_date": issue_date.isoformat(),
        "reason": reason,
        "credited_invoice": {
            "number": invoice.number,
            "invoice_key": invoice.invoice_key,
            "issue_date": invoice.issue_date.isoformat(),
            "period": invoice.period,
        },
        "customer_id": original.get("customer_id"),
        "customer_name": original.get("customer_name"),
        "site_id": original.get("site_id"),
        "account_id": original.get("account_id"),
        "currency": original.get("currency"),
        "lines": lines,
        "vat_breakdown": vat,
        "total_excl_vat": _negate(original.get("total_excl_vat")),
        "total_vat": _negate(original.get("total_vat")),
        "total_incl_vat": _negate(original.get("total_incl_vat")),
        "mentions": original.get("mentions", []),
    }


def create_credit_note(
    store: Store,
    invoice_number: str,
    reason: str,
    *,
    series: str = DEFAULT_CREDIT_SERIES,
    number_format: str | None = None,
    issue_date: dt.date | None = None,
) -> CreditNoteResult:
    """A credit note reversing every line of the emitted invoice ``invoice_number``, numbered
    in ``series`` (same guarantees as invoice numbers). One full credit note per invoice."""
    reason = reason.strip()
    if not reason:
        raise StoreError("a credit note needs a reason (--reason)")
    if not series or len(series) > 32:
        raise StoreError(f"bad series name {series!r}")
    issue_date = issue_date or dt.date.today()
    with store.write() as session:
        invoice = session.scalars(
            select(Invoice)
            .where(Invoice.number == invoice_number)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()
        if invoice is None:
            raise StoreError(f"no emitted invoice numbered {invoice_number!r}")
        existing = session.scalars(
            select(CreditNote).where(CreditNote.invoice_id == invoice.id)
        ).first()
        if existing is not None:
            raise StoreError(
                f"invoice {invoice_number} is already fully credited by {existing.number}"
            )
        if invoice.series == series:
            raise StoreError(f"credit notes need their own series, not {series}")
        numbering = _lock_series(store, session, series, number_format)
        last_date = session.scalar(
            select(CreditNote.issue_date)
            .where(CreditNote.series == series)
            .order_by(CreditNote.seq.desc())
            .limit(1)
        )
        if last_date is not None and issue_date < last_date:
            raise StoreError(
                f"series {series} already has a credit note dated {last_date}, after {issue_date}"
            )
        if issue_date < invoice.issue_date:
            raise StoreError(
                f"a credit note dated {issue_date} cannot precede its invoice ({invoice.issue_date})"
            )
        seq = numbering.next_value
        number = format_number(numbering.format, series, seq, issue_date)
        document = _credit_document(invoice, number, issue_date, reason)
        note = CreditNote(
            invoice_id=invoice.id,
            series=series,
            seq=seq,
            number=number,
            reason=reason,
            issue_date=issue_date,
            created_at=_now(),
            currency=invoice.currency,
            total_excl_vat=-invoice.total_excl_vat,
            total_vat=-invoice.total_vat,
            total_incl_vat=-invoice.total_incl_vat,
            document=document,
        )
        session.add(note)
        numbering.next_value = seq + 1
        numbering.updated_at = _now()
        session.flush()
        return CreditNoteResult(number, invoice_number, note.total_incl_vat, note.currency)


def series_state(session: Session) -> list[NumberSeries]:
    return list(session.scalars(select(NumberSeries).order_by(NumberSeries.name)))


def run_numbers(session: Session, run: Run) -> list[str]:
    return [
        n
        for n in session.scalars(
            select(Invoice.number).where(Invoice.run_id == run.id).order_by(Invoice.seq)
        )
        if n is not None
    ]
