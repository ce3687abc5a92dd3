"""Exact money arithmetic for billing.

Contract:
- Amounts are ``decimal.Decimal`` (or ``fractions.Fraction`` for intermediate exact values);
  a float is refused everywhere, because a float cannot represent 0.10 EUR.
- ``RoundingRule.apply`` rounds any Decimal or Fraction to a multiple of its step with the
  given mode. The computation is exact: the value is divided by the step as a rational number,
  rounded to an integer, and multiplied back; no lossy Decimal division takes place.
- ``parse_decimal`` is strict: a dot as decimal separator, an optional sign, no exponent and no
  thousands separator. It raises ``ValueError`` with a message saying what is wrong.
- ``Money`` is an immutable amount in one currency; mixing currencies raises
  ``CurrencyMismatch``.
"""

from __future__ import annotations

import decimal
import fractions
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from dsl.exact import Fraction

__all__ = [
    "DEFAULT_LINE_ROUNDING",
    "CurrencyMismatch",
    "Money",
    "RoundingMode",
    "RoundingRule",
    "as_fraction",
    "parse_decimal",
    "round_rational",
    "sum_money",
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


@dataclass(frozen=True)
class RoundingRule:
    """Round to a multiple of ``step`` (e.g. 0.01, 0.0001, 0.05, 1) with ``mode``."""

    step: Decimal
    mode: RoundingMode
    # k when the step is 10**-k (0.01, 0.0001, 1...): the integer fast path; else None.
    _places: int | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.step, Decimal) or isinstance(self.step, bool):
            raise TypeError(f"rounding step must be a Decimal, not {type(self.step).__name__}")
        if not self.step.is_finite() or self.step <= 0:
            raise ValueError(f"rounding step must be a positive decimal, not {self.step}")
        if not isinstance(self.mode, RoundingMode):
            object.__setattr__(self, "mode", RoundingMode(self.mode))
        exponent = self.step.as_tuple().exponent
        if isinstance(exponent, int) and exponent <= 0 and self.step == _POWERS_OF_TEN.get(exponent):
            object.__setattr__(self, "_places", -exponent)

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
            ctx.traps[decimal.Inexact] = True
            return Decimal(multiples) * self.step

    def describe(self) -> str:
        """Human description, e.g. ``HALF_UP to 0.01``."""
        return f"{self.mode.name} to {self.step:f}"


DEFAULT_LINE_ROUNDING = RoundingRule(Decimal("0.01"), RoundingMode.HALF_UP)


def to_decimal(
    x: Decimal | Fraction | int,
    places: int = 2,
    mode: RoundingMode = RoundingMode.HALF_UP,
) -> Decimal:
    """Round an exact value to ``places`` decimal places (``places`` may be 0 or negative)."""
    return RoundingRule(Decimal(1).scaleb(-places), mode).apply(x)


_DECIMAL_RE = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def parse_decimal(text: str) -> Decimal:
    """Parse a strict decimal literal: ``49.90``, ``-3``, ``0.0125``, ``+1.5``.

    Refused, each with a specific message: empty text, a comma separator, exponent notation,
    thousands separators (space, apostrophe, underscore, comma), ``.5`` / ``5.``, NaN/Infinity,
    surrounding spaces and anything else that is not digits.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_decimal expects a string, not {type(text).__name__}")
    if _DECIMAL_RE.fullmatch(text):
        return Decimal(text)
    shown = repr(text)
    if text == "":
        raise ValueError("invalid decimal '': empty value")
    if text != text.strip():
        raise ValueError(f"invalid decimal {shown}: leading or trailing spaces")
    body = text.lstrip("+-")
    if re.fullmatch(r"[0-9]+,[0-9]+", body):
        raise ValueError(f"invalid decimal {shown}: use a dot as decimal separator, not a comma")
    if re.fullmatch(r"[0-9.]*[0-9][eE][+-]?[0-9]+", body):
        raise ValueError(f"invalid decimal {shown}: exponent notation is not allowed")
    if re.fullmatch(r"[0-9]{1,3}([ ,'_\u00a0\u202f][0-9]{3})+(\.[0-9]+)?", body):
        raise ValueError(f"invalid decimal {shown}: thousands separators are not allowed")
    if re.fullmatch(r"\.[0-9]+|[0-9]+\.", body):
        raise ValueError(f"invalid decimal {shown}: digits are needed on both sides of the dot")
    if body.lower() in {"nan", "inf", "infinity", "snan"}:
        raise ValueError(f"invalid decimal {shown}: not a finite number")
    raise ValueError(
        f"invalid decimal {shown}: expected digits with an optional sign and dot, e.g. 49.90"
    )


class CurrencyMismatch(ValueError):
    """Raised when amounts in two different currencies are combined or compared."""


_CURRENCY_RE = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True)
class Money:
    """An exact amount in one currency (ISO 4217 code, e.g. ``EUR``)."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        amount = self.amount
        if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
            raise TypeError(f"Money amount must be a Decimal (or int), not {type(amount).__name__}")
        if isinstance(amount, int):
            object.__setattr__(self, "amount", Decimal(amount))
        elif not amount.is_finite():
            raise ValueError(f"Money amount must be finite, not {amount}")
        if not isinstance(self.currency, str) or not _CURRENCY_RE.fullmatch(self.currency):
            raise ValueError(f"currency must be a 3-letter ISO 4217 code, not {self.currency!r}")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    def _same_currency(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} and {other.currency} amounts")

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __pos__(self) -> Money:
        return self

    def __abs__(self) -> Money:
        return Money(abs(self.amount), self.currency)

    def __mul__(self, factor: object) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, Decimal | int):
            return NotImplemented
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return self.amount < other.amount

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return self.amount <= other.amount

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return self.amount > other.amount

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return self.amount >= other.amount

    def is_zero(self) -> bool:
        return self.amount == 0

    def rounded(self, rule: RoundingRule = DEFAULT_LINE_ROUNDING) -> Money:
        return Money(rule.apply(self.amount), self.currency)

    def format(self) -> str:
        """``49.90 EUR``: at least two decimals, never rounds away extra precision."""
        amount = self.amount
        if int(amount.as_tuple().exponent) > -2:
            amount = amount.quantize(Decimal("0.01"))
        if amount == 0:
            amount = abs(amount)  # no "-0.00"
        return f"{amount:f} {self.currency}"

    def __str__(self) -> str:
        return self.format()


def sum_money(amounts: Iterable[Money], currency: str) -> Money:
    """Sum amounts of ``currency`` (an empty iterable gives zero in that currency)."""
    total = Money.zero(currency)
    for amount in amounts:
        total = total + amount
    return total
