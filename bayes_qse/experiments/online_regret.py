"""Experiment 1 of docs/math.md §7: cumulative regret of the online learners (docs/math.md §5).

Every learner of :data:`bayes_qse.learners.online.ALL_LEARNERS` named in the config plays
``episodes`` episodes against the true follower, for ``seeds`` seeds, on up to five games, each
of full Fisher rank at its true ``theta`` (:func:`bayes_qse.identification.identified_directions`;
the summary records the rank, so the parameter error is the error in the identified
subspace):

- ``tabular``: a random myopic game with a tabular follower utility
  (:func:`bayes_qse.games.tabular_game`, ``d = H S A (B-1)``);
- ``linear``: a random myopic game whose follower utility is linear in ``feature_dim``
  Gaussian features (:func:`bayes_qse.games.random_game`);
- ``exploration``: a myopic game built to need exploration
  (:func:`bayes_qse.games.exploration_game`: the better action looks worse at the prior mean
  until it is tried);
- ``farsighted``: the two-step steering game (:func:`bayes_qse.games.steering_game`, ``d = 3``
  identified directions), where the leader gains by promising the farsighted follower a
  later reward;
- ``farsighted-random``: a random farsighted game whose features depend on the follower's
  action (:func:`bayes_qse.games.random_game` with ``farsighted=True``).

Outside the published run, ``large`` (the many-site patrol game,
:func:`bayes_qse.games.patrol_large_game`) compares the model-based leaders with the model-free
``-linear`` ones (LSVI on leader features, docs/math.md §3.1):
``experiments/online_regret_large.toml``.

The leader is told a stated ``reward_range`` (never read off the true rewards) and learns the
initial distribution from the episodes' first states unless ``initial_dist = "stated"``.
``mle-optimistic`` uses the ``optimism`` and ``radius`` of the config (valid box optimism and
the chi-square radius by default); ``mle-optimistic-first-order`` is the linearised bonus for
comparison.  The summary records, per learner, the settings that matter.

Per episode the runner records the exact regret ``J(pi*) - J(pi^t)`` (policy evaluation on the
true game), the follower-parameter error and the size of the Laplace / Wald ellipsoid.  The
leader also learns her own transitions and rewards unless ``known_model`` is true.

A unit of work is one ``(game, learner)`` pair for all its seeds
(:class:`~bayes_qse.experiments.online_units.OnlineUnit`, run by
:func:`bayes_qse.experiments.executors.run_units`: one process, a process pool or Ray), played
``vmap``-ped in blocks of :data:`~bayes_qse.learners.runner.SEED_BLOCK` seeds, in chunks of
``chunk`` episodes and checkpointed per seed after every chunk; it is saved per seed when done
(``units/<unit>/units/seed<s>.npz``), so an interrupted run resumes without losing or
repeating episodes, and more seeds can be added later (``--seeds``).  A seed's records are
bit-identical whatever ``--seeds`` is, whichever executor ran it and however often the run
was interrupted (:mod:`bayes_qse.learners.runner`: same version, platform and XLA build).

The CI-sized default runs every learner on the ``linear`` game only (each learner and game
compiles once, which dominates a tiny run); ``--full`` runs all five games with 20 seeds;
``--long`` (:data:`LONG_CONFIG`) runs them for ``T = 10^4`` episodes (myopic and
farsighted), 10 seeds, the farsighted learners rarely switching (``farsighted_refit =
"switching"``: linear in ``T``, docs/math.md "Rarely-switching policies"), and fits the slope
over two decades.  Every unit records the learners' policy switches per episode.

``plot`` draws, per game, the mean cumulative regret with a 10-90% band across seeds, the
log-log panel with the least-squares slope of ``log R(t)`` on ``log t`` over
``t >= slope_start * T`` (one decade for the default 0.1; two for ``--long``) with the 10-90%
band across seeds and the ``sqrt(t)`` reference line, and the parameter error; and writes
``table.md``: final cumulative regret (mean +/- standard error), slope, the ratio of the
second half's regret to the first half's, each learner's regret relative to the ``uniform``
leader's, and the ratio of each Bayesian learner's final regret to ``mle-optimistic``'s.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..identification import identified_directions
from ..io import atomic_write_text
from ..learners.config import LEARNER_VARIANTS
from ..learners.online import ALL_LEARNERS, LEARNERS
from .config import ExperimentConfig, Table, merge_config
from .executors import experiment_run
from .online_units import (  # the unit kind and its game/runner, re-exported here
    FIELDS,
    OnlineUnit,
    check_unit,
    make_unit,
    online_experiment_game,
    unit_learner_config,
)
from .report import read_results
from .store import RunStore
from .units import UnitParts

ONLINE_GAMES = ("tabular", "linear", "exploration", "farsighted", "farsighted-random")
#: Games outside the published run: ``large`` is the many-site patrol game
#: (:func:`bayes_qse.games.patrol_large_game`), where model-based and model-free leaders
#: (the ``-linear`` learners, LSVI on ``(phi, 1)``) are compared; its rewards lie in
#: ``[-2, 1]`` (the game config's own ``reward_range``).
EXTRA_GAMES = ("large",)
FARSIGHTED_GAMES = ("farsighted", "farsighted-random")


@dataclasses.dataclass(frozen=True)
class OnlineRegretConfig(ExperimentConfig):
    """The ``online_regret`` config (one field per TOML key; the CI-sized defaults), checked
    when made: a one-line :class:`ConfigError` naming the key, before any game is built
    beyond the cached check of its settings (:func:`check_unit`)."""

    KEYS = {"farsighted_random": "farsighted-random"}

    seeds: int = 2
    base_seed: int = 0
    games: tuple[str, ...] = ("linear",)
    learners: tuple[str, ...] = (*LEARNERS, "uniform")
    episodes: int = 20
    farsighted_episodes: int = 10
    chunk: int = 10
    known_model: bool = False
    tabular: Table = Table(
        seed=1,
        n_states=2,
        n_leader_actions=2,
        n_follower_actions=2,
        horizon=2,
        utility_scale=1.5,
        eta=2.0,
    )
    linear: Table = Table(
        seed=2,
        n_states=2,
        n_leader_actions=2,
        n_follower_actions=3,
        horizon=2,
        feature_dim=4,
        eta=2.0,
    )
    exploration: Table = Table(
        horizon=2, n_follower_actions=3, safe_reward=0.6, cooperation=3.0, eta=1.0
    )
    farsighted: Table = Table(eta=3.0)
    large: Table = Table(n_sites=20, horizon=5, eta=2.0, reward_range=(-2.0, 1.0))
    farsighted_random: Table = Table(
        seed=5,
        n_states=3,
        n_leader_actions=2,
        n_follower_actions=3,
        horizon=3,
        feature_dim=4,
        eta=2.0,
    )
    reward_range: tuple[float, float] = (0.0, 1.0)
    initial_dist: str = "learned"
    slope_start: float = 0.1
    # the learner's settings ([learner] in TOML, as in a sweep spec): every LearnerConfig
    # field but capacity (the episodes), with the refit schedule per game kind
    # (refit: myopic games, farsighted_refit: farsighted ones); the -linear variants set
    # leader_model, -first-order optimism, -theory radius
    learner: Table = Table(
        optimism="box",
        radius="chi2",
        reward_bound="best",
        prior_scale=1.0,
        newton_steps=5,
        num_draws=8,
        quantile_offset=2.0,
        delta=0.1,
        n_candidates=4,
        planner_steps=10,
        planner_lr=0.2,
        reward_noise_sd=0.5,
        mle_prior_scale=math.inf,
        theta_bound=10.0,
        leader_model="tabular",
        leader_features="follower",
        lsvi_reg=1.0,
        refit="every",
        farsighted_refit="every",
        switch_factor=2.0,
        max_policies=512,
    )

    def check(self, config: dict[str, Any]) -> None:
        """The checks of an ``online_regret`` config; :class:`ConfigError` naming the key."""
        for g in config["games"]:
            if g not in ONLINE_GAMES + EXTRA_GAMES:
                raise ConfigError(
                    f"config: games: unknown game {g!r}; choose from {ONLINE_GAMES + EXTRA_GAMES}"
                )
        for name in config["learners"]:
            if name not in ALL_LEARNERS:
                raise ConfigError(
                    f"config: learners: unknown learner {name!r}; choose from {ALL_LEARNERS}"
                )
        if config["initial_dist"] not in ("learned", "stated"):
            raise ConfigError(
                "config: initial_dist must be 'learned' or 'stated', got "
                f"{config['initial_dist']!r}"
            )
        refit = config["learner"].get("farsighted_refit", "every")
        if refit not in ("every", "switching"):
            raise ConfigError(
                f"config: learner.farsighted_refit: must be one of ('every', 'switching'), "
                f"got {refit!r}"
            )
        for farsighted in (False, True):  # every learner setting, through LearnerConfig
            unit_learner_config(config, farsighted, 1)
        rr = config["reward_range"]
        if len(rr) != 2 or not float(rr[0]) < float(rr[1]):
            raise ConfigError(
                f"config: reward_range must be [low, high] with low < high, got {rr!r}"
            )
        for key in ("episodes", "farsighted_episodes", "chunk"):
            if config[key] < 1:
                raise ConfigError(f"config: {key} must be >= 1, got {config[key]}")
        for key in {episodes_key(g) for g in config["games"]}:
            if config[key] % min(config["chunk"], config[key]):
                raise ConfigError(
                    f"config: chunk ({config['chunk']}) must divide {key} ({config[key]})"
                )
        if not 0.0 < config["slope_start"] < 1.0:
            raise ConfigError(
                f"config: slope_start must lie in (0, 1), got {config['slope_start']}"
            )
        for g in config["games"]:  # sizes against memory, then the game built, before any run
            check_unit(g, config, episodes_for(g, config), config["seeds"])


#: The experiment's registered name (the name of its results store).
NAME = "online_regret"
#: The experiment's config type (the experiment interface, :mod:`bayes_qse.experiments`).
Config = OnlineRegretConfig

#: The published form of the CI-sized defaults.
DEFAULT_CONFIG = OnlineRegretConfig.defaults()

#: ``--full``: all five games, 20 seeds, ``T = 1000`` (300 farsighted).
FULL_CONFIG = OnlineRegretConfig.preset(
    seeds=20,
    games=list(ONLINE_GAMES),
    learners=[*LEARNERS, "mle-optimistic-first-order", "uniform"],
    episodes=1000,
    farsighted_episodes=300,
    chunk=50,
    tabular={"n_states": 3, "n_leader_actions": 3, "horizon": 3},
    linear={"n_states": 4, "n_leader_actions": 3, "horizon": 3, "feature_dim": 8},
    learner={"num_draws": 16, "n_candidates": 8, "planner_steps": 80, "planner_lr": 0.3},
)

#: ``--long``: two decades of ``T`` (10^4 episodes, myopic and farsighted, 10 seeds), the
#: farsighted learners rarely switching (:mod:`bayes_qse.learners.switching`) so that the
#: run is linear in ``T``; the slope is fitted over ``t >= 0.01 T``.
LONG_CONFIG = merge_config(
    FULL_CONFIG,
    {
        "seeds": 10,
        "episodes": 10_000,
        "farsighted_episodes": 10_000,
        "chunk": 500,
        "learner": {"farsighted_refit": "switching"},
        "slope_start": 0.01,
    },
)


def episodes_key(game: str) -> str:
    """The config key of a game's number of episodes."""
    return "farsighted_episodes" if game in FARSIGHTED_GAMES else "episodes"


