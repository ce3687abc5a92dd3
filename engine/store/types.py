"""Column types of the store: exact decimals, money, UTC timestamps, JSON documents.

- ``Money``: amounts already rounded by the ruleset. ``NUMERIC(18, 6)`` on PostgreSQL; on
  SQLite (whose NUMERIC affinity would turn values into binary floats) the exact decimal text.
  A value with more than 6 decimals or 12 integer digits is refused, never silently rounded.
  Read back without the padding zeros past the cents (``12.500000`` -> ``12.50``), the same
  value on both databases.
- ``ExactDecimal``: input data and exact prices (quantities, unit prices) stored as their decimal
  text on every backend, so ``Decimal("49.90")`` comes back as ``Decimal("49.90")`` (same value,
  same exponent: the text of invoices built from the store equals the text built from files).
- ``UTCDateTime``: aware datetimes stored as naive UTC, given back aware in UTC.
- ``JSONDoc``: JSON documents, stored as written (PostgreSQL ``json``, not ``jsonb``, which would
  reorder their keys: an emitted invoice's document comes back exactly as it was stored).
  A value may be given already encoded as ``JSONText`` (the text ``json.dumps`` gives it): the
  store's engines serialise JSON with ``dump_json``, which keeps such a text as it is, so that a
  document written in bulk is encoded once.

Floats are refused everywhere: a float reaching a money column is a bug upstream.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import JSON, DateTime, Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["ExactDecimal", "JSONDoc", "JSONText", "Money", "UTCDateTime", "dump_json"]

_MONEY_SCALE = 6
_MONEY_INTEGER_DIGITS = 12
_CENT = Decimal("0.01")
_MONEY_QUANTUM = Decimal(1).scaleb(-_MONEY_SCALE)
_MONEY_LIMIT = Decimal(10) ** _MONEY_INTEGER_DIGITS


def _as_decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, (bool, float)):
        raise TypeError(f"{what} must be a Decimal, not {type(value).__name__} ({value!r})")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{what} must be finite, got {value}")
        return value
    if isinstance(value, str):
        try:
            parsed = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{what}: not a decimal {value!r}") from None
        return _as_decimal(parsed, what)
    raise TypeError(f"{what} must be a Decimal, not {type(value).__name__}")


class Money(TypeDecorator[Decimal]):
    """A rounded amount: NUMERIC(18, 6) (SQLite: exact decimal text)."""

    impl = Numeric(18, _MONEY_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(48))
        return dialect.type_descriptor(Numeric(18, _MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = (
            value if type(value) is Decimal and value.is_finite() else _as_decimal(value, "money")
        )
        text = str(amount)
        point = text.find(".")
        # str() is plain unless the exponent is positive or the value tiny: then look closer
        if "E" in text or (point >= 0 and len(text) - point - 1 > _MONEY_SCALE):
            exponent = amount.as_tuple().exponent
            assert isinstance(exponent, int)
            if exponent < -_MONEY_SCALE and amount != amount.quantize(_MONEY_QUANTUM):
                raise ValueError(f"money {amount} has more than {_MONEY_SCALE} decimals")
        if amount and amount.adjusted() >= _MONEY_INTEGER_DIGITS:  # abs(amount) >= 10**12
            raise ValueError(f"money {amount} exceeds NUMERIC(18, {_MONEY_SCALE})")
        return text if dialect.name == "sqlite" else amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
        exponent = amount.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -2:  # NUMERIC(18, 6) pads to 6 decimals
            cents = amount.quantize(_CENT)
            amount = cents if cents == amount else amount.normalize()
        return amount


class ExactDecimal(TypeDecorator[Decimal]):
    """A decimal kept exactly as given (value and exponent), stored as text."""

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        text = str(
            value if type(value) is Decimal and value.is_finite() else _as_decimal(value, "decimal")
        )
        if len(text) > 64:
            raise ValueError(f"decimal {text[:20]}... is too long to store")
        return text

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware datetime, stored as naive UTC, read back aware (UTC)."""

    impl = DateTime()
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise TypeError(f"an aware datetime is needed, got {value!r}")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC)


class JSONDoc(TypeDecorator[Any]):
    """A JSON document, kept as written (key order included)."""

    impl = JSON()
    cache_ok = True


class JSONText(str):
    """A JSON value already encoded, exactly as ``json.dumps(value)`` (default settings) gives
    it: stored as it is in a ``JSONDoc`` column (``dump_json``)."""

    __slots__ = ()


def dump_json(value: Any) -> str:
    """The JSON serializer of the store's engines: ``json.dumps`` (default settings), except
    that a ``JSONText`` is already encoded and kept as it is."""
    if type(value) is JSONText:
        return str.__str__(value)
    return json.dumps(value)
