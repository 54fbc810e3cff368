"""The defender's problem against a SUQR attacker (docs/math.md eq. 8c-8k).

``max_c U(c; w)`` over the coverage polytope ``C_m = {0 <= c <= 1, sum c <= m}`` (or its face
``sum c = m``, ``budget="exact"``) is not concave in ``c``.  For one weight vector it is solved
to a **certified** gap (:mod:`.certified`: Dinkelbach on the ratio ``N / D`` of target-separable
sums, each inner problem by an exact enumeration when ``w1 > 0`` or by branch and bound on
concave envelopes otherwise): :class:`CoveragePlan` carries the value, an upper bound on the
maximum, and their gap.  Over posterior draws ``w_1..w_M`` the objective is a rule (eq. 8e):

- ``"mean"``: ``(1/M) sum_j U(c; w_j)`` (the Bayes plan; one draw is Thompson's plan);
- ``"quantile"``: the empirical ``level``-quantile of ``U(c; w_j)`` over draws (pessimistic for
  a low level, optimistic for a high one; ``level = 1`` is the best case over the draws).

A rule is not one ratio.  Its plan starts from every draw's certified optimum, which is
evaluated under the rule and refined by projected gradient ascent (``optax``: normalised steps
of cosine-decayed length, each followed by the exact projection of eq. 8d); its upper bound is
the rule applied to the draws' certified bounds (eq. 8l), valid but not tight in general --
except at ``level = 1``, where the best draw's plan attains it (up to the draws' gaps).
:func:`grid_search_coverage` is the brute force the tests compare with.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..errors import BayesQSEInputError
from ..ties import tolerant_argmax
from ..types import Array
from .certified import BUDGETS, Problem, certified_plan
from .fast_certified import solve_batch
from .game import SecurityGame, defender_utility

RULES = ("mean", "quantile")


def project_coverage(y: Array, resources: float, iters: int = 80, exact: bool = False) -> Array:
    """Euclidean projection of ``y[T]`` onto ``{0 <= c <= 1, sum c <= m}`` (eq. 8d), or onto
    its face ``sum c = m`` (``exact``).

    KKT: ``c = clip(y - tau, 0, 1)`` with ``tau = 0`` if that is feasible (not for ``exact``),
    else the ``tau`` with ``sum_t clip(y_t - tau, 0, 1) = m`` (decreasing in ``tau``; ``tau > 0``
    unless ``exact``): found by bisection on ``[min y - 1, max y]``, then solved exactly on the
    bisection's active set (free coordinates ``0 < y - tau < 1``).  Pure, jit-able, vmappable.
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

    lo0 = jnp.min(y) - 1.0 if exact else jnp.zeros_like(m)
    lo, hi = jax.lax.fori_loop(0, iters, body, (lo0, jnp.maximum(jnp.max(y), lo0)))
    free = (y - hi > 0.0) & (y - hi < 1.0)
    n_free = jnp.sum(free)
    n_top = jnp.sum(y - hi >= 1.0)
    tau_exact = (jnp.sum(jnp.where(free, y, 0.0)) + n_top - m) / jnp.maximum(n_free, 1)
    c_exact = jnp.clip(y - tau_exact, 0.0, 1.0)
    ok = (n_free > 0) & (jnp.abs(jnp.sum(c_exact) - m) <= 1e-12 * (1.0 + m))
    tau = jnp.where(ok, tau_exact, hi)
    projected = jnp.clip(y - tau, 0.0, 1.0)
    return projected if exact else jnp.where(jnp.sum(box) <= m, box, projected)


def rule_objective(rule: str, level: float):
    """``(c, game, thetas[M,3]) -> scalar``: the rule of eq. (8e) over the draws."""
    if rule not in RULES:
        raise BayesQSEInputError(f"rule: must be one of {RULES}, got {rule!r}")

    def objective(c, game, thetas):
        u = jax.vmap(lambda th: defender_utility(th, game, c))(thetas)
        return jnp.mean(u) if rule == "mean" else jnp.quantile(u, level)

    return objective


