"""Online learners of the leader's QSE policy (docs/math.md §5); the episode loop is in ``runner``.

Each round: fit the follower (eq. 4) and the leader's own model (eq. 5), plan (eq. 2, 6),
announce ``pi^t``, play one episode against the true follower, store it.

The five learners share one refit (``_data_learner``: ridge fallback, Newton, rarely-switching
hand-off) and one choice of leader model (tabular or model-free), and differ only in their
``plan`` closures; ``mle-optimistic``'s confidence set and the planning on it are
:mod:`bayes_qse.confidence`'s.

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
``mle-optimistic``     the paper's algorithm: MLE + confidence set, optimism over the set
                       jointly with optimism about the leader's own model.
``uniform``            baseline: the uniform policy every episode (learns nothing).
=====================  ====================================================================

Variants (:data:`ONLINE_VARIANTS`, the online entries of
:data:`~bayes_qse.learners.config.LEARNER_VARIANTS`): ``mle-optimistic-first-order`` (the
linearised bonus, for comparison: not optimistic at realistic radii) and
``mle-optimistic-theory`` (the paper's likelihood-ratio set at its finite-sample radius,
union-bounded over episodes, instead of the Wald set at the chi-square radius).

Follower fit (all learners): the log-posterior ``L(theta) - |theta|^2 / (2 prior_scale^2)``
(eq. 4), warm-started at the previous estimate: the MAP under ``Normal(0, prior_scale^2 I)``
(the frequentist ``mle-optimistic`` uses the unpenalised MLE instead, see below).  Myopic
follower: :func:`bayes_qse.likelihood.map_core` to convergence on running response counts
(:class:`~bayes_qse.policy_stats.ResponseCounts`, each episode added in ``O(H)``: a refit costs
``O(H S A B)`` whatever ``t``, and no episode is stored).  Farsighted follower: on the masked
:class:`~bayes_qse.data.EpisodeBuffer` of ``capacity`` episodes, one damped Newton step per episode
(:func:`~bayes_qse.optim.online_newton_step`), since each Hessian costs ``d`` soft
Bellman recursions per stored episode.  The negative Hessian (eigenvalues floored at the prior
precision, :func:`~bayes_qse.optim.positive_precision`) is both the Laplace posterior
precision and the Wald set's matrix.  (NUTS every ``k`` episodes is not offered online: the
Laplace posterior is used throughout.)  The first episode, before any data, plays the uniform
policy.

Leader model (eq. 5; :mod:`bayes_qse.leader_model`): the Bayesian learners use
:class:`~bayes_qse.leader_model.DirichletNormalModel` (means for ``greedy``, draws for the
others); ``mle-optimistic`` uses :class:`~bayes_qse.leader_model.EmpiricalBonusModel`
(reward bonus ``reward_bound``, by default the smaller of Hoeffding and empirical Bernstein;
Weissman L1 radius); with a known model (planning mode) all use
:class:`~bayes_qse.leader_model.KnownModel`.  ``leader_model="linear"`` (the ``-linear``
variants) makes every learner model-free: :class:`~bayes_qse.leader_model.LinearLSVI` on
leader features (docs/math.md §3.1), its weight posterior for the Bayesian learners and the
LSVI-UCB bonus (eq. 5c) for ``mle-optimistic``; myopic follower only.  Dirichlet draws use the
loop-free sampler
:func:`~bayes_qse.leader_model.dirichlet_draws` (``jax.random.gamma``'s rejection loop
dominated the cost of an episode).

``mle-optimistic`` in detail (docs/math.md eq. 4, 6).
- *Follower set*: the unpenalised MLE (``mle_prior_scale = inf``; projected onto the paper's class
  ``||theta|| <= theta_bound``) and its Wald set ``{(theta - theta_hat)' I (theta - theta_hat)
  <= beta}`` with ``I`` the observed Fisher information.  Directions the data leave
  unidentified (the null space of ``I``) stay unbounded, and the records say how many
  directions are identified.  ``radius="chi2"``: ``beta = chi2_r(level)`` with ``r`` the
  Fisher rank; ``radius="theory"``: the paper's likelihood-ratio set at its finite-sample
  radius, growing with ``t`` (:func:`~bayes_qse.confidence.follower_radius`), planned over
  its certified outer box
  (:func:`bayes_qse.sets.lr_response_box`, docs/math.md eq. 6e; farsighted: the class
  ``||theta|| <= theta_bound``).  While some direction is less informed than the prior, the
  fit borrows the prior's ridge: on a game with many parameters (``tabular``, ``d = 27``) that
  is most of a 1000-episode run.  ``delta`` (the setting) is split by a union bound among
  the follower, the leader's rewards, transitions and initial distribution
  (:func:`~bayes_qse.confidence.confidence_split`), each tabular part over its ``H S A B``
  cells.  The sets live in one :class:`~bayes_qse.confidence.ConfidenceSet`, the one
  ``mle-pessimistic`` plans on pessimistically (:mod:`bayes_qse.confidence`).
- *Myopic follower*, ``optimism="box"`` (default): one pass of backward induction over the
  exact response box of the Wald set, jointly with extended value iteration over the L1
  transition balls and the reward bonuses (:func:`bayes_qse.confidence.plan_on_set`, eq. 6c):
  valid optimism at any radius.  ``optimism="first-order"``: the linearised bonus
  ``E_nu[W] + sqrt(beta) ||grad_theta E_nu[W]||_{I^+}``
  (:func:`bayes_qse.robust_planning.ellipsoid_bonus_plan`), which is *not* an upper bound at
  realistic radii (kept as a named variant for comparison).
- *Farsighted follower*: a joint ascent over the policy and a point of the set
  (:func:`bayes_qse.confidence.joint_optimistic_plan`, eq. 6d), multistart; a local search,
  not certified.

Farsighted planning (every learner): eq. (2b) is not decomposable, so instead of backward
induction each learner runs :func:`~bayes_qse.learners.common.warm_gradient_plan` on its
objective (greedy: ``J`` under the point model; thompson: ``J`` under the draw;
bayes-optimistic: the ``level_t`` quantile of ``J`` across the ``M`` draws, i.e. the quantile
rule applied to whole-policy values; mle-optimistic: the max over candidates), warm-started
from the previous episode's logits and from the step-wise heuristic under the current model.

The loop (``runner.OnlineRunner``, ``runner.run_online``): the learners are pure functions over a
fixed-shape :class:`~bayes_qse.learners.common.OnlineState`; episodes run in chunks of
``chunk`` episodes as one ``jax.lax.scan``, ``vmap``-ped over seeds, compiled once (no
recompilation after the first chunk).  Regret is exact: ``J(pi*) - J(pi^t)`` by policy
evaluation on the true game.  Episode ``t`` of seed ``s`` uses the key
``fold_in(fold_in(PRNGKey(s), 1), t)``, whatever the chunking, so runs are deterministic and
a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..confidence import (
    confidence_set,
    confidence_split,
    folded_model,
    follower_radius,
    follower_set,
    joint_optimistic_plan,
    plan_on_set,
)
from ..data import Episode, buffer_add, buffer_init
from ..errors import BayesQSEInputError, ConfigError
from ..follower import myopic_response
from ..inference import laplace_draws
from ..leader_model import DirichletNormalModel, KnownModel, LinearLSVI
from ..likelihood import log_posterior, map_core
from ..model import Model
from ..optim import online_newton_step, positive_precision
from ..planning import plan_myopic, policy_value, solve_qse, stepwise_policy
from ..policy_stats import (
    PolicyStats,
    response_counts_add,
    response_counts_init,
)
from ..robust_planning import draw_quantile, quantile_plan
from ..sets import identified_split
from ..types import Array
from .common import (
    GameSpec,
    Learner,
    OnlineState,
    act,
    frequentist_leader_model,
    initial_dist_estimate,
    initial_state_counts,
    laplace_set_size,
    linear_leader_model,
    warm_gradient_plan,
)
from .config import LearnerConfig, variants_of
from .switching import switching_learner

LEARNERS = ("oracle", "greedy", "thompson", "bayes-optimistic", "mle-optimistic")

#: The online variants of :data:`~bayes_qse.learners.config.LEARNER_VARIANTS` (their one
#: home): ``name -> (base learner, LearnerConfig overrides)``.
ONLINE_VARIANTS = variants_of(LEARNERS)

#: Baselines that do not learn: ``uniform`` announces the uniform policy every episode.
BASELINES = ("uniform",)

#: Every name :func:`make_learner` accepts.
ALL_LEARNERS = (*LEARNERS, *ONLINE_VARIANTS, *BASELINES)


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
    if cfg.leader_model == "linear":
        noise_sd = cfg.reward_noise_sd * (hi - lo)
        return linear_leader_model(spec, cfg.leader_features, cfg.lsvi_reg, noise_sd)
    return DirichletNormalModel(
        alpha0=1.0,
        reward_prior_mean=0.5 * (lo + hi),
        reward_prior_strength=1.0,
        reward_noise_sd=cfg.reward_noise_sd * (hi - lo),
    )


def _first_state_counts(buffer: Any, n_states: int) -> Array:
    """``[S]`` first-state counts of an :class:`EpisodeBuffer`, or of the running counts and
    per-policy data (which keep them)."""
    counts = getattr(buffer, "first_state_counts", None)
    if counts is not None:
        return counts
    return initial_state_counts(buffer.states[:, 0], buffer.mask, n_states)


def _initial_dist(spec: GameSpec, buffer: Any) -> Array:
    """``[S]`` the stated initial distribution, or its Dirichlet(1) posterior mean from the
    stored episodes' first states."""
    return initial_dist_estimate(spec, _first_state_counts(buffer, spec.shape[1]))


