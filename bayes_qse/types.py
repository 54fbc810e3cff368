"""The type aliases shared by every module: one home for what an annotation means.

``Array`` is any JAX array (``jax.Array``; NumPy arrays are accepted wherever JAX converts
them) and ``PRNGKey`` a JAX random key (a raw ``uint32[2]`` key from ``jax.random.PRNGKey``
or a typed one from ``jax.random.key``).
"""

from __future__ import annotations

import jax

__all__ = ["Array", "PRNGKey"]

#: Any JAX array; shapes are given in each docstring (``[S, A, B]`` and so on).
Array = jax.Array
#: A JAX random key: raw ``uint32[2]`` (``jax.random.PRNGKey(seed)``) or typed.
PRNGKey = jax.Array
