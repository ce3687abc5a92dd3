"""Tests of engine.money: exact rounding, strict decimal parsing, Money arithmetic."""

from __future__ import annotations

import decimal
import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dsl.exact import Fraction
from engine.money import (
    DEFAULT_LINE_ROUNDING,
    CurrencyMismatch,
    Money,
    RoundingMode,
    RoundingRule,
    parse_decimal,
    sum_money,
    to_decimal,
)

D = Decimal
M = RoundingMode


# --------------------------------------------------------------------------- rounding


@pytest.mark.parametrize(
    ("value", "step", "mode", "expected"),
    [
        ("0.125", "0.01", M.HALF_UP, "0.13"),
        ("0.125", "0.01", M.HALF_EVEN, "0.12"),
        ("0.135", "0.01", M.HALF_EVEN, "0.14"),
        ("0.125", "0.01", M.HALF_DOWN, "0.12"),
        ("-0.125", "0.01", M.HALF_UP, "-0.13"),
        ("-0.125", "0.01", M.HALF_DOWN, "-0.12"),
        ("-0.125", "0.01", M.HALF_EVEN, "-0.12"),
        ("0.129", "0.01", M.DOWN, "0.12"),
        ("-0.129", "0.01", M.DOWN, "-0.12"),
        ("0.121", "0.01", M.UP, "0.13"),
        ("-0.121", "0.01", M.UP, "-0.13"),
        ("-0.129", "0.01", M.CEILING, "-0.12"),
        ("0.121", "0.01", M.CEILING, "0.13"),
        ("-0.121", "0.01", M.FLOOR, "-0.13"),
        ("0.129", "0.01", M.FLOOR, "0.12"),
        ("1.025", "0.05", M.HALF_UP, "1.05"),
        ("1.024", "0.05", M.HALF_UP, "1.00"),
        ("0.075", "0.05", M.HALF_EVEN, "0.10"),
        ("0.025", "0.05", M.HALF_EVEN, "0.00"),
        ("2.5", "1", M.HALF_EVEN, "2"),
        ("3.5", "1", M.HALF_EVEN, "4"),
        ("12.34567", "0.0001", M.HALF_UP, "12.3457"),
        ("3", "0.01", M.HALF_UP, "3.00"),
        ("0", "0.01", M.UP, "0.00"),
    ],
)
def test_rounding_examples(value: str, step: str, mode: RoundingMode, expected: str) -> None:
    result = RoundingRule(D(step), mode).apply(D(value))
    assert result == D(expected)
    assert str(result) == expected  # the step's exponent is kept


def test_rounding_fractions_exactly() -> None:
    cent = DEFAULT_LINE_ROUNDING
    assert cent.apply(Fraction(1, 3)) == D("0.33")
    assert cent.apply(Fraction(2, 3)) == D("0.67")
    assert cent.apply(Fraction(-1, 200)) == D("-0.01")  # -0.005, half away from zero
    assert RoundingRule(D("0.0001"), M.HALF_UP).apply(Fraction(2, 3)) == D("0.6667")
    # 49.90 EUR * 19/30 days = 31.603333...
    assert cent.apply(Fraction(D("49.90")) * Fraction(19, 30)) == D("31.60")


def test_rounding_is_exact_beyond_decimal_precision() -> None:
    # Just above one half by 1e-40: a 28-digit Decimal division would see exactly 0.5.
    just_above_half = Fraction(1, 2) + Fraction(1, 10**40)
    assert RoundingRule(D("1"), M.HALF_DOWN).apply(just_above_half) == D(1)
    assert RoundingRule(D("1"), M.HALF_EVEN).apply(just_above_half) == D(1)
    just_below_half = Fraction(1, 2) - Fraction(1, 10**40)
    assert RoundingRule(D("1"), M.HALF_UP).apply(just_below_half) == D(0)
    # Very large amounts keep every digit.
    big = D("123456789012345678901234567890.125")
    assert RoundingRule(D("0.01"), M.HALF_UP).apply(big) == D("123456789012345678901234567890.13")


