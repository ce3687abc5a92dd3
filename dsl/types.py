"""The expression type system and the exact evaluator of constant expressions.

Types (docs/semantics.md, "Expressions and types"): money (with a currency), number, percent,
quantity (dimension time, data or count), duration (days or months; years are 12 months),
date, text, boolean. `UNKNOWN` is the type of an expression that already has an error: it is
compatible with everything, so one mistake gives one diagnostic, not a cascade.

Rules:
- `+ -` need the same type (quantities of the same dimension: `1 minute + 30 seconds`).
- `*`: number * X and X * number give X; percent * X gives X (a share of it); money * money,
  quantity * money... are errors.
- `/`: X / number gives X; X / X (same type) gives a number (`money / money`).
- comparisons need the same type and give a boolean; `< <= > >=` need an ordered type.
- `and`, `or`, `not` take booleans; `-x` a numeric value.
- functions: `min`, `max` (one or more values of one type), `abs`, `ceil`, `floor`, `round(x)`,
  `round(x, digits)`.

`type_of(expr, env)` computes a type and reports E100 (unknown name or function), E102 (type or
unit error) and E114 (money in another currency than the ruleset's). `const_value(expr, consts)`
computes the exact value of a constant expression with `fractions.Fraction` (never floats); the
compiler can reuse it with `variables` bound.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from types import MappingProxyType

from dsl import nodes as n
from dsl.diagnostics import Diagnostic, RulesetError
from dsl.exact import Fraction

__all__ = [
    "BOOLEAN",
    "BadValue",
    "CURRENCIES",
    "DATE",
    "FUNCTIONS",
    "NUMBER",
    "NUMERIC_KINDS",
    "PERCENT",
    "TEXT",
    "UNITS",
    "UNKNOWN",
    "Env",
    "EvalError",
    "NotConstant",
    "Type",
    "Unit",
    "Value",
    "compatible",
    "const_value",
    "did_you_mean",
    "duration",
    "expect",
    "money",
    "quantity",
    "type_of",
    "unit_type",
]

CURRENCIES = ("EUR", "USD", "GBP", "CHF")
NUMERIC_KINDS = frozenset({"money", "number", "percent", "quantity", "duration"})
ORDERED_KINDS = NUMERIC_KINDS | {"date"}


# ------------------------------------------------------------------------------ types
@dataclass(frozen=True, slots=True)
class Type:
    """`kind` is money | number | percent | quantity | duration | date | text | boolean | unknown.

    `param` is the currency of money (None: the ruleset's, whatever it is), the dimension of a
    quantity (time | data | count) or the unit of a duration (days | months). `unit` is the
    unit word as written, only for messages ("quantity (minutes)"); it takes no part in
    equality.
    """

    kind: str
    param: str | None = None
    unit: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        if self.kind == "money":
            return f"money ({self.param})" if self.param else "money"
        if self.kind in ("quantity", "duration"):
            shown = self.unit or self.param
            return f"{self.kind} ({shown})" if shown else self.kind
        return self.kind

    @property
    def is_unknown(self) -> bool:
        return self.kind == "unknown"

    @property
    def is_numeric(self) -> bool:
        return self.kind in NUMERIC_KINDS


NUMBER = Type("number")
PERCENT = Type("percent")
DATE = Type("date")
TEXT = Type("text")
BOOLEAN = Type("boolean")
UNKNOWN = Type("unknown")


def money(currency: str | None = None) -> Type:
    return Type("money", currency)


def quantity(dimension: str, unit: str | None = None) -> Type:
    """A quantity of `dimension` time | data | count."""
    return Type("quantity", dimension, unit)


def duration(unit: str, written: str | None = None) -> Type:
    """A duration counted in `unit` days | months."""
    return Type("duration", unit, written)


def compatible(a: Type, b: Type) -> bool:
    """Same type, as far as the checker can tell (UNKNOWN and a currency-less money match)."""
    if a.is_unknown or b.is_unknown:
        return True
    if a.kind != b.kind:
        return False
    if a.kind == "money":
        return a.param is None or b.param is None or a.param == b.param
    return a.param == b.param


# ------------------------------------------------------------------------------ units
@dataclass(frozen=True, slots=True)
class Unit:
    word: str
    kind: str  # quantity | duration
    dimension: str  # time | data | count (quantity); days | months (duration)
    factor: Fraction  # how many base units (seconds, bytes, units; days, months) in one

    @property
    def type(self) -> Type:
        return Type(self.kind, self.dimension, self.word)


def _units() -> Mapping[str, Unit]:
    table: dict[str, Unit] = {}

    def add(words: tuple[str, ...], kind: str, dim: str, factor: int) -> None:
        for w in words:
            table[w] = Unit(w, kind, dim, Fraction(factor))

    add(("seconds", "second"), "quantity", "time", 1)
    add(("minutes", "minute"), "quantity", "time", 60)
    add(("hours", "hour"), "quantity", "time", 3600)
    add(("bytes", "byte"), "quantity", "data", 1)
    add(("kB",), "quantity", "data", 1000)
    add(("MB",), "quantity", "data", 1000**2)
    add(("GB",), "quantity", "data", 1000**3)
    add(("sms", "units", "unit"), "quantity", "count", 1)
    add(("days", "day"), "duration", "days", 1)
    add(("months", "month"), "duration", "months", 1)
    add(("years", "year"), "duration", "months", 12)
    return MappingProxyType(table)


UNITS: Mapping[str, Unit] = _units()


def unit_type(word: str) -> Type | None:
    """The type of a quantity written with `word` (`minutes` -> quantity (time)), or None."""
    u = UNITS.get(word)
    return u.type if u else None


# ------------------------------------------------------------------------------ type checking
FUNCTIONS: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "min": (1, 99),
        "max": (1, 99),
        "abs": (1, 1),
        "ceil": (1, 1),
        "floor": (1, 1),
        "round": (1, 2),
    }
)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """`did you mean 'X'?` for the closest candidate, or None."""
    pool = sorted({str(c) for c in candidates})
    close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in pool}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f"did you mean '{close[0]}'?" if close else None


@dataclass(frozen=True)
class Env:
    """What an expression can see: variables of its scope, the constants' types and the
    ruleset's currency (None when the ruleset does not say)."""

    variables: Mapping[str, Type] = field(default_factory=dict)
    consts: Mapping[str, Type] = field(default_factory=dict)
    currency: str | None = None
    scope: str = "a constant"  # for messages: "a discount condition"...

    def with_variables(self, variables: Mapping[str, Type], scope: str) -> Env:
        return Env(variables, self.consts, self.currency, scope)


class _Typer:
    def __init__(self, env: Env, diags: list[Diagnostic]):
        self.env = env
        self.diags = diags

    def error(self, code: str, msg: str, node: n.Node, hint: str | None = None) -> Type:
        self.diags.append(Diagnostic(code, msg, node.span, hint))
        return UNKNOWN

    def __call__(self, e: n.Expr) -> Type:
        if isinstance(e, n.NumberLit):
            return NUMBER
        if isinstance(e, n.MoneyLit):
            cur = self.env.currency
            if cur is not None and e.currency != cur:
                self.error(
                    "E114",
                    f"amount in {e.currency} but the ruleset's currency is {cur}",
                    e,
                    f"write {e.amount} {cur}, or change the ruleset's currency",
                )
                return money(cur)
            return money(e.currency)
        if isinstance(e, n.PercentLit):
            return PERCENT
        if isinstance(e, n.QuantityLit):
            t = unit_type(e.unit)
            if t is None:
                return self.error(
                    "E102", f"unknown unit '{e.unit}'", e, did_you_mean(e.unit, UNITS)
                )
            return t
        if isinstance(e, n.DateLit):
            return DATE
        if isinstance(e, n.StringLit):
            return TEXT
        if isinstance(e, n.BoolLit):
            return BOOLEAN
        if isinstance(e, n.Name):
            return self.name(e)
        if isinstance(e, n.Call):
            return self.call(e)
        if isinstance(e, n.Binary):
            return self.binary(e)
        if isinstance(e, n.Compare):
            return self.compare(e)
        if isinstance(e, n.BoolOp):
            left, right = self(e.left), self(e.right)
            for side, t in ((e.left, left), (e.right, right)):
                if not compatible(t, BOOLEAN):
                    self.error("E102", f"'{e.op}' needs true/false values, got {t}", side)
            return BOOLEAN
        if isinstance(e, n.Not):
            t = self(e.operand)
            if not compatible(t, BOOLEAN):
                self.error("E102", f"'not' needs a true/false value, got {t}", e.operand)
            return BOOLEAN
        if isinstance(e, n.Neg):
            t = self(e.operand)
            if t.is_unknown or t.is_numeric:
                return t
            return self.error("E102", f"cannot negate {t}", e)
        return self.error("E102", f"not an expression: {type(e).__name__}", e)  # pragma: no cover

    def name(self, e: n.Name) -> Type:
        if e.id in self.env.variables:
            return self.env.variables[e.id]
        if e.id in self.env.consts:
            return self.env.consts[e.id]
        known = [*self.env.variables, *self.env.consts]
        where = f" in {self.env.scope}"
        if self.env.variables:
            where += " (variables: " + ", ".join(sorted(self.env.variables)) + ")"
        return self.error("E100", f"unknown name '{e.id}'{where}", e, did_you_mean(e.id, known))

    def call(self, e: n.Call) -> Type:
        if e.func not in FUNCTIONS:
            return self.error(
                "E100",
                f"unknown function '{e.func}'",
                e,
                did_you_mean(e.func, FUNCTIONS) or "functions: " + ", ".join(FUNCTIONS),
            )
        args = [self(a) for a in e.args]
        lo, hi = FUNCTIONS[e.func]
        if not lo <= len(args) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}" if hi < 99 else f"at least {lo}"
            return self.error("E102", f"{e.func}() takes {want} argument(s), got {len(args)}", e)
        if e.func in ("min", "max"):
            first = next((t for t in args if not t.is_unknown), UNKNOWN)
            if not (first.is_unknown or first.kind in ORDERED_KINDS):
                return self.error(
                    "E102", f"{e.func}() needs numbers, amounts or dates, got {first}", e
                )
            for a, t in zip(e.args, args, strict=True):
                if not compatible(first, t):
                    return self.error(
                        "E102", f"{e.func}() needs values of one type: {first} and {t}", a
                    )
            return _merge(first, args)
        t = args[0]
        if not (t.is_unknown or t.is_numeric):
            return self.error("E102", f"{e.func}() needs a number or an amount, got {t}", e.args[0])
        if e.func == "round" and len(args) == 2 and not compatible(args[1], NUMBER):
            self.error("E102", f"round() digits must be a number, got {args[1]}", e.args[1])
        return t

    def binary(self, e: n.Binary) -> Type:
        a, b = self(e.left), self(e.right)
        if a.is_unknown or b.is_unknown:
            return UNKNOWN
        if e.op in ("+", "-"):
            if a.kind == b.kind == "money" and not compatible(a, b):
                if self.env.currency is not None:
                    return money(self.env.currency)  # the literal already got its E114
                return self.error("E114", f"cannot mix {a.param} and {b.param} amounts", e)
            if compatible(a, b) and a.kind in NUMERIC_KINDS:
                return _merge(a, [a, b])
            text = f"cannot add {a} and {b}" if e.op == "+" else f"cannot subtract {b} from {a}"
            hint = None
            if {a.kind, b.kind} == {"money", "quantity"}:
                hint = "multiply a price by a number, not by a quantity with a unit"
            elif a.kind == b.kind:
                hint = f"both sides of '{e.op}' must have the same unit"
            return self.error("E102", text, e, hint)
        if e.op == "*":
            if a.kind == "number" and b.is_numeric:
                return b
            if b.kind == "number" and a.is_numeric:
                return a
            if a.kind == "percent" and b.is_numeric:
                return b
            if b.kind == "percent" and a.is_numeric:
                return a
            return self.error("E102", f"cannot multiply {a} by {b}", e)
        if e.op == "/":
            if b.kind == "number" and a.is_numeric:
                return a
            if a.kind == b.kind and a.is_numeric and compatible(a, b):
                return NUMBER
            if a.kind == b.kind == "money":
                if self.env.currency is not None:
                    return NUMBER
                return self.error("E114", f"cannot divide {a.param} by {b.param} amounts", e)
            return self.error("E102", f"cannot divide {a} by {b}", e)
        return self.error("E102", f"unknown operator '{e.op}'", e)

    def compare(self, e: n.Compare) -> Type:
        a, b = self(e.left), self(e.right)
        if a.is_unknown or b.is_unknown:
            return BOOLEAN
        if not compatible(a, b):
            if a.kind == b.kind == "money" and self.env.currency is not None:
                return BOOLEAN
            self.error("E102", f"cannot compare {a} with {b}", e)
            return BOOLEAN
        if e.op in ("<", "<=", ">", ">=") and a.kind not in ORDERED_KINDS:
            self.error("E102", f"'{e.op}' cannot order {a} values", e)
        return BOOLEAN


