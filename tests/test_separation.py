"""When the MLE does not exist (docs/math.md §2.3): the separation LP, the limiting-model fit and
the warnings of ``fit_mle``, ``fit_suqr_mle`` and ``bayes-qse fit`` on the adversarial inputs --
all attacks on the most rewarding target, a matrix game with unobserved (action, response)
cells, quasi-complete separation -- and silence on well-posed data.

Golden values are independent of the code under test: the empty cells enumerated from the
counts, closed-form multinomial MLEs of the cells that remain, a NumPy log-likelihood
evaluated far along the reported direction.
"""

from __future__ import annotations

import json
import warnings

import jax
import numpy as np
import pytest
from scipy.special import logsumexp

from bayes_qse import cli
from bayes_qse.data import Dataset, simulate
from bayes_qse.errors import SeparationWarning
from bayes_qse.games import Game, random_game, tabular_game
from bayes_qse.identification import IdentifiabilityWarning
from bayes_qse.inference import fit_mle
from bayes_qse.security import (
    AttackData,
    attack_stats,
    fit_suqr_mle,
    random_coverages,
    simulate_attacks,
    uniform_security_game,
)
from bayes_qse.separation import find_separation


def np_logit_loglik(features, counts, theta, eta=1.0):
    """``sum n log softmax(eta x . theta)`` over choice sets, written with NumPy/SciPy."""
    u = eta * np.asarray(features) @ np.asarray(theta)
    return float(np.sum(np.asarray(counts) * (u - logsumexp(u, axis=-1, keepdims=True))))


def one_step_dataset(a, b, A):
    """A dataset of one-step episodes (H = S = 1) with leader actions ``a`` and responses
    ``b``."""
    n = len(a)
    return Dataset(
        states=np.zeros((n, 2), int),
        leader_actions=np.asarray(a)[:, None],
        follower_actions=np.asarray(b)[:, None],
        rewards=np.zeros((n, 1)),
        policies=np.full((n, 1, 1, A), 1.0 / A),
    )


def matrix_game(A, B, seed=0):
    """A myopic matrix game with tabular follower utility (reference response b = 0)."""
    rng = np.random.default_rng(seed)
    return tabular_game(
        np.ones((1, 1, A, B, 1)), rng.normal(size=(1, 1, A, B)), rng.normal(size=(1, 1, A, B))
    )


# ---------------------------------------------------------------------------------------
# SUQR: all attacks on the most rewarding target
# ---------------------------------------------------------------------------------------


def _all_on_best(n=30, seed=0):
    game = uniform_security_game(5, 2.0, seed=seed)
    cov = np.asarray(random_coverages(jax.random.PRNGKey(seed + 1), 5, 2.0, n))
    counts = np.zeros_like(cov)
    counts[:, int(np.argmax(np.asarray(game.attacker_reward)))] = 1.0
    return game, AttackData(cov, counts)


def test_suqr_all_attacks_on_the_most_rewarding_target_is_reported():
    """The issue's case: 30 attacks, all on the target with the largest attacker reward.
    ``w = (0, 1, 0)`` raises the attacked target's logit above every other (checked here with
    NumPy), so the MLE does not exist (complete separation): the fit must say so -- a
    SeparationWarning naming the cells, converged False, std_err inf (not 5.5e6), and the
    likelihood's supremum 0.  Bugs caught: ``converged`` taken from Newton's flat-tail
    false convergence; a finite std_err from the inverse of a vanishing Fisher information."""
    game, data = _all_on_best()
    psi = np.asarray(attack_stats(game, data).psi)
    best = int(np.argmax(np.asarray(game.attacker_reward)))
    margins = (psi[:, best, None, :] - psi) @ np.array([0.0, 1.0, 0.0])
    assert np.all(np.delete(margins, best, axis=1) > 0)  # the golden: complete separation
    with pytest.warns(SeparationWarning, match=r"complete separation.*\(k=0, t=0\)") as rec:
        fit = fit_suqr_mle(game, data)
    assert issubclass(rec[0].category, RuntimeWarning)  # what the docstring promises
    assert not fit.converged
    assert fit.separation.kind == "complete"
    assert len(fit.separation.directions) == 3  # every direction of w is pushed to infinity
    assert np.all(np.isinf(fit.std_err))
    assert fit.log_likelihood == 0.0
    # the cells whose probability -> 0: every (commitment, target) but the attacked one
    want = {(k, t) for k in range(30) for t in range(5) if t != best}
    assert {tuple(c) for c in fit.separation.cells} == want
    # along the reported direction the NumPy likelihood increases to the supremum 0
    lls = [np_logit_loglik(psi, data.counts, t * fit.separation.direction) for t in (1, 10, 100)]
    assert lls[0] < lls[1] < lls[2] <= 0.0 and lls[2] > -1e-6


