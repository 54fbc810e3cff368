"""Security games with a commitment-observing SUQR attacker (docs/math.md eq. 7, eq. 8).

Golden values come from independent NumPy loops, SciPy's solvers or brute force on a grid.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize

from bayes_qse.commitment import (
    CommitmentStats,
    commitment_features,
    commitment_log_likelihood,
    commitment_log_response,
    commitment_stats_from_episodes,
)
from bayes_qse.errors import BayesQSEInputError, DatasetValidationError, GameValidationError
from bayes_qse.security import (
    SUQR_MODEL,
    AttackData,
    attack_stats,
    covariance_security_game,
    defender_utility,
    fit_suqr_mle,
    make_security_game,
    plan_coverage,
    project_coverage,
    random_coverages,
    simulate_attacks,
    suqr_log_likelihood,
    suqr_numpyro_model,
    suqr_posterior,
    uniform_security_game,
)
from bayes_qse.sets import wald_ellipsoid


def _np_suqr(theta, game, c):
    """Loop version of eq. (8a)-(8b): attack probabilities and the defender's utility."""
    c = np.asarray(c, float)
    ra, pa = np.asarray(game.attacker_reward), np.asarray(game.attacker_penalty)
    rd, pd = np.asarray(game.defender_reward), np.asarray(game.defender_penalty)
    su = [theta[0] * c[t] + theta[1] * ra[t] + theta[2] * pa[t] for t in range(len(c))]
    e = [np.exp(x - max(su)) for x in su]
    q = [x / sum(e) for x in e]
    return np.array(q), sum(q[t] * (c[t] * rd[t] + (1 - c[t]) * pd[t]) for t in range(len(c)))


def test_commitment_response_matches_loops():
    """Eq. (7a)-(7b) against explicit loops over (h, s, b, a, k).  Bug caught: the einsum of
    (7b) summing over the follower's action instead of the leader's, or eta left out."""
    rng = np.random.default_rng(0)
    H, S, A, B, d = 2, 3, 4, 3, 2
    phi = rng.normal(size=(H, S, A, B, d))
    pi = rng.dirichlet(np.ones(A), size=(H, S))
    theta, eta = rng.normal(size=d), 1.7
    got = np.exp(commitment_log_response(theta, commitment_features(pi, phi), eta))
    want = np.zeros((H, S, B))
    for h in range(H):
        for s in range(S):
            util = [
                sum(
                    pi[h, s, a] * sum(phi[h, s, a, b, k] * theta[k] for k in range(d))
                    for a in range(A)
                )
                for b in range(B)
            ]
            e = np.exp(eta * np.array(util))
            want[h, s] = e / e.sum()
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_episode_stats_likelihood_matches_loops():
    """Eq. (7c) from Markov-game episodes (one commitment per episode) against a loop over
    episodes and steps.  Bug caught: counts put at the wrong (h, s) or padding rows counted."""
    rng = np.random.default_rng(1)
    H, S, A, B, d, C = 2, 2, 3, 3, 2, 5
    phi = rng.normal(size=(H, S, A, B, d))
    pols = rng.dirichlet(np.ones(A), size=(C, H, S))
    states = rng.integers(0, S, size=(C, H + 1))
    fa = rng.integers(0, B, size=(C, H))
    mask = np.array([True, True, False, True, True])
    theta, eta = rng.normal(size=d), 0.8
    stats = commitment_stats_from_episodes(
        jnp.asarray(pols), jnp.asarray(states), jnp.asarray(fa), jnp.asarray(phi), jnp.asarray(mask)
    )
    got = float(commitment_log_likelihood(jnp.asarray(theta), eta, stats))
    want = 0.0
    for t in range(C):
        if not mask[t]:
            continue
        for h in range(H):
            s = states[t, h]
            u = np.einsum("a,abk,k->b", pols[t, h, s], phi[h, s], theta)
            want += eta * u[fa[t, h]] - np.log(np.sum(np.exp(eta * u)))
    assert got == pytest.approx(want, rel=1e-12)


