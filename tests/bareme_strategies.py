"""Hypothesis strategies for valid Barème ruleset trees (`dsl.nodes`) and their text.

Every strategy builds trees that the grammar can express, so `parse_text(format_ruleset(t),
PATH) == t`. They compose: `exprs()` feeds `pricings()`, which feeds `product_decls()`, which
feeds `decls()` and `ruleset_files()`; most take the sub-strategies they use as arguments, so
a test can narrow them (e.g. `pricings(price=money_lits())` for typed evaluator tests).

Names come from a small alphabet (`P_ab1`...) that never collides with a grammar keyword, so
generated rulesets often reuse a name (good for checker and evaluator tests). Decimals are
non-negative (the grammar writes `-x` as `Neg`) with up to 4 places, dates fall in 2020-2030,
and strings mix quotes, backslashes, `#`, newlines, tabs and non-ASCII text.
"""

from __future__ import annotations

import re
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from dsl import nodes as n
from dsl import parser as _parser
from dsl.formatter import format_ruleset

PATH = "generated.bareme"  # the path generated files carry; parse their text with it

GRAMMAR = (Path(_parser.__file__).parent / "grammar.lark").read_text(encoding="utf-8")
# Every quoted word of the grammar: names must avoid them.
KEYWORDS = frozenset(re.findall(r'"([A-Za-z_][A-Za-z0-9_]*)"', GRAMMAR))

UNITS = [
    "seconds",
    "second",
    "minutes",
    "minute",
    "hours",
    "hour",
    "days",
    "day",
    "months",
    "month",
    "years",
    "year",
    "sms",
    "units",
    "unit",
    "bytes",
    "byte",
    "kB",
    "MB",
    "GB",
]
CURRENCIES = ["EUR", "USD", "GBP", "CHF"]
COMPARATORS = ["<", "<=", ">", ">=", "==", "!="]
FUNCTIONS = ["min", "max", "abs", "ceil", "floor", "round"]
TEXT_KEYS = ["label", "accounting", "mention", "description", "file", "series", "category"]
ROUNDING_MODES = ["half_up", "half_even", "half_down", "down", "up", "ceiling", "floor"]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
GROUP_KEYS = ["customer", "site", "account", "family"]
ORDER_KEYS = ["site", "account", "family", "product", "kind", "start"]


def _parses_to(text: str, expected: n.Decl) -> bool:
    try:
        return _parser.parse_text(text).decls == (expected,)
    except Exception:
        return False


# Known parser limits, detected so that generated trees always round-trip and start covering
# the forms as soon as the parser handles them:
# - `true` used to parse as BoolLit(False) (the `boolean` rule was built twice);
PARSER_READS_TRUE = _parses_to("const X = true", n.Const("X", n.BoolLit(True)))
# - after a literal value, the lexer read a setting key spelled like a keyword (`country`) as
#   that keyword, so `timezone "x" country FR` did not parse.
PARSER_READS_COUNTRY_KEY = _parses_to(
    'ruleset "A" { timezone "x" country FR }',
    n.RulesetHeader(
        "A", (n.Setting("timezone", n.StringLit("x")), n.Setting("country", n.Name("FR")))
    ),
)


def _comment_scan_splits_like_the_lexer() -> bool:
    try:
        comments = _parser.parse_text('const X = "a\rb"  # c').comments
    except Exception:  # pragma: no cover
        return False
    return [c.text for c in comments] == ["# c"]


# - the parser found comments with `text.splitlines()`, which also splits at '\r', '\x0c',
#   '\u2028'... inside strings, hiding or inventing comments.
PARSER_SPLITS_LINES_LIKE_LEXER = _comment_scan_splits_like_the_lexer()

# Characters left out of generated strings and comments: NUL (always rejected) and, while the
# comment scan splits lines unlike the lexer, the line breaks only `str.splitlines` knows.
EXCLUDED_CHARS = "\x00" + (
    "" if PARSER_SPLITS_LINES_LIKE_LEXER else "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
)