def starting_points(
    key: Array, n_targets: int, resources: float, n_starts: int, exact: bool = False
) -> Array:
    """``[n_starts, T]``: the even spread ``min(m/T, 1)`` then random points of the polytope
    (Dirichlet shares of the budget ``m``, projected)."""
    even = jnp.full((1, n_targets), min(resources / n_targets, 1.0))
    shares = jax.random.dirichlet(key, jnp.ones(n_targets + 1), (n_starts - 1,))[:, :n_targets]
    rand = jax.vmap(lambda y: project_coverage(y, resources, exact=exact))(resources * shares)
    return jnp.concatenate([even, rand], axis=0)


def plan_core(game, thetas, starts, rule, level, steps, learning_rate, exact=False):
    """Pure multistart projected gradient ascent of the rule from ``starts[K, T]``; returns
    ``(coverage[T], value, values[K])``.

    The best iterate of each start (not its last) is kept, so no start ends below its own
    value; the winner among starts is the tolerant argmax (docs/math.md "Ties").  A local
    search: :func:`plan_coverage` wraps it with certified starts and a bound.
    """
    objective = rule_objective(rule, level)
    grad = jax.value_and_grad(objective)
    opt = optax.chain(
        optax.normalize_by_update_norm(scale_factor=1.0),
        optax.scale_by_schedule(optax.cosine_decay_schedule(learning_rate, steps, alpha=1e-3)),
    )
    m = game.resources

    def ascend(c0):
        def step(carry, _):
            c, state, best_c, best_v = carry
            v, g = grad(c, game, thetas)
            better = v > best_v
            best_c, best_v = jnp.where(better, c, best_c), jnp.where(better, v, best_v)
            upd, state = opt.update(g, state, c)
            c = project_coverage(c + upd, m, exact=exact)
            return (c, state, best_c, best_v), None

        init = (c0, opt.init(c0), c0, -jnp.inf)
        (c, _, best_c, best_v), _ = jax.lax.scan(step, init, None, steps)
        v = objective(c, game, thetas)
        return jnp.where(v > best_v, c, best_c), jnp.maximum(v, best_v)

    cs, vs = jax.vmap(ascend)(starts)
    i = tolerant_argmax(vs)
    return cs[i], vs[i], vs


_plan_jit = jax.jit(plan_core, static_argnames=("rule", "steps", "exact"))


class CoveragePlan(NamedTuple):
    """Output of :func:`plan_coverage`.

    Attributes:
        coverage: ``[T]`` the plan (feasible: in ``C_m``, on ``sum c = m`` for ``"exact"``).
        value: the rule's objective there (eq. 8e; ``U(c; w)`` for one weight vector).
        upper_bound: a certified upper bound on the maximum of the objective (eq. 8h, 8l).
        gap: ``upper_bound - value >= 0``: the plan is within ``gap`` of the optimum.
        relative_gap: ``gap / max(|value|, 1e-3 (max R^d - min P^d))``.
        certified: ``relative_gap <= rtol`` (always the case for one weight vector unless a
            node limit was hit; for a rule only when the draws' bounds happen to be tight).
    """

    coverage: np.ndarray
    value: float
    upper_bound: float
    gap: float
    relative_gap: float
    certified: bool


def _check_thetas(thetas) -> np.ndarray:
    if thetas is None:
        raise BayesQSEInputError(
            "thetas: pass the SUQR weights to plan for ([3] or draws [M, 3]); the planner never "
            "reads game.theta (the true weights) on its own"
        )
    th = np.asarray(thetas, np.float64)
    th = th[None] if th.ndim == 1 else th
    if th.ndim != 2 or th.shape[1] != 3 or th.shape[0] < 1:
        raise BayesQSEInputError(f"thetas: expected shape (3,) or (M, 3), got {th.shape}")
    if not np.all(np.isfinite(th)):
        raise BayesQSEInputError("thetas: must be finite")
    return th


