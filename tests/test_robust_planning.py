"""Tests of planning under uncertainty (docs/math.md §4, eq. 6): per-draw planning, the quantile and
CVaR rules, box / L1-ball optimism and pessimism, and the ellipsoid bonus.

Golden values come from plain NumPy loops written here or in ``tests/reference.py`` and from
``scipy.optimize.linprog`` (test-only), never from the code under test.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import (
    deterministic_policies,
    lp_l1_extreme,
    np_backward_induction,
    np_follower_response,
    np_policy_value,
)
from scipy.optimize import linprog

from bayes_qse import BayesQSEInputError, leader_value
from bayes_qse.games import random_game, steering_game
from bayes_qse.planning import plan_draws_arrays
from bayes_qse.robust_planning import (
    box_extreme,
    box_plan,
    box_policy_value,
    draw_cvar,
    draw_quantile,
    ellipsoid_bonus_plan,
    ellipsoid_exact_plan,
    l1_extreme,
    plan_draws,
    quantile_plan,
    validate_box,
)


def _nu(game, theta):
    u = np.einsum("hsabd,d->hsab", game.features, theta)
    return np_follower_response(game.transitions, u, game.eta)


def _greedy_value(P, r, rho, nu_true, policy):
    return np_policy_value(P, r, rho, nu_true, np.asarray(policy))


# ---------------------------------------------------------------------------------------
# Per-draw planning
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [3, 20])  # small d: unrolled utilities; large d: a matmul
def test_plan_draws_equals_single_model_planner_draw_by_draw(d):
    game = random_game(1, 4, 3, 3, 4, d)
    rng = np.random.default_rng(0)
    M = 6
    theta = rng.normal(size=(M, d))
    plans = plan_draws(game, theta)
    assert plans.q.shape == (M, 4, 4, 3) and plans.v.shape == (M, 5, 4)
    blocked = plan_draws_arrays(game.model, theta, block_size=4)  # two blocks of 3 draws
    for m in range(M):
        nu = _nu(game, theta[m])
        q_ref, v1_ref = np_backward_induction(game.transitions, game.leader_reward, nu)
        np.testing.assert_allclose(plans.q[m], q_ref, atol=1e-12)
        np.testing.assert_allclose(blocked.q[m], q_ref, atol=1e-12)
        np.testing.assert_allclose(blocked.v[m], plans.v[m], atol=1e-12)
        np.testing.assert_allclose(plans.v[m, 0], v1_ref, atol=1e-12)
        np.testing.assert_array_equal(np.argmax(plans.policy[m], -1), np.argmax(q_ref, -1))
        np.testing.assert_array_equal(plans.v[m, -1], 0.0)


def test_plan_draws_with_per_draw_transitions_and_rewards():
    game = random_game(2, 3, 2, 3, 3, 2)
    rng = np.random.default_rng(1)
    M = 4
    theta = rng.normal(size=(M, 2))
    P = rng.dirichlet(np.ones(3), size=(M, 3, 3, 2, 3))
    r = rng.uniform(size=(M, 3, 3, 2, 3))
    plans = plan_draws(game, theta, transitions=P, leader_reward=r)
    blocked = plan_draws_arrays(game.model.replace(leader_reward=r), theta, block_size=3)
    for m in range(M):
        q_ref, _ = np_backward_induction(P[m], r[m], _nu(game, theta[m]))
        np.testing.assert_allclose(plans.q[m], q_ref, atol=1e-12)
        q_ref, _ = np_backward_induction(game.transitions, r[m], _nu(game, theta[m]))
        np.testing.assert_allclose(blocked.q[m], q_ref, atol=1e-12)
    # shared rewards, per-draw transitions; and the un-jitted pure function agrees
    plans2 = plan_draws(game, theta, transitions=P)
    with jax.disable_jit():
        plans3 = plan_draws_arrays(game.model.replace(transitions=P), theta)
    q_ref, _ = np_backward_induction(P[2], game.leader_reward, _nu(game, theta[2]))
    np.testing.assert_allclose(plans2.q[2], q_ref, atol=1e-12)
    np.testing.assert_allclose(plans3.q, plans2.q, atol=1e-12)


def test_plan_draws_rejects_bad_input():
    game = random_game(2, 3, 2, 3, 3, 2)
    with pytest.raises(BayesQSEInputError, match="theta"):
        plan_draws(game, np.zeros((4, 3)))
    with pytest.raises(BayesQSEInputError, match="transitions"):
        plan_draws(game, np.zeros((4, 2)), transitions=np.ones((3, 3, 3, 2, 3, 3)))
    with pytest.raises(BayesQSEInputError, match="leader_reward"):
        plan_draws(game, np.zeros((4, 2)), leader_reward=np.zeros((5, 3, 3, 2, 3)))


@pytest.mark.slow
def test_plan_draws_farsighted_values_are_exact_and_beat_the_myopic_plan():
    game = steering_game(eta=3.0)
    theta = np.stack([game.theta, 0.8 * game.theta])
    plans = plan_draws(game, theta, n_steps=150)
    for m in range(2):
        g_m = game.replace(theta=theta[m])
        value = float(game.initial_dist @ np.asarray(plans.v[m, 0]))
        assert value == pytest.approx(leader_value(g_m, np.asarray(plans.policy[m])), abs=1e-9)
        # no worse than the best deterministic policy, found by brute force with NumPy loops
        u = np.einsum("hsabd,d->hsab", game.features, theta[m])
        brute = max(
            np_policy_value(
                game.transitions,
                game.leader_reward,
                game.initial_dist,
                np_follower_response(game.transitions, u, game.eta, pi, farsighted=True),
                pi,
            )
            for pi in deterministic_policies(2, 3, 2)
        )
        assert value >= brute - 1e-6


# ---------------------------------------------------------------------------------------
# Quantile / CVaR rule (eq. 6)
# ---------------------------------------------------------------------------------------


def _np_cvar(x, level):
    """CVaR of the empirical distribution, written from the definition with a loop."""
    x = np.sort(np.asarray(x))
    M = len(x)
    if level >= 0.5:
        x, mass = x[::-1], 1.0 - level
    else:
        mass = level
    if mass <= 0:
        return x[0]
    total, left = 0.0, mass
    for xi in x:
        take = min(1.0 / M, left)
        total += take * xi
        left -= take
        if left <= 0:
            break
    return total / mass


def _np_quantile_plan(P, r, nu_draws, levels, rule, P_draws=None, r_draws=None):
    M, H, S, A, B = nu_draws.shape
    Q = np.zeros((H, S, A))
    v_next = np.zeros(S)
    for h in reversed(range(H)):
        for s in range(S):
            for a in range(A):
                qm = np.zeros(M)
                for m in range(M):
                    Pm = P if P_draws is None else P_draws[m]
                    rm = r if r_draws is None else r_draws[m]
                    qm[m] = sum(
                        nu_draws[m, h, s, a, b] * (rm[h, s, a, b] + Pm[h, s, a, b] @ v_next)
                        for b in range(B)
                    )
                if rule == "quantile":
                    Q[h, s, a] = np.quantile(qm, levels[h])
                else:
                    Q[h, s, a] = _np_cvar(qm, levels[h])
        v_next = Q[h].max(axis=1)
    return Q, v_next


def test_quantile_rule_with_one_draw_is_exact_planning():
    game = random_game(3, 4, 3, 2, 4, 2)
    nu = _nu(game, game.theta)
    q_ref, v_ref = np_backward_induction(game.transitions, game.leader_reward, nu)
    for rule in ("quantile", "cvar"):
        q, v, pi = quantile_plan(game.model, nu[None], 0.5, rule=rule)
        np.testing.assert_allclose(q, q_ref, atol=1e-12)
        np.testing.assert_allclose(v[0], v_ref, atol=1e-12)


@pytest.mark.parametrize("rule", ["quantile", "cvar"])
def test_quantile_rule_matches_numpy_loop(rule):
    game = random_game(4, 3, 2, 3, 3, 2)
    rng = np.random.default_rng(4)
    M = 7
    nu_draws = np.stack([_nu(game, th) for th in rng.normal(size=(M, 2))])
    P_draws = rng.dirichlet(np.ones(3), size=(M, 3, 3, 2, 3))
    r_draws = rng.uniform(size=(M, 3, 3, 2, 3))
    schedule = np.array([0.9, 0.25, 0.6])
    for level in (0.1, 0.5, 0.95, schedule):
        levels = np.broadcast_to(level, (3,))
        q_ref, v_ref = _np_quantile_plan(
            game.transitions, game.leader_reward, nu_draws, levels, rule, P_draws, r_draws
        )
        draws = game.model.replace(transitions=P_draws, leader_reward=r_draws)
        q, v, _ = quantile_plan(draws, nu_draws, level, rule=rule)
        np.testing.assert_allclose(q, q_ref, atol=1e-12)
        np.testing.assert_allclose(v[0], v_ref, atol=1e-12)
    # shared leader model
    q_ref, _ = _np_quantile_plan(
        game.transitions, game.leader_reward, nu_draws, np.full(3, 0.8), rule
    )
    q, _, _ = quantile_plan(game.model, nu_draws, 0.8, rule=rule)
    np.testing.assert_allclose(q, q_ref, atol=1e-12)


def test_draw_statistics_match_numpy():
    x = np.random.default_rng(5).normal(size=(11, 3))
    for level in (0.0, 0.13, 0.5, 0.77, 1.0):
        np.testing.assert_allclose(draw_quantile(x, level), np.quantile(x, level, axis=0))
        ref = [_np_cvar(x[:, j], level) for j in range(3)]
        np.testing.assert_allclose(draw_cvar(x, level), ref, atol=1e-12)
    np.testing.assert_allclose(draw_cvar(x, 0.0), x.min(0))
    np.testing.assert_allclose(draw_cvar(x, 1.0), x.max(0))


def test_upper_quantile_value_dominates_every_draw():
    game = random_game(6, 4, 3, 3, 4, 3)
    rng = np.random.default_rng(6)
    theta = rng.normal(size=(20, 3))
    nu_draws = np.stack([_nu(game, th) for th in theta])
    plans = plan_draws(game, theta)
    _, v_hi, _ = quantile_plan(game.model, nu_draws, 1.0)
    _, v_lo, _ = quantile_plan(game.model, nu_draws, 0.0)
    assert np.all(np.asarray(v_hi)[None] >= np.asarray(plans.v) - 1e-12)
    assert np.all(np.asarray(v_lo)[None] <= np.asarray(plans.v) + 1e-12)


def test_quantile_plan_rejects_unknown_rule():
    game = random_game(6, 2, 2, 2, 2, 2)
    nu = _nu(game, game.theta)[None]
    with pytest.raises(BayesQSEInputError, match="rule"):
        quantile_plan(game.model, nu, 0.5, rule="median")


# ---------------------------------------------------------------------------------------
# Box and L1-ball extremes against linear programming
# ---------------------------------------------------------------------------------------


def _random_box(rng, B):
    nu = rng.dirichlet(np.ones(B))
    lo = np.clip(nu - rng.uniform(0, 0.4, B), 0, 1)
    up = np.clip(nu + rng.uniform(0, 0.4, B), 0, 1)
    return nu, lo, up


def _lp_box(w, lo, up, maximize):
    c = -w if maximize else w
    res = linprog(c, A_eq=np.ones((1, len(w))), b_eq=[1.0], bounds=list(zip(lo, up, strict=True)))
    assert res.status == 0
    return float(w @ res.x)


@pytest.mark.parametrize("jit", [True, False])
def test_box_extreme_equals_linear_programming(jit):
    rng = np.random.default_rng(7)
    fn = jax.jit(box_extreme) if jit else box_extreme
    for _ in range(30):
        B = int(rng.integers(2, 7))
        _, lo, up = _random_box(rng, B)
        w = rng.normal(size=B)
        if rng.uniform() < 0.3:
            w[rng.integers(B)] = w[0]  # ties
        for maximize in (True, False):
            value, nu = fn(w, lo, up, maximize)
            assert float(value) == pytest.approx(_lp_box(w, lo, up, maximize), abs=1e-9)
            assert np.all(nu >= lo - 1e-12) and np.all(nu <= up + 1e-12)
            assert float(np.sum(nu)) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("jit", [True, False])
def test_l1_extreme_equals_linear_programming(jit):
    rng = np.random.default_rng(8)
    fn = jax.jit(l1_extreme) if jit else l1_extreme
    for _ in range(30):
        S = int(rng.integers(2, 7))
        p_hat = rng.dirichlet(np.ones(S) * 0.7)
        v = rng.normal(size=S)
        radius = float(rng.choice([0.0, rng.uniform(0, 0.6), rng.uniform(0.6, 2.5)]))
        for maximize in (True, False):
            value, p = fn(p_hat, radius, v, maximize)
            assert float(value) == pytest.approx(
                lp_l1_extreme(p_hat, radius, v, maximize), abs=1e-9
            )
            assert float(np.abs(p - p_hat).sum()) <= radius + 1e-12
            assert np.all(p >= -1e-15) and float(p.sum()) == pytest.approx(1.0, abs=1e-12)


def _np_box_plan(P, r, lo, up, optimistic, radius=None, bounds=None):
    """Robust backward induction with an LP at every (h,s,a) (and every (h,s,a,b) for P);
    ``bounds = (low[H], high[H])`` clips each target ``W_h(s,a,b)`` first."""
    H, S, A, B = r.shape
    Q = np.zeros((H, S, A))
    v_next = np.zeros(S)
    for h in reversed(range(H)):
        for s in range(S):
            for a in range(A):
                w = np.array(
                    [
                        r[h, s, a, b]
                        + (
                            P[h, s, a, b] @ v_next
                            if radius is None
                            else lp_l1_extreme(
                                P[h, s, a, b], radius[h, s, a, b], v_next, optimistic
                            )
                        )
                        for b in range(B)
                    ]
                )
                if bounds is not None:
                    w = np.minimum(np.maximum(w, bounds[0][h]), bounds[1][h])
                Q[h, s, a] = _lp_box(w, lo[h, s, a], up[h, s, a], optimistic)
        v_next = Q[h].max(axis=1)
    return Q


def test_box_plan_equals_linear_programming_backward_induction():
    rng = np.random.default_rng(9)
    for seed in range(3):
        game = random_game(seed, 3, 2, 3, 3, 2)
        nu = _nu(game, game.theta)
        lo = np.clip(nu - rng.uniform(0, 0.3, nu.shape), 0, 1)
        up = np.clip(nu + rng.uniform(0, 0.3, nu.shape), 0, 1)
        radius = rng.uniform(0, 0.5, nu.shape)
        for optimistic in (True, False):
            q, _, _ = box_plan(game.model, lo, up, optimistic)
            np.testing.assert_allclose(
                q, _np_box_plan(game.transitions, game.leader_reward, lo, up, optimistic), atol=1e-8
            )
            q, _, _ = box_plan(game.model, lo, up, optimistic, l1_radius=radius)
            ref = _np_box_plan(game.transitions, game.leader_reward, lo, up, optimistic, radius)
            np.testing.assert_allclose(q, ref, atol=1e-8)


def test_box_plan_value_bounds_truncate_each_target_as_lsvi_ucb_does():
    # catches: value_bounds ignored, applied to V instead of each W_h(s,a,b), applied after the
    # response box's extreme, or indexed by the wrong step.  The kernel's rows sum to 1.6
    # (an LSVI estimate need not be a distribution) so unclipped values leave the range.
    rng = np.random.default_rng(12)
    game = random_game(4, 3, 2, 3, 3, 2)
    nu = _nu(game, game.theta)
    lo = np.clip(nu - rng.uniform(0, 0.3, nu.shape), 0, 1)
    up = np.clip(nu + rng.uniform(0, 0.3, nu.shape), 0, 1)
    P = 1.6 * game.transitions
    r = game.leader_reward + 0.5
    H = r.shape[0]
    steps = H - np.arange(H)
    bounds = (steps * float(r.min()), steps * 1.0)
    nominal = game.model.replace(transitions=P, leader_reward=r)
    for optimistic in (True, False):
        q, v, _ = box_plan(nominal, lo, up, optimistic, value_bounds=bounds)
        ref = _np_box_plan(P, r, lo, up, optimistic, bounds=bounds)
        np.testing.assert_allclose(q, ref, atol=1e-8)
        assert np.all(np.asarray(v[:H]) <= steps[:, None] * 1.0 + 1e-12)
    _, v_raw, _ = box_plan(nominal, lo, up, True)
    assert float(np.max(v_raw[0])) > H  # the unclipped recursion does leave the range
    # the extreme-case evaluation of each side's greedy policy truncates the same way, so it
    # gives back the planner's own values (fails if box_policy_value ignores bounds, or
    # evaluates the other side)
    for optimistic in (True, False):
        _, v_plan, pi = box_plan(nominal, lo, up, optimistic, value_bounds=bounds)
        v_eval = box_policy_value(pi, nominal, lo, up, optimistic, value_bounds=bounds)
        np.testing.assert_allclose(v_eval, v_plan, atol=1e-10)


def test_optimistic_true_pessimistic_ordering_on_many_random_games():
    """V_opt >= V* >= V^{pi_pess} >= V_pess whenever the truth lies in the set."""
    rng = np.random.default_rng(10)
    shapes = [(3, 3, 3, 3), (2, 4, 2, 4)]  # few shapes: one compilation each
    for seed in range(30):
        S, A, B, H = shapes[seed % 2]
        game = random_game(100 + seed, S, A, B, H, 2)
        P, r, rho = game.transitions, game.leader_reward, game.initial_dist
        nu = _nu(game, game.theta)
        lo = np.clip(nu - rng.uniform(0, 0.3, nu.shape), 0, 1)
        up = np.clip(nu + rng.uniform(0, 0.3, nu.shape), 0, 1)
        # an empirical kernel near the truth and a radius that contains the truth
        p_hat = 0.7 * P + 0.3 * rng.dirichlet(np.ones(S), size=P.shape[:4])
        radius = np.abs(p_hat - P).sum(-1) + rng.uniform(0, 0.2, nu.shape)
        _, v_star = np_backward_induction(P, r, nu)
        v_star = float(rho @ v_star)
        for centre, kwargs in ((P, {}), (p_hat, {"l1_radius": radius})):
            nominal = game.model.replace(transitions=centre)
            _, v_opt, _ = box_plan(nominal, lo, up, True, **kwargs)
            _, v_pes, pi_pes = box_plan(nominal, lo, up, False, **kwargs)
            v_pi_pes = _greedy_value(P, r, rho, nu, pi_pes)
            assert float(rho @ v_opt[0]) >= v_star - 1e-10
            assert v_star >= v_pi_pes - 1e-10
            assert v_pi_pes >= float(rho @ v_pes[0]) - 1e-10


def test_validate_box_names_the_field():
    shape = (1, 1, 1, 2)
    ok = validate_box(np.full(shape, 0.2), np.full(shape, 0.9), shape)
    assert ok[0].shape == shape
    with pytest.raises(BayesQSEInputError, match="nu_lower"):
        validate_box(np.full(shape, 0.6), np.full(shape, 0.9), shape)
    with pytest.raises(BayesQSEInputError, match="nu_upper"):
        validate_box(np.full(shape, 0.1), np.full(shape, 0.4), shape)
    with pytest.raises(BayesQSEInputError, match="nu_lower"):
        validate_box(np.zeros((2, 2)), np.ones(shape), shape)


# ---------------------------------------------------------------------------------------
# Ellipsoid image: first-order bonus vs projected optimisation
# ---------------------------------------------------------------------------------------


def _np_exact_extreme(phi, w, eta, theta_hat, L, radius, optimistic, n_dirs=4000, seed=0):
    """Brute force over the ellipsoid's boundary and interior points (small d)."""
    rng = np.random.default_rng(seed)
    d = len(theta_hat)
    z = rng.normal(size=(n_dirs, d))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    z = np.concatenate([z * radius, z * radius * rng.uniform(size=(n_dirs, 1)), np.zeros((1, d))])
    theta = theta_hat + z @ L.T
    logits = eta * theta @ phi.T
    nu = np.exp(logits - logits.max(1, keepdims=True))
    nu /= nu.sum(1, keepdims=True)
    vals = nu @ w
    return vals.max() if optimistic else vals.min()


