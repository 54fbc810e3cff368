"""Experiment 2 of docs/math.md §7: offline suboptimality against dataset size.

For each game, behaviour policy (:data:`bayes_qse.learners.behaviour.BEHAVIOURS`) and seed, one
dataset of ``max(sizes)`` episodes is simulated; each learner is fitted on the nested prefixes
of ``sizes`` episodes and scored by exact policy evaluation on the true game:

- ``suboptimality = J(pi*) - J(pi_hat)``;
- for learners that return a lower bound, whether it holds (``lower_bound <= J(pi_hat)``) --
  compare with the nominal ``1 - delta`` (a frequentist claim for ``mle-pessimistic``, a
  posterior one for ``bayes-pessimistic``; see :mod:`bayes_qse.learners.offline`).

Games (``linear`` and ``tabular`` from :func:`bayes_qse.games.random_game` with the ``game``
settings):

- ``linear``: the follower's utility is linear in ``feature_dim`` Gaussian features (the
  paper's linear case: ``theta`` is shared by all ``(h,s,a)``, so any coverage informs it);
- ``tabular``: the same transitions and rewards with a tabular follower utility
  (:func:`bayes_qse.games.tabular_game`, ``d = H S A (B-1)``): the follower at an ``(h,s,a)``
  is learned only from visits there, so coverage matters for the follower too;
- ``tempting``: :func:`bayes_qse.games.tempting_game` with the ``tempting`` settings -- a
  safe leader action and several tempting ones, each with its own follower parameter; with
  the ``near-optimal`` behaviour the tempting actions are rarely tried, so the plug-in's
  maximum over their noisy estimates picks a bad one (the test bed that needs pessimism);
- ``large``: the many-site patrol game (:func:`bayes_qse.games.patrol_large_game` with the
  ``large`` settings; by default 20 sites, ``H = 5``, ``(S, A, B) = (2, 20, 21)``, ``d = 4``),
  where a tabular leader model has ``S A B S`` cells per step to learn: the test bed that
  compares the model-based learners with the model-free ``-linear`` ones (LSVI on leader
  features, docs/math.md §3.1);
- ``random-large``: :func:`bayes_qse.games.random_large_game` with the ``random-large``
  settings (a reduced shape by default; the full preset is far too slow for this experiment).

The leader is told a stated reward range, never read off the true rewards: the game settings'
own ``reward_range`` when they have one (``large``: ``[-2, 1]``, the patrol game's rewards),
else the experiment's ``reward_range`` (``[0, 1]``).

The leader learns her own transitions and rewards from the same data (``known_model``
false) or knows them (true).  A unit of work is one ``(game, behaviour, seed)``
(:class:`OfflineUnit`, run by :mod:`bayes_qse.experiments.executors`); units are saved as
they finish, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .._validate import check_memory, game_bytes
from ..data import dataset_bytes, simulate
from ..errors import BayesQSEInputError, ConfigError, GameValidationError
from ..learners.behaviour import BEHAVIOURS, behaviour_policy
from ..learners.common import GameSpec
from ..learners.offline import get_learner, learner_config
from ..planning import leader_value, solve_qse
from ..progress import stage_printer
from .config import ExperimentConfig, Table
from .executors import experiment_run
from .games import GameRef, config_game, game_settings, game_shape
from .games import stated_reward_range as _stated_reward_range
from .offline_report import plot  # noqa: F401  (the experiment's plot step, read as module.plot)
from .store import RunStore
from .units import RESULT, OnePartUnit, UnitParts

OFFLINE_GAMES = ("linear", "tabular", "tempting", "large", "random-large")

#: Games with their own settings table (and, for ``large``, their own ``reward_range``).
LARGE_GAMES = ("large", "random-large")

#: The random stream of a ``(game, behaviour)``, fixed by their *names* (never by their
#: places in a grid, so reordering or growing a grid changes no unit's numbers):
#: ``stream = 100 * GAME_STREAMS[game] + BEHAVIOUR_STREAMS[behaviour]`` (:func:`stream`).
#: The values reproduce the published runs, whose grids listed ``linear, tabular,
#: tempting`` in that order and ``large`` / ``random-large`` alone: the two large games share
#: ``linear``'s stream, which couples nothing that is compared (the games differ; no
#: estimate pairs units of two games).
GAME_STREAMS = {"linear": 0, "tabular": 1, "tempting": 2, "large": 0, "random-large": 0}
BEHAVIOUR_STREAMS = {name: i for i, name in enumerate(BEHAVIOURS)}


def stream(game: str, behaviour: str) -> int:
    """The random stream of ``(game, behaviour)`` (:data:`GAME_STREAMS`): the dataset of seed
    ``s`` is simulated with seed ``1000 s + stream``, the learners draw from
    ``fold_in(key(s), stream)``."""
    return 100 * GAME_STREAMS[game] + BEHAVIOUR_STREAMS[behaviour]


@dataclasses.dataclass(frozen=True)
class OfflineSuboptimalityConfig(ExperimentConfig):
    """The ``offline_suboptimality`` config (one field per TOML key; the CI-sized
    defaults), checked when made: a one-line :class:`ConfigError` naming the key, every game
    sized against memory and built before any unit runs."""

    KEYS = {"random_large": "random-large"}

    seeds: int = 2
    base_seed: int = 0
    games: tuple[str, ...] = ("linear",)
    game: Table = Table(
        seed=3,
        n_states=2,
        n_leader_actions=2,
        n_follower_actions=2,
        horizon=2,
        feature_dim=3,
        eta=2.0,
    )
    # the ``tempting`` game's constants (bayes_qse.games.tempting_game)
    tempting: Table = Table(n_tempting=6, safe_value=0.6, tempting_value=0.3, eta=2.0)
    # the many-site patrol game (bayes_qse.games.patrol_large_game) and the range of its
    # leader rewards that the leader is told
    large: Table = Table(n_sites=20, horizon=5, eta=2.0, reward_range=(-2.0, 1.0))
    # bayes_qse.games.random_large_game at a reduced shape (rewards in [0, 1])
    random_large: Table = Table(seed=0, n_states=10, n_actions=5, horizon=5, feature_dim=8, eta=1.0)
    # the range of the leader's rewards she is told (games without their own reward_range)
    reward_range: tuple[float, float] = (0.0, 1.0)
    known_model: bool = False
    sizes: tuple[int, ...] = (10, 100)
    behaviours: tuple[str, ...] = ("uniform", "near-optimal", "poor-coverage")
    learners: tuple[str, ...] = ("oracle", "plugin", "mle-pessimistic", "bayes-pessimistic")
    near_optimal_epsilon: float = 0.2
    poor_coverage_epsilon: float = 0.05
    # the learners' settings ([learner] in TOML, as in a sweep spec): every
    # OfflineLearnerConfig field (variants override some)
    learner: Table = Table(
        delta=0.1,
        prior_scale=1.0,
        num_draws=64,
        posterior="laplace",
        newton_steps=25,
        penalty="box",
        reward_bound="best",
        rule="quantile",
        dirichlet_prior=1.0,
        leader_model="tabular",
        leader_features="follower",
        lsvi_reg=1.0,
    )

    def check(self, config: dict[str, Any]) -> None:
        """Experiment-specific checks (:class:`ConfigError` naming the key)."""
        for g in config["games"]:
            if g not in OFFLINE_GAMES:
                raise ConfigError(f"config: games: unknown game {g!r}; choose from {OFFLINE_GAMES}")
        for b in config["behaviours"]:
            if b not in BEHAVIOURS:
                raise ConfigError(f"config: behaviours: unknown {b!r}; choose from {BEHAVIOURS}")
        for name in config["learners"]:
            try:
                get_learner(name)
            except ValueError as exc:
                raise ConfigError(f"config: learners: {exc}") from None
        sizes = config["sizes"]
        if not sizes or any(int(n) < 1 for n in sizes) or sorted(sizes) != list(sizes):
            raise ConfigError(f"config: sizes must be increasing positive integers, got {sizes}")
        for key in ("near_optimal_epsilon", "poor_coverage_epsilon"):
            if not 0.0 < config[key] <= 1.0:
                raise ConfigError(f"config: {key} must lie in (0, 1], got {config[key]}")
        for g, ref in OFFLINE_GAME_REFS.items():  # every game table given, each field checked
            if ref.table in config and (g in config["games"] or ref.table != "tempting"):
                game_settings(ref.kind, config[ref.table], ref.table)
        _check_range(config["reward_range"], "reward_range")
        if "reward_range" in config["large"]:
            _check_range(config["large"]["reward_range"], "large.reward_range")
        for g in config["games"]:  # sizes against memory, then every game built, before any run
            _check_game_size(g, config)
        for g in config["games"]:
            if g not in LARGE_GAMES:
                continue
            try:
                game = experiment_game(g, config)
            except (GameValidationError, TypeError) as exc:
                raise ConfigError(f"config: {g}: {exc}") from None
            key = "large.reward_range" if g == "large" else "reward_range"
            try:
                GameSpec.from_game(game, reward_range=_stated_reward_range(g, config))
            except ConfigError as exc:
                raise ConfigError(f"config: {key}: game {g!r}: {exc}") from None
        try:
            learner_config(_learner_settings(config))
        except ConfigError as exc:
            raise ConfigError(f"config: learner.{exc}") from None


#: The experiment's registered name (the name of its results store).
NAME = "offline_suboptimality"
#: The experiment's config type (the experiment interface, :mod:`bayes_qse.experiments`).
Config = OfflineSuboptimalityConfig

#: The published form of the CI-sized defaults.
DEFAULT_CONFIG = OfflineSuboptimalityConfig.defaults()

#: ``--full``: three games, 20 seeds, sizes 10 .. 10^4, every learner variant.
FULL_CONFIG = OfflineSuboptimalityConfig.preset(
    seeds=20,
    games=["linear", "tabular", "tempting"],
    game={
        "n_states": 3,
        "n_leader_actions": 3,
        "n_follower_actions": 3,
        "horizon": 3,
        "feature_dim": 4,
    },
    sizes=[10, 32, 100, 316, 1000, 3162, 10000],
    learners=[
        "oracle",
        "plugin",
        "mle-pessimistic",
        "mle-pessimistic-first-order",
        "bayes-pessimistic",
        "bayes-pessimistic-cvar",
    ],
    learner={"num_draws": 256},
)


def _check_game_size(kind: str, config: dict[str, Any]) -> None:
    """Game ``kind`` of ``config`` and a unit's dataset (``max(sizes)`` episodes) fit in
    memory (:func:`bayes_qse._validate.memory_limit`, the limit of ``make-game`` and
    ``simulate``): its shape from the settings first, then the game built and its dataset
    sized; :class:`ConfigError` naming the key."""
    ref = OFFLINE_GAME_REFS[kind]
    H, S, A, B, d = game_shape(ref.kind, config.get(ref.table) or {}, ref.table)
    check_memory(
        game_bytes(H, S, A, B, d),
        f"config: {ref.table}",
        f"the {kind} game, (H,S,A,B)=({H},{S},{A},{B}), d={d},",
        ConfigError,
    )
    try:
        game = experiment_game(kind, config)
    except ConfigError:
        raise
    except (BayesQSEInputError, ValueError, TypeError, OverflowError) as exc:
        raise ConfigError(f"config: {kind}: {exc}") from None
    H, S, A, _ = game.shape
    n = max(int(x) for x in config["sizes"])
    check_memory(
        dataset_bytes(n, H, S, A),
        "config: sizes",
        f"a dataset of {n} episodes of the {kind} game (H={H}, S={S}, A={A})",
        ConfigError,
    )


def _check_range(value: Any, key: str) -> None:
    """``value`` is ``[low, high]``: two finite numbers, ``low < high`` (else a
    :class:`ConfigError` naming ``key``)."""
    ok = (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
        and all(math.isfinite(x) for x in value)
        and value[0] < value[1]
    )
    if not ok:
        raise ConfigError(
            f"config: {key} must be [low, high], two finite numbers with low < high, got {value!r}"
        )


def _learner_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The ``learner`` table of a config: :class:`~bayes_qse.learners.config.OfflineLearnerConfig`
    fields (every one is a key of it)."""
    return dict(config.get("learner", {}))


