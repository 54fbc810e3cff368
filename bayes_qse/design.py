"""Optimal designs for learning a commitment-observing follower (docs/math.md eq. 10).

The leader chooses *how often* to announce each of ``K`` candidate commitments ``x_k`` (a
design: weights ``w`` on the simplex); the follower answers each round by eq. (7a).  The
Fisher information of ``theta`` per round under commitment ``k`` is (eq. 10a)

    M_k(theta) = eta^2 psi_k^T (diag p_k - p_k p_k^T) psi_k = J_k^T J_k,
    J_k[b] = eta sqrt(p_k[b]) (psi_k[b] - p_k . psi_k),          p_k = softmax(eta psi_k theta)

with ``psi_k`` the ``[B, d]`` commitment features of ``x_k`` (eq. 7b, 9a); ``n`` rounds spread by
``w`` give ``n M(w) = n sum_k w_k M_k``.  The criteria (eq. 10b), all convex in ``w``:

- ``"A"``: ``phi(w) = tr(A (P + n M(w))^{-1})`` with ``A = I`` (the total variance of the
  estimate), any positive semi-definite ``A`` (a weighted variance), or ``A = c c^T``
  (``"c"``: the variance of the linear functional ``c . theta``, e.g. the gradient of the
  leader's value);
- ``"D"``: ``phi(w) = -log det(P + n M(w))``;

where ``P`` is a prior (or earlier data's) precision, ``0`` for the classical designs, and
``phi`` is averaged over draws of ``theta`` when ``info`` has a leading draw axis (a Bayesian
design: the expected posterior variance after ``n`` more rounds, under the Laplace
approximation).  With ``d_k = -d phi / d w_k >= 0`` (eq. 10c), ``w`` is optimal iff
``max_k d_k = sum_k w_k d_k`` (the Kiefer-Wolfowitz equivalence theorem), and by convexity

    phi(w) - min phi <= gap(w) = max_k d_k - sum_k w_k d_k                               (10d)

so the gap certifies the design.  :func:`optimal_design` runs the multiplicative algorithm
``w_k <- w_k (d_k / sum_j w_j d_j)^(1/2)`` (monotone for these criteria) until the relative gap
is below ``tol``.  :func:`efficient_rounding` turns weights into round counts that sum to ``n``
exactly (Pukelsheim & Rieder 1992).

Shapes: ``K`` candidates, ``B`` follower actions, ``d`` parameters, ``S`` draws of ``theta``.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from .errors import BayesQSEInputError

CRITERIA = ("A", "D", "c")


def mixture_candidates(m: int, t_grid=(0.25, 0.5, 0.75)) -> np.ndarray:
    """``X[K, m]``: the ``m`` pure strategies, then ``(1 - t) e_i + t e_j`` for ``i < j`` and
    each ``t`` of ``t_grid`` (in ``(0, 1)``): ``K = m + len(t_grid) m (m - 1) / 2``."""
    t_grid = np.asarray(t_grid, float)
    if m < 1 or np.any((t_grid <= 0) | (t_grid >= 1)):
        raise BayesQSEInputError("t_grid: every mixing weight must lie in (0, 1); m >= 1")
    eye = np.eye(m)
    mixes = [
        (1 - t) * eye[i] + t * eye[j]
        for i, j in itertools.combinations(range(m), 2)
        for t in t_grid
    ]
    return np.concatenate([eye, np.reshape(mixes, (-1, m))], axis=0)


def response_jacobians(theta: np.ndarray, psi: np.ndarray, eta: float) -> np.ndarray:
    """``J[..., K, B, d]`` of eq. (10a) for ``theta[..., d]`` (a leading axis: draws) and
    ``psi[K, B, d]``: ``M_k = J_k^T J_k`` is the information per round under commitment k."""
    theta = np.asarray(theta, float)
    psi = np.asarray(psi, float)
    logits = eta * np.einsum("kbd,...d->...kb", psi, theta)
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    mean = np.einsum("...kb,kbd->...kd", p, psi)
    return eta * np.sqrt(p)[..., None] * (psi - mean[..., None, :])


def information(jac: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``M(w)[..., d, d] = sum_k w_k J_k^T J_k`` (eq. 10a) for ``jac[..., K, B, d]``."""
    jac = np.asarray(jac, float)
    root = np.sqrt(np.asarray(weights, float))[:, None, None] * jac  # [..., K, B, d]
    flat = root.reshape(*jac.shape[:-3], -1, jac.shape[-1])
    return np.swapaxes(flat, -1, -2) @ flat


