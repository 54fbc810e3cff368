"""The one backward-induction skeleton, docs/math.md §1.2 and eq. (2a).

Every finite-horizon recursion of the package -- the follower's soft Bellman recursion
(eq. 1a-1d), the leader's policy evaluation (§1.2), exact planning (2a) and the planners under
uncertainty (§4, eq. 6: expectation over draws, quantile, probability box, ellipsoid) -- runs
backwards from ``V_{H+1} = 0`` and differs only in its *step operator*
``V_h, out_h = step(V_{h+1}, x_h)``.  :func:`backward_scan` is that loop (one reverse
``jax.lax.scan``); :func:`greedy_backward` the leader's planners, ``V_h = max_a Q_h`` with
``Q_h = q_step(V_{h+1}, x_h)``.

Pure JAX: runs under ``jit`` and ``jax.disable_jit()`` alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .types import Array


def backward_scan(step: Callable[[Any, Any], tuple[Any, Any]], v_end: Any, xs: Any) -> tuple:
    """Run ``V_h, out_h = step(V_{h+1}, x_h)`` for ``h = H, ..., 1`` from ``V_{H+1} = v_end``.

    Args:
        step: the step operator; ``V`` may be any pytree (e.g. a pair of values).
        v_end: the terminal value ``V_{H+1}`` (zeros ``[..., S]`` throughout the package).
        xs: the per-step inputs, a pytree of arrays with the step axis ``H`` first.

    Returns ``(out[H, ...], V[H+1, ...])``: the stacked step outputs and the values with the
    terminal one appended (each leaf of ``V`` stacked on a new first axis).
    """

    def body(v_next, x):
        v, out = step(v_next, x)
        return v, (out, v)

    _, (outs, vs) = jax.lax.scan(body, v_end, xs, reverse=True)
    values = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b[None]], axis=0), vs, v_end)
    return outs, values


def greedy_backward(
    q_step: Callable[[Array, Any], Array], v_end: Array, xs: Any, action_axis: int = -1
) -> tuple[Array, Array]:
    """The leader's planners (eq. 2a, §4): ``Q_h = q_step(V_{h+1}, x_h)``,
    ``V_h = max_a Q_h`` (the max over ``action_axis`` of ``Q_h``).

    Returns ``(Q[H, ...], V[H+1, ...])``; the greedy policy is
    :func:`bayes_qse.ties.greedy_one_hot` of ``Q``.
    """

    def step(v_next, x):
        q = q_step(v_next, x)
        return jnp.max(q, axis=action_axis), q

    return backward_scan(step, v_end, xs)


__all__ = ["backward_scan", "greedy_backward"]
