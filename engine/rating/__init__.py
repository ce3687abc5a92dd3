"""Usage (CDR) rating engine, independent of the ruleset language.

* :mod:`engine.rating.plan` - the frozen dataclasses the DSL compiles into (rate decks, time
  bands, allowances, fair use, the rating plan) and the rate-deck loader;
* :mod:`engine.rating.numbers` - called-number normalisation (scalar and vectorised);
* :mod:`engine.rating.reference` - the per-record Python oracle;
* :mod:`engine.rating.kernel` - the vectorised rater and the invoice-line aggregation;
* :mod:`engine.rating.cdr_import` - streaming CSV import (generic, Asterisk, benchmark kit).

Money is integer micro-units everywhere (never floats); where each rounding happens is stated in
the kernel's and the reference's docstrings.
"""
