"""Optimal designs (bayes_qse/design.py, docs/math.md eq. 10) and the collection procedures
(bayes_qse/collection.py), against independent computations: the Fisher information by
enumeration of the responses, the optimal design by SciPy's SLSQP over the simplex, the
exact rounding by brute force over all allocations, and the design's predicted variance by a
Monte Carlo of the MLE."""

import itertools
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize

import bayes_qse as bq
from bayes_qse.collection import collect_round_robin, collect_sequential, collect_two_stage
from bayes_qse.design import (
    criterion_and_gradient,
    efficient_rounding,
    information,
    mixture_candidates,
    optimal_design,
    response_jacobians,
)
from bayes_qse.errors import BayesQSEInputError
from bayes_qse.normal_form import onehot_game, simulate_commitment_counts


def _psi(game, X):
    return np.einsum("ka,abd->kbd", X, np.asarray(game.features, float))


def _fisher_by_enumeration(theta, psi, eta, h=1e-6):
    """sum_b p_b s_b s_b^T with the score s_b = grad log p_b by central differences."""
    K, B, d = psi.shape
    out = np.zeros((K, d, d))
    for k in range(K):

        def logp(t, k=k):
            z = eta * psi[k] @ t
            return z - np.log(np.sum(np.exp(z - z.max()))) - z.max()

        p = np.exp(logp(theta))
        score = np.stack(
            [(logp(theta + h * e) - logp(theta - h * e)) / (2 * h) for e in np.eye(d)], axis=1
        )
        out[k] = np.einsum("b,bi,bj->ij", p, score, score)
    return out


def _phi(w, Ms, criterion, A=None, prior=None, n=1.0):
    """The criterion of eq. (10b) written directly from the per-candidate informations."""
    vals = []
    for M in Ms:  # draws
        P = n * np.einsum("k,kde->de", w, M) + (0 if prior is None else prior)
        if criterion == "D":
            vals.append(-np.linalg.slogdet(P)[1])
        else:
            W = np.outer(A, A) if criterion == "c" else (np.eye(P.shape[0]) if A is None else A)
            vals.append(np.trace(W @ np.linalg.inv(P)))
    return float(np.mean(vals))


def _scipy_optimum(Ms, criterion, **kw):
    K = Ms.shape[1]
    best = np.inf
    rng = np.random.default_rng(0)
    for start in [np.full(K, 1 / K), *rng.dirichlet(np.ones(K), 4)]:
        res = minimize(
            lambda w: _phi(np.abs(w) / np.abs(w).sum(), Ms, criterion, **kw),
            start,
            method="SLSQP",
            bounds=[(1e-9, 1)] * K,
            constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
            options={"ftol": 1e-14, "maxiter": 1000},
        )
        best = min(best, res.fun)
    return best


@pytest.fixture(scope="module")
def tiny():
    """A 3 x 3 game (d = 6, reference coding), its 12 candidates and their informations."""
    rng = np.random.default_rng(3)
    game = onehot_game(rng.uniform(size=(3, 3)), eta=3.0)
    X = mixture_candidates(3, (0.3, 0.7))
    psi = _psi(game, X)
    theta = np.asarray(game.theta)
    return game, X, psi, theta


