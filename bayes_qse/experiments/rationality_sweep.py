"""Experiment 5 of docs/math.md §7: regret and set width as the follower's rationality
``eta`` varies over several orders of magnitude, with the same seeds at every ``eta``.

The game is one random linear myopic game (:func:`bayes_qse.games.random_game`); only its
``eta`` changes.  For every ``eta``:

- **regret** (online, docs/math.md §5): each learner of ``learners`` plays ``episodes`` episodes for
  ``seeds`` seeds through :func:`bayes_qse.learners.online.run_online` (the runner of the
  ``online_regret`` experiment); we keep the exact per-episode regret and the size of the
  learner's Laplace / Wald ellipsoid (root total variance) behind each policy;
- **set width** (offline): ``width_replications`` datasets of ``width_sample_size`` episodes
  under a uniform leader policy, and the confidence / credible sets of
  :mod:`bayes_qse.experiments.confidence_sets` (Wald, LR with the chi-square and the paper's
  radius, Laplace, NUTS): the mean width of the 95% intervals of the response probabilities
  and of the leader value, the log volume of the 95% ``theta`` set, and the coverage.

Each part is a unit of :mod:`bayes_qse.experiments.units` (an online unit per ``(eta,
learner)``: the ``online_regret`` ``linear`` game at that ``eta``; a :class:`WidthUnit` per
``eta``), run by :func:`bayes_qse.experiments.executors.run_units`.  The results are one
labelled dataset (:func:`sweep_results`, ``results.nc``) reduced by xarray operations
(:mod:`~bayes_qse.experiments.coverage_results` for the set widths).
Replication ``i`` uses the same key at every ``eta`` (``base_seed + i``), so differences
across ``eta`` are not seed noise.  Large ``eta`` makes the response nearly deterministic:
the softmax saturates, the Fisher information of ``theta`` grows like ``eta^2`` where the
response is not saturated and collapses where it is (the ``kappa`` of logistic bandits).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import ConfigError
from ..io import atomic_write_netcdf, atomic_write_text
from ..learners.online import LEARNERS
from . import set_coverage as cs
from .config import ExperimentConfig, Table
from .coverage_results import replication_dataset, summarise_coverage
from .executors import experiment_run
from .online_regret import OnlineRegretConfig
from .online_units import OnlineUnit, make_unit, unit_learner_config
from .report import METHOD_COLORS, read_labelled
from .store import RunStore
from .units import RESULT, OnePartUnit, UnitParts

NAME = "rationality_sweep"


@dataclasses.dataclass(frozen=True)
class RationalitySweepConfig(ExperimentConfig):
    """The ``rationality_sweep`` config (one field per TOML key; the CI-sized defaults),
    checked when made: a one-line :class:`ConfigError` naming the key, the game and the
    datasets sized against memory before anything is built."""

    seeds: int = 3
    base_seed: int = 0
    etas: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)
    game: Table = cs.ConfidenceSetsConfig.game
    learners: tuple[str, ...] = ("mle-optimistic", "thompson")
    episodes: int = 50
    chunk: int = 25
    known_model: bool = True
    # the online learners' settings ([learner], the same table as online_regret's): that
    # experiment's defaults; prior_scale is also the set-width part's prior
    learner: Table = OnlineRegretConfig.learner
    width_replications: int = 100
    width_sample_size: int = 100
    levels: tuple[float, ...] = (0.8, 0.9, 0.95)
    n_directions: int = 32
    laplace_draws: int = 500
    nuts_warmup: int = 150
    nuts_samples: int = 300
    theory_delta: float = 0.05

    def check(self, config: dict[str, Any]) -> None:
        """Reject configurations the experiment cannot run (naming the key)."""
        if not config["etas"] or min(config["etas"]) <= 0:
            raise ConfigError("config: etas must be a non-empty list of numbers > 0")
        for learner in config["learners"]:
            if learner not in LEARNERS:
                raise ConfigError(f"config: learners has unknown learner {learner!r}")
        if config["episodes"] < 1 or config["episodes"] % min(config["chunk"], config["episodes"]):
            raise ConfigError("config: chunk must divide episodes (both >= 1)")
        for farsighted in (False, True):  # every learner setting, through LearnerConfig
            unit_learner_config(config, farsighted, 1)
        if config["width_replications"] < 2 or config["width_sample_size"] < 1:
            raise ConfigError("config: width_replications must be >= 2, width_sample_size >= 1")
        if 0.95 not in config["levels"]:
            raise ConfigError("config: levels must contain 0.95")
        n, key = max(
            (config["episodes"], "episodes"), (config["width_sample_size"], "width_sample_size")
        )
        copies = max(config["seeds"], config["width_replications"])
        cs.check_game_settings(config, n, copies, key)


#: The experiment's config type (the experiment interface, :mod:`bayes_qse.experiments`).
Config = RationalitySweepConfig

#: The published form of the CI-sized defaults.
DEFAULT_CONFIG = RationalitySweepConfig.defaults()

#: ``--full``: seven etas, 8 seeds, 200 episodes, 300 width replications.
FULL_CONFIG = RationalitySweepConfig.preset(
    seeds=8,
    etas=[0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0],
    episodes=200,
    chunk=50,
    width_replications=300,
)


def width_config(config: dict, eta: float) -> dict:
    """The :mod:`confidence_sets` configuration of the set-width part at ``eta``."""
    return {
        **cs.DEFAULT_CONFIG,
        "seeds": config["width_replications"],
        "base_seed": config["base_seed"],
        "batch_size": config["width_replications"],
        "cases": ["well_specified"],
        "sample_sizes": [config["width_sample_size"]],
        "levels": list(config["levels"]),
        "game": dict(config["game"]),
        "eta": float(eta),
        "prior_scale": config["learner"]["prior_scale"],
        "theory_delta": config["theory_delta"],
        "n_directions": config["n_directions"],
        "laplace_draws": config["laplace_draws"],
        "nuts_warmup": config["nuts_warmup"],
        "nuts_samples": config["nuts_samples"],
    }


@dataclasses.dataclass(frozen=True)
class WidthUnit(OnePartUnit):
    """The set-width part at one ``eta`` (:mod:`bayes_qse.experiments.units`): the
    :mod:`set_coverage` batch of :func:`width_config`, saved as the part ``result``."""

    key: str
    eta: float
    config: dict[str, Any] = dataclasses.field(hash=False, compare=False)
    kind = "width"

    def run(self, store: RunStore, todo: list[str], progress: bool) -> None:
        start = time.perf_counter()
        case = cs.make_case(self.config, "well_specified")
        n = self.config["seeds"]
        arrays = cs.run_batch(self.config, case, 0, self.config["sample_sizes"][0], np.arange(n))
        arrays = {k: v for k, v in arrays.items() if k not in ("mle", "map")}
        arrays["theta_true"] = case["theta_target"]
        arrays["g_true"] = case["g_true"]
        meta = {"kind": self.kind, "eta": self.eta, "seconds": time.perf_counter() - start}
        store.save_unit(RESULT, arrays, meta)


def online_config(config: dict) -> dict:
    """The ``online_regret`` config of the regret part: the sweep's game as that experiment's
    ``linear`` game (the same :func:`~bayes_qse.games.random_game`), its learner settings,
    ``chunk`` and ``known_model``; the leader told rewards in ``[0, 1]``."""
    return {
        "learner": dict(config["learner"]),
        "chunk": config["chunk"],
        "known_model": config["known_model"],
        "reward_range": [0.0, 1.0],
        "initial_dist": "learned",
        "linear": dict(config["game"]),
    }


def unit_groups(config: dict) -> tuple[list[WidthUnit], dict[tuple[float, str], OnlineUnit]]:
    """The sweep's units by kind: a :class:`WidthUnit` per ``eta``, and an online unit
    (:func:`bayes_qse.experiments.online_units.make_unit`, the ``linear`` game at that
    ``eta``) per ``(eta, learner)`` with all the seeds (the same seeds at every ``eta``)."""
    seeds = [config["base_seed"] + i for i in range(config["seeds"])]
    widths = [
        WidthUnit(f"width.eta={float(eta)!r}", float(eta), width_config(config, eta))
        for eta in config["etas"]
    ]
    base = online_config(config)
    online = {
        (eta, learner): make_unit(
            base, "linear", learner, config["episodes"], seeds, _FIELDS, eta=eta
        )
        for eta in config["etas"]
        for learner in config["learners"]
    }
    return widths, online


def make_units(config: dict) -> list[WidthUnit | OnlineUnit]:
    """The sweep's units in one list, the width units first (:func:`unit_groups`)."""
    widths, online = unit_groups(config)
    return [*widths, *online.values()]


