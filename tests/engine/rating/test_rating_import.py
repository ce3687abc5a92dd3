"""Streaming CDR import: malformed lines of every kind are rejected with a reason (never a
crash), duplicates flagged, counts always reconcile, results equal the reference rater's."""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import random
import signal
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from engine.rating.cdr_import import (
    ASTERISK_LAYOUT,
    GENERIC_LAYOUT,
    KIT_LAYOUT,
    SeenSet,
    UsageImporter,
    UsageLayout,
    _BlockReader,
    _read_lines,
    import_usage,
)
from engine.rating.plan import RateDeck, RateDeckRow, RatingPlan
from engine.rating.reference import CallRecord, invoice_lines_reference, rate_reference

PARIS = ZoneInfo("Europe/Paris")
DECK = RateDeck("t", (
    RateDeckRow("331", "FR-FIXED", 6000, 3000, 1200, 0, 30, 6, 0),
    RateDeckRow("336", "FR-MOBILE", 12000, 6000, 6000, 0, 60, 60, 0),
    RateDeckRow("44", "GB", 6000, 3000, 3000, 5000, 60, 60, 0),
))
PLAN = RatingPlan(deck=DECK, per_call_rounding=(1, "up"))
HEADER = "call_id,line_id,start_time,caller,callee,duration_s\n"


def utc(s: str) -> int:
    return int(datetime.fromisoformat(s).replace(tzinfo=PARIS).timestamp())


def run(tmp_path: Path, body: bytes, layout=KIT_LAYOUT, block_size: int = 1 << 20,  # type: ignore[no-untyped-def]
        threads: int = 1, plan: RatingPlan = PLAN):
    p = tmp_path / "cdrs.csv"
    p.write_bytes(body)
    q = io.StringIO()
    res = import_usage(p, plan, layout, quarantine=q, block_size=block_size, threads=threads)
    assert res.report.reconciles(), str(res.report)
    quarantine = list(csv.reader(io.StringIO(q.getvalue())))
    assert quarantine[0] == ["line", "reason", "original"]
    return res, quarantine[1:]


GOOD = [
    "1,10,2026-11-10T10:00:00,+33100000000,+33612345678,60",
    "2,10,2026-11-10T10:05:00,+33100000000,0612345678,31",
    "3,11,2026-11-10 20:00:00,+33100000000,00442071234567,61",
    "4,11,2026-11-10T10:00:00+01:00,+33100000000,+33123456789,29",
    "5,12,2026-11-10T09:00:00Z,+33100000000,+33123456789,0",
]
BAD = [
    ("6,10,2026-13-10T10:00:00,x,+33612345678,60", "bad start time"),
    ("7,10,not a date,x,+33612345678,60", "bad start time"),
    ("8,10,2026-11-10T10:00:00,x,+33612345678,-5", "negative duration"),
    ("9,10,2026-11-10T10:00:00,x,+33612345678,86401", "duration over 24 h"),
    ("10,10,2026-11-10T10:00:00,x,+33612345678,abc", "bad duration"),
    ("20,10,2026-11-10T10:00:00,x,+33612345678,0x1f", "bad duration"),
    ("11,10,2026-11-10T10:00:00,x,+33612345678,", "empty duration"),
    ("12,10,2026-11-10T10:00:00,x,,60", "invalid called number"),
    ("13,10,2026-11-10T10:00:00,x,2001,60", "invalid called number"),
    ("14,,2026-11-10T10:00:00,x,+33612345678,60", "empty line id"),
    ("15,L10,2026-11-10T10:00:00,x,+33612345678,60", "bad line id"),
    ("xx,10,2026-11-10T10:00:00,x,+33612345678,60", "bad record id"),
    ("16,10,2026-11-10T10:00:00,x,+33612345678", "wrong column count or unparsable line"),
    ("17,10,2026-11-10T10:00:00,x,+33612345678,60,extra", "wrong column count or unparsable line"),
    ("18,10,2026-11-10T10:00:00,Jos\xe9,+33612345678,60", "not UTF-8"),
    ("19,10,2026-11-10T10:00:00,\"unterminated,+33612345678,60",
     "wrong column count or unparsable line"),
]


def encode(line: str) -> bytes:
    return line.encode("latin-1") if "\xe9" in line else line.encode()


