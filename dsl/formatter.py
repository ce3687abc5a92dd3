"""Canonical text of a ruleset (`bareme fmt`).

`format_ruleset(file)` prints a `RulesetFile` tree in the canonical layout: 4-space indentation,
one attribute (setting, tier, zone entry, price entry) per line, `{` on the declaration line and
`}` alone, one blank line between top-level declarations, expressions with the fewest
parentheses that keep the tree (precedence `or` < `and` < `not` < comparison < `+ -` < `* /` <
unary `-`, binary operators left associative, comparisons not associative).

Comments (`file.comments`) are placed from the nodes' spans:

- a comment with code before it on its source line trails the output line that prints the last
  token known before it (the innermost node ending there), two spaces before `#`;
- any other comment goes on its own line, indented to the block level, before the first output
  line that starts after it: comments after the last entry of a block stay inside the block,
  before its `}`; comments after the last declaration stay at the end of the file. At the top
  level one blank line is kept where the source had blank lines between comments and code.

`format_text(text, path)` parses, formats, re-parses the output and refuses (`FormatError`) to
return text whose tree or comments differ from the input's: it never returns broken output.

Two token-level guards keep the tree when the source needed parentheses that precedence alone
does not explain: an expression ending in a bare number before a line that starts with a unit or
currency word (`cost (3)` then `unit minutes`; otherwise `3 unit` would read as a quantity), and
a price starting with a name spelled like a pricing keyword (`price (flat)`).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from typing import Any

from dsl import nodes as n
from dsl.parser import parse_text, scan_comments
from dsl.types import CURRENCIES
from dsl.types import UNITS as TYPE_UNITS

__all__ = [
    "HANDLED_TYPES",
    "INDENT",
    "FormatError",
    "format_expr",
    "format_node",
    "format_ruleset",
    "format_text",
    "same_tree",
    "scan_comments",
]

INDENT = "    "

# Words the lexer reads as part of a literal right after a NUMBER (`3 minutes`, `3 EUR`).
UNIT_WORDS = frozenset(TYPE_UNITS)
CURRENCY_WORDS = frozenset(CURRENCIES)
_AFTER_NUMBER_WORDS = UNIT_WORDS | CURRENCY_WORDS
# Keywords that start a pricing form: a price written as a name spelled like them needs parens.
PRICING_WORDS = frozenset({"flat", "graduated", "volume", "package", "percent", "by"})

Pos = tuple[int, int]


class FormatError(Exception):
    """Internal error: the formatted text would not mean what the input means."""


# ---------------------------------------------------------------------------------- values
def _num(d: Decimal) -> str:
    return format(d, "f")  # never exponent notation; keeps trailing zeros (49.90)


def _string(s: str) -> str:
    body = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{body}"'


def _strings(values: Iterable[str]) -> str:
    return ", ".join(_string(v) for v in values)


# ---------------------------------------------------------------------------------- expressions
# Precedence levels, loosest first.
_OR, _AND, _NOT, _CMP, _SUM, _TERM, _NEG, _ATOM = range(1, 9)


def _prec(e: n.Node) -> int:
    if isinstance(e, n.BoolOp):
        return _OR if e.op == "or" else _AND
    if isinstance(e, n.Not):
        return _NOT
    if isinstance(e, n.Compare):
        return _CMP
    if isinstance(e, n.Binary):
        return _SUM if e.op in ("+", "-") else _TERM
    if isinstance(e, n.Neg):
        return _NEG
    return _ATOM


def _needs(e: n.Node) -> list[tuple[n.Node, int]]:
    """The operands of `e` with the least precedence each may have without parentheses."""
    if isinstance(e, n.BoolOp):
        level = _prec(e)
        return [(e.left, level), (e.right, level + 1)]
    if isinstance(e, n.Compare):
        return [(e.left, _SUM), (e.right, _SUM)]
    if isinstance(e, n.Binary):
        level = _prec(e)
        return [(e.left, level), (e.right, level + 1)]
    if isinstance(e, n.Not):
        return [(e.operand, _NOT)]
    if isinstance(e, n.Neg):
        return [(e.operand, _NEG)]
    if isinstance(e, n.Call):
        return [(a, _OR) for a in e.args]
    return []


def _wrap(text: str, child: n.Node, need: int) -> str:
    return f"({text})" if _prec(child) < need else text


def _x_binary(e: n.Binary | n.Compare | n.BoolOp, parts: list[str]) -> str:
    return f"{parts[0]} {e.op} {parts[1]}"


def _x_neg(e: n.Neg, parts: list[str]) -> str:
    return f"-{parts[0]}"


def _x_not(e: n.Not, parts: list[str]) -> str:
    return f"not {parts[0]}"


def _x_call(e: n.Call, parts: list[str]) -> str:
    return f"{e.func}({', '.join(parts)})"


# Each handler gets the node and its operands' texts (already parenthesised where needed).
_EXPR_HANDLERS: dict[type, Callable[[Any, list[str]], str]] = {
    n.NumberLit: lambda e, _: _num(e.value),
    n.MoneyLit: lambda e, _: f"{_num(e.amount)} {e.currency}",
    n.PercentLit: lambda e, _: f"{_num(e.value)}%",
    n.QuantityLit: lambda e, _: f"{_num(e.value)} {e.unit}",
    n.DateLit: lambda e, _: e.value.isoformat(),
    n.StringLit: lambda e, _: _string(e.value),
    n.BoolLit: lambda e, _: "true" if e.value else "false",
    n.Name: lambda e, _: e.id,
    n.Call: _x_call,
    n.Binary: _x_binary,
    n.Compare: _x_binary,
    n.BoolOp: _x_binary,
    n.Not: _x_not,
    n.Neg: _x_neg,
}


def format_expr(e: n.Node) -> str:
    """The canonical text of an expression, with minimal parentheses.

    Iterative (explicit stack), so any tree the parser can build prints without recursion.
    """
    done: dict[int, str] = {}
    stack: list[tuple[n.Node, bool]] = [(e, False)]
    while stack:
        node, ready = stack.pop()
        if id(node) in done:
            continue
        handler = _EXPR_HANDLERS.get(type(node))
        if handler is None:
            raise TypeError(f"not an expression node: {type(node).__name__}")
        operands = _needs(node)
        if not ready:
            stack.append((node, True))
            stack.extend((child, False) for child, _ in operands)
            continue
        parts = [_wrap(done[id(child)], child, need) for child, need in operands]
        done[id(node)] = handler(node, parts)
    return done[id(e)]


def _ends_with_number(e: n.Node) -> bool:
    """Whether the printed expression's last token is a bare NUMBER."""
    while True:
        if isinstance(e, n.NumberLit):
            return True
        operands = _needs(e)
        if not operands or isinstance(e, n.Call):
            return False
        child, need = operands[-1]
        if _prec(child) < need:
            return False  # ends with ')'
        e = child


