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
false) or knows them (true).  A unit of work is one ``(game, behaviour, seed)``; units are
saved as they finish, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ..data import simulate
from ..errors import ConfigError, GameValidationError
from ..games import (
    patrol_large_game,
    random_game,
    random_large_game,
    tabular_game,
    tempting_game,
)
from ..io import atomic_write_text
from ..learners.behaviour import BEHAVIOURS, behaviour_policy
from ..learners.common import GameSpec
from ..learners.offline import get_learner, learner_config
from ..planning import leader_value, solve_qse
from ..progress import progress
from .report import read_results
from .store import RunStore

GAMES = ("linear", "tabular", "tempting", "large", "random-large")

#: Games with their own settings table (and, for ``large``, their own ``reward_range``).
LARGE_GAMES = ("large", "random-large")

DEFAULT_CONFIG: dict[str, Any] = {
    "seeds": 2,
    "base_seed": 0,
    "games": ["linear"],
    "game": {
        "seed": 3,
        "n_states": 2,
        "n_leader_actions": 2,
        "n_follower_actions": 2,
        "horizon": 2,
        "feature_dim": 3,
        "eta": 2.0,
    },
    # the ``tempting`` game's constants (bayes_qse.games.tempting_game)
    "tempting": {"n_tempting": 6, "safe_value": 0.6, "tempting_value": 0.3, "eta": 2.0},
    # the many-site patrol game (bayes_qse.games.patrol_large_game) and the range of its
    # leader rewards that the leader is told
    "large": {"n_sites": 20, "horizon": 5, "eta": 2.0, "reward_range": [-2.0, 1.0]},
    # bayes_qse.games.random_large_game at a reduced shape (rewards in [0, 1])
    "random-large": {
        "seed": 0,
        "n_states": 10,
        "n_actions": 5,
        "horizon": 5,
        "feature_dim": 8,
        "eta": 1.0,
    },
    # the range of the leader's rewards she is told (games without their own reward_range)
    "reward_range": [0.0, 1.0],
    "known_model": False,
    "sizes": [10, 100],
    "behaviours": ["uniform", "near-optimal", "poor-coverage"],
    "learners": ["oracle", "plugin", "mle-pessimistic", "bayes-pessimistic"],
    "near_optimal_epsilon": 0.2,
    "poor_coverage_epsilon": 0.05,
    "delta": 0.1,
    "ridge": 1.0,
    "num_draws": 64,
    "posterior": "laplace",
}

FULL_CONFIG: dict[str, Any] = {
    **DEFAULT_CONFIG,
    "seeds": 20,
    "games": ["linear", "tabular", "tempting"],
    "game": {
        "seed": 3,
        "n_states": 3,
        "n_leader_actions": 3,
        "n_follower_actions": 3,
        "horizon": 3,
        "feature_dim": 4,
        "eta": 2.0,
    },
    "sizes": [10, 32, 100, 316, 1000, 3162, 10000],
    "learners": [
        "oracle",
        "plugin",
        "mle-pessimistic",
        "mle-pessimistic-first-order",
        "bayes-pessimistic",
        "bayes-pessimistic-cvar",
    ],
    "num_draws": 256,
}


