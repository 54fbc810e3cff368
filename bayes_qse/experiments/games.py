"""One home for the experiments' games: a registry of game kinds, each a frozen settings
dataclass (:class:`~bayes_qse.settings.Settings`: validated when made, a one-line
:class:`~bayes_qse.errors.ConfigError` naming the field, built by ``from_mapping``) and the
builder that makes the game from it.

Every experiment names a game the same way: a *kind* of :data:`GAME_KINDS` and a table of its
settings.  The Markov-game experiments (``online_regret``, ``offline_suboptimality``,
``rationality_sweep``, ``confidence_sets``) keep their games' tables in the config and map
each game name of the config to a :class:`GameRef` (its kind and the table that sets it;
:func:`config_game`); ``inverse_stackelberg`` and ``security_games`` build the table of a
seed's game from their flat settings and call :func:`make_game`.

Kinds (the functions they call):

- ``random``: :func:`bayes_qse.games.random_game` (:class:`RandomGameSettings`);
  ``random-farsighted`` the same with a farsighted follower;
- ``random-tabular``: a random game with all four arrays drawn here (Dirichlet transitions,
  uniform rewards, a Gaussian tabular utility of scale ``utility_scale``, a Dirichlet initial
  distribution; :class:`RandomTabularSettings`), the online ``tabular`` game;
- ``random-tabular-utility``: the ``random`` game with its utility replaced by a standard
  Gaussian tabular one drawn with ``seed + 7919`` (:class:`RandomGameSettings`), the offline
  ``tabular`` game;
- ``exploration``, ``steering``, ``tempting``, ``patrol-large``, ``random-large``: the
  functions of :mod:`bayes_qse.games` of those names;
- ``wu-normal-form``, ``wu-security-form``: Wu et al.'s normal-form commitment games
  (:func:`bayes_qse.normal_form.random_normal_form_game`,
  :func:`~bayes_qse.normal_form.random_security_form_game`);
- ``security-uniform``, ``security-covariance``: the SUQR security games of
  :mod:`bayes_qse.security` (a different game type: a coverage, not a Markov policy).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from .._validate import SEED_MAX
from ..errors import ConfigError
from ..games import (
    exploration_game,
    patrol_large_game,
    random_game,
    random_large_game,
    steering_game,
    tabular_game,
    tempting_game,
)
from ..normal_form import random_normal_form_game, random_security_form_game
from ..settings import Settings, check_count, check_real

#: Keys of a game table that are not game settings: ``reward_range`` is the range of her
#: rewards the leader is told (read by the experiment, never by the game).
NOT_GAME_KEYS = ("reward_range",)


def _seed(value: Any) -> None:
    check_count("seed", value, 0)
    if value > SEED_MAX:
        raise ConfigError(f"seed: must be an integer in [0, {SEED_MAX}], got {value!r}")


def _eta(value: Any) -> None:
    check_real("eta", value, 0.0, math.inf, open_low=True)


def _counts(settings: Any, minimum: int, *names: str) -> None:
    for name in names:
        check_count(name, getattr(settings, name), minimum)


@dataclasses.dataclass(frozen=True)
class RandomGameSettings(Settings):
    """A random Markov game (kinds ``random``, ``random-farsighted``,
    ``random-tabular-utility``): :func:`bayes_qse.games.random_game`'s arguments."""

    seed: int = 0
    n_states: int = 2
    n_leader_actions: int = 2
    n_follower_actions: int = 2
    horizon: int = 2
    feature_dim: int = 2
    eta: float = 1.0

    def __post_init__(self) -> None:
        _seed(self.seed)
        _counts(self, 1, "n_states", "n_leader_actions", "n_follower_actions", "horizon")
        check_count("feature_dim", self.feature_dim)
        _eta(self.eta)


@dataclasses.dataclass(frozen=True)
class RandomTabularSettings(Settings):
    """The ``random-tabular`` game: shape, seed, the utility's scale, ``eta``."""

    seed: int = 0
    n_states: int = 2
    n_leader_actions: int = 2
    n_follower_actions: int = 2
    horizon: int = 2
    utility_scale: float = 1.0
    eta: float = 1.0

    def __post_init__(self) -> None:
        _seed(self.seed)
        _counts(self, 1, "n_states", "n_leader_actions", "n_follower_actions", "horizon")
        check_real("utility_scale", self.utility_scale, 0.0)
        _eta(self.eta)