# ---------------------------------------------------------------------------------------
# Learners
# ---------------------------------------------------------------------------------------

PlanFn = Callable[[Array, Array, Array, Any, Array, Any], tuple[Array, Array]]


def _data_learner(
    name: str,
    spec: GameSpec,
    cfg: LearnerConfig,
    model: Any,
    plan: PlanFn,
    ridge: float | None = None,
    theta_bound: float | None = None,
) -> Learner:
    """A learner that refits ``theta`` (warm-started) and its leader model each episode and
    calls ``plan(key, theta_hat, precision, stats, logits, buffer)``.

    ``ridge``: the prior precision / ridge of the fit (``1 / prior_scale^2`` by default; 0 for
    the paper's unpenalised MLE, whose ``precision`` is then the observed Fisher information
    with its null space kept: eigenvalues floored at 0, not at a prior).  ``theta_bound``:
    project the estimate onto ``||theta|| <= theta_bound`` (the paper's bounded class; the
    unpenalised MLE does not exist on separable data).

    Before any data the policy is uniform (the first episode explores; planning from the prior
    alone would only cost one more compilation)."""
    H, S, A, B = spec.shape
    d = spec.feature_dim
    features = jnp.asarray(spec.features)
    eta = jnp.asarray(spec.eta)
    prior_precision = 1.0 / cfg.prior_scale**2 if ridge is None else float(ridge)
    # the paper's MLE (ridge 0) borrows the prior's ridge while the data leave some direction
    # less informed than the prior (smallest eigenvalue of the previous Fisher information below
    # 1 / prior_scale^2), and drops it once every direction is: the unpenalised MLE need not
    # exist before that (separable data)
    fallback = 1.0 / cfg.prior_scale**2

    def init(key: Array) -> OnlineState:
        if spec.farsighted:
            buffer = buffer_init(cfg.capacity, H, S, A)
        else:
            buffer = response_counts_init(spec.shape)
        stats = model.init(H, S, A, B)
        theta = jnp.zeros((d,))
        precision = prior_precision * jnp.eye(d)
        uniform = jnp.full((H, S, A), 1.0 / A, dtype=jnp.float64)
        return OnlineState(key, buffer, stats, theta, precision, jnp.zeros((H, S, A)), uniform)

    def refit(state: OnlineState, data: Any, stats: Any) -> tuple[Array, Array]:
        """``(theta, precision)`` fitted on ``data``: an :class:`EpisodeBuffer` (farsighted),
        :class:`~bayes_qse.policy_stats.ResponseCounts` (myopic) or, for
        ``refit="switching"``, :class:`~bayes_qse.policy_stats.PolicyStats`."""
        if prior_precision > 0:
            lam = jnp.asarray(prior_precision)
        else:
            weakest = jnp.linalg.eigvalsh(0.5 * (state.precision + state.precision.T))[0]
            lam = jnp.where(weakest < fallback, fallback, 0.0)
        if isinstance(data, PolicyStats):
            # rare refits (docs/math.md eq. 4'): damped Newton to convergence on the statistics
            transitions = model.mean(stats)[0] if spec.farsighted else None
            follower = Model(features, eta, transitions, farsighted=spec.farsighted)

            def fit(ridge_now):
                # log_posterior's scalar prior (the published rounding of this refit)
                theta, _, neg_h, _, _ = map_core(
                    follower, data, ridge_now, state.theta_hat, cfg.newton_steps
                )
                return theta, neg_h

        elif spec.farsighted:
            transitions = model.mean(stats)[0]
            fitted = Model(features, eta, transitions, farsighted=True)
            objective = lambda th: log_posterior(th, fitted, data, lam)
            theta, neg_hessian = online_newton_step(
                objective, state.theta_hat, jnp.maximum(lam, 1e-6), precision_floor=0.0
            )
            fit = None
        else:
            myopic = Model(features, eta, farsighted=False)

            def fit(ridge_now):
                # the prior as the matrix ridge_now * I (the published rounding of this refit)
                theta, _, neg_h, _, _ = map_core(
                    myopic, data.counts, ridge_now * jnp.eye(d), state.theta_hat, cfg.newton_steps
                )
                return theta, neg_h

        if fit is not None:
            theta, neg_hessian = fit(lam)
            if prior_precision == 0:
                # the unpenalised MLE is kept only where it is identified at its own point
                # (every eigenvalue of its Fisher information >= 1 / prior_scale^2): on a
                # likelihood that still rises along a ray (quasi-separated data) Newton walks
                # off towards |theta| -> infinity, where the follower is near-deterministic and
                # the fit says nothing; the ridge fit is used instead (docs/math.md,
                # "Unpenalised MLE")
                weakest_fit = jnp.linalg.eigvalsh(0.5 * (neg_hessian + neg_hessian.T))[0]
                unidentified = (lam == 0.0) & (weakest_fit < fallback)
                theta, neg_hessian, lam = jax.lax.cond(
                    unidentified,
                    lambda: (*fit(jnp.asarray(fallback)), jnp.asarray(fallback)),
                    lambda: (theta, neg_hessian, jnp.asarray(lam, jnp.float64)),
                )
        # the set's matrix: the Fisher information (ridge removed when it is not the prior's)
        fisher = neg_hessian - (lam - prior_precision) * jnp.eye(d)
        precision = positive_precision(fisher, prior_precision)
        if theta_bound is not None:
            norm = jnp.linalg.norm(theta)
            theta = theta * jnp.minimum(1.0, theta_bound / jnp.maximum(norm, 1e-300))
        return theta, precision

    if cfg.refit == "switching":
        return switching_learner(name, spec, cfg, model, refit, plan, prior_precision)

    add = buffer_add if spec.farsighted else response_counts_add

    def update(state: OnlineState, episode: Episode) -> OnlineState:
        buffer = add(state.buffer, episode)
        stats = model.update(state.leader_stats, episode)
        theta, precision = refit(state, buffer, stats)
        key, k_plan = jax.random.split(state.key)
        policy, logits = plan(k_plan, theta, precision, stats, state.logits, buffer)
        return OnlineState(key, buffer, stats, theta, precision, logits, policy)

    return Learner(name, init, act, update)