def reference_lines(lines: list[str]) -> list[tuple]:
    recs = []
    for ln in lines:
        cid, line, start, _, callee, dur = ln.split(",")
        if start.endswith("Z") or "+" in start[10:]:
            st = int(datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp())
        else:
            st = utc(start)
        recs.append(CallRecord(int(cid), int(line), st, int(dur), callee))
    return [(x.line_id, x.zone, x.calls, x.billed_s, x.amount, x.cost)
            for x in invoice_lines_reference(rate_reference(PLAN, recs))]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("block_size", [64, 1 << 20])
def test_malformed_lines_every_kind(tmp_path: Path, threads: int, block_size: int) -> None:
    lines = GOOD[:2] + [b for b, _ in BAD] + GOOD[2:]
    body = HEADER.encode() + b"\n".join(encode(x) for x in lines) + b"\n\n"
    res, q = run(tmp_path, body, block_size=block_size, threads=threads)
    rep = res.report
    assert (rep.read, rep.rated, rep.rejected, rep.duplicates) == (21, 5, 16, 0)
    assert rep.by_status == {"rated": 4, "dropped": 1}
    want = sorted((i + 4, why) for i, (_, why) in enumerate(BAD))
    assert sorted((int(r[0]), r[1].split(":")[0]) for r in q) == want
    originals = {int(r[0]): r[2] for r in q}
    assert originals[4] == BAD[0][0]
    assert originals[18] == "18,10,2026-11-10T10:00:00,Jos\\xe9,+33612345678,60"
    assert list(res.invoice_rows()) == reference_lines(GOOD)


def test_duplicates_by_id_and_without_id(tmp_path: Path) -> None:
    body = (HEADER + "\n".join([GOOD[0], GOOD[1], GOOD[0], GOOD[0].replace("1,", "99,", 1)])
            + "\n").encode()
    res, q = run(tmp_path, body)
    assert (res.report.rated, res.report.duplicates) == (3, 1)
    assert [(r[0], r[1]) for r in q] == [("4", "duplicate")]
    # no record id column: same line/start/callee/duration is a duplicate
    lay = dataclasses.replace(KIT_LAYOUT, record_id=None)
    res, q = run(tmp_path, body, layout=lay)
    assert (res.report.rated, res.report.duplicates) == (2, 2)


def test_duplicates_across_blocks_and_files(tmp_path: Path) -> None:
    body = (HEADER + "\n".join(GOOD * 3) + "\n").encode()
    res, _ = run(tmp_path, body, block_size=100, threads=2)
    assert (res.report.read, res.report.rated, res.report.duplicates) == (15, 5, 10)
    imp = UsageImporter(PLAN, KIT_LAYOUT)
    p = tmp_path / "a.csv"
    p.write_bytes((HEADER + "\n".join(GOOD) + "\n").encode())
    r1 = imp.import_file(p, threads=1)
    r2 = imp.import_file(p, threads=1)
    assert (r1.rated, r2.rated, r2.duplicates) == (5, 0, 5)


def test_generic_layout_text_ids(tmp_path: Path) -> None:
    body = (b"record_id,line_id,product,start_time,quantity,destination\n"
            b"r1,TRUNK-A,voice,2026-11-10T10:00:00,60,+33612345678\n"
            b"r2,TRUNK-A,voice,2026-11-10T10:01:00,60,+33612345678\n"
            b"r1,TRUNK-A,voice,2026-11-10T10:02:00,60,+33612345678\n"
            b",TRUNK-B,voice,2026-11-10T10:02:00,60,+33612345678\n"
            b"r3,TRUNK-B,voice,2026-11-10T10:02:00,60,+33612345678\n")
    res, q = run(tmp_path, body, layout=GENERIC_LAYOUT)
    assert (res.report.rated, res.report.rejected, res.report.duplicates) == (3, 1, 1)
    assert list(res.invoice_rows()) == [("TRUNK-A", "FR-MOBILE", 2, 120, 24000, 0),
                                        ("TRUNK-B", "FR-MOBILE", 1, 60, 12000, 0)]


