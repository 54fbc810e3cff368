"""Simulated play of a normal-form commitment game as grouped counts, and PURE (docs/math.md
eq. 9g): Wu, Shen, Fang & Xu (NeurIPS 2022)'s baseline -- the leader plays her ``m`` pure
strategies round robin, and ``V`` is the MLE over ``0 <= V <= 1``.

:func:`simulate_commitment_counts` draws the responses to ``r_k`` rounds of commitment
``x_k`` as one multinomial per distinct commitment,
``n_k ~ Multinomial(r_k, nu(. | x_k; theta))``: the counts have exactly the law of ``r_k``
independent rounds, at a cost independent of ``r_k`` (``10^7`` rounds cost what ``10`` do).
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np

from .._validate import SEED_MAX, as_float_array
from ..counts import SIMPLEX_ATOL, CommitmentCounts
from ..errors import BayesQSEInputError
from ..identification import IdentifiabilityWarning
from ..inference import fit_mle
from ..mle import MLEFit
from .game import NormalFormGame, normal_form_game, onehot_features


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or int(seed) != seed or not 0 <= int(seed) <= SEED_MAX:
        raise BayesQSEInputError(f"seed: must be an integer in [0, {SEED_MAX}], got {seed!r}")
    return int(seed)


def _check_rounds(rounds: Any, k: int) -> np.ndarray:
    r = np.asarray(rounds)
    if r.ndim == 0:
        r = np.full(k, r)
    if r.shape != (k,):
        raise BayesQSEInputError(f"rounds: expected a scalar or shape ({k},), got {r.shape}")
    if not np.issubdtype(r.dtype, np.integer):
        if not (np.all(np.isfinite(r)) and np.all(r == np.round(r))):
            raise BayesQSEInputError("rounds: must be whole numbers")
    if r.size and r.min() < 0:
        raise BayesQSEInputError(f"rounds: must be >= 0, found {r.min()}")
    return r.astype(np.int64)


def simulate_commitment_counts(
    game: NormalFormGame, commitments: Any, rounds: Any, seed: int, theta: Any = None
) -> CommitmentCounts:
    """Responses to ``rounds[k]`` rounds of ``commitments[k]`` (eq. 9a), grouped.

    Args:
        game: the game (its ``theta`` unless ``theta`` is given).
        commitments: ``[K, m]`` mixed strategies (rows on the simplex).
        rounds: ``[K]`` (or a scalar) non-negative integers.
        seed: ``np.random.default_rng(seed)`` draws one multinomial per row, in order.

    Returns:
        :class:`~bayes_qse.counts.CommitmentCounts` with ``counts[K, n]`` (rows of zero
        rounds kept, with zero counts).
    """
    x = as_float_array(commitments, "commitments", 2)
    if x.shape[1] != game.m or x.shape[0] < 1:
        raise BayesQSEInputError(f"commitments: expected shape (K, {game.m}), got {x.shape}")
    if x.min() < -SIMPLEX_ATOL or np.abs(x.sum(axis=1) - 1).max() > SIMPLEX_ATOL * game.m:
        raise BayesQSEInputError("commitments: each row must be a mixed strategy (on the simplex)")
    r = _check_rounds(rounds, x.shape[0])
    rng = np.random.default_rng(_check_seed(seed))
    p = np.asarray(game.response(x, theta), np.float64)
    p = p / p.sum(axis=1, keepdims=True)
    counts = rng.multinomial(r, p).astype(np.float64)
    return CommitmentCounts(x, counts)


def round_robin(m: int, n_rounds: int) -> tuple[np.ndarray, np.ndarray]:
    """PURE's design: ``(commitments = I_m, rounds[m])``, ``n_rounds`` split as evenly as
    round robin does (the first ``n_rounds mod m`` pure strategies get one more round)."""
    if int(n_rounds) != n_rounds or n_rounds < 0:
        raise BayesQSEInputError(f"n_rounds: must be an integer >= 0, got {n_rounds!r}")
    n_rounds = int(n_rounds)
    rounds = np.full(m, n_rounds // m, np.int64)
    rounds[: n_rounds % m] += 1
    return np.eye(m), rounds


def pure_counts(game: NormalFormGame, n_rounds: int, seed: int) -> CommitmentCounts:
    """The counts of ``n_rounds`` rounds of PURE's round robin (:func:`round_robin`)."""
    x, r = round_robin(game.m, n_rounds)
    return simulate_commitment_counts(game, x, r, seed)


class PureFit(NamedTuple):
    """PURE's estimate (eq. 9g).

    Attributes:
        utilities: ``[m, n]`` ``Vhat`` in ``[0, 1]`` (one maximiser: rows are identified
            only up to a shift, which the error of eq. (9e) ignores).
        fit: the bounded :class:`~bayes_qse.mle.MLEFit` in the full one-hot coding
            (``theta = vec(Vhat)``).
    """

    utilities: np.ndarray
    fit: MLEFit


def pure_estimate(game: NormalFormGame, counts: CommitmentCounts) -> PureFit:
    """PURE's estimator: the MLE of ``V`` over ``0 <= V <= 1`` (eq. 9g) from any grouped
    counts of ``game``'s follower (``m x n``, its ``eta``), by :func:`bayes_qse.fit_mle`
    with ``lower=0, upper=1`` in the full one-hot coding.

    The ``m`` row shifts of ``V`` are not identified (eq. 9a); the :class:`IdentifiabilityWarning`
    about exactly them is expected and silenced, any other direction still warns.
    """
    full = normal_form_game(onehot_features(game.m, game.n, "full"), game.eta, coding="full")
    shifts = np.kron(np.eye(game.m), np.ones(game.n)) / np.sqrt(game.n)  # [m, m n]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = fit_mle(counts, full, lower=0.0, upper=1.0)
    for w in caught:
        if issubclass(w.category, IdentifiabilityWarning) and _only_shifts(fit, shifts):
            continue
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return PureFit(np.asarray(fit.theta).reshape(game.m, game.n), fit)


def _only_shifts(fit: MLEFit, shifts: np.ndarray) -> bool:
    """Whether the fit's non-identified directions all lie in the span of the row shifts."""
    dirs = np.asarray(fit.non_identified).reshape(-1, shifts.shape[1])
    resid = dirs - (dirs @ shifts.T) @ shifts
    return bool(np.all(np.abs(resid) < 1e-6))


__all__ = [
    "PureFit",
    "pure_counts",
    "pure_estimate",
    "round_robin",
    "simulate_commitment_counts",
]
