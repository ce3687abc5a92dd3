"""Runtime values shared by both back ends (the compiled evaluator and the reference interpreter).

Numbers, money and percentages are `fractions.Fraction` (exact; percentages as shares: 20 % is
1/5); quantities are converted to their dimension's base unit (seconds, bytes, units);
durations to days or months; dates are `datetime.date`; texts `str`; conditions `bool`. The
checker has already typed every expression, so values carry no type tag at run time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import date

from dsl.exact import Fraction
from dsl.types import UNITS as TYPE_UNITS

Value = Fraction | date | bool | str
Env = Mapping[str, Value]

# Unit word -> (dimension, factor to the dimension's base unit): the checker's table.
UNITS: dict[str, tuple[str, int]] = {word: (u.dimension, int(u.factor)) for word, u in TYPE_UNITS.items()}


class EvaluationError(Exception):
    """A value the checker could not rule out went wrong at run time (division by zero...)."""


def unit_factor(unit: str) -> int:
    return UNITS[unit][1]


def _round_half_up(x: Fraction, places: int = 0) -> Fraction:
    scale = Fraction(10) ** places
    y = x * scale
    sign = -1 if y < 0 else 1
    return Fraction(sign * math.floor(abs(y) + Fraction(1, 2))) / scale


def _num(x: Value) -> Fraction:
    if isinstance(x, bool) or not isinstance(x, Fraction):
        raise EvaluationError(f"expected a number, got {x!r}")
    return x


def call_builtin(func: str, args: list[Value]) -> Value:
    if func == "min":
        return min(args)  # type: ignore[type-var,unused-ignore]
    if func == "max":
        return max(args)  # type: ignore[type-var,unused-ignore]
    if func == "abs":
        return abs(_num(args[0]))
    if func == "ceil":
        return Fraction(math.ceil(_num(args[0])))
    if func == "floor":
        return Fraction(math.floor(_num(args[0])))
    if func == "round":
        places = int(_num(args[1])) if len(args) > 1 else 0
        return _round_half_up(_num(args[0]), places)
    raise EvaluationError(f"unknown function {func}")


BUILTINS: frozenset[str] = frozenset({"min", "max", "abs", "ceil", "floor", "round"})


def arith(op: str) -> Callable[[Value, Value], Value]:
    def add(a: Value, b: Value) -> Value:
        return _num(a) + _num(b)

    def sub(a: Value, b: Value) -> Value:
        return _num(a) - _num(b)

    def mul(a: Value, b: Value) -> Value:
        return _num(a) * _num(b)

    def div(a: Value, b: Value) -> Value:
        d = _num(b)
        if d == 0:
            raise EvaluationError("division by zero")
        return _num(a) / d

    return {"+": add, "-": sub, "*": mul, "/": div}[op]


def compare(op: str) -> Callable[[Value, Value], bool]:
    import operator

    table: dict[str, Callable[[Value, Value], bool]] = {
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
        "==": operator.eq,
        "!=": operator.ne,
    }
    return table[op]
