"""Evaluate the partitions of a run: in process, in a process pool, or on a dask cluster.

Contract:
- `open_session(kind, catalogue, slices, workers=None, scheduler=None)` is a context manager
  giving a `Session`; `session.run(period, done)` bills every slice for `period` and returns
  their `RunResult`s in slice order (whatever order they complete in), calling `done()` once per
  completed slice; `session.start_revenue(periods)` starts computing each period's in-advance
  recurring revenue and its line discounts (`engine.evaluator.run.recurring_revenue`), summed
  over the slices, without building invoices (only two amounts travel back per slice), and
  returns at once: the pool's processes or the cluster work on it while this process does
  something else (the store writes the draft); `job.finish(done)` joins in (this process takes
  the slices nobody started) and returns the revenues in period order. A session can run
  several periods on the same slices; whatever the session opened (pool, cluster, client) is
  closed on exit, also on error.
- "serial": in this process. "process": `workers` processes (default `os.cpu_count()`): this
  one and a `ProcessPoolExecutor` of `workers - 1` (see `ProcessSession`); with the fork start
  method (Linux) the catalogue and the slices are inherited by the pool's processes (nothing is
  pickled on the way in), otherwise the catalogue is sent once per process (initializer) and
  each slice with its task. "dask": a `dask.distributed`
  client on `scheduler` (its workers must be able to import Barème), or a `LocalCluster` of
  `workers or 2` single-threaded worker processes opened and closed here; the catalogue is
  broadcast once, the slices scattered once.
- Results travel back pickled by the worker. The garbage collector is paused while a partition
  is billed (in process, in the pool's workers and in dask tasks) and while a result is
  unpickled: both allocate hundreds of thousands of small acyclic objects the collector would
  scan for nothing.
- The slices one process bills (serially, in the pool: this process and each pool process) share
  one run context per period (`engine.evaluator.run.run_context`): what their subscriptions
  have in common (prototype lines, prices, trace steps) is built once per process, not once
  per slice. Dask tasks start afresh.
- A worker's error is raised again here; evaluation never changes results (the partitions'
  merged result is the same byte for byte whatever the executor).
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import pickle
import sys
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from queue import SimpleQueue
from typing import Any, Protocol, TypeVar

from engine.catalogue import Catalogue
from engine.evaluator.charges import RunContext
from engine.evaluator.run import bill, recurring_revenue, run_context
from engine.invoice import RunResult
from engine.model import DataSet
from engine.runtime import gc_paused, keep_for_process_lifetime
from simulator.partition import DataSlice

__all__ = ["EXECUTORS", "Session", "open_session"]

EXECUTORS = ("serial", "process", "dask")

Done = Callable[[], None]
_T = TypeVar("_T")
_U = TypeVar("_U")


Revenue = tuple[Decimal, Decimal]  # in-advance recurring revenue, line discounts on it


class RevenueJob(Protocol):
    def finish(self, done: Done | None = None) -> list[Revenue]: ...


class Session(Protocol):
    def run(self, period: str, done: Done | None = None) -> list[RunResult]: ...

    def start_revenue(self, periods: Sequence[str]) -> RevenueJob: ...


class _Deferred:
    """A job computed when it is finished (in this process)."""

    def __init__(self, compute: Callable[[Done | None], list[Revenue]]) -> None:
        self.compute = compute

    def finish(self, done: Done | None = None) -> list[Revenue]:
        return self.compute(done)


def _total(parts: Sequence[Revenue]) -> Revenue:
    return sum((p[0] for p in parts), Decimal(0)), sum((p[1] for p in parts), Decimal(0))


class _Contexts:
    """One run context per period (and tracing) for the slices one process bills of one
    session's data set: they share their memos (prototype lines, prices, steps)."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self._by_key: dict[tuple[str, bool], RunContext] = {}

    def get(self, period: str, traced: bool = True) -> RunContext:
        ctx = self._by_key.get((period, traced))
        if ctx is None:
            ctx = self._by_key[(period, traced)] = run_context(self.catalogue, period, traced=traced)
        return ctx


def _bill(
    catalogue: Catalogue, data: DataSet, period: str, context: RunContext | None = None
) -> RunResult:
    with gc_paused():
        return bill(catalogue, data, period, context=context)


