"""Behaviour policies of the offline experiment (docs/math.md §5, offline row): the policies
that play the episodes an offline learner is fitted on, from full coverage (``uniform``) to
little coverage of what the optimal policy needs (``poor-coverage``).  Each returns ``[H,S,A]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import as_float_array, check_distribution, check_shape
from ..errors import BayesQSEInputError
from ..games import Game
from ..planning import solve_qse

BEHAVIOURS = ("uniform", "near-optimal", "poor-coverage")


def uniform_policy(game: Any) -> np.ndarray:
    """The uniform behaviour policy ``[H,S,A]``: covers every action equally."""
    H, S, A, _ = game.shape
    return np.full((H, S, A), 1.0 / A)


def _optimal(game: Game, optimal_policy: Any) -> np.ndarray:
    if optimal_policy is None:
        return np.asarray(solve_qse(game).policy)
    pi = as_float_array(optimal_policy, "optimal_policy", 3)
    check_shape(pi, game.shape[:3], "optimal_policy")
    check_distribution(pi, "optimal_policy")
    return pi


def _check_epsilon(epsilon: float) -> float:
    if not 0.0 < float(epsilon) <= 1.0:
        raise BayesQSEInputError(f"epsilon: must lie in (0, 1], got {epsilon!r}")
    return float(epsilon)


def near_optimal_policy(game: Game, epsilon: float = 0.2, optimal_policy: Any = None) -> np.ndarray:
    """A softened QSE policy ``(1 - epsilon) pi* + epsilon * uniform`` (``[H,S,A]``).

    Covers the optimal policy's actions well and every other action at rate ``epsilon / A``.
    ``pi*`` is :func:`~bayes_qse.planning.solve_qse` of ``game`` unless given.
    """
    eps = _check_epsilon(epsilon)
    pi = _optimal(game, optimal_policy)
    return (1.0 - eps) * pi + eps * uniform_policy(game)


def poorly_covering_policy(
    game: Game, epsilon: float = 0.05, optimal_policy: Any = None
) -> np.ndarray:
    """A behaviour policy that rarely plays what the optimal policy needs (``[H,S,A]``).

    ``(1 - epsilon) * anti + epsilon * uniform``, where ``anti(a|s)`` is proportional to
    ``1 - pi*(a|s)``: mass goes to the actions ``pi*`` does not take, so an optimal action is
    played with probability about ``epsilon / A`` (with ``A = 1`` the policy is trivial).
    """
    eps = _check_epsilon(epsilon)
    pi = _optimal(game, optimal_policy)
    A = pi.shape[-1]
    if A == 1:
        return np.ones_like(pi)
    anti = 1.0 - pi
    total = anti.sum(-1, keepdims=True)
    anti = np.where(total > 0, anti / np.where(total > 0, total, 1.0), 1.0 / A)
    return (1.0 - eps) * anti + eps * uniform_policy(game)


def behaviour_policy(
    name: str, game: Game, epsilon: float | None = None, optimal_policy: Any = None
) -> np.ndarray:
    """The behaviour policy ``name`` in :data:`BEHAVIOURS` for ``game`` (``[H,S,A]``)."""
    if name == "uniform":
        return uniform_policy(game)
    if name == "near-optimal":
        kw = {} if epsilon is None else {"epsilon": epsilon}
        return near_optimal_policy(game, optimal_policy=optimal_policy, **kw)
    if name == "poor-coverage":
        kw = {} if epsilon is None else {"epsilon": epsilon}
        return poorly_covering_policy(game, optimal_policy=optimal_policy, **kw)
    raise BayesQSEInputError(f"behaviour: unknown {name!r}; choose from {', '.join(BEHAVIOURS)}")


__all__ = [
    "BEHAVIOURS",
    "behaviour_policy",
    "near_optimal_policy",
    "poorly_covering_policy",
    "uniform_policy",
]