def _merge(first: Type, types: list[Type]) -> Type:
    """The type of a result combining `types` of one type: keeps the unit word when all agree."""
    known = [t for t in types if not t.is_unknown]
    if not known:
        return UNKNOWN
    units = {t.unit for t in known}
    base = known[0]
    param = base.param
    if base.kind == "money":
        params = {t.param for t in known if t.param}
        param = params.pop() if len(params) == 1 else None
    return Type(base.kind, param, units.pop() if len(units) == 1 else None)


def type_of(
    expr: n.Expr, env: Env | None = None, diagnostics: list[Diagnostic] | None = None
) -> Type:
    """The type of `expr`. Problems are appended to `diagnostics` when given (the type is then
    `UNKNOWN` where an error was found); without it, a `RulesetError` is raised."""
    env = env or Env()
    sink: list[Diagnostic] = [] if diagnostics is None else diagnostics
    start = len(sink)
    try:
        t = _Typer(env, sink)(expr)
    except RecursionError:
        sink.append(Diagnostic("E004", "expression nested too deeply", expr.span))
        t = UNKNOWN
    if diagnostics is None and len(sink) > start:
        raise RulesetError(sink)
    return t


def expect(
    expr: n.Expr,
    env: Env,
    diagnostics: list[Diagnostic],
    accept: Callable[[Type], bool],
    what: str,
    hint: str | None = None,
) -> Type:
    """Type-check `expr`, then report E102 `{what}, got {type}` when `accept` refuses it."""
    t = type_of(expr, env, diagnostics)
    if not t.is_unknown and not accept(t):
        diagnostics.append(Diagnostic("E102", f"{what}, got {t}", expr.span, hint))
        return UNKNOWN
    return t