def _revenue(
    catalogue: Catalogue, data: DataSet, period: str, context: RunContext | None = None
) -> Revenue:
    with gc_paused():
        return recurring_revenue(catalogue, data, period, context=context)


def _loads(payload: bytes) -> RunResult:
    with gc_paused():
        result: RunResult = pickle.loads(payload)
    return result


def _dumps(result: RunResult) -> bytes:
    return pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)


# ------------------------------------------------------------------------------------ serial
class SerialSession:
    def __init__(self, catalogue: Catalogue, slices: Sequence[DataSlice]) -> None:
        self.catalogue = catalogue
        self.slices = slices
        self._datasets: list[DataSet] | None = None
        self._contexts = _Contexts(catalogue)

    def run(self, period: str, done: Done | None = None) -> list[RunResult]:
        if self._datasets is None:
            self._datasets = [s.dataset() for s in self.slices]
        out = []
        for data in self._datasets:
            out.append(_bill(self.catalogue, data, period, self._contexts.get(period)))
            if done is not None:
                done()
        return out

    def start_revenue(self, periods: Sequence[str]) -> RevenueJob:
        return _Deferred(lambda done: [self._revenue(p, done) for p in periods])

    def _revenue(self, period: str, done: Done | None) -> Revenue:
        if self._datasets is None:
            self._datasets = [s.dataset() for s in self.slices]
        parts = []
        for data in self._datasets:
            parts.append(_revenue(self.catalogue, data, period, self._contexts.get(period, False)))
            if done is not None:
                done()
        return _total(parts)


# ----------------------------------------------------------------------------- process pool
# Worker-process state, set by the pool's initializer.
_CATALOGUE: Catalogue | None = None
_SLICES: Sequence[DataSlice] | None = None
_DATASETS: dict[int, DataSet] = {}
_CONTEXTS: _Contexts | None = None


def _init_worker(catalogue: Catalogue, slices: Sequence[DataSlice] | None) -> None:
    global _CATALOGUE, _SLICES, _CONTEXTS
    _CATALOGUE, _SLICES = catalogue, slices
    _DATASETS.clear()
    _CONTEXTS = _Contexts(catalogue)
    gc.enable()  # forked from a parent that may have paused it
    keep_for_process_lifetime()  # what the worker starts with and builds: no need to scan it


def _worker_dataset(index: int, piece: DataSlice | None) -> DataSet:
    data = _DATASETS.get(index)
    if data is None:
        if piece is None:
            assert _SLICES is not None, "worker started without its slices"
            piece = _SLICES[index]
        data = _DATASETS[index] = piece.dataset()
    return data


def _process_task(index: int, piece: DataSlice | None, period: str) -> bytes:
    assert _CATALOGUE is not None and _CONTEXTS is not None, "worker started without its catalogue"
    return _dumps(_bill(_CATALOGUE, _worker_dataset(index, piece), period, _CONTEXTS.get(period)))


def _process_revenue(index: int, piece: DataSlice | None, period: str) -> Revenue:
    assert _CATALOGUE is not None and _CONTEXTS is not None, "worker started without its catalogue"
    return _revenue(_CATALOGUE, _worker_dataset(index, piece), period, _CONTEXTS.get(period, False))


