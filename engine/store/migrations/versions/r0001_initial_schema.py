"""Initial schema: data set, imports, rulesets, runs, invoices, anomalies, emission.

Column types are spelled out here (not imported from engine.store.types) so that this revision
stays what it was when it was written:
- money: NUMERIC(18, 6) on PostgreSQL, exact decimal text on SQLite (never a float);
- exact decimals (quantities, unit prices): decimal text;
- timestamps: naive UTC;
- JSON documents: json (kept as written; jsonb would reorder keys).

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(18, 6).with_variant(sa.String(48), "sqlite")
DECIMAL_TEXT = sa.String(64)
TIMESTAMP = sa.DateTime()
JSON_DOC = sa.JSON()


def upgrade() -> None:
    op.create_table(
        "number_series",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("next_value", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=128), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint("next_value >= 1", name=op.f("ck_number_series_next_value_positive")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_number_series")),
    )
    op.create_table(
        "rulesets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("root", sa.String(length=1024), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rulesets")),
        sa.UniqueConstraint("sha256", name=op.f("uq_rulesets_sha256")),
    )
    op.create_table(
        "import_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("directory", sa.String(length=1024), nullable=False),
        sa.Column("ruleset_id", sa.Integer(), nullable=True),
        sa.Column("skip_invalid", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["ruleset_id"], ["rulesets.id"], name=op.f("fk_import_batches_ruleset_id_rulesets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_batches")),
    )
    op.create_table(
        "ruleset_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ruleset_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ruleset_id"],
            ["rulesets.id"],
            name=op.f("fk_ruleset_files_ruleset_id_rulesets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ruleset_files")),
        sa.UniqueConstraint("ruleset_id", "path", name=op.f("uq_ruleset_files_ruleset_id_path")),
    )
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("legal_name", sa.String(length=255), nullable=False),
        sa.Column("country", sa.String(length=8), nullable=False),
        sa.Column("siren", sa.String(length=32), nullable=True),
        sa.Column("vat_number", sa.String(length=32), nullable=True),
        sa.Column("address", sa.String(length=255), nullable=True),
        sa.Column("postal_code", sa.String(length=32), nullable=True),
        sa.Column("city", sa.String(length=255), nullable=True),
        sa.Column("segment", sa.String(length=64), nullable=True),
        sa.Column("pricelist", sa.String(length=64), nullable=True),
        sa.Column("iban", sa.String(length=64), nullable=True),
        sa.Column("email", sa.String(length=1024), nullable=True),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["import_batches.id"], name=op.f("fk_customers_batch_id_import_batches")
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customers")),
    )
    op.create_table(
        "import_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("table_name", sa.String(length=32), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("rows_stored", sa.Integer(), nullable=False),
        sa.Column("rows_rejected", sa.Integer(), nullable=False),
        sa.Column("rows_inserted", sa.Integer(), nullable=False),
        sa.Column("rows_updated", sa.Integer(), nullable=False),
        sa.Column("rows_unchanged", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "rows_read = rows_stored + rows_rejected", name=op.f("ck_import_files_counts_reconcile")
        ),
        sa.CheckConstraint(
            "rows_stored = rows_inserted + rows_updated + rows_unchanged",
            name=op.f("ck_import_files_stored_split"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["import_batches.id"],
            name=op.f("fk_import_files_batch_id_import_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_files")),
        sa.UniqueConstraint(
            "batch_id", "table_name", name=op.f("uq_import_files_batch_id_table_name")
        ),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("ruleset_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("approved_at", TIMESTAMP, nullable=True),
        sa.Column("emitted_at", TIMESTAMP, nullable=True),
        sa.Column("executor", sa.String(length=32), nullable=False),
        sa.Column("workers", sa.Integer(), nullable=True),
        sa.Column("data_batch_id", sa.Integer(), nullable=True),
        sa.Column("previous_run_id", sa.Integer(), nullable=True),
        sa.Column("invoice_series", sa.String(length=32), nullable=True),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("invoice_count", sa.Integer(), nullable=False),
        sa.Column("total_excl_vat", MONEY, nullable=False),
        sa.Column("total_vat", MONEY, nullable=False),
        sa.Column("total_incl_vat", MONEY, nullable=False),
        sa.Column("anomaly_count", sa.Integer(), nullable=False),
        sa.Column("timings", JSON_DOC, nullable=False),
        sa.Column("kpis", JSON_DOC, nullable=False),
        sa.Column("result_meta", JSON_DOC, nullable=False),
        sa.CheckConstraint(
            "status IN ('draft', 'approved', 'emitted')", name=op.f("ck_runs_status")
        ),
        sa.ForeignKeyConstraint(
            ["data_batch_id"],
            ["import_batches.id"],
            name=op.f("fk_runs_data_batch_id_import_batches"),
        ),
        sa.ForeignKeyConstraint(
            ["ruleset_id"], ["rulesets.id"], name=op.f("fk_runs_ruleset_id_rulesets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("period", name=op.f("uq_runs_period")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "usage_records",
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("line_id", sa.String(length=64), nullable=False),
        sa.Column("product", sa.String(length=64), nullable=False),
        sa.Column("start_time", sa.String(length=40), nullable=False),
        sa.Column("start_utc", TIMESTAMP, nullable=False),
        sa.Column("quantity", DECIMAL_TEXT, nullable=False),
        sa.Column("destination", sa.String(length=64), nullable=True),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["import_batches.id"],
            name=op.f("fk_usage_records_batch_id_import_batches"),
        ),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_usage_records")),
    )
    op.create_index(op.f("ix_usage_records_line_id"), "usage_records", ["line_id"])
    op.create_index(op.f("ix_usage_records_start_utc"), "usage_records", ["start_utc"])
    op.create_table(
        "anomalies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=True),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("subscription_id", sa.String(length=64), nullable=True),
        sa.Column("record_id", sa.String(length=64), nullable=True),
        sa.Column("invoice_key", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_anomalies_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anomalies")),
    )
    op.create_index(op.f("ix_anomalies_run_id"), "anomalies", ["run_id"])
    op.create_table(
        "billing_accounts",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["import_batches.id"],
            name=op.f("fk_billing_accounts_batch_id_import_batches"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_billing_accounts_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_billing_accounts")),
    )
    op.create_index(op.f("ix_billing_accounts_customer_id"), "billing_accounts", ["customer_id"])
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("invoice_key", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("customer_name", sa.String(length=255), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("total_excl_vat", MONEY, nullable=False),
        sa.Column("total_vat", MONEY, nullable=False),
        sa.Column("total_incl_vat", MONEY, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("series", sa.String(length=32), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("number", sa.String(length=64), nullable=True),
        sa.Column("emitted_at", TIMESTAMP, nullable=True),
        sa.Column("document", JSON_DOC, nullable=False),
        sa.CheckConstraint(
            "(status = 'emitted') = (number IS NOT NULL)",
            name=op.f("ck_invoices_number_iff_emitted"),
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'approved', 'emitted')", name=op.f("ck_invoices_status")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_invoices_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("number", name=op.f("uq_invoices_number")),
        sa.UniqueConstraint("run_id", "invoice_key", name=op.f("uq_invoices_run_id_invoice_key")),
        sa.UniqueConstraint("series", "seq", name=op.f("uq_invoices_series_seq")),
    )
    op.create_index(op.f("ix_invoices_customer_id"), "invoices", ["customer_id"])
    op.create_index(op.f("ix_invoices_run_id"), "invoices", ["run_id"])
    op.create_table(
        "rejected_rows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("import_file_id", sa.Integer(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("raw", JSON_DOC, nullable=False),
        sa.Column("reasons", JSON_DOC, nullable=False),
        sa.ForeignKeyConstraint(
            ["import_file_id"],
            ["import_files.id"],
            name=op.f("fk_rejected_rows_import_file_id_import_files"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_rows")),
    )
    op.create_index(op.f("ix_rejected_rows_import_file_id"), "rejected_rows", ["import_file_id"])
    op.create_table(
        "sites",
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=True),
        sa.Column("postal_code", sa.String(length=32), nullable=True),
        sa.Column("city", sa.String(length=255), nullable=True),
        sa.Column("country", sa.String(length=8), nullable=True),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["import_batches.id"], name=op.f("fk_sites_batch_id_import_batches")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.customer_id"], name=op.f("fk_sites_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("site_id", name=op.f("pk_sites")),
    )
    op.create_index(op.f("ix_sites_customer_id"), "sites", ["customer_id"])
    op.create_table(
        "credit_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("series", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("total_excl_vat", MONEY, nullable=False),
        sa.Column("total_vat", MONEY, nullable=False),
        sa.Column("total_incl_vat", MONEY, nullable=False),
        sa.Column("document", JSON_DOC, nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_credit_notes_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_notes")),
        sa.UniqueConstraint("invoice_id", name=op.f("uq_credit_notes_invoice_id")),
        sa.UniqueConstraint("number", name=op.f("uq_credit_notes_number")),
        sa.UniqueConstraint("series", "seq", name=op.f("uq_credit_notes_series_seq")),
    )
    op.create_table(
        "invoice_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("product", sa.String(length=64), nullable=True),
        sa.Column("family", sa.String(length=64), nullable=True),
        sa.Column("quantity", DECIMAL_TEXT, nullable=False),
        sa.Column("unit_price", DECIMAL_TEXT, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("vat_category", sa.String(length=8), nullable=False),
        sa.Column("vat_rate", DECIMAL_TEXT, nullable=False),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("subscription_id", sa.String(length=64), nullable=True),
        sa.Column("site_id", sa.String(length=64), nullable=True),
        sa.Column("account_id", sa.String(length=64), nullable=True),
        sa.Column("accounting_code", sa.String(length=64), nullable=True),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("explain", sa.Text(), nullable=False),
        sa.Column("trace", JSON_DOC, nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_invoice_lines_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_lines")),
        sa.UniqueConstraint(
            "invoice_id", "position", name=op.f("uq_invoice_lines_invoice_id_position")
        ),
    )
    op.create_table(
        "one_shots",
        sa.Column("charge_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("product", sa.String(length=64), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("quantity", DECIMAL_TEXT, nullable=False),
        sa.Column("unit_price", DECIMAL_TEXT, nullable=True),
        sa.Column("description", sa.String(length=1024), nullable=True),
        sa.Column("site_id", sa.String(length=64), nullable=True),
        sa.Column("account_id", sa.String(length=64), nullable=True),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["billing_accounts.account_id"],
            name=op.f("fk_one_shots_account_id_billing_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["import_batches.id"], name=op.f("fk_one_shots_batch_id_import_batches")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_one_shots_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.site_id"], name=op.f("fk_one_shots_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("charge_id", name=op.f("pk_one_shots")),
    )
    op.create_index(op.f("ix_one_shots_customer_id"), "one_shots", ["customer_id"])
    op.create_table(
        "subscriptions",
        sa.Column("subscription_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("product", sa.String(length=64), nullable=False),
        sa.Column("quantity", DECIMAL_TEXT, nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("site_id", sa.String(length=64), nullable=True),
        sa.Column("account_id", sa.String(length=64), nullable=True),
        sa.Column("line_id", sa.String(length=64), nullable=True),
        sa.Column("unit_price", DECIMAL_TEXT, nullable=True),
        sa.Column("commitment", sa.String(length=64), nullable=True),
        sa.Column("commitment_start", sa.Date(), nullable=True),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["billing_accounts.account_id"],
            name=op.f("fk_subscriptions_account_id_billing_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["import_batches.id"],
            name=op.f("fk_subscriptions_batch_id_import_batches"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_subscriptions_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.site_id"], name=op.f("fk_subscriptions_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("subscription_id", name=op.f("pk_subscriptions")),
    )
    op.create_index(op.f("ix_subscriptions_customer_id"), "subscriptions", ["customer_id"])
    op.create_index(op.f("ix_subscriptions_line_id"), "subscriptions", ["line_id"])
    op.create_table(
        "discount_grants",
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("discount", sa.String(length=64), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("subscription_id", sa.String(length=64), nullable=True),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["import_batches.id"],
            name=op.f("fk_discount_grants_batch_id_import_batches"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_discount_grants_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.subscription_id"],
            name=op.f("fk_discount_grants_subscription_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("grant_id", name=op.f("pk_discount_grants")),
    )
    op.create_index(op.f("ix_discount_grants_customer_id"), "discount_grants", ["customer_id"])
    op.create_table(
        "quantity_changes",
        sa.Column("subscription_id", sa.String(length=64), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("quantity", DECIMAL_TEXT, nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["import_batches.id"],
            name=op.f("fk_quantity_changes_batch_id_import_batches"),
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.subscription_id"],
            name=op.f("fk_quantity_changes_subscription_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint(
            "subscription_id", "effective_date", name=op.f("pk_quantity_changes")
        ),
    )


def downgrade() -> None:
    op.drop_table("quantity_changes")
    op.drop_index(op.f("ix_discount_grants_customer_id"), table_name="discount_grants")
    op.drop_table("discount_grants")
    op.drop_index(op.f("ix_subscriptions_line_id"), table_name="subscriptions")
    op.drop_index(op.f("ix_subscriptions_customer_id"), table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_index(op.f("ix_one_shots_customer_id"), table_name="one_shots")
    op.drop_table("one_shots")
    op.drop_table("invoice_lines")
    op.drop_table("credit_notes")
    op.drop_index(op.f("ix_sites_customer_id"), table_name="sites")
    op.drop_table("sites")
    op.drop_index(op.f("ix_rejected_rows_import_file_id"), table_name="rejected_rows")
    op.drop_table("rejected_rows")
    op.drop_index(op.f("ix_invoices_run_id"), table_name="invoices")
    op.drop_index(op.f("ix_invoices_customer_id"), table_name="invoices")
    op.drop_table("invoices")
    op.drop_index(op.f("ix_billing_accounts_customer_id"), table_name="billing_accounts")
    op.drop_table("billing_accounts")
    op.drop_index(op.f("ix_anomalies_run_id"), table_name="anomalies")
    op.drop_table("anomalies")
    op.drop_index(op.f("ix_usage_records_start_utc"), table_name="usage_records")
    op.drop_index(op.f("ix_usage_records_line_id"), table_name="usage_records")
    op.drop_table("usage_records")
    op.drop_table("runs")
    op.drop_table("import_files")
    op.drop_table("customers")
    op.drop_table("ruleset_files")
    op.drop_table("import_batches")
    op.drop_table("rulesets")
    op.drop_table("number_series")
