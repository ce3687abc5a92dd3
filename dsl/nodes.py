"""The typed ruleset tree.

Every node is a frozen dataclass carrying its source `span`. Spans do not take part in
equality, so `parse(fmt(x)) == parse(x)` compares meaning, not layout. The checker, the
formatter, the evaluator, the reference interpreter and the explainer all read this one tree
and dispatch on node type; `ALL_NODE_TYPES` lists every type so tests can assert that each
back end handles each of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Span:
    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


NO_SPAN = Span("<generated>", 0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Node:
    span: Span = field(default=NO_SPAN, compare=False, repr=False, kw_only=True)


# ------------------------------------------------------------------------------ expressions
@dataclass(frozen=True, slots=True)
class NumberLit(Node):
    value: Decimal


@dataclass(frozen=True, slots=True)
class MoneyLit(Node):
    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class PercentLit(Node):
    value: Decimal  # 20 for 20 %


@dataclass(frozen=True, slots=True)
class QuantityLit(Node):
    value: Decimal
    unit: str  # as written: "minutes", "months", "GB"...


@dataclass(frozen=True, slots=True)
class DateLit(Node):
    value: date


@dataclass(frozen=True, slots=True)
class StringLit(Node):
    value: str


@dataclass(frozen=True, slots=True)
class BoolLit(Node):
    value: bool


@dataclass(frozen=True, slots=True)
class Name(Node):
    id: str


@dataclass(frozen=True, slots=True)
class Call(Node):
    func: str
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Binary(Node):
    op: str  # + - * /
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Compare(Node):
    op: str  # < <= > >= == !=
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class BoolOp(Node):
    op: str  # and / or
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Not(Node):
    operand: Expr


@dataclass(frozen=True, slots=True)
class Neg(Node):
    operand: Expr


Expr = (
    NumberLit
    | MoneyLit
    | PercentLit
    | QuantityLit
    | DateLit
    | StringLit
    | BoolLit
    | Name
    | Call
    | Binary
    | Compare
    | BoolOp
    | Not
    | Neg
)
LITERAL_TYPES = (NumberLit, MoneyLit, PercentLit, QuantityLit, DateLit, StringLit, BoolLit)
EXPR_TYPES = (*LITERAL_TYPES, Name, Call, Binary, Compare, BoolOp, Not, Neg)


def names_in(e: Expr) -> frozenset[str]:
    """The names an expression reads (constants and the variables of its context)."""
    out: set[str] = set()
    stack: list[Expr] = [e]
    while stack:
        x = stack.pop()
        if isinstance(x, Name):
            out.add(x.id)
        elif isinstance(x, Call):
            stack.extend(x.args)
        elif isinstance(x, Binary | Compare | BoolOp):
            stack.extend((x.left, x.right))
        elif isinstance(x, Not | Neg):
            stack.append(x.operand)
    return frozenset(out)


# ------------------------------------------------------------------------------ targets, pricing
@dataclass(frozen=True, slots=True)
class Target(Node):
    kind: str  # family | product | invoice | line
    names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UnitPricing(Node):
    price: Expr
    per: str | None = None


@dataclass(frozen=True, slots=True)
class FlatPricing(Node):
    price: Expr


@dataclass(frozen=True, slots=True)
class Tier(Node):
    up_to: Expr | None  # None: the open last tier ("above")
    price: Expr
    flat: Expr | None = None


@dataclass(frozen=True, slots=True)
class TieredPricing(Node):
    mode: str  # graduated | volume
    tiers: tuple[Tier, ...]


@dataclass(frozen=True, slots=True)
class PackagePricing(Node):
    size: Expr
    price: Expr
    free: Expr | None = None


@dataclass(frozen=True, slots=True)
class PercentPricing(Node):
    rate: Expr
    target: Target


@dataclass(frozen=True, slots=True)
class ZoneRate(Node):
    zone: str
    price: Expr


@dataclass(frozen=True, slots=True)
class ZonePricing(Node):
    zones: str
    per: str
    rates: tuple[ZoneRate, ...]


Pricing = UnitPricing | FlatPricing | TieredPricing | PackagePricing | PercentPricing | ZonePricing
PRICING_TYPES = (UnitPricing, FlatPricing, TieredPricing, PackagePricing, PercentPricing, ZonePricing)


# ------------------------------------------------------------------------------ attributes
@dataclass(frozen=True, slots=True)
class TextAttr(Node):
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class WordAttr(Node):
    """An attribute whose value is a keyword or a reference by name (`vat standard`)."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class ExprAttr(Node):
    key: str
    expr: Expr


