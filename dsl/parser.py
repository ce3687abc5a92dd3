"""Parse ruleset text into the typed tree (`dsl.nodes`).

`parse_text(text, path)` returns a `RulesetFile` or raises `RulesetError` whose diagnostics
carry `file:line:col`, the expected tokens under user-facing names, and a hint: a label from
the catalogue of known-bad snippets (`SYNTAX_EXAMPLES`) or a "did you mean" among the keywords
the parser expected. Nothing but `RulesetError` ever escapes, whatever the input.
"""

from __future__ import annotations

import difflib
import re
from datetime import date, time
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from dsl import nodes as n
from dsl.diagnostics import Diagnostic, RulesetError

# Known-bad snippets, each mapped to the message a billing lead should read. `match_examples`
# labels a syntax error by the parser state it fails in; tests/dsl/test_syntax_errors.py
# checks that every snippet still maps to its label.
SYNTAX_EXAMPLES: dict[str, list[str]] = {
    "a block is not closed: '}' is missing": [
        'product P { label "x"',
        'discount D { percent 10% on family voice for 3 months',
        'ruleset "x" {',
    ],
    "an attribute needs a value after its keyword": [
        "product P { label }",
        "product P { vat }",
        "discount D { order }",
    ],
    "a constant is written `const NAME = value`": [
        "const X 12",
        "const X == 12",
    ],
    "a value is missing after the operator": [
        "const X = 1 +",
        "const X = 2 *",
        "product P { cost 3 EUR + }",
    ],
    "a tier is written `up to N: PRICE` or `above: PRICE`": [
        "product P { price graduated { 10: 5 EUR } }",
        "product P { price graduated { up 10: 5 EUR } }",
        "product P { price volume { up to 10 5 EUR } }",
    ],
    "a price list entry is written `PRODUCT: PRICE`": [
        "pricelist L { SIP 10 EUR }",
        'pricelist L for segment "sme" { SIP = 10 EUR }',
    ],
}

# User-facing names for terminals, shown in "expected ..." lists.
TERMINAL_NAMES = {
    "NAME": "a name",
    "STRING": 'a quoted text ("...")',
    "NUMBER": "a number",
    "DATE": "a date (YYYY-MM-DD)",
    "TIME": "a time (HH:MM)",
    "COMPARATOR": "a comparison (< <= > >= == !=)",
    "ADD_OP": "'+' or '-'",
    "MUL_OP": "'*' or '/'",
    "$END": "the end of the file",
}


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark.open(
        "grammar.lark",
        rel_to=__file__,
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        cache=True,
    )


def _unescape(raw: str) -> str:
    body = raw[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(nxt, "\\" + nxt))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class _Invalid(Exception):
    """A well-formed token with an impossible value (2026-02-30, 25:00): a diagnostic."""

    def __init__(self, diagnostic: Diagnostic):
        self.diagnostic = diagnostic