def _plan_point(spec: GameSpec, cfg: LearnerConfig, theta, transitions, reward, logits, rho):
    """Plan against one model: backward induction (myopic) or the warm gradient planner
    (``rho[S]`` the initial distribution, farsighted only)."""
    model = Model(jnp.asarray(spec.features), spec.eta, transitions, reward, rho, spec.farsighted)
    if not spec.farsighted:
        _, _, policy = plan_myopic(model, theta)
        return policy, logits
    objective = lambda pi: policy_value(pi, model, theta)
    start = stepwise_policy(model, theta)
    return warm_gradient_plan(objective, logits, start, cfg.planner_steps, cfg.planner_lr)


def greedy_learner(spec: GameSpec, cfg: LearnerConfig) -> Learner:
    """``greedy``: plan on the MAP ``theta`` and the posterior-mean leader model."""
    model = _bayes_leader_model(spec, cfg)

    def plan(key, theta, precision, stats, logits, buffer):
        transitions, reward = model.mean(stats)
        return _plan_point(
            spec, cfg, theta, transitions, reward, logits, _initial_dist(spec, buffer)
        )

    return _data_learner("greedy", spec, cfg, model, plan)


def thompson_learner(spec: GameSpec, cfg: LearnerConfig) -> Learner:
    """``thompson``: one joint posterior draw per episode (Laplace ``theta``, Dirichlet
    transitions, Normal rewards), and the plan for that draw."""
    model = _bayes_leader_model(spec, cfg)

    def plan(key, theta, precision, stats, logits, buffer):
        k_theta, k_model = jax.random.split(key)
        theta_draw = laplace_draws(k_theta, theta, precision, 1)[0]
        transitions, reward = model.sample(stats, k_model, 1)
        rho = _initial_dist(spec, buffer)
        return _plan_point(spec, cfg, theta_draw, transitions[0], reward[0], logits, rho)

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
        draws = Model(features, spec.eta, transitions, rewards, farsighted=spec.farsighted)
        if not spec.farsighted:
            nu = myopic_response(draws, thetas)
            # LSVI's draws share the mean kernel: pass it once, not M copies
            p_draws = p_mean if isinstance(model, LinearLSVI) else transitions
            _, _, policy = quantile_plan(Model(None, None, p_draws, rewards), nu, level)
            return policy, logits
        draws = draws.replace(initial_dist=_initial_dist(spec, buffer))
        axes = Model(None, None, 0, 0, None, farsighted=True)
        values = jax.vmap(policy_value, in_axes=(None, axes, 0))

        def objective(pi):
            return draw_quantile(values(pi, draws, thetas), level)

        mean = draws.replace(transitions=p_mean, leader_reward=r_mean)
        start = stepwise_policy(mean, theta)
        return warm_gradient_plan(objective, logits, start, cfg.planner_steps, cfg.planner_lr)

    return _data_learner("bayes-optimistic", spec, cfg, model, plan)