def test_suqr_well_posed_data_warn_nothing():
    """400 attacks simulated from the Nguyen et al. weights: the MLE exists, no warning of any
    kind fires and ``converged`` is True.  Bug caught: an LP tolerance that calls ordinary
    data separated (a false alarm on every fit of the security experiment)."""
    game = uniform_security_game(5, 2.0, seed=3)
    cov = random_coverages(jax.random.PRNGKey(7), 5, 2.0, 400)
    data = simulate_attacks(jax.random.PRNGKey(8), game, game.theta, cov)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = fit_suqr_mle(game, data)
    assert fit.converged and fit.separation.kind == "none"
    assert np.all(np.isfinite(fit.std_err))


# ---------------------------------------------------------------------------------------
# Matrix game with unobserved (action, response) cells
# ---------------------------------------------------------------------------------------


def _matrix_data():
    """3 leader actions x 3 responses: under a = 0 every response is seen, under a = 1 the
    responses 0 and 1 only, under a = 2 only response 2."""
    a = [0] * 6 + [1] * 5 + [2] * 4
    b = [0, 0, 0, 1, 2, 2] + [0, 0, 1, 1, 1] + [2] * 4
    return a, b


def test_matrix_game_unobserved_cells_are_named_and_the_rest_is_the_closed_form_mle():
    """Tabular features: the empty cells of an observed action are exactly the cells whose
    probability the likelihood sends to 0 (golden: enumerated from the counts).  The limiting
    model is the multinomial on the observed responses, whose MLE is in closed form:
    ``theta(a, b) = log(n_ab / n_a0)`` for the observed b (reference b = 0), and the binary
    ``theta(1, 1) = log(3/2)`` has standard error ``1 / sqrt(n p (1 - p))``.  The separated
    coordinates ``(1,2), (2,1), (2,2)`` get std_err inf.  Bugs caught: the issue's
    ``converged=True`` with ``|theta| ~ 3.6``; a limiting model that keeps a separated cell;
    empty cells missed or extra cells reported."""
    game = matrix_game(3, 3)
    a, b = _matrix_data()
    data = one_step_dataset(a, b, 3)
    counts = np.zeros((3, 3))
    np.add.at(counts, (a, b), 1.0)
    want_cells = {(0, 0, ai, bi) for ai in range(3) for bi in range(3) if counts[ai, bi] == 0}
    with pytest.warns(SeparationWarning, match="quasi-complete separation") as rec:
        fit = fit_mle(data, game)
    assert "(h=0, s=0, a=1, b=2)" in str(rec[0].message)
    assert not fit.converged
    assert {tuple(c) for c in fit.separation.cells} == want_cells
    # coordinates in C order of (a, b) for b >= 1: (0,1) (0,2) (1,1) (1,2) (2,1) (2,2)
    golden = [np.log(1 / 3), np.log(2 / 3), np.log(3 / 2)]
    np.testing.assert_allclose(fit.theta[:3], golden, atol=1e-9)
    np.testing.assert_allclose(fit.theta[3:], 0.0, atol=1e-12)  # no component along N
    p = 3 / 5
    assert fit.std_err[2] == pytest.approx(1 / np.sqrt(5 * p * (1 - p)), rel=1e-8)
    assert np.all(np.isfinite(fit.std_err[:3])) and np.all(np.isinf(fit.std_err[3:]))
    basis = np.asarray(fit.separation.directions)
    np.testing.assert_allclose(basis.T @ basis, np.diag([0, 0, 0, 1, 1, 1]), atol=1e-9)