@dataclasses.dataclass(frozen=True)
class ExplorationSettings(Settings):
    """:func:`bayes_qse.games.exploration_game`'s arguments (its defaults)."""

    horizon: int = 2
    n_follower_actions: int = 3
    safe_reward: float = 0.6
    cooperation: float = 3.0
    eta: float = 1.0

    def __post_init__(self) -> None:
        check_count("horizon", self.horizon)
        check_count("n_follower_actions", self.n_follower_actions, 2)
        check_real("safe_reward", self.safe_reward, 0.0, 1.0)
        check_real("cooperation", self.cooperation)
        _eta(self.eta)


@dataclasses.dataclass(frozen=True)
class SteeringSettings(Settings):
    """:func:`bayes_qse.games.steering_game`'s ``eta``."""

    eta: float = 3.0

    def __post_init__(self) -> None:
        _eta(self.eta)


@dataclasses.dataclass(frozen=True)
class TemptingSettings(Settings):
    """:func:`bayes_qse.games.tempting_game`'s arguments (its defaults)."""

    n_tempting: int = 6
    safe_value: float = 0.6
    tempting_value: float = 0.3
    eta: float = 2.0
    horizon: int = 1

    def __post_init__(self) -> None:
        _counts(self, 1, "n_tempting", "horizon")
        for name in ("safe_value", "tempting_value"):
            check_real(name, getattr(self, name), 0.0, 1.0, open_low=True, open_high=True)
        _eta(self.eta)


@dataclasses.dataclass(frozen=True)
class PatrolLargeSettings(Settings):
    """:func:`bayes_qse.games.patrol_large_game`'s arguments (myopic; its defaults)."""

    n_sites: int = 50
    horizon: int = 10
    eta: float = 2.0

    def __post_init__(self) -> None:
        check_count("n_sites", self.n_sites, 10)
        if self.n_sites > 100:
            raise ConfigError(f"n_sites: must be an integer in [10, 100], got {self.n_sites!r}")
        check_count("horizon", self.horizon)
        _eta(self.eta)


@dataclasses.dataclass(frozen=True)
class RandomLargeSettings(Settings):
    """:func:`bayes_qse.games.random_large_game`'s arguments (myopic; its defaults)."""

    seed: int = 0
    n_states: int = 100
    n_actions: int = 10
    horizon: int = 20
    feature_dim: int = 32
    eta: float = 1.0

    def __post_init__(self) -> None:
        _seed(self.seed)
        _counts(self, 1, "n_states", "n_actions", "horizon", "feature_dim")
        _eta(self.eta)


@dataclasses.dataclass(frozen=True)
class WuGameSettings(Settings):
    """Wu et al.'s random ``m x n`` game ``V = alpha I + (1 - alpha) R`` (eq. 9c) of seed
    ``seed``, rationality ``eta`` (reference coding)."""

    seed: int = 0
    m: int = 10
    n: int = 10
    alpha: float = 0.0
    eta: float = 8.0

    def __post_init__(self) -> None:
        _seed(self.seed)
        _counts(self, 2, "m", "n")
        check_real("alpha", self.alpha, 0.0, 1.0)
        _eta(self.eta)


@dataclasses.dataclass(frozen=True)
class WuSecuritySettings(Settings):
    """Wu et al.'s random ``n_targets``-target security game (eq. 9c, structured features)."""

    seed: int = 0
    n_targets: int = 10
    eta: float = 8.0

    def __post_init__(self) -> None:
        _seed(self.seed)
        check_count("n_targets", self.n_targets, 2)
        _eta(self.eta)


@dataclasses.dataclass(frozen=True)
class SecurityGameSettings(Settings):
    """A SUQR security game of :mod:`bayes_qse.security` (payoffs drawn with ``seed``;
    ``correlation`` is read by ``security-covariance`` only)."""

    n_targets: int = 5
    resources: float = 1.0
    seed: int = 0
    correlation: float = -0.5

    def __post_init__(self) -> None:
        check_count("n_targets", self.n_targets, 2)
        check_real("resources", self.resources, 0.0, self.n_targets, open_low=True)
        _seed(self.seed)
        check_real("correlation", self.correlation, -1.0, 1.0)


def _random(s: RandomGameSettings, farsighted: bool = False):
    return random_game(
        s.seed,
        s.n_states,
        s.n_leader_actions,
        s.n_follower_actions,
        s.horizon,
        s.feature_dim,
        eta=float(s.eta),
        farsighted=farsighted,
    )