def episodes_for(game: str, config: dict[str, Any]) -> int:
    return config[episodes_key(game)]


def make_units(config: dict[str, Any]) -> list[OnlineUnit]:
    """The experiment's units: one per ``(game, learner)`` of the config, all its seeds."""
    seeds = [config["base_seed"] + i for i in range(config["seeds"])]
    return [
        make_unit(config, game, learner, episodes_for(game, config), seeds)
        for game in config["games"]
        for learner in config["learners"]
    ]


#: Run (or resume) the experiment (:func:`~.executors.run_experiment_module`).
run = experiment_run(__name__)


def write_results(
    store: RunStore,
    config: dict[str, Any],
    units: list[OnlineUnit],
    loaded: dict[str, UnitParts],
) -> Path:
    from ..plots import loglog_slope  # lazy: plots imports matplotlib

    by_cell = {(u.game, u.learner): u.key for u in units}
    data: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    for game_name in config["games"]:
        per_game: dict[str, Any] = {}
        for learner in config["learners"]:
            parts = loaded[by_cell[game_name, learner]]
            for field in FIELDS:
                # units saved before "switches" was recorded have no such field: nan
                data[f"{game_name}.{learner}.{field}"] = np.stack(
                    [u[0].get(field, np.full(len(u[0]["regret"]), np.nan)) for u in parts]
                )
            regret = data[f"{game_name}.{learner}.regret"]
            cumulative = np.cumsum(regret, axis=1)
            final = cumulative[:, -1]
            per_game[learner] = {
                "final_regret_mean": float(final.mean()),
                "final_regret_se": float(final.std(ddof=1) / np.sqrt(len(final)))
                if len(final) > 1
                else float("nan"),
                "slope": loglog_slope(cumulative.mean(axis=0), config["slope_start"]),
                "final_theta_error_mean": float(
                    data[f"{game_name}.{learner}.theta_error"][:, -1].mean()
                ),
                "final_informed_directions_mean": float(
                    data[f"{game_name}.{learner}.informed"][:, -1].mean()
                ),
                "final_switches_mean": float(data[f"{game_name}.{learner}.switches"][:, -1].mean()),
                "wall_seconds": float(parts[0][1].get("batch_wall_seconds", float("nan"))),
                "episodes": int(regret.shape[1]),
            }
        uniform = per_game.get("uniform", {}).get("final_regret_mean")
        for learner, row in per_game.items():
            regret = data[f"{game_name}.{learner}.regret"]
            half = regret.shape[1] // 2
            first, second = regret[:, :half].sum(1).mean(), regret[:, half:].sum(1).mean()
            row["second_to_first_half"] = float(second / first) if first > 0 else float("nan")
            if uniform:
                row["ratio_to_uniform"] = row["final_regret_mean"] / uniform
        game = online_experiment_game(game_name, config)
        ident = identified_directions(game, n_episodes=1500, seed=0)
        per_game["_game"] = {
            "fisher_rank": ident.rank,
            "feature_dim": ident.dim,
            "farsighted": bool(game.farsighted),
        }
        mle = per_game.get("mle-optimistic", {}).get("final_regret_mean")
        for learner in ("bayes-optimistic", "thompson"):
            if mle and learner in per_game:
                per_game[learner]["ratio_to_mle_optimistic"] = (
                    per_game[learner]["final_regret_mean"] / mle
                )
        summary[game_name] = per_game
    data["seeds"] = np.asarray(units[0].seeds)
    summary["_learner_settings"] = settings_by_learner(config)
    data["summary"] = summary
    return store.write_results("results", data)


