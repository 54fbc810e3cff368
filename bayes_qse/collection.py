"""Collecting data about a commitment-observing follower: PURE's round robin, two-stage and
sequential optimal designs (docs/math.md eq. 10), on normal-form games
(:mod:`bayes_qse.normal_form`).

Every procedure spends exactly ``n_rounds`` rounds and returns the grouped counts over a
fixed candidate set ``X[K, m]`` whose first ``m`` rows are the pure strategies
(:func:`~bayes_qse.design.mixture_candidates`), so fits on them compile once per game size:

- :func:`collect_round_robin`: PURE's schedule (round ``t`` plays ``e_{t mod m}``);
- :func:`collect_two_stage`: a pilot of ``round(pilot * n_rounds)`` round-robin rounds, the
  Laplace posterior mean at the pilot, then the rest of the rounds spread by the
  ``criterion``-optimal design at that estimate (eq. 10b, :func:`~bayes_qse.design.optimal_design`)
  and :func:`~bayes_qse.design.efficient_rounding`;
- :func:`collect_sequential`: the same pilot, then ``batches`` equal batches, each designed
  from the current Laplace posterior: the Bayesian criterion of eq. (10b) with ``P`` the
  posterior precision, ``n`` the batch size and ``phi`` averaged over ``draws`` posterior
  draws of ``theta`` (the expected posterior variance after the batch).

The quantity the design targets is ``A`` (eq. 10b): :func:`utility_weights` (default,
``target="utilities"``) for the follower's utilities up to row shifts (the quantity of eq. 9e);
``target="value"``: ``A = c c^T`` with ``c`` the gradient of the leader's value at her best
commitment under the current estimate (:func:`commitment_value_gradient`,
:func:`best_commitment`, eq. 10e), re-computed at every (re-)design; or ``("c", grad)`` for
any scalar with gradient ``grad``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy.optimize import minimize

from .counts import CommitmentCounts
from .design import Design, efficient_rounding, optimal_design, response_jacobians
from .errors import BayesQSEInputError
from .inference import sample_posterior
from .normal_form import NormalFormGame, round_robin, simulate_commitment_counts


class Collected(NamedTuple):
    """Data gathered by a collection procedure.

    Attributes:
        counts: :class:`CommitmentCounts` over all ``K`` candidates (zero rows unused).
        rounds: ``[K]`` rounds spent on each candidate (sums to ``n_rounds``).
        designs: the :class:`~bayes_qse.design.Design` of each (re-)design, in order.
    """

    counts: CommitmentCounts
    rounds: np.ndarray
    designs: tuple[Design, ...]


def utility_weights(game: NormalFormGame) -> np.ndarray:
    """``A[d, d] = F^T C^T C F`` with ``F[mn, d]`` the features (``vec V = F theta``) and
    ``C`` the within-row centring: ``tr(A Cov(theta_hat))`` is the total variance of the
    row-centred utilities, which row shifts do not change (the quantity eq. 9e measures)."""
    m, n = game.m, game.n
    F = np.asarray(game.features, float).reshape(m, n, -1)
    centred = F - F.mean(axis=1, keepdims=True)
    flat = centred.reshape(m * n, -1)
    return flat.T @ flat


def _check(game: NormalFormGame, candidates: Any, n_rounds: int, pilot: float) -> np.ndarray:
    x = np.asarray(candidates, float)
    if x.ndim != 2 or x.shape[1] != game.m or x.shape[0] < game.m:
        raise BayesQSEInputError(f"candidates: expected shape (K >= {game.m}, {game.m})")
    if not np.allclose(x[: game.m], np.eye(game.m)):
        raise BayesQSEInputError("candidates: the first m rows must be the pure strategies")
    if int(n_rounds) != n_rounds or n_rounds < 1:
        raise BayesQSEInputError(f"n_rounds: must be an integer >= 1, got {n_rounds!r}")
    if not 0 < pilot < 1:
        raise BayesQSEInputError(f"pilot: must be in (0, 1), got {pilot!r}")
    return x


def _seeds(seed: int, count: int) -> list[int]:
    state = np.random.SeedSequence(int(seed)).generate_state(count, np.uint32)
    return [int(s) for s in state]


def _leader(game: NormalFormGame, leader_utility: Any) -> np.ndarray:
    L = game.leader_utility if leader_utility is None else leader_utility
    if L is None or np.shape(L) != (game.m, game.n):
        raise BayesQSEInputError(f"leader_utility: need an [{game.m},{game.n}] matrix")
    return np.asarray(L, float)


def commitment_value(game: NormalFormGame, x: Any, theta: Any, leader_utility: Any = None) -> float:
    """``U(x; theta) = sum_b nu_b(x; theta) (x @ L)_b``: the leader's expected utility of
    commitment ``x[m]`` against the quantal follower (eq. 10e)."""
    x = np.asarray(x, float)
    nu = np.asarray(game.response(x, theta), float)
    return float(nu @ (x @ _leader(game, leader_utility)))


def commitment_value_gradient(
    game: NormalFormGame, x: Any, theta: Any, leader_utility: Any = None
) -> np.ndarray:
    """``d U(x; theta) / d theta = eta sum_b nu_b (u_b - nu . u)(psi_b - nu . psi)`` with
    ``u = x @ L`` and ``psi = x @ features`` (eq. 10e), ``[d]``; at the leader's best
    commitment it is the gradient of her QSE value (the envelope theorem)."""
    x = np.asarray(x, float)
    nu = np.asarray(game.response(x, theta), float)
    u = x @ _leader(game, leader_utility)
    psi = np.einsum("a,abd->bd", x, np.asarray(game.features, float))
    return float(game.eta) * ((nu * (u - nu @ u)) @ (psi - nu @ psi))


def best_commitment(
    game: NormalFormGame, theta: Any, candidates: Any, leader_utility: Any = None
) -> np.ndarray:
    """The leader's best commitment ``x[m]`` against ``theta`` (eq. 10e): the best of
    ``candidates``, then SciPy's SLSQP over the simplex from it (a local optimum near the
    best candidate; the value is not concave in ``x``)."""
    x = np.asarray(candidates, float)
    values = [commitment_value(game, xk, theta, leader_utility) for xk in x]
    start = x[int(np.argmax(values))]
    res = minimize(
        lambda v: -commitment_value(game, v, theta, leader_utility),
        start,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * game.m,
        constraints=[{"type": "eq", "fun": lambda v: v.sum() - 1.0}],
    )
    best = np.clip(res.x, 0.0, 1.0)
    best /= best.sum()
    return best if -res.fun >= max(values) else start


def _target(game, target, theta, x, leader_utility) -> tuple[str | None, np.ndarray]:
    """``(criterion override, A)`` for ``target``: ``"utilities"``, ``"value"`` (the c-design
    for the leader's value at ``theta``'s best commitment) or ``("c", grad)``."""
    if isinstance(target, str) and target == "utilities":
        return None, utility_weights(game)
    if isinstance(target, str) and target == "value":
        best = best_commitment(game, theta, x, leader_utility)
        return "c", commitment_value_gradient(game, best, theta, leader_utility)
    if isinstance(target, tuple) and len(target) == 2 and target[0] == "c":
        return "c", np.asarray(target[1], float)
    raise BayesQSEInputError("target: 'utilities', 'value' or ('c', gradient[d])")


def collect_round_robin(
    game: NormalFormGame, candidates: Any, n_rounds: int, seed: int
) -> Collected:
    """PURE's round robin over the pure strategies, as counts over ``candidates``."""
    x = _check(game, candidates, n_rounds, 0.5)
    rounds = np.zeros(x.shape[0], np.int64)
    rounds[: game.m] = round_robin(game.m, int(n_rounds))[1]
    return Collected(simulate_commitment_counts(game, x, rounds, seed), rounds, ())


