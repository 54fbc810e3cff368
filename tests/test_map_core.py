"""The one MAP core (``likelihood.map_core``) on every statistics type and the one posterior
builder (``posterior.nuts_posterior`` / ``laplace_posterior``) with its ``Diagnostics``.

Golden values: SciPy's BFGS on NumPy log-likelihoods written with loops (tests/reference.py),
and split R-hat written from its formula (Gelman et al., BDA3 §11.4) in NumPy.
"""

from __future__ import annotations

import itertools
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from reference import np_follower_response, np_logsumexp

from bayes_qse.data import simulate
from bayes_qse.games import random_game
from bayes_qse.inference import map_newton
from bayes_qse.likelihood import map_core
from bayes_qse.model import Model
from bayes_qse.policy_stats import policy_stats_from_dataset
from bayes_qse.posterior import (
    Diagnostics,
    PosteriorDiagnosticsWarning,
    laplace_posterior,
    nuts_posterior,
)


def _bfgs_argmax(objective, d):
    res = scipy.optimize.minimize(
        lambda th: -objective(th), np.zeros(d), method="BFGS", options={"gtol": 1e-10}
    )
    return res.x


def _fd_hessian(f, x, h=1e-4):
    """Central second differences of a NumPy function."""
    d = x.size
    out = np.zeros((d, d))
    for i, j in itertools.product(range(d), range(d)):
        ei, ej = np.eye(d)[i] * h, np.eye(d)[j] * h
        out[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (
            4 * h * h
        )
    return out


def _np_episode_loglik(game, data, theta):
    """Eq. (4) episode by episode, one loop recursion of eq. (1) each (no grouping)."""
    u = np.einsum("hsabd,d->hsab", np.asarray(game.features), theta)
    total = 0.0
    for t in range(data.n_episodes):
        nu = np_follower_response(
            np.asarray(game.transitions), u, float(game.eta), data.policies[t], True
        )
        for h in range(game.shape[0]):
            s, a, b = data.states[t, h], data.leader_actions[t, h], data.follower_actions[t, h]
            total += np.log(nu[h, s, a, b])
    return total


def test_map_core_on_per_policy_statistics_is_the_farsighted_map():
    """map_core on PolicyStats (eq. 4') of a farsighted follower = BFGS on the episode-loop
    log-posterior, and its neg_hessian = the finite-difference one plus the prior.  Fails if
    log_likelihood does not dispatch on PolicyStats (it would read them as counts or raise),
    if the scalar prior is dropped or doubled, or if the Hessian returned is not at theta."""
    game = random_game(4, 3, 2, 3, 3, 2, eta=1.5, farsighted=True)
    H, S, A, _ = game.shape
    rng = np.random.default_rng(2)
    pols = rng.dirichlet(np.ones(A), size=(3, H, S))
    data = simulate(game, pols[[0, 1, 1, 2, 0, 2, 1, 0]], 8, seed=7)
    stats = policy_stats_from_dataset(data, game.shape, max_policies=4)
    lam = 0.7

    def log_post(th):
        return _np_episode_loglik(game, data, th) - 0.5 * lam * th @ th

    ref = _bfgs_argmax(log_post, game.feature_dim)
    theta, _, neg_h, _, converged = map_core(game.model, stats, lam, jnp.zeros(2), 50)
    assert bool(converged)
    np.testing.assert_allclose(theta, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(neg_h, -_fd_hessian(log_post, ref), rtol=1e-4, atol=1e-5)


def _np_myopic_loglik(features, eta, counts, theta):
    H, S, A, B, _ = features.shape
    total = 0.0
    for h, s, a in itertools.product(range(H), range(S), range(A)):
        z = eta * features[h, s, a] @ theta
        total += counts[h, s, a] @ (z - np_logsumexp(z))
    return total


def test_map_core_takes_a_full_prior_precision_matrix():
    """A non-isotropic, correlated prior precision Lambda [d,d]: map_core's MAP = BFGS on
    ``L - theta' Lambda theta / 2``; so does the deprecated map_newton, which also warns.
    Fails if a matrix prior is read as a scalar (or its off-diagonal dropped), or if the
    deprecated front end stops agreeing with the core or stops warning."""
    game = random_game(9, 2, 2, 3, 2, 3, eta=1.2)
    data = simulate(game, np.full((2, 2, 2), 0.5), 15, seed=1)
    counts = np.zeros(game.shape)
    for t, h in itertools.product(range(data.n_episodes), range(game.shape[0])):
        s, a, b = data.states[t, h], data.leader_actions[t, h], data.follower_actions[t, h]
        counts[h, s, a, b] += 1
    lam = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]])
    phi = np.asarray(game.features)

    def log_post(th):
        return _np_myopic_loglik(phi, game.eta, counts, th) - 0.5 * th @ lam @ th

    ref = _bfgs_argmax(log_post, 3)
    model = Model(jnp.asarray(phi), game.eta)
    theta, *_ = map_core(model, jnp.asarray(counts), jnp.asarray(lam), jnp.zeros(3), 50)
    np.testing.assert_allclose(theta, ref, rtol=1e-6, atol=1e-8)
    with pytest.warns(DeprecationWarning, match="map_core"):
        old, _ = map_newton(jnp.asarray(counts), jnp.asarray(phi), None, game.eta, lam, np.zeros(3))
    np.testing.assert_allclose(old, ref, rtol=1e-6, atol=1e-8)


