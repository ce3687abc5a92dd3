"""Benchmark of a simulated billing run (not a test): evaluation time and peak memory of the
executors, beside the proration yardsticks of the shared CDR kit.

    .venv/bin/python bench/simulate_bench.py                       # 100k subscriptions, 20k customers
    .venv/bin/python bench/simulate_bench.py --executors serial --subscriptions 10000 --customers 2000
    .venv/bin/python bench/simulate_bench.py --source kit --kit-dir DIR   # the kit's subscriptions.csv
    .venv/bin/python bench/simulate_bench.py --profile 10000      # cProfile of a serial run, hot spots

What is timed, per executor, each in a fresh child process (its own peak RSS): the data set is
built in memory first (not timed: `synthetic_dataset` over the ruleset's products, or the kit's
subscriptions.csv mapped onto them), then evaluation alone: partitioning ("partition"), opening
the pool or cluster ("startup"), billing every partition and merging the results ("evaluate").
No anomaly, KPI or forecast. "CPU s" is the CPU time of the child and its workers from
partitioning to the end (pool or cluster closed): on a shared machine it says what the wall
time cannot. Peak RSS is `resource.getrusage` of the child itself and of its
largest worker process. With `--check` the merged results are compared across executors
(sha256 of the JSON), which costs a JSON rendering of the whole run per executor.

The ruleset is rulesets/acme.bareme when it compiles, else a small embedded one. The yardsticks
run in the same invocation: `python /work/shared/bench/baselines.py DIR --methods
prorate_python,prorate_numpy` on the kit directory DIR (generated in a temporary folder by
/work/shared/bench/gen_cdrs.py with 1,000 CDRs and --subscriptions rows, unless --kit-dir is
given); they prorate June 2024 for the kit's subscriptions and build one invoice per customer.

Target: evaluation of 100k subscriptions under 2 s on 2 cores.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import gc
import hashlib
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dsl import nodes as n  # noqa: E402
from dsl.diagnostics import RulesetError  # noqa: E402
from dsl.loader import LoadError, load_text  # noqa: E402
from engine.catalogue import Catalogue, build_catalogue  # noqa: E402
from engine.model import Customer, DataSet, Site, Subscription  # noqa: E402
from engine.pipeline import compile_ruleset  # noqa: E402
from engine.runtime import keep_for_process_lifetime  # noqa: E402

KIT = Path("/work/shared/bench")

EMBEDDED = """
ruleset "Bench" { currency EUR country FR timezone "Europe/Paris" }
vat standard 20% category S
family voice "Voix"
family data "Data"
product SIP { label "SIP Trunk" kind recurring family voice billing in_advance periodicity monthly
    vat standard cost 18.50 EUR price 49.90 EUR }
product SEATS { label "Postes" kind recurring family voice billing in_advance periodicity monthly
    vat standard price graduated { up to 10: 12 EUR flat 15 EUR  up to 50: 10 EUR  above: 8 EUR } }
product FIBRE { label "Fibre" kind recurring family data billing in_advance periodicity monthly
    vat standard cost 95 EUR price 179 EUR }
product MOBILE { label "Mobile" kind recurring family voice billing in_advance periodicity monthly
    vat standard price 19.90 EUR }