class Design(NamedTuple):
    """An approximate design (:func:`optimal_design`).

    Attributes:
        weights: ``[K]`` on the simplex.
        criterion: ``phi(w)`` (eq. 10b).
        gap: the equivalence-theorem gap (10d), an upper bound on ``phi(w) - min phi``.
        iterations: multiplicative steps taken.
        converged: ``gap <= tol * |phi(w)|`` (``tol`` as given).
    """

    weights: np.ndarray
    criterion: float
    gap: float
    iterations: int
    converged: bool


def _check(criterion: str, jac: np.ndarray, A, prior) -> None:
    if criterion not in CRITERIA:
        raise BayesQSEInputError(f"criterion: must be one of {CRITERIA}, got {criterion!r}")
    if jac.ndim not in (3, 4):
        raise BayesQSEInputError(f"jac: expected [K,B,d] or [S,K,B,d], got {jac.shape}")
    d = jac.shape[-1]
    if criterion == "c" and (A is None or np.shape(A) != (d,)):
        raise BayesQSEInputError(f"A: the 'c' criterion needs the vector c of shape ({d},)")
    if criterion == "A" and A is not None and np.shape(A) != (d, d):
        raise BayesQSEInputError(f"A: must be a [{d},{d}] matrix, got shape {np.shape(A)}")
    if prior is not None and np.shape(prior) != (d, d):
        raise BayesQSEInputError(f"prior: must be a [{d},{d}] precision, got {np.shape(prior)}")


def criterion_and_gradient(
    weights: np.ndarray,
    jac: np.ndarray,
    criterion: str = "A",
    A: np.ndarray | None = None,
    prior: np.ndarray | None = None,
    n: float = 1.0,
) -> tuple[float, np.ndarray]:
    """``(phi(w), d)`` of eq. (10b)-(10c): the criterion and ``d_k = -d phi / d w_k``.

    Args:
        weights: ``[K]``.
        jac: ``[K, B, d]`` or ``[S, K, B, d]`` (:func:`response_jacobians`; ``phi`` is the
            mean over the ``S`` draws).
        criterion: ``"A"``, ``"D"`` or ``"c"``.
        A: ``[d, d]`` for ``"A"`` (default the identity), the vector ``c[d]`` for ``"c"``.
        prior: ``[d, d]`` precision ``P`` (default 0).
        n: rounds the design will spend (scales ``M``; irrelevant when ``prior`` is 0).

    Raises:
        numpy.linalg.LinAlgError: ``P + n M(w)`` is singular (the design does not identify
            ``theta``).
    """
    jac = jac if jac.ndim == 4 else jac[None]
    d = jac.shape[-1]
    precision = n * information(jac, weights)
    if prior is not None:
        precision = precision + np.asarray(prior, float)
    cov = np.linalg.inv(precision)  # [S, d, d]
    if criterion == "D":
        sign, logdet = np.linalg.slogdet(precision)
        if np.any(sign <= 0):
            raise np.linalg.LinAlgError("information matrix is singular")
        g = cov  # d_k = n tr(S^-1 M_k)
        phi = float(np.mean(-logdet))
    else:
        if criterion == "c":
            c = np.asarray(A, float)
            weight = np.outer(c, c)
        else:
            weight = np.eye(d) if A is None else np.asarray(A, float)
        g = cov @ weight @ cov  # d_k = n tr(A S^-1 M_k S^-1)
        phi = float(np.mean(np.einsum("de,sed->s", weight, cov)))
    S, K, B, _ = jac.shape
    jg = (jac.reshape(S, K * B, d) @ g).reshape(S, K, B, d)
    grad = n * np.mean(np.sum(jg * jac, axis=(-1, -2)), axis=0)
    return phi, grad


