"""The bounded MLE (docs/math.md §2.4): a box and the paper's ball ``||theta|| <= B`` as options
of ``fit_mle`` and ``fit_suqr_mle``, against independent constrained solves -- SciPy's
L-BFGS-B with bounds (box) and SLSQP (ball, box and ball) on a NumPy log-likelihood -- to
1e-6, on separated data where a bound is active; the KKT residual is checked.
"""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import logsumexp
from test_separation import _all_on_best, _matrix_data, one_step_dataset

from bayes_qse.data import simulate
from bayes_qse.errors import BayesQSEInputError, SeparationWarning
from bayes_qse.games import tabular_game
from bayes_qse.inference import fit_mle
from bayes_qse.security import (
    AttackData,
    attack_stats,
    fit_suqr_mle,
    random_coverages,
    simulate_attacks,
    uniform_security_game,
)


def np_negloglik_and_grad(features, counts):
    """``-L`` and its gradient for a multinomial logit, in NumPy (the independent oracle)."""
    x, n = np.asarray(features, float), np.asarray(counts, float)

    def f(theta):
        u = x @ theta
        log_p = u - logsumexp(u, axis=-1, keepdims=True)
        p = np.exp(log_p)
        grad = np.einsum("cb,cbd->d", n, x) - np.einsum("c,cb,cbd->d", n.sum(-1), p, x)
        return -float(np.sum(n * log_p)), -grad

    return f


def lbfgsb(f, d, lo, hi):
    opts = {"ftol": 1e-16, "gtol": 1e-12, "maxiter": 20000, "maxcor": 30}
    bounds = list(zip(lo, hi, strict=True))
    res = minimize(f, np.zeros(d), jac=True, method="L-BFGS-B", bounds=bounds, options=opts)
    return res.x, -res.fun


def slsqp(f, d, radius, lo=None, hi=None):
    bounds = None if lo is None else list(zip(lo, hi, strict=True))
    cons = [{"type": "ineq", "fun": lambda x: radius**2 - x @ x, "jac": lambda x: -2 * x}]
    res = minimize(
        f,
        np.zeros(d),
        jac=True,
        method="SLSQP",
        bounds=bounds,
        constraints=cons,
        options={"ftol": 1e-16, "maxiter": 2000},
    )
    return res.x, -res.fun


def _suqr_separated():
    game, data = _all_on_best()
    counts = np.asarray(data.counts).copy()
    counts[:3, 0] += 1.0  # a few attacks elsewhere: quasi-complete, a richer optimum
    data = AttackData(data.coverage, counts)
    return game, data, np.asarray(attack_stats(game, data).psi), counts


def test_suqr_box_on_separated_data_matches_lbfgsb():
    """Separated attacks (the MLE does not exist) with ``w in [-1, 1]^3``: the box MLE exists,
    the bound on ``w2`` is active, and the fit agrees with L-BFGS-B to 1e-6 in ``w`` and in
    ``L``; converged, KKT residual < 1e-8, no SeparationWarning (the constrained MLE exists),
    the active bound reported with a positive multiplier and std_err nan there.  Bug caught: a
    bound ignored (Newton's runaway), an interior-point answer left 1e-7 inside the bound, a
    KKT residual that is not computed at the returned point."""
    game, data, psi, counts = _suqr_separated()
    lo, hi = -np.ones(3), np.ones(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SeparationWarning)
        fit = fit_suqr_mle(game, data, lower=lo, upper=hi)
    ref_x, ref_f = lbfgsb(np_negloglik_and_grad(psi, counts), 3, lo, hi)
    np.testing.assert_allclose(fit.theta, ref_x, atol=1e-6)
    assert fit.log_likelihood == pytest.approx(ref_f, abs=1e-6)
    assert fit.converged and fit.kkt_residual < 1e-8
    at_bound = np.isclose(ref_x, hi, atol=1e-9)
    assert at_bound.any()  # the bound is active (the unconstrained MLE is at infinity)
    for j in np.flatnonzero(at_bound):
        assert fit.active[("upper", int(j))] > 0 and np.isnan(fit.std_err[j])
    assert fit.separation.separated  # the unconstrained LP is still reported