#: Run (or resume) the experiment (:func:`~.executors.run_experiment_module`).
run = experiment_run(__name__)


def write_results(
    store: RunStore,
    config: dict,
    units: list[WidthUnit | OnlineUnit],
    loaded: Mapping[str, UnitParts],
) -> Path:
    """Write ``results.nc`` (:func:`sweep_results`) and ``results.npz``/``results.json`` (the
    same arrays, :func:`sweep_arrays`) from the units' parts (``loaded``, by key); returns the
    ``results.npz`` path."""
    ds = sweep_results(loaded, config)
    atomic_write_netcdf(store.out_dir / "results.nc", ds)
    return store.write_results("results", sweep_arrays(ds))


_FIELDS = ("regret", "theta_error", "set_size")


def regret_dataset(loaded: Mapping[str, UnitParts], config: dict) -> xr.Dataset:
    """The online parts as one labelled dataset: ``regret`` and ``set_size`` ``[eta,
    learner, seed, episode]`` (the exact per-episode regret and the root total variance of
    the learner's ellipsoid behind each policy).  ``loaded``: the units' parts by key
    (:func:`~.units.load_units`)."""
    _, online = unit_groups(config)
    fields = ("regret", "set_size")
    stacked = {
        f: np.stack(
            [
                np.stack(
                    [
                        np.stack([p[f] for p, _ in loaded[online[e, lrn].key]])
                        for lrn in config["learners"]
                    ]
                )
                for e in config["etas"]
            ]
        )
        for f in fields
    }
    dims = ("eta", "learner", "seed", "episode")
    coords = {
        "eta": np.asarray(config["etas"], float),
        "learner": list(config["learners"]),
        "seed": config["base_seed"] + np.arange(config["seeds"]),
        "episode": np.arange(1, config["episodes"] + 1),
    }
    return xr.Dataset({f: (dims, v) for f, v in stacked.items()}, coords=coords)


