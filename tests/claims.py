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
import re
from decimal import Decimal
from pathlib import Path

import numpy as np

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
