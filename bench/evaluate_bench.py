"""Evaluation-only timing of `bill` on a synthetic data set (not a test).

    .venv/bin/python bench/evaluate_bench.py [SUBSCRIPTIONS] [--digest]

Builds `simulator.synthetic.synthetic_dataset` over rulesets/acme.bareme (SUBSCRIPTIONS
subscriptions, one customer per 5), then times one serial `bill` of 2026-12 with both back ends
(compiled, reference). With --digest, prints the sha256 of the run's JSON (to check that a
change to the hot path changes no invoice).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.evaluator.backend import make_pricer  # noqa: E402
from engine.evaluator.run import bill  # noqa: E402
from engine.pipeline import compile_ruleset  # noqa: E402
from simulator.synthetic import synthetic_dataset  # noqa: E402


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 100_000
    compiled = compile_ruleset(ROOT / "rulesets" / "acme.bareme")
    data = synthetic_dataset(compiled.catalogue, "2026-12", customers=n // 5, subscriptions=n, seed=1)
    for backend in ("compiled", "reference"):
        t = time.perf_counter()
        result = bill(compiled.catalogue, data, "2026-12", make_pricer(backend))
        dt = time.perf_counter() - t
        lines = sum(len(i.lines) for i in result.invoices)
        print(f"{backend}: {n} subscriptions, {len(result.invoices)} invoices, {lines} lines: {dt:.2f} s")
        if "--digest" in sys.argv:
            print("  sha256", hashlib.sha256(json.dumps(result.as_dict()).encode()).hexdigest()[:16])


if __name__ == "__main__":
    main()