def validate_config(config: dict[str, Any]) -> None:
    """Experiment-specific checks (:class:`ConfigError` naming the key)."""
    for g in config["games"]:
        if g not in GAMES:
            raise ConfigError(f"config: games: unknown game {g!r}; choose from {GAMES}")
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
    for key, value in config["game"].items():
        if key != "eta" and (int(value) != value or value < (0 if key == "seed" else 1)):
            raise ConfigError(f"config: game.{key} must be a positive integer, got {value!r}")
    if not config["game"]["eta"] > 0:
        raise ConfigError(f"config: game.eta must be > 0, got {config['game']['eta']!r}")
    if "tempting" in config["games"]:
        try:
            make_game("tempting", config["game"], config["tempting"])
        except (GameValidationError, TypeError) as exc:
            raise ConfigError(f"config: tempting: {exc}") from None
    _check_range(config["reward_range"], "reward_range")
    if "reward_range" in config["large"]:
        _check_range(config["large"]["reward_range"], "large.reward_range")
    for name in LARGE_GAMES:
        for key, value in config[name].items():
            if key == "reward_range":
                continue
            if key == "eta":
                if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                    raise ConfigError(f"config: {name}.eta must be a number > 0, got {value!r}")
            elif isinstance(value, bool) or int(value) != value or value < (key != "seed"):
                raise ConfigError(f"config: {name}.{key} must be a positive integer, got {value!r}")
    for g in config["games"]:
        if g not in LARGE_GAMES:
            continue
        try:
            game = experiment_game(g, config)
        except (GameValidationError, TypeError) as exc:
            raise ConfigError(f"config: {g}: {exc}") from None
        key = "large.reward_range" if g == "large" else "reward_range"
        try:
            GameSpec.from_game(game, reward_range=stated_reward_range(g, config))
        except ConfigError as exc:
            raise ConfigError(f"config: {key}: game {g!r}: {exc}") from None
    learner_config(_learner_settings(config))


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


def stated_reward_range(game: str, config: dict[str, Any]) -> tuple[float, float]:
    """The range of her rewards the leader is told for game ``game``: the game settings' own
    ``reward_range`` when they have one (``large``), else the experiment's ``reward_range``
    (``[0, 1]`` when the config has none)."""
    own = config.get(game)
    rr = own.get("reward_range") if isinstance(own, dict) else None
    rr = rr if rr is not None else config.get("reward_range", (0.0, 1.0))
    return float(rr[0]), float(rr[1])


def _learner_settings(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "delta": config["delta"],
        "ridge": config["ridge"],
        "num_draws": config["num_draws"],
        "posterior": config["posterior"],
    }


def experiment_game(kind: str, config: dict[str, Any]):
    """The game ``kind`` of an experiment config: :func:`make_game` with the settings table
    that game reads (``game``, ``tempting``, ``large`` or ``random-large``)."""
    if kind in LARGE_GAMES:
        return make_game(kind, config[kind])
    return make_game(kind, config["game"], config.get("tempting"))


def make_game(kind: str, settings: dict[str, Any], tempting: dict[str, Any] | None = None):
    """The experiment's ``linear`` or ``tabular`` game from the ``game`` settings, the
    ``tempting`` game from the ``tempting`` settings (keyword arguments of
    :func:`~bayes_qse.games.tempting_game`; its defaults when None), or ``large`` /
    ``random-large`` from their own settings (``settings``: keyword arguments of
    :func:`~bayes_qse.games.patrol_large_game` / :func:`~bayes_qse.games.random_large_game`,
    less ``reward_range``)."""
    if kind == "tempting":
        return tempting_game(**dict(tempting or {}))
    if kind == "large":
        return patrol_large_game(
            int(settings["n_sites"]), int(settings["horizon"]), float(settings["eta"])
        )
    if kind == "random-large":
        return random_large_game(**{k: v for k, v in settings.items() if k != "reward_range"})

    g = random_game(
        int(settings["seed"]),
        int(settings["n_states"]),
        int(settings["n_leader_actions"]),
        int(settings["n_follower_actions"]),
        int(settings["horizon"]),
        int(settings["feature_dim"]),
        eta=float(settings["eta"]),
    )
    if kind == "linear":
        return g
    rng = np.random.default_rng(int(settings["seed"]) + 7919)
    u = rng.normal(size=g.shape)
    return tabular_game(g.transitions, g.leader_reward, u, g.eta, g.initial_dist)


def _unit_key(game: str, behaviour: str, seed: int) -> str:
    return f"{game}_{behaviour}_seed{seed}"


def run_unit(
    game,
    optimal,
    behaviour: str,
    seed: int,
    config: dict[str, Any],
    stream: int,
    reward_range: tuple[float, float] | None = None,
) -> dict[str, np.ndarray]:
    """One ``(game, behaviour, seed)``: simulate the largest dataset, fit every learner on
    each nested prefix, evaluate exactly.  Returns arrays ``[n_sizes, n_learners]``.

    ``reward_range``: the range of her rewards the leader is told (:func:`stated_reward_range`
    of the game); the config's ``reward_range`` (default ``[0, 1]``) when None."""
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


