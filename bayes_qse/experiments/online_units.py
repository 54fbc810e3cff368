"""The online unit kind (:mod:`bayes_qse.experiments.units`): the game and the runner of
one online cell ``(game, learner, T, eta, radius)`` of an ``online_regret``-style config, and
:class:`OnlineUnit`, which plays it for all its seeds.

Shared by :mod:`~bayes_qse.experiments.online_regret` (whose config this is),
:mod:`~bayes_qse.experiments.rationality_sweep` (the ``linear`` game on an eta axis) and
:mod:`bayes_qse.sweeps` (TOML grids of online units).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
import warnings
from collections.abc import Sequence
from typing import Any

from .._validate import check_memory, game_bytes
from ..data import dataset_bytes
from ..errors import BayesQSEInputError, ConfigError
from ..learners.config import LearnerConfig
from ..learners.runner import OnlineRunner, run_online
from ..planning import solve_qse
from .games import GameRef, config_game, game_shape, stated_reward_range
from .store import RunStore

#: Per-episode records of a unit (:class:`~bayes_qse.learners.runner.EpisodeRecord`).
FIELDS = ("regret", "theta_error", "set_size", "informed", "switches")
#: Learner settings read per game kind (myopic ``refit``, farsighted ``farsighted_refit``).
REFIT_KEYS = ("refit", "farsighted_refit", "switch_factor", "max_policies")

#: The learner settings of an online config's ``learner`` table besides :data:`REFIT_KEYS`:
#: every :class:`~bayes_qse.learners.config.LearnerConfig` field but ``capacity`` (the
#: episodes) and the refit schedule (read per game kind).
LEARNER_KEYS = tuple(
    f.name
    for f in dataclasses.fields(LearnerConfig)
    if f.name not in ("capacity", "refit", "switch_factor", "max_policies")
)


def learner_table(config: dict[str, Any]) -> dict[str, Any]:
    """The ``learner`` table of an online config (``[learner]`` in TOML, as in a sweep spec:
    :data:`LEARNER_KEYS` and :data:`REFIT_KEYS`); empty when it has none."""
    return dict(config.get("learner", {}))


def learner_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The :data:`LEARNER_KEYS` of a config's ``learner`` table; one written before
    ``reward_bound`` existed ran (and reruns) the Hoeffding reward bonus."""
    table = learner_table(config)
    return {"reward_bound": "hoeffding", **{k: table[k] for k in LEARNER_KEYS if k in table}}


def unit_learner_config(config: dict[str, Any], farsighted: bool, episodes: int) -> LearnerConfig:
    """The :class:`~bayes_qse.learners.config.LearnerConfig` a unit of ``episodes`` episodes
    runs under (the refit schedule of the game's kind, ``farsighted_refit`` or ``refit``,
    ``capacity = episodes``): every learner setting of an online config reaches it.

    Raises:
        ConfigError: a bad value, naming ``learner.<field>``.
    """
    table = learner_table(config)
    refit = table.get("farsighted_refit" if farsighted else "refit", "every")
    schedule = {"refit": refit}
    if refit == "switching":
        schedule.update(
            switch_factor=table.get("switch_factor", 2.0),
            max_policies=table.get("max_policies", 512),
        )
    try:
        return LearnerConfig.from_mapping(
            {**learner_settings(config), **schedule, "capacity": episodes}
        )
    except ConfigError as exc:
        raise ConfigError(f"config: learner.{exc}") from None


#: How an online config sets each of its games (:mod:`bayes_qse.experiments.games`): the
#: registered kind and the table of its settings (``online_regret``'s ``ONLINE_GAMES`` and
#: ``EXTRA_GAMES``).
ONLINE_GAME_REFS = {
    "tabular": GameRef("random-tabular", "tabular"),
    "linear": GameRef("random", "linear"),
    "exploration": GameRef("exploration", "exploration"),
    "farsighted": GameRef("steering", "farsighted"),
    "farsighted-random": GameRef("random-farsighted", "farsighted-random"),
    "large": GameRef("patrol-large", "large"),
}


def online_experiment_game(name: str, config: dict[str, Any]):
    """The game ``name`` of an online config (:data:`ONLINE_GAME_REFS`, built by
    :func:`bayes_qse.experiments.games.config_game`)."""
    return config_game(config, _ref(name))


def _ref(name: str) -> GameRef:
    if name not in ONLINE_GAME_REFS:
        raise ConfigError(
            f"config: unknown online game {name!r}; choose from {list(ONLINE_GAME_REFS)}"
        )
    return ONLINE_GAME_REFS[name]


