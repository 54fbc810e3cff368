"""A follower who sees the leader's commitment, not her action (docs/math.md eq. 7).

In the seed game the follower answers the realised leader action ``a``.  A
*commitment-observing* follower answers the announced mixed policy ``pi_h(.|s)`` with a quantal
response to his expected utility under it::

    nu_h(b | s; pi) = softmax_b(eta * sum_a pi_h(a|s) u_h(s, a, b))                      (7a)
                    = softmax_b(eta * psi_h(s, b; pi) . theta),
    psi_h(s, b; pi) = sum_a pi_h(a|s) phi_h(s, a, b)                                      (7b)

so the response is the myopic one with the features ``phi`` replaced by the *commitment
features* ``psi``, linear in ``pi``.  Its log-likelihood over observed (commitment, response)
pairs, grouped by commitment ``k``, is

    L(theta) = sum_k sum_{h,s,b} n_k(h, s, b) log nu_h(b | s; pi^k)                       (7c)

with ``n_k`` the counts of responses ``b`` at ``(h, s)`` under commitment ``k``.  Once the
``psi`` of each distinct commitment are computed, ``L`` is a multinomial logit in ``theta``
(concave), so the Newton MLE, the Laplace posterior, NUTS and the Wald set apply unchanged.

The security game (:mod:`bayes_qse.security`) is the case ``H = S = 1``: the leader's pure
actions are coverage allocations, ``psi`` of target ``b`` is ``(c_b, R^a_b, P^a_b)`` with
``c`` the coverage vector (the marginal of ``pi``), and (7a) is SUQR.

Shapes: ``K`` commitments, ``B`` follower actions, ``d`` features; any leading axes between
``K`` and ``B`` (e.g. ``H, S``) are carried through.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .counts import CommitmentCounts
from .types import Array


def commitment_features(policy: Array, features: Array) -> Array:
    """``psi[..., H,S,B,d]`` of eq. (7b) for ``policy[..., H,S,A]`` and ``features[H,S,A,B,d]``."""
    return jnp.einsum("...hsa,hsabd->...hsbd", policy, features)


def commitment_log_response(theta: Array, psi: Array, eta: Array | float) -> Array:
    """``log nu[..., B] = log_softmax_b(eta * psi[..., B, d] . theta[d])`` (eq. 7a)."""
    return jax.nn.log_softmax(eta * (psi @ theta), axis=-1)


class CommitmentStats(NamedTuple):
    """Sufficient statistics of eq. (7c): a JAX pytree of fixed shapes.

    Attributes:
        psi: ``[K, ..., B, d]`` commitment features of each commitment (eq. 7b).
        counts: ``[K, ..., B]`` observed responses under each commitment (zero rows are
            padding: they contribute nothing, so a fixed capacity never recompiles).
    """

    psi: Array
    counts: Array


def commitment_log_likelihood(theta: Array, model_or_eta: Any, stats: CommitmentStats) -> Array:
    """``L(theta)`` of eq. (7c), a scalar; pure, jit-able, differentiable in ``theta``.

    Args:
        theta: ``[d]`` follower parameter.
        model_or_eta: a :class:`~bayes_qse.model.Model` (its ``eta`` is used) or the scalar
            rationality ``eta`` itself (``1`` for SUQR, whose weights absorb it).
        stats: the :class:`CommitmentStats` of the data.
    """
    eta = getattr(model_or_eta, "eta", model_or_eta)
    return jnp.sum(stats.counts * commitment_log_response(theta, stats.psi, eta))


def commitment_counts_log_likelihood(theta: Array, model: Any, stats: CommitmentCounts) -> Array:
    """``L(theta)`` of eq. (7c) / (9d) from grouped counts, a scalar; pure and jit-able.

    ``psi_k . theta = x_k . U(theta)`` with ``U = features @ theta`` (``[H,S,A,B]``), so the
    commitment features are never formed: memory ``[K, A] + [K, B]``, not ``[K, B, d]``.

    Args:
        theta: ``[d]``.
        model: a :class:`~bayes_qse.model.Model` with ``features[H,S,A,B,d]`` and ``eta``.
        stats: :class:`~bayes_qse.counts.CommitmentCounts` (normal-form ``[K, A]`` / ``[K, B]``
            or Markov ``[K, H, S, A]`` / ``[K, H, S, B]``).
    """
    phi = model.features
    H, S, A, B = phi.shape[:4]
    x = jnp.reshape(stats.commitments, (-1, H, S, A))
    n = jnp.reshape(stats.counts, (-1, H, S, B))
    logits = model.eta * jnp.einsum("khsa,hsab->khsb", x, phi @ theta)
    return jnp.sum(n * jax.nn.log_softmax(logits, axis=-1))


def commitment_stats_from_episodes(
    policies: Array, states: Array, follower_actions: Array, features: Array, mask: Array
) -> CommitmentStats:
    """:class:`CommitmentStats` of Markov-game episodes, one commitment per episode.

    Args:
        policies: ``[C, H,S,A]`` the commitment announced for each episode.
        states: ``[C, H(+1)]`` visited states (the first ``H`` are used).
        follower_actions: ``[C, H]``.
        features: ``[H,S,A,B,d]``.
        mask: ``[C]`` bool, rows that hold an episode.
    """
    C, H = follower_actions.shape
    S, B = features.shape[1], features.shape[3]
    h = jnp.broadcast_to(jnp.arange(H), (C, H))
    t = jnp.broadcast_to(jnp.arange(C)[:, None], (C, H))
    w = jnp.broadcast_to(mask[:, None], (C, H)).astype(features.dtype)
    counts = jnp.zeros((C, H, S, B), features.dtype)
    counts = counts.at[t, h, states[:, :H], follower_actions].add(w)
    return CommitmentStats(commitment_features(policies, features), counts)


__all__ = [
    "CommitmentStats",
    "commitment_counts_log_likelihood",
    "commitment_features",
    "commitment_log_likelihood",
    "commitment_log_response",
    "commitment_stats_from_episodes",
]
