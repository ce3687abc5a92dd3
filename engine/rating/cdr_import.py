"""Streaming import and rating of usage CSVs (CDRs) of any size.

Contract: every data line of the file is accounted for exactly once, as

* **rated** (handed to the kernel; its status is then rated / unrouted / unanswered / dropped),
* **rejected** with a reason (written to the quarantine CSV with its line number and original
  text), or
* **duplicate** (same record id as an earlier line; without a record id column, same line id,
  start, called number and duration), also written to the quarantine CSV,

so that ``read == rated + rejected + duplicates`` always holds (:meth:`ImportReport.reconciles`).
Blank lines are not records.  Records must be one per physical line (quoted values may hold
commas, not newlines: a switch never writes those).

Reasons: wrong column count / unparsable CSV line, not UTF-8, empty or bad line id, bad start
time, empty or bad duration, negative duration, duration over 24 h, invalid called number
(see :mod:`engine.rating.numbers`), bad record id.  Never a crash on a malformed line.

Streaming: the file is cut in blocks of about ``block_size`` bytes (2 MB single-threaded, 1 MB
in worker processes, 4 MB in worker threads): a block holds the lines that start in its byte
range, so every path cuts the same blocks.  Each block is parsed by ``pyarrow.csv.read_csv``:
first with the integer and timestamp columns converted by Arrow when the block is plain (no
quote, space, tab or "x"), else, or when that conversion fails, with every needed column as
binary (so no conversion can fail inside Arrow), then converted and validated with vectorised
numpy and Arrow casts (:mod:`engine.rating._vec`; integers use Arrow's cast when a whole column
is clean, else a numpy digit parser that gives a verdict per row).  Lines with a wrong column
count are skipped by Arrow's invalid-row handler, which reports their line numbers; a block
where Arrow raises or whose row count differs from its line count (an unterminated quote that
swallowed lines, a malformed line that is not UTF-8) is re-parsed line by line with the ``csv``
module, so that each line gets its own verdict.

With ``threads > 1`` and a plan without allowance or fair use, ``threads`` forked worker
processes read, parse, convert and rate blocks and send back a few integer arrays per record
(line id, duplicate key, start, zone, status, billed seconds, amounts) plus the rejected lines
with their text; the caller's process numbers the lines, deduplicates (exactly, across the whole
file), quarantines and aggregates them in file order, at most ``2 * threads + 1`` blocks ahead.
With allowances or fair use (consumed in order by the caller's thread) worker threads parse and
convert blocks instead, at most ``threads + 1`` in flight.  Memory is bounded by the blocks in
flight plus the per-group aggregation state plus the duplicate-detection set: integer record
ids use a bitmap over their range (1 bit per id: 20M ids = 2.5 MB), other keys (text ids, or
line/start/number/duration without ids) an open-addressing table of 64-bit hashes (11-21 bytes
per distinct record: it grows with the file, 67 MB for 5M records; a 64-bit hash collision
would flag a false duplicate, probability about n^2 / 2^65, 1e-6 for 5M records, and the
quarantine file would show it).

Timestamps without an offset are local wall-clock times in the plan's time zone (see
:mod:`engine.rating.localtime` for the DST rules); ISO 8601 with ``Z`` or ``+hh:mm`` is accepted.
No money is computed here: amounts come from :mod:`engine.rating.kernel` (rounding there).
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
import resource
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Literal, TextIO, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from dsl.exact import Fraction
from engine.rating._vec import KEEP, Strings, parse_ints, parse_local_timestamps, strings_of
from engine.rating.kernel import InvoiceAccumulator, InvoiceLines, RatedBatch, Rater
from engine.rating.localtime import TzTable
from engine.rating.numbers import NormalisedNumbers, normalise_strings
from engine.rating.plan import STATUS_NAMES, RatingPlan

IdKind = Literal["int", "text"]
_T = TypeVar("_T")
_U = TypeVar("_U")
MAX_DURATION_S = 86400


@dataclass(frozen=True)
class UsageLayout:
    """Declared column mapping of a usage CSV.

    ``columns`` None: the first line is a header naming the columns.  Otherwise the file has no
    header and these are the column names, the last ``optional_trailing`` of which may be absent
    (the count is read from the first line).  ``disposition``: optional column whose value must
    be in ``answered_values`` for the call to count as answered."""

    name: str
    line_id: str
    start_time: str
    callee: str
    duration: str
    record_id: str | None = None
    record_id_kind: IdKind = "text"
    line_id_kind: IdKind = "text"
    disposition: str | None = None
    answered_values: frozenset[str] = frozenset({"ANSWERED"})
    columns: tuple[str, ...] | None = None
    optional_trailing: int = 0


#: the data-set ``usage`` file (docs/dataset.md): record_id,line_id,product,start_time,quantity,
#: destination
GENERIC_LAYOUT = UsageLayout(name="generic", record_id="record_id", line_id="line_id",
                             start_time="start_time", callee="destination", duration="quantity")
#: the benchmark kit's cdrs.csv
KIT_LAYOUT = UsageLayout(name="kit", record_id="call_id", record_id_kind="int",
                         line_id="line_id", line_id_kind="int", start_time="start_time",
                         callee="callee", duration="duration_s")
#: Asterisk cdr-csv Master.csv (no header; uniqueid and userfield optional); the line is the
#: accountcode (use dataclasses.replace(ASTERISK_LAYOUT, line_id="src") to bill per caller)
ASTERISK_LAYOUT = UsageLayout(
    name="asterisk", line_id="accountcode", start_time="start", callee="dst",
    duration="billsec", record_id="uniqueid", disposition="disposition",
    columns=("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
             "lastdata", "start", "answer", "end", "duration", "billsec", "disposition",
             "amaflags", "uniqueid", "userfield"),
    optional_trailing=2)

LAYOUTS = {"generic": GENERIC_LAYOUT, "kit": KIT_LAYOUT, "asterisk": ASTERISK_LAYOUT}

# reject reasons (code -> text); 0 = accepted
R_OK, R_CSV, R_UTF8, R_LINE_EMPTY, R_LINE_BAD, R_START, R_DUR_EMPTY, R_DUR_BAD, R_DUR_NEG, \
    R_DUR_HUGE, R_NUMBER, R_ID = range(12)
REASONS = ("", "wrong column count or unparsable line", "not UTF-8", "empty line id",
           "bad line id", "bad start time", "empty duration", "bad duration", "negative duration",
           "duration over 24 h", "invalid called number", "bad record id")


@dataclass
class ImportReport:
    file: str
    read: int = 0
    rated: int = 0
    rejected: int = 0
    duplicates: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    slow_blocks: int = 0
    #: rated records starting before the latest start of an earlier block: allowances and fair
    #: use are consumed block by block, so they are exact (chronological) only when this is 0
    out_of_order: int = 0

    def reconciles(self) -> bool:
        return self.read == self.rated + self.rejected + self.duplicates and \
            self.rated == sum(self.by_status.values()) and \
            self.rejected == sum(self.by_reason.values())

    def __str__(self) -> str:
        s = (f"{self.file}: read {self.read} = rated {self.rated} + rejected {self.rejected} "
             f"+ duplicates {self.duplicates}")
        if self.by_status:
            s += " | rated: " + ", ".join(f"{k} {v}" for k, v in sorted(self.by_status.items()))
        if self.by_reason:
            s += " | rejected: " + ", ".join(f"{k} {v}" for k, v in sorted(self.by_reason.items()))
        if self.out_of_order:
            s += f" | {self.out_of_order} out of time order across blocks"
        return s + (" | reconciled" if self.reconciles() else " | NOT RECONCILED")


@dataclass
class ImportResult:
    report: ImportReport
    lines: InvoiceLines
    line_ids: list[object]  # dense line index -> line id (int or str)
    zone_names: tuple[str, ...]

    def to_arrow(self) -> pa.Table:
        """Invoice lines as an Arrow table (lines in order of first appearance): line_id, zone,
        calls, billed_s, then amount_micro and cost_micro (int64) with per-call rounding, or
        amount_60ths and cost_60ths without."""
        li = self.lines
        ids = pa.array(self.line_ids).take(pa.array(li.line)) if len(li.line) else \
            pa.array([], type=pa.int64())
        zones = pa.array(self.zone_names, type=pa.string()).take(pa.array(li.zone))
        unit = "micro" if li.den == 1 else "60ths"
        return pa.table({"line_id": ids, "zone": zones, "calls": li.calls,
                         "billed_s": li.billed_s, f"amount_{unit}": li.amount,
                         f"cost_{unit}": li.cost})

    def invoice_rows(self) -> list[tuple[object, str, int, int, int | Fraction,
                                         int | Fraction]]:
        """(line_id, zone, calls, billed_s, amount_micro, cost_micro) sorted by line id then
        zone; amounts are int micro, or Fraction micro without per-call rounding."""
        out = []
        for i in range(len(self.lines.line)):
            out.append((self.line_ids[int(self.lines.line[i])],
                        self.zone_names[int(self.lines.zone[i])], int(self.lines.calls[i]),
                        int(self.lines.billed_s[i]), self.lines.amount_micro(i),
                        self.lines.cost_micro(i)))
        out.sort(key=lambda r: (r[0], r[1]))
        return out


# ------------------------------------------------------------------------------ block reading
@dataclass
class _Block:
    raw: bytes | bytearray  # the block's bytes (whole lines)
    first_line: int  # 1: line numbers in a block are relative until the consumer
    table: pa.Table | None  # fast path: one row per line except the ``invalid`` ones, in order
    slow_rows: list[tuple[int, list[bytes] | None, str, str]] | None = None
    # slow path: (line, fields or None, error, original text) per non-empty line
    nlines: int = 0  # physical lines in raw
    invalid: list[tuple[int, str, str]] = field(default_factory=list)
    # fast path: (line, error, original text) of the lines Arrow skipped (wrong column count)
    _nl: np.ndarray | None = None

    def newlines(self) -> np.ndarray:
        """Offsets of the "\n" bytes of the block (computed once)."""
        if self._nl is None:
            self._nl = np.flatnonzero(np.frombuffer(self.raw, dtype=np.uint8) == 10)
        return self._nl

    def line_index(self) -> tuple[np.ndarray, np.ndarray]:
        """(physical line numbers, start offsets) of every line of the block (a fast-path
        block has exactly one table row per line, empty lines included)."""
        starts = np.concatenate([[0], self.newlines() + 1])
        if self.raw.endswith(b"\n"):
            starts = starts[:-1]
        return np.arange(starts.size, dtype=np.int64) + self.first_line, starts

    def empty_lines(self, starts: np.ndarray) -> np.ndarray:
        """Whether the lines starting at ``starts`` are empty (or hold only "\r")."""
        nl = self.newlines()
        size = len(self.raw)
        ends = np.append(nl, size)
        end = ends[np.searchsorted(nl, starts)]  # the newline ending each line (or the end)
        ln = end - starts
        buf = np.frombuffer(self.raw, dtype=np.uint8)
        cr = (ln == 1) & (buf[np.minimum(starts, max(size - 1, 0))] == 13)
        return (ln == 0) | cr

    def line_text(self, start: int) -> bytes:
        end = self.raw.find(b"\n", start)
        return bytes(self.raw[start: end if end >= 0 else len(self.raw)]).rstrip(b"\r")


class _BlockReader:
    def __init__(self, path: str, names: list[str], include: list[str], skip_header: bool,
                 block_size: int, use_threads: bool,
                 typed: Mapping[str, pa.DataType] | None = None) -> None:
        self.path = path
        self.names = names
        self.include = include
        self.skip_header = skip_header
        self.block_size = block_size
        self.use_threads = use_threads
        #: columns that Arrow may convert while parsing (int64, timestamp[s]) in a plain block
        self.typed = dict(typed or {})

    def ranges(self) -> list[tuple[int, int, int]]:
        """(lo, hi, first) per block: the block holds the lines that start in [lo, hi) (see
        :func:`_read_lines`; ``first`` is the offset of the first data line)."""
        with open(self.path, "rb") as f:
            first = len(f.readline()) if self.skip_header else 0
            size = f.seek(0, os.SEEK_END)
        return [(lo, min(lo + self.block_size, size), first)
                for lo in range(first, size, self.block_size)]

    def raw_blocks(self) -> Iterator[bytes | bytearray]:
        """Blocks of whole lines (the header line skipped), cut as the worker processes cut
        them (:meth:`ranges`), so that every path sees the same blocks.  Line numbers are
        block-relative until the consumer, which knows how many lines the blocks before
        held, adds them."""
        if not os.path.isfile(self.path):  # a pipe: read it as a stream
            yield from self._stream_blocks()
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for task in self.ranges():
                raw = _read_lines(fd, *task)[1]
                if raw:
                    yield raw
        finally:
            os.close(fd)

    def _stream_blocks(self) -> Iterator[bytearray]:
        """Blocks of whole lines of a file that cannot be read by position, each read
        straight into its own buffer."""
        with open(self.path, "rb") as f:
            if self.skip_header:
                f.readline()
            rest = b""
            while True:
                buf = bytearray(len(rest) + self.block_size)
                buf[: len(rest)] = rest
                got = f.readinto(memoryview(buf)[len(rest):])
                if not got:
                    if rest:
                        yield bytearray(rest)
                    return
                del buf[len(rest) + got:]
                cut = buf.rfind(b"\n")
                if cut < 0:
                    rest = bytes(buf)
                    continue
                rest = bytes(buf[cut + 1:])
                del buf[cut + 1:]
                yield buf

    def blocks(self) -> Iterator[_Block]:
        for raw in self.raw_blocks():
            yield self.parse(raw)

    def parse(self, raw: bytes | bytearray) -> _Block:
        """Arrow parse of one block; the per-line slow path when Arrow meets a malformed line.
        Every physical line must come out as one row (empty lines included: Arrow is told not
        to skip them; they are dropped later), so rows != lines reveals lines swallowed by an
        unterminated quote; a block without any quote byte uses the faster tokenizer."""
        if not raw:  # no line starts in this range (a longer one belongs to an earlier block)
            empty = pa.table({n: pa.array([], type=pa.binary()) for n in self.include})
            return _Block(raw, 1, empty, nlines=0)
        quoted = raw.find(b'"') >= 0
        # without any quote, each line is a row or an invalid row: no need to count them
        nlines = raw.count(b"\n") + (not raw.endswith(b"\n")) if quoted else -1
        first_line = 1
        invalid: list[tuple[int | None, int, int, str]] = []

        def handler(row: pacsv.InvalidRow) -> str:
            invalid.append((row.number, row.expected_columns, row.actual_columns, row.text))
            return "skip"

        binary = {n: pa.binary() for n in self.names}
        attempts = [binary]
        # Typed attempt first: Arrow converts the integer and timestamp columns while parsing
        # (measured: 119 ns/row against 164 for the binary parse + casts).  Its number
        # decoder also trims spaces and tabs and, like the cast, takes "0x1f": a block with
        # any such byte (or a quote) keeps the binary path, where the conversion gives those
        # a verdict per row.  Otherwise both accept the same values with the same result (a
        # test checks it), and a block that fails to convert is parsed again as binary.
        if self.typed and not quoted and not any(raw.find(c) >= 0 for c in _NOT_PLAIN):
            attempts.insert(0, {**binary, **self.typed})
        if quoted:
            popts = pacsv.ParseOptions(invalid_row_handler=handler, ignore_empty_lines=False)
        else:  # no quote byte in the block: the faster tokenizer without quoting
            popts = pacsv.ParseOptions(invalid_row_handler=handler, ignore_empty_lines=False,
                                       quote_char=False, double_quote=False)
        for types in attempts:
            # Arrow reports the line number of an invalid row only when parsing
            # single-threaded: a block with invalid rows is parsed again that way
            for use_threads in ((True, False) if self.use_threads else (False,)):
                invalid.clear()
                try:
                    t = pacsv.read_csv(
                        pa.BufferReader(raw),
                        read_options=pacsv.ReadOptions(column_names=self.names,
                                                       use_threads=use_threads,
                                                       block_size=max(len(raw), 1 << 16)),
                        parse_options=popts,
                        convert_options=pacsv.ConvertOptions(
                            column_types=types, include_columns=self.include,
                            strings_can_be_null=False, quoted_strings_can_be_null=False,
                            null_values=[]))
                except (pa.ArrowInvalid, UnicodeDecodeError, pa.ArrowException):
                    break
                n_lines = nlines if nlines >= 0 else t.num_rows + len(invalid)
                if t.num_rows + len(invalid) != n_lines:
                    break  # lines swallowed by a quote: the slow path
                if all(x[0] for x in invalid):
                    return _Block(raw, first_line, t, nlines=n_lines, invalid=[
                        (first_line + int(num or 0) - 1,
                         f"{REASONS[R_CSV]}: expected {exp} columns, got {act}", text)
                        for num, exp, act, text in invalid])
            if types is binary:
                break
        nlines = raw.count(b"\n") + (not raw.endswith(b"\n"))
        return _Block(raw, first_line, None, self._slow(raw, first_line), nlines=nlines)

    def _slow(self, raw: bytes | bytearray, first_line: int
              ) -> list[tuple[int, list[bytes] | None, str, str]]:
        out: list[tuple[int, list[bytes] | None, str, str]] = []
        for i, piece in enumerate(bytes(raw).split(b"\n")):
            line = piece.rstrip(b"\r")
            if not line:
                continue
            n = first_line + i
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                out.append((n, None, REASONS[R_UTF8], line.decode("utf-8", "backslashreplace")))
                continue
            try:
                rows = list(csv.reader([text], strict=True))
            except csv.Error as e:
                out.append((n, None, f"{REASONS[R_CSV]}: {e}", text))
                continue
            if len(rows) != 1 or len(rows[0]) != len(self.names):
                got = len(rows[0]) if rows else 0
                out.append((n, None, f"{REASONS[R_CSV]}: expected {len(self.names)} columns, "
                                     f"got {got}", text))
                continue
            out.append((n, [v.encode() for v in rows[0]], "", text))
        return out


_NOT_PLAIN = (b" ", b"\t", b"x", b"X")


def _pipelined(items: Iterator[_T], fn: Callable[[_T], _U], workers: int,
               window: int) -> Iterator[_U]:
    """``map(fn, items)`` on a thread pool, in order, with at most ``window`` items in flight
    (bounded memory).  The workers run Arrow and numpy code, which release the GIL."""
    with ThreadPoolExecutor(max_workers=workers) as ex:
        pending: deque[Future[_U]] = deque()
        try:
            for x in items:
                pending.append(ex.submit(fn, x))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


def _next_line(fd: int, pos: int) -> int:
    """Offset just after the first newline at or after ``pos`` (the file size when none)."""
    step = 4096
    while True:
        chunk = os.pread(fd, step, pos)
        if not chunk:
            return pos
        i = chunk.find(b"\n")
        if i >= 0:
            return pos + i + 1
        pos += len(chunk)
        step = min(step * 4, 1 << 22)


def _read_lines(fd: int, lo: int, hi: int, first: int) -> tuple[int, bytes]:
    """(offset, bytes) of the whole lines that start in [lo, hi) (``first``: offset of the
    first data line).  Consecutive ranges give consecutive blocks, every line in exactly one,
    so worker processes read their own blocks from the file by nominal range, with no pass
    over the file in the caller's process."""
    begin = lo if lo <= first else _next_line(fd, lo - 1)
    if begin >= hi:  # a line longer than the range: it belongs to an earlier block
        return begin, b""
    end = _next_line(fd, hi - 1)
    return begin, os.pread(fd, end - begin, begin)