def test_ellipsoid_plans_bracket_the_centre_and_agree_to_first_order():
    game = random_game(11, 3, 2, 3, 2, 2)
    theta_hat = game.theta
    cov = np.array([[0.05, 0.01], [0.01, 0.03]])
    nu = _nu(game, theta_hat)
    _, v_centre = np_backward_induction(game.transitions, game.leader_reward, nu)
    gaps = []
    for beta in (0.02, 0.005):
        v = {}
        for opt in (True, False):
            v["bonus", opt] = np.asarray(
                ellipsoid_bonus_plan(game.model, theta_hat, cov, beta, opt)[1][0]
            )
            v["exact", opt] = np.asarray(
                ellipsoid_exact_plan(game.model, theta_hat, cov, beta, opt)[1][0]
            )
        assert np.all(v["bonus", True] >= v_centre - 1e-12)
        assert np.all(v["bonus", False] <= v_centre + 1e-12)
        assert np.all(v["exact", True] >= v_centre - 1e-12)
        assert np.all(v["exact", False] <= v_centre + 1e-12)
        gaps.append(max(np.abs(v["bonus", o] - v["exact", o]).max() for o in (True, False)))
    # the linearisation error is O(beta): shrinking beta by 4 shrinks it by about 4
    assert gaps[1] < gaps[0] / 2.5
    assert gaps[1] < 1e-3


