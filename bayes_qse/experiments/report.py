"""The experiments' figures and tables (docs/math.md §7): reading a results directory, the
labels and colours of the set methods (shared by ``confidence_sets`` and ``rationality_sweep``),
and the ``confidence_sets`` report (calibration, coverage and set size against ``n``, SBC
ranks, ``tables.md``), drawn from its labelled results (an ``xarray.Dataset``) by label.

Plotting itself goes through :mod:`bayes_qse.plots` (imported lazily: matplotlib loads only
when a figure is drawn).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError
from ..io import atomic_write_text
from ..sbc import uniformity_test
from .set_coverage import BAYES_METHODS

if TYPE_CHECKING:
    import xarray as xr


def read_results(out_dir: Path | str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``(arrays, doc)`` of ``out_dir/results.npz`` and ``out_dir/results.json``.

    Raises:
        ConfigError: either file is missing (the experiment has not been run there).
    """
    out_dir = Path(out_dir)
    npz, js = out_dir / "results.npz", out_dir / "results.json"
    if not npz.is_file() or not js.is_file():
        raise ConfigError(f"{out_dir}: no results.npz/results.json (run the experiment first)")
    with np.load(npz, allow_pickle=False) as f:
        arrays = {k: np.array(f[k]) for k in f.files}
    return arrays, json.loads(js.read_text(encoding="utf-8"))


def read_labelled(
    out_dir: Path | str,
    rebuild: Callable[[dict[str, np.ndarray], dict[str, Any]], xr.Dataset],
) -> xr.Dataset:
    """An experiment's labelled results: ``out_dir/results.nc`` loaded into memory, or for a
    folder written before it existed (e.g. a published one) ``rebuild(arrays, doc)`` of its
    ``results.npz`` and ``results.json`` (:func:`read_results`).

    Raises:
        ConfigError: neither results.nc nor results.npz/results.json is in ``out_dir``.
    """
    import xarray as xr  # lazy: a sweep's driver imports this module, not xarray

    nc = Path(out_dir) / "results.nc"
    if nc.is_file():
        with xr.open_dataset(nc, engine="h5netcdf") as ds:
            return ds.load()
    return rebuild(*read_results(out_dir))


METHOD_LABELS = {
    "wald": "Wald",
    "lr": "LR (chi2)",
    "lr_theory": "LR (paper radius)",
    "laplace": "Laplace",
    "nuts": "NUTS",
}


METHOD_COLORS = {"wald": "C0", "lr": "C1", "laplace": "C2", "nuts": "C3", "lr_theory": "C4"}


TARGET_LABELS = {
    "theta": "theta (joint set)",
    "nu_cell": "nu at (h,s,a,b)=(0,0,0,0)",
    "nu_avg": "nu, mean over cells",
    "nu_worst": "nu, worst cell",
    "value": "leader value J(pi)",
}


def log_n_axis(ax: Any, ns: np.ndarray) -> None:
    """A log x-axis ticked exactly at the sample sizes."""
    from matplotlib.ticker import NullLocator  # lazy: figures only

    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(ns, [str(int(n)) for n in ns])


def fmt_coverage(c: float, lo: float, hi: float) -> str:
    if np.isnan(c):
        return "-"
    if np.isnan(lo):
        return f"{c:.3f}"
    return f"{c:.3f} [{lo:.3f}, {hi:.3f}]"


# ---------------------------------------------------------------------------------------
# confidence_sets: figures and tables
# ---------------------------------------------------------------------------------------


def _labels(ds: Any, dim: str) -> list:
    """The labels of dimension ``dim`` of ``ds`` as plain Python values."""
    return ds[dim].values.tolist()


def _band(ds: Any, **where: Any) -> tuple[Any, Any, Any]:
    """``(coverage, lo, hi)`` of the confidence_sets results (``confidence_results``) at the
    labels ``where`` (dimension -> label)."""
    return tuple(ds[k].sel(**where) for k in ("coverage", "coverage_lo", "coverage_hi"))


