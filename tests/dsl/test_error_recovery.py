"""After a syntax error the parser resumes at the next declaration, so `bareme check` reports
independent mistakes of one file together."""

from __future__ import annotations

import pytest

from dsl.diagnostics import RulesetError
from dsl.parser import MAX_SYNTAX_ERRORS, parse_text

TEXT = """vat standard 20% category S
product A {
    label "A"
    perodicity monthly
}
product B {
    label "B"
    price 10 EUR +
}
const OK = 1
discount D {
    order
}
"""


def test_every_declaration_with_a_syntax_error_is_reported() -> None:
    with pytest.raises(RulesetError) as err:
        parse_text(TEXT, "r.bareme")
    where = [(d.span.line, d.span.column, d.code) for d in err.value.diagnostics]
    assert where == [(4, 5, "E001"), (9, 1, "E001"), (13, 1, "E001")]
    assert "did you mean 'periodicity'" in (err.value.diagnostics[0].hint or "")


def test_recovery_is_bounded() -> None:
    text = "product P { label }\n" * (MAX_SYNTAX_ERRORS + 20)
    with pytest.raises(RulesetError) as err:
        parse_text(text, "r.bareme")
    assert len(err.value.diagnostics) == MAX_SYNTAX_ERRORS + 1
    assert [d.span.line for d in err.value.diagnostics[:3]] == [1, 2, 3]
