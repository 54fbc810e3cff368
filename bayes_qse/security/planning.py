"""The defender's problem against a SUQR attacker (docs/math.md eq. 8c-8e).

``max_c U(c; w)`` over the coverage polytope ``{0 <= c <= 1, sum c <= m}`` is not concave in
``c`` (a QSE in the sense of Cerny et al.), so we run projected gradient ascent (``optax``:
normalised gradient steps of cosine-decayed length, each followed by the exact Euclidean
projection of eq. 8d; an isotropic step, so its fixed points are the KKT points — a
per-coordinate preconditioner such as Adam's would stop where the *preconditioned* gradient
is normal to the budget face, which is not stationary) from several starts and keep the
best point seen.  Over posterior draws ``w_1..w_M`` the objective is a rule (eq. 8e):

- ``"mean"``: ``(1/M) sum_j U(c; w_j)`` (the Bayes plan; one draw is Thompson's plan);
- ``"quantile"``: the empirical ``level``-quantile of ``U(c; w_j)`` over draws (pessimistic for
  a low level, optimistic for a high one; ``level = 1`` is the best case over the draws).

It is a local search: the value is *not certified* to be the global maximum;
:func:`grid_search_coverage` is the brute force the tests and docs compare it with.
"""

from __future__ import annotations

import itertools
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..errors import BayesQSEInputError
from ..ties import tolerant_argmax
from .game import SecurityGame, defender_utility

Array = jax.Array

RULES = ("mean", "quantile")


def project_coverage(y: Array, resources: float, iters: int = 80) -> Array:
    """Euclidean projection of ``y[T]`` onto ``{0 <= c <= 1, sum c <= m}`` (eq. 8d).

    KKT: ``c = clip(y - tau, 0, 1)`` with ``tau = 0`` if that is feasible, else the ``tau > 0``
    with ``sum_t clip(y_t - tau, 0, 1) = m`` (decreasing in ``tau``): found by bisection on
    ``[0, max y]``, then solved exactly on the bisection's active set (free coordinates
    ``0 < y - tau < 1``).  Pure, jit-able, vmappable.
    """
    y = jnp.asarray(y)
    m = jnp.asarray(resources, y.dtype)
    box = jnp.clip(y, 0.0, 1.0)

    def total(tau):
        return jnp.sum(jnp.clip(y - tau, 0.0, 1.0))

    def body(_, lohi):
        lo, hi = lohi
        mid = 0.5 * (lo + hi)
        over = total(mid) > m
        return jnp.where(over, mid, lo), jnp.where(over, hi, mid)

    lo, hi = jax.lax.fori_loop(0, iters, body, (jnp.zeros_like(m), jnp.maximum(jnp.max(y), 0.0)))
    free = (y - hi > 0.0) & (y - hi < 1.0)
    n_free = jnp.sum(free)
    n_top = jnp.sum(y - hi >= 1.0)
    exact = (jnp.sum(jnp.where(free, y, 0.0)) + n_top - m) / jnp.maximum(n_free, 1)
    c_exact = jnp.clip(y - exact, 0.0, 1.0)
    ok = (n_free > 0) & (jnp.abs(jnp.sum(c_exact) - m) <= 1e-12 * (1.0 + m))
    tau = jnp.where(ok, exact, hi)
    return jnp.where(jnp.sum(box) <= m, box, jnp.clip(y - tau, 0.0, 1.0))


def rule_objective(rule: str, level: float):
    """``(c, game, thetas[M,3]) -> scalar``: the rule of eq. (8e) over the draws."""
    if rule not in RULES:
        raise BayesQSEInputError(f"rule: must be one of {RULES}, got {rule!r}")

    def objective(c, game, thetas):
        u = jax.vmap(lambda th: defender_utility(th, game, c))(thetas)
        return jnp.mean(u) if rule == "mean" else jnp.quantile(u, level)

    return objective


def starting_points(key: Array, n_targets: int, resources: float, n_starts: int) -> Array:
    """``[n_starts, T]``: the even spread ``min(m/T, 1)`` then random points of the polytope
    (Dirichlet shares of the budget ``m``, projected)."""
    even = jnp.full((1, n_targets), min(resources / n_targets, 1.0))
    shares = jax.random.dirichlet(key, jnp.ones(n_targets + 1), (n_starts - 1,))[:, :n_targets]
    rand = jax.vmap(lambda y: project_coverage(y, resources))(resources * shares)
    return jnp.concatenate([even, rand], axis=0)


def plan_core(game, thetas, key, rule, level, n_starts, steps, learning_rate):
    """Pure multistart projected gradient ascent; returns ``(coverage[T], value, values[starts])``.

    The best iterate of each start (not its last) is kept; the winner among starts is the
    tolerant argmax (docs/math.md "Ties").  Use :func:`plan_coverage` outside ``jit``.
    """
    objective = rule_objective(rule, level)
    grad = jax.value_and_grad(objective)
    opt = optax.chain(
        optax.normalize_by_update_norm(scale_factor=1.0),
        optax.scale_by_schedule(optax.cosine_decay_schedule(learning_rate, steps, alpha=1e-3)),
    )
    T, m = game.defender_reward.shape[0], game.resources

    def ascend(c0):
        def step(carry, _):
            c, state, best_c, best_v = carry
            v, g = grad(c, game, thetas)
            better = v > best_v
            best_c, best_v = jnp.where(better, c, best_c), jnp.where(better, v, best_v)
            upd, state = opt.update(g, state, c)
            c = project_coverage(c + upd, m)
            return (c, state, best_c, best_v), None

        init = (c0, opt.init(c0), c0, -jnp.inf)
        (c, _, best_c, best_v), _ = jax.lax.scan(step, init, None, steps)
        v = objective(c, game, thetas)
        return jnp.where(v > best_v, c, best_c), jnp.maximum(v, best_v)

    cs, vs = jax.vmap(ascend)(starting_points(key, T, m, n_starts))
    i = tolerant_argmax(vs)
    return cs[i], vs[i], vs