def run(config: dict[str, Any], out_dir: Path, *, progress: bool = True) -> Path:
    """Run (resumably) and write ``results.npz`` / ``results.json``; returns the ``.npz``.

    Arrays in the results (``G`` games, ``K`` behaviours, ``R`` seeds, ``N`` sizes, ``L``
    learners): ``suboptimality``, ``value``, ``lower_bound`` (nan where a learner gives none),
    ``lower_bound_holds`` (1/0, nan where none), ``seconds`` -- all ``[G,K,R,N,L]`` --, and
    ``optimal_value[G]``, ``sizes[N]``.  The JSON summary holds the names of each axis and the
    lower-bound coverage per game, behaviour and learner.
    """
    validate_config(config)
    store = RunStore(out_dir, "offline_suboptimality", config)
    games, behaviours = config["games"], config["behaviours"]
    seeds = [config["base_seed"] + i for i in range(config["seeds"])]
    built = {g: experiment_game(g, config) for g in games}
    optimal = {g: solve_qse(built[g]) for g in games}
    todo = [
        (gi, g, bi, b, s)
        for gi, g in enumerate(games)
        for bi, b in enumerate(behaviours)
        for s in seeds
        if not store.has(_unit_key(g, b, s))
    ]
    for gi, g, bi, b, s in _progress(todo, progress):
        arrays = run_unit(
            built[g], optimal[g], b, s, config, 100 * gi + bi, stated_reward_range(g, config)
        )
        store.save_unit(_unit_key(g, b, s), arrays, {"seed": s, "game": g, "behaviour": b})

    G, K, R = len(games), len(behaviours), len(seeds)
    N, L = len(config["sizes"]), len(config["learners"])
    out = {k: np.full((G, K, R, N, L), np.nan) for k in ("suboptimality", "value", "lower_bound")}
    out["seconds"] = np.zeros((G, K, R, N, L))
    for gi, g in enumerate(games):
        for bi, b in enumerate(behaviours):
            for ri, s in enumerate(seeds):
                arrays, _ = store.load_unit(_unit_key(g, b, s))
                for k in out:
                    out[k][gi, bi, ri] = arrays[k]
    lb = out["lower_bound"]
    holds = np.where(np.isnan(lb), np.nan, (lb <= out["value"] + 1e-9).astype(float))
    out["lower_bound_holds"] = holds
    out["optimal_value"] = np.array([optimal[g].value for g in games])
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
        "nominal_coverage": 1.0 - config["delta"],
        "lower_bound_coverage": coverage,
        "total_seconds": float(out["seconds"].sum()),
    }
    return store.write_results("results", {**out, **summary})


def _progress(items: list, enabled: bool):
    return progress(items, total=len(items), desc="offline_suboptimality", enabled=enabled)


def _finite_mean(x: np.ndarray) -> float | None:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None