def test_suqr_ball_on_separated_data_matches_slsqp():
    """The paper's class ``||w|| <= 2`` on the same separated data: the fit is on the sphere
    (active radius, positive multiplier) and agrees with SLSQP to 1e-6.  Bug caught: the
    sphere's multiplier sign, a projection instead of a constrained maximisation."""
    game, data, psi, counts = _suqr_separated()
    fit = fit_suqr_mle(game, data, radius=2.0)
    ref_x, ref_f = slsqp(np_negloglik_and_grad(psi, counts), 3, 2.0)
    np.testing.assert_allclose(fit.theta, ref_x, atol=1e-6)
    assert fit.log_likelihood == pytest.approx(ref_f, abs=1e-6)
    assert np.linalg.norm(fit.theta) == pytest.approx(2.0, rel=1e-12)
    assert fit.converged and fit.kkt_residual < 1e-8 and fit.active[("radius", -1)] > 0


def test_box_and_ball_together_match_slsqp():
    """Box ``[-1, 1]^3`` and ball ``||w|| <= 1.5`` together (both active at the optimum):
    agrees with SLSQP to 1e-6.  Bug caught: the active-set polish dropping one of two active
    constraints."""
    game, data, psi, counts = _suqr_separated()
    lo, hi = -np.ones(3), np.ones(3)
    fit = fit_suqr_mle(game, data, lower=lo, upper=hi, radius=1.5)
    ref_x, ref_f = slsqp(np_negloglik_and_grad(psi, counts), 3, 1.5, lo, hi)
    np.testing.assert_allclose(fit.theta, ref_x, atol=1e-6)
    assert fit.log_likelihood == pytest.approx(ref_f, abs=1e-6)
    assert fit.converged and fit.kkt_residual < 1e-8
    assert ("radius", -1) in fit.active and ("upper", 1) in fit.active


def test_well_posed_box_fit_with_an_inactive_bound_is_the_mle():
    """Well-posed SUQR data and a box that contains the MLE: the bounded fit is the MLE (the
    Newton fit) to 1e-8 and its std_err are the unbounded ones.  Bug caught: a bounded fit
    that stops early in the interior or inflates the covariance."""
    game = uniform_security_game(5, 2.0, seed=3)
    cov = random_coverages(jax.random.PRNGKey(7), 5, 2.0, 400)
    data = simulate_attacks(jax.random.PRNGKey(8), game, game.theta, cov)
    free = fit_suqr_mle(game, data)
    boxed = fit_suqr_mle(game, data, lower=-50.0, upper=50.0)
    np.testing.assert_allclose(boxed.theta, free.theta, atol=1e-8)
    np.testing.assert_allclose(boxed.std_err, free.std_err, rtol=1e-6)
    assert boxed.active == {} and boxed.converged


def test_matrix_game_utilities_in_unit_box_match_lbfgsb():
    """The inverse-Stackelberg use: tabular utilities constrained to ``[0, 1]`` on the matrix
    game with unobserved cells (no unconstrained MLE).  ``fit_mle(lower=0, upper=1)`` agrees
    with L-BFGS-B to 1e-6.  Bug caught: ``fit_mle`` ignoring its bounds, or bounds applied to
    the wrong coordinates."""
    rng = np.random.default_rng(0)
    game = tabular_game(
        np.ones((1, 1, 3, 3, 1)), rng.normal(size=(1, 1, 3, 3)), rng.uniform(size=(1, 1, 3, 3))
    )
    a, b = _matrix_data()
    counts = np.zeros((3, 3))
    np.add.at(counts, (a, b), 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SeparationWarning)
        fit = fit_mle(one_step_dataset(a, b, 3), game, lower=0.0, upper=1.0)
    x = np.asarray(game.features)[0, 0]
    ref_x, ref_f = lbfgsb(np_negloglik_and_grad(x, counts), 6, np.zeros(6), np.ones(6))
    np.testing.assert_allclose(fit.theta, ref_x, atol=1e-6)
    assert fit.log_likelihood == pytest.approx(ref_f, abs=1e-6)
    assert fit.converged and fit.kkt_residual < 1e-8


