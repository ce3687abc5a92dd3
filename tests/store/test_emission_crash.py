"""Emission is atomic and numbering has no gap and no duplicate, even when emitters die or race.

CRASH: a process emitting a run is killed (SIGKILL) at random moments, 50 times per database
(BAREME_CRASH_TRIALS), with a pause between invoice updates (BAREME_TEST_EMIT_PAUSE) so that
most kills land inside the transaction. The emitters are forked from a child process that has
already imported everything (tests/store/emit_child.py --fork), so a trial costs the emission,
not a Python start-up. After every kill: each run is either emitted with all its invoices
numbered, or still approved with none; the series' numbers are exactly 1..N.

CONCURRENCY: several emitter processes (forked the same way, all connected before the start
signal) start at once on different runs sharing one series (plus a second one on the same run): numbers are exactly 1..N, each run gets one contiguous
block, the duplicate emitter is refused.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import pytest
from sqlalchemy import select
from store.store_support import EMIT_CHILD, ROOT

from engine.store.db import Store
from engine.store.emission import DEFAULT_NUMBER_FORMAT, format_number
from engine.store.schema import Invoice, NumberSeries, Run

TRIALS = int(os.environ.get("BAREME_CRASH_TRIALS", "50"))
INVOICES = 20
PAUSE_S = 0.003


def _env(pause: float) -> dict[str, str]:
    return {**os.environ, "BAREME_TEST_EMIT_PAUSE": str(pause), "PYTHONPATH": str(ROOT)}


def check_consistency(store: Store, series: str = "FA") -> dict[int, str]:
    """Assert the invariants; return each run's status."""
    with store.snapshot() as session:
        runs = {r.id: r.status for r in session.execute(select(Run.id, Run.status))}
        invoices = session.execute(
            select(
                Invoice.run_id,
                Invoice.invoice_key,
                Invoice.status,
                Invoice.series,
                Invoice.seq,
                Invoice.number,
                Invoice.issue_date,
            )
        ).all()
        numbering = session.get(NumberSeries, series)
    by_run: dict[int, list[Any]] = {}
    for inv in invoices:
        by_run.setdefault(inv.run_id, []).append(inv)
    seqs: list[int] = []
    for run_id, status in runs.items():
        rows: list[Any] = sorted(by_run.get(run_id, []), key=lambda r: r.invoice_key)
        if status == "emitted":
            assert all(r.status == "emitted" and r.number is not None for r in rows), run_id
            run_seqs = [r.seq for r in rows]
            assert run_seqs == list(range(run_seqs[0], run_seqs[0] + len(rows))), run_id
            for r in rows:
                assert r.series == series
                assert r.number == format_number(
                    DEFAULT_NUMBER_FORMAT,
                    series,
                    r.seq,
                    r.issue_date,
                )
            seqs.extend(run_seqs)
        else:
            assert status == "approved", (run_id, status)
            assert all(
                r.status == "approved" and r.number is None and r.seq is None for r in rows
            ), run_id
    assert sorted(seqs) == list(range(1, len(seqs) + 1)), "gap or duplicate in the series"
    numbers = [inv.number for inv in invoices if inv.number is not None]
    assert len(numbers) == len(set(numbers))
    if numbering is not None:
        assert numbering.next_value == len(seqs) + 1
    else:
        assert not seqs
    return runs


class Forker:
    """tests/store/emit_child.py --fork: forks one emitter per run id."""

    def __init__(self, url: str, pause: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(EMIT_CHILD), "--fork", url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=_env(pause),
            cwd=ROOT,
        )
        assert self.line() == "forker ready"

    def line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            pytest.fail(f"the forker died (exit {self.process.wait()})")
        return line.strip()

    def fork(self, run_id: int) -> int:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{run_id}\n")
        self.process.stdin.flush()
        while True:  # skip what earlier emitters printed
            line = self.line()
            if line.startswith("failed"):
                pytest.fail(line)
            if line.startswith("ready "):
                return int(line.split()[1])

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_gone(pid: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            pytest.fail(f"emitter {pid} still alive")
        time.sleep(0.001)


def test_killed_emitters_leave_all_or_nothing_and_no_gap(
    store: Store, db_url: str, approved_runs: Callable[..., list[int]]
) -> None:
    months = [f"{2030 + i // 12}-{i % 12 + 1:02d}" for i in range(TRIALS + 2)]
    run_ids = approved_runs(months, invoices=INVOICES)
    seed = int(os.environ.get("BAREME_CRASH_SEED", str(time.time_ns() % 2**32)))
    rng = random.Random(seed)
    forker = Forker(db_url, PAUSE_S)
    try:
        # calibration: how long an emission takes when nobody kills it
        pid = forker.fork(run_ids[0])
        start = time.perf_counter()
        os.kill(pid, signal.SIGUSR1)
        _wait_gone(pid)
        window = (time.perf_counter() - start) * 1.3
        assert check_consistency(store)[run_ids[0]] == "emitted"

        outcomes = {"emitted": 1, "approved": 0}
        for run_id in run_ids[1 : TRIALS + 1]:
            pid = forker.fork(run_id)
            delay = rng.uniform(0, window)
            os.kill(pid, signal.SIGUSR1)
            time.sleep(delay)
            with suppress(ProcessLookupError):  # unless it had finished
                os.kill(pid, signal.SIGKILL)
            _wait_gone(pid)
            statuses = check_consistency(store)
            outcomes[statuses[run_id]] += 1

        # the series goes on after the crashes, from where the committed emissions left it
        pid = forker.fork(run_ids[-1])
        os.kill(pid, signal.SIGUSR1)
        _wait_gone(pid)
    finally:
        forker.close()
    assert check_consistency(store)[run_ids[-1]] == "emitted"
    # both outcomes happened: kills landed before and after commits (seed printed to replay)
    assert outcomes["approved"] >= 1 and outcomes["emitted"] >= 2, (outcomes, seed)
    print(f"{TRIALS} kills, seed {seed}, window {window:.3f} s: {outcomes}")


def test_concurrent_emitters_share_one_series_without_gap(
    store: Store, db_url: str, approved_runs: Callable[..., list[int]]
) -> None:
    # Same issue date on purpose: any emission order is then chronological, so every emitter
    # may win the race (the date check has its own test).
    run_ids = approved_runs(
        [f"2031-{m:02d}" for m in range(1, 7)], invoices=INVOICES, issue_date=dt.date(2031, 1, 1)
    )
    emitters = [*run_ids, run_ids[0]]  # and a second emitter of the first run
    forker = Forker(db_url, 0.002)
    try:
        pids = {forker.fork(run_id): run_id for run_id in emitters}  # all connected...
        for pid in pids:  # ... then all started at once
            os.kill(pid, signal.SIGUSR1)
        reports: dict[int, str] = {}
        while len(reports) < len(pids):
            line = forker.line()
            if not line:
                continue
            word, pid_text = line.split()[0], line.split()[1].rstrip(":")
            assert word in ("emitted", "refused"), line
            reports[int(pid_text)] = line
    finally:
        forker.close()
    refused = [(pids[pid], line) for pid, line in reports.items() if line.startswith("refused")]
    assert len(refused) == 1, reports
    assert refused[0][0] == run_ids[0] and "already emitted" in refused[0][1], refused
    statuses = check_consistency(store)
    assert all(statuses[r] == "emitted" for r in run_ids)
    with store.snapshot() as session:
        seqs = session.scalars(select(Invoice.seq).where(Invoice.status == "emitted")).all()
    assert sorted(seqs) == list(range(1, len(run_ids) * INVOICES + 1))
