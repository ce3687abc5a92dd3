"""The simulation summary the command line prints (rich): totals, families, margin, anomalies,
forecast and durations. Text only goes through `console`; nothing here computes a figure that
`Simulation` does not already hold."""

from __future__ import annotations

from collections import defaultdict

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from simulator.anomalies import Anomaly
from simulator.simulation import Simulation

__all__ = ["render_summary"]

_SEVERITY_STYLE = {"error": "red", "warning": "yellow", "info": "cyan"}


def _table(console: Console, title: str, *columns: str) -> Table:
    console.print(f"[bold]{escape(title)}[/bold]")
    table = Table(show_edge=False, pad_edge=False)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    return table


def render_summary(sim: Simulation, console: Console, *, examples: int = 3) -> None:
    """Print the summary of `sim`, with the first `examples` anomalies of each kind."""
    r, k = sim.result, sim.kpis
    cur = r.currency
    lines = sum(len(i.lines) for i in r.invoices)
    console.print(f"[bold]{escape(r.ruleset)}[/bold]: simulation of the {r.period} run")
    console.print(
        f"{len(r.invoices)} invoices, {lines} lines; total excl. VAT {r.total_excl_vat} {cur}, "
        f"VAT {r.total_vat}, incl. VAT {r.total_incl_vat} {cur}"
    )
    ratio = k.billed_ratio
    console.print(
        f"services: {k.billed_services} billed of {k.activated_services} active on the 1st"
        + (f" ({ratio} %)" if ratio is not None else "")
        + f"; usage records: {r.usage_read} read, {r.usage_billed} billed, "
        f"{len(r.usage_rejected)} rejected, {r.usage_outside_period} outside the period"
    )
    console.print(
        f"credit notes: {k.credit_notes} ({k.credit_notes_total} {cur}); negative lines: "
        f"{k.negative_lines} ({k.negative_lines_total} {cur})"
    )

    families = _table(console, "Revenue by family (excl. VAT)", "family", cur)
    for family in sorted(k.revenue_by_family):
        families.add_row(escape(family), str(k.revenue_by_family[family]))
    console.print(families)

    m = k.margin_total
    console.print(
        f"margin on costed lines: revenue {m.revenue}, cost {m.cost}, margin {m.margin} {cur}"
    )
    if k.margin_by_product:
        products = _table(console, "Margin by product", "product", "revenue", "cost", "margin")
        for code in sorted(k.margin_by_product):
            pm = k.margin_by_product[code]
            products.add_row(escape(code), str(pm.revenue), str(pm.cost), str(pm.margin))
        console.print(products)

    if k.forecast:
        forecast = _table(
            console,
            "Recurring revenue forecast (in advance)",
            "period",
            "recurring",
            "discounts",
            "net",
        )
        for f in k.forecast:
            forecast.add_row(f.period, str(f.recurring), str(f.discounts), str(f.net))
        console.print(forecast)

    _anomalies(sim.anomalies, console, examples)
    console.print(
        "durations: "
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in sim.timings.items())
    )


def _anomalies(anomalies: tuple[Anomaly, ...], console: Console, examples: int) -> None:
    if not anomalies:
        console.print("[green]no anomaly[/green]")
        return
    by_kind: dict[str, list[Anomaly]] = defaultdict(list)
    for a in anomalies:
        by_kind[a.kind].append(a)
    table = _table(
        console, f"Anomalies ({len(anomalies)})", "kind", "count", "error", "warning", "info"
    )
    for kind in sorted(by_kind):
        found = by_kind[kind]
        counts = [sum(1 for a in found if a.severity == s) for s in ("error", "warning", "info")]
        table.add_row(escape(kind), str(len(found)), *(str(c) if c else "" for c in counts))
    console.print(table)
    for kind in sorted(by_kind):
        found = by_kind[kind]
        console.print(f"[bold]{escape(kind)}[/bold] ({len(found)})")
        for a in found[:examples]:
            style = _SEVERITY_STYLE.get(a.severity, "")
            console.print(f"  [{style}]{a.severity}[/{style}] {escape(a.message)}")
        if len(found) > examples:
            console.print(f"  ... and {len(found) - examples} more")