ASTERISK = [
    '"acc1","0140000000","0612345678","from-internal","""Jo"" <0140000000>","SIP/100-1",'
    '"SIP/trunk-2","Dial","SIP/trunk/0612345678,60","2026-11-10 10:00:00",'
    '"2026-11-10 10:00:05","2026-11-10 10:01:10","70","65","ANSWERED","DOCUMENTATION",'
    '"1762765200.1",""',
    '"acc1","0140000000","0612345678","from-internal","","SIP/100-1","","Dial","",'
    '"2026-11-10 10:05:00","","2026-11-10 10:05:20","20","0","NO ANSWER","DOCUMENTATION",'
    '"1762765500.2",""',
    '"acc2","0140000000","0044207123456","from-internal","","SIP/101-1","","Dial","",'
    '"2026-11-10 10:06:00","2026-11-10 10:06:01","2026-11-10 10:07:01","61","60","ANSWERED",'
    '"DOCUMENTATION","1762765560.3",""',
    '"acc2","0140000000","201","from-internal","","SIP/101-1","","Dial","",'
    '"2026-11-10 10:08:00","2026-11-10 10:08:01","2026-11-10 10:08:11","11","10","ANSWERED",'
    '"DOCUMENTATION","1762765680.4",""',
    '"acc1","0140000000","0612345678","from-internal","""Jo"" <0140000000>","SIP/100-1",'
    '"SIP/trunk-2","Dial","SIP/trunk/0612345678,60","2026-11-10 10:00:00",'
    '"2026-11-10 10:00:05","2026-11-10 10:01:10","70","65","ANSWERED","DOCUMENTATION",'
    '"1762765200.1",""',
]


@pytest.mark.parametrize("ncols", [18, 16])
def test_asterisk_master_csv(tmp_path: Path, ncols: int) -> None:
    rows = [",".join(next(csv.reader([x]))[:ncols] and
                     [f'"{v}"' if "," not in v and '"' not in v else
                      '"' + v.replace('"', '""') + '"' for v in next(csv.reader([x]))[:ncols]])
            for x in ASTERISK]
    res, q = run(tmp_path, ("\n".join(rows) + "\n").encode(), layout=ASTERISK_LAYOUT)
    rep = res.report
    if ncols == 18:  # uniqueid present: the repeated call is a duplicate
        assert (rep.read, rep.rated, rep.rejected, rep.duplicates) == (5, 3, 1, 1)
    else:  # no uniqueid: same line/start/number/duration is a duplicate too
        assert (rep.read, rep.rated, rep.rejected, rep.duplicates) == (5, 3, 1, 1)
    assert rep.by_status == {"rated": 2, "dropped": 1}
    assert q[0][:2] == ["4", "invalid called number"]
    assert list(res.invoice_rows()) == [("acc1", "FR-MOBILE", 1, 120, 24000, 0),
                                        ("acc2", "GB", 1, 60, 11000, 0)]


def test_missing_column_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "c.csv"
    p.write_text("call_id,line_id,start,callee,duration_s\n")
    with pytest.raises(ValueError, match="start_time"):
        import_usage(p, PLAN, KIT_LAYOUT)


def test_empty_and_header_only(tmp_path: Path) -> None:
    res, q = run(tmp_path, HEADER.encode())
    assert res.report.read == 0 and q == []
    res, q = run(tmp_path, (HEADER + GOOD[0]).encode())  # no final newline
    assert res.report.rated == 1


def test_seen_set_bitmap_and_runs() -> None:
    s = SeenSet()
    import numpy as np
    assert s.add_batch(np.array([5, 6, 5, 100])).tolist() == [False, False, True, False]
    assert s.add_batch(np.array([1, 6, 2000])).tolist() == [False, True, False]
    assert s.add_batch(np.array([1 << 40, 5])).tolist() == [False, True]  # switches to hashing
    assert s.hashed is not None
    assert s.add_batch(np.array([1 << 40, 7, 7])).tolist() == [True, False, True]
    rng = np.random.default_rng(1)
    keys = rng.integers(-(1 << 62), 1 << 62, size=300_000)
    seen = set()
    for part in np.array_split(np.concatenate([keys, keys[:1000]]), 7):
        want = []
        for k in part.tolist():
            want.append(k in seen)
            seen.add(k)
        assert s.add_batch(part).tolist() == want


