"""Round-off-robust decisions: the tolerant argmax used wherever an argmax picks an action.

A plain ``argmax`` flips between two nearly equal values when their last bits change, and
their last bits change with things that should not matter (how many seeds share a ``vmap``
batch, the order of a reduction).  Every planner and learner of the library therefore decides
with :func:`tolerant_argmax`: among the entries within ``rtol * (1 + |max|)`` of the maximum
it takes the *lowest index* (a fixed rule), so that two values closer than the tolerance
always give the same decision (``docs/math.md``, "Ties").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .types import Array

#: Relative tolerance of :func:`tolerant_argmax`: entries within ``TIE_RTOL * (1 + |max|)``
#: of the maximum are ties (far above float64 round-off, ~1e-16, far below any meaningful
#: difference of values).
TIE_RTOL = 1e-9


def tolerant_argmax(x: Array, axis: int = -1, rtol: float = TIE_RTOL) -> Array:
    """The lowest index ``i`` along ``axis`` with ``x_i >= max(x) - rtol * (1 + |max(x)|)``.

    Args:
        x: ``[..., n, ...]`` values (any float array).
        axis: the axis to decide along.
        rtol: relative tie tolerance (``0`` gives the plain first argmax).

    Returns:
        integer indices, ``x``'s shape without ``axis``.  Where no entry qualifies (a NaN
        maximum, or ``+inf``) it falls back to ``jnp.argmax``.
    """
    x = jnp.asarray(x)
    top = jnp.max(x, axis=axis, keepdims=True)
    near = x >= top - rtol * (1.0 + jnp.abs(top))
    first_near = jnp.argmax(near, axis=axis)
    return jnp.where(jnp.any(near, axis=axis), first_near, jnp.argmax(x, axis=axis))


def greedy_one_hot(q: Array, rtol: float = TIE_RTOL) -> Array:
    """``one_hot(tolerant_argmax(q, -1))``: the greedy deterministic policy ``[..., A]`` of
    Q-values ``q[..., A]``, in ``q``'s dtype."""
    return jax.nn.one_hot(tolerant_argmax(q, -1, rtol), q.shape[-1], dtype=q.dtype)


__all__ = ["TIE_RTOL", "greedy_one_hot", "tolerant_argmax"]
