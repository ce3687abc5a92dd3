"""The reference interpreter: walks the checked tree on every call.

It is deliberately plain (no caching, no folding) and serves as the oracle for the compiled
evaluator in differential tests. Both implement the `Pricer` protocol of `engine.evaluator.backend`.
"""

from __future__ import annotations

import math

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


def eval_expr(e: n.Expr, env: Env) -> Value:
    if isinstance(e, n.NumberLit):
        return Fraction(e.value)
    if isinstance(e, n.MoneyLit):
        return Fraction(e.amount)
    if isinstance(e, n.PercentLit):
        return Fraction(e.value) / 100
    if isinstance(e, n.QuantityLit):
        return Fraction(e.value) * UNITS[e.unit][1]
    if isinstance(e, n.DateLit):
        return e.value
    if isinstance(e, n.StringLit):
        return e.value
    if isinstance(e, n.BoolLit):
        return e.value
    if isinstance(e, n.Name):
        if e.id not in env:
            raise EvaluationError(f"no value for '{e.id}' here")
        return env[e.id]
    if isinstance(e, n.Call):
        return call_builtin(e.func, [eval_expr(a, env) for a in e.args])
    if isinstance(e, n.Binary):
        return arith(e.op)(eval_expr(e.left, env), eval_expr(e.right, env))
    if isinstance(e, n.Compare):
        return compare(e.op)(eval_expr(e.left, env), eval_expr(e.right, env))
    if isinstance(e, n.BoolOp):
        left = eval_expr(e.left, env)
        if e.op == "and":
            return bool(left) and bool(eval_expr(e.right, env))
        return bool(left) or bool(eval_expr(e.right, env))
    if isinstance(e, n.Not):
        return not eval_expr(e.operand, env)
    if isinstance(e, n.Neg):
        v = eval_expr(e.operand, env)
        if not isinstance(v, Fraction):
            raise EvaluationError("cannot negate a non-number")
        return -v
    raise TypeError(f"reference interpreter: no handler for {type(e).__name__}")


def _f(e: n.Expr, env: Env) -> Fraction:
    v = eval_expr(e, env)
    if not isinstance(v, Fraction):
        raise EvaluationError(f"expected a number, got {v!r}")
    return v


def period_amount(p: n.Pricing, quantity: Fraction, env: Env) -> Fraction:
    """The amount for a whole billing period (or one charge) at `quantity`."""
    if isinstance(p, n.UnitPricing):
        return quantity * _f(p.price, env)
    if isinstance(p, n.FlatPricing):
        return _f(p.price, env) if quantity > 0 else Fraction(0)
    if isinstance(p, n.TieredPricing):
        if p.mode == "graduated":
            total = Fraction(0)
            lower = Fraction(0)
            for tier in p.tiers:
                upper = None if tier.up_to is None else _f(tier.up_to, env)
                top = quantity if upper is None else min(quantity, upper)
                units = max(Fraction(0), top - lower)
                if units > 0:
                    total += units * _f(tier.price, env)
                    if tier.flat is not None:
                        total += _f(tier.flat, env)
                if upper is not None:
                    lower = upper
            return total
        for tier in p.tiers:
            upper = None if tier.up_to is None else _f(tier.up_to, env)
            if upper is None or quantity <= upper:
                if quantity <= 0:
                    return Fraction(0)
                flat = _f(tier.flat, env) if tier.flat is not None else Fraction(0)
                return quantity * _f(tier.price, env) + flat
        raise EvaluationError("quantity above the last tier")
    if isinstance(p, n.PackagePricing):
        free = _f(p.free, env) if p.free is not None else Fraction(0)
        billable = max(Fraction(0), quantity - free)
        blocks = math.ceil(billable / _f(p.size, env))
        return blocks * _f(p.price, env)
    raise EvaluationError(f"{type(p).__name__} has no amount per quantity")


def unit_price(p: n.Pricing, env: Env) -> Fraction | None:
    """The price of one unit when the pricing has one (unit and zone pricing), else None."""
    if isinstance(p, n.UnitPricing):
        return _f(p.price, env)
    return None


def zone_price(p: n.ZonePricing, zone: str, env: Env) -> Fraction | None:
    for rate in p.rates:
        if rate.zone == zone:
            return _f(rate.price, env)
    return None


class ReferencePricer:
    """`Pricer` back end that interprets the tree on every call."""

    name = "reference"

    def expr(self, e: n.Expr, env: Env) -> Value:
        return eval_expr(e, env)

    def period_amount(self, p: n.Pricing, quantity: Fraction, env: Env) -> Fraction:
        return period_amount(p, quantity, env)

    def unit_price(self, p: n.Pricing, env: Env) -> Fraction | None:
        return unit_price(p, env)

    def zone_price(self, p: n.ZonePricing, zone: str, env: Env) -> Fraction | None:
        return zone_price(p, zone, env)