def _first_name(e: n.Node) -> str | None:
    """The printed expression's first token when it is a name (or a call's function name)."""
    while True:
        if isinstance(e, n.Name):
            return e.id
        if isinstance(e, n.Call):
            return e.func
        if not isinstance(e, n.Binary | n.Compare | n.BoolOp):
            return None
        child, need = _needs(e)[0]
        if _prec(child) < need:
            return None
        e = child


def _expr(e: n.Node, guard: bool = False) -> str:
    """An expression; with `guard`, parenthesised when it ends with a bare number."""
    text = format_expr(e)
    return f"({text})" if guard and _ends_with_number(e) else text


def _price_expr(e: n.Node, guard: bool) -> str:
    """An expression where a pricing form may start (`price X`, `PRODUCT: X`)."""
    if _first_name(e) in PRICING_WORDS:
        return f"({format_expr(e)})"
    return _expr(e, guard)


# ---------------------------------------------------------------------------------- inline parts
def _target(t: n.Target) -> str:
    return f"{t.kind} {', '.join(t.names)}" if t.names else t.kind


def _unit_pricing(p: n.UnitPricing, guard: bool) -> str:
    if p.per is not None:
        return f"{_price_expr(p.price, False)} per {p.per}"
    return _price_expr(p.price, guard)