#: How an offline config sets each of its games (:mod:`bayes_qse.experiments.games`): the
#: registered kind and the table of its settings (``linear`` and ``tabular`` share ``game``).
OFFLINE_GAME_REFS = {
    "linear": GameRef("random", "game"),
    "tabular": GameRef("random-tabular-utility", "game"),
    "tempting": GameRef("tempting", "tempting"),
    "large": GameRef("patrol-large", "large"),
    "random-large": GameRef("random-large", "random-large"),
}


def experiment_game(kind: str, config: dict[str, Any]):
    """The game ``kind`` of an offline config (:data:`OFFLINE_GAME_REFS`, built by
    :func:`bayes_qse.experiments.games.config_game`): ``linear`` and ``tabular`` from the
    ``game`` settings, ``tempting``, ``large`` and ``random-large`` from their own tables
    (the game function's defaults where a table is absent)."""
    if kind not in OFFLINE_GAME_REFS:
        raise ConfigError(f"config: games: unknown game {kind!r}; choose from {OFFLINE_GAMES}")
    return config_game(config, OFFLINE_GAME_REFS[kind])


def _unit_key(game: str, behaviour: str, seed: int) -> str:
    return f"{game}_{behaviour}_seed{seed}"


def run_offline_unit(
    game,
    optimal,
    behaviour: str,
    seed: int,
    config: dict[str, Any],
    stream: int,
    reward_range: tuple[float, float] | None = None,
    say: Callable[[str], None] | None = None,
) -> dict[str, np.ndarray]:
    """One ``(game, behaviour, seed)``: simulate the largest dataset, fit every learner on
    each nested prefix, evaluate exactly.  Returns arrays ``[n_sizes, n_learners]``.
    ``say``: called with a stage line before each fit (``fitting greedy on 100 episodes
    (3/8)``; :func:`bayes_qse.progress.stage_printer`).

    ``reward_range``: the range of her rewards the leader is told
    (:func:`~bayes_qse.experiments.games.stated_reward_range` of the game); the config's
    ``reward_range`` (default ``[0, 1]``) when None."""
    eps = (
        config["near_optimal_epsilon"]
        if behaviour == "near-optimal"
        else config["poor_coverage_epsilon"]
    )
    pb = behaviour_policy(behaviour, game, epsilon=eps, optimal_policy=optimal.policy)
    sizes = [int(n) for n in config["sizes"]]
    data = simulate(game, pb, max(sizes), seed=seed * 1000 + stream)
    if reward_range is None:
        reward_range = tuple(float(x) for x in config.get("reward_range", (0.0, 1.0)))
    spec = GameSpec.from_game(
        game, known_model=bool(config["known_model"]), reward_range=reward_range
    )
    settings = _learner_settings(config)
    learners = config["learners"]
    shape = (len(sizes), len(learners))
    value = np.full(shape, np.nan)
    lower = np.full(shape, np.nan)
    seconds = np.zeros(shape)
    key = jax.random.fold_in(jax.random.key(seed), stream)
    for i, n in enumerate(sizes):
        ds = data.subset(slice(0, n))
        for j, name in enumerate(learners):
            if say is not None:
                k, total = i * len(learners) + j + 1, len(sizes) * len(learners)
                say(f"fitting {name} on {n} episodes ({k}/{total})")
            t0 = time.perf_counter()
            res = get_learner(name)(
                ds, game if name == "oracle" else spec, settings, jax.random.fold_in(key, i)
            )
            seconds[i, j] = time.perf_counter() - t0
            value[i, j] = leader_value(game, res.policy)
            if res.lower_bound is not None:
                lower[i, j] = res.lower_bound
    return {
        "value": value,
        "suboptimality": optimal.value - value,
        "lower_bound": lower,
        "seconds": seconds,
    }


