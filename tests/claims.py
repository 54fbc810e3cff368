"""Published claims: a number a document quotes from a published run, recomputed from its arrays.

A claim is ``(document, snippet, values)``. The snippet must occur verbatim in the document
(whitespace runs, line breaks included, count as one space), and the k-th number written in the
snippet must equal the k-th value rounded as the snippet prints it: ``0.43`` accepts
``[0.425, 0.435]``, ``2e-6`` accepts ``[1.5e-6, 2.5e-6]``, ``3148`` accepts ``[3147.5, 3148.5]``.
A value of ``None`` skips that number (a setting such as the "10" of "10 seeds", not a result).
A rerun that changes a published number makes the claim fail until the document and the claim
are changed together, so no stale number can stay in a document that has a claim on it.

Comparative sentences ("lowest on k of n games", "beats", "slope below") are checked by
:func:`quote` (the sentence is there) followed by plain assertions on the arrays.
"""

from __future__ import annotations

import functools
import json
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
from scipy import stats

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results"

#: a printed number: an optional minus sign not glued to a word ("7-29%" reads 7 and 29), digits,
#: optional decimals and exponent.
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@functools.cache
def document(doc: str | Path) -> str:
    """The text of ``doc`` (a path relative to the repository root), whitespace squashed."""
    return _squash((REPO / doc).read_text(encoding="utf-8"))


@functools.cache
def published(name: str, file: str = "results.npz") -> dict[str, np.ndarray]:
    """Every array of ``docs/results/<name>/<file>``, loaded once per test session."""
    with np.load(RESULTS / name / file) as f:
        return {k: f[k] for k in f.files}


def numbers_in(snippet: str) -> list[str]:
    """The numbers written in ``snippet``, as printed."""
    return NUMBER.findall(snippet)


def rounds_to(printed: str, value: float) -> bool:
    """True when ``value`` rounds to ``printed`` at the precision ``printed`` is written with."""
    quantum = Decimal(10) ** Decimal(printed).as_tuple().exponent
    return abs(Decimal(repr(float(value))) - Decimal(printed)) <= quantum / 2 + Decimal("1e-12")


def quote(doc: str | Path, snippet: str) -> list[str]:
    """Assert ``snippet`` occurs in ``doc``; return the numbers it prints."""
    text, want = document(doc), _squash(snippet)
    assert want in text, f"{doc}: no longer says {want!r} (changed text? update the claim with it)"
    return numbers_in(want)


def claim(doc: str | Path, snippet: str, *values: float | None) -> None:
    """Assert ``snippet`` is in ``doc`` and its numbers are ``values`` as printed (None: skip)."""
    printed = quote(doc, snippet)
    assert len(printed) == len(values), (
        f"{doc}: {snippet!r} prints {len(printed)} numbers {printed}, the claim gives {len(values)}"
    )
    for k, (p, v) in enumerate(zip(printed, values, strict=True)):
        if v is not None:
            assert rounds_to(p, float(v)), (
                f"{doc}: {snippet!r} number {k + 1} prints {p}, the published arrays give {v:.6g}"
            )


@functools.cache
def manifest(name: str, file: str = "manifest.json") -> dict:
    """``docs/results/<name>/<file>`` (the run's config and versions), parsed once."""
    return json.loads((RESULTS / name / file).read_text(encoding="utf-8"))


def table(doc: str | Path, heading: str) -> list[dict[str, str]]:
    """The first markdown table after the line ``heading`` in ``doc``: one dict per row.

    Keys are the header cells, values the cells as printed (stripped). ``heading`` is matched
    as a whole line (``## Coverage of theta``, a caption line, or the table's header row itself),
    so a renamed section fails here instead of silently checking another table. A header with a
    repeated cell is refused (use :func:`table_rows`): a dict would drop columns.
    """
    header, rows = table_rows(doc, heading)
    assert len(set(header)) == len(header), f"{doc}: repeated header cells {header}"
    return [dict(zip(header, r, strict=True)) for r in rows]


def table_rows(doc: str | Path, heading: str) -> tuple[list[str], list[list[str]]]:
    """The header and the rows (lists of printed cells) of the table :func:`table` finds."""
    lines = (REPO / doc).read_text(encoding="utf-8").splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == heading.strip()]
    assert starts, f"{doc}: no line {heading!r} (renamed section? update the claim with it)"
    i = starts[0] if lines[starts[0]].lstrip().startswith("|") else starts[0] + 1
    while i < len(lines) and not lines[i].lstrip().startswith("|"):
        i += 1
    rows = []
    while i < len(lines) and lines[i].lstrip().startswith("|"):
        rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
        i += 1
    assert len(rows) >= 3 and set(rows[1]) <= {"---", ":---", "---:", ":---:"}, (
        f"{doc}: no markdown table after {heading!r}"
    )
    header = rows[0]
    for r in rows[2:]:
        assert len(r) == len(header), f"{doc}: ragged row {r} under {header}"
    return header, rows[2:]


