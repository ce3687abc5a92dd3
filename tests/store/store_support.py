"""Helpers shared by the store tests (imported as ``store.store_support``)."""

from __future__ import annotations

import csv
import datetime as dt
import os
import subprocess
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.invoice import Invoice, InvoiceLine, RunResult, TraceStep, VatSubtotal

ROOT = Path(__file__).resolve().parents[2]
ACME = ROOT / "rulesets" / "acme.bareme"
ACME_DATA = ROOT / "rulesets" / "acme-data"
EMIT_CHILD = Path(__file__).resolve().parent / "emit_child.py"

_CLI = (
    "import sys, typer\n"
    "from cli.store_commands import register\n"
    "app = typer.Typer()\n"
    "register(app)\n"
    "app(sys.argv[1:])\n"
)


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The store commands in a child process (as `bareme ...` runs them)."""
    return subprocess.run(
        [sys.executable, "-c", _CLI, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(ROOT)},
    )


# --------------------------------------------------------------------------- small data set

SMALL_CUSTOMERS = ("C0001", "C0002", "C0003", "C0009", "C0010", "C0027", "C0229", "C0231")


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _write(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        writer.writerows(rows)


def write_small_dataset(target: Path, customers: tuple[str, ...] = SMALL_CUSTOMERS) -> Path:
    """A few customers of the Acme example (with their sites, subscriptions, usage...)."""
    target.mkdir(parents=True, exist_ok=True)
    wanted = set(customers)
    header, rows = _read(ACME_DATA / "customers.csv")
    _write(target / "customers.csv", header, [r for r in rows if r["customer_id"] in wanted])
    for name in ("sites", "accounts", "one_shots"):
        header, rows = _read(ACME_DATA / f"{name}.csv")
        _write(target / f"{name}.csv", header, [r for r in rows if r["customer_id"] in wanted])
    header, rows = _read(ACME_DATA / "subscriptions.csv")
    subs = [r for r in rows if r["customer_id"] in wanted]
    _write(target / "subscriptions.csv", header, subs)
    sub_ids = {r["subscription_id"] for r in subs}
    lines = {r["line_id"] for r in subs if r["line_id"]} | {"TRK09999"}
    header, rows = _read(ACME_DATA / "quantity_changes.csv")
    _write(
        target / "quantity_changes.csv",
        header,
        [r for r in rows if r["subscription_id"] in sub_ids],
    )
    header, rows = _read(ACME_DATA / "discounts.csv")
    _write(
        target / "discounts.csv",
        header,
        [
            r
            for r in rows
            if r["customer_id"] in wanted
            and (not r["subscription_id"] or r["subscription_id"] in sub_ids)
        ],
    )
    header, rows = _read(ACME_DATA / "usage.csv")
    _write(target / "usage.csv", header, [r for r in rows if r["line_id"] in lines])
    return target


# --------------------------------------------------------------------------- synthetic runs


@dataclass(frozen=True)
class FakeKpis:
    values: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)


@dataclass(frozen=True)
class StoredSimulation:
    """A simulation result built by hand (emission tests need many small runs quickly)."""

    result: RunResult
    anomalies: tuple[Any, ...] = ()
    kpis: FakeKpis = field(default_factory=FakeKpis)
    timings: dict[str, float] = field(default_factory=dict)


def synthetic_result(
    period: str, invoices: int, *, issue_date: dt.date | None = None, prefix: str = "C"
) -> RunResult:
    """``invoices`` one-line invoices of period ``period``."""
    year, month = map(int, period.split("-"))
    issued = issue_date or dt.date(year, month, 1)
    made = []
    for i in range(invoices):
        amount = Decimal(100 + i) + Decimal("0.25")
        vat = (amount * Decimal("0.2")).quantize(Decimal("0.01"))
        line = InvoiceLine(
            kind="recurring",
            description=f"Service {i}",
            product="SVC",
            family="services",
            quantity=Decimal("1"),
            unit_price=amount,
            amount=amount,
            vat_category="S",
            vat_rate=Decimal("20"),
            period_start=issued,
            period_end=issued + dt.timedelta(days=27),
            rule="test:1:1",
            trace=(TraceStep(rule="price", text=f"{amount} per month", source="test:1:1"),),
            explain=f"Service {i}: {amount}",
        )
        made.append(
            Invoice(
                invoice_key=f"{prefix}{i:04d}/site:S1",
                customer_id=f"{prefix}{i:04d}",
                customer_name=f"Customer {i}",
                site_id="S1",
                account_id=None,
                family=None,
                period=period,
                issue_date=issued,
                currency="EUR",
                lines=(line,),
                vat_breakdown=(
                    VatSubtotal(category="S", rate=Decimal("20"), base=amount, vat=vat),
                ),
                total_excl_vat=amount,
                total_vat=vat,
                total_incl_vat=amount + vat,
            )
        )
    return RunResult(ruleset="test", period=period, currency="EUR", invoices=tuple(made))