def _np_split_rhat(chains):
    """Split R-hat of ``chains[C, M]`` (BDA3 §11.4): halves as chains, ``sqrt(var+ / W)``."""
    m = chains.shape[1] // 2
    halves = np.concatenate([chains[:, :m], chains[:, -m:]], axis=0)
    w = halves.var(axis=1, ddof=1).mean()
    b_over_n = halves.mean(axis=1).var(ddof=1)
    return np.sqrt(((m - 1) / m * w + b_over_n) / w)


def test_nuts_posterior_diagnostics_with_eta_inferred():
    """nuts_posterior with eta inferred: r_hat of the free coordinates and of eta are split
    R-hat by the formula, the fixed coordinate reports 1 and C*M draws, the badly mixed chain
    warns, and the Diagnostics read as the former dict did.  Fails if the fixed coordinate's
    entry is inserted at the wrong place, if eta's diagnostics are swapped with a theta
    coordinate's, or if the warning is lost."""
    rng = np.random.default_rng(0)
    C, M = 2, 200
    free0 = rng.normal(size=(C, M))  # mixed
    eta = np.exp(rng.normal(size=(C, M)) + np.array([[0.0], [3.0]]))  # not mixed
    chains = np.stack([free0, np.ones((C, M))], axis=-1)  # theta[1] = 1 fixed
    with pytest.warns(PosteriorDiagnosticsWarning) as caught:
        post = nuts_posterior(
            chains,
            np.zeros((C, M), bool),
            "normal",
            1.0,
            eta_chains=eta,
            fixed_coordinate=1,
        )
    diag = post.diagnostics
    assert isinstance(diag, Diagnostics)
    assert any("R-hat" in str(w.message) for w in caught)
    assert any("R-hat" in m for m in diag.warnings)
    np.testing.assert_allclose(diag.r_hat[0], _np_split_rhat(free0), rtol=1e-8)
    assert diag.r_hat[1] == 1.0 and diag.ess[1] == C * M
    np.testing.assert_allclose(diag.r_hat_eta, _np_split_rhat(eta), rtol=1e-8)
    assert diag.r_hat_eta > 1.1 and diag["r_hat_eta"] == diag.r_hat_eta
    assert set(diag) == {"r_hat", "ess", "divergences", "warnings", "r_hat_eta", "ess_eta"}
    assert post.theta.shape == (C * M, 2) and post.eta.shape == (C * M,)


def test_laplace_posterior_diagnostics_are_those_of_independent_draws():
    """Laplace draws are independent: ess = M per coordinate, no R-hat, no divergence, no
    eta keys.  Fails if Laplace reported NUTS-style diagnostics or lost ``ess``."""
    draws = np.random.default_rng(1).normal(size=(50, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        post = laplace_posterior(draws, np.eye(3), np.zeros(3), "flat", 1.0)
    assert post.diagnostics["r_hat"] is None and post.diagnostics.divergences == 0
    np.testing.assert_array_equal(post.diagnostics["ess"], np.full(3, 50.0))
    assert set(post.diagnostics) == {"r_hat", "ess", "divergences", "warnings"}
