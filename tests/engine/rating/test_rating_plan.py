"""Rate deck loading: mapping, price units, every error reported with file:row:column."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

import pytest

from engine.rating.plan import (
    ColumnMapping,
    DeckError,
    RateDeckRow,
    RatingPlan,
    TimeBands,
    load_rate_deck,
    parse_micro,
)

KIT_HEADER = ("prefix,zone,connect_fee,price_peak,price_offpeak,price_weekend,first_incr_s,"
              "next_incr_s,min_charge\n")


def write(tmp_path: Path, text: str, name: str = "deck.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_kit_header_defaults(tmp_path: Path) -> None:
    p = write(tmp_path, KIT_HEADER + "44,GB,5000,6000,3600,3000,60,60,0\n"
                                     "447,GB-MOBILE,5000,35000,21000,17500,60,60,0\n"
                                     "4474,GB-MOBILE,5000,35000,21000,17500,60,60,0\n")
    deck, errors = load_rate_deck(p)
    assert errors == []
    assert deck is not None
    assert deck.name == "deck" and deck.source_path == str(p)
    assert deck.rows[1] == RateDeckRow("447", "GB-MOBILE", 35000, 21000, 17500, 5000, 60, 60, 0)
    assert deck.zones() == ("GB", "GB-MOBILE")


def test_decimal_prices_converted_exactly(tmp_path: Path) -> None:
    m = ColumnMapping(prefix="Prefix", zone="Destination", price_peak="Peak",
                      price_offpeak="OffPeak", price_weekend="Weekend", connect_fee="Setup",
                      first_increment_s="Min", next_increment_s="Incr", minimum_charge="MinCharge",
                      effective_date="From", ignore_columns=frozenset({"Comment"}))
    p = write(tmp_path, "Prefix,Destination,Peak,OffPeak,Weekend,Setup,Min,Incr,MinCharge,From,"
                        "Comment\n"
                        "+33,France,0.0125,0.01,0,0.079,30,1,,2026-01-01,hello\n")
    deck, errors = load_rate_deck(p, m, "decimal")
    assert errors == []
    assert deck is not None
    r = deck.rows[0]
    assert (r.prefix, r.price_peak, r.price_offpeak, r.price_weekend, r.connect_fee,
            r.minimum_charge, r.effective_date) == ("33", 12500, 10000, 0, 79000, 0,
                                                     date(2026, 1, 1))


def test_parse_micro() -> None:
    assert parse_micro("0.0125", "decimal") == (12500, None)
    assert parse_micro("12", "decimal") == (12_000_000, None)
    assert parse_micro("0.0000001", "decimal")[0] is None
    assert parse_micro("1e3", "decimal")[0] is None
    assert parse_micro("12500", "micro") == (12500, None)
    assert parse_micro("12.5", "micro")[0] is None


def test_every_error_reported(tmp_path: Path) -> None:
    p = write(tmp_path, KIT_HEADER +
              "44,GB,5000,6000,3600,3000,60,60,0\n"       # row 2 ok
              "44,GB,5000,6000,3600,3000,60,60,0\n"       # row 3 duplicate prefix
              "4a,GB,5000,6000,3600,3000,60,60,0\n"       # row 4 bad prefix
              "45,DK,5000,abc,3600,3000,60,60,0\n"        # row 5 not an integer
              "46,SE,5000,,3600,3000,60,60,0\n"           # row 6 zone with no price
              "47,NO,5000,1,1,1,0,60,0\n"                 # row 7 bad increment
              "48,,5000,1,1,1,60,60,0\n"                  # row 8 empty zone
              "49,DE,-5,1,1,1,60,60,0\n"                  # row 9 negative
              "50,X,1,1\n")                               # row 10 wrong column count
    deck, errors = load_rate_deck(p)
    assert deck is None
    assert [str(e) for e in errors] == [
        "deck.csv:3:prefix: duplicate prefix '44' (first at row 2)",
        "deck.csv:4:prefix: prefix must be 1-15 digits '4a'",
        "deck.csv:5:price_peak: not an integer 'abc'",
        "deck.csv:6:price_peak: zone 'SE' has no price",
        "deck.csv:7:first_incr_s: increment must be 1..86400 s, got 0",
        "deck.csv:8:zone: empty zone",
        "deck.csv:9:connect_fee: negative amount '-5'",
        "deck.csv:10:: expected 9 columns, got 4",
    ]


def test_decimal_too_precise(tmp_path: Path) -> None:
    p = write(tmp_path, KIT_HEADER + "44,GB,0,0.00000125,0,0,60,60,0\n")
    _, errors = load_rate_deck(p, price_unit="decimal")
    assert [str(e) for e in errors] == [
        "deck.csv:2:price_peak: more than 6 decimals '0.00000125' (not exact in micro-units)"]


def test_header_mismatch(tmp_path: Path) -> None:
    p = write(tmp_path, "prefix,zone,conect_fee,price_peak,price_offpeak,price_weekend,"
                        "first_incr_s,next_incr_s,min_charge\n44,GB,0,1,1,1,60,60,0\n")
    _, errors = load_rate_deck(p)
    assert errors == [DeckError("deck.csv", 1, "connect_fee",
                                "missing column (required by the mapping)"),
                      DeckError("deck.csv", 1, "conect_fee", "unknown column (not in the mapping)")]


def test_effective_dates_same_prefix(tmp_path: Path) -> None:
    p = write(tmp_path, KIT_HEADER.rstrip("\n") + ",effective_date\n"
                        "44,GB,0,1,1,1,60,60,0,2026-01-01\n"
                        "44,GB,0,2,2,2,60,60,0,2026-07-01\n"
                        "44,GB,0,3,3,3,60,60,0,2026-07-01\n"
                        "45,DK,0,3,3,3,60,60,0,2026-13-01\n")
    _, errors = load_rate_deck(p)
    assert [str(e) for e in errors] == [
        "deck.csv:4:prefix: duplicate prefix '44' for effective date 2026-07-01 (first at row 3)",
        "deck.csv:5:effective_date: not a date (YYYY-MM-DD) '2026-13-01'"]


def test_not_utf8_and_empty(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_bytes(KIT_HEADER.encode() + b"44,G\xe9,0,1,1,1,60,60,0\n")
    assert "not UTF-8" in str(load_rate_deck(p)[1][0])
    assert str(load_rate_deck(write(tmp_path, "", "e.csv"))[1][0]) == \
        "e.csv:1:: empty file (no header row)"
    assert str(load_rate_deck(tmp_path / "missing.csv")[1][0]).startswith("missing.csv:0::")


def test_thousands_of_prefixes(tmp_path: Path) -> None:
    lines = [f"{1000 + i},Z{i % 50},0,{i},{i},{i},60,60,0" for i in range(5000)]
    deck, errors = load_rate_deck(write(tmp_path, KIT_HEADER + "\n".join(lines) + "\n"))
    assert errors == [] and deck is not None and len(deck.rows) == 5000


def test_plan_validation() -> None:
    deck, _ = None, None
    from engine.rating.plan import RateDeck
    d = RateDeck("d", (RateDeckRow("33", "FR", 1, 1, 1),))
    with pytest.raises(ValueError):
        RatingPlan(deck=d, per_call_rounding=(0, "up"))
    with pytest.raises(ValueError):
        RatingPlan(deck=d, unanswered="bill")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        TimeBands(peak_start=time(20), peak_end=time(8))
    assert hash(RatingPlan(deck=d)) == hash(RatingPlan(deck=d))
    assert deck is None
