"""Experiment 4 of docs/math.md §7: inspect one posterior of the follower's ``theta`` with ArviZ.

On a named game (``patrol`` by default) we simulate episodes under a uniform leader policy,
fit the NUTS posterior (several chains) and the Laplace approximation and the MLE
(:mod:`bayes_qse.inference`), and produce

- the ArviZ 1.x summary (``arviz_stats.summary``: mean, sd, HDI, MCSE, ``ess_bulk``,
  ``ess_tail``, ``r_hat``) of ``theta`` and of the follower's response probabilities at the
  chosen ``(h, s)`` as ``summary.md`` / ``summary.csv``;
- trace and rank plots (``arviz_plots.plot_trace_dist``, ``arviz_plots.plot_rank``);
- the posterior of ``theta`` against the truth, and the posterior of
  ``nu_h(b | s, a)`` (eq. 1d) at the chosen states against the true response;
- the ArviZ ``DataTree`` (groups ``posterior`` with ``theta`` and ``nu``, ``sample_stats``,
  ``constant_data`` with the true ``theta``, the MLE and the true ``nu``) saved as netCDF
  (``posterior_seed<k>.nc``), which ``xarray.open_datatree`` and ArviZ read back directly;
- every seed's draws, fits and diagnostics as one labelled dataset (``results.nc``,
  :func:`inspection_results`), which the report reads (:func:`load_inspection`).

One unit of :mod:`bayes_qse.experiments.units` per seed (:class:`InspectionUnit`; ``seeds``
datasets from ``base_seed`` on), run by :func:`bayes_qse.experiments.executors.run_units`
(one process, a process pool or Ray; resumable, a seed's numbers the same whichever executor
ran it).  The units return arrays; the driver writes every ``DataTree``.  Figures use the
first seed.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .._validate import check_memory
from ..data import dataset_bytes, simulate
from ..errors import ConfigError
from ..follower import myopic_log_response
from ..games import NAMED_GAMES, named_game
from ..inference import fit_mle, sample_posterior
from ..io import atomic_write, atomic_write_netcdf, atomic_write_text
from ..model import Model
from ..posterior import Diagnostics, Posterior, PosteriorDiagnosticsWarning
from ..progress import stage_printer
from .config import ExperimentConfig
from .executors import experiment_run
from .report import read_labelled
from .store import RunStore
from .units import RESULT, OnePartUnit, UnitParts, distinct_versions

NAME = "posterior_inspection"


@dataclasses.dataclass(frozen=True)
class PosteriorInspectionConfig(ExperimentConfig):
    """The ``posterior_inspection`` config (one field per TOML key; the CI-sized defaults),
    checked when made: a one-line :class:`ConfigError` naming the key, the dataset sized
    against memory before anything is simulated."""

    seeds: int = 1
    base_seed: int = 0
    game: str = "patrol"
    n_episodes: int = 200
    num_warmup: int = 300
    num_samples: int = 400
    num_chains: int = 4
    laplace_samples: int = 1600
    prior_scale: float = 1.0
    # (h, s) pairs at which the response probabilities are shown and summarised
    states: tuple[tuple[int, int], ...] = ((0, 0), (1, 1))

    def check(self, config: dict[str, Any]) -> None:
        """Reject configurations the experiment cannot run (naming the key)."""
        if config["game"] not in NAMED_GAMES:
            raise ConfigError(f"config: game must be one of {sorted(NAMED_GAMES)}")
        for key in ("n_episodes", "num_samples", "num_chains", "laplace_samples"):
            if config[key] < 1:
                raise ConfigError(f"config: {key} must be >= 1, got {config[key]}")
        if config["prior_scale"] <= 0:
            raise ConfigError("config: prior_scale must be > 0")
        game = named_game(config["game"])
        H, S = game.horizon, game.n_states
        A = game.n_leader_actions
        check_memory(
            dataset_bytes(config["n_episodes"], H, S, A),
            "config: n_episodes",
            f"simulating {config['n_episodes']} episodes of horizon {H} (S={S}, A={A})",
            ConfigError,
        )
        for hs in config["states"]:
            if len(hs) != 2 or not (0 <= hs[0] < H and 0 <= hs[1] < S):
                raise ConfigError(f"config: states entry {hs} is not an (h, s) pair of the game")


#: The experiment's config type (the experiment interface, :mod:`bayes_qse.experiments`).
Config = PosteriorInspectionConfig

#: The published form of the CI-sized defaults.
DEFAULT_CONFIG = PosteriorInspectionConfig.defaults()

#: ``--full``: 500 episodes, 1000 warm-up and 1000 kept draws per chain.
FULL_CONFIG = PosteriorInspectionConfig.preset(
    n_episodes=500,
    num_warmup=1000,
    num_samples=1000,
    laplace_samples=4000,
)


def _response_draws(features, eta, theta: np.ndarray) -> np.ndarray:
    """``nu[..., H,S,A,B]`` of a myopic follower (eq. 1d) for every draw ``theta[..., d]``."""
    model = Model(features, eta)
    fn = jax.jit(lambda th: jnp.exp(myopic_log_response(model, th)))
    return np.asarray(fn(jnp.asarray(theta)))


def build_datatree(post, game, mle: np.ndarray, states: list) -> xr.DataTree:
    """``post.to_arviz()`` plus ``posterior.nu`` at the chosen states and ``constant_data``.

    ``nu[chain, draw, hs, leader_action, follower_action]`` where ``hs`` indexes the chosen
    ``(h, s)`` pairs (their labels are the coordinate ``hs`` = ``"h=..,s=.."``).
    """
    dt = post.to_arviz()
    chains = post.chains()  # [C, D, d]
    nu = _response_draws(game.features, game.eta, chains)  # [C, D, H, S, A, B]
    hs_idx = np.array(states, dtype=int)
    nu_sel = nu[:, :, hs_idx[:, 0], hs_idx[:, 1]]  # [C, D, K, A, B]
    labels = [f"h={h},s={s}" for h, s in hs_idx]
    A, B = game.n_leader_actions, game.n_follower_actions
    coords = {
        "chain": dt.posterior.chain.values,
        "draw": dt.posterior.draw.values,
        "hs": labels,
        "leader_action": np.arange(A),
        "follower_action": np.arange(B),
    }
    dims = ["chain", "draw", "hs", "leader_action", "follower_action"]
    posterior = dt["posterior"].to_dataset()
    posterior["nu"] = xr.DataArray(nu_sel, coords=coords, dims=dims)
    dt["posterior"] = xr.DataTree(posterior)
    true_nu = _response_draws(game.features, game.eta, np.asarray(game.theta))
    feat = dt.posterior.feature.values
    const = xr.Dataset(
        {
            "theta_true": ("feature", np.asarray(game.theta)),
            "theta_mle": ("feature", np.asarray(mle)),
            "nu_true": (
                ["hs", "leader_action", "follower_action"],
                true_nu[hs_idx[:, 0], hs_idx[:, 1]],
            ),
        },
        coords={k: v for k, v in coords.items() if k not in ("chain", "draw")} | {"feature": feat},
    )
    dt["constant_data"] = xr.DataTree(const)
    return dt


def seed_posterior(config: dict, seed: int, say=None) -> tuple[dict, dict]:
    """One seed's posterior: simulate ``n_episodes`` under the uniform leader policy, fit the
    MLE, the NUTS posterior (``num_chains`` chains) and the Laplace approximation.

    Returns ``(arrays, meta)``: ``theta_nuts[C, D, d]``, ``diverging[C, D]`` (bool),
    ``theta_laplace[M, d]``, ``theta_mle[d]``, ``mle_std_err[d]``, NUTS ``r_hat[d]`` and
    ``ess[d]``; meta ``seed``, ``divergences``, ``nuts_warnings`` (the diagnostics warnings'
    messages) and ``prior`` (the prior's name).  ``say``: called with a stage line before
    each long step (:func:`bayes_qse.progress.stage_printer`).
    """
    shown = say is not None
    say = say or (lambda text: None)
    game = named_game(config["game"])
    H, S, A = game.horizon, game.n_states, game.n_leader_actions
    say(f"simulating {config['n_episodes']} episodes, MLE fit (compiling)")
    data = simulate(game, np.full((H, S, A), 1.0 / A), config["n_episodes"], seed)
    mle = fit_mle(data, game)
    say("NUTS (compiling, then warm-up and sampling)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PosteriorDiagnosticsWarning)
        nuts = sample_posterior(
            data,
            game,
            method="nuts",
            num_samples=config["num_samples"],
            num_warmup=config["num_warmup"],
            num_chains=config["num_chains"],
            prior_scale=config["prior_scale"],
            seed=seed,
            progress=say if shown else False,
        )
    say("Laplace posterior")
    laplace = sample_posterior(
        data,
        game,
        method="laplace",
        num_samples=config["laplace_samples"],
        prior_scale=config["prior_scale"],
        seed=seed,
    )
    chains = nuts.chains()
    arrays = {
        "theta_nuts": chains,
        "diverging": np.asarray(nuts.diverging, bool).reshape(chains.shape[:2]),
        "theta_laplace": laplace.theta,
        "theta_mle": mle.theta,
        "mle_std_err": mle.std_err,
        "r_hat": nuts.diagnostics["r_hat"],
        "ess": nuts.diagnostics["ess"],
    }
    meta = {
        "seed": seed,
        "divergences": nuts.diagnostics["divergences"],
        "nuts_warnings": [str(w.message) for w in caught],
        "prior": nuts.prior,
    }
    return arrays, meta


def saved_posterior(arrays: dict, meta: dict, config: dict) -> Posterior:
    """The NUTS :class:`~bayes_qse.posterior.Posterior` of a saved seed (the part
    :func:`seed_posterior` returned), for its ArviZ ``DataTree`` (:func:`build_datatree`)."""
    chains = arrays["theta_nuts"]
    C, D, d = chains.shape
    diagnostics = Diagnostics(
        arrays["r_hat"], arrays["ess"], meta["divergences"], list(meta["nuts_warnings"])
    )
    return Posterior(
        theta=chains.reshape(C * D, d),
        method="nuts",
        diagnostics=diagnostics,
        num_chains=C,
        prior=meta["prior"],
        prior_scale=config["prior_scale"],
        diverging=arrays["diverging"].reshape(C * D),
    )


@dataclasses.dataclass(frozen=True)
class InspectionUnit(OnePartUnit):
    """One seed of the experiment (:mod:`bayes_qse.experiments.units`): its posterior
    (:func:`seed_posterior`), saved as the part ``result``."""

    key: str
    seed: int
    config: dict[str, Any] = dataclasses.field(hash=False, compare=False)
    kind = "inspection"
    # what the seed's posterior depends on: the settings less the seed list and the
    # ``states`` (those shape only the ``DataTree`` the driver builds), and its seed
    unbound = ("seeds", "base_seed", "states")
    bound = ("seed",)

    def run(self, store: RunStore, todo: list[str], progress: bool) -> None:
        say = stage_printer(f"{NAME} seed {self.seed}", progress) if progress else None
        store.save_unit(RESULT, *seed_posterior(self.config, self.seed, say))


def make_units(config: dict) -> list[InspectionUnit]:
    """A unit per seed (``base_seed``, ``base_seed + 1``, ...)."""
    seeds = [config["base_seed"] + i for i in range(config["seeds"])]
    return [InspectionUnit(f"seed{s}", s, config) for s in seeds]


#: Run (or resume) the experiment (:func:`~.executors.run_experiment_module`).
run = experiment_run(__name__)


def write_results(
    store: RunStore,
    config: dict,
    units: list[InspectionUnit],
    loaded: Mapping[str, UnitParts],
) -> Path:
    """Write each seed's ``DataTree`` (``posterior_seed<k>.nc``), the labelled results of
    every seed (``results.nc``, :func:`inspection_results`) and the first seed's arrays and
    ArviZ summary (``results.npz`` / ``results.json``, the published format,
    :func:`inspection_arrays`) from the units' parts (``loaded``, by key); returns the
    ``.npz`` path."""
    out_dir = store.out_dir
    game = named_game(config["game"])
    parts = [loaded[unit.key][0] for unit in units]
    for unit, (arrays, meta) in zip(units, parts, strict=True):
        dt = build_datatree(
            saved_posterior(arrays, meta, config), game, arrays["theta_mle"], config["states"]
        )
        atomic_write_netcdf(out_dir / netcdf_name(unit.seed), dt)
    ds = inspection_results(parts, config)
    atomic_write_netcdf(out_dir / "results.nc", ds)
    results = inspection_arrays(ds)
    results["summary"] = _summary_table(out_dir / results["netcdf"]).to_dict(orient="index")
    return store.write_results("results", results)


def netcdf_name(seed: int) -> str:
    """The file name of a seed's ArviZ ``DataTree``: ``posterior_seed<seed>.nc``."""
    return f"posterior_seed{seed}.nc"


def inspection_results(parts: list[tuple[dict, dict]], config: dict) -> xr.Dataset:
    """Every seed's posterior as one labelled dataset (saved as ``results.nc``), from the
    units' parts (:func:`seed_posterior`, as :func:`~.units.load_parts` returns them) in seed
    order.

    Variables: ``theta_nuts[seed, chain, draw, feature]``, ``diverging[seed, chain, draw]``,
    ``theta_laplace[seed, laplace_draw, feature]``, ``theta_mle``, ``mle_std_err``,
    ``r_hat`` and ``ess`` ``[seed, feature]``, ``divergences[seed]``,
    ``nuts_warnings[seed]`` (the messages joined by newlines, ``""`` for none) and
    ``theta_true[feature]``; e.g. ``ds.theta_nuts.sel(seed=0).mean(("chain", "draw"))``.
    Attributes: ``experiment``, ``game``, ``config`` and ``versions`` (JSON; the parts'
    library versions, :func:`~.units.distinct_versions`).

    Raises:
        ConfigError: the parts were computed with different versions or platforms.
    """
    stacked = {k: np.stack([a[k] for a, _ in parts]) for k in _ARRAY_DIMS}
    data = {k: (("seed", *dims), stacked[k]) for k, dims in _ARRAY_DIMS.items()}
    data["divergences"] = ("seed", np.array([int(m["divergences"]) for _, m in parts]))
    data["nuts_warnings"] = ("seed", ["\n".join(m["nuts_warnings"]) for _, m in parts])
    data["theta_true"] = ("feature", np.asarray(named_game(config["game"]).theta))
    versions = distinct_versions([m for _, m in parts])
    attrs = {
        "experiment": NAME,
        "game": config["game"],
        "config": json.dumps(config, sort_keys=True),
        "versions": json.dumps(versions, sort_keys=True),
    }
    return _labelled(data, [int(m["seed"]) for _, m in parts], attrs)


def _labelled(data: dict, seeds: list[int], attrs: dict) -> xr.Dataset:
    """The dataset of ``data`` with an integer coordinate on every dimension."""
    ds = xr.Dataset(data, attrs=attrs)
    return ds.assign_coords(
        {d: seeds if d == "seed" else np.arange(n) for d, n in ds.sizes.items()}
    )


#: The per-seed arrays of :func:`inspection_results` and their dimensions (after ``seed``).
_ARRAY_DIMS = {
    "theta_nuts": ("chain", "draw", "feature"),
    "diverging": ("chain", "draw"),
    "theta_laplace": ("laplace_draw", "feature"),
    "theta_mle": ("feature",),
    "mle_std_err": ("feature",),
    "r_hat": ("feature",),
    "ess": ("feature",),
}
#: The arrays of ``results.npz`` (the published format: the first seed's).
_NPZ = ("theta_true", "theta_nuts", "theta_laplace", "theta_mle", "mle_std_err", "r_hat", "ess")


def inspection_arrays(ds: xr.Dataset) -> dict[str, Any]:
    """``results.npz`` / ``results.json`` contents (the published format) read off the
    labelled results: the first seed's arrays, its ``divergences``, ``nuts_warnings`` and
    ``netcdf`` (its ``DataTree``'s file name)."""
    first = ds.isel(seed=0)
    out: dict[str, Any] = {k: first[k].values for k in _NPZ}
    warned = str(first["nuts_warnings"].values)
    out["divergences"] = int(first["divergences"])
    out["nuts_warnings"] = warned.split("\n") if warned else []
    out["netcdf"] = netcdf_name(int(first["seed"]))
    return out


def load_inspection(out_dir: Path) -> xr.Dataset:
    """The labelled results of a run: ``out_dir/results.nc``, or for a folder written before
    it existed (e.g. a published one) the first seed's, rebuilt from ``results.npz`` and
    ``results.json`` (without ``diverging``, which only the ``DataTree`` held)."""
    return read_labelled(out_dir, _from_npz)


def _from_npz(a: dict[str, np.ndarray], doc: dict[str, Any]) -> xr.Dataset:
    """The labelled results rebuilt from ``results.npz`` (``a``) and ``results.json`` (``doc``)."""
    s = doc["summary"]
    seed = int(s["netcdf"].removeprefix("posterior_seed").removesuffix(".nc"))
    data = {k: (("seed", *_ARRAY_DIMS[k]), a[k][None]) for k in _NPZ if k != "theta_true"}
    data["divergences"] = ("seed", [int(s["divergences"])])
    data["nuts_warnings"] = ("seed", ["\n".join(s["nuts_warnings"])])
    data["theta_true"] = ("feature", a["theta_true"])
    attrs = {
        "experiment": NAME,
        "game": doc["config"]["game"],
        "config": json.dumps(doc["config"], sort_keys=True),
    }
    return _labelled(data, [seed], attrs | {"versions": json.dumps([doc["versions"]])})


def _summary_table(path: Path):
    """``arviz_stats.summary`` of ``theta`` and ``nu`` from the saved netCDF (read back)."""
    import arviz_stats  # lazy: ArviZ is slow to import, only the report needs it

    dt = xr.open_datatree(path, engine="h5netcdf")
    return arviz_stats.summary(dt, var_names=["theta", "nu"], ci_prob=0.94, ci_kind="hdi")


def plot(out_dir: Path) -> list[Path]:
    """Trace and rank plots, posterior vs truth, responses at the chosen states, summary."""
    import arviz_plots  # lazy: ArviZ and matplotlib, figures only

    from ..plots import markdown_table, new_figure, posterior_vs_truth, save_figure  # lazy

    out_dir = Path(out_dir)
    ds = load_inspection(out_dir).isel(seed=0)
    nc = out_dir / netcdf_name(int(ds["seed"]))
    try:
        dt = xr.open_datatree(nc, engine="h5netcdf")
    except (OSError, ValueError) as exc:  # h5py's OSError, xarray's ValueError
        raise ConfigError(f"{nc}: unreadable netCDF file ({exc})") from None
    paths = []

    summary = _summary_table(nc)
    summary.to_csv(out_dir / "summary.csv")
    headers = ["variable", *summary.columns]
    rows = [[idx, *row] for idx, row in zip(summary.index, summary.to_numpy(), strict=True)]
    paths.append(
        atomic_write_text(
            out_dir / "summary.md",
            f"# ArviZ summary ({nc.name})\n\n" + markdown_table(headers, rows, digits=3),
        )
    )

    for name, fn in (
        ("trace.png", arviz_plots.plot_trace_dist),
        ("rank.png", arviz_plots.plot_rank),
    ):
        pc = fn(dt, var_names=["theta"], backend="matplotlib")
        if name == "trace.png" and dt.posterior.sizes.get("chain", 1) > 1:
            pc.add_legend("chain", title="NUTS chain")  # the colours: one per chain
        target = out_dir / name
        atomic_write(target, lambda tmp, pc=pc: pc.savefig(tmp, format="png", dpi=110))
        paths.append(target)

    fig, axes = new_figure(1, 1, size=(7.0, 4.0))
    draws = {
        "NUTS": ds["theta_nuts"].stack(sample=("chain", "draw")).transpose("sample", ...).values,
        "Laplace": ds["theta_laplace"].values,
    }
    posterior_vs_truth(
        axes[0], draws, ds["theta_true"].values, point={"MLE": ds["theta_mle"].values}
    )
    axes[0].set_title("posterior of theta vs the true value")
    paths.append(save_figure(fig, out_dir / "posterior_vs_truth.png"))

    nu = dt.posterior["nu"]
    true = dt.constant_data["nu_true"]
    hs = list(nu.hs.values)
    A, B = nu.sizes["leader_action"], nu.sizes["follower_action"]
    fig, axes = new_figure(len(hs), 1, size=(5.0, 3.6))
    for k, label in enumerate(hs):
        ax = axes[k]
        x = np.arange(A * B)
        draws = nu.isel(hs=k).values.reshape(-1, A * B)
        lo, med, hi = np.quantile(draws, [0.03, 0.5, 0.97], axis=0)
        ax.errorbar(x, med, yerr=[med - lo, hi - med], fmt="o", capsize=3, label="NUTS 94%")
        ax.plot(x, true.isel(hs=k).values.reshape(-1), "kx", ms=9, mew=2, label="truth")
        ax.set_xticks(x, [f"a{a_},b{b_}" for a_ in range(A) for b_ in range(B)], fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_title(f"response nu(b | s, a) at {label}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    paths.append(save_figure(fig, out_dir / "responses.png"))
    return paths


__all__ = [
    "DEFAULT_CONFIG",
    "FULL_CONFIG",
    "PosteriorInspectionConfig",
    "Config",
    "NAME",
    "InspectionUnit",
    "build_datatree",
    "inspection_arrays",
    "inspection_results",
    "load_inspection",
    "make_units",
    "netcdf_name",
    "plot",
    "run",
    "write_results",
    "saved_posterior",
    "seed_posterior",
]
