"""Leader-follower episodic Markov games (docs/math.md §1): the :class:`Game` pytree, generators,
named benchmark games, and ``.npz`` save/load.

Shapes (``H`` horizon, ``S`` states, ``A`` leader actions, ``B`` follower actions, ``d``
feature dimension)::

    transitions   [H, S, A, B, S]   P_h(s' | s, a, b)
    leader_reward [H, S, A, B]      r_h(s, a, b)
    features      [H, S, A, B, d]   phi_h(s, a, b)
    theta         [d]               true follower parameter, u_h = phi_h . theta   (eq. 3)
    eta           scalar in [1e-6, 1e6]  follower rationality                      (eq. 1)
    initial_dist  [S]               rho
    farsighted    bool (static)     myopic follower when False

A :class:`Game` is a JAX pytree: the arrays (and ``eta``) are leaves, ``farsighted`` is static.
The constructor validates concrete inputs and raises :class:`GameValidationError` naming the
field; JAX's internal unflattening (under ``jit``/``vmap``) bypasses validation.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._validate import (
    as_float_array,
    check_distribution,
    check_eta,
    check_scaled_utility,
    check_shape,
)
from .errors import GameValidationError
from .io import atomic_write_npz, read_npz
from .model import Model

ARRAY_FIELDS = ("transitions", "leader_reward", "features", "theta", "eta", "initial_dist")
_FILE_FIELDS = (*ARRAY_FIELDS, "farsighted")


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True, eq=False)
class Game:
    """A validated leader-follower Markov game (docs/math.md §1, §6).

    Args:
        transitions: ``[H, S, A, B, S]`` next-state distributions.
        leader_reward: ``[H, S, A, B]`` leader rewards (finite).
        features: ``[H, S, A, B, d]`` follower features, ``u = features @ theta`` (eq. 3).
        theta: ``[d]`` the follower's true utility parameter.
        eta: rationality in ``[1e-6, 1e6]`` (eq. 1; docs/math.md); ``|eta * phi . theta|``
            must stay below ``1e12``.  Booleans are rejected.
        initial_dist: ``[S]`` initial state distribution; uniform when omitted.
        farsighted: whether the follower plans over the whole remaining episode (eq. 1a-1d)
            or only the current step (myopic).
    """

    transitions: Any
    leader_reward: Any
    features: Any
    theta: Any
    eta: Any = 1.0
    initial_dist: Any = None
    farsighted: bool = False

    def __post_init__(self) -> None:
        err = GameValidationError
        P = as_float_array(self.transitions, "transitions", 5, err)
        H, S, A, B, S2 = P.shape
        if min(P.shape) < 1:
            raise err(f"transitions: every dimension must be >= 1, got shape {P.shape}")
        if S2 != S:
            raise err(f"transitions: last axis (next state, {S2}) must equal the state axis ({S})")
        check_distribution(P, "transitions", axis=-1, error=err)
        r = as_float_array(self.leader_reward, "leader_reward", 4, err)
        check_shape(r, (H, S, A, B), "leader_reward", err)
        phi = as_float_array(self.features, "features", 5, err)
        if phi.shape[:4] != (H, S, A, B):
            raise err(f"features: expected shape {(H, S, A, B)} + (d,), got {phi.shape}")
        d = phi.shape[4]
        if d < 1:
            raise err("features: feature dimension d must be >= 1")
        theta = as_float_array(self.theta, "theta", 1, err)
        check_shape(theta, (d,), "theta", err)
        eta = check_eta(self.eta, "eta", err)
        check_scaled_utility(phi, theta, eta, "theta", err)
        if self.initial_dist is None:
            rho = np.full(S, 1.0 / S)
        else:
            rho = as_float_array(self.initial_dist, "initial_dist", 1, err)
            check_shape(rho, (S,), "initial_dist", err)
            check_distribution(rho, "initial_dist", error=err)
        if not isinstance(self.farsighted, bool | np.bool_):
            raise err(f"farsighted: must be a bool, got {self.farsighted!r}")
        for name, value in (
            ("transitions", P),
            ("leader_reward", r),
            ("features", phi),
            ("theta", theta),
            ("eta", np.float64(eta)),
            ("initial_dist", rho),
            ("farsighted", bool(self.farsighted)),
        ):
            object.__setattr__(self, name, value)

    # ---- pytree protocol -------------------------------------------------------------
    def tree_flatten(self):
        leaves = tuple(getattr(self, f) for f in ARRAY_FIELDS)
        return leaves, (self.farsighted,)

    @classmethod
    def tree_unflatten(cls, aux, leaves):
        obj = object.__new__(cls)
        for name, value in zip(ARRAY_FIELDS, leaves, strict=True):
            object.__setattr__(obj, name, value)
        object.__setattr__(obj, "farsighted", aux[0])
        return obj

    @property
    def model(self) -> Model:
        """The game's :class:`bayes_qse.model.Model` (every array but ``theta``)."""
        return Model.of(self)

    # ---- sizes -------------------------------------------------------------------------
    @property
    def horizon(self) -> int:
        return int(np.shape(self.transitions)[0])

    @property
    def n_states(self) -> int:
        return int(np.shape(self.transitions)[1])

    @property
    def n_leader_actions(self) -> int:
        return int(np.shape(self.transitions)[2])

    @property
    def n_follower_actions(self) -> int:
        return int(np.shape(self.transitions)[3])

    @property
    def feature_dim(self) -> int:
        return int(np.shape(self.features)[-1])

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(H, S, A, B)``."""
        return tuple(int(x) for x in np.shape(self.leader_reward))  # type: ignore[return-value]

    def utility(self, theta: Any = None) -> jax.Array:
        """Follower utility ``u[H,S,A,B] = features @ theta`` (eq. 3); true theta by default."""
        th = self.theta if theta is None else theta
        return jnp.einsum("hsabd,d->hsab", self.features, th)

    def replace(self, **changes: Any) -> Game:
        """A validated copy with some fields replaced (e.g. ``game.replace(eta=10.0)``)."""
        fields = {f: getattr(self, f) for f in _FILE_FIELDS}
        fields.update(changes)
        return Game(**fields)

    # ---- files -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the game to ``path`` (``.npz``) atomically, with exactly the field names."""
        arrays = {f: np.asarray(getattr(self, f)) for f in ARRAY_FIELDS}
        arrays["farsighted"] = np.asarray(bool(self.farsighted))
        return atomic_write_npz(path, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Game:
        """Read and validate a game written by :meth:`save`.

        Raises:
            GameValidationError: the file is missing, not an ``.npz``, truncated, lacks a
                field, or holds arrays that do not form a valid game.
        """
        arrays = read_npz(path, _FILE_FIELDS, GameValidationError, optional=("initial_dist",))
        farsighted = arrays.pop("farsighted")
        if farsighted.shape != () or farsighted.dtype.kind not in "bi":
            raise GameValidationError(f"farsighted: must be a boolean scalar in {path}")
        return cls(**arrays, farsighted=bool(farsighted))


# ---- constructors -----------------------------------------------------------------------


def tabular_features(
    horizon: int, n_states: int, n_leader: int, n_follower: int, farsighted: bool = False
) -> np.ndarray:
    """One-hot features for a tabular utility, with a reference cell coded as zero.

    Myopic coding (``farsighted=False``): ``phi[H,S,A,B,d]`` with ``d = H*S*A*(B-1)``;
    ``phi_h(s,a,b)`` is the unit vector of ``(h,s,a,b)`` for ``b >= 1`` and zero for ``b = 0``.
    The myopic response (1d) is unchanged by adding any function of ``(h,s,a)`` to ``u``
    (docs/math.md, eq. 3), so fixing ``u(.,0) = 0`` loses nothing and identifies every
    coordinate.

    Farsighted coding (``farsighted=True``): ``d = H*(S*A*B-1)``; ``phi_h(s,a,b)`` is the unit
    vector of ``(h,s,a,b)`` for every ``(s,a,b) != (0,0,0)`` and zero for the reference cell
    ``(h,0,0,0)``.  A farsighted response (1a)-(1d) is *not* unchanged by a shift ``f(h,s,a)``
    (it moves ``V^F_h(s)`` by ``sum_a pi_h(a|s) f(h,s,a)`` and so the earlier responses); the
    only shifts that leave it unchanged for every leader policy and every transition kernel
    are per-step constants ``c_h``, which is what this coding removes.

    For ``B = 1`` (no choice, the response is 1) a single zero feature is returned.
    """
    H, S, A, B = horizon, n_states, n_leader, n_follower
    if B == 1:
        return np.zeros((H, S, A, B, 1))
    if not farsighted:
        d = H * S * A * (B - 1)
        phi = np.zeros((H, S, A, B, d))
        cells = np.zeros((H, S, A, B), bool)
        cells[..., 1:] = True
    else:
        d = H * (S * A * B - 1)
        phi = np.zeros((H, S, A, B, d))
        cells = np.ones((H, S, A, B), bool)
        cells[:, 0, 0, 0] = False
    phi[cells, np.arange(d)] = 1.0  # C order: the coordinates run over (h, s, a, b)
    return phi


def tabular_theta(follower_utility: Any, farsighted: bool = False) -> np.ndarray:
    """``theta`` coding the tabular utility ``u[H,S,A,B]`` in :func:`tabular_features`.

    Myopic: ``u(h,s,a,b) - u(h,s,a,0)`` for ``b >= 1``.  Farsighted:
    ``u(h,s,a,b) - u(h,0,0,0)`` for ``(s,a,b) != (0,0,0)``.  Both in C order of ``(h,s,a,b)``.
    """
    u = np.asarray(follower_utility, np.float64)
    H, S, A, B = u.shape
    if B == 1:
        return np.zeros(1)
    if not farsighted:
        return (u[..., 1:] - u[..., :1]).reshape(-1)
    shifted = (u - u[:, :1, :1, :1]).reshape(H, -1)
    return shifted[:, 1:].reshape(-1)


def tabular_game(
    transitions: Any,
    leader_reward: Any,
    follower_utility: Any,
    eta: float = 1.0,
    initial_dist: Any = None,
    farsighted: bool = False,
) -> Game:
    """A game with a tabular follower utility ``u[H,S,A,B]`` (one-hot features).

    The coding (:func:`tabular_features`, :func:`tabular_theta`) depends on the follower:

    - myopic: ``theta = u(h,s,a,b) - u(h,s,a,0)`` (``d = H*S*A*(B-1)``), which induces exactly
      the quantal response (1d) of ``u``;
    - farsighted: ``theta = u(h,s,a,b) - u(h,0,0,0)`` (``d = H*(S*A*B-1)``), a per-step
      constant shift, which induces exactly the farsighted response (1a)-(1d) of ``u`` against
      every leader policy.  (The myopic coding would not: shifting ``u_h`` by ``u(h,s,a,0)``
      moves ``V^F_h`` and so the responses at earlier steps.)  Coordinates that do not vary
      across ``b`` at their own step are seen only through earlier steps' values, so some may
      not be identified from data (:func:`bayes_qse.inference.fit_mle` warns).
    """
    u = as_float_array(follower_utility, "follower_utility", 4, GameValidationError)
    H, S, A, B = u.shape
    phi = tabular_features(H, S, A, B, farsighted=farsighted)
    theta = tabular_theta(u, farsighted=farsighted)
    return Game(transitions, leader_reward, phi, theta, eta, initial_dist, farsighted)


def random_game(
    seed: int,
    n_states: int,
    n_leader_actions: int,
    n_follower_actions: int,
    horizon: int,
    feature_dim: int,
    eta: float = 1.0,
    farsighted: bool = False,
    transition_concentration: float = 1.0,
) -> Game:
    """A random game: Dirichlet transitions, uniform [0,1] leader rewards, Gaussian features.

    ``theta`` is drawn ``N(0, I/d)`` so that utilities have unit scale whatever ``d``; features
    are ``N(0, 1)``.  The same ``seed`` gives the same game.
    """
    for name, v in (
        ("n_states", n_states),
        ("n_leader_actions", n_leader_actions),
        ("n_follower_actions", n_follower_actions),
        ("horizon", horizon),
        ("feature_dim", feature_dim),
    ):
        if int(v) != v or v < 1:
            raise GameValidationError(f"{name}: must be a positive integer, got {v!r}")
    rng = np.random.default_rng(seed)
    H, S, A, B, d = horizon, n_states, n_leader_actions, n_follower_actions, feature_dim
    P = rng.dirichlet(np.full(S, transition_concentration), size=(H, S, A, B))
    r = rng.uniform(0.0, 1.0, size=(H, S, A, B))
    phi = rng.normal(size=(H, S, A, B, d))
    theta = rng.normal(size=d) / np.sqrt(d)
    rho = rng.dirichlet(np.ones(S))
    return Game(P, r, phi, theta, eta, rho, farsighted)


def patrol_game(
    n_sites: int = 3, horizon: int = 3, eta: float = 2.0, farsighted: bool = False
) -> Game:
    """A security patrol game.

    The leader (a defender) patrols one of ``n_sites`` sites each period; the follower (an
    attacker) chooses a site to attack or to wait (follower action ``n_sites``).  The state is
    the alert level (0 calm, 1 raised): an attack raises it, a wait lowers it.  Attacking an
    unguarded site gives the attacker the site's value and costs the defender as much; an
    attack on the guarded site is caught (defender gains 1, attacker loses 1).  At a raised
    alert, attacks are caught half the time anywhere.  Features (d = 4): the site value if the
    site is unguarded, a caught indicator, an attack indicator, and the alert level times the
    attack indicator; the attacker's ``theta`` weighs them.
    """
    S, A, B, H = 2, n_sites, n_sites + 1, horizon
    values = np.linspace(1.0, 2.0, n_sites)
    phi = np.zeros((H, S, A, B, 4))
    r = np.zeros((H, S, A, B))
    P = np.zeros((H, S, A, B, S))
    for s in range(S):
        for a in range(A):
            for b in range(B):
                attack = b < n_sites
                caught = attack and (b == a)
                if attack:
                    gain = values[b] * (0.5 if s == 1 else 1.0) if not caught else 0.0
                    phi[:, s, a, b] = [gain, float(caught), 1.0, float(s)]
                    r[:, s, a, b] = 1.0 if caught else -gain
                    P[:, s, a, b, 1] = 1.0
                else:
                    P[:, s, a, b, 0] = 1.0
    theta = np.array([1.0, -1.5, -0.2, -0.5])
    rho = np.array([1.0, 0.0])
    return Game(P, r, phi, theta, eta, rho, farsighted)


def pricing_game(
    n_prices: int = 3, horizon: int = 4, eta: float = 3.0, farsighted: bool = False
) -> Game:
    """A platform pricing / recommendation game.

    The leader (a platform) chooses a price level ``a`` in ``{0..n_prices-1}`` (low to high);
    the follower (a customer) buys the standard product, the premium product, or leaves.  The
    state is the customer's loyalty (0 new, 1 loyal): a purchase makes the customer loyal, leaving
    resets loyalty.  The platform earns the price paid (premium pays 1.5x); the customer's
    utility is linear in (d = 5): product quality, price paid, a loyalty bonus for buying, an
    outside-option indicator, and a premium indicator.
    """
    S, A, B, H = 2, n_prices, 3, horizon
    prices = np.linspace(0.5, 1.5, n_prices)
    phi = np.zeros((H, S, A, B, 5))
    r = np.zeros((H, S, A, B))
    P = np.zeros((H, S, A, B, S))
    for s in range(S):
        for a in range(A):
            for b, (quality, mult, premium) in enumerate(((1.0, 1.0, 0.0), (1.8, 1.5, 1.0))):
                paid = prices[a] * mult
                phi[:, s, a, b] = [quality, paid, float(s), 0.0, premium]
                r[:, s, a, b] = paid
                P[:, s, a, b, 1] = 1.0
            phi[:, s, a, 2] = [0.0, 0.0, 0.0, 1.0, 0.0]
            P[:, s, a, 2, 0] = 1.0
    theta = np.array([1.0, -1.2, 0.5, 0.3, -0.4])
    rho = np.array([1.0, 0.0])
    return Game(P, r, phi, theta, eta, rho, farsighted)


def steering_game(eta: float = 3.0) -> Game:
    """A two-step farsighted game where the leader gains by steering the follower.

    From state 0 the follower chooses ``b = 0`` (go to state 1, the leader earns 1) or ``b = 1``
    (go to state 2, nothing).  At step 2 in state 1 the leader can take her reward (``a = 0``,
    leader +1, follower 0) or *reward the follower* (``a = 1``, follower +2, leader 0); state 2
    gives the follower 1.  A step-by-step (backward-induction) leader takes her reward at step 2,
    so a farsighted follower heads for state 2; the QSE leader promises the follower the reward
    in state 1, which steers it there at step 1.  Farsightedness is what makes the promise pay.

    Features (``d = 3``, all identified).  The follower's utility at step 2 does not depend on
    its own action, so its responses there are uniform and the data can only identify how the
    step-2 utilities enter the step-1 choice, through ``V^F_2(1) - V^F_2(2) = theta_1 +
    theta_2 pi_2(1|1) - theta_3 pi_2(1|2)`` (up to a constant): ``theta_1 = u_2(1, 0) -
    u_2(2, 0)`` (state 1's level against state 2's), ``theta_2 = u_2(1, 1) - u_2(1, 0)`` (the
    promised reward) and ``theta_3 = u_2(2, 1) - u_2(2, 0)``.  With ``u_2(1,.) = (0, 2)`` and
    ``u_2(2,.) = (1, 1)``: ``theta = (-1, 2, 0)``.  Any other coding of these utilities adds
    directions that no data identify (the Fisher information is singular along them); under
    leader policies that vary in states 1 and 2 the three directions here have full Fisher
    rank.
    """
    H, S, A, B = 2, 3, 2, 2
    P = np.zeros((H, S, A, B, S))
    r = np.zeros((H, S, A, B))
    P[..., 0] = 1.0  # default: absorbing at 0 (unused)
    P[0, 0, :, 0] = [0, 1, 0]
    P[0, 0, :, 1] = [0, 0, 1]
    r[0, 0, :, 0] = 1.0
    r[1, 1, 0, :] = 1.0
    phi = np.zeros((H, S, A, B, 3))
    phi[1, 1, :, :, 0] = 1.0  # state 1 at step 2, any action
    phi[1, 1, 1, :, 1] = 1.0  # state 1, the leader rewards the follower
    phi[1, 2, 1, :, 2] = 1.0  # state 2, leader action 1
    theta = np.array([-1.0, 2.0, 0.0])
    rho = np.array([1.0, 0.0, 0.0])
    return Game(P, r, phi, theta, eta, rho, farsighted=True)


def tempting_game(
    n_tempting: int = 6,
    safe_value: float = 0.6,
    tempting_value: float = 0.3,
    eta: float = 2.0,
    horizon: int = 1,
) -> Game:
    """An offline test bed that needs pessimism: a safe leader action and tempting ones.

    The ``n_tempting`` tempting actions' value hinges on a poorly estimated follower response.

    One state, ``A = n_tempting + 1`` leader actions, ``B = 2`` follower actions (0 cooperate,
    1 defect), ``horizon`` identical steps, myopic follower:

    - a *tempting* action ``a = k < n_tempting`` pays 1 if the follower cooperates and 0 if
      it defects; its follower utility is ``u(k, defect) = theta_k``, ``u(k, cooperate) = 0``
      (features ``phi(k, 1) = e_k``, ``d = n_tempting``), so each tempting action has its own
      follower parameter, learned only from that action's own samples.  The true ``theta_k =
      logit(1 - tempting_value) / eta`` makes every tempting action worth
      ``P(cooperate) = tempting_value`` per step;
    - the *safe* action ``a = n_tempting`` (the last) pays the leader ``safe_value`` whatever
      the follower does (its value is learned from any play of it).  It is last so that a
      planner that cannot tell the actions apart (ties break towards the first index) picks a
      tempting one: no learner is safe by accident.

    With ``tempting_value < safe_value`` the QSE plays the safe action (value ``horizon *
    safe_value``).  Under a behaviour policy
    that rarely tries the tempting actions (e.g. ``near-optimal`` with ``epsilon`` = 0.3: each
    tempting action gets ``epsilon / A`` of the plays), a plug-in leader sees a few of them
    and some, by chance, only with cooperation; the maximum over these noisy estimates
    exceeds ``safe_value`` (winner's curse) and the plug-in picks a bad action.  Pessimism
    discounts the actions it has seen little of and keeps the safe one.  With the default
    constants (``eta = 2``, ridge 1) one cooperative sample puts the MAP's estimated value at
    about 0.74 > 0.6.
    """
    K = int(n_tempting)
    if K != n_tempting or K < 1:
        raise GameValidationError(f"n_tempting: must be a positive integer, got {n_tempting!r}")
    if int(horizon) != horizon or horizon < 1:
        raise GameValidationError(f"horizon: must be a positive integer, got {horizon!r}")
    for name, v in (("safe_value", safe_value), ("tempting_value", tempting_value)):
        if not 0.0 < float(v) < 1.0:
            raise GameValidationError(f"{name}: must lie in (0, 1), got {v!r}")
    H, S, A, B = int(horizon), 1, K + 1, 2
    P = np.ones((H, S, A, B, S))
    r = np.zeros((H, S, A, B))
    r[:, 0, :K, 0] = 1.0
    r[:, 0, K, :] = safe_value
    phi = np.zeros((H, S, A, B, K))
    for k in range(K):
        phi[:, 0, k, 1, k] = 1.0
    p_defect = 1.0 - float(tempting_value)
    theta = np.full(K, np.log(p_defect / (1.0 - p_defect)) / float(eta))
    return Game(P, r, phi, theta, eta, np.ones(S), False)


def exploration_game(
    horizon: int = 2,
    n_follower_actions: int = 3,
    safe_reward: float = 0.6,
    cooperation: float = 3.0,
    eta: float = 1.0,
) -> Game:
    """A myopic game built to need exploration: the better action looks worse until tried.

    One state, ``H = horizon`` steps, leader actions ``a = 0`` (safe) and ``a = 1`` (risky),
    ``B = n_follower_actions`` follower actions.  Safe: the leader earns ``safe_reward``
    whatever the follower does.  Risky: she earns 1 if the follower cooperates (``b = 0``) and
    0 otherwise.  Features (``d = 2``): ``phi(a=0, b) = (b / (B-1), 0)`` (the follower's taste
    for high actions under the safe action, which does not affect the leader) and
    ``phi(a=1, b) = (0, 1[b = 0])`` (its taste for cooperating); ``theta = (0.5, cooperation)``.
    (The story: a safe but modest contract, or a risky venture that pays only if the partner
    cooperates.)

    Per step the risky action is worth ``nu(0 | risky) = e^c / (e^c + B - 1)`` with
    ``c = eta * cooperation`` (0.909 with the defaults) against ``safe_reward`` (0.6), so the
    QSE plays risky.  But ``theta_2``, the only parameter the risky action's value depends
    on, is observed only when the risky action is played, and at the prior mean ``theta = 0``
    the follower is uniform: risky looks worth ``1/B`` (1/3 < 0.6).  A plug-in leader that
    stops playing risky after a few early plays keeps that estimate (the posterior of
    ``theta_2`` no longer moves) and loses ``e^c/(e^c+B-1) - safe_reward`` per step for ever.
    Both parameters are identified under the uniform policy (Fisher information of rank 2).
    """
    for name, value, low in (
        ("horizon", horizon, 1),
        ("n_follower_actions", n_follower_actions, 2),
    ):
        if isinstance(value, bool) or int(value) != value or value < low:
            raise GameValidationError(f"{name}: must be an integer >= {low}, got {value!r}")
    if not 0.0 <= safe_reward <= 1.0:
        raise GameValidationError(f"safe_reward: must lie in [0, 1], got {safe_reward!r}")
    if not np.isfinite(cooperation):
        raise GameValidationError(f"cooperation: must be finite, got {cooperation!r}")
    H, S, A, B = int(horizon), 1, 2, int(n_follower_actions)
    P = np.ones((H, S, A, B, S))
    r = np.zeros((H, S, A, B))
    r[:, 0, 0, :] = safe_reward
    r[:, 0, 1, 0] = 1.0
    phi = np.zeros((H, S, A, B, 2))
    phi[:, 0, 0, :, 0] = np.arange(B) / (B - 1)
    phi[:, 0, 1, 0, 1] = 1.0
    theta = np.array([0.5, float(cooperation)])
    return Game(P, r, phi, theta, eta, None, False)


def patrol_large_game(
    n_sites: int = 50, horizon: int = 10, eta: float = 2.0, farsighted: bool = False
) -> Game:
    """A large patrol game: :func:`patrol_game` with many sites (``A = n_sites`` in [10, 100]).

    Shape ``(H, S, A, B) = (horizon, 2, n_sites, n_sites + 1)``, ``d = 4``: a test bed where a
    tabular leader model has ``2 A (A+1)`` cells per step to learn while the follower has only
    four parameters (identified: Fisher rank 4 of 4,
    :func:`bayes_qse.inference.identified_directions`).
    """
    if isinstance(n_sites, bool) or int(n_sites) != n_sites or not 10 <= n_sites <= 100:
        raise GameValidationError(f"n_sites: must be an integer in [10, 100], got {n_sites!r}")
    return patrol_game(int(n_sites), horizon, eta, farsighted)


#: The largest random game of the scaling benchmarks (``random-large``).
LARGE_RANDOM_SHAPE = {"n_states": 100, "n_actions": 10, "horizon": 20, "feature_dim": 32}


def random_large_game(
    seed: int = 0,
    n_states: int = 100,
    n_actions: int = 10,
    horizon: int = 20,
    feature_dim: int = 32,
    eta: float = 1.0,
    farsighted: bool = False,
) -> Game:
    """A large random game: :func:`random_game` with ``A = B = n_actions``, by default
    ``S = 100, A = B = 10, H = 20, d = 32`` (float64 arrays: transitions 160 MB, features
    51 MB).  The follower's ``theta`` is identified (Fisher rank ``d``).  Sparser transitions
    (Dirichlet concentration 0.1) so that states differ."""
    return random_game(
        seed,
        n_states,
        n_actions,
        n_actions,
        horizon,
        feature_dim,
        eta=eta,
        farsighted=farsighted,
        transition_concentration=0.1,
    )


NAMED_GAMES = {
    "patrol": patrol_game,
    "pricing": pricing_game,
    "steering": steering_game,
    "tempting": tempting_game,
    "exploration": exploration_game,
    "patrol-large": patrol_large_game,
    "random-large": random_large_game,
}


def named_game(name: str, **kwargs: Any) -> Game:
    """Build one of :data:`NAMED_GAMES` by name (``patrol``, ``pricing``, ``steering``,
    ``tempting``, ``exploration``, ``patrol-large``, ``random-large``)."""
    if name not in NAMED_GAMES:
        raise GameValidationError(
            f"game: unknown named game {name!r}; choose from {sorted(NAMED_GAMES)}"
        )
    return NAMED_GAMES[name](**kwargs)


__all__ = [
    "ARRAY_FIELDS",
    "Game",
    "LARGE_RANDOM_SHAPE",
    "NAMED_GAMES",
    "exploration_game",
    "named_game",
    "patrol_game",
    "patrol_large_game",
    "pricing_game",
    "random_game",
    "random_large_game",
    "steering_game",
    "tabular_features",
    "tabular_game",
    "tabular_theta",
    "tempting_game",
]
