"""The store commands end to end: import, simulate, runs, show, approve, emit, credit-note,
demo (typer's CliRunner: in process, as `bareme` runs them)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from store.store_support import ACME
from typer.testing import CliRunner

from cli.store_commands import invoice_file_names, register


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    made = typer.Typer()
    register(made)
    return made


def test_the_billing_cycle_from_the_command_line(
    app: typer.Typer, db_url: str, small_data: Path
) -> None:
    runner = CliRunner()

    def bareme(*args: str, code: int = 0) -> tuple[str, str]:
        result = runner.invoke(app, [*args, "--db", db_url], catch_exceptions=False)
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        return result.stdout, result.stderr

    out, _ = bareme("import", str(small_data), "--ruleset", str(ACME))
    assert "subscriptions.csv" in out
    out, _ = bareme("simulate", "--period", "2026-12", "--executor", "serial")
    assert "simulation of the 2026-12 run" in out
    assert "stored draft run 1 of 2026-12" in out
    out, _ = bareme(
        "simulate", "--period", "2026-12", "--executor", "serial", "--ruleset", str(ACME)
    )
    assert "stored draft run 2 of 2026-12 (replaces draft run 1)" in out
    out, _ = bareme("runs", "--format", "json")
    runs = json.loads(out)
    assert [(r["id"], r["period"], r["status"]) for r in runs] == [(2, "2026-12", "draft")]
    out, _ = bareme("show", "2026-12", "--format", "json")
    shown = json.loads(out)
    assert shown["invoice_count"] == len(shown["invoices"]) > 0
    assert all(i["number"] is None and i["status"] == "draft" for i in shown["invoices"])
    assert len(shown["anomalies"]) == shown["anomaly_count"] > 0
    out, _ = bareme("emit", "2", code=1)
    out, _ = bareme("approve", "2026-12")
    assert out.startswith("approved run 2 of 2026-12")
    _, err = bareme("simulate", "--period", "2026-12", "--executor", "serial", code=1)
    assert err.strip() == (
        "bareme simulate: run 2 of 2026-12 is approved: it is frozen, "
        "2026-12 cannot be simulated again"
    )
    out, _ = bareme("emit", "2", "--series", "FA", "--format", "FA-{year}-{seq:06d}")
    count = shown["invoice_count"]
    assert f"{count} invoices numbered FA-2026-000001 to FA-2026-{count:06d}" in out
    out, _ = bareme("show", "2")
    assert "FA-2026-000001" in out and "emitted" in out
    out, _ = bareme("credit-note", "FA-2026-000001", "--reason", "duplicate invoice")
    assert re.match(r"credit note AV-\d{4}-000001 for invoice FA-2026-000001: -", out)
    out, _ = bareme("show", "2", "--format", "json")
    first = json.loads(out)["invoices"][0]
    assert first["number"] == "FA-2026-000001" and len(first["credit_notes"]) == 1
    _, err = bareme("emit", "2", code=1)
    assert "already emitted" in err
    _, err = bareme("simulate", "--period", "2026-13", code=2)
    assert "YYYY-MM" in err
    _, err = bareme("show", "7", code=1)
    assert "no run 7" in err


def test_simulate_needs_imported_data(app: typer.Typer, db_url: str) -> None:
    result = CliRunner().invoke(app, ["simulate", "--period", "2026-12", "--db", db_url])
    assert result.exit_code == 1
    assert "import one first" in result.stderr


def test_invoice_file_names_are_safe_and_distinct() -> None:
    names = invoice_file_names(["C1/site:S1", "C1_site_S1", "../etc/passwd", "run", "C2"])
    assert names["C1/site:S1"] == "C1_site_S1.json"
    assert names["C1_site_S1"] != names["C1/site:S1"]
    assert names["../etc/passwd"] == "etc_passwd.json"
    assert names["run"] != "run.json"
    assert len(set(names.values())) == 5
    assert all("/" not in n and not n.startswith(".") for n in names.values())


def test_demo_runs_from_nothing(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bareme-demo.db").write_text("not a database")  # recreated each time
    result = CliRunner().invoke(app, ["demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert "simulation of the 2026-12 run" in result.stdout
    assert "Anomalies" in result.stdout
    out = tmp_path / "out" / "demo"
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["period"] == "2026-12" and run["status"] == "draft" and run["executor"] == "process"
    assert len(run["anomalies"]) == run["anomaly_count"] > 0
    files = run["invoice_files"]
    assert len(files) == run["invoice_count"] == len(list(out.glob("*.json"))) - 1
    sample = json.loads((out / files[0]["file"]).read_text(encoding="utf-8"))
    assert sample["invoice_key"] == files[0]["invoice_key"] and sample["lines"]
    assert f"wrote {len(files)} invoices and run.json to out/demo/" in result.stdout
