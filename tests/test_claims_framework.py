"""The claims checker itself (tests/claims.py): which misquotes it must catch."""

from __future__ import annotations

import pytest
from claims import numbers_in, rounds_to


def test_numbers_are_read_as_printed():
    # a range "7-29%" is two positive numbers; a sign after a space is a sign; 10^4 is 10 and 4
    text = "7-29% at -0.5, 2e-6 and 13.7 +/- 0.6 (T = 10^4, 0.06-0.10)"
    want = "7 29 -0.5 2e-6 13.7 0.6 10 4 0.06 0.10".split()
    assert numbers_in(text) == want


@pytest.mark.parametrize(
    "printed, value, ok",
    [
        ("0.43", 0.434, True),
        ("0.43", 0.436, False),  # rounds to 0.44: a stale 0.43 must fail
        ("47.6", 2.2, False),  # the reversed ranking of issue 22
        ("3148", 3147.6, True),
        ("3148", 3149.0, False),
        ("2e-6", 2.4e-6, True),
        ("2e-6", 2.6e-6, False),
        ("-0.5", -0.5, True),
        ("-0.5", 0.5, False),  # a lost sign
        ("0.10", 0.1, True),
    ],
)
def test_rounding_window_is_half_the_last_printed_digit(printed, value, ok):
    assert rounds_to(printed, value) is ok