@functools.lru_cache(maxsize=8)
def _solved(kind: str, config_json: str):
    """The game ``kind`` of a unit config (JSON text) and its QSE, once per process."""
    game = experiment_game(kind, json.loads(config_json))
    return game, solve_qse(game)


@dataclasses.dataclass(frozen=True)
class OfflineUnit(OnePartUnit):
    """One offline unit (:mod:`bayes_qse.experiments.units`): :func:`run_offline_unit` of one
    ``(game, behaviour, seed)`` with the random stream ``stream`` (:func:`stream`, by the
    names of the game and the behaviour), saved as the part ``result`` (arrays ``[sizes,
    learners]``, ``optimal_value`` in the meta).  ``config``: the experiment's config
    without its seeds."""

    key: str
    game: str
    behaviour: str
    seed: int
    stream: int
    config: dict[str, Any] = dataclasses.field(hash=False, compare=False)
    kind = "offline"
    bound = ("stream",)

    def run(self, store: RunStore, todo: list[str], progress: bool) -> None:
        game, optimal = _solved(self.game, json.dumps(self.config, sort_keys=True))
        rr = _stated_reward_range(self.game, self.config)
        say = stage_printer(self.key, progress)
        arrays = run_offline_unit(
            game, optimal, self.behaviour, self.seed, self.config, self.stream, rr, say
        )
        meta = {
            "seed": self.seed,
            "game": self.game,
            "behaviour": self.behaviour,
            "optimal_value": float(optimal.value),
        }
        store.save_unit(RESULT, arrays, meta)


