"""Shared pieces of the online learners (docs/math.md §5): what the leader knows about the game, the
learners' configuration, their state pytree, and the small pure functions every learner uses
(the value of a policy under a model, the warm-started gradient planner for a farsighted
follower).

Shapes: ``H`` horizon, ``S`` states, ``A`` leader actions, ``B`` follower actions, ``d``
feature dimension, ``M`` posterior draws or candidate parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..data import Episode, EpisodeBuffer
from ..errors import BayesQSEInputError, ConfigError
from ..leader_model import (
    REWARD_BOUNDS,
    EmpiricalBonusModel,
    KnownModel,
    LinearLSVI,
    TabularStats,
    lsvi_features,
)
from ..model import Model
from ..optim import adam_ascent
from ..planning import policy_value
from ..sets import identified_split
from ..ties import tolerant_argmax
from ..types import Array, PRNGKey

# ---------------------------------------------------------------------------------------
# What the leader knows, and the learners' settings
# ---------------------------------------------------------------------------------------


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False)
class GameSpec:
    """What the leader knows about the game before playing (docs/math.md §1, §5).

    She knows the follower's features and rationality (``eta`` known, docs/math.md §1.3),
    whether the follower is farsighted, and a *stated* range of her own rewards (a
    configuration value, never read off the true rewards); she does *not* know ``theta``.
    The initial distribution is stated (an array) or learned from the episodes' first states
    (``initial_dist=None``, the default).  Her own transitions and rewards are known only in
    planning mode (``transitions``/``leader_reward`` not None); otherwise she learns them
    (eq. 5).

    A pytree (``jax.tree_util.register_dataclass``): the arrays are its leaves, while
    ``farsighted`` and ``reward_range`` are static (pytree metadata), so a jitted function
    taking a spec may branch on them in Python (``1.0 if spec.farsighted else 0.0``) and
    recompiles when they change.

    Attributes:
        features: ``[H,S,A,B,d]``.
        eta: rationality (scalar).
        initial_dist: ``[S]`` when stated, ``None`` when learned from data.
        farsighted: static flag of the follower model.
        reward_range: static ``(low, high)`` stated bounds of the leader's reward (floats).
        transitions: ``[H,S,A,B,S]`` in planning mode, else None.
        leader_reward: ``[H,S,A,B]`` in planning mode, else None.
    """

    features: Any
    eta: Any
    initial_dist: Any
    farsighted: bool = dataclasses.field(metadata=dict(static=True))
    reward_range: tuple[float, float] = dataclasses.field(metadata=dict(static=True))
    transitions: Any = None
    leader_reward: Any = None

    def __post_init__(self) -> None:
        # Static fields are jit cache keys: hashable Python values, whatever the caller gave.
        object.__setattr__(self, "farsighted", bool(self.farsighted))
        object.__setattr__(self, "reward_range", tuple(float(x) for x in self.reward_range))

    def replace(self, **changes: Any) -> GameSpec:
        """A copy with ``changes`` (e.g. other ``features``)."""
        return dataclasses.replace(self, **changes)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(H, S, A, B)``."""
        return tuple(int(x) for x in np.shape(self.features)[:4])  # type: ignore[return-value]

    @property
    def feature_dim(self) -> int:
        return int(np.shape(self.features)[-1])

    @property
    def model(self) -> Model:
        """What the leader knows as a :class:`bayes_qse.model.Model` (unknown fields None)."""
        return Model.of(self)

    @property
    def known_model(self) -> bool:
        return self.transitions is not None

    @property
    def initial_dist_known(self) -> bool:
        return self.initial_dist is not None

    @classmethod
    def from_game(
        cls,
        game: Any,
        known_model: bool = False,
        *,
        reward_range: tuple[float, float] = (0.0, 1.0),
        initial_dist: Any = None,
    ) -> GameSpec:
        """The leader's knowledge of ``game``: its features, ``eta`` and follower model, a
        stated ``reward_range`` and, in planning mode (``known_model``), her transitions and
        rewards.  ``initial_dist``: ``None`` (learned from data), ``"game"`` (the game's own
        initial distribution is announced, e.g. a patrol that always starts calm), or an
        ``[S]`` array.

        The true rewards are read once, only to refuse a stated range that does not contain
        them (a configuration error: every bonus built on that range would be wrong); they are
        never handed to the leader outside planning mode.
        """
        lo, hi = _check_reward_range(reward_range)
        r = np.asarray(game.leader_reward)
        if r.min() < lo - 1e-12 or r.max() > hi + 1e-12:
            raise ConfigError(
                f"reward_range: the game's leader rewards span [{r.min():.6g}, {r.max():.6g}], "
                f"outside the stated range [{lo:.6g}, {hi:.6g}]; state a range that contains them"
            )
        if isinstance(initial_dist, str):
            if initial_dist != "game":
                raise ConfigError(
                    f"initial_dist: expected 'game', an array or None, got {initial_dist!r}"
                )
            rho = np.asarray(game.initial_dist, np.float64)
        elif initial_dist is None:
            rho = None
        else:
            rho = np.asarray(initial_dist, np.float64)
            if rho.shape != (game.shape[1],) or np.any(rho < 0) or abs(rho.sum() - 1) > 1e-9:
                raise ConfigError(
                    f"initial_dist: expected a distribution over {game.shape[1]} states"
                )
        return cls(
            features=np.asarray(game.features),
            eta=float(game.eta),
            initial_dist=rho,
            farsighted=bool(game.farsighted),
            reward_range=(lo, hi),
            transitions=np.asarray(game.transitions) if known_model else None,
            leader_reward=r if known_model else None,
        )


