"""Online learners of the leader's QSE policy (DESIGN §5) and the episode loop that runs them.

Each round: fit the follower (eq. 4) and the leader's own model (eq. 5), plan (eq. 2, 6),
announce ``pi^t``, play one episode against the true follower, store it.

=====================  ====================================================================
learner                rule
=====================  ====================================================================
``oracle``             the true QSE policy (:func:`bayes_qse.solve_qse` on the true game).
``greedy``             plug-in: MAP of ``theta`` and the posterior-mean leader model; no
                       exploration.
``thompson``           one joint posterior draw per episode (Laplace ``theta``, Dirichlet
                       transitions, Normal rewards) and the plan for that draw (PSRL).
``bayes-optimistic``   ``M`` joint posterior draws and the upper-quantile rule (6) with the
                       schedule ``level_t = 1 - 1/(t + quantile_offset)`` (Bayes-UCB).
``mle-optimistic``     the paper's algorithm: penalised MLE + confidence set, optimism over
                       the set jointly with optimism about the leader's own model.
=====================  ====================================================================

Follower fit (all learners): the log-posterior ``L(theta) - |theta|^2 / (2 prior_scale^2)``
on the masked :class:`~bayes_qse.data.EpisodeBuffer` (eq. 4), warm-started at the previous
estimate: the MAP under ``Normal(0, prior_scale^2 I)`` for the Bayesian learners, the
ridge-penalised MLE for the frequentist ones (the same numbers).  Myopic follower:
:func:`bayes_qse.inference.map_newton` to convergence (cheap: the likelihood runs on counts).
Farsighted follower: one damped Newton step per episode
(:func:`~bayes_qse.learners.common.online_newton_step`), since each Hessian costs ``d`` soft
Bellman recursions per stored episode.  The negative Hessian (eigenvalues floored at the prior
precision, :func:`~bayes_qse.learners.common.positive_precision`) is both the Laplace posterior
precision and the Wald set's matrix.  (NUTS every ``k`` episodes is not offered online: the
Laplace posterior is used throughout.)  The first episode, before any data, plays the uniform
policy.

Leader model (eq. 5; :mod:`bayes_qse.leader_model`): the Bayesian learners use
:class:`~bayes_qse.leader_model.DirichletNormalModel` (means for ``greedy``, draws for the
others); ``mle-optimistic`` uses :class:`~bayes_qse.leader_model.EmpiricalBonusModel`
(Hoeffding reward bonus, Weissman L1 radius); with a known model (planning mode) all use
:class:`~bayes_qse.leader_model.KnownModel`.  Dirichlet draws use the loop-free sampler
:func:`~bayes_qse.leader_model.dirichlet_draws` (``jax.random.gamma``'s rejection loop
dominated the cost of an episode).

``mle-optimistic`` in detail.
- *Myopic follower (the efficient linear-myopic version)*: one pass of backward induction with
  the first-order ellipsoid bonus :func:`bayes_qse.robust_planning.ellipsoid_bonus_plan`,
  ``Q_h(s,a) = E_nu[W] + sqrt(beta) ||grad_theta E_nu[W]||_{I^-1}`` clipped to the range of
  ``W``, with ``beta = chi2_d(confidence_level)`` and ``I`` the penalised Fisher information.
  The leader's optimism enters ``W_b = r_hat + b_r + P_hat V + b_P``: ``b_r`` the Hoeffding
  bonus and ``b_P = l1_radius * span_{h+1} / 2`` with ``span_{h+1} = (H-h-1)(r_max-r_min)``,
  which bounds ``(P - P_hat) V`` over the Weissman L1 ball.
- *Farsighted follower (the general version, for small games)*: the joint optimism
  ``max_{theta in C} max_pi J(pi; theta, optimistic leader model)`` over a finite set of
  ``n_candidates`` parameters: ``theta_hat`` and points drawn uniformly in the Wald ellipsoid,
  kept only if they pass the likelihood-ratio test ``2 (L(theta_hat) - L(theta)) <= beta``
  (the others are replaced by ``theta_hat``), planned jointly by the warm-started gradient
  planner on ``max_k J(pi; theta_k)``.

Farsighted planning (every learner): eq. (2b) is not decomposable, so instead of backward
induction each learner runs :func:`~bayes_qse.learners.common.warm_gradient_plan` on its
objective (greedy: ``J`` under the point model; thompson: ``J`` under the draw;
bayes-optimistic: the ``level_t`` quantile of ``J`` across the ``M`` draws, i.e. the quantile
rule applied to whole-policy values; mle-optimistic: the max over candidates), warm-started
from the previous episode's logits and from the step-wise heuristic under the current model.

The loop (:class:`OnlineRunner`, :func:`run_online`): the learners are pure functions over a
fixed-shape :class:`~bayes_qse.learners.common.OnlineState`; episodes run in chunks of
``chunk`` episodes as one ``jax.lax.scan``, ``vmap``-ped over seeds, compiled once (no
recompilation after the first chunk).  Regret is exact: ``J(pi*) - J(pi^t)`` by policy
evaluation on the true game.  Episode ``t`` of seed ``s`` uses the key
``fold_in(fold_in(PRNGKey(s), 1), t)``, whatever the chunking, so runs are deterministic and
a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..data import Episode, buffer_add, buffer_init
from ..errors import BayesQSEInputError, ConfigError
from ..inference import laplace_draws, map_newton
from ..leader_model import DirichletNormalModel, EmpiricalBonusModel, KnownModel
from ..likelihood import log_likelihood
from ..planning import plan_myopic, solve_qse
from ..robust_planning import draw_quantile, ellipsoid_bonus_plan, quantile_plan
from ..sets import chi2_radius
from .common import (
    GameSpec,
    Learner,
    LearnerConfig,
    OnlineState,
    act,
    laplace_set_size,
    model_value,
    online_newton_step,
    positive_precision,
    stepwise_start,
    warm_gradient_plan,
)

Array = jax.Array

LEARNERS = ("oracle", "greedy", "thompson", "bayes-optimistic", "mle-optimistic")


# ---------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------


def quantile_level(t: Array, offset: float) -> Array:
    """The Bayes-UCB quantile schedule ``1 - 1/(t + offset)`` after ``t`` episodes."""
    return 1.0 - 1.0 / (jnp.asarray(t, jnp.float64) + offset)


def _bayes_leader_model(spec: GameSpec, cfg: LearnerConfig):
    if spec.known_model:
        return KnownModel(spec.transitions, spec.leader_reward)
    lo, hi = spec.reward_range
    return DirichletNormalModel(
        alpha0=1.0,
        reward_prior_mean=0.5 * (lo + hi),
        reward_prior_strength=1.0,
        reward_noise_sd=cfg.reward_noise_sd * (hi - lo),
    )


def _frequentist_leader_model(spec: GameSpec):
    if spec.known_model:
        return KnownModel(spec.transitions, spec.leader_reward)
    return EmpiricalBonusModel("hoeffding", spec.reward_range)


def optimistic_leader_reward(model: Any, stats: Any, spec: GameSpec, delta: float) -> Array:
    """``r_hat + b_r + l1_radius * span_{h+1} / 2`` ``[H,S,A,B]``: the leader's own optimism
    folded into the reward, so that ``r + P_hat V`` upper-bounds ``r + P V`` over the model's
    confidence set (Hoeffding reward bonus, Weissman L1 ball; ``span_{h+1}`` the range of the
    value from step ``h+1``).  Zero bonus for a known model."""
    _, r_hat = model.mean(stats)
    bonus = model.bonus(stats, delta)
    H = r_hat.shape[0]
    lo, hi = spec.reward_range
    span_next = (H - 1 - jnp.arange(H)) * (hi - lo)
    return r_hat + bonus.reward + 0.5 * span_next[:, None, None, None] * bonus.l1_radius


def _uniform_in_ellipsoid(key: Array, center: Array, precision: Array, beta: float, n: int):
    """``[n,d]`` points uniform in ``{(x-c)' precision (x-c) <= beta}``."""
    d = center.shape[0]
    k_dir, k_rad = jax.random.split(key)
    z = jax.random.normal(k_dir, (n, d), dtype=jnp.float64)
    u = z / jnp.linalg.norm(z, axis=-1, keepdims=True)
    radius = jax.random.uniform(k_rad, (n, 1), dtype=jnp.float64) ** (1.0 / d)
    chol = jnp.linalg.cholesky(precision)
    x = jax.scipy.linalg.solve_triangular(chol.T, (u * radius).T, lower=False).T
    return center + jnp.sqrt(beta) * x


# ---------------------------------------------------------------------------------------
# Learners
# ---------------------------------------------------------------------------------------

PlanFn = Callable[[Array, Array, Array, Any, Array, Any], tuple[Array, Array]]


def _data_learner(
    name: str, spec: GameSpec, cfg: LearnerConfig, model: Any, plan: PlanFn
) -> Learner:
    """A learner that refits ``theta`` (map_newton, warm-started) and its leader model each
    episode and calls ``plan(key, theta_hat, precision, stats, logits, buffer)``.

    Before any data the policy is uniform (the first episode explores; planning from the prior
    alone would only cost one more compilation)."""
    H, S, A, B = spec.shape
    d = spec.feature_dim
    features = jnp.asarray(spec.features)
    eta = jnp.asarray(spec.eta)
    prior_precision = 1.0 / cfg.prior_scale**2

    def init(key: Array) -> OnlineState:
        buffer = buffer_init(cfg.capacity, H, S, A)
        stats = model.init(H, S, A, B)
        theta = jnp.zeros((d,))
        precision = prior_precision * jnp.eye(d)
        uniform = jnp.full((H, S, A), 1.0 / A, dtype=jnp.float64)
        return OnlineState(key, buffer, stats, theta, precision, jnp.zeros((H, S, A)), uniform)

    def update(state: OnlineState, episode: Episode) -> OnlineState:
        buffer = buffer_add(state.buffer, episode)
        stats = model.update(state.leader_stats, episode)
        if spec.farsighted:
            transitions = model.mean(stats)[0]
            objective = lambda th: (
                log_likelihood(th, features, transitions, eta, buffer, True)
                - 0.5 * prior_precision * th @ th
            )
            theta, precision = online_newton_step(objective, state.theta_hat, prior_precision)
        else:
            theta, neg_hessian = map_newton(
                buffer,
                features,
                None,
                eta,
                prior_precision,
                state.theta_hat,
                n_steps=cfg.newton_steps,
            )
            precision = positive_precision(neg_hessian, prior_precision)
        key, k_plan = jax.random.split(state.key)
        policy, logits = plan(k_plan, theta, precision, stats, state.logits, buffer)
        return OnlineState(key, buffer, stats, theta, precision, logits, policy)

    return Learner(name, init, act, update)


def _plan_point(spec: GameSpec, cfg: LearnerConfig, theta, transitions, reward, logits):
    """Plan against one model: backward induction (myopic) or the warm gradient planner."""
    features = jnp.asarray(spec.features)
    if not spec.farsighted:
        _, _, policy = plan_myopic(transitions, reward, features, spec.eta, theta)
        return policy, logits
    objective = lambda pi: model_value(
        pi, theta, transitions, reward, features, spec.eta, spec.initial_dist, True
    )
    start = stepwise_start(theta, transitions, reward, features, spec.eta)
    return warm_gradient_plan(objective, logits, start, cfg.planner_steps, cfg.planner_lr)


def greedy_learner(spec: GameSpec, cfg: LearnerConfig) -> Learner:
    """``greedy``: plan on the MAP ``theta`` and the posterior-mean leader model."""
    model = _bayes_leader_model(spec, cfg)

    def plan(key, theta, precision, stats, logits, buffer):
        transitions, reward = model.mean(stats)
        return _plan_point(spec, cfg, theta, transitions, reward, logits)

    return _data_learner("greedy", spec, cfg, model, plan)


def thompson_learner(spec: GameSpec, cfg: LearnerConfig) -> Learner:
    """``thompson``: one joint posterior draw per episode (Laplace ``theta``, Dirichlet
    transitions, Normal rewards), and the plan for that draw."""
    model = _bayes_leader_model(spec, cfg)

    def plan(key, theta, precision, stats, logits, buffer):
        k_theta, k_model = jax.random.split(key)
        theta_draw = laplace_draws(k_theta, theta, precision, 1)[0]
        transitions, reward = model.sample(stats, k_model, 1)
        return _plan_point(spec, cfg, theta_draw, transitions[0], reward[0], logits)

    return _data_learner("thompson", spec, cfg, model, plan)


def bayes_optimistic_learner(spec: GameSpec, cfg: LearnerConfig) -> Learner:
    """``bayes-optimistic``: ``M`` joint posterior draws and the upper-quantile rule (6) at
    level ``1 - 1/(t + quantile_offset)``; per backward step for a myopic follower
    (:func:`bayes_qse.robust_planning.quantile_plan`), on whole-policy values for a farsighted
    one."""
    model = _bayes_leader_model(spec, cfg)
    features = jnp.asarray(spec.features)
    M = cfg.num_draws

    def plan(key, theta, precision, stats, logits, buffer):
        k_theta, k_model = jax.random.split(key)
        thetas = laplace_draws(k_theta, theta, precision, M)
        transitions, rewards = model.sample(stats, k_model, M)
        level = quantile_level(buffer.count, cfg.quantile_offset)
        p_mean, r_mean = model.mean(stats)
        if not spec.farsighted:
            nu = jax.nn.softmax(spec.eta * jnp.einsum("hsabd,md->mhsab", features, thetas), -1)
            _, _, policy = quantile_plan(
                p_mean, r_mean, nu, level, transitions_draws=transitions, reward_draws=rewards
            )
            return policy, logits
        values = jax.vmap(model_value, in_axes=(None, 0, 0, 0, None, None, None, None))

        def objective(pi):
            v = values(
                pi, thetas, transitions, rewards, features, spec.eta, spec.initial_dist, True
            )
            return draw_quantile(v, level)

        start = stepwise_start(theta, p_mean, r_mean, features, spec.eta)
        return warm_gradient_plan(objective, logits, start, cfg.planner_steps, cfg.planner_lr)

    return _data_learner("bayes-optimistic", spec, cfg, model, plan)


def mle_optimistic_learner(spec: GameSpec, cfg: LearnerConfig) -> Learner:
    """``mle-optimistic``: the paper's optimistic algorithm (see the module docstring):
    ellipsoid bonus inside backward induction (myopic), optimism over likelihood-ratio-set
    candidates with the gradient planner (farsighted); jointly with the leader-model bonuses."""
    model = _frequentist_leader_model(spec)
    features = jnp.asarray(spec.features)
    d = spec.feature_dim
    beta = chi2_radius(d, cfg.confidence_level)  # the asymptotic Wald / LR radius (§2)
    delta = 1.0 - cfg.confidence_level
    K = cfg.n_candidates

    def plan(key, theta, precision, stats, logits, buffer):
        p_hat, _ = model.mean(stats)
        reward = optimistic_leader_reward(model, stats, spec, delta)
        if not spec.farsighted:
            cov = jnp.linalg.inv(precision)
            cov = 0.5 * (cov + cov.T)
            _, _, policy = ellipsoid_bonus_plan(
                (p_hat, reward, features, spec.eta), theta, cov, beta, True
            )
            return policy, logits
        # general version: candidates in the likelihood-ratio set, planned jointly
        ll = lambda th: log_likelihood(th, features, p_hat, spec.eta, buffer, True)
        cand = _uniform_in_ellipsoid(key, theta, precision, beta, K - 1)
        inside = 2.0 * (ll(theta) - jax.vmap(ll)(cand)) <= beta
        cand = jnp.where(inside[:, None], cand, theta[None])
        cands = jnp.concatenate([theta[None], cand])
        values = jax.vmap(model_value, in_axes=(None, 0, None, None, None, None, None, None))

        def objective(pi):
            v = values(pi, cands, p_hat, reward, features, spec.eta, spec.initial_dist, True)
            return jnp.max(v)

        start = stepwise_start(theta, p_hat, reward, features, spec.eta)
        return warm_gradient_plan(objective, logits, start, cfg.planner_steps, cfg.planner_lr)

    return _data_learner("mle-optimistic", spec, cfg, model, plan)


def oracle_learner(spec: GameSpec, cfg: LearnerConfig, qse_policy: Any, theta: Any) -> Learner:
    """``oracle``: announces the true QSE policy every episode (regret exactly 0)."""
    H, S, A, B = spec.shape
    d = spec.feature_dim
    policy = jnp.asarray(qse_policy, jnp.float64)
    theta = jnp.asarray(theta, jnp.float64)

    def init(key: Array) -> OnlineState:
        buffer = buffer_init(1, H, S, A)
        stats = KnownModel(np.zeros((H, S, A, B, S)) + 1.0 / S, np.zeros((H, S, A, B))).init(
            H, S, A, B
        )
        return OnlineState(key, buffer, stats, theta, jnp.eye(d), jnp.zeros((H, S, A)), policy)

    def update(state: OnlineState, episode: Episode) -> OnlineState:
        return state

    return Learner("oracle", init, act, update)


def make_learner(
    name: str,
    spec: GameSpec,
    config: LearnerConfig | dict | None = None,
    *,
    true_game: Any = None,
    qse_policy: Any = None,
) -> Learner:
    """Build the online learner ``name`` (one of :data:`LEARNERS`) for a game spec.

    Args:
        name: ``"oracle"``, ``"greedy"``, ``"thompson"``, ``"bayes-optimistic"`` or
            ``"mle-optimistic"``.
        spec: what the leader knows (:meth:`GameSpec.from_game`).
        config: a :class:`LearnerConfig` or a dict of its fields.
        true_game: the true game (``oracle`` only: it plays its QSE).
        qse_policy: ``[H,S,A]`` the QSE policy for ``oracle`` (solved from ``true_game``
            when omitted).

    Returns:
        a :class:`~bayes_qse.learners.common.Learner` ``(name, init, act, update)``.
    """
    cfg = config if isinstance(config, LearnerConfig) else LearnerConfig.from_mapping(config)
    if name == "oracle":
        if true_game is None:
            raise BayesQSEInputError("true_game: the oracle learner needs the true game")
        if qse_policy is None:
            qse_policy = solve_qse(true_game).policy
        return oracle_learner(spec, cfg, qse_policy, true_game.theta)
    builders = {
        "greedy": greedy_learner,
        "thompson": thompson_learner,
        "bayes-optimistic": bayes_optimistic_learner,
        "mle-optimistic": mle_optimistic_learner,
    }
    if name not in builders:
        raise ConfigError(f"learner: unknown learner {name!r}; choose from {', '.join(LEARNERS)}")
    return builders[name](spec, cfg)


def learner_summary(name: str, state: OnlineState) -> tuple[Array, Array]:
    """``(theta_hat[d], set_size)`` behind the learner's current policy; set size 0 for the
    oracle (it knows ``theta``), else :func:`~bayes_qse.learners.common.laplace_set_size`."""
    if name == "oracle":
        return state.theta_hat, jnp.zeros(())
    return state.theta_hat, laplace_set_size(state.precision)


__all__ = [
    "LEARNERS",
    "EpisodeRecord",
    "OnlineRunner",
    "bayes_optimistic_learner",
    "greedy_learner",
    "learner_summary",
    "make_learner",
    "mle_optimistic_learner",
    "optimistic_leader_reward",
    "oracle_learner",
    "quantile_level",
    "run_online",
    "thompson_learner",
]

# The episode loop lives in runner.py; re-exported here so that existing imports keep working.
from .runner import EpisodeRecord, OnlineRunner, run_online  # noqa: E402