def test_information_is_the_fisher_information_by_enumeration(tiny):
    # Catches: a missing eta^2, the p p^T term dropped, the square root of p misplaced in
    # the factor J (M_k = J_k^T J_k), draws and candidates axes mixed up.
    game, X, psi, theta = tiny
    want = _fisher_by_enumeration(theta, psi, float(game.eta))
    jac = response_jacobians(theta, psi, float(game.eta))
    got = np.stack([information(jac, np.eye(len(X))[k]) for k in range(len(X))])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
    draws = np.stack([theta, theta + 0.1])
    both = information(response_jacobians(draws, psi, float(game.eta)), np.full(len(X), 0.1))
    np.testing.assert_allclose(both[0], 0.1 * want.sum(axis=0), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("criterion", ["A", "D", "c", "bayes-A"])
def test_optimal_design_matches_scipy_over_the_simplex(tiny, criterion):
    # Catches: a wrong gradient d_k (the multiplicative step then converges elsewhere), the
    # prior or the batch size n dropped from the Bayesian criterion, draws not averaged.
    game, X, psi, theta = tiny
    eta = float(game.eta)
    d = theta.size
    kw, thetas = {}, theta[None]
    if criterion == "c":
        kw = {"A": np.linspace(1, 2, d), "prior": 0.5 * np.eye(d), "n": 20.0}
    if criterion == "bayes-A":
        thetas = theta + 0.3 * np.random.default_rng(1).normal(size=(3, d))
        kw = {"prior": np.diag(np.linspace(1, 3, d)), "n": 50.0}
    crit = {"bayes-A": "A"}.get(criterion, criterion)
    Ms = np.stack([_fisher_by_enumeration(t, psi, eta) for t in thetas])
    want = _scipy_optimum(Ms, crit, **kw)
    jac = response_jacobians(thetas if len(thetas) > 1 else theta, psi, eta)
    design = optimal_design(jac, crit, tol=1e-7, max_iter=20000, **kw)
    assert design.converged
    assert np.isclose(design.weights.sum(), 1) and design.weights.min() >= 0
    assert _phi(design.weights, Ms, crit, **kw) == pytest.approx(want, rel=1e-5)
    assert design.criterion == pytest.approx(want, rel=1e-5)


def test_the_equivalence_gap_bounds_the_loss_and_vanishes_at_the_optimum(tiny):
    # Catches: a gap that is not an upper bound on phi(w) - min phi (e.g. min_k d_k in place
    # of max_k d_k, or the mean of d_k unweighted), and a D-design that violates the
    # Kiefer-Wolfowitz theorem max_k tr(M^-1 M_k) = d at the optimum.
    game, X, psi, theta = tiny
    eta = float(game.eta)
    Ms = _fisher_by_enumeration(theta, psi, eta)[None]
    jac = response_jacobians(theta, psi, eta)
    rng = np.random.default_rng(2)
    for crit in ("A", "D"):
        best = _scipy_optimum(Ms, crit)
        for w in [np.full(len(X), 1 / len(X)), *rng.dirichlet(np.ones(len(X)) * 0.5, 5)]:
            phi, dk = criterion_and_gradient(w, jac, crit)
            gap = dk.max() - w @ dk
            assert phi - best <= gap + 1e-9
            assert gap > 1e-6  # none of these is optimal
    # the Bayesian criterion (prior precision, n rounds, draws): the gap must scale with n
    thetas = theta + 0.3 * np.random.default_rng(4).normal(size=(2, theta.size))
    Mb = np.stack([_fisher_by_enumeration(t, psi, eta) for t in thetas])
    kw = {"prior": np.eye(theta.size), "n": 50.0}
    best = _scipy_optimum(Mb, "A", **kw)
    jb = response_jacobians(thetas, psi, eta)
    for w in rng.dirichlet(np.ones(len(X)) * 0.5, 5):
        phi, dk = criterion_and_gradient(w, jb, "A", **kw)
        assert phi == pytest.approx(_phi(w, Mb, "A", **kw), rel=1e-9)
        assert phi - best <= dk.max() - w @ dk + 1e-9
    design = optimal_design(jac, "D", tol=1e-8, max_iter=50000)
    M = np.einsum("k,kde->de", design.weights, Ms[0])
    lev = np.einsum("de,ked->k", np.linalg.inv(M), Ms[0])
    assert lev.max() == pytest.approx(theta.size, rel=1e-6)
    assert design.gap <= 1e-8 * theta.size


def test_the_uniform_design_is_not_reported_optimal(tiny):
    # Catches: an optimiser that returns its start (or a gap computed at the start and never
    # updated): the uniform design over these candidates is measurably suboptimal.
    game, X, psi, theta = tiny
    jac = response_jacobians(theta, psi, float(game.eta))
    one_step = optimal_design(jac, "A", tol=1e-9, max_iter=0)
    assert not one_step.converged and one_step.gap > 1e-3 * one_step.criterion
    full = optimal_design(jac, "A", tol=1e-6)
    assert full.converged and full.criterion < one_step.criterion


def _best_min_ratio(w, n):
    support = np.flatnonzero(w > 0)
    best = -np.inf
    for split in itertools.product(range(n + 1), repeat=len(support)):
        if sum(split) == n:
            best = max(best, min(c / w[k] for c, k in zip(split, support, strict=True)))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_efficient_rounding_keeps_totals_and_is_max_min_efficient(seed):
    # Catches: totals that drift from n (ceil then no adjustment, or the adjustment loop
    # stepping the wrong way), rounds given to zero-weight candidates, and a rounding that is
    # not the efficient apportionment (max over allocations of min_k n_k / w_k, brute force).
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.ones(4))
    if seed % 2:
        w[rng.integers(4)] = 0.0
        w /= w.sum()
    for n in range(int((w > 0).sum()), 13):
        counts = efficient_rounding(w, n)
        assert counts.sum() == n and counts.min() >= 0 and np.all(counts[w == 0] == 0)
        got = min(counts[k] / w[k] for k in np.flatnonzero(w > 0))
        assert got == pytest.approx(_best_min_ratio(w, n))
    big = rng.dirichlet(np.ones(50))
    for n in (1, 7, 49, 1000, 10**7 + 3):
        assert efficient_rounding(big, n).sum() == n


