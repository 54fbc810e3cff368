"""Offline learners, docs/math.md §5 (offline row): from one dataset of episodes played by a
behaviour policy, return a leader policy and, where the method gives one, a lower bound on its
value.

Learners (all share the signature ``fit(dataset, game_spec, config, key) -> OfflineResult``):

- ``oracle``: the QSE of the true game (needs the true :class:`~bayes_qse.games.Game`).
- ``plugin``: MAP/MLE follower ``theta_hat`` (eq. 4) and the empirical leader model (eq. 5),
  then exact backward induction (2a); no pessimism, no lower bound.
- ``mle-pessimistic``: the paper's offline algorithm (PAPER.md, ingredient 4): MLE + Wald
  ellipsoid (``docs/math.md``), and pessimism *inside* backward induction.  By default
  (``penalty="box"``) it plans over the response box implied by the ellipsoid
  (:func:`~bayes_qse.sets.wald_response_box`, then :func:`~bayes_qse.confidence.plan_on_set`
  with the L1 transition balls and the reward lower bounds): the box contains every response of
  every ``theta`` in the ellipsoid, so the planned ``Q`` is below the true ``Q`` of every
  member at any radius.  ``penalty="first-order"`` (variant ``mle-pessimistic-first-order``)
  is the paper's efficient linear-myopic penalty ``sqrt(beta) ||grad_theta E_nu[W]||_cov``
  (``plan_on_set(..., method="first-order")``): a first-order approximation that
  is **not** a valid lower bound at the radii used in practice (``beta >= 5``; the tests show
  members of the ellipsoid whose ``Q`` is below it).  Either way the
  returned ``lower_bound`` is the pessimistic value of the returned policy over the set
  (:func:`~bayes_qse.confidence.value_on_set`, docs/math.md eq. 6g): it holds
  with probability ``>= 1 - delta`` whenever the Wald ellipsoid covers the true ``theta`` at its
  level (chi-square radius: asymptotically; see "What the lower bounds certify" below).
- ``bayes-pessimistic``: posterior draws of ``theta`` (Laplace at the MAP, or NUTS) and of the
  leader's model (Dirichlet on transitions, a conjugate Normal on mean rewards), then the
  lower-quantile (or lower-CVaR) rule (6) inside backward induction
  (:func:`~bayes_qse.robust_planning.quantile_plan`).  Its ``lower_bound`` is the
  ``delta``-quantile of the posterior distribution of ``J(pi_hat)``.

What the lower bounds certify:

- ``mle-pessimistic``: ``P_data( J(pi_hat) >= lower_bound ) >= 1 - delta``, a frequentist
  statement over datasets, under (i) the Wald ellipsoid of the ridge-regularised MLE at level
  ``1 - delta_theta`` covers the true ``theta`` (the chi-square radius makes this asymptotic,
  not finite-sample: the one approximation in the claim), (ii) Weissman's L1 inequality for
  the transitions and (iii) Hoeffding's and the empirical Bernstein inequality (the smaller
  bonus of the two, each at half the rewards' share, by default: ``reward_bound``)
  for rewards in the known ``reward_range``, each with a union bound over ``(h,s,a,b)``;
  ``delta`` is split equally among the learned parts.  Given (i)-(iii) the bound is exact, not
  first-order: it is the pessimistic value of the policy over a set that contains the truth.
- ``bayes-pessimistic``: ``P_posterior( J(pi_hat) >= lower_bound | data ) ~= 1 - delta`` (up to
  Monte Carlo error over ``num_draws``), a statement about the posterior, not about repeated
  datasets: its frequentist coverage holds only approximately, when the posterior is close to
  the sampling distribution (large ``N``, Bernstein-von Mises) -- the experiment reports how
  often it actually holds.

The leader's model (transitions and rewards) is learned from the same data unless the
:class:`~bayes_qse.learners.common.GameSpec` carries it (planning mode).  The leader knows the
features, ``eta``, the initial distribution and the range of her rewards.  Pessimistic learners
support a myopic follower only (the ellipsoid penalty and the response box are per-``(h,s,a)``
facts that a farsighted follower's policy-dependent response does not have); ``plugin`` and
``oracle`` support both.

The confidence set ``mle-pessimistic`` plans and certifies over, and the planning on it, are
:mod:`bayes_qse.confidence`'s (shared with the online ``mle-optimistic``); the behaviour
policies are :mod:`.behaviour`'s, the leader-model estimates :mod:`bayes_qse.leader_model`'s.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..confidence import (
    ConfidenceSet,
    confidence_set,
    confidence_split,
    follower_set,
    plan_on_set,
    value_on_set,
)
from ..data import Dataset, buffer_from_dataset
from ..errors import BayesQSEInputError
from ..follower import myopic_response
from ..games import Game
from ..inference import laplace_draws, sample_posterior
from ..leader_model import (
    EmpiricalBonusModel,
    first_state_counts,
    posterior_leader_draws,
)
from ..likelihood import map_core, response_counts
from ..model import Model
from ..planning import evaluate_policy, leader_value, plan_farsighted, plan_myopic, solve_qse
from ..robust_planning import quantile_plan
from ..sets import chi2_radius, fisher_rank
from ..types import Array
from .common import (
    GameSpec,
    frequentist_leader_model,
    initial_dist_estimate,
    linear_leader_model,
)
from .config import OfflineLearnerConfig, variants_of

# ---------------------------------------------------------------------------------------
# What the leader knows, and what a learner returns
# ---------------------------------------------------------------------------------------


class OfflineResult(NamedTuple):
    """What an offline learner returns.

    Attributes:
        policy: ``[H,S,A]`` the policy the leader announces.
        lower_bound: a lower bound on ``J(policy)`` (see the module docstring for what it
            certifies), or ``None`` when the method gives none.
        info: diagnostics (estimates, radii, the planner's own value, ...); JSON-able values.
    """

    policy: np.ndarray
    lower_bound: float | None
    info: dict[str, Any]


OfflineLearner = Callable[
    [Dataset, Any, OfflineLearnerConfig | Mapping[str, Any] | None, Array | None], OfflineResult
]


def learner_config(config: OfflineLearnerConfig | Mapping[str, Any] | None = None):
    """``config`` as an :class:`~bayes_qse.learners.config.OfflineLearnerConfig` (a mapping of
    some of its fields, ``None`` for the defaults, or the config itself).

    Raises:
        ConfigError: an unknown key or a bad value, naming it.
    """
    if isinstance(config, OfflineLearnerConfig):
        return config
    return OfflineLearnerConfig.from_mapping(config)


def _as_spec(game_spec: Any) -> GameSpec:
    if isinstance(game_spec, GameSpec):
        return game_spec
    if isinstance(game_spec, Game):
        return GameSpec.from_game(game_spec)
    raise BayesQSEInputError(
        f"game_spec: expected a GameSpec or a Game, got {type(game_spec).__name__}"
    )


def _check_dataset(dataset: Any, spec: GameSpec) -> Dataset:
    if not isinstance(dataset, Dataset):
        raise BayesQSEInputError(f"dataset: expected a Dataset, got {type(dataset).__name__}")
    return dataset.validate_for(spec)


def initial_dist_of(dataset: Dataset, spec: GameSpec) -> np.ndarray:
    """``[S]``: the stated initial distribution, else its estimate from the episodes' first
    states (:func:`~bayes_qse.learners.common.initial_dist_estimate`)."""
    return np.asarray(initial_dist_estimate(spec, jnp.asarray(first_state_counts(dataset, spec))))


def _key(key: Any) -> Array:
    return jax.random.key(0) if key is None else key


# ---------------------------------------------------------------------------------------
# Estimates: the follower (eq. 4) and the leader's own model (eq. 5)
# ---------------------------------------------------------------------------------------


def _capacity(n: int) -> int:
    """Buffer capacity: the next power of two >= n (few distinct shapes -> few compiles)."""
    return 1 << max(int(n) - 1, 0).bit_length()


def fit_follower(
    dataset: Dataset,
    spec: GameSpec,
    ridge: float = 1.0,
    newton_steps: int = 25,
    transitions: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Regularised MLE (= MAP under ``theta ~ N(0, I/ridge)``) of eq. (4).

    Uses :func:`bayes_qse.likelihood.map_core` on a buffer whose capacity is rounded up to a
    power of two (so a sweep over dataset sizes compiles only a few times).  A farsighted
    follower's likelihood runs the soft Bellman recursion (1) on ``transitions`` (the leader's
    known or estimated kernel ``[H,S,A,B,S]``; the spec's by default); a myopic one ignores
    them.  Returns ``(theta_hat[d], precision[d,d])`` with ``precision = -Hess log posterior``
    (the observed Fisher information plus ``ridge * I``): the Wald ellipsoid's geometry and the
    Laplace posterior's precision.
    """
    d = spec.features.shape[-1]
    buf = buffer_from_dataset(dataset, capacity=_capacity(max(dataset.n_episodes, 1)))
    P = spec.transitions if transitions is None else transitions
    if spec.farsighted and P is None:
        raise BayesQSEInputError("transitions: a farsighted follower's likelihood needs them")
    features = jnp.asarray(spec.features)
    if spec.farsighted:
        model, stats = Model(features, spec.eta, jnp.asarray(P), farsighted=True), buf
    else:
        model, stats = Model(features, spec.eta), response_counts(buf, spec.shape)
    theta, _, neg_hess, _, _ = map_core(
        model, stats, float(ridge) * jnp.eye(d), jnp.zeros(d), int(newton_steps)
    )
    return np.asarray(theta), np.asarray(neg_hess)


# ---------------------------------------------------------------------------------------
# The confidence set of mle-pessimistic (the one mle-optimistic plans on)
# ---------------------------------------------------------------------------------------


def _frequentist_leader(dataset: Dataset, spec: GameSpec, cfg: OfflineLearnerConfig):
    """The frequentist leader model (known, empirical or LSVI, eq. 5) and its statistics of
    ``dataset``."""
    leader = frequentist_leader_model(
        spec, cfg.leader_model, cfg.reward_bound, cfg.leader_features, cfg.lsvi_reg
    )
    return leader, leader.update(leader.init(*spec.shape), dataset)


def pessimistic_set(
    dataset: Dataset, spec: GameSpec, config: OfflineLearnerConfig | Mapping[str, Any] | None = None
) -> tuple[ConfidenceSet, dict[str, Any]]:
    """The :class:`~bayes_qse.confidence.ConfidenceSet` of ``mle-pessimistic`` and its
    diagnostics: the Wald ellipsoid of the regularised MLE (:func:`fit_follower`) at the
    chi-square radius of its Fisher rank (the ridge removed: the directions the data identify)
    and level ``1 - delta_part``, its response box, and the leader's sets from the data
    (:func:`~bayes_qse.confidence.confidence_set`), ``delta`` split equally among the parts
    (:func:`~bayes_qse.confidence.confidence_split`).  Built eagerly (not under ``jit``), so
    its arrays are those the published results were computed from."""
    cfg = learner_config(config)
    d_part = confidence_split(spec, cfg.delta)
    theta_hat, precision = fit_follower(dataset, spec, cfg.prior_precision, cfg.newton_steps)
    d = theta_hat.shape[0]
    # chi-square degrees of freedom: the directions the data identify (the ridge bounds the rest)
    rank = fisher_rank(precision - cfg.prior_precision * np.eye(d))
    beta = chi2_radius(max(rank, 1), 1.0 - d_part)
    leader, stats = _frequentist_leader(dataset, spec, cfg)
    follower = follower_set(spec, theta_hat, precision, beta)
    cs = confidence_set(spec, follower, leader, stats, first_state_counts(dataset, spec), d_part)
    tabular = isinstance(leader, EmpiricalBonusModel)
    info = {
        "theta_hat": theta_hat,
        "beta": beta,
        "fisher_rank": rank,
        "delta_split": d_part,
        "cells_unvisited": int(np.sum(np.asarray(stats.n) == 0)) if tabular else None,
    }
    return cs, info


# ---------------------------------------------------------------------------------------
# Learners
# ---------------------------------------------------------------------------------------


def fit_oracle(
    dataset: Dataset,
    game_spec: Any,
    config: OfflineLearnerConfig | Mapping[str, Any] | None = None,
    key: Array | None = None,
) -> OfflineResult:
    """The QSE of the true game (ignores the data); ``game_spec`` must be the true
    :class:`~bayes_qse.games.Game`.  No lower bound is claimed."""
    if not isinstance(game_spec, Game):
        raise BayesQSEInputError("game_spec: the oracle needs the true Game (with theta)")
    sol = solve_qse(game_spec)
    return OfflineResult(np.asarray(sol.policy), None, {"value": float(sol.value)})


def fit_plugin(
    dataset: Dataset,
    game_spec: Any,
    config: OfflineLearnerConfig | Mapping[str, Any] | None = None,
    key: Array | None = None,
) -> OfflineResult:
    """Plug-in: plan (2a, or 2b when farsighted) on the MAP ``theta_hat`` and the empirical
    leader model (uniform transitions and mid-range rewards where unseen).  No lower bound."""
    spec = _as_spec(game_spec)
    dataset = _check_dataset(dataset, spec)
    cfg = learner_config(config)
    leader, stats = _frequentist_leader(dataset, spec, cfg)
    P, r = (np.asarray(x) for x in leader.mean(stats))
    theta_hat, _ = fit_follower(dataset, spec, cfg.prior_precision, cfg.newton_steps, P)
    plugin = spec.model.replace(
        features=jnp.asarray(spec.features),
        transitions=jnp.asarray(P),
        leader_reward=jnp.asarray(r),
    )
    if spec.farsighted:
        plugin = plugin.replace(initial_dist=jnp.asarray(initial_dist_of(dataset, spec)))
        policies, values, best = plan_farsighted(plugin, jnp.asarray(theta_hat), _key(key))
        policy = np.asarray(policies[int(best)])
        planned = float(values[int(best)])
    else:
        _, v, pi = plan_myopic(plugin, theta_hat)
        policy = np.asarray(pi)
        planned = float(initial_dist_of(dataset, spec) @ np.asarray(v[0]))
    return OfflineResult(policy, None, {"theta_hat": theta_hat, "planned_value": planned})


def _require_myopic(spec: GameSpec, name: str) -> None:
    if spec.farsighted:
        raise BayesQSEInputError(
            f"game_spec: {name} supports a myopic follower only (farsighted: use plugin)"
        )


def fit_mle_pessimistic(
    dataset: Dataset,
    game_spec: Any,
    config: OfflineLearnerConfig | Mapping[str, Any] | None = None,
    key: Array | None = None,
) -> OfflineResult:
    """The paper's offline algorithm (pessimism over the confidence sets), myopic follower.

    Plans on :func:`pessimistic_set` with :func:`~bayes_qse.confidence.plan_on_set`
    (``optimistic=False``; ``mle-optimistic`` is the other caller).  ``penalty="box"``
    (default): exact pessimistic planning over the ellipsoid's response box, the L1 transition
    balls and the reward lower bounds (eq. 6c with ``min``); its ``Q_h(s,a)`` is at most the
    ``Q`` of every model in the set, at any radius ``beta``.
    ``penalty="first-order"`` (``"ellipsoid"`` is a deprecated alias): backward induction
    with ``Q_h(s,a) = E_{nu_hat}[W] - sqrt(beta) ||grad_theta E_nu[W]||_cov`` (clipped to the
    range of ``W``), where ``W_b`` uses the reward lower bound and the transition penalty
    ``-(l1_radius / 2) * span(V_{h+1})`` (``span <= (H-h) (r_max - r_min)``): a first-order
    approximation of the minimum over the ellipsoid, which it can exceed at ``beta >= 5``.

    ``lower_bound`` = :func:`~bayes_qse.confidence.value_on_set` of the returned policy,
    pessimistic (eq. 6g; see the module docstring for what it certifies);
    ``info["planned_value"]`` is the planner's own value.  With ``leader_model="linear"`` the
    leader's side is PEVI's penalty on LSVI (:class:`~bayes_qse.leader_model.LinearLSVI`, eq.
    5c), a bound only when the game is a linear MDP in the leader features (its
    self-normalised confidence set), not the tabular sets'.
    """
    spec = _as_spec(game_spec)
    _require_myopic(spec, "mle-pessimistic")
    dataset = _check_dataset(dataset, spec)
    cfg = learner_config(config)
    cs, set_info = pessimistic_set(dataset, spec, cfg)
    _, v, pi = plan_on_set(cs, optimistic=False, method=cfg.penalty)
    policy = np.asarray(pi)
    planned = float(initial_dist_of(dataset, spec) @ np.asarray(v[0]))
    lb = float(value_on_set(jnp.asarray(policy), cs, optimistic=False))
    info = {**set_info, "planned_value": planned, "penalty": cfg.penalty}
    return OfflineResult(policy, lb, info)


# ---- bayes-pessimistic ----------------------------------------------------------------


def _posterior_theta(
    dataset: Dataset, spec: GameSpec, cfg: OfflineLearnerConfig, key: Array
) -> tuple[np.ndarray, str]:
    """``theta[M,d]`` posterior draws under ``theta ~ N(0, I/ridge)``."""
    M = cfg.num_draws
    if cfg.posterior == "nuts":
        post = sample_posterior(
            dataset,
            spec.model.replace(farsighted=False),
            method="nuts",
            num_samples=M,
            seed=int(jax.random.randint(key, (), 0, 2**31 - 1)),
            prior="normal",
            prior_scale=cfg.prior_scale,
        )
        return np.asarray(post.theta), "nuts"
    theta_hat, precision = fit_follower(dataset, spec, cfg.prior_precision, cfg.newton_steps)
    draws = laplace_draws(key, jnp.asarray(theta_hat), jnp.asarray(precision), M)
    return np.asarray(draws), "laplace"


def _leader_draws(
    dataset: Dataset, spec: GameSpec, key: Array, M: int, cfg: OfflineLearnerConfig
) -> tuple[Array, Array]:
    """``M`` posterior draws of the leader's model: the tabular Dirichlet/Normal posterior
    (:func:`~bayes_qse.leader_model.posterior_leader_draws`), or with ``leader_model="linear"``
    LSVI's weight posterior (:meth:`~bayes_qse.leader_model.LinearLSVI.sample`: reward weights
    ``Normal(w_hat, sigma^2 Lambda^{-1})``, the mean ``P_hat`` repeated; docs/math.md eq. 5b).
    Returns ``(transitions[M,H,S,A,B,S], rewards[M,H,S,A,B])``."""
    if cfg.leader_model == "linear" and not spec.known_model:
        lo, hi = spec.reward_range
        noise_sd = max(0.5 * (hi - lo), 1e-12)  # half the reward range, as the tabular model's
        model = linear_leader_model(spec, cfg.leader_features, cfg.lsvi_reg, noise_sd)
        return model.sample(model.update(model.init(*spec.shape), dataset), key, M)
    return posterior_leader_draws(dataset, spec, key, M, cfg.dirichlet_prior)


@jax.jit
def _draw_values(P: Array, r: Array, nu: Array, policy: Array, rho: Array) -> Array:
    """``J^m(policy)`` under each draw: ``[M]``."""
    draws, axes = Model(None, None, P, r), Model(None, None, 0, 0)
    v, _ = jax.vmap(evaluate_policy, in_axes=(axes, 0, None))(draws, nu, policy)
    return v[:, 0] @ rho


def fit_bayes_pessimistic(
    dataset: Dataset,
    game_spec: Any,
    config: OfflineLearnerConfig | Mapping[str, Any] | None = None,
    key: Array | None = None,
) -> OfflineResult:
    """Posterior pessimism, myopic follower: the lower-quantile (``rule="quantile"``) or
    lower-CVaR (``rule="cvar"``) rule (6) at level ``delta`` inside backward induction, over
    ``num_draws`` joint draws of ``theta`` (Laplace or NUTS) and of the leader's model.

    ``lower_bound`` is the ``delta``-quantile over the draws of ``J^m(pi_hat)`` -- the value of
    the returned policy under draw ``m`` -- so ``P_posterior(J(pi_hat) >= lower_bound | data)
    ~= 1 - delta``: a credible bound, not a frequentist guarantee (module docstring).
    """
    spec = _as_spec(game_spec)
    _require_myopic(spec, "bayes-pessimistic")
    dataset = _check_dataset(dataset, spec)
    cfg = learner_config(config)
    k_theta, k_model = jax.random.split(_key(key))
    theta, method = _posterior_theta(dataset, spec, cfg, k_theta)
    P, r = _leader_draws(dataset, spec, k_model, theta.shape[0], cfg)
    nu = myopic_response(Model(jnp.asarray(spec.features), spec.eta), theta)
    level = cfg.delta
    P_mean, r_mean = P.mean(axis=0), r.mean(axis=0)
    # LSVI's draws share one kernel (its mean): no M copies
    shared_p = spec.known_model or cfg.leader_model == "linear"
    leader = Model(
        None,
        None,
        jnp.asarray(P_mean if shared_p else P),
        jnp.asarray(r_mean if spec.known_model else r),
    )
    _, v, pi = quantile_plan(leader, nu, level, cfg.rule)
    policy = np.asarray(pi)
    rho = initial_dist_of(dataset, spec)
    values = np.asarray(
        _draw_values(jnp.asarray(P), jnp.asarray(r), nu, jnp.asarray(policy), jnp.asarray(rho))
    )
    lb = float(np.quantile(values, level))
    info = {
        "posterior": method,
        "rule": cfg.rule,
        "planned_value": float(rho @ np.asarray(v[0])),
        "posterior_mean_value": float(values.mean()),
        "theta_mean": theta.mean(axis=0),
    }
    return OfflineResult(policy, lb, info)


#: Registry of offline learners by name (docs/math.md §5); variants fix a config key.
OFFLINE_LEARNERS: dict[str, OfflineLearner] = {
    "oracle": fit_oracle,
    "plugin": fit_plugin,
    "mle-pessimistic": fit_mle_pessimistic,
    "bayes-pessimistic": fit_bayes_pessimistic,
}

#: The offline variants of :data:`~bayes_qse.learners.config.LEARNER_VARIANTS` (their one
#: home): ``name -> (base learner, OfflineLearnerConfig overrides)``.
OFFLINE_VARIANTS = variants_of(OFFLINE_LEARNERS)


def get_learner(name: str) -> OfflineLearner:
    """The offline learner ``name`` (a base name or a variant)."""
    if name in OFFLINE_LEARNERS:
        return OFFLINE_LEARNERS[name]
    if name in OFFLINE_VARIANTS:
        base, overrides = OFFLINE_VARIANTS[name]
        fit = OFFLINE_LEARNERS[base]

        def variant(dataset, game_spec, config=None, key=None):
            return fit(dataset, game_spec, learner_config(config).replace(**overrides), key)

        variant.__name__ = f"fit_{name.replace('-', '_')}"
        variant.__doc__ = f"``{base}`` with {overrides}."
        return variant
    known = sorted([*OFFLINE_LEARNERS, *OFFLINE_VARIANTS])
    raise BayesQSEInputError(f"learner: unknown offline learner {name!r}; choose from {known}")


def fit_offline(
    name: str,
    dataset: Dataset,
    game_spec: Any,
    config: OfflineLearnerConfig | Mapping[str, Any] | None = None,
    key: Array | None = None,
) -> OfflineResult:
    """Run the offline learner ``name`` on ``dataset``."""
    return get_learner(name)(dataset, game_spec, config, key)


def suboptimality(game: Game, policy: Any, optimal_value: float | None = None) -> float:
    """``J(pi*) - J(policy)`` by exact policy evaluation on the true game (docs/math.md §5)."""
    best = solve_qse(game).value if optimal_value is None else float(optimal_value)
    return float(best - leader_value(game, policy))


def __getattr__(name: str):
    """``LEARNER_VARIANTS``, deprecated here: the one variant table is
    :data:`bayes_qse.learners.config.LEARNER_VARIANTS`; the offline ones are
    :data:`OFFLINE_VARIANTS`."""
    if name == "LEARNER_VARIANTS":
        warnings.warn(
            "bayes_qse.learners.offline.LEARNER_VARIANTS is deprecated; use OFFLINE_VARIANTS "
            "(or bayes_qse.learners.config.LEARNER_VARIANTS, online and offline together; it "
            "will be removed in the next release)",
            DeprecationWarning,
            stacklevel=2,
        )
        return OFFLINE_VARIANTS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "OFFLINE_LEARNERS",
    "OFFLINE_VARIANTS",
    "OfflineResult",
    "fit_bayes_pessimistic",
    "fit_follower",
    "fit_mle_pessimistic",
    "fit_offline",
    "fit_oracle",
    "fit_plugin",
    "get_learner",
    "learner_config",
    "pessimistic_set",
    "suboptimality",
]