def _problem(game: SecurityGame, w, budget: str) -> Problem:
    return Problem(
        np.asarray(game.defender_reward),
        np.asarray(game.defender_penalty),
        np.asarray(game.attacker_reward),
        np.asarray(game.attacker_penalty),
        w,
        game.resources,
        budget,
    )


def _scale(game: SecurityGame) -> float:
    span = float(np.max(game.defender_reward) - np.min(game.defender_penalty))
    return 1e-3 * max(span, 1e-300)


def _make_plan(game, coverage, value, upper, rtol) -> CoveragePlan:
    upper = max(float(upper), float(value))
    gap = upper - float(value)
    rel = gap / max(abs(float(value)), _scale(game))
    return CoveragePlan(np.asarray(coverage), float(value), upper, gap, rel, bool(rel <= rtol))


def _check_options(rule, level, budget, rtol, n_starts, steps, learning_rate, max_nodes):
    if rule not in RULES:
        raise BayesQSEInputError(f"rule: must be one of {RULES}, got {rule!r}")
    if not 0.0 <= level <= 1.0:
        raise BayesQSEInputError(f"level: must be in [0, 1], got {level!r}")
    if budget not in BUDGETS:
        raise BayesQSEInputError(f"budget: must be one of {BUDGETS}, got {budget!r}")
    if not 0.0 < rtol < 1.0:
        raise BayesQSEInputError(f"rtol: must be in (0, 1), got {rtol!r}")
    for name, v in (("n_starts", n_starts), ("steps", steps), ("max_nodes", max_nodes)):
        if int(v) != v or v < 1:
            raise BayesQSEInputError(f"{name}: must be an integer >= 1, got {v!r}")
    if not learning_rate > 0:
        raise BayesQSEInputError(f"learning_rate: must be > 0, got {learning_rate!r}")


def _start(game: SecurityGame) -> np.ndarray:
    return np.full(game.n_targets, min(game.resources / game.n_targets, 1.0))


def _certify(game, th: np.ndarray, budget: str, rtol: float, max_nodes: int):
    """Certified plans for every row of ``th[M, 3]``: the JAX fast path (root relaxations,
    :mod:`.fast_certified`) for all rows at once, then, on the face ``sum c = m``, the branch
    and bound (:mod:`.certified`) from its answer for the rows whose relative gap is still
    above ``rtol``.
    Returns ``(coverage[M, T], value[M], upper_bound[M])``; every bound is valid either way."""
    exact = budget == "exact"
    span = 1e3 * _scale(game)
    cov, val, ub, _ = solve_batch(
        game, jnp.asarray(th), jnp.asarray(_start(game)), float(rtol), span, exact
    )
    cov, val, ub = np.array(cov), np.array(val), np.array(ub)
    # with sum c <= m the root is exact in theory (docs/math.md, "When the root of (8j) is
    # tight"): a gap left there is rounding, which branching cannot close; report it as it is
    loose = ub - val > rtol * np.maximum(np.abs(val), 1e-3 * span)
    for i in np.flatnonzero(loose & exact):
        cert = certified_plan(_problem(game, th[i], budget), cov[i], rtol, max_nodes=max_nodes)
        if cert.value > val[i]:
            cov[i], val[i] = cert.coverage, cert.value
        ub[i] = max(min(ub[i], cert.upper_bound), val[i])
    return cov, val, ub


