"""Per-policy sufficient statistics of the follower's likelihood (docs/math.md eq. 4, "Eq. 4
regrouped by policy").

Eq. (4) sums ``log nu^{pi^t}`` over episodes; episodes played under the same announced policy
share one soft Bellman recursion, so with ``K`` distinct policies ``pi_k`` and their response
counts ``n_k[h,s,a,b]``::

    L(theta) = sum_k sum_{h,s,a,b} n_k(h,s,a,b) log nu^{pi_k}_{h,theta}(b | s,a)       (4')

A refit then costs ``K`` recursions instead of one per stored episode, and memory is
``[K,H,S,A,B]`` instead of ``[T,H,S,A]``.  :class:`PolicyStats` is a pytree of fixed capacity
``K_max`` (``max_policies``), so jit-compiled learners never recompile as data grow: an
episode whose policy equals the last stored one adds to its counts, any other opens a new row.
Rows past ``K_max`` are refused: the statistics set ``overflow`` (checked on the host by
:func:`check_overflow`, a :class:`~bayes_qse.errors.ConfigError` naming ``max_policies``).

A myopic follower's ``nu`` does not depend on ``pi``: its likelihood uses the counts summed
over ``k`` (the counts form of :func:`bayes_qse.likelihood.log_likelihood`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .errors import ConfigError
from .follower import log_response_from_utility, utility
from .likelihood import log_likelihood, register_statistics
from .model import Model
from .types import Array

#: Rows of :class:`PolicyStats` evaluated together (one vectorised block) by
#: :func:`policy_log_likelihood`.
POLICY_BLOCK = 16


class PolicyStats(NamedTuple):
    """Distinct announced policies and the follower's responses under each (a JAX pytree).

    Attributes:
        policies: ``[K_max, H,S,A]`` the distinct policies in order of first use (unused rows
            are uniform).
        counts: ``[K_max, H,S,A,B]`` float, ``n_k(h,s,a,b)``: how often the follower answered
            ``b`` at ``(h, s, a)`` in episodes played under ``policies[k]`` (zero in unused
            rows).
        n_policies: int scalar, the number of rows in use.
        first_state_counts: ``[S]`` how often each state started an episode (the leader's
            estimate of the initial distribution needs them).
        count: int scalar, the number of episodes added.
        overflow: bool scalar, True once an episode needed row ``K_max`` (its responses were
            dropped; :func:`check_overflow` raises).
    """

    policies: Array
    counts: Array
    n_policies: Array
    first_state_counts: Array
    count: Array
    overflow: Array

    @property
    def max_policies(self) -> int:
        return int(self.policies.shape[-4])


def policy_stats_init(max_policies: int, shape: tuple[int, int, int, int]) -> PolicyStats:
    """Empty statistics of capacity ``max_policies`` for a game of ``shape = (H, S, A, B)``."""
    K = int(max_policies)
    if K < 1:
        raise ConfigError(f"max_policies: must be >= 1, got {max_policies!r}")
    H, S, A, B = (int(x) for x in shape)
    return PolicyStats(
        policies=jnp.full((K, H, S, A), 1.0 / A, jnp.float64),
        counts=jnp.zeros((K, H, S, A, B), jnp.float64),
        n_policies=jnp.zeros((), jnp.int32),
        first_state_counts=jnp.zeros((S,), jnp.float64),
        count=jnp.zeros((), jnp.int32),
        overflow=jnp.zeros((), bool),
    )


def policy_stats_add(stats: PolicyStats, episode: Any) -> PolicyStats:
    """Add one :class:`~bayes_qse.data.Episode`: its responses go to the row of its policy
    (the last row if ``episode.policy`` equals it exactly, else a new row).  Pure, jit-able,
    ``O(H S A)``; shapes unchanged."""
    K = stats.policies.shape[0]
    H = stats.counts.shape[1]
    policy = jnp.asarray(episode.policy, stats.policies.dtype)
    last = jnp.maximum(stats.n_policies - 1, 0)
    same = (stats.n_policies > 0) & jnp.all(stats.policies[last] == policy)
    row = jnp.where(same, last, stats.n_policies)
    fits = row < K
    row_c = jnp.minimum(row, K - 1)
    h = jnp.arange(H)
    s = jnp.asarray(episode.states)[:H]
    weight = jnp.where(fits, 1.0, 0.0)
    counts = stats.counts.at[row_c, h, s, episode.leader_actions, episode.follower_actions].add(
        weight
    )
    policies = jnp.where(fits & ~same, stats.policies.at[row_c].set(policy), stats.policies)
    first = stats.first_state_counts.at[jnp.asarray(episode.states)[0]].add(1.0)
    return PolicyStats(
        policies=policies,
        counts=counts,
        n_policies=jnp.where(fits, row + 1, stats.n_policies),
        first_state_counts=first,
        count=stats.count + 1,
        overflow=stats.overflow | ~fits,
    )


def policy_stats_from_dataset(
    dataset: Any, shape: tuple[int, int, int, int], max_policies: int | None = None
) -> PolicyStats:
    """The statistics of a :class:`~bayes_qse.data.Dataset`, grouping *all* episodes with
    equal policies (not only consecutive ones), on the host with NumPy.

    ``max_policies`` defaults to the number of distinct policies; fewer raise a
    :class:`~bayes_qse.errors.ConfigError` naming ``max_policies`` before anything is
    allocated on the device."""
    H, S, A, B = (int(x) for x in shape)
    dataset.check_sizes((H, S, A, B))
    pols = np.asarray(dataset.policies, np.float64).reshape(dataset.n_episodes, -1)
    distinct, which = np.unique(pols, axis=0, return_inverse=True)
    # keep the order of first use (np.unique sorts)
    order = np.argsort([np.flatnonzero(which.ravel() == k)[0] for k in range(len(distinct))])
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    which = rank[which.ravel()]
    K = len(distinct) if max_policies is None else int(max_policies)
    if len(distinct) > K:
        raise ConfigError(
            f"max_policies: the dataset holds {len(distinct)} distinct policies, more than "
            f"max_policies={K}"
        )
    K = max(K, 1)
    policies = np.full((K, H, S, A), 1.0 / A)
    policies[: len(distinct)] = distinct[order].reshape(-1, H, S, A)
    counts = np.zeros((K, H, S, A, B))
    h = np.broadcast_to(np.arange(H), dataset.leader_actions.shape)
    np.add.at(
        counts,
        (
            np.broadcast_to(which[:, None], h.shape),
            h,
            dataset.states[:, :H],
            dataset.leader_actions,
            dataset.follower_actions,
        ),
        1.0,
    )
    first = np.bincount(dataset.states[:, 0], minlength=S).astype(np.float64)
    return PolicyStats(
        policies=jnp.asarray(policies),
        counts=jnp.asarray(counts),
        n_policies=jnp.asarray(len(distinct), jnp.int32),
        first_state_counts=jnp.asarray(first),
        count=jnp.asarray(dataset.n_episodes, jnp.int32),
        overflow=jnp.asarray(False),
    )


class ResponseCounts(NamedTuple):
    """Running counts of a myopic follower's responses (a JAX pytree; the data of an
    every-episode learner, ``refit="every"``, facing a myopic follower).

    A myopic ``nu`` does not depend on the announced policy, so the counts ``n(h,s,a,b)``
    summed over every episode are sufficient for eq. (4) (its counts form, docs/math.md
    eq. 4'); :func:`response_counts_add` adds one episode in ``O(H)``, so a refit costs
    ``O(H S A B)`` whatever the number of episodes ``t`` (an episode buffer recounted all its
    rows).

    Attributes:
        counts: ``[H,S,A,B]`` float, integer valued.
        first_state_counts: ``[S]`` float, how often each state started an episode.
        count: int scalar, the number of episodes added.
    """

    counts: Array
    first_state_counts: Array
    count: Array


def response_counts_init(shape: tuple[int, int, int, int]) -> ResponseCounts:
    """Empty :class:`ResponseCounts` for a game of ``shape = (H, S, A, B)``."""
    H, S, A, B = (int(x) for x in shape)
    return ResponseCounts(
        counts=jnp.zeros((H, S, A, B), jnp.float64),
        first_state_counts=jnp.zeros((S,), jnp.float64),
        count=jnp.zeros((), jnp.int32),
    )


def response_counts_add(data: ResponseCounts, episode: Any) -> ResponseCounts:
    """Add one :class:`~bayes_qse.data.Episode`'s ``H`` responses and its first state; pure,
    jit-able, ``O(H)``.  The sums are of whole numbers, hence exact (below ``2^53``): equal
    to a recount of the episodes in any order."""
    H = data.counts.shape[0]
    s = jnp.asarray(episode.states)
    where = (jnp.arange(H), s[:H], episode.leader_actions, episode.follower_actions)
    counts = data.counts.at[where].add(1.0)
    return ResponseCounts(
        counts=counts,
        first_state_counts=data.first_state_counts.at[s[0]].add(1.0),
        count=data.count + 1,
    )


def check_overflow(stats: PolicyStats, where: str = "") -> None:
    """Raise :class:`~bayes_qse.errors.ConfigError` naming ``max_policies`` if any of the
    (possibly batched) statistics ran out of rows."""
    over = np.asarray(stats.overflow)
    if over.any():
        K = stats.max_policies
        raise ConfigError(
            f"max_policies: {K} distinct announced policies were not enough{where}; raise "
            "max_policies (or switch_factor, for refit='switching')"
        )


def policy_log_likelihood(theta: Array, model: Model, stats: PolicyStats) -> Array:
    """``L(theta)`` of eq. (4') from per-policy statistics; a scalar.

    Farsighted: one soft Bellman recursion per row of ``stats.policies`` in use,
    ``sum_k sum n_k log nu^{pi_k}``, in blocks of :data:`POLICY_BLOCK` rows (vectorised); the
    blocks past ``n_policies`` are skipped by a ``lax.cond``, so the cost is ``O(K)``, not
    ``O(K_max)`` (unless vmapped over statistics, where both branches run).  Myopic: the
    counts summed over ``k`` (``pi`` drops out).  Pure and jit-able (``model.farsighted`` is
    static); differentiable in ``theta`` and ``model.eta``.

    Args:
        theta: ``[d]``.
        model: the follower's :class:`~bayes_qse.model.Model` (``features``, ``eta``, the
            follower kind and, farsighted only, ``transitions[H,S,A,B,S]``).
        stats: :class:`PolicyStats` of capacity ``K_max``.
    """
    if not model.farsighted:
        return log_likelihood(theta, model, jnp.sum(stats.counts, 0))
    u = utility(model.features, theta)
    K = stats.policies.shape[0]
    block = min(POLICY_BLOCK, K)
    n_blocks = -(-K // block)
    pad = n_blocks * block - K
    A = stats.policies.shape[-1]
    policies = jnp.concatenate(
        [stats.policies, jnp.full((pad, *stats.policies.shape[1:]), 1.0 / A)]
    ).reshape(n_blocks, block, *stats.policies.shape[1:])
    counts = jnp.concatenate([stats.counts, jnp.zeros((pad, *stats.counts.shape[1:]))]).reshape(
        n_blocks, block, *stats.counts.shape[1:]
    )

    def block_sum(pis, cnt):
        log_nu = jax.vmap(lambda pi: log_response_from_utility(u, model, pi))(
            pis
        )  # [block,H,S,A,B]
        return jnp.sum(cnt * log_nu)

    def body(total, i):
        # blocks past the rows in use are skipped (a real branch unless vmapped over stats)
        value = jax.lax.cond(
            i * block < stats.n_policies,
            lambda _: block_sum(policies[i], counts[i]),
            lambda _: jnp.zeros((), u.dtype),
            None,
        )
        return total + value, None

    total, _ = jax.lax.scan(body, jnp.zeros((), u.dtype), jnp.arange(n_blocks))
    return total


register_statistics(PolicyStats, policy_log_likelihood)


def episode_information(theta: Array, model: Model, episode: Any) -> Array:
    """``-Hess_theta sum_h log nu^{pi}_{h,theta}(b_h | s_h, a_h)`` ``[d,d]``: the information
    one episode (played under ``episode.policy``) adds to the negative Hessian of eq. (4') at
    ``theta``.  Myopic, each step adds ``eta^2 Cov_{nu_h(.|s_h,a_h)}(phi_h(s_h,a_h,.))``
    whatever ``b_h``; farsighted, forward-over-reverse differentiation of one recursion.

    Args:
        theta: ``[d]``.
        model: the follower's :class:`~bayes_qse.model.Model` (``transitions`` farsighted only).
        episode: an :class:`~bayes_qse.data.Episode`.
    """
    H = model.features.shape[0]
    h = jnp.arange(H)
    s = jnp.asarray(episode.states)[:H]

    def loglik(th):
        u = utility(model.features, th)
        log_nu = log_response_from_utility(u, model, episode.policy)
        return jnp.sum(log_nu[h, s, episode.leader_actions, episode.follower_actions])

    return -jax.hessian(loglik)(theta)


__all__ = [
    "POLICY_BLOCK",
    "PolicyStats",
    "ResponseCounts",
    "check_overflow",
    "policy_log_likelihood",
    "policy_stats_add",
    "policy_stats_from_dataset",
    "policy_stats_init",
    "response_counts_add",
    "response_counts_init",
    "episode_information",
]