# ------------------------------------------------------------------------------ duplicates
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def _mix(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(30))
    h = h * _C1
    h = h ^ (h >> np.uint64(27))
    h = h * _C2
    return h ^ (h >> np.uint64(31))


def hash_strings(s: Strings) -> np.ndarray:
    """64-bit hash of each value's bytes (splitmix-style over 8-byte words, then its length)."""
    w = s.words()
    h = np.full(len(s), 0x12345678, dtype=np.uint64)
    maxlen = int(s.length.max()) if len(s) else 0
    for j in range(0, maxlen, 8):
        n = np.clip(s.length - j, 0, 8)
        word = w[np.minimum(s.start + j, len(w) - 1)]
        h = _mix(h ^ (word & KEEP[n]) + _GOLD)
    return _mix(h ^ s.length.astype(np.uint64))


def hash_columns(cols: list[np.ndarray]) -> np.ndarray:
    h = np.full(len(cols[0]) if cols else 0, 0x2545F491, dtype=np.uint64)
    for c in cols:
        h = _mix(h ^ (c.astype(np.int64).view(np.uint64) + _GOLD))
    return h


def _with_line(h: np.ndarray, li: np.ndarray) -> np.ndarray:
    """Duplicate key of records without a record id: ``hash_columns`` of (start, number,
    duration) with the dense line index mixed in last, as int64.  The line index is only known
    to the consumer (it numbers lines in file order), the rest is hashed by whoever converts
    the block (a worker process, possibly)."""
    return _mix(h ^ (li.astype(np.int64).view(np.uint64) + _GOLD)).view(np.int64)