def plot(out_dir: Path) -> list[Path]:
    """Figures and a markdown table from a results directory.

    - ``suboptimality_<game>.png``: mean suboptimality vs dataset size (log x, symlog y) per
      behaviour policy, one curve per learner, band = mean +/- 2 standard errors over seeds;
    - ``lower_bound_coverage_<game>.png``: how often each learner's lower bound holds, against
      the nominal ``1 - delta`` (top), and its mean slack ``J(pi_hat) - lower_bound`` (bottom);
    - ``table.md``: mean suboptimality (and standard error) per size, the coverage, and the
      paired difference of each learner from the plug-in (same datasets).
    """
    from ..plots import new_figure, regret_curves, save_figure  # lazy: matplotlib

    out_dir = Path(out_dir)
    arrays, doc = read_results(out_dir)
    s = doc["summary"]
    games, behaviours, learners = s["games"], s["behaviours"], s["learners"]
    sizes = arrays["sizes"]
    sub, holds = arrays["suboptimality"], arrays["lower_bound_holds"]
    value, lower = arrays["value"], arrays["lower_bound"]
    nominal = s["nominal_coverage"]
    paths = []
    bounded = [li for li, name in enumerate(learners) if np.isfinite(holds[..., li]).any()]
    for gi, g in enumerate(games):
        fig, axes = new_figure(ncols=len(behaviours), size=(4.6, 3.6))
        for bi, b in enumerate(behaviours):
            ax = axes[bi]
            curves = {name: sub[gi, bi, :, :, li] for li, name in enumerate(learners)}
            regret_curves(ax, curves, band="se", episodes=sizes, ylabel="J(pi*) - J(pi_hat)")
            ax.set_xscale("log")
            ax.set_yscale("symlog", linthresh=1e-3)
            ax.set_ylim(bottom=0.0)
            ax.set_xlabel("dataset size N (episodes)")
            ax.set_title(f"{g} follower, {b} behaviour", fontsize="medium")
        paths.append(save_figure(fig, out_dir / f"suboptimality_{g}.png"))
        if bounded:
            K = len(behaviours)
            fig, axes = new_figure(ncols=K, nrows=2, size=(4.6, 3.2))
            for bi, b in enumerate(behaviours):
                top, bottom = axes[bi], axes[K + bi]
                for li in bounded:
                    rate = np.nanmean(holds[gi, bi, :, :, li], axis=0)
                    top.plot(sizes, rate, marker="o", label=learners[li])
                    slack = np.nanmean(value[gi, bi, :, :, li] - lower[gi, bi, :, :, li], axis=0)
                    bottom.plot(sizes, slack, marker="o", label=learners[li])
                top.axhline(nominal, color="k", ls="--", lw=1, label=f"nominal {nominal:.2f}")
                top.set_ylim(-0.02, 1.02)
                top.set_ylabel("P(lower bound <= J(pi_hat))")
                top.set_title(f"{g} follower, {b} behaviour", fontsize="medium")
                bottom.set_yscale("log")
                bottom.set_ylabel("mean J(pi_hat) - lower bound")
                for ax in (top, bottom):
                    ax.set_xscale("log")
                    ax.set_xlabel("dataset size N (episodes)")
                    ax.grid(alpha=0.3, which="both")
                    ax.legend(fontsize="small")
            paths.append(save_figure(fig, out_dir / f"lower_bound_coverage_{g}.png"))
    paths.append(_write_table(out_dir, arrays, s))
    return paths


def _write_table(out_dir: Path, arrays: dict[str, np.ndarray], s: dict[str, Any]) -> Path:
    from ..plots import markdown_table  # lazy: plots imports matplotlib

    sizes = [int(n) for n in arrays["sizes"]]
    sub, holds, lb = arrays["suboptimality"], arrays["lower_bound_holds"], arrays["lower_bound"]
    R = sub.shape[2]
    parts = [
        "# offline_suboptimality: results\n",
        f"Mean suboptimality `J(pi*) - J(pi_hat)` over {R} seeds (± one standard error); "
        f"`LB holds`: fraction of (seed, size) pairs where the learner's lower bound was "
        f"<= the true value of its policy (nominal {s['nominal_coverage']:.2f}); `J - LB`: "
        "mean slack of the bound at the largest size.\n",
    ]
    for gi, g in enumerate(s["games"]):
        parts.append(f"\n## {g} follower (J* = {arrays['optimal_value'][gi]:.4f})\n")
        for bi, b in enumerate(s["behaviours"]):
            parts.append(f"\n### behaviour: {b}\n\n")
            rows = []
            for li, name in enumerate(s["learners"]):
                x = sub[gi, bi, :, :, li]
                mean = x.mean(axis=0)
                se = x.std(axis=0, ddof=1) / math.sqrt(R) if R > 1 else np.zeros_like(mean)
                cells = [f"{m:.3f} ± {e:.3f}" for m, e in zip(mean, se, strict=True)]
                h = holds[gi, bi, :, :, li]
                cov = f"{np.nanmean(h):.2f}" if np.isfinite(h).any() else "-"
                last = lb[gi, bi, :, -1, li]
                slack = (
                    f"{np.nanmean(arrays['value'][gi, bi, :, -1, li] - last):.3f}"
                    if np.isfinite(last).any()
                    else "-"
                )
                rows.append([name, *cells, cov, slack])
            headers = ["learner", *[f"N={n}" for n in sizes], "LB holds", "J - LB"]
            parts.append(markdown_table(headers, rows))
            if "plugin" in s["learners"]:
                parts.append(_paired_table(sub[gi, bi], s["learners"], sizes))
            parts.append(_slack_table(arrays["value"][gi, bi], lb[gi, bi], s["learners"], sizes))
    return atomic_write_text(out_dir / "table.md", "".join(parts))


