"""The certified planner's fast path: Dinkelbach with the root relaxation only, in JAX (jit,
``vmap`` over weight vectors) -- docs/math.md eq. 8f-8k.

It is :mod:`.certified` without branching: each inner problem is bounded by the Lagrangian dual
of the concave-envelope surrogate on the whole cube (eq. 8j) -- or, with ``w1 > 0`` and
``sum c <= m``, solved exactly by the enumeration of eq. (8k) -- and the Dinkelbach bound of
eq. (8h) is computed from that bound as in the NumPy path.  So its ``upper_bound`` is as valid
as the branch and bound's; it is merely looser where the root is not tight (``budget="exact"``
or a fractional budget with ``w1 > 0``), and there :func:`~.planning.plan_coverage` hands the
problem on to the branch and bound.  Shapes: one game's payoffs ``[T]``, one ``w[3]``.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

_BISECT = 60
_NEWTON = 40
_MU_POINTS = 17
_MU_ROUNDS = 10
_MAX_ITER = 60


class Arrays(NamedTuple):
    """Eq. (8f) for one weight vector: ``a[T]`` (shifted by its max), ``w1``, ``pd[T]``,
    ``beta[T] = R^d - P^d``."""

    a: jax.Array
    w1: jax.Array
    pd: jax.Array
    beta: jax.Array


def make_arrays(game, w) -> Arrays:
    a = w[1] * game.attacker_reward + w[2] * game.attacker_penalty
    pd = jnp.asarray(game.defender_penalty)
    return Arrays(a - jnp.max(a), w[0], pd, jnp.asarray(game.defender_reward) - pd)


def _weight(P, x):
    return jnp.exp(P.a + P.w1 * x)


def _f(P, x, lam):
    return _weight(P, x) * (P.pd - lam + P.beta * x)


def _fp(P, x, lam):
    return _weight(P, x) * (P.w1 * (P.pd - lam + P.beta * x) + P.beta)


def _utility(P, c):
    e = _weight(P, c)
    return jnp.sum(e * (P.pd + P.beta * c)) / jnp.sum(e)


def _inflection(P, lam):
    alpha = P.pd - lam
    w1 = jnp.where(P.w1 == 0, 1.0, P.w1)
    safe = jnp.where(P.beta > 0, P.beta, 1.0)
    x0 = (-2.0 * P.beta / w1 - alpha) / safe
    x0 = jnp.where(P.beta > 0, x0, jnp.where(alpha > 0, -jnp.inf, jnp.inf))
    return jnp.where(P.w1 == 0, jnp.inf, x0)


def _surrogate(P, lam):
    """Eq. (8i) on the cube ``[0, 1]``: ``(p, sigma, f(1))`` as in ``certified._surrogate``."""
    l, u = jnp.zeros_like(P.pd), jnp.ones_like(P.pd)
    x0 = _inflection(P, lam)
    fu, fl = _f(P, u, lam), _f(P, l, lam)
    chord = fu - fl
    has_convex = x0 < 1.0
    h_l = fl + _fp(P, l, lam) - fu
    use_chord = has_convex & ((x0 <= 0.0) | (h_l <= 0))
    tangent = has_convex & ~use_chord

    def body(_, lohi):
        lo, hi = lohi
        mid = 0.5 * (lo + hi)
        pos = _f(P, mid, lam) + _fp(P, mid, lam) * (u - mid) - fu > 0
        return jnp.where(pos, mid, lo), jnp.where(pos, hi, mid)

    _, hi = jax.lax.fori_loop(0, _BISECT, body, (l, jnp.clip(x0, 0.0, 1.0)))
    p = jnp.where(use_chord, l, jnp.where(tangent, hi, u))
    sigma = jnp.where(use_chord, chord, jnp.where(tangent, _fp(P, hi, lam), 0.0))
    return p, sigma, fu


def _respond(P, lam, p, sigma, fu, mu, lo0, hi0):
    """``(argmax, max, concave argmax)`` of ``f_hat - mu x`` on ``[0, 1]``, ``[K, T]`` for
    ``mu[K, 1]``; the concave piece by safeguarded Newton inside ``[lo0, hi0]``."""
    l = jnp.zeros_like(P.pd)
    fpl, fpp = _fp(P, l, lam), _fp(P, p, lam)
    interior = (fpl > mu) & (fpp < mu)
    lo = jnp.broadcast_to(lo0, interior.shape)
    hi = jnp.broadcast_to(hi0, interior.shape)

    def cond(state):
        return (state[0] < _NEWTON) & ~state[4]

    def body(state):
        i, x, lo, hi, _ = state
        e = _weight(P, x)
        lin = P.pd - lam + P.beta * x
        resid = e * (P.w1 * lin + P.beta) - mu
        up = resid > 0
        lo, hi = jnp.where(up, x, lo), jnp.where(up, hi, x)
        curv = e * (P.w1 * P.w1 * lin + 2.0 * P.w1 * P.beta)
        step = x - resid / jnp.where(curv < 0, curv, -1.0)
        ok = (curv < 0) & (step >= lo) & (step <= hi)
        done = ~jnp.any(interior & (jnp.abs(step - x) > 1e-15) & (hi - lo > 1e-15))
        return i + 1, jnp.where(ok, step, 0.5 * (lo + hi)), lo, hi, done

    _, x, lo, hi, _ = jax.lax.while_loop(cond, body, (0, 0.5 * (lo + hi), lo, hi, False))
    xc = jnp.where(fpl <= mu, l, jnp.where(fpp >= mu, p, x))
    lo, hi = jnp.minimum(lo, xc), jnp.maximum(hi, xc)
    slack = jnp.where(interior, jnp.abs(_fp(P, xc, lam) - mu) * (hi - lo), 0.0)
    vc = _f(P, xc, lam) - mu * xc + slack
    at_p = fu + sigma * (p - 1.0) - mu * p
    at_u = fu - mu
    xl, vl = jnp.where(at_u >= at_p, 1.0, p), jnp.maximum(at_u, at_p)
    line = (p < 1.0) & (vl > vc)
    return jnp.where(line, xl, xc), jnp.where(line, vl, vc), xc


def _relax(P, lam, m, exact):
    """Eq. (8j) at the root: ``(upper bound on F(lam), a feasible point)``."""
    p, sigma, fu = _surrogate(P, lam)
    l = jnp.zeros_like(P.pd)
    slopes = jnp.concatenate([_fp(P, l, lam), _fp(P, p, lam), sigma])
    scale = jnp.max(jnp.abs(slopes)) + 1.0
    mu_lo, mu_hi = jnp.min(slopes) - scale, jnp.max(slopes) + scale
    if not exact:
        mu_lo, mu_hi = 0.0 * mu_lo, jnp.maximum(mu_hi, 1.0)

    def body(r, state):
        mu_lo, mu_hi, best, x_lo, x_hi, b_lo, b_hi, slack = state
        mus = jnp.linspace(mu_lo, mu_hi, _MU_POINTS)[:, None]
        x, g, xc = _respond(P, lam, p, sigma, fu, mus, b_lo, b_hi)
        used = x.sum(axis=1)
        best = jnp.minimum(best, jnp.min(mus[:, 0] * m + g.sum(axis=1)))
        now_slack = slack | ((r == 0) & (not exact) & (used[0] <= m))
        j = jnp.clip(jnp.sum(used > m) - 1, 0, _MU_POINTS - 2)
        keep = lambda old, new: jnp.where(now_slack, old, new)  # noqa: E731
        x_lo = jnp.where(now_slack & ~slack, x[0], keep(x_lo, x[j]))
        x_hi = jnp.where(now_slack & ~slack, x[0], keep(x_hi, x[j + 1]))
        return (
            keep(mu_lo, mus[j, 0]),
            keep(mu_hi, mus[j + 1, 0]),
            best,
            x_lo,
            x_hi,
            keep(b_lo, xc[j + 1]),
            keep(b_hi, xc[j]),
            now_slack,
        )

    init = (mu_lo, mu_hi, jnp.inf, l, l, l, p, jnp.asarray(False))
    _, _, best, x_lo, x_hi, _, _, _ = jax.lax.fori_loop(0, _MU_ROUNDS, body, init)
    s_lo, s_hi = jnp.sum(x_lo), jnp.sum(x_hi)
    theta = jnp.clip((m - s_hi) / jnp.where(s_lo > s_hi, s_lo - s_hi, 1.0), 0.0, 1.0)
    point = jnp.where((s_lo > s_hi) & (s_hi < m), x_hi + theta * (x_lo - x_hi), x_hi)
    point = jnp.clip(point, 0.0, 1.0)
    gap = m - jnp.sum(point)  # rounding repair onto the budget (cf. certified._onto_budget)
    down = point + gap * point / jnp.maximum(jnp.sum(point), 1e-300)
    up = jnp.minimum(point + gap * (1 - point) / jnp.maximum(jnp.sum(1 - point), 1e-300), 1.0)
    point = jnp.where(gap < 0, down, jnp.where(exact & (gap > 0), up, point))
    margin = 1e-12 * jnp.sum(jnp.abs(_f(P, l, lam)) + jnp.abs(fu))
    return best + margin, point


def _pure(P, lam, m):
    """Eq. (8k): the exact inner optimum when ``w1 > 0`` and ``sum c <= m``."""
    T = P.pd.shape[0]
    k = min(int(math.floor(m + 1e-12)), T)
    r = m - k if k < T else 0.0
    f0, f1 = _f(P, jnp.zeros(T), lam), _f(P, jnp.ones(T), lam)
    gain = f1 - f0
    order = jnp.argsort(-gain, stable=True)
    srt = gain[order]
    base = jnp.sum(f0)
    x = jnp.zeros(T).at[order[:k]].set(jnp.where(srt[:k] > 0, 1.0, 0.0))
    value = base + jnp.sum(jnp.maximum(srt[:k], 0.0))
    if r > 1e-12:
        fr = _f(P, jnp.full(T, r), lam) - f0
        rank = jnp.argsort(order)
        others = jnp.where(rank < k, jnp.sum(srt[: k + 1]) - gain, jnp.sum(srt[:k]))
        values = base + others + fr
        j = jnp.argmax(values)
        top = jnp.zeros(T).at[order[: k + 1]].set(1.0)
        frac = jnp.where(rank[j] <= k, top, jnp.zeros(T).at[order[:k]].set(1.0)).at[j].set(r)
        x = jnp.where(values[j] > value, frac, x)
        value = jnp.maximum(values[j], value)
    margin = 1e-12 * jnp.sum(jnp.abs(f0) + jnp.abs(f1))
    return value + margin, x


def _denominator_lower_bound(P, m):
    """Eq. (8h)'s ``D_lb``, as ``certified.denominator_lower_bound``."""
    base = jnp.exp(P.a)
    k = jnp.where(P.w1 < 0, -P.w1, 1.0)

    def dual(nu):
        x = jnp.clip((jnp.log(jnp.maximum(nu, 1e-300) / k) - P.a) / -k, 0.0, 1.0)
        return jnp.sum(_weight(P, x) + nu * x) - nu * m, jnp.sum(x)

    def body(_, state):
        best, lo, hi = state
        mid = 0.5 * (lo + hi)
        value, used = dual(mid)
        return jnp.maximum(best, value), jnp.where(used > m, mid, lo), jnp.where(used > m, hi, mid)

    best, _, _ = jax.lax.fori_loop(0, 200, body, (dual(0.0)[0], 0.0, k * jnp.max(base)))
    return jnp.where(P.w1 >= 0, jnp.sum(base), best)


