"""Called-number normalisation to E.164 digits (no '+').

Rules (the scalar :func:`normalise` and the vectorised :func:`normalise_array` agree exactly):

* ``+<cc>...``  -> the digits after ``+``            (``+33612345678`` -> ``33612345678``)
* ``00<cc>...`` -> the digits after ``00``           (``0044207...``   -> ``44207...``)
* ``0X...``     -> country code + the digits after 0 (``0612345678``   -> ``33612345678``),
  X in 1-9, country code from ``RatingPlan.default_country_code``
* anything else is invalid: empty, letters, spaces or punctuation, digits without ``+``/``0``,
  a country code starting with 0, or fewer than ``MIN_DIGITS`` (7) / more than ``MAX_DIGITS``
  (15, the E.164 maximum) digits after normalisation.

The vectorised form works on the raw buffer of an Arrow string/binary array and returns the
normalised number as an int64 (``value``, at most 15 digits so it always fits) plus its digit
count, so that the longest-prefix match needs no string operation.  :func:`classify` uses
``phonenumbers`` (fixed line / mobile / ...) for import checks only, never on the hot path.
No money here, no rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from engine.rating._vec import P10, Strings, parse_digits, strings_of

MIN_DIGITS = 7
MAX_DIGITS = 15


def normalise(number: str | None, country_code: str = "33") -> str | None:
    """Scalar normalisation; ``None`` when invalid."""
    if not number:
        return None
    if number[0] == "+":
        body = number[1:]
        prefix = ""
    elif number.startswith("00"):
        body = number[2:]
        prefix = ""
    elif number[0] == "0":
        body = number[1:]
        prefix = country_code
    else:
        return None
    if not body or not body.isascii() or not body.isdigit() or body[0] == "0":
        return None
    out = prefix + body
    if not MIN_DIGITS <= len(out) <= MAX_DIGITS:
        return None
    return out


@dataclass
class NormalisedNumbers:
    """Vectorised result: ``value`` (int64, 0 when invalid), ``ndigits`` (int64), ``valid``."""

    value: np.ndarray
    ndigits: np.ndarray
    valid: np.ndarray

    def to_strings(self) -> list[str | None]:
        """Python strings (tests and diagnostics; not for the hot path)."""
        out: list[str | None] = []
        for v, n, ok in zip(self.value.tolist(), self.ndigits.tolist(), self.valid.tolist(),
                            strict=True):
            out.append(str(v).zfill(n) if ok else None)
        return out

    def take(self, idx: np.ndarray) -> NormalisedNumbers:
        return NormalisedNumbers(self.value[idx], self.ndigits[idx], self.valid[idx])

    def leading(self, k: int) -> np.ndarray:
        """The first ``k`` digits as an int64 (numbers shorter than k are right-padded with 0)."""
        nd = self.ndigits
        sh = nd - k
        return np.where(sh >= 0, self.value // P10[np.clip(sh, 0, 18)],
                        self.value * P10[np.clip(-sh, 0, 18)])


def normalise_strings(s: Strings, country_code: str = "33") -> NormalisedNumbers:
    """Vectorised normalisation over a raw :class:`Strings` view (see :func:`normalise`)."""
    data = s.data
    st = s.start
    c0 = data[st]
    c1 = data[st + 1]
    plus = c0 == 43
    zero = c0 == 48
    intl = zero & (c1 == 48)
    nat = zero ^ intl
    skip = plus.astype(np.int64)
    skip += zero
    skip += intl
    body_start = st + skip
    body_len = s.length - skip
    # the first body digit must be 1-9 (no country code starts with 0); a too short value
    # reads a neighbour's byte here but then fails the length checks
    first = data[body_start] - np.uint8(49)
    value, ok = parse_digits(s, body_start, body_len)
    ok &= first <= 8
    ok &= plus | zero
    nd = body_len
    any_nat = bool(nat.any())
    if any_nat:
        nd = body_len + len(country_code) * nat
    ok &= nd >= MIN_DIGITS
    ok &= nd <= MAX_DIGITS
    if not s.present.all():
        ok &= s.present
    if any_nat:
        idx = np.flatnonzero(nat & ok)
        value[idx] += int(country_code) * P10[body_len[idx]]
    if not ok.all():
        bad = ~ok
        value[bad] = 0
        nd = np.where(ok, nd, 0)
    return NormalisedNumbers(value=value, ndigits=nd, valid=ok)


def normalise_array(arr: pa.Array | pa.ChunkedArray | list[str | None],
                    country_code: str = "33") -> NormalisedNumbers:
    """Vectorised normalisation of an Arrow string/binary array (or a list of str)."""
    if isinstance(arr, list):
        arr = pa.array(arr, type=pa.string())
    return normalise_strings(strings_of(arr), country_code)


_TYPE_NAMES = {
    "FIXED_LINE": "fixed", "MOBILE": "mobile", "FIXED_LINE_OR_MOBILE": "fixed_or_mobile",
    "TOLL_FREE": "toll_free", "PREMIUM_RATE": "premium_rate", "SHARED_COST": "shared_cost",
    "VOIP": "voip", "PERSONAL_NUMBER": "personal", "PAGER": "pager", "UAN": "uan",
    "VOICEMAIL": "voicemail", "UNKNOWN": "unknown",
}


def classify(number: str, region: str = "FR") -> str:
    """Kind of a number via ``phonenumbers``: fixed, mobile, fixed_or_mobile, toll_free,
    premium_rate, shared_cost, voip, personal, pager, uan, voicemail, unknown; ``invalid`` when
    it does not parse or is not a valid number.  For import checks, not for rating
    (``phonenumbers`` is imported on first use: its metadata is large)."""
    import phonenumbers

    try:
        p = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return "invalid"
    if not phonenumbers.is_valid_number(p):
        return "invalid"
    kind = phonenumbers.number_type(p)
    for name, label in _TYPE_NAMES.items():
        if getattr(phonenumbers.PhoneNumberType, name) == kind:
            return label
    return "unknown"
