"""A sweep spec (TOML): the grid of an online study, expanded into validated units.

A spec names the axes of the grid and what to record::

    name = "laptop"                 # free text
    record = ["regret", "reward"]   # EpisodeRecord fields to keep (default: all)
    chunk = 10                      # episodes per compiled call and per checkpoint
    known_model = false             # does the leader know her transitions and rewards
    reward_range = [0.0, 1.0]       # the range the leader is told
    initial_dist = "learned"        # or "stated"

    [grid]                          # the axes; every combination is a cell
    game = ["linear", "tabular"]    # online_regret's games (bayes_qse.experiments.online_regret)
    learner = ["greedy", "uniform"] # any of bayes_qse.learners.online.ALL_LEARNERS
    T = [20]                        # episodes
    seeds = {start = 0, count = 4}  # or a list of seeds
    eta = [1.0, 2.0]                # optional: the follower's rationality (overrides the game's)
    radius = ["chi2", "theory"]     # optional: the Wald radius of the mle-optimistic learners

    [games.linear]                  # optional: a game's settings (online_regret's keys)
    n_states = 4

    [learner]                       # optional: learner settings, online_regret's [learner]
    prior_scale = 1.0               # (the same table as in run --config)

A *unit* is one ``(game, learner, T, eta, radius)`` combination with all its seeds (they run
``vmap``-ped in one process).  Cells that differ only on an axis the learner ignores (the radius
of a Bayesian learner) share one unit.  :func:`expand` validates every unit before anything
runs: the first problem raises one :class:`~bayes_qse.errors.ConfigError` naming the unit (or
the key) at fault.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import math
import os
from typing import Any

from .._validate import SEED_MAX
from ..errors import ConfigError
from ..experiments import MAX_SEEDS, merge_config, nest_learner_keys, read_toml
from ..experiments import offline_suboptimality as offline
from ..experiments.online_regret import DEFAULT_CONFIG, ONLINE_GAMES, OnlineRegretConfig
from ..experiments.online_units import LEARNER_KEYS, REFIT_KEYS, make_unit
from ..experiments.units import Unit
from ..learners.config import LEARNER_VARIANTS
from ..learners.online import ALL_LEARNERS
from ..learners.runner import EpisodeRecord
from ..settings import upgrade

KINDS = ("online", "offline")
TOP_KEYS = (
    "kind",
    "name",
    "record",
    "chunk",
    "known_model",
    "reward_range",
    "initial_dist",
    "grid",
    "games",
    "learner",
)
#: An offline spec (``kind = "offline"``): its top-level keys and grid axes (all required).
OFFLINE_TOP_KEYS = ("kind", "name", "grid", "settings", "learner")
OFFLINE_GRID_KEYS = ("game", "behaviour", "seeds")
GRID_KEYS = ("game", "learner", "T", "seeds", "eta", "radius")
REQUIRED_GRID = ("game", "learner", "T", "seeds")
RADII = ("chi2", "theory")
#: Dimensions of the gathered dataset, in order (``seed`` and ``episode`` follow).
AXES = ("game", "learner", "T", "eta", "radius")


@dataclasses.dataclass(frozen=True)
class Sweep:
    """An expanded spec: ``units`` (unique), ``cells`` (grid coordinates -> unit key) and the
    normalised ``spec`` (what a sweep directory is bound to)."""

    spec: dict[str, Any]
    axes: dict[str, list[Any]]
    seeds: tuple[int, ...]
    record: tuple[str, ...]
    units: tuple[Any, ...]
    cells: dict[tuple, str]
    kind: str = "online"

    @property
    def identity(self) -> dict[str, Any]:
        """The normalised spec less what does not change a unit's numbers: ``name`` (free
        text) and ``grid.seeds`` (each seed is saved on its own, so seeds can be added)."""
        return identity(self.spec)

    @property
    def fingerprint(self) -> str:
        """A short hash of :attr:`identity`: two specs with one fingerprint may share a
        directory (a rerun with more seeds computes only the new ones)."""
        text = json.dumps(self.identity, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


#: Spec entries outside a sweep's identity (:attr:`Sweep.identity`).
NOT_IDENTITY = ("name", "grid.seeds")


def identity(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` without the entries of :data:`NOT_IDENTITY` (a copy)."""
    out = copy.deepcopy(spec)
    for dotted in NOT_IDENTITY:
        *path, last = dotted.split(".")
        table = out
        for key in path:
            table = table.get(key, {}) if isinstance(table, dict) else {}
        if isinstance(table, dict):
            table.pop(last, None)
    return out


