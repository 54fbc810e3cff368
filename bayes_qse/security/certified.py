"""The defender's problem for one weight vector, solved to a certified gap (docs/math.md eq. 8f-8k).

``U(c; w) = N(c) / D(c)`` with target-separable sums (eq. 8f)::

    D(c) = sum_t e_t(c_t),                 e_t(x) = exp(a_t + w1 x),  a_t = w2 R^a_t + w3 P^a_t
    N(c) = sum_t e_t(c_t) (P^d_t + beta_t c_t),                        beta_t = R^d_t - P^d_t

**Dinkelbach** (eq. 8g): at the ratio ``lam = U(c_k)`` solve the separable inner problem
``F(lam) = max_{c in C} sum_t f_t(c_t; lam)``, ``f_t(x; lam) = e_t(x) (P^d_t - lam + beta_t x)``.
A point with a positive inner value improves the ratio; an upper bound ``F_bar >= F(lam)``
certifies ``max_C U <= lam + max(F_bar, 0) / D_lb`` with ``D_lb <= min_C D`` (eq. 8h).

**The inner problem** (eq. 8i-8k) is solved by branch and bound over boxes ``l <= c <= u``:
each ``f_t`` is concave then convex on ``[0, 1]`` (one inflection point), so an upper
surrogate ``f_hat_t >= f_t`` on ``[l_t, u_t]`` is ``f_t`` up to a tangency point and a line to
``(u_t, f_t(u_t))`` after it (the concave envelope, eq. 8i).  The Lagrangian dual of the
surrogate problem, ``min_mu mu m + sum_t max_x (f_hat_t(x) - mu x)``, bounds the node from
above at *every* ``mu`` (weak duality, eq. 8j), and the relaxed point is feasible, so its true
value bounds the optimum from below.  Nodes split the target whose surrogate exceeds ``f_t``
most at the relaxed point.  With ``w1 <= 0`` and ``sum c <= m`` the root is already tight; with
``w1 > 0`` the branching is a knapsack-like search (the optimum has at most one fractional
coverage, Kar et al. 2016, Thm 7.1 for integer budgets).

Everything here is NumPy in float64; the bounds are exact up to floating-point rounding (a
margin of ``1e-12`` of the objective's scale is added to every upper bound).
"""

from __future__ import annotations

import heapq
import itertools
from typing import NamedTuple

import numpy as np

#: ``budget`` options: ``"at_most"`` is ``sum c <= m`` (the polytope of eq. 8), ``"exact"``
#: ``sum c = m``.
BUDGETS = ("at_most", "exact")

_BISECT = 60  # halvings of [0, 1]: below float64 resolution
_NEWTON = 40  # at most this many safeguarded Newton steps for f'(x) = mu
_MU_POINTS = 17  # mu grid per round of the dual line search
_MU_ROUNDS = 10  # rounds: the bracket shrinks by 16^10 ~ 1e12


class Problem:
    """One weight vector ``w`` on one game, as the arrays of eq. (8f) (``[T]`` each)."""

    def __init__(self, rd, pd, ra, pa, w, resources: float, budget: str = "at_most"):
        w = np.asarray(w, np.float64)
        a = w[1] * np.asarray(ra, np.float64) + w[2] * np.asarray(pa, np.float64)
        self.a = a - a.max()  # the common factor exp(max a) cancels in N / D
        self.w1 = float(w[0])
        self.pd = np.asarray(pd, np.float64)
        self.beta = np.asarray(rd, np.float64) - self.pd
        self.m = float(resources)
        self.exact = budget == "exact"
        self.span = max(float(np.max(rd) - np.min(pd)), 1e-300)

    @property
    def n_targets(self) -> int:
        return self.pd.shape[0]

    def weight(self, x):
        return np.exp(self.a + self.w1 * x)

    def utility(self, c) -> float:
        """``U(c; w)`` of eq. (8b)."""
        e = self.weight(c)
        return float(np.sum(e * (self.pd + self.beta * c)) / np.sum(e))

    def f(self, x, lam):
        return self.weight(x) * (self.pd - lam + self.beta * x)

    def fp(self, x, lam):
        return self.weight(x) * (self.w1 * (self.pd - lam + self.beta * x) + self.beta)

    def inflection(self, lam):
        """``x0[T]``: ``f_t`` is concave on ``x <= x0`` and convex on ``x >= x0`` (eq. 8i)."""
        alpha, beta, w1 = self.pd - lam, self.beta, self.w1
        if w1 == 0.0:
            return np.full_like(alpha, np.inf)  # linear
        safe = np.where(beta > 0, beta, 1.0)
        x0 = (-2.0 * beta / w1 - alpha) / safe
        return np.where(beta > 0, x0, np.where(alpha > 0, -np.inf, np.inf))