def test_suqr_likelihood_and_utility_match_loops():
    """SUQR (eq. 8a-8b, eq. 7c) against the loop version.  Bug caught: features in the wrong
    order (w2 on the penalty), the utility using the attacker's payoffs, counts ignored."""
    game = uniform_security_game(5, 2.0, seed=3)
    rng = np.random.default_rng(2)
    cov = np.asarray(random_coverages(jax.random.PRNGKey(0), 5, 2.0, 7))
    counts = rng.integers(0, 4, size=(7, 5)).astype(float)
    theta = np.array([-4.0, 0.5, 0.3])
    got = float(suqr_log_likelihood(jnp.asarray(theta), game, AttackData(cov, counts)))
    want = sum(
        counts[k, t] * np.log(_np_suqr(theta, game, cov[k])[0][t])
        for k in range(7)
        for t in range(5)
    )
    assert got == pytest.approx(want, rel=1e-12)
    for k in range(3):
        assert float(defender_utility(jnp.asarray(theta), game, cov[k])) == pytest.approx(
            _np_suqr(theta, game, cov[k])[1], rel=1e-12
        )


@pytest.mark.parametrize("m", [1.0, 2.5])
def test_projection_matches_scipy_and_kkt(m):
    """Eq. (8d) against SciPy's constrained least squares, and its KKT form.  Bug caught: a
    projection that clips and rescales (not Euclidean), or one that overshoots the budget."""
    rng = np.random.default_rng(4)
    for _ in range(6):
        y = rng.normal(0.4, 0.8, size=6)
        c = np.asarray(project_coverage(jnp.asarray(y), m))
        res = minimize(
            lambda x, y=y: 0.5 * np.sum((x - y) ** 2),
            np.full(6, 0.1),
            jac=lambda x, y=y: x - y,
            bounds=[(0, 1)] * 6,
            constraints=[
                {"type": "ineq", "fun": lambda x: m - x.sum(), "jac": lambda x: -np.ones(6)}
            ],
            method="SLSQP",
            options={"ftol": 1e-14, "maxiter": 500},
        )
        np.testing.assert_allclose(c, res.x, atol=1e-6)
        assert c.sum() <= m + 1e-12 and np.all((c >= 0) & (c <= 1))
        free = (c > 1e-12) & (c < 1 - 1e-12)
        if c.sum() < m - 1e-9:  # budget slack: the projection is the box clip
            np.testing.assert_allclose(c, np.clip(y, 0, 1), atol=1e-15)
        elif free.any():  # budget binding: one shift tau >= 0 on the free coordinates
            tau = y[free] - c[free]
            assert np.ptp(tau) < 1e-12 and tau[0] >= -1e-12


def test_numpyro_flat_map_equals_newton_mle():
    """MAP = MLE: the minimiser of the NumPyro model's potential energy under a flat prior
    (found by SciPy's BFGS) is the Newton MLE.  Bug caught: the Newton objective and the
    NumPyro likelihood differing (a sign, a dropped count weight, a hidden prior)."""
    from numpyro.infer.util import potential_energy

    game = uniform_security_game(5, 2.0, seed=7)
    cov = random_coverages(jax.random.PRNGKey(3), 5, 2.0, 300)
    data = simulate_attacks(jax.random.PRNGKey(4), game, game.theta, cov)
    fit = fit_suqr_mle(game, data)
    args = (attack_stats(game, data).psi, data.counts, None)

    def u(th):
        return potential_energy(suqr_numpyro_model, args, {}, {"theta": jnp.asarray(th)})

    grad = jax.jit(jax.grad(u))
    res = minimize(
        lambda t: float(u(t)),
        np.zeros(3),
        jac=lambda t: np.asarray(grad(t)),
        method="BFGS",
        options={"gtol": 1e-9},
    )
    assert fit.converged
    np.testing.assert_allclose(fit.theta, res.x, atol=1e-4)
    assert -float(u(fit.theta)) == pytest.approx(fit.log_likelihood, rel=1e-12)


def test_laplace_map_and_covariance_under_the_gaussian_prior_match_loops():
    """The Laplace posterior of ``suqr_posterior`` (prior ``N(0, s^2 I)``) sits where the loop
    gradient of eq. (7c) equals ``w / s^2`` (the MAP), and its covariance is the inverse of
    the loop Fisher information plus ``I / s^2``.  Golden: the multinomial-logit score and
    information written with loops over commitments and targets.  Bug caught: the security
    MAP using a prior of the wrong precision, sign or factor (doubled, halved, missing) --
    it goes through ``likelihood.log_posterior`` now, not a copy of it."""
    game = uniform_security_game(5, 2.0, seed=2)
    cov = random_coverages(jax.random.PRNGKey(8), 5, 2.0, 40)
    data = simulate_attacks(jax.random.PRNGKey(9), game, game.theta, cov)
    scale = 1.5  # a tight prior, so that the prior term matters at this sample size
    post = suqr_posterior(game, data, method="laplace", prior_scale=scale, num_samples=4)
    w = np.asarray(post.map_theta)
    psi = np.asarray(attack_stats(game, data).psi)  # [K, T, 3]
    n = np.asarray(data.counts)
    score, info = np.zeros(3), np.zeros((3, 3))
    for k in range(psi.shape[0]):
        q = _np_suqr(w, game, np.asarray(cov)[k])[0]
        mean = sum(q[t] * psi[k, t] for t in range(5))
        for t in range(5):
            score += n[k, t] * (psi[k, t] - mean)
            d = psi[k, t] - mean
            info += n[k].sum() * q[t] * np.outer(d, d)
    np.testing.assert_allclose(score, w / scale**2, atol=1e-8)
    np.testing.assert_allclose(post.cov, np.linalg.inv(info + np.eye(3) / scale**2), rtol=1e-8)