def _random_tabular(s: RandomTabularSettings):
    """``P ~ Dir(1)``, ``r ~ U[0, 1]``, ``u ~ utility_scale N(0, 1)``, ``rho ~ Dir(1)``, drawn
    in that order from ``default_rng(seed)``."""
    rng = np.random.default_rng(s.seed)
    shape = (s.horizon, s.n_states, s.n_leader_actions, s.n_follower_actions)
    P = rng.dirichlet(np.ones(s.n_states), size=shape)
    r = rng.uniform(0.0, 1.0, size=shape)
    u = s.utility_scale * rng.normal(size=shape)
    rho = rng.dirichlet(np.ones(s.n_states))
    return tabular_game(P, r, u, eta=s.eta, initial_dist=rho)


def _random_tabular_utility(s: RandomGameSettings):
    """The ``random`` game's arrays with a ``N(0, 1)`` tabular utility from
    ``default_rng(seed + 7919)``."""
    g = _random(s)
    u = np.random.default_rng(s.seed + 7919).normal(size=g.shape)
    return tabular_game(g.transitions, g.leader_reward, u, g.eta, g.initial_dist)


def _tabular_shape(s) -> tuple[int, int, int, int, int]:
    H, S, A, B = s.horizon, s.n_states, s.n_leader_actions, s.n_follower_actions
    return H, S, A, B, H * S * A * max(B - 1, 1)


class GameKind(NamedTuple):
    """A registered game kind: its settings dataclass, the builder of its game, and (Markov
    games) the shape ``(H, S, A, B, d)`` of that game from the settings alone (nothing
    allocated; what the memory checks size before building)."""

    settings: type[Settings]
    build: Callable[[Any], Any]
    shape: Callable[[Any], tuple[int, int, int, int, int]] | None = None


def _random_shape(s) -> tuple[int, int, int, int, int]:
    return s.horizon, s.n_states, s.n_leader_actions, s.n_follower_actions, s.feature_dim


#: Every game kind an experiment can name (see the module docstring).
GAME_KINDS: dict[str, GameKind] = {
    "random": GameKind(RandomGameSettings, _random, _random_shape),
    "random-farsighted": GameKind(
        RandomGameSettings, lambda s: _random(s, farsighted=True), _random_shape
    ),
    "random-tabular": GameKind(RandomTabularSettings, _random_tabular, _tabular_shape),
    "random-tabular-utility": GameKind(RandomGameSettings, _random_tabular_utility, _tabular_shape),
    "exploration": GameKind(
        ExplorationSettings,
        lambda s: exploration_game(**s.to_dict()),
        lambda s: (s.horizon, 1, 2, s.n_follower_actions, 2),
    ),
    "steering": GameKind(
        SteeringSettings, lambda s: steering_game(eta=s.eta), lambda s: (2, 3, 2, 2, 3)
    ),
    "tempting": GameKind(
        TemptingSettings,
        lambda s: tempting_game(**s.to_dict()),
        lambda s: (s.horizon, 1, s.n_tempting + 1, 2, s.n_tempting),
    ),
    "patrol-large": GameKind(
        PatrolLargeSettings,
        lambda s: patrol_large_game(s.n_sites, s.horizon, float(s.eta)),
        lambda s: (s.horizon, 2, s.n_sites, s.n_sites + 1, 4),
    ),
    "random-large": GameKind(
        RandomLargeSettings,
        lambda s: random_large_game(**s.to_dict()),
        lambda s: (s.horizon, s.n_states, s.n_actions, s.n_actions, s.feature_dim),
    ),
    "wu-normal-form": GameKind(
        WuGameSettings, lambda s: random_normal_form_game(s.seed, s.m, s.n, s.alpha, eta=s.eta)
    ),
    "wu-security-form": GameKind(
        WuSecuritySettings, lambda s: random_security_form_game(s.seed, s.n_targets, eta=s.eta)
    ),
    "security-uniform": GameKind(SecurityGameSettings, lambda s: _security_game(s, "uniform")),
    "security-covariance": GameKind(
        SecurityGameSettings, lambda s: _security_game(s, "covariance")
    ),
}


def _security_game(s: SecurityGameSettings, payoffs: str):
    """The security game of ``s`` with ``uniform`` or ``covariance`` payoffs."""
    # lazy: bayes_qse.security imports NumPyro (its SUQR model) and SciPy's statistics, which
    # an online sweep's driver and workers, importing this registry, never use.
    from ..security import covariance_security_game, uniform_security_game  # lazy

    if payoffs == "uniform":
        return uniform_security_game(n_targets=s.n_targets, resources=s.resources, seed=s.seed)
    return covariance_security_game(**s.to_dict())


