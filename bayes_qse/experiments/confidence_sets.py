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
(:func:`bayes_qse.samplers.nuts`, ``batched``).  Each batch is one :class:`CoverageUnit` of
the unit engine (:mod:`bayes_qse.experiments.units`, run by
:func:`~bayes_qse.experiments.executors.run_units`, locally, in a process pool or on Ray), so
the run resumes where it stopped.  The results are one labelled dataset
(:func:`confidence_results`, ``results.nc``) reduced by xarray operations
(:mod:`~bayes_qse.experiments.coverage_results`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..io import atomic_write_netcdf
from ..sbc import uniformity_test
from .coverage_results import DIAGNOSTICS, MAIN, replication_dataset, summarise_coverage
from .executors import experiment_run
from .report import plot_confidence_sets, read_labelled

# The cases, methods and settings are shared with rationality_sweep; the config class and
# DEFAULT_CONFIG, FULL_CONFIG are this experiment's too (the runner reads them as module
# attributes: Config, below).
from .set_coverage import (  # noqa: F401
    BAYES_METHODS,
    CASES,
    CHOSEN_CELL,
    DEFAULT_CONFIG,
    FULL_CONFIG,
    METHODS,
    TARGETS,
    ConfidenceSetsConfig,
    check_game_settings,
    make_case,
    radii_for,
    run_batch,
    run_sbc_batch,
)
from .store import RunStore
from .units import RESULT, OnePartUnit, UnitParts

NAME = "confidence_sets"

#: The experiment's config type (the experiment interface, :mod:`bayes_qse.experiments`).
Config = ConfidenceSetsConfig


# ---------------------------------------------------------------------------------------
# Running and aggregating
# ---------------------------------------------------------------------------------------


def _batches(total: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(s + size, total)) for s in range(0, total, size)]


@dataclasses.dataclass(frozen=True)
class CoverageUnit(OnePartUnit):
    """One batch of replications (:mod:`bayes_qse.experiments.units`): the
    :func:`~.set_coverage.run_batch` of ``case`` at ``n_episodes`` episodes for the
    replications ``lo .. hi - 1`` (or, for ``case == "sbc"``, the
    :func:`~.set_coverage.run_sbc_batch` of those SBC replications), saved as the part
    ``result``.  Replication ``i``'s numbers do not depend on the batch it runs in."""

    key: str
    case: str
    n_episodes: int
    replications: tuple[int, int]
    config: dict[str, Any] = dataclasses.field(hash=False, compare=False)
    kind = "coverage"

    def run(self, store: RunStore, todo: list[str], progress: bool) -> None:
        start = time.perf_counter()
        lo, hi = self.replications
        idx = np.arange(lo, hi)
        if self.case == "sbc":
            arrays = run_sbc_batch(self.config, make_case(self.config, "well_specified"), idx)
        else:
            case = make_case(self.config, self.case)
            arrays = run_batch(self.config, case, CASES.index(self.case), self.n_episodes, idx)
        meta = {
            "kind": self.kind,
            "case": self.case,
            "n_episodes": self.n_episodes,
            "replications": [lo, hi],
            "seconds": time.perf_counter() - start,
            "seeds": [self.config["base_seed"] + lo, self.config["base_seed"] + hi],
        }
        store.save_unit(RESULT, arrays, meta)


def make_units(config: dict) -> list[CoverageUnit]:
    """The experiment's units: a :class:`CoverageUnit` per ``(case, sample size, batch of
    batch_size replications)``, then one per batch of SBC replications (``case="sbc"``)."""
    units = [
        CoverageUnit(f"{case}_n{n}_r{lo}-{hi}", case, n, (lo, hi), config)
        for case in config["cases"]
        for n in config["sample_sizes"]
        for lo, hi in _batches(config["seeds"], config["batch_size"])
    ]
    n_sbc = config["sbc_sample_size"]
    units += [
        CoverageUnit(f"sbc_r{lo}-{hi}", "sbc", n_sbc, (lo, hi), config)
        for lo, hi in _batches(config["sbc_replications"], config["batch_size"])
    ]
    return units


#: Run (or resume) the experiment (:func:`~.executors.run_experiment_module`).
run = experiment_run(__name__)


def write_results(
    store: RunStore, config: dict, units: list[CoverageUnit], loaded: Mapping[str, UnitParts]
) -> Path:
    """Write ``results.nc`` (:func:`confidence_results`) and ``results.npz`` /
    ``results.json`` (the same arrays, :func:`confidence_arrays`) from the units' parts
    (``loaded``, by key); returns the ``.npz`` path."""
    cases = {name: make_case(config, name) for name in config["cases"]}
    ds = confidence_results(loaded, config, cases)
    atomic_write_netcdf(store.out_dir / "results.nc", ds)
    return store.write_results("results", confidence_arrays(ds, config, cases))