def test_half_open_box_keeps_the_separation_check():
    """A box open on one side: the MLE may still not exist.  On the all-on-the-best-target
    data ``w2 >= 0`` leaves the separating direction ``(0, 1, 0)`` (checked in
    test_separation) feasible: SeparationWarning and converged False.  Bug caught: a bounded
    fit that claims existence because some bound is finite."""
    game, data = _all_on_best()
    inf = np.inf
    with pytest.warns(SeparationWarning, match="within the bounds"):
        fit = fit_suqr_mle(game, data, lower=[-inf, 0.0, -inf])
    assert not fit.converged and np.all(np.isinf(fit.std_err))


def test_bad_bounds_name_the_field():
    """Bug caught: an empty box or ball accepted and an optimiser run on it."""
    game, data = _all_on_best()
    with pytest.raises(BayesQSEInputError, match="^lower"):
        fit_suqr_mle(game, data, lower=[1.0, 0.0, 0.0], upper=[0.0, 1.0, 1.0])
    with pytest.raises(BayesQSEInputError, match="^radius"):
        fit_suqr_mle(game, data, radius=-1.0)
    with pytest.raises(BayesQSEInputError, match="^radius"):
        fit_suqr_mle(game, data, lower=2.0, upper=3.0, radius=1.0)
    with pytest.raises(BayesQSEInputError, match="^upper"):
        fit_suqr_mle(game, data, upper=[1.0, 2.0])


def test_farsighted_ball_fit_matches_slsqp_on_a_loop_likelihood():
    """The bounded MLE serves every follower kind: a farsighted follower (soft Bellman values,
    not a logit in theta) with ``||theta|| <= 0.3`` active.  Golden: SLSQP on the likelihood
    written with the loop response of tests/reference.py (eq. 1a-1d per episode policy).
    Bug caught: the bounded path wired to the myopic counts (dropping the later steps'
    values) or to the wrong statistics for a farsighted model."""
    from reference import np_follower_response

    from bayes_qse.games import random_game

    g = random_game(3, 2, 2, 2, 2, 2, eta=1.5, farsighted=True)
    H, S, A, _ = g.shape
    pols = np.random.default_rng(1).dirichlet(np.ones(A), size=(40, H, S))
    data = simulate(g, pols, 40, seed=2)
    phi, P = np.asarray(g.features), np.asarray(g.transitions)

    def negll(theta):
        total = 0.0
        for t in range(data.n_episodes):
            nu = np_follower_response(P, phi @ theta, g.eta, data.policies[t], farsighted=True)
            for h in range(H):
                s, a = data.states[t, h], data.leader_actions[t, h]
                total += np.log(nu[h, s, a, data.follower_actions[t, h]])
        return -total

    cons = [{"type": "ineq", "fun": lambda x: 0.3**2 - x @ x}]
    ref = minimize(
        negll,
        np.zeros(2),
        method="SLSQP",
        constraints=cons,
        options={"ftol": 1e-14, "maxiter": 500},
    )
    fit = fit_mle(data, g, radius=0.3)
    assert np.linalg.norm(ref.x) == pytest.approx(0.3, rel=1e-6)  # the ball is active
    np.testing.assert_allclose(fit.theta, ref.x, atol=1e-6)
    assert fit.log_likelihood == pytest.approx(-ref.fun, abs=1e-6)
    assert fit.converged and fit.kkt_residual < 1e-8 and fit.separation is None
