"""The store's tables (SQLAlchemy 2 typed declarative mapping). See docs/store.md.

The schema itself is created and evolved by the Alembic migrations in
``engine/store/migrations``; these classes describe it for queries. A test checks that the
migrations and this module agree.

Data tables (customers ... usage records) are keyed by the data set's natural identifiers and
upserted by imports; every row remembers the import batch that last wrote it. Runs, invoices,
lines and anomalies belong to one run (deleted with a replaced draft); credit notes and number
series are never deleted.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from engine.store.types import ExactDecimal, JSONDoc, Money, UTCDateTime

__all__ = [
    "RUN_STATUSES",
    "AccountRow",
    "Anomaly",
    "Base",
    "CreditNote",
    "CustomerRow",
    "DiscountGrantRow",
    "ImportBatch",
    "ImportFile",
    "Invoice",
    "InvoiceLine",
    "NumberSeries",
    "OneShotRow",
    "QuantityChangeRow",
    "RejectedRowRecord",
    "Ruleset",
    "RulesetFile",
    "Run",
    "SiteRow",
    "SubscriptionRow",
    "UsageRow",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

RUN_STATUSES = ("draft", "approved", "emitted")
INVOICE_STATUSES = ("draft", "approved", "emitted")

_ID = 64  # natural identifiers
_SHORT = 32
_NAME = 255


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# --------------------------------------------------------------------------- rulesets


class Ruleset(Base):
    """One ruleset version: stored once, identified by the SHA-256 of all its files."""

    __tablename__ = "rulesets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(_NAME))
    root: Mapped[str] = mapped_column(String(1024))  # root file, as displayed when stored
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    files: Mapped[list[RulesetFile]] = relationship(
        back_populates="ruleset", order_by="RulesetFile.path", cascade="all, delete-orphan"
    )


class RulesetFile(Base):
    __tablename__ = "ruleset_files"
    __table_args__ = (UniqueConstraint("ruleset_id", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ruleset_id: Mapped[int] = mapped_column(ForeignKey("rulesets.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(1024))  # relative to the root file's directory
    sha256: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)

    ruleset: Mapped[Ruleset] = relationship(back_populates="files")


# --------------------------------------------------------------------------- imports


class ImportBatch(Base):
    """One ``bareme import``: a data-set directory read against a ruleset version."""

    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    directory: Mapped[str] = mapped_column(String(1024))
    ruleset_id: Mapped[int | None] = mapped_column(ForeignKey("rulesets.id"))
    skip_invalid: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    files: Mapped[list[ImportFile]] = relationship(
        back_populates="batch", order_by="ImportFile.id", cascade="all, delete-orphan"
    )


class ImportFile(Base):
    """One file of a batch: its content hash and counts (read = stored + rejected)."""

    __tablename__ = "import_files"
    __table_args__ = (
        UniqueConstraint("batch_id", "table_name"),
        CheckConstraint("rows_read = rows_stored + rows_rejected", name="counts_reconcile"),
        CheckConstraint(
            "rows_stored = rows_inserted + rows_updated + rows_unchanged", name="stored_split"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batches.id", ondelete="CASCADE"))
    table_name: Mapped[str] = mapped_column(String(_SHORT))
    file_name: Mapped[str | None] = mapped_column(String(_NAME))  # None: file absent
    sha256: Mapped[str | None] = mapped_column(String(64))
    rows_read: Mapped[int] = mapped_column(Integer)
    rows_stored: Mapped[int] = mapped_column(Integer)
    rows_rejected: Mapped[int] = mapped_column(Integer)
    rows_inserted: Mapped[int] = mapped_column(Integer)
    rows_updated: Mapped[int] = mapped_column(Integer)
    rows_unchanged: Mapped[int] = mapped_column(Integer)

    batch: Mapped[ImportBatch] = relationship(back_populates="files")
    rejected: Mapped[list[RejectedRowRecord]] = relationship(
        back_populates="file", order_by="RejectedRowRecord.row_number", cascade="all, delete-orphan"
    )


class RejectedRowRecord(Base):
    """A row left out by an import: the original cells as read and every reason."""

    __tablename__ = "rejected_rows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    import_file_id: Mapped[int] = mapped_column(
        ForeignKey("import_files.id", ondelete="CASCADE"), index=True
    )
    row_number: Mapped[int] = mapped_column(Integer)
    raw: Mapped[dict[str, Any]] = mapped_column(JSONDoc())
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc())

    file: Mapped[ImportFile] = relationship(back_populates="rejected")


# --------------------------------------------------------------------------- data set


class _DataRow:
    """Columns every data-set row has: the batch that last wrote it."""

    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batches.id"))


class CustomerRow(_DataRow, Base):
    __tablename__ = "customers"

    customer_id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    legal_name: Mapped[str] = mapped_column(String(_NAME))
    country: Mapped[str] = mapped_column(String(8))
    siren: Mapped[str | None] = mapped_column(String(_SHORT))
    vat_number: Mapped[str | None] = mapped_column(String(_SHORT))
    address: Mapped[str | None] = mapped_column(String(_NAME))
    postal_code: Mapped[str | None] = mapped_column(String(_SHORT))
    city: Mapped[str | None] = mapped_column(String(_NAME))
    segment: Mapped[str | None] = mapped_column(String(_ID))
    pricelist: Mapped[str | None] = mapped_column(String(_ID))
    iban: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(1024))


class SiteRow(_DataRow, Base):
    __tablename__ = "sites"

    site_id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    name: Mapped[str] = mapped_column(String(_NAME))
    address: Mapped[str | None] = mapped_column(String(_NAME))
    postal_code: Mapped[str | None] = mapped_column(String(_SHORT))
    city: Mapped[str | None] = mapped_column(String(_NAME))
    country: Mapped[str | None] = mapped_column(String(8))


class AccountRow(_DataRow, Base):
    """A billing account (cost centre)."""

    __tablename__ = "billing_accounts"

    account_id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    name: Mapped[str] = mapped_column(String(_NAME))


class SubscriptionRow(_DataRow, Base):
    __tablename__ = "subscriptions"

    subscription_id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    product: Mapped[str] = mapped_column(String(_ID))
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal())
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.site_id"))
    account_id: Mapped[str | None] = mapped_column(ForeignKey("billing_accounts.account_id"))
    line_id: Mapped[str | None] = mapped_column(String(_ID), index=True)
    unit_price: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    commitment: Mapped[str | None] = mapped_column(String(_ID))
    commitment_start: Mapped[dt.date | None] = mapped_column(Date)


class QuantityChangeRow(_DataRow, Base):
    """Subscription history: the quantity in force from ``effective_date`` on."""

    __tablename__ = "quantity_changes"

    subscription_id: Mapped[str] = mapped_column(
        ForeignKey("subscriptions.subscription_id"), primary_key=True
    )
    effective_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal())


class OneShotRow(_DataRow, Base):
    __tablename__ = "one_shots"

    charge_id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    product: Mapped[str] = mapped_column(String(_ID))
    date: Mapped[dt.date] = mapped_column(Date)
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal())
    unit_price: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    description: Mapped[str | None] = mapped_column(String(1024))
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.site_id"))
    account_id: Mapped[str | None] = mapped_column(ForeignKey("billing_accounts.account_id"))


class UsageRow(_DataRow, Base):
    """A usage record (CDR). ``start_time`` keeps the ISO text with its offset, exactly;
    ``start_utc`` is the same instant for range queries."""

    __tablename__ = "usage_records"

    record_id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    line_id: Mapped[str] = mapped_column(String(_ID), index=True)
    product: Mapped[str] = mapped_column(String(_ID))
    start_time: Mapped[str] = mapped_column(String(40))
    start_utc: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal())
    destination: Mapped[str | None] = mapped_column(String(_ID))


class DiscountGrantRow(_DataRow, Base):
    __tablename__ = "discount_grants"

    grant_id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    discount: Mapped[str] = mapped_column(String(_ID))
    start_date: Mapped[dt.date] = mapped_column(Date)
    subscription_id: Mapped[str | None] = mapped_column(ForeignKey("subscriptions.subscription_id"))


# --------------------------------------------------------------------------- runs


class Run(Base):
    """A simulated billing run of one period. At most one run per period: a draft is replaced
    by the next simulation; approved and emitted runs are frozen."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'approved', 'emitted')", name="status"),
        {"sqlite_autoincrement": True},  # ids are never reused, even after a replaced draft
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period: Mapped[str] = mapped_column(String(7), unique=True)
    ruleset_id: Mapped[int] = mapped_column(ForeignKey("rulesets.id"))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    emitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    executor: Mapped[str] = mapped_column(String(_SHORT))
    workers: Mapped[int | None] = mapped_column(Integer)
    data_batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"))
    previous_run_id: Mapped[int | None] = mapped_column(Integer)  # the `previous` compared to
    invoice_series: Mapped[str | None] = mapped_column(String(_SHORT))  # the ruleset's
    currency: Mapped[str] = mapped_column(String(8))
    invoice_count: Mapped[int] = mapped_column(Integer)
    total_excl_vat: Mapped[Decimal] = mapped_column(Money())
    total_vat: Mapped[Decimal] = mapped_column(Money())
    total_incl_vat: Mapped[Decimal] = mapped_column(Money())
    anomaly_count: Mapped[int] = mapped_column(Integer)
    timings: Mapped[dict[str, Any]] = mapped_column(JSONDoc())
    kpis: Mapped[dict[str, Any]] = mapped_column(JSONDoc())
    result_meta: Mapped[dict[str, Any]] = mapped_column(JSONDoc())  # RunResult minus invoices

    ruleset: Mapped[Ruleset] = relationship()
    invoices: Mapped[list[Invoice]] = relationship(
        back_populates="run",
        order_by="Invoice.invoice_key",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    anomalies: Mapped[list[Anomaly]] = relationship(
        back_populates="run",
        order_by="Anomaly.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class Invoice(Base):
    """An invoice of a run. ``number`` stays NULL until the run is emitted."""

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("run_id", "invoice_key"),
        UniqueConstraint("series", "seq"),
        CheckConstraint("status IN ('draft', 'approved', 'emitted')", name="status"),
        CheckConstraint("(status = 'emitted') = (number IS NOT NULL)", name="number_iff_emitted"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    invoice_key: Mapped[str] = mapped_column(String(_NAME))
    customer_id: Mapped[str] = mapped_column(String(_ID), index=True)
    customer_name: Mapped[str] = mapped_column(String(_NAME))
    period: Mapped[str] = mapped_column(String(7))
    issue_date: Mapped[dt.date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(8))
    total_excl_vat: Mapped[Decimal] = mapped_column(Money())
    total_vat: Mapped[Decimal] = mapped_column(Money())
    total_incl_vat: Mapped[Decimal] = mapped_column(Money())
    status: Mapped[str] = mapped_column(String(16))
    series: Mapped[str | None] = mapped_column(String(_SHORT))
    seq: Mapped[int | None] = mapped_column(Integer)
    number: Mapped[str | None] = mapped_column(String(64), unique=True)
    emitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    document: Mapped[dict[str, Any]] = mapped_column(JSONDoc())  # Invoice.as_dict()

    run: Mapped[Run] = relationship(back_populates="invoices")
    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice",
        order_by="InvoiceLine.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    credit_notes: Mapped[list[CreditNote]] = relationship(back_populates="invoice")


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"
    __table_args__ = (UniqueConstraint("invoice_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(_SHORT))
    description: Mapped[str] = mapped_column(Text)
    product: Mapped[str | None] = mapped_column(String(_ID))
    family: Mapped[str | None] = mapped_column(String(_ID))
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal())
    unit_price: Mapped[Decimal] = mapped_column(ExactDecimal())
    amount: Mapped[Decimal] = mapped_column(Money())
    vat_category: Mapped[str] = mapped_column(String(8))
    vat_rate: Mapped[Decimal] = mapped_column(ExactDecimal())
    period_start: Mapped[dt.date | None] = mapped_column(Date)
    period_end: Mapped[dt.date | None] = mapped_column(Date)
    subscription_id: Mapped[str | None] = mapped_column(String(_ID))
    site_id: Mapped[str | None] = mapped_column(String(_ID))
    account_id: Mapped[str | None] = mapped_column(String(_ID))
    accounting_code: Mapped[str | None] = mapped_column(String(_ID))
    rule: Mapped[str] = mapped_column(Text)
    explain: Mapped[str] = mapped_column(Text)
    # The line's trace is in its invoice's document (lines[position - 1].trace), stored once.

    invoice: Mapped[Invoice] = relationship(back_populates="lines")


class Anomaly(Base):
    __tablename__ = "anomalies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(_ID))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    rule: Mapped[str | None] = mapped_column(Text)
    customer_id: Mapped[str | None] = mapped_column(String(_ID))
    subscription_id: Mapped[str | None] = mapped_column(String(_ID))
    record_id: Mapped[str | None] = mapped_column(String(_ID))
    invoice_key: Mapped[str | None] = mapped_column(String(_NAME))

    run: Mapped[Run] = relationship(back_populates="anomalies")


# --------------------------------------------------------------------------- emission


class NumberSeries(Base):
    """An invoice or credit-note numbering series: one unbroken sequence, ``next_value`` on."""

    __tablename__ = "number_series"
    __table_args__ = (CheckConstraint("next_value >= 1", name="next_value_positive"),)

    name: Mapped[str] = mapped_column(String(_SHORT), primary_key=True)
    next_value: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class CreditNote(Base):
    """A full reversal of an emitted invoice ("avoir"), numbered in its own series."""

    __tablename__ = "credit_notes"
    __table_args__ = (UniqueConstraint("series", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), unique=True)
    series: Mapped[str] = mapped_column(String(_SHORT))
    seq: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    issue_date: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    currency: Mapped[str] = mapped_column(String(8))
    total_excl_vat: Mapped[Decimal] = mapped_column(Money())
    total_vat: Mapped[Decimal] = mapped_column(Money())
    total_incl_vat: Mapped[Decimal] = mapped_column(Money())
    document: Mapped[dict[str, Any]] = mapped_column(JSONDoc())

    invoice: Mapped[Invoice] = relationship(back_populates="credit_notes")
