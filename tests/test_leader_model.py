"""Tests of the leader's own model (docs/math.md eq. 5): Dirichlet/Normal posterior, empirical
estimates with Hoeffding/Bernstein bonuses, least-squares value iteration, the known model.

Golden values are counted with plain Python loops over the episodes, or written in closed
form here; LSVI is checked against ``numpy.linalg.lstsq`` regressions of ``r + V(s')``.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from reference import np_backward_induction
from scipy.stats import norm

from bayes_qse import BayesQSEInputError
from bayes_qse.data import Episode, buffer_add, buffer_from_dataset, buffer_init, simulate
from bayes_qse.games import random_game
from bayes_qse.leader_model import (
    DirichletNormalModel,
    EmpiricalBonusModel,
    KnownModel,
    LinearLSVI,
    weissman_l1_radius,
)

H, S, A, B = 3, 3, 2, 2


@pytest.fixture(scope="module")
def game():
    return random_game(0, S, A, B, H, 2)


@pytest.fixture(scope="module")
def dataset(game):
    policy = np.full((H, S, A), 1.0 / A)
    return simulate(game, policy, 40, seed=1)


@pytest.fixture(scope="module")
def big_dataset(game):
    return simulate(game, np.full((H, S, A), 1.0 / A), 300, seed=3)


def _loop_counts(ds):
    counts = np.zeros((H, S, A, B, S))
    rsum = np.zeros((H, S, A, B))
    rsq = np.zeros((H, S, A, B))
    samples = {}
    for t in range(ds.n_episodes):
        for h in range(H):
            s, a, b = ds.states[t, h], ds.leader_actions[t, h], ds.follower_actions[t, h]
            counts[h, s, a, b, ds.states[t, h + 1]] += 1
            rsum[h, s, a, b] += ds.rewards[t, h]
            rsq[h, s, a, b] += ds.rewards[t, h] ** 2
            samples.setdefault((h, s, a, b), []).append(ds.rewards[t, h])
    return counts, counts.sum(-1), rsum, rsq, samples


def test_dirichlet_normal_posterior_matches_counts(dataset):
    model = DirichletNormalModel(
        alpha0=0.5, reward_prior_mean=0.2, reward_prior_strength=2.0, reward_noise_sd=0.3
    )
    stats = jax.jit(model.update)(model.init(H, S, A, B), buffer_from_dataset(dataset))
    counts, n, rsum, _, _ = _loop_counts(dataset)
    np.testing.assert_array_equal(stats.counts, counts)
    np.testing.assert_array_equal(stats.n, n)
    conc, mu, sd = model.posterior(stats)
    np.testing.assert_allclose(conc, 0.5 + counts)
    np.testing.assert_allclose(mu, (2.0 * 0.2 + rsum) / (2.0 + n))
    np.testing.assert_allclose(sd, 0.3 / np.sqrt(2.0 + n))
    P, r = model.mean(stats)
    np.testing.assert_allclose(P, (0.5 + counts) / (0.5 * S + n)[..., None])
    b = model.bonus(stats, 0.05)
    np.testing.assert_allclose(b.reward, norm.ppf(0.95) * 0.3 / np.sqrt(2.0 + n))
    ref_radius = np.minimum(np.sqrt(2 * (S * np.log(2) + np.log(20)) / (n + 0.5 * S)), 2.0)
    np.testing.assert_allclose(b.l1_radius, ref_radius)


@pytest.mark.slow
def test_dirichlet_normal_samples_have_posterior_moments(dataset):
    model = DirichletNormalModel(alpha0=1.0, reward_noise_sd=0.5)
    stats = model.update(model.init(H, S, A, B), dataset)
    P_draws, r_draws = model.sample(stats, jax.random.PRNGKey(0), 2000)
    assert P_draws.shape == (2000, H, S, A, B, S) and r_draws.shape == (2000, H, S, A, B)
    np.testing.assert_allclose(P_draws.sum(-1), 1.0, atol=1e-12)
    counts, n, rsum, _, _ = _loop_counts(dataset)
    alpha = 1.0 + counts
    a0 = alpha.sum(-1, keepdims=True)
    mean_ref = alpha / a0
    sd_ref = np.sqrt(mean_ref * (1 - mean_ref) / (a0 + 1))  # Dirichlet marginal sd
    z = (np.asarray(P_draws).mean(0) - mean_ref) / (sd_ref / np.sqrt(2000))
    assert np.abs(z).max() < 5.0
    np.testing.assert_allclose(np.asarray(P_draws).std(0), sd_ref, rtol=0.15)
    mu_ref = rsum / (1.0 + n)
    r_sd_ref = 0.5 / np.sqrt(1.0 + n)
    z = (np.asarray(r_draws).mean(0) - mu_ref) / (r_sd_ref / np.sqrt(2000))
    assert np.abs(z).max() < 5.0
    np.testing.assert_allclose(np.asarray(r_draws).std(0), r_sd_ref, rtol=0.15)


def test_updates_from_episodes_buffer_and_dataset_agree(game, dataset):
    model = DirichletNormalModel()
    batch = model.update(model.init(H, S, A, B), dataset)
    # one episode at a time, as an online learner does
    stats = model.init(H, S, A, B)
    buf = buffer_init(64, H, S, A)
    update = jax.jit(model.update)
    for t in range(dataset.n_episodes):
        ep = Episode(
            dataset.states[t],
            dataset.leader_actions[t],
            dataset.follower_actions[t],
            dataset.rewards[t],
            dataset.policies[t],
        )
        stats = update(stats, ep)
        buf = buffer_add(buf, ep)
    from_buffer = model.update(model.init(H, S, A, B), buf)  # padding rows are masked out
    for x, y, z in zip(batch, stats, from_buffer, strict=True):
        np.testing.assert_allclose(x, y)
        np.testing.assert_allclose(x, z)
    assert float(batch.n.sum()) == dataset.n_episodes * H


def test_empirical_model_estimates_and_bonuses(dataset):
    counts, n, rsum, _, samples = _loop_counts(dataset)
    width = 2.0
    delta = 0.1
    L = np.log(2 * H * S * A * B / delta)
    L2 = np.log(2 * H * S * A * B / (delta / 2))

    def hoeffding(k, L):
        return width * np.sqrt(L / (2 * k))

    def bernstein(k, L, idx):
        if k < 2:
            return width
        var = np.var(samples[idx], ddof=1)
        return np.sqrt(2 * var * L / k) + 7 * width * L / (3 * (k - 1))

    # "best" (the online and offline default): the smaller of the two, each at delta / 2.
    # Bug caught: "best" at the full delta (invalid), the larger of the two, or Hoeffding only.
    for kind in ("hoeffding", "bernstein", "best"):
        model = EmpiricalBonusModel(kind=kind, reward_range=(-1.0, 1.0))
        stats = model.update(model.init(H, S, A, B), buffer_from_dataset(dataset, 50))
        P, r = model.mean(stats)
        b = model.bonus(stats, delta)
        for idx in np.ndindex(H, S, A, B):
            k = n[idx]
            if k == 0:
                np.testing.assert_allclose(P[idx], 1.0 / S)
                assert float(r[idx]) == 0.0 and float(b.reward[idx]) == width
                assert float(b.l1_radius[idx]) == 2.0
                continue
            np.testing.assert_allclose(P[idx], counts[idx] / k)
            assert float(r[idx]) == pytest.approx(np.mean(samples[idx]))
            if kind == "hoeffding":
                ref = hoeffding(k, L)
            elif kind == "bernstein":
                ref = bernstein(k, L, idx)
            else:
                ref = min(hoeffding(k, L2), bernstein(k, L2, idx))
            assert float(b.reward[idx]) == pytest.approx(min(ref, width))
            # Weissman's radius with the same union bound over the H S A B cells as the rewards
            rad = np.sqrt(2 * (S * np.log(2) + np.log(H * S * A * B / delta)) / k)
            assert float(b.l1_radius[idx]) == pytest.approx(min(rad, 2.0))
        P_draws, r_draws = model.sample(stats, jax.random.PRNGKey(0), 3)
        np.testing.assert_array_equal(P_draws[2], P)
        np.testing.assert_array_equal(r_draws[1], r)


def test_weissman_radius_covers_the_truth_in_most_cells(game, big_dataset):
    """The L1 radius at delta=0.05 contains the true kernel in (nearly) every visited cell."""
    ds = big_dataset
    model = EmpiricalBonusModel()
    stats = model.update(model.init(H, S, A, B), ds)
    P, _ = model.mean(stats)
    b = model.bonus(stats, 0.05)
    err = np.abs(np.asarray(P) - game.transitions).sum(-1)
    visited = np.asarray(stats.n) > 0
    assert np.mean(err[visited] <= np.asarray(b.l1_radius)[visited]) >= 0.95
    np.testing.assert_allclose(weissman_l1_radius(np.array(0.0), S, 0.05), 2.0)


def test_lsvi_with_one_hot_features_is_ridge_shrunk_empirical_model(dataset):
    psi = np.eye(H * S * A * B).reshape(H, S, A, B, -1)
    model = LinearLSVI(psi, reg=0.5)
    stats = model.update(model.init(H, S, A, B), dataset)
    counts, n, rsum, _, _ = _loop_counts(dataset)
    P, r = model.mean(stats)
    np.testing.assert_allclose(P, counts / (n + 0.5)[..., None], atol=1e-12)
    np.testing.assert_allclose(r, rsum / (n + 0.5), atol=1e-12)


def test_lsvi_planning_equals_least_squares_value_iteration(game, dataset):
    """Backward induction on LSVI's mean model equals LSVI done by explicit regressions."""
    rng = np.random.default_rng(0)
    k = 5
    psi = rng.normal(size=(H, S, A, B, k))
    reg = 0.7
    model = LinearLSVI(psi, reg=reg)
    stats = model.update(model.init(H, S, A, B), dataset)
    P_hat, r_hat = model.mean(stats)
    nu = np.full((H, S, A, B), 1.0 / B)  # any fixed response
    q_model, _ = np_backward_induction(np.asarray(P_hat), np.asarray(r_hat), nu)
    # explicit LSVI: at each h regress y_i = r_i + V_{h+1}(s'_i) on psi_i (ridge via lstsq)
    v_next = np.zeros(S)
    q_lsvi = np.zeros((H, S, A))
    for h in reversed(range(H)):
        X, y = [], []
        for t in range(dataset.n_episodes):
            s, a, b = (
                dataset.states[t, h],
                dataset.leader_actions[t, h],
                dataset.follower_actions[t, h],
            )
            X.append(psi[h, s, a, b])
            y.append(dataset.rewards[t, h] + v_next[dataset.states[t, h + 1]])
        X = np.vstack([np.array(X), np.sqrt(reg) * np.eye(k)])
        y = np.concatenate([np.array(y), np.zeros(k)])
        w = np.linalg.lstsq(X, y, rcond=None)[0]
        q_lsvi[h] = np.einsum("sab,sab->sa", nu[h], psi[h] @ w)
        v_next = q_lsvi[h].max(1)
    np.testing.assert_allclose(q_model, q_lsvi, atol=1e-10)


