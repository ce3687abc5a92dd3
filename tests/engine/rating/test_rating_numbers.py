"""Number normalisation: scalar and vectorised forms agree with each other and with
phonenumbers (country code + national number) on generated French and international numbers."""

from __future__ import annotations

import phonenumbers
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.rating.numbers import classify, normalise, normalise_array


def pn_digits(number: str) -> str:
    p = phonenumbers.parse(number, "FR")
    lead = "0" * (p.number_of_leading_zeros or 1) if p.italian_leading_zero else ""
    return f"{p.country_code}{lead}{p.national_number}"


FR_NATIONAL = st.builds(lambda d, rest: f"0{d}{rest}", st.sampled_from("1234567"),
                        st.text("0123456789", min_size=8, max_size=8))
INTL = st.builds(lambda cc, first, rest: (cc, f"{first}{rest}"),
                 st.sampled_from(["33", "44", "49", "1", "39", "34", "32", "41", "351", "212",
                                  "86", "81", "971", "61", "7"]),
                 st.sampled_from("123456789"), st.text("0123456789", min_size=7, max_size=9))


@settings(max_examples=200, deadline=None)
@given(st.one_of(
    FR_NATIONAL,
    st.builds(lambda n: "+33" + n[1:], FR_NATIONAL),
    st.builds(lambda n: "0033" + n[1:], FR_NATIONAL),
    st.builds(lambda x: "+" + x[0] + x[1], INTL),
    st.builds(lambda x: "00" + x[0] + x[1], INTL),
))
def test_matches_phonenumbers(number: str) -> None:
    want = pn_digits(number)
    assert normalise(number) == want
    assert normalise_array([number]).to_strings() == [want]


BAD = ["", "abc", "0", "00", "+", "+0612345678", "0012", "612345678", "33612345678",
       "+33 612345678", "06-12-34-56-78", "+3361234567８", "0٣3612345678", "+1234",
       "+1234567890123456", "006", "0x12345678", " 0612345678", "+33612345678 "]


@pytest.mark.parametrize("number", BAD)
def test_invalid(number: str) -> None:
    assert normalise(number) is None
    assert normalise_array([number]).to_strings() == [None]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=18), st.text("+0123456789", max_size=18),
                          st.sampled_from(BAD)), max_size=40))
def test_vector_equals_scalar(numbers: list[str]) -> None:
    assert normalise_array(numbers).to_strings() == [normalise(x) for x in numbers]
    assert normalise_array(numbers, "41").to_strings() == [normalise(x, "41") for x in numbers]


def test_vector_handles_slices_nulls_and_binary() -> None:
    arr = pa.array(["x", "+33612345678", None, "0612345678", "0044207123456"])
    assert normalise_array(arr.slice(1)).to_strings() == ["33612345678", None, "33612345678",
                                                          "44207123456"]
    b = pa.array([b"+33612345678", b"\xff\xfe", b"0612345678"], type=pa.binary())
    assert normalise_array(b).to_strings() == ["33612345678", None, "33612345678"]
    n = normalise_array(["+447412345678", "0612345678"])
    assert n.leading(4).tolist() == [4474, 3361]
    assert n.leading(12).tolist() == [447412345678, 336123456780]


def test_classify() -> None:
    assert classify("+33612345678") == "mobile"
    assert classify("0140000000") == "fixed"
    assert classify("0800123456") == "toll_free"
    assert classify("+999123") == "invalid"
    assert classify("abc") == "invalid"
