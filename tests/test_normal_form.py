"""Normal-form commitment games, grouped counts and PURE (docs/math.md eq. 9, issue 26).

Oracles are independent of the code under test: NumPy log-likelihoods written here, SciPy's
L-BFGS-B / BFGS on them, ``scipy.optimize.linprog`` for the metric, closed-form ranks.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import linprog, minimize

import bayes_qse as bq
from bayes_qse.counts import ActionCounts, CommitmentCounts, group_rounds, merge_counts
from bayes_qse.errors import DatasetValidationError, SeparationWarning
from bayes_qse.identification import IdentifiabilityWarning
from bayes_qse.normal_form import (
    commitment_fisher,
    identification_rank,
    onehot_game,
    per_commitment_fisher,
    pure_counts,
    pure_estimate,
    random_normal_form_game,
    random_security_form_game,
    round_robin,
    security_form_game,
    shift_invariant_l1,
    simulate_commitment_counts,
    wu_security_parameters,
    wu_utilities,
)
from bayes_qse.sets import likelihood_ratio_set, wald_ellipsoid

ETA = 8.0


# ---------------------------------------------------------------------------------------
# Independent NumPy likelihoods
# ---------------------------------------------------------------------------------------


def _logsumexp(z):
    mx = z.max(axis=-1, keepdims=True)
    return mx[..., 0] + np.log(np.exp(z - mx).sum(axis=-1))


def np_grouped_loglik_V(V, x, counts, eta=ETA):
    """``sum_k sum_b n_kb log softmax_b(eta x_k V)`` and its gradient in ``V`` (NumPy)."""
    z = eta * x @ V  # [K, n]
    logp = z - _logsumexp(z)[:, None]
    ll = float(np.sum(counts * logp))
    p = np.exp(logp)
    resid = counts - counts.sum(axis=1, keepdims=True) * p  # d ll / d z
    return ll, eta * x.T @ resid


def np_per_round_loglik(V, x_rounds, b_rounds, eta=ETA):
    """The per-round log-likelihood ``sum_t log nu(b_t | x_t)`` with a loop-free NumPy form
    over the ``N`` rounds (no grouping), and its gradient in ``V``."""
    z = eta * x_rounds @ V  # [N, n]
    logp = z - _logsumexp(z)[:, None]
    ll = float(np.sum(logp[np.arange(len(b_rounds)), b_rounds]))
    onehot = np.eye(V.shape[1])[b_rounds]
    return ll, eta * x_rounds.T @ (onehot - np.exp(logp))


def scipy_pure(counts: CommitmentCounts, m, n, eta=ETA):
    """PURE's estimator re-implemented: L-BFGS-B on the NumPy log-likelihood over the box
    ``0 <= V <= 1`` (scaled by the number of rounds), restarted from its own answer until
    the objective stops decreasing."""
    x, c = np.asarray(counts.commitments), np.asarray(counts.counts)
    scale = c.sum()

    def f(v):
        ll, g = np_grouped_loglik_V(v.reshape(m, n), x, c, eta)
        return -ll / scale, -g.reshape(-1) / scale

    v, best = np.full(m * n, 0.5), np.inf
    for _ in range(20):  # L-BFGS-B can stop on its relative-reduction test: restart it
        res = minimize(
            f,
            v,
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * (m * n),
            options={"ftol": 1e-16, "gtol": 1e-13, "maxiter": 20000, "maxcor": 50},
        )
        v = res.x
        if res.fun >= best - 1e-15:
            break
        best = res.fun
    return v.reshape(m, n), -res.fun * scale


def row_differences(V):
    return V[:, 1:] - V[:, :1]


# ---------------------------------------------------------------------------------------
# PURE's bounded MLE against SciPy
# ---------------------------------------------------------------------------------------


def _check_pure_against_scipy(alpha, n_rounds, seed):
    game = random_normal_form_game(seed, alpha=alpha)
    counts = pure_counts(game, n_rounds, seed=seed + 100)
    ours = pure_estimate(game, counts)
    v_sp, ll_sp = scipy_pure(counts, 10, 10)
    assert ours.fit.converged and ours.fit.kkt_residual <= 1e-8
    assert np.all(ours.utilities >= -1e-12) and np.all(ours.utilities <= 1 + 1e-12)
    # the maximum is the same (ours may not be lower: it is the constrained maximum)
    assert ours.fit.log_likelihood >= ll_sp - 1e-6 * max(1.0, abs(ll_sp))
    assert abs(ours.fit.log_likelihood - ll_sp) <= 1e-6 * max(1.0, abs(ll_sp))
    # the identified part (row differences) agrees to 1e-6; the row shifts are free
    np.testing.assert_allclose(
        row_differences(ours.utilities), row_differences(v_sp), rtol=0, atol=1e-6
    )
    v_true = np.asarray(game.utilities())
    assert abs(shift_invariant_l1(ours.utilities, v_true) - shift_invariant_l1(v_sp, v_true)) < 1e-6
    return counts, ours


def test_pure_bounded_mle_matches_scipy_with_unobserved_cells():
    """PURE at N = 100 (10 rounds per row: many unobserved cells, whose V runs to the lower
    bound): the library's bounded MLE equals an L-BFGS-B solve of a NumPy log-likelihood to
    1e-6.  Bugs caught: a bound not enforced (an unseen cell running to -inf), a wrong
    likelihood for grouped counts (eta or the x @ V contraction), a KKT polish stopping early."""
    counts, ours = _check_pure_against_scipy(0.2, 100, 0)
    assert np.any(np.asarray(counts.counts) == 0)  # the regime: unobserved cells
    assert ours.fit.active  # some bound is active there


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.0, 0.2, 0.8])
@pytest.mark.parametrize("n_rounds", [100, 10**6])
def test_pure_bounded_mle_matches_scipy_literature_regime(alpha, n_rounds):
    """Wu et al.'s regime: 10 x 10, alpha in {0, 0.2, 0.8}, N = 100 and 10^6.  Same oracle
    and bugs as above, plus ill-conditioning at large N (a polish that stalls)."""
    _check_pure_against_scipy(alpha, n_rounds, 3)


# ---------------------------------------------------------------------------------------
# The metric against a linear programme
# ---------------------------------------------------------------------------------------


def _l1_by_lp(D):
    """``min_z sum_ij |D_ij - z_i| / (m n)`` as an LP over ``(z[m], t[m n])``."""
    m, n = D.shape
    rows_t = np.eye(m * n)
    rows_z = np.kron(np.eye(m), np.ones((n, 1)))  # t_ij's row i
    # t >= D - z  ->  -z - t <= -D ;  t >= z - D  ->  z - t <= D
    a_ub = np.block([[-rows_z, -rows_t], [rows_z, -rows_t]])
    b_ub = np.concatenate([-D.reshape(-1), D.reshape(-1)])
    cost = np.concatenate([np.zeros(m), np.ones(m * n)])
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=[(None, None)] * (m + m * n))
    assert res.status == 0
    return res.fun / (m * n)


@pytest.mark.parametrize("shape", [(10, 10), (3, 4), (5, 1 + 6)])
def test_shift_invariant_l1_matches_linprog(shape):
    """The metric (eq. 9e) equals the LP's optimum, for odd and even row lengths (where the
    median is an interval).  Bugs caught: the mean instead of the median, a column instead of
    a row shift, a missing 1/(m n)."""
    rng = np.random.default_rng(sum(shape))
    V, Vh = rng.uniform(size=shape), rng.normal(size=shape) ** 3
    assert shift_invariant_l1(Vh, V) == pytest.approx(_l1_by_lp(Vh - V), abs=1e-9)
    batch = np.stack([Vh, V + 0.3, Vh * 2])
    got = shift_invariant_l1(batch, V)
    assert got.shape == (3,) and got[1] == pytest.approx(0.0, abs=1e-15)
    assert got[2] == pytest.approx(_l1_by_lp(2 * Vh - V), abs=1e-9)


# ---------------------------------------------------------------------------------------
# Grouped counts = the per-round data they summarise
# ---------------------------------------------------------------------------------------


def _per_round_data(seed, m=3, n=4, n_rounds=400):
    rng = np.random.default_rng(seed)
    distinct = rng.dirichlet(np.ones(m), size=5)
    distinct[0] = np.eye(m)[1]  # a pure strategy among them
    which = rng.integers(0, 5, n_rounds)
    V = rng.uniform(size=(m, n))
    x = distinct[which]
    z = ETA * x @ V
    p = np.exp(z - _logsumexp(z)[:, None])
    b = np.array([rng.choice(n, p=pi) for pi in p])
    return V, x, b


def test_grouped_counts_give_the_per_round_fit():
    """fit_mle on group_rounds(per-round data) = BFGS on the per-round NumPy log-likelihood
    (reference coding); its Wald precision = eq. (9f) at the observed totals; the LR set's
    likelihood = the per-round one.  Bugs caught: counts attached to the wrong commitment
    when grouping, a dropped duplicate, the commitment transposed in the x @ V contraction."""
    V, x, b = _per_round_data(0)
    m, n = V.shape
    game = onehot_game(V, ETA)
    stats = group_rounds(x, b, n)
    assert stats.n_commitments == 5 and stats.n_rounds == len(b)
    fit = bq.fit_mle(stats, game)
    assert fit.converged

    def f(theta):  # theta: V with a zero first column
        Vt = np.concatenate([np.zeros((m, 1)), theta.reshape(m, n - 1)], axis=1)
        ll, g = np_per_round_loglik(Vt, x, b)
        return -ll, -g[:, 1:].reshape(-1)

    res = minimize(f, np.zeros(m * (n - 1)), jac=True, method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose(fit.theta, res.x, atol=1e-5)
    assert fit.log_likelihood == pytest.approx(-res.fun, abs=1e-8)
    # the Wald set's precision is the Fisher information (9f) of the observed totals
    totals = np.asarray(stats.counts).sum(axis=1)
    want = commitment_fisher(game, np.asarray(stats.commitments), totals, fit.theta)
    np.testing.assert_allclose(wald_ellipsoid(fit).precision, want, rtol=1e-8, atol=1e-8)
    # and the same by merging two halves and by the LR set's likelihood
    half = len(b) // 2
    merged = merge_counts(group_rounds(x[:half], b[:half], n), group_rounds(x[half:], b[half:], n))
    np.testing.assert_allclose(np.asarray(merged.counts), np.asarray(stats.counts))
    lr = likelihood_ratio_set(merged, game, fit)
    th = np.random.default_rng(1).normal(size=fit.theta.shape)
    Vt = np.concatenate([np.zeros((m, 1)), th.reshape(m, n - 1)], axis=1)
    assert float(lr.log_likelihood(th)) == pytest.approx(np_per_round_loglik(Vt, x, b)[0], 1e-10)


def test_action_counts_give_the_per_round_fit():
    """ActionCounts (the follower sees the realised pure action a): fit_mle equals BFGS on
    the per-round NumPy log-likelihood of softmax(eta V[a]), where the rounds use mixed
    commitments but only the realised actions matter.  Bug caught: ActionCounts dispatched to
    the commitment likelihood (or the counts transposed)."""
    rng = np.random.default_rng(2)
    m, n = 3, 4
    V = 0.4 * rng.uniform(size=(m, n))  # every cell observed: the MLE exists
    a = rng.integers(0, m, 3000)
    z = ETA * V[a]
    p = np.exp(z - _logsumexp(z)[:, None])
    b = np.array([rng.choice(n, p=pi) for pi in p])
    counts = np.zeros((m, n))
    np.add.at(counts, (a, b), 1)
    game = onehot_game(V, ETA)
    fit = bq.fit_mle(ActionCounts(counts), game)
    per_round = np.eye(m)[a]  # a pure commitment answered as an action: same likelihood

    def f(theta):
        Vt = np.concatenate([np.zeros((m, 1)), theta.reshape(m, n - 1)], axis=1)
        ll, g = np_per_round_loglik(Vt, per_round, b)
        return -ll, -g[:, 1:].reshape(-1)

    res = minimize(f, np.zeros(m * (n - 1)), jac=True, method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose(fit.theta, res.x, atol=1e-5)
    # a mixed commitment answered as a commitment gives a different likelihood: the type matters
    mixed = CommitmentCounts(np.full((1, m), 1 / m), counts.sum(axis=0, keepdims=True))
    with pytest.warns(IdentifiabilityWarning):  # one commitment: n - 1 directions only
        other = bq.fit_mle(mixed, game)
    assert other.log_likelihood != pytest.approx(fit.log_likelihood)


# ---------------------------------------------------------------------------------------
# Separation on grouped counts
# ---------------------------------------------------------------------------------------


def test_unseen_cells_are_reported_not_run_off_to_infinity():
    """PURE's counts at N = 100: the unconstrained MLE does not exist; fit_mle must say so
    (SeparationWarning, converged False, finite theta) and name exactly the unobserved
    cells (k, b) of the observed rows.  Bug caught: grouped counts skipping the separation
    LP, so that Newton walks off to infinity and reports converged."""
    game = random_normal_form_game(0, alpha=0.2)
    counts = pure_counts(game, 100, seed=5)
    with pytest.warns(SeparationWarning, match=r"\(k=\d+, b=\d+\)"):
        fit = bq.fit_mle(counts, game)
    assert not fit.converged and np.all(np.isfinite(fit.theta))
    zero = {tuple(c) for c in np.argwhere(np.asarray(counts.counts) == 0)}
    assert {tuple(c) for c in fit.separation.cells} == zero
    with pytest.raises(bq.BayesQSEInputError, match="^prior: "):
        bq.sample_posterior(counts, game, method="laplace", prior="flat")


# ---------------------------------------------------------------------------------------
# Posteriors on grouped counts
# ---------------------------------------------------------------------------------------


def test_laplace_and_nuts_on_grouped_counts():
    """Laplace's MAP equals BFGS on the NumPy log-posterior (normal prior), and NUTS's
    posterior mean agrees with it within Monte Carlo error on a small 2 x 3 game.  Bugs
    caught: sample_posterior refusing or mis-dispatching CommitmentCounts; the prior scale
    applied twice."""
    V = np.array([[0.0, 0.4, 0.9], [0.7, 0.1, 0.5]])
    game = onehot_game(V, ETA)
    x = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    counts = simulate_commitment_counts(game, x, [200, 200, 200], seed=4)
    sigma = 2.0
    lap = bq.sample_posterior(counts, game, method="laplace", prior_scale=sigma, num_samples=4000)

    def f(theta):
        Vt = np.concatenate([np.zeros((2, 1)), theta.reshape(2, 2)], axis=1)
        ll, g = np_grouped_loglik_V(Vt, x, np.asarray(counts.counts))
        return -(ll - theta @ theta / (2 * sigma**2)), -(g[:, 1:].reshape(-1) - theta / sigma**2)

    res = minimize(f, np.zeros(4), jac=True, method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose(lap.map_theta, res.x, atol=1e-6)
    nuts = bq.sample_posterior(
        counts,
        game,
        method="nuts",
        prior_scale=sigma,
        num_samples=1000,
        num_warmup=300,
        num_chains=2,
        seed=1,
    )
    se = nuts.sd / np.sqrt(nuts.diagnostics["ess"])
    assert np.all(np.abs(nuts.mean - lap.mean) < 5 * se + 0.01)


# ---------------------------------------------------------------------------------------
# Identifiability and the Fisher information
# ---------------------------------------------------------------------------------------


def _np_fisher(V_fn, phi, x, eta=ETA):
    """Loop form of eta^2 sum_k psi_k'(diag p - p p')psi_k."""
    d = phi.shape[-1]
    out = np.zeros((d, d))
    for xk in x:
        psi = np.einsum("a,abd->bd", xk, phi)
        z = eta * xk @ V_fn
        p = np.exp(z - z.max())
        p /= p.sum()
        out += eta**2 * psi.T @ (np.diag(p) - np.outer(p, p)) @ psi
    return out


def test_identification_ranks():
    """Fisher ranks (eq. 9f) against their closed forms: the reference coding is identified
    by the m pure strategies (rank m(n-1) = d), the full coding misses the m row shifts, one
    commitment identifies at most n - 1 directions, the structured security form (2T - 1
    reference, 2T full, one c-shift lost).  The Fisher matrix itself against a NumPy loop.
    Bugs caught: a coding that is not identified (a lost column), psi formed with the wrong
    axis, a missing eta^2."""
    m, n = 4, 5
    V = wu_utilities(7, m, n, 0.2)
    ref, full = onehot_game(V, ETA), onehot_game(V, ETA, coding="full")
    pure = np.eye(m)
    assert identification_rank(ref, pure) == ref.feature_dim == m * (n - 1)
    assert identification_rank(full, pure) == m * (n - 1) == full.feature_dim - m
    assert identification_rank(ref, np.full((1, m), 1 / m)) == n - 1
    T = 6
    w, c = wu_security_parameters(3, T)
    sec = security_form_game(w, c, ETA)
    sec_full = security_form_game(w, c, ETA, coding="full")
    assert identification_rank(sec, np.eye(T)) == sec.feature_dim == 2 * T - 1
    assert identification_rank(sec_full, np.eye(T)) == 2 * T - 1 == sec_full.feature_dim - 1
    rng = np.random.default_rng(0)
    x = rng.dirichlet(np.ones(m), 7)
    weights = rng.uniform(1, 3, 7)
    got = commitment_fisher(ref, x, weights)
    want = sum(
        wk * _np_fisher(V, ref.features, xk[None]) for wk, xk in zip(weights, x, strict=True)
    )
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    per = np.asarray(per_commitment_fisher(ref, x, np.asarray(ref.theta)))
    np.testing.assert_allclose(per[2], _np_fisher(V, ref.features, x[2:3]), atol=1e-12)


# ---------------------------------------------------------------------------------------
# Generators, simulation
# ---------------------------------------------------------------------------------------


def test_generators_follow_wu_et_al():
    """V = alpha I + (1 - alpha) R with R ~ N(0, 2) min-max normalised; the security game's V
    min-max normalised and structured.  Bugs caught: the identity and R swapped, R not
    normalised, the security normalisation breaking the structured form."""
    rng = np.random.default_rng(11)
    R = rng.normal(0.0, 2.0, (10, 10))
    R = (R - R.min()) / (R.max() - R.min())
    np.testing.assert_allclose(wu_utilities(11, 10, 10, 0.4), 0.4 * np.eye(10) + 0.6 * R)
    g = random_normal_form_game(11, alpha=0.4, coding="full")
    np.testing.assert_allclose(
        np.asarray(g.utilities()).reshape(10, 10), wu_utilities(11, 10, 10, 0.4)
    )
    sec = random_security_form_game(5, 10)
    V = np.asarray(sec.utilities())
    w, c = wu_security_parameters(5, 10)
    rng = np.random.default_rng(5)
    w0, c0 = rng.uniform(-3, -1, 10), rng.uniform(1, 3, 10)
    V0 = np.diag(w0) + c0
    V0 = (V0 - V0.min()) / (V0.max() - V0.min())
    full = np.diag(w) + c
    np.testing.assert_allclose(full, V0, atol=1e-12)
    assert V0.min() == 0 and V0.max() == pytest.approx(1)
    assert shift_invariant_l1(V, V0) == pytest.approx(0, abs=1e-12)  # reference coding: shifts


def test_simulated_counts_follow_the_response():
    """One multinomial per commitment: 10^7 rounds give frequencies within 5 standard errors
    of nu(. | x), totals exact, same seed same counts, and round_robin splits evenly.  Bugs
    caught: counts drawn from the wrong row, rounds lost, seeds ignored."""
    game = random_normal_form_game(1, 4, 3, alpha=0.5)
    x = np.array([[1, 0, 0, 0], [0.25, 0.25, 0.25, 0.25], [0, 0.5, 0.5, 0]])
    counts = simulate_commitment_counts(game, x, [10**7, 10**7, 0], seed=3)
    n = np.asarray(counts.counts)
    np.testing.assert_array_equal(n.sum(axis=1), [10**7, 10**7, 0])
    p = np.asarray(game.response(x))
    se = np.sqrt(p * (1 - p) / 10**7)
    assert np.all(np.abs(n[:2] / 10**7 - p[:2]) < 5 * se[:2])
    np.testing.assert_array_equal(
        n, simulate_commitment_counts(game, x, [10**7, 10**7, 0], seed=3).counts
    )
    assert not np.array_equal(
        n, simulate_commitment_counts(game, x, [10**7, 10**7, 0], seed=4).counts
    )
    eye, rounds = round_robin(4, 10)
    np.testing.assert_array_equal(eye, np.eye(4))
    np.testing.assert_array_equal(rounds, [3, 3, 2, 2])


# ---------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("commitments", "counts", "field"),
    [
        (np.eye(3), np.ones((3, 4)) - 1.5 * np.eye(3, 4), "counts: counts must be >= 0"),
        (np.eye(3) * 0.9, np.ones((3, 4)), "commitments: "),
        (np.eye(3) - 0.1 + 0.1 * 3 * np.eye(3), np.ones((3, 4)), "commitments: "),
        (np.eye(3), np.ones((2, 4)), "counts: "),
        (np.eye(3), np.ones((3, 5)), "counts: "),
        (np.eye(4)[:, :3], np.ones((4, 4)), "commitments: "),
        (np.ones((3, 2)) / 2, np.ones((3, 4)), "commitments: "),
        (np.eye(3), np.zeros((3, 4)), "counts: "),
        (np.eye(3), np.full((3, 4), np.nan), "counts: "),
    ],
)
def test_bad_grouped_counts_name_the_field(commitments, counts, field):
    """One-line errors naming the field, for negative counts, rows off the simplex (not
    summing to 1, negative entries), shape mismatches, no data, NaN.  Bug caught: a bad
    field silently fitted (a negative count flips the likelihood's sign)."""
    game = onehot_game(np.zeros((3, 4)) + np.arange(4), ETA)
    with pytest.raises(DatasetValidationError, match=f"^{field}") as err:
        bq.fit_mle(CommitmentCounts(commitments, counts), game)
    assert "\n" not in str(err.value)


def test_bad_data_type_and_farsighted_counts():
    """Counts for a farsighted follower (not sufficient) and a wrong data type are refused,
    naming ``dataset``.  Bug caught: a farsighted game fitted from counts as if myopic."""
    game = onehot_game(np.arange(12.0).reshape(3, 4), ETA)
    with pytest.raises(bq.BayesQSEInputError, match="^dataset: expected a Dataset"):
        bq.fit_mle(np.ones((3, 4)), game)
    far = bq.games.random_game(0, 2, 2, 2, 2, 3, farsighted=True)
    with pytest.raises(bq.BayesQSEInputError, match="^dataset: ActionCounts are sufficient"):
        bq.fit_mle(ActionCounts(np.ones((2, 2, 2, 2))), far)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = bq.fit_mle(ActionCounts(np.full((3, 4), 5.0)), game)
    assert fit.converged


def test_markov_commitment_counts_likelihood_matches_a_loop():
    """CommitmentCounts in the Markov form ([K,H,S,A] policies, [K,H,S,B] counts) give the
    log-likelihood of eq. (7c) written as a loop over (k, h, s, b).  Bug caught: the (h, s)
    axes of the policy contracted against the wrong axes of the utility."""
    from bayes_qse.likelihood import log_likelihood

    rng = np.random.default_rng(9)
    K, H, S, A, B, d = 3, 2, 2, 3, 4, 5
    phi = rng.normal(size=(H, S, A, B, d))
    pi = rng.dirichlet(np.ones(A), size=(K, H, S))
    n = rng.integers(0, 5, size=(K, H, S, B)).astype(float)
    theta = rng.normal(size=d)
    model = bq.model.Model(phi, 1.7, follower="commitment")
    got = float(log_likelihood(theta, model, CommitmentCounts(pi, n)))
    want = 0.0
    for k in range(K):
        for h in range(H):
            for s in range(S):
                z = np.array(
                    [
                        1.7 * sum(pi[k, h, s, a] * phi[h, s, a, b] @ theta for a in range(A))
                        for b in range(B)
                    ]
                )
                want += sum(n[k, h, s, b] * (z[b] - np.log(np.exp(z).sum())) for b in range(B))
    assert got == pytest.approx(want, rel=1e-12)
