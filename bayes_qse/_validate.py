"""Small validators shared by the public entry points (games, data, sets, learners).

Each takes the *field name* so that the error message says what is wrong and where.
They operate on concrete NumPy arrays; they are never called on JAX tracers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import BayesQSEInputError


def as_float_array(
    value: object,
    name: str,
    ndim: int | None = None,
    error: type[BayesQSEInputError] = BayesQSEInputError,
) -> np.ndarray:
    """Convert ``value`` to a finite float64 array of rank ``ndim`` or raise ``error``."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise error(f"{name}: cannot be read as an array of numbers ({exc})") from None
    if ndim is not None and arr.ndim != ndim:
        raise error(f"{name}: expected a {ndim}-dimensional array, got shape {arr.shape}")
    if arr.size and not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.isfinite(arr)))
        raise error(f"{name}: contains {bad} NaN or infinite entries")
    return arr


def as_index_array(
    value: object,
    name: str,
    ndim: int,
    upper: int,
    error: type[BayesQSEInputError] = BayesQSEInputError,
) -> np.ndarray:
    """Convert ``value`` to an int array with entries in ``[0, upper)`` or raise ``error``."""
    arr = np.asarray(value)
    if arr.ndim != ndim:
        raise error(f"{name}: expected a {ndim}-dimensional array, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)):
            if not np.all(arr == np.round(arr)):
                raise error(f"{name}: indices must be integers")
        else:
            raise error(f"{name}: indices must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= upper):
        raise error(
            f"{name}: indices must lie in [0, {upper}), found range [{arr.min()}, {arr.max()}]"
        )
    return arr


def check_shape(
    arr: np.ndarray,
    expected: Sequence[int],
    name: str,
    error: type[BayesQSEInputError] = BayesQSEInputError,
) -> None:
    """Raise ``error`` naming ``name`` unless ``arr.shape == expected``."""
    if tuple(arr.shape) != tuple(expected):
        raise error(f"{name}: expected shape {tuple(expected)}, got {tuple(arr.shape)}")


def check_distribution(
    arr: np.ndarray,
    name: str,
    axis: int = -1,
    atol: float = 1e-6,
    error: type[BayesQSEInputError] = BayesQSEInputError,
) -> None:
    """Raise ``error`` unless ``arr`` is non-negative and sums to one along ``axis``."""
    if arr.size == 0:
        raise error(f"{name}: is empty")
    if np.any(arr < 0):
        raise error(f"{name}: has negative probabilities (min {arr.min():.3g})")
    sums = arr.sum(axis=axis)
    worst = float(np.max(np.abs(sums - 1.0)))
    if worst > atol:
        raise error(
            f"{name}: probabilities must sum to 1 along axis {axis}; "
            f"worst sum is off by {worst:.3g}"
        )


def check_positive_scalar(
    value: object,
    name: str,
    error: type[BayesQSEInputError] = BayesQSEInputError,
) -> float:
    """Return ``float(value)`` if it is a finite number > 0, else raise ``error``."""
    try:
        x = float(np.asarray(value, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        raise error(f"{name}: must be a positive number, got {value!r}") from None
    if not np.isfinite(x) or x <= 0:
        raise error(f"{name}: must be a finite number > 0, got {x}")
    return x
