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

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from engine.rounding import (
    DEFAULT_LINE_ROUNDING,
    RoundingMode,
    RoundingRule,
    as_fraction,
    round_rational,
    to_decimal,
)

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
