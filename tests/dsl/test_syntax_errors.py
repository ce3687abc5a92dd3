"""Syntax errors read like advice: labelled snippets, "did you mean", user-facing token names."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dsl.diagnostics import Diagnostic, RulesetError
from dsl.parser import SYNTAX_EXAMPLES, TERMINAL_NAMES, parse_text

CASES = [(label, snippet) for label, snippets in SYNTAX_EXAMPLES.items() for snippet in snippets]

VALID = """\
ruleset "Acme" {
  currency EUR
  country FR
}
const SETUP = 49 EUR
vat standard 20% category S
family voice "Voice"
product SIP {
  label "SIP trunk"
  kind recurring
  family voice
  billing in_advance
  periodicity monthly anchor 1
  vat standard
  price graduated { up to 10: 12.50 EUR up to 50: 10 EUR above: 8 EUR flat 20 EUR }
}
product CALLS {
  label "Calls"
  kind usage
  unit second
  vat standard
  price by zone DEST per minute { FR: 0.01 EUR }
}
zones DEST { "33" FR }
pricelist SME for segment "sme" { SIP: 11 EUR }
effective 2027-01-01 for new subscriptions { SIP: 13 EUR }
discount WELCOME {
  percent 20%
  on product SIP
  for 3 months
  when quantity >= 2 and not (volume < 1)
  order 10
}
commitment C24 { duration 24 months renewal tacit 12 months termination_fee remaining_value * 50% }
invoicing { group by customer, site order by site, product series "FA" }
"""


def _error(text: str) -> Diagnostic:
    with pytest.raises(RulesetError) as info:
        parse_text(text, "t.bareme")
    assert info.value.diagnostics, "a RulesetError always carries diagnostics"
    return info.value.diagnostics[0]


@pytest.mark.parametrize(("label", "snippet"), CASES, ids=[s for _, s in CASES])
def test_every_example_maps_to_its_label(label: str, snippet: str) -> None:
    d = _error(snippet)
    assert d.hint is not None
    assert label in d.hint
    assert d.span.file == "t.bareme"
    assert d.span.line >= 1 and d.span.column >= 1


@pytest.mark.parametrize(
    ("text", "typo", "keyword"),
    [
        ('product P { lable "x" }', "lable", "label"),
        ("product P { prce 1 EUR }", "prce", "price"),
        ("discount D { percnt 10% }", "percnt", "percent"),
        ("commitment C { duraton 12 months }", "duraton", "duration"),
        ('produkt P { label "x" }', "produkt", "product"),
    ],
)
def test_typo_in_a_keyword_gets_did_you_mean(text: str, typo: str, keyword: str) -> None:
    d = _error(text)
    assert d.code == "E001"
    assert d.message == f"unexpected {typo!r}"
    assert d.hint is not None and f"did you mean '{keyword}'?" in d.hint
    assert (d.span.line, d.span.column) == (1, text.index(typo) + 1)


def test_the_valid_reference_text_parses() -> None:
    assert parse_text(VALID, "t.bareme").decls


_FRIENDLY = set(TERMINAL_NAMES.values())


def _assert_user_facing(d: Diagnostic) -> None:
    text = f"{d.message} {d.hint or ''}"
    assert not re.search(r"__anon|\$end|_anon", text, re.IGNORECASE), text
    if d.hint and "expected " in d.hint:
        listed = d.hint.split("expected ", 1)[1].removesuffix(" ...")
        # split on the ", " between items, not inside "'+' or '-'" style names
        for item in re.split(r", (?=['a-z])", listed):
            item = item.strip()
            assert item.startswith("'") or item in _FRIENDLY, (item, d)


def test_expected_tokens_at_every_truncation_are_user_facing() -> None:
    listed = 0
    for end in range(0, len(VALID), 5):
        try:
            parse_text(VALID[:end], "t.bareme")
        except RulesetError as e:
            for d in e.diagnostics:
                _assert_user_facing(d)
                listed += "expected " in (d.hint or "")
    assert listed > 50  # the check above really looked at expected-token lists


@given(
    st.integers(min_value=0, max_value=len(VALID) - 1),
    st.integers(min_value=1, max_value=12),
    st.sampled_from(["", "}", "{", ":", "%", "=", "@", "per", "up to", '"', "..", "0"]),
)
def test_expected_tokens_after_any_damage_are_user_facing(at: int, cut: int, insert: str) -> None:
    text = VALID[:at] + insert + VALID[at + cut :]
    try:
        parse_text(text, "t.bareme")
    except RulesetError as e:
        for d in e.diagnostics:
            _assert_user_facing(d)
            assert d.span.line >= 1
