"""Partitioned runs give the invoices of one run, byte for byte, whatever the executor and the
number of partitions, on a generated customer base that exercises every per-customer rule
(price lists, percentage pricing, automatic, granted and invoice discounts, commitments with
minimum spend, segmentation by site and by account, usage by zone, lines moving between
customers, phantom lines)."""

from __future__ import annotations

import json
import multiprocessing
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.evaluator.run import bill
from simulator.kpis import recurring_forecast
from simulator.partition import DataSlice, plan_partitions, split_dataset
from simulator.simulation import simulate
from simulator.synthetic import synthetic_dataset

PERIOD = "2026-12"


@pytest.fixture(scope="module")
def data(rich_catalogue):
    return synthetic_dataset(
        rich_catalogue, PERIOD, customers=40, subscriptions=150, usage_per_line=4, seed=7
    )


@pytest.fixture(scope="module")
def reference(rich_catalogue, data) -> str:
    return json.dumps(bill(rich_catalogue, data, PERIOD).as_dict())


def test_generated_data_covers_the_cases(rich_catalogue, data):
    result = bill(rich_catalogue, data, PERIOD)
    kinds = Counter(line.kind for inv in result.invoices for line in inv.lines)
    assert {"recurring", "regularisation", "usage", "discount", "one_shot"} <= set(kinds)
    assert any("/site:" in inv.invoice_key for inv in result.invoices)
    assert any("/account:" in inv.invoice_key for inv in result.invoices)
    assert any(len(subs) > 1 for subs in data.subscriptions_by_line.values())  # a line moved
    assert any("phantom line" in r.reason for r in result.usage_rejected)
    assert any("no price" in r.reason for r in result.usage_rejected)


# ---------------------------------------------------------------------------------- planning
def test_plan_keeps_customers_whole_and_line_sharers_together(data):
    plan = plan_partitions(data, 7)
    assert len(plan) == 7
    placed = [cid for part in plan for cid in part]
    assert sorted(placed) == sorted(c.customer_id for c in data.customers)
    where = {cid: i for i, part in enumerate(plan) for cid in part}
    for subs in data.subscriptions_by_line.values():
        assert len({where[s.customer_id] for s in subs}) == 1


def test_plan_balances_subscriptions(data):
    plan = plan_partitions(data, 3)
    loads = [sum(len(data.subscriptions_by_customer.get(cid, ())) for cid in part) for part in plan]
    heaviest_customer = max(len(v) for v in data.subscriptions_by_customer.values())
    assert max(loads) - min(loads) <= heaviest_customer
    assert plan == plan_partitions(data, 3)  # deterministic


def test_plan_never_has_empty_partitions(data):
    assert len(plan_partitions(data, 1000)) <= len(data.customers)
    with pytest.raises(ValueError):
        plan_partitions(data, 0)


def test_split_places_every_record_once_and_phantoms_apart(data):
    slices = split_dataset(data, 3)
    for table in (
        "customers",
        "sites",
        "accounts",
        "subscriptions",
        "quantity_changes",
        "one_shots",
        "usage",
        "discounts",
    ):
        assert sum(len(getattr(s, table)) for s in slices) == len(getattr(data, table)), table
    orphans = slices[-1]
    assert orphans.customers == () and orphans.usage
    assert all(r.line_id not in data.subscriptions_by_line for r in orphans.usage)
    assert [s.index for s in slices] == list(range(len(slices)))


def test_slices_pickle_and_rebuild_their_lookups(data):
    import pickle

    piece: DataSlice = pickle.loads(pickle.dumps(split_dataset(data, 2)[0]))
    rebuilt = piece.dataset()
    assert rebuilt.customers == piece.customers
    assert set(rebuilt.subscriptions_by_customer) <= {c.customer_id for c in piece.customers}


# ------------------------------------------------------------------------ identical results
@pytest.mark.parametrize("partitions", [1, 3, 7])
@pytest.mark.parametrize("executor", ["serial", "process"])
def test_same_invoices_whatever_the_executor(rich_catalogue, data, reference, executor, partitions):
    sim = simulate(
        rich_catalogue,
        data,
        PERIOD,
        executor=executor,
        workers=2,
        partitions=partitions,
        forecast_months=1,
    )
    assert json.dumps(sim.result.as_dict()) == reference


@pytest.fixture(scope="module")
def dask_scheduler():
    distributed = pytest.importorskip("dask.distributed")
    import logging

    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    ) as cluster:
        yield cluster.scheduler_address


@pytest.mark.parametrize("partitions", [1, 3, 7])
def test_same_invoices_on_a_dask_cluster(
    rich_catalogue, data, reference, dask_scheduler, partitions
):
    sim = simulate(
        rich_catalogue,
        data,
        PERIOD,
        executor="dask",
        scheduler=dask_scheduler,
        partitions=partitions,
        forecast_months=1,
    )
    assert json.dumps(sim.result.as_dict()) == reference