def test_rounding_rule_validation_and_description() -> None:
    assert DEFAULT_LINE_ROUNDING.describe() == "HALF_UP to 0.01"
    assert RoundingRule(D("0.05"), M.HALF_EVEN).describe() == "HALF_EVEN to 0.05"
    assert RoundingRule(D("0.01"), "floor").mode is M.FLOOR  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        RoundingRule(D("0"), M.HALF_UP)
    with pytest.raises(ValueError):
        RoundingRule(D("-0.01"), M.HALF_UP)
    with pytest.raises(TypeError):
        RoundingRule(0.01, M.HALF_UP)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        DEFAULT_LINE_ROUNDING.apply(0.1)  # type: ignore[arg-type]


def test_rounding_modes_map_to_decimal_constants() -> None:
    assert M.HALF_UP.decimal_constant == decimal.ROUND_HALF_UP
    assert M.HALF_EVEN.decimal_constant == decimal.ROUND_HALF_EVEN
    assert M.FLOOR.decimal_constant == decimal.ROUND_FLOOR
    assert {m.value for m in M} == {
        "half_up",
        "half_even",
        "half_down",
        "down",
        "up",
        "ceiling",
        "floor",
    }


def test_to_decimal() -> None:
    assert to_decimal(Fraction(2, 3)) == D("0.67")
    assert to_decimal(Fraction(2, 3), places=4, mode=M.DOWN) == D("0.6666")
    assert to_decimal(Fraction(5, 2), places=0, mode=M.HALF_EVEN) == D("2")


def _reference_round(x: Fraction, step: Fraction, mode: RoundingMode) -> Fraction:
    """Slow reference: pick among neighbouring multiples by the mode's definition."""
    q = x / step
    below = math.floor(q)
    candidates = [below - 1, below, below + 1, below + 2]
    if mode is M.FLOOR:
        k = max(c for c in candidates if c <= q)
    elif mode is M.CEILING:
        k = min(c for c in candidates if c >= q)
    elif mode is M.DOWN:
        k = max((c for c in candidates if abs(c) <= abs(q) and (c * q >= 0)), key=abs)
    elif mode is M.UP:
        k = min((c for c in candidates if abs(c) >= abs(q) and (c * q >= 0)), key=abs)
    else:
        nearest = min(abs(c - q) for c in candidates)
        ties = [c for c in candidates if abs(c - q) == nearest]
        if len(ties) == 1:
            k = ties[0]
        elif mode is M.HALF_UP:
            k = max(ties, key=abs)
        elif mode is M.HALF_DOWN:
            k = min(ties, key=abs)
        else:
            k = next(c for c in ties if c % 2 == 0)
    return k * step


steps = st.sampled_from([D("0.01"), D("0.0001"), D("0.05"), D("1"), D("0.1"), D("0.25"), D("10")])
modes = st.sampled_from(list(RoundingMode))
fractions = st.fractions(min_value=-10_000, max_value=10_000, max_denominator=10**6)
decimals = st.decimals(
    min_value=-100_000, max_value=100_000, places=5, allow_nan=False, allow_infinity=False
)


@given(x=fractions, step=steps, mode=modes)
def test_rounding_fraction_matches_slow_reference(
    x: Fraction, step: Decimal, mode: RoundingMode
) -> None:
    result = RoundingRule(step, mode).apply(x)
    assert Fraction(result) == _reference_round(x, Fraction(step), mode)
    assert Fraction(result) % Fraction(step) == 0
    assert abs(Fraction(result) - x) < Fraction(step)


@given(x=decimals, mode=modes, places=st.integers(min_value=0, max_value=4))
def test_rounding_decimal_matches_decimal_quantize(
    x: Decimal, mode: RoundingMode, places: int
) -> None:
    step = D(1).scaleb(-places)
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        expected = x.quantize(step, rounding=mode.decimal_constant)
    result = RoundingRule(step, mode).apply(x)
    assert result == expected
    assert result.as_tuple().exponent == -places


