"""The MLE over a bounded parameter class: a box ``lo <= theta <= hi`` and/or the paper's ball
``||theta|| <= B`` (docs/math.md §2.4), with its KKT conditions checked.

:func:`constrained_maximize` maximises a smooth log-likelihood ``L`` over
``C = {lo <= theta <= hi, ||theta||^2 <= B^2}`` in two stages: SciPy's interior-point
``trust-constr`` (exact gradient and Hessian) finds the active constraints, then Newton's method
on the KKT system of that face (the active bounds held fixed, the sphere ``||theta|| = B`` as
an equality with its multiplier) polishes the point to round-off, dropping a constraint whose
multiplier has the wrong sign.  The result is checked against the KKT conditions (2.4b)::

    grad L(theta) = 2 mu theta + lambda_hi - lambda_lo,      mu, lambda >= 0,
    lambda_hi_j (hi_j - theta_j) = 0,  lambda_lo_j (theta_j - lo_j) = 0,
    mu (B^2 - ||theta||^2) = 0,                                theta in C,

with the multipliers re-estimated by non-negative least squares on the nearly active
constraints (:func:`kkt_residual`), independently of the polish.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from .errors import BayesQSEInputError

#: A fit is ``converged`` when its relative KKT residual is at most this.
KKT_TOL = 1e-8

VGH = Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]]


class Constraints(NamedTuple):
    """A validated parameter class: ``lower[d]``, ``upper[d]`` (may be infinite) and
    ``radius`` (``None``: no ball)."""

    lower: np.ndarray
    upper: np.ndarray
    radius: float | None

    @property
    def compact(self) -> bool:
        return self.radius is not None or bool(
            np.all(np.isfinite(self.lower)) and np.all(np.isfinite(self.upper))
        )


def check_constraints(lower: Any, upper: Any, radius: Any, d: int) -> Constraints | None:
    """Validate the options ``lower``, ``upper`` (scalars or ``[d]``) and ``radius`` (``B``);
    ``None`` when none is given.  Raises :class:`BayesQSEInputError` naming the field."""
    if lower is None and upper is None and radius is None:
        return None

    def vec(v: Any, fill: float, name: str) -> np.ndarray:
        if v is None:
            return np.full(d, fill)
        try:
            a = np.asarray(v, np.float64)
        except (TypeError, ValueError):
            raise BayesQSEInputError(f"{name}: cannot be read as numbers ({v!r})") from None
        if a.ndim == 0:
            a = np.full(d, float(a))
        if a.shape != (d,):
            raise BayesQSEInputError(f"{name}: expected a scalar or shape ({d},), got {a.shape}")
        if np.any(np.isnan(a)):
            raise BayesQSEInputError(f"{name}: must not be NaN")
        return a.copy()

    lo, hi = vec(lower, -np.inf, "lower"), vec(upper, np.inf, "upper")
    if np.any(lo > hi):
        raise BayesQSEInputError("lower: must be <= upper in every coordinate")
    if np.any(lo == np.inf) or np.any(hi == -np.inf):
        raise BayesQSEInputError("lower: the box is empty (a bound at the wrong infinity)")
    r = None
    if radius is not None:
        r = float(radius)
        if not (np.isfinite(r) and r > 0):
            raise BayesQSEInputError(f"radius: must be a finite number > 0, got {radius!r}")
        if np.linalg.norm(np.clip(0.0, lo, hi)) > r:
            raise BayesQSEInputError("radius: the ball ||theta|| <= radius misses the box")
    return Constraints(lo, hi, r)


def project(x: np.ndarray, c: Constraints, n_iter: int = 500) -> np.ndarray:
    """Euclidean projection onto ``C``: a clip, a rescaling, or (both) Dykstra's algorithm."""
    box = lambda z: np.clip(z, c.lower, c.upper)  # noqa: E731

    def ball(z: np.ndarray) -> np.ndarray:
        nz = np.linalg.norm(z)
        return z if c.radius is None or nz <= c.radius else z * (c.radius / nz)

    if c.radius is None:
        return box(x)
    if np.all(np.isinf(c.lower)) and np.all(np.isinf(c.upper)):
        return ball(x)
    y, p, q = np.asarray(x, np.float64), np.zeros_like(x), np.zeros_like(x)
    for _ in range(n_iter):
        z = box(y + p)
        p = y + p - z
        y_new = ball(z + q)
        q = z + q - y_new
        if np.max(np.abs(y_new - y)) <= 1e-15 * (1 + np.max(np.abs(y))):
            y = y_new
            break
        y = y_new
    return y