def test_allowances_through_the_importer_across_blocks(tmp_path: Path) -> None:
    from engine.rating.plan import Allowance

    plan = RatingPlan(deck=DECK, per_call_rounding=(1, "up"),
                      allowances=(Allowance("forfait", 150, frozenset({"FR-MOBILE"}), "pooled"),))
    lines = [f"{i},{10 + i % 3},2026-11-10T10:{i:02d}:00,x,+33612345678,{40 + i}"
             for i in range(1, 12)]
    pools = {10: "C", 11: "C"}
    body = (HEADER + "\n".join(lines) + "\n").encode()
    p = tmp_path / "a.csv"
    p.write_bytes(body)
    res = import_usage(p, plan, KIT_LAYOUT, pools=pools, block_size=120, threads=2)
    assert res.report.out_of_order == 0 and res.report.reconciles()
    recs = [CallRecord(int(x.split(",")[0]), int(x.split(",")[1]), utc(x.split(",")[2]),
                       int(x.split(",")[5]), "+33612345678") for x in lines]
    want = [(x.line_id, x.zone, x.calls, x.billed_s, x.amount, x.cost)
            for x in invoice_lines_reference(rate_reference(plan, recs, pools))]
    assert list(res.invoice_rows()) == want
    # the same records out of time order across blocks are counted
    p.write_bytes((HEADER + "\n".join(reversed(lines)) + "\n").encode())
    res = import_usage(p, plan, KIT_LAYOUT, pools=pools, block_size=120, threads=1)
    assert res.report.out_of_order > 0


def test_seen_set_bitmap_random_batches() -> None:
    import numpy as np

    rng = np.random.default_rng(3)
    for _ in range(100):
        s, seen = SeenSet(), set()
        base = int(rng.integers(0, 1000))
        for _ in range(5):
            n = int(rng.integers(1, 50))
            if rng.random() < 0.5:  # increasing ids (the fast path)
                keys = np.sort(rng.choice(np.arange(base, base + 200), size=n, replace=False))
            else:
                keys = rng.integers(base - 50, base + 200, size=n)
            want = []
            for k in keys.tolist():
                want.append(k in seen)
                seen.add(k)
            assert s.add_batch(keys).tolist() == want


