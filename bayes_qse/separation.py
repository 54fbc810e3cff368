"""When the MLE of a multinomial logit does not exist: separation (docs/math.md §2.3).

The myopic follower (eq. 1d) and the commitment-observing follower (eq. 7a, SUQR) are
multinomial logits on *choice sets*: context ``c`` (a step, state and leader action; or a
commitment) offers responses ``b`` with features ``x_{c,b}`` in ``R^d``, and
``L(theta) = sum_{c,b} n_{c,b} log softmax_b(eta x_{c,.} . theta)``.  Along a direction
``delta`` the term of an observed response ``b`` never decreases iff
``(x_{c,b} - x_{c,b'}) . delta >= 0`` for every alternative ``b'``; the MLE fails to exist iff
some such ``delta`` makes one of these differences strictly positive (complete separation when
every difference can be made positive, quasi-complete otherwise; Albert & Anderson 1984).

:func:`find_separation` decides this with one linear programme (HiGHS, through
:func:`scipy.optimize.linprog`) on the rows ``a_r = x_{c,b} - x_{c,b'}`` (``n_{c,b} > 0``,
``b' != b``), scaled to unit length::

    max sum_r y_r   s.t.   a_r . delta >= y_r,   0 <= y_r <= 1                     (2.3a)

Any row that some cone direction makes positive reaches ``y_r = 1`` (scale ``delta``), and the
cone is convex, so the optimum has ``y_r = 1`` exactly on the *separable* rows ``S``.  The
responses ``b'`` of those rows are the cells whose fitted probability tends to 0; the span of
the recession cone is ``N = {delta : a_r . delta = 0 for r not in S}``, and its part orthogonal
to the Fisher null space ``{delta : a_r . delta = 0 for all r}`` is what the data push to
infinity.  :func:`limiting_fit` is the MLE of the limiting model (the softmax restricted to the
non-separated responses, Geyer 2009), the finite part of the supremum.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .optim import newton_maximize

#: Bound on ``|delta_j|`` in (2.3a): rows are unit vectors, so a separable row reaches
#: ``y_r = 1`` with ``|delta| <= 1 / (its margin)``; rows needing more count as separable
#: only in part (``y_r < 1``) and are decided by the 0.5 threshold.
_DELTA_BOX = 1e6
#: HiGHS settings the separation LP tries in turn (``scipy.optimize.linprog``): HiGHS's
#: default (presolve, then the dual simplex), the dual simplex without presolve, then the
#: interior-point method (with crossover, so the answer is a vertex).  The default alone
#: gives up ("model status Unknown", HiGHS status 15) on some designed data, whose LP mixes
#: the +-1e6 box on ``delta`` with the [0, 1] box on ``y``; the later settings solve those.
LP_TRIES: tuple[tuple[str, dict], ...] = (
    ("highs", {}),
    ("highs-ds", {"presolve": False}),
    ("highs-ipm", {}),
)


class Separation(NamedTuple):
    """The outcome of :func:`find_separation`.

    Attributes:
        kind: ``"none"``, ``"quasi-complete"`` or ``"complete"`` (every observed response is
            separated from every alternative: the supremum of ``L`` is 0).
        directions: ``[k, d]`` orthonormal basis of the directions the likelihood pushes to
            infinity (the span of the recession cone, less the Fisher null space); ``k = 0``
            when the MLE exists.
        direction: ``[d]`` one unit direction along which ``L`` increases strictly (``None``
            when not separated).
        cells: ``[m, ndim]`` integer indices ``(context..., response)`` of the cells whose
            fitted probability tends to 0 (the leading indices index the contexts' axes as
            given, e.g. ``(h, s, a, b)`` or ``(k, t)``).
        span: ``[d, p]`` orthonormal basis of ``N``, the span of the recession cone (Fisher
            null space included), along which :func:`limiting_fit` leaves ``theta`` at 0.
    """

    kind: str
    directions: np.ndarray
    direction: np.ndarray | None
    cells: np.ndarray
    span: np.ndarray

    @property
    def separated(self) -> bool:
        return self.kind != "none"

    def allowed(self, shape: tuple[int, ...]) -> np.ndarray:
        """``[..., B]`` bool: the responses kept by the limiting model (not in ``cells``)."""
        keep = np.ones(shape, bool)
        if len(self.cells):
            keep[tuple(self.cells.T)] = False
        return keep


def _null_basis(rows: np.ndarray, d: int, rtol: float) -> np.ndarray:
    """``[d, p]`` orthonormal basis of ``{v : rows @ v = 0}``."""
    if rows.shape[0] == 0:
        return np.eye(d)
    # the [d, d] right basis without the [R, R] left one (full only when R < d)
    _, sv, vt = np.linalg.svd(rows, full_matrices=rows.shape[0] < d)
    scale = max(float(sv.max()) if sv.size else 0.0, 1e-300)
    rank = int(np.sum(sv > rtol * scale))
    return vt[rank:].T


def find_separation(
    features: np.ndarray,
    counts: np.ndarray,
    *,
    nonneg: np.ndarray | None = None,
    nonpos: np.ndarray | None = None,
    rtol: float = 1e-9,
    logits: np.ndarray | None = None,
) -> Separation:
    """Complete or quasi-complete separation of a multinomial logit (eq. 2.3a).

    Args:
        features: ``[..., B, d]`` the features of each response in each context (the myopic
            ``phi[H,S,A,B,d]`` or the commitment features ``psi[K,B,d]``); ``eta > 0`` does
            not change the answer.
        counts: ``[..., B]`` observed responses (non-negative).
        nonneg, nonpos: ``[d]`` bool, coordinates of ``delta`` restricted to ``>= 0`` /
            ``<= 0`` (the recession cone of a box with a finite lower / upper bound: a
            box-constrained MLE fails to exist only along such directions).
        rtol: relative tolerance of the null spaces.
        logits: ``[..., B]`` the fitted ``eta x . theta`` at a candidate MLE (optional): when
            the weights ``y_r = n_{c,b} p_{c,b'} > 0`` it implies, corrected onto
            ``{y : sum_r y_r a_r = 0}``, stay positive, they are a Stiemke certificate that no
            separating direction exists, and the LP is skipped (unconstrained case only).

    Returns:
        :class:`Separation`.
    """
    x = np.asarray(features, np.float64)
    n = np.asarray(counts, np.float64)
    lead, B, d = n.shape[:-1], x.shape[-2], x.shape[-1]
    x = np.broadcast_to(x, (*lead, B, d)).reshape(-1, B, d)
    n = n.reshape(-1, B)
    obs = n > 0
    none = Separation("none", np.zeros((0, d)), None, np.zeros((0, len(lead) + 1), int), None)
    # a context with every response observed separates nothing (a_r and -a_r are both rows)
    partial_ctx = obs.any(axis=1) & ~obs.all(axis=1)
    seen = np.flatnonzero(obs.any(axis=1))  # only observed contexts give rows
    diff = x[seen, :, None, :] - x[seen, None, :, :]  # [C', b, b', d]
    pair = obs[seen, :, None] & ~np.eye(B, dtype=bool)[None]
    rows = diff[pair]  # [R, d]
    c_seen, _, alt = np.nonzero(pair)
    c_idx = seen[c_seen]
    fisher_null = _null_basis(rows, d, rtol)
    none = none._replace(span=fisher_null)
    if not partial_ctx.any():
        return none
    if logits is not None and nonneg is None and nonpos is None:
        z = np.asarray(logits, np.float64).reshape(-1, B)[seen]
        log_p = z - np.logaddexp.reduce(z, axis=1, keepdims=True)
        y = n[seen][:, :, None] * np.exp(log_p)[:, None, :]  # n_{c,b} p_{c,b'}
        if _stiemke(rows, y[pair]):
            return none
    norms = np.linalg.norm(rows, axis=1)
    live = norms > rtol * max(float(norms.max(initial=0.0)), 1e-300)
    if not live.any():
        return none
    unit = rows[live] / norms[live, None]
    uniq, inverse = np.unique(np.round(unit, 12), axis=0, return_inverse=True)
    R = uniq.shape[0]
    # variables (delta[d], y[R]); minimise -sum y s.t. -a_r . delta + y_r <= 0
    import scipy.sparse as sp  # lazy: SciPy's optimize and sparse cost ~0.8 s to import

    a_ub = sp.hstack([sp.csr_matrix(-uniq), sp.identity(R, format="csr")], format="csr")
    lo = np.full(d, -_DELTA_BOX)
    hi = np.full(d, _DELTA_BOX)
    if nonneg is not None:
        lo[np.asarray(nonneg, bool)] = 0.0
    if nonpos is not None:
        hi[np.asarray(nonpos, bool)] = 0.0
    bounds = list(zip(lo, hi, strict=True)) + [(0.0, 1.0)] * R
    cost = np.concatenate([np.zeros(d), -np.ones(R)])
    res = _separation_lp(cost, a_ub, bounds)
    sep_u = res.x[d:] > 0.5
    if not sep_u.any():
        return none
    sep = np.zeros(rows.shape[0], bool)
    sep[np.flatnonzero(live)] = sep_u[inverse.reshape(-1)]
    span = _null_basis(rows[~sep], d, rtol)
    # directions pushed to infinity: N less the Fisher null space
    proj = span - fisher_null @ (fisher_null.T @ span)
    u, sv, _ = np.linalg.svd(proj, full_matrices=False)
    k = int(np.sum(sv > 1e-6))
    directions = u[:, :k].T
    delta = res.x[:d] - fisher_null @ (fisher_null.T @ res.x[:d])
    delta = delta / np.linalg.norm(delta)
    cells_flat = np.unique(np.stack([c_idx[sep], alt[sep]], axis=1), axis=0)
    ctx = np.stack(np.unravel_index(cells_flat[:, 0], lead), axis=1) if lead else cells_flat[:, :0]
    cells = np.concatenate([ctx, cells_flat[:, 1:]], axis=1).astype(int)
    kind = "complete" if sep.all() else "quasi-complete"
    return Separation(kind, directions, delta, cells, span)


def _separation_lp(cost: np.ndarray, a_ub: Any, bounds: list) -> object:  # a_ub: sparse
    """Solve the separation LP (``A_ub x <= 0``) with the settings of :data:`LP_TRIES` in
    turn; the first optimal answer is returned.  The LP is feasible (``x = 0``) and bounded,
    so a failure is HiGHS giving up.

    Raises:
        RuntimeError: every setting gave up (the last one's message)."""
    from scipy.optimize import linprog  # lazy, as scipy.sparse above

    b_ub = np.zeros(a_ub.shape[0])
    for method, options in LP_TRIES:
        res = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method=method, options=options)
        if res.status == 0:
            return res
    raise RuntimeError(f"find_separation: the LP failed ({res.message})")


def _stiemke(rows: np.ndarray, y: np.ndarray) -> bool:
    """Whether ``y > 0`` projected onto ``{y : rows' y = 0}`` stays positive (with a margin):
    then no ``delta`` has ``rows @ delta >= 0`` with a positive entry (Stiemke's lemma)."""
    if not np.all(np.isfinite(y)) or y.min(initial=np.inf) <= 0:
        return False
    g = rows.T @ y
    corr = rows @ (np.linalg.pinv(rows.T @ rows, rcond=1e-12, hermitian=True) @ g)
    y2 = y - corr
    resid = np.max(np.abs(rows.T @ y2)) if y2.size else 0.0
    scale = np.max(np.abs(rows)) * np.sum(np.abs(y2))
    return bool(np.min(y2) > 1e-9 * np.max(y)) and resid <= 1e-9 * max(scale, 1e-300)


def describe_separation(sep: Separation, names: tuple[str, ...], limit: int = 6) -> str:
    """One line naming the separating direction(s) and the cells whose probability -> 0.

    ``names``: the index names of a cell, e.g. ``("h", "s", "a", "b")`` or ``("k", "t")``.
    """
    dirs = "; ".join(np.array2string(v, precision=3, suppress_small=True) for v in sep.directions)
    shown = ", ".join(
        "(" + ", ".join(f"{nm}={int(i)}" for nm, i in zip(names, cell, strict=True)) + ")"
        for cell in sep.cells[:limit]
    )
    more = f" and {len(sep.cells) - limit} more" if len(sep.cells) > limit else ""
    return (
        f"{sep.kind} separation: the MLE does not exist; the log-likelihood increases without "
        f"bound toward its supremum along {np.array2string(sep.direction, precision=3)} "
        f"(unidentified directions: {dirs}); fitted probability -> 0 in {len(sep.cells)} "
        f"cell(s) {shown}{more}"
    )


@partial(jax.jit, static_argnames=("max_steps",))
def _limiting_newton(features, counts, allowed, eta, theta0, max_steps):
    def objective(theta):
        logits = jnp.where(allowed, eta * (features @ theta), -1e30)
        log_p = jax.nn.log_softmax(logits, axis=-1)
        return jnp.sum(jnp.where(allowed, counts * log_p, 0.0))

    return newton_maximize(objective, theta0, max_steps)


def limiting_fit(
    features: np.ndarray,
    counts: np.ndarray,
    eta: float,
    sep: Separation,
    max_steps: int = 100,
):
    """The MLE of the limiting model: the softmax over the responses not in ``sep.cells``
    (Geyer 2009, the limiting conditional model), by damped Newton from 0, so that the
    returned ``theta`` has no component in ``sep.span``.

    Returns ``(theta[d], L, neg_hessian[d,d], n_iter, newton_converged)``; ``L`` is the
    supremum of the original log-likelihood and ``neg_hessian`` vanishes on ``sep.span``.
    """
    x = jnp.asarray(features, jnp.float64)
    n = np.asarray(counts, np.float64)
    x = jnp.broadcast_to(x, (*n.shape, x.shape[-1]))
    allowed = jnp.asarray(sep.allowed(n.shape))
    theta0 = jnp.zeros(x.shape[-1])
    return _limiting_newton(x, jnp.asarray(n), allowed, float(eta), theta0, int(max_steps))


__all__ = ["LP_TRIES", "Separation", "describe_separation", "find_separation", "limiting_fit"]