def myopic_response_counts(buffer: Any) -> Array:
    """``[H,S,A,B]`` a myopic follower's response counts from a learner's data: running
    :class:`~bayes_qse.policy_stats.ResponseCounts`, or the per-policy statistics of a
    rarely-switching learner summed over policies (a myopic response ignores the policy)."""
    stats = getattr(buffer, "stats", None)
    if stats is not None:
        return jnp.sum(stats.counts, axis=0)
    return buffer.counts


def mle_optimistic_learner(spec: GameSpec, cfg: LearnerConfig) -> Learner:
    """``mle-optimistic``: the paper's optimistic algorithm (see the module docstring).

    Follower: the unpenalised MLE (``mle_prior_scale``, inf by default; the prior's ridge while a
    direction is less informed than the prior) and its set at the squared radius
    :func:`bayes_qse.confidence.follower_radius` (``radius="chi2"``: the Wald set;
    ``"theory"``: the likelihood-ratio set within the class), with the leader's own sets in one
    :class:`~bayes_qse.confidence.ConfidenceSet`, rebuilt each episode from the running
    statistics.  Myopic follower: :func:`~bayes_qse.confidence.plan_on_set` (``optimism="box"``:
    ``Q_h(s,a)`` at least the best value any game of the set gives, at any radius;
    ``"first-order"``: the linearised bonus, for comparison only).  Farsighted follower:
    :func:`~bayes_qse.confidence.joint_optimistic_plan` from the previous logits and the
    step-wise heuristic.
    """
    model = frequentist_leader_model(
        spec, cfg.leader_model, cfg.reward_bound, cfg.leader_features, cfg.lsvi_reg
    )
    H, S = spec.shape[:2]
    delta = confidence_split(spec, cfg.delta)
    beta_of = follower_radius(spec, cfg.radius, 1.0 - delta, cfg.theta_bound)
    lr = cfg.radius == "theory"

    def plan(key, theta, precision, stats, logits, buffer):
        rank = jnp.sum(identified_split(precision)[2])
        beta = beta_of(rank, H * buffer.count, buffer.count)
        counts = myopic_response_counts(buffer) if lr and not spec.farsighted else None
        follower = follower_set(
            spec,
            theta,
            precision,
            beta,
            likelihood_ratio=lr,
            theta_bound=cfg.theta_bound,
            response_counts=counts,
        )
        cs = confidence_set(spec, follower, model, stats, _first_state_counts(buffer, S), delta)
        if not spec.farsighted:
            _, _, policy = plan_on_set(cs, optimistic=True, method=cfg.optimism)
            return policy, logits
        start = stepwise_policy(folded_model(cs, True), theta)
        return joint_optimistic_plan(
            cs,
            key,
            logits,
            start,
            n_candidates=cfg.n_candidates,
            steps=cfg.planner_steps,
            learning_rate=cfg.planner_lr,
        )

    return _data_learner(
        "mle-optimistic",
        spec,
        cfg,
        model,
        plan,
        ridge=cfg.mle_precision,
        theta_bound=cfg.theta_bound,
    )


