"""The bundled example, billed by both back ends, gives byte-identical results, and the run is
deterministic (a second run gives the same bytes)."""

from __future__ import annotations

import json
from pathlib import Path

from engine.pipeline import compile_ruleset, load_data, run_billing

ROOT = Path(__file__).resolve().parents[2]


def test_example_compiled_equals_reference_and_is_deterministic() -> None:
    compiled = compile_ruleset(ROOT / "rulesets" / "acme.bareme")
    loaded = load_data(ROOT / "rulesets" / "acme-data", compiled.catalogue)
    runs = [
        json.dumps(run_billing(compiled, loaded, "2026-12", backend).as_dict(), ensure_ascii=False)
        for backend in ("compiled", "reference", "compiled")
    ]
    assert runs[0] == runs[1] == runs[2]
