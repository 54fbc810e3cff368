"""Tests for bayes_qse.sets: radii, Wald and likelihood-ratio sets, response intervals, credible
sets — against closed forms, brute force and NumPy computations written here."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bayes_qse.data import simulate
from bayes_qse.errors import BayesQSEInputError
from bayes_qse.games import random_game
from bayes_qse.inference import fit_mle, sample_posterior
from bayes_qse.sets import (
    WaldEllipsoid,
    chi2_radius,
    credible_box,
    hpd_region,
    likelihood_ratio_set,
    response_intervals,
    theory_radius,
    wald_ellipsoid,
)


def np_softmax_response(game, theta):
    """nu[..., H,S,A,B] = softmax_b(eta phi . theta) with NumPy."""
    z = game.eta * np.einsum("hsabd,...d->...hsab", game.features, theta)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def np_loglik(game, data, theta):
    nu = np_softmax_response(game, theta)
    total = 0.0
    for t in range(data.n_episodes):
        for h in range(game.horizon):
            s, a, b = data.states[t, h], data.leader_actions[t, h], data.follower_actions[t, h]
            total += np.log(nu[h, s, a, b])
    return total


@pytest.fixture(scope="module")
def fitted():
    g = random_game(4, 2, 2, 3, 2, 2, eta=1.2)
    H, S, A, _ = g.shape
    data = simulate(g, np.full((H, S, A), 0.5), 60, seed=1)
    return g, data, fit_mle(data, g)


def test_chi2_radius_closed_form():
    for level in (0.5, 0.9, 0.95):
        # chi2 with 2 degrees of freedom: F(x) = 1 - exp(-x/2)
        assert chi2_radius(2, level) == pytest.approx(-2 * np.log(1 - level), rel=1e-10)
        # 1 degree of freedom: the squared normal quantile
        assert chi2_radius(1, level) == pytest.approx(stats.norm.ppf(0.5 + level / 2) ** 2)
    with pytest.raises(BayesQSEInputError, match="level"):
        chi2_radius(2, 1.0)
    with pytest.raises(BayesQSEInputError, match="dim"):
        chi2_radius(0, 0.9)


def test_theory_radius_is_conservative_and_monotone():
    r = theory_radius(3, 100, 0.9)
    assert r > chi2_radius(3, 0.9)
    assert theory_radius(3, 1000, 0.9) > r and theory_radius(3, 100, 0.99) > r
    assert theory_radius(4, 100, 0.9) > r


def test_wald_ellipsoid_boundary_and_sampling():
    prec = np.array([[4.0, 1.0], [1.0, 2.0]])
    ell = WaldEllipsoid(np.array([1.0, -1.0]), prec, 3.0)
    lam, vecs = np.linalg.eigh(prec)
    for i in range(2):
        edge = vecs[:, i] * np.sqrt(3.0 / lam[i])
        assert ell.contains(ell.center + 0.999 * edge)
        assert not ell.contains(ell.center + 1.001 * edge)
    pts = ell.sample(seed=0, num_samples=4000, boundary_fraction=0.5)
    d2 = np.einsum("mi,ij,mj->m", pts - ell.center, prec, pts - ell.center)
    assert np.all(ell.contains(pts))
    np.testing.assert_allclose(d2[:2000], 3.0, rtol=1e-10)
    # uniform inside: P(d2 <= radius / 4) = (1/2)^2 for d = 2
    frac = np.mean(d2[2000:] <= 0.75)
    assert abs(frac - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 2000)
    # bounding box half-widths: sqrt(radius * cov_ii)
    np.testing.assert_allclose(ell.half_widths(), np.sqrt(3.0 * np.diag(np.linalg.inv(prec))))


def test_likelihood_ratio_set_matches_numpy_deviance(fitted):
    g, data, fit = fitted
    lr = likelihood_ratio_set(data, g, fit, level=0.9)
    pts = fit.theta + np.array([[0.0, 0.0], [0.3, -0.2], [1.0, 1.0]])
    dev = np.array([2 * (np_loglik(g, data, fit.theta) - np_loglik(g, data, p)) for p in pts])
    np.testing.assert_allclose(lr.deviance(pts), dev, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(lr.contains(pts), dev <= chi2_radius(2, 0.9))
    # near the MLE the LR set and the Wald set agree (quadratic log-likelihood)
    wald = wald_ellipsoid(fit, 0.9)
    close = fit.theta + 0.01 * np.array([1.0, -0.5])
    assert lr.deviance(close[None])[0] == pytest.approx(wald.distance2(close), rel=1e-2)


@pytest.mark.slow
def test_wald_and_lr_coverage_near_nominal():
    g = random_game(8, 2, 2, 3, 2, 2, eta=1.0)
    H, S, A, _ = g.shape
    pi = np.full((H, S, A), 0.5)
    n_rep, level = 150, 0.9
    hits = np.zeros(2)
    for k in range(n_rep):
        data = simulate(g, pi, 150, seed=100 + k)
        fit = fit_mle(data, g)
        hits[0] += wald_ellipsoid(fit, level).contains(g.theta)
        hits[1] += likelihood_ratio_set(data, g, fit, level).contains(g.theta[None])[0]
    tol = 4 * np.sqrt(level * (1 - level) / n_rep)
    assert np.all(np.abs(hits / n_rep - level) < tol), hits / n_rep


def test_chi2_radius_is_scipy_stats_chi2_ppf_bit_for_bit():
    # chi2_radius calls scipy.special (scipy.stats costs a sweep 1 s to import); the Wald
    # radii of published runs must not move by a bit.  Catches: df instead of df / 2, the
    # upper instead of the lower tail (gammainccinv), a float32 detour.
    for dim in (1, 2, 3, 4, 5, 8, 13, 40):
        for level in (0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 1e-6, 1 - 1e-9):
            assert chi2_radius(dim, level) == float(stats.chi2.ppf(level, dim)), (dim, level)


def test_response_intervals_delta_method_matches_numeric_gradient(fitted):
    g, data, fit = fitted
    lo, hi = response_intervals(g, fit, level=0.9, method="delta")
    eps = 1e-6
    grads = np.stack(
        [
            (
                np_softmax_response(g, fit.theta + eps * e)
                - np_softmax_response(g, fit.theta - eps * e)
            )
            / (2 * eps)
            for e in np.eye(2)
        ],
        axis=-1,
    )
    sd = np.sqrt(np.einsum("...i,ij,...j->...", grads, fit.cov, grads))
    nu = np_softmax_response(g, fit.theta)
    z = stats.norm.ppf(0.95)
    np.testing.assert_allclose(lo, np.clip(nu - z * sd, 0, 1), atol=1e-8)
    np.testing.assert_allclose(hi, np.clip(nu + z * sd, 0, 1), atol=1e-8)


def test_response_intervals_sampling_matches_brute_force_in_one_dimension():
    g = random_game(9, 2, 2, 3, 2, 1, eta=1.5)
    H, S, A, _ = g.shape
    data = simulate(g, np.full((H, S, A), 0.5), 40, seed=0)
    fit = fit_mle(data, g)
    lo, hi = response_intervals(g, fit, level=0.95, method="sampling", num_samples=2000)
    half = np.sqrt(chi2_radius(1, 0.95) / fit.fisher[0, 0])
    grid = np.linspace(fit.theta[0] - half, fit.theta[0] + half, 4001)[:, None]
    nu = np_softmax_response(g, grid)
    np.testing.assert_allclose(lo, nu.min(axis=0), atol=1e-3)
    np.testing.assert_allclose(hi, nu.max(axis=0), atol=1e-3)
    assert np.all(lo <= hi)


def test_response_intervals_from_posterior_draws(fitted):
    g, data, _ = fitted
    post = sample_posterior(data, g, method="laplace", num_samples=500, seed=2)
    lo, hi = response_intervals(g, post, level=0.8, method="sampling")
    nu = np_softmax_response(g, post.theta)
    np.testing.assert_allclose(lo, np.quantile(nu, 0.1, axis=0), rtol=1e-10)
    np.testing.assert_allclose(hi, np.quantile(nu, 0.9, axis=0), rtol=1e-10)
    dlo, dhi = response_intervals(g, post, level=0.8, method="delta")
    assert np.all(dlo <= dhi) and np.max(np.abs(dlo - lo)) < 0.05


def test_response_intervals_bad_input(fitted):
    g, _, fit = fitted
    with pytest.raises(BayesQSEInputError, match="method"):
        response_intervals(g, fit, method="bootstrap")
    with pytest.raises(BayesQSEInputError, match="game"):
        response_intervals(g.replace(farsighted=True), fit)
    with pytest.raises(BayesQSEInputError, match="level"):
        response_intervals(g, fit, level=1.5)


def test_credible_box_and_hpd_region():
    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.6], [0.6, 2.0]])
    draws = rng.multivariate_normal([0.5, -1.0], cov, size=20_000)
    lo, hi = credible_box(draws, 0.9)
    np.testing.assert_allclose(lo, np.percentile(draws, 5, axis=0))
    np.testing.assert_allclose(hi, np.percentile(draws, 95, axis=0))
    region = hpd_region(draws, 0.9)
    # for a Gaussian the HPD region is the chi-square ellipsoid
    assert region.threshold == pytest.approx(chi2_radius(2, 0.9), rel=0.05)
    fresh = rng.multivariate_normal([0.5, -1.0], cov, size=20_000)
    assert abs(region.contains(fresh).mean() - 0.9) < 0.01
    assert region.contains(np.array([0.5, -1.0]))
    with pytest.raises(BayesQSEInputError, match="draws"):
        hpd_region(draws[:3], 0.9)


def test_chi2_degrees_of_freedom_are_the_fisher_rank():
    """A Fisher information of rank 2 in d = 3 gives the chi2_2 radius (scipy), not chi2_3:
    the set is calibrated on the directions the data identify.  Bug caught: dof = d."""
    from types import SimpleNamespace

    from scipy import stats as st

    from bayes_qse.sets import fisher_rank, wald_ellipsoid

    fit = SimpleNamespace(theta=np.zeros(3), fisher=np.diag([2.0, 1.0, 0.0]))
    assert fisher_rank(fit.fisher) == 2
    assert wald_ellipsoid(fit, 0.9).radius == pytest.approx(st.chi2.ppf(0.9, 2), rel=1e-12)
    full = SimpleNamespace(theta=np.zeros(3), fisher=np.diag([2.0, 1.0, 0.5]))
    assert wald_ellipsoid(full, 0.9).radius == pytest.approx(st.chi2.ppf(0.9, 3), rel=1e-12)
