"""The repeated security game (docs/math.md eq. 8, §5): each round the defender commits to a
coverage, the SUQR attacker sees it and attacks one target, the defender stores the pair.

The defender is a learner of three functions (:class:`SecurityLearner`, the shape of the Markov
game's :class:`bayes_qse.learners.common.Learner`), made by :func:`make_security_learner`:

- ``init(key) -> SecurityState``: no data; the round-0 fit (the prior's mode ``w = 0``);
- ``act(state) -> CoveragePlan``: the plan of round ``t = state.t`` from the weights the fit
  drew (the certified planner :func:`~bayes_qse.security.planning.plan_coverage`, NumPy on the
  host, with ``seed = t``);
- ``update(state, coverage, attack) -> SecurityState``: store the pair in row ``t`` of the
  state's :class:`~bayes_qse.commitment.CommitmentStats`, refit, draw for round ``t + 1``.

The fit is the core's: the MAP of the SUQR weights under ``N(0, prior_scale^2 I)``,

    w_hat = argmax_w  L(w) - |w|^2 / (2 sigma^2),    P = -Hess L(w_hat) + I / sigma^2    (7c)

by the jitted Newton of :func:`bayes_qse.likelihood.map_core`, warm-started at the previous
round's MAP, with its Laplace posterior ``N(w_hat, P^-1)``
(:func:`bayes_qse.inference.laplace_draws`).  The learner plans (eq. 8e) with

- ``"greedy"``: the MAP (no exploration);
- ``"thompson"``: one Laplace draw (posterior sampling);
- ``"optimistic"``: the ``optimism_level``-quantile over ``num_draws`` Laplace draws (``1``: the
  best case over the draws, an optimistic plan over a sampled credible set).

Greedy and Thompson plans are certified optima for the weights they plan on, and so is the
optimistic plan at ``optimism_level = 1``; a lower level is the local search of
:func:`~bayes_qse.security.planning.plan_coverage` seeded with the draws' certified plans.  In
round 0 there are no data: the MAP is ``w = 0`` (a uniform attacker), whose certified plan
covers the targets with the largest ``R^d - P^d``.

The planner is NumPy (branch and bound), so the rounds are a host loop, not a ``lax.scan``:
:func:`run_security_learner` plays any :class:`SecurityLearner` against the true attacker and
records; :func:`run_security_online` makes the named learner and calls it.  Regret of round
``t`` is ``U(c*; w*) - U(c_t; w*)`` with ``c*`` the certified plan for the true ``w*``
(eq. 8c); the round's certified gap bounds how negative it can be.

Keys: round ``t`` of seed ``s`` splits ``fold_in(PRNGKey(s), t)`` in three (:func:`round_keys`):
the first draws the learner's weights, the third the attack (the second is unused, kept so
that published runs stay bit for bit).  A run is a function of the seed, the game, the
learner and its settings, and the number of rounds (the capacity of the stored pairs).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..commitment import CommitmentStats
from ..errors import BayesQSEInputError
from ..inference import laplace_draws
from ..likelihood import map_core
from ..model import as_model
from ..settings import Settings, check_count, check_real
from ..types import Array, PRNGKey
from .game import SecurityGame, attack_log_probs, defender_utility, suqr_features
from .planning import CoveragePlan, plan_coverage

#: The defender's learners of the repeated security game (not the Markov-game learners of
#: :data:`bayes_qse.learners.online.LEARNERS`).
SECURITY_LEARNERS = ("greedy", "thompson", "optimistic")


@dataclasses.dataclass(frozen=True)
class SecurityLearnerConfig(Settings):
    """Settings of the repeated security game's learners (:mod:`bayes_qse.settings`' idiom;
    hashable, so static under ``jit``: changing one recompiles).

    Attributes:
        prior_scale: ``sigma`` of the ``N(0, sigma^2 I)`` prior on the SUQR weights (the
            precision ``1 / sigma^2`` is derived).
        num_draws: ``M`` Laplace draws of ``"optimistic"`` (retired name ``n_draws``).
        optimism_level: the quantile of ``"optimistic"`` over its draws, in ``(0, 1]``
            (``1``: the best case over the draws).
        n_starts: starts of the coverage planner's local search
            (:func:`~bayes_qse.security.planning.plan_coverage`).
        steps: its gradient steps.
        learning_rate: its step size.
        newton_steps: Newton steps of each round's warm-started MAP.
    """

    prior_scale: float = 10.0
    num_draws: int = 32
    optimism_level: float = 1.0
    n_starts: int = 4
    steps: int = 100
    learning_rate: float = 0.05
    newton_steps: int = 20

    def __post_init__(self) -> None:
        for name in ("prior_scale", "learning_rate"):
            check_real(name, getattr(self, name), 0.0, open_low=True)
        check_real("optimism_level", self.optimism_level, 0.0, 1.0, open_low=True)
        for name in ("num_draws", "n_starts", "steps", "newton_steps"):
            check_count(name, getattr(self, name))


class SecurityState(NamedTuple):
    """The defender's state between rounds: a pytree of fixed shapes (``R`` the capacity,
    ``T`` targets, ``M`` the weights a plan uses).

    Attributes:
        key: ``uint32[2]`` the run's root key ``PRNGKey(seed)`` (:func:`round_keys`).
        t: ``int32`` scalar, the pairs stored so far: the round the next plan is for.
        stats: :class:`~bayes_qse.commitment.CommitmentStats` of the stored pairs:
            ``psi[R, T, 3] = (c_t, R^a_t, P^a_t)`` of each round's coverage (eq. 8a) and
            ``counts[R, T]`` its one-hot attack; rows ``>= t`` are zero coverage, zero counts.
        theta_map: ``[3]`` the MAP of the stored pairs (eq. 7c with the prior; the next fit's
            warm start).
        precision: ``[3, 3]`` the Laplace precision there, ``-Hess L + I / prior_scale^2``.
        thetas: ``[M, 3]`` the weights the next plan uses (``M = 1`` for greedy, the MAP;
            ``1`` Laplace draw for Thompson; ``num_draws`` for optimistic).
    """

    key: Array
    t: Array
    stats: CommitmentStats
    theta_map: Array
    precision: Array
    thetas: Array


class SecurityLearner(NamedTuple):
    """A defender of the repeated game as three functions (the shape of
    :class:`bayes_qse.learners.common.Learner`), made by :func:`make_security_learner`:

    - ``init(key) -> SecurityState``: no pairs stored; fitted and drawn for round 0 (jitted);
    - ``act(state) -> CoveragePlan``: the plan of round ``state.t`` (host: the planner is
      NumPy); raises when the capacity is used up;
    - ``update(state, coverage[T], attack) -> SecurityState``: store the pair, refit (the
      jitted ``map_core`` warm-started at ``state.theta_map``), draw for round ``t + 1``;
      validates its inputs on the host, then runs one jitted step.
    """

    name: str
    init: Callable[[PRNGKey], SecurityState]
    act: Callable[[SecurityState], CoveragePlan]
    update: Callable[[SecurityState, Array, Array], SecurityState]


class OnlineRun(NamedTuple):
    """One run: ``coverage[R, T]``, ``attacks[R]``, ``utility[R]`` (true ``U(c_t; w*)``),
    ``regret[R]``, ``theta_map[R, 3]`` (the MAP the round planned from) and ``gap[R]`` (the
    plan's certified gap for the weights it planned on)."""

    coverage: np.ndarray
    attacks: np.ndarray
    utility: np.ndarray
    regret: np.ndarray
    theta_map: np.ndarray
    gap: np.ndarray


def round_keys(key: Array, t: Array | int) -> Array:
    """``[3, 2]`` keys of round ``t``: ``split(fold_in(key, t), 3)``; row 0 draws the learner's
    weights, row 2 the attack (row 1 unused)."""
    return jax.random.split(jax.random.fold_in(key, t), 3)


def _plan_thetas(learner, key, w_map, neg_h, s: SecurityLearnerConfig):
    """The weights the learner plans on: ``[M, 3]``."""
    if learner == "greedy":
        return w_map[None]
    return laplace_draws(key, w_map, neg_h, 1 if learner == "thompson" else s.num_draws)


def _fit(game, key, t, stats, w_prev, learner, settings: SecurityLearnerConfig):
    """Round ``t``'s MAP of ``stats`` from ``w_prev``, its precision, and the draws."""
    lam = 1.0 / settings.prior_scale**2
    w_map, _, neg_h, _, _ = map_core(as_model(game), stats, lam, w_prev, settings.newton_steps)
    thetas = _plan_thetas(learner, round_keys(key, t)[0], w_map, neg_h, settings)
    return w_map, neg_h, thetas


@partial(jax.jit, static_argnames=("learner", "settings", "capacity"))
def _init(game, key, learner, settings: SecurityLearnerConfig, capacity: int) -> SecurityState:
    zeros = jnp.zeros((capacity, game.n_targets))
    stats = CommitmentStats(suqr_features(game, zeros), zeros)
    t = jnp.zeros((), jnp.int32)
    w_map, neg_h, thetas = _fit(game, key, t, stats, jnp.zeros(3), learner, settings)
    return SecurityState(key, t, stats, w_map, neg_h, thetas)


@partial(jax.jit, static_argnames=("learner", "settings"))
def _update(game, state: SecurityState, coverage, attack, learner, settings) -> SecurityState:
    t = state.t
    psi = state.stats.psi.at[t].set(suqr_features(game, coverage))
    row = jax.nn.one_hot(attack, game.n_targets, dtype=state.stats.counts.dtype)
    stats = CommitmentStats(psi, state.stats.counts.at[t].set(row))
    w_map, neg_h, thetas = _fit(game, state.key, t + 1, stats, state.theta_map, learner, settings)
    return SecurityState(state.key, t + 1, stats, w_map, neg_h, thetas)


def _check_pair(game: SecurityGame, state: SecurityState, coverage, attack):
    """The stored pair as ``(coverage[T] float64, attack int32)``, or a one-line error."""
    T, capacity = game.n_targets, int(np.shape(state.stats.counts)[0])
    if int(state.t) >= capacity:
        raise BayesQSEInputError(f"capacity: all {capacity} rows of the state are stored")
    c = np.asarray(coverage, np.float64)
    if c.shape != (T,):
        raise BayesQSEInputError(f"coverage: expected shape ({T},), got {c.shape}")
    if not (np.all(np.isfinite(c)) and np.all(c >= -1e-9) and np.all(c <= 1 + 1e-9)):
        raise BayesQSEInputError("coverage: entries must lie in [0, 1]")
    if c.sum() > game.resources + 1e-6:
        raise BayesQSEInputError(f"coverage: sums to {c.sum():.6g} > the budget {game.resources}")
    b = np.asarray(attack)
    if b.shape != () or not np.issubdtype(b.dtype, np.integer) or not 0 <= int(b) < T:
        raise BayesQSEInputError(f"attack: expected a target index in [0, {T}), got {attack!r}")
    return c, np.int32(b)


def make_security_learner(
    game: SecurityGame,
    learner: str,
    settings: SecurityLearnerConfig | Mapping | None = None,
    capacity: int = 100,
) -> SecurityLearner:
    """The defender ``learner`` (:data:`SECURITY_LEARNERS`) of the repeated game on ``game``'s
    payoffs, storing at most ``capacity`` pairs (fixed shapes: one compilation per learner,
    settings, capacity and game size).  The learner never sees ``game.theta`` (it is dropped).

    Raises:
        BayesQSEInputError: an unknown ``learner``, a ``capacity`` that is not an integer
            ``>= 1``, ``settings`` of another type.
        ConfigError: a bad value in a ``settings`` mapping (naming it).
    """
    if learner not in SECURITY_LEARNERS:
        raise BayesQSEInputError(f"learner: must be one of {SECURITY_LEARNERS}, got {learner!r}")
    if isinstance(capacity, bool) or not isinstance(capacity, int | np.integer) or capacity < 1:
        raise BayesQSEInputError(f"capacity: must be an integer >= 1, got {capacity!r}")
    if settings is None or isinstance(settings, Mapping):
        settings = SecurityLearnerConfig.from_mapping(settings)
    if not isinstance(settings, SecurityLearnerConfig):
        raise BayesQSEInputError(
            "settings: expected a SecurityLearnerConfig or a mapping, got "
            f"{type(settings).__name__}"
        )
    defender = game.replace(theta=None)
    rule, level = (
        ("quantile", settings.optimism_level) if learner == "optimistic" else ("mean", 0.5)
    )

    def init(key: PRNGKey) -> SecurityState:
        return _init(defender, jnp.asarray(key), learner, settings, int(capacity))

    def act(state: SecurityState) -> CoveragePlan:
        t = int(state.t)
        if t >= capacity:
            raise BayesQSEInputError(f"capacity: all {capacity} rows of the state are stored")
        thetas = np.asarray(state.thetas)
        return plan_coverage(
            defender,
            thetas,
            rule=rule,
            level=level,
            n_starts=settings.n_starts,
            steps=settings.steps,
            learning_rate=settings.learning_rate,
            seed=t,
        )

    def update(state: SecurityState, coverage, attack) -> SecurityState:
        c, b = _check_pair(defender, state, coverage, attack)
        return _update(defender, state, c, b, learner, settings)

    return SecurityLearner(learner, init, act, update)


@jax.jit
def _attack(game, key, t, c):
    """The SUQR attack on ``c[T]`` with round ``t``'s key, and ``U(c; w*)`` (eq. 8a-8b)."""
    b = jax.random.categorical(round_keys(key, t)[2], attack_log_probs(game.theta, game, c))
    return b, defender_utility(game.theta, game, c)


def _check_run(game: SecurityGame, n_rounds) -> int:
    if game.theta is None:
        raise BayesQSEInputError("game.theta: the repeated game needs the attacker's true weights")
    if isinstance(n_rounds, bool) or int(n_rounds) != n_rounds or n_rounds < 1:
        raise BayesQSEInputError(f"n_rounds: must be an integer >= 1, got {n_rounds!r}")
    return int(n_rounds)


def run_security_learner(
    game: SecurityGame,
    learner: SecurityLearner,
    n_rounds: int,
    seed: int,
    best_value: float | None = None,
) -> OnlineRun:
    """Play ``n_rounds`` rounds of ``learner`` against ``game``'s SUQR attacker (its true
    ``theta``); deterministic given ``seed``.

    Round ``t``: ``plan = act(state)``; the attacker draws ``b ~ q(c_t; w*)`` (eq. 8a) with
    ``round_keys(PRNGKey(seed), t)[2]``; the round's utility ``U(c_t; w*)`` (eq. 8b) and
    regret ``best_value - U(c_t; w*)`` are recorded with ``state.theta_map`` and the plan's
    gap; ``state = update(state, c_t, b)``.  ``best_value``: ``U(c*; w*)``
    (:func:`oracle_value` when ``None``).

    Raises:
        BayesQSEInputError: ``game`` without its true weights, ``n_rounds`` not an integer
            ``>= 1`` or above the learner's capacity (checked before the first round).
    """
    n_rounds = _check_run(game, n_rounds)
    best = oracle_value(game) if best_value is None else float(best_value)
    key = jax.random.PRNGKey(seed)
    state = learner.init(key)
    capacity = int(np.shape(state.stats.counts)[0])
    if n_rounds > capacity:
        raise BayesQSEInputError(
            f"n_rounds: {n_rounds} rounds, but the learner stores at most {capacity} pairs "
            "(make_security_learner(..., capacity=n_rounds))"
        )
    rows = []
    for t in range(n_rounds):
        plan = learner.act(state)
        b, u = _attack(game, key, t, jnp.asarray(plan.coverage))
        rows.append((plan.coverage, int(b), float(u), np.asarray(state.theta_map), plan.gap))
        state = learner.update(state, plan.coverage, b)
    cov, attacks, u, w, gap = (np.asarray(x) for x in zip(*rows, strict=True))
    return OnlineRun(cov, attacks, u, best - u, w, gap)


def oracle_plan(game: SecurityGame):
    """The certified plan against the true weights (eq. 8c): the regret's reference."""
    return plan_coverage(game, game.theta)


def oracle_value(game: SecurityGame) -> float:
    """``U(c*; w*)``: the certified best value against the true weights (eq. 8c)."""
    return oracle_plan(game).value


def run_security_online(
    game: SecurityGame,
    learner: str,
    n_rounds: int,
    seed: int,
    settings: SecurityLearnerConfig | Mapping | None = None,
    best_value: float | None = None,
) -> OnlineRun:
    """Play ``n_rounds`` of the repeated game with the named ``learner``
    (:func:`make_security_learner` at capacity ``n_rounds``, :func:`run_security_learner`);
    deterministic given ``seed``."""
    if learner not in SECURITY_LEARNERS:
        raise BayesQSEInputError(f"learner: must be one of {SECURITY_LEARNERS}, got {learner!r}")
    n_rounds = _check_run(game, n_rounds)
    defender = make_security_learner(game, learner, settings, capacity=n_rounds)
    return run_security_learner(game, defender, n_rounds, seed, best_value)


#: Names of the previous release, kept for one release: ``old -> new`` (CHANGELOG.md).
_DEPRECATED = {
    "run_online": "run_security_online",
    "LEARNERS": "SECURITY_LEARNERS",
    "OnlineSettings": "SecurityLearnerConfig",
}


def __getattr__(name: str):
    """The deprecated names, with a DeprecationWarning: ``run_online`` and ``LEARNERS`` were
    homonyms of the Markov-game runner and learner list; ``OnlineSettings`` was the
    unvalidated NamedTuple of the settings (its ``n_draws`` is now ``num_draws``)."""
    if name in _DEPRECATED:
        new = _DEPRECATED[name]
        warnings.warn(
            f"bayes_qse.security.online.{name} is deprecated; use "
            f"bayes_qse.security.online.{new} (it will be removed in the next release)",
            DeprecationWarning,
            stacklevel=2,
        )
        return globals()[new]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SECURITY_LEARNERS",
    "OnlineRun",
    "SecurityLearner",
    "SecurityLearnerConfig",
    "SecurityState",
    "make_security_learner",
    "oracle_plan",
    "oracle_value",
    "round_keys",
    "run_security_learner",
    "run_security_online",
]