def load_spec(path: str | os.PathLike) -> dict[str, Any]:
    """Read a TOML spec file; :class:`ConfigError` naming the file if it is missing,
    unreadable, not UTF-8 or not valid TOML (the reader of ``run --config``)."""
    try:
        return read_toml(path)
    except ConfigError as exc:
        raise ConfigError("spec: " + str(exc).removeprefix("config: ")) from None


def _typed(base: dict[str, Any], updates: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``base`` updated by ``updates`` through ``run --config``'s type check
    (:func:`bayes_qse.experiments.merge_config`); errors say ``spec:``."""
    try:
        return merge_config(base, updates, prefix)
    except ConfigError as exc:
        raise ConfigError("spec: " + str(exc).removeprefix("config: ")) from None


def _list(grid: dict[str, Any], key: str) -> list[Any]:
    value = grid[key]
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ConfigError(f"spec: grid.{key} is empty")
    if len({json.dumps(v) for v in values}) != len(values):
        raise ConfigError(f"spec: grid.{key} has duplicate values {values!r}")
    return values


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"start", "count"})
        if unknown or "count" not in value:
            raise ConfigError(
                f"spec: grid.seeds must be a list or {{start, count}}, got keys {sorted(value)}"
            )
        start, count = value.get("start", 0), value["count"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, count)):
            raise ConfigError(f"spec: grid.seeds start and count must be integers, got {value}")
        if count < 1 or start < 0:
            raise ConfigError(f"spec: grid.seeds needs count >= 1 and start >= 0, got {value}")
        if count > MAX_SEEDS:
            raise ConfigError(f"spec: grid.seeds count must be <= {MAX_SEEDS}, got {count}")
        if start + count - 1 > SEED_MAX:
            raise ConfigError(
                f"spec: grid.seeds must lie in [0, {SEED_MAX}] (seeds are 32-bit), got "
                f"start + count - 1 = {start + count - 1}"
            )
        return tuple(range(start, start + count))
    seeds = value if isinstance(value, list) else [value]
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"spec: grid.seeds must be non-negative integers, got {value!r}")
    if min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ConfigError(f"spec: grid.seeds must be distinct and >= 0, got {value!r}")
    if max(seeds) > SEED_MAX:
        raise ConfigError(f"spec: grid.seeds must be <= {SEED_MAX} (32-bit), got {max(seeds)}")
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"spec: grid.seeds: at most {MAX_SEEDS} seeds, got {len(seeds)}")
    return tuple(seeds)


def _unknown(table: dict[str, Any], allowed: tuple[str, ...] | set[str], where: str) -> None:
    extra = sorted(set(table) - set(allowed))
    if extra:
        raise ConfigError(
            f"spec: {where}: unknown key(s) {', '.join(extra)}; allowed: {', '.join(allowed)}"
        )


def base_config(spec: dict[str, Any]) -> dict[str, Any]:
    """The online_regret config every unit starts from: its defaults, the spec's top-level
    settings, ``[games.*]`` and ``[learner]``."""
    keys = ("chunk", "known_model", "reward_range", "initial_dist")
    top = {k: spec[k] for k in keys if k in spec}
    config = _typed(copy.deepcopy(DEFAULT_CONFIG), top)
    games = spec.get("games", {})
    if not isinstance(games, dict):
        raise ConfigError("spec: games must be a table of [games.<name>] tables")
    for game, table in games.items():
        if game not in ONLINE_GAMES:
            raise ConfigError(f"spec: games.{game}: unknown game; choose from {ONLINE_GAMES}")
        if not isinstance(table, dict):
            raise ConfigError(f"spec: games.{game} must be a table")
        _unknown(table, tuple(config[game]), f"games.{game}")
        config[game] = _typed(config[game], table, f"games.{game}.")
    learner = spec.get("learner", {})
    if not isinstance(learner, dict):
        raise ConfigError("spec: learner must be a table")
    allowed = (*LEARNER_KEYS, *REFIT_KEYS)
    learner = upgrade(learner, "spec: learner", known=allowed)  # retired names
    _unknown(learner, allowed, "learner")
    # the same [learner] table as online_regret's run --config (one type check)
    return _typed(config, {"learner": learner})


def _has_radius(learner: str) -> bool:
    return LEARNER_VARIANTS.get(learner, (learner, {}))[0] == "mle-optimistic"


def _make_unit(base, seeds, record, game, learner, T, eta, radius) -> Unit:
    """Build and validate one unit; errors name it."""
    name = (
        f"unit (game={game}, learner={learner}, T={T}"
        + (f", eta={eta}" if eta is not None else "")
        + (f", radius={radius})" if radius is not None else ")")
    )
    if game not in ONLINE_GAMES:
        raise ConfigError(f"spec: {name}: unknown game {game!r}; choose from {ONLINE_GAMES}")
    if learner not in ALL_LEARNERS:
        raise ConfigError(f"spec: {name}: unknown learner {learner!r}; choose from {ALL_LEARNERS}")
    if not isinstance(T, int) or isinstance(T, bool) or T < 1:
        raise ConfigError(f"spec: {name}: T must be an integer >= 1, got {T!r}")
    config = copy.deepcopy(base)
    config.update(games=[game], learners=[learner], episodes=T, farsighted_episodes=T)
    config["seeds"], config["base_seed"] = len(seeds), seeds[0]
    if eta is not None:
        if isinstance(eta, bool) or not isinstance(eta, int | float):
            raise ConfigError(f"spec: {name}: eta must be a number, got {eta!r}")
        if not (math.isfinite(eta) and 1e-6 <= eta <= 1e6):
            raise ConfigError(f"spec: {name}: eta must lie in [1e-6, 1e6], got {eta!r}")
        config[game] = {**config[game], "eta": float(eta)}
    if radius is not None:
        if radius not in RADII:
            raise ConfigError(f"spec: {name}: radius must be one of {RADII}, got {radius!r}")
        fixed = LEARNER_VARIANTS.get(learner, (learner, {}))[1].get("radius")
        if fixed is not None and fixed != radius:
            raise ConfigError(
                f"spec: {name}: impossible combination: learner {learner} fixes radius "
                f"{fixed!r}; drop it from grid.learner or grid.radius"
            )
        config["learner"] = {**config["learner"], "radius": radius}
    chunk = config["chunk"]
    if not isinstance(chunk, int) or chunk < 1 or T % min(chunk, T):
        raise ConfigError(f"spec: {name}: chunk ({chunk!r}) must be >= 1 and divide T ({T})")
    try:
        OnlineRegretConfig.from_mapping(config)
    except ConfigError as exc:
        raise ConfigError(f"spec: {name}: {str(exc).removeprefix('config: ')}") from None
    return make_unit(base, game, learner, T, seeds, record, eta, radius)


def _grid(spec: dict[str, Any], allowed: tuple[str, ...], required: tuple[str, ...]) -> dict:
    """The spec's ``[grid]`` table, checked: a table, no unknown axis, every required one."""
    grid = spec.get("grid")
    if not isinstance(grid, dict):
        raise ConfigError("spec: missing the [grid] table")
    _unknown(grid, allowed, "grid")
    for key in required:
        if key not in grid:
            raise ConfigError(f"spec: grid.{key} is missing")
    return grid


def expand(spec: dict[str, Any]) -> Sweep:
    """Validate ``spec`` and expand it into units (every unit is checked before any runs).

    Raises:
        ConfigError: an unknown key, a missing axis, or a unit that cannot run (the message
            names the unit and the problem).
    """
    if not isinstance(spec, dict):
        raise ConfigError("spec: must be a TOML table")
    kind = spec.get("kind", "online")
    if kind not in KINDS:
        raise ConfigError(f"spec: kind must be one of {KINDS}, got {kind!r}")
    if kind == "offline":
        return _expand_offline(spec)
    _unknown(spec, TOP_KEYS, "top level")
    grid = _grid(spec, GRID_KEYS, REQUIRED_GRID)
    record = tuple(spec.get("record", EpisodeRecord._fields))
    for field in record:
        if field not in EpisodeRecord._fields:
            raise ConfigError(
                f"spec: record: unknown field {field!r}; choose from {EpisodeRecord._fields}"
            )
    if "regret" not in record:
        record = ("regret", *record)
    seeds = _seeds(grid["seeds"])
    axes = {k: _list(grid, k) for k in AXES if k in grid}
    base = base_config(spec)
    units: dict[str, Unit] = {}
    cells: dict[tuple, str] = {}
    for cell in itertools.product(*axes.values()):
        coords = dict(zip(axes, cell, strict=True))
        eta, radius = coords.get("eta"), coords.get("radius")
        learner = coords["learner"]
        effective = radius if _has_radius(str(learner)) else None
        unit = _make_unit(base, seeds, record, coords["game"], learner, coords["T"], eta, effective)
        units.setdefault(unit.key, unit)
        cells[cell] = unit.key
    normal = json.loads(json.dumps(spec, sort_keys=True))
    return Sweep(normal, axes, seeds, record, tuple(units.values()), cells)


def _expand_offline(spec: dict[str, Any]) -> Sweep:
    """An offline spec: ``offline_suboptimality`` units, one per ``(game, behaviour, seed)``
    of the grid, with that experiment's settings (its defaults, then ``[settings]``)."""
    _unknown(spec, OFFLINE_TOP_KEYS, "top level")
    grid = _grid(spec, OFFLINE_GRID_KEYS, OFFLINE_GRID_KEYS)
    settings = spec.get("settings", {})
    if not isinstance(settings, dict):
        raise ConfigError("spec: settings must be a table")
    allowed = tuple(k for k in offline.DEFAULT_CONFIG if k not in OFFLINE_GRID_FIXED)
    settings = upgrade(settings, "spec: settings", known=allowed)  # retired names
    learner = spec.get("learner", {})
    if not isinstance(learner, dict):
        raise ConfigError("spec: learner must be a table")
    learner = upgrade(learner, "spec: learner", known=offline.DEFAULT_CONFIG["learner"])
    _unknown(learner, tuple(offline.DEFAULT_CONFIG["learner"]), "learner")
    if "learner" in settings:
        raise ConfigError("spec: settings.learner: learner settings go under [learner]")
    # the one-release shim: flat learner settings under [settings] move into [learner]
    settings = nest_learner_keys(offline.DEFAULT_CONFIG, settings, "spec: settings")
    if "learner" in settings:
        if "learner" in spec:
            raise ConfigError("spec: learner settings go under [learner], not [settings]")
        learner = settings.pop("learner")
    _unknown(settings, tuple(k for k in allowed if k != "learner"), "settings")
    for key, value in settings.items():
        if isinstance(offline.DEFAULT_CONFIG[key], dict) and isinstance(value, dict):
            _unknown(value, tuple(offline.DEFAULT_CONFIG[key]), f"settings.{key}")
    config = _typed(copy.deepcopy(offline.DEFAULT_CONFIG), settings, "settings.")
    config = _typed(config, {"learner": learner})  # the same [learner] as run --config
    seeds = _seeds(grid["seeds"])
    axes = {"game": _list(grid, "game"), "behaviour": _list(grid, "behaviour")}
    config.update(games=axes["game"], behaviours=axes["behaviour"])
    config.update(seeds=len(seeds), base_seed=seeds[0])
    for game, behaviour in itertools.product(axes["game"], axes["behaviour"]):
        try:
            offline.OfflineSuboptimalityConfig.from_mapping(
                {**config, "games": [game], "behaviours": [behaviour]}
            )
        except ConfigError as exc:
            name = f"unit (game={game}, behaviour={behaviour})"
            raise ConfigError(f"spec: {name}: {str(exc).removeprefix('config: ')}") from None
    units = offline.make_units(config, list(seeds))
    cells = {(u.game, u.behaviour, u.seed): u.key for u in units}
    normal = json.loads(json.dumps(spec, sort_keys=True))
    return Sweep(normal, axes, seeds, offline.OFFLINE_FIELDS, tuple(units), cells, kind="offline")


#: Settings an offline spec sets through its grid, not ``[settings]``.
OFFLINE_GRID_FIXED = ("seeds", "base_seed", "games", "behaviours")


__all__ = [
    "AXES",
    "KINDS",
    "NOT_IDENTITY",
    "Sweep",
    "base_config",
    "expand",
    "identity",
    "load_spec",
]