@pytest.mark.slow
def test_lsvi_bonus_and_samples(dataset):
    rng = np.random.default_rng(1)
    k = 4
    psi = rng.normal(size=(H, S, A, B, k))
    model = LinearLSVI(psi, reg=1.0, bonus_scale=0.5)
    stats = model.update(model.init(H, S, A, B), dataset)
    b = model.bonus(stats, 0.1)
    lam = np.asarray(stats.gram) + np.eye(k)
    n = dataset.n_episodes
    beta = 0.5 * (1.0 + np.sqrt(k * np.log(1 + n / k) + 2 * np.log(10)))
    for h in range(H):
        ref = beta * np.sqrt(np.einsum("sabk,kl,sabl->sab", psi[h], np.linalg.inv(lam[h]), psi[h]))
        np.testing.assert_allclose(b.reward[h], ref, rtol=1e-10)
    np.testing.assert_array_equal(b.l1_radius, 0.0)
    _, r_draws = model.sample(stats, jax.random.PRNGKey(2), 3000)
    _, r_mean = model.mean(stats)
    # reward draws: mean r_hat, covariance psi' Lambda^{-1} psi per cell
    sd_ref = np.sqrt(np.einsum("hsabk,hkl,hsabl->hsab", psi, np.linalg.inv(lam), psi))
    np.testing.assert_allclose(np.asarray(r_draws).std(0), sd_ref, rtol=0.1)
    z = (np.asarray(r_draws).mean(0) - r_mean) / (sd_ref / np.sqrt(3000))
    assert np.abs(z).max() < 5.0