@v_args(meta=True)
class _Build(Transformer[Token, Any]):
    def __init__(self, path: str):
        super().__init__(visit_tokens=False)
        self.path = path

    # -------------------------------------------------------------- helpers
    def _sp(self, meta: Any) -> n.Span:
        if getattr(meta, "empty", True):
            return n.NO_SPAN
        return n.Span(self.path, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tsp(self, tok: Token) -> n.Span:
        return n.Span(
            self.path,
            tok.line or 0,
            tok.column or 0,
            tok.end_line or tok.line or 0,
            tok.end_column or tok.column or 0,
        )

    def _int(self, tok: Token, what: str) -> int:
        if len(str(tok)) > 12:
            raise _Invalid(Diagnostic("E012", f"{what} is too large: {str(tok)[:20]}...", self._tsp(tok)))
        if "." in str(tok):
            raise _Invalid(
                Diagnostic("E012", f"{what} must be a whole number, got {tok}", self._tsp(tok))
            )
        return int(str(tok))

    def _dec(self, tok: Token) -> Decimal:
        try:
            return Decimal(str(tok))
        except InvalidOperation as e:  # pragma: no cover - the lexer only lets digits through
            raise _Invalid(Diagnostic("E012", f"invalid number {tok}", self._tsp(tok))) from e

    def _date(self, tok: Token) -> date:
        try:
            return date.fromisoformat(str(tok))
        except ValueError as e:
            raise _Invalid(
                Diagnostic("E011", f"invalid date {tok}", self._tsp(tok), "dates are YYYY-MM-DD")
            ) from e

    def _time(self, tok: Token) -> time:
        try:
            return time.fromisoformat(str(tok))
        except ValueError as e:
            raise _Invalid(
                Diagnostic("E011", f"invalid time {tok}", self._tsp(tok), "times are HH:MM, 00:00 to 23:59")
            ) from e

    @staticmethod
    def _s(x: Any) -> str:
        return str(x)

    # -------------------------------------------------------------- keyword rules -> str
    def _kw(self, meta: Any, c: list[Any]) -> str:
        return str(c[0])

    rounding_target = rounding_mode = tax_kind = proration_method = product_kind = _kw
    billing_mode = periodicity = text_key = tier_mode = flag = group_key = order_key = _kw
    price_unit = day = band_policy = unanswered = scope = currency = unit = boolean = _kw
    setting_key = _kw

    # -------------------------------------------------------------- file and header
    def start(self, meta: Any, c: list[Any]) -> n.RulesetFile:
        return n.RulesetFile(self.path, tuple(c), span=self._sp(meta))

    def setting(self, meta: Any, c: list[Any]) -> n.Setting:
        return n.Setting(str(c[0]), c[1], span=self._sp(meta))

    def word_setting(self, meta: Any, c: list[Any]) -> n.Setting:
        return n.Setting(str(c[0]), n.Name(str(c[1]), span=self._tsp(c[1])), span=self._sp(meta))

    def ruleset_decl(self, meta: Any, c: list[Any]) -> n.RulesetHeader:
        return n.RulesetHeader(_unescape(c[0]), tuple(c[1:]), span=self._sp(meta))

    def import_decl(self, meta: Any, c: list[Any]) -> n.Import:
        return n.Import(_unescape(c[0]), span=self._sp(meta))

    def const_decl(self, meta: Any, c: list[Any]) -> n.Const:
        return n.Const(str(c[0]), c[1], span=self._sp(meta))

    # -------------------------------------------------------------- rounding, taxes
    def rounding_decl(self, meta: Any, c: list[Any]) -> n.RoundingDecl:
        return n.RoundingDecl(tuple(c), span=self._sp(meta))

    def rounding_rule(self, meta: Any, c: list[Any]) -> n.RoundingRule:
        return n.RoundingRule(c[0], self._dec(c[1]), c[2], span=self._sp(meta))

    def vat_decl(self, meta: Any, c: list[Any]) -> n.VatDecl:
        opts = dict(c[2:])
        return n.VatDecl(
            str(c[0]),
            self._dec(c[1]),
            opts.get("category"),
            opts.get("mention"),
            span=self._sp(meta),
        )

    def vat_category(self, meta: Any, c: list[Any]) -> tuple[str, str]:
        return ("category", str(c[0]))

    def vat_mention(self, meta: Any, c: list[Any]) -> tuple[str, str]:
        return ("mention", _unescape(c[0]))

    def tax_decl(self, meta: Any, c: list[Any]) -> n.TaxDecl:
        return n.TaxDecl(c[0], tuple(c[1:]), span=self._sp(meta))

    def family_decl(self, meta: Any, c: list[Any]) -> n.FamilyDecl:
        return n.FamilyDecl(str(c[0]), _unescape(c[1]), span=self._sp(meta))

    # -------------------------------------------------------------- blocks
    def _block(self, cls: type[n.BlockDecl], meta: Any, c: list[Any]) -> n.BlockDecl:
        return cls(str(c[0]), tuple(c[1:]), span=self._sp(meta))

    def proration_decl(self, meta: Any, c: list[Any]) -> n.BlockDecl:
        return self._block(n.ProrationDecl, meta, c)

    def product_decl(self, meta: Any, c: list[Any]) -> n.BlockDecl:
        return self._block(n.ProductDecl, meta, c)

    def discount_decl(self, meta: Any, c: list[Any]) -> n.BlockDecl:
        return self._block(n.DiscountDecl, meta, c)

    def commitment_decl(self, meta: Any, c: list[Any]) -> n.BlockDecl:
        return self._block(n.CommitmentDecl, meta, c)

    def rate_deck_decl(self, meta: Any, c: list[Any]) -> n.BlockDecl:
        return self._block(n.RateDeckDecl, meta, c)

    def time_bands_decl(self, meta: Any, c: list[Any]) -> n.BlockDecl:
        return self._block(n.TimeBandsDecl, meta, c)

    def rating_decl(self, meta: Any, c: list[Any]) -> n.BlockDecl:
        return self._block(n.RatingDecl, meta, c)

    # -------------------------------------------------------------- attributes
    def text_attr(self, meta: Any, c: list[Any]) -> n.TextAttr:
        return n.TextAttr(c[0], _unescape(c[1]), span=self._sp(meta))

    def _word(key: str) -> Any:  # type: ignore[misc]
        def build(self: _Build, meta: Any, c: list[Any]) -> n.WordAttr:
            return n.WordAttr(key, str(c[0]), span=self._sp(meta))

        return build

    def _expr(key: str) -> Any:  # type: ignore[misc]
        def build(self: _Build, meta: Any, c: list[Any]) -> n.ExprAttr:
            return n.ExprAttr(key, c[0], span=self._sp(meta))

        return build

    def _flag(key: str) -> Any:  # type: ignore[misc]
        def build(self: _Build, meta: Any, c: list[Any]) -> n.FlagAttr:
            return n.FlagAttr(key, span=self._sp(meta))

        return build

    method_attr = _word("method")
    kind_attr = _word("kind")
    family_attr = _word("family")
    billing_attr = _word("billing")
    vat_attr = _word("vat")
    proration_ref_attr = _word("proration")
    unit_attr = _word("unit")
    rating_ref_attr = _word("rating")
    prices_in_attr = _word("prices_in")
    holidays_attr = _word("holidays")
    band_policy_attr = _word("policy")
    deck_attr = _word("deck")
    cost_deck_attr = _word("cost_deck")
    bands_attr = _word("bands")
    unanswered_attr = _word("unanswered")
    country_attr = _word("country")

    minimum_attr = _expr("minimum")
    cost_attr = _expr("cost")
    percent_attr = _expr("percent")
    fixed_attr = _expr("fixed")
    for_attr = _expr("for")
    when_attr = _expr("when")
    duration_attr = _expr("duration")
    tacit_renewal_attr = _expr("renewal")
    termination_fee_attr = _expr("termination_fee")
    cap_attr = _expr("cap")
    minimum_duration_attr = _expr("minimum_duration")
    maximum_per_call_attr = _expr("maximum_per_call")

    no_renewal_attr = _flag("no_renewal")
    no_per_call_rounding_attr = _flag("no_per_call_rounding")

    def flag_attr(self, meta: Any, c: list[Any]) -> n.FlagAttr:
        return n.FlagAttr(c[0], span=self._sp(meta))

    def price_attr(self, meta: Any, c: list[Any]) -> n.PriceAttr:
        return n.PriceAttr(c[0], span=self._sp(meta))

    def periodicity_attr(self, meta: Any, c: list[Any]) -> n.PeriodicityAttr:
        anchor = None if c[1] is None else self._int(c[1], "the anchor day")
        return n.PeriodicityAttr(c[0], anchor, span=self._sp(meta))

    def on_attr(self, meta: Any, c: list[Any]) -> n.OnAttr:
        return n.OnAttr(c[0], span=self._sp(meta))

    def until_attr(self, meta: Any, c: list[Any]) -> n.DateAttr:
        return n.DateAttr("until", self._date(c[0]), span=self._sp(meta))

    def order_attr(self, meta: Any, c: list[Any]) -> n.NumberAttr:
        return n.NumberAttr("order", self._int(c[0], "the stacking order"), span=self._sp(meta))

    def minimum_spend_attr(self, meta: Any, c: list[Any]) -> n.MinimumSpendAttr:
        return n.MinimumSpendAttr(c[0], c[1], span=self._sp(meta))

    def group_by_attr(self, meta: Any, c: list[Any]) -> n.KeysAttr:
        return n.KeysAttr("group_by", tuple(c), span=self._sp(meta))

    def order_by_attr(self, meta: Any, c: list[Any]) -> n.KeysAttr:
        return n.KeysAttr("order_by", tuple(c), span=self._sp(meta))

    def weekend_attr(self, meta: Any, c: list[Any]) -> n.KeysAttr:
        return n.KeysAttr("weekend", tuple(c), span=self._sp(meta))

    def column_attr(self, meta: Any, c: list[Any]) -> n.ColumnAttr:
        return n.ColumnAttr(str(c[0]), _unescape(c[1]), span=self._sp(meta))

    def peak_attr(self, meta: Any, c: list[Any]) -> n.PeakAttr:
        return n.PeakAttr(c[0], c[1], self._time(c[2]), self._time(c[3]), span=self._sp(meta))

    def increments_attr(self, meta: Any, c: list[Any]) -> n.IncrementsAttr:
        return n.IncrementsAttr(
            self._int(c[0], "the first increment"),
            self._int(c[1], "the next increment"),
            span=self._sp(meta),
        )

    def per_call_rounding_attr(self, meta: Any, c: list[Any]) -> n.RoundingAttr:
        return n.RoundingAttr("per_call_rounding", self._dec(c[0]), c[1], span=self._sp(meta))

    def allowance_attr(self, meta: Any, c: list[Any]) -> n.AllowanceAttr:
        zones = c[1] if c[1] is not None else ()
        return n.AllowanceAttr(c[0], tuple(zones), c[2], span=self._sp(meta))

    def zone_scope(self, meta: Any, c: list[Any]) -> tuple[str, ...]:
        return tuple(str(x) for x in c)

    def fair_use_attr(self, meta: Any, c: list[Any]) -> n.FairUseAttr:
        return n.FairUseAttr(c[0], c[1], span=self._sp(meta))

    # -------------------------------------------------------------- pricing
    def unit_pricing(self, meta: Any, c: list[Any]) -> n.UnitPricing:
        return n.UnitPricing(c[0], c[1], span=self._sp(meta))

    def flat_pricing(self, meta: Any, c: list[Any]) -> n.FlatPricing:
        return n.FlatPricing(c[0], span=self._sp(meta))

    def tiered_pricing(self, meta: Any, c: list[Any]) -> n.TieredPricing:
        return n.TieredPricing(c[0], tuple(c[1:]), span=self._sp(meta))

    def bounded_tier(self, meta: Any, c: list[Any]) -> n.Tier:
        return n.Tier(c[0], c[1], c[2], span=self._sp(meta))

    def open_tier(self, meta: Any, c: list[Any]) -> n.Tier:
        return n.Tier(None, c[0], c[1], span=self._sp(meta))

    def package_pricing(self, meta: Any, c: list[Any]) -> n.PackagePricing:
        return n.PackagePricing(c[0], c[1], c[2], span=self._sp(meta))

    def percent_pricing(self, meta: Any, c: list[Any]) -> n.PercentPricing:
        return n.PercentPricing(c[0], c[1], span=self._sp(meta))

    def zone_pricing(self, meta: Any, c: list[Any]) -> n.ZonePricing:
        return n.ZonePricing(str(c[0]), c[1], tuple(c[2:]), span=self._sp(meta))

    def zone_rate(self, meta: Any, c: list[Any]) -> n.ZoneRate:
        return n.ZoneRate(str(c[0]), c[1], span=self._sp(meta))

    def family_target(self, meta: Any, c: list[Any]) -> n.Target:
        return n.Target("family", (str(c[0]),), span=self._sp(meta))

    def product_target(self, meta: Any, c: list[Any]) -> n.Target:
        return n.Target("product", tuple(str(x) for x in c), span=self._sp(meta))

    def invoice_target(self, meta: Any, c: list[Any]) -> n.Target:
        return n.Target("invoice", span=self._sp(meta))

    def line_target(self, meta: Any, c: list[Any]) -> n.Target:
        return n.Target("line", span=self._sp(meta))

    # -------------------------------------------------------------- price lists, effective
    def segment_filter(self, meta: Any, c: list[Any]) -> tuple[str, ...]:
        return tuple(_unescape(s) for s in c)

    def pricelist_decl(self, meta: Any, c: list[Any]) -> n.PriceListDecl:
        segments = c[1] if c[1] is not None else ()
        return n.PriceListDecl(str(c[0]), tuple(segments), tuple(c[2:]), span=self._sp(meta))

    def price_entry(self, meta: Any, c: list[Any]) -> n.PriceEntry:
        return n.PriceEntry(str(c[0]), c[1], span=self._sp(meta))

    def new_only(self, meta: Any, c: list[Any]) -> bool:
        return True

    def effective_decl(self, meta: Any, c: list[Any]) -> n.EffectiveDecl:
        label = None if c[2] is None else _unescape(c[2])
        return n.EffectiveDecl(
            self._date(c[0]), bool(c[1]), label, tuple(c[3:]), span=self._sp(meta)
        )

    def effective_pricelist(self, meta: Any, c: list[Any]) -> n.EffectivePriceList:
        return n.EffectivePriceList(str(c[0]), tuple(c[1:]), span=self._sp(meta))

    def invoicing_decl(self, meta: Any, c: list[Any]) -> n.InvoicingDecl:
        segments = c[0] if c[0] is not None else ()
        return n.InvoicingDecl(tuple(segments), tuple(c[1:]), span=self._sp(meta))

    def zones_decl(self, meta: Any, c: list[Any]) -> n.ZonesDecl:
        return n.ZonesDecl(str(c[0]), tuple(c[1:]), span=self._sp(meta))

    def zone_entry(self, meta: Any, c: list[Any]) -> n.ZoneEntry:
        return n.ZoneEntry(_unescape(c[0]), str(c[1]), span=self._sp(meta))

    # -------------------------------------------------------------- expressions
    def or_op(self, meta: Any, c: list[Any]) -> n.BoolOp:
        return n.BoolOp("or", c[0], c[1], span=self._sp(meta))

    def and_op(self, meta: Any, c: list[Any]) -> n.BoolOp:
        return n.BoolOp("and", c[0], c[1], span=self._sp(meta))

    def not_op(self, meta: Any, c: list[Any]) -> n.Not:
        return n.Not(c[0], span=self._sp(meta))

    def compare(self, meta: Any, c: list[Any]) -> n.Compare:
        return n.Compare(str(c[1]), c[0], c[2], span=self._sp(meta))

    def binary(self, meta: Any, c: list[Any]) -> n.Binary:
        return n.Binary(str(c[1]), c[0], c[2], span=self._sp(meta))

    def neg(self, meta: Any, c: list[Any]) -> n.Neg:
        return n.Neg(c[0], span=self._sp(meta))

    def name(self, meta: Any, c: list[Any]) -> n.Name:
        return n.Name(str(c[0]), span=self._sp(meta))

    def call(self, meta: Any, c: list[Any]) -> n.Call:
        args = tuple(a for a in c[1:] if a is not None)
        return n.Call(str(c[0]), args, span=self._sp(meta))

    def number(self, meta: Any, c: list[Any]) -> n.NumberLit:
        return n.NumberLit(self._dec(c[0]), span=self._sp(meta))

    def money(self, meta: Any, c: list[Any]) -> n.MoneyLit:
        return n.MoneyLit(self._dec(c[0]), c[1], span=self._sp(meta))

    def percent(self, meta: Any, c: list[Any]) -> n.PercentLit:
        return n.PercentLit(self._dec(c[0]), span=self._sp(meta))

    def quantity(self, meta: Any, c: list[Any]) -> n.QuantityLit:
        return n.QuantityLit(self._dec(c[0]), c[1], span=self._sp(meta))

    def date(self, meta: Any, c: list[Any]) -> n.DateLit:
        return n.DateLit(self._date(c[0]), span=self._sp(meta))

    def string(self, meta: Any, c: list[Any]) -> n.StringLit:
        return n.StringLit(_unescape(c[0]), span=self._sp(meta))

    def bool_lit(self, meta: Any, c: list[Any]) -> n.BoolLit:
        return n.BoolLit(c[0] == "true", span=self._sp(meta))


def _display(term: str) -> str:
    if term in TERMINAL_NAMES:
        return TERMINAL_NAMES[term]
    try:
        pattern = _lark().get_terminal(term).pattern
    except KeyError:
        return term.lower()
    value = pattern.value
    if pattern.type == "str":
        return f"'{value}'"
    return term.lower()


def _expected_names(expected: set[str]) -> list[str]:
    names = sorted({_display(t) for t in expected})
    return names


def _keyword_values(expected: set[str]) -> list[str]:
    out: list[str] = []
    for t in expected:
        try:
            pattern = _lark().get_terminal(t).pattern
        except KeyError:
            continue
        if pattern.type == "str" and str(pattern.value).isidentifier():
            out.append(str(pattern.value))
    return out


def _syntax_diagnostic(e: UnexpectedInput, text: str, path: str) -> Diagnostic:
    line = getattr(e, "line", 0) or 0
    column = getattr(e, "column", 0) or 0
    label = None
    try:
        label = e.match_examples(_lark().parse, SYNTAX_EXAMPLES, use_accepts=True)
    except Exception:  # match_examples re-parses snippets; never let it mask the real error
        label = None
    if isinstance(e, UnexpectedCharacters):
        pos = e.pos_in_stream if e.pos_in_stream is not None else -1
        ch = text[pos] if 0 <= pos < len(text) else "?"
        expected = _expected_names(set(e.allowed or ()))
        span = n.Span(path, line, column, line, column + 1)
        msg = f"unexpected character {ch!r}"
        hint = label or ("expected " + ", ".join(expected[:12]) if expected else None)
        return Diagnostic("E002", msg, span, hint)
    if isinstance(e, UnexpectedEOF):
        lines = text.splitlines() or [""]
        last = len(lines)
        span = n.Span(path, last, len(lines[-1]) + 1, last, len(lines[-1]) + 2)
        expected = _expected_names(set(e.expected or ()))
        hint = label or ("expected " + ", ".join(expected[:12]) if expected else None)
        return Diagnostic("E003", "unexpected end of file", span, hint)
    assert isinstance(e, UnexpectedToken)
    tok = e.token
    expected_terms = set(e.accepts or e.expected or ())
    expected = _expected_names(expected_terms)
    if tok.type == "$END":
        lines = text.splitlines() or [""]
        span = n.Span(path, len(lines), len(lines[-1]) + 1, len(lines), len(lines[-1]) + 2)
        hint = label or ("expected " + ", ".join(expected[:12]) if expected else None)
        return Diagnostic("E003", "unexpected end of file", span, hint)
    span = n.Span(
        path,
        tok.line or line,
        tok.column or column,
        tok.end_line or tok.line or line,
        tok.end_column or (column + len(str(tok))),
    )
    shown = str(tok)
    hint_parts: list[str] = []
    if tok.type == "NAME" or str(tok).isidentifier():
        close = difflib.get_close_matches(str(tok), _keyword_values(expected_terms), n=1, cutoff=0.6)
        if close:
            hint_parts.append(f"did you mean '{close[0]}'?")
    if label:
        hint_parts.append(label)
    if expected:
        hint_parts.append("expected " + ", ".join(expected[:12]) + (" ..." if len(expected) > 12 else ""))
    return Diagnostic("E001", f"unexpected {shown!r}", span, "; ".join(hint_parts) or None)


def parse_text(text: str, path: str = "<string>") -> n.RulesetFile:
    """Parse one ruleset file. Raises `RulesetError` (and nothing else) on bad input."""
    if "\x00" in text:
        pos = text.index("\x00")
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        raise RulesetError(
            [Diagnostic("E002", "NUL character in ruleset", n.Span(path, line, col, line, col + 1))]
        )
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as e:
        first = _syntax_diagnostic(e, text, path)
        raise RulesetError([first, *_later_syntax_errors(text, path, first.span.line)]) from None
    except RecursionError:
        raise RulesetError(
            [Diagnostic("E004", "expression nested too deeply", n.Span(path, 1, 1, 1, 2))]
        ) from None
    try:
        result = _Build(path).transform(tree)
    except VisitError as e:
        if isinstance(e.orig_exc, _Invalid):
            raise RulesetError([e.orig_exc.diagnostic]) from None
        if isinstance(e.orig_exc, RecursionError):
            raise RulesetError(
                [Diagnostic("E004", "expression nested too deeply", n.Span(path, 1, 1, 1, 2))]
            ) from None
        raise
    except RecursionError:
        raise RulesetError(
            [Diagnostic("E004", "expression nested too deeply", n.Span(path, 1, 1, 1, 2))]
        ) from None
    return n.RulesetFile(result.path, result.decls, scan_comments(text), span=result.span)


# A line starting with one of these at column 1 starts a new declaration: after a syntax error the
# parser resumes there, so independent mistakes further down are reported in the same run.
_TOP_LEVEL = re.compile(
    r"(ruleset|import|const|rounding|vat|reverse_charge|export|proration|family|product|pricelist"
    r"|effective|discount|commitment|invoicing|zones|rate_deck|time_bands|rating)\b"
)
MAX_SYNTAX_ERRORS = 50


def _later_syntax_errors(text: str, path: str, after_line: int) -> list[Diagnostic]:
    """Syntax errors of the declarations that start after `after_line` (error recovery)."""
    lines = text.split("\n")
    found: list[Diagnostic] = []
    line = after_line
    while len(found) < MAX_SYNTAX_ERRORS:
        start = next((i for i in range(line, len(lines)) if _TOP_LEVEL.match(lines[i])), None)
        if start is None:
            return found
        rest = "\n".join(lines[start:])
        try:
            _lark().parse(rest)
            return found
        except UnexpectedInput as e:
            d = _syntax_diagnostic(e, rest, path)
        except RecursionError:
            return found
        span = n.Span(path, d.span.line + start, d.span.column, d.span.end_line + start, d.span.end_column)
        found.append(Diagnostic(d.code, d.message, span, d.hint))
        line = max(span.line, start + 1)
    return found


def scan_comments(text: str) -> tuple[n.Comment, ...]:
    """The comments of a ruleset text, as the lexer sees them, so the formatter can keep them.

    Lines are split on '\n' only, like the lexer counts them (`str.splitlines` would also
    split inside strings and comments at '\r', '\x0c', '\u2028'...). Strings are skipped.
    """
    out: list[n.Comment] = []
    for number, line in enumerate(text.split("\n"), start=1):
        in_string = escaped = False
        for i, ch in enumerate(line):
            if in_string:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch == "#":
                out.append(n.Comment(number, i + 1, line[i:].rstrip()))
                break
    return tuple(out)
