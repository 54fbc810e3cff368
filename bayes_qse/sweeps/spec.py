"""A sweep spec (TOML): the grid of an online study, expanded into validated units.

A spec is an experiment's ``run --config`` file plus a ``[grid]`` table and a few keys of
its own (``name``, ``record``, ``kind``): the experiment's settings are written as in that
file, so its game tables and ``[learner]`` paste into a spec unchanged::

    name = "laptop"                 # free text
    record = ["regret", "reward"]   # EpisodeRecord fields to keep (default: all)
    chunk = 10                      # online_regret's settings, as in its run --config:
    known_model = false             # (top-level keys go above the first table)
    reward_range = [0.0, 1.0]
    initial_dist = "learned"

    [grid]                          # the axes; every combination is a cell
    game = ["linear", "tabular"]    # online_regret's games (bayes_qse.experiments.online_regret)
    learner = ["greedy", "uniform"] # any of bayes_qse.learners.online.ALL_LEARNERS
    T = [20]                        # episodes
    seeds = {start = 0, count = 4}  # or a list of seeds
    eta = [1.0, 2.0]                # optional: the follower's rationality (overrides the game's)
    radius = ["chi2", "theory"]     # optional: the Wald radius of the mle-optimistic learners

    [linear]                        # optional: a game's settings, one table per game of the
    n_states = 4                    # grid (online_regret's [<game>] table)

    [learner]                       # optional: learner settings, online_regret's [learner]
    prior_scale = 1.0

An offline spec (``kind = "offline"``) is ``offline_suboptimality``'s ``run --config`` form
the same way (its settings at the top level, its ``[game]``, ``[tempting]``, ... tables).
The settings go through the experiment's own typed merge and config class
(:func:`~bayes_qse.experiments.merge_config`, ``OnlineRegretConfig``,
``OfflineSuboptimalityConfig``); the settings the grid sets (``games``, ``learners``,
``episodes``, ``seeds``, ...) are refused at the top level.  The previous release's forms,
``[games.<name>]`` and an offline ``[settings]`` table, are read for one release with a
DeprecationWarning (:func:`experiment_form`); :func:`identity` gives a spec in either form one
fingerprint, so their directories are one.

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
import warnings
from typing import Any

from .._validate import SEED_MAX
from ..errors import ConfigError
from ..experiments import MAX_SEEDS, merge_config, read_toml
from ..experiments import offline_suboptimality as offline
from ..experiments.games import GameRef
from ..experiments.online_regret import (
    DEFAULT_CONFIG,
    EXTRA_GAMES,
    ONLINE_GAMES,
    OnlineRegretConfig,
)
from ..experiments.online_units import ONLINE_GAME_REFS, make_unit
from ..experiments.units import Unit
from ..learners.config import LEARNER_VARIANTS
from ..learners.online import ALL_LEARNERS
from ..learners.runner import EpisodeRecord

KINDS = ("online", "offline")
#: The keys of a sweep spec that are not an experiment's settings: what the sweep adds to the
#: experiment's ``run --config`` file (the rest of a spec is that file's form).
SWEEP_KEYS = ("kind", "name", "record", "grid")
#: online_regret's game tables (every table of its config but ``[learner]``): one top-level
#: ``[<game>]`` table each, as in ``run online_regret --config`` and its manifests.
GAME_TABLES = tuple(k for k, v in DEFAULT_CONFIG.items() if isinstance(v, dict) and k != "learner")
#: online_regret's settings an online spec may set: these, its game tables and ``[learner]``.
ONLINE_SETTINGS = ("chunk", "known_model", "reward_range", "initial_dist")
TOP_KEYS = (*SWEEP_KEYS, *ONLINE_SETTINGS, *GAME_TABLES, "learner")
#: The experiments' settings a sweep sets through its grid (a ``run --config`` file's
#: ``games = [...]``, ``seeds = 4``, ...), with the grid axis that sets each.
GRID_SET = {
    "games": "grid.game",
    "learners": "grid.learner",
    "episodes": "grid.T",
    "farsighted_episodes": "grid.T",
    "seeds": "grid.seeds",
    "base_seed": "grid.seeds",
}
#: offline_suboptimality's settings an offline spec sets through its grid, and the axis.
OFFLINE_GRID_SET = {
    "games": "grid.game",
    "behaviours": "grid.behaviour",
    "seeds": "grid.seeds",
    "base_seed": "grid.seeds",
}
OFFLINE_GRID_FIXED = tuple(OFFLINE_GRID_SET)
#: An offline spec (``kind = "offline"``): its top-level keys (offline_suboptimality's
#: settings, as in its ``run --config``, less :data:`OFFLINE_GRID_FIXED`) and grid axes (all
#: required).
OFFLINE_TOP_KEYS = (
    "kind",
    "name",
    "grid",
    *(k for k in offline.DEFAULT_CONFIG if k not in OFFLINE_GRID_FIXED),
)
OFFLINE_GRID_KEYS = ("game", "behaviour", "seeds")
GRID_KEYS = ("game", "learner", "T", "seeds", "eta", "radius")
REQUIRED_GRID = ("game", "learner", "T", "seeds")
RADII = ("chi2", "theory")
#: The games of an online sweep's ``grid.game``: online_regret's (published and extra).
SWEEP_GAMES = ONLINE_GAMES + EXTRA_GAMES
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
    """``spec`` without the entries of :data:`NOT_IDENTITY` (a copy), its experiment settings
    in the shape the previous release hashed: an online spec's game tables under ``games``
    and an offline spec's settings under ``settings``.  A spec and the same spec in the
    previous release's form (:func:`experiment_form`) have one identity, so a directory
    written by either resumes under the other."""
    out = copy.deepcopy(spec)
    for dotted in NOT_IDENTITY:
        *path, last = dotted.split(".")
        table = out
        for key in path:
            table = table.get(key, {}) if isinstance(table, dict) else {}
        if isinstance(table, dict):
            table.pop(last, None)
    if not isinstance(out, dict):
        return out
    if out.get("kind", "online") == "offline":
        moved = [k for k in out if k not in (*SWEEP_KEYS, "learner", "settings")]
        old = "settings"
    else:
        moved = [k for k in out if k in GAME_TABLES and isinstance(out[k], dict)]
        old = "games"
    if moved:
        table = out.setdefault(old, {})
        if isinstance(table, dict):
            table.update({k: out.pop(k) for k in moved if k not in table})
    return out


def experiment_form(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with its experiment settings in the experiment's ``run --config`` form (a
    copy): the one-release shim that reads the previous release's sweep forms, an online
    spec's ``[games.<name>]`` tables as top-level ``[<name>]`` tables and an offline spec's
    ``[settings]`` table as top-level settings, each with a DeprecationWarning naming the
    new form.

    Raises:
        ConfigError: a setting given in both forms, or an old-form entry that is not a table.
    """
    out = copy.deepcopy(spec)
    offline_spec = out.get("kind", "online") == "offline"
    old = "settings" if offline_spec else "games"
    table = out.get(old)
    if not isinstance(table, dict):
        return out  # not the old form (games = [...] of a run --config): the caller refuses it
    out.pop(old)
    if offline_spec and "learner" in table:
        raise ConfigError("spec: settings.learner: learner settings go under [learner]")
    for key, value in table.items():
        if not offline_spec and key not in GAME_TABLES:
            raise ConfigError(f"spec: games.{key}: unknown game; choose from {GAME_TABLES}")
        if not offline_spec and not isinstance(value, dict):
            raise ConfigError(f"spec: games.{key} must be a table, got {value!r}")
        if key in out:
            raise ConfigError(
                f"spec: {key} given both at the top level and under [{old}]; give it only "
                "at the top level"
            )
        out[key] = value
    if offline_spec:
        new = "its keys and tables at the top level ([settings.game] as [game], ...)"
        where = "offline_suboptimality"
    else:
        new = ", ".join(f"[{k}]" for k in table) + " (one top-level table per game)"
        where = "online_regret"
    warnings.warn(
        f"spec: [{old}] is read as {new}, the form of `bayes-qse run {where} --config`; "
        "the old form is read until the next release",
        DeprecationWarning,
        stacklevel=3,
    )
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


