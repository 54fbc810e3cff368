"""Offline learners (docs/math.md §5): behaviour policies, datasets, convergence to the QSE with
covering data, and the lower bounds' claims.

Golden values come from independent computations: hand-derived behaviour probabilities, the
NumPy loop references of ``tests/reference.py``, brute-force sampling of the confidence sets,
the closed form of a two-action softmax, and ``scipy.stats.binomtest`` for coverage.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from reference import np_follower_response, np_policy_value
from scipy.special import expit
from scipy.stats import binomtest, chi2

from bayes_qse import leader_value, solve_qse
from bayes_qse.data import Dataset, simulate
from bayes_qse.errors import BayesQSEInputError, ConfigError, DatasetValidationError
from bayes_qse.games import random_game, steering_game
from bayes_qse.leader_model import empirical_leader_model
from bayes_qse.learners.behaviour import (
    behaviour_policy,
    near_optimal_policy,
    poorly_covering_policy,
    uniform_policy,
)
from bayes_qse.learners.common import GameSpec
from bayes_qse.learners.offline import (
    OFFLINE_LEARNERS,
    fit_offline,
    learner_config,
    suboptimality,
)
from bayes_qse.model import Model
from bayes_qse.robust_planning import box_policy_value
from bayes_qse.sets import ellipsoid_response_box

ALL_LEARNERS = [
    "oracle",
    "plugin",
    "mle-pessimistic",
    "mle-pessimistic-box",
    "mle-pessimistic-first-order",
    "bayes-pessimistic",
    "bayes-pessimistic-cvar",
]


@pytest.fixture(scope="module")
def game():
    return random_game(1, 2, 2, 2, 2, 2, eta=2.0)


@pytest.fixture(scope="module")
def covering_data(game):
    """Uniform behaviour, N large: every (h, s, a, b) is visited thousands of times."""
    return simulate(game, uniform_policy(game), 40_000, seed=11)


def _spec_for(name, game, known_model=False):
    return game if name == "oracle" else GameSpec.from_game(game, known_model=known_model)


# ---- behaviour policies ------------------------------------------------------------------


def test_behaviour_policies_put_the_stated_mass_on_the_optimal_actions():
    g = random_game(4, 3, 3, 2, 2, 2)
    pi_star = solve_qse(g).policy  # one-hot (myopic follower)
    H, S, A = pi_star.shape
    opt = pi_star.argmax(-1)
    uni = uniform_policy(g)
    near = near_optimal_policy(g, epsilon=0.3)
    poor = poorly_covering_policy(g, epsilon=0.06)
    np.testing.assert_allclose(uni, np.full((H, S, A), 1 / 3))
    for h in range(H):
        for s in range(S):
            for a in range(A):
                if a == opt[h, s]:
                    # (1 - eps) + eps / A on the optimal action ...
                    assert near[h, s, a] == pytest.approx(0.7 + 0.1)
                    # ... and only eps / A under poor coverage
                    assert poor[h, s, a] == pytest.approx(0.02)
                else:
                    assert near[h, s, a] == pytest.approx(0.1)
                    assert poor[h, s, a] == pytest.approx(0.94 / 2 + 0.02)
    np.testing.assert_allclose(behaviour_policy("poor-coverage", g, 0.06), poor)
    with pytest.raises(BayesQSEInputError, match="behaviour"):
        behaviour_policy("greedy", g)
    with pytest.raises(BayesQSEInputError, match="epsilon"):
        near_optimal_policy(g, epsilon=0.0)


def test_behaviour_datasets_round_trip(tmp_path, game):
    ds = simulate(game, poorly_covering_policy(game), 25, seed=3)
    path = ds.save(tmp_path / "poor.npz")
    back = Dataset.load(path)
    for field in ("states", "leader_actions", "follower_actions", "rewards", "policies"):
        np.testing.assert_array_equal(getattr(back, field), getattr(ds, field))
    # learners give identical answers on the reloaded data
    spec = GameSpec.from_game(game)
    a = fit_offline("mle-pessimistic", ds, spec)
    b = fit_offline("mle-pessimistic", back, spec)
    np.testing.assert_array_equal(a.policy, b.policy)
    assert a.lower_bound == b.lower_bound
    # a corrupted file names the field
    arrays = {f: getattr(ds, f) for f in ("states", "leader_actions", "rewards", "policies")}
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DatasetValidationError, match="follower_actions"):
        Dataset.load(tmp_path / "bad.npz")


def test_empirical_leader_model_matches_loop_counts(game):
    ds = simulate(game, uniform_policy(game), 40, seed=9)
    spec = GameSpec.from_game(game)
    counts, p_hat, r_hat, bonus, radius = empirical_leader_model(ds, spec, 0.1)
    H, S, A, B = game.shape
    n = np.zeros((H, S, A, B))
    nxt = np.zeros((H, S, A, B, S))
    for t in range(ds.n_episodes):
        for h in range(H):
            s, a, b = ds.states[t, h], ds.leader_actions[t, h], ds.follower_actions[t, h]
            n[h, s, a, b] += 1
            nxt[h, s, a, b, ds.states[t, h + 1]] += 1
    np.testing.assert_array_equal(counts, n)
    seen = n > 0
    np.testing.assert_allclose(p_hat[seen], nxt[seen] / n[seen][:, None])
    np.testing.assert_allclose(r_hat[seen], np.asarray(game.leader_reward)[seen])
    # Weissman's L1 radius at delta / K (union bound over the K = 16 cells), capped at 2
    expected = np.sqrt(2 * (S * np.log(2) + np.log(16 / 0.1)) / np.maximum(n, 1))
    np.testing.assert_allclose(radius, np.where(seen, np.minimum(expected, 2.0), 2.0))
    assert np.all(bonus >= 0)


def test_best_reward_bound_is_the_smaller_of_hoeffding_and_bernstein_at_half_delta(game):
    """``reward_bound="best"`` (the default of ``mle-pessimistic``): per cell the smaller of
    Hoeffding ``sqrt(L / 2n)`` and empirical Bernstein ``sqrt(2 var L / n) + 7 L / (3 (n-1))``
    with ``L = log(2K / (delta/2))`` (half of ``delta`` each, so both hold together), written
    out by hand (the game's rewards are deterministic: ``var = 0``).  Fails if the split of
    ``delta`` is forgotten (invalid union bound) or the larger bonus is taken."""
    assert learner_config().reward_bound == "best"
    ds = simulate(game, uniform_policy(game), 4000, seed=9)
    spec = GameSpec.from_game(game)
    counts, _, _, bonus, _ = empirical_leader_model(ds, spec, 0.1, "best")
    K = counts.size
    L = np.log(2 * K / 0.05)
    n = np.maximum(counts, 2)
    hoeffding = np.sqrt(L / (2 * n))
    bernstein = 7 * L / (3 * (n - 1))
    expected = np.where(counts >= 2, np.minimum(np.minimum(hoeffding, bernstein), 1.0), 1.0)
    np.testing.assert_allclose(bonus, expected, rtol=1e-6)
    assert (bernstein < hoeffding).any() and (bernstein > hoeffding).any()  # both branches used
    _, _, _, hoeff_only, _ = empirical_leader_model(ds, spec, 0.1, "hoeffding")
    np.testing.assert_allclose(hoeff_only, np.minimum(np.sqrt(np.log(2 * K / 0.1) / (2 * n)), 1))
    with pytest.raises(ConfigError, match="reward_bound"):
        learner_config({"reward_bound": "chernoff"})


# ---- the pieces of the certified lower bound --------------------------------------------


def test_ellipsoid_response_box_is_exact_for_two_actions_and_contains_sampled_responses():
    rng = np.random.default_rng(0)
    H, S, A, d = 2, 2, 2, 3
    eta = 1.5
    for B in (2, 3):
        phi = rng.normal(size=(H, S, A, B, d))
        theta_hat = rng.normal(size=d)
        m = rng.normal(size=(d, d))
        cov = m @ m.T / d + 0.1 * np.eye(d)
        beta = chi2.ppf(0.9, d)
        lo, up = (np.asarray(x) for x in ellipsoid_response_box(phi, eta, theta_hat, cov, beta))
        # every response of a theta in the ellipsoid lies in the box (boundary and interior)
        z = rng.normal(size=(4000, d))
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        z *= rng.uniform(0, 1, size=(4000, 1)) ** 0.3
        thetas = theta_hat + np.sqrt(beta) * z @ np.linalg.cholesky(cov).T
        util = np.einsum("hsabd,md->mhsab", phi, thetas) * eta
        nu = np.exp(util - util.max(-1, keepdims=True))
        nu /= nu.sum(-1, keepdims=True)
        assert np.all(nu >= lo - 1e-12) and np.all(nu <= up + 1e-12)
        if B == 2:
            # closed form: nu_0 = sigmoid(eta (phi_0 - phi_1) . theta), a linear function of
            # theta whose range over the ellipsoid is centre +/- sqrt(beta) ||.||_cov
            D = eta * (phi[..., 0, :] - phi[..., 1, :])
            c = D @ theta_hat
            w = np.sqrt(beta * np.einsum("hsai,ij,hsaj->hsa", D, cov, D))
            np.testing.assert_allclose(lo[..., 0], expit(c - w), rtol=1e-10)
            np.testing.assert_allclose(up[..., 0], expit(c + w), rtol=1e-10)


def test_box_policy_value_is_exact_for_a_point_model_and_below_every_member(game):
    H, S, A, B = game.shape
    P, r = np.asarray(game.transitions), np.asarray(game.leader_reward)
    nu = np_follower_response(P, np.asarray(game.utility()), game.eta)
    rng = np.random.default_rng(1)
    pi = rng.dirichlet(np.ones(A), size=(H, S))
    exact = np_policy_value(P, r, game.initial_dist, nu, pi)
    v = box_policy_value(pi, Model(None, None, P, r), nu, nu, False, np.zeros((H, S, A, B)))
    assert float(game.initial_dist @ np.asarray(v[0])) == pytest.approx(exact, abs=1e-12)
    # a set around the truth: every member's value is >= the pessimistic value
    radius = np.full((H, S, A, B), 0.3)
    lo, up = np.clip(nu - 0.1, 0, 1), np.clip(nu + 0.1, 0, 1)
    r_low = r - 0.05
    v = box_policy_value(pi, Model(None, None, P, r_low), lo, up, False, radius)
    bound = float(game.initial_dist @ np.asarray(v[0]))
    assert bound < exact
    for _ in range(300):
        # a random member: nu in the box (mixing towards a random response keeps the sum 1),
        # transitions within the L1 ball, rewards above the lower bound
        w = rng.uniform(0, 0.1)
        nu_m = np.clip((1 - w) * nu + w * rng.dirichlet(np.ones(B), size=(H, S, A)), lo, up)
        nu_m /= nu_m.sum(-1, keepdims=True)
        if np.any(nu_m < lo - 1e-12) or np.any(nu_m > up + 1e-12):
            continue
        P_m = 0.85 * P + 0.15 * rng.dirichlet(np.ones(S), size=(H, S, A, B))  # L1 dist <= 0.3
        r_m = r_low + rng.uniform(0, 0.1, size=r.shape)
        assert np_policy_value(P_m, r_m, game.initial_dist, nu_m, pi) >= bound - 1e-12


# ---- learners ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_LEARNERS)
def test_all_learners_reach_the_qse_value_with_covering_data(name, game, covering_data):
    """Uniform behaviour (covers every action) and N large: every learner's policy is within a
    small tolerance of the QSE value, computed by the NumPy reference evaluation."""
    res = fit_offline(
        name, covering_data, _spec_for(name, game), {"num_draws": 64}, jax.random.key(0)
    )
    P, r = np.asarray(game.transitions), np.asarray(game.leader_reward)
    nu = np_follower_response(P, np.asarray(game.utility()), game.eta)
    value = np_policy_value(P, r, game.initial_dist, nu, res.policy)
    best = max(
        np_policy_value(P, r, game.initial_dist, nu, pi)
        for pi in _deterministic_policies(*game.shape[:3])
    )
    assert value >= best - 1e-3
    assert suboptimality(game, res.policy) == pytest.approx(best - value, abs=1e-9)
    if res.lower_bound is not None:
        # the bound is informative: close to the value with this much data
        assert value - 0.1 <= res.lower_bound <= value + 0.02


def _deterministic_policies(H, S, A):
    from reference import deterministic_policies

    return deterministic_policies(H, S, A)


@pytest.mark.slow
def test_plugin_reaches_the_qse_value_against_a_farsighted_follower():
    """The plug-in with a farsighted follower: the likelihood runs the soft Bellman recursion on
    the estimated kernel and the gradient planner (2b) plans on the estimates."""
    g = random_game(1, 2, 2, 2, 2, 2, eta=2.0, farsighted=True)
    ds = simulate(g, uniform_policy(g), 20_000, seed=0)
    res = fit_offline("plugin", ds, GameSpec.from_game(g), None, jax.random.key(0))
    np.testing.assert_allclose(res.info["theta_hat"], g.theta, atol=0.05)
    assert suboptimality(g, res.policy) <= 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("known_model", [True, False])
def test_mle_pessimistic_lower_bound_holds_at_its_level(game, known_model):
    """``P(J(pi_hat) >= lower_bound) >= 1 - delta`` over independent datasets: the number of
    datasets where it holds is not significantly below ``(1 - delta) n`` (one-sided binomial
    test at 1%)."""
    delta, n_data, N = 0.2, 120, 20
    spec = GameSpec.from_game(game, known_model=known_model)
    big = simulate(game, near_optimal_policy(game, 0.5), n_data * N, seed=2024)
    holds = 0
    for i in range(n_data):
        ds = big.subset(slice(i * N, (i + 1) * N))
        res = fit_offline("mle-pessimistic", ds, spec, {"delta": delta})
        holds += res.lower_bound <= leader_value(game, res.policy) + 1e-12
    test = binomtest(int(holds), n_data, 1 - delta, alternative="less")
    assert test.pvalue > 0.01, f"held {holds}/{n_data} times, nominal {1 - delta}"


@pytest.mark.slow
def test_plugin_and_pessimism_agree_when_the_model_is_known_and_data_plentiful(game, covering_data):
    spec = GameSpec.from_game(game, known_model=True)
    ds = covering_data
    pi_star = solve_qse(game).policy
    for name in ("plugin", "mle-pessimistic", "bayes-pessimistic"):
        res = fit_offline(name, ds, spec, {"num_draws": 64}, jax.random.key(1))
        np.testing.assert_array_equal(res.policy, pi_star)


@pytest.mark.slow
def test_pessimism_avoids_an_action_seen_once():
    """One state, one step, two leader actions.  Action 0 is well covered and pays 0.5 for
    sure; action 1 was tried once and paid 1 (the follower answered favourably) but the
    follower answers favourably only 10% of the time.  The plug-in trusts the single
    observation; the pessimistic learners do not."""
    H, S, A, B = 1, 1, 2, 2
    P = np.ones((H, S, A, B, S))
    r = np.array([[[[0.5, 0.5], [1.0, 0.0]]]])
    phi = np.zeros((H, S, A, B, 1))
    phi[0, 0, 1, 0, 0] = 1.0  # u(a=1, b=0) = theta
    from bayes_qse.games import Game

    g = Game(P, r, phi, np.array([-np.log(9.0)]), 1.0)  # nu(b=0 | a=1) = 0.1
    n0 = 200
    ds = Dataset(
        states=np.zeros((n0 + 1, 2), int),
        leader_actions=np.r_[np.zeros(n0, int), 1][:, None],
        follower_actions=np.r_[np.arange(n0) % 2, 0][:, None],
        rewards=np.r_[np.full(n0, 0.5), 1.0][:, None],
        policies=np.full((n0 + 1, 1, 1, 2), 0.5),
    )
    spec = GameSpec.from_game(g)
    # weak prior: with ridge 1e-2 the MAP of theta from one favourable answer is large
    cfg = {"ridge": 1e-2, "num_draws": 128}
    plug = fit_offline("plugin", ds, spec, cfg)
    assert plug.policy[0, 0].argmax() == 1
    for name in ("mle-pessimistic", "mle-pessimistic-box", "bayes-pessimistic"):
        res = fit_offline(name, ds, spec, cfg, jax.random.key(3))
        assert res.policy[0, 0].argmax() == 0, name
        assert suboptimality(g, res.policy) == pytest.approx(0.0, abs=1e-12)
    assert suboptimality(g, plug.policy) == pytest.approx(0.5 - 0.1, abs=1e-9)


def test_learner_input_errors(game):
    ds = simulate(game, uniform_policy(game), 5, seed=0)
    spec = GameSpec.from_game(game)
    with pytest.raises(BayesQSEInputError, match="learner"):
        fit_offline("greedy", ds, spec)
    with pytest.raises(BayesQSEInputError, match="game_spec"):
        fit_offline("oracle", ds, spec)
    with pytest.raises(ConfigError, match="delta"):
        learner_config({"delta": 1.5})
    with pytest.raises(ConfigError, match="unknown setting"):
        fit_offline("plugin", ds, spec, {"alpha": 1})
    with pytest.raises(ConfigError, match="penalty"):
        fit_offline("mle-pessimistic", ds, spec, {"penalty": "l2"})
    other = random_game(0, 3, 2, 2, 2, 2)
    with pytest.raises(DatasetValidationError, match="policies"):
        fit_offline("plugin", ds, GameSpec.from_game(other))
    with pytest.raises(BayesQSEInputError, match="dataset"):
        fit_offline("plugin", {"states": []}, GameSpec.from_game(game))
    with pytest.raises(ConfigError, match="num_draws"):
        learner_config({"num_draws": 2.5})
    with pytest.raises(ConfigError, match="prior_scale"):
        learner_config({"prior_scale": "big"})
    far = steering_game()
    H, S, A, _ = far.shape
    far_ds = Dataset(
        np.zeros((2, H + 1), int),
        np.zeros((2, H), int),
        np.zeros((2, H), int),
        np.zeros((2, H)),
        np.full((2, H, S, A), 1.0 / A),
    )
    with pytest.raises(BayesQSEInputError, match="myopic"):
        fit_offline("mle-pessimistic", far_ds, GameSpec.from_game(far))
    assert set(OFFLINE_LEARNERS) == {"oracle", "plugin", "mle-pessimistic", "bayes-pessimistic"}


# ---- validity of pessimism at realistic radii ----------------------------------------------


def _ellipsoid_points(theta_hat, cov, beta, n, rng):
    """``2n`` points of the Wald ellipsoid: ``n`` on its surface, ``n`` uniform inside."""
    d = theta_hat.size
    chol = np.linalg.cholesky(cov)
    u = rng.normal(size=(2 * n, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    radius = np.concatenate([np.ones(n), rng.uniform(size=n) ** (1.0 / d)])
    return theta_hat + np.sqrt(beta) * (radius[:, None] * u) @ chol.T


def _np_q_of_policy(P, r, phi, eta, policy, thetas):
    """``Q^policy_h(s,a)`` under each ``theta`` (``[M,H,S,A]``): NumPy backward evaluation."""
    z = eta * np.einsum("hsabd,md->mhsab", phi, thetas)
    nu = np.exp(z - z.max(-1, keepdims=True))
    nu /= nu.sum(-1, keepdims=True)
    H, S = r.shape[:2]
    v = np.zeros((thetas.shape[0], S))
    Q = np.zeros((thetas.shape[0], H, S, r.shape[2]))
    for h in reversed(range(H)):
        w = r[h][None] + np.einsum("sabt,mt->msab", P[h], v)
        Q[:, h] = np.einsum("msab,msab->msa", nu[:, h], w)
        v = np.einsum("sa,msa->ms", policy[h], Q[:, h])
    return Q


def test_box_pessimism_is_valid_at_realistic_radii_and_first_order_is_not():
    """The default planner of ``mle-pessimistic`` (the response box) must give ``q_h(s,a)``
    below ``Q^pi_h(s,a)`` of its own policy for every ``theta`` of the Wald ellipsoid (4000
    points, half on the surface, each evaluated by a NumPy backward pass) at the chi-square
    radius actually used (``beta = 6.25 >= 5``), N = 10..1000 episodes.  Fails if the box
    ignores a direction of the ellipsoid, shrinks the radius (e.g. ``beta**0.25`` for
    ``sqrt(beta)``: checked by mutation), or takes the max for the min.  The first-order
    penalty must exceed that minimum somewhere (so the docs' warning is true), and the box
    must not be vacuous (median slack < 0.05 at N = 1000)."""
    from bayes_qse.confidence import plan_on_set
    from bayes_qse.learners.offline import pessimistic_set

    game = random_game(0, 2, 2, 3, 2, 3, eta=2.0)
    spec = GameSpec.from_game(game, known_model=True, initial_dist="game")
    data = simulate(game, uniform_policy(game), 1000, seed=5)
    P, r, phi = (np.asarray(x) for x in (game.transitions, game.leader_reward, game.features))
    rng = np.random.default_rng(0)
    first_order_excess = []
    for n in (10, 30, 100, 1000):
        cs, _ = pessimistic_set(data.subset(slice(0, n)), spec, {"delta": 0.1})
        fol = cs.follower
        assert fol.beta >= 5.0
        cov = np.linalg.inv(fol.precision)
        thetas = _ellipsoid_points(fol.center, cov, fol.beta, 2000, rng)
        q, _, pi = (np.asarray(x) for x in plan_on_set(cs, optimistic=False))
        worst = _np_q_of_policy(P, r, phi, float(game.eta), pi, thetas).min(axis=0)
        assert np.all(q <= worst + 1e-9), (n, float((q - worst).max()))
        if n == 1000:
            assert np.median(worst - q) < 0.05
        first_order = plan_on_set(cs, optimistic=False, method="first-order")
        q_fo, _, pi_fo = (np.asarray(x) for x in first_order)
        worst_fo = _np_q_of_policy(P, r, phi, float(game.eta), pi_fo, thetas).min(axis=0)
        first_order_excess.append(float((q_fo - worst_fo).max()))
    assert max(first_order_excess) > 0.05, first_order_excess


def test_mle_pessimistic_defaults_to_the_box_and_names_the_first_order_variant(game):
    """The default penalty is the valid box; ``mle-pessimistic-first-order`` and the deprecated
    ``"ellipsoid"`` alias select the first-order penalty.  Fails if the default reverts."""
    assert learner_config().penalty == "box"
    assert learner_config({"penalty": "ellipsoid"}).penalty == "first-order"
    spec = GameSpec.from_game(game)
    ds = simulate(game, uniform_policy(game), 20, seed=2)
    base = fit_offline("mle-pessimistic", ds, spec)
    fo = fit_offline("mle-pessimistic-first-order", ds, spec)
    assert base.info["penalty"] == "box" and fo.info["penalty"] == "first-order"


# ---- the tempting game: an offline test bed that needs pessimism -----------------------------


def test_tempting_game_values_follow_the_closed_form():
    """Every tempting action is worth ``P(cooperate) = tempting_value`` per step and the safe
    (last) action ``safe_value``, so the QSE is the safe action at ``H * safe_value``.  Fails
    if ``theta_k`` has the wrong sign or scale, or the rewards are on the wrong follower
    action."""
    from bayes_qse.games import named_game, tempting_game

    game = tempting_game(n_tempting=3, safe_value=0.55, tempting_value=0.2, eta=1.5, horizon=2)
    assert game.shape == (2, 1, 4, 2) and game.feature_dim == 3
    P, r, phi = (np.asarray(x) for x in (game.transitions, game.leader_reward, game.features))
    nu = np_follower_response(P, np.einsum("hsabd,d->hsab", phi, game.theta), 1.5)
    np.testing.assert_allclose(nu[:, 0, :3, 0], 0.2, atol=1e-12)
    for a in range(4):
        pure = np.zeros((2, 1, 4))
        pure[:, :, a] = 1.0
        expected = 2 * (0.55 if a == 3 else 0.2)
        assert np_policy_value(P, r, np.ones(1), nu, pure) == pytest.approx(expected, abs=1e-12)
        assert leader_value(game, pure) == pytest.approx(expected, abs=1e-9)
    sol = solve_qse(game)
    assert float(sol.value) == pytest.approx(1.1, abs=1e-9)
    assert np.asarray(sol.policy)[:, 0, 3].min() == pytest.approx(1.0)
    assert named_game("tempting").shape == (1, 1, 7, 2)
    with pytest.raises(Exception, match="n_tempting"):
        tempting_game(n_tempting=0)
    with pytest.raises(Exception, match="safe_value"):
        tempting_game(safe_value=1.5)


def test_tempting_game_is_identified_under_its_behaviour_policy():
    """The Fisher information of ``theta`` at the truth under the ``near-optimal`` behaviour
    (``epsilon = 0.3``), computed by hand (``eta^2 sum_a pi_b(a) Cov_nu(phi)``), has full
    rank ``d = n_tempting`` -- each tempting action identifies its own coordinate -- and the
    library's observed information from 20000 episodes, divided by N, matches it.  Fails if
    two tempting actions shared a parameter (rank drops), if a feature sat on the safe action
    (never informative), or if ``fit_follower``'s precision were off by a factor."""
    from bayes_qse.games import tempting_game
    from bayes_qse.learners.offline import fit_follower

    game = tempting_game()
    K = game.feature_dim
    pb = behaviour_policy("near-optimal", game, epsilon=0.3)
    phi = np.asarray(game.features)[0, 0]  # [A, B, d]
    fisher = np.zeros((K, K))
    for a in range(game.n_leader_actions):
        z = float(game.eta) * phi[a] @ np.asarray(game.theta)
        nu = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        mean = nu @ phi[a]
        cov = (phi[a] * nu[:, None]).T @ phi[a] - np.outer(mean, mean)
        fisher += pb[0, 0, a] * float(game.eta) ** 2 * cov
    eig = np.linalg.eigvalsh(fisher)
    assert np.linalg.matrix_rank(fisher) == K and eig.min() > 0.01
    n = 20_000
    data = simulate(game, pb, n, seed=4)
    _, precision = fit_follower(data, GameSpec.from_game(game), ridge=1.0)
    np.testing.assert_allclose((precision - np.eye(K)) / n, fisher, rtol=0.1, atol=2e-3)


@pytest.mark.slow
def test_pessimism_beats_the_plugin_on_the_tempting_game_at_small_n():
    """On :func:`~bayes_qse.games.tempting_game` (6 tempting actions worth 0.3, a safe one
    worth 0.6) with the ``near-optimal`` behaviour (epsilon 0.3: each tempting action is
    tried in ~4% of episodes), 50 fixed datasets per N: ``mle-pessimistic`` (box) and
    ``bayes-pessimistic`` have a lower mean suboptimality than ``plugin``, with a paired
    difference at least 0.05 and more than 2 standard errors above 0 -- at N = 10 and 30 when
    the leader knows her rewards (only the follower is learned) and at N = 30 and 100 when
    she learns them too.  Fails if pessimism is turned into optimism (it then chases the
    tempting actions, as checked by mutation of ``plan_on_set``), if the follower
    penalty is dropped or has the wrong sign (the learner becomes the plug-in or worse), or if
    the Bayesian quantile is taken at the upper tail.  (A box that ignored the data would
    still pass: it only makes pessimism more cautious here; the validity test above and the
    lower-bound slack in the experiment catch that.)  Also
    checks that the certified bound of ``mle-pessimistic`` holds on every dataset."""
    from bayes_qse.games import tempting_game

    game = tempting_game()
    best = float(solve_qse(game).value)
    pb = behaviour_policy("near-optimal", game, epsilon=0.3)
    datasets = [simulate(game, pb, 100, seed=7000 + i) for i in range(50)]
    learners = ("plugin", "mle-pessimistic", "bayes-pessimistic")
    for known, sizes in ((True, (10, 30)), (False, (30, 100))):
        spec = GameSpec.from_game(game, known_model=known, initial_dist="game")
        for n in sizes:
            sub = np.zeros((50, 3))
            for i, data in enumerate(datasets):
                ds = data.subset(slice(0, n))
                for j, name in enumerate(learners):
                    res = fit_offline(name, ds, spec, {"num_draws": 256}, jax.random.key(i))
                    value = leader_value(game, res.policy)
                    sub[i, j] = best - value
                    if name == "mle-pessimistic":
                        assert res.lower_bound <= value + 1e-9
            for j in (1, 2):
                gain = sub[:, 0] - sub[:, j]
                se = gain.std(ddof=1) / np.sqrt(50)
                assert gain.mean() >= 0.05 and gain.mean() > 2 * se, (known, n, j, gain.mean(), se)