class _HashSet64:
    """Open-addressing (linear probing) hash set of 64-bit keys, vectorised per batch:
    8 bytes per slot, load factor at most 3/4, so 11-21 bytes per distinct key."""

    def __init__(self) -> None:
        self.table = np.zeros(1 << 16, dtype=np.uint64)
        self.n = 0

    @property
    def nbytes(self) -> int:
        return self.table.nbytes

    def insert_unique(self, keys: np.ndarray) -> np.ndarray:
        """Insert distinct nonzero uint64 keys; True where a key was already present."""
        if (self.n + keys.size) * 4 > self.table.size * 3:
            old = self.table[self.table != 0]
            size = self.table.size
            while (self.n + keys.size) * 4 > size * 3:
                size *= 2
            self.table = np.zeros(size, dtype=np.uint64)
            self.n = 0
            self._probe(old)
        return self._probe(keys)

    def _probe(self, keys: np.ndarray) -> np.ndarray:
        table = self.table
        mask = np.uint64(table.size - 1)
        seen = np.zeros(keys.size, dtype=bool)
        pend = np.arange(keys.size)
        slot = (_mix(keys) & mask).astype(np.int64)
        k = keys
        while pend.size:
            cur = table[slot]
            hit = cur == k
            seen[pend[hit]] = True
            empty = cur == 0
            if empty.any():  # claim empty slots; one key wins each slot (keys are distinct)
                es, ek = slot[empty], k[empty]
                table[es] = ek
                won = np.zeros(pend.size, dtype=bool)
                won[np.flatnonzero(empty)[table[es] == ek]] = True
                self.n += int(won.sum())
            else:
                won = hit  # nothing inserted this round
            done = hit | won
            advance = ~done & ~empty  # slot holds another key: probe the next one
            slot = np.where(advance, (slot + 1) & (table.size - 1), slot)
            keep = ~done
            pend, slot, k = pend[keep], slot[keep], k[keep]
        return seen


