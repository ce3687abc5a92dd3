"""`bareme` commands on the store (engine.store; docs/store.md): import, simulate, approve,
runs, show, emit, credit-note, migrate and demo.

`register(app)` adds them to the typer app of cli.main. Every command takes `--db URL`
(default `sqlite:///bareme.db`, or the BAREME_DB environment variable). Exit codes follow
cli.main: 0 success; 1 findings or refusals (data errors, a frozen run, a run not approved...);
2 usage errors, including a database that cannot be opened (one line, no traceback).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from engine.pipeline import CompiledRuleset
    from engine.store.db import Store
    from engine.store.simulation import SimulatedRun

__all__ = ["register"]

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
DEFAULT_DB = "sqlite:///bareme.db"
DEMO_DB = "sqlite:///bareme-demo.db"
DEMO_PERIOD = "2026-12"
EXECUTORS = ("process", "serial", "dask")

DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="BAREME_DB",
        help="Database URL: sqlite:///FILE (embedded) or postgresql://user@host/dbname.",
    ),
]


class ShowFormat(StrEnum):
    table = "table"
    json = "json"


def _err(text: str) -> None:
    sys.stderr.write(text.rstrip("\n") + "\n")


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, stderr=stderr)


@contextmanager
def _store_errors(command: str) -> Iterator[None]:
    """Store problems as one line: cannot open/lost database -> exit 2, refusals -> exit 1."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from dsl.diagnostics import RulesetError, render_text
    from engine.store.db import StoreError, StoreUnavailable

    try:
        yield
    except RulesetError as e:  # a stored ruleset version that no longer compiles
        diagnostics = list(e.diagnostics)
        _err(render_text(diagnostics, _sources(diagnostics)))
        _err(f"bareme {command}: the stored ruleset has errors; give --ruleset FILE")
        raise typer.Exit(EXIT_FINDINGS) from None
    except StoreUnavailable as e:
        _err(f"bareme: {e}")
        raise typer.Exit(EXIT_USAGE) from None
    except StoreError as e:
        _err(f"bareme {command}: {e}")
        raise typer.Exit(EXIT_FINDINGS) from None
    except DBAPIError as e:
        from engine.store.db import describe_error

        if e.connection_invalidated:
            _err(f"bareme {command}: database connection lost: {describe_error(e)}")
            raise typer.Exit(EXIT_USAGE) from None
        _err(f"bareme {command}: database error: {describe_error(e)}")
        raise typer.Exit(EXIT_FINDINGS) from None
    except SQLAlchemyError as e:
        _err(f"bareme {command}: database error: {str(e).splitlines()[0]}")
        raise typer.Exit(EXIT_FINDINGS) from None


def _open(db: str, *, migrate: bool) -> Store:
    from engine.store.db import open_store

    return open_store(db, migrate=migrate)


