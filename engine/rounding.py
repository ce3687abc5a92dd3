"""Rounding: the modes, the exact rounding of rationals, and the rounding rules of a ruleset.

Contract (the module docstring of engine/money.py, which re-exports all of this):
``RoundingRule.apply`` rounds any Decimal or Fraction to a multiple of its step with the given
mode. The computation is exact: the value is divided by the step as a rational number, rounded
to an integer, and multiplied back; no lossy Decimal division takes place.

A module of its own so that mypyc compiles it with the evaluator (engine.evaluator.native):
every line of a run is rounded here.
"""

from __future__ import annotations

import decimal
import fractions
from decimal import Decimal
from enum import StrEnum
from typing import Any

from dsl.exact import Fraction

__all__ = [
    "DEFAULT_LINE_ROUNDING",
    "RoundingMode",
    "RoundingRule",
    "as_fraction",
    "round_ratio",
    "round_rational",
    "to_decimal",
]


class RoundingMode(StrEnum):
    """How a value halfway (or not) between two multiples of the step is rounded."""

    HALF_UP = "half_up"  # ties away from zero (the usual commercial rounding)
    HALF_EVEN = "half_even"  # ties to the even multiple (banker's rounding)
    HALF_DOWN = "half_down"  # ties towards zero
    DOWN = "down"  # towards zero (truncation)
    UP = "up"  # away from zero
    CEILING = "ceiling"  # towards +infinity
    FLOOR = "floor"  # towards -infinity

    @property
    def decimal_constant(self) -> str:
        """The matching ``decimal.ROUND_*`` constant."""
        return _DECIMAL_CONSTANTS[self]


_DECIMAL_CONSTANTS: dict[RoundingMode, str] = {
    RoundingMode.HALF_UP: decimal.ROUND_HALF_UP,
    RoundingMode.HALF_EVEN: decimal.ROUND_HALF_EVEN,
    RoundingMode.HALF_DOWN: decimal.ROUND_HALF_DOWN,
    RoundingMode.DOWN: decimal.ROUND_DOWN,
    RoundingMode.UP: decimal.ROUND_UP,
    RoundingMode.CEILING: decimal.ROUND_CEILING,
    RoundingMode.FLOOR: decimal.ROUND_FLOOR,
}


def as_fraction(x: Decimal | Fraction | int) -> Fraction:
    """Convert an exact number to a Fraction, refusing floats and non-finite decimals."""
    if isinstance(x, bool | float):
        raise TypeError(f"money values must be Decimal, Fraction or int, not {type(x).__name__}")
    if isinstance(x, Fraction):
        return x
    if isinstance(x, int):
        return Fraction(x)
    if isinstance(x, fractions.Fraction):  # the standard library's, from a caller (dsl.exact)
        return Fraction(x.numerator, x.denominator)
    if isinstance(x, Decimal):
        if not x.is_finite():
            raise ValueError(f"not a finite number: {x}")
        return Fraction(x)
    raise TypeError(f"money values must be Decimal, Fraction or int, not {type(x).__name__}")


def round_rational(q: Fraction, mode: RoundingMode) -> int:
    """Round the rational ``q`` to an integer with ``mode``, exactly."""
    return round_ratio(q.numerator, q.denominator, mode)


