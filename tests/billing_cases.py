"""Billing cases written as a billing lead reads them: a ruleset, data files, the expected invoices.

A `.case` file is a sequence of sections, each opened by a line `--- NAME`:
`--- ruleset` (the ruleset text), `--- customers.csv` (and any other data-set file), `--- run
YYYY-MM`, and `--- expect`: one block per invoice,

    invoice C1/site:S1 excl 215.33 vat 43.07 incl 258.40
      regularisation 31.60 S 20 | 12-30 Nov 2026 | SIP Trunk 10 canaux

Lines starting with `#` before the first section are comments (the hand computation).
"""

from __future__ import annotations

from pathlib import Path

from dsl.loader import load_text
from engine.catalogue import build_catalogue
from engine.dataset import load_dataset
from engine.evaluator.backend import make_pricer
from engine.evaluator.run import bill
from engine.invoice import RunResult
from engine.pipeline import refs_of

CASES = Path(__file__).parent / "engine" / "cases"


def parse_case(text: str) -> dict[str, str]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("--- "):
            current = sections.setdefault(line[4:].strip(), [])
        elif current is not None:
            current.append(line)
    return {k: "\n".join(v).strip("\n") + "\n" for k, v in sections.items()}


def render(result: RunResult) -> str:
    out: list[str] = []
    for inv in result.invoices:
        out.append(
            f"invoice {inv.invoice_key} excl {inv.total_excl_vat} vat {inv.total_vat} incl {inv.total_incl_vat}"
        )
        for line in inv.lines:
            period = ""
            if line.period_start is not None and line.period_end is not None:
                from engine.calendar import Period

                period = Period.from_inclusive(line.period_start, line.period_end).label()
            out.append(
                f"  {line.kind} {line.amount} {line.vat_category} {line.vat_rate} | {period} | {line.description}"
            )
    return "\n".join(out) + "\n"


def run_case(sections: dict[str, str], tmp: Path, backend: str = "compiled") -> RunResult:
    program = load_text(sections["ruleset"], "case.bareme")
    try:
        from dsl.checker import check
    except ImportError:  # pragma: no cover - during bootstrap only
        check = None
    if check is not None:
        errors = [d for d in check(program) if d.severity == "error"]
        assert not errors, "\n".join(f"{d.span}: {d.code} {d.message}" for d in errors)
    catalogue = build_catalogue(program)
    data_dir = tmp / "data"
    data_dir.mkdir(exist_ok=True)
    for name, body in sections.items():
        if name.endswith(".csv") or name.endswith(".json"):
            (data_dir / name).write_text(body, encoding="utf-8")
    loaded = load_dataset(data_dir, refs_of(catalogue), tz=catalogue.timezone)
    assert not loaded.errors, "\n".join(str(e) for e in loaded.errors)
    period = next(k.split()[1] for k in sections if k.startswith("run "))
    return bill(catalogue, loaded.dataset, period, make_pricer(backend))