def settings_by_learner(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What each learner of the run used: the radius and optimism of the frequentist set,
    the posterior of the Bayesian ones (written into every result)."""
    out: dict[str, dict[str, Any]] = {}
    settings = config["learner"]
    for name in config["learners"]:
        base, overrides = LEARNER_VARIANTS.get(name, (name, {}))
        if base == "mle-optimistic":
            out[name] = {
                "follower": "unpenalised MLE, Wald set (Fisher-rank chi-square dof)",
                "radius": overrides.get("radius", settings["radius"]),
                "optimism": overrides.get("optimism", settings["optimism"]),
                "delta": settings["delta"],
            }
        elif base in ("thompson", "bayes-optimistic", "greedy"):
            out[name] = {"follower": "Laplace posterior", "prior_scale": settings["prior_scale"]}
        else:
            out[name] = {"follower": "none (fixed policy)"}
        if "leader_model" in overrides:  # the model-free variants (docs/math.md §3.1)
            out[name]["leader_model"] = "linear (LSVI on (phi, 1))"
    return out


def plot(out_dir: Path) -> list[Path]:
    """Figures (one PNG per game) and ``table.md`` from a results directory."""
    import matplotlib  # lazy: matplotlib only for the figures

    from ..plots import loglog_panel, markdown_table, new_figure, regret_curves, save_figure  # lazy

    out_dir = Path(out_dir)
    arrays, doc = read_results(out_dir)
    config, summary = doc["config"], doc["summary"]["summary"]
    start = config["slope_start"]
    paths: list[Path] = []
    rows = []
    for game_name in config["games"]:
        learners = config["learners"]
        cum = {name: np.cumsum(arrays[f"{game_name}.{name}.regret"], axis=1) for name in learners}
        err = {
            name: arrays[f"{game_name}.{name}.theta_error"]
            for name in learners
            if name not in ("oracle", "uniform")
        }
        fig, axes = new_figure(ncols=3, size=(5.2, 4.0))
        # one colour per learner in every panel (the oracle is left out of panels 2 and 3)
        cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
        colours = {name: cycle[i % len(cycle)] for i, name in enumerate(learners)}
        others = [colours[name] for name in learners if name != "oracle"] or cycle
        axes[1].set_prop_cycle(color=others)
        axes[2].set_prop_cycle(color=others)
        regret_curves(axes[0], cum)
        axes[0].set_title(f"{game_name}: cumulative regret (10-90% band)")
        loglog_panel(
            axes[1],
            {k: v for k, v in cum.items() if k != "oracle"},
            start,
            band=True,
            reference_slope=0.5,
        )
        axes[1].set_title(f"log-log (10-90% band), slope fitted on t >= {start:g} T")
        regret_curves(axes[2], err, ylabel="||theta_hat - theta||")
        axes[2].set_title("follower-parameter error")
        paths.append(save_figure(fig, out_dir / f"online_regret_{game_name}.png"))
        info = summary[game_name].get("_game", {})
        rank = f"{info.get('fisher_rank', '?')}/{info.get('feature_dim', '?')}"
        for name in learners:
            s = summary[game_name][name]
            ratio = s.get("ratio_to_mle_optimistic")
            to_uniform = s.get("ratio_to_uniform")
            rows.append(
                [
                    f"{game_name} (rank {rank})",
                    name,
                    s["episodes"],
                    f"{s['final_regret_mean']:.3g} ± {s['final_regret_se']:.2g}",
                    s["slope"] if name != "oracle" else "-",
                    s.get("second_to_first_half", float("nan")) if name != "oracle" else "-",
                    to_uniform if to_uniform is not None else "-",
                    ratio if ratio is not None else "-",
                    s["final_theta_error_mean"] if name not in ("oracle", "uniform") else "-",
                    f"{s.get('final_informed_directions_mean', float('nan')):.3g}"
                    if name not in ("oracle", "uniform")
                    else "-",
                    f"{s.get('final_switches_mean', float('nan')):.0f}"
                    if name not in ("oracle", "uniform")
                    else "-",
                    f"{s['wall_seconds']:.0f}",
                ]
            )
    n_seeds = len(arrays["seeds"])
    table = markdown_table(
        [
            "game",
            "learner",
            "T",
            f"final cumulative regret (mean ± se, {n_seeds} seeds)",
            "log-log slope",
            "2nd half / 1st half",
            "regret / uniform",
            "regret / mle-optimistic",
            "final theta error",
            "informed directions (final)",
            "policy switches (final)",
            "wall s (all seeds)",
        ],
        rows,
    )
    paths.append(atomic_write_text(out_dir / "table.md", table))
    return paths


__all__ = [
    "NAME",
    "DEFAULT_CONFIG",
    "FULL_CONFIG",
    "EXTRA_GAMES",
    "ONLINE_GAMES",
    "LONG_CONFIG",
    "OnlineRegretConfig",
    "Config",
    "make_units",
    "plot",
    "run",
    "write_results",
]
