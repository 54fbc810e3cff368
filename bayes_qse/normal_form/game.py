"""Normal-form commitment games (docs/math.md eq. 9): the leader announces a mixed strategy
``x`` over her ``m`` actions, the follower answers with a quantal response over his ``n``::

    nu(b | x; theta) = softmax_b( eta * sum_a x_a V[a, b] ),   V = features @ theta      (9a)

the commitment-observing follower of eq. (7) with ``H = S = 1`` and ``phi = features``.
Feature maps (eq. 9b): one-hot ``V`` in the *reference* coding ``theta = V[a, b] - V[a, 0]``
(identified: (9a) is unchanged by a shift of any row of ``V``) or the *full* coding
``theta = vec(V)`` (not identified along the ``m`` row shifts; the coding of Wu et al.'s
box ``0 <= V <= 1``); the structured security form ``V[i, j] = w_i [i = j] + c_j``.
Wu, Shen, Fang & Xu (NeurIPS 2022)'s seeded generators (eq. 9c), the shift-invariant L1
error (eq. 9e) and the expected Fisher information of a set of commitments (eq. 9f).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import as_float_array, check_eta
from ..errors import BayesQSEInputError, GameValidationError
from ..games import tabular_features, tabular_theta
from ..model import Model
from ..sets import fisher_rank
from ..types import Array

CODINGS = ("reference", "full")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False)
class NormalFormGame:
    """A normal-form commitment game (eq. 9a); a JAX pytree (``coding`` static).

    Build it with :func:`normal_form_game`, :func:`onehot_game`, :func:`security_form_game`
    or the generators (they validate; the class itself does not, so that JAX can rebuild it).

    Attributes:
        features: ``[m, n, d]``, ``V = features @ theta``.
        eta: the follower's rationality ``lambda`` (known; Wu et al. use 8).
        theta: ``[d]`` the true parameter, or ``None``.
        leader_utility: ``[m, n]`` the leader's utility, or ``None``.
        coding: static; ``"reference"``, ``"full"``, ``"security-reference"``,
            ``"security-full"`` or ``"custom"``.
    """

    features: Any
    eta: Any = 8.0
    theta: Any = None
    leader_utility: Any = None
    coding: str = dataclasses.field(default="custom", metadata=dict(static=True))

    @property
    def m(self) -> int:
        """The leader's number of actions."""
        return int(np.shape(self.features)[0])

    @property
    def n(self) -> int:
        """The follower's number of actions."""
        return int(np.shape(self.features)[1])

    @property
    def feature_dim(self) -> int:
        return int(np.shape(self.features)[2])

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(H, S, A, B) = (1, 1, m, n)``."""
        return (1, 1, self.m, self.n)

    @property
    def model(self) -> Model:
        """The follower model: ``features[1, 1, m, n, d]``, ``eta``, ``follower="commitment"``."""
        return Model(
            features=jnp.asarray(self.features)[None, None], eta=self.eta, follower="commitment"
        )

    def replace(self, **changes: Any) -> NormalFormGame:
        return dataclasses.replace(self, **changes)

    def _theta(self, theta: Any) -> Array:
        th = self.theta if theta is None else theta
        if th is None:
            raise BayesQSEInputError("theta: the game has no true theta; pass one")
        return jnp.asarray(th, jnp.float64)

    def utilities(self, theta: Any = None) -> Array:
        """``V[..., m, n] = features @ theta`` for ``theta[..., d]`` (default: the true one)."""
        th = self._theta(theta)
        return jnp.einsum("abd,...d->...ab", jnp.asarray(self.features, jnp.float64), th)

    def response(self, commitments: Any, theta: Any = None) -> Array:
        """``nu[..., n]`` of eq. (9a) for ``commitments[..., m]`` (``theta`` default: true)."""
        v = self.utilities(theta)
        return jax.nn.softmax(self.eta * (jnp.asarray(commitments, jnp.float64) @ v), axis=-1)


def normal_form_game(
    features: Any,
    eta: float = 8.0,
    theta: Any = None,
    leader_utility: Any = None,
    coding: str = "custom",
) -> NormalFormGame:
    """A validated :class:`NormalFormGame` with any feature map ``features[m, n, d]``.

    Raises :class:`~bayes_qse.errors.GameValidationError` naming the field.
    """
    err = GameValidationError
    phi = as_float_array(features, "features", 3, err)
    m, n, d = phi.shape
    if m < 1 or n < 2 or d < 1:
        raise err(f"features: need m >= 1, n >= 2 and d >= 1, got shape {phi.shape}")
    eta = check_eta(eta, "eta")
    th = None
    if theta is not None:
        th = as_float_array(theta, "theta", 1, err)
        if th.shape != (d,):
            raise err(f"theta: expected shape ({d},), got {th.shape}")
    lu = None
    if leader_utility is not None:
        lu = as_float_array(leader_utility, "leader_utility", 2, err)
        if lu.shape != (m, n):
            raise err(f"leader_utility: expected shape ({m}, {n}), got {lu.shape}")
    return NormalFormGame(phi, eta, th, lu, str(coding))


# ---------------------------------------------------------------------------------------
# Feature maps (eq. 9b)
# ---------------------------------------------------------------------------------------


def _check_coding(coding: str) -> str:
    if coding not in CODINGS:
        raise BayesQSEInputError(f"coding: must be one of {CODINGS}, got {coding!r}")
    return coding


def onehot_features(m: int, n: int, coding: str = "reference") -> np.ndarray:
    """``[m, n, d]`` one-hot features of a tabular ``V``.

    ``"reference"``: ``d = m (n - 1)``, ``theta[a (n-1) + b - 1] = V[a, b] - V[a, 0]``
    (:func:`bayes_qse.games.tabular_features` with ``H = S = 1``); ``"full"``: ``d = m n``,
    ``theta = vec(V)`` (C order).
    """
    if _check_coding(coding) == "full":
        return np.eye(m * n).reshape(m, n, m * n)
    return tabular_features(1, 1, m, n)[0, 0]


def onehot_theta(utilities: Any, coding: str = "reference") -> np.ndarray:
    """``theta`` of ``V[m, n]`` in :func:`onehot_features`' coding."""
    v = as_float_array(utilities, "utilities", 2)
    if _check_coding(coding) == "full":
        return v.reshape(-1)
    return tabular_theta(v[None, None])


