"""Stackelberg security games with a SUQR attacker (docs/math.md eq. 8).

A defender covers ``T`` targets with ``m`` resources; her commitment is the coverage vector
``c`` in the polytope ``{0 <= c_t <= 1, sum_t c_t <= m}``.  The attacker sees ``c`` (not the
realised patrol) and attacks target ``t`` with the SUQR probability (eq. 8a, the
commitment-observing follower of eq. 7a with ``eta = 1``)::

    q_t(c; w) = softmax_t(w1 c_t + w2 R^a_t + w3 P^a_t),   psi_t(c) = (c_t, R^a_t, P^a_t)

and the defender's expected utility is (eq. 8b)::

    U(c; w) = sum_t q_t(c; w) [c_t R^d_t + (1 - c_t) P^d_t].

Payoffs: ``R`` for the covered-target outcome of the defender / uncovered of the attacker
(rewards), ``P`` for the other (penalties); the generators draw rewards in ``[1, 10]`` and
penalties in ``[-10, -1]`` as the literature's random generators do.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import norm

from ..commitment import commitment_log_response
from ..errors import GameValidationError
from ..model import Model
from ..types import Array

#: SUQR weights ``(w1, w2, w3)`` on (coverage, attacker reward, attacker penalty) attributed
#: to the human subjects of Nguyen, Yang, Azaria, Kraus and Tambe (AAAI 2013) -- NOT verified:
#: neither the paper's body nor any source quoting the three numbers could be read (what was
#: searched: docs/security_games.md, "Comparison with published numbers").  A modelling choice,
#: not a fact about human attackers: other published fits have ``w1 > 0``.
NGUYEN2013_WEIGHTS = (-9.85, 0.37, 0.15)

FEATURE_NAMES = ("coverage", "attacker_reward", "attacker_penalty")

#: The SUQR attacker as a follower model: answers the commitment, ``eta = 1`` (the weights
#: absorb it); the SUQR features of each commitment come with the data (:func:`suqr_features`).
SUQR_MODEL = Model(features=None, eta=1.0, follower="commitment")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False)
class SecurityGame:
    """A security game (eq. 8); a JAX pytree, ``resources`` static.

    Attributes:
        defender_reward: ``[T]`` ``R^d`` (target attacked while covered).
        defender_penalty: ``[T]`` ``P^d`` (attacked while uncovered).
        attacker_reward: ``[T]`` ``R^a`` (attack on an uncovered target).
        attacker_penalty: ``[T]`` ``P^a`` (attack on a covered target).
        theta: ``[3]`` the attacker's true SUQR weights, or ``None`` (unknown).
        resources: ``m``, the coverage budget ``sum_t c_t <= m`` (static).
    """

    defender_reward: Any
    defender_penalty: Any
    attacker_reward: Any
    attacker_penalty: Any
    theta: Any = None
    resources: float = dataclasses.field(default=1.0, metadata=dict(static=True))

    @property
    def n_targets(self) -> int:
        return int(np.shape(self.defender_reward)[0])

    def replace(self, **changes: Any) -> SecurityGame:
        return dataclasses.replace(self, **changes)

    @property
    def model(self) -> Model:
        """The follower model (``follower="commitment"``, ``eta = 1``; the SUQR features of
        each commitment come with the data, :func:`~bayes_qse.security.attack_stats`)."""
        return SUQR_MODEL


def make_security_game(
    defender_reward: Any,
    defender_penalty: Any,
    attacker_reward: Any,
    attacker_penalty: Any,
    resources: float,
    theta: Any = None,
) -> SecurityGame:
    """A validated :class:`SecurityGame` (float64 arrays); raises naming the bad field."""
    fields = {
        "defender_reward": defender_reward,
        "defender_penalty": defender_penalty,
        "attacker_reward": attacker_reward,
        "attacker_penalty": attacker_penalty,
    }
    arrays = {}
    for name, value in fields.items():
        a = np.asarray(value, dtype=np.float64)
        if a.ndim != 1 or a.shape[0] < 2:
            raise GameValidationError(f"{name}: expected a vector of >= 2 targets, got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise GameValidationError(f"{name}: must be finite")
        arrays[name] = a
    T = arrays["defender_reward"].shape[0]
    for name, a in arrays.items():
        if a.shape[0] != T:
            raise GameValidationError(f"{name}: has {a.shape[0]} targets, defender_reward has {T}")
    if np.any(arrays["defender_reward"] < arrays["defender_penalty"]):
        raise GameValidationError("defender_reward: must be >= defender_penalty on every target")
    if np.any(arrays["attacker_reward"] < arrays["attacker_penalty"]):
        raise GameValidationError("attacker_reward: must be >= attacker_penalty on every target")
    m = float(resources)
    if not (0.0 < m <= T) or not np.isfinite(m):
        raise GameValidationError(f"resources: must be in (0, {T}], got {resources!r}")
    if theta is not None:
        theta = np.asarray(theta, dtype=np.float64)
        if theta.shape != (3,) or not np.all(np.isfinite(theta)):
            raise GameValidationError(f"theta: expected 3 finite SUQR weights, got {theta!r}")
        theta = jnp.asarray(theta)
    return SecurityGame(**{k: jnp.asarray(v) for k, v in arrays.items()}, theta=theta, resources=m)


def suqr_features(game: SecurityGame, coverage: Array) -> Array:
    """``psi[..., T, 3] = (c_t, R^a_t, P^a_t)`` for ``coverage[..., T]`` (eq. 8a, eq. 7b)."""
    c = jnp.asarray(coverage)
    ra = jnp.broadcast_to(game.attacker_reward, c.shape)
    pa = jnp.broadcast_to(game.attacker_penalty, c.shape)
    return jnp.stack([c, ra, pa], axis=-1)


def attack_log_probs(theta: Array, game: SecurityGame, coverage: Array) -> Array:
    """``log q[..., T]`` of the SUQR attacker (eq. 8a) at ``coverage[..., T]``."""
    return commitment_log_response(theta, suqr_features(game, coverage), 1.0)


def defender_utility(theta: Array, game: SecurityGame, coverage: Array) -> Array:
    """``U(c; w)`` of eq. (8b) for ``coverage[..., T]``: shape ``[...]``."""
    c = jnp.asarray(coverage)
    q = jnp.exp(attack_log_probs(theta, game, c))
    value = c * game.defender_reward + (1.0 - c) * game.defender_penalty
    return jnp.sum(q * value, axis=-1)


# ---------------------------------------------------------------------------------------
# Generators
# ---------------------------------------------------------------------------------------


def _scale(u: np.ndarray, low: float, high: float) -> np.ndarray:
    return low + (high - low) * u


def _check_size(n_targets: int, resources: float) -> None:
    if int(n_targets) != n_targets or not 2 <= n_targets <= 1000:
        raise GameValidationError(f"n_targets: must be an integer in [2, 1000], got {n_targets!r}")
    if not 0 < resources <= n_targets:
        raise GameValidationError(f"resources: must be in (0, {n_targets}], got {resources!r}")


def uniform_security_game(
    n_targets: int = 5, resources: float = 1.0, seed: int = 0, theta: Any = NGUYEN2013_WEIGHTS
) -> SecurityGame:
    """Random payoffs: rewards ``U[1, 10]``, penalties ``U[-10, -1]``, all independent."""
    _check_size(n_targets, resources)
    u = np.random.default_rng(seed).uniform(size=(4, int(n_targets)))
    return make_security_game(
        _scale(u[0], 1, 10),
        _scale(u[1], -10, -1),
        _scale(u[2], 1, 10),
        _scale(u[3], -10, -1),
        resources,
        theta,
    )


def covariance_security_game(
    n_targets: int = 5,
    resources: float = 1.0,
    correlation: float = -0.5,
    seed: int = 0,
    theta: Any = NGUYEN2013_WEIGHTS,
) -> SecurityGame:
    """Covariance game: the defender's stakes correlate with the attacker's (Gaussian copula).

    With standard normals ``z`` of the attacker's reward and penalty magnitude and independent
    ``e``, the defender's reward and penalty magnitude use ``-r z + sqrt(1 - r^2) e`` (crossed:
    her reward with his penalty, her penalty with his reward), mapped by the normal CDF onto
    ``[1, 10]``.  ``r = -1`` is zero-sum (``R^d = -P^a``, ``P^d = -R^a``), ``r = 0`` independent,
    ``r = 1`` the defender's stakes are mirrored, as in GAMUT-style covariance games.
    """
    _check_size(n_targets, resources)
    r = float(correlation)
    if not -1.0 <= r <= 1.0:
        raise GameValidationError(f"correlation: must be in [-1, 1], got {correlation!r}")
    z = np.random.default_rng(seed).standard_normal(size=(4, int(n_targets)))
    s = np.sqrt(max(1.0 - r * r, 0.0))
    ra, pa_mag = norm.cdf(z[0]), norm.cdf(z[1])
    rd = norm.cdf(-r * z[1] + s * z[2])
    pd_mag = norm.cdf(-r * z[0] + s * z[3])
    return make_security_game(
        _scale(rd, 1, 10),
        -_scale(pd_mag, 1, 10),
        _scale(ra, 1, 10),
        -_scale(pa_mag, 1, 10),
        resources,
        theta,
    )


#: Named security games (``bayes-qse games`` lists them beside the Markov games).
SECURITY_GAMES = {
    "security_uniform": uniform_security_game,
    "security_covariance": covariance_security_game,
}


def named_security_game(name: str, **kwargs: Any) -> SecurityGame:
    """Build one of :data:`SECURITY_GAMES` by name."""
    if name not in SECURITY_GAMES:
        raise GameValidationError(
            f"game: unknown security game {name!r}; choose from {sorted(SECURITY_GAMES)}"
        )
    return SECURITY_GAMES[name](**kwargs)


__all__ = [
    "FEATURE_NAMES",
    "NGUYEN2013_WEIGHTS",
    "SECURITY_GAMES",
    "SUQR_MODEL",
    "SecurityGame",
    "attack_log_probs",
    "covariance_security_game",
    "defender_utility",
    "make_security_game",
    "named_security_game",
    "suqr_features",
    "uniform_security_game",
]