def round_ratio(num: int, den: int, mode: RoundingMode) -> int:
    """Round ``num / den`` (``den > 0``) to an integer with ``mode``, exactly."""
    if den == 1:
        return num
    sign = -1 if num < 0 else 1
    mag = abs(num)
    if mode is RoundingMode.FLOOR:
        return num // den
    if mode is RoundingMode.CEILING:
        return -(-num // den)
    if mode is RoundingMode.DOWN:
        return sign * (mag // den)
    if mode is RoundingMode.UP:
        return sign * -(-mag // den)
    # Half modes: compare the remainder of |q| with one half.
    whole, rest = divmod(mag, den)
    twice = 2 * rest
    if twice > den:
        rounded = whole + 1
    elif twice < den:
        rounded = whole
    elif mode is RoundingMode.HALF_UP:
        rounded = whole + 1
    elif mode is RoundingMode.HALF_DOWN:
        rounded = whole
    else:  # HALF_EVEN: the even neighbour (sign does not matter for parity)
        rounded = whole if whole % 2 == 0 else whole + 1
    return sign * rounded


_TEN_POW = {k: 10**k for k in range(0, 19)}
_POWERS_OF_TEN = {-k: Decimal(1).scaleb(-k) for k in range(0, 19)} | {
    k: Decimal(1).scaleb(k) for k in range(1, 19)
}


class RoundingRule:
    """Round to a multiple of ``step`` (e.g. 0.01, 0.0001, 0.05, 1) with ``mode``.

    Written out rather than a frozen dataclass, as `engine.calendar.Period`: mypyc compiles
    this module, and every invoice line is rounded here. Read-only; ``mode`` also takes the
    mode's name."""

    __slots__ = ("_step", "_mode", "_places", "_description")

    def __init__(self, step: Decimal, mode: RoundingMode | str) -> None:
        if not isinstance(step, Decimal) or isinstance(step, bool):
            raise TypeError(f"rounding step must be a Decimal, not {type(step).__name__}")
        if not step.is_finite() or step <= 0:
            raise ValueError(f"rounding step must be a positive decimal, not {step}")
        self._step = step
        self._mode = mode if isinstance(mode, RoundingMode) else RoundingMode(mode)
        # k when the step is 10**-k (0.01, 0.0001, 1...): the integer fast path; else None.
        exponent = step.as_tuple().exponent
        places = None
        if isinstance(exponent, int) and exponent <= 0 and step == _POWERS_OF_TEN.get(exponent):
            places = -exponent
        self._places = places
        self._description = f"{self._mode.name} to {step:f}"  # in every line's rounding step

    @property
    def step(self) -> Decimal:
        return self._step

    @property
    def mode(self) -> RoundingMode:
        return self._mode

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RoundingRule):
            return NotImplemented
        return self._step == other._step and self._mode is other._mode

    def __hash__(self) -> int:
        return hash((self._step, self._mode))

    def __repr__(self) -> str:
        return f"RoundingRule(step={self._step!r}, mode={self._mode!r})"

    def __reduce__(self) -> tuple[type[RoundingRule], tuple[Decimal, RoundingMode]]:
        return (RoundingRule, (self._step, self._mode))

    def apply(self, x: Decimal | Fraction | int) -> Decimal:
        """Round ``x`` to a multiple of the step; the result has the step's exponent."""
        places = self._places
        if places is not None and type(x) is Fraction:
            # Hot path (a line amount in cents): integers only, no intermediate Fraction.
            n = round_ratio(x.numerator * _TEN_POW[places], x.denominator, self.mode)
            return Decimal(f"{n}E-{places}")
        return self._apply_slow(x)

    def apply_ratio(self, num: int, den: int) -> Decimal:
        """Round ``num / den`` (``den > 0``): ``apply(Fraction(num, den))`` without the Fraction
        on the fast path."""
        places = self._places
        if places is not None:
            return Decimal(f"{round_ratio(num * _TEN_POW[places], den, self.mode)}E-{places}")
        return self._apply_slow(Fraction(num, den))

    def _apply_slow(self, x: Decimal | Fraction | int) -> Decimal:
        exponent = self.step.as_tuple().exponent
        if isinstance(exponent, int) and self.step == _POWERS_OF_TEN.get(exponent):
            # Fast path (steps 0.01, 0.0001...): integer arithmetic, and a Decimal built from
            # text, which is exact whatever the context's precision.
            assert isinstance(exponent, int)
            q = as_fraction(x) * _TEN_POW[-exponent] if exponent < 0 else as_fraction(x) / _TEN_POW[exponent]
            return Decimal(f"{round_rational(q, self.mode)}E{exponent}")
        multiples = round_rational(as_fraction(x) / Fraction(self.step), self.mode)
        digits = len(str(abs(multiples))) + len(self.step.as_tuple().digits) + 2
        with decimal.localcontext() as ctx:
            ctx.prec = max(digits, 28)
            # A SignalDict, which typeshed calls a dict: compiled code would check that it is one.
            traps: Any = getattr(ctx, "traps")  # noqa: B009
            traps[decimal.Inexact] = True
            return Decimal(multiples) * self.step

    def describe(self) -> str:
        """Human description, e.g. ``HALF_UP to 0.01``."""
        return self._description


DEFAULT_LINE_ROUNDING = RoundingRule(Decimal("0.01"), RoundingMode.HALF_UP)


def to_decimal(
    x: Decimal | Fraction | int,
    places: int = 2,
    mode: RoundingMode = RoundingMode.HALF_UP,
) -> Decimal:
    """Round an exact value to ``places`` decimal places (``places`` may be 0 or negative)."""
    return RoundingRule(Decimal(1).scaleb(-places), mode).apply(x)
