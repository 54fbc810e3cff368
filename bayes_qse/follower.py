"""The follower's quantal (logit) response, docs/math.md eq. (1).

All functions are pure JAX on arrays with the shapes of :mod:`bayes_qse.games`; they can be
``jit``-ed, differentiated (with respect to ``theta``, ``eta`` or the leader's policy) and
``vmap``-ped over samples of ``theta``.

Numerics: the response is computed as ``exp(log_softmax(eta * Q))`` and the soft value as
``logsumexp(eta * Q) / eta``, so ``eta * |Q|`` up to ``1e6`` neither overflows nor underflows
(in float64, which the package enables).  As ``eta -> 0`` the response tends to uniform; as
``eta -> infinity`` it tends to a best response (uniform over ties).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from ._validate import validate_policy
from .errors import BayesQSEInputError

Array = jax.Array


def utility(features: Array, theta: Array) -> Array:
    """``u[..., H,S,A,B] = features[H,S,A,B,d] @ theta[..., d]`` (eq. 3); batches over theta."""
    return jnp.einsum("hsabd,...d->...hsab", features, theta)


def log_quantal_response(q: Array, eta: Array | float) -> Array:
    """``log softmax_b(eta * q)`` over the last axis (eq. 1d) — the log of the response."""
    return jax.nn.log_softmax(eta * q, axis=-1)


def soft_value(q: Array, eta: Array | float) -> Array:
    """``W = (1/eta) logsumexp_b(eta * q)`` over the last axis (eq. 1b)."""
    return logsumexp(eta * q, axis=-1) / eta


def follower_log_response_from_utility(
    u: Array,
    transitions: Array,
    leader_policy: Array | None,
    eta: Array | float,
    farsighted: bool,
) -> Array:
    """``log nu[H,S,A,B]`` for utility ``u[H,S,A,B]`` (eq. 1a-1d).

    Myopic: ``log nu_h = log_softmax(eta * u_h)``; ``leader_policy`` is ignored (may be None).
    Farsighted: the soft Bellman recursion backwards from ``V^F_{H+1} = 0``::

        Q_h = u_h + P_h V_{h+1}     W_h = logsumexp(eta Q_h)/eta     V_h = sum_a pi_h W_h

    with ``leader_policy[H,S,A]``.
    """
    if not farsighted:
        return log_quantal_response(u, eta)
    if leader_policy is None:
        raise ValueError("leader_policy: required for a farsighted follower")

    def step(v_next, inputs):
        u_h, p_h, pi_h = inputs
        q = u_h + jnp.einsum("sabt,t->sab", p_h, v_next)
        w = soft_value(q, eta)
        v = jnp.sum(pi_h * w, axis=-1)
        return v, log_quantal_response(q, eta)

    S = u.shape[1]
    v_end = jnp.zeros((S,), dtype=jnp.result_type(u.dtype, float))
    _, log_nu = jax.lax.scan(step, v_end, (u, transitions, leader_policy), reverse=True)
    return log_nu


def follower_log_response(game: Any, leader_policy: Array | None = None, theta=None) -> Array:
    """``log nu[H,S,A,B]`` of the follower in ``game`` against ``leader_policy[H,S,A]``.

    ``theta`` defaults to the game's true parameter; it may carry leading batch axes only
    through ``jax.vmap``.
    """
    th = game.theta if theta is None else theta
    u = utility(game.features, th)
    return follower_log_response_from_utility(
        u, game.transitions, leader_policy, game.eta, game.farsighted
    )


def follower_response(game: Any, leader_policy: Array | None = None, theta=None) -> Array:
    """The quantal response ``nu[H,S,A,B]`` (eq. 1d) against ``leader_policy[H,S,A]``.

    For a myopic follower ``leader_policy`` is not needed.  For a farsighted one it is
    required: the response depends on the leader's later policy through ``V^F``.
    """
    if game.farsighted and leader_policy is None:
        raise BayesQSEInputError("leader_policy: required for a farsighted follower")
    if leader_policy is not None and not isinstance(leader_policy, jax.core.Tracer):
        leader_policy = validate_policy(game, leader_policy)
    return jnp.exp(follower_log_response(game, leader_policy, theta))
