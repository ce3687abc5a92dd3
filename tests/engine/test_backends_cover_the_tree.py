"""Every expression and pricing node type has a handler in both evaluator back ends, and the
formatter handles every node type (one checked tree, many back ends)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from dsl import nodes as n
from dsl.exact import Fraction
from dsl.formatter import HANDLED_TYPES
from engine.evaluator.compiler import compile_amount, compile_expr
from engine.evaluator.reference import eval_expr, period_amount

ONE = n.NumberLit(Decimal(1))
SAMPLES: dict[type, n.Expr] = {
    n.NumberLit: ONE,
    n.MoneyLit: n.MoneyLit(Decimal("2.5"), "EUR"),
    n.PercentLit: n.PercentLit(Decimal(20)),
    n.QuantityLit: n.QuantityLit(Decimal(3), "minutes"),
    n.DateLit: n.DateLit(date(2026, 1, 1)),
    n.StringLit: n.StringLit("x"),
    n.BoolLit: n.BoolLit(True),
    n.Name: n.Name("x"),
    n.Call: n.Call("max", (ONE, n.NumberLit(Decimal(2)))),
    n.Binary: n.Binary("/", ONE, n.NumberLit(Decimal(4))),
    n.Compare: n.Compare("<", ONE, n.NumberLit(Decimal(2))),
    n.BoolOp: n.BoolOp("or", n.BoolLit(False), n.BoolLit(True)),
    n.Not: n.Not(n.BoolLit(False)),
    n.Neg: n.Neg(ONE),
}


@pytest.mark.parametrize("node_type", n.EXPR_TYPES, ids=lambda t: t.__name__)
def test_both_back_ends_evaluate_every_expression_type(node_type: type) -> None:
    e = SAMPLES[node_type]
    env = {"x": Fraction(7)}
    assert compile_expr(e)(env) == eval_expr(e, env)


PRICINGS: dict[type, n.Pricing] = {
    n.UnitPricing: n.UnitPricing(n.MoneyLit(Decimal("1.5"), "EUR")),
    n.FlatPricing: n.FlatPricing(n.MoneyLit(Decimal(9), "EUR")),
    n.TieredPricing: n.TieredPricing(
        "graduated", (n.Tier(n.NumberLit(Decimal(2)), n.MoneyLit(Decimal(3), "EUR")), n.Tier(None, n.MoneyLit(Decimal(1), "EUR")))
    ),
    n.PackagePricing: n.PackagePricing(n.NumberLit(Decimal(3)), n.MoneyLit(Decimal(5), "EUR"), ONE),
}


@pytest.mark.parametrize("pricing_type", [t for t in n.PRICING_TYPES if t in PRICINGS], ids=lambda t: t.__name__)
def test_both_back_ends_price_every_quantity_pricing(pricing_type: type) -> None:
    p = PRICINGS[pricing_type]
    for q in (Fraction(0), Fraction(1), Fraction(5, 2), Fraction(10)):
        assert compile_amount(p)(q, {}) == period_amount(p, q, {})


def test_context_pricings_are_priced_by_the_run_not_per_quantity() -> None:
    # Percentage and zone pricings need the run's context (other lines, usage records).
    assert set(n.PRICING_TYPES) - set(PRICINGS) == {n.PercentPricing, n.ZonePricing}


def test_unknown_node_fails_loudly() -> None:
    class Strange(n.Node):
        pass

    with pytest.raises(TypeError):
        compile_expr(Strange())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        eval_expr(Strange(), {})  # type: ignore[arg-type]


def test_formatter_handles_every_node_type() -> None:
    assert set(n.ALL_NODE_TYPES) <= set(HANDLED_TYPES)
