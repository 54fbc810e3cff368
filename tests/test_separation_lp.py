"""The separation LP on data where HiGHS's default settings give up (status 15, "model status
Unknown"): the published inverse_stackelberg run lost 32 of its 150 bounded-V fits so.

The fixture ``tests/data/separation_highs_status15.npz`` holds the ``features[145, 10, 100]``
and ``counts[145, 10]`` (100 rounds) that one of those fits passed to ``find_separation``:
Wu et al.'s 10 x 10 game at alpha = 0.2, seed 7, N = 100, A-optimal two-stage design, the
bounded V fit's full coding (captured from ``inverse_stackelberg.run_part``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linprog

from bayes_qse import separation
from bayes_qse.separation import find_separation

FIXTURE = Path(__file__).parent / "data" / "separation_highs_status15.npz"


@pytest.fixture(scope="module")
def data():
    with np.load(FIXTURE) as z:
        return z["features"], z["counts"]


def _rows(features, counts):
    """``x[c, b] - x[c, b']`` for every observed ``(c, b)`` and ``b' != b``, with ``(c, b')``,
    by loops (the recession directions' constraints of eq. 2.3a)."""
    rows, cells = [], []
    for c in range(counts.shape[0]):
        for b in range(counts.shape[1]):
            if counts[c, b] <= 0:
                continue
            for alt in range(counts.shape[1]):
                if alt != b:
                    rows.append(features[c, b] - features[c, alt])
                    cells.append((c, alt))
    return np.array(rows), cells


def test_default_highs_gives_up_on_the_fixture(data, monkeypatch):
    """The test bed shows the point: with HiGHS's default settings alone the LP fails on
    this data (if a HiGHS upgrade solves it, this fixture no longer exercises the fallback
    and needs replacing)."""
    monkeypatch.setattr(separation, "LP_TRIES", separation.LP_TRIES[:1])
    with pytest.raises(RuntimeError, match="the LP failed"):
        find_separation(*data)


def test_the_fallback_finds_a_valid_separation_the_peer_lp_confirms(data):
    """``find_separation`` answers; its direction satisfies every constraint
    ``(x_b - x_b') . delta >= 0`` with a strict margin exactly on the rows of the cells it
    reports, and an independent LP (SciPy's interior-point HiGHS on ``max sum_r min(a_r .
    delta, 1)`` over the unnormalised rows, written here) separates the same number of
    responses.  Fails if the fallback is dropped (RuntimeError), if a failed solve's ``x`` is
    used, or if the cells are read off the wrong variables."""
    features, counts = data
    sep = find_separation(features, counts)
    rows, cells = _rows(features, counts)
    assert sep.kind in ("complete", "quasi-complete")
    margin = rows @ sep.direction
    scale = np.linalg.norm(rows, axis=1)
    assert np.all(margin >= -1e-7 * scale)
    strict = {cell for cell, m, s in zip(cells, margin, scale, strict=True) if m > 1e-7 * s}
    reported = {(int(c), int(b)) for c, b in sep.cells}
    assert reported == strict
    # the peer: variables (delta[d], y[R]), max sum y, y_r <= a_r . delta, 0 <= y <= 1
    R, d = rows.shape
    unit = rows / scale[:, None]
    a_ub = np.hstack([-unit, np.eye(R)])
    bounds = [(-1e6, 1e6)] * d + [(0.0, 1.0)] * R
    res = linprog(
        np.concatenate([np.zeros(d), -np.ones(R)]),
        A_ub=a_ub,
        b_ub=np.zeros(R),
        bounds=bounds,
        method="highs-ipm",
    )
    assert res.status == 0
    peer = {cells[r] for r in np.flatnonzero(res.x[d:] > 0.5)}
    assert peer == reported