# ------------------------------------------------------------------------------ evaluation
class EvalError(Exception):
    """A constant expression that cannot be computed (division by zero, mixed types...)."""

    def __init__(self, message: str, node: n.Node | None = None):
        super().__init__(message)
        self.message = message
        self.span = node.span if node is not None else n.NO_SPAN


class NotConstant(EvalError):
    """The expression refers to a name that is not a constant (a variable of its scope)."""


class BadValue(EvalError):
    """A well-typed expression whose value cannot be computed: division by zero, bad digits."""


@dataclass(frozen=True, slots=True)
class Value:
    """An exact value. Numeric kinds hold a `Fraction` in base units: money in its currency,
    percent as written (20 for 20 %), quantities in seconds, bytes or units, durations in days
    or months. Dates hold a `date`, text a `str`, booleans a `bool`."""

    type: Type
    value: Fraction | date | str | bool

    @property
    def number(self) -> Fraction:
        if not isinstance(self.value, Fraction):
            raise EvalError(f"{self.type} is not a number")
        return self.value

    def in_unit(self, word: str) -> Fraction:
        """A quantity or duration expressed in unit `word` (`in_unit("minutes")`)."""
        u = UNITS.get(word)
        if u is None or u.kind != self.type.kind or u.dimension != self.type.param:
            raise EvalError(f"cannot express {self.type} in {word}")
        return self.number / u.factor

    def ratio(self) -> Fraction:
        """A percent as a ratio (20 % -> 1/5)."""
        if self.type.kind != "percent":
            raise EvalError(f"{self.type} is not a percent")
        return self.number / 100

    def __str__(self) -> str:
        v = self.value
        if isinstance(v, Fraction):
            shown = _fraction_text(v, self.type)
            if self.type.kind == "money":
                return f"{shown} {self.type.param}" if self.type.param else shown
            if self.type.kind == "percent":
                return f"{shown}%"
            if self.type.kind in ("quantity", "duration"):
                return (
                    f"{shown} {self.type.unit or _BASE_WORD.get(str(self.type.param), '')}".strip()
                )
            return shown
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)


