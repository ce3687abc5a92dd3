"""A line's trace lives in its invoice's document only (``invoices.document``, at
``lines[position - 1].trace``): ``invoice_lines`` keeps the flat columns for SQL reporting,
``explain`` (the trace in one sentence) among them. The same trace was stored twice: a quarter
of a run's bytes, and of the time to write it.

The downgrade puts the column back, filled from the documents.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON()


def upgrade() -> None:
    with op.batch_alter_table("invoice_lines") as batch:
        batch.drop_column("trace")


def downgrade() -> None:
    with op.batch_alter_table("invoice_lines") as batch:
        batch.add_column(sa.Column("trace", JSON_DOC, nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "UPDATE invoice_lines SET trace = ("
            " SELECT json_extract(invoices.document,"
            " '$.lines[' || (invoice_lines.position - 1) || '].trace')"
            " FROM invoices WHERE invoices.id = invoice_lines.invoice_id)"
        )
    else:
        op.execute(
            "UPDATE invoice_lines SET trace = invoices.document -> 'lines'"
            " -> (invoice_lines.position - 1) -> 'trace'"
            " FROM invoices WHERE invoices.id = invoice_lines.invoice_id"
        )
    with op.batch_alter_table("invoice_lines") as batch:
        batch.alter_column("trace", existing_type=JSON_DOC, nullable=False)