def _package_pricing(p: n.PackagePricing, guard: bool) -> str:
    head = f"package of {_expr(p.size)} at "
    if p.free is None:
        return head + _expr(p.price, guard)
    return head + f"{_expr(p.price)} free {_expr(p.free, guard)}"


def _tiered_head(p: n.TieredPricing, guard: bool) -> str:
    return p.mode


def _zone_head(p: n.ZonePricing, guard: bool) -> str:
    return f"by zone {p.zones} per {p.per}"


# Text of a pricing on one line; for the block forms, the part before `{`.
_PRICING_HANDLERS: dict[type, Callable[[Any, bool], str]] = {
    n.UnitPricing: _unit_pricing,
    n.FlatPricing: lambda p, guard: f"flat {_expr(p.price, guard)}",
    n.PackagePricing: _package_pricing,
    n.PercentPricing: lambda p, guard: f"percent {_expr(p.rate)} of {_target(p.target)}",
    n.TieredPricing: _tiered_head,
    n.ZonePricing: _zone_head,
}


def _pricing_children(p: n.Node) -> tuple[n.Node, ...] | None:
    """The lines inside a block pricing (tiers, zone rates), None for one-line pricings."""
    if isinstance(p, n.TieredPricing):
        return p.tiers
    if isinstance(p, n.ZonePricing):
        return p.rates
    return None


def _pricing(p: n.Node, guard: bool) -> str:
    handler = _PRICING_HANDLERS.get(type(p))
    if handler is None:
        raise TypeError(f"not a pricing node: {type(p).__name__}")
    return handler(p, guard)


# ---------------------------------------------------------------------------------- layout
@dataclass
class _Line:
    depth: int
    text: str
    kind: str  # "open" | "simple" | "close"
    key: Pos  # own-line comments positioned before `key` are printed before this line
    start_line: int  # source line where the line's code starts (0: unknown)
    top: int  # index of the top-level declaration the line belongs to
    leading: list[n.Comment] = field(default_factory=list)
    trailing: list[n.Comment] = field(default_factory=list)


def _start(node: n.Node) -> Pos:
    return (node.span.line, node.span.column)


def _last(node: n.Node) -> Pos:
    """Position of the node's last character."""
    return (node.span.end_line, node.span.end_column - 1)


def _walk(node: n.Node) -> Iterator[n.Node]:
    stack = [node]
    while stack:
        x = stack.pop()
        yield x
        for f in fields(x):
            v = getattr(x, f.name)
            if isinstance(v, n.Node):
                stack.append(v)
            elif isinstance(v, tuple):
                stack.extend(c for c in v if isinstance(c, n.Node))