def _slack_table(
    value: np.ndarray, lower: np.ndarray, learners: list[str], sizes: list[int]
) -> str:
    """Slack ``J(pi_hat) - lower_bound`` by size (``value, lower [R, N, L]``): mean ± s.e.
    over the seeds, and the fraction of seeds where the bound holds, for every learner that
    returns a bound ("" when none does)."""
    from ..plots import markdown_table  # lazy: plots imports matplotlib

    R = value.shape[0]
    rows = []
    for li, name in enumerate(learners):
        if not np.isfinite(lower[:, :, li]).any():
            continue
        slack = value[:, :, li] - lower[:, :, li]
        mean = np.nanmean(slack, axis=0)
        se = np.nanstd(slack, axis=0, ddof=1) / math.sqrt(R) if R > 1 else np.zeros_like(mean)
        holds = np.nanmean(np.where(np.isnan(slack), np.nan, slack >= -1e-9), axis=0)
        rows.append(
            [
                name,
                *[f"{m:.3f} ± {e:.3f} ({h:.2f})" for m, e, h in zip(mean, se, holds, strict=True)],
            ]
        )
    if not rows:
        return ""
    headers = ["J - LB", *[f"N={n}" for n in sizes]]
    return (
        "\nSlack of the lower bound, `J(pi_hat) - LB`, mean ± s.e. over the seeds (fraction of "
        "seeds where the bound holds).\n\n" + markdown_table(headers, rows)
    )


def _paired_table(sub: np.ndarray, learners: list[str], sizes: list[int]) -> str:
    """Paired comparison with the plug-in on the same datasets (``sub[R, N, L]``): mean of
    ``sub_learner - sub_plugin`` ± one standard error, and wins/losses over the seeds."""
    from ..plots import markdown_table  # lazy: plots imports matplotlib

    p = learners.index("plugin")
    R = sub.shape[0]
    rows = []
    for li, name in enumerate(learners):
        if name in ("plugin", "oracle"):
            continue
        diff = sub[:, :, li] - sub[:, :, p]
        mean = diff.mean(axis=0)
        se = diff.std(axis=0, ddof=1) / math.sqrt(R) if R > 1 else np.zeros_like(mean)
        wins = (diff < -1e-9).sum(axis=0)
        losses = (diff > 1e-9).sum(axis=0)
        rows.append(
            [
                name,
                *[
                    f"{m:+.3f} ± {e:.3f} ({w}/{lo})"
                    for m, e, w, lo in zip(mean, se, wins, losses, strict=True)
                ],
            ]
        )
    headers = ["minus plug-in", *[f"N={n}" for n in sizes]]
    return (
        "\nPaired with the plug-in on the same datasets: mean of `subopt(learner) - "
        "subopt(plugin)` ± s.e. (seeds where the learner is better / worse); negative = "
        "better than the plug-in.\n\n" + markdown_table(headers, rows)
    )


__all__ = [
    "DEFAULT_CONFIG",
    "FULL_CONFIG",
    "GAMES",
    "LARGE_GAMES",
    "experiment_game",
    "make_game",
    "plot",
    "run",
    "run_unit",
    "stated_reward_range",
]