def make_units(config: dict[str, Any], seeds: list[int] | None = None) -> list[OfflineUnit]:
    """The experiment's units, ``(game, behaviour, seed)`` in that order; ``seeds`` (default:
    ``base_seed, ..., base_seed + seeds - 1``)."""
    if seeds is None:
        seeds = [config["base_seed"] + i for i in range(config["seeds"])]
    unit = json.loads(
        json.dumps({k: v for k, v in config.items() if k not in ("seeds", "base_seed")})
    )
    return [
        OfflineUnit(_unit_key(g, b, s), g, b, s, stream(g, b), unit)
        for g in config["games"]
        for b in config["behaviours"]
        for s in seeds
    ]


#: Run (or resume) the experiment (:func:`~.executors.run_experiment_module`).
run = experiment_run(__name__)


def write_results(
    store: RunStore,
    config: dict[str, Any],
    units: list[OfflineUnit],
    loaded: dict[str, UnitParts],
) -> Path:
    """Write ``results.npz`` / ``results.json`` from the units' parts (``loaded``, by key, in
    the order of ``units``); returns the ``.npz``.

    Arrays in the results (``G`` games, ``K`` behaviours, ``R`` seeds, ``N`` sizes, ``L``
    learners): ``suboptimality``, ``value``, ``lower_bound`` (nan where a learner gives none),
    ``lower_bound_holds`` (1/0, nan where none), ``seconds`` -- all ``[G,K,R,N,L]`` --, and
    ``optimal_value[G]``, ``sizes[N]``.  The JSON summary holds the names of each axis and the
    lower-bound coverage per game, behaviour and learner.
    """
    return store.write_results("results", _results(config, stack_units(loaded.values())))


