"""Simulate a billing run before the cut-off: invoices, anomalies and KPIs, without a database.

`simulate(catalogue, data, period, ...)` partitions the data set by customer
(simulator.partition), bills the partitions with an executor (simulator.executors), merges
their results into the `RunResult` a single `bill` gives, then finds the anomalies
(simulator.anomalies) and computes the KPIs (simulator.kpis), whose recurring revenue forecast
re-bills the next periods on the same partitions and executor.

`Simulation.timings` holds wall-clock seconds of each stage: "partition", "evaluate",
"anomalies" and "kpis" (which includes the forecast runs).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from engine.calendar import month_period
from engine.catalogue import Catalogue
from engine.invoice import RunResult
from engine.model import DataSet
from engine.runtime import gc_paused
from simulator.anomalies import Anomaly, AnomalyConfig, find_anomalies
from simulator.executors import EXECUTORS, open_session
from simulator.kpis import Kpis, compute_kpis, forecast_periods, recurring_forecast
from simulator.partition import merge_results, split_dataset

__all__ = ["PendingSimulation", "Simulation", "simulate", "simulating"]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Simulation:
    result: RunResult
    anomalies: tuple[Anomaly, ...]
    kpis: Kpis
    timings: Mapping[str, float]  # float-ok: durations in seconds, not money


def default_partitions(executor: str, workers: int | None, customers: int | None = None) -> int:
    """One partition in process; in the pool, up to sixteen per process, but no fewer than 500
    customers each (the slices of one process share their memos, and small results come back
    from the pool while this process bills: 20,000 customers on 2 processes, 8 partitions
    3.4 s, 32 partitions 3.0 s; a small run pays for every slice it adds); four per worker on
    dask (each task there starts afresh)."""
    if executor == "serial":
        return 1
    if executor == "dask":
        return 8 if workers is None else 4 * workers
    processes = workers or os.cpu_count() or 1
    most = 16 * processes
    if customers is None:
        return most
    return max(processes, min(most, customers // 500))


def simulate(
    catalogue: Catalogue,
    data: DataSet,
    period: str,
    *,
    executor: str = "process",
    workers: int | None = None,
    scheduler: str | None = None,
    partitions: int | None = None,
    previous: RunResult | None = None,
    config: AnomalyConfig | None = None,
    progress: Progress | None = None,
    forecast_months: int = 3,
    last_use: Mapping[str, date] | None = None,
) -> Simulation:
    """Bill `period` (YYYY-MM) over `data` and review it.

    - `executor`: "serial" (in this process), "process" (`workers` processes, this one
      included, default the number of CPUs) or "dask" (the cluster at `scheduler`, else a local
      cluster of `workers or 2` processes opened and closed here).
    - `partitions`: how many customer partitions to bill (default: 1 serial, 4 per worker
      otherwise); the result does not depend on it.
    - `previous`: the previous period's result, for the invoice variation check.
    - `config`: anomaly thresholds (default: from the ruleset settings, else the defaults).
    - `progress(done, total)`: called with 0 first, then after each billed partition; `total`
      counts the partitions of the run and of the `forecast_months` forecast runs.
    - `last_use`: the last day each line was used according to records not in `data` (a
      store reads back only the usage the run needs; the idle-line check looks further back).
    """
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
        forecast_months=forecast_months,
        last_use=last_use,
    ) as pending:
        return pending.finish()


@dataclass
class PendingSimulation:
    """A run evaluated and checked, whose forecast is being computed by the executor's other
    processes: `finish()` joins in and gives the `Simulation`."""

    result: RunResult
    anomalies: tuple[Anomaly, ...]
    _finish: Callable[[], Simulation]

    def finish(self) -> Simulation:
        return self._finish()


@contextmanager
def simulating(
    catalogue: Catalogue,
    data: DataSet,
    period: str,
    *,
    executor: str = "process",
    workers: int | None = None,
    scheduler: str | None = None,
    partitions: int | None = None,
    previous: RunResult | None = None,
    config: AnomalyConfig | None = None,
    progress: Progress | None = None,
    forecast_months: int = 3,
    last_use: Mapping[str, date] | None = None,
) -> Iterator[PendingSimulation]:
    """`simulate` in two steps, for a caller with work of its own: the run is evaluated, the
    forecast started on the executor's other processes, the anomalies found; then the caller
    gets the run (e.g. to write it to a store) while the forecast goes on, and calls
    `finish()` for the KPIs (same arguments as `simulate`; the executor is closed on exit)."""
    month_period(period)  # a bad period fails before any work
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r} (choose from {', '.join(EXECUTORS)})")
    config = config or AnomalyConfig.from_settings(catalogue.settings)
    timings: dict[str, float] = {}  # float-ok: seconds

    clock = time.perf_counter()
    with gc_paused():
        slices = split_dataset(data, partitions or default_partitions(executor, workers, len(data.customers)))
    timings["partition"] = time.perf_counter() - clock

    total = len(slices) * (1 + forecast_months)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(0, total)

    with (
        gc_paused(),  # the run's objects are acyclic: no need to scan them again and again
        open_session(executor, catalogue, slices, workers=workers, scheduler=scheduler) as session,
    ):
        clock = time.perf_counter()
        result = merge_results(
            session.run(period, tick),
            ruleset=catalogue.name,
            period=period,
            currency=catalogue.currency,
        )
        timings["evaluate"] = time.perf_counter() - clock

        # The forecast runs on the other processes while this one checks the run (and while
        # the caller does its own work with it).
        months = forecast_periods(period, forecast_months)
        job = session.start_revenue(months)

        clock = time.perf_counter()
        anomalies = find_anomalies(
            catalogue, data, period, result, previous=previous, config=config, last_use=last_use
        )
        timings["anomalies"] = time.perf_counter() - clock

        def finish() -> Simulation:
            clock = time.perf_counter()
            revenues = job.finish(tick)
            forecast = recurring_forecast(
                catalogue,
                data,
                period,
                months=forecast_months,
                revenue=dict(zip(months, revenues, strict=True)).__getitem__,
            )
            kpis = compute_kpis(catalogue, data, period, result, anomalies, forecast=forecast)
            timings["kpis"] = time.perf_counter() - clock  # the forecast's wait included
            return Simulation(result, anomalies, kpis, timings)

        yield PendingSimulation(result, anomalies, finish)
