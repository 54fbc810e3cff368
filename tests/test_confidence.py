"""The confidence set both frequentist learners plan on (``bayes_qse.confidence``, issue 25).

Oracles, independent of the package's planners:

- membership of the true game in the set, checked part by part in NumPy (Mahalanobis distance
  of ``theta``, L1 distances of the kernel and the initial distribution, the reward interval);
- the extreme values of a policy over the set by brute force: on a game with two states,
  leader actions and follower actions and two steps, every factor of the set (the response
  box meets the simplex in a segment, an L1 ball around a two-point distribution is a segment,
  the reward interval) is a segment, ``J`` is multilinear in the factors, so its extremes over
  the set are attained at the segments' end points: every combination of end points is
  enumerated, for every deterministic leader policy.

Existing coverage tests are not repeated here: the Wald and LR sets' coverage of ``theta`` is
``tests/test_sets.py::test_wald_and_lr_coverage_near_nominal``, the coverage of
``mle-pessimistic``'s lower bound ``tests/test_offline.py::
test_mle_pessimistic_lower_bound_holds_at_its_level``; the set-wide (union-bound) coverage is
below.
"""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import binomtest

from bayes_qse.confidence import (
    confidence_set,
    confidence_split,
    follower_set,
    initial_value,
    plan_on_set,
    value_on_set,
)
from bayes_qse.data import simulate
from bayes_qse.errors import BayesQSEInputError
from bayes_qse.games import random_game
from bayes_qse.leader_model import EmpiricalBonusModel, first_state_counts
from bayes_qse.learners.common import GameSpec
from bayes_qse.learners.offline import pessimistic_set
from tests.reference import deterministic_policies, np_follower_response, np_policy_value

GAME = random_game(3, 2, 2, 2, 2, 2, eta=1.5)  # S, A, B, H, d = 2
SPEC = GameSpec.from_game(GAME)  # learned kernel, rewards and initial distribution
POLICIES = list(deterministic_policies(2, 2, 2))


def _truth():
    P, r = np.asarray(GAME.transitions), np.asarray(GAME.leader_reward)
    nu = np_follower_response(P, np.asarray(GAME.utility()), GAME.eta)
    return P, r, nu, np.asarray(GAME.initial_dist)


def contains_truth(cs) -> dict[str, bool]:
    """Part by part, in NumPy: is the true game in the set?"""
    P, r, nu, rho = _truth()
    fol = cs.follower
    diff = np.asarray(GAME.theta) - np.asarray(fol.center)
    lo, up = np.asarray(fol.nu_lower), np.asarray(fol.nu_upper)
    p_hat, radius = np.asarray(cs.nominal.transitions), np.asarray(cs.l1_radius)
    rho_hat = np.asarray(cs.nominal.initial_dist)
    r_hat = np.asarray(cs.nominal.leader_reward)
    return {
        "theta": float(diff @ np.asarray(fol.precision) @ diff) <= float(fol.beta),
        "response": bool(np.all((nu >= lo - 1e-12) & (nu <= up + 1e-12))),
        "transitions": bool(np.all(np.abs(P - p_hat).sum(-1) <= radius + 1e-12)),
        "rewards": bool(np.all(np.abs(r - r_hat) <= np.asarray(cs.reward_bonus) + 1e-12)),
        "initial": float(np.abs(rho - rho_hat).sum()) <= float(cs.initial_radius) + 1e-12,
    }


