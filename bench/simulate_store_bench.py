"""The whole `bareme simulate` on a store, at 100,000 subscriptions: wall time, peak memory and
where the time goes (not a test: a benchmark to run by hand).

    .venv/bin/python bench/simulate_store_bench.py                      # SQLite, process + dask
    .venv/bin/python bench/simulate_store_bench.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

What it does, in a temporary directory:
1. builds the synthetic data set (`simulator.synthetic.synthetic_dataset(catalogue, PERIOD,
   customers=20000, subscriptions=100000, usage_per_line=N, seed=1)`, as
   bench/simulate_bench.py does) and writes it as a data-set directory of CSV files
   (`simulator.synthetic.write_dataset`); unless `--no-verify`, loads that directory back with
   the data-set loader and checks it gives the same `DataSet`;
2. per database (SQLite file; PostgreSQL: a fresh database `bareme_bench_<pid>` created through
   the `--postgres` URL and dropped at the end): `bareme import DIR --ruleset RULESET --db URL`,
   then `bareme simulate --period PERIOD --db URL --executor E` for each executor (the second
   and later ones replace the draft of the first, as simulating a period again does; with
   `--with-previous`, the period before is simulated first, so that they read it back as
   every monthly run but the first does), each a
   separate process, timed from the outside: wall time, the peak RSS of its largest process
   (`wait4`, what `/usr/bin/time -v` reports) and the peak of the sum of the RSS of the whole
   process tree (workers included, sampled every 50 ms with psutil);
3. prints the stages the command timed itself (the run's `timings`, stored with it):
   read (ruleset and data set read back from the store, previous run), partition, evaluate,
   anomalies, kpis (includes the recurring revenue forecast, which bills 3 more periods), store
   (the draft written: run, invoices with their JSON documents, lines with their traces,
   anomalies), and "other": the process wall time not in a stage (interpreter start, imports,
   opening the store, the commit, the summary printed, pools and clusters started and stopped).

Target of the issue on this 2-core machine: the whole simulate command on SQLite under 15 s.
The machine is shared: the load average is printed with every measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STAGES = ("read", "partition", "evaluate", "anomalies", "kpis", "store")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class TreeSampler:
    """Peak of the summed RSS of a process and its descendants, sampled every `every` s."""

    def __init__(self, pid: int, every: float = 0.05) -> None:  # float-ok: seconds
        self.pid = pid
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            total = 0
            try:
                for proc in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += proc.memory_info().rss
            except psutil.Error:
                return
            self.peak = max(self.peak, total)
            self._stop.wait(self.every)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_timed(cmd: list[str], cwd: Path, log: Path) -> dict[str, Any]:
    """Run `cmd`; wall seconds, peak RSS of its largest process and of its process tree."""
    with open(log, "w") as out:
        clock = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        with TreeSampler(proc.pid) as sampler:
            _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - clock
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{log.read_text()[-3000:]}")
    return {
        "wall_s": round(wall, 3),
        "peak_mb": round(usage.ru_maxrss / 1024),
        "tree_peak_mb": round(sampler.peak / 2**20),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
    }


def bareme() -> list[str]:
    script = Path(sys.executable).parent / "bareme"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from cli.main import main; main()"]


def build_dataset(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    from engine.pipeline import compile_ruleset, load_data
    from simulator.synthetic import synthetic_dataset, write_dataset

    catalogue = compile_ruleset(Path(args.ruleset)).catalogue
    clock = time.perf_counter()
    data = synthetic_dataset(
        catalogue,
        args.period,
        customers=args.customers,
        subscriptions=args.subscriptions,
        usage_per_line=args.usage_per_line,
        seed=args.seed,
    )
    generate_s = time.perf_counter() - clock
    clock = time.perf_counter()
    written = write_dataset(data, directory)
    write_s = time.perf_counter() - clock
    info: dict[str, Any] = {
        "rows": written,
        "generate_s": round(generate_s, 2),
        "write_s": round(write_s, 2),
    }
    if not args.no_verify:
        clock = time.perf_counter()
        loaded = load_data(directory, catalogue, False)
        info["load_s"] = round(time.perf_counter() - clock, 2)
        if loaded.errors:
            sys.exit(f"the written data set has errors: {[str(e) for e in loaded.errors[:5]]}")
        expected = dataclasses.replace(
            data, usage=tuple(sorted(data.usage, key=lambda u: (u.start_time, u.record_id)))
        )
        if loaded.dataset != expected:
            sys.exit("the written data set does not load back to the generated one")
        info["round_trip"] = "identical"
    return info


def stored_run(url: str, period: str) -> dict[str, Any]:
    from sqlalchemy import func, select

    from engine.store.db import open_store
    from engine.store.runs import find_run
    from engine.store.schema import Invoice, InvoiceLine

    with open_store(url, migrate=False) as store, store.snapshot() as session:
        run = find_run(session, period)
        lines = session.scalar(
            select(func.count())
            .select_from(InvoiceLine)
            .join(Invoice)
            .where(Invoice.run_id == run.id)
        )
        return {
            "run_id": run.id,
            "timings": dict(run.timings),
            "invoices": run.invoice_count,
            "lines": int(lines or 0),
            "anomalies": run.anomaly_count,
        }


def previous_period(period: str) -> str:
    from engine.calendar import month_period, previous_month

    return previous_month(month_period(period)).start.strftime("%Y-%m")


def bench_database(
    args: argparse.Namespace, label: str, url: str, data_dir: Path, work: Path
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    load = load_average()
    imported = run_timed(
        [*bareme(), "import", str(data_dir), "--ruleset", args.ruleset, "--db", url],
        work,
        work / f"{label}-import.log",
    )
    rows.append({"db": label, "command": "import", "load": load, **imported})
    print(
        f"{label}: import {imported['wall_s']:.2f} s, peak {imported['peak_mb']} MB (load {load})",
        flush=True,
    )
    executors = [e for e in args.executors.split(",") if e]
    plan = [(args.period, executor) for _ in range(args.repeat) for executor in executors]
    if args.with_previous:  # the period before first: the runs of PERIOD then read it back
        plan.insert(0, (previous_period(args.period), executors[0]))
    for n, (period, executor) in enumerate(plan):
        cmd = [*bareme(), "simulate", "--period", period, "--db", url, "--executor", executor]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        load = load_average()
        measured = run_timed(cmd, work, work / f"{label}-simulate-{n}-{period}-{executor}.log")
        run = stored_run(url, period)
        row = {"db": label, "command": "simulate", "period": period, "executor": executor}
        row.update(load=load, **measured, **run)
        rows.append(row)
        print(
            f"{label}: simulate --period {period} --executor {executor}: "
            f"{measured['wall_s']:.2f} s, peak {measured['peak_mb']} MB, tree "
            f"{measured['tree_peak_mb']} MB ({run['invoices']} invoices, {run['lines']} lines; "
            f"load {load})",
            flush=True,
        )
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    heads = ["db", "period", "executor", *STAGES, "other", "wall", "peak MB", "tree MB", "load"]
    print()
    print(
        f"{heads[0]:10s} {heads[1]:7s} {heads[2]:9s} "
        + " ".join(f"{h:>9s}" for h in heads[3:-1])
        + "  load (1/5/15 min)"
    )
    for r in rows:
        if r["command"] != "simulate":
            continue
        t = r["timings"]
        staged = sum(t.get(s, 0.0) for s in STAGES)
        cells = [f"{t[s]:9.2f}" if s in t else f"{'-':>9s}" for s in STAGES]
        cells.append(f"{r['wall_s'] - staged:9.2f}")
        cells.append(f"{r['wall_s']:9.2f}")
        cells.append(f"{r['peak_mb']:9d}")
        cells.append(f"{r['tree_peak_mb']:9d}")
        print(
            f"{r['db']:10s} {r['period']:7s} {r['executor']:9s} "
            + " ".join(cells)
            + f"  {r['load']}"
        )
    print("(seconds; wall: the whole process; peak: its largest process; tree: all its processes)")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--ruleset", default=str(ROOT / "rulesets" / "acme.bareme"))
    ap.add_argument("--subscriptions", type=int, default=100_000)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--usage-per-line", type=int, default=0, help="usage records per line")
    ap.add_argument("--period", default="2026-12")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--executors", default="process,dask")
    ap.add_argument("--workers", type=int, default=0, help="0: the command's default")
    ap.add_argument("--repeat", type=int, default=1, help="simulate each executor N times")
    ap.add_argument(
        "--with-previous",
        action="store_true",
        help="simulate the period before first (as every month but the first: the run then "
        "reads the previous run back, to compare invoices)",
    )
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument(
        "--postgres",
        help="a PostgreSQL URL to create the bench database through "
        "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)",
    )
    ap.add_argument("--data", help="reuse this data-set directory (skip generating one)")
    ap.add_argument("--no-verify", action="store_true", help="skip the CSV round-trip check")
    ap.add_argument("--keep", help="keep the data set and the SQLite database in this directory")
    ap.add_argument("--json", help="also write the measurements to this file")
    args = ap.parse_args()
    args.ruleset = str(Path(args.ruleset).resolve())

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bareme-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    from engine.evaluator import native

    evaluator = "compiled (mypyc)" if native.is_active() else "pure Python"
    print(f"{os.cpu_count()} CPUs, load {load_average()}; evaluator {evaluator}; work directory {work}")
    report: dict[str, Any] = {"ruleset": args.ruleset}
    try:
        if args.data:
            data_dir = Path(args.data).resolve()
        else:
            data_dir = work / "data"
            info = build_dataset(args, data_dir)
            report["dataset"] = info
            print(
                f"data set: {info['rows']} (generated {info['generate_s']} s, written "
                f"{info['write_s']} s"
                + (
                    f", loaded back {info['load_s']} s: {info['round_trip']}"
                    if "load_s" in info
                    else ""
                )
                + ")",
                flush=True,
            )
        rows: list[dict[str, Any]] = []
        if not args.no_sqlite:
            db = work / "bench.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            rows += bench_database(args, "sqlite", f"sqlite:///{db}", data_dir, work)
        if args.postgres:
            rows += bench_postgres(args, data_dir, work)
        report["runs"] = rows
        print_table(rows)
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def bench_postgres(args: argparse.Namespace, data_dir: Path, work: Path) -> list[dict[str, Any]]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = make_url(args.postgres)
    if admin_url.drivername in ("postgresql", "postgres"):
        admin_url = admin_url.set(drivername="postgresql+psycopg")
    name = f"bareme_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = admin_url.set(database=name).render_as_string(hide_password=False)
        return bench_database(args, "postgresql", url, data_dir, work)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
