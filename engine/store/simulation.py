"""A period simulated from the store: data set read back, simulator run, draft stored.

``simulate_period`` is what ``bareme simulate`` does: check the period is not frozen, read the
data set back (only the usage the period's run needs, see ``engine.store.readback``), take the
previous period's run (whatever its status) as ``previous`` and each line's last use for the
idle check, run the simulator (``simulator.simulating``), store the ruleset version and the draft
run (replacing the period's draft in one transaction) while the executor's other processes
compute the forecast, then the KPIs, before the commit.

The run's timings (stored with it and printed in the summary) are the simulator's stages
("partition", "evaluate", "anomalies", "kpis") framed by the store's: "read" (the ruleset and
the data set read back from the store, with the previous run) before them, "store" (the draft
written: ruleset version, run, invoices, lines, anomalies) after them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from engine.calendar import add_months, month_period
from engine.pipeline import CompiledRuleset
from engine.store.db import Store, StoreError
from engine.store.readback import line_last_use, load_dataset_from_store, usage_window
from engine.store.rulesets import compile_stored, ruleset_source, store_ruleset
from engine.store.runs import check_simulable, previous_run, run_result, save_simulation
from engine.store.schema import CustomerRow, ImportBatch, Ruleset

if TYPE_CHECKING:
    from engine.invoice import RunResult
    from simulator import Anomaly, Simulation
    from simulator.simulation import PendingSimulation

__all__ = ["SimulatedRun", "simulate_period"]


@dataclass(frozen=True)
class SimulatedRun:
    run_id: int
    period: str
    replaced_run_id: int | None
    previous_run_id: int | None
    simulation: Simulation


def simulate_period(
    store: Store,
    period: str,
    compiled: CompiledRuleset | None = None,
    *,
    executor: str = "process",
    workers: int | None = None,
    scheduler: str | None = None,
    partitions: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimulatedRun:
    """Simulate ``period`` from the stored data set and store it as the period's draft.

    ``compiled``: the ruleset; default the version stored by the latest import.
    Raises RunFrozen (approved or emitted period) and StoreError (nothing imported yet).
    """
    from simulator.anomalies import AnomalyConfig
    from simulator.simulation import simulating

    clock = time.perf_counter()
    with store.snapshot() as session:
        check_simulable(session, period)  # refuse before any work
        batch_id = session.scalar(select(func.max(ImportBatch.id)))
        customers = session.scalar(select(func.count()).select_from(CustomerRow))
        if batch_id is None or not customers:
            raise StoreError("no data set in the store: import one first (bareme import DIR)")
        if compiled is None:
            batch = session.get(ImportBatch, batch_id)
            stored = session.get(Ruleset, batch.ruleset_id) if batch and batch.ruleset_id else None
            if stored is None:
                raise StoreError("no ruleset stored with the data: give --ruleset FILE")
            compiled = compile_stored(stored)
        catalogue = compiled.catalogue
        before = previous_run(session, period)
        data = load_dataset_from_store(
            session,
            usage_period=usage_window(period, catalogue.timezone),
            late_after_batch=before.data_batch_id if before is not None else None,
        )
        previous = run_result(session, before) if before is not None else None
        previous_id = before.id if before is not None else None
        # The idle-line check looks back further than the usage read above.
        usage_start, _ = usage_window(period, catalogue.timezone)
        config = AnomalyConfig.from_settings(catalogue.settings)
        idle_start, _ = usage_window(_months_before(period, config.idle_months - 1), catalogue.timezone)
        last_use = line_last_use(session, idle_start, usage_start, catalogue.timezone)
    read_s = time.perf_counter() - clock

    with simulating(
        catalogue,
        data,
        period,
        executor=executor,
        workers=workers,
        scheduler=scheduler,
        partitions=partitions,
        previous=previous,
        config=config,
        progress=progress,
        last_use=last_use,
    ) as pending:
        # The draft is written while the executor's other processes compute the forecast.
        run = _ReadFirst(pending, read_s)
        clock = time.perf_counter()
        source = ruleset_source(compiled)
        with store.write() as session:
            ruleset_id = store_ruleset(session, source).id
        series = catalogue.settings.get("invoice_series")
        saved = save_simulation(
            store,
            period=period,
            pending=run,
            started=clock,
            ruleset_id=ruleset_id,
            executor=executor,
            workers=workers,
            previous_run_id=previous_id,
            data_batch_id=batch_id,
            invoice_series=series if isinstance(series, str) else None,
        )
    simulation = dataclasses.replace(run.finish(), timings=saved.timings)
    return SimulatedRun(saved.run_id, period, saved.replaced_run_id, previous_id, simulation)


@dataclass
class _ReadFirst:
    """A pending simulation whose timings start with the store's read-back."""

    pending: PendingSimulation
    read_s: float  # float-ok: seconds
    _done: Simulation | None = None

    @property
    def result(self) -> RunResult:
        return self.pending.result

    @property
    def anomalies(self) -> tuple[Anomaly, ...]:
        return self.pending.anomalies

    def finish(self) -> Simulation:
        if self._done is None:
            simulation = self.pending.finish()
            timings = {"read": self.read_s, **simulation.timings}
            self._done = dataclasses.replace(simulation, timings=timings)
        return self._done


def _months_before(period: str, months: int) -> str:
    """The period `months` months before `period` (YYYY-MM)."""
    return add_months(month_period(period).start, -months).strftime("%Y-%m")
