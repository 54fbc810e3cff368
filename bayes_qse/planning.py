"""The leader's problem, docs/math.md eq. (2): policy evaluation, exact backward induction against a
myopic follower (2a), a batched planner over many follower parameters, and the gradient planner
for a farsighted follower (2b).

Pure functions take the :class:`~bayes_qse.model.Model` pytree whole (``transitions
[H,S,A,B,S]``, ``leader_reward[H,S,A,B]``, ...) with ``theta[d]``, ``nu[H,S,A,B]`` and
``policy[H,S,A]``; every recursion is the one skeleton :func:`bayes_qse.backward.backward_scan`.
The public wrappers :func:`solve_qse` and :func:`leader_value` take a ``Game``, ``GameSpec``
(planning mode) or ``Model``.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._validate import (
    validate_policy,
    validate_theta,
)
from .backward import backward_scan, greedy_backward
from .errors import BayesQSEInputError
from .follower import log_response, myopic_response, quantal_response, soft_value, utility
from .model import Model, as_model
from .optim import adam_ascent
from .ties import greedy_one_hot, tolerant_argmax
from .types import Array


class Solution(NamedTuple):
    """A solved leader problem.

    Attributes:
        policy: ``[H,S,A]`` the leader's committed policy.
        value: ``J(policy)`` evaluated exactly against the follower's quantal response.
        q_values: ``[H,S,A]`` leader Q-values of (2a) (myopic follower), else ``None``.
        start_values: ``[K]`` value of each candidate of the gradient planner (farsighted:
            the ``K - 2`` optimised starts, then the myopic and step-wise start policies
            themselves), else a single entry equal to ``value``.
        optimisation_gap: ``max - min`` over the optimised starts' values: a diagnostic of how
            much the non-concave farsighted problem depends on the start (0 for the exact
            planner).  It is NOT a bound on ``max_pi J(pi) - value``: every start can stop at
            the same local optimum (spread 0) while the global one is elsewhere, and a spread
            smaller than the true error has been observed.  See ``certified``.
        certified: whether ``value`` is certified optimal: True for the exact myopic planner
            (backward induction, eq. 2a), False for the farsighted gradient planner, whose
            ``optimisation_gap`` is a spread, not a certificate.
    """

    policy: np.ndarray
    value: float
    q_values: np.ndarray | None
    start_values: np.ndarray
    optimisation_gap: float
    certified: bool = False


# ---------------------------------------------------------------------------------------
# Pure array functions
# ---------------------------------------------------------------------------------------


def expected_next_value(transitions_h: Array, v_next: Array) -> Array:
    """``sum_s' P_h(s'|s,a,b) V(s')``: ``[S,A,B,S] x [..., S] -> [..., S,A,B]``.

    With a batch of values ``v_next[M,S]`` this is one matrix product for all ``M``.
    """
    return jnp.einsum("sabt,...t->...sab", transitions_h, v_next)


def evaluate_policy(model: Model, nu: Array, policy: Array) -> tuple[Array, Array]:
    """Exact policy evaluation of the leader (docs/math.md §1.2), the one in the package.

    ``V_h(s) = sum_a pi_h(a|s) sum_b nu_h(b|s,a) [r_h(s,a,b) + sum_s' P_h(s'|s,a,b) V_{h+1}(s')]``
    with ``V_{H+1} = 0``, on ``model.transitions`` and ``model.leader_reward``.  Returns
    ``(V[H+1,S], Q[H,S,A])`` where ``Q`` is the leader's action value under ``nu``.
    """

    def step(v_next, inputs):
        p_h, r_h, nu_h, pi_h = inputs
        w = r_h + expected_next_value(p_h, v_next)
        q = jnp.sum(nu_h * w, axis=-1)
        v = jnp.sum(pi_h * q, axis=-1)
        return v, q

    transitions, leader_reward = model.transitions, model.leader_reward
    S = transitions.shape[1]
    v_end = jnp.zeros((S,), dtype=leader_reward.dtype)
    qs, v = backward_scan(step, v_end, (transitions, leader_reward, nu, policy))
    return v, qs


def policy_value(policy: Array, model: Model, theta: Array) -> Array:
    """``J(policy) = rho . V_1`` (eq. 2) under ``model`` and the follower ``theta[d]``: the
    quantal response (eq. 1; farsighted per ``model.farsighted``) against ``policy``, then
    :func:`evaluate_policy`.  A scalar; pure, differentiable in ``policy``."""
    log_nu = log_response(theta, model, policy)
    v, _ = evaluate_policy(model, jnp.exp(log_nu), policy)
    return model.initial_dist @ v[0]


def backward_induction(model: Model, nu: Array) -> tuple[Array, Array, Array]:
    """Exact QSE planning against a policy-independent (myopic) response ``nu``, eq. (2a).

    ``Q_h(s,a) = sum_b nu_h(b|s,a) [r_h(s,a,b) + sum_s' P_h(s'|s,a,b) V_{h+1}(s')]``,
    ``V_h(s) = max_a Q_h(s,a)``.  Accepts a leading batch axis on ``nu`` (``[M,H,S,A,B]``),
    and optionally on ``model.transitions``/``model.leader_reward``; for shared transitions
    the next-state expectation is one matrix product for all ``M``.

    Returns ``(Q[..., H,S,A], V[..., H+1,S], greedy_policy[..., H,S,A])`` (one-hot: the lowest
    action within a round-off tolerance of the maximum, :func:`bayes_qse.ties.tolerant_argmax`).
    """
    transitions, leader_reward = model.transitions, model.leader_reward
    batch = nu.shape[:-4]
    S = nu.shape[-3]
    t_axis = transitions.ndim - 5
    r_axis = leader_reward.ndim - 4
    p_seq = jnp.moveaxis(transitions, t_axis, 0)
    r_seq = jnp.moveaxis(leader_reward, r_axis, 0)
    nu_seq = jnp.moveaxis(nu, len(batch), 0)

    def q_step(v_next, inputs):
        p_h, r_h, nu_h = inputs
        if p_h.ndim == 4:
            nxt = expected_next_value(p_h, v_next)
        else:
            nxt = jnp.einsum("...sabt,...t->...sab", p_h, v_next)
        return jnp.sum(nu_h * (r_h + nxt), axis=-1)

    v_end = jnp.zeros(batch + (S,), dtype=nu.dtype)
    qs, vs = greedy_backward(q_step, v_end, (p_seq, r_seq, nu_seq))
    q = jnp.moveaxis(qs, 0, len(batch))
    v = jnp.moveaxis(vs, 0, len(batch))
    policy = greedy_one_hot(q).astype(nu.dtype)
    return q, v, policy


_leader_value = jax.jit(policy_value)


def leader_value(game: Any, policy: Any, theta: Any = None) -> float:
    """``J(policy) = rho . V_1`` against the quantal response of the follower (eq. 2).

    ``game``: a ``Game``, a planning-mode ``GameSpec`` or a ``Model``; ``theta`` defaults to
    the game's true parameter (required for a ``Model``).
    """
    model = as_model(game)
    pi = validate_policy(model, policy, "policy")
    th = game.theta if theta is None else validate_theta(model, theta)
    if np.ndim(th) != 1:
        raise BayesQSEInputError("theta: leader_value takes a single theta of shape (d,)")
    return float(_leader_value(pi, model, th))


# ---------------------------------------------------------------------------------------
# Batched myopic planner: backward induction (2a) for many follower parameters at once
# ---------------------------------------------------------------------------------------


class DrawPlans(NamedTuple):
    """Backward induction (2a) for each of ``M`` sampled models (docs/math.md §4).

    Attributes:
        q: ``[M,H,S,A]`` leader Q-values of draw ``m`` (of the returned policy, for a
            farsighted follower).
        v: ``[M,H+1,S]`` leader values of draw ``m``'s plan under draw ``m``'s model.
        policy: ``[M,H,S,A]`` draw ``m``'s plan (one-hot for a myopic follower).
    """

    q: Array
    v: Array
    policy: Array


_UNROLL_MAX_DIM = 16


def _draw_utilities(phi_h: Array, theta_t: Array) -> Array:
    """``phi_h[N,d] @ theta_t[d,M]``; unrolled over ``d`` when ``d`` is small, so that the
    product fuses with its consumers instead of a memory-bound skinny matrix product."""
    d = phi_h.shape[-1]
    if d > _UNROLL_MAX_DIM:
        return phi_h @ theta_t
    z = phi_h[:, 0, None] * theta_t[0]
    for k in range(1, d):
        z = z + phi_h[:, k, None] * theta_t[k]
    return z


def _plan_draws_block(model, theta):
    """The body of :func:`plan_draws_arrays` for one block of draws, draws last:
    returns ``(q[H,S,A,M], v[H+1,S,M])``; per-draw rewards come as ``[H,S,A,B,M]``."""
    transitions, leader_reward, features, eta = (
        model.transitions,
        model.leader_reward,
        model.features,
        model.eta,
    )
    H, S, A, B = features.shape[:4]
    M, d = theta.shape
    shared_p = transitions.ndim == 5
    p_seq = transitions.reshape(H, S * A * B, S) if shared_p else jnp.moveaxis(transitions, 1, 0)
    r_seq = leader_reward[..., None] if leader_reward.ndim == 4 else leader_reward
    phi_seq = features.reshape(H, S * A * B, d)
    scaled_theta_t = eta * theta.T  # [d, M]

    def q_step(v_next, inputs):  # v_next [S, M]
        p_h, r_h, phi_h = inputs
        z = _draw_utilities(phi_h, scaled_theta_t).reshape(S, A, B, M)
        e = jnp.exp(z - jnp.max(z, axis=2, keepdims=True))
        if shared_p:
            nxt = (p_h @ v_next).reshape(S, A, B, M)
        else:
            nxt = jnp.einsum("msabt,tm->sabm", p_h, v_next)
        return jnp.sum(e * (r_h + nxt), axis=2) / jnp.sum(e, axis=2)  # [S, A, M]

    v_end = jnp.zeros((S, M), dtype=jnp.result_type(theta.dtype, leader_reward.dtype))
    return greedy_backward(q_step, v_end, (p_seq, r_seq, phi_seq), action_axis=1)


@partial(jax.jit, static_argnames=("block_size",))
def plan_draws_arrays(model: Model, theta: Array, block_size: int = 1024) -> DrawPlans:
    """Backward induction (2a) for ``M`` draws at once against a myopic follower (§4).

    Args:
        model: the game's :class:`~bayes_qse.model.Model`; its ``transitions`` are
            ``[H,S,A,B,S]`` shared by all draws, or ``[M,H,S,A,B,S]`` one per draw, its
            ``leader_reward`` ``[H,S,A,B]`` shared or ``[M,H,S,A,B]`` one per draw.
        theta: ``[M,d]`` follower parameters, one per draw.
        block_size: draws planned together (a cache-size tuning constant, static): with
            shared transitions, ``M > block_size`` draws are split into equal blocks that run
            one after the other, which bounds the memory of each step's ``[S*A*B, block]``
            arrays.  On an idle 2-core machine (S=50, A=B=5, H=10, M=1000) one block was
            fastest: 113 ms, against 141/154/159 ms with blocks of 256/128/64.

    Draws are kept on the last (contiguous) axis and each step is fused: the utilities of
    step ``h`` for all draws are ``[S*A*B, d] x [d, M]`` (for small ``d`` written as ``d``
    fused multiply-adds, which XLA fuses with the softmax; a matrix product otherwise) and,
    with shared transitions, the next-state expectation is one product
    ``[S*A*B, S] x [S, M]``; the response ``nu_h = softmax_b(eta u_h)`` is never stored for
    all steps at once.
    Returns :class:`DrawPlans`.
    """
    M, d = theta.shape
    leader_reward = model.leader_reward
    per_draw_r = leader_reward.ndim == 5
    r_last = jnp.moveaxis(leader_reward, 0, -1) if per_draw_r else leader_reward
    n_blocks = -(-M // block_size)
    if n_blocks <= 1 or model.transitions.ndim == 6:
        q, v = _plan_draws_block(model.replace(leader_reward=r_last), theta)
    else:
        C = -(-M // n_blocks)
        pad = n_blocks * C - M
        th_blocks = jnp.pad(theta, ((0, pad), (0, 0))).reshape(n_blocks, C, d)
        if per_draw_r:
            r_pad = jnp.pad(r_last, [(0, 0)] * 4 + [(0, pad)])
            r_blocks = jnp.moveaxis(r_pad.reshape(*r_pad.shape[:4], n_blocks, C), 4, 0)
        else:
            r_blocks = jnp.broadcast_to(r_last, (n_blocks, *r_last.shape))

        def block(inputs):
            th_b, r_b = inputs
            return _plan_draws_block(model.replace(leader_reward=r_b), th_b)

        qb, vb = jax.lax.map(block, (th_blocks, r_blocks))  # [n, H,S,A,C], [n, H+1,S,C]
        q = jnp.moveaxis(qb, 0, -2).reshape(*qb.shape[1:-1], n_blocks * C)[..., :M]
        v = jnp.moveaxis(vb, 0, -2).reshape(*vb.shape[1:-1], n_blocks * C)[..., :M]
    q = jnp.moveaxis(q, -1, 0)  # [M,H,S,A]
    v = jnp.moveaxis(v, -1, 0)  # [M,H+1,S]
    return DrawPlans(q, v, greedy_one_hot(q))


def plan_myopic(model: Model, theta: Array) -> tuple[Array, Array, Array]:
    """Backward induction (2a) against a myopic follower, batched over ``theta[..., d]``.

    Returns ``(Q[..., H,S,A], V[..., H+1,S], policy[..., H,S,A])``.  The work is done by the
    one batched myopic planner, :func:`plan_draws_arrays` (jit,
    draws on the contiguous axis, one matrix product per step for all draws); this wrapper
    only flattens and restores the batch axes of ``theta``.
    """
    theta = jnp.asarray(theta)
    batch = theta.shape[:-1]
    plans = plan_draws_arrays(model, theta.reshape(-1, theta.shape[-1]))
    return tuple(jnp.reshape(x, batch + x.shape[1:]) for x in plans)  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------
# Farsighted follower: gradient planner (2b)
# ---------------------------------------------------------------------------------------


def stepwise_policy(model: Model, theta: Array) -> Array:
    """A backward-induction heuristic against a farsighted follower (a start for (2b)).

    At each step, backwards, the leader best-responds to the follower's response given the
    leader's already-chosen later policy, ignoring that her choice at step ``h`` also changes the
    follower's values (hence responses) at earlier steps.  Exact for a myopic follower.
    Returns a one-hot ``policy[H,S,A]``.
    """

    eta = model.eta
    u = utility(model.features, theta)

    def step(carry, inputs):
        vf_next, vl_next = carry
        p_h, r_h, u_h = inputs
        qf = u_h + expected_next_value(p_h, vf_next)
        nu = quantal_response(qf, eta)
        ql = jnp.sum(nu * (r_h + expected_next_value(p_h, vl_next)), axis=-1)
        pi = greedy_one_hot(ql)
        wf = soft_value(qf, eta)
        return (jnp.sum(pi * wf, -1), jnp.sum(pi * ql, -1)), pi

    S = u.shape[1]
    zero = jnp.zeros((S,), dtype=u.dtype)
    pis, _ = backward_scan(step, (zero, zero), (model.transitions, model.leader_reward, u))
    return pis


@partial(jax.jit, static_argnames=("n_random", "n_steps"))
def plan_farsighted(
    model: Model,
    theta: Array,
    key: Array,
    n_random: int = 16,
    n_steps: int = 600,
    learning_rate: float = 0.1,
    start_temperature: float = 4.0,
    random_scale: float = 2.0,
) -> tuple[Array, Array, Array]:
    """Gradient ascent on softmax policies against a farsighted follower, eq. (2b).

    ``J(softmax(logits))`` is differentiated through the soft Bellman recursion (1) and the
    leader's policy evaluation.  Starts: the myopic-follower QSE, the step-wise heuristic
    (:func:`stepwise_policy`), the uniform policy and ``n_random`` Gaussian logits with standard
    deviation ``random_scale`` (wide enough to start near many corners of the simplex); each
    deterministic start enters as logits ``start_temperature * one_hot``.  The start policies
    themselves are also candidates, so the result is never worse than any of them.

    Returns ``(policies[K,H,S,A], values[K], best_index)`` over the ``K`` candidates.
    """
    model = model.replace(farsighted=True)
    dtype = jnp.result_type(model.features, theta)
    H, S, A, _ = model.leader_reward.shape

    def value(policy):
        return policy_value(policy, model, theta)

    def objective(logits):
        return value(jax.nn.softmax(logits, axis=-1))

    myopic_nu = myopic_response(model, theta)
    _, _, pi_myopic = backward_induction(model, myopic_nu)
    pi_step = stepwise_policy(model, theta)
    det_starts = jnp.stack([pi_myopic, pi_step])
    logits0 = jnp.concatenate(
        [
            start_temperature * det_starts,
            jnp.zeros((1, H, S, A), dtype=dtype),
            random_scale * jax.random.normal(key, (n_random, H, S, A), dtype=dtype),
        ]
    )
    final = jax.vmap(lambda x0: adam_ascent(objective, x0, n_steps, learning_rate))(logits0)
    policies = jnp.concatenate([jax.nn.softmax(final, axis=-1), det_starts])
    values = jax.vmap(value)(policies)
    return policies, values, tolerant_argmax(values)


def solve_qse(
    game: Any,
    theta: Any = None,
    *,
    seed: int = 0,
    n_random_starts: int = 16,
    n_steps: int = 600,
    learning_rate: float = 0.1,
) -> Solution:
    """Solve the leader's problem (the QSE policy), eq. (2).

    Myopic follower: exact backward induction (2a); the policy is deterministic.
    Farsighted follower: the gradient planner (2b) from several starts (``seed`` draws the
    random ones); ``optimisation_gap`` reports the spread of the optimised starts, which is
    not a bound on the distance to the optimum (``certified`` is False).

    ``theta`` defaults to the game's true parameter (plan against another model by passing it).
    """
    model = as_model(game)
    th = game.theta if theta is None else validate_theta(model, theta)
    if np.ndim(th) != 1:
        raise BayesQSEInputError("theta: solve_qse takes a single theta of shape (d,)")
    if not model.farsighted:
        q, v, pi = plan_myopic(model, th)
        value = float(model.initial_dist @ np.asarray(v[0]))
        return Solution(np.asarray(pi), value, np.asarray(q), np.array([value]), 0.0, True)
    policies, values, best = plan_farsighted(
        model,
        jnp.asarray(th),
        jax.random.PRNGKey(seed),
        n_random=n_random_starts,
        n_steps=n_steps,
        learning_rate=learning_rate,
    )
    values = np.asarray(values)
    optimised = values[: len(values) - 2]
    return Solution(
        np.asarray(policies[int(best)]),
        float(values[int(best)]),
        None,
        values,
        float(optimised.max() - optimised.min()),
        False,
    )


__all__ = [
    "DrawPlans",
    "Solution",
    "backward_induction",
    "evaluate_policy",
    "expected_next_value",
    "leader_value",
    "plan_farsighted",
    "plan_draws_arrays",
    "plan_myopic",
    "policy_value",
    "solve_qse",
    "stepwise_policy",
]