def _results(config: dict[str, Any], out: dict[str, np.ndarray]) -> dict[str, Any]:
    """The arrays and summary of ``results.npz`` / ``results.json`` (:func:`run`) from the
    units' stacked arrays ``out`` (:func:`stack_units`, units in :func:`make_units` order)."""
    games, behaviours = config["games"], config["behaviours"]
    seeds = [config["base_seed"] + i for i in range(config["seeds"])]
    G, K, R = len(games), len(behaviours), len(seeds)
    out = {k: v.reshape(G, K, R, *v.shape[1:]) for k, v in out.items()}
    optimal_value = out.pop("optimal_value")[:, 0, 0]
    holds = lower_bound_holds(out["lower_bound"], out["value"])
    out["lower_bound_holds"] = holds
    out["optimal_value"] = optimal_value
    out["sizes"] = np.asarray(config["sizes"], dtype=np.int64)
    coverage = {
        g: {
            b: {
                name: _finite_mean(holds[gi, bi, :, :, li])
                for li, name in enumerate(config["learners"])
            }
            for bi, b in enumerate(behaviours)
        }
        for gi, g in enumerate(games)
    }
    summary = {
        "axes": ["game", "behaviour", "seed", "size", "learner"],
        "games": list(games),
        "behaviours": list(behaviours),
        "seeds": seeds,
        "learners": list(config["learners"]),
        "nominal_coverage": 1.0 - config["learner"]["delta"],
        "lower_bound_coverage": coverage,
        "total_seconds": float(out["seconds"].sum()),
    }
    return {**out, **summary}


