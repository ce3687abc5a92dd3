"""The `Pricer` protocol: what the billing run asks of an evaluator back end.

Two implementations read the same checked tree: `CompiledPricer` (closures compiled once per
node, the default) and `ReferencePricer` (walks the tree on every call: the oracle of the
differential tests).
"""

from __future__ import annotations

from typing import Protocol

from dsl import nodes as n
from dsl.exact import Fraction
from engine.evaluator.values import Env, Value


class Pricer(Protocol):
    name: str

    def expr(self, e: n.Expr, env: Env) -> Value: ...

    def period_amount(self, p: n.Pricing, quantity: Fraction, env: Env) -> Fraction: ...

    def unit_price(self, p: n.Pricing, env: Env) -> Fraction | None: ...

    def zone_price(self, p: n.ZonePricing, zone: str, env: Env) -> Fraction | None: ...


def make_pricer(kind: str = "compiled") -> Pricer:
    from engine.evaluator.compiler import CompiledPricer
    from engine.evaluator.reference import ReferencePricer

    if kind == "compiled":
        return CompiledPricer()
    if kind == "reference":
        return ReferencePricer()
    raise ValueError(f"unknown evaluator back end {kind!r} (compiled, reference)")