def online_game_shape(name: str, config: dict[str, Any]) -> tuple[int, int, int, int, int]:
    """``(H, S, A, B, d)`` of game ``name`` of an online config from its settings alone
    (validated; nothing is allocated): what :func:`check_unit` sizes before building."""
    ref = _ref(name)
    return game_shape(ref.kind, config.get(ref.table) or {}, ref.table)


def unit_bytes(name: str, config: dict[str, Any], episodes: int, n_seeds: int) -> int:
    """Bytes a unit of game ``name`` needs at least: the game, and per seed the dataset of
    ``episodes`` episodes (:func:`bayes_qse.data.dataset_bytes`) and the per-episode records."""
    H, S, A, B, d = online_game_shape(name, config)
    per_seed = dataset_bytes(episodes, H, S, A) + 8 * episodes * len(FIELDS)
    return game_bytes(H, S, A, B, d) + n_seeds * per_seed


@functools.lru_cache(maxsize=64)
def _build(name: str, settings: str) -> None:
    online_experiment_game(name, json.loads(settings))


def check_unit(name: str, config: dict[str, Any], episodes: int, n_seeds: int) -> None:
    """Check that game ``name`` of ``config`` can be built and a unit of ``episodes``
    episodes and ``n_seeds`` seeds fits in memory (:func:`bayes_qse._validate.memory_limit`,
    the limit of ``make-game`` and ``simulate``), then build the game once.  Called by the
    experiments' config classes (``OnlineRegretConfig.check``) for every game, so ``run
    --config`` and every unit of a sweep spec are checked before anything runs.

    Raises:
        ConfigError: naming ``<game>.<key>`` (a seed outside ``[0, 2**32 - 1]``, a size
            below 1), the memory estimate, or the game's own complaint.
    """
    H, S, A, B, d = online_game_shape(name, config)
    check_memory(
        unit_bytes(name, config, episodes, n_seeds),
        f"config: {name}",
        f"a unit of {n_seeds} seed(s) x {episodes} episodes on a game with "
        f"(H,S,A,B)=({H},{S},{A},{B}), d={d}",
        ConfigError,
    )
    table = config.get(_ref(name).table) or {}
    try:
        _build(name, json.dumps({_ref(name).table: table}, sort_keys=True))
    except ConfigError:
        raise
    except (BayesQSEInputError, ValueError, TypeError, OverflowError) as exc:
        raise ConfigError(f"config: {name}: {exc}") from None


def make_runner(
    game: Any,
    learner: str,
    config: dict[str, Any],
    episodes: int,
    qse: Any,
    reward_range: tuple[float, float] | None = None,
):
    """The :class:`~bayes_qse.learners.runner.OnlineRunner` of one ``(game, learner)`` unit
    of an experiment config (its ``learner`` table, :func:`unit_learner_config`; ``chunk``,
    ``known_model``, what the leader is told: ``reward_range`` (the config's unless given),
    ``initial_dist``); shared with ``rationality_sweep``."""
    return OnlineRunner(
        game,
        learner,
        unit_learner_config(config, game.farsighted, episodes),
        episodes=episodes,
        chunk=min(config["chunk"], episodes),
        known_model=config["known_model"],
        qse=qse,
        reward_range=reward_range
        or tuple(float(x) for x in config.get("reward_range", (0.0, 1.0))),
        initial_dist="game" if config.get("initial_dist", "learned") == "stated" else None,
    )


def unit_key(game: str, learner: str, T: int, eta: Any = None, radius: Any = None) -> str:
    """The directory name of an online unit."""
    key = f"game={game}.learner={learner}.T={T}"
    if eta is not None:
        key += f".eta={float(eta)!r}"
    if radius is not None:
        key += f".radius={radius}"
    return key


#: The checkpoint key of an online unit (``checkpoints/run/seed<s>.npz`` in its directory).
CHECKPOINT = "run"