_plan_jit = jax.jit(plan_core, static_argnames=("rule", "n_starts", "steps"))


class CoveragePlan(NamedTuple):
    """Output of :func:`plan_coverage`.

    Attributes:
        coverage: ``[T]`` the best coverage found.
        value: the rule's objective there (eq. 8e).
        start_values: ``[n_starts]`` the best value reached from each start (their spread
            shows how non-concave the problem is).
    """

    coverage: np.ndarray
    value: float
    start_values: np.ndarray


def _check_thetas(thetas) -> Array:
    th = jnp.asarray(thetas, jnp.float64)
    th = th[None] if th.ndim == 1 else th
    if th.ndim != 2 or th.shape[1] != 3 or th.shape[0] < 1:
        raise BayesQSEInputError(f"thetas: expected shape (3,) or (M, 3), got {th.shape}")
    if not bool(jnp.all(jnp.isfinite(th))):
        raise BayesQSEInputError("thetas: must be finite")
    return th


def plan_coverage(
    game: SecurityGame,
    thetas=None,
    *,
    rule: str = "mean",
    level: float = 0.1,
    n_starts: int = 16,
    steps: int = 300,
    learning_rate: float = 0.05,
    seed: int = 0,
) -> CoveragePlan:
    """The defender's best coverage against SUQR weights ``thetas`` (``[3]`` or draws ``[M,3]``;
    default the game's true ``theta``) under ``rule`` (eq. 8e), by multistart projected ascent.

    Deterministic for a fixed ``seed`` (it only seeds the random starts).
    """
    thetas = game.theta if thetas is None else thetas
    if thetas is None:
        raise BayesQSEInputError("thetas: the game has no theta; pass SUQR weights or draws")
    th = _check_thetas(thetas)
    if rule not in RULES:
        raise BayesQSEInputError(f"rule: must be one of {RULES}, got {rule!r}")
    if not 0.0 <= level <= 1.0:
        raise BayesQSEInputError(f"level: must be in [0, 1], got {level!r}")
    for name, v in (("n_starts", n_starts), ("steps", steps)):
        if int(v) != v or v < 1:
            raise BayesQSEInputError(f"{name}: must be an integer >= 1, got {v!r}")
    if not learning_rate > 0:
        raise BayesQSEInputError(f"learning_rate: must be > 0, got {learning_rate!r}")
    key = jax.random.PRNGKey(seed)
    c, v, vs = _plan_jit(
        game, th, key, rule, float(level), int(n_starts), int(steps), float(learning_rate)
    )
    return CoveragePlan(np.asarray(c), float(v), np.asarray(vs))


@partial(jax.jit, static_argnames=("n_starts", "steps"))
def _per_draw(game, thetas, key, n_starts, steps, learning_rate):
    keys = jax.random.split(key, thetas.shape[0])
    return jax.vmap(
        lambda th, k: plan_core(game, th[None], k, "mean", 0.5, n_starts, steps, learning_rate)[:2]
    )(thetas, keys)


def plan_per_draw(
    game: SecurityGame,
    thetas,
    *,
    n_starts: int = 8,
    steps: int = 300,
    learning_rate: float = 0.05,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """One plan per draw: ``(coverage[M, T], value[M])`` (each draw's own QSE, eq. 8c)."""
    th = _check_thetas(thetas)
    c, v = _per_draw(
        game, th, jax.random.PRNGKey(seed), int(n_starts), int(steps), float(learning_rate)
    )
    return np.asarray(c), np.asarray(v)


def grid_search_coverage(
    game: SecurityGame, theta, step: float = 0.05, max_points: int = 5_000_000
) -> tuple[np.ndarray, float]:
    """Brute force: the best coverage on the grid ``{0, step, .., 1}^T`` within the budget.

    NumPy, independent of the planner; for small games (``(1/step + 1)^T <= max_points``).
    Returns ``(coverage[T], U)``; a lower bound on the true maximum of eq. (8c).
    """
    T, m = game.n_targets, float(game.resources)
    levels = np.round(np.arange(0.0, 1.0 + step / 2, step), 12)
    if len(levels) ** T > max_points:
        raise BayesQSEInputError(f"step: grid of {len(levels)}^{T} points exceeds {max_points}")
    grid = np.array(list(itertools.product(levels, repeat=T)))
    grid = grid[grid.sum(axis=1) <= m + 1e-12]
    w = np.asarray(theta, np.float64)
    ra, pa = np.asarray(game.attacker_reward), np.asarray(game.attacker_penalty)
    rd, pd = np.asarray(game.defender_reward), np.asarray(game.defender_penalty)
    su = w[0] * grid + w[1] * ra + w[2] * pa
    q = np.exp(su - su.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)
    u = np.sum(q * (grid * rd + (1 - grid) * pd), axis=1)
    i = int(np.argmax(u))
    return grid[i], float(u[i])