def test_the_supremum_is_approached_along_the_reported_direction():
    """``log_likelihood`` is the supremum of ``L``: the NumPy likelihood at ``theta + t d``
    (``d`` the reported direction) climbs to it as ``t`` grows and never exceeds it; the
    unconstrained Newton value (the issue's fit) is below it.  Bug caught: a limiting model
    whose value is not the supremum (a separated cell left in, or a kept one dropped)."""
    game = matrix_game(3, 3)
    a, b = _matrix_data()
    counts = np.zeros((3, 3))
    np.add.at(counts, (a, b), 1.0)
    with pytest.warns(SeparationWarning):
        fit = fit_mle(one_step_dataset(a, b, 3), game)
    x = np.asarray(game.features)[0, 0]  # [A, B, d]
    d = fit.separation.direction
    vals = [np_logit_loglik(x, counts, fit.theta + t * d) for t in (0.0, 5.0, 40.0)]
    assert vals[0] < vals[1] < vals[2] <= fit.log_likelihood + 1e-12
    assert fit.log_likelihood - vals[2] < 1e-9
    want = 6 * 0 + (3 * np.log(3 / 6) + np.log(1 / 6) + 2 * np.log(2 / 6))
    want += 2 * np.log(2 / 5) + 3 * np.log(3 / 5)
    assert fit.log_likelihood == pytest.approx(want, rel=1e-10)


def test_quasi_complete_separation_flat_on_some_observations():
    """Two leader actions, two responses, ``d = 2``: under ``a = 0`` both responses are seen
    and ``x_0 - x_1 = (1, 0)``; under ``a = 1`` only response 0 and ``x_0 - x_1 = (0.5, 1)``.
    The direction ``(0, 1)`` is flat on the ``a = 0`` observations and separates ``a = 1``:
    quasi-complete.  Golden: ``theta_1 = log(n_00 / n_01)`` (the binary MLE of ``a = 0``),
    ``theta_2`` unidentified (std_err inf), the one cell ``(a=1, b=1)``.  Bug caught: the LP
    calling this complete (all rows) or none (it needs a direction flat on some rows)."""
    phi = np.zeros((1, 1, 2, 2, 2))
    phi[0, 0, 0, 0] = [1.0, 0.0]
    phi[0, 0, 1, 0] = [0.5, 1.0]
    game = Game(np.ones((1, 1, 2, 2, 1)), np.zeros((1, 1, 2, 2)), phi, np.zeros(2), 2.0)
    a = [0, 0, 0, 0, 0, 1, 1, 1]
    b = [0, 0, 0, 1, 1, 0, 0, 0]
    with pytest.warns(SeparationWarning, match="quasi-complete"):
        fit = fit_mle(one_step_dataset(a, b, 2), game)
    assert fit.separation.kind == "quasi-complete" and not fit.converged
    assert [tuple(c) for c in fit.separation.cells] == [(0, 0, 1, 1)]
    np.testing.assert_allclose(np.abs(fit.separation.directions), [[0.0, 1.0]], atol=1e-9)
    assert fit.theta[0] == pytest.approx(np.log(3 / 2) / 2.0, rel=1e-9)  # eta = 2
    assert fit.theta[1] == pytest.approx(0.0, abs=1e-12)
    assert np.isfinite(fit.std_err[0]) and np.isinf(fit.std_err[1])