def test_bonuses_shrink_with_more_data(game, dataset, big_dataset):
    small, large = dataset, big_dataset
    for model in (DirichletNormalModel(), EmpiricalBonusModel(), LinearLSVI(game.features)):
        b_small = model.bonus(model.update(model.init(H, S, A, B), small), 0.1)
        b_large = model.bonus(model.update(model.init(H, S, A, B), large), 0.1)
        assert float(b_large.reward.mean()) < float(b_small.reward.mean())


def test_known_model_is_the_truth(game, dataset):
    model = KnownModel.from_game(game)
    stats = model.update(model.init(H, S, A, B), dataset)
    P, r = model.mean(stats)
    np.testing.assert_array_equal(P, game.transitions)
    P_draws, r_draws = model.sample(stats, jax.random.PRNGKey(0), 2)
    np.testing.assert_array_equal(P_draws[1], game.transitions)
    np.testing.assert_array_equal(r_draws[0], game.leader_reward)
    assert float(np.abs(model.bonus(stats, 0.1).reward).max()) == 0.0


def test_bad_configuration_names_the_field(game):
    with pytest.raises(BayesQSEInputError, match="alpha0"):
        DirichletNormalModel(alpha0=0.0)
    with pytest.raises(BayesQSEInputError, match="kind"):
        EmpiricalBonusModel(kind="chernoff")
    with pytest.raises(BayesQSEInputError, match="reward_range"):
        EmpiricalBonusModel(reward_range=(1.0, 1.0))
    with pytest.raises(BayesQSEInputError, match="features"):
        LinearLSVI(np.zeros((2, 2))).init(H, S, A, B)
    with pytest.raises(BayesQSEInputError, match="features"):
        LinearLSVI(np.zeros((1, 1, 1, 1, 1))).init(H, S, A, B)
    with pytest.raises(BayesQSEInputError, match="delta"):
        DirichletNormalModel().bonus(DirichletNormalModel().init(H, S, A, B), 1.5)
    with pytest.raises(BayesQSEInputError, match="leader_reward"):
        KnownModel(game.transitions, np.zeros((1, 2)))