def segments(cs):
    """The end points of every factor of the set (B = S = 2): ``nu0[H,S,A,2]`` (the first
    follower action's probability), ``p0[H,S,A,B,2]`` (of the next state 0), ``r[H,S,A,B,2]``
    (``r_hat -/+ bonus`` clipped to the reward range) and ``rho0[2]``, each ``[..., (low end,
    high end)]``, written from the set's arrays by hand (no package code)."""
    lo, up = np.asarray(cs.follower.nu_lower), np.asarray(cs.follower.nu_upper)
    ends = (np.maximum(lo[..., 0], 1 - up[..., 1]), np.minimum(up[..., 0], 1 - lo[..., 1]))
    nu0 = np.stack(ends, -1)
    p_hat, half = np.asarray(cs.nominal.transitions)[..., 0], np.asarray(cs.l1_radius) / 2
    p0 = np.stack([np.maximum(p_hat - half, 0), np.minimum(p_hat + half, 1)], -1)
    r_hat, bonus = np.asarray(cs.nominal.leader_reward), np.asarray(cs.reward_bonus)
    low, high = SPEC.reward_range
    r = np.stack([np.maximum(r_hat - bonus, low), np.minimum(r_hat + bonus, high)], -1)
    rho_hat, half0 = float(cs.nominal.initial_dist[0]), float(cs.initial_radius) / 2
    rho0 = np.array([max(rho_hat - half0, 0.0), min(rho_hat + half0, 1.0)])
    return nu0, p0, r, rho0


def brute_force_values(cs, policy) -> tuple[float, float]:
    """``(min, max)`` of ``J(policy)`` over every combination of the segments' end points that
    ``policy`` (deterministic) can reach: the response at the 2 x 2 reached cells ``(h, s)``,
    the kernel at step 0's 4 reached cells, the initial distribution (2^9 games), each with the
    reward interval's low (for the min) or high end (for the max) -- ``J`` increases with every
    reward, whose coefficient is a probability -- evaluated by the recursion of
    ``np_policy_value`` written out for ``H = S = B = 2``."""
    nu0, p0, r, rho0 = segments(cs)
    a = policy.argmax(-1)  # [H,S]
    cells_nu = [(h, s) for h in range(2) for s in range(2)]
    cells_p = [(s, b) for s in range(2) for b in range(2)]
    grid = np.array(list(itertools.product((0, 1), repeat=len(cells_nu) + len(cells_p) + 1)))
    nu = np.zeros((len(grid), 2, 2, 2))
    for k, (h, s) in enumerate(cells_nu):
        x = nu0[h, s, a[h, s]][grid[:, k]]
        nu[:, h, s, 0], nu[:, h, s, 1] = x, 1 - x
    p = np.zeros((len(grid), 2, 2, 2))  # [N, s, b, s'] at step 0
    for k, (s, b) in enumerate(cells_p, start=len(cells_nu)):
        x = p0[0, s, a[0, s], b][grid[:, k]]
        p[:, s, b, 0], p[:, s, b, 1] = x, 1 - x
    x = rho0[grid[:, -1]]
    rho = np.stack([x, 1 - x], -1)
    values = []
    for end in (0, 1):
        rew = r[np.arange(2)[:, None], np.arange(2)[None, :], a, :, end]  # [H,S,B] reached
        v1 = np.einsum("nsb,sb->ns", nu[:, 1], rew[1])  # [N, S] value from step 1
        w0 = rew[0][None] + np.einsum("nsbt,nt->nsb", p, v1)
        v0 = np.einsum("nsb,nsb->ns", nu[:, 0], w0)
        values.append(np.einsum("ns,ns->n", rho, v0))
    return float(values[0].min()), float(values[1].max())


@pytest.fixture(scope="module")
def sets():
    """Sets from 5, 30 and 300 episodes of a uniform leader (narrow to wide), ``delta=0.3``."""
    H, S, A, _ = GAME.shape
    data = simulate(GAME, np.full((H, S, A), 0.5), 300, seed=7)
    return [
        pessimistic_set(data.subset(slice(0, n)), SPEC, {"delta": 0.3})[0] for n in (5, 30, 300)
    ]


@pytest.fixture(scope="module")
def brute(sets):
    """``brute[i][j] = (min, max)`` of ``J`` over set ``i`` for deterministic policy ``j``."""
    return [[brute_force_values(cs, pi) for pi in POLICIES] for cs in sets]