def test_rounding_and_designs_refuse_bad_input(tiny):
    # Catches: a silent wrong answer on a negative n, negative weights, an unknown criterion,
    # or a 'c' design without its vector.
    game, X, psi, theta = tiny
    jac = response_jacobians(theta, psi, float(game.eta))
    with pytest.raises(BayesQSEInputError, match="n:"):
        efficient_rounding([0.5, 0.5], -1)
    with pytest.raises(BayesQSEInputError, match="weights:"):
        efficient_rounding([1.5, -0.5], 3)
    with pytest.raises(BayesQSEInputError, match="criterion:"):
        optimal_design(jac, "E")
    with pytest.raises(BayesQSEInputError, match="A:"):
        optimal_design(jac, "c")
    with pytest.raises(BayesQSEInputError, match="t_grid"):
        mixture_candidates(3, (0.0, 0.5))


def test_collection_procedures_spend_exactly_the_rounds(tiny):
    # Catches: a pilot or batch whose rounds are lost or double-counted (counts that do not
    # sum to the rounds spent, or rounds that do not sum to n_rounds), a pilot off the pure
    # strategies, a sequential run with fewer designs than batches.
    game, X, psi, theta = tiny
    for n_rounds in (37, 1000):
        for got in (
            collect_round_robin(game, X, n_rounds, 0),
            collect_two_stage(game, X, n_rounds, 1, criterion="D"),
            collect_sequential(game, X, n_rounds, 2, batches=3, draws=2),
        ):
            assert got.rounds.sum() == n_rounds
            np.testing.assert_array_equal(np.asarray(got.counts.counts).sum(axis=1), got.rounds)
            assert got.rounds[:3].sum() >= round(0.2 * n_rounds)
        assert len(got.designs) == 3 and all(d.converged for d in got.designs)


