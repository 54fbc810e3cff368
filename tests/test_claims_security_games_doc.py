"""Every number docs/security_games.md quotes about the planner, recomputed (tests/claims.py).

Golden values: the pure-allocation enumeration (Kar et al. 2016, Thm 7.1) written here with
the loop-free NumPy utility of eq. (8b); the previous planner is the multistart projected
ascent (``plan_core`` from the spread and 15 random starts, 300 steps, seed 0), as
``plan_coverage`` ran it before issue 21.  Bug caught: a document number that no longer
matches what the code computes (a rerun with a changed planner, a changed generator).
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_qse.security import (
    attack_log_probs,
    defender_utility,
    plan_coverage,
    uniform_security_game,
)
from bayes_qse.security.planning import _plan_jit, starting_points
from tests.claims import claim, quote

DOC = "docs/security_games.md"
ADS1, ADS2 = (2.876, -0.186, 0.3), (1.435, -0.21, 0.3)
SIZES = ((5, 2.0), (8, 3.0), (20, 5.0))


def _pure_optimum(w, game):
    T, m = game.n_targets, int(game.resources)
    cs = np.array(
        [
            [float(t in s) for t in range(T)]
            for r in range(m + 1)
            for s in itertools.combinations(range(T), r)
        ]
    )
    rd, pd = np.asarray(game.defender_reward), np.asarray(game.defender_penalty)
    su = (
        w[0] * cs
        + w[1] * np.asarray(game.attacker_reward)
        + w[2] * np.asarray(game.attacker_penalty)
    )
    e = np.exp(su - su.max(axis=1, keepdims=True))
    return float(np.max(np.sum(e * (cs * rd + (1 - cs) * pd), axis=1) / e.sum(axis=1)))


@functools.cache
def _study(w, T, m):
    """Per seed 0-11: (optimum, certified plan, previous planner's value)."""
    rows = []
    for seed in range(12):
        game = uniform_security_game(T, m, seed=seed, theta=w)
        plan = plan_coverage(game, w)
        starts = starting_points(jax.random.PRNGKey(0), T, m, 16)
        _, old, _ = _plan_jit(game, jnp.asarray([w]), starts, "mean", 0.5, 300, 0.05, False)
        rows.append((_pure_optimum(w, game), plan, float(old)))
    return rows


def _misses(w, T, m):
    rows = _study(w, T, m)
    losses = [opt - old for opt, _, old in rows]
    return sum(x > 1e-6 for x in losses), max(losses)


@pytest.mark.slow
def test_previous_planner_misses():
    n5, l5 = _misses(ADS1, 5, 2.0)
    n8, l8 = _misses(ADS1, 8, 3.0)
    n20, l20 = _misses(ADS1, 20, 5.0)
    claim(
        DOC,
        "missed the optimum, with Kar et al.'s weights `(2.876, -0.186, 0.3)`, on 7 of",
        None,
        None,
        None,
        n5,
    )
    claim(
        DOC,
        "the 12 games `uniform_security_game(5, 2.0, seed)`, seeds 0-11 (by up to 1.076)",
        12,
        None,
        None,
        0,
        11,
        l5,
    )
    claim(DOC, "on 11 of 12 at 8 targets and 3 resources (up to 1.88)", n8, 12, None, None, l8)
    claim(DOC, "on 12 of 12 at 20 targets and 5 resources (up to 1.98)", n20, 12, None, None, l20)
    m5, _ = _misses(ADS2, 5, 2.0)
    m8, _ = _misses(ADS2, 8, 3.0)
    m20, l2 = _misses(ADS2, 20, 5.0)
    quote(DOC, "with `(1.435, -0.21, 0.3)` on none at 5 and 8 targets")
    assert m5 == 0 and m8 == 0
    claim(DOC, "on 12 of 12 at 20 targets (up to 0.981)", m20, 12, None, l2)


@pytest.mark.slow
def test_published_property_on_all_seeds():
    """Every plan is 0/1, equals the enumeration within its gap; the gap and value ranges."""
    gaps, values = [], []
    for w in (ADS1, ADS2):
        for T, m in SIZES:
            for opt, plan, _ in _study(w, T, m):
                assert np.max(np.minimum(plan.coverage, 1 - plan.coverage)) < 1e-12
                assert abs(plan.value - opt) <= plan.gap + 1e-12
                gaps.append(plan.relative_gap)
                values.append(plan.value)
    claim(
        DOC,
        "(relative gaps at most 1.2e-11; values 1.985 to 8.977)",
        max(gaps),
        min(values),
        max(values),
    )
    assert max(gaps) <= 1.2e-11


def test_qse_table_on_eight_targets():
    """The table of ``U(c*)``, ``U(even spread)`` and the largest attack probability."""
    for seed in range(5):
        g = uniform_security_game(8, 3.0, seed=seed)
        plan = plan_coverage(g, g.theta)
        even = float(defender_utility(g.theta, g, np.full(8, 3 / 8)))
        q = float(np.exp(attack_log_probs(g.theta, g, jnp.asarray(plan.coverage))).max())
        assert plan.relative_gap < 2e-9
        text = f"| {seed} | {plan.value:.3f} | {even:.3f} | {q:.2f} |"
        claim(DOC, text, seed, plan.value, even, q)