class SeenSet:
    """Set of int64 keys: a bitmap over the key range while it spans at most 2^30 values
    (1 bit per possible id), else a hash set of the keys (:class:`_HashSet64`)."""

    BITMAP_MAX = 1 << 30

    def __init__(self) -> None:
        self.base: int | None = None
        self.bits = np.zeros(0, dtype=np.uint8)
        self.hashed: _HashSet64 | None = None

    @property
    def nbytes(self) -> int:
        return self.hashed.nbytes if self.hashed is not None else self.bits.nbytes

    def _to_hash(self) -> None:
        self.hashed = _HashSet64()
        if self.base is not None:
            ids = np.flatnonzero(np.unpackbits(self.bits, bitorder="little")).astype(np.int64)
            if ids.size:
                self.hashed.insert_unique(_nonzero(ids + self.base))
        self.bits = np.zeros(0, dtype=np.uint8)

    def add_batch(self, keys: np.ndarray) -> np.ndarray:
        """Insert keys in order; returns True where a key was seen before (in an earlier batch
        or earlier in this one)."""
        n = keys.size
        if n == 0:
            return np.zeros(0, dtype=bool)
        keys = keys.astype(np.int64, copy=False)
        if self.hashed is None:
            lo, hi = int(keys.min()), int(keys.max())
            base = lo if self.base is None else min(self.base, lo)
            top = hi if self.base is None else max(self.base + self.bits.size * 8 - 1, hi)
            if top - base + 1 > self.BITMAP_MAX:
                self._to_hash()
            else:
                return self._bitmap_add(keys, lo, hi, base, top)
        assert self.hashed is not None
        u, first, inv = np.unique(keys, return_index=True, return_inverse=True)
        dup_in = np.ones(n, dtype=bool)
        dup_in[first] = False
        return self.hashed.insert_unique(_nonzero(u))[inv] | dup_in

    def _bitmap_add(self, keys: np.ndarray, lo: int, hi: int, base: int, top: int
                    ) -> np.ndarray:
        n = keys.size
        if self.base is None or base < self.base or top >= self.base + self.bits.size * 8:
            nbytes = (top - base) // 8 + 1
            nbytes = max(nbytes, min(2 * self.bits.size, self.BITMAP_MAX // 8))
            bits = np.zeros(nbytes, dtype=np.uint8)
            if self.base is not None:
                sh = self.base - base  # keep old bytes aligned: shift by whole bytes
                if sh % 8:
                    base -= 8 - sh % 8
                    bits = np.zeros(nbytes + 1, dtype=np.uint8)
                    sh = self.base - base
                bits[sh // 8: sh // 8 + self.bits.size] = self.bits
            self.bits, self.base = bits, base
        off = keys - self.base
        span = hi - lo + 1
        increasing = n == 1 or bool((keys[1:] > keys[:-1]).all())
        if increasing and span <= 8 * n:
            # the usual case (ids in file order): set the bits a byte range at a time
            b0 = (lo - self.base) >> 3
            b1 = (hi - self.base) >> 3
            flags = np.zeros((b1 - b0 + 1) * 8, dtype=bool)
            flags[off - b0 * 8] = True
            packed = np.packbits(flags, bitorder="little")
            window = self.bits[b0: b1 + 1]
            seen_bytes = window & packed
            if seen_bytes.any():
                hit = np.unpackbits(seen_bytes, bitorder="little").astype(bool)
                seen = hit[off - b0 * 8]
            else:
                seen = np.zeros(n, dtype=bool)
            window |= packed
            return seen
        byte = off >> 3
        bit = np.uint8(1) << (off & 7).astype(np.uint8)
        seen = (self.bits[byte] & bit) != 0
        # first occurrence within the batch
        if increasing:
            dup_in = np.zeros(n, dtype=bool)
        elif span <= 4 * n + 1024:
            first = np.full(span, n, dtype=np.int64)
            np.minimum.at(first, keys - lo, np.arange(n))
            dup_in = first[keys - lo] != np.arange(n)
        else:
            _, fi = np.unique(keys, return_index=True)
            dup_in = np.ones(n, dtype=bool)
            dup_in[fi] = False
        np.bitwise_or.at(self.bits, byte, bit)
        return seen | dup_in


def _nonzero(keys: np.ndarray) -> np.ndarray:
    """uint64 view with 0 mapped to 1 (0 marks an empty slot; ids 0 and 1, or two hashes 0
    and 1, would then collide: probability 2^-63 for hashes)."""
    u = keys.astype(np.int64, copy=False).view(np.uint64)
    return np.where(u == 0, np.uint64(1), u)


# ------------------------------------------------------------------------------ line ids
class _Lines:
    """External line id -> dense index (ints through a dense table, text through a dict)."""

    def __init__(self, kind: IdKind) -> None:
        self.kind = kind
        self.ids: list[object] = []
        self.index: dict[object, int] = {}
        self.table = np.full(0, -1, dtype=np.int64)

    def encode_ints(self, v: np.ndarray) -> np.ndarray:
        if v.size == 0:
            return v
        if int(v.min()) >= 0 and int(v.max()) < (1 << 26):
            top = int(v.max()) + 1
            if top > self.table.size:
                t = np.full(max(top, 2 * self.table.size), -1, dtype=np.int64)
                t[: self.table.size] = self.table
                self.table = t
            out = self.table[v]
            miss = out < 0
            if miss.any():
                for x in np.unique(v[miss]).tolist():
                    self._new(x)
                    self.table[x] = self.index[x]
                out = self.table[v]
            return out
        u, inv = np.unique(v, return_inverse=True)
        m = np.array([self._get(x) for x in u.tolist()], dtype=np.int64)
        return m[inv]

    def encode_text(self, arr: pa.Array) -> np.ndarray:
        codes, values = _dictionary(arr)
        return self.encode_codes(codes, values)

    def encode_codes(self, codes: np.ndarray, values: list[object]) -> np.ndarray:
        """Dense indices of ``values[codes]`` (a block's own dictionary of text ids)."""
        m = np.array([self._get(x) for x in values], dtype=np.int64)
        return m[codes] if m.size else np.zeros(codes.size, dtype=np.int64)

    def _get(self, x: object) -> int:
        i = self.index.get(x)
        if i is None:
            i = self._new(x)
        return i

    def _new(self, x: object) -> int:
        i = self.index[x] = len(self.ids)
        self.ids.append(x)
        return i


def _dictionary(arr: pa.Array) -> tuple[np.ndarray, list[object]]:
    """(codes, distinct values) of a binary column of text ids (UTF-8: checked before)."""
    d = pc.dictionary_encode(arr)
    values = [x.decode("utf-8") if isinstance(x, bytes) else x for x in d.dictionary.to_pylist()]
    return d.indices.to_numpy(zero_copy_only=False), values


# ------------------------------------------------------------------------------ worker processes
@dataclass
class _Shipped:
    """A block parsed, converted and rated in a worker process (plans without allowance or fair
    use), reduced to what the caller's process needs to deduplicate, aggregate and quarantine:
    a few narrowed integer arrays per accepted row, pickled back to the caller.  No Arrow table
    and no block text travel: the text of a duplicate (rare) is read back from the file."""

    begin: int  # the block's byte range in the file
    end: int
    nlines: int  # physical lines of the block
    n: int  # rows that parsed as CSV lines
    read: int  # data lines: the rows and the unparsable lines
    slow: bool  # parsed line by line
    rejects: list[tuple[int, str, str]]  # (block line, reason, original text), quarantine order
    line_vals: np.ndarray | None  # int line ids of the accepted rows
    line_codes: np.ndarray | None  # text line ids: codes into line_dict (the block's own)
    line_dict: list[object] | None
    rows_line: np.ndarray | None  # block line of each accepted row (None: row i is line i + 1)
    texts: list[str] | None  # slow path: quarantine text of each accepted row
    key: np.ndarray | None  # duplicate key per accepted row (None: no deduplication)
    key_needs_line: bool  # key is the hash of start, number, duration: see _with_line
    start: np.ndarray
    zone: np.ndarray
    status: np.ndarray
    billed: np.ndarray
    price: np.ndarray
    cost: np.ndarray | None  # None: no cost deck
    cpu: tuple[float, float, float] = (0.0, 0.0, 0.0)  # float-ok: thread s: parse, convert + rate, ship
    pid: int = 0
    peak_rss_mb: float = 0.0  # float-ok: megabytes, not money


def _narrow(a: np.ndarray) -> np.ndarray:
    """int32 (or int16) copy of an int64 (int32) array whose values fit: less to pickle."""
    if a.size == 0 or a.dtype.itemsize <= 2:
        return a
    lo, hi = int(a.min()), int(a.max())
    for t in (np.int16, np.int32):
        if np.dtype(t).itemsize < a.dtype.itemsize and \
                np.iinfo(t).min <= lo and hi <= np.iinfo(t).max:
            return a.astype(t)
    return a


@dataclass
class _WorkerState:
    """What a worker process inherits through fork: the importer (compiled plan, rater, time
    zone table), the block reader, the import options and the block ranges."""

    importer: UsageImporter
    reader: _BlockReader
    names: list[str]
    dedupe: bool
    tasks: list[tuple[int, int, int]]  # (lo, hi, first data offset) per block


def _work_block(st: _WorkerState, fd: int, task: tuple[int, int, int]) -> _Shipped:
    """Worker-process side: read, parse, convert and rate the lines starting in [lo, hi)."""
    lo, hi, first = task
    t0 = time.thread_time()
    begin, raw = _read_lines(fd, lo, hi, first)
    blk = st.reader.parse(raw)
    t1 = time.thread_time()
    pb = st.importer._convert(blk, st.names)
    t2 = time.thread_time()
    sb = st.importer._ship(pb, begin, begin + len(raw), st.dedupe)
    sb.cpu = (t1 - t0, t2 - t1, time.thread_time() - t2)
    sb.pid = os.getpid()
    sb.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return sb


def _worker_loop(st: _WorkerState, out: Connection, sem: Any, next_block: Any) -> None:
    """A worker process: take the next block number (shared counter) once the caller has
    given a credit (bounded window), rate the block, send ``(number, _Shipped)`` on its own
    pipe; ``(number, error text)`` on failure."""
    fd = os.open(st.reader.path, os.O_RDONLY)
    k = -1
    try:
        while True:
            sem.acquire()
            with next_block.get_lock():
                k = next_block.value
                next_block.value += 1
            if k >= len(st.tasks):
                sem.release()  # let the other workers see the end too
                break
            out.send((k, _work_block(st, fd, st.tasks[k])))
    except BaseException:  # reported to the caller, which raises it
        import traceback
        out.send((k, traceback.format_exc()))
    finally:
        os.close(fd)
        out.close()


def _in_processes(state: _WorkerState, workers: int, window: int
                  ) -> Generator[_Shipped, None, None]:
    """The blocks of ``state.tasks`` rated by ``workers`` forked processes, yielded in file
    order, at most ``window`` blocks ahead of the caller (bounded memory).  Forked (not
    spawned) after the plan is compiled: the workers inherit it and start in milliseconds.
    Blocks are handed out dynamically (the next free worker takes the next block), results
    come back on one pipe per worker and are put in order here; no helper thread in the
    caller's process (a ``multiprocessing.Pool`` has three, which cost measurable CPU)."""
    ctx = multiprocessing.get_context("fork")
    sem = ctx.Semaphore(window)
    next_block = ctx.Value("q", 0)
    conns: list[Connection] = []
    procs = []
    try:
        for _ in range(min(workers, len(state.tasks))):
            r, w = ctx.Pipe(duplex=False)
            _grow_pipe(w)
            p = ctx.Process(target=_worker_loop, args=(state, w, sem, next_block),
                            daemon=True)
            p.start()
            w.close()  # the child has its end: EOF here when it exits
            conns.append(r)
            procs.append(p)
        ready: dict[int, _Shipped] = {}
        live = list(conns)
        for k in range(len(state.tasks)):
            while k not in ready:
                if not live:
                    raise RuntimeError("importer worker processes exited early")
                for c in wait(live):
                    assert isinstance(c, Connection)
                    try:
                        j, res = c.recv()
                    except EOFError:  # the worker has exited: normally, or killed mid-block
                        live.remove(c)
                        proc = procs[conns.index(c)]
                        proc.join(5)
                        if proc.exitcode != 0:
                            raise RuntimeError(
                                f"importer worker process {proc.pid} died (exit code "
                                f"{proc.exitcode}): out of memory or killed?") from None
                        continue
                    if isinstance(res, str):
                        raise RuntimeError(f"importer worker process failed:\n{res}")
                    ready[j] = res
            yield ready.pop(k)
            sem.release()
        for p in procs:
            p.join()
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join()
        for c in conns:
            c.close()


def _grow_pipe(conn: Connection) -> None:
    """A pipe that holds a whole block's results (Linux: 64 KB by default): a worker that
    finishes a block while the caller is busy aggregating goes on with the next block instead
    of waiting for the caller to read."""
    try:
        import fcntl

        fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
    except (ImportError, AttributeError, OSError):
        pass  # not Linux, or above /proc/sys/fs/pipe-max-size: smaller pipes only cost time


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


# ------------------------------------------------------------------------------ the importer
def _header(path: str, layout: UsageLayout) -> tuple[list[str], bool]:
    with open(path, "rb") as f:
        first = f.readline()
    text = first.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
    fields = next(csv.reader([text]), [])
    if layout.columns is None:
        return [h.strip() for h in fields], True
    n = len(fields)
    full = len(layout.columns)
    if full - layout.optional_trailing <= n <= full:
        return list(layout.columns[:n]), False
    return list(layout.columns), False


@dataclass
class _Parsed:
    """A block converted to arrays (done in the producer thread; no importer state used)."""

    blk: _Block
    n: int  # rows that parsed as CSV lines (fast path: every line of the block)
    bad: list[tuple[int, str, str]]  # (line number, reason, original text) of unparsable lines
    lines_no: np.ndarray | None  # physical line number per row (None: computed on demand)
    starts: np.ndarray | None  # fast path: byte offset of each row's line in blk.raw
    fields: list[list[bytes]] | None  # slow path: the fields of each row (for quarantine)
    reason: np.ndarray  # uint8 reject code per row, 0 = accepted
    line_vals: np.ndarray | None  # int line ids
    line_arr: pa.Array | None  # text line ids
    start: np.ndarray  # UTC epoch s
    dur: np.ndarray
    nums: NormalisedNumbers
    rid: np.ndarray | None
    rid_hash: np.ndarray | None
    answered: np.ndarray | None
    batch: RatedBatch | None = None  # rated in the worker (plans without allowance/fair use)


class UsageImporter:
    """Import + rate usage CSV files with one plan (allowance state carries across files).

    Allowances and fair use are consumed chronologically within each block (start time, then
    the integer record id, or file order for text ids) and block after block: exact for files
    in time order (``ImportReport.out_of_order == 0``), else in file order across blocks."""

    def __init__(self, plan: RatingPlan, layout: UsageLayout,
                 pools: Mapping[object, object] | None = None) -> None:
        self.plan = plan
        self.layout = layout
        self.rater = Rater(plan)
        self.lines = _Lines(layout.line_id_kind)
        self.pools = dict(pools or {})
        self.pool_index: dict[object, int] = {}
        self.pool_of_line = np.zeros(0, dtype=np.int64)
        self.acc = InvoiceAccumulator(len(self.rater.zone_names), self.rater.den)
        self.seen = SeenSet()
        self._tz = ZoneInfo(plan.bands.tz)
        self._tzt = TzTable(plan.bands.tz)  # used by the producer thread only
        self._stateless = not plan.allowances and plan.fair_use is None
        self._seq = 0
        self._line_offset = 0
        self._watermark: int | None = None
        #: CPU seconds per stage: parse, convert and rate_aggregate (the caller's thread) with
        #: one thread or worker threads; parse, convert_rate and ship (summed over the worker
        #: processes) and dedupe_aggregate (the caller's) with worker processes.  With several
        #: threads or processes they overlap in wall time
        self.timings: dict[str, float] = {}
        #: peak RSS of each worker process (pid -> MB), when blocks were rated in processes
        self.worker_peak_rss_mb: dict[int, float] = {}
        self._lock = threading.Lock()

    # -----------------------------------------------------------------------------------------
    def import_file(self, path: str | Path, quarantine: str | Path | TextIO | None = None,
                    block_size: int | None = None, threads: int | None = None,
                    dedupe: bool = True,
                    on_batch: Callable[[RatedBatch, np.ndarray], None] | None = None
                    ) -> ImportReport:
        """Stream one file.  ``quarantine``: path or text stream for rejected and duplicate
        lines (columns ``line,reason,original``); ``threads`` (default: ``OMP_NUM_THREADS``
        or all cores): 1 = everything on the caller's thread with single-threaded Arrow; more
        = that many worker processes (forked: POSIX, regular files, plans without allowance
        or fair use, no ``on_batch``), else worker threads;
        ``on_batch(rated_batch, physical_line_numbers)``: per-record results of each block.
        Raises ValueError only when the header lacks a column of the layout."""
        path = str(path)
        rep = ImportReport(file=os.path.basename(path))
        names, has_header = _header(path, self.layout)
        lay = self.layout
        needed = [lay.line_id, lay.start_time, lay.callee, lay.duration]
        missing = [c for c in needed + ([lay.disposition] if lay.disposition else [])
                   if c not in names]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)} for layout "
                             f"{lay.name!r} (columns: {', '.join(names)})")
        if lay.record_id and lay.record_id in names:
            needed.append(lay.record_id)
        if lay.disposition:
            needed.append(lay.disposition)
        if threads is None:
            threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or (os.cpu_count() or 1)
        # threads > 1 and a plan without allowance or fair use: ``threads`` forked worker
        # processes read, parse, convert and rate blocks, the caller's process deduplicates and
        # aggregates them in file order.  Threads only overlap where Arrow and numpy release
        # the GIL, and the numpy/Python glue between those calls kept two threads at 1.2-1.4
        # cores (5M rows: 1.17-1.37x DuckDB); processes run it truly in parallel.
        procs = threads > 1 and self._stateless and on_batch is None and _can_fork() and \
            os.path.isfile(path)
        if block_size is None:  # measured: smaller blocks stay in cache, larger ones mean
            # fewer GIL hand-offs between threads.  Worker processes: 1 MB, as blocks of 2 MB
            # and more made each worker map and unmap Arrow's buffers per block (220k page
            # faults and +0.2 s system time per 5M rows, against 10k)
            block_size = (1 << 20) if procs else (4 << 20) if threads > 1 else (2 << 20)
        # With allowances or fair use (rated in order by the caller's thread) or ``on_batch``,
        # ``threads`` worker threads parse and convert.  Arrow's own threads help their parse
        # (it runs without the GIL): measured 1.54 s against 1.67 s median for 5M rows
        typed: dict[str, pa.DataType] = {lay.duration: pa.int64(),
                                         lay.start_time: pa.timestamp("s")}
        if lay.line_id_kind == "int":
            typed[lay.line_id] = pa.int64()
        if lay.record_id and lay.record_id in names and lay.record_id_kind == "int":
            typed[lay.record_id] = pa.int64()
        reader = _BlockReader(path, names, needed, has_header, block_size,
                              threads > 1 and not procs, typed)

        def work(raw: bytes | bytearray) -> _Parsed:
            t0 = time.thread_time()
            blk = reader.parse(raw)
            t1 = time.thread_time()
            pb = self._convert(blk, names)
            t2 = time.thread_time()
            with self._lock:
                self.timings["parse"] = self.timings.get("parse", 0.0) + t1 - t0
                self.timings["convert"] = self.timings.get("convert", 0.0) + t2 - t1
            return pb

        parsed: Iterator[_Parsed] = iter(())
        shipped: Generator[_Shipped, None, None] | None = None
        fd: int | None = None
        if procs:
            tasks = reader.ranges()
            if tasks:
                # window: each worker busy with one block and one more queued, the caller
                # consuming one; results are a few arrays per row (~30 bytes), not the blocks
                shipped = _in_processes(_WorkerState(self, reader, names, dedupe, tasks),
                                        threads, 2 * threads + 1)
                fd = os.open(path, os.O_RDONLY)  # to read back the text of duplicates
        elif threads > 1:
            parsed = _pipelined(reader.raw_blocks(), work, threads, threads + 1)
        else:
            parsed = (work(x) for x in reader.raw_blocks())
        close_q = False
        qf: TextIO | None
        if quarantine is None:
            qf = None
        elif isinstance(quarantine, str | Path):
            qf = open(quarantine, "w", newline="", encoding="utf-8")  # noqa: SIM115
            close_q = True
        else:
            qf = quarantine
        qw = csv.writer(qf) if qf is not None else None
        if qw is not None:
            qw.writerow(["line", "reason", "original"])
        self._line_offset = 1 if has_header else 0
        tm = self.timings
        try:
            for pb in parsed:
                t0 = time.thread_time()
                self._consume(pb, rep, qw, dedupe, on_batch)
                tm["rate_aggregate"] = tm.get("rate_aggregate", 0.0) + time.thread_time() - t0
            for sb in shipped or ():
                t0 = time.thread_time()
                self._consume_shipped(sb, rep, qw, fd)
                tm["dedupe_aggregate"] = tm.get("dedupe_aggregate", 0.0) + \
                    time.thread_time() - t0
                for k, v in zip(("parse", "convert_rate", "ship"), sb.cpu, strict=True):
                    tm[k] = tm.get(k, 0.0) + v
                self.worker_peak_rss_mb[sb.pid] = max(sb.peak_rss_mb,
                                                      self.worker_peak_rss_mb.get(sb.pid, 0.0))
        finally:
            if shipped is not None:
                shipped.close()  # stops the worker processes if the loop ended early
            if fd is not None:
                os.close(fd)
            if close_q and qf is not None:
                qf.close()
        return rep

    def result(self, report: ImportReport) -> ImportResult:
        return ImportResult(report, self.acc.result(), self.lines.ids, self.rater.zone_names)

    # ----------------------------------------------------------------------- producer side
    def _convert(self, blk: _Block, names: list[str]) -> _Parsed:
        lay = self.layout
        bad: list[tuple[int, str, str]] = []
        fields: list[list[bytes]] | None = None
        lines_no: np.ndarray | None = None
        starts: np.ndarray | None = None
        if blk.table is not None:
            t = blk.table
            bad = list(blk.invalid)
            if bad:  # rows are the lines that Arrow did not skip
                skipped = np.array([ln - blk.first_line for ln, _, _ in bad], dtype=np.int64)
                keep_line = np.ones(blk.nlines, dtype=bool)
                keep_line[skipped] = False
                pos = np.flatnonzero(keep_line)
                all_lines, all_starts = blk.line_index()
                lines_no, starts = all_lines[pos], all_starts[pos]
            # empty lines came out as rows of empty values: they are not records
            c0 = t.column(0)
            # (a typed first column cannot hold an empty line: "" does not convert)
            if t.num_rows and pa.types.is_binary(c0.type) and \
                    pc.any(pc.equal(pc.binary_length(c0), 0)).as_py():
                if starts is None:
                    lines_no, starts = blk.line_index()
                assert lines_no is not None
                empty = blk.empty_lines(starts)
                if empty.any():
                    keep = ~empty
                    t = t.filter(pa.array(keep))
                    lines_no, starts = lines_no[keep], starts[keep]
            n = t.num_rows
            reason = np.zeros(n, dtype=np.uint8)
            if n and not blk.raw.isascii():
                if starts is None:
                    lines_no, starts = blk.line_index()
                high = np.flatnonzero(np.frombuffer(blk.raw, dtype=np.uint8) >= 0x80)
                rows = np.unique(np.searchsorted(starts, high, side="right") - 1)
                for i in rows[rows >= 0].tolist():
                    try:
                        blk.line_text(int(starts[i])).decode("utf-8")
                    except UnicodeDecodeError:
                        reason[i] = R_UTF8
            cols: dict[str, pa.Array] = {}
            for c in t.column_names:
                ch = t.column(c)
                cols[c] = ch.combine_chunks() if ch.num_chunks != 1 else ch.chunk(0)
        else:
            assert blk.slow_rows is not None
            good = [r for r in blk.slow_rows if r[1] is not None]
            bad = [(r[0], r[2], r[3]) for r in blk.slow_rows if r[1] is None]
            n = len(good)
            fields = [r[1] for r in good if r[1] is not None]
            cols = {c: pa.array([f[j] for f in fields], type=pa.binary())
                    for j, c in enumerate(names)}
            lines_no = np.array([r[0] for r in good], dtype=np.int64)
            reason = np.zeros(n, dtype=np.uint8)

        def flag(mask: np.ndarray, code: int) -> None:
            np.copyto(reason, np.uint8(code), where=mask & (reason == 0))

        line_vals: np.ndarray | None = None
        line_arr: pa.Array | None = None
        la = cols[lay.line_id]
        if lay.line_id_kind == "int":
            line_vals, ok = _ints(la)
            if not ok.all():
                flag(strings_of(la).length == 0, R_LINE_EMPTY)
                flag(~ok, R_LINE_BAD)
        else:
            flag(pc.binary_length(la).to_numpy(zero_copy_only=False) == 0, R_LINE_EMPTY)
            line_arr = la
        start = self._timestamps(cols[lay.start_time], reason)
        if n and int(start.min()) == _BAD_TS:
            flag(start == _BAD_TS, R_START)
        d_arr = cols[lay.duration]
        dur, ok = _ints(d_arr, allow_negative=True)
        if not ok.all():
            flag(strings_of(d_arr).length == 0, R_DUR_EMPTY)
            flag(~ok, R_DUR_BAD)
        if n and (int(dur.min()) < 0 or int(dur.max()) > MAX_DURATION_S):
            flag(dur < 0, R_DUR_NEG)
            flag(dur > MAX_DURATION_S, R_DUR_HUGE)
        nums = normalise_strings(strings_of(cols[lay.callee]), self.plan.default_country_code)
        if not nums.valid.all():
            flag(~nums.valid, R_NUMBER)
        rid: np.ndarray | None = None
        rid_hash: np.ndarray | None = None
        if lay.record_id and lay.record_id in cols:
            r_arr = cols[lay.record_id]
            if lay.record_id_kind == "int":
                rid, ok = _ints(r_arr, allow_negative=True)
                if not ok.all():
                    flag(~ok, R_ID)
            else:
                rs = strings_of(r_arr)
                flag(rs.length == 0, R_ID)
                rid_hash = hash_strings(rs)
        answered: np.ndarray | None = None
        if lay.disposition and lay.disposition in cols:
            vs = pa.array([v.encode() for v in sorted(lay.answered_values)], type=pa.binary())
            answered = pc.is_in(cols[lay.disposition], value_set=vs).to_numpy(
                zero_copy_only=False)
        pb = _Parsed(blk, n, bad, lines_no, starts, fields, reason, line_vals, line_arr, start,
                     dur, nums, rid, rid_hash, answered)
        if self._stateless and n:
            # no allowance or fair use: rating a record needs no state, so the worker rates the
            # accepted rows here, in parallel; the caller's thread drops duplicates, sets the
            # line indices and aggregates
            ok_rows = reason == 0
            acc = None if ok_rows.all() else np.flatnonzero(ok_rows)

            def pick(a: np.ndarray) -> np.ndarray:
                return a if acc is None else a[acc]

            pb.batch = self.rater.rate(
                np.zeros(n if acc is None else acc.size, dtype=np.int64), pick(start), pick(dur),
                nums if acc is None else nums.take(acc),
                None if answered is None else pick(answered))
        return pb

    def _ship(self, pb: _Parsed, begin: int, end: int, dedupe: bool) -> _Shipped:
        """Worker-process side: the rated block reduced to a :class:`_Shipped` (the quarantine
        texts of rejected rows are taken here, where the block's text is)."""
        blk = pb.blk
        assert pb.batch is not None or pb.n == 0
        rejects = list(pb.bad)
        reason = pb.reason
        accepted = reason == 0
        idx = None if accepted.all() else np.flatnonzero(accepted)
        lines_no, starts = pb.lines_no, pb.starts
        if idx is not None or pb.fields is not None or lines_no is not None:
            if lines_no is None:
                lines_no, starts = blk.line_index()
            assert lines_no is not None
            for i in np.flatnonzero(~accepted).tolist():
                rejects.append((int(lines_no[i]), REASONS[reason[i]], _row_text(pb, starts, i)))

        def sub(a: np.ndarray) -> np.ndarray:
            return a if idx is None else a[idx]

        rows = np.arange(pb.n) if idx is None else idx
        rows_line = None if lines_no is None else _narrow(lines_no[rows])
        texts = [_row_text(pb, starts, i) for i in rows.tolist()] \
            if pb.fields is not None else None
        line_vals = line_codes = None
        line_dict: list[object] | None = None
        if pb.line_vals is not None:
            line_vals = _narrow(sub(pb.line_vals))
        else:
            assert pb.line_arr is not None
            la = pb.line_arr if idx is None else pb.line_arr.take(pa.array(idx))
            line_codes, line_dict = _dictionary(la)
        key: np.ndarray | None = None
        if not dedupe:
            pass
        elif pb.rid is not None:
            key = sub(pb.rid)
        elif pb.rid_hash is not None:
            key = sub(pb.rid_hash).view(np.int64)
        else:
            key = hash_columns([sub(pb.start), sub(pb.nums.value), sub(pb.nums.ndigits),
                                sub(pb.dur)])
        b = pb.batch
        m = 0 if b is None else len(b)
        empty = np.zeros(0, dtype=np.int64)
        return _Shipped(
            begin, end, blk.nlines, pb.n, pb.n + len(pb.bad), pb.fields is not None, rejects, line_vals, line_codes,
            line_dict, rows_line, texts, key,
            dedupe and pb.rid is None and pb.rid_hash is None, _narrow(sub(pb.start)),
            empty if b is None else _narrow(b.zone),
            np.zeros(m, dtype=np.uint8) if b is None else b.status,
            empty if b is None else _narrow(b.billed_s),
            empty if b is None else _narrow(b.price_micro),
            None if b is None or not b.has_cost else _narrow(b.cost_micro))

    def _timestamps(self, arr: pa.Array, reason: np.ndarray) -> np.ndarray:
        """UTC epoch seconds; _BAD_TS where unparsable.  Arrow's ISO 8601 cast when the whole
        column is naive timestamps, else the numpy parser, else ``datetime.fromisoformat``
        per row (offsets, ``Z``).  A column converted by Arrow's CSV reader is used as is."""
        if pa.types.is_timestamp(arr.type):
            return self._tzt.to_utc(arr.cast(pa.int64()).to_numpy())
        try:
            ts = pc.cast(pc.cast(arr, pa.string()), pa.timestamp("s"))
            if ts.null_count == 0:
                return self._tzt.to_utc(ts.cast(pa.int64()).to_numpy())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        s = strings_of(arr)
        local, ok = parse_local_timestamps(s)
        utc = np.full(len(s), _BAD_TS, dtype=np.int64)
        if ok.any():
            utc[ok] = self._tzt.to_utc(local[ok])
        for i in np.flatnonzero(~ok & (reason == 0)).tolist():
            v = _parse_ts_slow(s.text(i), self._tz)
            if v is not None:
                utc[i] = v
        return utc

    # ----------------------------------------------------------------------- consumer side
    def _consume(self, pb: _Parsed, rep: ImportReport, writer: object, dedupe: bool,
                 on_batch: Callable[[RatedBatch, np.ndarray], None] | None) -> None:
        blk = pb.blk
        off = self._line_offset  # block-relative line numbers -> file line numbers
        self._line_offset += blk.nlines
        rep.read += pb.n + len(pb.bad)
        if pb.fields is not None:
            rep.slow_blocks += 1
        for ln, err, text in pb.bad:
            rkey = err.split(":")[0]
            rep.rejected += 1
            rep.by_reason[rkey] = rep.by_reason.get(rkey, 0) + 1
            if writer is not None:
                writer.writerow([ln + off, err, text])  # type: ignore[attr-defined]
        n = pb.n
        if n == 0:
            return
        reason = pb.reason
        accepted = reason == 0
        idx = None if accepted.all() else np.flatnonzero(accepted)
        if pb.line_vals is not None:
            li = self.lines.encode_ints(pb.line_vals if idx is None else pb.line_vals[idx])
        else:
            assert pb.line_arr is not None
            la = pb.line_arr if idx is None else pb.line_arr.take(pa.array(idx))
            li = self.lines.encode_text(la)

        def sub(a: np.ndarray) -> np.ndarray:
            return a if idx is None else a[idx]

        nums = pb.nums
        dup = np.zeros(li.size, dtype=bool)
        if dedupe:
            if pb.rid is not None:
                key = sub(pb.rid)
            elif pb.rid_hash is not None:
                key = sub(pb.rid_hash).view(np.int64)
            else:
                key = _with_line(hash_columns([sub(pb.start), sub(nums.value),
                                               sub(nums.ndigits), sub(pb.dur)]), li)
            dup = self.seen.add_batch(key)
        seq = np.arange(self._seq, self._seq + n, dtype=np.int64)
        self._seq += n
        ndup = int(np.count_nonzero(dup))
        sel: np.ndarray | None
        if ndup:
            kidx = np.flatnonzero(~dup)
            sel = kidx if idx is None else idx[kidx]
            li = li[kidx]
        else:
            sel = idx
        rep.rated += li.size
        rep.duplicates += ndup
        nrej = n - (n if idx is None else idx.size)
        rep.rejected += nrej
        if nrej:
            codes, counts = np.unique(reason[~accepted], return_counts=True)
            for c, k in zip(codes.tolist(), counts.tolist(), strict=True):
                rep.by_reason[REASONS[c]] = rep.by_reason.get(REASONS[c], 0) + k
        lines_no = pb.lines_no
        if writer is not None and (nrej or ndup):
            starts = pb.starts
            if pb.fields is None and starts is None:
                lines_no, starts = blk.line_index()
            assert lines_no is not None
            rows_dup = (np.arange(n) if idx is None else idx)[dup]
            todo = [(i, REASONS[reason[i]]) for i in np.flatnonzero(~accepted).tolist()]
            todo += [(i, "duplicate") for i in rows_dup.tolist()]
            for i, why in todo:
                writer.writerow([int(lines_no[i]) + off, why,  # type: ignore[attr-defined]
                                 _row_text(pb, starts, i)])
        if li.size == 0:
            return

        def pick(a: np.ndarray) -> np.ndarray:
            return a if sel is None else a[sel]

        nn = nums if sel is None or pb.batch is not None else nums.take(sel)
        order_key = pick(pb.rid) if pb.rid is not None else pick(seq)
        pool = self._pools(li) if self.pools else None
        st = pick(pb.start)
        if st.size:
            if self._watermark is not None:
                rep.out_of_order += int(np.count_nonzero(st < self._watermark))
            top = int(st.max())
            self._watermark = top if self._watermark is None else max(self._watermark, top)
        if pb.batch is not None:  # rated by the worker: keep the rows that are not duplicates
            b = pb.batch if not ndup else pb.batch.take(np.flatnonzero(~dup))
            b.line = li
        else:
            b = self.rater.rate(li, st, pick(pb.dur), nn,
                                None if pb.answered is None else pick(pb.answered), order_key,
                                pool)
        self.acc.add(b)
        st_codes = np.bincount(b.status, minlength=len(STATUS_NAMES))
        for c, k in enumerate(st_codes.tolist()):
            if k:
                rep.by_status[STATUS_NAMES[c]] = rep.by_status.get(STATUS_NAMES[c], 0) + k
        if on_batch is not None:
            if lines_no is None:
                lines_no, _ = blk.line_index()
            on_batch(b, pick(lines_no) + off)

    def _consume_shipped(self, sb: _Shipped, rep: ImportReport, writer: object, fd: int | None
                         ) -> None:
        """Caller's side of a block rated in a worker process: line indices, duplicates,
        counts, quarantine and aggregation, exactly as :meth:`_consume` does them."""
        off = self._line_offset
        self._line_offset += sb.nlines
        self._seq += sb.n
        rep.read += sb.read
        rep.slow_blocks += sb.slow
        for ln, why, text in sb.rejects:
            rkey = why.split(":")[0]
            rep.rejected += 1
            rep.by_reason[rkey] = rep.by_reason.get(rkey, 0) + 1
            if writer is not None:
                writer.writerow([ln + off, why, text])  # type: ignore[attr-defined]
        m = sb.status.size
        if m == 0:
            return
        if sb.line_vals is not None:
            li = self.lines.encode_ints(sb.line_vals)
        else:
            assert sb.line_codes is not None and sb.line_dict is not None
            li = self.lines.encode_codes(sb.line_codes, sb.line_dict)
        keep: np.ndarray | None = None
        ndup = 0
        if sb.key is not None:
            dup = self.seen.add_batch(_with_line(sb.key, li) if sb.key_needs_line else sb.key)
            ndup = int(np.count_nonzero(dup))
            if ndup:
                keep = np.flatnonzero(~dup)
                if writer is not None:
                    self._write_duplicates(sb, np.flatnonzero(dup), off, writer, fd)
        rep.rated += m - ndup
        rep.duplicates += ndup

        def pick(a: np.ndarray) -> np.ndarray:
            return a if keep is None else a[keep]

        if keep is not None:
            if keep.size == 0:
                return
            li = li[keep]
        st = pick(sb.start)
        if self._watermark is not None:
            rep.out_of_order += int(np.count_nonzero(st < self._watermark))
        top = int(st.max())
        self._watermark = top if self._watermark is None else max(self._watermark, top)
        status = pick(sb.status)
        self.acc.add_arrays(li, pick(sb.zone), status, pick(sb.billed), pick(sb.price),
                            None if sb.cost is None else pick(sb.cost))
        st_codes = np.bincount(status, minlength=len(STATUS_NAMES))
        for c, k in enumerate(st_codes.tolist()):
            if k:
                rep.by_status[STATUS_NAMES[c]] = rep.by_status.get(STATUS_NAMES[c], 0) + k

    @staticmethod
    def _write_duplicates(sb: _Shipped, rows: np.ndarray, off: int, writer: object,
                          fd: int | None) -> None:
        """Quarantine rows of the duplicates of a shipped block: their text is read back from
        the file (the block's byte range) rather than shipped for every row of every block."""
        lines = rows + 1 if sb.rows_line is None else sb.rows_line[rows]
        if sb.texts is not None:
            texts = [sb.texts[i] for i in rows.tolist()]
        else:
            assert fd is not None
            blk = _Block(os.pread(fd, sb.end - sb.begin, sb.begin), 1, None)
            _, starts = blk.line_index()
            texts = [blk.line_text(int(starts[ln - 1])).decode("utf-8", "backslashreplace")
                     for ln in lines.tolist()]
        for ln, text in zip(lines.tolist(), texts, strict=True):
            writer.writerow([int(ln) + off, "duplicate", text])  # type: ignore[attr-defined]

    def _pools(self, li: np.ndarray) -> np.ndarray:
        nl = len(self.lines.ids)
        if self.pool_of_line.size < nl:
            add = []
            for i in range(self.pool_of_line.size, nl):
                key = self.pools.get(self.lines.ids[i], ("line", self.lines.ids[i]))
                j = self.pool_index.get(key)
                if j is None:
                    j = self.pool_index[key] = len(self.pool_index)
                add.append(j)
            self.pool_of_line = np.concatenate([self.pool_of_line, np.array(add, dtype=np.int64)])
        return self.pool_of_line[li]


