"""The compiled evaluator: turns checked tree nodes into Python closures, once.

Each expression and pricing node is compiled on first use into a closure (constants folded,
dispatch done at compile time), so the hot path of a billing run never walks the tree. Nothing
here reads user text: closures are built only from the checked tree's typed nodes. Cached by
node identity; the tree is immutable, so a cache entry never goes stale.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from dsl import nodes as n
from dsl.exact import Fraction
from engine.evaluator.values import (
    UNITS,
    Env,
    EvaluationError,
    Value,
    arith,
    call_builtin,
    compare,
)

ExprFn = Callable[[Env], Value]
AmountFn = Callable[[Fraction, Env], Fraction]

_ZERO = Fraction(0)


def _const(v: Value) -> ExprFn:
    return lambda env: v


def compile_expr(e: n.Expr) -> ExprFn:
    if isinstance(e, n.NumberLit):
        return _const(Fraction(e.value))
    if isinstance(e, n.MoneyLit):
        return _const(Fraction(e.amount))
    if isinstance(e, n.PercentLit):
        return _const(Fraction(e.value) / 100)
    if isinstance(e, n.QuantityLit):
        return _const(Fraction(e.value) * UNITS[e.unit][1])
    if isinstance(e, n.DateLit):
        return _const(e.value)
    if isinstance(e, n.StringLit):
        return _const(e.value)
    if isinstance(e, n.BoolLit):
        return _const(e.value)
    if isinstance(e, n.Name):
        key = e.id

        def lookup(env: Env) -> Value:
            try:
                return env[key]
            except KeyError:
                raise EvaluationError(f"no value for '{key}' here") from None

        return lookup
    if isinstance(e, n.Call):
        fns = [compile_expr(a) for a in e.args]
        func = e.func
        return lambda env: call_builtin(func, [f(env) for f in fns])
    if isinstance(e, n.Binary):
        op = arith(e.op)
        lf, rf = compile_expr(e.left), compile_expr(e.right)
        return lambda env: op(lf(env), rf(env))
    if isinstance(e, n.Compare):
        cmp = compare(e.op)
        lf, rf = compile_expr(e.left), compile_expr(e.right)
        return lambda env: cmp(lf(env), rf(env))
    if isinstance(e, n.BoolOp):
        lf, rf = compile_expr(e.left), compile_expr(e.right)
        if e.op == "and":
            return lambda env: bool(lf(env)) and bool(rf(env))
        return lambda env: bool(lf(env)) or bool(rf(env))
    if isinstance(e, n.Not):
        of = compile_expr(e.operand)
        return lambda env: not of(env)
    if isinstance(e, n.Neg):
        of = compile_expr(e.operand)

        def neg(env: Env) -> Value:
            v = of(env)
            if not isinstance(v, Fraction):
                raise EvaluationError("cannot negate a non-number")
            return -v

        return neg
    raise TypeError(f"compiler: no handler for {type(e).__name__}")


def _num(fn: ExprFn) -> Callable[[Env], Fraction]:
    def get(env: Env) -> Fraction:
        v = fn(env)
        if not isinstance(v, Fraction):
            raise EvaluationError(f"expected a number, got {v!r}")
        return v

    return get


def compile_amount(p: n.Pricing) -> AmountFn:
    if isinstance(p, n.UnitPricing):
        price = _num(compile_expr(p.price))
        return lambda q, env: q * price(env)
    if isinstance(p, n.FlatPricing):
        price = _num(compile_expr(p.price))
        return lambda q, env: price(env) if q > 0 else _ZERO
    if isinstance(p, n.TieredPricing):
        tiers = [
            (
                None if t.up_to is None else _num(compile_expr(t.up_to)),
                _num(compile_expr(t.price)),
                None if t.flat is None else _num(compile_expr(t.flat)),
            )
            for t in p.tiers
        ]
        if p.mode == "graduated":

            def graduated(q: Fraction, env: Env) -> Fraction:
                total = _ZERO
                lower = _ZERO
                for up, price, flat in tiers:
                    upper = None if up is None else up(env)
                    units = (q if upper is None or q < upper else upper) - lower
                    if units > 0:
                        total += units * price(env)
                        if flat is not None:
                            total += flat(env)
                    if upper is None or q <= upper:
                        break
                    lower = upper
                return total

            return graduated

        def volume(q: Fraction, env: Env) -> Fraction:
            for up, price, flat in tiers:
                if up is None or q <= up(env):
                    if q <= 0:
                        return _ZERO
                    return q * price(env) + (flat(env) if flat is not None else _ZERO)
            raise EvaluationError("quantity above the last tier")

        return volume
    if isinstance(p, n.PackagePricing):
        size = _num(compile_expr(p.size))
        price = _num(compile_expr(p.price))
        free = None if p.free is None else _num(compile_expr(p.free))

        def package(q: Fraction, env: Env) -> Fraction:
            billable = q - free(env) if free is not None else q
            if billable <= 0:
                return _ZERO
            return math.ceil(billable / size(env)) * price(env)

        return package

    def no_amount(q: Fraction, env: Env) -> Fraction:
        raise EvaluationError(f"{type(p).__name__} has no amount per quantity")

    return no_amount


class CompiledPricer:
    """`Pricer` back end over closures compiled once per node."""

    name = "compiled"

    def __init__(self) -> None:
        self._exprs: dict[int, tuple[n.Expr, ExprFn]] = {}
        self._amounts: dict[int, tuple[n.Pricing, AmountFn]] = {}
        self._zones: dict[int, tuple[n.ZonePricing, dict[str, Callable[[Env], Fraction]]]] = {}

    def expr(self, e: n.Expr, env: Env) -> Value:
        hit = self._exprs.get(id(e))
        if hit is None:
            hit = (e, compile_expr(e))  # keep the node alive so its id is never reused
            self._exprs[id(e)] = hit
        return hit[1](env)

    def period_amount(self, p: n.Pricing, quantity: Fraction, env: Env) -> Fraction:
        hit = self._amounts.get(id(p))
        if hit is None:
            hit = (p, compile_amount(p))
            self._amounts[id(p)] = hit
        return hit[1](quantity, env)

    def unit_price(self, p: n.Pricing, env: Env) -> Fraction | None:
        if isinstance(p, n.UnitPricing):
            v = self.expr(p.price, env)
            assert isinstance(v, Fraction)
            return v
        return None

    def zone_price(self, p: n.ZonePricing, zone: str, env: Env) -> Fraction | None:
        hit = self._zones.get(id(p))
        if hit is None:
            hit = (p, {r.zone: _num(compile_expr(r.price)) for r in p.rates})
            self._zones[id(p)] = hit
        fn = hit[1].get(zone)
        return None if fn is None else fn(env)
