"""Planning under uncertainty, docs/math.md §4 and eq. (6): per-draw planning for sampled
models, the quantile (and CVaR) rule, and optimistic / pessimistic
backward induction for bounded models.

:mod:`bayes_qse.planning` solves the leader's problem for one known model (eq. 2); this module
turns uncertainty about the follower (draws of ``theta``, a probability box or an ellipsoid)
and about the leader's own transitions and rewards (draws, or an L1 ball around an empirical
kernel) into sampled, optimistic or pessimistic plans.

Shapes: ``M`` draws, ``H`` horizon, ``S`` states, ``A`` leader actions, ``B`` follower actions,
``d`` feature dimension::

    transitions   [H,S,A,B,S]  (shared) or [M,H,S,A,B,S] (per draw)
    leader_reward [H,S,A,B]    (shared) or [M,H,S,A,B]   (per draw)
    nu_draws      [M,H,S,A,B]  follower responses, one per draw
    theta         [M,d]        follower parameters, one per draw

Every planner returns leader Q-values ``q[..., H,S,A]``, values ``v[..., H+1,S]`` (with
``v[..., H, :] = 0``) and the greedy one-hot ``policy[..., H,S,A]`` (the lowest action within
a round-off tolerance of the maximum, :func:`bayes_qse.ties.tolerant_argmax`).  The pure
functions take the :class:`~bayes_qse.model.Model` pytree whole (per-draw leader models as
leading axes on its ``transitions``/``leader_reward``), are ``jit``-compiled, and run the one
skeleton :func:`bayes_qse.backward.greedy_backward` with their own step operator;
:func:`plan_draws` is the validating wrapper that takes a ``Game``, ``GameSpec`` or ``Model``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._validate import as_float_array, check_distribution, check_shape, validate_theta
from .backward import backward_scan, greedy_backward
from .errors import BayesQSEInputError
from .follower import log_response, myopic_response, quantal_response
from .model import Model, as_model
from .planning import DrawPlans, evaluate_policy, plan_draws_arrays, plan_farsighted
from .ties import greedy_one_hot
from .types import Array


def _greedy(q: Array) -> Array:
    return greedy_one_hot(q)


def _next_value(p_h: Array, v_next: Array) -> Array:
    """``sum_s' P(s'|s,a,b) V(s')`` for ``p_h[..., S,A,B,S]`` and ``v_next[..., S]``."""
    return jnp.einsum("...sabt,...t->...sab", p_h, v_next)


# ---------------------------------------------------------------------------------------
# 1. Per-draw planning (sampled models)
# ---------------------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("n_random", "n_steps"))
def plan_draws_farsighted_arrays(
    model: Model,
    theta: Array,
    key: Array,
    n_random: int = 2,
    n_steps: int = 300,
    learning_rate: float = 0.1,
) -> DrawPlans:
    """The gradient planner (2b) for each of ``M`` draws against a farsighted follower.

    ``jax.vmap`` of :func:`bayes_qse.planning.plan_farsighted` over ``theta[M,d]`` (and over
    the leading draw axis of ``model.transitions``/``model.leader_reward`` when present: an
    ``in_axes`` pytree on the model).  Cost: per draw
    ``K = n_random + 3`` starts, each ``n_steps`` gradient steps through the soft Bellman
    recursion and policy evaluation, ``O(H S A B S)`` each, i.e. ``O(M K n_steps H S^2 A B)``
    in total -- roughly ``K * n_steps`` (about 1500 by default) times the myopic per-draw
    planner.  Returns :class:`DrawPlans` with each draw's best policy and its exact ``q``/``v``
    under that draw's model.
    """
    M = theta.shape[0]
    keys = jax.random.split(key, M)
    model = model.replace(farsighted=True)
    axes = model.replace(
        features=None,
        eta=None,
        transitions=0 if model.transitions.ndim == 6 else None,
        leader_reward=0 if model.leader_reward.ndim == 5 else None,
        initial_dist=None,
    )

    def one(m, th, k):
        policies, _, best = plan_farsighted(
            m, th, k, n_random=n_random, n_steps=n_steps, learning_rate=learning_rate
        )
        pi = policies[best]
        v, q = evaluate_policy(m, jnp.exp(log_response(th, m, pi)), pi)
        return q, v, pi

    q, v, pi = jax.vmap(one, in_axes=(axes, 0, 0))(model, theta, keys)
    return DrawPlans(q, v, pi)


def _validate_draw_model(arr: Any, name: str, M: int, tail: tuple) -> np.ndarray:
    x = as_float_array(arr, name)
    if x.shape == tail:
        return x
    check_shape(x, (M, *tail), name)
    return x


def plan_draws(
    game: Any,
    theta: Any,
    transitions: Any = None,
    leader_reward: Any = None,
    *,
    seed: int = 0,
    n_random_starts: int = 2,
    n_steps: int = 300,
) -> DrawPlans:
    """Plan for each of ``M`` posterior draws of the follower (and the leader's model), §4.

    Args:
        game: a ``Game``, planning-mode ``GameSpec`` or ``Model`` (features, eta, and the
            default transitions/rewards; ``farsighted`` selects the planner).
        theta: ``[M,d]`` draws of the follower parameter (``[d]`` is treated as ``M = 1``).
        transitions: optional ``[M,H,S,A,B,S]`` (or shared ``[H,S,A,B,S]``) draws of the
            leader's transition model; the game's transitions by default.
        leader_reward: optional ``[M,H,S,A,B]`` (or shared ``[H,S,A,B]``) reward draws.
        seed, n_random_starts, n_steps: for a farsighted follower only (gradient planner 2b).

    Returns:
        :class:`DrawPlans` ``(q[M,H,S,A], v[M,H+1,S], policy[M,H,S,A])``.
    """
    model = as_model(game)
    th = validate_theta(model, theta)
    if th.ndim == 1:
        th = th[None]
    M = th.shape[0]
    H, S, A, B = model.shape
    if transitions is not None:
        P = _validate_draw_model(transitions, "transitions", M, (H, S, A, B, S))
        check_distribution(P, "transitions", axis=-1)
        model = model.replace(transitions=P)
    if leader_reward is not None:
        r = _validate_draw_model(leader_reward, "leader_reward", M, (H, S, A, B))
        model = model.replace(leader_reward=r)
    if model.farsighted:
        return plan_draws_farsighted_arrays(
            model,
            jnp.asarray(th),
            jax.random.PRNGKey(seed),
            n_random=n_random_starts,
            n_steps=n_steps,
        )
    return plan_draws_arrays(model, jnp.asarray(th))


# ---------------------------------------------------------------------------------------
# 2. Quantile / CVaR rule, eq. (6)
# ---------------------------------------------------------------------------------------


def draw_quantile(x: Array, level: Array | float) -> Array:
    """The ``level`` quantile of ``x[M, ...]`` over the draw axis 0 (linear interpolation,
    NumPy's default ``method="linear"``).  ``level`` is a scalar in ``[0, 1]``."""
    M = x.shape[0]
    xs = jnp.sort(x, axis=0)
    pos = jnp.clip(level, 0.0, 1.0) * (M - 1)
    lo = jnp.clip(jnp.floor(pos).astype(jnp.int32), 0, M - 1)
    hi = jnp.minimum(lo + 1, M - 1)
    frac = pos - lo
    return xs[lo] * (1 - frac) + xs[hi] * frac


def draw_cvar(x: Array, level: Array | float) -> Array:
    """Conditional value at risk of the empirical distribution of ``x[M, ...]`` (axis 0).

    ``level < 0.5``: the lower-tail mean ``E[X | X <= q_level]`` over the lowest mass
    ``level`` (pessimism); ``level >= 0.5``: the upper-tail mean over the highest mass
    ``1 - level`` (optimism).  Each draw has mass ``1/M``; a draw on the tail boundary counts
    fractionally, so the value is continuous in ``level``; ``level`` 0 (1) gives the min (max).
    """
    M = x.shape[0]
    level = jnp.clip(level, 0.0, 1.0)
    upper = level >= 0.5
    mass = jnp.maximum(jnp.where(upper, 1.0 - level, level), 1e-12)
    xs = jnp.sort(x, axis=0)
    xs = jnp.where(upper, xs[::-1], xs)  # tail first
    i = jnp.arange(M, dtype=xs.dtype)
    w = jnp.clip(mass * M - i, 0.0, 1.0) / (mass * M)
    return jnp.tensordot(w, xs, axes=(0, 0))


@partial(jax.jit, static_argnames=("rule",))
def quantile_plan(
    model: Model, nu_draws: Array, level: Array | float, rule: str = "quantile"
) -> tuple[Array, Array, Array]:
    """Optimistic / pessimistic backward induction by the quantile rule, eq. (6).

    At each step ``h``, backwards, with the rule's value ``V_{h+1}[S]``::

        Q^m_h(s,a) = sum_b nu^m_h(b|s,a) [ r^m_h(s,a,b) + sum_s' P^m_h(s'|s,a,b) V_{h+1}(s') ]
        Q_h(s,a)   = quantile_level over m of Q^m_h(s,a)      (rule="quantile")
                     or CVaR_level over m (rule="cvar", see :func:`draw_cvar`)
        V_h(s)     = max_a Q_h(s,a)

    Args:
        model: its ``transitions`` ``[H,S,A,B,S]`` (shared) or ``[M,H,S,A,B,S]`` (per-draw
            leader transitions) and ``leader_reward`` ``[H,S,A,B]`` or ``[M,H,S,A,B]``.
        nu_draws: ``[M,H,S,A,B]`` follower responses, one per posterior draw.
        level: scalar in ``[0,1]`` or a per-step schedule ``[H]`` (> 0.5 optimistic, < 0.5
            pessimistic).
        rule: ``"quantile"`` or ``"cvar"``.

    Returns ``(q[H,S,A], v[H+1,S], policy[H,S,A])``.  With one draw the rule (any level) is
    exact backward induction (2a) on that draw.
    """
    if rule not in ("quantile", "cvar"):
        raise BayesQSEInputError(f"rule: expected 'quantile' or 'cvar', got {rule!r}")
    statistic = draw_quantile if rule == "quantile" else draw_cvar
    H, S = nu_draws.shape[1], nu_draws.shape[2]
    levels = jnp.broadcast_to(jnp.asarray(level, dtype=nu_draws.dtype), (H,))
    transitions, leader_reward = model.transitions, model.leader_reward
    p_seq = transitions if transitions.ndim == 5 else jnp.moveaxis(transitions, 1, 0)
    r_seq = leader_reward if leader_reward.ndim == 4 else jnp.moveaxis(leader_reward, 1, 0)
    nu_seq = jnp.moveaxis(nu_draws, 1, 0)

    def q_step(v_next, inputs):
        p_h, r_h, nu_h, lev = inputs
        w = r_h + jnp.einsum("...sabt,t->...sab", p_h, v_next)
        q_draws = jnp.sum(nu_h * w, axis=-1)  # [M,S,A]
        return statistic(q_draws, lev)

    v_end = jnp.zeros((S,), dtype=nu_draws.dtype)
    q, v = greedy_backward(q_step, v_end, (p_seq, r_seq, nu_seq, levels))
    return q, v, _greedy(q)


# ---------------------------------------------------------------------------------------
# 3. Bounded models: probability box, L1 ball, ellipsoid
# ---------------------------------------------------------------------------------------


def box_extreme(
    w: Array, lower: Array, upper: Array, maximize: bool | Array
) -> tuple[Array, Array]:
    """``max`` (or ``min``) of ``sum_b nu_b w_b`` over ``{lower <= nu <= upper} ∩ simplex``.

    Solved exactly by sorting: start from ``lower`` and pour the remaining mass
    ``1 - sum(lower)`` into the coordinates in decreasing (increasing, to minimise) order of
    ``w``, each up to its ``upper``.  Shapes broadcast over ``[..., B]``; the box must meet the
    simplex (``sum(lower) <= 1 <= sum(upper)``, ``0 <= lower <= upper``).

    Returns ``(value[...], nu[..., B])``.
    """
    w, lower, upper = jnp.broadcast_arrays(w, lower, upper)
    sign = jnp.where(maximize, 1.0, -1.0).astype(w.dtype)
    order = jnp.argsort(-sign * w, axis=-1)  # best first
    gap = jnp.take_along_axis(upper - lower, order, axis=-1)
    rest = 1.0 - jnp.sum(lower, axis=-1, keepdims=True)
    poured_before = jnp.cumsum(gap, axis=-1) - gap
    extra_sorted = jnp.clip(rest - poured_before, 0.0, gap)
    extra = jnp.take_along_axis(extra_sorted, jnp.argsort(order, axis=-1), axis=-1)
    nu = lower + extra
    return jnp.sum(nu * w, axis=-1), nu


def l1_extreme(
    p_hat: Array, radius: Array, v: Array, maximize: bool | Array
) -> tuple[Array, Array]:
    """``max`` (or ``min``) of ``sum_s' p(s') v(s')`` over ``{||p - p_hat||_1 <= radius} ∩
    simplex`` (extended value iteration's inner problem, UCRL2, Jaksch et al. 2010) and, for a
    signed ``p_hat`` (LSVI's least-squares kernel), over docs/math.md eq. (6h)::

        Q(p_hat, r) = {p : sum p = sum p_hat, ||p - p_hat||_1 <= r, p >= min(p_hat, 0)}

    (only positive mass moves; the simplex ∩ ball for a distribution).  ``p_hat`` is in ``Q``:
    the ``min`` is at most, the ``max`` at least ``p_hat . v``; ``radius = 0`` gives ``p_hat``.

    Exact by sorting: move ``delta`` onto the best next state from the worst positive entries
    first; ``delta = min(radius/2, 1 - p_hat(best))`` when ``p_hat >= 0`` (the simplex's,
    kept bit for bit), ``min(radius/2, the other positive entries' sum)`` otherwise.
    ``p_hat[..., S]``, ``radius[...]`` (broadcast), ``v[..., S]`` (broadcast against
    ``p_hat``).  Returns ``(value[...], p[..., S])``.
    """
    v = jnp.broadcast_to(v, p_hat.shape)
    sign = jnp.where(maximize, 1.0, -1.0).astype(p_hat.dtype)
    order = jnp.argsort(sign * v, axis=-1)  # worst first, best last
    p_sorted = jnp.take_along_axis(p_hat, order, axis=-1)
    best = p_sorted[..., -1]
    # only positive mass moves: a negative entry is never "taken from" (which would add mass
    # to it); on a distribution ``movable == others`` and every line below is the simplex's
    others = p_sorted[..., :-1]
    movable = jnp.maximum(others, 0.0)
    signed = jnp.any(p_hat < 0.0, axis=-1)
    room = jnp.where(signed, jnp.sum(movable, axis=-1), jnp.maximum(1.0 - best, 0.0))
    delta = jnp.minimum(jnp.maximum(radius, 0.0) / 2.0, room)
    taken_before = jnp.cumsum(movable, axis=-1) - movable
    removed = jnp.clip(delta[..., None] - taken_before, 0.0, movable)
    new_sorted = jnp.concatenate([others - removed, (best + delta)[..., None]], axis=-1)
    p = jnp.take_along_axis(new_sorted, jnp.argsort(order, axis=-1), axis=-1)
    return jnp.sum(p * v, axis=-1), p


def value_range_bounds(horizon: int, reward_range: tuple[float, float]) -> tuple[Array, Array]:
    """``(low[H], high[H])`` with ``low_h = (H - h) r_min``, ``high_h = (H - h) r_max``: the range
    of the value from step ``h`` (0-based), the ``value_bounds`` of :func:`box_plan` and
    :func:`box_policy_value` (docs/math.md eq. 5c)."""
    steps = (horizon - jnp.arange(horizon)).astype(jnp.float64)
    return steps * reward_range[0], steps * reward_range[1]


def _truncate(w: Array, bounds_h: tuple[Array, Array] | None) -> Array:
    """``clip(W_h, low_h, high_h)``: LSVI-UCB's / PEVI's truncation of the target to the range
    of the value from step ``h`` (docs/math.md eq. 5c); ``W_h`` unchanged without bounds."""
    return w if bounds_h is None else jnp.clip(w, bounds_h[0], bounds_h[1])


@jax.jit
def box_plan(
    model: Model,
    nu_lower: Array,
    nu_upper: Array,
    optimistic: bool | Array,
    l1_radius: Array | None = None,
    value_bounds: tuple[Array, Array] | None = None,
) -> tuple[Array, Array, Array]:
    """Optimistic (pessimistic) backward induction when the follower's response at each
    ``(h,s,a)`` lies in a probability box and, optionally, the leader's transition kernel in
    an L1 ball (docs/math.md §4; extended value iteration)::

        W_h(s,a,b) = r_h(s,a,b) + ext_{p in ball(p_hat_h(.|s,a,b), radius)} p . V_{h+1}
        Q_h(s,a)   = ext_{nu in box_h(s,a) ∩ simplex} sum_b nu_b W_h(s,a,b)
        V_h(s)     = max_a Q_h(s,a)

    where ``ext`` is ``max`` when ``optimistic`` else ``min``.  With ``value_bounds`` the
    target is clipped first, ``W_h <- clip(W_h, low_h, high_h)`` (least-squares value
    iteration's truncation of ``Q_h`` to the range of the value from step ``h``, Jin et al.
    2020; docs/math.md eq. 5c): a kernel estimate whose rows are not distributions, plus a
    bonus, can otherwise carry values past any value the game can give.

    Args:
        model: its ``transitions`` ``[H,S,A,B,S]`` the (known or nominal) kernel, the ball's
            centre when ``l1_radius`` is given; its ``leader_reward`` ``[H,S,A,B]`` (add a
            reward bonus/penalty there for reward uncertainty).
        nu_lower, nu_upper: ``[H,S,A,B]`` the response box.
        optimistic: ``True`` for optimism (online), ``False`` for pessimism (offline).
        l1_radius: optional ``[H,S,A,B]`` (or broadcastable) L1 radius.
        value_bounds: optional ``(low[H], high[H])`` bounds on ``W_h``.

    Returns ``(q[H,S,A], v[H+1,S], policy[H,S,A])``.
    """
    leader_reward = model.leader_reward
    S = leader_reward.shape[1]
    radius = None if l1_radius is None else jnp.broadcast_to(l1_radius, leader_reward.shape)

    def q_step(v_next, inputs):
        p_h, r_h, lo_h, up_h, rad_h, bounds_h = inputs
        if rad_h is None:
            nxt = _next_value(p_h, v_next)
        else:
            nxt, _ = l1_extreme(p_h, rad_h, v_next, optimistic)
        q, _ = box_extreme(_truncate(r_h + nxt, bounds_h), lo_h, up_h, optimistic)
        return q

    v_end = jnp.zeros((S,), dtype=leader_reward.dtype)
    xs = (model.transitions, leader_reward, nu_lower, nu_upper, radius, value_bounds)
    q, v = greedy_backward(q_step, v_end, xs)
    return q, v, _greedy(q)


def validate_box(nu_lower: Any, nu_upper: Any, shape: tuple, atol: float = 1e-9) -> tuple:
    """Check a response box ``[H,S,A,B]`` meets the simplex; returns float64 arrays or raises
    :class:`BayesQSEInputError` naming ``nu_lower`` / ``nu_upper``."""
    lo = as_float_array(nu_lower, "nu_lower")
    up = as_float_array(nu_upper, "nu_upper")
    check_shape(lo, shape, "nu_lower")
    check_shape(up, shape, "nu_upper")
    if np.any(lo < -atol) or np.any(up > 1 + atol):
        raise BayesQSEInputError("nu_lower/nu_upper: bounds must lie in [0, 1]")
    if np.any(lo > up + atol):
        raise BayesQSEInputError("nu_lower: exceeds nu_upper somewhere")
    if np.any(lo.sum(-1) > 1 + atol):
        raise BayesQSEInputError("nu_lower: sums to more than 1 at some (h,s,a)")
    if np.any(up.sum(-1) < 1 - atol):
        raise BayesQSEInputError("nu_upper: sums to less than 1 at some (h,s,a)")
    return lo, up


# ---------------------------------------------------------------------------------------
# 3b. Ellipsoid (Wald set) image: first-order bonus and a projected-ascent check
# ---------------------------------------------------------------------------------------


@jax.jit
def ellipsoid_bonus_plan(
    model: Model,
    theta_hat: Array,
    cov: Array,
    beta: Array | float,
    optimistic: bool | Array,
) -> tuple[Array, Array, Array]:
    """Optimistic (pessimistic) backward induction over the image of the Wald ellipsoid
    ``{theta : (theta - theta_hat)' cov^{-1} (theta - theta_hat) <= beta}`` (docs/math.md §2, §4),
    to first order in ``theta - theta_hat`` (the paper's linear-myopic bonus).

    At each ``(h,s,a)``, with ``W_b = r_h(s,a,b) + P_h V_{h+1}`` and ``nu = nu_{theta_hat}``,
    ``grad_theta E_nu[W] = eta * sum_b nu_b (W_b - E_nu W) phi_h(s,a,b)`` and::

        Q_h(s,a) = E_nu[W] +/- sqrt(beta) * ||grad_theta E_nu[W]||_cov

    clipped to ``[min_b W_b, max_b W_b]`` (the range of any response).  ``beta`` is the
    squared radius of the ellipsoid as in docs/math.md §2 (e.g. a chi-square quantile), so
    ``sqrt(beta) * ||g||_cov`` is the exact maximum of ``g . (theta - theta_hat)`` over it.

    Args:
        model: the :class:`~bayes_qse.model.Model` (transitions, leader reward, features, eta).
        theta_hat: ``[d]``; cov: ``[d,d]`` (the inverse observed Fisher information);
        beta: squared radius >= 0; optimistic: bool.

    Returns ``(q[H,S,A], v[H+1,S], policy[H,S,A])``.
    """
    transitions, leader_reward, features, eta = (
        model.transitions,
        model.leader_reward,
        model.features,
        model.eta,
    )
    S = leader_reward.shape[1]
    nu = myopic_response(model, theta_hat)
    sign = jnp.where(optimistic, 1.0, -1.0)
    radius = jnp.sqrt(jnp.maximum(beta, 0.0))

    def q_step(v_next, inputs):
        p_h, r_h, phi_h, nu_h = inputs
        w = r_h + _next_value(p_h, v_next)  # [S,A,B]
        mean = jnp.sum(nu_h * w, axis=-1)
        g = eta * jnp.einsum("sab,sabd->sad", nu_h * (w - mean[..., None]), phi_h)
        norm = jnp.sqrt(jnp.maximum(jnp.einsum("sad,de,sae->sa", g, cov, g), 0.0))
        return jnp.clip(mean + sign * radius * norm, jnp.min(w, -1), jnp.max(w, -1))

    v_end = jnp.zeros((S,), dtype=leader_reward.dtype)
    q, v = greedy_backward(q_step, v_end, (transitions, leader_reward, features, nu))
    return q, v, _greedy(q)


@partial(jax.jit, static_argnames=("n_steps",))
def ellipsoid_exact_plan(
    model: Model,
    theta_hat: Array,
    cov: Array,
    beta: Array | float,
    optimistic: bool | Array,
    n_steps: int = 200,
) -> tuple[Array, Array, Array]:
    """The check of :func:`ellipsoid_bonus_plan` without linearisation, for small cases.

    At each ``(h,s,a)`` it maximises (minimises) ``sum_b softmax_b(eta phi_h(s,a,.) . theta)
    W_b`` over the ellipsoid ``{(theta - theta_hat)' cov^{-1} (theta - theta_hat) <= beta}``
    by projected gradient ascent in whitened coordinates ``theta = theta_hat + L z``
    (``cov = L L'``, ``||z|| <= sqrt(beta)``), from two starts (the centre and the first-order
    optimum on the boundary), with normalised steps of decreasing length.  The objective is not
    concave, so this is a local search: a check on small problems, not a production planner.

    Returns ``(q[H,S,A], v[H+1,S], policy[H,S,A])``.
    """
    transitions, leader_reward, features, eta = (
        model.transitions,
        model.leader_reward,
        model.features,
        model.eta,
    )
    S = leader_reward.shape[1]
    d = theta_hat.shape[0]
    sign = jnp.where(optimistic, 1.0, -1.0)
    radius = jnp.sqrt(jnp.maximum(beta, 0.0))
    # L L' = cov via eigh (cov may be singular: a pseudo-inverse Fisher)
    evals, evecs = jnp.linalg.eigh(cov)
    L = evecs * jnp.sqrt(jnp.maximum(evals, 0.0))

    def objective(z, phi, w):  # phi [B,d], w [B]
        nu = quantal_response(phi @ (theta_hat + L @ z), eta)
        return sign * jnp.sum(nu * w)

    grad = jax.grad(objective)

    def project(z):
        n = jnp.linalg.norm(z)
        return jnp.where(n > radius, z * radius / jnp.maximum(n, 1e-300), z)

    def ascend(z0, phi, w):
        def body(z, t):
            g = grad(z, phi, w)
            step = radius / (2.0 * jnp.sqrt(t + 1.0))
            z_new = project(z + step * g / jnp.maximum(jnp.linalg.norm(g), 1e-300))
            better = objective(z_new, phi, w) >= objective(z, phi, w)
            return jnp.where(better, z_new, z), None

        z, _ = jax.lax.scan(body, z0, jnp.arange(n_steps, dtype=theta_hat.dtype))
        return objective(z, phi, w)

    def one(phi, w):
        g0 = grad(jnp.zeros((d,), theta_hat.dtype), phi, w)
        z_fo = project(radius * g0 / jnp.maximum(jnp.linalg.norm(g0), 1e-300))
        best = jnp.maximum(ascend(jnp.zeros_like(z_fo), phi, w), ascend(z_fo, phi, w))
        return sign * best

    flat = jax.vmap(jax.vmap(one))  # over (s, a)

    def q_step(v_next, inputs):
        p_h, r_h, phi_h = inputs
        w = r_h + _next_value(p_h, v_next)
        return flat(phi_h, w)

    v_end = jnp.zeros((S,), dtype=leader_reward.dtype)
    q, v = greedy_backward(q_step, v_end, (transitions, leader_reward, features))
    return q, v, _greedy(q)


def check_ellipsoid(theta_hat: Any, cov: Any, beta: Any) -> tuple:
    """Validate ``(theta_hat[d], cov[d,d], beta >= 0)``; raises naming the field."""
    th = as_float_array(theta_hat, "theta_hat", 1)
    c = as_float_array(cov, "cov", 2)
    check_shape(c, (th.shape[0], th.shape[0]), "cov")
    if not np.allclose(c, c.T, atol=1e-8 * max(1.0, float(np.abs(c).max()))):
        raise BayesQSEInputError("cov: must be symmetric")
    b = float(as_float_array(beta, "beta", 0))
    if b < 0:
        raise BayesQSEInputError(f"beta: must be >= 0, got {b}")
    return th, c, b


# ---------------------------------------------------------------------------------------
# 4. Robust policy evaluation: the worst-case value of a fixed policy over a bounded model
# ---------------------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("optimistic",))
def box_policy_value(
    policy: Array,
    model: Model,
    nu_lower: Array,
    nu_upper: Array,
    optimistic: bool,
    l1_radius: Array | None = None,
    value_bounds: tuple[Array, Array] | None = None,
) -> Array:
    """The best-case (``optimistic``) or worst-case value ``V[H+1,S]`` of a fixed
    ``policy[H,S,A]`` over a bounded model, the evaluation twin of :func:`box_plan`:
    transitions in L1 balls around ``model.transitions`` (radius ``l1_radius[H,S,A,B]``; the
    kernel itself without), reward ``model.leader_reward`` (the interval's end) and the
    follower's response in the box ``[nu_lower, nu_upper]``::

        W_h(s,a,b) = r_h(s,a,b) + ext_{p in ball} p . V_{h+1}
        V_h(s)     = sum_a pi_h(a|s) ext_{nu in box ∩ simplex} sum_b nu_b W_h(s,a,b)

    (docs/math.md §4, eq. 6g; ``ext`` is ``max`` when ``optimistic`` else ``min``).  If the true
    model lies in the set, ``V_h >= V^pi_h`` (``<=`` pessimistic) everywhere by backward
    induction: each step's extreme is at least (at most) the true model's value.
    ``value_bounds = (low[H], high[H])`` clips each ``W_h`` as :func:`box_plan` does (PEVI's
    truncation; still a bound when the true ``W_h`` lies in that range).
    """
    p_hat = model.transitions
    S = p_hat.shape[1]

    def step(v_next, inputs):
        pi_h, p_h, rad_h, r_h, lo_h, up_h, bounds_h = inputs
        if rad_h is None:
            nxt = _next_value(p_h, v_next)
        else:
            nxt, _ = l1_extreme(p_h, rad_h, v_next, optimistic)
        q, _ = box_extreme(_truncate(r_h + nxt, bounds_h), lo_h, up_h, optimistic)
        return jnp.sum(pi_h * q, axis=-1), None

    v_end = jnp.zeros((S,), dtype=p_hat.dtype)
    xs = (policy, p_hat, l1_radius, model.leader_reward, nu_lower, nu_upper, value_bounds)
    _, values = backward_scan(step, v_end, xs)
    return values


__all__ = [
    "box_extreme",
    "box_plan",
    "check_ellipsoid",
    "draw_cvar",
    "draw_quantile",
    "ellipsoid_bonus_plan",
    "ellipsoid_exact_plan",
    "l1_extreme",
    "plan_draws",
    "box_policy_value",
    "plan_draws_farsighted_arrays",
    "quantile_plan",
    "validate_box",
    "value_range_bounds",
]