_BAD_TS = np.iinfo(np.int64).min


def _row_text(pb: _Parsed, starts: np.ndarray | None, i: int) -> str:
    """Quarantine text of row ``i``: its original line (fast path, ``starts`` = the line
    offsets of the rows), or its fields written back as CSV (slow path)."""
    if starts is not None:
        return pb.blk.line_text(int(starts[i])).decode("utf-8", "backslashreplace")
    assert pb.fields is not None
    buf = io.StringIO()
    csv.writer(buf).writerow([f.decode("utf-8", "backslashreplace") for f in pb.fields[i]])
    return buf.getvalue().rstrip("\r\n")


def _parse_ts_slow(raw: bytes, tz: ZoneInfo) -> int | None:
    try:
        txt = raw.decode("utf-8").strip()
        if txt.endswith("Z"):
            txt = txt[:-1] + "+00:00"
        dt = datetime.fromisoformat(txt)
    except (UnicodeDecodeError, ValueError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return int(dt.astimezone(UTC).timestamp() // 1)


def _ints(arr: pa.Array, allow_negative: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Integers: Arrow's cast when the whole column is clean (the usual case), else the numpy
    parser, row by row verdicts (at most 16 digits, optional '-').  A column converted by
    Arrow's CSV reader is used as is."""
    if pa.types.is_integer(arr.type):
        return arr.to_numpy(), _TRUE[: len(arr)] if len(arr) <= _TRUE.size else \
            np.ones(len(arr), dtype=bool)
    try:
        v = pc.cast(arr, pa.int64())
        if v.null_count == 0 and _only_digits(arr, allow_negative):
            return v.to_numpy(), _TRUE[: len(arr)] if len(arr) <= _TRUE.size else \
                np.ones(len(arr), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    return parse_ints(strings_of(arr), allow_negative=allow_negative)


_TRUE = np.ones(1 << 20, dtype=bool)
_TRUE.flags.writeable = False


def _only_digits(arr: pa.Array, allow_negative: bool) -> bool:
    """No hexadecimal value in the column: Arrow's integer cast also accepts "0x1f" (and
    nothing else that is not a decimal integer)."""
    bufs = arr.buffers()
    if len(arr) == 0 or bufs[2] is None:
        return True
    offs = np.frombuffer(bufs[1], dtype=np.int32 if pa.types.is_binary(arr.type) or
                         pa.types.is_string(arr.type) else np.int64)
    lo, hi = int(offs[arr.offset]), int(offs[arr.offset + len(arr)])
    data = np.frombuffer(bufs[2], dtype=np.uint8)[lo:hi]
    return not bool(((data | np.uint8(0x20)) == 120).any())  # 'x' or 'X'


def import_usage(path: str | Path, plan: RatingPlan, layout: UsageLayout = GENERIC_LAYOUT,
                 quarantine: str | Path | TextIO | None = None,
                 pools: Mapping[object, object] | None = None, block_size: int | None = None,
                 threads: int | None = None, dedupe: bool = True) -> ImportResult:
    """Import, validate, deduplicate and rate one usage CSV; invoice lines and counts."""
    imp = UsageImporter(plan, layout, pools)
    rep = imp.import_file(path, quarantine, block_size=block_size, threads=threads,
                          dedupe=dedupe)
    return imp.result(rep)


def main(argv: list[str] | None = None) -> int:
    """``python -m engine.rating.cdr_import CDRS DECK [--layout kit|generic|asterisk]
    [--quarantine Q.csv] [--out LINES.csv] [--price-unit micro|decimal]``: import, rate with
    the deck's prices (plain plan: per-call rounding up to 1 micro), print the counts."""
    import argparse

    from engine.rating.plan import load_rate_deck

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("cdrs")
    ap.add_argument("deck")
    ap.add_argument("--layout", choices=sorted(LAYOUTS), default="generic")
    ap.add_argument("--quarantine")
    ap.add_argument("--out")
    ap.add_argument("--price-unit", choices=["micro", "decimal"], default="micro")
    a = ap.parse_args(argv)
    deck, errors = load_rate_deck(a.deck, price_unit=a.price_unit)
    if deck is None:
        for e in errors:
            print(e)
        return 1
    res = import_usage(a.cdrs, RatingPlan(deck=deck, per_call_rounding=(1, "up")),
                       LAYOUTS[a.layout], quarantine=a.quarantine)
    print(res.report)
    if a.out:
        pacsv.write_csv(res.to_arrow(), a.out)
    return 0 if res.report.reconciles() else 2


if __name__ == "__main__":
    raise SystemExit(main())