_BASE_WORD = {
    "time": "seconds",
    "data": "bytes",
    "count": "units",
    "days": "days",
    "months": "months",
}


def _fraction_text(v: Fraction, t: Type) -> str:
    unit = UNITS.get(t.unit or "")
    if t.kind in ("quantity", "duration") and unit is not None:
        v = v / unit.factor
    if v.denominator == 1:
        return str(v.numerator)
    # exact decimal when the denominator only has factors 2 and 5, else a fraction
    d = v.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d == 1:
        return format(Decimal(v.numerator) / Decimal(v.denominator), "f")
    return f"{v.numerator}/{v.denominator}"


def _frac(d: Decimal, node: n.Node) -> Fraction:
    try:
        return Fraction(d)
    except (ValueError, OverflowError, TypeError) as e:
        raise EvalError(f"invalid number {d}", node) from e


def _round_half_up(x: Fraction) -> int:
    sign = -1 if x < 0 else 1
    return sign * math.floor(abs(x) + Fraction(1, 2))


class _Evaluator:
    def __init__(self, consts: Mapping[str, n.Expr | Value], variables: Mapping[str, Value]):
        self.consts = consts
        self.variables = variables
        self.cache: dict[str, Value] = {}
        self.active: list[str] = []

    def name(self, e: n.Name) -> Value:
        if e.id in self.variables:
            return self.variables[e.id]
        if e.id not in self.consts:
            raise NotConstant(f"'{e.id}' is not a constant", e)
        if e.id in self.cache:
            return self.cache[e.id]
        c = self.consts[e.id]
        if isinstance(c, Value):
            return c
        if e.id in self.active:
            raise EvalError(
                "constant depends on itself: "
                + " -> ".join([*self.active[self.active.index(e.id) :], e.id]),
                e,
            )
        self.active.append(e.id)
        try:
            v = self(c)
        finally:
            self.active.pop()
        self.cache[e.id] = v
        return v

    def __call__(self, e: n.Expr) -> Value:
        if isinstance(e, n.NumberLit):
            return Value(NUMBER, _frac(e.value, e))
        if isinstance(e, n.MoneyLit):
            return Value(money(e.currency), _frac(e.amount, e))
        if isinstance(e, n.PercentLit):
            return Value(PERCENT, _frac(e.value, e))
        if isinstance(e, n.QuantityLit):
            u = UNITS.get(e.unit)
            if u is None:
                raise EvalError(f"unknown unit '{e.unit}'", e)
            return Value(u.type, _frac(e.value, e) * u.factor)
        if isinstance(e, n.DateLit):
            return Value(DATE, e.value)
        if isinstance(e, n.StringLit):
            return Value(TEXT, e.value)
        if isinstance(e, n.BoolLit):
            return Value(BOOLEAN, e.value)
        if isinstance(e, n.Name):
            return self.name(e)
        if isinstance(e, n.Neg):
            v = self(e.operand)
            if not v.type.is_numeric:
                raise EvalError(f"cannot negate {v.type}", e)
            return Value(v.type, -v.number)
        if isinstance(e, n.Not):
            v = self(e.operand)
            if not isinstance(v.value, bool):
                raise EvalError(f"'not' needs a true/false value, got {v.type}", e)
            return Value(BOOLEAN, not v.value)
        if isinstance(e, n.BoolOp):
            a, b = self(e.left), self(e.right)
            if not (isinstance(a.value, bool) and isinstance(b.value, bool)):
                raise EvalError(f"'{e.op}' needs true/false values", e)
            return Value(BOOLEAN, (a.value and b.value) if e.op == "and" else (a.value or b.value))
        if isinstance(e, n.Compare):
            return self.compare(e)
        if isinstance(e, n.Binary):
            return self.binary(e)
        if isinstance(e, n.Call):
            return self.call(e)
        raise EvalError(f"not an expression: {type(e).__name__}", e)  # pragma: no cover

    def binary(self, e: n.Binary) -> Value:
        a, b = self(e.left), self(e.right)
        if not (a.type.is_numeric and b.type.is_numeric):
            raise EvalError(f"cannot compute {a.type} {e.op} {b.type}", e)
        x, y = a.number, b.number
        if e.op in ("+", "-"):
            if a.type != b.type:
                raise EvalError(f"cannot combine {a.type} and {b.type}", e)
            return Value(_merge(a.type, [a.type, b.type]), x + y if e.op == "+" else x - y)
        if e.op == "*":
            if a.type.kind == "number":
                return Value(b.type, x * y)
            if b.type.kind == "number":
                return Value(a.type, x * y)
            if b.type.kind == "percent":
                return Value(a.type, x * y / 100)
            if a.type.kind == "percent":
                return Value(b.type, x * y / 100)
            raise EvalError(f"cannot multiply {a.type} by {b.type}", e)
        if e.op == "/":
            if y == 0:
                raise BadValue("division by zero", e)
            if b.type.kind == "number":
                return Value(a.type, x / y)
            if a.type == b.type:
                return Value(NUMBER, x / y)
            raise EvalError(f"cannot divide {a.type} by {b.type}", e)
        raise EvalError(f"unknown operator '{e.op}'", e)

    def compare(self, e: n.Compare) -> Value:
        a, b = self(e.left), self(e.right)
        if a.type != b.type:
            raise EvalError(f"cannot compare {a.type} with {b.type}", e)
        x, y = a.value, b.value
        if e.op == "==":
            return Value(BOOLEAN, x == y)
        if e.op == "!=":
            return Value(BOOLEAN, x != y)
        if a.type.kind not in ORDERED_KINDS:
            raise EvalError(f"'{e.op}' cannot order {a.type} values", e)
        assert isinstance(x, Fraction | date) and isinstance(y, Fraction | date)
        ops: dict[str, Callable[[Fraction | date, Fraction | date], bool]] = {
            "<": lambda p, q: p < q,  # type: ignore[operator]
            "<=": lambda p, q: p <= q,  # type: ignore[operator]
            ">": lambda p, q: p > q,  # type: ignore[operator]
            ">=": lambda p, q: p >= q,  # type: ignore[operator]
        }
        if e.op not in ops:
            raise EvalError(f"unknown comparison '{e.op}'", e)
        return Value(BOOLEAN, ops[e.op](x, y))

    def call(self, e: n.Call) -> Value:
        if e.func not in FUNCTIONS:
            raise EvalError(f"unknown function '{e.func}'", e)
        args = [self(a) for a in e.args]
        lo, hi = FUNCTIONS[e.func]
        if not lo <= len(args) <= hi:
            raise EvalError(f"{e.func}() takes {lo} to {hi} arguments", e)
        if e.func in ("min", "max"):
            t = args[0].type
            if any(a.type != t for a in args) or t.kind not in ORDERED_KINDS:
                raise EvalError(f"{e.func}() needs values of one ordered type", e)
            pick = min if e.func == "min" else max
            return pick(args, key=lambda v: v.value)
        v = args[0]
        if not v.type.is_numeric:
            raise EvalError(f"{e.func}() needs a number or an amount", e)
        unit = UNITS.get(v.type.unit or "")
        factor = unit.factor if unit is not None else Fraction(1)
        x = v.number / factor
        if e.func == "abs":
            r = abs(x)
        elif e.func == "ceil":
            r = Fraction(math.ceil(x))
        elif e.func == "floor":
            r = Fraction(math.floor(x))
        else:
            digits = 0
            if len(args) == 2:
                d = args[1]
                if d.type.kind != "number" or d.number.denominator != 1 or not 0 <= d.number <= 28:
                    raise BadValue("round() digits must be a whole number from 0 to 28", e)
                digits = int(d.number)
            scale = Fraction(10) ** digits
            r = Fraction(_round_half_up(x * scale)) / scale
        return Value(v.type, r * factor)


def const_value(
    expr: n.Expr,
    consts: Mapping[str, n.Expr | Value] | None = None,
    variables: Mapping[str, Value] | None = None,
) -> Value:
    """The exact value of `expr`. `consts` maps constant names to their expression (evaluated
    on demand, cycles refused) or value; `variables` binds the names of a scope. Raises
    `NotConstant` for any other name and `EvalError` when the value cannot be computed."""
    try:
        return _Evaluator(consts or {}, variables or {})(expr)
    except RecursionError:
        raise EvalError("expression nested too deeply", expr) from None
    except (ArithmeticError, ValueError, OverflowError) as e:
        raise EvalError(f"cannot compute: {e}", expr) from None
