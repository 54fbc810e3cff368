"""The follower's quantal (logit) response, docs/math.md eq. (1).

All functions are pure JAX on a :class:`~bayes_qse.model.Model` and ``theta`` (the cores take
``theta`` first where it matters for ``vmap``: ``jax.vmap(f, in_axes=(0, None))`` over draws);
they can be ``jit``-ed, differentiated (with respect to ``theta``, ``eta`` or the leader's
policy) and ``vmap``-ped over samples of ``theta``.

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
from .backward import backward_scan
from .errors import BayesQSEInputError
from .model import Model, as_model
from .types import Array


def utility(features: Array, theta: Array) -> Array:
    """``u[..., H,S,A,B] = features[H,S,A,B,d] @ theta[..., d]`` (eq. 3); batches over theta."""
    return jnp.einsum("hsabd,...d->...hsab", features, theta)


def log_quantal_response(q: Array, eta: Array | float) -> Array:
    """``log softmax_b(eta * q)`` over the last axis (eq. 1d) — the log of the response."""
    return jax.nn.log_softmax(eta * q, axis=-1)


def quantal_response(q: Array, eta: Array | float) -> Array:
    """``softmax_b(eta * q)`` over the last axis (eq. 1d).

    Not bit-identical to ``exp(log_quantal_response(q, eta))`` (they differ in the last
    bits); the planners that published results with this form keep it.
    """
    return jax.nn.softmax(eta * q, axis=-1)


def soft_value(q: Array, eta: Array | float) -> Array:
    """``W = (1/eta) logsumexp_b(eta * q)`` over the last axis (eq. 1b)."""
    return logsumexp(eta * q, axis=-1) / eta


def myopic_log_response(model: Model, theta: Array) -> Array:
    """``log nu[..., H,S,A,B] = log_softmax_b(eta * phi . theta)`` (eq. 1d, myopic; eq. 3).

    ``theta[..., d]`` may carry batch axes.  The one place the myopic response is written.
    """
    return log_quantal_response(utility(model.features, theta), model.eta)


def myopic_response(model: Model, theta: Array) -> Array:
    """``nu = softmax_b(eta * phi . theta)`` (eq. 1d, myopic) in the :func:`quantal_response`
    form (see there)."""
    return quantal_response(utility(model.features, theta), model.eta)


def log_response_from_utility(u: Array, model: Model, leader_policy: Array | None) -> Array:
    """``log nu[H,S,A,B]`` for utility ``u[H,S,A,B]`` (eq. 1a-1d).

    Myopic: ``log nu_h = log_softmax(eta * u_h)``; ``leader_policy`` is ignored (may be None).
    Farsighted (``model.farsighted``): the soft Bellman recursion backwards from
    ``V^F_{H+1} = 0`` (:func:`bayes_qse.backward.backward_scan`)::

        Q_h = u_h + P_h V_{h+1}     W_h = logsumexp(eta Q_h)/eta     V_h = sum_a pi_h W_h

    with ``leader_policy[H,S,A]`` and ``model.transitions[H,S,A,B,S]``.
    """
    eta = model.eta
    if not model.farsighted:
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
    log_nu, _ = backward_scan(step, v_end, (u, model.transitions, leader_policy))
    return log_nu


def log_response(theta: Array, model: Model, leader_policy: Array | None = None) -> Array:
    """``log nu[H,S,A,B]`` of the follower ``theta[d]`` against ``leader_policy[H,S,A]``
    (eq. 1; the policy is needed only for a farsighted follower)."""
    return log_response_from_utility(utility(model.features, theta), model, leader_policy)


def follower_response(game: Any, leader_policy: Array | None = None, theta=None) -> Array:
    """The quantal response ``nu[H,S,A,B]`` (eq. 1d) against ``leader_policy[H,S,A]``.

    ``game``: a ``Game``, ``GameSpec`` or ``Model``; ``theta`` defaults to the game's true
    parameter (required for a ``Model``).  For a myopic follower ``leader_policy`` is not
    needed.  For a farsighted one it is required: the response depends on the leader's later
    policy through ``V^F``.
    """
    model = as_model(game)
    if model.farsighted and leader_policy is None:
        raise BayesQSEInputError("leader_policy: required for a farsighted follower")
    if leader_policy is not None and not isinstance(leader_policy, jax.core.Tracer):
        leader_policy = validate_policy(model, leader_policy)
    th = game.theta if theta is None else theta
    return jnp.exp(log_response(th, model, leader_policy))


__all__ = [
    "follower_response",
    "log_quantal_response",
    "log_response",
    "log_response_from_utility",
    "myopic_log_response",
    "myopic_response",
    "quantal_response",
    "soft_value",
    "utility",
]