def denominator_lower_bound(P: Problem) -> float:
    """``D_lb <= min_{c in C_m} D(c)`` (eq. 8h): the Lagrangian dual of the convex problem
    ``min sum_t e_t(c_t)`` over ``{0 <= c <= 1, sum c <= m}`` at the best ``nu`` of a bisection
    (any ``nu >= 0`` gives a valid bound).  With ``w1 >= 0`` it is ``D(0)``, exact."""
    base = np.exp(P.a)
    if P.w1 >= 0.0:
        return float(np.sum(base))
    k = -P.w1

    def dual(nu):
        x = np.clip((np.log(np.maximum(nu, 1e-300) / k) - P.a) / P.w1, 0.0, 1.0)
        return float(np.sum(P.weight(x) + nu * x) - nu * P.m), float(np.sum(x))

    best, lo, hi = dual(0.0)[0], 0.0, k * float(np.max(base))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        value, used = dual(mid)
        best = max(best, value)
        lo, hi = (mid, hi) if used > P.m else (lo, mid)
    return best


class _Node(NamedTuple):
    lower: np.ndarray  # [T] box
    upper: np.ndarray
    bound: float  # upper bound on the inner problem within the box
    point: np.ndarray  # [T] the relaxed point (feasible)
    excess: np.ndarray  # [T] f_hat - f at the point


def _surrogate(P: Problem, lam, l, u):
    """The upper surrogate of eq. (8i) on ``[l, u]``: ``f`` on ``[l, p]``, then the line
    ``f(u) + sigma (x - u)`` on ``[p, u]`` (``p = u``: no line).  ``p`` is never left of the
    tangency point, which keeps the line above ``f`` whatever the bisection's accuracy."""
    x0 = P.inflection(lam)
    fu, fl = P.f(u, lam), P.f(l, lam)
    width = u - l
    chord = (fu - fl) / np.where(width > 0, width, 1.0)
    p, sigma = u.copy(), np.zeros_like(u)
    has_convex = (x0 < u) & (width > 0)
    h_l = fl + P.fp(l, lam) * width - fu  # tangent at l above (u, f(u))?
    use_chord = has_convex & ((x0 <= l) | (h_l <= 0))
    p, sigma = np.where(use_chord, l, p), np.where(use_chord, chord, sigma)
    tangent = has_convex & ~use_chord
    if np.any(tangent):
        lo, hi = l.copy(), np.minimum(np.where(tangent, x0, u), u)
        for _ in range(_BISECT):
            mid = 0.5 * (lo + hi)
            pos = P.f(mid, lam) + P.fp(mid, lam) * (u - mid) - fu > 0
            lo, hi = np.where(pos, mid, lo), np.where(pos, hi, mid)
        p, sigma = np.where(tangent, hi, p), np.where(tangent, P.fp(hi, lam), sigma)
    return p, sigma, fu


