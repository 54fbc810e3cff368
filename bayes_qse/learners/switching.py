"""Rarely-switching online learners (``LearnerConfig.refit="switching"``; docs/math.md eq. 4'
and "Rarely-switching policies").

As in rarely-switching OFUL, the learner keeps announcing the same policy until the
information about ``theta`` has grown by a constant factor: with ``V_t`` the learner's
precision (observed Fisher information plus prior precision; eigenvalues floored at
``1 / prior_scale^2`` so that the unridged ``mle-optimistic`` has a finite determinant) it
refits and replans after episode ``t`` exactly when

    log det V_t >= log det V_{t_k} + log(switch_factor)                                (S)

with ``t_k`` the last switch.  Between switches ``V_t`` grows by each episode's information
at the estimate of the last switch (:func:`bayes_qse.policy_stats.episode_information`,
``O(d)`` recursions), and the episode's responses are added to the per-policy statistics
(:class:`~bayes_qse.policy_stats.PolicyStats`): a refit runs ``K_max`` soft Bellman recursions,
not one per stored episode, and nothing of size ``[T, ...]`` is kept.  Since ``log det V_t``
grows like ``d log t``, a run of ``T`` episodes makes ``K = O(d log T / log switch_factor)``
switches; the leader's own model (eq. 5) is updated every episode and used at the next switch.

The runner plays such learners with ``jax.lax.map`` over seeds (not ``vmap``), so that the
refit branch of the ``lax.cond`` runs only at switches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ..data import Episode
from ..model import Model
from ..policy_stats import PolicyStats, episode_information, policy_stats_add, policy_stats_init
from ..types import Array
from .common import GameSpec, Learner, OnlineState, act
from .config import LearnerConfig


class SwitchingData(NamedTuple):
    """What a rarely-switching learner keeps of the data (``OnlineState.buffer``).

    Attributes:
        stats: per-policy statistics of every episode played.
        anchor_theta: ``[d]`` the estimate at the last switch (the information of later
            episodes is evaluated there).
        anchor_logdet: ``log det V`` right after the last switch.
        switches: int scalar, the number of switches (refits with a new policy) so far.
    """

    stats: PolicyStats
    anchor_theta: Array
    anchor_logdet: Array
    switches: Array

    @property
    def count(self) -> Array:
        """Episodes played so far."""
        return self.stats.count

    @property
    def first_state_counts(self) -> Array:
        """``[S]`` first-state counts of the episodes played."""
        return self.stats.first_state_counts


def criterion_logdet(precision: Array, floor: float) -> Array:
    """``log det V`` of criterion (S): ``precision`` with eigenvalues floored at ``floor``."""
    lam = jnp.linalg.eigvalsh(0.5 * (precision + precision.T))
    return jnp.sum(jnp.log(jnp.maximum(lam, floor)))


def switching_learner(
    name: str,
    spec: GameSpec,
    cfg: LearnerConfig,
    model: Any,
    refit: Callable[[OnlineState, Any, Any], tuple[Array, Array]],
    plan: Callable[..., tuple[Array, Array]],
    prior_precision: float,
) -> Learner:
    """The rarely-switching version of a data learner of :mod:`bayes_qse.learners.online`.

    ``refit(state, policy_stats, leader_stats) -> (theta, precision)`` fits the follower on
    the statistics; ``plan(key, theta, precision, leader_stats, logits, data)`` is the
    learner's planner; ``prior_precision`` the learner's initial precision (``1 /
    prior_scale^2``, or the ridge of the frequentist MLE).  Before the first switch the
    policy is uniform."""
    H, S, A, B = spec.shape
    d = spec.feature_dim
    features = jnp.asarray(spec.features)
    eta = jnp.asarray(spec.eta)
    floor = 1.0 / cfg.prior_scale**2
    log_factor = float(jnp.log(cfg.switch_factor))

    def init(key: Array) -> OnlineState:
        stats = policy_stats_init(cfg.max_policies, spec.shape)
        prior = prior_precision * jnp.eye(d)
        data = SwitchingData(
            stats, jnp.zeros((d,)), criterion_logdet(prior, floor), jnp.zeros((), jnp.int32)
        )
        uniform = jnp.full((H, S, A), 1.0 / A, dtype=jnp.float64)
        return OnlineState(
            key,
            data,
            model.init(H, S, A, B),
            jnp.zeros((d,)),
            prior,
            jnp.zeros((H, S, A)),
            uniform,
        )

    def update(state: OnlineState, episode: Episode) -> OnlineState:
        data = state.buffer
        stats = policy_stats_add(data.stats, episode)
        leader_stats = model.update(state.leader_stats, episode)
        transitions = model.mean(leader_stats)[0] if spec.farsighted else None
        follower = Model(features, eta, transitions, farsighted=spec.farsighted)
        info = episode_information(data.anchor_theta, follower, episode)
        precision = state.precision + info
        switch = criterion_logdet(precision, floor) >= data.anchor_logdet + log_factor

        def stay(_):
            kept = SwitchingData(stats, data.anchor_theta, data.anchor_logdet, data.switches)
            return state._replace(buffer=kept, leader_stats=leader_stats, precision=precision)

        def move(_):
            theta, new_precision = refit(state, stats, leader_stats)
            kept = SwitchingData(
                stats, theta, criterion_logdet(new_precision, floor), data.switches + 1
            )
            key, k_plan = jax.random.split(state.key)
            policy, logits = plan(k_plan, theta, new_precision, leader_stats, state.logits, kept)
            return OnlineState(key, kept, leader_stats, theta, new_precision, logits, policy)

        return jax.lax.cond(switch, move, stay, None)

    return Learner(name, init, act, update)


__all__ = ["SwitchingData", "criterion_logdet", "switching_learner"]