def _sources(diagnostics: list[Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for d in diagnostics:
        name = d.span.file
        if name not in out:
            try:
                out[name] = Path(name).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                out[name] = ""
    return out


def _compile(command: str, ruleset: Path) -> CompiledRuleset:
    from dsl.diagnostics import RulesetError, render_text
    from engine.pipeline import compile_ruleset

    if not ruleset.is_file():
        _err(f"bareme {command}: no such ruleset: {ruleset}")
        raise typer.Exit(EXIT_USAGE)
    try:
        return compile_ruleset(ruleset)
    except RulesetError as e:
        diagnostics = list(e.diagnostics)
        _err(render_text(diagnostics, _sources(diagnostics)))
        raise typer.Exit(EXIT_FINDINGS) from None


def _check_period(command: str, period: str) -> None:
    from engine.calendar import month_period

    try:
        month_period(period)
    except ValueError:
        _err(f"bareme {command}: --period must be YYYY-MM, got {period!r}")
        raise typer.Exit(EXIT_USAGE) from None


# --------------------------------------------------------------------------- import


def _do_import(
    store: Store, directory: Path, compiled: CompiledRuleset, skip_invalid: bool, console: Any
) -> int:
    """Import and print; returns the batch id. Exits 1 on refused data, 2 on a bad directory."""
    from rich import box
    from rich.table import Table

    from engine.dataset import DataSetError
    from engine.store.importer import ImportRefused, import_directory

    try:
        outcome = import_directory(store, directory, compiled, skip_invalid=skip_invalid)
    except DataSetError as e:
        _err(f"bareme import: {e}")
        raise typer.Exit(EXIT_USAGE) from None
    except ImportRefused as e:
        for error in e.load.errors:
            _err(str(directory / str(error)))
        counts = ", ".join(
            f"{name}: {c.read} read = {c.accepted} valid + {c.rejected} invalid"
            for name, c in e.load.counts.items()
            if c.read
        )
        _err(f"bareme import: {e} ({counts})")
        raise typer.Exit(EXIT_FINDINGS) from None
    for error in outcome.load.errors:
        _err(str(directory / str(error)))
    report = outcome.report
    table = Table(
        title=f"import batch {report.batch_id} of {directory}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for column in ("file", "read", "stored", "rejected", "new", "updated", "unchanged"):
        table.add_column(column, justify="left" if column == "file" else "right", no_wrap=True)
    for t in report.tables:
        table.add_row(
            t.file_name,
            str(t.read),
            str(t.stored),
            str(t.rejected),
            str(t.inserted),
            str(t.updated),
            str(t.unchanged),
        )
    _print_table(console, table)
    rejected = sum(t.rejected for t in report.tables)
    if rejected:
        console.print(
            f"{rejected} invalid rows left out, kept in the store with their reasons "
            f"(batch {report.batch_id})"
        )
    if not report.changed:
        console.print("nothing changed: every row was already stored with the same values")
    return report.batch_id


# --------------------------------------------------------------------------- simulate


def _progress_bar(console: Any) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _do_simulate(
    store: Store,
    period: str,
    compiled: CompiledRuleset | None,
    *,
    executor: str,
    workers: int | None,
    scheduler: str | None,
    partitions: int | None,
) -> SimulatedRun:
    """engine.store.simulation.simulate_period with a progress bar (on stderr)."""
    from engine.store.simulation import simulate_period

    with _progress_bar(_console(stderr=True)) as bar:
        task = bar.add_task(f"simulating {period} ({executor})", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return simulate_period(
            store,
            period,
            compiled,
            executor=executor,
            workers=workers,
            scheduler=scheduler,
            partitions=partitions,
            progress=progress,
        )


def _print_saved(console: Any, period: str, saved: SimulatedRun, db: str) -> None:
    replaced = (
        f" (replaces draft run {saved.replaced_run_id})"
        if saved.replaced_run_id is not None
        else ""
    )
    console.print(f"stored draft run {saved.run_id} of {period}{replaced}")
    shown = "" if db == DEFAULT_DB else f" --db {db}"
    console.print(
        f"review: bareme show {saved.run_id}{shown}; then: bareme approve {saved.run_id}{shown}"
    )


# --------------------------------------------------------------------------- display


def _fmt_amount(value: Any) -> str:
    from decimal import Decimal

    if value is None:
        return ""
    amount = Decimal(str(value))
    cents = amount.quantize(Decimal("0.01"))
    return str(cents) if cents == amount else str(amount.normalize())


def _print_table(console: Any, table: Any) -> None:
    """A table at its natural width: identifiers and amounts are never cut, even when the
    terminal is narrower (the lines wrap instead)."""
    from rich.console import Console
    from rich.measure import Measurement

    needed = Measurement.get(console, console.options.update(width=10_000), table).maximum
    if needed <= console.width:
        console.print(table)
        return
    wide = Console(
        width=needed,
        highlight=False,
        file=console.file,
        force_terminal=console.is_terminal,
        color_system=console.color_system,
    )
    wide.print(table)


def _when(iso: str | None) -> str:
    """ISO timestamp -> "2026-12-04 20:42 UTC"; "" for None."""
    return "" if not iso else f"{iso[:16].replace('T', ' ')} UTC"


def _print_run(console: Any, doc: dict[str, Any], examples: int = 3) -> None:
    from rich.markup import escape
    from rich.table import Table

    console.print(
        f"[bold]run {doc['id']}[/bold] of {doc['period']}: [bold]{doc['status']}[/bold]  "
        f"ruleset {escape(str(doc['ruleset']['name']))} ({doc['ruleset']['sha256'][:12]})"
    )
    console.print(
        f"created {_when(doc['created_at'])}; approved {_when(doc['approved_at']) or '-'}; "
        f"emitted {_when(doc['emitted_at']) or '-'}; executor {doc['executor']}"
    )
    cur = doc["currency"]
    console.print(
        f"{doc['invoice_count']} invoices; total excl. VAT {_fmt_amount(doc['total_excl_vat'])} "
        f"{cur}, VAT {_fmt_amount(doc['total_vat'])}, incl. VAT "
        f"{_fmt_amount(doc['total_incl_vat'])} {cur}"
    )
    usage = doc["usage"]
    console.print(
        f"usage records: {usage['read']} read, {usage['billed']} billed, "
        f"{len(usage['rejected_records'])} rejected, {usage['outside_period']} outside the period"
    )
    table = Table(title="Invoices", title_justify="left", show_edge=False, pad_edge=False)
    invoices = doc["invoices"]
    widest_number = max((len(i["number"] or "-") for i in invoices), default=6)
    widest_key = max((len(i["invoice_key"]) for i in invoices), default=7)
    table.add_column("number", no_wrap=True, min_width=max(6, widest_number))
    table.add_column("invoice", no_wrap=True, min_width=max(7, widest_key))
    table.add_column("customer", no_wrap=True, overflow="ellipsis", min_width=8)
    for column, key in (
        ("excl. VAT", "total_excl_vat"),
        ("VAT", "total_vat"),
        ("incl. VAT", "total_incl_vat"),
    ):
        widest = max((len(_fmt_amount(i[key])) for i in invoices), default=0)
        table.add_column(column, justify="right", no_wrap=True, min_width=max(len(column), widest))
    table.add_column("status", no_wrap=True, min_width=8)
    for inv in invoices:
        status = inv["status"] + (
            f" (credited: {', '.join(inv['credit_notes'])})" if inv["credit_notes"] else ""
        )
        table.add_row(
            inv["number"] or "-",
            escape(inv["invoice_key"]),
            escape(inv["customer_name"]),
            _fmt_amount(inv["total_excl_vat"]),
            _fmt_amount(inv["total_vat"]),
            _fmt_amount(inv["total_incl_vat"]),
            status,
        )
    _print_table(console, table)
    anomalies = doc["anomalies"]
    if not anomalies:
        console.print("[green]no anomaly[/green]")
        return
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for a in anomalies:
        by_kind.setdefault(a["kind"], []).append(a)
    console.print(f"[bold]Anomalies ({len(anomalies)})[/bold]")
    for kind in sorted(by_kind):
        found = by_kind[kind]
        console.print(f"[bold]{escape(kind)}[/bold] ({len(found)})")
        for a in found[:examples]:
            console.print(f"  {a['severity']} {escape(a['message'])}")
        if len(found) > examples:
            console.print(f"  ... and {len(found) - examples} more (--format json lists them all)")


# --------------------------------------------------------------------------- demo


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def invoice_file_names(keys: list[str]) -> dict[str, str]:
    """A distinct, safe file name for every invoice key ("C0042/site:S1" ->
    "C0042_site_S1.json"); keys that would collide get a short hash of the key appended."""
    import hashlib

    names: dict[str, str] = {}
    used: set[str] = set()
    for key in sorted(keys):
        base = _UNSAFE.sub("_", key).strip("._") or "invoice"
        base = base[:100]
        name = f"{base}.json"
        if name.lower() in used or name.lower() == "run.json":
            digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]
            name = f"{base}-{digest}.json"
        used.add(name.lower())
        names[key] = name
    return names


def _write_out(out: Path, doc: dict[str, Any]) -> int:
    """The run's invoices as JSON files (one per invoice) plus run.json; returns the count.
    Files of a previous demo listed in its run.json are removed first."""
    out.mkdir(parents=True, exist_ok=True)
    previous = out / "run.json"
    if previous.is_file():
        try:
            old = json.loads(previous.read_text(encoding="utf-8"))
            for entry in old.get("invoice_files", []):
                stale = out / Path(str(entry.get("file", ""))).name
                if stale.suffix == ".json" and stale.name != "run.json":
                    stale.unlink(missing_ok=True)
        except (OSError, ValueError, AttributeError):
            pass
    invoices = doc["invoices"]
    names = invoice_file_names([inv["invoice_key"] for inv in invoices])
    index = []
    for inv in invoices:
        name = names[inv["invoice_key"]]
        (out / name).write_text(
            json.dumps(inv, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        index.append(
            {
                "invoice_key": inv["invoice_key"],
                "file": name,
                "number": inv["number"],
                "customer_id": inv["customer_id"],
                "total_incl_vat": inv["total_incl_vat"],
            }
        )
    run = {k: v for k, v in doc.items() if k != "invoices"}
    run["invoice_files"] = index
    previous.write_text(json.dumps(run, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(invoices)


def _demo_paths() -> tuple[Path, Path]:
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        ruleset, data = base / "rulesets" / "acme.bareme", base / "rulesets" / "acme-data"
        if ruleset.is_file() and data.is_dir():
            return ruleset, data
    _err("bareme demo: rulesets/acme.bareme and rulesets/acme-data not found")
    raise typer.Exit(EXIT_USAGE)


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# --------------------------------------------------------------------------- commands


def register(app: typer.Typer) -> None:
    """Add the store commands to ``app``."""

    @app.command("import")
    def import_(
        directory: Annotated[Path, typer.Argument(help="Data-set directory (docs/dataset.md).")],
        ruleset: Annotated[
            Path, typer.Option("--ruleset", help="The root ruleset file the data refers to.")
        ],
        db: DbOption = DEFAULT_DB,
        skip_invalid: Annotated[
            bool,
            typer.Option(
                "--skip-invalid",
                help="Import the valid rows; keep the invalid ones with their reasons.",
            ),
        ] = False,
    ) -> None:
        """Import a data set into the store (idempotent: upsert by identifiers)."""
        compiled = _compile("import", ruleset)
        with _store_errors("import"):
            store = _open(db, migrate=True)
            try:
                _do_import(store, directory, compiled, skip_invalid, _console())
            finally:
                store.close()

    @app.command()
    def simulate(
        period: Annotated[str, typer.Option("--period", help="Billing period YYYY-MM.")],
        ruleset: Annotated[
            Path | None,
            typer.Option(
                "--ruleset",
                help="Root ruleset file (default: the version stored by the last import).",
            ),
        ] = None,
        db: DbOption = DEFAULT_DB,
        executor: Annotated[
            str, typer.Option("--executor", help="process (default), serial or dask.")
        ] = "process",
        scheduler: Annotated[
            str | None,
            typer.Option("--scheduler", help="Dask scheduler address (with --executor dask)."),
        ] = None,
        workers: Annotated[
            int | None, typer.Option("--workers", min=1, help="Processes billing, this one included (default: CPUs).")
        ] = None,
        partitions: Annotated[
            int | None,
            typer.Option(
                "--partitions",
                min=1,
                help="Customer partitions (default: 16 per process with the pool, 4 per dask worker).",
            ),
        ] = None,
    ) -> None:
        """Simulate a period's run from the stored data set and store it as a draft."""
        _check_period("simulate", period)
        if executor not in EXECUTORS:
            _err(
                f"bareme simulate: --executor must be one of {', '.join(EXECUTORS)}, got {executor!r}"
            )
            raise typer.Exit(EXIT_USAGE)
        compiled = _compile("simulate", ruleset) if ruleset is not None else None
        from simulator import render_summary

        with _store_errors("simulate"):
            store = _open(db, migrate=False)
            try:
                saved = _do_simulate(
                    store,
                    period,
                    compiled,
                    executor=executor,
                    workers=workers,
                    scheduler=scheduler,
                    partitions=partitions,
                )
            except OSError as e:  # e.g. a dask scheduler that cannot be reached
                first = str(e).splitlines()[0] if str(e) else type(e).__name__
                _err(f"bareme simulate: the {executor} executor failed: {first}")
                raise typer.Exit(EXIT_USAGE) from None
            finally:
                store.close()
        console = _console()
        render_summary(saved.simulation, console)
        _print_saved(console, period, saved, db)

    @app.command()
    def approve(
        run: Annotated[str, typer.Argument(help="Run id, or its period YYYY-MM.")],
        db: DbOption = DEFAULT_DB,
    ) -> None:
        """Approve a draft run: it is frozen from now on, ready to be emitted."""
        from engine.store.runs import approve_run

        with _store_errors("approve"):
            store = _open(db, migrate=False)
            try:
                approved = approve_run(store, run)
            finally:
                store.close()
        print(
            f"approved run {approved.id} of {approved.period}: {approved.invoice_count} invoices, "
            f"{approved.anomaly_count} anomalies; next: bareme emit {approved.id}"
        )

    @app.command()
    def runs(
        db: DbOption = DEFAULT_DB,
        format: Annotated[
            ShowFormat, typer.Option("--format", help="table or json")
        ] = ShowFormat.table,
    ) -> None:
        """List the stored runs, latest period first."""
        from rich.table import Table

        from engine.store.runs import list_runs, run_summary

        with _store_errors("runs"):
            store = _open(db, migrate=False)
            try:
                with store.snapshot() as session:
                    summaries = [run_summary(r) for r in list_runs(session)]
            finally:
                store.close()
        if format is ShowFormat.json:
            print(json.dumps(summaries, indent=2, ensure_ascii=False))
            return
        rows = [
            (
                str(r["id"]),
                r["period"],
                r["status"],
                str(r["invoice_count"]),
                str(r["anomaly_count"]),
                _fmt_amount(r["total_excl_vat"]),
                _fmt_amount(r["total_incl_vat"]),
                _when(r["created_at"]),
                _when(r["emitted_at"]),
                r["ruleset"]["sha256"][:8],
                r["executor"],
            )
            for r in summaries
        ]
        headers = (
            "run",
            "period",
            "status",
            "invoices",
            "anomalies",
            "excl. VAT",
            "incl. VAT",
            "created",
            "emitted",
            "ruleset",
            "executor",
        )
        table = Table(show_edge=False, pad_edge=False)
        for i, header in enumerate(headers):
            widest = max((len(row[i]) for row in rows), default=0)
            table.add_column(
                header,
                justify="right"
                if header in ("run", "invoices", "anomalies", "excl. VAT", "incl. VAT")
                else "left",
                no_wrap=True,
                min_width=max(len(header), widest),
            )
        for row in rows:
            table.add_row(*row)
        console = _console()
        if summaries:
            _print_table(console, table)
        else:
            console.print("no run yet (bareme simulate --period YYYY-MM)")

    @app.command()
    def show(
        run: Annotated[str, typer.Argument(help="Run id, or its period YYYY-MM.")],
        db: DbOption = DEFAULT_DB,
        format: Annotated[
            ShowFormat, typer.Option("--format", help="table or json")
        ] = ShowFormat.table,
    ) -> None:
        """Show a run: totals, invoices (numbers once emitted), anomalies."""
        from engine.store.runs import find_run, run_document

        with _store_errors("show"):
            store = _open(db, migrate=False)
            try:
                with store.snapshot() as session:
                    doc = run_document(session, find_run(session, run))
            finally:
                store.close()
        if format is ShowFormat.json:
            print(json.dumps(doc, indent=2, ensure_ascii=False))
            return
        _print_run(_console(), doc)

    @app.command()
    def emit(
        run: Annotated[str, typer.Argument(help="Run id, or its period YYYY-MM.")],
        db: DbOption = DEFAULT_DB,
        series: Annotated[
            str | None,
            typer.Option(
                "--series",
                help="Numbering series (default: the ruleset's invoice_series, else FA).",
            ),
        ] = None,
        number_format: Annotated[
            str | None,
            typer.Option(
                "--format",
                help='Number format when the series is new, e.g. "FA-{year}-{seq:06d}" (default {series}-{year}-{seq:06d}).',
            ),
        ] = None,
    ) -> None:
        """Emit an approved run: number its invoices (one unbroken sequence), atomically."""
        from engine.store.emission import emit_run

        with _store_errors("emit"):
            store = _open(db, migrate=False)
            try:
                result = emit_run(store, run, series=series, number_format=number_format)
            finally:
                store.close()
        if result.count:
            print(
                f"emitted run {result.run_id} of {result.period}: {result.count} invoices numbered "
                f"{result.first} to {result.last} (series {result.series})"
            )
        else:
            print(f"emitted run {result.run_id} of {result.period}: no invoice to number")

    @app.command("credit-note")
    def credit_note(
        invoice_number: Annotated[
            str, typer.Argument(help="Number of the emitted invoice to credit.")
        ],
        reason: Annotated[
            str,
            typer.Option(
                "--reason", help="Why the invoice is credited (printed on the credit note)."
            ),
        ],
        db: DbOption = DEFAULT_DB,
        series: Annotated[str, typer.Option("--series", help="Credit-note series.")] = "AV",
        number_format: Annotated[
            str | None,
            typer.Option(
                "--format",
                help="Number format when the series is new (default {series}-{year}-{seq:06d}).",
            ),
        ] = None,
    ) -> None:
        """Credit an emitted invoice in full (a credit note reversing all its lines)."""
        from engine.store.emission import create_credit_note

        with _store_errors("credit-note"):
            store = _open(db, migrate=False)
            try:
                note = create_credit_note(
                    store, invoice_number, reason, series=series, number_format=number_format
                )
            finally:
                store.close()
        print(
            f"credit note {note.number} for invoice {note.invoice_number}: "
            f"{_fmt_amount(note.total_incl_vat)} {note.currency} incl. VAT"
        )

    @app.command()
    def migrate(db: DbOption = DEFAULT_DB) -> None:
        """Create or upgrade the store's schema (Alembic migrations) and print its revision."""
        from engine.store.db import current_revision

        with _store_errors("migrate"):
            store = _open(db, migrate=True)
            try:
                revision = current_revision(store)
            finally:
                store.close()
        print(f"{store.shown}: schema at revision {revision}")

    @app.command()
    def demo(
        db: Annotated[
            str, typer.Option("--db", help="Database URL (default: ./bareme-demo.db, recreated).")
        ] = DEMO_DB,
        out: Annotated[
            Path, typer.Option("--out", help="Where to write the invoices as JSON.")
        ] = Path("out/demo"),
        executor: Annotated[
            str, typer.Option("--executor", help="process (default), serial or dask.")
        ] = "process",
    ) -> None:
        """The whole cycle on the bundled example: store, import, simulate 2026-12, invoices as JSON."""
        from engine.store.db import normalise_url
        from engine.store.runs import find_run, run_document
        from simulator import render_summary

        if executor not in EXECUTORS:
            _err(f"bareme demo: --executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
            raise typer.Exit(EXIT_USAGE)
        ruleset_path, data_dir = _demo_paths()
        console = _console()
        with _store_errors("demo"):
            if db == DEMO_DB:
                database = normalise_url(db).database
                if database:
                    _remove_sqlite(Path(database))
            compiled = _compile("demo", ruleset_path)
            store = _open(db, migrate=True)
            try:
                console.print(f"[bold]store[/bold] {store.shown}")
                _do_import(store, data_dir, compiled, False, console)
                saved = _do_simulate(
                    store,
                    DEMO_PERIOD,
                    compiled,
                    executor=executor,
                    workers=None,
                    scheduler=None,
                    partitions=None,
                )
                with store.snapshot() as session:
                    doc = run_document(session, find_run(session, saved.run_id))
            finally:
                store.close()
        render_summary(saved.simulation, console)
        _print_saved(console, DEMO_PERIOD, saved, db)
        try:
            if out.exists() and not out.is_dir():
                raise OSError(f"{out} is not a directory")
            count = _write_out(out, doc)
        except OSError as e:
            _err(f"bareme demo: cannot write to {out}: {e}")
            raise typer.Exit(EXIT_USAGE) from None
        console.print(f"wrote {count} invoices and run.json to {out}/")