#: The arrays of an offline unit, each ``[sizes, learners]``.
OFFLINE_FIELDS = ("suboptimality", "value", "lower_bound", "seconds")


def lower_bound_holds(lower: np.ndarray, value: np.ndarray) -> np.ndarray:
    """1 where ``lower <= value`` (to 1e-9), 0 where not, NaN where there is no bound."""
    return np.where(np.isnan(lower), np.nan, (lower <= value + 1e-9).astype(float))


def stack_units(loaded: Iterable[UnitParts]) -> dict[str, np.ndarray]:
    """Offline units' parts (each unit's ``[(arrays, meta)]``, :func:`~.units.load_parts`)
    stacked in their order: each of :data:`OFFLINE_FIELDS` ``[units, N, L]`` and
    ``optimal_value[units]``."""
    parts = [unit_parts[0] for unit_parts in loaded]
    out = {k: np.stack([arrays[k] for arrays, _ in parts]) for k in OFFLINE_FIELDS}
    out["optimal_value"] = np.array([meta["optimal_value"] for _, meta in parts])
    return out


def _finite_mean(x: np.ndarray) -> float | None:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None


def __getattr__(name: str):
    """``run_unit``, this module's name for :func:`run_offline_unit` until this release (a
    homonym of the unit engine's :func:`bayes_qse.experiments.units.run_unit`), and
    ``stated_reward_range``, now :func:`bayes_qse.experiments.games.stated_reward_range`
    (its one home), each with a DeprecationWarning; they will be removed in the next
    release."""
    if name == "run_unit":
        warnings.warn(
            "bayes_qse.experiments.offline_suboptimality.run_unit is deprecated; use "
            "run_offline_unit (it will be removed in the next release)",
            DeprecationWarning,
            stacklevel=2,
        )
        return run_offline_unit
    if name == "stated_reward_range":
        warnings.warn(
            "bayes_qse.experiments.offline_suboptimality.stated_reward_range is deprecated; "
            "use bayes_qse.experiments.games.stated_reward_range (it will be removed in the "
            "next release)",
            DeprecationWarning,
            stacklevel=2,
        )
        return _stated_reward_range
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "NAME",
    "BEHAVIOUR_STREAMS",
    "DEFAULT_CONFIG",
    "OFFLINE_FIELDS",
    "FULL_CONFIG",
    "OfflineSuboptimalityConfig",
    "Config",
    "OFFLINE_GAMES",
    "GAME_STREAMS",
    "LARGE_GAMES",
    "OFFLINE_GAME_REFS",
    "OfflineUnit",
    "experiment_game",
    "lower_bound_holds",
    "make_units",
    "run",
    "write_results",
    "run_offline_unit",
    "stack_units",
    "stream",
]