def test_value_on_set_is_the_brute_force_extreme_over_the_set(sets, brute):
    """``value_on_set`` equals the brute-force max (optimistic) and min (pessimistic) of
    ``J(policy)`` over the set's end points, for every deterministic policy.  Bug caught: an
    extreme taken on the wrong side (a swapped ``optimistic`` flag anywhere: reward end, L1
    step, response box, initial ball), a radius halved or doubled, the reward interval's sign,
    an initial distribution outside its ball."""
    for cs, extremes in zip(sets, brute, strict=True):
        for policy, (low, high) in zip(POLICIES, extremes, strict=True):
            up = float(value_on_set(jnp.asarray(policy), cs, optimistic=True))
            down = float(value_on_set(jnp.asarray(policy), cs, optimistic=False))
            assert up == pytest.approx(high, abs=1e-10)
            assert down == pytest.approx(low, abs=1e-10)


def test_plan_on_set_is_the_best_policy_of_the_brute_force(sets, brute):
    """The optimistic plan's value (with the initial ball's extreme) is ``max_pi max_set J``
    and the pessimistic plan's ``max_pi min_set J`` over the deterministic policies, the
    pessimistic plan's policy attaining it (the set is rectangular, so backward induction on
    it is exact).  Bug caught: planning on the wrong side, or a planner that does not take the
    extreme over the whole set (e.g. the box ignored: the point response)."""
    for cs, extremes in zip(sets, brute, strict=True):
        _, v_opt, _ = plan_on_set(cs, optimistic=True)
        assert float(initial_value(cs, v_opt[0], True)) == pytest.approx(
            max(h for _, h in extremes), abs=1e-10
        )
        _, v_pes, pi_pes = plan_on_set(cs, optimistic=False)
        best_low = max(low for low, _ in extremes)
        assert float(initial_value(cs, v_pes[0], False)) == pytest.approx(best_low, abs=1e-10)
        assert float(value_on_set(pi_pes, cs, optimistic=False)) == pytest.approx(
            best_low, abs=1e-10
        )


def test_the_set_brackets_the_true_value_of_every_policy_when_it_holds_the_truth(sets):
    """When the true game is in the set (checked part by part in NumPy), the optimistic plan's
    value is at least the true value of every deterministic policy (hence of the QSE) and
    each policy's pessimistic value at most its true value.  Not vacuous: the sets hold the
    truth, and the bracket narrows with data, at 300 episodes to under 0.6 of the trivial
    one ``H (high - low)``.  Bug caught: a set that misses the truth while claiming to hold it
    (a response box not containing the true response, a transition ball or reward interval
    too small)."""
    P, r, nu, rho = _truth()
    held = 0
    for cs in sets:
        if not all(contains_truth(cs).values()):
            continue
        held += 1
        _, v_opt, _ = plan_on_set(cs, optimistic=True)
        upper = float(initial_value(cs, v_opt[0], True))
        for policy in POLICIES:
            true = np_policy_value(P, r, rho, nu, policy)
            assert upper >= true - 1e-12
            assert float(value_on_set(jnp.asarray(policy), cs, optimistic=False)) <= true + 1e-12
            assert float(value_on_set(jnp.asarray(policy), cs, optimistic=True)) >= true - 1e-12
    assert held == len(sets)
    pi = jnp.asarray(POLICIES[0])
    widths = [
        float(value_on_set(pi, cs, optimistic=True) - value_on_set(pi, cs, optimistic=False))
        for cs in sets
    ]
    assert widths[0] > widths[1] > widths[2]
    assert widths[2] < 0.6 * 2 * (SPEC.reward_range[1] - SPEC.reward_range[0]), widths


