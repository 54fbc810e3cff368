"""Tests for bayes_qse.likelihood (eq. 4) against plain NumPy loops over episodes and steps."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import np_follower_response

from bayes_qse.data import buffer_add, buffer_from_dataset, buffer_init, play_episode, simulate
from bayes_qse.games import random_game
from bayes_qse.likelihood import log_likelihood, per_episode_log_likelihood, response_counts


def np_episode_log_likelihoods(game, data, theta):
    """Eq. (4) per episode with loops: log nu^{pi^t}_h(b|s,a) summed over h."""
    u = np.einsum("hsabd,d->hsab", game.features, theta)
    out = np.zeros(data.n_episodes)
    for t in range(data.n_episodes):
        nu = np_follower_response(game.transitions, u, game.eta, data.policies[t], game.farsighted)
        for h in range(game.horizon):
            s, a, b = data.states[t, h], data.leader_actions[t, h], data.follower_actions[t, h]
            out[t] += np.log(nu[h, s, a, b])
    return out


def make(farsighted, n=12, seed=0):
    g = random_game(seed, 3, 2, 3, 3, 2, eta=1.7, farsighted=farsighted)
    H, S, A, _ = g.shape
    pols = np.random.default_rng(seed).dirichlet(np.ones(A), size=(n, H, S))
    return g, simulate(g, pols, n, seed=seed)


@pytest.mark.parametrize("farsighted", [False, True])
def test_log_likelihood_matches_numpy_loops(farsighted):
    g, data = make(farsighted)
    theta = np.array([0.3, -1.1])
    ref = np_episode_log_likelihoods(g, data, theta)
    m = g.model
    per = per_episode_log_likelihood(theta, m, data)
    np.testing.assert_allclose(per, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(log_likelihood(theta, m, data), ref.sum(), rtol=1e-12)
    jitted = jax.jit(log_likelihood)
    buf = buffer_from_dataset(data)
    np.testing.assert_allclose(jitted(theta, m, buf), ref.sum(), rtol=1e-12)


@pytest.mark.parametrize("farsighted", [False, True])
def test_mask_ignores_padding_rows(farsighted):
    g, data = make(farsighted, n=5)
    theta = np.array([-0.4, 0.9])
    m = g.model
    exact = log_likelihood(theta, m, data)
    buf = buffer_from_dataset(data, capacity=9)
    # fill the padding rows with real-looking garbage: it must not count
    buf = buf._replace(
        follower_actions=buf.follower_actions.at[5:].set(2),
        leader_actions=buf.leader_actions.at[5:].set(1),
    )
    np.testing.assert_allclose(log_likelihood(theta, m, buf), exact, rtol=1e-13)
    per = per_episode_log_likelihood(theta, m, buf)
    assert np.all(np.asarray(per[5:]) == 0.0)


def test_growing_buffer_never_recompiles():
    g, _ = make(False)
    H, S, A, B = g.shape
    traces = []

    @partial(jax.jit, static_argnames="farsighted")
    def ll(theta, buf, farsighted):
        traces.append(1)
        return log_likelihood(theta, g.model.replace(farsighted=farsighted), buf)

    pi = np.full((H, S, A), 1.0 / A)
    buf = buffer_init(8, H, S, A)
    theta = jnp.array([0.2, 0.1])
    values = []
    for i in range(5):
        buf = buffer_add(buf, play_episode(g, pi, jax.random.key(i)))
        values.append(float(ll(theta, buf, False)))
    assert len(traces) == 1
    assert values[0] < 0 and np.all(np.diff(values) < 0)  # each episode adds a negative term
    counts = response_counts(buf, (H, S, A, B))
    assert float(counts.sum()) == 5 * H


@pytest.mark.parametrize("farsighted", [False, True])
def test_gradient_matches_central_differences(farsighted):
    g, data = make(farsighted, n=6)
    f = lambda th: log_likelihood(th, g.model, data)
    theta = np.array([0.5, -0.2])
    grad = np.asarray(jax.grad(f)(jnp.asarray(theta)))
    eps = 1e-6
    fd = np.array([(f(theta + eps * e) - f(theta - eps * e)) / (2 * eps) for e in np.eye(2)])
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-7)