def _respond(P: Problem, lam, l, u, p, sigma, fu, mu, bracket=None):
    """``argmax_x`` and ``max_x`` of ``f_hat_t(x) - mu x`` on ``[l_t, u_t]``: ``[K, T]`` for
    ``mu[K, 1]`` (the concave piece by safeguarded Newton on ``f'``, the line piece at its
    ends), and the concave piece's argmax ``[K, T]``.  ``bracket = (lo[T], hi[T])`` narrows the
    concave piece's search (its argmax is non-increasing in ``mu``)."""
    fpl, fpp = P.fp(l, lam), P.fp(p, lam)
    shape = (mu.shape[0], l.shape[0])
    lo0, hi0 = (l, p) if bracket is None else bracket
    lo, hi = np.broadcast_to(lo0, shape).copy(), np.broadcast_to(hi0, shape).copy()
    x = 0.5 * (lo + hi)
    interior = (fpl > mu) & (fpp < mu)
    for _ in range(_NEWTON):  # safeguarded Newton on f'(x) = mu (f' decreasing on [l, p])
        e = P.weight(x)
        lin = P.pd - lam + P.beta * x
        resid = e * (P.w1 * lin + P.beta) - mu
        up = resid > 0
        lo, hi = np.where(up, x, lo), np.where(up, hi, x)
        curv = e * (P.w1 * P.w1 * lin + 2.0 * P.w1 * P.beta)
        step = x - resid / np.where(curv < 0, curv, -1.0)
        ok = (curv < 0) & (step >= lo) & (step <= hi)
        done = not np.any(interior & (np.abs(step - x) > 1e-15) & (hi - lo > 1e-15))
        x = np.where(ok, step, 0.5 * (lo + hi))
        if done:
            break
    xc = np.where(fpl <= mu, l, np.where(fpp >= mu, p, x))
    # concavity: max <= phi(x) + |phi'(x)| |x* - x| with x* in [lo, hi] (rigorous if not converged)
    lo, hi = np.minimum(lo, xc), np.maximum(hi, xc)
    slack = np.where(interior, np.abs(P.fp(xc, lam) - mu) * (hi - lo), 0.0)
    vc = P.f(xc, lam) - mu * xc + slack
    at_p = fu + sigma * (p - u) - mu * p
    at_u = fu - mu * u
    xl, vl = np.where(at_u >= at_p, u, p), np.maximum(at_u, at_p)
    line = (p < u) & (vl > vc)
    return np.where(line, xl, xc), np.where(line, vl, vc), xc


def _surrogate_value(P, lam, x, l, p, sigma, fu, u):
    return np.where(x <= p, P.f(x, lam), fu + sigma * (x - u))


def _onto_budget(x, l, u, m, exact):
    """Move ``x`` (in the box) onto ``sum x = m`` (``exact``) or under it, proportionally to
    the room each coordinate has: a rounding repair, not an optimisation."""
    gap = m - float(np.sum(x))
    if gap < 0:
        room = x - l
        return x + gap * room / max(float(np.sum(room)), 1e-300)
    if exact and gap > 0:
        room = u - x
        return np.minimum(x + gap * room / max(float(np.sum(room)), 1e-300), u)
    return x