def fixed_policy_learner(name: str, spec: GameSpec, policy: Any, theta: Any = None) -> Learner:
    """A leader that announces ``policy[H,S,A]`` every episode and learns nothing: ``oracle``
    (the true QSE policy, regret 0) and the ``uniform`` baseline."""
    H, S, A, B = spec.shape
    d = spec.feature_dim
    policy = jnp.asarray(policy, jnp.float64)
    theta = jnp.zeros((d,)) if theta is None else jnp.asarray(theta, jnp.float64)

    def init(key: Array) -> OnlineState:
        buffer = buffer_init(1, H, S, A)
        stats = KnownModel(np.zeros((H, S, A, B, S)) + 1.0 / S, np.zeros((H, S, A, B))).init(
            H, S, A, B
        )
        return OnlineState(key, buffer, stats, theta, jnp.eye(d), jnp.zeros((H, S, A)), policy)

    def update(state: OnlineState, episode: Episode) -> OnlineState:
        return state

    return Learner(name, init, act, update)


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
        return fixed_policy_learner("oracle", spec, qse_policy, true_game.theta)
    if name == "uniform":
        H, S, A, _ = spec.shape
        return fixed_policy_learner("uniform", spec, np.full((H, S, A), 1.0 / A))
    if name in ONLINE_VARIANTS:
        base, overrides = ONLINE_VARIANTS[name]
        built = make_learner(base, spec, dataclasses.replace(cfg, **overrides))
        return built._replace(name=name)
    builders = {
        "greedy": greedy_learner,
        "thompson": thompson_learner,
        "bayes-optimistic": bayes_optimistic_learner,
        "mle-optimistic": mle_optimistic_learner,
    }
    if name not in builders:
        raise ConfigError(
            f"learner: unknown learner {name!r}; choose from {', '.join(ALL_LEARNERS)}"
        )
    return builders[name](spec, cfg)