def _check_reward_range(reward_range: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in reward_range)
    except (TypeError, ValueError):
        raise ConfigError(f"reward_range: expected (low, high), got {reward_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ConfigError(f"reward_range: need finite low < high, got {reward_range!r}")
    return lo, hi


def initial_state_counts(first_states: Array, mask: Array, n_states: int) -> Array:
    """``[S]`` counts of the episodes' first states (``first_states[N]``, ``mask[N]``)."""
    return jnp.sum(jax.nn.one_hot(first_states, n_states) * mask[:, None], axis=0)


def initial_dist_estimate(spec: GameSpec, counts: Array) -> Array:
    """The leader's initial distribution ``[S]``: the stated one, else the posterior mean
    under a uniform Dirichlet(1) prior, ``(1 + n_s) / (S + n)`` (uniform before data)."""
    if spec.initial_dist_known:
        return jnp.asarray(spec.initial_dist, jnp.float64)
    return (1.0 + counts) / (counts.shape[0] + jnp.sum(counts))


def linear_leader_model(
    spec: GameSpec, leader_features: str, reg: float, noise_sd: float
) -> LinearLSVI:
    """The model-free leader (``leader_model="linear"``, docs/math.md §3.1) of both learner
    families: :class:`~bayes_qse.leader_model.LinearLSVI` on ``lsvi_features(phi,
    leader_features)`` with ridge ``reg``; its weight posterior ``Normal(w_hat, noise_sd^2
    Lambda^{-1})`` (eq. 5b) is the conjugate one under the prior ``Normal(0, noise_sd^2 / reg
    I)``.  :class:`ConfigError` for a farsighted follower."""
    if spec.farsighted:
        raise ConfigError(
            "leader_model: 'linear' (model-free) supports a myopic follower only; a farsighted "
            "follower's response needs the leader's transition model"
        )
    features = lsvi_features(spec.features, leader_features)
    return LinearLSVI(features, reg=float(reg), noise_sd=float(noise_sd))


def frequentist_leader_model(
    spec: GameSpec, leader_model: str, reward_bound: str, leader_features: str, lsvi_reg: float
) -> Any:
    """The leader's model of the frequentist learners (``mle-optimistic``, ``mle-pessimistic``):
    the known one in planning mode, LSVI for ``leader_model="linear"``, else
    :class:`~bayes_qse.leader_model.EmpiricalBonusModel` with the ``reward_bound`` bonus on the
    stated ``reward_range`` (docs/math.md eq. 5)."""
    if spec.known_model:
        return KnownModel(spec.transitions, spec.leader_reward)
    if leader_model == "linear":
        return linear_leader_model(spec, leader_features, lsvi_reg, 1.0)
    return EmpiricalBonusModel(reward_bound, spec.reward_range)


@dataclasses.dataclass(frozen=True)
class LearnerConfig:
    """Settings of the online learners (all static: changing one recompiles).

    Attributes:
        capacity: episodes the buffer holds (``>=`` the number of episodes to play, so the
            likelihood uses all data).  Farsighted follower, ``refit="every"`` only: facing a
            myopic follower the learner keeps running counts of every episode instead
            (:class:`~bayes_qse.policy_stats.ResponseCounts`).
        prior_scale: ``sigma`` of the ``Normal(0, sigma^2 I)`` prior on ``theta`` (docs/math.md §2);
            the frequentist learners use the same ``1/sigma^2`` as a ridge penalty on the MLE
            (as in logistic bandits: it keeps the estimate finite before the data identify
            ``theta``), so that every learner shares the same point estimate and Hessian.
        newton_steps: maximum damped-Newton steps per episode, warm-started at the previous
            estimate (:func:`bayes_qse.likelihood.map_core`; myopic follower only: for a
            farsighted one each episode takes one step, :func:`bayes_qse.optim.online_newton_step`).
        num_draws: ``M`` joint posterior draws of ``bayes-optimistic``.
        quantile_offset: the quantile schedule of ``bayes-optimistic``,
            ``level_t = 1 - 1 / (t + quantile_offset)`` after ``t`` episodes (Bayes-UCB with
            ``c = 0``, Kaufmann, Cappé & Garivier 2012); with ``M`` draws the empirical
            quantile saturates at the largest draw.
        confidence_level: ``1 - delta`` of the frequentist sets (the Wald/likelihood-ratio
            radius ``beta = chi2_d(level)`` and the leader model's bonuses).
        n_candidates: starts of the farsighted ``mle-optimistic``'s joint search over policy
            and confidence set (:func:`~bayes_qse.confidence.joint_optimistic_plan`).
        planner_steps: Adam steps per episode of the warm-started farsighted planner.
        planner_lr: its learning rate.
        reward_noise_sd: noise scale of the Bayesian leader model's Normal rewards (relative
            to the reward range).
        optimism: how ``mle-optimistic`` bounds the follower's response over its confidence
            set: ``"box"`` (default, valid at any radius: the exact response box of the Wald
            set, :func:`bayes_qse.sets.wald_response_box`) or ``"first-order"`` (the
            linearised bonus ``sqrt(beta) ||grad E_nu[W]||_{I^+}``, an approximation that is
            *not* an upper bound at realistic radii; kept for comparison).  Myopic follower
            only; a farsighted one is always optimised jointly over policy and set.
        radius: the confidence set and radius of ``mle-optimistic``: ``"chi2"`` (the Wald
            set at ``chi2_r(level)`` with ``r`` the Fisher rank, the asymptotic law of the Wald
            statistic) or ``"theory"`` (the paper's likelihood-ratio set at its finite-sample
            radius :func:`bayes_qse.sets.theory_radius`, ``n_t = H t`` observations, union
            bound over episodes ``delta_t = delta / (t (t + 1))``; planned over a certified
            outer ellipsoid of it, :func:`bayes_qse.sets.lr_response_box`; ``optimism="box"``
            only).
        reward_bound: the reward bonus of ``mle-optimistic``'s tabular leader model
            (:class:`bayes_qse.leader_model.EmpiricalBonusModel`): ``"best"`` (default: per
            cell the smaller of Hoeffding and empirical Bernstein, each at half the rewards'
            delta), ``"hoeffding"`` or ``"bernstein"``.
        mle_ridge: ridge of the frequentist MLE (0: the paper's unpenalised MLE; directions
            the data leave unidentified stay unbounded in the set and are reported).
        theta_bound: ``B`` of the paper's bounded parameter class ``||theta|| <= B``: the MLE
            is projected onto it (it may not exist on separable data) and the theory radius
            covers it.
        leader_model: how the leader learns her own transitions and rewards (eq. 5):
            ``"tabular"`` (default; model-based, Dirichlet/Normal posterior or empirical model
            with bonuses) or ``"linear"`` (model-free: least-squares value iteration on leader
            features, :class:`bayes_qse.leader_model.LinearLSVI`, docs/math.md §3.1; myopic
            follower only).
        leader_features: the features of ``"linear"``: ``"follower"`` (``(phi, 1)``) or
            ``"tabular"`` (one-hot ``(s,a,b)``), :func:`bayes_qse.leader_model.lsvi_features`.
        lsvi_reg: the ridge ``lambda`` of LSVI's Gram matrices (``"linear"`` only).
        refit: ``"every"`` (default: refit and replan after every episode, the likelihood over
            a buffer of ``capacity`` episodes, or over running counts for a myopic follower)
            or ``"switching"`` (rarely-switching policies,
            :mod:`bayes_qse.learners.switching`: refit and announce a new policy only when the
            log-determinant of the information has grown by ``log(switch_factor)`` since the
            last switch; the likelihood runs on per-policy statistics, docs/math.md eq. 4').
        switch_factor: the determinant growth factor ``> 1`` that triggers a switch.
        max_policies: rows of the per-policy statistics (``refit="switching"``): the most
            distinct policies a run may announce (a :class:`ConfigError` when exceeded).
    """

    capacity: int = 1000
    prior_scale: float = 1.0
    newton_steps: int = 5
    num_draws: int = 32
    quantile_offset: float = 2.0
    confidence_level: float = 0.9
    n_candidates: int = 8
    planner_steps: int = 30
    planner_lr: float = 0.2
    reward_noise_sd: float = 0.5
    optimism: str = "box"
    radius: str = "chi2"
    reward_bound: str = "best"
    mle_ridge: float = 0.0
    theta_bound: float = 10.0
    leader_model: str = "tabular"
    leader_features: str = "follower"
    lsvi_reg: float = 1.0
    refit: str = "every"
    switch_factor: float = 2.0
    max_policies: int = 512

    def __post_init__(self) -> None:
        for name, allowed in (
            ("optimism", ("box", "first-order")),
            ("radius", ("chi2", "theory")),
            ("reward_bound", REWARD_BOUNDS),
            ("leader_model", ("tabular", "linear")),
            ("leader_features", ("follower", "tabular")),
            ("refit", ("every", "switching")),
        ):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name}: must be one of {allowed}, got {getattr(self, name)!r}")
        if self.radius == "theory" and self.optimism != "box":
            raise ConfigError(
                "radius: 'theory' (the likelihood-ratio set) is planned over its certified "
                "outer box only; use optimism='box'"
            )
        for name in ("mle_ridge", "theta_bound"):
            value = getattr(self, name)
            if isinstance(value, bool) or not np.isfinite(value) or value < 0:
                raise ConfigError(f"{name}: must be a finite number >= 0, got {value!r}")
        if self.theta_bound <= 0:
            raise ConfigError(f"theta_bound: must be > 0, got {self.theta_bound!r}")
        if (
            isinstance(self.switch_factor, bool)
            or not np.isfinite(self.switch_factor)
            or self.switch_factor <= 1.0
        ):
            raise ConfigError(
                f"switch_factor: must be a finite number > 1, got {self.switch_factor!r}"
            )
        for name in (
            "capacity",
            "newton_steps",
            "num_draws",
            "n_candidates",
            "planner_steps",
            "max_policies",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ConfigError(f"{name}: must be an integer >= 1, got {value!r}")
        for name in ("prior_scale", "planner_lr", "reward_noise_sd", "lsvi_reg"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ConfigError(f"{name}: must be a finite number > 0, got {value!r}")
        if not 0.0 < self.confidence_level < 1.0:
            raise ConfigError(
                f"confidence_level: must lie in (0, 1), got {self.confidence_level!r}"
            )
        if not self.quantile_offset >= 1.0:
            raise ConfigError(f"quantile_offset: must be >= 1, got {self.quantile_offset!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> LearnerConfig:
        """A config from a dict of (a subset of) the fields; unknown keys raise ConfigError."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"learner config: unknown key(s) {', '.join(unknown)}; known: {sorted(known)}"
            )
        return cls(**values)


# ---------------------------------------------------------------------------------------
# The learner interface
# ---------------------------------------------------------------------------------------


class OnlineState(NamedTuple):
    """The state of an online learner: a pytree of fixed-shape arrays (no recompilation).

    Attributes:
        key: PRNG key (raw ``uint32[2]``) of the learner's own randomness.
        buffer: the data kept of the episodes played so far: an
            :class:`~bayes_qse.data.EpisodeBuffer` (fixed capacity, masked; farsighted),
            :class:`~bayes_qse.policy_stats.ResponseCounts` (myopic) or, with
            ``refit="switching"``, per-policy statistics.
        leader_stats: sufficient statistics of the leader's own model (eq. 5).
        theta_hat: ``[d]`` current point estimate of ``theta`` (MAP / penalised MLE).
        precision: ``[d,d]`` observed Fisher information plus prior precision at
            ``theta_hat`` (the Laplace precision; the Wald set's matrix).
        logits: ``[H,S,A]`` warm start of the farsighted gradient planner.
        policy: ``[H,S,A]`` the policy the learner announces next.
    """

    key: Array
    buffer: EpisodeBuffer
    leader_stats: TabularStats
    theta_hat: Array
    precision: Array
    logits: Array
    policy: Array


class Learner(NamedTuple):
    """An online learner as three pure functions (BlackJAX style), built by
    :func:`bayes_qse.learners.make_learner` for one ``GameSpec`` and ``LearnerConfig``:

    - ``init(key) -> OnlineState`` (the first policy is planned from the prior);
    - ``act(state) -> policy[H,S,A]`` (the policy to announce; pure, no randomness);
    - ``update(state, episode) -> OnlineState`` (store the episode, refit, plan the next
      policy).

    All three are jit-able and shape-stable, so a loop over episodes compiles once.
    """

    name: str
    init: Callable[[PRNGKey], OnlineState]
    act: Callable[[OnlineState], Array]
    update: Callable[[OnlineState, Episode], OnlineState]


def act(state: OnlineState) -> Array:
    """The policy to announce: every learner plans in ``update`` (and ``init``) so that the
    farsighted planner can be warm-started; ``act`` reads the plan."""
    return state.policy


# ---------------------------------------------------------------------------------------
# Values and the warm-started farsighted planner
# ---------------------------------------------------------------------------------------


def true_value(game: Any, policy: Array) -> Array:
    """``J(policy)`` in the true game (exact policy evaluation; used for the regret)."""
    return policy_value(policy, game.model, game.theta)


def warm_gradient_plan(
    objective: Callable[[Array], Array],
    warm_logits: Array,
    start_policy: Array,
    n_steps: int,
    learning_rate: float,
    start_temperature: float = 4.0,
) -> tuple[Array, Array]:
    """Maximise ``objective(policy[H,S,A])`` over softmax policies (eq. 2b), warm-started.

    Two starts ascend by Adam for ``n_steps`` steps: the previous episode's logits (so the
    planner keeps improving across episodes at a small cost per episode) and
    ``start_temperature * start_policy`` (e.g. the step-wise heuristic under the current model,
    :func:`bayes_qse.planning.stepwise_policy`).  The two results and ``start_policy`` itself
    are candidates; the best by ``objective`` wins.

    Returns ``(policy[H,S,A], logits[H,S,A])``.
    """
    starts = jnp.stack([warm_logits, start_temperature * start_policy])
    fn = lambda logits: objective(jax.nn.softmax(logits, axis=-1))
    finals = jax.vmap(lambda x0: adam_ascent(fn, x0, n_steps, learning_rate))(starts)
    logits = jnp.concatenate([finals, (start_temperature * start_policy)[None]])
    # the start policy enters as itself (one-hot), not only through its tempered logits
    policies = jnp.concatenate([jax.nn.softmax(finals, axis=-1), start_policy[None]])
    values = jax.vmap(objective)(policies)
    best = tolerant_argmax(values)
    return policies[best], logits[best]


# ---------------------------------------------------------------------------------------
# Fast posterior draws of the leader's tabular model
# ---------------------------------------------------------------------------------------


def laplace_set_size(precision: Array) -> Array:
    """``sqrt(trace(precision^+))``: the root total variance of the Laplace posterior, which
    is also the scale of the Wald ellipsoid (its radius multiplies it by ``sqrt(beta)``).  For
    a singular (unridged) Fisher information the trace runs over the identified directions
    only (:func:`bayes_qse.sets.identified_split`); the set is unbounded along the others."""
    lam, _, ident = identified_split(precision)
    return jnp.sqrt(jnp.sum(jnp.where(ident, 1.0 / jnp.where(ident, lam, 1.0), 0.0)))


def check_episodes(episodes: Any, name: str = "episodes") -> int:
    """Validate a number of episodes (an integer ``>= 1``)."""
    if isinstance(episodes, bool) or int(episodes) != episodes or episodes < 1:
        raise BayesQSEInputError(f"{name}: must be an integer >= 1, got {episodes!r}")
    return int(episodes)


__all__ = [
    "GameSpec",
    "Learner",
    "LearnerConfig",
    "OnlineState",
    "act",
    "check_episodes",
    "frequentist_leader_model",
    "initial_dist_estimate",
    "initial_state_counts",
    "laplace_set_size",
    "linear_leader_model",
    "true_value",
    "warm_gradient_plan",
]