def _node(cls: Any, *args: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`cls(*drawn args)`. Not `st.builds`: Hypothesis pretty-prints values from `builds` as
    nested calls, in time exponential in the tree depth, so a failing test would hang for
    minutes printing its example; this way reports use the nodes' own repr."""
    return st.tuples(*args).map(lambda values: cls(*values))


def _tuple(elements: st.SearchStrategy[Any], min_size: int = 0, max_size: int = 3) -> Any:
    return st.lists(elements, min_size=min_size, max_size=max_size).map(tuple)


def _opt(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | s


# ---------------------------------------------------------------------------------- atoms
def names(prefixes: str = "PQXZ") -> st.SearchStrategy[str]:
    """Identifiers like `P_`, `Q_ab1`: never a keyword, often repeated."""
    return _node(
        lambda head, tail: f"{head}_{tail}",
        st.sampled_from(prefixes),
        st.text("ab12", max_size=3),
    ).filter(lambda s: s not in KEYWORDS)


def decimals(max_places: int = 4, max_value: int = 1_000_000) -> st.SearchStrategy[Decimal]:
    """Non-negative decimals with 0 to `max_places` places, trailing zeros kept (49.90)."""
    return _node(
        lambda digits, places: Decimal(digits).scaleb(-places),
        st.integers(0, max_value),
        st.integers(0, max_places),
    )


def dates() -> st.SearchStrategy[date]:
    return st.dates(date(2020, 1, 1), date(2030, 12, 31))


def times() -> st.SearchStrategy[time]:
    return _node(time, st.integers(0, 23), st.integers(0, 59))


def texts(max_size: int = 12) -> st.SearchStrategy[str]:
    """String values: quotes, backslashes, `#`, newline, tab, accents and any other unicode."""
    special = st.sampled_from(list('"\\#\n\t é€{}:') + ["\\n", '\\"', "# not a comment"])
    other = st.characters(codec="utf-8", exclude_characters=EXCLUDED_CHARS)
    return st.lists(special | other, max_size=max_size).map("".join)


def comment_texts(max_size: int = 20) -> st.SearchStrategy[str]:
    """Comments, with their leading '#', as the parser reports them (no trailing spaces)."""
    body = st.text(
        st.characters(codec="utf-8", exclude_characters=EXCLUDED_CHARS + "\n"),
        max_size=max_size,
    )
    return body.map(lambda b: ("#" + b).rstrip())


def booleans() -> st.SearchStrategy[bool]:
    return st.booleans() if PARSER_READS_TRUE else st.just(False)


# ---------------------------------------------------------------------------------- expressions
def number_lits() -> st.SearchStrategy[n.NumberLit]:
    return _node(n.NumberLit, decimals())


def money_lits() -> st.SearchStrategy[n.MoneyLit]:
    return _node(n.MoneyLit, decimals(), st.sampled_from(CURRENCIES))


def percent_lits() -> st.SearchStrategy[n.PercentLit]:
    return _node(n.PercentLit, decimals(max_value=100))


def quantity_lits(units: list[str] | None = None) -> st.SearchStrategy[n.QuantityLit]:
    return _node(n.QuantityLit, decimals(), st.sampled_from(units or UNITS))


def literals() -> st.SearchStrategy[n.Expr]:
    """Every literal form: number, money, percent, quantity, date, string, boolean."""
    return st.one_of(
        number_lits(),
        money_lits(),
        percent_lits(),
        quantity_lits(),
        _node(n.DateLit, dates()),
        _node(n.StringLit, texts()),
        _node(n.BoolLit, booleans()),
    )


def name_exprs(ids: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[n.Name]:
    return _node(n.Name, ids if ids is not None else names("abxy"))


def exprs(
    leaves: st.SearchStrategy[n.Expr] | None = None, max_leaves: int = 8
) -> st.SearchStrategy[n.Expr]:
    """Any expression: literals and names combined by every operator, `not`, `-` and calls.

    Trees, not texts: precedence and associativity are whatever the shape says, so printing
    them exercises the formatter's parentheses.
    """
    base = leaves if leaves is not None else (literals() | name_exprs())

    def extend(sub: st.SearchStrategy[n.Expr]) -> st.SearchStrategy[n.Expr]:
        return st.one_of(
            _node(n.Binary, st.sampled_from(["+", "-", "*", "/"]), sub, sub),
            _node(n.Compare, st.sampled_from(COMPARATORS), sub, sub),
            _node(n.BoolOp, st.sampled_from(["and", "or"]), sub, sub),
            _node(n.Not, sub),
            _node(n.Neg, sub),
            _node(n.Call, st.sampled_from(FUNCTIONS), _tuple(sub, max_size=3)),
        )

    return st.recursive(base, extend, max_leaves=max_leaves)


# ---------------------------------------------------------------------------------- pricing
def targets() -> st.SearchStrategy[n.Target]:
    return st.one_of(
        _node(n.Target, st.just("family"), names().map(lambda s: (s,))),
        _node(n.Target, st.just("product"), _tuple(names(), min_size=1)),
        st.just(n.Target("invoice")),
        st.just(n.Target("line")),
    )


def tiers(price: st.SearchStrategy[n.Expr] | None = None) -> st.SearchStrategy[n.Tier]:
    p = price if price is not None else exprs()
    return _node(n.Tier, _opt(p), p, _opt(p))


def pricings(
    price: st.SearchStrategy[n.Expr] | None = None, blocks: bool = True
) -> st.SearchStrategy[n.Pricing]:
    """Every pricing form; `blocks=False` leaves out the tiered and by-zone ones."""
    p = price if price is not None else exprs()
    one_line = st.one_of(
        _node(n.UnitPricing, p, _opt(st.sampled_from(UNITS))),
        _node(n.FlatPricing, p),
        _node(n.PackagePricing, p, p, _opt(p)),
        _node(n.PercentPricing, p, targets()),
    )
    if not blocks:
        return one_line
    return st.one_of(
        one_line,
        _node(
            n.TieredPricing,
            st.sampled_from(["graduated", "volume"]),
            _tuple(tiers(p), min_size=1, max_size=4),
        ),
        _node(
            n.ZonePricing,
            names("Z"),
            st.sampled_from(UNITS),
            _tuple(_node(n.ZoneRate, names("Z"), p)),
        ),
    )


# ---------------------------------------------------------------------------------- attributes
def text_attrs(keys: list[str] | None = None) -> st.SearchStrategy[n.TextAttr]:
    return _node(n.TextAttr, st.sampled_from(keys or TEXT_KEYS), texts())


def _word(key: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[n.WordAttr]:
    return _node(n.WordAttr, st.just(key), values)


def _words(key: str, values: list[str]) -> st.SearchStrategy[n.WordAttr]:
    return _word(key, st.sampled_from(values))


def _expr_attr(key: str, e: st.SearchStrategy[n.Expr]) -> st.SearchStrategy[n.ExprAttr]:
    return _node(n.ExprAttr, st.just(key), e)


def _flag(key: str) -> st.SearchStrategy[n.FlagAttr]:
    return st.just(n.FlagAttr(key))


def product_attrs(
    e: st.SearchStrategy[n.Expr] | None = None,
    pricing: st.SearchStrategy[n.Pricing] | None = None,
) -> st.SearchStrategy[n.Attr]:
    x = e if e is not None else exprs()
    return st.one_of(
        text_attrs(),
        _words("kind", ["recurring", "usage", "one_shot"]),
        _word("family", names()),
        _words("billing", ["in_advance", "in_arrears"]),
        _node(
            n.PeriodicityAttr,
            st.sampled_from(["monthly", "quarterly", "yearly"]),
            _opt(st.integers(1, 28)),
        ),
        _word("vat", names()),
        _word("proration", names()),
        _words("unit", UNITS),
        _word("rating", names()),
        _expr_attr("cost", x),
        _node(n.PriceAttr, pricing if pricing is not None else pricings(x)),
    )


def proration_attrs(e: st.SearchStrategy[n.Expr] | None = None) -> st.SearchStrategy[n.Attr]:
    return _words("method", ["actual_days", "days_30", "none"]) | _expr_attr(
        "minimum", e if e is not None else exprs()
    )


def discount_attrs(e: st.SearchStrategy[n.Expr] | None = None) -> st.SearchStrategy[n.Attr]:
    x = e if e is not None else exprs()
    return st.one_of(
        text_attrs(),
        *(_expr_attr(k, x) for k in ("percent", "fixed", "for", "when")),
        _node(n.OnAttr, targets()),
        _node(n.DateAttr, st.just("until"), dates()),
        _node(n.NumberAttr, st.just("order"), st.integers(0, 999)),
        *(_flag(k) for k in ("permanent", "allow_negative", "automatic")),
    )


def commitment_attrs(e: st.SearchStrategy[n.Expr] | None = None) -> st.SearchStrategy[n.Attr]:
    x = e if e is not None else exprs()
    return st.one_of(
        text_attrs(),
        *(_expr_attr(k, x) for k in ("duration", "renewal", "termination_fee", "cap")),
        _flag("no_renewal"),
        _node(n.MinimumSpendAttr, x, _opt(targets())),
    )


def invoicing_attrs() -> st.SearchStrategy[n.Attr]:
    return st.one_of(
        text_attrs(),
        _node(n.KeysAttr, st.just("group_by"), _tuple(st.sampled_from(GROUP_KEYS), 1)),
        _node(n.KeysAttr, st.just("order_by"), _tuple(st.sampled_from(ORDER_KEYS), 1)),
    )


def rate_deck_attrs() -> st.SearchStrategy[n.Attr]:
    return st.one_of(
        text_attrs(),
        _words("prices_in", ["micro", "decimal"]),
        _node(n.ColumnAttr, names(), texts()),
    )


def time_bands_attrs() -> st.SearchStrategy[n.Attr]:
    return st.one_of(
        _node(n.PeakAttr, st.sampled_from(DAYS), st.sampled_from(DAYS), times(), times()),
        _node(n.KeysAttr, st.just("weekend"), _tuple(st.sampled_from(DAYS), 1)),
        _word("holidays", names()),
        _words("policy", ["call_start", "split"]),
    )


def rating_attrs(e: st.SearchStrategy[n.Expr] | None = None) -> st.SearchStrategy[n.Attr]:
    x = e if e is not None else exprs()
    scope = st.sampled_from(["line", "customer"])
    return st.one_of(
        *(_word(k, names()) for k in ("deck", "cost_deck", "bands", "country")),
        _node(n.IncrementsAttr, st.integers(0, 3600), st.integers(0, 3600)),
        _expr_attr("minimum_duration", x),
        _expr_attr("maximum_per_call", x),
        _words("unanswered", ["drop", "free", "connect_fee"]),
        _node(
            n.RoundingAttr,
            st.just("per_call_rounding"),
            decimals(max_value=100),
            st.sampled_from(ROUNDING_MODES),
        ),
        _flag("no_per_call_rounding"),
        _node(n.AllowanceAttr, x, _tuple(names("Z")), scope),
        _node(n.FairUseAttr, x, scope),
    )


# ---------------------------------------------------------------------------------- declarations
def ruleset_settings() -> st.SearchStrategy[n.Setting]:
    """`key value` lines of the `ruleset` header: a literal or a bare word (`currency EUR`).

    Keys are names, never other keywords: after a literal value the lexer reads a key spelled
    like a keyword (`label`) as the keyword; `country` only when the grammar allows it.
    """
    known = ["currency", "timezone", "precision"] + ["country"] * PARSER_READS_COUNTRY_KEY
    keys = st.sampled_from(known) | names("s")
    words = st.sampled_from(["EUR", "FR", "actual_days"]) | names()
    return _node(n.Setting, keys, literals() | name_exprs(words))


def ruleset_headers() -> st.SearchStrategy[n.RulesetHeader]:
    return _node(n.RulesetHeader, texts(), _tuple(ruleset_settings(), max_size=4))


def const_decls(e: st.SearchStrategy[n.Expr] | None = None) -> st.SearchStrategy[n.Const]:
    return _node(n.Const, names("CK"), e if e is not None else exprs())


def rounding_decls() -> st.SearchStrategy[n.RoundingDecl]:
    rule = _node(
        n.RoundingRule,
        st.sampled_from(["unit_price", "line", "vat", "call"]),
        decimals(max_value=100),
        st.sampled_from(ROUNDING_MODES),
    )
    return _node(n.RoundingDecl, _tuple(rule, max_size=4))


def vat_decls() -> st.SearchStrategy[n.VatDecl]:
    return _node(n.VatDecl, names("V"), decimals(max_value=100), _opt(names("SE")), _opt(texts()))


def tax_decls() -> st.SearchStrategy[n.TaxDecl]:
    return _node(n.TaxDecl, st.sampled_from(["reverse_charge", "export"]), _tuple(text_attrs()))


def family_decls() -> st.SearchStrategy[n.FamilyDecl]:
    return _node(n.FamilyDecl, names("F"), texts())


def _block(cls: type[n.BlockDecl], attrs: st.SearchStrategy[n.Attr], max_attrs: int) -> Any:
    return _node(cls, names(), _tuple(attrs, max_size=max_attrs))


def product_decls(
    attrs: st.SearchStrategy[n.Attr] | None = None, max_attrs: int = 6
) -> st.SearchStrategy[n.ProductDecl]:
    return _block(n.ProductDecl, attrs if attrs is not None else product_attrs(), max_attrs)


def proration_decls() -> st.SearchStrategy[n.ProrationDecl]:
    return _block(n.ProrationDecl, proration_attrs(), 3)


def discount_decls(
    attrs: st.SearchStrategy[n.Attr] | None = None, max_attrs: int = 6
) -> st.SearchStrategy[n.DiscountDecl]:
    return _block(n.DiscountDecl, attrs if attrs is not None else discount_attrs(), max_attrs)


def commitment_decls() -> st.SearchStrategy[n.CommitmentDecl]:
    return _block(n.CommitmentDecl, commitment_attrs(), 5)


def rate_deck_decls() -> st.SearchStrategy[n.RateDeckDecl]:
    return _block(n.RateDeckDecl, rate_deck_attrs(), 4)


def time_bands_decls() -> st.SearchStrategy[n.TimeBandsDecl]:
    return _block(n.TimeBandsDecl, time_bands_attrs(), 4)


def rating_decls() -> st.SearchStrategy[n.RatingDecl]:
    return _block(n.RatingDecl, rating_attrs(), 6)


def price_entries(
    pricing: st.SearchStrategy[n.Pricing] | None = None,
) -> st.SearchStrategy[n.PriceEntry]:
    return _node(n.PriceEntry, names(), pricing if pricing is not None else pricings())


def pricelist_decls(
    entries: st.SearchStrategy[n.PriceEntry] | None = None,
) -> st.SearchStrategy[n.PriceListDecl]:
    e = entries if entries is not None else price_entries()
    return _node(n.PriceListDecl, names("L"), _tuple(texts()), _tuple(e))


def effective_decls(
    entries: st.SearchStrategy[n.PriceEntry] | None = None,
) -> st.SearchStrategy[n.EffectiveDecl]:
    e = entries if entries is not None else price_entries()
    nested = _node(n.EffectivePriceList, names("L"), _tuple(e))
    return _node(n.EffectiveDecl, dates(), st.booleans(), _opt(texts()), _tuple(e | nested))


def invoicing_decls() -> st.SearchStrategy[n.InvoicingDecl]:
    return _node(n.InvoicingDecl, _tuple(texts()), _tuple(invoicing_attrs(), max_size=4))


def zones_decls() -> st.SearchStrategy[n.ZonesDecl]:
    entry = _node(n.ZoneEntry, st.text("0123456789+", max_size=5) | texts(), names("Z"))
    return _node(n.ZonesDecl, names("Z"), _tuple(entry, max_size=4))


def import_decls() -> st.SearchStrategy[n.Import]:
    return _node(n.Import, texts())


def decls() -> st.SearchStrategy[n.Decl]:
    """Any top-level declaration."""
    return st.one_of(
        ruleset_headers(),
        import_decls(),
        const_decls(),
        rounding_decls(),
        vat_decls(),
        tax_decls(),
        proration_decls(),
        family_decls(),
        product_decls(),
        pricelist_decls(),
        effective_decls(),
        discount_decls(),
        commitment_decls(),
        invoicing_decls(),
        zones_decls(),
        rate_deck_decls(),
        time_bands_decls(),
        rating_decls(),
    )


def ruleset_files(
    decl: st.SearchStrategy[n.Decl] | None = None, max_decls: int = 6, path: str = PATH
) -> st.SearchStrategy[n.RulesetFile]:
    """Whole files (without comments); their text parses back (with `path`) to an equal tree."""
    d = decl if decl is not None else decls()
    return _node(n.RulesetFile, st.just(path), _tuple(d, max_size=max_decls))


def ruleset_texts(
    files: st.SearchStrategy[n.RulesetFile] | None = None,
) -> st.SearchStrategy[str]:
    """The canonical text of generated files."""
    return (files if files is not None else ruleset_files()).map(format_ruleset)


# ---------------------------------------------------------------------------------- messy text
_SPACES = [" ", "  ", "\t", " \t ", "   "]
_BREAKS = ["\n", "\n", "\n\n", "\r\n", " ", "\n \n"]
_INDENTS = ["", " ", "\t", "  ", "        ", "\t  "]
_PUNCTUATION = "(){},%/"


def _mess_line(line: str, rnd: Any, comment: Any) -> str:
    """Re-space one line outside strings: longer spaces, padded punctuation and, when `comment`
    gives comment texts, line breaks with comments at token boundaries; never split a token."""
    out: list[str] = []
    in_string = escaped = False
    for ch in line:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
            out.append(ch)
        elif ch == " ":
            r = rnd.random()
            if comment is not None and r < 0.04:
                out.append(f"  {comment()}\n")  # trailing comment inside a construct
            elif comment is not None and r < 0.08:
                out.append(f"\n{rnd.choice(_INDENTS)}{comment()}\n")  # own-line comment
            elif r < 0.12:
                out.append(rnd.choice(["\n", "\r\n", "\n\n"]))
            else:
                out.append(rnd.choice(_SPACES))
        elif ch in _PUNCTUATION and rnd.random() < 0.3:
            out.append(rnd.choice(_SPACES) + ch + rnd.choice(_SPACES))
        else:
            out.append(ch)
    return "".join(out)


@st.composite
def messy_texts(draw: st.DrawFn, text: str, comments: bool = True) -> tuple[str, list[str]]:
    """`text` (comment-free canonical text) re-spaced: other indentation, longer spaces,
    line breaks between any two tokens, lines joined, blank lines, CRLF; with `comments`,
    comments inserted on their own lines and after code, also inside multi-line constructs.
    Returns the messy text and the comment texts inserted."""
    rnd = draw(st.randoms(use_true_random=False))
    added: list[str] = []

    def comment() -> str:
        c = draw(comment_texts())
        added.append(c)
        return c

    maybe_comment = comment if comments else None
    out: list[str] = []
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if comments and rnd.random() < 0.2:
            out.append(rnd.choice(_INDENTS) + comment() + "\n")
        piece = rnd.choice(_INDENTS) + _mess_line(line.strip(), rnd, maybe_comment)
        if comments and rnd.random() < 0.2:
            out.append(piece + rnd.choice(_SPACES) + comment() + rnd.choice(["\n", "\r\n", "\n\n"]))
        elif i + 1 < len(lines):
            out.append(piece + rnd.choice(_BREAKS))
        else:
            out.append(piece)
    if comments and rnd.random() < 0.3:
        out.append("\n" + comment())
    return "".join(out), added