def learner_summary(name: str, state: OnlineState) -> tuple[Array, Array]:
    """``(theta_hat[d], set_size)`` behind the learner's current policy; set size 0 for the
    fixed-policy leaders (``oracle`` knows ``theta``; ``uniform`` estimates nothing), else
    :func:`~bayes_qse.learners.common.laplace_set_size`."""
    if name in ("oracle", "uniform"):
        return state.theta_hat, jnp.zeros(())
    return state.theta_hat, laplace_set_size(state.precision)


def __getattr__(name: str):
    """``LEARNER_VARIANTS``, deprecated here: the one variant table is
    :data:`bayes_qse.learners.config.LEARNER_VARIANTS`; the online ones are
    :data:`ONLINE_VARIANTS`."""
    if name == "LEARNER_VARIANTS":
        warnings.warn(
            "bayes_qse.learners.online.LEARNER_VARIANTS is deprecated; use ONLINE_VARIANTS "
            "(or bayes_qse.learners.config.LEARNER_VARIANTS, online and offline together; it "
            "will be removed in the next release)",
            DeprecationWarning,
            stacklevel=2,
        )
        return ONLINE_VARIANTS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ALL_LEARNERS",
    "BASELINES",
    "LEARNERS",
    "ONLINE_VARIANTS",
    "bayes_optimistic_learner",
    "greedy_learner",
    "learner_summary",
    "make_learner",
    "mle_optimistic_learner",
    "fixed_policy_learner",
    "myopic_response_counts",
    "quantile_level",
    "thompson_learner",
]