class _Printer:
    def __init__(self) -> None:
        self.lines: list[_Line] = []
        self.anchors: list[tuple[Pos, int]] = []  # known token positions -> output line
        self.top = 0

    # ------------------------------------------------------------ line makers
    def _add(self, depth: int, text: str, kind: str, key: Pos, start_line: int) -> int:
        if key[0] <= 0 and self.lines:  # generated nodes carry no span: keep keys ordered
            key = self.lines[-1].key
        self.lines.append(_Line(depth, text, kind, key, start_line, self.top))
        return len(self.lines) - 1

    def _anchor(self, pos: Pos, idx: int) -> None:
        if pos[0] > 0:
            self.anchors.append((pos, idx))

    def simple(self, node: n.Node, depth: int, text: str) -> None:
        end = (node.span.end_line, node.span.end_column)
        idx = self._add(depth, text, "simple", end, node.span.line)
        for sub in _walk(node):
            self._anchor(_start(sub), idx)
            self._anchor(_last(sub), idx)

    def block(
        self, owners: Sequence[n.Node], depth: int, header: str, children: Sequence[n.Node]
    ) -> None:
        """`header {`, the children one per line one level deeper, then `}`.

        `owners` are the nodes that start on the header line and end with the `}`.
        """
        outer = owners[0]
        idx = self._add(depth, header + " {", "open", _start(outer), outer.span.line)
        for o in owners:
            self._anchor(_start(o), idx)
        self.items(children, depth + 1)
        idx = self._add(depth, "}", "close", _last(outer), outer.span.end_line)
        for o in owners:
            self._anchor(_last(o), idx)

    def items(self, children: Sequence[n.Node], depth: int) -> None:
        for i, child in enumerate(children):
            following = _lead_word(children[i + 1]) if i + 1 < len(children) else ""
            self.line(child, depth, following in _AFTER_NUMBER_WORDS)

    def line(self, node: n.Node, depth: int, guard: bool = False) -> None:
        handler = _LINE_HANDLERS.get(type(node))
        if handler is None:
            raise TypeError(f"cannot format a {type(node).__name__} as a line")
        handler(self, node, depth, guard)

    # ------------------------------------------------------------ comments and output
    def place_comments(self, comments: Iterable[n.Comment]) -> list[n.Comment]:
        """Attach comments to lines; return those that go at the end of the file."""
        anchors = sorted(self.anchors)
        keys = [line.key for line in self.lines]
        tail: list[n.Comment] = []
        for c in sorted(comments, key=lambda c: (c.line, c.column)):
            pos = (c.line, c.column)
            i = bisect.bisect_left(anchors, (pos, -1)) - 1
            if i >= 0 and anchors[i][0][0] == c.line:
                line = self.lines[anchors[i][1]]
                line.leading.extend(line.trailing)  # only one comment can trail a line
                line.trailing = [c]
                continue
            j = bisect.bisect_right(keys, pos)
            if j < len(self.lines):
                self.lines[j].leading.append(c)
            else:
                tail.append(c)
        return tail

    def render(self, tail: Sequence[n.Comment]) -> str:
        out: list[str] = []
        prev_top: int | None = None
        for line in self.lines:
            if prev_top is not None and line.top != prev_top:
                out.append("")
            prev_top = line.top
            depth = line.depth + 1 if line.kind == "close" else line.depth
            leading = sorted(line.leading, key=lambda c: (c.line, c.column))
            top_level = depth == 0
            for k, c in enumerate(leading):
                out.append(INDENT * depth + c.text)
                nxt = leading[k + 1].line if k + 1 < len(leading) else line.start_line
                if top_level and nxt > c.line + 1:
                    out.append("")  # keep one blank line where the source had some
            text = INDENT * line.depth + line.text
            if line.trailing:
                text += "  " + line.trailing[0].text
            out.append(text)
        if tail:
            if out:
                out.append("")
            for k, c in enumerate(tail):
                out.append(c.text)
                if k + 1 < len(tail) and tail[k + 1].line > c.line + 1:
                    out.append("")
        return "\n".join(out) + "\n" if out else ""


def _lead_word(node: n.Node) -> str:
    """The first word of a node's line, when it is not a fixed keyword that can't be a unit."""
    if isinstance(node, n.WordAttr):
        return _WORD_KEYS.get(node.key, node.key).split()[0]
    if isinstance(node, n.ZoneRate):
        return node.zone
    if isinstance(node, n.PriceEntry):
        return node.product
    if isinstance(node, n.Setting):
        return node.key
    if isinstance(node, n.EffectivePriceList):
        return "pricelist"
    return ""


# ---------------------------------------------------------------------------------- line handlers
_WORD_KEYS = {"prices_in": "prices in", "cost_deck": "cost deck"}
_EXPR_KEYS = {"renewal": "renewal tacit"}
_FLAG_KEYS = {"no_renewal": "renewal none", "no_per_call_rounding": "per_call_rounding none"}
_KEYS_KEYS = {"group_by": "group by", "order_by": "order by"}
_BLOCK_KEYWORDS: dict[type, str] = {
    n.ProrationDecl: "proration",
    n.ProductDecl: "product",
    n.DiscountDecl: "discount",
    n.CommitmentDecl: "commitment",
    n.RateDeckDecl: "rate_deck",
    n.TimeBandsDecl: "time_bands",
    n.RatingDecl: "rating",
}