def plot_confidence_sets(ds: Any, out_dir: Path) -> list[Path]:
    """Calibration plot, coverage and set size against ``n``, SBC rank histograms, and
    ``tables.md`` (coverage at 95% with Clopper-Pearson bands, set sizes, SBC tests) of the
    labelled results ``ds`` (an ``xarray.Dataset``: ``confidence_sets.confidence_results``,
    read back by ``confidence_sets.load_results``), written to ``out_dir``; every value is
    selected by label (``case``, ``n_episodes``, ``construction``, ``target``, ``level``)."""
    from ..plots import new_figure, save_figure  # lazy: matplotlib

    out_dir = Path(out_dir)
    cases, methods = _labels(ds, "case"), _labels(ds, "construction")
    levels, ns = ds["level"].values, ds["n_episodes"].values
    shown = ("theta", "nu_cell", "value")
    paths = []

    # 1. calibration: coverage vs nominal at the smallest and the largest n
    fig, axes = new_figure(len(shown), len(cases), size=(4.0, 3.4))
    for ci, case in enumerate(cases):
        for j, t in enumerate(shown):
            ax = axes[ci * len(shown) + j]
            ax.plot([0, 1], [0, 1], "k:", lw=1)
            for m in methods:
                for n, style in ((ns[-1], "-"), (ns[0], "--")):
                    y, lo, hi = (
                        v.values
                        for v in _band(ds, case=case, n_episodes=n, construction=m, target=t)
                    )
                    ax.errorbar(
                        levels,
                        y,
                        yerr=[y - lo, hi - y],
                        fmt="o" + style,
                        ms=3,
                        capsize=2,
                        color=METHOD_COLORS[m],
                        label=f"{METHOD_LABELS[m]} n={n}" if ci == j == 0 else None,
                    )
            ax.set_title(f"{case}: {TARGET_LABELS[t]}", fontsize="small")
            ax.set_xlabel("nominal level")
            ax.set_ylabel("coverage")
            ax.set_xlim(0.45, 1.0)
            lowest = float(np.nanmin(ds["coverage"].sel(case=case, target=t).values))
            ax.set_ylim(max(0.0, min(0.45, lowest - 0.05)), 1.01)
            ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncol=4, fontsize="small")
    paths.append(save_figure(fig, out_dir / "calibration.png"))

    # 2. coverage at 95% against n
    at95 = ds.sel(level=0.95)
    fig, axes = new_figure(len(shown), len(cases), size=(4.0, 3.2))
    for ci, case in enumerate(cases):
        for j, t in enumerate(shown):
            ax = axes[ci * len(shown) + j]
            for m in methods:
                y, lo, hi = _band(at95, case=case, construction=m, target=t)
                ax.fill_between(ns, lo.values, hi.values, color=METHOD_COLORS[m], alpha=0.2)
                ax.plot(
                    ns,
                    y.values,
                    "o-",
                    color=METHOD_COLORS[m],
                    ms=3,
                    label=METHOD_LABELS[m] if ci == j == 0 else None,
                )
            ax.plot(
                ns,
                ds["coverage_theory"].sel(case=case, target=t).values,
                "s:",
                color=METHOD_COLORS["lr_theory"],
                ms=3,
                label=METHOD_LABELS["lr_theory"] if ci == j == 0 else None,
            )
            ax.axhline(0.95, color="k", lw=1, ls=":")
            log_n_axis(ax, ns)
            ax.set_title(f"{case}: {TARGET_LABELS[t]}", fontsize="small")
            ax.set_xlabel("episodes n")
            ax.set_ylabel("coverage at 95%")
            ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncol=5, fontsize="small")
    paths.append(save_figure(fig, out_dir / "coverage_vs_n.png"))

    # 3. set sizes at 95%
    size_targets = (
        ("theta", "median log volume of the theta set"),
        ("nu_avg", "mean width of nu intervals"),
        ("value", "mean width of value interval"),
    )
    fig, axes = new_figure(len(size_targets), len(cases), size=(4.0, 3.2))
    for ci, case in enumerate(cases):
        for j, (t, label) in enumerate(size_targets):
            ax = axes[ci * len(size_targets) + j]
            for m in _labels(ds, "all_constructions"):
                y = ds["width"].sel(case=case, all_constructions=m, target=t).values
                if np.all(np.isnan(y)):
                    continue
                ax.plot(
                    ns,
                    y,
                    "o-",
                    ms=3,
                    color=METHOD_COLORS[m],
                    label=METHOD_LABELS[m] if ci == 0 and j == 1 else None,
                )
            log_n_axis(ax, ns)
            if t != "theta":
                ax.set_yscale("log")
            ax.set_title(f"{case}: {label}", fontsize="small")
            ax.set_xlabel("episodes n")
            ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncol=5, fontsize="small")
    paths.append(save_figure(fig, out_dir / "set_sizes.png"))

    # 4. SBC rank histograms
    from scipy import stats  # lazy: scipy.stats costs ~0.5 s to import

    M = int(ds.attrs["sbc_n_draws"])
    d = ds.sizes["feature"]
    fig, axes = new_figure(d, len(BAYES_METHODS), size=(3.6, 2.8))
    for i, m in enumerate(BAYES_METHODS):
        ranks = ds[f"sbc_ranks_{m}"].transpose("replication", "feature").values
        test = uniformity_test(ranks, M)
        R = ranks.shape[0]
        edges = np.floor(np.linspace(0, M + 1, test.n_bins + 1)) - 0.5
        for j in range(d):
            ax = axes[i * d + j]
            ax.hist(ranks[:, j], bins=edges, color=f"C{i}", alpha=0.6, zorder=2)
            p = test.expected / R
            lo = stats.binom.ppf(0.005, R, p)
            hi = stats.binom.ppf(0.995, R, p)
            ax.fill_between(
                edges,
                np.append(lo, lo[-1]),
                np.append(hi, hi[-1]),
                step="post",
                color="grey",
                alpha=0.4,
                zorder=1,
                label="99% band under uniformity",
            )
            ax.set_title(
                f"{METHOD_LABELS[m]} theta[{j}]: chi2 p={np.atleast_1d(test.chi2_pvalue)[j]:.2g}, "
                f"KS p={np.atleast_1d(test.ks_pvalue)[j]:.2g}",
                fontsize="x-small",
            )
            ax.set_xlabel(f"rank among {M} draws")
    paths.append(save_figure(fig, out_dir / "sbc_ranks.png"))

    paths.append(confidence_sets_tables(ds, out_dir))
    return paths


