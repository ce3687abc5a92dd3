#!/usr/bin/env python3
"""The benchmark kit's ``engine`` command: rate the kit's cdrs.csv with Barème's rating engine.

The rating rules are a Barème ruleset, bench/kit.bareme, compiled (as if it stood beside the
kit's ratedeck.csv) by the same code as `bareme run`: engine/evaluator/rating_plans.py.

    python bench/rate_kit.py CDRS DECK OUT [--quarantine Q.csv] [--block-mb N] [--no-dedupe]

The kit's rating spec (``/work/shared/bench/baselines.py``) expressed as a
:class:`engine.rating.plan.RatingPlan` (:func:`kit_plan`): zero-duration calls dropped
(``unanswered="drop"``), unrouted calls on zone "" with 0 s and 0 cost, bands weekend Sat/Sun,
peak Mon-Fri 08:00-19:59, off-peak otherwise (no holidays), increments from the deck,
``cost = max(connect + ceil(billed * price / 60), min_charge)`` (per-call rounding up to 1 micro,
then minimum charge).  The kit's times have no offset: they are read as Europe/Paris local
time (June 2024: no DST change, so the bands are those of the wall clock).

Streams the file through :mod:`engine.rating.cdr_import` (validation, duplicate detection by
call_id, quarantine), writes ``line_id,zone,calls,billed_s,cost_micro`` to OUT and prints the
import counts, then ``{"load_s": x, "compute_s": y}`` as the last stdout line.  Parsing and
rating overlap (with N threads, N forked worker processes read, parse, convert and rate blocks
while the main process deduplicates and aggregates them), so ``load_s`` is the deck load +
plan compilation and ``compute_s`` the whole streamed import + rating + CSV output; the
interpreter start and module imports (about 0.4 s, the ruleset compiler's included) are before
the clock starts, and the harness reports the whole process wall time as ``process_s``.
``OMP_NUM_THREADS=1`` (set by ``baselines.py --threads 1``) runs everything in one thread.
stderr gets the peak RSS of the main process and of each worker process (the harness reports
the largest of them; their sum counts the pages shared with the main process once per worker,
so it is an upper bound) and the CPU seconds of each stage.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import sys
import time
from pathlib import Path

import pyarrow.csv as pacsv

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# module imports come before the clock (as the docstring says): the ruleset compiler's too
from dsl.diagnostics import RulesetError  # noqa: E402
from dsl.loader import load_text  # noqa: E402
from engine.catalogue import build_catalogue  # noqa: E402
from engine.evaluator.backend import make_pricer  # noqa: E402
from engine.evaluator.rating_plans import RatingSetupError, product_rating  # noqa: E402
from engine.rating.cdr_import import KIT_LAYOUT, UsageImporter  # noqa: E402
from engine.rating.plan import RatingPlan  # noqa: E402


def kit_plan(deck_path: str) -> RatingPlan:
    """The kit's rating spec: bench/kit.bareme, compiled with the kit's deck as its rate deck."""
    ruleset = Path(__file__).with_name("kit.bareme")
    deck = Path(deck_path).resolve()
    if deck.name != "ratedeck.csv":
        raise SystemExit(f"rate_kit: the deck must be the kit's ratedeck.csv, got {deck.name}")
    try:
        catalogue = build_catalogue(load_text(ruleset.read_text(encoding="utf-8"), str(deck.parent / "kit.bareme")))
        return product_rating(catalogue, make_pricer(), catalogue.products["VOICE"], None).plan
    except (RulesetError, RatingSetupError) as e:
        raise SystemExit(f"rate_kit: {e}") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cdrs")
    ap.add_argument("deck")
    ap.add_argument("out")
    ap.add_argument("--quarantine", default=None)
    ap.add_argument("--block-mb", type=float, default=None,
                    help="block size (default: 4 MB with threads, 2 MB single-threaded)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-dedupe", action="store_true",
                    help="skip duplicate detection (the kit's spec has no duplicate rule; "
                         "without it the call_id column is not even parsed)")
    a = ap.parse_args()
    threads = a.threads
    if threads is None and os.environ.get("OMP_NUM_THREADS"):
        threads = int(os.environ["OMP_NUM_THREADS"])
    if threads == 1:
        import pyarrow as pa
        pa.set_cpu_count(1)
        pa.set_io_thread_count(1)
    t0 = time.perf_counter()
    layout = dataclasses.replace(KIT_LAYOUT, record_id=None) if a.no_dedupe else KIT_LAYOUT
    imp = UsageImporter(kit_plan(a.deck), layout)
    t1 = time.perf_counter()
    rep = imp.import_file(a.cdrs, a.quarantine,
                          block_size=int(a.block_mb * (1 << 20)) if a.block_mb else None,
                          threads=threads, dedupe=not a.no_dedupe)
    res = imp.result(rep)
    t = res.to_arrow()
    t = t.select(["line_id", "zone", "calls", "billed_s", "amount_micro"]).rename_columns(
        ["line_id", "zone", "calls", "billed_s", "cost_micro"])
    pacsv.write_csv(t, a.out, pacsv.WriteOptions(quoting_style="needed"))
    t2 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(rep)
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in imp.timings.items())
    workers = sorted(imp.worker_peak_rss_mb.values())
    wrss = (f" + workers {' + '.join(f'{w:.0f}' for w in workers)} = {rss + sum(workers):.0f} MB"
            if workers else "")
    print(f"peak RSS {rss:.0f} MB{wrss}, dedupe set {imp.seen.nbytes / 1e6:.1f} MB, "
          f"stages: {stages}", file=sys.stderr)
    print(json.dumps({"load_s": round(t1 - t0, 4), "compute_s": round(t2 - t1, 4)}))


if __name__ == "__main__":
    main()