# ------------------------------------------------------------------ worker processes (threads > 1)
def _mixed_file(n: int = 1500) -> bytes:
    """Good lines, malformed ones of every kind, empty and CRLF lines, an unterminated quote
    (slow path) and duplicates far apart (other blocks), in a file of n records."""
    bad = [b.replace(",x,", ",+33100000000,") for b, _ in BAD if "\xe9" not in b]
    out = []
    for i in range(n):
        day, sec = divmod(i * 97, 86400)
        callee = ("+33612345678", "0612345678", "00442071234567", "+33123456789",
                  "+99912345678")[i % 5]
        out.append(f"{1000 + i},{10 + i % 7},2026-11-{1 + day % 28:02d}T"
                   f"{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d},+33100000000,"
                   f"{callee},{(i * 37) % 700}")
        if i % 97 == 5:
            out.append(bad[i % len(bad)].replace("x", "X") if i % 2 else bad[i % len(bad)])
        if i % 211 == 7:
            out.append(out[i // 3])  # a duplicate of an earlier line, usually in another block
        if i % 301 == 3:
            out.append("")
    lines = [x.encode() for x in out]
    lines[50] = lines[50] + b"\r"
    lines.insert(700, "18,10,2026-11-10T10:00:00,Jos\xe9,+33612345678,60".encode("latin-1"))
    return HEADER.encode() + b"\n".join(lines) + b"\n"


def _import_all(p: Path, layout, threads: int, block_size: int):  # type: ignore[no-untyped-def]
    imp = UsageImporter(PLAN, layout)
    q = io.StringIO()
    rep = imp.import_file(p, q, block_size=block_size, threads=threads)
    assert rep.reconciles(), str(rep)
    assert bool(imp.worker_peak_rss_mb) == (threads > 1)  # the process path was taken
    res = imp.result(rep)
    return rep, q.getvalue(), res.invoice_rows()


@pytest.mark.parametrize("layout", [KIT_LAYOUT, dataclasses.replace(KIT_LAYOUT, record_id=None),
                                    dataclasses.replace(KIT_LAYOUT, line_id_kind="text")],
                         ids=["int-ids", "no-record-id", "text-line-ids"])
@pytest.mark.parametrize("block_size", [200, 4096, 1 << 20])
def test_processes_same_as_single_thread(tmp_path: Path, layout: UsageLayout,
                                         block_size: int) -> None:
    p = tmp_path / "mixed.csv"
    p.write_bytes(_mixed_file())
    one = _import_all(p, layout, 1, block_size)
    two = _import_all(p, layout, 2, block_size)
    assert one[0] == two[0]  # every count, reason and status, duplicates across blocks
    assert one[1] == two[1]  # the quarantine file: same lines, numbers, reasons and texts
    assert one[2] == two[2]
    rep = one[0]
    assert rep.duplicates >= 7 and rep.rejected >= 15 and rep.rated > 1400


def test_processes_slow_path_duplicates(tmp_path: Path) -> None:
    # an unterminated quote sends its block down the line-by-line path: the quarantine text of
    # a duplicate there comes from the worker (fields written back as CSV)
    body = (HEADER + "\n".join(GOOD + ['77,10,2026-11-10T10:00:00,"open,+33612345678,60']
                               + GOOD[:2]) + "\n").encode()
    p = tmp_path / "q.csv"
    p.write_bytes(body)
    one = _import_all(p, KIT_LAYOUT, 1, 1 << 20)
    two = _import_all(p, KIT_LAYOUT, 2, 1 << 20)
    assert one == two and one[0].slow_blocks == 1 and one[0].duplicates == 2


def test_generic_text_ids_in_processes(tmp_path: Path) -> None:
    rows = [f"r{i % 40},TRUNK-{'ABC'[i % 3]},voice,2026-11-10T10:{i % 60:02d}:00,{i % 90},"
            f"+3361234{i:04d}" for i in range(120)]
    p = tmp_path / "g.csv"
    p.write_bytes(("record_id,line_id,product,start_time,quantity,destination\n"
                   + "\n".join(rows) + "\n").encode())
    one = _import_all(p, GENERIC_LAYOUT, 1, 300)
    two = _import_all(p, GENERIC_LAYOUT, 2, 300)
    assert one == two and one[0].duplicates == 80


def test_worker_process_failure_is_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self, blk, names):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("in the worker")

    monkeypatch.setattr(UsageImporter, "_convert", boom)  # inherited by the forked workers
    p = tmp_path / "c.csv"
    p.write_bytes((HEADER + "\n".join(GOOD) + "\n").encode())
    with pytest.raises(RuntimeError, match="ZeroDivisionError: in the worker"):
        UsageImporter(PLAN, KIT_LAYOUT).import_file(p, threads=2, block_size=64)


@pytest.mark.parametrize("block_size", [16, 30, 40])
def test_a_line_longer_than_a_block_keeps_line_numbers(tmp_path: Path, block_size: int) -> None:
    # A range in which no line starts (a longer line belongs to the block before) is an empty
    # block: it must count no line, or every later quarantine line number shifts.
    bad = [f"{100 + i},10,2026-11-10T10:00:00,x,+33612345678,{'abc' if i % 3 == 0 else 60}"
           for i in range(10)]
    long_line = "1000," + "9" * 80 + ",2026-11-10T10:00:00,+331,+33612345678,60"
    p = tmp_path / "long.csv"
    p.write_bytes((HEADER + "\n".join([GOOD[0], long_line, *bad, GOOD[0]]) + "\n").encode())
    one = _import_all(p, KIT_LAYOUT, 1, block_size)
    two = _import_all(p, KIT_LAYOUT, 2, block_size)
    assert one == two
    numbers = [int(row.split(",")[0]) for row in one[1].splitlines() if row[:1].isdigit()]
    # file lines: 1 header, 2 GOOD[0], 3 the long line, 4.. the bad ones, 14 GOOD[0] again
    assert numbers[:4] == [3, 4, 7, 10] and numbers[-1] == 14


def test_a_killed_worker_raises_instead_of_hanging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = UsageImporter._convert

    def killed(self, blk, names):  # type: ignore[no-untyped-def]
        if b"\n777," in b"\n" + bytes(blk.raw):  # e.g. the OOM killer, a crash in a library
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, blk, names)

    monkeypatch.setattr(UsageImporter, "_convert", killed)  # inherited by the forked workers
    p = tmp_path / "k.csv"
    p.write_bytes((HEADER + "\n".join(f"{i},10,2026-11-10T10:00:00,+331,+33612345678,60"
                                       for i in range(2000)) + "\n").encode())
    def hung(signum: int, frame: object) -> None:
        raise TimeoutError("the import hung after its worker was killed")

    previous = signal.signal(signal.SIGALRM, hung)  # a hang fails this test, not the whole run
    signal.alarm(30)
    try:
        with pytest.raises(RuntimeError, match="died \\(exit code -9\\)"):
            UsageImporter(PLAN, KIT_LAYOUT).import_file(p, threads=2, block_size=64)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_read_lines_partitions_the_file(tmp_path: Path) -> None:
    rng = random.Random(5)
    for trial in range(30):
        lines = [b"x" * rng.choice([0, 1, 5, 30, 300]) for _ in range(rng.randint(0, 40))]
        body = b"head\n" + b"\n".join(lines) + (b"\n" if trial % 3 else b"")
        p = tmp_path / "r.bin"
        p.write_bytes(body)
        first = 5
        fd = os.open(p, os.O_RDONLY)
        try:
            size = len(body)
            for bs in (1, 7, 64, 1000):
                got = []
                for lo in range(first, size, bs):
                    begin, raw = _read_lines(fd, lo, min(lo + bs, size), first)
                    assert raw == b"" or begin == first or body[begin - 1:begin] == b"\n"
                    if raw:
                        assert begin + len(raw) == size or raw.endswith(b"\n")
                        got.append((begin, raw))
                assert b"".join(r for _, r in got) == body[first:]
                assert [b for b, _ in got] == sorted({b for b, _ in got})
        finally:
            os.close(fd)


