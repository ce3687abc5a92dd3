"""`write_dataset` writes a data-set directory that the loader reads back to the same DataSet."""

from __future__ import annotations

import csv
import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from engine.dataset import TABLE_COLUMNS, load_dataset
from engine.model import DataSet
from engine.pipeline import refs_of
from simulator.synthetic import synthetic_dataset, write_dataset


def _in_loader_order(data: DataSet) -> DataSet:
    return dataclasses.replace(
        data, usage=tuple(sorted(data.usage, key=lambda u: (u.start_time, u.record_id)))
    )


@pytest.mark.parametrize("which", ["catalogue", "rich_catalogue"])
def test_written_data_sets_load_back_identical(request, which, tmp_path: Path) -> None:
    catalogue = request.getfixturevalue(which)
    data = synthetic_dataset(
        catalogue, "2026-12", customers=80, subscriptions=400, usage_per_line=4, seed=3
    )
    written = write_dataset(data, tmp_path / "data")
    assert written["subscriptions.csv"] == 400
    assert written["usage.csv"] == len(data.usage) > 0
    loaded = load_dataset(tmp_path / "data", refs_of(catalogue), tz=catalogue.timezone)
    assert not loaded.errors, [str(e) for e in loaded.errors[:5]]
    assert loaded.dataset == _in_loader_order(data)
    # same written forms, not only equal values (49.90 stays 49.90, offsets stay)
    for table in TABLE_COLUMNS:
        for got, want in zip(
            getattr(loaded.dataset, table), getattr(_in_loader_order(data), table), strict=True
        ):
            for column in TABLE_COLUMNS[table]:
                assert str(getattr(got, column)) == str(getattr(want, column)), (table, column)
    # every column of docs/dataset.md, in order, in every file written
    for name in written:
        with open(tmp_path / "data" / name, newline="", encoding="utf-8") as f:
            assert next(csv.reader(f)) == list(TABLE_COLUMNS[name.removesuffix(".csv")])


def test_writing_again_replaces_the_files(catalogue, tmp_path: Path) -> None:
    big = synthetic_dataset(catalogue, "2026-12", customers=10, subscriptions=40, usage_per_line=2)
    small = synthetic_dataset(catalogue, "2026-12", customers=5, subscriptions=10)
    write_dataset(big, tmp_path)
    (tmp_path / "usage.json").write_text("[]")
    written = write_dataset(small, tmp_path)
    assert "usage.csv" not in written and not (tmp_path / "usage.csv").exists()
    assert not (tmp_path / "usage.json").exists()
    loaded = load_dataset(tmp_path, refs_of(catalogue), tz=catalogue.timezone)
    assert not loaded.errors and loaded.dataset == small


def test_values_the_format_cannot_carry_are_refused(catalogue, tmp_path: Path) -> None:
    data = synthetic_dataset(catalogue, "2026-12", customers=2, subscriptions=2)
    sub = data.subscriptions[0]
    for bad in (
        sub.model_copy(update={"quantity": Decimal("1E+2")}),
        sub.model_copy(update={"line_id": " L1"}),
    ):
        with pytest.raises(ValueError, match="subscriptions"):
            write_dataset(dataclasses.replace(data, subscriptions=(bad,)), tmp_path)