def kkt_residual(theta: np.ndarray, grad: np.ndarray, c: Constraints) -> tuple[float, dict]:
    """The relative KKT residual (2.4b) at ``theta`` and the multipliers behind it.

    Multipliers of the constraints whose slack is below ``1e-7 (1 + |bound|)`` are fitted by
    non-negative least squares to ``grad L``; the residual is the largest of the stationarity
    error ``|grad - N m|_inf / (1 + |grad|_inf)``, the infeasibility, and the complementarity
    ``m_i slack_i / (1 + |grad|_inf)``.
    """
    th, g = np.asarray(theta, np.float64), np.asarray(grad, np.float64)
    d = th.size
    scale = 1.0 + float(np.max(np.abs(g)))
    slack_lo, slack_hi = th - c.lower, c.upper - th
    finite_lo, finite_hi = np.isfinite(c.lower), np.isfinite(c.upper)
    near_lo = finite_lo & (slack_lo <= 1e-7 * (1 + np.abs(np.where(finite_lo, c.lower, 0.0))))
    near_hi = finite_hi & (slack_hi <= 1e-7 * (1 + np.abs(np.where(finite_hi, c.upper, 0.0))))
    cols, slacks, names = [], [], []
    for j in np.flatnonzero(near_hi):
        cols.append(np.eye(d)[j]), slacks.append(slack_hi[j]), names.append(("upper", int(j)))
    for j in np.flatnonzero(near_lo):
        cols.append(-np.eye(d)[j]), slacks.append(slack_lo[j]), names.append(("lower", int(j)))
    infeas = max(0.0, float(np.max(-slack_lo)), float(np.max(-slack_hi))) / scale
    if c.radius is not None:
        slack_b = c.radius**2 - th @ th
        infeas = max(infeas, -slack_b / c.radius**2)
        if slack_b <= 1e-7 * c.radius**2:
            cols.append(2 * th), slacks.append(slack_b), names.append(("radius", -1))
    if cols:
        from scipy.optimize import nnls  # lazy: scipy.optimize costs ~0.8 s to import

        mat = np.array(cols).T
        m, _ = nnls(mat, g)
        stat = g - mat @ m
        compl = max(float(np.max(np.abs(m * np.array(slacks)))), 0.0)
    else:
        m, stat, compl = np.zeros(0), g, 0.0
    res = max(float(np.max(np.abs(stat))) / scale, infeas, compl / scale)
    return res, {name: float(v) for name, v in zip(names, m, strict=True)}


class ConstrainedResult(NamedTuple):
    """Output of :func:`constrained_maximize`.

    Attributes:
        theta: ``[d]`` the maximiser over ``C``.
        value: ``L(theta)``.
        neg_hessian: ``[d,d]`` ``-Hess L(theta)``.
        kkt_residual: relative KKT residual (:func:`kkt_residual`).
        multipliers: ``{("upper"|"lower", j) or ("radius", -1): multiplier}`` of the active
            constraints.
        n_iter: interior-point iterations plus Newton polish steps.
        converged: ``kkt_residual <= KKT_TOL``.
    """

    theta: np.ndarray
    value: float
    neg_hessian: np.ndarray
    kkt_residual: float
    multipliers: dict
    n_iter: int
    converged: bool


def _face_newton(vgh: VGH, x, fixed, use_ball, radius, max_steps=60):
    """Newton on the KKT system of one face: coordinates ``fixed`` held, the sphere
    ``||x|| = radius`` an equality when ``use_ball``.  Returns ``(x, mu, steps)``."""
    x = np.array(x, np.float64)
    free = ~fixed
    mu = 0.0
    if use_ball:
        x[free] *= np.sqrt(
            max(radius**2 - x[fixed] @ x[fixed], 0.0) / max(x[free] @ x[free], 1e-300)
        )
    for step in range(max_steps):
        _, g, h = vgh(x)
        hf, gf, xf = h[np.ix_(free, free)], g[free], x[free]
        if use_ball:
            if step == 0:
                mu = float(gf @ xf) / max(2 * float(xf @ xf), 1e-300)
            k = xf.size
            mat = np.block(
                [[hf - 2 * mu * np.eye(k), -2 * xf[:, None]], [-2 * xf[None], np.zeros((1, 1))]]
            )
            rhs = np.concatenate([-(gf - 2 * mu * xf), [x @ x - radius**2]])
            sol = np.linalg.lstsq(mat, rhs, rcond=1e-14)[0]
            dx, dmu = sol[:-1], sol[-1]
            mu += dmu
        else:
            dx = np.linalg.lstsq(-hf, gf, rcond=1e-14)[0]
        x[free] += dx
        if np.max(np.abs(dx), initial=0.0) <= 1e-14 * (1 + np.max(np.abs(x))):
            return x, mu, step + 1
    return x, mu, max_steps


