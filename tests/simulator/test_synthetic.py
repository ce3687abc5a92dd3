"""The synthetic customer base is deterministic and is a data set the loader accepts."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

import pytest

from engine.dataset import load_dataset
from engine.model import DataSet
from engine.pipeline import refs_of
from simulator.synthetic import synthetic_dataset

TABLES = {
    "customers": ("customer_id", "legal_name", "country", "siren", "vat_number", "city", "segment", "iban"),
    "sites": ("site_id", "customer_id", "name"),
    "accounts": ("account_id", "customer_id", "name"),
    "subscriptions": (
        "subscription_id", "customer_id", "product", "quantity", "start_date", "end_date", "site_id",
        "account_id", "line_id", "unit_price", "commitment", "commitment_start",
    ),
    "quantity_changes": ("subscription_id", "effective_date", "quantity"),
    "one_shots": ("charge_id", "customer_id", "product", "date", "quantity", "site_id"),
    "usage": ("record_id", "line_id", "product", "start_time", "quantity", "destination"),
    "discounts": ("grant_id", "customer_id", "discount", "start_date", "subscription_id"),
}  # fmt: skip


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def write_csv(data: DataSet, directory: Path) -> None:
    for table, columns in TABLES.items():
        with open(directory / f"{table}.csv", "w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(columns)
            for row in getattr(data, table):
                out.writerow([_cell(getattr(row, c)) for c in columns])


@pytest.fixture(scope="module")
def generated(catalogue) -> DataSet:
    return synthetic_dataset(
        catalogue, "2026-12", customers=30, subscriptions=120, usage_per_line=3, seed=5
    )


def test_counts_and_determinism(catalogue, generated):
    assert len(generated.customers) == 30 and len(generated.subscriptions) == 120
    assert generated == synthetic_dataset(
        catalogue, "2026-12", customers=30, subscriptions=120, usage_per_line=3, seed=5
    )
    assert generated != synthetic_dataset(
        catalogue, "2026-12", customers=30, subscriptions=120, usage_per_line=3, seed=6
    )


@pytest.mark.parametrize("which", ["catalogue", "rich_catalogue"])
def test_the_loader_accepts_the_generated_data(request, which, tmp_path):
    catalogue = request.getfixturevalue(which)
    data = synthetic_dataset(
        catalogue, "2026-12", customers=60, subscriptions=300, usage_per_line=3, seed=11
    )
    write_csv(data, tmp_path)
    loaded = load_dataset(tmp_path, refs_of(catalogue), tz=catalogue.timezone)
    assert not loaded.errors, [str(e) for e in loaded.errors[:5]]
    assert len(loaded.dataset.subscriptions) == 300
    assert len(loaded.dataset.usage) == len(data.usage)


def test_bad_sizes(catalogue):
    with pytest.raises(ValueError):
        synthetic_dataset(catalogue, "2026-12", customers=10, subscriptions=5)