def _relax(P: Problem, lam, l, u) -> _Node | None:
    """Bound and relaxed point of the node ``[l, u]`` (eq. 8j), or ``None`` if it is empty."""
    m = P.m
    if np.sum(l) > m + 1e-12 or (P.exact and np.sum(u) < m - 1e-12):
        return None
    p, sigma, fu = _surrogate(P, lam, l, u)
    slopes = np.concatenate([P.fp(l, lam), P.fp(p, lam), sigma])
    scale = float(np.max(np.abs(slopes))) + 1.0
    mu_lo, mu_hi = float(np.min(slopes)) - scale, float(np.max(slopes)) + scale
    if not P.exact:
        mu_lo = 0.0
        mu_hi = max(mu_hi, 1.0)
    best_ub = np.inf
    x_lo = x_hi = bracket = None
    for r in range(_MU_ROUNDS):
        mus = np.linspace(mu_lo, mu_hi, _MU_POINTS)[:, None]
        x, g, xc = _respond(P, lam, l, u, p, sigma, fu, mus, bracket)
        used = x.sum(axis=1)
        ub = mus[:, 0] * m + g.sum(axis=1)
        best_ub = min(best_ub, float(np.min(ub)))
        if r == 0 and not P.exact and used[0] <= m:  # mu = 0: the budget is slack
            x_lo = x_hi = x[0]
            break
        over = used > m  # non-increasing in mu
        j = max(int(np.sum(over)) - 1, 0)
        j = min(j, _MU_POINTS - 2)
        mu_lo, mu_hi = float(mus[j, 0]), float(mus[j + 1, 0])
        x_lo, x_hi = x[j], x[j + 1]
        bracket = (xc[j + 1], xc[j])
    s_lo, s_hi = float(np.sum(x_lo)), float(np.sum(x_hi))
    if s_lo > s_hi + 1e-15 and s_hi < m:  # mix the bracket's two answers onto the budget
        theta = min(max((m - s_hi) / (s_lo - s_hi), 0.0), 1.0)
        point = x_hi + theta * (x_lo - x_hi)
    else:
        point = x_hi.copy()
    point = _onto_budget(np.clip(point, l, u), l, u, m, P.exact)
    excess = _surrogate_value(P, lam, point, l, p, sigma, fu, u) - P.f(point, lam)
    margin = 1e-12 * float(np.sum(np.abs(P.f(l, lam)) + np.abs(fu)) + 1e-300)
    return _Node(l, u, best_ub + margin, point, np.maximum(excess, 0.0))


class InnerResult(NamedTuple):
    point: np.ndarray
    lower: float  # sum_t f_t(point; lam)
    upper: float  # certified upper bound on F(lam)
    nodes: int


def solve_inner_pure(P: Problem, lam: float) -> InnerResult:
    """``F(lam)`` exactly when ``w1 > 0`` and ``sum c <= m`` (eq. 8k): every ``f_t`` is then
    decreasing-then-increasing on ``[0, 1]``, so an optimum has at most one fractional
    coordinate, equal to ``r = m - floor(m)``, and ``k = floor(m)`` (or fewer) full ones.
    Enumerates the pure allocations (the best ``<= k`` positive gains ``f_t(1) - f_t(0)``) and,
    for each ``j``, ``c_j = r`` with the best ``k`` gains among the others.  ``O(T log T)``."""
    T, m = P.n_targets, P.m
    k = min(int(np.floor(m + 1e-12)), T)
    r = m - k if k < T else 0.0
    f0, f1 = P.f(np.zeros(T), lam), P.f(np.ones(T), lam)
    gain = f1 - f0
    order = np.argsort(-gain, kind="stable")
    base = float(np.sum(f0))
    pure = order[:k][gain[order[:k]] > 0]
    best_x = np.zeros(T)
    best_x[pure] = 1.0
    best = base + float(np.sum(gain[pure]))
    if r > 1e-12:
        fr = P.f(np.full(T, r), lam) - f0
        top_k = float(np.sum(gain[order[:k]]))
        top_k1 = float(np.sum(gain[order[: k + 1]]))
        rank = np.empty(T, int)
        rank[order] = np.arange(T)
        others = np.where(rank < k, top_k1 - gain, top_k)  # best k gains among t != j
        values = base + others + fr
        j = int(np.argmax(values))
        if values[j] > best:
            best = float(values[j])
            chosen = [t for t in order[: k + 1] if t != j][:k]
            best_x = np.zeros(T)
            best_x[chosen] = 1.0
            best_x[j] = r
    margin = 1e-12 * float(np.sum(np.abs(f0) + np.abs(f1)))
    return InnerResult(best_x, float(np.sum(P.f(best_x, lam))), best + margin, 1)


