"""Vectorised, DST-correct conversions between UTC epoch seconds and local wall-clock seconds.

The UTC offset of a zone is constant within each 15-minute slot of UTC time (true of every
Europe/Paris transition since 1911: they happen at 01:00 UTC).  :class:`TzTable` asks
``zoneinfo`` once per slot of the days present in the data, caches the offsets, and converts
whole numpy arrays with one gather: ``local = utc + offset[(utc - base) // 900]``.

Naive local times are converted to UTC with ``zoneinfo``'s ``fold=0`` rule: an ambiguous time
(the repeated hour of the autumn change, 2026-10-25 02:00-02:59 in Paris) is read as its first
occurrence (summer time); a non-existent time (the skipped hour, 2026-03-29 02:00-02:59) is read
with the offset in force before the change (so 02:30 becomes 01:30 UTC, shown 03:30 local).
No money, no rounding.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

SLOT = 900
SLOTS_PER_DAY = 86400 // SLOT
_EPOCH = datetime(1970, 1, 1)


class TzTable:
    """Offsets per 15-minute slot, for UTC instants (``to_local``) and local wall-clock times
    (``to_utc``), built lazily for the days that occur."""

    def __init__(self, tz: str = "Europe/Paris") -> None:
        self.tz = ZoneInfo(tz)
        self.name = tz
        self._utc_days: dict[int, np.ndarray] = {}
        self._local_days: dict[int, np.ndarray] = {}
        self._last_utc: tuple[int, int, np.ndarray] | None = None
        self._last_local: tuple[int, int, np.ndarray] | None = None

    def _utc_day(self, day: int) -> np.ndarray:
        a = self._utc_days.get(day)
        if a is None:
            base = datetime.fromtimestamp(day * 86400, UTC)
            a = np.empty(SLOTS_PER_DAY, dtype=np.int64)
            for i in range(SLOTS_PER_DAY):
                off = (base + timedelta(seconds=i * SLOT)).astimezone(self.tz).utcoffset()
                a[i] = int(off.total_seconds()) if off is not None else 0
            self._utc_days[day] = a
        return a

    def _local_day(self, day: int) -> np.ndarray:
        a = self._local_days.get(day)
        if a is None:
            base = _EPOCH + timedelta(days=day)
            a = np.empty(SLOTS_PER_DAY, dtype=np.int64)
            for i in range(SLOTS_PER_DAY):
                off = (base + timedelta(seconds=i * SLOT)).replace(tzinfo=self.tz).utcoffset()
                a[i] = int(off.total_seconds()) if off is not None else 0
            self._local_days[day] = a
        return a

    def _table(self, secs: np.ndarray, local: bool) -> tuple[np.ndarray, int]:
        lo = int(secs.min())
        hi = int(secs.max())
        d0 = lo // 86400
        d1 = hi // 86400
        span = d1 - d0 + 1
        cached = self._last_local if local else self._last_utc
        if cached is not None and cached[0] <= d0 and d1 <= cached[1]:
            return cached[2], cached[0] * 86400
        days = secs // 86400
        present = np.flatnonzero(np.bincount(days - d0, minlength=span)) if span <= 400_000 \
            else np.unique(days - d0)
        get = self._local_day if local else self._utc_day
        if present.size == span:
            table = np.concatenate([get(d0 + i) for i in range(span)])
            entry = (d0, d1, table)
            if local:  # blocks of a file mostly cover the same few days: keep the last table
                self._last_local = entry
            else:
                self._last_utc = entry
        else:
            table = np.zeros(span * SLOTS_PER_DAY, dtype=np.int64)
            for i in present.tolist():
                table[i * SLOTS_PER_DAY:(i + 1) * SLOTS_PER_DAY] = get(d0 + i)
        return table, d0 * 86400

    def offsets_utc(self, utc: np.ndarray) -> np.ndarray:
        """UTC offset (seconds) in force at each UTC instant."""
        if utc.size == 0:
            return np.zeros(0, dtype=np.int64)
        table, base = self._table(utc, local=False)
        return table[(utc - base) // SLOT]

    def to_local(self, utc: np.ndarray) -> np.ndarray:
        """UTC epoch seconds -> local wall-clock seconds since 1970-01-01T00:00 local."""
        return utc + self.offsets_utc(utc)

    def to_utc(self, local: np.ndarray) -> np.ndarray:
        """Local wall-clock seconds -> UTC epoch seconds (fold=0, see module docstring)."""
        if local.size == 0:
            return np.zeros(0, dtype=np.int64)
        table, base = self._table(local, local=True)
        return local - table[(local - base) // SLOT]

    def transitions(self, utc_lo: int, utc_hi: int) -> np.ndarray:
        """Sorted UTC instants in [utc_lo, utc_hi] where the offset changes."""
        d0 = utc_lo // 86400
        d1 = utc_hi // 86400 + 1
        table = np.concatenate([self._utc_day(d) for d in range(d0, d1 + 1)])
        ch = np.flatnonzero(table[1:] != table[:-1]) + 1
        t = d0 * 86400 + ch * SLOT
        return t[(t >= utc_lo) & (t <= utc_hi)].astype(np.int64)