def _simple(text: Callable[[Any, bool], str]) -> Callable[[_Printer, Any, int, bool], None]:
    def handler(p: _Printer, node: Any, depth: int, guard: bool) -> None:
        p.simple(node, depth, text(node, guard))

    return handler


def _priced(
    p: _Printer, owner: n.Node, pricing: n.Node, prefix: str, depth: int, guard: bool
) -> None:
    """A line `prefix PRICING`, or a block when the pricing has tiers or zone rates."""
    children = _pricing_children(pricing)
    if children is None:
        p.simple(owner, depth, prefix + _pricing(pricing, guard))
    else:
        p.block((owner, pricing), depth, prefix + _pricing(pricing, False), children)


def _l_file(p: _Printer, f: n.RulesetFile, depth: int, guard: bool) -> None:
    for i, d in enumerate(f.decls):
        p.top = i
        p.line(d, depth)


def _l_header(p: _Printer, d: n.RulesetHeader, depth: int, guard: bool) -> None:
    p.block((d,), depth, f"ruleset {_string(d.name)}", d.settings)


def _l_rounding(p: _Printer, d: n.RoundingDecl, depth: int, guard: bool) -> None:
    p.block((d,), depth, "rounding", d.rules)


def _l_tax(p: _Printer, d: n.TaxDecl, depth: int, guard: bool) -> None:
    p.block((d,), depth, d.kind, d.attrs)


def _l_blockdecl(p: _Printer, d: n.BlockDecl, depth: int, guard: bool) -> None:
    p.block((d,), depth, f"{_BLOCK_KEYWORDS[type(d)]} {d.name}", d.attrs)


def _segments(segments: tuple[str, ...]) -> str:
    return f" for segment {_strings(segments)}" if segments else ""


def _l_pricelist(p: _Printer, d: n.PriceListDecl, depth: int, guard: bool) -> None:
    p.block((d,), depth, f"pricelist {d.name}{_segments(d.segments)}", d.entries)


def _l_effective(p: _Printer, d: n.EffectiveDecl, depth: int, guard: bool) -> None:
    header = f"effective {d.date.isoformat()}"
    if d.new_only:
        header += " for new subscriptions"
    if d.label is not None:
        header += " " + _string(d.label)
    p.block((d,), depth, header, d.entries)


def _l_effective_pricelist(p: _Printer, d: n.EffectivePriceList, depth: int, guard: bool) -> None:
    p.block((d,), depth, f"pricelist {d.name}", d.entries)


def _l_invoicing(p: _Printer, d: n.InvoicingDecl, depth: int, guard: bool) -> None:
    p.block((d,), depth, f"invoicing{_segments(d.segments)}", d.attrs)


def _l_zones(p: _Printer, d: n.ZonesDecl, depth: int, guard: bool) -> None:
    p.block((d,), depth, f"zones {d.name}", d.entries)


def _l_price_attr(p: _Printer, a: n.PriceAttr, depth: int, guard: bool) -> None:
    _priced(p, a, a.pricing, "price ", depth, guard)


def _l_price_entry(p: _Printer, e: n.PriceEntry, depth: int, guard: bool) -> None:
    _priced(p, e, e.pricing, f"{e.product}: ", depth, guard)


def _t_vat(d: n.VatDecl, guard: bool) -> str:
    text = f"vat {d.name} {_num(d.rate)}%"
    if d.category is not None:
        text += f" category {d.category}"
    if d.mention is not None:
        text += f" mention {_string(d.mention)}"
    return text


def _t_tier(t: n.Tier, guard: bool) -> str:
    head = "above" if t.up_to is None else f"up to {_expr(t.up_to)}"
    if t.flat is None:
        return f"{head}: {_expr(t.price, guard)}"
    return f"{head}: {_expr(t.price)} flat {_expr(t.flat, guard)}"


