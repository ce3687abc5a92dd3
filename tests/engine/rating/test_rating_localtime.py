"""UTC <-> Europe/Paris conversions of the vectorised TzTable agree with zoneinfo, including
the DST change nights."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.rating.localtime import TzTable

PARIS = ZoneInfo("Europe/Paris")
EPOCH = datetime(1970, 1, 1)


def test_dst_nights_utc_to_local() -> None:
    t = TzTable()
    for y, m, d in ((2026, 3, 29), (2026, 10, 25), (2024, 6, 1)):
        base = int(datetime(y, m, d, tzinfo=UTC).timestamp()) - 86400
        utc = np.arange(base, base + 3 * 86400, 61, dtype=np.int64)
        want = [int((datetime.fromtimestamp(int(u), UTC).astimezone(PARIS).replace(tzinfo=None)
                     - EPOCH).total_seconds()) for u in utc]
        assert t.to_local(utc).tolist() == want


def test_naive_local_to_utc_fold0() -> None:
    t = TzTable()

    def loc(s: str) -> int:
        return int((datetime.fromisoformat(s) - EPOCH).total_seconds())

    got = t.to_utc(np.array([loc("2026-03-29 01:59:59"), loc("2026-03-29 02:30:00"),
                             loc("2026-03-29 03:00:00"), loc("2026-10-25 02:30:00"),
                             loc("2026-10-25 03:00:00")]))
    want = [datetime(2026, 3, 29, 0, 59, 59), datetime(2026, 3, 29, 1, 30),  # gap: CET offset
            datetime(2026, 3, 29, 1, 0), datetime(2026, 10, 25, 0, 30),  # ambiguous: 1st (CEST)
            datetime(2026, 10, 25, 2, 0)]
    assert got.tolist() == [int(w.replace(tzinfo=UTC).timestamp()) for w in want]


def test_transitions() -> None:
    t = TzTable()
    lo = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    hi = int(datetime(2027, 1, 1, tzinfo=UTC).timestamp())
    got = t.transitions(lo, hi).tolist()
    assert got == [int(datetime(2026, 3, 29, 1, tzinfo=UTC).timestamp()),
                   int(datetime(2026, 10, 25, 1, tzinfo=UTC).timestamp())]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 4_102_444_800), min_size=1, max_size=30))
def test_random_instants(utcs: list[int]) -> None:
    t = TzTable()
    got = t.to_local(np.array(utcs, dtype=np.int64)).tolist()
    for u, g in zip(utcs, got, strict=True):
        lt = datetime.fromtimestamp(u, UTC).astimezone(PARIS).replace(tzinfo=None)
        assert EPOCH + timedelta(seconds=g) == lt