def _settings(
    spec: dict[str, Any], allowed: tuple[str, ...], grid_set: dict[str, str]
) -> dict[str, Any]:
    """The experiment settings of ``spec`` (in :func:`experiment_form`): every key but
    :data:`SWEEP_KEYS`, checked against ``allowed``; a key the grid sets (``grid_set``: key
    -> axis) is refused naming its axis."""
    settings = {k: v for k, v in spec.items() if k not in SWEEP_KEYS}
    for key in settings:
        if key in grid_set:
            raise ConfigError(
                f"spec: {key}: a sweep sets it through its grid ({grid_set[key]}), not at the "
                "top level"
            )
    _unknown(spec, allowed, "top level")
    return settings


def base_config(spec: dict[str, Any]) -> dict[str, Any]:
    """The online_regret config every unit starts from: its defaults updated by the spec's
    settings (the top-level keys, ``[<game>]`` tables and ``[learner]`` of ``run online_regret
    --config``, merged by that experiment's typed merge, :func:`merge_config`).  A spec in the
    previous release's form is read through :func:`experiment_form`."""
    spec = experiment_form(spec)
    settings = _settings(spec, TOP_KEYS, GRID_SET)
    for game in GAME_TABLES:
        if game in settings and not isinstance(settings[game], dict):
            raise ConfigError(f"spec: {game} must be a table, got {settings[game]!r}")
    return _typed(copy.deepcopy(DEFAULT_CONFIG), settings)