def _load(loaded: Mapping[str, UnitParts], config: dict, prefix: str) -> dict[str, np.ndarray]:
    """The batches of the units whose keys start with ``prefix`` (``<case>_n<n>`` or
    ``sbc``), concatenated along the replications (in :func:`make_units` order)."""
    units = [u for u in make_units(config) if u.key.rsplit("_r", 1)[0] == prefix]
    parts = [loaded[u.key][0][0] for u in units]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def confidence_results(loaded: Mapping[str, UnitParts], config: dict, cases: dict) -> xr.Dataset:
    """Coverage with Clopper-Pearson bands, set sizes, NUTS diagnostics and SBC tests, as one
    labelled dataset (saved as ``results.nc``): the batches of each ``(case, n_episodes)``
    summarised by :func:`~.coverage_results.summarise_coverage` and concatenated along ``case`` and
    ``n_episodes``; ``loaded``: the units' parts by key (:func:`~.units.load_units`).

    Variables: ``coverage[case, n_episodes, construction, target, level]`` (constructions
    ``wald, lr, laplace, nuts``; targets :data:`TARGETS`), ``coverage_lo``/``coverage_hi``
    (95% Clopper-Pearson; NaN for the cell average and the worst cell, which are not
    binomial counts), ``coverage_theory[case, n_episodes, target]`` (+ ``_lo``/``_hi``) for
    ``lr_theory`` at nominal ``1 - theory_delta``, ``width[case, n_episodes,
    all_constructions, target]`` (mean interval width at 0.95; ``theta``: median log volume),
    ``diag_*[case, n_episodes]``, and for SBC ``sbc_ranks_<m>[replication, feature]`` and
    ``sbc_<test>_pvalue_<m>[feature]``; e.g. ``coverage.sel(case="misspecified",
    construction="nuts", target="value", level=0.95)``.  Attributes: ``replications``,
    ``sbc_n_draws``, the SBC NUTS summaries, and what the report states: ``chosen_cell``,
    ``theory_delta``, ``sbc_sample_size``.
    """
    R = config["seeds"]
    by_case = []
    for case in config["cases"]:
        game = cases[case]["model_game"]
        cell = int(np.ravel_multi_index(CHOSEN_CELL, game.shape))
        by_n = []
        for n in config["sample_sizes"]:
            u = _load(loaded, config, f"{case}_n{n}")
            radius = radii_for(config, cases[case], n)[-1]
            reps = replication_dataset(u, config["levels"], game.feature_dim, radius)
            by_n.append(summarise_coverage(reps, cell))
        by_case.append(xr.concat(by_n, xr.Variable("n_episodes", config["sample_sizes"])))
    ds = xr.concat(by_case, xr.Variable("case", list(config["cases"])))
    ds = ds.transpose("case", "n_episodes", "construction", "all_constructions", "target", ...)
    sbc = _load(loaded, config, "sbc")
    M = config["nuts_samples"] // config["sbc_thin"]
    for m in BAYES_METHODS:
        test = uniformity_test(sbc[f"rank_{m}"], M)
        ds[f"sbc_ranks_{m}"] = (("replication", "feature"), sbc[f"rank_{m}"])
        ds[f"sbc_chi2_pvalue_{m}"] = ("feature", np.atleast_1d(test.chi2_pvalue))
        ds[f"sbc_ks_pvalue_{m}"] = ("feature", np.atleast_1d(test.ks_pvalue))
    ds.attrs = {
        "experiment": NAME,
        "sbc_n_draws": int(M),
        "replications": int(R),
        "chosen_cell": np.asarray(CHOSEN_CELL),
        "theory_delta": float(config["theory_delta"]),
        "sbc_sample_size": int(config["sbc_sample_size"]),
        "sbc_nuts_divergent_frac": float((sbc["nuts_divergences"] > 0).mean()),
        "sbc_nuts_ess_min_median": float(np.median(sbc["nuts_ess_min"])),
    }
    return ds


