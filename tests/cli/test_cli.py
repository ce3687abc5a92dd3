"""The command line: exit codes, error rendering, run output (docs/cli.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

SMALL = """ruleset "Small" { currency EUR country FR timezone "Europe/Paris" }
vat standard 20% category S
product SIP_TRUNK_10 {
    label "SIP Trunk 10 canaux"
    kind recurring
    billing in_advance
    periodicity monthly
    vat standard
    price 49.90 EUR
}
"""


def _data(tmp: Path, customers: str, subscriptions: str) -> Path:
    d = tmp / "data"
    d.mkdir()
    (d / "customers.csv").write_text(customers, encoding="utf-8")
    (d / "subscriptions.csv").write_text(subscriptions, encoding="utf-8")
    return d


def test_check_clean_is_silent(tmp_path: Path) -> None:
    f = tmp_path / "r.bareme"
    f.write_text(SMALL, encoding="utf-8")
    result = runner.invoke(app, ["check", str(f)])
    assert result.exit_code == 0
    assert result.output == ""


def test_check_reports_every_error_with_caret_and_hint(tmp_path: Path) -> None:
    f = tmp_path / "r.bareme"
    f.write_text(SMALL.replace("vat standard\n    price", "vat standrd\n    price") + "const X = 3 EUR + 2 minutes\n", encoding="utf-8")
    result = runner.invoke(app, ["check", str(f)])
    assert result.exit_code == 1
    out = result.output
    assert f"{f}:8:5: error E100" in out  # unknown VAT category, with did-you-mean
    assert "did you mean 'standard'" in out
    assert "E102" in out  # EUR + minutes
    assert "        vat standrd\n        ^^^^^^^^^^^" in out
    assert "Traceback" not in out


def test_check_json(tmp_path: Path) -> None:
    f = tmp_path / "r.bareme"
    f.write_text('product P { perodicity monthly }\n', encoding="utf-8")
    result = runner.invoke(app, ["check", "--format", "json", str(f)])
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["count"] == 1
    err = doc["errors"][0]
    assert (err["line"], err["column"], err["code"]) == (1, 13, "E001")
    assert "periodicity" in err["hint"]


def test_check_usage_error_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(tmp_path / "missing.bareme")])
    assert result.exit_code == 2


def test_fmt_check_and_diff_write_nothing(tmp_path: Path) -> None:
    f = tmp_path / "r.bareme"
    messy = 'vat   standard 20%   category S   # the usual rate\nconst  X=1+2\n'
    f.write_text(messy, encoding="utf-8")
    result = runner.invoke(app, ["fmt", "--check", str(f)])
    assert result.exit_code == 1
    assert "would be reformatted" in result.output
    result = runner.invoke(app, ["fmt", "--diff", str(f)])
    assert result.exit_code == 1
    assert "+const X = 1 + 2" in result.output
    assert f.read_text(encoding="utf-8") == messy
    result = runner.invoke(app, ["fmt", str(f)])
    assert result.exit_code == 0
    formatted = f.read_text(encoding="utf-8")
    assert "# the usual rate" in formatted
    assert runner.invoke(app, ["fmt", "--check", str(f)]).exit_code == 0


def test_run_json_schema_and_explain(tmp_path: Path) -> None:
    f = tmp_path / "r.bareme"
    f.write_text(SMALL, encoding="utf-8")
    d = _data(
        tmp_path,
        "customer_id,legal_name,country,siren\nC1,Alpha SARL,FR,732829320\n",
        "subscription_id,customer_id,product,quantity,start_date\nA1,C1,SIP_TRUNK_10,1,2026-11-12\n",
    )
    result = runner.invoke(app, ["run", str(f), "--data", str(d), "--period", "2026-12", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    inv = doc["invoices"][0]
    for key in ("customer_id", "invoice_key", "lines", "total_excl_vat", "total_vat", "total_incl_vat"):
        assert key in inv
    line = inv["lines"][0]
    for key in ("description", "quantity", "unit_price", "amount", "vat_rate", "period_start", "period_end", "rule", "trace"):
        assert key in line
    assert isinstance(line["amount"], str)
    assert (line["amount"], line["period_start"], line["period_end"]) == ("31.60", "2026-11-12", "2026-11-30")
    assert inv["total_incl_vat"] == "97.80"
    result = runner.invoke(app, ["run", str(f), "--data", str(d), "--period", "2026-12", "--explain"])
    assert result.exit_code == 0
    assert f"SIP Trunk 10 canaux, 12-30 Nov 2026, 19/30 days x 49.90 = 31.60 ({f}:9)" in result.output


def test_run_refuses_bad_data_and_lists_every_error(tmp_path: Path) -> None:
    f = tmp_path / "r.bareme"
    f.write_text(SMALL, encoding="utf-8")
    d = _data(
        tmp_path,
        "customer_id,legal_name,country,siren\nC1,Alpha SARL,FR,732829320\nC2,Beta,FR,123456789\n",
        "subscription_id,customer_id,product,quantity,start_date\n"
        "A1,C1,SIP_TRUNK_1O,1,2026-11-12\nA2,C1,SIP_TRUNK_10,-1,2026-11-12\nA3,C1,SIP_TRUNK_10,1,2026-13-01\n",
    )
    result = runner.invoke(app, ["run", str(f), "--data", str(d), "--period", "2026-12"])
    assert result.exit_code == 1
    out = result.output
    assert "customers.csv:3:siren" in out
    assert "subscriptions.csv:2:product" in out and "SIP_TRUNK_10" in out  # did you mean
    assert "subscriptions.csv:3:quantity" in out
    assert "subscriptions.csv:4:start_date" in out
    assert "nothing billed" in out
    result = runner.invoke(app, ["run", str(f), "--data", str(d), "--period", "2026-12", "--skip-invalid", "--format", "json"])
    assert result.exit_code == 0
    assert "skipped 4 invalid rows" in result.output
    assert "subscriptions: 3 read = 0 accepted + 3 rejected" in result.output
    assert json.loads(result.stdout)["invoice_count"] == 0  # every subscription was invalid


def test_run_bad_period_is_a_usage_error(tmp_path: Path) -> None:
    f = tmp_path / "r.bareme"
    f.write_text(SMALL, encoding="utf-8")
    result = runner.invoke(app, ["run", str(f), "--data", str(tmp_path), "--period", "2026-13"])
    assert result.exit_code == 2


def test_no_traceback_on_garbage_ruleset(tmp_path: Path) -> None:
    f = tmp_path / "r.bareme"
    f.write_bytes(b"\xff\xfe product { \x00")
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "run", str(f), "--data", str(tmp_path), "--period", "2026-12"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode in (1, 2)
    assert "Traceback" not in proc.stderr + proc.stdout


def test_example_ruleset_checks_clean_and_is_formatted() -> None:
    result = runner.invoke(app, ["check", str(ROOT / "rulesets")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["fmt", "--check", str(ROOT / "rulesets")])
    assert result.exit_code == 0, result.output


def test_rate_streams_a_usage_file_with_the_ruleset_rating(tmp_path: Path) -> None:
    (tmp_path / "kit.bareme").write_text((ROOT / "bench" / "kit.bareme").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "ratedeck.csv").write_text(
        "prefix,zone,connect_fee,price_peak,price_offpeak,price_weekend,first_incr_s,next_incr_s,min_charge\n"
        "331,FR-FIXED,0,10000,5000,4000,30,1,0\n"
        "336,FR-MOBILE,0,60000,60000,60000,60,60,0\n",
        encoding="utf-8",
    )
    (tmp_path / "cdrs.csv").write_text(
        "call_id,line_id,start_time,caller,callee,duration_s\n"
        "1,7,2024-06-03T10:00:00,+33100000000,+33145678901,20\n"  # Monday peak: 30 s x 10000/60 = 5000
        "2,7,2024-06-03T10:05:00,+33100000000,0612345678,61\n"  # 120 s x 60000/60 = 120000
        "3,7,2024-06-03T10:06:00,+33100000000,+33145678901,0\n"  # unanswered: dropped
        "3,7,2024-06-03T10:07:00,+33100000000,+33145678901,10\n"  # duplicate call id
        "4,7,not a date,+33100000000,+33145678901,10\n"  # malformed
        "5,3,2024-06-03T11:00:00,+33100000000,+33145678901,20\n",  # line 3: first in the output
        encoding="utf-8",
    )
    out, quarantine = tmp_path / "lines.csv", tmp_path / "q.csv"
    result = runner.invoke(
        app,
        ["rate", str(tmp_path / "cdrs.csv"), "--ruleset", str(tmp_path / "kit.bareme"), "--product", "VOICE",
         "--layout", "kit", "--out", str(out), "--quarantine", str(quarantine)],
    )
    assert result.exit_code == 0, result.output
    assert "read 6 = rated 4 + rejected 1 + duplicates 1" in result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[1:] == ['3,"FR-FIXED",1,30,5000,0', '7,"FR-FIXED",1,30,5000,0', '7,"FR-MOBILE",1,120,120000,0']
    assert "not a date" in quarantine.read_text(encoding="utf-8")