def _has_radius(learner: str) -> bool:
    return LEARNER_VARIANTS.get(learner, (learner, {}))[0] == "mle-optimistic"


def _make_unit(base, seeds, record, game, learner, T, eta, radius) -> Unit:
    """Build and validate one unit; errors name it."""
    name = (
        f"unit (game={game}, learner={learner}, T={T}"
        + (f", eta={eta}" if eta is not None else "")
        + (f", radius={radius})" if radius is not None else ")")
    )
    if game not in SWEEP_GAMES:
        raise ConfigError(f"spec: {name}: unknown game {game!r}; choose from {SWEEP_GAMES}")
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
    settings = (*TOP_KEYS, *OFFLINE_TOP_KEYS, *offline.DEFAULT_CONFIG["learner"])
    misplaced = sorted(k for k in set(grid) - set(allowed) if k in settings)
    if misplaced:  # TOML reads a key written after [grid] as grid's
        raise ConfigError(
            f"spec: grid.{misplaced[0]}: not a grid axis; a top-level setting goes above the "
            "first table ([grid] included)"
        )
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
    spec = experiment_form(spec)
    if kind == "offline":
        return _expand_offline(spec)
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
    _tables_in_grid(spec, ONLINE_GAME_REFS, axes["game"])
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


def _tables_in_grid(spec: dict[str, Any], refs: dict[str, GameRef], games: list[Any]) -> None:
    """Refuse a game table of ``spec`` that no game of ``grid.game`` reads (``refs``: the
    experiment's game -> :class:`GameRef`, whose ``table`` names it): a typo, or a game
    dropped from the grid whose settings would silently not run."""
    used = {refs[g].table for g in games if g in refs}
    for table in dict.fromkeys(ref.table for ref in refs.values()):
        if table in spec and table not in used:
            readers = [g for g, ref in refs.items() if ref.table == table]
            raise ConfigError(
                f"spec: {table}: a table for game(s) {readers} not in grid.game {games}; add "
                "the game to grid.game or drop the table"
            )


def _expand_offline(spec: dict[str, Any]) -> Sweep:
    """An offline spec (in :func:`experiment_form`): ``offline_suboptimality`` units, one per
    ``(game, behaviour, seed)`` of the grid, with that experiment's settings (its defaults,
    then the spec's top-level settings and ``[learner]``, as in its ``run --config``)."""
    # flat learner settings: the previous release's form, read by run --config's shim
    flat = tuple(offline.DEFAULT_CONFIG["learner"])
    allowed = (*OFFLINE_TOP_KEYS, *flat)
    _unknown(spec, (*allowed, *OFFLINE_GRID_SET), "top level")
    grid = _grid(spec, OFFLINE_GRID_KEYS, OFFLINE_GRID_KEYS)
    settings = _settings(spec, allowed, OFFLINE_GRID_SET)
    # the same typed merge as run --config (retired names, flat learner keys: its shims)
    config = _typed(copy.deepcopy(offline.DEFAULT_CONFIG), settings)
    seeds = _seeds(grid["seeds"])
    axes = {"game": _list(grid, "game"), "behaviour": _list(grid, "behaviour")}
    _tables_in_grid(spec, offline.OFFLINE_GAME_REFS, axes["game"])
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


__all__ = [
    "AXES",
    "KINDS",
    "NOT_IDENTITY",
    "Sweep",
    "GAME_TABLES",
    "base_config",
    "expand",
    "experiment_form",
    "identity",
    "load_spec",
]