def width_dataset(loaded: Mapping[str, UnitParts], config: dict) -> xr.Dataset:
    """The set-width parts as one labelled dataset: :func:`~.coverage_results.summarise_coverage` of
    each ``eta``'s batch, concatenated along ``eta`` (coverage, bands, widths,
    diagnostics).  ``loaded``: the units' parts by key (:func:`~.units.load_units`)."""
    widths, _ = unit_groups(config)
    out = []
    for unit in widths:
        a, _ = loaded[unit.key][0]
        reps = replication_dataset(a, config["levels"], a["theta_true"].shape[0])
        cell = int(np.ravel_multi_index(cs.CHOSEN_CELL, _cell_shape(unit.config)))
        out.append(summarise_coverage(reps, cell))
    return xr.concat(out, xr.Variable("eta", np.asarray(config["etas"], float)))


def _cell_shape(config: dict) -> tuple[int, int, int, int]:
    g = config["game"]
    return (g["horizon"], g["n_states"], g["n_leader_actions"], g["n_follower_actions"])


def sweep_results(loaded: Mapping[str, UnitParts], config: dict) -> xr.Dataset:
    """The sweep's results, labelled (saved as ``results.nc``): per ``(eta, learner)`` the
    final cumulative regret per seed, its mean and standard error over seeds, the mean
    cumulative regret curve and the online set size at the last episode; per ``(eta,
    construction)`` the mean widths of the 95% intervals of the response probabilities and
    of the value, the median log volume of the 95% ``theta`` set, and the coverage of
    ``theta`` (NaN for ``lr_theory``, whose ``theta`` set is not at 95%) and of the value;
    per ``eta`` the fraction of converged MLE fits.  ``loaded``: the units' parts by key
    (:func:`~.units.load_units`)."""
    online = regret_dataset(loaded, config)
    cum = online["regret"].cumsum("episode")
    final = cum.isel(episode=-1, drop=True)
    n_seeds = config["seeds"]
    se = (
        final.std("seed", ddof=1, skipna=False) / np.sqrt(n_seeds)
        if n_seeds > 1
        else xr.zeros_like(final.isel(seed=0, drop=True))
    )
    w = width_dataset(loaded, config)
    at95 = {"level": 0.95}
    theta = w["coverage"].sel(target="theta", **at95, drop=True)
    value = xr.concat(
        [
            w["coverage"].sel(target="value", **at95, drop=True),
            w["coverage_theory"]
            .sel(target="value", drop=True)
            .expand_dims(construction=["lr_theory"]),
        ],
        "construction",
    )
    all5 = {"all_constructions": "construction"}
    data = {
        "final_regret": final.transpose("eta", "learner", "seed"),
        "final_regret_mean": final.mean("seed", skipna=False),
        "final_regret_se": se,
        "mean_cumulative_regret": cum.mean("seed", skipna=False),
        "online_set_size_final": online["set_size"].isel(episode=-1).mean("seed", skipna=False),
        "width_nu": w["width"].sel(target="nu_avg", drop=True).rename(all5),
        "width_value": w["width"].sel(target="value", drop=True).rename(all5),
        "logvol_theta": w["width"].sel(target="theta", drop=True).rename(all5),
        "coverage_theta": theta.reindex(construction=list(cs.METHODS)),
        "coverage_value": value.reindex(construction=list(cs.METHODS)),
        "mle_converged": w["diag_mle_converged"],
    }
    attrs = {"experiment": NAME, "width_replications": int(config["width_replications"])}
    return xr.Dataset(data, attrs=attrs).transpose("eta", "learner", "construction", ...)