def confidence_arrays(ds: xr.Dataset, config: dict, cases: dict) -> dict[str, Any]:
    """The arrays and summary of ``results.npz`` / ``results.json`` (the published format)
    read off the labelled results of :func:`confidence_results`: the arrays in the
    dataset's axis order, ``rows_95`` (one row per case, ``n``, construction and target at
    95%) and the run's settings."""
    out: dict[str, Any] = {k: v.values for k, v in ds.data_vars.items()}
    for m in BAYES_METHODS:  # scalars when d == 1, as uniformity_test returns them
        for test in ("chi2", "ks"):
            key = f"sbc_{test}_pvalue_{m}"
            out[key] = out[key] if out[key].size > 1 else out[key][0]
    out |= {
        "levels": ds["level"].values,
        "sample_sizes": ds["n_episodes"].values,
        "cases": list(config["cases"]),
        "methods": list(MAIN),
        "all_methods": list(METHODS),
        "targets": list(TARGETS),
        "chosen_cell": list(CHOSEN_CELL),
        "theta_target": {c: cases[c]["theta_target"] for c in config["cases"]},
        **{k: ds.attrs[k] for k in ("replications", "sbc_n_draws")},
        **{k: ds.attrs[k] for k in ("sbc_nuts_divergent_frac", "sbc_nuts_ess_min_median")},
    }
    at95 = ds[["coverage", "coverage_lo", "coverage_hi"]].sel(level=0.95)
    out["rows_95"] = [
        {
            "case": case,
            "n_episodes": n,
            "method": m,
            "target": t,
            "level": float(at95["level"]),
            "coverage": float(row["coverage"]),
            "ci_low": float(row["coverage_lo"]),
            "ci_high": float(row["coverage_hi"]),
        }
        for case in config["cases"]
        for n in config["sample_sizes"]
        for m in MAIN
        for t in TARGETS
        for row in [at95.sel(case=case, n_episodes=n, construction=m, target=t)]
    ]
    return out


#: The dimensions of each array of ``results.npz`` (:func:`confidence_arrays`' axis order).
_NPZ_AXES = {
    **{
        k: ("case", "n_episodes", "construction", "target", "level")
        for k in ("coverage", "coverage_lo", "coverage_hi")
    },
    **{
        k: ("case", "n_episodes", "target")
        for k in ("coverage_theory", "coverage_theory_lo", "coverage_theory_hi")
    },
    "width": ("case", "n_episodes", "all_constructions", "target"),
    **{f"diag_{k}": ("case", "n_episodes") for k in DIAGNOSTICS},
    **{f"sbc_ranks_{m}": ("replication", "feature") for m in BAYES_METHODS},
    **{f"sbc_{t}_pvalue_{m}": ("feature",) for t in ("chi2", "ks") for m in BAYES_METHODS},
}


def load_results(out_dir: Path) -> xr.Dataset:
    """The experiment's labelled results (:func:`confidence_results`): ``out_dir/results.nc``,
    or for a folder written before it existed (e.g. a published one), the same dataset
    rebuilt from ``results.npz`` and ``results.json`` (the inverse of
    :func:`confidence_arrays`; the settings the report states come from the json's config).

    Raises:
        ConfigError: neither results.nc nor results.npz/results.json is in ``out_dir``.
    """
    return read_labelled(out_dir, _from_npz)


def _from_npz(a: dict[str, np.ndarray], doc: dict[str, Any]) -> xr.Dataset:
    """The labelled results rebuilt from ``results.npz`` (``a``) and ``results.json`` (``doc``)."""
    s, config = doc["summary"], doc["config"]
    coords = {
        "case": list(s["cases"]),
        "n_episodes": a["sample_sizes"],
        "construction": list(s["methods"]),
        "all_constructions": list(s["all_methods"]),
        "target": list(s["targets"]),
        "level": a["levels"],
    }
    data = {
        k: (dims, np.atleast_1d(a[k]) if dims == ("feature",) else a[k])
        for k, dims in _NPZ_AXES.items()
    }
    attrs = {
        "experiment": NAME,
        **{k: s[k] for k in ("replications", "sbc_n_draws")},
        **{k: s[k] for k in ("sbc_nuts_divergent_frac", "sbc_nuts_ess_min_median")},
        "chosen_cell": np.asarray(s["chosen_cell"]),
        **{k: config[k] for k in ("theory_delta", "sbc_sample_size")},
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def plot(out_dir: Path) -> list[Path]:
    """Calibration plot, coverage and set size against ``n``, SBC rank histograms, and
    ``tables.md``, from the labelled results (:func:`load_results`;
    :func:`bayes_qse.experiments.report.plot_confidence_sets`)."""
    return plot_confidence_sets(load_results(out_dir), out_dir)


__all__ = [
    "NAME",
    "CoverageUnit",
    "confidence_arrays",
    "confidence_results",
    "load_results",
    "make_units",
    "plot",
    "run",
    "write_results",
]
