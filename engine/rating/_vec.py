"""Vectorised parsing helpers over the raw buffers of Arrow binary/string arrays (numpy only).

Digits are parsed 8 at a time ("SWAR"): the 8 bytes at a position are gathered as one uint64,
checked to be ASCII digits and folded into an integer with three multiply-shift steps.  No
Python loop runs per row; every function returns a validity mask instead of raising, so a bad
row is a reject, never a crash.  No money is handled here (integers only, no rounding).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

U64 = np.uint64
_ONES = 0x0101010101010101
_ZEROS = U64(0x3030303030303030)
_F0 = U64(0xF0F0F0F0F0F0F0F0)
_SIX = U64(0x0606060606060606)
_THREES = U64(0x3333333333333333)
_M1 = U64(0x00FF00FF00FF00FF)
_M2 = U64(0x0000FFFF0000FFFF)
_M3 = U64(0x00000000FFFFFFFF)
#: LOWFILL[n]: ASCII '0' in the low 8-n bytes (the padding left of an n-digit right-aligned word)
LOWFILL = np.array([(0x3030303030303030 >> (8 * n)) if n < 8 else 0 for n in range(9)],
                   dtype=U64)
#: KEEP[n]: mask of the first n bytes of a little-endian word
KEEP = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=U64)
P10 = np.array([10**i for i in range(19)], dtype=np.int64)


@dataclass
class Strings:
    """Raw view of an Arrow binary/string array: ``data`` is padded by 32 zero bytes so that an
    8-byte gather at any start is in bounds; row i is ``data[start[i]:start[i]+length[i]]``."""

    data: np.ndarray  # uint8
    start: np.ndarray  # int64
    length: np.ndarray  # int64
    present: np.ndarray  # bool: not null

    def __len__(self) -> int:
        return len(self.start)

    def words(self) -> np.ndarray:
        """Unaligned uint64 view: words()[p] = the 8 bytes data[p:p+8] (little-endian)."""
        n = len(self.data) - 8
        return np.ndarray(shape=(max(n, 0),), dtype="<u8", buffer=self.data, strides=(1,))

    def text(self, i: int) -> bytes:
        s = int(self.start[i])
        return bytes(self.data[s:s + int(self.length[i])])


def strings_of(arr: pa.Array | pa.ChunkedArray) -> Strings:
    """Zero-copy (except the 32-byte padding copy of the data) view of a binary/string array."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_binary(t):
        odt: type = np.int32
    elif pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        odt = np.int64
    else:
        raise TypeError(f"not a string/binary array: {t}")
    n = len(arr)
    bufs = arr.buffers()
    offsets: np.ndarray = np.frombuffer(bufs[1], dtype=odt)[arr.offset: arr.offset + n + 1] if n else \
        np.zeros(1, dtype=odt)
    lo = int(offsets[0]) if n else 0
    hi = int(offsets[-1]) if n else 0
    data = np.zeros(hi - lo + 32, dtype=np.uint8)
    if bufs[2] is not None and hi > lo:
        data[: hi - lo] = np.frombuffer(bufs[2], dtype=np.uint8)[lo:hi]
    start = offsets[:-1].astype(np.int64) - lo
    length = np.diff(offsets).astype(np.int64)
    if arr.null_count:
        present = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        length = np.where(present, length, 0)
    else:
        present = np.ones(n, dtype=bool)
    return Strings(data, start, length, present)


_SHIFT = np.array([8 * (8 - n) for n in range(9)], dtype=U64)


