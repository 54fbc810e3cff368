"""Small validators shared by the public entry points (games, data, sets, learners).

Each takes the *field name* so that the error message says what is wrong and where.
They operate on concrete NumPy arrays; they are never called on JAX tracers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import BayesQSEInputError

#: The documented range of the rationality ``eta`` (docs/math.md, eq. 1).
ETA_MIN, ETA_MAX = 1e-6, 1e6
#: Largest allowed ``|eta * phi . theta|``: beyond it softmaxes and Bellman sums lose all
#: precision or overflow (docs/math.md, eq. 1).
MAX_SCALED_UTILITY = 1e12
#: Seeds (and seed + repetitions) must lie in ``[0, SEED_MAX]``.
SEED_MAX = 2**32 - 1


def _is_bool(value: object) -> bool:
    return isinstance(value, bool | np.bool_) or (
        isinstance(value, np.ndarray) and value.dtype == np.bool_
    )


def as_float_array(
    value: object,
    name: str,
    ndim: int | None = None,
    error: type[BayesQSEInputError] = BayesQSEInputError,
) -> np.ndarray:
    """Convert ``value`` to a finite float64 array of rank ``ndim`` or raise ``error``.

    Booleans are not numbers: a ``bool`` or boolean array raises ``error``.
    """
    if _is_bool(value):
        raise error(f"{name}: expected numbers, got a boolean ({value!r})")
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
    upper: int | None,
    error: type[BayesQSEInputError] = BayesQSEInputError,
) -> np.ndarray:
    """Convert ``value`` to an int array with entries in ``[0, upper)`` (``[0, inf)`` when
    ``upper`` is ``None``) or raise ``error``."""
    if _is_bool(value):
        raise error(f"{name}: expected integer indices, got booleans")
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
    if upper is None:
        if arr.size and arr.min() < 0:
            raise error(f"{name}: indices must be >= 0, found {arr.min()}")
        return arr
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
    """Return ``float(value)`` if it is a finite number > 0, else raise ``error``.

    Booleans are rejected (``True`` is not the number 1 here).
    """
    if _is_bool(value):
        shown = value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value
        raise error(f"{name}: must be a positive number, got a boolean ({shown!r})")
    try:
        x = float(np.asarray(value, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        raise error(f"{name}: must be a positive number, got {value!r}") from None
    if not np.isfinite(x) or x <= 0:
        raise error(f"{name}: must be a finite number > 0, got {x}")
    return x


def check_eta(
    value: object,
    name: str = "eta",
    error: type[BayesQSEInputError] = BayesQSEInputError,
) -> float:
    """Return ``float(value)`` if it is a number in ``[ETA_MIN, ETA_MAX]`` (docs/math.md,
    eq. 1), else raise ``error`` naming ``name``."""
    eta = check_positive_scalar(value, name, error)
    if not ETA_MIN <= eta <= ETA_MAX:
        raise error(
            f"{name}: must lie in [{ETA_MIN:g}, {ETA_MAX:g}] (docs/math.md eq. 1), got {eta:g}"
        )
    return eta


def check_scaled_utility(
    features: np.ndarray,
    theta: np.ndarray,
    eta: float,
    name: str = "theta",
    error: type[BayesQSEInputError] = BayesQSEInputError,
) -> None:
    """Raise ``error`` naming ``name`` unless every ``|eta * phi_h(s,a,b) . theta|`` is finite
    and at most ``MAX_SCALED_UTILITY`` (docs/math.md eq. 1).

    ``features[..., d]``, ``theta[d]`` or ``[M, d]`` (every row is checked).
    """
    phi = np.asarray(features, np.float64)
    th = np.asarray(theta, np.float64).reshape(-1, phi.shape[-1])
    with np.errstate(over="ignore", invalid="ignore"):
        u = float(eta) * (phi.reshape(-1, phi.shape[-1]) @ th.T)
        worst = float(np.max(np.abs(u))) if u.size else 0.0
    if not worst <= MAX_SCALED_UTILITY:  # also catches inf and NaN
        raise error(
            f"{name}: utilities eta * phi . theta reach {worst:.3g}, beyond "
            f"{MAX_SCALED_UTILITY:g} (docs/math.md eq. 1); rescale theta or eta"
        )


def memory_limit() -> int:
    """Bytes an allocation may claim: ``BAYES_QSE_MAX_BYTES`` if set, else half the
    physical memory (16 GiB when unknown)."""
    env = os.environ.get("BAYES_QSE_MAX_BYTES")
    if env:
        try:
            return max(1, int(float(env)))
        except ValueError:
            raise BayesQSEInputError(
                f"BAYES_QSE_MAX_BYTES: must be a number of bytes, got {env!r}"
            ) from None
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")) // 2
    except (ValueError, OSError, AttributeError):
        return 16 * 2**30


def game_bytes(H: int, S: int, A: int, B: int, d: int) -> int:
    """Bytes a game of shape ``(H, S, A, B)`` with ``d`` features needs: its float64 arrays
    ``P[H,S,A,B,S]``, ``r[H,S,A,B]``, ``phi[H,S,A,B,d]``, ``theta[d]``, ``rho[S]``, twice
    (generation and validation copies)."""
    cells = H * S * A * B
    return 2 * 8 * (cells * S + cells * (1 + d) + d + S)


def format_bytes(n: float) -> str:
    """``n`` bytes as e.g. ``'3.2 GB'`` (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"  # pragma: no cover


def check_memory(
    n_bytes: float,
    name: str,
    what: str,
    error: type[BayesQSEInputError] = BayesQSEInputError,
) -> None:
    """Raise ``error`` naming ``name`` when ``what`` would need more than :func:`memory_limit`
    bytes; the message states the estimate and the limit."""
    limit = memory_limit()
    if not n_bytes <= limit:
        raise error(
            f"{name}: {what} needs about {format_bytes(n_bytes)} of memory, more than the "
            f"{format_bytes(limit)} allowed (half the physical memory; set BAYES_QSE_MAX_BYTES "
            "to change)"
        )


# Game-shaped checks (duck-typed on ``game.shape``, ``feature_dim``, ``features``, ``eta``)


def validate_policy(game: Any, policy: Any, name: str = "leader_policy") -> np.ndarray:
    """Return ``policy`` as a float64 ``[H,S,A]`` array of distributions, or raise."""
    pi = as_float_array(policy, name, 3)
    H, S, A, _ = game.shape
    check_shape(pi, (H, S, A), name)
    check_distribution(pi, name, axis=-1)
    return pi


def validate_theta(game: Any, theta: Any, name: str = "theta") -> np.ndarray:
    """Return ``theta`` as float64 ``[d]`` (or ``[M,d]``) matching the game's features."""
    th = as_float_array(theta, name)
    if th.ndim not in (1, 2) or th.shape[-1] != game.feature_dim:
        raise BayesQSEInputError(
            f"{name}: expected shape ({game.feature_dim},) or (M, {game.feature_dim}), "
            f"got {th.shape}"
        )
    check_scaled_utility(np.asarray(game.features), th, float(game.eta), name)
    return th


__all__ = [
    "ETA_MAX",
    "ETA_MIN",
    "MAX_SCALED_UTILITY",
    "SEED_MAX",
    "as_float_array",
    "as_index_array",
    "check_distribution",
    "check_eta",
    "check_memory",
    "check_positive_scalar",
    "check_scaled_utility",
    "check_shape",
    "format_bytes",
    "game_bytes",
    "memory_limit",
    "validate_policy",
    "validate_theta",
]