class ProcessSession:
    """The slices are billed by `workers` processes: this one and a pool of `workers - 1`. The
    pool takes slices from the start of the list, this process from the end, until they meet;
    a slice billed here is never pickled (only the pool's results travel), and this process
    unpickles the pool's results between its own slices."""

    def __init__(
        self,
        pool: ProcessPoolExecutor | None,
        pool_size: int,
        catalogue: Catalogue,
        slices: Sequence[DataSlice],
        inherited: bool,
    ) -> None:
        self.pool = pool
        self.pool_size = pool_size
        self.catalogue = catalogue
        self.slices = slices
        self.inherited = inherited
        self._datasets: dict[int, DataSet] = {}
        self._contexts = _Contexts(catalogue)

    def run(self, period: str, done: Done | None = None) -> list[RunResult]:
        context = self._contexts.get(period)
        return self._map(
            _process_task,
            lambda data: _bill(self.catalogue, data, period, context),
            period,
            done,
            _loads,
        )

    def start_revenue(self, periods: Sequence[str]) -> RevenueJob:
        return _ProcessRevenueJob(self, periods)

    def _dataset(self, index: int) -> DataSet:
        data = self._datasets.get(index)
        if data is None:
            data = self._datasets[index] = self.slices[index].dataset()
        return data

    def _map(
        self,
        task: Callable[[int, DataSlice | None, str], _T],
        here: Callable[[DataSet], _U],
        period: str,
        done: Done | None,
        finish: Callable[[_T], _U],
    ) -> list[_U]:
        """`task` in the pool or `here` in this process over every slice; the pool's results
        go through `finish` (unpickling) as they arrive. Results in slice order.

        The slices form a queue taken from both ends: each pool process has one slice in
        flight and gets the next from the front as soon as it hands one back (a done-callback
        submits it), this process takes from the back and unpickles the pool's results
        between its own slices. Neither side waits while a slice is left; at the end, this
        process waits at most for the slices the pool is billing."""
        results: dict[int, _U] = {}
        queue = deque(range(len(self.slices)))
        lock = threading.Lock()
        arrived: SimpleQueue[tuple[int, Future[_T] | None, BaseException | None]] = SimpleQueue()
        futures: dict[int, Future[_T]] = {}
        stopped = False

        def feed() -> None:
            with lock:
                if stopped or not queue:
                    return
                index = queue.popleft()
            assert self.pool is not None
            try:
                piece = None if self.inherited else self.slices[index]
                future = self.pool.submit(task, index, piece, period)
            except BaseException as exc:  # a broken pool: the waiting loop below raises it
                arrived.put((index, None, exc))
                return
            futures[index] = future

            def handed_back(f: Future[_T]) -> None:  # in the pool's management thread
                arrived.put((index, f, None))
                feed()

            future.add_done_callback(handed_back)

        def collect(index: int, future: Future[_T] | None, error: BaseException | None) -> None:
            if error is not None:
                raise error
            assert future is not None
            results[index] = finish(future.result())
            del futures[index]
            if done is not None:
                done()

        # A result comes through a pipe in 64 KiB reads, each needing the GIL of this process,
        # which is busy billing: at the default 5 ms switch interval a 6 MB result would hold
        # the pool process for half a second.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, 0.0002))
        try:
            for _ in range(self.pool_size if self.pool is not None else 0):
                feed()
            while len(results) < len(self.slices):
                while not arrived.empty():
                    collect(*arrived.get())
                with lock:
                    index = queue.pop() if queue else None
                if index is not None:
                    with gc_paused():
                        results[index] = here(self._dataset(index))
                    if done is not None:
                        done()
                elif len(results) < len(self.slices):
                    collect(*arrived.get())  # the pool's last slices
        except BaseException:
            with lock:
                stopped = True
            for future in list(futures.values()):
                future.cancel()
            raise
        finally:
            sys.setswitchinterval(switch_interval)
        return [results[i] for i in range(len(self.slices))]


class _ProcessRevenueJob:
    """Every (period, slice) task goes to the pool at once; `finish` takes, from the last one
    back, the tasks the pool has not started (a queued future can still be cancelled), then
    waits for the others."""

    def __init__(self, session: ProcessSession, periods: Sequence[str]) -> None:
        self.session = session
        self.periods = list(periods)
        self.tasks = [(p, i) for p in self.periods for i in range(len(session.slices))]
        self.futures: dict[tuple[str, int], Future[Revenue]] = {}
        if session.pool is not None:
            for p, i in self.tasks:
                piece = None if session.inherited else session.slices[i]
                self.futures[(p, i)] = session.pool.submit(_process_revenue, i, piece, p)

    def finish(self, done: Done | None = None) -> list[Revenue]:
        session = self.session
        results: dict[tuple[str, int], Revenue] = {}
        try:
            for key in reversed(self.tasks):
                future = self.futures.get(key)
                if future is None or future.cancel():
                    period, index = key
                    results[key] = _revenue(
                        session.catalogue,
                        session._dataset(index),
                        period,
                        session._contexts.get(period, False),
                    )
                    if done is not None:
                        done()
            for key, future in self.futures.items():
                if key not in results:
                    results[key] = future.result()
                    if done is not None:
                        done()
        except BaseException:
            for future in self.futures.values():
                future.cancel()
            raise
        count = len(session.slices)
        return [_total([results[(p, i)] for i in range(count)]) for p in self.periods]


