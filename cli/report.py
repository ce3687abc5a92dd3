"""Human-readable run reports (rich tables); the JSON form is `RunResult.as_dict()`."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from rich.console import Console
from rich.table import Table

from engine.invoice import RunResult


def print_run(result: RunResult, explain: bool, console: Console | None = None) -> None:
    console = console or Console(highlight=False, soft_wrap=True)
    if explain:
        for inv in result.invoices:
            console.print(
                f"[bold]{inv.invoice_key}[/bold]  {inv.customer_name}  "
                f"excl. VAT {inv.total_excl_vat}  VAT {inv.total_vat}  incl. VAT {inv.total_incl_vat} {inv.currency}"
            )
            for line in inv.lines:
                console.print(f"  {line.explain}", markup=False)
                for step in line.trace:
                    console.print(f"      {step.rule}: {step.text}  [{step.source}]", markup=False)
            for v in inv.vat_breakdown:
                mention = f"  {v.mention}" if v.mention else ""
                console.print(f"  VAT {v.category} {v.rate}%: base {v.base}, VAT {v.vat}{mention}", markup=False)
            console.print()
    table = Table(title=f"{result.ruleset}: invoices of {result.period}", show_lines=False)
    for col, justify in (
        ("invoice", "left"),
        ("customer", "left"),
        ("lines", "right"),
        ("excl. VAT", "right"),
        ("VAT", "right"),
        ("incl. VAT", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for inv in result.invoices:
        table.add_row(
            inv.invoice_key,
            inv.customer_name,
            str(len(inv.lines)),
            str(inv.total_excl_vat),
            str(inv.total_vat),
            str(inv.total_incl_vat),
        )
    if not explain:
        console.print(table)
    by_kind: dict[str, Decimal] = defaultdict(Decimal)
    for inv in result.invoices:
        for line in inv.lines:
            by_kind[line.kind] += line.amount
    console.print(
        f"{len(result.invoices)} invoices, {sum(len(i.lines) for i in result.invoices)} lines; "
        f"total excl. VAT {result.total_excl_vat} {result.currency}, VAT {result.total_vat}, "
        f"incl. VAT {result.total_incl_vat}"
    )
    console.print("by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items())))
    console.print(
        f"usage records: {result.usage_read} read = {result.usage_billed} billed + "
        f"{result.usage_unanswered} unanswered (not billed) + "
        f"{result.usage_outside_period} outside the period + {len(result.usage_rejected)} rejected"
    )
    for r in result.usage_rejected[:20]:
        console.print(f"  rejected {r.record_id} (line {r.line_id}): {r.reason}", markup=False)
    if len(result.usage_rejected) > 20:
        console.print(f"  ... and {len(result.usage_rejected) - 20} more (see --format json)")