def test_well_posed_markov_data_warn_nothing():
    """A random myopic game with 300 episodes under a uniform leader: every (a, b) cell is
    seen, no warning may fire.  Bug caught: a false separation alarm."""
    g = random_game(1, 2, 2, 3, 3, 4, eta=1.0)
    H, S, A, _ = g.shape
    data = simulate(g, np.full((H, S, A), 1.0 / A), 300, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = fit_mle(data, g)
    assert fit.converged and fit.separation.kind == "none"


def test_fisher_null_space_is_not_called_separation():
    """A leader action never played leaves its tabular coordinates flat (the Fisher null
    space: IdentifiabilityWarning), which is not separation: no SeparationWarning, and the
    rest converges.  Bug caught: the LP counting zero rows (lineality) as separable."""
    game = matrix_game(3, 2)
    a = [0, 0, 0, 1, 1, 1]
    b = [0, 1, 1, 0, 0, 1]
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fit = fit_mle(one_step_dataset(a, b, 3), game)
    cats = {w.category for w in rec}
    assert IdentifiabilityWarning in cats and SeparationWarning not in cats
    assert fit.converged and fit.separation.kind == "none"
    assert np.isinf(fit.std_err[2]) and np.all(np.isfinite(fit.std_err[:2]))


def test_lp_finds_every_separable_row_on_random_choice_sets():
    """On random small choice sets with sparse counts, the LP's cells are exactly the
    (context, response) pairs that some recession direction separates.  Golden: a second,
    independent decision per cell -- maximise the cell's own margin over the recession cone
    ``{a_r . delta >= 0, |delta|_inf <= 1}`` with SciPy's simplex-free interior-point solver
    -- and each cell's probability checked to fall along the reported direction.  Bug caught:
    the 0.5 threshold or the row deduplication losing or adding cells."""
    from scipy.optimize import linprog

    rng = np.random.default_rng(0)
    for _ in range(8):
        C, B, d = 4, 3, 3
        x = rng.normal(size=(C, B, d))
        n = (rng.uniform(size=(C, B)) < 0.35) * rng.integers(1, 4, size=(C, B))
        n[:, 0] += rng.uniform(size=C) < 0.5
        sep = find_separation(x, n)
        rows, pairs = [], []
        for c in range(C):
            for b in np.flatnonzero(n[c] > 0):
                for b2 in range(B):
                    if b2 != b:
                        rows.append(x[c, b] - x[c, b2])
                        pairs.append((c, b2))
        rows = np.array(rows)
        golden = set()
        for r, pair in zip(rows, pairs, strict=True):
            res = linprog(
                -r, A_ub=-rows, b_ub=np.zeros(len(rows)), bounds=[(-1, 1)] * d, method="highs-ipm"
            )
            if -res.fun > 1e-7:
                golden.add(pair)
        assert {tuple(cell) for cell in sep.cells} == golden
        if golden:
            u0 = x @ np.zeros(d)
            u1 = x @ (1e4 * sep.direction)
            p0 = np.exp(u0 - logsumexp(u0, axis=-1, keepdims=True))
            p1 = np.exp(u1 - logsumexp(u1, axis=-1, keepdims=True))
            for c, b2 in golden:
                assert p1[c, b2] < 1e-3 * p0[c, b2]


def test_cli_fit_prints_one_warning_line_for_separated_data(tmp_path, capsys):
    """``bayes-qse fit`` on the matrix game with unobserved cells: exactly one warning line on
    stderr, naming the separation and a cell, and the fit still prints.  Bug caught: a
    multi-line warning (the formatter's default) or one line per warning category."""
    game = matrix_game(3, 3)
    a, b = _matrix_data()
    game_path = game.save(tmp_path / "g.npz")
    data_path = one_step_dataset(a, b, 3).save(tmp_path / "d.npz")
    code = cli.main(["fit", str(data_path), str(game_path)])
    out = capsys.readouterr()
    assert code == 0
    lines = [ln for ln in out.err.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert "SeparationWarning" in lines[0] and "(h=0, s=0, a=1, b=2)" in lines[0]
    assert "std err" in out.out and "converged: no" in out.out
    code = cli.main(["fit", str(data_path), str(game_path), "--json"])
    out = capsys.readouterr()
    summary = json.loads(out.out)
    assert code == 0 and summary["converged"] is False and len(out.err.splitlines()) == 1