#: ``results.npz`` arrays (as published) in their axis order.
_NPZ_AXES = {
    "final_regret": ("eta", "learner", "seed"),
    "final_regret_mean": ("eta", "learner"),
    "final_regret_se": ("eta", "learner"),
    "mean_cumulative_regret": ("eta", "learner", "episode"),
    "online_set_size_final": ("eta", "learner"),
    **{
        k: ("eta", "construction")
        for k in ("width_nu", "width_value", "logvol_theta", "coverage_theta", "coverage_value")
    },
    "mle_converged": ("eta",),
}


def sweep_arrays(ds: xr.Dataset) -> dict[str, Any]:
    """The arrays and summary of ``results.npz`` / ``results.json`` (the published format)
    read off the labelled results of :func:`sweep_results`."""
    out: dict[str, Any] = {
        "etas": ds["eta"].values,
        "learners": [str(x) for x in ds["learner"].values],
        "methods": [str(x) for x in ds["construction"].values],
    }
    out |= {k: ds[k].transpose(*dims).values for k, dims in _NPZ_AXES.items()}
    out["width_replications"] = int(ds.attrs["width_replications"])
    return out


def load_results(out_dir: Path) -> xr.Dataset:
    """The sweep's labelled results: ``out_dir/results.nc``, or for a folder written before
    it existed (e.g. a published one), the same dataset rebuilt from ``results.npz`` and
    ``results.json`` (the inverse of :func:`sweep_arrays`)."""
    return read_labelled(out_dir, _from_npz)