@partial(jax.jit, static_argnames=("m", "exact"))
def solve(P: Arrays, c0, rtol, span, m: float, exact: bool):
    """Dinkelbach (eq. 8g) from ``c0[T]`` with root-only inner problems; returns
    ``(coverage[T], value, upper_bound, iterations)``.  ``vmap`` it over ``P``."""
    d_lb = _denominator_lower_bound(P, m)

    def inner(lam):
        if exact:
            return _relax(P, lam, m, True)
        return jax.lax.cond(P.w1 > 0, lambda: _pure(P, lam, m), lambda: _relax(P, lam, m, False))

    def cond(state):
        return (state[0] < _MAX_ITER) & ~state[4]

    def body(state):
        it, c, lam, bound, _ = state
        ub, point = inner(lam)
        lower = jnp.sum(_f(P, point, lam))
        bound = jnp.minimum(bound, lam + jnp.maximum(ub, 0.0) / d_lb)
        new = _utility(P, point)
        improved = (lower > 0) & (new > lam)
        c, lam = jnp.where(improved, point, c), jnp.where(improved, new, lam)
        done = (bound - lam <= rtol * jnp.maximum(jnp.abs(lam), 1e-3 * span)) | ~improved
        return it + 1, c, lam, bound, done

    init = (0, c0, _utility(P, c0), jnp.inf, False)
    it, c, lam, bound, _ = jax.lax.while_loop(cond, body, init)
    # eq. (8h'): F_bar(lam + delta) <= 0 proves max U <= lam + delta without dividing by D_lb
    lam_up = lam + 0.5 * rtol * jnp.maximum(jnp.abs(lam), 1e-3 * span)
    ub_up, _ = inner(lam_up)
    bound = jnp.where(ub_up <= 0, jnp.minimum(bound, lam_up), bound)
    return c, lam, jnp.maximum(bound, lam), it


@partial(jax.jit, static_argnames=("exact",))
def solve_batch(game, thetas, c0, rtol, span, exact: bool):
    """:func:`solve` for every row of ``thetas[M, 3]`` on one game (``m = game.resources``):
    ``(coverage[M, T], value[M], upper_bound[M], iterations[M])``."""
    m = game.resources
    return jax.vmap(lambda w: solve(make_arrays(game, w), c0, rtol, span, m, exact))(thetas)


__all__ = [
    "Arrays",
    "make_arrays",
    "solve",
    "solve_batch",
]