def test_dask_local_cluster_opened_and_closed_here(rich_catalogue, data, reference):
    pytest.importorskip("dask.distributed")
    sim = simulate(
        rich_catalogue, data, PERIOD, executor="dask", workers=2, partitions=3, forecast_months=0
    )
    assert json.dumps(sim.result.as_dict()) == reference


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), partitions=st.integers(1, 9))
def test_partitioning_never_changes_the_invoices(rich_catalogue, seed, partitions):
    data = synthetic_dataset(
        rich_catalogue, PERIOD, customers=12, subscriptions=30, usage_per_line=2, seed=seed
    )
    expected = json.dumps(bill(rich_catalogue, data, PERIOD).as_dict())
    sim = simulate(
        rich_catalogue, data, PERIOD, executor="serial", partitions=partitions, forecast_months=0
    )
    assert json.dumps(sim.result.as_dict()) == expected


# --------------------------------------------------------------------- progress, forecast, errors
def test_progress_counts_every_partition_of_every_run(rich_catalogue, data):
    calls: list[tuple[int, int]] = []
    sim = simulate(
        rich_catalogue,
        data,
        PERIOD,
        executor="serial",
        partitions=3,
        progress=lambda d, t: calls.append((d, t)),
    )
    parts = len(split_dataset(data, 3))
    total = parts * 4  # the run and 3 forecast periods
    assert calls == [(i, total) for i in range(total + 1)]
    assert set(sim.timings) == {"partition", "evaluate", "anomalies", "kpis"}
    assert all(v >= 0 for v in sim.timings.values())


def test_forecast_through_partitions_equals_plain_bill(rich_catalogue, data):
    sim = simulate(rich_catalogue, data, PERIOD, executor="process", workers=2, partitions=3)
    assert sim.kpis.forecast == recurring_forecast(rich_catalogue, data, PERIOD)
    assert [f.period for f in sim.kpis.forecast] == ["2027-01", "2027-02", "2027-03"]


def test_worker_errors_reach_the_caller_and_the_pool_is_closed(rich_catalogue, data, monkeypatch):
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("the patched function reaches the workers by fork only")

    def broken(*args, **kwargs):
        raise RuntimeError("engine failure")

    monkeypatch.setattr("simulator.executors.bill", broken)
    before = set(multiprocessing.active_children())  # a dask cluster of another test may run
    with pytest.raises(RuntimeError, match="engine failure"):
        simulate(rich_catalogue, data, PERIOD, executor="process", workers=2, partitions=3)
    assert set(multiprocessing.active_children()) <= before


def _fork_only() -> None:
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("the patched function reaches the workers by fork only")


def test_this_process_and_the_pool_share_the_slices(rich_catalogue, data, reference, tmp_path, monkeypatch):
    """Each side takes slices while any is left (neither waits for the other with work left
    to do): with more slices than processes, both bill some, and every slice once."""
    _fork_only()
    import os

    from simulator import executors

    log = tmp_path / "billed"
    original = executors.bill

    def logged(catalogue, piece, period, **kwargs):
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {','.join(sorted(c.customer_id for c in piece.customers))}-\n")
        return original(catalogue, piece, period, **kwargs)

    monkeypatch.setattr(executors, "bill", logged)
    sim = simulate(rich_catalogue, data, PERIOD, executor="process", workers=2, partitions=6, forecast_months=0)
    assert json.dumps(sim.result.as_dict()) == reference
    billed = [line.split() for line in log.read_text().splitlines()]
    assert len(billed) == len(split_dataset(data, 6))
    assert len({first for _, first in billed}) == len(billed)  # each slice once
    by = Counter(pid for pid, _ in billed)
    assert str(os.getpid()) in by and len(by) == 2  # this process and the pool's


def test_a_pool_error_reaches_the_caller_after_its_own_slices(rich_catalogue, data, monkeypatch):
    _fork_only()

    def broken(*args, **kwargs):
        raise RuntimeError("pool failure")

    monkeypatch.setattr("simulator.executors._dumps", broken)  # only the pool's results are pickled
    before = set(multiprocessing.active_children())
    with pytest.raises(RuntimeError, match="pool failure"):
        simulate(rich_catalogue, data, PERIOD, executor="process", workers=2, partitions=4, forecast_months=0)
    assert set(multiprocessing.active_children()) <= before


def test_bad_arguments(rich_catalogue, data):
    with pytest.raises(ValueError, match="unknown executor"):
        simulate(rich_catalogue, data, PERIOD, executor="threads")
    with pytest.raises(ValueError, match="YYYY-MM"):
        simulate(rich_catalogue, data, "2026-13", executor="serial")
    with pytest.raises(ValueError, match="workers"):
        simulate(rich_catalogue, data, PERIOD, executor="process", workers=0)


def test_default_partitions_follow_the_processes_and_the_run_size():
    from simulator.simulation import default_partitions

    assert default_partitions("serial", 2, 20_000) == 1
    assert default_partitions("process", 2, 20_000) == 32  # sixteen per process at most
    assert default_partitions("process", 2, 5_000) == 10  # no fewer than 500 customers each
    assert default_partitions("process", 2, 40) == 2  # but at least one per process
    assert default_partitions("dask", 3, 20_000) == 12