@pytest.mark.slow
def test_predicted_variance_matches_a_monte_carlo_of_the_mle():
    # Catches: a design whose predicted variance tr(A (N M(w))^-1) is not that of the
    # estimator (a Fisher information off by a factor, rounds per candidate misassigned to
    # commitments in the simulation, weights applied to the wrong candidates).
    rng = np.random.default_rng(7)
    game = onehot_game(rng.uniform(size=(3, 3)), eta=2.0)
    X = mixture_candidates(3, (0.5,))
    theta = np.asarray(game.theta)
    jac = response_jacobians(theta, _psi(game, X), 2.0)
    design = optimal_design(jac, "A", tol=1e-6)
    N = 4000
    rounds = efficient_rounding(design.weights, N)
    cov_pred = np.linalg.inv(N * information(jac, rounds / N))
    R = 300
    est = np.empty((R, theta.size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in range(R):
            est[r] = np.asarray(
                bq.fit_mle(simulate_commitment_counts(game, X, rounds, 1000 + r), game).theta
            )
    cov_mc = np.cov(est.T)
    # total variance within 15% (Monte Carlo sd of a trace of 300 draws: about 5%)
    assert np.trace(cov_mc) == pytest.approx(np.trace(cov_pred), rel=0.15)
    # and each variance within 25%, the bias negligible against the standard errors
    np.testing.assert_allclose(np.diag(cov_mc), np.diag(cov_pred), rtol=0.25)
    assert np.all(np.abs(est.mean(axis=0) - theta) < 4 * np.sqrt(np.diag(cov_pred) / R) + 1e-3)
    # the optimal design predicts less variance than PURE's round robin with the same N
    rr = np.zeros(len(X))
    rr[:3] = 1 / 3
    assert np.trace(cov_pred) < np.trace(np.linalg.inv(N * information(jac, rr)))


def test_leader_value_gradient_matches_finite_differences(tiny):
    # Catches: a gradient of the leader's value missing the centring of u or psi, or eta,
    # which would point the value design (target="value") at the wrong contrast.
    from bayes_qse.collection import commitment_value, commitment_value_gradient

    game, X, psi, theta = tiny
    L = np.random.default_rng(5).uniform(size=(3, 3))
    x = np.array([0.2, 0.5, 0.3])
    h = 1e-6
    fd = [
        (commitment_value(game, x, theta + h * e, L) - commitment_value(game, x, theta - h * e, L))
        / (2 * h)
        for e in np.eye(theta.size)
    ]
    np.testing.assert_allclose(
        commitment_value_gradient(game, x, theta, L), fd, rtol=1e-6, atol=1e-8
    )


def test_best_commitment_beats_a_grid_search_on_two_actions():
    # Catches: a best commitment that is only the best candidate (no refinement) or that
    # leaves the simplex; brute force over a fine grid of the 2-action simplex.
    from bayes_qse.collection import best_commitment, commitment_value

    rng = np.random.default_rng(11)
    game = onehot_game(rng.uniform(size=(2, 3)), eta=8.0)
    L = rng.uniform(size=(2, 3))
    theta = np.asarray(game.theta)
    x = best_commitment(game, theta, mixture_candidates(2, (0.5,)), L)
    grid = max(
        commitment_value(game, np.array([1 - t, t]), theta, L) for t in np.linspace(0, 1, 2001)
    )
    assert x.min() >= 0 and x.sum() == pytest.approx(1)
    assert commitment_value(game, x, theta, L) >= grid - 1e-6


def test_a_value_design_predicts_less_variance_of_the_value_than_the_utility_design(tiny):
    # Catches: target="value" ignored (the A-design for the utilities used instead) or its
    # gradient taken at the wrong commitment: the c-design must predict a smaller variance of
    # the leader's value than the utility design with the same rounds.
    from bayes_qse.collection import best_commitment, commitment_value_gradient

    game, X, psi, theta = tiny
    L = np.eye(3)
    c = commitment_value_gradient(game, best_commitment(game, theta, X, L), theta, L)
    jac = response_jacobians(theta, psi, float(game.eta))
    var = {}
    for target in ("utilities", "value"):
        got = collect_two_stage(game, X, 20000, 4, target=target, leader_utility=L)
        cov = np.linalg.inv(20000 * information(jac, got.rounds / 20000))
        var[target] = c @ cov @ c
    assert var["value"] < 0.8 * var["utilities"]
