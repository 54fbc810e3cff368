"""Simulation-based calibration (bayes_qse.sbc): the rank statistic and the uniformity test
against hand computations, and the SBC check itself: it must pass exact posteriors (a
conjugate Normal model in closed form; the library's Laplace and NUTS posteriors on a small
game with enough data to be near-Gaussian) and flag posteriors with the wrong scale."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from bayes_qse.data import simulate
from bayes_qse.errors import BayesQSEInputError
from bayes_qse.games import random_game
from bayes_qse.inference import sample_posterior
from bayes_qse.samplers import nuts
from bayes_qse.sbc import (
    SBCResult,
    rank_statistic,
    run_sbc,
    uniformity_test,
)


def test_rank_statistic_matches_a_loop():
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(3, 50, 2))
    theta = rng.normal(size=(3, 2))
    got = np.asarray(rank_statistic(jnp.asarray(draws), jnp.asarray(theta)))
    want = np.zeros((3, 2), int)
    for r in range(3):
        for j in range(2):
            for m in range(50):
                want[r, j] += draws[r, m, j] < theta[r, j]
    np.testing.assert_array_equal(got, want)


def test_uniformity_test_by_hand():
    # 40 ranks out of {0..9} (M = 9), 5 bins of two values each, expected 8 per bin.
    ranks = np.array([0] * 10 + [2] * 6 + [4] * 8 + [6] * 8 + [9] * 8)
    res = uniformity_test(ranks, n_draws=9, n_bins=5)
    counts = np.array([10, 6, 8, 8, 8])
    stat = np.sum((counts - 8.0) ** 2 / 8.0)
    np.testing.assert_array_equal(res.counts[:, 0], counts)
    np.testing.assert_allclose(res.chi2_stat[0], stat)
    np.testing.assert_allclose(res.chi2_pvalue[0], stats.chi2.sf(stat, 4))
    # uneven bins: 3 bins over 10 values -> sizes 3, 3, 4 (edges 0, 3, 6, 10)
    res3 = uniformity_test(ranks, n_draws=9, n_bins=3)
    np.testing.assert_allclose(res3.expected, 40 * np.array([3, 3, 4]) / 10)
    assert 0 < res.ks_pvalue[0] <= 1


def test_uniformity_test_rejects_bad_input():
    with pytest.raises(BayesQSEInputError, match="ranks"):
        uniformity_test(np.array([0, 11]), n_draws=10)
    with pytest.raises(BayesQSEInputError, match="n_bins"):
        uniformity_test(np.array([0, 1, 2]), n_draws=2, n_bins=5)


# ---- conjugate Normal model: theta ~ N(0, 1), y_i ~ N(theta, 1), i = 1..n -----------------
D, N_OBS, M = 2, 10, 99


def _prior(key, R):
    return jax.random.normal(key, (R, D))


def _simulate(key, theta):
    return theta[:, None, :] + jax.random.normal(key, (theta.shape[0], N_OBS, D))


def _normal_posterior(scale):
    def sample(key, y):
        precision = N_OBS + 1.0  # closed form: N(sum y / (n + 1), 1 / (n + 1))
        mean = y.sum(axis=1) / precision
        z = jax.random.normal(key, (y.shape[0], M, D))
        return mean[:, None, :] + scale * z / np.sqrt(precision)

    return sample


@pytest.mark.parametrize("seed", [0, 1])
def test_sbc_passes_the_exact_conjugate_posterior(seed):
    res = run_sbc(
        jax.random.PRNGKey(seed), _prior, _simulate, _normal_posterior(1.0), 300, batched=True
    )
    assert res.ranks.shape == (300, D) and res.n_draws == M
    assert not res.flagged(0.01).any(), (res.test.chi2_pvalue, res.test.ks_pvalue)


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_sbc_flags_a_posterior_with_the_wrong_scale(scale):
    res = run_sbc(
        jax.random.PRNGKey(0), _prior, _simulate, _normal_posterior(scale), 300, batched=True
    )
    assert res.flagged(0.01).all(), (res.test.chi2_pvalue, res.test.ks_pvalue)


# ---- the library's posteriors on a small game --------------------------------------------
GAME = random_game(5, 2, 2, 3, 2, 2)
UNIFORM = np.full((2, 2, 2), 0.5)
N_EPISODES = 150


@pytest.fixture(scope="module")
def laplace_sbc_draws():
    """``theta[R,d] ~ N(0, I)``, one dataset each, and the library's Laplace posterior:
    ``(theta, map[R,d], draws[R,M,d])``."""
    R = 120
    theta = np.random.default_rng(11).normal(size=(R, 2))
    maps, draws = [], []
    for r in range(R):
        data = simulate(GAME.replace(theta=theta[r]), UNIFORM, N_EPISODES, seed=r)
        post = sample_posterior(data, GAME, method="laplace", num_samples=M, seed=r)
        maps.append(post.map_theta)
        draws.append(post.theta)
    return theta, np.array(maps), np.array(draws)


def test_sbc_passes_the_laplace_posterior_and_flags_broken_ones(laplace_sbc_draws):
    theta, maps, draws = laplace_sbc_draws

    def test_for(scale):
        scaled = maps[:, None, :] + scale * (draws - maps[:, None, :])
        return SBCResult(
            ranks := np.asarray(rank_statistic(jnp.asarray(scaled), jnp.asarray(theta))),
            M,
            uniformity_test(ranks, M),
        )

    good = test_for(1.0)
    assert not good.flagged(0.01).any(), (good.test.chi2_pvalue, good.test.ks_pvalue)
    for scale in (0.5, 2.0):
        bad = test_for(scale)
        assert bad.flagged(0.01).any(), (scale, bad.test.chi2_pvalue, bad.test.ks_pvalue)


@pytest.mark.slow
def test_sbc_passes_vectorised_nuts_on_the_game_posterior():
    from bayes_qse.profile import (
        log_posterior_from_counts,
        nuts_data,
        simulate_counts,
    )

    R = 120
    key = jax.random.PRNGKey(3)
    k_theta, k_data, k_nuts = jax.random.split(key, 3)
    theta = jax.random.normal(k_theta, (R, 2))
    counts = simulate_counts(GAME, UNIFORM, jax.random.split(k_data, R), N_EPISODES, theta=theta)
    data = nuts_data(counts, GAME.features, GAME.eta, 1.0)
    out = nuts(
        k_nuts,
        log_posterior_from_counts,
        jnp.zeros((R, 2)),
        data,
        num_warmup=150,
        num_samples=300,
        batched=True,
        dense_mass=True,
    )
    assert out.draws.shape == (R, 1, 300, 2)
    assert out.diverging.sum() == 0
    draws = out.draws[:, 0, ::3]
    ranks = np.asarray(rank_statistic(jnp.asarray(draws), theta))
    good = uniformity_test(ranks, draws.shape[1])
    assert good.chi2_pvalue.min() > 0.005 and good.ks_pvalue.min() > 0.005, good
    # the same draws squeezed around their mean: a posterior half as wide is flagged
    mean = draws.mean(axis=1, keepdims=True)
    squeezed = mean + 0.5 * (draws - mean)
    bad = uniformity_test(np.asarray(rank_statistic(jnp.asarray(squeezed), theta)), draws.shape[1])
    assert min(bad.chi2_pvalue.min(), bad.ks_pvalue.min()) < 0.001, bad
