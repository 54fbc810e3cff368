"""Set coverage as labelled data: the one aggregation that ``confidence_sets`` and
``rationality_sweep`` share (docs/math.md §7, experiments 3 and 5).

A batch of :func:`~bayes_qse.experiments.set_coverage.run_batch` (one case, one sample size,
``R`` replications) becomes a per-replication :class:`xarray.Dataset`
(:func:`replication_dataset`) with named dimensions

- ``construction``: the four of :data:`MAIN` (``wald, lr, laplace, nuts``), with a set at
  every nominal level; ``all_constructions``: the five of :data:`~.set_coverage.METHODS`
  (``lr_theory`` too, at its one level ``1 - theory_delta``), for the set sizes.  (Not
  ``method``: that name is a keyword of ``xarray``'s ``sel``.);
- ``replication``: the replication's index (its seed is ``base_seed + index``);
- ``level``: the nominal levels of the config;
- ``functional``: the ``G = H S A B`` response probabilities ``nu_h(b|s,a)`` (row-major
  cells, coordinate ``0 .. G-1``) and the leader value (coordinate :data:`VALUE` ``= -1``),

and :func:`summarise_coverage` reduces it by xarray operations -- ``mean("replication")``, ``min``
over the cells, ``sel`` of the chosen cell, ``median``, ``where`` -- to the coverage of the
:data:`~.set_coverage.TARGETS`, the 95% Clopper-Pearson bands of the binomial ones, the set
sizes and the fit / NUTS diagnostics.  The reductions run over the same NumPy memory layout as
the hand-indexed loops they replace, so the published arrays are unchanged bit for bit.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..profile import clopper_pearson
from ..sets import chi2_radius
from .set_coverage import METHODS, TARGETS

#: The constructions with a set at every nominal level (``lr_theory`` has one radius only).
MAIN = ("wald", "lr", "laplace", "nuts")

#: The ``functional`` coordinate of the leader value (the cells are ``0 .. G-1``).
VALUE = -1

#: Targets whose coverage is a binomial proportion (the others are averages or minima over
#: cells), hence get Clopper-Pearson bands.
BINOMIAL_TARGETS = ("theta", "nu_cell", "value")

#: Per-replication diagnostics of a batch and how :func:`summarise_coverage` reduces each.
DIAGNOSTICS = {
    "mle_converged": "mean",
    "lr_unbounded": "mean",
    "nuts_divergent_frac": "mean",
    "nuts_ess_min_median": "median",
    "nuts_accept_mean": "mean",
    "nuts_steps_mean": "mean",
}


def replication_dataset(
    arrays: dict[str, np.ndarray], levels, feature_dim: int, theory_radius: float | None = None
) -> xr.Dataset:
    """The batch ``arrays`` of :func:`~.set_coverage.run_batch` as one labelled dataset.

    Args:
        arrays: ``cover_<m>``/``width_<m>`` ``[R, K, G+1]`` (``lr_theory``: ``[R, 1, G+1]``,
            its one level ``1 - theory_delta``), ``logvol_<m>`` ``[R]`` (not ``lr_theory``),
            ``stat_wald``/``stat_lr``/``stat_laplace`` ``[R]`` (the statistics of the true
            ``theta``), ``cover_theta_nuts`` ``[R, K]`` and the diagnostics ``[R]``.
        levels: the ``K`` nominal levels (contain 0.95).
        feature_dim: ``d``, the dimension of ``theta`` (the ``theta`` sets' radius is
            ``chi2_d(level)``).
        theory_radius: the LR radius of ``lr_theory`` (the paper's, at ``1 - theory_delta``);
            None: its ``theta`` coverage is not computed (NaN).

    Returns:
        ``cover[construction, replication, level, functional]`` and ``cover_theta
        [construction, replication, level]`` (``stat <= chi2_d(level)``; NUTS: its
        Mahalanobis-rank HPD region), ``cover_theory[replication, functional]`` and
        ``cover_theta_theory[replication]`` (``lr_theory``), ``width[all_constructions,
        replication, functional]`` at 95% (``lr_theory`` at its own level), ``logvol
        [all_constructions, replication]`` (NaN for ``lr_theory``), and the
        :data:`DIAGNOSTICS` ``[replication]``.
    """
    levels = np.asarray(levels, float)
    i95 = int(np.flatnonzero(np.isclose(levels, 0.95))[0])
    R, _, F = arrays["cover_wald"].shape
    functional = np.r_[np.arange(F - 1), VALUE]
    # constructions stacked on a leading axis: each one's block keeps the layout of its array
    cover = np.stack([arrays[f"cover_{m}"] for m in MAIN])
    width = np.stack([arrays[f"width_{m}"][:, 0 if m == "lr_theory" else i95] for m in METHODS])
    nan = np.full(R, np.nan)
    logvol = np.stack([nan if m == "lr_theory" else arrays[f"logvol_{m}"] for m in METHODS])
    chi_d = xr.DataArray([chi2_radius(feature_dim, lv) for lv in levels], dims="level")
    stat = xr.DataArray(
        np.stack([arrays[f"stat_{m}"] for m in ("wald", "lr", "laplace")]),
        dims=("construction", "replication"),
        coords={"construction": ["wald", "lr", "laplace"]},
    )
    nuts_theta = xr.DataArray(
        arrays["cover_theta_nuts"][None],
        dims=("construction", "replication", "level"),
        coords={"construction": ["nuts"]},
    )
    cover_theta = xr.concat([stat <= chi_d, nuts_theta], "construction", join="exact")
    diagnostics = {
        "mle_converged": arrays["mle_converged"],
        "lr_unbounded": arrays["lr_unbounded"],
        "nuts_divergent_frac": arrays["nuts_divergences"] > 0,
        "nuts_ess_min_median": arrays["nuts_ess_min"],
        "nuts_accept_mean": arrays["nuts_accept"],
        "nuts_steps_mean": arrays["nuts_mean_steps"],
    }
    theta_theory = (
        np.full(R, np.nan) if theory_radius is None else arrays["stat_lr"] <= theory_radius
    )
    rep, fun = ("replication",), ("replication", "functional")
    data = {
        "cover": (("construction", "replication", "level", "functional"), cover),
        "cover_theta": cover_theta.transpose("construction", "replication", "level"),
        "cover_theory": (fun, arrays["cover_lr_theory"][:, 0]),
        "cover_theta_theory": (rep, theta_theory),
        "width": (("all_constructions", *fun), width),
        "logvol": (("all_constructions", "replication"), logvol),
        **{k: (rep, v) for k, v in diagnostics.items()},
    }
    coords = {
        "construction": list(MAIN),
        "all_constructions": list(METHODS),
        "replication": np.arange(R),
        "level": levels,
        "functional": functional,
    }
    return xr.Dataset(data, coords=coords)


def _targets(
    per_replication: xr.DataArray, theta: xr.DataArray, cell: int, pooled: bool = False
) -> xr.DataArray:
    """Coverage of the :data:`TARGETS` from ``[..., replication, functional]`` indicators
    and the ``theta`` indicators ``[..., replication]``: a ``target`` dimension.  The cell
    average is the mean of the per-cell coverages, or (``pooled``, as published for
    ``lr_theory``) the mean over all ``(replication, cell)`` pairs: the same number, rounded
    once instead of twice."""
    f = per_replication.astype(float)
    cells = f.isel(functional=slice(0, -1))
    per_cell = cells.mean("replication", skipna=False)
    average = cells.mean(("replication", "functional"), skipna=False) if pooled else None
    out = {
        "theta": theta.astype(float).mean("replication", skipna=False),
        "nu_cell": f.sel(functional=cell, drop=True).mean("replication", skipna=False),
        "nu_avg": average if pooled else per_cell.mean("functional", skipna=False),
        "nu_worst": per_cell.min("functional", skipna=False),
        "value": f.sel(functional=VALUE, drop=True).mean("replication", skipna=False),
    }
    return xr.concat([out[t] for t in TARGETS], xr.Variable("target", list(TARGETS)))


def _bands(coverage: xr.DataArray, R: int) -> tuple[xr.DataArray, xr.DataArray]:
    """95% Clopper-Pearson bands of the binomial targets (NaN for the cell average and the
    worst cell)."""
    lo, hi = clopper_pearson(np.round(coverage.values * R), R)
    binomial = coverage["target"].isin(BINOMIAL_TARGETS)
    return (
        coverage.copy(data=lo).where(binomial),
        coverage.copy(data=hi).where(binomial),
    )


def summarise_coverage(reps: xr.Dataset, cell: int) -> xr.Dataset:
    """Coverage, bands, set sizes and diagnostics of one batch (:func:`replication_dataset`).

    ``cell`` is the ``functional`` index of the reported cell (``CHOSEN_CELL`` raveled).

    Returns:
        ``coverage[construction, target, level]`` with ``coverage_lo``/``coverage_hi``,
        ``coverage_theory[target]`` (+ bands), ``width[all_constructions, target]`` (mean width
        of the 95% intervals; ``theta``: median log volume of the set), and the diagnostics
        as scalars.
    """
    R = reps.sizes["replication"]
    coverage = _targets(reps["cover"], reps["cover_theta"], cell)
    coverage = coverage.transpose("construction", "target", "level")
    theory = _targets(reps["cover_theory"], reps["cover_theta_theory"], cell, pooled=True)
    w = reps["width"]
    width = {
        "theta": reps["logvol"].median("replication", skipna=False),
        "nu_cell": w.sel(functional=cell, drop=True).mean("replication", skipna=False),
        "nu_avg": w.isel(functional=slice(0, -1)).mean(("replication", "functional"), skipna=False),
        "nu_worst": xr.full_like(w.isel(replication=0, functional=0), np.nan),
        "value": w.sel(functional=VALUE, drop=True).mean("replication", skipna=False),
    }
    width_t = xr.concat([width[t] for t in TARGETS], xr.Variable("target", list(TARGETS)))
    lo, hi = _bands(coverage, R)
    th_lo, th_hi = _bands(theory, R)
    out = xr.Dataset(
        {
            "coverage": coverage,
            "coverage_lo": lo,
            "coverage_hi": hi,
            "coverage_theory": theory,
            "coverage_theory_lo": th_lo,
            "coverage_theory_hi": th_hi,
            "width": width_t.transpose("all_constructions", "target"),
        }
    )
    for key, how in DIAGNOSTICS.items():
        out[f"diag_{key}"] = getattr(reps[key], how)("replication", skipna=False)
    return out.drop_vars(["functional", "replication"], errors="ignore")


__all__ = [
    "BINOMIAL_TARGETS",
    "DIAGNOSTICS",
    "MAIN",
    "VALUE",
    "replication_dataset",
    "summarise_coverage",
]
