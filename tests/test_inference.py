"""Tests for bayes_qse.inference: MLE vs statsmodels, MAP/Laplace identities, NUTS vs an exact
grid posterior, simulation-based calibration, ArviZ round trip, identifiability detection."""

from __future__ import annotations

import itertools
import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import xarray as xr
from reference import np_follower_response, np_logsumexp

from bayes_qse.data import Episode, buffer_add, buffer_from_dataset, buffer_init, simulate
from bayes_qse.errors import BayesQSEInputError
from bayes_qse.games import Game, random_game, steering_game
from bayes_qse.identification import IdentifiabilityWarning, constant_feature_directions
from bayes_qse.inference import _log_density, fit_mle, sample_posterior
from bayes_qse.likelihood import map_core
from bayes_qse.model import Model
from bayes_qse.summary import fit_summary

# ---------------------------------------------------------------------------------------
# Independent NumPy references
# ---------------------------------------------------------------------------------------


def np_counts(game, data):
    H, S, A, B = game.shape
    n = np.zeros((H, S, A, B))
    for t in range(data.n_episodes):
        for h in range(H):
            n[h, data.states[t, h], data.leader_actions[t, h], data.follower_actions[t, h]] += 1
    return n


def np_myopic_loglik(game, counts, theta):
    """Eq. (4) for a myopic follower on a batch of ``theta[..., d]`` (NumPy, log-sum-exp)."""
    z = game.eta * np.einsum("hsabd,...d->...hsab", game.features, theta)
    m = z.max(axis=-1, keepdims=True)
    log_nu = z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))
    return np.einsum("...hsab,hsab->...", log_nu, counts)


def np_farsighted_loglik(game, data, theta):
    u = np.einsum("hsabd,d->hsab", game.features, theta)
    total = 0.0
    for t in range(data.n_episodes):
        nu = np_follower_response(game.transitions, u, game.eta, data.policies[t], True)
        for h in range(game.horizon):
            s, a, b = data.states[t, h], data.leader_actions[t, h], data.follower_actions[t, h]
            total += np.log(nu[h, s, a, b])
    return total


def np_myopic_fisher(game, counts, theta):
    """Observed information of eq. (4), myopic: ``sum_hsa n_hsa eta^2 Cov_nu(phi_hsa.)``."""
    H, S, A, B = counts.shape
    info = np.zeros((game.feature_dim, game.feature_dim))
    for h, s, a in itertools.product(range(H), range(S), range(A)):
        phi = game.features[h, s, a]
        z = game.eta * phi @ theta
        nu = np.exp(z - np_logsumexp(z))
        mean = nu @ phi
        cov = (phi - mean).T @ (nu[:, None] * (phi - mean))
        info += counts[h, s, a].sum() * game.eta**2 * cov
    return info


def _scipy_argmax(loglik, d):
    """BFGS (numerical gradients) on a NumPy log-likelihood; the maximiser."""
    res = scipy.optimize.minimize(
        lambda th: -loglik(th), np.zeros(d), method="BFGS", options={"gtol": 1e-9}
    )
    return res.x


@pytest.fixture(scope="module")
def myopic():
    g = random_game(
        11, n_states=3, n_leader_actions=2, n_follower_actions=3, horizon=3, feature_dim=3, eta=1.3
    )
    H, S, A, _ = g.shape
    pi = np.random.default_rng(1).dirichlet(np.ones(A), size=(H, S))
    return g, simulate(g, pi, 300, seed=4)


# ---------------------------------------------------------------------------------------
# MLE
# ---------------------------------------------------------------------------------------