def _pilot(game, x, n_rounds, pilot, seed):
    n0 = max(1, int(round(pilot * n_rounds)))
    rounds = np.zeros(x.shape[0], np.int64)
    rounds[: game.m] = round_robin(game.m, n0)[1]
    return rounds, simulate_commitment_counts(game, x, rounds, seed)


def _posterior(game, counts, prior_scale, draws, seed):
    post = sample_posterior(
        counts,
        game,
        method="laplace",
        prior_scale=prior_scale,
        num_samples=max(draws, 2),
        seed=seed,
    )
    return post


def collect_two_stage(
    game: NormalFormGame,
    candidates: Any,
    n_rounds: int,
    seed: int,
    *,
    criterion: str = "A",
    target: Any = "utilities",
    pilot: float = 0.2,
    prior_scale: float = 1.0,
    tol: float = 1e-3,
    leader_utility: Any = None,
) -> Collected:
    """A round-robin pilot, then the ``criterion``-optimal design (``"A"`` or ``"D"``; a
    ``"value"`` or ``("c", grad)`` ``target`` makes it ``"c"``, counting the pilot's
    precision) at the pilot's Laplace posterior mean; ``leader_utility[m, n]`` (default the
    game's) for ``target="value"``.

    ``seed`` derives the pilot's, the posterior's and the second stage's seeds."""
    x = _check(game, candidates, n_rounds, pilot)
    s_pilot, s_post, s_main = _seeds(seed, 3)
    rounds, counts = _pilot(game, x, n_rounds, pilot, s_pilot)
    post = _posterior(game, counts, prior_scale, 2, s_post)
    override, A = _target(game, target, post.mean, x, leader_utility)
    crit = override or criterion
    psi = np.einsum("ka,abd->kbd", x, np.asarray(game.features, float))
    jac = response_jacobians(post.mean, psi, float(game.eta))
    left = int(n_rounds) - int(rounds.sum())
    # a c-design is singular on its own: it counts the pilot's precision (eq. 10b with P)
    prior = np.linalg.inv(np.asarray(post.cov, float)) if crit == "c" else None
    design = optimal_design(
        jac, crit, A=None if crit == "D" else A, prior=prior, n=float(max(left, 1)), tol=tol
    )
    second = efficient_rounding(design.weights, left)
    more = simulate_commitment_counts(game, x, second, s_main)
    total = CommitmentCounts(x, np.asarray(counts.counts) + np.asarray(more.counts))
    return Collected(total, rounds + second, (design,))