"""


def evaluator_build() -> str:
    """Compiled (mypyc) or pure Python: what the children will load (they inherit BAREME_NATIVE)."""
    from engine.evaluator import native

    return "compiled (mypyc)" if native.is_active() else "pure Python (not built, or BAREME_NATIVE=0)"


def load_catalogue(path: Path) -> tuple[Catalogue, str]:
    try:
        return compile_ruleset(path).catalogue, str(path.relative_to(ROOT))
    except (RulesetError, LoadError, OSError) as exc:
        print(
            f"{path} does not compile ({type(exc).__name__}); using the embedded ruleset",
            file=sys.stderr,
        )
        return build_catalogue(load_text(EMBEDDED, "bench.bareme")), "embedded"


def _kit_sub(
    sid: str, cid: str, product: str, first: date, last: date | None, micro: int
) -> Subscription:
    return Subscription(
        subscription_id=sid,
        customer_id=cid,
        product=product,
        quantity=Decimal(1),
        start_date=first,
        end_date=last,
        unit_price=Decimal(micro).scaleb(-6),  # micro-EUR -> EUR, exact
    )


def kit_dataset(catalogue: Catalogue, kit_dir: Path) -> DataSet:
    """The kit's subscriptions (June 2024 proration run) as Barème subscriptions: price in
    micro-EUR -> contract `unit_price`, plan -> one of the ruleset's unit-priced recurring
    products, a plan change -> the subscription ends the day before and a new one starts."""
    from stdnum import luhn

    products = [
        code
        for code, p in sorted(catalogue.products.items())
        if p.kind == "recurring"
        and not isinstance(p.pricing, n.PercentPricing)
        and p.billing == "in_advance"
    ]
    subs: list[Subscription] = []
    customers: dict[str, Customer] = {}
    with open(kit_dir / "subscriptions.csv", newline="") as f:
        for row in csv.DictReader(f):
            cid = f"K{int(row['customer_id']):06d}"
            if cid not in customers:
                body = f"{10_000_000 + int(row['customer_id']):08d}"[-8:]
                customers[cid] = Customer(
                    customer_id=cid,
                    legal_name=f"Kit {cid}",
                    country="FR",
                    siren=body + luhn.calc_check_digit(body),
                )
            price = int(row["price"])
            start = date.fromisoformat(row["start_date"])
            end = date.fromisoformat(row["end_date"]) if row["end_date"] else None
            product = products[price % 7 % len(products)]

            change = date.fromisoformat(row["change_date"]) if row["change_date"] else None
            if change is not None and start < change and (end is None or change <= end):
                subs.append(
                    _kit_sub(
                        f"KS{row['sub_id']}", cid, product, start, change - timedelta(days=1), price
                    )
                )
                subs.append(
                    _kit_sub(
                        f"KS{row['sub_id']}-2", cid, product, change, end, int(row["new_price"])
                    )
                )
            else:
                subs.append(_kit_sub(f"KS{row['sub_id']}", cid, product, start, end, price))
    sites = tuple(Site(site_id=f"{cid}-S1", customer_id=cid, name="Siège") for cid in customers)
    return DataSet(customers=tuple(customers.values()), sites=sites, subscriptions=tuple(subs))


def build_data(args: argparse.Namespace, catalogue: Catalogue) -> tuple[DataSet, str]:
    if args.source == "kit":
        return kit_dataset(catalogue, Path(args.kit_dir)), "2024-07"
    from simulator.synthetic import synthetic_dataset

    data = synthetic_dataset(
        catalogue,
        args.period,
        customers=args.customers,
        subscriptions=args.subscriptions,
        usage_per_line=args.usage_per_line,
        seed=args.seed,
    )
    return data, args.period


def cpu_seconds() -> float:  # float-ok: seconds
    """User + system CPU time of this process and of its finished children."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_mb(who: int) -> float:  # float-ok: megabytes, not money
    return resource.getrusage(who).ru_maxrss / 1024


# ------------------------------------------------------------------------------------ child
def child(args: argparse.Namespace) -> None:
    from simulator.executors import open_session
    from simulator.partition import merge_results, split_dataset
    from simulator.simulation import default_partitions

    catalogue, _ = load_catalogue(Path(args.ruleset))
    data, period = build_data(args, catalogue)
    gc.collect()
    keep_for_process_lifetime()  # as `bareme` does: the data set lives for the whole run
    data_mb = peak_mb(resource.RUSAGE_SELF)
    kind = args.child
    cpu_before = cpu_seconds()
    clock = time.perf_counter()
    slices = split_dataset(
        data, args.partitions or default_partitions(kind, args.workers, len(data.customers))
    )
    partition_s = time.perf_counter() - clock
    clock = time.perf_counter()
    with open_session(kind, catalogue, slices, workers=args.workers) as session:
        startup_s = time.perf_counter() - clock
        clock = time.perf_counter()
        results = session.run(period)
        result = merge_results(
            results, ruleset=catalogue.name, period=period, currency=catalogue.currency
        )
        evaluate_s = time.perf_counter() - clock
    cpu_s = cpu_seconds() - cpu_before  # workers included once the pool or cluster is closed
    digest = ""
    if args.check:
        digest = hashlib.sha256(json.dumps(result.as_dict()).encode()).hexdigest()[:16]
    print(
        json.dumps(
            {
                "executor": kind,
                "subscriptions": len(data.subscriptions),
                "customers": len(data.customers),
                "usage": len(data.usage),
                "partitions": len(slices),
                "invoices": len(result.invoices),
                "lines": sum(len(i.lines) for i in result.invoices),
                "partition_s": round(partition_s, 3),
                "startup_s": round(startup_s, 3),
                "evaluate_s": round(evaluate_s, 3),
                "cpu_s": round(cpu_s, 3),
                "data_rss_mb": round(data_mb),
                "peak_rss_mb": round(peak_mb(resource.RUSAGE_SELF)),
                "worker_peak_rss_mb": round(peak_mb(resource.RUSAGE_CHILDREN)),
                "digest": digest,
            }
        )
    )


def profile(args: argparse.Namespace) -> None:
    """cProfile of a serial evaluation: the functions where the time goes, with their share."""
    from engine.evaluator.run import bill

    catalogue, _ = load_catalogue(Path(args.ruleset))
    args.subscriptions, args.customers = args.profile, max(1, args.profile // 5)
    data, period = build_data(args, catalogue)
    profiler = cProfile.Profile()
    clock = time.perf_counter()
    profiler.runcall(bill, catalogue, data, period)
    wall = time.perf_counter() - clock
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"serial bill of {len(data.subscriptions)} subscriptions under cProfile: {wall:.2f} s\n")
    rows = stats.stats  # type: ignore[attr-defined]
    for title, column in (("self time", 2), ("cumulative time", 3)):
        print(f"top by {title} (share of the run):")
        ranked = sorted(rows.items(), key=lambda kv: kv[1][column], reverse=True)[: args.top]
        for (path, line, func), values in ranked:
            where = (
                os.path.relpath(path, ROOT)
                if path.startswith(str(ROOT))
                else os.path.basename(path)
            )
            print(
                f"  {100 * values[column] / total:5.1f} %  {values[column]:7.2f} s  {values[1]:>9} calls  {where}:{line}:{func}"
            )
        print()