def onehot_game(
    utilities: Any, eta: float = 8.0, coding: str = "reference", leader_utility: Any = None
) -> NormalFormGame:
    """The game of a tabular follower utility ``V[m, n]`` (one-hot features, eq. 9b)."""
    v = as_float_array(utilities, "utilities", 2, GameValidationError)
    m, n = v.shape
    return normal_form_game(
        onehot_features(m, n, coding), eta, onehot_theta(v, coding), leader_utility, coding
    )


def security_features(n_targets: int, coding: str = "reference") -> np.ndarray:
    """``[T, T, d]`` features of the structured form ``V[i, j] = w_i [i = j] + c_j`` (the
    leader's action ``i`` covers target ``i``, the follower attacks ``j``).

    ``"full"``: ``d = 2T``, ``theta = (w, c)`` (not identified along ``c + const``);
    ``"reference"``: ``d = 2T - 1``, ``theta = (w, c_1 - c_0, ..., c_{T-1} - c_0)``.
    """
    T = int(n_targets)
    phi = np.zeros((T, T, 2 * T))
    i = np.arange(T)
    phi[i, i, i] = 1.0
    phi[:, i, T + i] = 1.0
    return phi if _check_coding(coding) == "full" else phi[:, :, np.r_[0:T, T + 1 : 2 * T]]


def security_theta(w: Any, c: Any, coding: str = "reference") -> np.ndarray:
    """``theta`` of ``(w[T], c[T])`` in :func:`security_features`' coding."""
    w, c = as_float_array(w, "w", 1), as_float_array(c, "c", 1)
    if w.shape != c.shape:
        raise BayesQSEInputError(f"c: expected shape {w.shape} (that of w), got {c.shape}")
    if _check_coding(coding) == "full":
        return np.concatenate([w, c])
    return np.concatenate([w, c[1:] - c[0]])


def security_form_game(
    w: Any, c: Any, eta: float = 8.0, coding: str = "reference", leader_utility: Any = None
) -> NormalFormGame:
    """The structured security game ``V[i, j] = w_i [i = j] + c_j`` (eq. 9b)."""
    T = np.size(w)
    return normal_form_game(
        security_features(T, coding),
        eta,
        security_theta(w, c, coding),
        leader_utility,
        "security-" + coding,
    )


# ---------------------------------------------------------------------------------------
# Wu et al.'s generators (eq. 9c)
# ---------------------------------------------------------------------------------------


def _minmax(v: np.ndarray) -> np.ndarray:
    lo, hi = v.min(), v.max()
    return (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)


def wu_utilities(seed: int, m: int = 10, n: int = 10, alpha: float = 0.0) -> np.ndarray:
    """``V = alpha I + (1 - alpha) R``, ``R`` with entries ``N(0, 2)`` min-max normalised to
    ``[0, 1]`` (``I`` the ``[m, n]`` identity; ``np.random.default_rng(seed)``)."""
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise BayesQSEInputError(f"alpha: must lie in [0, 1], got {alpha}")
    if int(m) < 1 or int(n) < 2:
        raise BayesQSEInputError(f"m, n: need m >= 1 and n >= 2, got ({m}, {n})")
    r = _minmax(np.random.default_rng(seed).normal(0.0, 2.0, size=(int(m), int(n))))
    return alpha * np.eye(int(m), int(n)) + (1.0 - alpha) * r


def random_normal_form_game(
    seed: int,
    m: int = 10,
    n: int = 10,
    alpha: float = 0.0,
    eta: float = 8.0,
    coding: str = "reference",
) -> NormalFormGame:
    """Wu et al.'s random game (eq. 9c): :func:`wu_utilities` in one-hot features."""
    return onehot_game(wu_utilities(seed, m, n, alpha), eta, coding)