def game_settings(kind: str, settings: Mapping[str, Any], where: str | None = None) -> Settings:
    """The validated settings of a game of ``kind`` from a table (keys of
    :data:`NOT_GAME_KEYS` ignored).

    Raises:
        ConfigError: one line, ``config: <where>.<field>: ...`` (``where``: the config table
            of the game, ``kind`` by default; ``""`` for settings at the config's top level,
            ``config: <field>: ...``), an unknown kind or an unknown setting.
    """
    where = kind if where is None else where
    head = f"config: {where}" if where else "config"
    if kind not in GAME_KINDS:
        raise ConfigError(f"{head}: unknown game kind {kind!r}; choose from {list(GAME_KINDS)}")
    if not isinstance(settings, Mapping):
        raise ConfigError(f"{head}: must be a table of settings, got {settings!r}")
    values = {k: v for k, v in settings.items() if k not in NOT_GAME_KEYS}
    cls = GAME_KINDS[kind].settings
    try:
        return cls.from_mapping(values)
    except ConfigError as exc:  # "<field>: ..." from a check, "<cls>: unknown ..." from a key
        text = str(exc)
        if text.startswith(cls.__name__ + ":"):
            raise ConfigError(f"{head}: {text.removeprefix(cls.__name__ + ': ')}") from None
        raise ConfigError(f"{head}{'.' if where else ': '}{text}") from None
    except TypeError as exc:  # a comparison of a non-number
        raise ConfigError(f"{head}: {exc}") from None


def make_game(kind: str, settings: Mapping[str, Any] | Settings, where: str | None = None):
    """The game of ``kind`` (:data:`GAME_KINDS`) with ``settings`` (a table, validated by
    :func:`game_settings`, or its settings dataclass)."""
    if not isinstance(settings, Settings):
        settings = game_settings(kind, settings, where)
    elif not isinstance(settings, GAME_KINDS[kind].settings):
        raise ConfigError(f"config: {where or kind}: {type(settings).__name__} is not {kind!r}'s")
    return GAME_KINDS[kind].build(settings)


def game_shape(kind: str, settings: Mapping[str, Any], where: str | None = None):
    """``(H, S, A, B, d)`` of the Markov game of ``kind`` with ``settings`` (validated by
    :func:`game_settings`), from the settings alone: nothing is allocated."""
    shape = GAME_KINDS[kind].shape if kind in GAME_KINDS else None
    if shape is None and kind in GAME_KINDS:
        raise ConfigError(f"config: {where or kind}: {kind!r} is not a Markov game")
    return shape(game_settings(kind, settings, where))


class GameRef(NamedTuple):
    """How an experiment config sets one of its games: the game's ``kind`` and the config
    ``table`` that holds its settings."""

    kind: str
    table: str


def stated_reward_range(game: str, config: Mapping[str, Any]) -> tuple[float, float]:
    """``(low, high)``, the range of her rewards the leader is told for game ``game`` of an
    experiment config: the game table's own ``reward_range`` (``config[game]``, e.g. the
    ``large`` patrol game's ``[-2, 1]``) when it has one, else the config's ``reward_range``
    (``[0, 1]`` when the config has none).  Never read off the true rewards.

    Raises:
        ConfigError: the range found is not two numbers (naming its key).
    """
    own = config.get(game)
    rr = own.get("reward_range") if isinstance(own, Mapping) else None
    key = "reward_range" if rr is None else f"{game}.reward_range"
    rr = config.get("reward_range", (0.0, 1.0)) if rr is None else rr
    try:
        low, high = (float(x) for x in rr)
    except (TypeError, ValueError):
        raise ConfigError(f"config: {key} must be [low, high], two numbers, got {rr!r}") from None
    return low, high


def config_game(config: Mapping[str, Any], ref: GameRef, **overrides: Any):
    """The game of ``ref`` in an experiment config: :func:`make_game` of ``ref.kind`` with the
    table ``config[ref.table]`` (an absent table: the kind's defaults) updated by
    ``overrides`` (e.g. the ``eta`` of a sweep)."""
    table = config.get(ref.table) or {}
    return make_game(ref.kind, {**table, **overrides}, where=ref.table)


__all__ = [
    "GAME_KINDS",
    "NOT_GAME_KEYS",
    "ExplorationSettings",
    "GameKind",
    "GameRef",
    "PatrolLargeSettings",
    "RandomGameSettings",
    "RandomLargeSettings",
    "RandomTabularSettings",
    "SecurityGameSettings",
    "SteeringSettings",
    "TemptingSettings",
    "WuGameSettings",
    "WuSecuritySettings",
    "config_game",
    "game_settings",
    "game_shape",
    "make_game",
    "stated_reward_range",
]
