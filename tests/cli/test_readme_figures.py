"""The README's figures for the bundled example are the engine's: keep them true."""

from __future__ import annotations

import re
from pathlib import Path

from engine.pipeline import compile_ruleset, load_data, run_billing

ROOT = Path(__file__).resolve().parents[2]


def _num(text: str) -> str:
    return text.replace(",", "")


def test_readme_totals_match_the_example_run() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(
        r"\*\*([\d,]+) invoices, ([\d,]+) lines, ([\d,.]+) EUR\s+excl\. VAT, ([\d,.]+) EUR VAT, ([\d,.]+) EUR incl\. VAT\*\*",
        readme,
    )
    assert m, "README lost its totals sentence"
    usage = re.search(
        r"([\d,]+) records read = ([\d,]+)\s+billed \+ ([\d,]+) unanswered \(not billed\) \+ ([\d,]+) outside the period \+ ([\d,]+) rejected",
        readme,
    )
    assert usage, "README lost its usage sentence"
    compiled = compile_ruleset(ROOT / "rulesets" / "acme.bareme")
    loaded = load_data(ROOT / "rulesets" / "acme-data", compiled.catalogue)
    assert not loaded.errors
    result = run_billing(compiled, loaded, "2026-12")
    lines = sum(len(i.lines) for i in result.invoices)
    assert [_num(g) for g in m.groups()] == [
        str(len(result.invoices)),
        str(lines),
        str(result.total_excl_vat),
        str(result.total_vat),
        str(result.total_incl_vat),
    ]
    assert [int(_num(g)) for g in usage.groups()] == [
        result.usage_read,
        result.usage_billed,
        result.usage_unanswered,
        result.usage_outside_period,
        len(result.usage_rejected),
    ]
    assert result.usage_read == (
        result.usage_billed + result.usage_unanswered + result.usage_outside_period + len(result.usage_rejected)
    )