def _t_periodicity(a: n.PeriodicityAttr, guard: bool) -> str:
    return f"periodicity {a.periodicity}" + ("" if a.anchor is None else f" anchor {a.anchor}")


def _t_minimum_spend(a: n.MinimumSpendAttr, guard: bool) -> str:
    if a.target is None:
        return f"minimum_spend {_expr(a.amount, guard)}"
    return f"minimum_spend {_expr(a.amount)} on {_target(a.target)}"


def _t_peak(a: n.PeakAttr, guard: bool) -> str:
    start, end = a.start.strftime("%H:%M"), a.end.strftime("%H:%M")
    return f"peak {a.first_day}..{a.last_day} from {start} to {end}"


def _t_allowance(a: n.AllowanceAttr, guard: bool) -> str:
    zones = f" on zones {', '.join(a.zones)}" if a.zones else ""
    return f"allowance {_expr(a.amount)}{zones} per {a.scope}"


# Every node that prints as (or as a block of) whole lines.
_LINE_HANDLERS: dict[type, Callable[[_Printer, Any, int, bool], None]] = {
    n.RulesetFile: _l_file,
    # declarations
    n.RulesetHeader: _l_header,
    n.Import: _simple(lambda d, g: f"import {_string(d.path)}"),
    n.Const: _simple(lambda d, g: f"const {d.name} = {_expr(d.expr, g)}"),
    n.RoundingDecl: _l_rounding,
    n.VatDecl: _simple(_t_vat),
    n.TaxDecl: _l_tax,
    n.ProrationDecl: _l_blockdecl,
    n.FamilyDecl: _simple(lambda d, g: f"family {d.name} {_string(d.label)}"),
    n.ProductDecl: _l_blockdecl,
    n.PriceListDecl: _l_pricelist,
    n.EffectiveDecl: _l_effective,
    n.DiscountDecl: _l_blockdecl,
    n.CommitmentDecl: _l_blockdecl,
    n.InvoicingDecl: _l_invoicing,
    n.ZonesDecl: _l_zones,
    n.RateDeckDecl: _l_blockdecl,
    n.TimeBandsDecl: _l_blockdecl,
    n.RatingDecl: _l_blockdecl,
    # entries inside declarations
    n.Setting: _simple(lambda s, g: f"{s.key} {_expr(s.value)}"),
    n.RoundingRule: _simple(lambda r, g: f"{r.target} {_num(r.step)} {r.mode}"),
    n.PriceEntry: _l_price_entry,
    n.EffectivePriceList: _l_effective_pricelist,
    n.ZoneEntry: _simple(lambda z, g: f"{_string(z.prefix)} {z.zone}"),
    n.Tier: _simple(_t_tier),
    n.ZoneRate: _simple(lambda r, g: f"{r.zone}: {_expr(r.price, g)}"),
    # attributes
    n.TextAttr: _simple(lambda a, g: f"{a.key} {_string(a.value)}"),
    n.WordAttr: _simple(lambda a, g: f"{_WORD_KEYS.get(a.key, a.key)} {a.value}"),
    n.ExprAttr: _simple(lambda a, g: f"{_EXPR_KEYS.get(a.key, a.key)} {_expr(a.expr, g)}"),
    n.PriceAttr: _l_price_attr,
    n.PeriodicityAttr: _simple(_t_periodicity),
    n.OnAttr: _simple(lambda a, g: f"on {_target(a.target)}"),
    n.DateAttr: _simple(lambda a, g: f"{a.key} {a.value.isoformat()}"),
    n.NumberAttr: _simple(lambda a, g: f"{a.key} {a.value}"),
    n.FlagAttr: _simple(lambda a, g: _FLAG_KEYS.get(a.key, a.key)),
    n.MinimumSpendAttr: _simple(_t_minimum_spend),
    n.KeysAttr: _simple(lambda a, g: f"{_KEYS_KEYS.get(a.key, a.key)} {', '.join(a.values)}"),
    n.ColumnAttr: _simple(lambda a, g: f"column {a.field} {_string(a.header)}"),
    n.PeakAttr: _simple(_t_peak),
    n.IncrementsAttr: _simple(lambda a, g: f"increments {a.first}/{a.next}"),
    n.RoundingAttr: _simple(lambda a, g: f"{a.key} {_num(a.step)} {a.mode}"),
    n.AllowanceAttr: _simple(_t_allowance),
    n.FairUseAttr: _simple(lambda a, g: f"fair_use {_expr(a.amount)} per {a.scope}"),
}