def _coverage_cell(ds: Any, **where: Any) -> str:
    """:func:`fmt_coverage` of the coverage and its band at the labels ``where``."""
    return fmt_coverage(*(float(v) for v in _band(ds, **where)))


def confidence_sets_tables(ds: Any, out_dir: Path) -> Path:
    """``out_dir/tables.md`` of the labelled results ``ds`` (as :func:`plot_confidence_sets`):
    coverage at 95% per target with Clopper-Pearson bands, calibration across levels at the
    largest ``n``, set sizes, diagnostics and the SBC uniformity tests."""
    from ..plots import markdown_table  # lazy: plots imports matplotlib

    cases, methods = _labels(ds, "case"), _labels(ds, "construction")
    levels, ns = _labels(ds, "level"), _labels(ds, "n_episodes")
    at95 = ds.sel(level=0.95)
    theory = ds[["coverage_theory", "coverage_theory_lo", "coverage_theory_hi"]]
    cell = tuple(int(i) for i in np.atleast_1d(ds.attrs["chosen_cell"]))
    R = int(ds.attrs["replications"])
    lines = [
        f"# confidence_sets: coverage tables ({R} replications per row)\n",
        "Coverage at nominal 95% with exact (Clopper-Pearson) 95% binomial bands in brackets. "
        "`theta`: joint set (chi2_d radius for Wald/LR, HPD for the posteriors). `nu cell`: the "
        f"response probability at (h,s,a,b) = {cell}. `nu avg` / `nu worst`: "
        "the mean / minimum over all cells of the per-cell coverage (not a binomial count: no "
        "band). `value`: the leader value of the fixed policy. Frequentist intervals for scalar "
        "targets are projections of the chi2_1-radius set (profile-likelihood for LR); "
        f"`LR (paper radius)` is the joint set with the finite-sample radius at nominal "
        f"{1 - float(ds.attrs['theory_delta']):.2f}.\n",
    ]
    for t in ("theta", "nu_cell", "nu_avg", "nu_worst", "value"):
        headers = ["case", "n", *[METHOD_LABELS[m] for m in methods], METHOD_LABELS["lr_theory"]]
        rows = []
        for case in cases:
            for n in ns:
                where = {"case": case, "n_episodes": n, "target": t}
                row = [case, int(n)]
                row += [_coverage_cell(at95, construction=m, **where) for m in methods]
                row.append(fmt_coverage(*(float(v) for v in theory.sel(**where).values())))
                rows.append(row)
        lines += [f"\n## Coverage of {TARGET_LABELS[t]} at 95%\n", markdown_table(headers, rows)]
    # calibration across levels at the largest n (theta and value)
    for t in ("theta", "value"):
        headers = ["case", "method", *[f"{lv:g}" for lv in levels]]
        rows = [
            [
                case,
                METHOD_LABELS[m],
                *[
                    _coverage_cell(
                        ds, case=case, n_episodes=ns[-1], construction=m, target=t, level=lv
                    )
                    for lv in levels
                ],
            ]
            for case in cases
            for m in methods
        ]
        lines += [
            f"\n## Calibration of {TARGET_LABELS[t]} at n = {int(ns[-1])}\n",
            markdown_table(headers, rows),
        ]
    # set sizes
    for t, label in (
        ("theta", "median log volume of the 95% theta set"),
        ("nu_avg", "mean width of the 95% nu intervals"),
        ("value", "mean width of the 95% value interval"),
    ):
        ms = [
            m for m in _labels(ds, "all_constructions") if not (t == "theta" and m == "lr_theory")
        ]
        headers = ["case", "n", *[METHOD_LABELS[m] for m in ms]]
        width = ds["width"].sel(target=t)
        rows = [
            [
                case,
                int(n),
                *[float(width.sel(case=case, n_episodes=n, all_constructions=m)) for m in ms],
            ]
            for case in cases
            for n in ns
        ]
        lines += [f"\n## Set size: {label}\n", markdown_table(headers, rows)]
    # diagnostics
    diagnostics = {
        "mle_converged": "MLE converged",
        "lr_unbounded": "LR set unbounded (95%)",
        "nuts_divergent_frac": "NUTS runs with divergences",
        "nuts_ess_min_median": "NUTS median min-ESS",
        "nuts_accept_mean": "NUTS mean accept",
        "nuts_steps_mean": "NUTS mean leapfrog steps",
    }
    headers = ["case", "n", *diagnostics.values()]
    rows = [
        [
            case,
            int(n),
            *[float(ds[f"diag_{k}"].sel(case=case, n_episodes=n)) for k in diagnostics],
        ]
        for case in cases
        for n in ns
    ]
    lines += [
        "\n## Diagnostics (fractions of replications unless stated)\n",
        markdown_table(headers, rows),
    ]
    # SBC
    headers = ["posterior", *[f"theta[{j}] chi2 p / KS p" for j in range(ds.sizes["feature"])]]
    rows = [
        [
            METHOD_LABELS[m],
            *[
                f"{float(ds[f'sbc_chi2_pvalue_{m}'][j]):.3g} / "
                f"{float(ds[f'sbc_ks_pvalue_{m}'][j]):.3g}"
                for j in range(ds.sizes["feature"])
            ],
        ]
        for m in BAYES_METHODS
    ]
    lines += [
        f"\n## Simulation-based calibration ({ds.sizes['replication']} replications, "
        f"{int(ds.attrs['sbc_sample_size'])} episodes, {int(ds.attrs['sbc_n_draws'])} draws "
        "kept)\n",
        markdown_table(headers, rows),
        f"\nNUTS (SBC runs): fraction with divergences "
        f"{float(ds.attrs['sbc_nuts_divergent_frac']):.3f}, "
        f"median min-ESS {float(ds.attrs['sbc_nuts_ess_min_median']):.0f}.\n",
    ]
    return atomic_write_text(out_dir / "tables.md", "\n".join(lines))


__all__ = [
    "read_labelled",
    "METHOD_COLORS",
    "METHOD_LABELS",
    "TARGET_LABELS",
    "confidence_sets_tables",
    "fmt_coverage",
    "log_n_axis",
    "plot_confidence_sets",
    "read_results",
]