def optimal_design(
    jac: np.ndarray,
    criterion: str = "A",
    *,
    A: np.ndarray | None = None,
    prior: np.ndarray | None = None,
    n: float = 1.0,
    start: np.ndarray | None = None,
    tol: float = 1e-4,
    max_iter: int = 5000,
    power: float = 0.5,
) -> Design:
    """The ``criterion``-optimal design over the candidates of ``jac`` (eq. 10b-10d).

    Multiplicative algorithm from ``start`` (default uniform) until the relative gap (10d)
    ``gap / |phi| <= tol`` (then the A-efficiency ``min phi / phi >= 1 - tol``; for ``"D"``,
    ``gap / d <= tol``: the D-efficiency ``exp((phi* - phi) / d) >= exp(-tol)``) or
    ``max_iter`` steps.  Arguments as in
    :func:`criterion_and_gradient`.

    Raises:
        BayesQSEInputError: an unknown criterion or a shape mismatch (naming the field).
        numpy.linalg.LinAlgError: no design over these candidates identifies ``theta``
            (the uniform design's information is singular and ``prior`` is 0).
    """
    jac = np.asarray(jac, float)
    _check(criterion, jac, A, prior)
    K = jac.shape[-3]
    w = np.full(K, 1.0 / K) if start is None else np.asarray(start, float) / np.sum(start)
    scale = float(jac.shape[-1]) if criterion == "D" else None
    for it in range(max_iter + 1):
        phi, dk = criterion_and_gradient(w, jac, criterion, A, prior, n)
        mean = float(w @ dk)
        gap = float(dk.max() - mean)
        ref = scale or abs(phi)
        if gap <= tol * ref or it == max_iter or mean <= 0:
            break
        w = w * (np.maximum(dk, 0.0) / mean) ** power
        w /= w.sum()
    return Design(w, phi, gap, it, bool(gap <= tol * (scale or abs(phi))))


def efficient_rounding(weights: np.ndarray, n: int) -> np.ndarray:
    """Integer round counts ``[K]`` summing to exactly ``n`` from design ``weights``, by the
    efficient apportionment of Pukelsheim & Rieder (1992): start from
    ``ceil((n - l/2) w_k)`` on the ``l`` support points, then add a round where
    ``n_k / w_k`` is smallest (or remove one where ``(n_k - 1) / w_k`` is largest) until
    the total is ``n``.  Candidates of weight 0 get no rounds.  For ``n >= l`` the result
    maximises ``min_k n_k / w_k`` over the allocations of ``n`` rounds (the efficiency bound
    of the exact design).

    Raises:
        BayesQSEInputError: ``n < 0``, or weights negative / not summing to a positive total.
    """
    w = np.asarray(weights, float)
    if n < 0 or int(n) != n:
        raise BayesQSEInputError(f"n: must be an integer >= 0, got {n!r}")
    if np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
        raise BayesQSEInputError("weights: must be finite, >= 0, with a positive sum")
    w = w / w.sum()
    support = w > 0
    counts = np.zeros(w.shape, np.int64)
    counts[support] = np.maximum(np.ceil((n - support.sum() / 2) * w[support]), 0)
    safe = np.where(support, w, 1.0)
    while counts.sum() < n:
        counts[int(np.argmin(np.where(support, counts / safe, np.inf)))] += 1
    while counts.sum() > n:
        counts[int(np.argmax(np.where(counts > 0, (counts - 1) / safe, -np.inf)))] -= 1
    return counts


__all__ = [
    "CRITERIA",
    "Design",
    "criterion_and_gradient",
    "efficient_rounding",
    "information",
    "mixture_candidates",
    "optimal_design",
    "response_jacobians",
]