def test_mle_matches_statsmodels_conditional_logit(myopic):
    from statsmodels.discrete.conditional_models import ConditionalLogit

    g, data = myopic
    H, S, A, B = g.shape
    exog, endog, groups = [], [], []
    for t in range(data.n_episodes):
        for h in range(H):
            s, a, b = data.states[t, h], data.leader_actions[t, h], data.follower_actions[t, h]
            for bb in range(B):
                exog.append(g.eta * g.features[h, s, a, bb])
                endog.append(float(bb == b))
                groups.append(t * H + h)
    sm = ConditionalLogit(np.array(endog), np.array(exog), groups=np.array(groups)).fit(
        method="bfgs", maxiter=1000, gtol=1e-12
    )
    fit = fit_mle(data, g)
    assert fit.converged
    np.testing.assert_allclose(fit.theta, sm.params, rtol=1e-4)
    np.testing.assert_allclose(fit.std_err, sm.bse, rtol=1e-4)
    np.testing.assert_allclose(fit.log_likelihood, sm.llf, rtol=1e-8)
    np.testing.assert_allclose(fit.cov, np.linalg.inv(fit.fisher), rtol=1e-10)
    assert fit.non_identified == []


def test_farsighted_mle_matches_scipy_on_numpy_likelihood():
    g = random_game(2, 2, 2, 2, 2, 2, eta=1.0, farsighted=True)
    H, S, A, _ = g.shape
    pols = np.random.default_rng(0).dirichlet(np.ones(A), size=(16, H, S))
    data = simulate(g, pols, 16, seed=0)
    ref = scipy.optimize.minimize(
        lambda th: -np_farsighted_loglik(g, data, th),
        np.zeros(2),
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 5000},
    )
    fit = fit_mle(data, g)
    np.testing.assert_allclose(fit.theta, ref.x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fit.log_likelihood, -ref.fun, rtol=1e-10)
    # the game's bare Model gives the same fit
    bare = fit_mle(data, Model(g.features, g.eta, g.transitions, farsighted=True))
    np.testing.assert_allclose(bare.theta, fit.theta, rtol=1e-10)


