"""The confidence set of the paper's frequentist learners, and planning on it in both directions
(docs/math.md §4, "One confidence set", eq. 6g).

``mle-optimistic`` (online) and ``mle-pessimistic`` (offline) plan on one set of games, built
once from the statistics both already keep (:func:`confidence_set`):

- the follower's set (:class:`FollowerSet`): the Wald ellipsoid ``{(theta - center)' I (theta -
  center) <= beta}`` at the chi-square or the paper's radius (:func:`follower_radius`, eq. 6f),
  within the class ``||theta|| <= theta_bound``, and, for a myopic follower, the box that holds
  every response of the set (eq. 6b; the likelihood-ratio set's certified outer box, eq. 6e);
- the leader's set: L1 balls of radius ``l1_radius`` around her estimated kernel ``P_hat``
  (Weissman), reward intervals ``r_hat +/- reward_bonus`` (Hoeffding / empirical Bernstein,
  eq. 5; LSVI's target width, eq. 5c) clipped to her stated reward range, and the range of the
  value from each step (``value_bounds``, LSVI-UCB / PEVI's truncation, eq. 5c);
- the initial distribution's L1 ball around the first-state frequencies (or the stated one).

On it: :func:`plan_on_set` (backward induction over the whole set, eq. 6c, or the first-order
bonus), :func:`value_on_set` (the extreme value of a fixed policy over the set, eq. 6g) and,
for a farsighted follower, :func:`joint_optimistic_plan` (eq. 6d).  ``optimistic=True`` is the
online side (an upper bound), ``False`` the offline side (a certified lower bound), whenever the
true game lies in the set.

Shapes: ``H`` steps, ``S`` states, ``A`` leader actions, ``B`` follower actions, ``d`` features.
``spec`` arguments are what the leader knows (a :class:`~bayes_qse.learners.common.GameSpec`:
``features``, ``eta``, ``farsighted``, ``reward_range``, ``initial_dist``, ``known_model``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .errors import BayesQSEInputError
from .follower import log_response
from .leader_model import KnownModel, LinearLSVI, weissman_l1_radius
from .model import Model
from .optim import adam_ascent
from .planning import evaluate_policy
from .robust_planning import (
    box_plan,
    box_policy_value,
    ellipsoid_bonus_plan,
    l1_extreme,
    value_range_bounds,
)
from .sets import (
    chi2_radius_table,
    identified_split,
    lr_response_box,
    theory_radius_jax,
    wald_response_box,
)
from .types import Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False)
class FollowerSet:
    """The follower's set: ``{theta : (theta - center)' precision (theta - center) <= beta,
    ||theta|| <= theta_bound}`` (docs/math.md eq. 4, 6f), unbounded along the null space of
    ``precision`` but for the class.

    Attributes:
        center: ``[d]`` (the MLE; zeros where the set is the class alone).
        precision: ``[d,d]`` the observed Fisher information (zeros: the class alone).
        beta: squared radius.
        theta_bound: the class radius ``B`` (``inf``: no class bound).
        nu_lower, nu_upper: ``[H,S,A,B]`` a box holding the myopic response of every member
            (eq. 6b, 6e); ``None`` for a farsighted follower (its response depends on the
            policy: :func:`joint_optimistic_plan` searches the set itself).
    """

    center: Any
    precision: Any
    beta: Any
    theta_bound: Any
    nu_lower: Any = None
    nu_upper: Any = None


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False)
class ConfidenceSet:
    """The set of games the frequentist learners plan on (module docstring; docs/math.md
    eq. 6g).

    Attributes:
        follower: the :class:`FollowerSet`.
        nominal: the centre :class:`~bayes_qse.model.Model`: the follower's ``features`` and
            ``eta``, the leader's estimates ``transitions = P_hat[H,S,A,B,S]``,
            ``leader_reward = r_hat[H,S,A,B]`` and ``initial_dist = rho_hat[S]``.
        reward_bonus: ``[H,S,A,B]`` half-width of the reward interval (for LSVI, of the
            regression target ``r + V_{h+1}``, eq. 5c).
        l1_radius: ``[H,S,A,B]`` L1 radius of the transition balls; ``None`` where the kernel
            has no ball (known, or LSVI's least-squares kernel).
        initial_radius: L1 radius of the initial distribution's ball; ``None`` when stated.
        value_bounds: ``(low[H], high[H])`` the range each target ``W_h`` is clipped to
            (LSVI-UCB / PEVI), or ``None``.
        reward_range: static; ``(low, high)`` the reward interval is clipped to, or ``None``
            (known rewards; LSVI's interval is on the target, not the reward).
    """

    follower: FollowerSet
    nominal: Model
    reward_bonus: Any
    l1_radius: Any = None
    initial_radius: Any = None
    value_bounds: Any = None
    reward_range: tuple[float, float] | None = dataclasses.field(
        default=None, metadata=dict(static=True)
    )


# ---------------------------------------------------------------------------------------
# Building the set from statistics
# ---------------------------------------------------------------------------------------


def confidence_split(spec: Any, delta: float) -> float:
    """Each part's share of ``delta`` by a union bound: equal among the follower's set, the
    leader's rewards and transitions (when she learns them) and the initial distribution (when
    not stated); each tabular part is further split over its cells by its bonus."""
    parts = 1 + (0 if spec.known_model else 2) + (0 if spec.initial_dist is not None else 1)
    return delta / parts


def follower_radius(
    spec: Any, radius: str, level: float, theta_bound: float = 10.0
) -> Callable[[Array, Array, Array], Array]:
    """``beta(rank, n_obs, t)``: the squared radius of the follower's set at ``level`` after
    ``t`` episodes (``n_obs`` follower observations).

    ``radius="chi2"``: the Wald set's ``chi2_rank(level)``, the degrees of freedom being the
    Fisher rank (the directions the data identify; docs/math.md eq. 4), a table lookup so that
    ``rank`` may be traced; rank 0 gives 0.  ``radius="theory"``: the likelihood-ratio set's
    finite-sample radius (eq. 6f, :func:`bayes_qse.sets.theory_radius`) in the class
    ``||theta|| <= theta_bound``, with the Lipschitz constant ``2 eta max ||phi||`` of one
    log-response and the union bound over episodes ``delta_t = (1 - level) / (t (t + 1))``.
    """
    d = int(np.shape(spec.features)[-1])
    if radius == "chi2":
        table = jnp.asarray(chi2_radius_table(d, level))
        return lambda rank, n_obs, t: table[rank]
    phi = np.asarray(spec.features)
    lipschitz = 2.0 * float(spec.eta) * float(np.sqrt((phi**2).sum(-1)).max())

    def beta(rank, n_obs, t):
        t = jnp.maximum(jnp.asarray(t, jnp.float64), 1.0)
        delta_t = (1.0 - level) / (t * (t + 1.0))
        return theory_radius_jax(d, n_obs, delta_t, theta_bound, lipschitz)

    return beta


def follower_set(
    spec: Any,
    theta_hat: Array,
    precision: Array,
    beta: Array,
    *,
    likelihood_ratio: bool = False,
    theta_bound: Any = jnp.inf,
    response_counts: Array | None = None,
) -> FollowerSet:
    """The :class:`FollowerSet` around a fit ``(theta_hat[d], precision[d,d])`` at squared
    radius ``beta``.

    The Wald set (default), whose myopic response box is
    :func:`bayes_qse.sets.wald_response_box` (eq. 6b; not intersected with the class: looser,
    still valid).  ``likelihood_ratio=True``: the likelihood-ratio set ``{L(theta) >=
    L(theta_hat) - beta / 2}`` within the class ``||theta|| <= theta_bound``, planned over its
    certified outer box (:func:`bayes_qse.sets.lr_response_box` on a myopic follower's
    ``response_counts[H,S,A,B]``, eq. 6e).  A farsighted follower has no box, and its
    likelihood-ratio set is replaced by the whole class, which contains it (no outer
    ellipsoid of a farsighted LR set is certified: its log-odds are not linear in ``theta``).
    """
    features = jnp.asarray(spec.features)
    if spec.farsighted:
        if not likelihood_ratio:
            return FollowerSet(theta_hat, precision, beta, theta_bound)
        zeros = (jnp.zeros_like(theta_hat), jnp.zeros_like(precision))
        return FollowerSet(*zeros, beta, theta_bound)
    if not likelihood_ratio:
        lower, upper = wald_response_box(features, spec.eta, theta_hat, precision, beta)
    elif response_counts is None:
        raise BayesQSEInputError("response_counts: a myopic follower's LR set needs them")
    else:
        lower, upper, _ = lr_response_box(
            features, spec.eta, response_counts, theta_hat, beta, theta_bound
        )
    return FollowerSet(theta_hat, precision, beta, theta_bound, lower, upper)


def confidence_set(
    spec: Any,
    follower: FollowerSet,
    leader: Any,
    leader_stats: Any,
    first_state_counts: Array,
    delta: float,
) -> ConfidenceSet:
    """The :class:`ConfidenceSet` from statistics: the follower's set, the leader's model
    ``leader`` (a :class:`~bayes_qse.leader_model.LeaderModel`: known, empirical with bonuses,
    or LSVI) with its statistics ``leader_stats``, and the episodes' ``first_state_counts[S]``,
    each of the leader's parts at level ``1 - delta`` (:func:`confidence_split`).

    Tabular leader: ``P_hat``, ``r_hat`` and the bonus of :class:`EmpiricalBonusModel` (Weissman
    L1 radius, Hoeffding / Bernstein reward width, each over its cells), the reward interval
    clipped to ``spec.reward_range``.  LSVI: the target width ``(H - h)(high - low) b_h``
    (eq. 5c), no transition ball, the value range per step.  Known: zero width, no ball.
    Initial distribution: the stated one, or the first-state frequencies (uniform before any
    episode) and Weissman's L1 radius at ``delta``.  Pure; ``jit``-able in the statistics.
    """
    H, S = np.shape(spec.features)[:2]
    lo, hi = spec.reward_range
    p_hat, r_hat = leader.mean(leader_stats)
    bonus = leader.bonus(leader_stats, delta)
    reward_bonus, l1_radius, value_bounds, clip = bonus.reward, None, None, None
    if isinstance(leader, LinearLSVI):
        span = (H - jnp.arange(H)) * (hi - lo)
        reward_bonus = span[:, None, None, None] * bonus.reward
        value_bounds = value_range_bounds(H, spec.reward_range)
    elif not isinstance(leader, KnownModel):
        l1_radius, clip = bonus.l1_radius, (lo, hi)
    if spec.initial_dist is not None:
        rho, rho_radius = jnp.asarray(spec.initial_dist), None
    elif isinstance(first_state_counts, np.ndarray):
        # NumPy counts (built eagerly, offline): NumPy's exact quotients, as published; XLA
        # divides by a scalar as a product with its reciprocal (3/5 -> 0.6000000000000001)
        n = float(first_state_counts.sum())
        rho = first_state_counts / n if n > 0 else np.full(S, 1.0 / S)
        rho_radius = weissman_l1_radius(jnp.asarray(n), S, delta)
    else:
        n = jnp.sum(first_state_counts)
        rho = jnp.where(n > 0, first_state_counts / jnp.maximum(n, 1.0), 1.0 / S)
        rho_radius = weissman_l1_radius(n, S, delta)
    nominal = Model(
        jnp.asarray(spec.features), spec.eta, p_hat, r_hat, rho, farsighted=spec.farsighted
    )
    return ConfidenceSet(follower, nominal, reward_bonus, l1_radius, rho_radius, value_bounds, clip)


# ---------------------------------------------------------------------------------------
# Extremes over the leader's parts
# ---------------------------------------------------------------------------------------


def reward_bound(cs: ConfidenceSet, optimistic: bool) -> Array:
    """``[H,S,A,B]`` the upper (``optimistic``) or lower end of the reward interval,
    ``min(r_hat + bonus, high)`` / ``max(r_hat - bonus, low)`` (unclipped without a range)."""
    r_hat = cs.nominal.leader_reward
    if optimistic:
        r = r_hat + cs.reward_bonus
        return r if cs.reward_range is None else jnp.minimum(r, cs.reward_range[1])
    r = r_hat - cs.reward_bonus
    return r if cs.reward_range is None else jnp.maximum(r, cs.reward_range[0])


def folded_model(cs: ConfidenceSet, optimistic: bool) -> Model:
    """The nominal model with the leader's own uncertainty folded into her reward, for the
    planners that take one model (first-order bonus, farsighted joint ascent): ``r_hat +
    bonus + (l1_radius / 2) span_{h+1}`` (optimistic; the reward end not clipped to the
    range) or ``max(r_hat - bonus, low) - (l1_radius / 2) span_{h+1}``, ``span_{h+1} = (H - 1 -
    h)(high - low)`` the range of the value from step ``h + 1``: since ``p . V`` moves by at
    most ``(radius / 2) span(V)`` over an L1 ball, ``r + P_hat V`` then bounds ``r + P V`` over
    the leader's set.  Both ends are as the published learners computed them."""
    r_hat = cs.nominal.leader_reward
    r = reward_bound(cs, False) if not optimistic else r_hat + cs.reward_bonus
    if cs.l1_radius is not None:
        H = r_hat.shape[0]
        lo, hi = cs.reward_range
        span_next = (H - 1 - jnp.arange(H)) * (hi - lo)
        shift = 0.5 * span_next[:, None, None, None] * cs.l1_radius
        r = r + shift if optimistic else r - shift
    return cs.nominal.replace(leader_reward=r)


def _ball(cs: ConfidenceSet, optimistic: bool) -> Array | None:
    """The L1 radius the box planner and evaluation use: the set's; on the pessimistic side,
    where the kernel has no ball, zeros (``mle-pessimistic`` has always run the L1 step there,
    kept bit for bit with the published results; a zero radius is a no-op on a distribution
    and on LSVI's signed kernel alike, :func:`~bayes_qse.robust_planning.l1_extreme` moving
    only positive mass)."""
    if cs.l1_radius is None and not optimistic:
        return jnp.zeros(cs.nominal.leader_reward.shape)
    return cs.l1_radius


def initial_value(cs: ConfidenceSet, v1: Array, optimistic: bool) -> Array:
    """``max`` (``optimistic``) or ``min`` of ``rho . v1`` over the initial distribution's
    ball (``v1[S]`` the value from step 1); ``rho_hat . v1`` when it is stated."""
    rho = cs.nominal.initial_dist
    if cs.initial_radius is None:
        return rho @ v1
    value, _ = l1_extreme(rho, cs.initial_radius, v1, optimistic)
    return value


# ---------------------------------------------------------------------------------------
# Planning and evaluation on the set
# ---------------------------------------------------------------------------------------


def plan_on_set(
    cs: ConfidenceSet, *, optimistic: bool, method: str = "box"
) -> tuple[Array, Array, Array]:
    """Optimistic (pessimistic) backward induction on the set, myopic follower:
    ``(q[H,S,A], v[H+1,S], policy[H,S,A])``.

    ``method="box"``: :func:`~bayes_qse.robust_planning.box_plan` over the response box, the L1
    transition balls and the reward interval's end (eq. 6c, clipped to ``value_bounds``):
    ``q_h(s,a)`` is at least (at most) ``Q_h(s,a)`` of every game in the set, at any radius.
    ``method="first-order"``: :func:`~bayes_qse.robust_planning.ellipsoid_bonus_plan`, the
    linearised bonus ``sqrt(beta) ||grad_theta E_nu[W]||_{I^+}`` on :func:`folded_model`: no
    such guarantee at realistic radii (a named variant, for comparison).  ``optimistic`` is a
    Python bool.  The values ``v`` are per state; :func:`initial_value` adds the initial
    distribution's extreme.
    """
    if cs.nominal.farsighted:
        raise BayesQSEInputError(
            "cs: a farsighted follower has no response box; plan with joint_optimistic_plan"
        )
    fol = cs.follower
    if method == "box":
        model = cs.nominal.replace(leader_reward=reward_bound(cs, optimistic))
        ball = _ball(cs, optimistic)
        return box_plan(model, fol.nu_lower, fol.nu_upper, optimistic, ball, cs.value_bounds)
    if method != "first-order":
        raise BayesQSEInputError(f"method: expected 'box' or 'first-order', got {method!r}")
    cov = jnp.linalg.pinv(fol.precision, hermitian=True)
    return ellipsoid_bonus_plan(folded_model(cs, optimistic), fol.center, cov, fol.beta, optimistic)


def value_on_set(policy: Array, cs: ConfidenceSet, *, optimistic: bool) -> Array:
    """The largest (``optimistic``) or smallest value ``J(policy)`` of a fixed ``policy[H,S,A]``
    over the set, myopic follower (docs/math.md eq. 6g): robust policy evaluation over the
    response box, the L1 balls and the reward interval
    (:func:`~bayes_qse.robust_planning.box_policy_value`), then the initial distribution's
    extreme (:func:`initial_value`).  An upper (lower) bound on ``J(policy)`` in every game of
    the set; ``mle-pessimistic``'s certified lower bound.  Returns a scalar."""
    fol = cs.follower
    model = cs.nominal.replace(leader_reward=reward_bound(cs, optimistic))
    if cs.nominal.farsighted:
        raise BayesQSEInputError("cs: value_on_set covers a myopic follower (its response box)")
    box = (fol.nu_lower, fol.nu_upper)
    v = box_policy_value(policy, model, *box, optimistic, _ball(cs, optimistic), cs.value_bounds)
    return initial_value(cs, v[0], optimistic)


def set_point(center: Array, basis: Array, u: Array) -> Array:
    """A point of ``{center + basis z : ||z|| <= 1}`` from unconstrained ``u[d]``:
    ``z = u tanh(|u|) / |u|`` maps ``R^d`` onto the open unit ball smoothly, so the joint
    search over policy and set is an unconstrained ascent."""
    r = jnp.sqrt(u @ u + 1e-24)
    return center + basis @ (u * jnp.tanh(r) / r)


def joint_optimistic_plan(
    cs: ConfidenceSet,
    key: Array,
    logits: Array,
    start_policy: Array,
    *,
    n_candidates: int,
    steps: int,
    learning_rate: float,
) -> tuple[Array, Array]:
    """Farsighted optimism on the set: ``max_pi max_{theta in C} J(pi; theta)`` as one ascent
    over ``(logits, u)`` (docs/math.md eq. 6d).

    ``C`` is ``{center + basis z : ||z|| <= 1}``: along the identified eigen-directions of the
    set's ``precision`` the semi-axes are ``sqrt(beta / lambda_i)``; along its null directions
    the set reaches the class bound ``theta_bound``.  The leader's own optimism is folded into
    the reward (:func:`folded_model`) and into the initial distribution
    (:func:`initial_value`).  Starts: ``logits[H,S,A]`` with ``u = 0`` and with
    ``n_candidates - 1`` random directions of ``u`` (``|z|`` from 0.3 to 0.95), and
    ``start_policy[H,S,A]`` (e.g. the step-wise heuristic) with ``u = 0``; Adam for ``steps``
    steps at ``learning_rate`` each, and the best final point wins.  The objective is not
    concave: the result is a local maximum, *not certified* to be the maximum over the set.
    At the published experiments' 80 steps and rate 0.3 (8 starts) its value is within 1e-3
    of a brute-force optimum on sets of dimension 2 and 3 (``tests/test_joint_ascent.py``).

    Returns ``(policy[H,S,A], logits[H,S,A])``.
    """
    fol = cs.follower
    H, S, A = logits.shape
    d = fol.center.shape[0]
    lam, vecs, ident = identified_split(fol.precision)
    semi_axes = jnp.where(ident, jnp.sqrt(fol.beta / jnp.where(ident, lam, 1.0)), fol.theta_bound)
    basis = vecs * semi_axes
    n_pi = H * S * A
    model = folded_model(cs, True)

    def objective(x):
        pi = jax.nn.softmax(x[:n_pi].reshape(H, S, A), axis=-1)
        th = set_point(fol.center, basis, x[n_pi:])
        v, _ = evaluate_policy(model, jnp.exp(log_response(th, model, pi)), pi)
        return initial_value(cs, v[0], True)

    K = n_candidates
    dirs = jax.random.normal(key, (max(K - 1, 0), d), dtype=jnp.float64)
    radii = jnp.arctanh(jnp.linspace(0.3, 0.95, max(K - 1, 1)))[: max(K - 1, 0), None]
    dirs = radii * dirs / jnp.linalg.norm(dirs, axis=-1, keepdims=True)
    u0 = jnp.concatenate([jnp.zeros((1, d)), dirs, jnp.zeros((1, d))])
    l0 = jnp.concatenate(
        [jnp.broadcast_to(logits.ravel(), (K, n_pi)), (4.0 * start_policy).ravel()[None]]
    )
    starts = jnp.concatenate([l0, u0], axis=1)
    finals = jax.vmap(lambda x0: adam_ascent(objective, x0, steps, learning_rate))(starts)
    values = jax.vmap(objective)(finals)
    best = finals[jnp.argmax(values)]
    best_logits = best[:n_pi].reshape(H, S, A)
    return jax.nn.softmax(best_logits, axis=-1), best_logits


__all__ = [
    "ConfidenceSet",
    "FollowerSet",
    "confidence_set",
    "confidence_split",
    "folded_model",
    "follower_radius",
    "follower_set",
    "initial_value",
    "joint_optimistic_plan",
    "plan_on_set",
    "reward_bound",
    "set_point",
    "value_on_set",
]