def _from_npz(a: dict[str, np.ndarray], doc: dict[str, Any]) -> xr.Dataset:
    """The labelled results rebuilt from ``results.npz`` (``a``) and ``results.json`` (``doc``)."""
    s = doc["summary"]
    coords = {
        "eta": a["etas"],
        "learner": list(s["learners"]),
        "construction": list(s["methods"]),
        "episode": np.arange(1, a["mean_cumulative_regret"].shape[-1] + 1),
    }
    data = {k: (dims, a[k]) for k, dims in _NPZ_AXES.items()}
    attrs = {"experiment": NAME, "width_replications": int(s["width_replications"])}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def plot(out_dir: Path) -> list[Path]:
    """Final regret vs ``eta`` per learner, set widths vs ``eta`` per method, regret curves,
    and ``table.md``, from the labelled results (:func:`load_results`)."""
    from ..plots import markdown_table, new_figure, save_figure  # lazy: matplotlib

    out_dir = Path(out_dir)
    ds = load_results(out_dir)
    etas = ds["eta"].values
    learners = [str(x) for x in ds["learner"].values]
    methods = [str(x) for x in ds["construction"].values]
    labels = {
        "wald": "Wald",
        "lr": "LR (chi2)",
        "lr_theory": "LR (paper radius)",
        "laplace": "Laplace",
        "nuts": "NUTS",
    }
    T = ds.sizes["episode"]
    paths = []

    fig, axes = new_figure(3, 1, size=(4.3, 3.4))
    for learner in learners:
        at = ds.sel(learner=learner)
        m, se = at["final_regret_mean"].values, at["final_regret_se"].values
        axes[0].errorbar(etas, m, yerr=se, fmt="o-", capsize=3, label=learner)
        axes[1].plot(etas, at["online_set_size_final"].values, "o-", label=learner)
    axes[0].set_title(f"cumulative regret after {T} episodes")
    axes[1].set_title("learner's ellipsoid size at the end (root total var.)")
    for m in methods:
        width = ds["width_nu"].sel(construction=m).values
        axes[2].plot(etas, width, "o-", color=METHOD_COLORS[m], label=labels[m])
    axes[2].set_title("mean width of 95% nu intervals (offline)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("eta (rationality)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    axes[1].set_yscale("log")
    axes[2].set_yscale("log")
    paths.append(save_figure(fig, out_dir / "sweep.png"))

    fig, axes = new_figure(len(learners), 1, size=(4.0, 3.2))
    for li, learner in enumerate(learners):
        for eta in etas:
            curve = ds["mean_cumulative_regret"].sel(eta=eta, learner=learner).values
            axes[li].plot(np.arange(1, T + 1), curve, label=f"eta={eta:g}")
        axes[li].set_title(learner)
        axes[li].set_xlabel("episode")
        axes[li].set_ylabel("mean cumulative regret")
        axes[li].grid(alpha=0.3)
        axes[li].legend(fontsize="x-small")
    paths.append(save_figure(fig, out_dir / "regret_curves.png"))

    n_seeds = ds["final_regret"].sizes["seed"]
    R = ds.attrs["width_replications"]
    regret_rows = []
    for eta in etas:
        at = ds.sel(eta=eta)
        cells = [
            f"{float(at['final_regret_mean'].sel(learner=lrn)):.3g} +/- "
            f"{float(at['final_regret_se'].sel(learner=lrn)):.2g}"
            for lrn in learners
        ]
        regret_rows.append([f"{eta:g}", *cells])
    lines = [
        "# rationality_sweep\n",
        f"Cumulative regret after {T} episodes (mean +/- standard error over {n_seeds} seeds; "
        "the same seeds at every eta).\n",
        markdown_table(["eta", *learners], regret_rows),
        f"\nSet sizes at 95% ({R} datasets per eta): mean width of the response-probability "
        "intervals / of the value interval, median log volume of the theta set, and coverage "
        "of theta / of the value.\n",
    ]
    columns = ("width_nu", "width_value", "logvol_theta", "coverage_theta", "coverage_value")
    rows = [
        [f"{eta:g}", labels[m], *[float(ds[k].sel(eta=eta, construction=m)) for k in columns]]
        for eta in etas
        for m in methods
    ]
    lines.append(
        markdown_table(
            [
                "eta",
                "method",
                "nu width",
                "value width",
                "log vol theta",
                "cover theta",
                "cover value",
            ],
            rows,
        )
    )
    lines.append(
        "\nMLE converged (fraction of datasets): "
        + ", ".join(f"eta={eta:g}: {float(ds['mle_converged'].sel(eta=eta)):.3f}" for eta in etas)
        + "\n"
    )
    paths.append(atomic_write_text(out_dir / "table.md", "\n".join(lines)))
    return paths


__all__ = [
    "DEFAULT_CONFIG",
    "FULL_CONFIG",
    "RationalitySweepConfig",
    "Config",
    "NAME",
    "WidthUnit",
    "load_results",
    "make_units",
    "unit_groups",
    "online_config",
    "plot",
    "regret_dataset",
    "run",
    "write_results",
    "sweep_arrays",
    "sweep_results",
    "width_config",
    "width_dataset",
]
