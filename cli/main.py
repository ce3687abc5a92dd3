"""`bareme`: the command line.

Exit codes (docs/cli.md): 0 success; 1 findings (ruleset errors, data errors, files that `fmt
--check` would change); 2 usage errors (bad arguments, missing files, bad period); 3 internal
error (a bug: one line, no traceback unless BAREME_DEBUG=1).
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dsl.diagnostics import Diagnostic, RulesetError, render_json, render_text

if TYPE_CHECKING:
    from engine.pipeline import CompiledRuleset

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Barème: billing rules as code for B2B telecom operators.",
    pretty_exceptions_enable=False,
)

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


class RunFormat(StrEnum):
    table = "table"
    json = "json"


def _err(text: str) -> None:
    sys.stderr.write(text.rstrip("\n") + "\n")


def _sources(diags: list[Diagnostic]) -> dict[str, str]:
    out: dict[str, str] = {}
    for d in diags:
        f = d.span.file
        if f not in out:
            try:
                out[f] = Path(f).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                out[f] = ""
    return out


def _ruleset_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(p.rglob("*.bareme")))
        else:
            files.append(p)
    return files


def _compile_or_exit(ruleset: Path) -> CompiledRuleset:
    """The checked ruleset, or every diagnostic printed and exit 1."""
    from engine.pipeline import compile_ruleset

    try:
        return compile_ruleset(ruleset)
    except RulesetError as e:
        _err(render_text(e.diagnostics, _sources(list(e.diagnostics))))
        raise typer.Exit(EXIT_FINDINGS) from None


def _missing(paths: list[Path]) -> list[Path]:
    return [p for p in paths if not p.exists()]


@app.command()
def check(
    paths: Annotated[list[Path], typer.Argument(help="Ruleset files or directories.")],
    format: Annotated[OutputFormat, typer.Option("--format", help="text or json")] = OutputFormat.text,
) -> None:
    """Check rulesets: silent and exit 0 when clean, every error otherwise (exit 1)."""
    from dsl.checker import check_paths

    missing = _missing(paths)
    if missing:
        _err(f"bareme check: no such file or directory: {missing[0]}")
        raise typer.Exit(EXIT_USAGE)
    _programs, diags = check_paths(_ruleset_files(paths))
    errors = [d for d in diags if d.severity == "error"]
    if format is OutputFormat.json:
        if diags:
            print(render_json(diags))
    elif diags:
        _err(render_text(diags, _sources(diags)))
    raise typer.Exit(EXIT_FINDINGS if errors else EXIT_OK)


@app.command()
def fmt(
    paths: Annotated[list[Path], typer.Argument(help="Ruleset files or directories.")],
    check_only: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if a file would change.")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Print the changes; write nothing; exit 1 if any.")] = False,
) -> None:
    """Rewrite rulesets in the canonical layout (comments kept)."""
    from dsl.formatter import format_text

    missing = _missing(paths)
    if missing:
        _err(f"bareme fmt: no such file or directory: {missing[0]}")
        raise typer.Exit(EXIT_USAGE)
    changed = 0
    failed: list[Diagnostic] = []
    for f in _ruleset_files(paths):
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            _err(f"{f}: cannot read: {e}")
            raise typer.Exit(EXIT_FINDINGS) from None
        try:
            formatted = format_text(text, str(f))
        except RulesetError as e:
            failed.extend(e.diagnostics)
            continue
        if formatted == text:
            continue
        changed += 1
        if diff:
            sys.stdout.writelines(
                difflib.unified_diff(
                    text.splitlines(keepends=True),
                    formatted.splitlines(keepends=True),
                    fromfile=f"{f} (current)",
                    tofile=f"{f} (formatted)",
                )
            )
        elif check_only:
            print(f"{f}: would be reformatted")
        else:
            f.write_text(formatted, encoding="utf-8")
    if failed:
        _err(render_text(failed, _sources(failed)))
        raise typer.Exit(EXIT_FINDINGS)
    if changed and (check_only or diff):
        raise typer.Exit(EXIT_FINDINGS)


@app.command()
def run(
    ruleset: Annotated[Path, typer.Argument(help="The root ruleset file.")],
    data: Annotated[Path, typer.Option("--data", help="Data-set directory (docs/dataset.md).")],
    period: Annotated[str, typer.Option("--period", help="Billing period YYYY-MM (invoices issued on its 1st day).")],
    format: Annotated[RunFormat, typer.Option("--format", help="table or json")] = RunFormat.table,
    explain: Annotated[bool, typer.Option("--explain", help="Print every line's trace in words.")] = False,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Bill without the invalid rows (they are listed).")] = False,
    backend: Annotated[str, typer.Option("--backend", help="compiled (default) or reference (the plain interpreter).")] = "compiled",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the JSON result to this file.")] = None,
) -> None:
    """Bill a period from a ruleset and a data set."""
    from engine.calendar import month_period
    from engine.dataset import DataSetError
    from engine.pipeline import load_data, run_billing

    try:
        month_period(period)
    except ValueError:
        _err(f"bareme run: --period must be YYYY-MM, got {period!r}")
        raise typer.Exit(EXIT_USAGE) from None
    if backend not in ("compiled", "reference"):
        _err(f"bareme run: --backend must be compiled or reference, got {backend!r}")
        raise typer.Exit(EXIT_USAGE)
    if not ruleset.exists():
        _err(f"bareme run: no such ruleset: {ruleset}")
        raise typer.Exit(EXIT_USAGE)
    compiled = _compile_or_exit(ruleset)
    try:
        loaded = load_data(data, compiled.catalogue, skip_invalid)
    except DataSetError as e:
        _err(f"bareme run: {e}")
        raise typer.Exit(EXIT_USAGE) from None
    if loaded.errors:
        for error in loaded.errors:
            _err(f"{data / str(error)}" if not str(error).startswith(str(data)) else str(error))
        counts = ", ".join(
            f"{name}: {c.read} read = {c.accepted} accepted + {c.rejected} rejected"
            for name, c in sorted(loaded.counts.items())
        )
        if not skip_invalid:
            _err(f"bareme run: {len(loaded.errors)} data errors; nothing billed ({counts}). Fix them or pass --skip-invalid.")
            raise typer.Exit(EXIT_FINDINGS)
        _err(f"bareme run: skipped {sum(c.rejected for c in loaded.counts.values())} invalid rows ({counts})")
    from engine.evaluator.values import EvaluationError

    try:
        result = run_billing(compiled, loaded, period, backend)
    except EvaluationError as e:
        _err(f"bareme run: a rule could not be evaluated: {e}")
        raise typer.Exit(EXIT_FINDINGS) from None
    if output is not None:
        output.write_text(json.dumps(result.as_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if format is RunFormat.json:
        print(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        return
    from cli.report import print_run

    print_run(result, explain)


@app.command()
def rate(
    cdrs: Annotated[Path, typer.Argument(help="Usage records (CSV, any size: streamed).")],
    ruleset: Annotated[Path, typer.Option("--ruleset", help="The ruleset whose rating rules apply.")],
    product: Annotated[str, typer.Option("--product", help="The usage product (with a `rating`) to rate as.")],
    layout: Annotated[str, typer.Option("--layout", help="Column layout: generic, asterisk (Master.csv) or kit.")] = "generic",
    quarantine: Annotated[Path | None, typer.Option("--quarantine", help="CSV of rejected rows with their reasons.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="CSV of the rated lines (line, zone, calls, seconds, amount).")] = None,
) -> None:
    """Rate a usage file with a ruleset's rating rules; every record accounted for."""
    from engine.evaluator.backend import make_pricer
    from engine.evaluator.rating_plans import RatingSetupError, product_rating
    from engine.rating.cdr_import import LAYOUTS, import_usage

    if layout not in LAYOUTS:
        _err(f"bareme rate: --layout must be one of {', '.join(sorted(LAYOUTS))}, got {layout!r}")
        raise typer.Exit(EXIT_USAGE)
    for p in (cdrs, ruleset):
        if not p.exists():
            _err(f"bareme rate: no such file: {p}")
            raise typer.Exit(EXIT_USAGE)
    compiled = _compile_or_exit(ruleset)
    cat = compiled.catalogue
    found = cat.products.get(product)
    if found is None or found.rating is None:
        rated = sorted(code for code, p in cat.products.items() if p.rating)
        _err(f"bareme rate: {product!r} is not a rated usage product (rated: {', '.join(rated) or 'none'})")
        raise typer.Exit(EXIT_USAGE)
    try:
        plan = product_rating(cat, make_pricer(), found, found.pricing).plan
    except RatingSetupError as e:
        _err(f"bareme rate: {e}")
        raise typer.Exit(EXIT_FINDINGS) from None
    result = import_usage(str(cdrs), plan, LAYOUTS[layout], quarantine=str(quarantine) if quarantine else None)
    print(result.report)
    if out is not None:
        import pyarrow.csv as pacsv

        # Sorted by line and zone: the engine numbers lines per block, so its own order
        # depends on the block size and the number of workers.
        lines = result.to_arrow().sort_by([("line_id", "ascending"), ("zone", "ascending")])
        pacsv.write_csv(lines, str(out))
    if not result.report.reconciles():
        _err("bareme rate: counts do not reconcile (a bug: please report it)")
        raise typer.Exit(EXIT_INTERNAL)


from cli.store_commands import register as register_store_commands  # noqa: E402

register_store_commands(app)


def main() -> None:
    from engine.runtime import keep_for_process_lifetime

    keep_for_process_lifetime()  # one command per process: what it builds lives until it exits
    try:
        app()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)
    except Exception as e:  # the last line of defence: never a traceback for users
        if os.environ.get("BAREME_DEBUG") == "1":
            raise
        _err(f"bareme: internal error: {type(e).__name__}: {e} (please report it; BAREME_DEBUG=1 shows the traceback)")
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
