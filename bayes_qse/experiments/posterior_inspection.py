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
  (``posterior_seed<k>.nc``), which ``xarray.open_datatree`` and ArviZ read back directly.

One unit per seed (``seeds`` datasets from ``base_seed`` on); figures use the first.
"""

from __future__ import annotations

import json
import warnings
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
from ..io import atomic_write, atomic_write_text
from ..model import Model
from ..posterior import PosteriorDiagnosticsWarning
from ..progress import progress as progress_bar
from ..progress import stage_printer
from .store import RunStore

NAME = "posterior_inspection"

DEFAULT_CONFIG: dict[str, Any] = {
    "seeds": 1,
    "base_seed": 0,
    "game": "patrol",
    "n_episodes": 200,
    "num_warmup": 300,
    "num_samples": 400,
    "num_chains": 4,
    "laplace_samples": 1600,
    "prior_scale": 1.0,
    # (h, s) pairs at which the response probabilities are shown and summarised
    "states": [[0, 0], [1, 1]],
}

FULL_CONFIG: dict[str, Any] = {
    **DEFAULT_CONFIG,
    "n_episodes": 500,
    "num_warmup": 1000,
    "num_samples": 1000,
    "laplace_samples": 4000,
}


def validate_config(config: dict) -> None:
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


def save_datatree(dt: xr.DataTree, path: Path) -> Path:
    """Write ``dt`` to netCDF (h5netcdf engine) atomically."""
    return atomic_write(path, lambda tmp: dt.to_netcdf(tmp, engine="h5netcdf"))


def run(config: dict, out_dir: Path, *, progress: bool = True) -> Path:
    """Fit and save one posterior per seed; write ``results.npz`` / ``results.json``."""
    validate_config(config)
    out_dir = Path(out_dir)
    store = RunStore(out_dir, NAME, config)
    game = named_game(config["game"])
    H, S, A = game.horizon, game.n_states, game.n_leader_actions
    uniform = np.full((H, S, A), 1.0 / A)
    seeds = [config["base_seed"] + i for i in range(config["seeds"])]
    for seed in progress_bar(seeds, len(seeds), NAME, progress):
        key = f"seed{seed}"
        if store.has(key):
            continue
        say = stage_printer(f"{NAME} seed {seed}", progress)
        say(f"simulating {config['n_episodes']} episodes, MLE fit (compiling)")
        data = simulate(game, uniform, config["n_episodes"], seed)
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
                progress=say if progress else False,
            )
        say("Laplace posterior, saving the DataTree")
        laplace = sample_posterior(
            data,
            game,
            method="laplace",
            num_samples=config["laplace_samples"],
            prior_scale=config["prior_scale"],
            seed=seed,
        )
        dt = build_datatree(nuts, game, mle.theta, config["states"])
        save_datatree(dt, out_dir / f"posterior_seed{seed}.nc")
        store.save_unit(
            key,
            {
                "theta_nuts": nuts.chains(),
                "theta_laplace": laplace.theta,
                "theta_mle": mle.theta,
                "mle_std_err": mle.std_err,
                "r_hat": nuts.diagnostics["r_hat"],
                "ess": nuts.diagnostics["ess"],
            },
            {
                "seed": seed,
                "divergences": nuts.diagnostics["divergences"],
                "nuts_warnings": [str(w.message) for w in caught],
            },
        )
    arrays, meta = store.load_unit(f"seed{seeds[0]}")
    summary = _summary_table(out_dir / f"posterior_seed{seeds[0]}.nc")
    results = {
        "theta_true": np.asarray(game.theta),
        **arrays,
        "summary": summary.to_dict(orient="index"),
        "divergences": meta["divergences"],
        "nuts_warnings": meta["nuts_warnings"],
        "netcdf": f"posterior_seed{seeds[0]}.nc",
    }
    return store.write_results("results", results)


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
    doc = json.loads((out_dir / "results.json").read_text())
    nc = out_dir / doc["summary"]["netcdf"]
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

    with np.load(out_dir / "results.npz") as f:
        a = {k: f[k] for k in f.files}
    fig, axes = new_figure(1, 1, size=(7.0, 4.0))
    d = a["theta_true"].shape[0]
    posterior_vs_truth(
        axes[0],
        {"NUTS": a["theta_nuts"].reshape(-1, d), "Laplace": a["theta_laplace"]},
        a["theta_true"],
        point={"MLE": a["theta_mle"]},
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
    "NAME",
    "build_datatree",
    "plot",
    "run",
    "save_datatree",
    "validate_config",
]
