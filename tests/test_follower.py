"""Follower quantal response (eq. 1) against plain-NumPy loops, limits, stability and jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import np_follower_response

import bayes_qse as bq
from bayes_qse.follower import log_response, log_response_from_utility, utility
from bayes_qse.games import random_game


def _random_policy(rng, H, S, A):
    return rng.dirichlet(np.ones(A), size=(H, S))


@pytest.mark.parametrize("farsighted", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_response_matches_numpy_loops(farsighted, seed):
    g = random_game(seed, 3, 2, 3, 4, 5, eta=1.7, farsighted=farsighted)
    pi = _random_policy(np.random.default_rng(seed), 4, 3, 2)
    nu = np.asarray(bq.follower_response(g, pi))
    u = np.einsum("hsabd,d->hsab", g.features, g.theta)
    ref = np_follower_response(g.transitions, u, 1.7, pi, farsighted)
    np.testing.assert_allclose(nu, ref, atol=1e-12)
    np.testing.assert_allclose(nu.sum(-1), 1.0, atol=1e-12)


def test_farsighted_response_depends_on_future_policy_myopic_does_not():
    g = bq.games.steering_game()
    pi_take = np.tile(np.array([1.0, 0.0]), (2, 3, 1))
    pi_give = np.tile(np.array([0.0, 1.0]), (2, 3, 1))
    nu_take = np.asarray(bq.follower_response(g, pi_take))
    nu_give = np.asarray(bq.follower_response(g, pi_give))
    # state 1 gives the follower 0 (take) or 2 (give); state 2 gives 1: sigmoid(eta * diff).
    p_take = 1 / (1 + np.exp(-3.0 * (0.0 - 1.0)))
    p_give = 1 / (1 + np.exp(-3.0 * (2.0 - 1.0)))
    np.testing.assert_allclose(nu_take[0, 0, 0, 0], p_take, atol=1e-12)
    np.testing.assert_allclose(nu_give[0, 0, 0, 0], p_give, atol=1e-12)
    myopic = g.replace(farsighted=False)
    np.testing.assert_allclose(
        bq.follower_response(myopic, pi_take), bq.follower_response(myopic, pi_give)
    )


def test_eta_limits():
    g = random_game(3, 2, 2, 4, 3, 3)
    u = np.asarray(g.utility())
    # the ends of the documented range eta in [1e-6, 1e6] (docs/math.md eq. 1)
    nu_small = np.asarray(bq.follower_response(g.replace(eta=1e-6)))
    np.testing.assert_allclose(nu_small, 0.25, atol=1e-5)
    nu_big = np.asarray(bq.follower_response(g.replace(eta=1e6)))
    best = (u == u.max(-1, keepdims=True)).astype(float)
    np.testing.assert_allclose(nu_big, best / best.sum(-1, keepdims=True), atol=1e-12)


@pytest.mark.parametrize("farsighted", [False, True])
@pytest.mark.parametrize("eta", [1e-3, 1e3])
def test_extreme_eta_and_large_utilities_are_finite(farsighted, eta):
    g = random_game(4, 3, 2, 3, 3, 2, farsighted=farsighted)
    g = g.replace(theta=np.array([1e3, -1e3]) / 3.0, eta=eta)  # |u| up to ~1e3, eta*|u| ~1e6
    pi = _random_policy(np.random.default_rng(0), 3, 3, 2)
    nu = np.asarray(bq.follower_response(g, pi))
    assert np.all(np.isfinite(nu))
    np.testing.assert_allclose(nu.sum(-1), 1.0, atol=1e-12)
    grad = jax.grad(lambda th: jnp.sum(log_response(th, g.model, pi)[..., 0]))(jnp.asarray(g.theta))
    assert np.all(np.isfinite(np.asarray(grad)))


@pytest.mark.parametrize("farsighted", [False, True])
def test_jit_and_eager_agree(farsighted):
    g = random_game(5, 3, 2, 2, 3, 4, farsighted=farsighted)
    pi = jnp.asarray(_random_policy(np.random.default_rng(1), 3, 3, 2))
    u = utility(g.features, g.theta)

    def f(u, pi):
        return log_response_from_utility(u, g.model, pi)

    with jax.disable_jit():
        eager = np.asarray(f(u, pi))
    np.testing.assert_allclose(np.asarray(jax.jit(f)(u, pi)), eager, rtol=1e-13, atol=1e-13)


def test_vmap_over_theta_matches_loop():
    g = random_game(6, 2, 2, 3, 2, 4)
    thetas = np.random.default_rng(0).normal(size=(7, 4))
    batched = np.asarray(jax.vmap(lambda th: bq.follower_response(g, theta=th))(thetas))
    for m in range(7):
        u = np.einsum("hsabd,d->hsab", g.features, thetas[m])
        expected = np_follower_response(g.transitions, u, 1.0)
        np.testing.assert_allclose(batched[m], expected, atol=1e-12)


def test_farsighted_requires_policy_and_validates_it():
    g = random_game(0, 2, 2, 2, 2, 2, farsighted=True)
    with pytest.raises(bq.BayesQSEInputError, match="leader_policy: required"):
        bq.follower_response(g)
    with pytest.raises(bq.BayesQSEInputError, match="leader_policy: expected shape"):
        bq.follower_response(g, np.full((2, 2, 3), 1 / 3))
    with pytest.raises(bq.BayesQSEInputError, match="leader_policy: probabilities must sum"):
        bq.follower_response(g, np.full((2, 2, 2), 0.7))