def test_map_flat_prior_equals_mle_and_laplace_cov_is_inverse_fisher(myopic):
    """Flat-prior Laplace: the MAP is scipy's maximiser of the NumPy likelihood (4) and the
    covariance is the inverse of the closed-form information ``sum n eta^2 Cov_nu(phi)``."""
    g, data = myopic
    counts = np_counts(g, data)
    ref = _scipy_argmax(lambda th: np_myopic_loglik(g, counts, th), g.feature_dim)
    lap = sample_posterior(data, g, method="laplace", prior="flat", num_samples=20_000, seed=3)
    np.testing.assert_allclose(lap.map_theta, ref, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(fit_mle(data, g).theta, ref, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(
        lap.cov, np.linalg.inv(np_myopic_fisher(g, counts, lap.map_theta)), rtol=1e-6
    )
    # the draws follow N(map, cov): moments within Monte Carlo error
    se = np.sqrt(np.diag(lap.cov) / lap.n_draws)
    assert np.all(np.abs(lap.mean - lap.map_theta) < 5 * se)
    np.testing.assert_allclose(lap.sd, np.sqrt(np.diag(lap.cov)), rtol=0.03)


def _potential(farsighted, model_args):
    """``theta -> U(theta) = -log density`` sampled by NUTS (flat prior: precision 0);
    ``model_args = (features, transitions, eta, stats, precision, log_eta_mean, sd)``."""
    log_density = _log_density(None)
    features, transitions, eta, stats, *rest = model_args
    model = Model(features, eta, transitions if farsighted else None, farsighted=farsighted)
    args = jax.tree_util.tree_map(jnp.asarray, (model, stats, *rest))
    return lambda th: -log_density(th, args)


def _minimise_potential(potential, d):
    """scipy BFGS on NumPyro's potential, gradients by jax.grad of that potential."""
    f = jax.jit(potential)
    grad = jax.jit(jax.grad(potential))
    res = scipy.optimize.minimize(
        lambda th: float(f(jnp.asarray(th))),
        np.zeros(d),
        jac=lambda th: np.asarray(grad(jnp.asarray(th))),
        method="BFGS",
        options={"gtol": 1e-11, "maxiter": 2000},
    )
    return res.x


def test_nuts_log_density_flat_prior_minimiser_is_the_mle_myopic(myopic):
    """The density NUTS samples: under a flat prior its potential is -L of eq. (4) (checked
    against the NumPy likelihood; a wrong sign or a prior term left in fails) and its minimiser
    is fit_mle's theta."""
    g, data = myopic
    counts = np_counts(g, data)
    P0 = np.zeros(g.transitions.shape)
    potential = _potential(False, (g.features, P0, g.eta, counts, 0.0, 0.0, 1.0))
    th = np.random.default_rng(5).normal(size=g.feature_dim)
    np.testing.assert_allclose(float(potential(th)), -np_myopic_loglik(g, counts, th), rtol=1e-12)
    np.testing.assert_allclose(
        _minimise_potential(potential, g.feature_dim), fit_mle(data, g).theta, atol=1e-6
    )


def test_nuts_log_density_flat_prior_minimiser_is_the_mle_farsighted():
    g = random_game(2, 2, 2, 2, 2, 2, eta=1.0, farsighted=True)
    H, S, A, _ = g.shape
    pols = np.random.default_rng(0).dirichlet(np.ones(A), size=(16, H, S))
    data = simulate(g, pols, 16, seed=0)
    buf = buffer_from_dataset(data, 32)  # spare capacity: masked slots must not count
    potential = _potential(True, (g.features, g.transitions, g.eta, buf, 0.0, 0.0, 1.0))
    th = np.array([0.4, -0.9])
    np.testing.assert_allclose(float(potential(th)), -np_farsighted_loglik(g, data, th), rtol=1e-12)
    np.testing.assert_allclose(_minimise_potential(potential, 2), fit_mle(data, g).theta, atol=1e-6)


def test_map_normal_prior_matches_scipy(myopic):
    g, data = myopic
    counts = np_counts(g, data)
    sigma = 0.5
    ref = scipy.optimize.minimize(
        lambda th: -np_myopic_loglik(g, counts, th) + 0.5 * th @ th / sigma**2,
        np.zeros(3),
        method="BFGS",
        options={"gtol": 1e-9},
    )
    lap = sample_posterior(data, g, method="laplace", prior_scale=sigma, num_samples=10)
    np.testing.assert_allclose(lap.map_theta, ref.x, rtol=1e-5, atol=1e-7)


def test_map_core_on_growing_buffer_does_not_recompile(myopic):
    g, data = myopic
    H, S, A, _ = g.shape
    traces = []

    @jax.jit
    def update(buf, episode, theta):
        traces.append(1)
        buf = buffer_add(buf, episode)
        theta, _, neg_h, _, _ = map_core(Model(g.features, g.eta), buf, 1.0, theta, 30)
        return buf, theta, neg_h

    buf = buffer_init(32, H, S, A)
    theta = jnp.zeros(3)
    for t in range(20):
        ep = Episode(
            data.states[t],
            data.leader_actions[t],
            data.follower_actions[t],
            data.rewards[t],
            data.policies[t],
        )
        buf, theta, neg_h = update(buf, ep, theta)
    assert len(traces) == 1
    # the MAP on those 20 episodes under the N(0, I) prior, by scipy on the NumPy likelihood,
    # and the closed-form information plus the prior precision
    counts = np_counts(g, data.subset(slice(0, 20)))
    ref = _scipy_argmax(lambda th: np_myopic_loglik(g, counts, th) - 0.5 * th @ th, 3)
    np.testing.assert_allclose(theta, ref, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(neg_h, np_myopic_fisher(g, counts, ref) + np.eye(3), rtol=1e-6)


# ---------------------------------------------------------------------------------------
# Identifiability
# ---------------------------------------------------------------------------------------


def test_constant_feature_direction_is_detected(myopic):
    g, data = myopic
    phi = np.concatenate([g.features, np.ones(g.features.shape[:4] + (1,))], axis=-1)
    g4 = Game(g.transitions, g.leader_reward, phi, np.append(g.theta, 0.7), g.eta, g.initial_dist)
    assert len(constant_feature_directions(phi)) == 1
    with pytest.warns(IdentifiabilityWarning, match=r"coordinate\(s\) \[3\]"):
        fit = fit_mle(data, g4)
    assert len(fit.non_identified) == 1
    np.testing.assert_allclose(np.abs(fit.non_identified[0]), [0, 0, 0, 1], atol=1e-8)
    assert np.isinf(fit.std_err[3]) and np.all(np.isfinite(fit.std_err[:3]))
    ok = fit_mle(data, g)
    np.testing.assert_allclose(fit.theta[:3], ok.theta, rtol=1e-6)
    with pytest.raises(BayesQSEInputError, match="not positive definite"):
        sample_posterior(data, g4, method="laplace", prior="flat")
    lap = sample_posterior(data, g4, method="laplace", prior="normal", num_samples=50)
    assert np.isfinite(lap.cov).all()


def test_farsighted_follower_identifies_some_constant_directions():
    """In the steering game every feature is constant across b at each step.  With one-hot
    (h, s, a) features (d = 12) a farsighted follower reveals some directions through later
    values (3, see steering_game's docstring), a myopic one none; the game's own coding keeps
    exactly the 3 identified ones, all revealed (no warning)."""
    g = steering_game()
    H, S, A, B = g.shape
    onehot = np.zeros((H, S, A, B, H * S * A))
    for h, s, a in np.ndindex(H, S, A):
        onehot[h, s, a, :, (h * S + s) * A + a] = 1.0
    u = np.einsum("hsabd,d->hsab", g.features, g.theta)
    wide = g.replace(features=onehot, theta=np.einsum("hsabd,hsab->d", onehot, u) / B)
    pols = np.random.default_rng(0).dirichlet(np.ones(A), size=(64, H, S))
    data = simulate(wide, pols, 64, seed=0)
    n_const = len(constant_feature_directions(wide.features))
    assert n_const == wide.feature_dim
    with pytest.warns(IdentifiabilityWarning, match="farsighted follower reveals"):
        far = fit_mle(data, wide)
    assert len(far.non_identified) == n_const - 3
    with pytest.warns(IdentifiabilityWarning):
        myo = fit_mle(data, wide.replace(farsighted=False))
    assert len(myo.non_identified) == n_const
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentifiabilityWarning)
        own = fit_mle(simulate(g, pols, 64, seed=0), g)
    assert len(own.non_identified) == 0 and np.linalg.matrix_rank(own.fisher) == 3


# ---------------------------------------------------------------------------------------
# NUTS, SBC, ArviZ
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_dim():
    g = random_game(7, 2, 2, 3, 2, 2, eta=1.0)
    H, S, A, _ = g.shape
    data = simulate(g, np.full((H, S, A), 0.5), 25, seed=2)
    return g, data


@pytest.mark.slow
def test_nuts_matches_exact_grid_posterior(two_dim, tmp_path):
    g, data = two_dim
    counts = np_counts(g, data)
    sigma = 1.0
    grid = np.linspace(-4, 4, 321)
    T0, T1 = np.meshgrid(grid, grid, indexing="ij")
    pts = np.stack([T0, T1], axis=-1)
    logp = np_myopic_loglik(g, counts, pts) - 0.5 * (pts**2).sum(-1) / sigma**2
    w = np.exp(logp - logp.max())
    w /= w.sum()
    assert w[0].sum() + w[-1].sum() + w[:, 0].sum() + w[:, -1].sum() < 1e-8  # grid covers it
    mean = np.einsum("ij,ijk->k", w, pts)
    sd = np.sqrt(np.einsum("ij,ijk->k", w, (pts - mean) ** 2))
    post = sample_posterior(
        data, g, method="nuts", num_samples=1000, num_warmup=500, seed=1, num_chains=2
    )
    ess = post.diagnostics["ess"]
    assert post.diagnostics["divergences"] == 0 and np.all(post.diagnostics["r_hat"] < 1.01)
    assert np.all(np.abs(post.mean - mean) < 4 * sd / np.sqrt(ess))
    # sd of a sample sd ~ sd / sqrt(2 ess)
    assert np.all(np.abs(post.sd - sd) < 4 * sd / np.sqrt(2 * ess) + 1e-3)
    assert post.theta.shape == (2000, 2)
    tree = post.to_arviz()
    assert list(tree["posterior"]["theta"].dims) == ["chain", "draw", "feature"]
    np.testing.assert_array_equal(tree["posterior"]["theta"].values, post.chains())
    assert int(tree["sample_stats"]["diverging"].sum()) == 0
    tree.to_netcdf(tmp_path / "nuts.nc")
    back = xr.open_datatree(tmp_path / "nuts.nc")
    np.testing.assert_array_equal(back["posterior"]["theta"].values, post.chains())


def test_arviz_round_trip(two_dim, tmp_path):
    g, data = two_dim
    post = sample_posterior(data, g, method="laplace", num_samples=300, seed=0)
    tree = post.to_arviz()
    assert list(tree["posterior"]["theta"].dims) == ["chain", "draw", "feature"]
    path = tmp_path / "post.nc"
    tree.to_netcdf(path)
    back = xr.open_datatree(path)
    np.testing.assert_array_equal(back["posterior"]["theta"].values[0], post.theta)
    np.testing.assert_array_equal(back["posterior"]["feature"].values, [0, 1])
    assert back["posterior"].attrs["inference_method"] == "laplace"


@pytest.mark.slow
def test_laplace_simulation_based_calibration():
    """SBC (Talts et al. 2018): ranks of the true theta among posterior draws are uniform."""
    from scipy import stats

    g0 = random_game(21, 2, 2, 3, 3, 2, eta=1.0)
    H, S, A, _ = g0.shape
    pi = np.full((H, S, A), 0.5)
    rng = np.random.default_rng(0)
    n_rep, n_draws = 200, 19
    ranks = np.zeros((n_rep, 2), int)
    for k in range(n_rep):
        theta = rng.normal(size=2)
        g = g0.replace(theta=theta)
        data = simulate(g, pi, 40, seed=k)
        post = sample_posterior(data, g, method="laplace", num_samples=n_draws, seed=k)
        ranks[k] = (post.theta < theta).sum(axis=0)
    for j in range(2):
        hist = np.bincount(ranks[:, j], minlength=n_draws + 1)
        p = stats.chisquare(hist).pvalue
        assert p > 1e-3, (j, hist)


# ---------------------------------------------------------------------------------------
# Command-line summary and bad input
# ---------------------------------------------------------------------------------------


def test_fit_summary_keys_and_json(two_dim):
    g, data = two_dim
    mle = fit_summary(data, g, "mle")
    assert set(mle) == {"theta", "cov", "log_likelihood", "std_err", "converged", "warnings"}
    assert mle["converged"] is True
    assert np.allclose(mle["theta"], fit_mle(data, g).theta)
    lap = fit_summary(data, g, "laplace", num_samples=50)
    assert set(lap) == {"mean", "sd", "warnings"} and len(lap["mean"]) == 2
    for out in (mle, lap):
        json.loads(json.dumps(out, allow_nan=False))
    with pytest.raises(BayesQSEInputError, match="method"):
        fit_summary(data, g, "svi")


@pytest.mark.slow
def test_fit_summary_nuts(two_dim):
    g, data = two_dim
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nuts = fit_summary(data, g, "nuts", num_samples=100, num_warmup=50)
    assert set(nuts) == {"mean", "sd", "r_hat", "ess", "warnings"} and len(nuts["r_hat"]) == 2
    json.loads(json.dumps(nuts, allow_nan=False))


def test_bad_input_names_the_field(two_dim, myopic):
    g, data = two_dim
    with pytest.raises(BayesQSEInputError, match="game"):
        fit_mle(data, g.features)
    with pytest.raises(BayesQSEInputError, match="eta"):
        fit_mle(data, Model(g.features, -1.0))
    with pytest.raises(BayesQSEInputError, match="transitions"):
        fit_mle(data, Model(g.features, 1.0, farsighted=True))
    with pytest.raises(BayesQSEInputError, match="policies"):
        fit_mle(myopic[1], g)
    with pytest.raises(BayesQSEInputError, match="theta0"):
        fit_mle(data, g, theta0=np.zeros(5))
    with pytest.raises(BayesQSEInputError, match="prior"):
        sample_posterior(data, g, method="laplace", prior="cauchy")
    with pytest.raises(BayesQSEInputError, match="num_samples"):
        sample_posterior(data, g, method="laplace", num_samples=0)
    with pytest.raises(BayesQSEInputError, match="^chain_method"):
        sample_posterior(data, g, chain_method="threads")


def test_separated_data_warns_not_converged():
    """Every episode picks the follower action with the larger feature: the MLE is at
    infinity.  The fit says so (a RuntimeWarning, the docstring's promise; converged False;
    std_err inf).  Bug caught: Newton's false convergence on a flat tail reported as a fit."""
    g = random_game(0, 1, 1, 2, 1, 1, eta=1.0)
    H, S, A, _ = g.shape
    data = simulate(g, np.ones((H, S, A)), 3, seed=0)
    # force every follower action to the one with the larger feature: the MLE is at infinity
    phi = np.asarray(g.features)[0, 0, 0, :, 0]
    best = int(np.argmax(phi))
    data = type(data)(
        data.states,
        data.leader_actions,
        np.full_like(data.follower_actions, best),
        data.rewards,
        data.policies,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IdentifiabilityWarning)
        with pytest.warns(RuntimeWarning, match="MLE does not exist"):
            fit = fit_mle(data, g, max_steps=20)
    assert not fit.converged and fit.separation.kind == "complete"
    assert np.all(np.isinf(fit.std_err)) and fit.log_likelihood == 0.0


def test_laplace_draws_moments_and_jit():
    from bayes_qse.inference import laplace_draws

    prec = np.array([[2.0, 0.5], [0.5, 1.0]])
    mu = np.array([0.3, -1.0])
    key = jax.random.key(0)
    draws = np.asarray(laplace_draws(key, jnp.asarray(mu), jnp.asarray(prec), 40_000))
    jitted = jax.jit(laplace_draws, static_argnames="num_samples")
    np.testing.assert_allclose(jitted(key, mu, prec, num_samples=40_000), draws, rtol=1e-12)
    np.testing.assert_allclose(draws.mean(0), mu, atol=0.02)
    np.testing.assert_allclose(np.cov(draws, rowvar=False), np.linalg.inv(prec), atol=0.02)


@pytest.mark.slow
def test_nuts_with_unknown_eta_recovers_it():
    """eta unknown with theta[0] = 1 (docs/math.md §1.3): the posterior covers the true eta."""
    g = random_game(3, 3, 2, 3, 3, 2, eta=2.0).replace(theta=np.array([1.0, -0.5]))
    H, S, A, _ = g.shape
    data = simulate(g, np.full((H, S, A), 0.5), 300, seed=0)
    post = sample_posterior(data, g, eta_unknown=True, num_samples=600, num_warmup=300, seed=0)
    assert np.all(post.theta[:, 0] == 1.0) and post.eta.shape == (600,)
    lo, hi = np.quantile(post.eta, [0.005, 0.995])
    assert lo < 2.0 < hi and hi - lo < 1.5
    lo, hi = np.quantile(post.theta[:, 1], [0.005, 0.995])
    assert lo < -0.5 < hi
    assert "eta" in post.to_arviz()["posterior"]
    with pytest.raises(BayesQSEInputError, match="nuts"):
        sample_posterior(data, g, eta_unknown=True, method="laplace")
