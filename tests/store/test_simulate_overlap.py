"""`simulate_period` writes the draft while the executor's other processes compute the
forecast: what it stores (invoices, anomalies, KPIs with the forecast) is what a run billed in
this process alone stores."""

from __future__ import annotations

from pathlib import Path

from engine.pipeline import CompiledRuleset
from engine.store.db import Store
from engine.store.importer import import_directory
from engine.store.runs import find_run, run_document
from engine.store.simulation import simulate_period


def _stored(store: Store, run_id: int) -> dict:
    with store.snapshot() as session:
        doc = run_document(session, find_run(session, run_id))
        run = find_run(session, run_id)
        kpis, timings = run.kpis, run.timings
    for key in ("id", "run_id", "created_at", "executor", "workers", "timings"):
        doc.pop(key, None)
    return {"doc": doc, "kpis": kpis, "stages": sorted(timings)}


def test_pool_and_serial_store_the_same_run(store: Store, acme: CompiledRuleset, small_data: Path):
    import_directory(store, small_data, acme)
    serial = simulate_period(store, "2026-12", acme, executor="serial")
    first = _stored(store, serial.run_id)
    pooled = simulate_period(store, "2026-12", acme, executor="process", workers=2, partitions=5)
    assert pooled.replaced_run_id == serial.run_id
    second = _stored(store, pooled.run_id)
    assert second == first
    assert first["kpis"]["forecast"] and any(f["recurring"] != "0" for f in first["kpis"]["forecast"])
    assert first["stages"] == ["anomalies", "evaluate", "kpis", "partition", "read", "store"]
    assert pooled.simulation.kpis.as_dict() == first["kpis"]
    assert len(first["doc"]["invoices"]) > 5 and first["doc"]["anomalies"]