def constrained_maximize(vgh: VGH, x0: np.ndarray, c: Constraints) -> ConstrainedResult:
    """Maximise ``L`` over ``C`` (see the module doc); ``vgh(theta) -> (L, grad, Hessian)``."""
    from scipy.optimize import Bounds, NonlinearConstraint, minimize  # lazy (~0.8 s)

    d = int(np.size(x0))
    start = project(np.asarray(x0, np.float64), c)
    kwargs: dict[str, Any] = {}
    if np.any(np.isfinite(c.lower)) or np.any(np.isfinite(c.upper)):
        kwargs["bounds"] = Bounds(c.lower, c.upper)
    if c.radius is not None:
        kwargs["constraints"] = [
            NonlinearConstraint(
                lambda x: x @ x,
                -np.inf,
                c.radius**2,
                jac=lambda x: 2 * x,
                hess=lambda x, v: 2 * v[0] * np.eye(d),
            )
        ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # trust-constr's "delta_grad == 0" notes
        res = minimize(
            lambda x: -vgh(x)[0],
            start,
            jac=lambda x: -vgh(x)[1],
            hess=lambda x: -vgh(x)[2],
            method="trust-constr",
            options={"gtol": 1e-10, "xtol": 1e-13, "maxiter": 500, "barrier_tol": 1e-10},
            **kwargs,
        )
    x = project(res.x, c)
    steps = int(res.nit)
    finite_lo, finite_hi = np.isfinite(c.lower), np.isfinite(c.upper)
    lo0, hi0 = np.where(finite_lo, c.lower, 0.0), np.where(finite_hi, c.upper, 0.0)
    # the face the interior point approaches (loose: a wrong guess is dropped below)
    act_lo = finite_lo & (x - lo0 <= 1e-4 * (1 + np.abs(lo0)))
    act_hi = finite_hi & (hi0 - x <= 1e-4 * (1 + np.abs(hi0))) & ~act_lo
    ball = c.radius is not None and np.linalg.norm(x) >= c.radius * (1 - 1e-3)
    for _ in range(4 * d + 4):  # active-set corrections
        x = np.where(act_lo, lo0, np.where(act_hi, hi0, x))
        fixed = act_lo | act_hi
        x_new, mu = x, 0.0
        if not np.all(fixed):
            x_new, mu, n = _face_newton(vgh, x, fixed, ball, c.radius)
            steps += n
        _, g, _ = vgh(x_new)
        lam = g - 2 * mu * x_new  # bound multipliers: >= 0 at an upper, <= 0 at a lower bound
        wrong_lo, wrong_hi = act_lo & (lam > 0), act_hi & (lam < 0)
        if np.any(wrong_lo | wrong_hi) or (ball and mu < 0):
            act_lo, act_hi = act_lo & ~wrong_lo, act_hi & ~wrong_hi
            ball = ball and mu >= 0
            x = x_new
            continue
        over_lo = finite_lo & (x_new < lo0)
        over_hi = finite_hi & (x_new > hi0)
        over_ball = c.radius is not None and not ball and np.linalg.norm(x_new) > c.radius
        if np.any(over_lo | over_hi) or over_ball:
            act_lo, act_hi = act_lo | over_lo, act_hi | over_hi
            ball = ball or over_ball
            x = project(x_new, c)
            continue
        x = x_new
        break
    f, g, h = vgh(x)
    kkt, mult = kkt_residual(x, g, c)
    return ConstrainedResult(
        theta=x,
        value=float(f),
        neg_hessian=-np.asarray(h),
        kkt_residual=kkt,
        multipliers=mult,
        n_iter=steps,
        converged=kkt <= KKT_TOL,
    )


def face_covariance(fisher: np.ndarray, theta: np.ndarray, multipliers: dict):
    """``(cov, std_err)`` of a bounded fit: the inverse Fisher information restricted to the
    face of the active constraints, ``Z (Z' I Z)^+ Z'`` with ``Z`` an orthonormal basis of the
    directions that keep them active (Aitchison & Silvey 1958).  ``std_err`` is ``nan`` for a
    coordinate held by an active bound (on the boundary the Wald standard error is undefined)
    and ``inf`` for one touched by a direction of the face that the data do not identify."""
    d = theta.size
    normals, pinned = [], np.zeros(d, bool)
    for (kind, j), _m in multipliers.items():
        if kind == "radius":
            normals.append(theta / max(np.linalg.norm(theta), 1e-300))
        else:
            normals.append(np.eye(d)[j])
            pinned[j] = True
    if normals:
        _, sv, vt = np.linalg.svd(np.array(normals), full_matrices=True)
        z = vt[int(np.sum(sv > 1e-12)) :].T
    else:
        z = np.eye(d)
    reduced = z.T @ fisher @ z
    lam, vecs = np.linalg.eigh(0.5 * (reduced + reduced.T))
    null = lam <= 1e-9 * max(float(np.max(np.abs(lam), initial=0.0)), 1e-300)
    inv = np.where(null, 0.0, 1.0 / np.where(null, 1.0, lam))
    cov = z @ ((vecs * inv) @ vecs.T) @ z.T
    std_err = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    touched = np.any(np.abs(z @ vecs[:, null]) > 1e-8, axis=1)
    std_err = np.where(touched, np.inf, std_err)
    return cov, np.where(pinned, np.nan, std_err)


__all__ = [
    "KKT_TOL",
    "ConstrainedResult",
    "Constraints",
    "check_constraints",
    "constrained_maximize",
    "face_covariance",
    "kkt_residual",
    "project",
]
