"""Grouped sufficient statistics of the follower's likelihood (docs/math.md eq. 9d, eq. 4'):
counts per distinct context, so that memory follows the number of distinct commitments
``K``, not the number of rounds ``N``.

- :class:`CommitmentCounts` -- a follower who answers the announced mixed strategy (eq. 7):
  the ``K`` distinct commitments and the responses observed under each.  Unlike
  :class:`~bayes_qse.commitment.CommitmentStats` (the commitment features
  ``psi[K, B, d]``, dense in ``d``), it keeps ``[K, A]`` commitments and ``[K, B]`` counts;
  the likelihood forms ``x_k @ U(theta)`` on the fly.
- :class:`ActionCounts` -- a follower who answers the leader's realised action (eq. 1d,
  myopic): the counts ``n[H,S,A,B]`` are sufficient (eq. 4 does not depend on the announced
  policy).

Both are JAX pytrees (NamedTuples of arrays) that :func:`bayes_qse.inference.fit_mle`,
:func:`~bayes_qse.inference.sample_posterior` and :func:`~bayes_qse.sets.likelihood_ratio_set`
accept in place of a :class:`~bayes_qse.data.Dataset`; the type says which follower answered.
Zero count rows contribute nothing (padding to a fixed ``K`` never changes a fit).

Shapes: a normal-form game (``H = S = 1``) takes ``commitments[K, A]`` and ``counts[K, B]``;
a Markov game ``commitments[K, H, S, A]`` (the policy ``pi_k``) and ``counts[K, H, S, B]``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ._validate import as_float_array
from .errors import DatasetValidationError

#: Tolerance on ``sum_a x_a = 1`` and ``x_a >= 0`` for a commitment row.
SIMPLEX_ATOL = 1e-8


class CommitmentCounts(NamedTuple):
    """Responses of a commitment-observing follower grouped by commitment (eq. 9d).

    Attributes:
        commitments: ``[K, A]`` (normal form) or ``[K, H, S, A]`` mixed strategies, each
            row on the simplex.
        counts: ``[K, B]`` or ``[K, H, S, B]`` non-negative response counts under each.
    """

    commitments: Any
    counts: Any

    @property
    def n_rounds(self) -> float:
        """The number of observed responses, ``sum counts``."""
        return float(np.sum(np.asarray(self.counts)))

    @property
    def n_commitments(self) -> int:
        """``K``, the number of rows (including zero-count padding)."""
        return int(np.shape(self.counts)[0])


class ActionCounts(NamedTuple):
    """Responses of an action-observing (myopic) follower: ``counts[H, S, A, B]``, or
    ``[A, B]`` for a normal-form game (``H = S = 1``), of ``b`` after ``(h, s, a)``."""

    counts: Any

    @property
    def n_rounds(self) -> float:
        return float(np.sum(np.asarray(self.counts)))


def _check_counts(counts: Any, name: str) -> np.ndarray:
    n = as_float_array(counts, name, None, DatasetValidationError)
    if n.size and n.min() < 0:
        raise DatasetValidationError(f"{name}: counts must be >= 0, found {n.min():.6g}")
    return n


def check_commitment_counts(
    stats: CommitmentCounts, shape: tuple[int, int, int, int]
) -> CommitmentCounts:
    """Validate ``stats`` against a game of ``(H, S, A, B)`` and return float64 copies in the
    Markov form ``commitments[K, H, S, A]``, ``counts[K, H, S, B]``.

    Raises :class:`~bayes_qse.errors.DatasetValidationError` naming the field
    (``commitments``: shape, not on the simplex; ``counts``: shape, negative, none observed)
    before anything is allocated beyond the inputs themselves.
    """
    H, S, A, B = shape
    x = as_float_array(stats.commitments, "commitments", None, DatasetValidationError)
    n = _check_counts(stats.counts, "counts")
    normal_form = x.ndim == 2
    want_x = ("K", A) if normal_form else ("K", H, S, A)
    if x.ndim not in (2, 4) or (normal_form and (H, S) != (1, 1)):
        raise DatasetValidationError(
            f"commitments: expected shape {want_x} for this game, got {x.shape}"
        )
    if x.shape[1:] != want_x[1:]:
        raise DatasetValidationError(f"commitments: expected shape {want_x}, got {x.shape}")
    K = x.shape[0]
    want_n = (K, B) if normal_form else (K, H, S, B)
    if n.shape != want_n:
        raise DatasetValidationError(f"counts: expected shape {want_n}, got {n.shape}")
    if K == 0:
        raise DatasetValidationError("commitments: no commitment given (K = 0)")
    if x.min() < -SIMPLEX_ATOL:
        k = int(np.argwhere(x < -SIMPLEX_ATOL)[0][0])
        raise DatasetValidationError(
            f"commitments: row {k} has a negative probability ({x.min():.3g}); each row must "
            "be a mixed strategy"
        )
    off = np.abs(x.sum(axis=-1) - 1.0)
    if off.max() > SIMPLEX_ATOL * A + 1e-12:
        k = int(np.argmax(off.reshape(K, -1).max(axis=1)))
        raise DatasetValidationError(
            f"commitments: row {k} sums to {1 - off.reshape(K, -1)[k].max():.9g}, not 1; "
            "each row must be a mixed strategy (on the simplex)"
        )
    if n.sum() <= 0:
        raise DatasetValidationError("counts: no response observed (all counts are 0)")
    x = np.clip(x, 0.0, None)
    x = x / x.sum(axis=-1, keepdims=True)
    return CommitmentCounts(x.reshape(K, H, S, A), n.reshape(K, H, S, B))


def check_action_counts(stats: ActionCounts, shape: tuple[int, int, int, int]) -> ActionCounts:
    """Validate ``stats`` against ``(H, S, A, B)``; returns float64 ``counts[H, S, A, B]``."""
    H, S, A, B = shape
    n = _check_counts(stats.counts, "counts")
    if n.shape not in ((H, S, A, B),) + (((A, B),) if (H, S) == (1, 1) else ()):
        want = (A, B) if (H, S) == (1, 1) else (H, S, A, B)
        raise DatasetValidationError(f"counts: expected shape {want}, got {n.shape}")
    if n.sum() <= 0:
        raise DatasetValidationError("counts: no response observed (all counts are 0)")
    return ActionCounts(n.reshape(H, S, A, B))


def group_rounds(commitments: Any, responses: Any, n_responses: int) -> CommitmentCounts:
    """Group per-round data into :class:`CommitmentCounts` (normal form).

    Args:
        commitments: ``[N, A]`` the commitment announced in each round.
        responses: ``[N]`` int, the follower's action in each round.
        n_responses: ``B``.

    Returns the ``K`` distinct rows of ``commitments`` (in sorted order, exact equality) and
    the ``[K, B]`` counts of responses under each.
    """
    x = as_float_array(commitments, "commitments", 2, DatasetValidationError)
    b = np.asarray(responses)
    if b.shape != (x.shape[0],):
        raise DatasetValidationError(f"responses: expected shape ({x.shape[0]},), got {b.shape}")
    if b.size and (not np.issubdtype(b.dtype, np.integer) or b.min() < 0 or b.max() >= n_responses):
        raise DatasetValidationError(f"responses: must be integers in [0, {n_responses})")
    uniq, inv = np.unique(x, axis=0, return_inverse=True)
    counts = np.zeros((uniq.shape[0], int(n_responses)))
    np.add.at(counts, (inv.reshape(-1), b), 1.0)
    return CommitmentCounts(uniq, counts)


def merge_counts(*stats: CommitmentCounts) -> CommitmentCounts:
    """One :class:`CommitmentCounts` of several (same shapes but ``K``): equal commitments
    are merged (their counts added), zero-count rows dropped (the sequential designs'
    running statistics)."""
    if not stats:
        raise DatasetValidationError("stats: nothing to merge")
    x = np.concatenate([np.asarray(s.commitments, np.float64) for s in stats])
    n = np.concatenate([np.asarray(s.counts, np.float64) for s in stats])
    keep = n.reshape(n.shape[0], -1).sum(axis=1) > 0
    x, n = x[keep], n[keep]
    flat = x.reshape(x.shape[0], -1)
    uniq, inv = np.unique(flat, axis=0, return_inverse=True)
    out = np.zeros((uniq.shape[0], *n.shape[1:]))
    np.add.at(out, inv.reshape(-1), n)
    return CommitmentCounts(uniq.reshape(-1, *x.shape[1:]), out)


__all__ = [
    "ActionCounts",
    "CommitmentCounts",
    "check_action_counts",
    "check_commitment_counts",
    "group_rounds",
    "merge_counts",
]
