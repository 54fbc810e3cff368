"""The follower's log-likelihood, docs/math.md eq. (4), written once as a pure JAX function
of theta.

    L(theta) = sum_t sum_h log nu_{h,theta}^{pi^t}(b_h^t | s_h^t, a_h^t)              (4)

The same function is maximised by the MLE (:func:`bayes_qse.inference.fit_mle`), differentiated
twice for the observed Fisher information (Wald set, Laplace posterior) and used as the NumPyro
likelihood factor (NUTS).  Data come as an :class:`~bayes_qse.data.EpisodeBuffer` (fixed
capacity, ``mask`` marks the stored episodes) so that jit-compiled callers never recompile as
data grow; a :class:`~bayes_qse.data.Dataset` is accepted too and wrapped exactly.

- Myopic follower: ``log nu_h = log_softmax(eta * phi_h . theta)`` does not depend on ``pi^t``,
  so ``L = sum_{h,s,a,b} n_h(s,a,b) log nu_h(b|s,a)`` with the masked counts ``n`` — the cost
  after counting does not grow with the number of episodes.
- Farsighted follower: the soft Bellman recursion (1a-1d) runs inside, once per episode policy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .commitment import CommitmentStats, commitment_log_likelihood
from .data import Dataset, EpisodeBuffer, as_buffer
from .follower import follower_log_response_from_utility, utility

Array = jax.Array


def response_counts(buffer: EpisodeBuffer, shape: tuple[int, int, int, int]) -> Array:
    """Masked counts ``n[H,S,A,B]`` of observed ``(h, s_h, a_h, b_h)`` in ``buffer``."""
    H, S, A, B = shape
    h = jnp.broadcast_to(jnp.arange(H), buffer.leader_actions.shape)
    w = jnp.broadcast_to(buffer.mask[:, None], h.shape).astype(jnp.float64)
    n = jnp.zeros((H, S, A, B), jnp.float64)
    return n.at[h, buffer.states[:, :H], buffer.leader_actions, buffer.follower_actions].add(w)


def step_log_probs(
    theta: Array,
    features: Array,
    transitions: Array | None,
    eta: Array | float,
    data: EpisodeBuffer | Dataset,
    farsighted: bool,
) -> Array:
    """``log nu_h^{pi^t}(b_h^t | s_h^t, a_h^t)`` for every row and step, ``[C, H]`` (unmasked).

    Args:
        theta: ``[d]`` follower parameter.
        features: ``[H,S,A,B,d]``.
        transitions: ``[H,S,A,B,S]`` (needed only when ``farsighted``).
        eta: rationality ``> 0``.
        data: episodes (an :class:`EpisodeBuffer` of capacity ``C`` or a :class:`Dataset`).
        farsighted: static flag; True runs the soft Bellman recursion per episode policy.
    """
    buf = as_buffer(data)
    H = features.shape[0]
    u = utility(features, theta)
    h = jnp.arange(H)
    s = buf.states[:, :H]
    if not farsighted:
        log_nu = follower_log_response_from_utility(u, None, None, eta, False)
        return log_nu[h, s, buf.leader_actions, buf.follower_actions]
    log_nu_t = jax.vmap(
        lambda pi: follower_log_response_from_utility(u, transitions, pi, eta, True)
    )(buf.policies)  # [C,H,S,A,B]
    t = jnp.arange(buf.mask.shape[0])[:, None]
    return log_nu_t[t, h, s, buf.leader_actions, buf.follower_actions]


def per_episode_log_likelihood(
    theta: Array,
    features: Array,
    transitions: Array | None,
    eta: Array | float,
    data: EpisodeBuffer | Dataset,
    farsighted: bool,
) -> Array:
    """``[C]`` log-likelihood of each episode (eq. 4 without the sum over ``t``); 0 where masked."""
    buf = as_buffer(data)
    lp = step_log_probs(theta, features, transitions, eta, buf, farsighted)
    return jnp.where(buf.mask, jnp.sum(lp, axis=-1), 0.0)


def log_likelihood(
    theta: Array,
    features: Array,
    transitions: Array | None,
    eta: Array | float,
    data: EpisodeBuffer | Dataset,
    farsighted: bool,
) -> Array:
    """``L(theta)`` of eq. (4): masked sum over episodes and steps; a scalar.

    Pure and jit-able with ``farsighted`` static; differentiable in ``theta`` and ``eta``.
    For a myopic follower it uses the counts of :func:`response_counts` (``pi^t`` drops out).
    """
    buf = as_buffer(data)
    if farsighted:
        return jnp.sum(per_episode_log_likelihood(theta, features, transitions, eta, buf, True))
    counts = response_counts(buf, features.shape[:4])
    return myopic_log_likelihood_from_counts(theta, features, eta, counts)


def myopic_log_likelihood_from_counts(
    theta: Array, features: Array, eta: Array | float, counts: Array
) -> Array:
    """Eq. (4) for a myopic follower from precomputed ``counts[H,S,A,B]`` (the fast path)."""
    u = utility(features, theta)
    return jnp.sum(counts * follower_log_response_from_utility(u, None, None, eta, False))


def model_log_likelihood(theta: Array, model, stats) -> Array:
    """``L(theta)`` for the follower kind of a :class:`~bayes_qse.model.Model`: eq. (4) for a
    follower who answers actions (``stats``: episodes or, myopic, counts), eq. (7c) for one who
    answers commitments (``stats``: a :class:`~bayes_qse.commitment.CommitmentStats`)."""
    if model.follower == "commitment":
        if not isinstance(stats, CommitmentStats):
            raise TypeError("stats: a commitment follower needs CommitmentStats")
        return commitment_log_likelihood(theta, model, stats)
    if not model.farsighted and not isinstance(stats, EpisodeBuffer | Dataset):
        return myopic_log_likelihood_from_counts(theta, model.features, model.eta, stats)
    m = model
    return log_likelihood(theta, m.features, m.transitions, m.eta, stats, m.farsighted)