@pytest.mark.slow
def test_wald_set_coverage_small_simulation():
    """The 90% Wald set (Fisher rank dof) of the SUQR MLE covers the true weights in about
    90% of 120 simulated datasets (binomial band 0.82..0.97).  Bug caught: a Fisher
    information off by a factor (set too small or too large), an MLE biased by a wrong
    feature."""
    game = uniform_security_game(5, 2.0, seed=11)
    hits = []
    for r in range(120):
        k1, k2 = jax.random.split(jax.random.PRNGKey(100 + r))
        cov = random_coverages(k1, 5, 2.0, 400)
        data = simulate_attacks(k2, game, game.theta, cov)
        fit = fit_suqr_mle(game, data)
        hits.append(bool(wald_ellipsoid(fit, 0.9).contains(np.asarray(game.theta))))
    assert 0.82 <= np.mean(hits) <= 0.97


def test_generators_and_bad_input():
    """Covariance games: ``r = -1`` is exactly zero-sum and payoffs lie in the stated ranges;
    bad input names the field.  Bug caught: the crossed pairing of the copula swapped, or a
    validation that lets mismatched payoff vectors through."""
    g = covariance_security_game(50, 5.0, correlation=-1.0, seed=0)
    np.testing.assert_allclose(g.defender_reward, -g.attacker_penalty, atol=1e-12)
    np.testing.assert_allclose(g.defender_penalty, -g.attacker_reward, atol=1e-12)
    u = uniform_security_game(100, 10.0, seed=1)
    assert 1 <= float(u.defender_reward.min()) and float(u.attacker_penalty.max()) <= -1
    with pytest.raises(GameValidationError, match="attacker_reward"):
        make_security_game([1, 2], [-1, -2], [1, 2, 3], [-1, -2], 1.0)
    with pytest.raises(GameValidationError, match="resources"):
        make_security_game([1, 2], [-1, -2], [1, 2], [-1, -2], 3.0)
    with pytest.raises(DatasetValidationError, match="coverage"):
        fit_suqr_mle(u, AttackData(np.ones((2, 100)), np.zeros((2, 100))))
    with pytest.raises(BayesQSEInputError, match="thetas"):
        plan_coverage(u, np.zeros(4))


def test_commitment_stats_is_a_pytree():
    """Stats pass through jit (fixed shapes): the likelihood is the same inside and outside.
    Bug caught: CommitmentStats not a pytree (jit would reject it)."""
    st = CommitmentStats(jnp.ones((2, 3, 2)), jnp.ones((2, 3)))
    th = jnp.array([0.3, -0.2])
    f = jax.jit(commitment_log_likelihood)
    assert float(f(th, 1.0, st)) == pytest.approx(float(commitment_log_likelihood(th, 1.0, st)))


@pytest.mark.slow
def test_security_games_experiment_tiny(tmp_path):
    """The experiment runs end to end at a tiny config, resumes to identical numbers and its
    table reports every sample size.  Bug caught: a unit that is not reproducible from its
    seed (resume would differ), or a table that drops a row."""
    from bayes_qse.experiments import load_config
    from bayes_qse.experiments import security_games as sg

    cfg = load_config(sg, None, False, {"seeds": 1, "base_seed": 0})
    cfg |= {"sample_sizes": [15, 30], "planning_sizes": [10], "rounds": 3, "plan_steps": 20}
    cfg |= {"num_samples": 20, "learners": ["greedy", "thompson"]}
    cfg["learner"] = {**cfg["learner"], "steps": 10}
    sg.run(cfg, tmp_path / "a", progress=False)
    sg.run(cfg, tmp_path / "b", progress=False)
    a, b = (np.load(tmp_path / x / "results.npz") for x in ("a", "b"))
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])
    text = sg.table(tmp_path / "a")
    assert "| 15 |" in text and "| 30 |" in text and "| thompson |" in text