# ---------------------------------------------------------------------------------- driver
def yardsticks(kit_dir: Path) -> dict[str, dict[str, float]]:  # float-ok: seconds, megabytes
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "baselines.json"
        cmd = [
            sys.executable,
            str(KIT / "baselines.py"),
            str(kit_dir),
            "--methods",
            "prorate_python,prorate_numpy",
            "--json",
            str(out),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"yardsticks failed:\n{done.stderr[-2000:]}", file=sys.stderr)
            return {}
        report = json.loads(out.read_text())
    return {
        m: {"rows": r["rows"], "total_s": r["total_s"], "peak_rss_mb": r["peak_rss_mb"]}
        for m, r in report["runs"].items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--ruleset", default=str(ROOT / "rulesets" / "acme.bareme"))
    ap.add_argument("--source", choices=("synthetic", "kit"), default="synthetic")
    ap.add_argument("--subscriptions", type=int, default=100_000)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument(
        "--usage-per-line", type=int, default=0, help="usage records per line (0: none)"
    )
    ap.add_argument("--period", default="2026-12")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--executors", default="serial,process,dask")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--partitions", type=int, default=0, help="0: the simulator's default")
    ap.add_argument(
        "--kit-dir",
        help="a gen_cdrs.py output directory (default: generated in a temporary folder)",
    )
    ap.add_argument("--no-yardsticks", action="store_true")
    ap.add_argument(
        "--check", action="store_true", help="compare the merged results across executors"
    )
    ap.add_argument(
        "--profile", type=int, default=0, help="profile a serial run of this many subscriptions"
    )
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--json", help="also write the report to this file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    if args.profile:
        return profile(args)

    catalogue, ruleset = load_catalogue(Path(args.ruleset))
    tmp = tempfile.TemporaryDirectory()
    kit_dir = Path(args.kit_dir) if args.kit_dir else Path(tmp.name)
    needs_kit = args.source == "kit" or not args.no_yardsticks
    if needs_kit and not args.kit_dir:
        subprocess.run(
            [sys.executable, str(KIT / "gen_cdrs.py"), "--rows", "1000", "--subs", str(args.subscriptions),
             "--seed", str(args.seed), "--out", str(kit_dir)],
            check=True, capture_output=True,
        )  # fmt: skip
    print(
        f"ruleset {ruleset}; data: {args.source} "
        + (f"({kit_dir}/subscriptions.csv)" if args.source == "kit" else f"({args.subscriptions} subscriptions, {args.customers} customers, {args.usage_per_line} records per line)")
        + f"; {args.workers} workers, {os.cpu_count()} CPUs; evaluator {evaluator_build()}"
    )  # fmt: skip
    forwarded = [a for a in sys.argv[1:] if a not in ("--check",)]
    if args.source == "kit" and not args.kit_dir:
        forwarded += ["--kit-dir", str(kit_dir)]
    runs = []
    header = f"{'executor':10s} {'subs':>7s} {'parts':>5s} {'partition s':>11s} {'startup s':>9s} {'evaluate s':>10s} {'CPU s':>7s} {'subs/s':>8s} {'data MB':>7s} {'peak MB':>7s} {'worker MB':>9s}"
    print(header)
    for kind in [k for k in args.executors.split(",") if k]:
        cmd = [sys.executable, __file__, *forwarded, "--child", kind] + (
            ["--check"] if args.check else []
        )
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{kind} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        runs.append(r)
        rate = r["subscriptions"] / r["evaluate_s"] if r["evaluate_s"] else 0
        print(
            f"{kind:10s} {r['subscriptions']:7d} {r['partitions']:5d} {r['partition_s']:11.2f} {r['startup_s']:9.2f} "
            f"{r['evaluate_s']:10.2f} {r['cpu_s']:7.1f} {rate:8.0f} {r['data_rss_mb']:7d} {r['peak_rss_mb']:7d} {r['worker_peak_rss_mb']:9d}",
            flush=True,
        )
    if args.check and runs:
        digests = {r["digest"] for r in runs}
        print(
            "results identical across executors"
            if len(digests) == 1
            else f"RESULTS DIFFER: {digests}"
        )
    sticks = {} if args.no_yardsticks else yardsticks(kit_dir)
    for method, s in sticks.items():
        print(
            f"yardstick {method:15s} {s['rows']:7d} rows {s['total_s']:8.3f} s  peak {s['peak_rss_mb']:.0f} MB"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"ruleset": ruleset, "runs": runs, "yardsticks": sticks}, indent=1)
        )
    tmp.cleanup()


if __name__ == "__main__":
    main()