def cell(printed: str, *values: float | None, where: str = "") -> None:
    """Assert the numbers in one table cell (``0.953 [0.938, 0.965]``) are ``values`` as printed.

    ``nan`` in a cell must meet a NaN value; None skips a number.
    """
    if printed.strip().lower() == "nan":
        assert len(values) == 1 and (values[0] is None or np.isnan(values[0])), (
            f"{where}: prints nan, the published arrays give {values}"
        )
        return
    nums = numbers_in(printed)
    assert len(nums) == len(values), f"{where}: {printed!r} prints {nums}, the claim gives {values}"
    for p, v in zip(nums, values, strict=True):
        if v is not None:
            assert rounds_to(p, float(v)), (
                f"{where}: {printed!r} prints {p}, the published arrays give {float(v):.6g}"
            )


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial band for ``k`` successes of ``n`` from Beta quantiles (SciPy).

    Written here, not imported from the library, so that a wrong band in the library's report
    code is caught by the claims that quote it.
    """
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def mean_se(x: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error (``std(ddof=1) / sqrt(n)``) along ``axis``."""
    x = np.asarray(x, dtype=float)
    n = x.shape[axis]
    return x.mean(axis=axis), x.std(axis=axis, ddof=1) / np.sqrt(n)


def sig(value: float, digits: int) -> float:
    """``value`` rounded to ``digits`` significant digits, for a document that prints "220-410"
    (two significant digits of 222 and 414) where :func:`rounds_to` would read "220" as exact."""
    value = float(value)
    if value == 0 or not np.isfinite(value):
        return value
    return round(value, digits - 1 - int(np.floor(np.log10(abs(value)))))


def committed(commit: str, path: str) -> bytes:
    """The bytes of ``path`` (relative to the repository root) as committed at ``commit``.

    Skips the calling test when git or the commit is not there (a shallow clone): a quote from
    an earlier run then cannot be checked on this checkout, which the skip reason says.
    """
    import subprocess

    import pytest

    try:
        return subprocess.run(
            ["git", "-C", str(REPO), "show", f"{commit}:{path}"], capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"{commit}:{path} is not in this checkout (shallow clone?)")


@functools.cache
def published_at(commit: str, name: str, file: str = "results.npz") -> dict[str, np.ndarray]:
    """``docs/results/<name>/<file>`` as committed at ``commit`` (an earlier run a document cites);
    a ``.json`` file is parsed, an ``.npz`` loaded."""
    import io

    blob = committed(commit, f"docs/results/{name}/{file}")
    if file.endswith(".json"):
        return json.loads(blob)
    with np.load(io.BytesIO(blob)) as f:
        return {k: f[k] for k in f.files}


def sbc_pvalues(ranks: np.ndarray, n_draws: int) -> np.ndarray:
    """Chi-square and KS p-values of each column of SBC ranks in ``0..n_draws``: ``[d, 2]``.

    Re-implemented with SciPy (not the library's ``uniformity_test``): 20 bins with edges
    ``floor(linspace(0, M + 1, 21))`` for the chi-square test, and the KS test of the randomised
    PIT ``(rank + U) / (M + 1)`` with ``U`` from ``default_rng(0)`` (the convention the run
    states). A library test that bins wrongly or tests the wrong law disagrees with this.
    """
    n_values = n_draws + 1
    edges = np.floor(np.linspace(0, n_values, 21)).astype(int)
    expected = len(ranks) * np.diff(edges) / n_values
    jitter = np.random.default_rng(0).uniform(size=ranks.shape)
    out = []
    for j in range(ranks.shape[1]):
        counts = np.histogram(ranks[:, j], bins=edges - 0.5)[0]
        chi = stats.chisquare(counts, expected).pvalue
        ks = stats.kstest((ranks[:, j] + jitter[:, j]) / n_values, "uniform").pvalue
        out.append([chi, ks])
    return np.asarray(out)


def versions(doc: str | Path, snippet: str, run: str, **names: str) -> None:
    """Assert ``snippet`` is in ``doc`` and each library version it names, ``label=package``
    (``jax="jax"``: the snippet prints "jax 0.12"), is the run's manifest version."""
    text = _squash(snippet)
    quote(doc, snippet)
    got = manifest(run)["versions"]
    for label, package in names.items():
        printed = re.search(rf"{re.escape(label)} (\d+(?:\.\d+)*)", text)
        assert printed, f"{doc}: {snippet!r} names no version of {label}"
        want = got[package]
        assert want == printed[1] or want.startswith(printed[1] + "."), (
            f"{doc}: prints {label} {printed[1]}, the run's manifest says {want}"
        )
