"""Simulation of a billing run before the cut-off: the whole run billed in partitions (in
process, in a process pool or on a dask cluster), then reviewed: anomalies, KPIs, a summary.

Pure functions over the engine, no database: `simulate(catalogue, data, period, ...)` returns a
`Simulation` (the merged `RunResult`, the anomalies, the KPIs and the stage durations).
"""

from simulator.anomalies import CHECKS, Anomaly, AnomalyConfig, find_anomalies
from simulator.kpis import Forecast, Kpis, Margin, compute_kpis, recurring_forecast
from simulator.partition import DataSlice, merge_results, plan_partitions, split_dataset
from simulator.simulation import Simulation, simulate
from simulator.summary import render_summary

__all__ = [
    "CHECKS",
    "Anomaly",
    "AnomalyConfig",
    "DataSlice",
    "Forecast",
    "Kpis",
    "Margin",
    "Simulation",
    "compute_kpis",
    "find_anomalies",
    "merge_results",
    "plan_partitions",
    "recurring_forecast",
    "render_summary",
    "simulate",
    "split_dataset",
]