def solve_inner(P: Problem, lam: float, tol: float, incumbent=None, max_nodes: int = 4000):
    """``F(lam)`` of eq. (8g) by branch and bound: ``InnerResult(point, lower, upper, nodes)``.

    Stops once ``upper - lower <= max(tol, lower / 2)`` (a point that halves the distance is
    enough for Dinkelbach far from the optimum; near it ``lower ~ 0`` and ``tol`` rules), or at
    ``max_nodes`` (the bound is then whatever the open nodes give: still valid).
    """
    if P.w1 > 0 and not P.exact:
        return solve_inner_pure(P, lam)
    T = P.n_targets
    best_x = None if incumbent is None else np.asarray(incumbent, np.float64)
    best = -np.inf if best_x is None else float(np.sum(P.f(best_x, lam)))
    root = _relax(P, lam, np.zeros(T), np.ones(T))
    if root is None:
        raise ValueError("resources: the budget cannot be met exactly")
    tie = itertools.count()
    heap = [(-root.bound, next(tie), root)]
    closed = -np.inf  # the largest bound of a node dropped without branching
    nodes = 1

    def consider(node):
        nonlocal best, best_x
        v = float(np.sum(P.f(node.point, lam)))
        if v > best:
            best, best_x = v, node.point

    consider(root)
    while heap:
        top = -heap[0][0]
        if top <= best + max(tol, 0.5 * max(best, 0.0)) or nodes >= max_nodes:
            break
        _, _, node = heapq.heappop(heap)
        t = int(np.argmax(node.excess))
        x = float(node.point[t])
        lo_t, hi_t = float(node.lower[t]), float(node.upper[t])
        if node.excess[t] <= 0 or not lo_t + 1e-13 < x < hi_t - 1e-13:
            closed = max(closed, node.bound)  # nothing left to split: keep its bound
            continue
        for a, b in ((lo_t, x), (x, hi_t)):
            lower, upper = node.lower.copy(), node.upper.copy()
            lower[t], upper[t] = a, b
            child = _relax(P, lam, lower, upper)
            nodes += 1
            if child is None:
                continue
            consider(child)
            heapq.heappush(heap, (-child.bound, next(tie), child))
    upper = max([best, closed] + [-h[0] for h in heap])
    return InnerResult(best_x, best, upper, nodes)


class Certificate(NamedTuple):
    coverage: np.ndarray
    value: float
    upper_bound: float
    iterations: int
    nodes: int


def certified_plan(
    P: Problem, start, rtol: float = 1e-6, max_iter: int = 60, max_nodes: int = 4000
) -> Certificate:
    """Dinkelbach (eq. 8g) from ``start[T]`` (a feasible coverage) with the inner problem of
    :func:`solve_inner`; stops when ``upper_bound - value <= rtol * max(|value|, 1e-3 span)``
    (``span = max R^d - min P^d``) or when an inner solve finds no improving point."""
    d_lb = denominator_lower_bound(P)
    c = np.asarray(start, np.float64)
    lam = P.utility(c)
    bound, nodes = np.inf, 0
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (reported)
        scale = max(abs(lam), 1e-3 * P.span)
        res = solve_inner(P, lam, 0.25 * rtol * scale * d_lb, c, max_nodes)
        nodes += res.nodes
        bound = min(bound, lam + max(res.upper, 0.0) / d_lb)
        improved = False
        if res.lower > 0:
            new = P.utility(res.point)
            if new > lam:
                c, lam, improved = res.point, new, True
        if bound - lam <= rtol * max(abs(lam), 1e-3 * P.span) or not improved:
            break
    if bound - lam > rtol * max(abs(lam), 1e-3 * P.span):
        # eq. (8h'): F_bar(lam + delta) <= 0 proves max U <= lam + delta (no division by D_lb)
        lam_up = lam + 0.5 * rtol * max(abs(lam), 1e-3 * P.span)
        res = solve_inner(P, lam_up, 0.0, c, max_nodes)
        nodes += res.nodes
        if res.upper <= 0:
            bound = min(bound, lam_up)
    return Certificate(np.clip(c, 0.0, 1.0), lam, max(bound, lam), it, nodes)


__all__ = [
    "BUDGETS",
    "Certificate",
    "InnerResult",
    "Problem",
    "certified_plan",
    "denominator_lower_bound",
    "solve_inner",
    "solve_inner_pure",
]
