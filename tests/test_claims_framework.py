"""The claims checker itself (tests/claims.py): which misquotes it must catch."""

from __future__ import annotations

import numpy as np
import pytest
from claims import (
    cell,
    claim,
    clopper_pearson,
    mean_se,
    numbers_in,
    rounds_to,
    sig,
    table,
    table_rows,
)


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


def test_clopper_pearson_closed_forms():
    # k = 0 and k = n have closed forms: a band computed another way (normal approximation,
    # one-sided quantile, swapped Beta parameters) fails here
    lo, hi = clopper_pearson(0, 1000)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 1000), rel=1e-9)
    lo, hi = clopper_pearson(1000, 1000)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 1000), rel=1e-9)
    lo, hi = clopper_pearson(5, 10)
    assert lo == pytest.approx(1 - hi, rel=1e-12)  # symmetric at k = n / 2
    # the band the coverage page prints for 950 of 1000: half-width 0.014
    lo, hi = clopper_pearson(950, 1000)
    assert rounds_to("0.014", (hi - lo) / 2) and lo < 0.95 < hi


def test_mean_se_and_sig():
    m, se = mean_se(np.array([1.0, 2.0, 3.0, 6.0]))
    assert m == 3.0 and se == pytest.approx(np.sqrt(14 / 3) / 2)  # ddof = 1
    assert sig(222.2, 2) == 220 and sig(414.2, 2) == 410 and sig(0.04496, 2) == 0.045
    assert sig(-3.46, 1) == -3


def test_table_reads_cells_by_header(tmp_path):
    doc = tmp_path / "t.md"
    doc.write_text(
        "# x\n\n## Coverage\n\ntext\n\n| case | n | Wald |\n|---|---|---|\n"
        "| ws | 10 | 0.973 [0.961, 0.982] |\n| ms | 100 | nan |\n\n## Other\n\n"
        "| a | N | N |\n|---|---|---|\n| r | 1 | 2 |\n"
    )
    rows = table(doc, "## Coverage")
    assert rows == [
        {"case": "ws", "n": "10", "Wald": "0.973 [0.961, 0.982]"},
        {"case": "ms", "n": "100", "Wald": "nan"},
    ]
    cell(rows[0]["Wald"], 0.9731, 0.9612, 0.9815)
    cell(rows[1]["Wald"], float("nan"))
    with pytest.raises(AssertionError):
        cell(rows[0]["Wald"], 0.9731, 0.9612, 0.9835)  # a stale upper band
    with pytest.raises(AssertionError):
        cell(rows[1]["Wald"], 0.5)  # nan printed where the arrays hold a number
    with pytest.raises(AssertionError):
        table(doc, "## Missing")  # a renamed section fails, it does not read another table
    with pytest.raises(AssertionError):
        table(doc, "## Other")  # repeated header cells would drop a column
    assert table_rows(doc, "## Other") == (["a", "N", "N"], [["r", "1", "2"]])


def test_claim_counts_every_number():
    # a claim that skips a printed number, or gives one too many, fails: no number goes unread
    with pytest.raises(AssertionError):
        claim("docs/coverage.md", "With 1000 replications a band is about +/- 0.014", 1000)
    claim("docs/coverage.md", "With 1000 replications a band is about +/- 0.014", 1000, 0.014)