@pytest.mark.slow
def test_the_whole_set_holds_the_truth_at_its_level():
    """Over 200 independent datasets of 200 episodes, the set (all five parts at once, the
    union bound over them) holds the true game at least ``1 - delta`` of the time (one-sided
    binomial test at 1%), and each part misses at most its share ``delta / 4`` (same test).
    Bug caught: a wrong union-bound split (e.g. ``delta`` given whole to each part is caught
    on the follower, whose Wald part is the only one near its nominal level), a follower
    radius from the wrong level or degrees of freedom.  Measured: the Wald part misses 11 of
    200 at its share 0.05 (the whole set misses 11); at 40 episodes per dataset it missed 20
    of 200, twice its share (the chi-square radius is asymptotic, docs/math.md §4), while
    the whole set still held 180 of 200 >= 0.8 thanks to the conservative leader parts."""
    delta, n_data, N = 0.2, 200, 200
    H, S, A, _ = GAME.shape
    big = simulate(GAME, np.full((H, S, A), 0.5), n_data * N, seed=11)
    share = confidence_split(SPEC, delta)
    assert share == pytest.approx(delta / 4)
    misses = {k: 0 for k in ("theta", "response", "transitions", "rewards", "initial")}
    held = 0
    for i in range(n_data):
        cs, _ = pessimistic_set(big.subset(slice(i * N, (i + 1) * N)), SPEC, {"delta": delta})
        parts = contains_truth(cs)
        held += all(parts.values())
        for k, ok in parts.items():
            misses[k] += not ok
    assert binomtest(held, n_data, 1 - delta, alternative="less").pvalue > 0.01, held
    for k, m in misses.items():
        assert binomtest(m, n_data, share, alternative="greater").pvalue > 0.01, (k, m)
    # the response box holds whenever theta does (it is the Wald set's image)
    assert misses["response"] <= misses["theta"]


def test_constructor_reads_the_leaders_bonus_and_the_first_states():
    """The set's leader parts are the model's own bonus at the part's level, its centre the
    empirical estimates, and the initial ball Weissman's radius around the first-state
    frequencies (hand formula ``sqrt(2 (S log 2 + log(1/delta)) / n)``).  Bug caught: the
    leader's parts built at the whole ``delta`` or at the follower's level, a ball around the
    posterior mean instead of the frequencies."""
    H, S, A, _ = GAME.shape
    data = simulate(GAME, np.full((H, S, A), 0.5), 25, seed=3)
    model = EmpiricalBonusModel("hoeffding", SPEC.reward_range)
    stats = model.update(model.init(*GAME.shape), data)
    d = SPEC.feature_dim
    fol = follower_set(SPEC, jnp.zeros(d), jnp.eye(d), 1.0)
    counts = first_state_counts(data, SPEC)
    cs = confidence_set(SPEC, fol, model, stats, jnp.asarray(counts), 0.05)
    np.testing.assert_allclose(cs.reward_bonus, model.bonus(stats, 0.05).reward, rtol=1e-14)
    np.testing.assert_allclose(cs.l1_radius, model.bonus(stats, 0.05).l1_radius, rtol=1e-14)
    np.testing.assert_allclose(cs.nominal.initial_dist, counts / 25, rtol=1e-14)
    expected = np.sqrt(2 * (S * np.log(2) + np.log(1 / 0.05)) / 25)
    assert float(cs.initial_radius) == pytest.approx(expected, rel=1e-12)


def test_bad_input_is_named_in_one_line():
    """A farsighted follower has no response box: the box planner and evaluation say so in one
    line naming ``cs`` (the joint ascent is its planner); likewise a missing ``response_counts``
    and an unknown ``method``."""
    game = random_game(1, 2, 2, 2, 2, 2, farsighted=True)
    spec = GameSpec.from_game(game, known_model=True, initial_dist="game")
    from bayes_qse.leader_model import KnownModel

    model = KnownModel(game.transitions, game.leader_reward)
    fol = follower_set(spec, jnp.zeros(2), jnp.eye(2), 1.0)
    cs = confidence_set(spec, fol, model, model.init(*game.shape), jnp.zeros(2), 0.1)
    with pytest.raises(BayesQSEInputError, match="cs: "):
        plan_on_set(cs, optimistic=True)
    with pytest.raises(BayesQSEInputError, match="cs: "):
        value_on_set(jnp.full((2, 2, 2), 0.5), cs, optimistic=False)
    # and a myopic LR set without its counts, an unknown method: one line naming the field
    with pytest.raises(BayesQSEInputError, match="response_counts: "):
        follower_set(SPEC, jnp.zeros(2), jnp.eye(2), 1.0, likelihood_ratio=True)
    myopic = follower_set(SPEC, jnp.zeros(2), jnp.eye(2), 1.0)
    cs = confidence_set(SPEC, myopic, model, model.init(*game.shape), jnp.ones(2), 0.1)
    with pytest.raises(BayesQSEInputError, match="method: "):
        plan_on_set(cs, optimistic=True, method="ellipsoid")