@given(x=fractions, step=steps)
def test_half_modes_are_within_half_a_step(x: Fraction, step: Decimal) -> None:
    for mode in (M.HALF_UP, M.HALF_DOWN, M.HALF_EVEN):
        assert abs(Fraction(RoundingRule(step, mode).apply(x)) - x) <= Fraction(step) / 2


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [("49.90", "49.90"), ("-3", "-3"), ("0.0125", "0.0125"), ("+1.5", "1.5"), ("0", "0")],
)
def test_parse_decimal_accepts(text: str, expected: str) -> None:
    value = parse_decimal(text)
    assert value == D(expected)
    assert isinstance(value, Decimal)


def test_parse_decimal_keeps_trailing_zeros() -> None:
    assert str(parse_decimal("49.90")) == "49.90"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("1,5", "dot"),
        ("1e3", "exponent"),
        ("1.5E-2", "exponent"),
        ("1 000", "thousands"),
        ("1,000.50", "thousands"),
        ("1'000", "thousands"),
        (".5", "both sides"),
        ("5.", "both sides"),
        ("NaN", "finite"),
        ("Infinity", "finite"),
        (" 1.5", "spaces"),
        ("12abc", "expected digits"),
        ("--1", "expected digits"),
        ("0x10", "expected digits"),
        ("١٢", "expected digits"),  # non-ASCII digits
    ],
)
def test_parse_decimal_refuses(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_decimal(text)


@given(decimals)
def test_parse_decimal_round_trips_plain_notation(x: Decimal) -> None:
    assert parse_decimal(format(x, "f")) == x


# --------------------------------------------------------------------------- Money


def eur(text: str) -> Money:
    return Money(D(text), "EUR")


def test_money_arithmetic() -> None:
    assert eur("49.90") + eur("0.10") == eur("50.00")
    assert eur("49.90") - eur("50") == eur("-0.10")
    assert -eur("3") == eur("-3")
    assert eur("49.90") * 3 == eur("149.70")
    assert 3 * eur("49.90") == eur("149.70")
    assert eur("49.90") * D("0.5") == eur("24.950")
    assert abs(eur("-2")) == eur("2")
    assert eur("1") < eur("2") <= eur("2") < eur("3")
    assert eur("3") > eur("2") >= eur("2")
    assert sum_money([eur("1.10"), eur("2.20")], "EUR") == eur("3.30")
    assert sum_money([], "EUR") == Money.zero("EUR")
    assert eur("1.005").rounded() == eur("1.01")


def test_money_refuses_mixing_currencies() -> None:
    usd = Money(D("1"), "USD")
    with pytest.raises(CurrencyMismatch):
        eur("1") + usd
    with pytest.raises(CurrencyMismatch):
        eur("1") - usd
    with pytest.raises(CurrencyMismatch):
        _ = eur("1") < usd
    with pytest.raises(CurrencyMismatch):
        sum_money([usd], "EUR")
    assert eur("1") != usd
    assert issubclass(CurrencyMismatch, ValueError)


def test_money_refuses_floats_and_bad_currencies() -> None:
    with pytest.raises(TypeError):
        Money(49.9, "EUR")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(True, "EUR")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        eur("1") * 1.5
    with pytest.raises(TypeError):
        eur("1") * Fraction(1, 3)
    with pytest.raises(ValueError):
        Money(D("NaN"), "EUR")
    with pytest.raises(ValueError):
        Money(D("1"), "eur")
    assert Money(3, "EUR").amount == D(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        ("49.90", "49.90 EUR"),
        ("49.9", "49.90 EUR"),
        ("3", "3.00 EUR"),
        ("-3", "-3.00 EUR"),
        ("0.0125", "0.0125 EUR"),
        ("-0.00", "0.00 EUR"),
        ("1E+3", "1000.00 EUR"),
    ],
)
def test_money_format(amount: str, text: str) -> None:
    assert eur(amount).format() == text
    assert str(eur(amount)) == text


def test_money_is_immutable_and_hashable() -> None:
    money = eur("1.0")
    with pytest.raises(AttributeError):
        money.amount = D(2)  # type: ignore[misc]
    assert hash(money) == hash(eur("1.00"))