def wu_security_parameters(seed: int, n_targets: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """``(w, c)`` of Wu et al.'s security game: ``w ~ U[-3, -1]``, ``c ~ U[1, 3]`` (in that
    order from ``np.random.default_rng(seed)``), rescaled so that ``V[i, j] = w_i [i = j] +
    c_j`` is min-max normalised to ``[0, 1]`` (``w / s`` and ``(c - min V) / s``,
    ``s = max V - min V``: the structured form survives the normalisation)."""
    if int(n_targets) < 2:
        raise BayesQSEInputError(f"n_targets: need at least 2, got {n_targets}")
    rng = np.random.default_rng(seed)
    w = rng.uniform(-3.0, -1.0, int(n_targets))
    c = rng.uniform(1.0, 3.0, int(n_targets))
    v = np.diag(w) + c[None, :]
    lo, s = v.min(), v.max() - v.min()
    return w / s, (c - lo) / s


def random_security_form_game(
    seed: int, n_targets: int = 10, eta: float = 8.0, coding: str = "reference"
) -> NormalFormGame:
    """Wu et al.'s random security game (eq. 9c) in the structured features."""
    w, c = wu_security_parameters(seed, n_targets)
    return security_form_game(w, c, eta, coding)


# ---------------------------------------------------------------------------------------
# The error metric (eq. 9e) and the Fisher information (eq. 9f)
# ---------------------------------------------------------------------------------------


def shift_invariant_l1(estimate: Any, truth: Any) -> np.ndarray:
    """``min_z sum_i ||Vhat_i - V_i - z_i||_1 / (m n)`` (eq. 9e) for ``[..., m, n]`` arrays;
    the optimum ``z_i`` is the median of row ``i`` of ``Vhat - V``.  Returns ``[...]``."""
    vh, v = as_float_array(estimate, "estimate"), as_float_array(truth, "truth")
    if vh.ndim < 2 or vh.shape[-2:] != v.shape[-2:]:
        raise BayesQSEInputError(
            f"estimate: expected shape [..., m, n] matching truth {v.shape}, got {vh.shape}"
        )
    diff = vh - v
    z = np.median(diff, axis=-1, keepdims=True)
    return np.abs(diff - z).sum(axis=(-2, -1)) / (v.shape[-1] * v.shape[-2])


@jax.jit
def per_commitment_fisher(game: NormalFormGame, commitments: Array, theta: Array) -> Array:
    """``[K, d, d]`` expected Fisher information of one response under each commitment
    (eq. 9f): ``eta^2 psi_k' (diag p_k - p_k p_k') psi_k`` with ``psi_k = x_k @ features``
    and ``p_k = nu(. | x_k; theta)``."""
    phi = jnp.asarray(game.features, jnp.float64)
    psi = jnp.einsum("ka,abd->kbd", commitments, phi)
    p = jax.nn.softmax(game.eta * (psi @ theta), axis=-1)  # [K, n]
    mean = jnp.einsum("kb,kbd->kd", p, psi)
    centred = psi - mean[:, None, :]
    return game.eta**2 * jnp.einsum("kb,kbd,kbe->kde", p, centred, centred)


def commitment_fisher(
    game: NormalFormGame, commitments: Any, weights: Any = None, theta: Any = None
) -> np.ndarray:
    """``[d, d]`` ``sum_k w_k I_k(theta)`` (eq. 9f): the expected Fisher information of
    ``w_k`` responses under ``commitments[k]`` (default: one each; ``theta`` default: true)."""
    x = as_float_array(commitments, "commitments", 2)
    if x.shape[1] != game.m:
        raise BayesQSEInputError(f"commitments: expected shape (K, {game.m}), got {x.shape}")
    w = np.ones(x.shape[0]) if weights is None else as_float_array(weights, "weights", 1)
    if w.shape != (x.shape[0],):
        raise BayesQSEInputError(f"weights: expected shape ({x.shape[0]},), got {w.shape}")
    per = per_commitment_fisher(game, jnp.asarray(x), game._theta(theta))
    return np.einsum("k,kde->de", w, np.asarray(per))


def identification_rank(game: NormalFormGame, commitments: Any, theta: Any = None) -> int:
    """The Fisher rank (eq. 9f) of ``commitments`` at ``theta``: ``d`` when every coordinate
    is identified (e.g. the reference coding under the ``m`` pure strategies)."""
    return fisher_rank(commitment_fisher(game, commitments, None, theta))


__all__ = [
    "CODINGS",
    "NormalFormGame",
    "commitment_fisher",
    "identification_rank",
    "normal_form_game",
    "onehot_features",
    "onehot_game",
    "onehot_theta",
    "per_commitment_fisher",
    "random_normal_form_game",
    "random_security_form_game",
    "security_features",
    "security_form_game",
    "security_theta",
    "shift_invariant_l1",
    "wu_security_parameters",
    "wu_utilities",
]
