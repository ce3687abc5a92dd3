"""Exact rational numbers: the language's numbers, and every amount before it is rounded.

`Fraction` is quicktions' (a compiled drop-in of the standard library's `fractions.Fraction`,
the same values, hashes, comparisons and text, about 6x faster arithmetic), or the standard
library's where quicktions is not installed. Type checkers see the standard library's. Every
module imports `Fraction` from here, never from `fractions`: one class in a run, so that
`isinstance` checks hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fractions import Fraction as Fraction
else:
    try:
        from quicktions import Fraction
    except ImportError:  # pure-Python fallback (tests/engine/test_native.py bills with both)
        from fractions import Fraction

__all__ = ["Fraction"]