def _mp_context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


# -------------------------------------------------------------------------------------- dask
def _dask_task(catalogue: Catalogue, piece: DataSlice, period: str) -> bytes:
    return _dumps(_bill(catalogue, piece.dataset(), period))


def _dask_revenue(catalogue: Catalogue, piece: DataSlice, period: str) -> Revenue:
    return _revenue(catalogue, piece.dataset(), period)


class DaskSession:
    def __init__(self, client: Any, catalogue: Catalogue, slices: Sequence[DataSlice]) -> None:
        self.client = client
        self.count = len(slices)
        self.token = uuid.uuid4().hex  # task keys unique on a shared scheduler
        self.catalogue = client.scatter(catalogue, broadcast=True)
        self.slices = client.scatter(list(slices), hash=False) if slices else []

    def run(self, period: str, done: Done | None = None) -> list[RunResult]:
        return self._map(_dask_task, "bill", period, done, _loads)

    def start_revenue(self, periods: Sequence[str]) -> RevenueJob:
        futures = {
            p: [
                self.client.submit(
                    _dask_revenue, self.catalogue, piece, p, pure=False,
                    key=f"revenue-{p}-{i}-{self.token}",
                )
                for i, piece in enumerate(self.slices)
            ]
            for p in periods
        }

        def finish(done: Done | None) -> list[Revenue]:
            out = []
            try:
                for p in periods:
                    parts = []
                    for future in futures[p]:
                        parts.append(future.result())
                        if done is not None:
                            done()
                    out.append(_total(parts))
            except BaseException:
                self.client.cancel([f for fs in futures.values() for f in fs])
                raise
            return out

        return _Deferred(finish)

    def _map(
        self,
        task: Callable[[Catalogue, DataSlice, str], _T],
        name: str,
        period: str,
        done: Done | None,
        finish: Callable[[_T], _U],
    ) -> list[_U]:
        from dask.distributed import as_completed as dask_completed

        futures = [
            self.client.submit(
                task,
                self.catalogue,
                piece,
                period,
                pure=False,
                key=f"{name}-{period}-{i}-{self.token}",
            )
            for i, piece in enumerate(self.slices)
        ]
        index = {f.key: i for i, f in enumerate(futures)}
        results: dict[int, _U] = {}
        try:
            for future in dask_completed(futures):
                results[index[future.key]] = finish(future.result())
                if done is not None:
                    done()
        except BaseException:
            self.client.cancel(futures)
            raise
        return [results[i] for i in range(self.count)]


@contextmanager
def _dask_client(workers: int | None, scheduler: str | None) -> Iterator[Any]:
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(
        n_workers=workers or 2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # no fixed port: clusters may run side by side
        silence_logs=logging.ERROR,
    )
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


# ------------------------------------------------------------------------------------ entry
@contextmanager
def open_session(
    kind: str,
    catalogue: Catalogue,
    slices: Sequence[DataSlice],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
) -> Iterator[Session]:
    """A session evaluating `slices` with executor `kind` (see the module contract)."""
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if kind == "serial":
        yield SerialSession(catalogue, slices)
    elif kind == "process":
        ctx = _mp_context()
        inherited = ctx.get_start_method() == "fork"
        # This process bills too: the pool has one process fewer than `workers`.
        pool_size = max(0, min(workers or os.cpu_count() or 1, len(slices)) - 1)
        pool = (
            ProcessPoolExecutor(
                max_workers=pool_size,
                mp_context=ctx,
                initializer=_init_worker,
                initargs=(catalogue, slices if inherited else None),
            )
            if pool_size
            else None
        )
        try:
            yield ProcessSession(pool, pool_size, catalogue, slices, inherited)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
    elif kind == "dask":
        with _dask_client(workers, scheduler) as client:
            yield DaskSession(client, catalogue, slices)
    else:
        raise ValueError(f"unknown executor {kind!r} (choose from {', '.join(EXECUTORS)})")
