"""Experiment 3 of docs/math.md §7: frequentist confidence sets versus Bayesian credible sets.

Over many simulated datasets (``seeds`` replications per case and sample size) we measure the
empirical coverage, against the nominal level, of

- the true ``theta`` (joint sets in ``R^d``),
- the true response probabilities ``nu_h(b|s,a)`` at *every* cell ``(h,s,a,b)`` (marginal
  intervals, one per cell; tables report the cell average, the worst cell and one chosen cell),
- the true leader value ``J(pi)`` of a fixed policy (the true game's QSE policy),

for five constructions, all on the one likelihood (4):

``wald``
    ellipsoid ``(theta - theta_hat)' I (theta - theta_hat) <= beta`` (observed Fisher ``I``).
``lr``
    likelihood-ratio set ``2 (L(theta_hat) - L(theta)) <= beta``.
``lr_theory``
    the same set with the paper's finite-sample radius (:func:`bayes_qse.sets.theory_radius`).
``laplace``
    Gaussian posterior at the MAP (prior ``N(0, sigma^2 I)``), HPD ellipsoid / equal-tailed
    intervals of draws.
``nuts``
    NUTS posterior (same prior), Mahalanobis-rank HPD region / equal-tailed intervals.

For ``theta`` the frequentist sets use ``beta = chi2_d(level)``.  For a scalar function ``g``
(one response probability, the value) the frequentist interval is the *projection* of the set
with ``beta = chi2_1(level)``: for the LR set this is exactly the profile-likelihood interval,
for the Wald set it is (to first order) the delta-method interval; both are then marginal
intervals with nominal ``level``.  The projection is computed on ``n_directions`` boundary
points (rays from the centre, bisection on ``L`` for the LR set).  ``lr_theory`` projects the
joint set (one radius), so its intervals are simultaneous and conservative by design.

Cases: ``well_specified`` (a random linear myopic game), ``misspecified`` (the follower's
utility is ``phi . theta + misspec_scale * noise[h,s,a,b]``, not in the model class; ``theta``
coverage is then of the pseudo-true (KL-projection) parameter, the response and value coverage
of the true follower) and ``near_deterministic`` (the same game at ``large_eta``).

The experiment also runs simulation-based calibration (:mod:`bayes_qse.sbc`) of the Laplace and
NUTS posteriors: ``theta ~ N(0, sigma^2 I)``, ``sbc_sample_size`` episodes, rank histograms and
uniformity tests per parameter.

Everything is vectorised over a batch of replications (``batch_size``): data are simulated by
``vmap`` of :func:`bayes_qse.data.play_episode`, reduced to the counts of
:func:`bayes_qse.likelihood.response_counts` (the myopic likelihood depends on nothing else),
fitted by the Newton core of :mod:`bayes_qse.inference`, and NUTS runs on all datasets at once
(:func:`bayes_qse.samplers.nuts`, ``batched``).  Each batch is one unit of the
:class:`~bayes_qse.experiments.store.RunStore`, so the run resumes where it stopped.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import ConfigError
from ..io import atomic_write
from ..profile import clopper_pearson
from ..progress import progress as progress_bar
from ..sbc import uniformity_test
from ..sets import chi2_radius
from .report import plot_confidence_sets

# The cases, methods and settings are shared with rationality_sweep; DEFAULT_CONFIG and
# FULL_CONFIG are this experiment's configs too (the runner reads them as module attributes).
from .set_coverage import (  # noqa: F401
    BAYES_METHODS,
    CASES,
    CHOSEN_CELL,
    DEFAULT_CONFIG,
    FULL_CONFIG,
    METHODS,
    TARGETS,
    check_game_settings,
    make_case,
    radii_for,
    run_batch,
    run_sbc_batch,
)
from .store import RunStore

NAME = "confidence_sets"


def validate_config(config: dict) -> None:
    """Reject configurations the experiment cannot run (naming the key)."""
    for case in config["cases"]:
        if case not in CASES:
            raise ConfigError(f"config: cases has unknown case {case!r}; choose from {CASES}")
    if not config["sample_sizes"] or min(config["sample_sizes"]) < 1:
        raise ConfigError("config: sample_sizes must be a non-empty list of integers >= 1")
    if not config["levels"] or not all(0 < lv < 1 for lv in config["levels"]):
        raise ConfigError("config: levels must be numbers in (0, 1)")
    if 0.95 not in config["levels"]:
        raise ConfigError("config: levels must contain 0.95 (the level of the set sizes)")
    for key in ("batch_size", "n_directions", "laplace_draws", "nuts_samples", "sbc_thin"):
        if config[key] < 1:
            raise ConfigError(f"config: {key} must be >= 1, got {config[key]}")
    if config["sbc_replications"] < 2 or config["sbc_sample_size"] < 1:
        raise ConfigError("config: sbc_replications must be >= 2 and sbc_sample_size >= 1")
    for key in ("eta", "large_eta", "prior_scale"):
        if config[key] <= 0:
            raise ConfigError(f"config: {key} must be > 0, got {config[key]}")
    if not 0 < config["theory_delta"] < 1:
        raise ConfigError("config: theory_delta must lie in (0, 1)")
    n, key = max(
        (max(config["sample_sizes"]), "sample_sizes"),
        (config["sbc_sample_size"], "sbc_sample_size"),
    )
    check_game_settings(config, n, config["batch_size"], key)


# ---------------------------------------------------------------------------------------
# Running and aggregating
# ---------------------------------------------------------------------------------------


def _batches(total: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(s + size, total)) for s in range(0, total, size)]


def run(config: dict, out_dir: Path, *, progress: bool = True) -> Path:
    """Run every (case, sample size, batch of replications) unit not yet stored, then the SBC
    units, then aggregate into ``results.npz`` / ``results.json``; returns the ``.npz`` path."""
    validate_config(config)
    out_dir = Path(out_dir)
    store = RunStore(out_dir, NAME, config)
    cases = {name: make_case(config, name) for name in config["cases"]}
    jobs = [
        (case, n, lo, hi)
        for case in config["cases"]
        for n in config["sample_sizes"]
        for lo, hi in _batches(config["seeds"], config["batch_size"])
    ]
    jobs += [
        ("sbc", config["sbc_sample_size"], lo, hi)
        for lo, hi in _batches(config["sbc_replications"], config["batch_size"])
    ]
    for case, n, lo, hi in progress_bar(jobs, len(jobs), NAME, progress):
        key = f"sbc_r{lo}-{hi}" if case == "sbc" else f"{case}_n{n}_r{lo}-{hi}"
        if store.has(key):
            continue
        start = time.perf_counter()
        idx = np.arange(lo, hi)
        if case == "sbc":
            arrays = run_sbc_batch(
                config, cases.get("well_specified") or make_case(config, "well_specified"), idx
            )
        else:
            arrays = run_batch(config, cases[case], CASES.index(case), n, idx)
        seconds = time.perf_counter() - start
        store.save_unit(
            key,
            arrays,
            {
                "case": case,
                "n_episodes": n,
                "replications": [lo, hi],
                "seconds": seconds,
                "seeds": [config["base_seed"] + lo, config["base_seed"] + hi],
            },
        )
    results = aggregate(store, config, cases)
    path = store.write_results("results", results)
    ds = results_dataset(results)
    atomic_write(out_dir / "results.nc", lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))
    return path


def _load(store: RunStore, prefix: str, total: int, size: int) -> dict[str, np.ndarray]:
    parts = [store.load_unit(f"{prefix}_r{lo}-{hi}")[0] for lo, hi in _batches(total, size)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def aggregate(store: RunStore, config: dict, cases: dict) -> dict[str, Any]:
    """Coverage with Clopper-Pearson bands, set sizes, NUTS diagnostics and SBC tests.

    Arrays: ``coverage[case, n, method, target, level]`` (methods ``wald, lr, laplace, nuts``;
    targets :data:`TARGETS`), ``coverage_lo``/``coverage_hi`` (95% Clopper-Pearson; NaN for the
    cell average and the worst cell, which are not binomial counts), ``coverage_theory[case, n,
    target]`` (+ ``_lo``/``_hi``) for ``lr_theory`` at nominal ``1 - theory_delta``,
    ``width[case, n, method5, target]`` (mean interval width at 0.95; ``theta``: median log
    volume), SBC ranks and p-values.
    """
    levels = np.asarray(config["levels"])
    K = len(levels)
    i95 = int(np.flatnonzero(np.isclose(levels, 0.95))[0])
    main = ("wald", "lr", "laplace", "nuts")
    R = config["seeds"]
    C, N, T = len(config["cases"]), len(config["sample_sizes"]), len(TARGETS)
    cov = np.full((C, N, len(main), T, K), np.nan)
    cov_lo, cov_hi = np.full_like(cov, np.nan), np.full_like(cov, np.nan)
    cov_th = np.full((C, N, T), np.nan)
    cov_th_lo, cov_th_hi = np.full_like(cov_th, np.nan), np.full_like(cov_th, np.nan)
    width = np.full((C, N, len(METHODS), T), np.nan)
    diag = {
        k: np.full((C, N), np.nan)
        for k in (
            "mle_converged",
            "lr_unbounded",
            "nuts_divergent_frac",
            "nuts_ess_min_median",
            "nuts_accept_mean",
            "nuts_steps_mean",
        )
    }
    rows = []
    for ci, case in enumerate(config["cases"]):
        game = cases[case]["model_game"]
        H, S, A, B = game.shape
        d = game.feature_dim
        cell = int(np.ravel_multi_index(CHOSEN_CELL, (H, S, A, B)))
        G = H * S * A * B
        for ni, n in enumerate(config["sample_sizes"]):
            u = _load(store, f"{case}_n{n}", R, config["batch_size"])
            chi_d = np.array([chi2_radius(d, lv) for lv in levels])
            theta_cover = {
                "wald": u["stat_wald"][:, None] <= chi_d,
                "lr": u["stat_lr"][:, None] <= chi_d,
                "laplace": u["stat_laplace"][:, None] <= chi_d,
                "nuts": u["cover_theta_nuts"],
            }
            for mi, m in enumerate(main):
                fc = u[f"cover_{m}"].astype(float)  # [R, K, G+1]
                per_cell = fc[..., :G].mean(axis=0)  # [K, G]
                tgt = {
                    "theta": theta_cover[m].mean(axis=0),
                    "nu_cell": fc[:, :, cell].mean(axis=0),
                    "nu_avg": per_cell.mean(axis=-1),
                    "nu_worst": per_cell.min(axis=-1),
                    "value": fc[:, :, G].mean(axis=0),
                }
                for ti, t in enumerate(TARGETS):
                    cov[ci, ni, mi, ti] = tgt[t]
                    if t in ("theta", "nu_cell", "value"):
                        lo, hi = clopper_pearson(np.round(tgt[t] * R), R)
                        cov_lo[ci, ni, mi, ti], cov_hi[ci, ni, mi, ti] = lo, hi
            th_stat = u["stat_lr"] <= radii_for(config, cases[case], n)[-1]
            fc = u["cover_lr_theory"][:, 0].astype(float)
            tgt = {
                "theta": th_stat.mean(),
                "nu_cell": fc[:, cell].mean(),
                "nu_avg": fc[:, :G].mean(),
                "nu_worst": fc[:, :G].mean(axis=0).min(),
                "value": fc[:, G].mean(),
            }
            for ti, t in enumerate(TARGETS):
                cov_th[ci, ni, ti] = tgt[t]
                if t in ("theta", "nu_cell", "value"):
                    lo, hi = clopper_pearson(np.round(tgt[t] * R), R)
                    cov_th_lo[ci, ni, ti], cov_th_hi[ci, ni, ti] = lo, hi
            for mi, m in enumerate(METHODS):
                w = u[f"width_{m}"]
                w95 = w[:, 0] if m == "lr_theory" else w[:, i95]
                width[ci, ni, mi, TARGETS.index("nu_cell")] = w95[:, cell].mean()
                width[ci, ni, mi, TARGETS.index("nu_avg")] = w95[:, :G].mean()
                width[ci, ni, mi, TARGETS.index("value")] = w95[:, G].mean()
                if m != "lr_theory":
                    width[ci, ni, mi, 0] = np.median(u[f"logvol_{m}"])
            diag["mle_converged"][ci, ni] = u["mle_converged"].mean()
            diag["lr_unbounded"][ci, ni] = u["lr_unbounded"].mean()
            diag["nuts_divergent_frac"][ci, ni] = (u["nuts_divergences"] > 0).mean()
            diag["nuts_ess_min_median"][ci, ni] = np.median(u["nuts_ess_min"])
            diag["nuts_accept_mean"][ci, ni] = u["nuts_accept"].mean()
            diag["nuts_steps_mean"][ci, ni] = u["nuts_mean_steps"].mean()
            for mi, m in enumerate(main):
                for ti, t in enumerate(TARGETS):
                    rows.append(
                        {
                            "case": case,
                            "n_episodes": n,
                            "method": m,
                            "target": t,
                            "level": float(levels[i95]),
                            "coverage": cov[ci, ni, mi, ti, i95],
                            "ci_low": cov_lo[ci, ni, mi, ti, i95],
                            "ci_high": cov_hi[ci, ni, mi, ti, i95],
                        }
                    )
    out: dict[str, Any] = {
        "coverage": cov,
        "coverage_lo": cov_lo,
        "coverage_hi": cov_hi,
        "coverage_theory": cov_th,
        "coverage_theory_lo": cov_th_lo,
        "coverage_theory_hi": cov_th_hi,
        "width": width,
        "levels": levels,
        "sample_sizes": np.asarray(config["sample_sizes"]),
        "cases": list(config["cases"]),
        "methods": list(main),
        "all_methods": list(METHODS),
        "targets": list(TARGETS),
        "chosen_cell": list(CHOSEN_CELL),
        "theta_target": {c: cases[c]["theta_target"] for c in config["cases"]},
        "rows_95": rows,
        "replications": R,
    }
    out.update({f"diag_{k}": v for k, v in diag.items()})
    sbc = _load(store, "sbc", config["sbc_replications"], config["batch_size"])
    M = config["nuts_samples"] // config["sbc_thin"]
    for m in BAYES_METHODS:
        test = uniformity_test(sbc[f"rank_{m}"], M)
        out[f"sbc_ranks_{m}"] = sbc[f"rank_{m}"]
        out[f"sbc_chi2_pvalue_{m}"] = test.chi2_pvalue
        out[f"sbc_ks_pvalue_{m}"] = test.ks_pvalue
    out["sbc_n_draws"] = M
    out["sbc_nuts_divergent_frac"] = float((sbc["nuts_divergences"] > 0).mean())
    out["sbc_nuts_ess_min_median"] = float(np.median(sbc["nuts_ess_min"]))
    return out


def results_dataset(results: dict[str, Any]) -> xr.Dataset:
    """The arrays of :func:`aggregate` as one labelled ``xarray.Dataset`` (saved as
    ``results.nc`` beside ``results.npz``/``results.json``): every dimension named and
    coordinated, e.g. ``coverage.sel(case="misspecified", construction="nuts",
    target="value", level=0.95)``.  Dimensions: ``case``, ``n_episodes``, ``construction``
    (``wald, lr, laplace, nuts``), ``all_constructions`` (the five of :data:`METHODS`, for
    ``width``), ``target``, ``level``, and for SBC ``replication`` and ``feature``.  (Not
    ``method``: that name is a keyword of ``xarray``'s ``sel``.)
    """
    r = results
    coords = {
        "case": list(r["cases"]),
        "n_episodes": np.asarray(r["sample_sizes"]),
        "construction": list(r["methods"]),
        "all_constructions": list(r["all_methods"]),
        "target": list(r["targets"]),
        "level": np.asarray(r["levels"]),
    }
    cnt = ("case", "n_episodes", "construction", "target", "level")
    cnt_th = ("case", "n_episodes", "target")
    data = {k: (cnt, r[k]) for k in ("coverage", "coverage_lo", "coverage_hi")}
    data |= {
        k: (cnt_th, r[k]) for k in ("coverage_theory", "coverage_theory_lo", "coverage_theory_hi")
    }
    data["width"] = (("case", "n_episodes", "all_constructions", "target"), r["width"])
    data |= {k: (("case", "n_episodes"), v) for k, v in r.items() if k.startswith("diag_")}
    for m in BAYES_METHODS:
        data[f"sbc_ranks_{m}"] = (("replication", "feature"), r[f"sbc_ranks_{m}"])
        for test in ("chi2", "ks"):
            key = f"sbc_{test}_pvalue_{m}"
            data[key] = (("feature",), np.atleast_1d(r[key]))
    attrs = {
        "experiment": NAME,
        "sbc_n_draws": int(r["sbc_n_draws"]),
        "replications": int(r["replications"]),
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def plot(out_dir: Path) -> list[Path]:
    """Calibration plot, coverage and set size against ``n``, SBC rank histograms, and
    ``tables.md`` (:func:`bayes_qse.experiments.report.plot_confidence_sets`)."""
    return plot_confidence_sets(out_dir)


__all__ = [
    "NAME",
    "aggregate",
    "plot",
    "results_dataset",
    "run",
    "validate_config",
]