# Every node type the formatter prints: expressions, pricings, targets, lines.
HANDLED_TYPES: frozenset[type] = frozenset(
    {*_EXPR_HANDLERS, *_PRICING_HANDLERS, n.Target, *_LINE_HANDLERS}
)


# ---------------------------------------------------------------------------------- public API
def format_ruleset(file: n.RulesetFile) -> str:
    """The canonical text of a ruleset, with `file.comments` placed from the nodes' spans."""
    p = _Printer()
    p.line(file, 0)
    tail = p.place_comments(file.comments)
    return p.render(tail)


def format_node(node: n.Node) -> str:
    """The canonical text of any node on its own; raises TypeError for anything else.

    Expressions, targets and one-line pricings give their text; block pricings, entries,
    attributes and declarations give their lines at the top indentation level, ending with a
    newline (without comments); a `RulesetFile` gives `format_ruleset(file)`.
    """
    if isinstance(node, n.RulesetFile):
        return format_ruleset(node)
    if type(node) in _EXPR_HANDLERS:
        return format_expr(node)
    if isinstance(node, n.Target):
        return _target(node)
    if type(node) in _PRICING_HANDLERS:
        children = _pricing_children(node)
        if children is None:
            return _pricing(node, False)
        p = _Printer()
        p.block((node,), 0, _pricing(node, False), children)
        return p.render(())
    if type(node) not in _LINE_HANDLERS:
        raise TypeError(f"cannot format a {type(node).__name__}")
    p = _Printer()
    p.line(node, 0)
    return p.render(())


def same_tree(a: object, b: object) -> bool:
    """`a == b` for trees, without recursion (dataclass `==` overflows the stack on the deep
    expressions the parser accepts): same node classes, equal fields that take part in
    equality (spans and comments do not)."""
    stack: list[tuple[object, object]] = [(a, b)]
    while stack:
        x, y = stack.pop()
        if isinstance(x, n.Node) or isinstance(y, n.Node):
            if type(x) is not type(y):
                return False
            stack.extend((getattr(x, f.name), getattr(y, f.name)) for f in fields(x) if f.compare)  # type: ignore[arg-type]
        elif isinstance(x, tuple) and isinstance(y, tuple):
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        elif type(x) is not type(y) or x != y:
            return False
    return True


def _comment_texts(comments: Iterable[n.Comment]) -> Counter[str]:
    return Counter(c.text for c in comments)


def format_text(text: str, path: str = "<string>") -> str:
    """Parse, format and check: the output must parse to an equal tree with the same comments.

    Raises `RulesetError` when `text` does not parse (a user error) and `FormatError` when the
    formatter would change the meaning or lose a comment (an internal error).
    """
    tree = parse_text(text, path)
    tree = replace(tree, comments=scan_comments(text))
    try:
        out = format_ruleset(tree)
    except RecursionError:  # pragma: no cover - the printer is iterative
        raise FormatError(f"{path}: internal error: ruleset nested too deeply to format") from None
    try:
        again = parse_text(out, path)
    except Exception as e:
        raise FormatError(f"{path}: internal error: the formatted text does not parse: {e}") from e
    if not same_tree(again, tree):
        raise FormatError(f"{path}: internal error: formatting changed the ruleset's meaning")
    if _comment_texts(scan_comments(out)) != _comment_texts(tree.comments):
        raise FormatError(f"{path}: internal error: formatting lost or changed a comment")
    return out