def test_ellipsoid_exact_plan_matches_brute_force_on_one_step():
    game = random_game(12, 2, 2, 3, 1, 2)
    theta_hat = game.theta
    cov = np.array([[0.3, 0.05], [0.05, 0.2]])
    beta = 2.0
    evals, evecs = np.linalg.eigh(cov)
    L = evecs * np.sqrt(evals)
    for opt in (True, False):
        q, _, _ = ellipsoid_exact_plan(game.model, theta_hat, cov, beta, opt, n_steps=300)
        for s in range(2):
            for a in range(2):
                ref = _np_exact_extreme(
                    game.features[0, s, a],
                    game.leader_reward[0, s, a],
                    game.eta,
                    theta_hat,
                    L,
                    np.sqrt(beta),
                    opt,
                )
                assert float(q[0, s, a]) == pytest.approx(ref, abs=2e-4)


def test_ellipsoid_bonus_zero_radius_is_plugin():
    game = random_game(13, 3, 2, 2, 3, 2)
    q0, v0, _ = ellipsoid_bonus_plan(game.model, jnp.asarray(game.theta), np.eye(2), 0.0, True)
    q_ref, _ = np_backward_induction(game.transitions, game.leader_reward, _nu(game, game.theta))
    np.testing.assert_allclose(q0, q_ref, atol=1e-12)