def swar8(word: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Value of the first ``n`` (0..8) bytes of each little-endian ``word`` read as decimal
    digits, and whether they all are ASCII digits.  Bytes past ``n`` are ignored."""
    w = word << _SHIFT[n]
    w |= LOWFILL[n]
    t = w + _SIX
    t &= _F0
    t >>= U64(4)
    u = w & _F0
    t |= u
    ok = t == _THREES
    w -= _ZEROS
    np.right_shift(w, U64(8), out=t)
    w *= U64(10)
    w += t
    w &= _M1
    np.right_shift(w, U64(16), out=t)
    w *= U64(100)
    w += t
    w &= _M2
    np.right_shift(w, U64(32), out=t)
    w *= U64(10000)
    w += t
    w &= _M3
    return w.view(np.int64), ok


def parse_digits(s: Strings, start: np.ndarray, length: np.ndarray,
                 words: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Integer value of ``length`` (1..16) ASCII digits at ``start``; ok False when a byte is
    not a digit or the length is out of 1..16 (value then meaningless)."""
    w = s.words() if words is None else words
    ln = np.clip(length, 0, 16)
    n_hi = np.minimum(ln, 8)
    v, ok = swar8(w[start], n_hi)
    long = ln > 8
    nlong = int(np.count_nonzero(long))
    if nlong > len(ln) // 2:
        n_lo = ln - n_hi
        v_lo, ok_lo = swar8(w[start + 8], n_lo)
        v *= P10[n_lo]
        v += v_lo
        ok &= ok_lo
    elif nlong:
        idx = np.flatnonzero(long)
        n_lo = ln[idx] - 8
        v_lo, ok_lo = swar8(w[start[idx] + 8], n_lo)
        v[idx] = v[idx] * P10[n_lo] + v_lo
        ok[idx] &= ok_lo
    ok &= length >= 1
    ok &= length <= 16
    return v, ok


def parse_ints(s: Strings, allow_negative: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Parse a column of decimal integers (optional leading '-', at most 16 digits).
    Returns (values int64, ok).  Empty, null or malformed cells have ok False."""
    w = s.words()
    start = s.start
    length = s.length
    neg = np.zeros(len(start), dtype=bool)
    if allow_negative:
        first = s.data[np.minimum(start, len(s.data) - 1)]
        neg = (first == 45) & (length > 0)
        start = start + neg
        length = length - neg
    v, ok = parse_digits(s, start, length, w)
    ok &= s.present
    if allow_negative:
        v = np.where(neg, -v, v)
    return v, ok


# ------------------------------------------------------------------------------ timestamps
_DAYS_BEFORE = np.array([0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334], dtype=np.int64)
_MDAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (vectorised, Hinnant's algorithm)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_local_timestamps(s: Strings) -> tuple[np.ndarray, np.ndarray]:
    """Parse ``YYYY-MM-DDTHH:MM:SS`` or ``YYYY-MM-DD HH:MM:SS`` (exactly 19 bytes, no offset)
    into *wall-clock* seconds since 1970-01-01T00:00 (no time zone applied).

    Returns (seconds int64, ok).  Rows of another shape (offsets, fractions, garbage) have ok
    False; the caller may retry them with a slower general parser."""
    n = len(s)
    ok = (s.length == 19) & s.present
    idx = np.flatnonzero(ok) if not ok.all() else None
    secs = np.zeros(n, dtype=np.int64)
    k = n if idx is None else idx.size
    if k == 0:
        return secs, ok
    st = s.start if idx is None else s.start[idx]
    # fast path: contiguous fixed-width values -> zero-copy (k, 19) matrix
    if k == 1 or bool((st[1:] - st[:-1] == 19).all()):
        m = s.data[st[0]: st[0] + 19 * k].reshape(k, 19)
    else:
        w = s.words()
        m = np.stack([w[st], w[st + 8], w[st + 16]], axis=1).view(np.uint8)[:, :19]
    good = np.ones(k, dtype=bool)

    def d(c: int) -> np.ndarray:
        x = m[:, c] - np.uint8(48)
        np.logical_and(good, x <= 9, out=good)
        return x

    def num2(c: int) -> np.ndarray:
        return d(c).astype(np.int32) * 10 + d(c + 1)

    y = num2(0) * 100 + num2(2)
    mo = num2(5)
    dd = num2(8)
    hh = num2(11)
    mi = num2(14)
    ss = num2(17)
    good &= (m[:, 4] == 45) & (m[:, 7] == 45) & (m[:, 13] == 58) & (m[:, 16] == 58)
    good &= (m[:, 10] == 84) | (m[:, 10] == 32)
    good &= (mo >= 1) & (mo <= 12) & (y >= 1) & (dd >= 1) & (hh <= 23) & (mi <= 59) & (ss <= 59)
    y = np.where(good, y, 1970)
    mo = np.where(good, mo, 1)
    # days of the first of each (year, month) through a small table over the years present
    y0 = int(y.min())
    y1 = int(y.max())
    yy = np.repeat(np.arange(y0, y1 + 1, dtype=np.int64), 12)
    mm = np.tile(np.arange(1, 13, dtype=np.int64), y1 - y0 + 1)
    first = days_from_civil(yy, mm, np.ones_like(yy))
    leap = ((yy % 4 == 0) & (yy % 100 != 0)) | (yy % 400 == 0)
    mlen = _MDAYS[mm] + ((mm == 2) & leap)
    ym = (y - y0) * 12 + (mo - 1)
    good &= dd <= mlen[ym]
    t = (first[ym] + (dd - 1)) * 86400 + (hh * 3600 + mi * 60 + ss)
    if idx is None:
        secs = t
        ok = good
    else:
        secs[idx] = t
        ok[idx] = good
    return secs, ok