@dataclasses.dataclass(frozen=True)
class OnlineUnit:
    """One online unit (:mod:`bayes_qse.experiments.units`): a ``(game, learner, T, eta,
    radius)`` with all its seeds, run ``vmap``-ped, checkpointed per seed after every chunk,
    and saved per seed (part ``seed<s>``: the ``record`` fields ``[T]``, ``optimal_value`` in
    the meta), so seeds can be added later.

    Attributes:
        key: the unit's directory name (:func:`unit_key`).
        game, learner, T: the cell.  ``eta``/``radius``: ``None`` when not overridden (the
            game's eta; the config's radius) or, for ``radius``, when the learner has none.
        seeds: the seeds of the unit.
        config: the online_regret config it runs with (JSON values; no seeds).
        record: the :class:`~bayes_qse.learners.runner.EpisodeRecord` fields kept.

    A seed's records are the same, bit for bit, whatever the other seeds of the unit, the
    executor, process or host (same library version and platform; docs/math.md,
    "Determinism").  Common random numbers (docs/math.md, "Sweeps"): episode ``t`` of seed
    ``s`` draws the environment's randomness from ``fold_in(fold_in(PRNGKey(s), 1), t)``
    alone, the learner's from ``fold_in(PRNGKey(s), 0)``, so every leader faces the same
    random numbers on the same seed.
    """

    key: str
    game: str
    learner: str
    T: int
    eta: float | None
    radius: str | None
    seeds: tuple[int, ...]
    config: dict[str, Any] = dataclasses.field(hash=False, compare=False)
    record: tuple[str, ...] = ()
    kind = "online"

    def parts(self) -> tuple[str, ...]:
        return tuple(f"seed{s}" for s in self.seeds)

    @property
    def affinity(self) -> str:
        """The units that share this one's game share its QSE solve and episode programs:
        a pool worker runs them one after another (:func:`~.executors.pick_next`)."""
        return self.game

    def store_config(self) -> dict[str, Any]:
        return {
            "unit": self.key,
            "config": self.config,
            "record": list(self.record),
            "seeds": list(self.seeds),
        }

    def run(self, store: RunStore, todo: list[str], progress: bool) -> None:
        seeds = [s for s in self.seeds if f"seed{s}" in todo]
        start = time.perf_counter()
        game = online_experiment_game(self.game, self.config)
        runner = make_runner(
            game,
            self.learner,
            self.config,
            self.T,
            solve_qse(game),
            stated_reward_range(self.game, self.config),
        )
        out = run_online(
            game,
            self.learner,
            episodes=self.T,
            seeds=seeds,
            store=store,
            checkpoint_key=CHECKPOINT,
            progress=progress,
            runner=runner,
        )
        wall = time.perf_counter() - start
        for i, s in enumerate(seeds):
            store.save_unit(
                f"seed{s}",
                {f: out[f][i] for f in self.record},
                {
                    "seed": s,
                    "optimal_value": float(out["optimal_value"]),
                    "batch_wall_seconds": wall,
                    "batch_seeds": len(seeds),
                    "seed_block": runner.seed_block,
                    "chunk": runner.chunk,
                },
            )
        store.delete_checkpoint(CHECKPOINT)


def make_unit(
    config: dict[str, Any],
    game: str,
    learner: str,
    T: int,
    seeds: Sequence[int],
    record: Sequence[str] = FIELDS,
    eta: float | None = None,
    radius: str | None = None,
) -> OnlineUnit:
    """The online unit of ``(game, learner, T)`` (``eta`` overriding the game's, ``radius``
    the config's) under ``config``, narrowed to that cell (no seeds, one game, one learner)."""
    unit = {k: v for k, v in config.items() if k not in ("seeds", "base_seed")}
    unit.update(games=[game], learners=[learner], episodes=T, farsighted_episodes=T)
    if eta is not None:
        unit[game] = {**unit[game], "eta": float(eta)}
    if radius is not None:
        unit["learner"] = {**unit.get("learner", {}), "radius": radius}
    unit = json.loads(json.dumps(unit))
    key = unit_key(game, learner, T, eta, radius)
    return OnlineUnit(key, game, learner, T, eta, radius, tuple(seeds), unit, tuple(record))


def __getattr__(name: str):
    """``make_game``, this module's name for :func:`online_experiment_game` until this
    release (one of four experiment builders of that name; the one builder is now
    :func:`bayes_qse.experiments.games.make_game`), and ``game_reward_range``, now
    :func:`bayes_qse.experiments.games.stated_reward_range` (its one home, shared with the
    offline experiment), each with a DeprecationWarning; they will be removed in the next
    release."""
    if name == "make_game":
        warnings.warn(
            "bayes_qse.experiments.online_units.make_game is deprecated; use "
            "online_experiment_game (it will be removed in the next release)",
            DeprecationWarning,
            stacklevel=2,
        )
        return online_experiment_game
    if name == "game_reward_range":
        warnings.warn(
            "bayes_qse.experiments.online_units.game_reward_range is deprecated; use "
            "bayes_qse.experiments.games.stated_reward_range (it will be removed in the next "
            "release)",
            DeprecationWarning,
            stacklevel=2,
        )
        return stated_reward_range
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CHECKPOINT",
    "FIELDS",
    "LEARNER_KEYS",
    "REFIT_KEYS",
    "OnlineUnit",
    "check_unit",
    "ONLINE_GAME_REFS",
    "learner_settings",
    "learner_table",
    "online_experiment_game",
    "online_game_shape",
    "unit_learner_config",
    "make_runner",
    "make_unit",
    "unit_bytes",
    "unit_key",
]