def plan_per_draw(
    game: SecurityGame,
    thetas,
    *,
    budget: str = "at_most",
    rtol: float = 1e-6,
    max_nodes: int = 2000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each draw's own certified QSE (eq. 8c): ``(coverage[M, T], value[M], upper_bound[M])``."""
    th = _check_thetas(thetas)
    _check_options("mean", 0.5, budget, rtol, 1, 1, 1.0, max_nodes)
    return _certify(game, th, budget, rtol, max_nodes)


def _rule_value(rule: str, level: float, values: np.ndarray) -> float:
    return float(np.mean(values) if rule == "mean" else np.quantile(values, level))


def plan_coverage(
    game: SecurityGame,
    thetas,
    *,
    rule: str = "mean",
    level: float = 0.1,
    budget: str = "at_most",
    rtol: float = 1e-6,
    n_starts: int = 8,
    steps: int = 300,
    learning_rate: float = 0.05,
    seed: int = 0,
    max_nodes: int = 2000,
) -> CoveragePlan:
    """The defender's best coverage against SUQR weights ``thetas`` (``[3]`` or draws
    ``[M, 3]``, required: the game's true ``theta`` is never used silently) under ``rule``
    (eq. 8e), with a certified upper bound on the maximum.

    - **One weight vector** (or ``M = 1``): Dinkelbach with exactly solved inner problems
      (:func:`~bayes_qse.security.certified.certified_plan`) until the relative gap is at most
      ``rtol``; the plan is then certified (``certified=True``).  ``budget="exact"`` with
      ``w1 > 0`` and a fractional budget runs a knapsack-like branch and bound capped at
      ``max_nodes`` nodes per inner problem; the gap it reports is still a valid one.
    - **A rule over draws** (``M > 1``): *not* certified in general.  The search starts from
      every draw's certified plan (each evaluated under the rule), plus ``n_starts`` spread and
      random points, and refines them by ``steps`` steps of projected gradient ascent (eq. 8d).
      The upper bound is the rule applied to the draws' certified bounds (eq. 8l): for every
      ``c``, ``U(c; w_j) <= bound_j``, and the mean and the empirical quantile are monotone.
      At ``level = 1`` (the best case over the draws) the bound is attained by the best draw's
      plan, so that rule *is* certified; otherwise the gap is what it is and is reported.

    Deterministic for a fixed ``seed`` (it only seeds the random starts of the ascent).
    """
    th = _check_thetas(thetas)
    _check_options(rule, level, budget, rtol, n_starts, steps, learning_rate, max_nodes)
    covs, values, uppers = _certify(game, th, budget, rtol, max_nodes)
    if th.shape[0] == 1:
        return _make_plan(game, covs[0], values[0], uppers[0], rtol)
    bound = _rule_value(rule, level, uppers)
    utilities = np.asarray(
        jax.vmap(lambda c: jax.vmap(lambda w: defender_utility(w, game, c))(jnp.asarray(th)))(
            jnp.asarray(covs)
        )
    )
    seeded = np.array([_rule_value(rule, level, u) for u in utilities])
    i = int(np.argmax(seeded))
    best_c, best_v = covs[i], float(seeded[i])
    if rule == "quantile" and level == 1.0:  # the best draw's plan attains the bound
        return _make_plan(game, best_c, best_v, bound, rtol)
    exact = budget == "exact"
    key = jax.random.PRNGKey(seed)
    starts = jnp.concatenate(
        [jnp.asarray(covs), starting_points(key, game.n_targets, game.resources, n_starts, exact)]
    )
    c, v, _ = _plan_jit(
        game, jnp.asarray(th), starts, rule, float(level), int(steps), float(learning_rate), exact
    )
    if float(v) > best_v:
        best_c, best_v = np.asarray(c), float(v)
    return _make_plan(game, best_c, best_v, bound, rtol)


def grid_search_coverage(
    game: SecurityGame, theta, step: float = 0.05, max_points: int = 5_000_000
) -> tuple[np.ndarray, float]:
    """Brute force: the best coverage on the grid ``{0, step, .., 1}^T`` within the budget
    (``sum c <= m``, the whole polytope: points that leave budget unused are included).

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


__all__ = [
    "CoveragePlan",
    "RULES",
    "grid_search_coverage",
    "plan_core",
    "plan_coverage",
    "plan_per_draw",
    "project_coverage",
    "rule_objective",
    "starting_points",
]