def collect_sequential(
    game: NormalFormGame,
    candidates: Any,
    n_rounds: int,
    seed: int,
    *,
    criterion: str = "A",
    target: Any = "utilities",
    pilot: float = 0.2,
    batches: int = 4,
    draws: int = 4,
    prior_scale: float = 1.0,
    tol: float = 1e-3,
    leader_utility: Any = None,
) -> Collected:
    """A round-robin pilot, then ``batches`` equal batches, each spread by the Bayesian
    design (eq. 10b with ``P`` the current Laplace posterior precision, ``n`` the batch's
    rounds, ``phi`` averaged over ``draws`` posterior draws) and rounded exactly."""
    x = _check(game, candidates, n_rounds, pilot)
    if int(batches) != batches or batches < 1 or int(draws) != draws or draws < 1:
        raise BayesQSEInputError("batches, draws: must be integers >= 1")
    seeds = _seeds(seed, 1 + 2 * batches)
    rounds, counts = _pilot(game, x, n_rounds, pilot, seeds[0])
    total = np.asarray(counts.counts, float)
    left = int(n_rounds) - int(rounds.sum())
    sizes = left // batches + (np.arange(batches) < left % batches)
    psi = np.einsum("ka,abd->kbd", x, np.asarray(game.features, float))
    designs = []
    for j, size in enumerate(sizes):
        if size == 0:
            continue
        post = _posterior(game, CommitmentCounts(x, total), prior_scale, draws, seeds[1 + 2 * j])
        override, A = _target(game, target, post.mean, x, leader_utility)
        crit = override or criterion
        thetas = np.asarray(post.theta)[:draws]
        jac = response_jacobians(thetas, psi, float(game.eta))
        prior = np.linalg.inv(np.asarray(post.cov, float))
        design = optimal_design(
            jac, crit, A=None if crit == "D" else A, prior=prior, n=float(size), tol=tol
        )
        batch = efficient_rounding(design.weights, int(size))
        total = total + np.asarray(
            simulate_commitment_counts(game, x, batch, seeds[2 + 2 * j]).counts
        )
        rounds = rounds + batch
        designs.append(design)
    return Collected(CommitmentCounts(x, total), rounds, tuple(designs))


__all__ = [
    "Collected",
    "best_commitment",
    "commitment_value",
    "commitment_value_gradient",
    "collect_round_robin",
    "collect_sequential",
    "collect_two_stage",
    "utility_weights",
]