INTS = ["5", " 5", "5 ", "\t5", "+5", "-5", "0x1F", "0X1f", "1e3", "", "-", "00012",
        "9223372036854775807", "9223372036854775808", "5.0", "NaN", "null", "true", "\u0665"]
TIMES = ["2026-11-10T10:00:00", "2026-11-10 10:00:00", "2026-11-10", "2026-11-10T10:00:00Z",
         "2026-11-10T10:00:00+02:00", "2026-11-10T10:00:00.5", "2026-11-10T10:00",
         "2026-11-10T24:00:00", "2026-11-10T10:00:60", "2026-02-30T10:00:00", "2026-1-1T10:00:00",
         "20261110T100000", "2026-11-10T10", "2026-11-10t10:00:00", "2026-11-10T10:00:00 ", ""]


@pytest.mark.parametrize("column", ["call_id", "line_id", "start_time", "duration_s"])
def test_typed_parse_same_verdicts_as_binary(column: str) -> None:
    """Arrow's typed CSV conversion (tried first on plain blocks) and the binary parse + casts
    give every value the same verdict and the same result."""
    imp = UsageImporter(PLAN, KIT_LAYOUT)
    names = HEADER.strip().split(",")
    include = ["line_id", "start_time", "callee", "duration_s", "call_id"]
    typed = {"call_id": pa.int64(), "line_id": pa.int64(), "duration_s": pa.int64(),
             "start_time": pa.timestamp("s")}
    readers = [_BlockReader("", names, include, True, 1 << 20, False, t) for t in (typed, None)]
    base = dict(zip(names, GOOD[0].split(","), strict=True))
    for v in TIMES if column == "start_time" else INTS:
        raw = ",".join({**base, column: v}[c] for c in names).encode() + b"\n"
        a, b = (imp._convert(r.parse(raw), names) for r in readers)
        assert (a.n, a.reason.tolist(), [x[1] for x in a.bad]) == \
            (b.n, b.reason.tolist(), [x[1] for x in b.bad]), v
        if a.n and a.reason[0] == 0:
            assert (a.start.tolist(), a.dur.tolist(), a.line_vals.tolist(), a.rid.tolist()) == \
                (b.start.tolist(), b.dur.tolist(), b.line_vals.tolist(), b.rid.tolist()), v