@pytest.mark.slow
def test_sbc_passes_batched_nuts_on_the_suqr_posterior():
    """Simulation-based calibration of NUTS on eq. (7c) with the N(0, 2^2 I) prior: ranks of
    prior draws among posterior draws are uniform, and a posterior squeezed to half its width
    is flagged.  Bug caught: a likelihood scaled wrongly (over- or under-confident posterior)
    or a prior in the sampler that differs from the one the weights were drawn from."""
    from bayes_qse.inference import _log_density
    from bayes_qse.samplers import nuts
    from bayes_qse.sbc import rank_statistic, uniformity_test

    R, K, scale = 100, 60, 2.0
    game = uniform_security_game(5, 2.0, seed=0, theta=None)
    k_theta, k_cov, k_data, k_nuts = jax.random.split(jax.random.PRNGKey(5), 4)
    theta = scale * jax.random.normal(k_theta, (R, 3))
    cov = random_coverages(k_cov, 5, 2.0, K)
    counts = jax.vmap(lambda k, w: simulate_attacks(k, game, w, cov).counts)(
        jax.random.split(k_data, R), theta
    )
    psi = jnp.broadcast_to(attack_stats(game, AttackData(cov, counts[0])).psi, (R, K, 5, 3))
    lam = jnp.full((R,), 1.0 / scale**2)
    # the density suqr_posterior's NUTS samples, batched over the R datasets
    model = SUQR_MODEL.replace(eta=jnp.ones(R))
    args = (model, CommitmentStats(psi, counts), lam, jnp.zeros(R), jnp.ones(R))
    out = nuts(
        k_nuts,
        _log_density(None),
        jnp.zeros((R, 3)),
        args,
        num_warmup=150,
        num_samples=300,
        batched=True,
        dense_mass=True,
    )
    draws = out.draws[:, 0, ::3]
    good = uniformity_test(np.asarray(rank_statistic(jnp.asarray(draws), theta)), draws.shape[1])
    assert good.chi2_pvalue.min() > 0.005 and good.ks_pvalue.min() > 0.005, good
    mean = draws.mean(axis=1, keepdims=True)
    squeezed = mean + 0.5 * (draws - mean)
    bad = uniformity_test(np.asarray(rank_statistic(jnp.asarray(squeezed), theta)), draws.shape[1])
    assert min(bad.chi2_pvalue.min(), bad.ks_pvalue.min()) < 0.001, bad


def test_one_likelihood_function_dispatches_on_the_follower_kind():
    """``likelihood.log_likelihood`` gives eq. (7c) for a security game's model and eq. (4) for
    a Markov game's (golden: loops over attacks, and over episodes with the loop response of
    tests/reference.py).  Bug caught: the commitment kind falling through to the action
    likelihood (or the static field lost, so every model looks myopic)."""
    from bayes_qse.data import simulate
    from bayes_qse.games import patrol_game
    from bayes_qse.likelihood import log_likelihood
    from bayes_qse.model import as_model
    from tests.reference import np_follower_response

    game = uniform_security_game(4, 1.0, seed=2)
    cov = random_coverages(jax.random.PRNGKey(0), 4, 1.0, 9)
    data = simulate_attacks(jax.random.PRNGKey(1), game, game.theta, cov, 3)
    w = jnp.array([-3.0, 0.2, 0.1])
    model = as_model(game)
    assert model.follower_kind == "commitment"
    got = float(log_likelihood(w, model, attack_stats(game, data)))
    assert got == pytest.approx(float(suqr_log_likelihood(w, game, data)), rel=1e-13)
    markov = patrol_game()
    eps = simulate(markov, np.full(markov.shape[:3], 1.0 / markov.shape[2]), 5, 0)
    th = np.asarray(markov.theta)
    u = np.asarray(markov.features) @ th
    nu = np_follower_response(np.asarray(markov.transitions), u, float(markov.eta))
    H = markov.shape[0]
    want = sum(
        np.log(nu[h, eps.states[t, h], eps.leader_actions[t, h], eps.follower_actions[t, h]])
        for t in range(len(eps.states))
        for h in range(H)
    )
    assert as_model(markov).follower_kind == "myopic"
    assert float(log_likelihood(jnp.asarray(th), as_model(markov), eps)) == pytest.approx(want)
