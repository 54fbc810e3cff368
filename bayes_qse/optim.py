"""Optimisers of the library (docs/math.md §2, §3): damped Newton for the MLE / MAP, the
one-step online Newton update of the online learners, and Adam (``optax``) for the gradient
planner of a farsighted follower (eq. 2b).

All are pure JAX functions of an ``objective`` to *maximise* and run inside ``jit``/``vmap``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from .ties import tolerant_argmax
from .types import Array

# ---------------------------------------------------------------------------------------
# Damped Newton (MLE / MAP of eq. 4)
# ---------------------------------------------------------------------------------------


def _pinv_solve(neg_hess: Array, grad: Array, rtol: float = 1e-12) -> Array:
    """``|I|^+ g``: a Newton step that ignores (near-)flat directions and flips negative ones."""
    lam, vecs = jnp.linalg.eigh(neg_hess)
    mag = jnp.abs(lam)
    keep = mag > rtol * jnp.maximum(jnp.max(mag), 1.0)
    inv = jnp.where(keep, 1.0 / jnp.where(keep, mag, 1.0), 0.0)
    return vecs @ (inv * (vecs.T @ grad))


@functools.cache
def _line_search_steps() -> Array:
    """The step sizes ``1, 1/2, ..., 2^-23`` of :func:`newton_maximize`, built on first use
    rather than at import: importing the library must not start JAX's backend (a process
    pool forks its workers from a process that has imported it,
    :mod:`bayes_qse.experiments.executors`)."""
    with jax.ensure_compile_time_eval():
        return 2.0 ** -jnp.arange(24)


def newton_maximize(objective, theta0: Array, max_steps: int):
    """Maximise ``objective`` by damped Newton with a backtracking (Armijo) line search.

    Each iteration evaluates value, gradient and Hessian at the current point, stops there if
    the Newton decrement ``g' |H|^+ g`` is at round-off level, and otherwise moves by the
    largest of the step sizes ``1, 1/2, ..., 2^-23`` (evaluated at once, vectorised) that
    passes the Armijo test.  The last iteration never moves, so the returned Hessian is always
    the one at the returned point.  Traces the Hessian once (compile time matters online).

    Returns ``(theta, value, neg_hessian, n_iter, converged)``; runs inside ``jit``.
    """
    value_and_grad = jax.value_and_grad(objective)
    hessian = jax.hessian(objective)
    d = theta0.shape[0]
    steps = _line_search_steps()

    def cond(state):
        return (state[4] < max_steps) & ~state[5]

    def body(state):
        theta, _, _, _, it, _ = state
        f, g = value_and_grad(theta)
        neg_h = -hessian(theta)
        step = _pinv_solve(neg_h, g)
        decrement = g @ step
        converged = decrement <= 1e-20 * (1.0 + jnp.abs(f))
        trial = jax.vmap(objective)(theta + steps[:, None] * step)
        ok = jnp.isfinite(trial) & (trial >= f + 1e-4 * steps * decrement)
        first = jnp.argmax(ok)
        move = ~converged & ok[first] & (it < max_steps - 1)
        theta_new = jnp.where(move, theta + steps[first] * step, theta)
        loose = decrement <= 1e-10 * (1.0 + jnp.abs(f))
        stop = converged | ~move
        return theta_new, f, neg_h, loose, it + 1, stop

    false = jnp.asarray(False)
    init = (theta0, jnp.zeros(()), jnp.zeros((d, d)), false, jnp.asarray(0), false)
    theta, f, neg_h, converged, it, _ = jax.lax.while_loop(cond, body, init)
    return theta, f, neg_h, it, converged


# ---------------------------------------------------------------------------------------
# Online Newton (one step per episode) and the positive-definite precision
# ---------------------------------------------------------------------------------------


def positive_precision(neg_hessian: Array, floor: Array | float) -> Array:
    """``neg_hessian[d,d]`` with its eigenvalues raised to at least ``floor`` (the prior
    precision): where the log-likelihood is locally not concave (a farsighted follower) the
    Fisher part is clipped at 0, so the Laplace / Wald matrix stays positive definite."""
    sym = 0.5 * (neg_hessian + neg_hessian.T)
    lam, vecs = jnp.linalg.eigh(sym)
    return (vecs * jnp.maximum(lam, floor)) @ vecs.T


def online_newton_step(
    objective: Callable[[Array], Array],
    theta: Array,
    prior_precision: float,
    step_sizes: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125),
    precision_floor: float | None = None,
) -> tuple[Array, Array]:
    """One damped Newton step on ``objective`` (a log-posterior) from the previous estimate.

    Used for a farsighted follower, whose likelihood (eq. 4) runs the soft Bellman recursion
    once per stored episode, so that a Hessian costs ``d`` times ``capacity`` recursions: one
    Hessian per episode (at the warm start) instead of the several of a converged Newton solve
    (:func:`bayes_qse.likelihood.map_core`), as in online Newton methods for logistic bandits.
    The step ``|H|^-1 g`` (eigenvalues in absolute value, :func:`positive_precision` with the
    prior floor) is tried at ``step_sizes`` and at 0; the best value wins.

    Returns ``(theta_new[d], precision[d,d])``: the precision is the negative Hessian at the
    warm start, one episode behind ``theta_new``, with eigenvalues floored at
    ``precision_floor`` (``prior_precision = 1 / prior_scale^2`` by default; 0 keeps an
    unridged Fisher information's null space, for the frequentist sets).
    """
    g = jax.grad(objective)(theta)
    neg_h = -jax.hessian(objective)(theta)
    sym = 0.5 * (neg_h + neg_h.T)
    lam, vecs = jnp.linalg.eigh(sym)
    direction = vecs @ ((vecs.T @ g) / jnp.maximum(jnp.abs(lam), prior_precision))
    sizes = jnp.asarray((0.0, *step_sizes), dtype=theta.dtype)
    candidates = theta[None] + sizes[:, None] * direction[None]
    values = jax.vmap(objective)(candidates)
    values = jnp.where(jnp.isfinite(values), values, -jnp.inf)
    theta_new = candidates[tolerant_argmax(values)]
    floor = prior_precision if precision_floor is None else precision_floor
    precision = (vecs * jnp.maximum(lam, floor)) @ vecs.T
    return theta_new, precision


# ---------------------------------------------------------------------------------------
# Adam (optax) for the gradient planner
# ---------------------------------------------------------------------------------------


def adam_ascent(objective, x0: Array, n_steps: int, learning_rate: float) -> Array:
    """Maximise ``objective`` from ``x0`` by ``n_steps`` steps of Adam; returns the final x.

    ``optax.adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8)`` on ``-objective``: with
    ``g_t = grad objective(x_{t-1})``, ``m_t = b1 m_{t-1} + (1-b1) g_t``,
    ``v_t = b2 v_{t-1} + (1-b2) g_t^2`` and
    ``x_t = x_{t-1} + lr (m_t / (1-b1^t)) / (sqrt(v_t / (1-b2^t)) + eps)``.
    ``n_steps`` must be static under ``jit``.
    """
    opt = optax.adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8)
    grad = jax.grad(lambda x: -objective(x))

    def body(carry, _):
        x, state = carry
        updates, state = opt.update(grad(x), state, x)
        return (optax.apply_updates(x, updates), state), None

    (x, _), _ = jax.lax.scan(body, (x0, opt.init(x0)), None, length=n_steps)
    return x


__all__ = [
    "adam_ascent",
    "newton_maximize",
    "online_newton_step",
    "positive_precision",
]