@dataclass(frozen=True, slots=True)
class PriceAttr(Node):
    pricing: Pricing


@dataclass(frozen=True, slots=True)
class PeriodicityAttr(Node):
    periodicity: str
    anchor: int | None = None


@dataclass(frozen=True, slots=True)
class OnAttr(Node):
    target: Target


@dataclass(frozen=True, slots=True)
class DateAttr(Node):
    key: str
    value: date


@dataclass(frozen=True, slots=True)
class NumberAttr(Node):
    key: str
    value: int


@dataclass(frozen=True, slots=True)
class FlagAttr(Node):
    key: str


@dataclass(frozen=True, slots=True)
class MinimumSpendAttr(Node):
    amount: Expr
    target: Target | None = None


@dataclass(frozen=True, slots=True)
class KeysAttr(Node):
    key: str  # group_by | order_by | weekend
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ColumnAttr(Node):
    field: str
    header: str


@dataclass(frozen=True, slots=True)
class PeakAttr(Node):
    first_day: str
    last_day: str
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class IncrementsAttr(Node):
    first: int
    next: int


@dataclass(frozen=True, slots=True)
class RoundingAttr(Node):
    key: str
    step: Decimal
    mode: str


@dataclass(frozen=True, slots=True)
class AllowanceAttr(Node):
    amount: Expr
    zones: tuple[str, ...]
    scope: str  # line | customer


@dataclass(frozen=True, slots=True)
class FairUseAttr(Node):
    amount: Expr
    scope: str


Attr = (
    TextAttr
    | WordAttr
    | ExprAttr
    | PriceAttr
    | PeriodicityAttr
    | OnAttr
    | DateAttr
    | NumberAttr
    | FlagAttr
    | MinimumSpendAttr
    | KeysAttr
    | ColumnAttr
    | PeakAttr
    | IncrementsAttr
    | RoundingAttr
    | AllowanceAttr
    | FairUseAttr
)
ATTR_TYPES = (
    TextAttr,
    WordAttr,
    ExprAttr,
    PriceAttr,
    PeriodicityAttr,
    OnAttr,
    DateAttr,
    NumberAttr,
    FlagAttr,
    MinimumSpendAttr,
    KeysAttr,
    ColumnAttr,
    PeakAttr,
    IncrementsAttr,
    RoundingAttr,
    AllowanceAttr,
    FairUseAttr,
)


def attr_key(a: Attr) -> str:
    """The attribute's name as the checker and formatter know it (`price`, `vat`, `cost`...)."""
    if isinstance(a, PriceAttr):
        return "price"
    if isinstance(a, PeriodicityAttr):
        return "periodicity"
    if isinstance(a, OnAttr):
        return "on"
    if isinstance(a, MinimumSpendAttr):
        return "minimum_spend"
    if isinstance(a, ColumnAttr):
        return f"column {a.field}"
    if isinstance(a, PeakAttr):
        return "peak"
    if isinstance(a, IncrementsAttr):
        return "increments"
    if isinstance(a, AllowanceAttr):
        return "allowance"
    if isinstance(a, FairUseAttr):
        return "fair_use"
    return a.key


# ------------------------------------------------------------------------------ declarations
@dataclass(frozen=True, slots=True)
class Setting(Node):
    key: str
    value: Expr  # a literal, or a Name for bare words (`currency EUR`)


@dataclass(frozen=True, slots=True)
class RulesetHeader(Node):
    name: str
    settings: tuple[Setting, ...]


@dataclass(frozen=True, slots=True)
class Import(Node):
    path: str


@dataclass(frozen=True, slots=True)
class Const(Node):
    name: str
    expr: Expr


@dataclass(frozen=True, slots=True)
class RoundingRule(Node):
    target: str  # unit_price | line | vat | call
    step: Decimal
    mode: str


@dataclass(frozen=True, slots=True)
class RoundingDecl(Node):
    rules: tuple[RoundingRule, ...]


@dataclass(frozen=True, slots=True)
class VatDecl(Node):
    name: str
    rate: Decimal  # percent: 20 for 20 %
    category: str | None = None
    mention: str | None = None


@dataclass(frozen=True, slots=True)
class TaxDecl(Node):
    kind: str  # reverse_charge | export
    attrs: tuple[TextAttr, ...]


