"""The follower's log-likelihood, docs/math.md eq. (4), and the log-posterior, written once as
pure JAX functions of theta on a :class:`~bayes_qse.model.Model`.

    L(theta) = sum_t sum_h log nu_{h,theta}^{pi^t}(b_h^t | s_h^t, a_h^t)              (4)

The same function is maximised by the MLE (:func:`bayes_qse.inference.fit_mle`), differentiated
twice for the observed Fisher information (Wald set, Laplace posterior) and used as the NumPyro
likelihood factor (NUTS).  Data come as an :class:`~bayes_qse.data.EpisodeBuffer` (fixed
capacity, ``mask`` marks the stored episodes) so that jit-compiled callers never recompile as
data grow; a :class:`~bayes_qse.data.Dataset` is accepted too and wrapped exactly.

- Myopic follower: ``log nu_h = log_softmax(eta * phi_h . theta)`` does not depend on ``pi^t``,
  so ``L = sum_{h,s,a,b} n_h(s,a,b) log nu_h(b|s,a)`` with the masked counts ``n`` — the cost
  after counting does not grow with the number of episodes.  The counts
  (:func:`response_counts`) are sufficient: ``stats`` may be them instead of the episodes.
- Farsighted follower: the soft Bellman recursion (1a-1d) runs inside, once per episode policy
  (``model.transitions`` is needed).

:func:`log_likelihood` dispatches on the statistics' type (counts, episodes, commitment
statistics, and -- registered by their home module -- per-policy statistics);
:func:`map_core` is the one damped-Newton MAP / MLE on it, shared by every fit.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp

from .commitment import (
    CommitmentStats,
    commitment_counts_log_likelihood,
    commitment_log_likelihood,
)
from .counts import ActionCounts, CommitmentCounts
from .data import Dataset, EpisodeBuffer, as_buffer
from .follower import log_response, myopic_log_response
from .model import Model
from .optim import newton_maximize
from .types import Array


def response_counts(buffer: EpisodeBuffer, shape: tuple[int, int, int, int]) -> Array:
    """Masked counts ``n[H,S,A,B]`` of observed ``(h, s_h, a_h, b_h)`` in ``buffer``."""
    H, S, A, B = shape
    h = jnp.broadcast_to(jnp.arange(H), buffer.leader_actions.shape)
    w = jnp.broadcast_to(buffer.mask[:, None], h.shape).astype(jnp.float64)
    n = jnp.zeros((H, S, A, B), jnp.float64)
    return n.at[h, buffer.states[:, :H], buffer.leader_actions, buffer.follower_actions].add(w)


def step_log_probs(theta: Array, model: Model, data: EpisodeBuffer | Dataset) -> Array:
    """``log nu_h^{pi^t}(b_h^t | s_h^t, a_h^t)`` for every row and step, ``[C, H]`` (unmasked).

    Args:
        theta: ``[d]`` follower parameter.
        model: the game's :class:`~bayes_qse.model.Model` (``transitions`` needed only when
            ``model.farsighted``, which runs the soft Bellman recursion per episode policy).
        data: episodes (an :class:`EpisodeBuffer` of capacity ``C`` or a :class:`Dataset`).
    """
    buf = as_buffer(data)
    H = model.features.shape[0]
    h = jnp.arange(H)
    s = buf.states[:, :H]
    if not model.farsighted:
        log_nu = myopic_log_response(model, theta)
        return log_nu[h, s, buf.leader_actions, buf.follower_actions]
    log_nu_t = jax.vmap(lambda pi: log_response(theta, model, pi))(buf.policies)  # [C,H,S,A,B]
    t = jnp.arange(buf.mask.shape[0])[:, None]
    return log_nu_t[t, h, s, buf.leader_actions, buf.follower_actions]


def per_episode_log_likelihood(theta: Array, model: Model, data: EpisodeBuffer | Dataset) -> Array:
    """``[C]`` log-likelihood of each episode (eq. 4 without the sum over ``t``); 0 where masked."""
    buf = as_buffer(data)
    lp = step_log_probs(theta, model, buf)
    return jnp.where(buf.mask, jnp.sum(lp, axis=-1), 0.0)


#: ``stats type -> L(theta, model, stats)`` for statistics types defined above this module
#: (:class:`~bayes_qse.policy_stats.PolicyStats`), added by their home module through
#: :func:`register_statistics`.
_REGISTERED: dict[type, Callable[[Array, Model, object], Array]] = {}


def register_statistics(stats_type: type, log_lik: Callable[[Array, Model, object], Array]) -> None:
    """Make :func:`log_likelihood` (and so :func:`log_posterior` and :func:`map_core`) accept
    ``stats_type``, evaluated by ``log_lik(theta, model, stats)``.  Called once by the module
    that defines the type (a module below this one cannot be imported here)."""
    _REGISTERED[stats_type] = log_lik


def log_likelihood(theta: Array, model: Model, stats: EpisodeBuffer | Dataset | Array) -> Array:
    """``L(theta)`` of eq. (4): masked sum over episodes and steps; a scalar.

    ``stats``: the episodes, or -- myopic follower only -- their counts ``[H,S,A,B]``
    (:func:`response_counts`, sufficient since ``pi^t`` drops out); for a follower who answers
    the leader's commitment (``model.follower == "commitment"``) a
    :class:`~bayes_qse.counts.CommitmentCounts` (eq. 9d) or
    :class:`~bayes_qse.commitment.CommitmentStats`, and ``L`` is eq. (7c); the myopic counts
    may come wrapped as :class:`~bayes_qse.counts.ActionCounts`.  Pure and jit-able
    (``model.farsighted`` and ``model.follower`` are static); differentiable in ``theta`` and
    ``model.eta``.  Statistics types registered by :func:`register_statistics` are evaluated
    by their own function: :class:`~bayes_qse.policy_stats.PolicyStats` (eq. 4').
    """
    registered = _REGISTERED.get(type(stats))
    if registered is not None:
        return registered(theta, model, stats)
    if model.follower == "commitment":
        if isinstance(stats, CommitmentCounts):
            return commitment_counts_log_likelihood(theta, model, stats)
        if not isinstance(stats, CommitmentStats):
            raise TypeError(
                "stats: a commitment follower needs CommitmentCounts or CommitmentStats"
            )
        return commitment_log_likelihood(theta, model, stats)
    if isinstance(stats, ActionCounts):  # the myopic counts, wrapped (eq. 4')
        stats = jnp.reshape(stats.counts, model.features.shape[:4])
    if model.farsighted:
        if not isinstance(stats, (EpisodeBuffer, Dataset)):
            raise ValueError("stats: a farsighted follower needs the episodes, not counts")
        return jnp.sum(per_episode_log_likelihood(theta, model, stats))
    if isinstance(stats, (EpisodeBuffer, Dataset)):
        stats = response_counts(as_buffer(stats), model.features.shape[:4])
    return jnp.sum(stats * myopic_log_response(model, theta))


def log_posterior(
    theta: Array,
    model: Model,
    stats: EpisodeBuffer | Dataset | Array,
    prior_precision: Array | float,
) -> Array:
    """``L(theta) - theta' Lambda theta / 2``: eq. (4) plus a Gaussian log-prior ``N(0,
    Lambda^-1)`` up to a constant (docs/math.md §2); ``Lambda = 0`` gives the likelihood.

    ``prior_precision``: ``Lambda``, a scalar (times the identity) or a matrix ``[d,d]``.
    The two are evaluated as written -- ``0.5 * lam * theta @ theta`` and
    ``0.5 * theta @ Lambda @ theta`` -- which round differently: callers that published
    results with ``Lambda = lam * I`` as a matrix pass the matrix.
    """
    lam = jnp.asarray(prior_precision)
    ll = log_likelihood(theta, model, stats)
    if lam.ndim == 0:
        return ll - 0.5 * lam * theta @ theta
    return ll - 0.5 * theta @ lam @ theta


@partial(jax.jit, static_argnames=("n_steps",))
def map_core(
    model: Model, stats: object, prior_precision: Array | float, theta0: Array, n_steps: int = 100
) -> tuple[Array, Array, Array, Array, Array]:
    """The MAP (the MLE when ``prior_precision`` is 0) of :func:`log_posterior` by damped Newton
    (:func:`bayes_qse.optim.newton_maximize`); pure and jit-compiled, the one Newton fit of the
    follower behind every MLE, MAP, Laplace posterior and online refit (docs/math.md §2).

    Args:
        model: the follower's :class:`~bayes_qse.model.Model` (any follower kind).
        stats: its statistics, any type :func:`log_likelihood` accepts: counts ``[H,S,A,B]``
            (or :class:`~bayes_qse.counts.ActionCounts`), an :class:`EpisodeBuffer` (fixed
            capacity: no recompilation as it fills up), :class:`~bayes_qse.counts.CommitmentCounts`,
            :class:`~bayes_qse.commitment.CommitmentStats`,
            :class:`~bayes_qse.policy_stats.PolicyStats`.
        prior_precision: ``Lambda``, a scalar (times the identity) or ``[d,d]``, passed to
            :func:`log_posterior` as given (the two forms round differently).
        theta0: ``[d]`` start (e.g. the previous estimate in an online loop).
        n_steps: maximum Newton steps (static); stops early at convergence.

    Returns:
        ``(theta[d], value, neg_hessian[d,d], n_iter, converged)``; ``neg_hessian`` is
        ``-Hess L(theta) + Lambda``, the observed Fisher information plus the prior precision.
    """

    def objective(th):
        return log_posterior(th, model, stats, prior_precision)

    return newton_maximize(objective, jnp.asarray(theta0, jnp.float64), n_steps)


__all__ = [
    "log_likelihood",
    "log_posterior",
    "map_core",
    "per_episode_log_likelihood",
    "register_statistics",
    "response_counts",
    "step_log_probs",
]