@dataclass(frozen=True, slots=True)
class FamilyDecl(Node):
    name: str
    label: str


@dataclass(frozen=True, slots=True)
class BlockDecl(Node):
    """A named declaration made of attributes (product, discount, commitment...)."""

    name: str
    attrs: tuple[Attr, ...]

    def first(self, key: str) -> Attr | None:
        for a in self.attrs:
            if attr_key(a) == key:
                return a
        return None

    def all(self, key: str) -> tuple[Attr, ...]:
        return tuple(a for a in self.attrs if attr_key(a) == key)

    def word(self, key: str) -> str | None:
        """The value of a keyword or name attribute (`kind recurring` -> "recurring")."""
        a = self.first(key)
        return a.value if isinstance(a, WordAttr) else None

    def expr(self, key: str) -> Expr | None:
        """The expression of an expression attribute (`cost 18 EUR`)."""
        a = self.first(key)
        return a.expr if isinstance(a, ExprAttr) else None


@dataclass(frozen=True, slots=True)
class ProrationDecl(BlockDecl):
    pass


@dataclass(frozen=True, slots=True)
class ProductDecl(BlockDecl):
    pass


@dataclass(frozen=True, slots=True)
class DiscountDecl(BlockDecl):
    pass


@dataclass(frozen=True, slots=True)
class CommitmentDecl(BlockDecl):
    pass


@dataclass(frozen=True, slots=True)
class RateDeckDecl(BlockDecl):
    pass


@dataclass(frozen=True, slots=True)
class TimeBandsDecl(BlockDecl):
    pass


@dataclass(frozen=True, slots=True)
class RatingDecl(BlockDecl):
    pass


@dataclass(frozen=True, slots=True)
class PriceEntry(Node):
    product: str
    pricing: Pricing


@dataclass(frozen=True, slots=True)
class PriceListDecl(Node):
    name: str
    segments: tuple[str, ...]
    entries: tuple[PriceEntry, ...]


@dataclass(frozen=True, slots=True)
class EffectivePriceList(Node):
    name: str
    entries: tuple[PriceEntry, ...]


@dataclass(frozen=True, slots=True)
class EffectiveDecl(Node):
    date: date
    new_only: bool
    label: str | None
    entries: tuple[PriceEntry | EffectivePriceList, ...]


@dataclass(frozen=True, slots=True)
class InvoicingDecl(Node):
    segments: tuple[str, ...]
    attrs: tuple[Attr, ...]


@dataclass(frozen=True, slots=True)
class ZoneEntry(Node):
    prefix: str
    zone: str


@dataclass(frozen=True, slots=True)
class ZonesDecl(Node):
    name: str
    entries: tuple[ZoneEntry, ...]


Decl = (
    RulesetHeader
    | Import
    | Const
    | RoundingDecl
    | VatDecl
    | TaxDecl
    | ProrationDecl
    | FamilyDecl
    | ProductDecl
    | PriceListDecl
    | EffectiveDecl
    | DiscountDecl
    | CommitmentDecl
    | InvoicingDecl
    | ZonesDecl
    | RateDeckDecl
    | TimeBandsDecl
    | RatingDecl
)
DECL_TYPES = (
    RulesetHeader,
    Import,
    Const,
    RoundingDecl,
    VatDecl,
    TaxDecl,
    ProrationDecl,
    FamilyDecl,
    ProductDecl,
    PriceListDecl,
    EffectiveDecl,
    DiscountDecl,
    CommitmentDecl,
    InvoicingDecl,
    ZonesDecl,
    RateDeckDecl,
    TimeBandsDecl,
    RatingDecl,
)


@dataclass(frozen=True, slots=True)
class Comment:
    line: int
    column: int
    text: str  # with its leading '#'


@dataclass(frozen=True, slots=True)
class RulesetFile(Node):
    path: str
    decls: tuple[Decl, ...]
    comments: tuple[Comment, ...] = field(default=(), compare=False)


ALL_NODE_TYPES: tuple[type, ...] = (
    *EXPR_TYPES,
    Target,
    *PRICING_TYPES,
    Tier,
    ZoneRate,
    *ATTR_TYPES,
    *DECL_TYPES,
    Setting,
    RoundingRule,
    PriceEntry,
    EffectivePriceList,
    ZoneEntry,
    RulesetFile,
)
