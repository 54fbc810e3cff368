"""The experiments' figures and tables (docs/math.md §7): reading a results directory, the
labels and colours of the set methods (shared by ``confidence_sets`` and ``rationality_sweep``),
and the ``confidence_sets`` report (calibration, coverage and set size against ``n``, SBC
ranks, ``tables.md``).

Plotting itself goes through :mod:`bayes_qse.plots` (imported lazily: matplotlib loads only
when a figure is drawn).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..io import atomic_write_text
from ..sbc import uniformity_test
from .set_coverage import BAYES_METHODS


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


def plot_confidence_sets(out_dir: Path) -> list[Path]:
    """Calibration plot, coverage and set size against ``n``, SBC rank histograms, and
    ``tables.md`` (coverage at 95% with Clopper-Pearson bands, set sizes, SBC tests)."""
    from ..plots import new_figure, save_figure  # lazy: matplotlib

    out_dir = Path(out_dir)
    a, doc = read_results(out_dir)
    s = doc["summary"]
    cases, methods, targets = s["cases"], s["methods"], s["targets"]
    levels, ns = a["levels"], a["sample_sizes"]
    shown = ("theta", "nu_cell", "value")
    paths = []

    # 1. calibration: coverage vs nominal at the smallest and the largest n
    fig, axes = new_figure(len(shown), len(cases), size=(4.0, 3.4))
    for ci, case in enumerate(cases):
        for j, t in enumerate(shown):
            ax = axes[ci * len(shown) + j]
            ti = targets.index(t)
            ax.plot([0, 1], [0, 1], "k:", lw=1)
            for mi, m in enumerate(methods):
                for ni, style in ((len(ns) - 1, "-"), (0, "--")):
                    y = a["coverage"][ci, ni, mi, ti]
                    err = [
                        y - a["coverage_lo"][ci, ni, mi, ti],
                        a["coverage_hi"][ci, ni, mi, ti] - y,
                    ]
                    ax.errorbar(
                        levels,
                        y,
                        yerr=err,
                        fmt="o" + style,
                        ms=3,
                        capsize=2,
                        color=METHOD_COLORS[m],
                        label=f"{METHOD_LABELS[m]} n={ns[ni]}" if ci == j == 0 else None,
                    )
            ax.set_title(f"{case}: {TARGET_LABELS[t]}", fontsize="small")
            ax.set_xlabel("nominal level")
            ax.set_ylabel("coverage")
            ax.set_xlim(0.45, 1.0)
            ax.set_ylim(
                max(0.0, min(0.45, float(np.nanmin(a["coverage"][ci, :, :, ti])) - 0.05)), 1.01
            )
            ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncol=4, fontsize="small")
    paths.append(save_figure(fig, out_dir / "calibration.png"))

    # 2. coverage at 95% against n
    i95 = int(np.flatnonzero(np.isclose(levels, 0.95))[0])
    fig, axes = new_figure(len(shown), len(cases), size=(4.0, 3.2))
    for ci, case in enumerate(cases):
        for j, t in enumerate(shown):
            ax = axes[ci * len(shown) + j]
            ti = targets.index(t)
            for mi, m in enumerate(methods):
                y = a["coverage"][ci, :, mi, ti, i95]
                ax.fill_between(
                    ns,
                    a["coverage_lo"][ci, :, mi, ti, i95],
                    a["coverage_hi"][ci, :, mi, ti, i95],
                    color=METHOD_COLORS[m],
                    alpha=0.2,
                )
                ax.plot(
                    ns,
                    y,
                    "o-",
                    color=METHOD_COLORS[m],
                    ms=3,
                    label=METHOD_LABELS[m] if ci == j == 0 else None,
                )
            y = a["coverage_theory"][ci, :, ti]
            ax.plot(
                ns,
                y,
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
    all_methods = s["all_methods"]
    size_targets = (
        ("theta", "median log volume of the theta set"),
        ("nu_avg", "mean width of nu intervals"),
        ("value", "mean width of value interval"),
    )
    fig, axes = new_figure(len(size_targets), len(cases), size=(4.0, 3.2))
    for ci, case in enumerate(cases):
        for j, (t, label) in enumerate(size_targets):
            ax = axes[ci * len(size_targets) + j]
            ti = targets.index(t)
            for mi, m in enumerate(all_methods):
                y = a["width"][ci, :, mi, ti]
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

    M = int(s["sbc_n_draws"])
    d = a["sbc_ranks_nuts"].shape[1]
    fig, axes = new_figure(d, len(BAYES_METHODS), size=(3.6, 2.8))
    for i, m in enumerate(BAYES_METHODS):
        ranks = a[f"sbc_ranks_{m}"]
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
                f"{METHOD_LABELS[m]} theta[{j}]: chi2 p={test.chi2_pvalue[j]:.2g}, "
                f"KS p={test.ks_pvalue[j]:.2g}",
                fontsize="x-small",
            )
            ax.set_xlabel(f"rank among {M} draws")
    paths.append(save_figure(fig, out_dir / "sbc_ranks.png"))

    paths.append(confidence_sets_tables(out_dir, a, s, doc["config"]))
    return paths


def confidence_sets_tables(out_dir: Path, a: dict, s: dict, config: dict) -> Path:
    from ..plots import markdown_table  # lazy: plots imports matplotlib

    cases, methods, targets = s["cases"], s["methods"], s["targets"]
    levels, ns = a["levels"], a["sample_sizes"]
    i95 = int(np.flatnonzero(np.isclose(levels, 0.95))[0])
    R = s["replications"]
    lines = [
        f"# confidence_sets: coverage tables ({R} replications per row)\n",
        "Coverage at nominal 95% with exact (Clopper-Pearson) 95% binomial bands in brackets. "
        "`theta`: joint set (chi2_d radius for Wald/LR, HPD for the posteriors). `nu cell`: the "
        f"response probability at (h,s,a,b) = {tuple(s['chosen_cell'])}. `nu avg` / `nu worst`: "
        "the mean / minimum over all cells of the per-cell coverage (not a binomial count: no "
        "band). `value`: the leader value of the fixed policy. Frequentist intervals for scalar "
        "targets are projections of the chi2_1-radius set (profile-likelihood for LR); "
        f"`LR (paper radius)` is the joint set with the finite-sample radius at nominal "
        f"{1 - config['theory_delta']:.2f}.\n",
    ]
    for t in ("theta", "nu_cell", "nu_avg", "nu_worst", "value"):
        ti = targets.index(t)
        headers = ["case", "n", *[METHOD_LABELS[m] for m in methods], METHOD_LABELS["lr_theory"]]
        rows = []
        for ci, case in enumerate(cases):
            for ni, n in enumerate(ns):
                row = [case, int(n)]
                for mi in range(len(methods)):
                    row.append(
                        fmt_coverage(
                            a["coverage"][ci, ni, mi, ti, i95],
                            a["coverage_lo"][ci, ni, mi, ti, i95],
                            a["coverage_hi"][ci, ni, mi, ti, i95],
                        )
                    )
                row.append(
                    fmt_coverage(
                        a["coverage_theory"][ci, ni, ti],
                        a["coverage_theory_lo"][ci, ni, ti],
                        a["coverage_theory_hi"][ci, ni, ti],
                    )
                )
                rows.append(row)
        lines += [f"\n## Coverage of {TARGET_LABELS[t]} at 95%\n", markdown_table(headers, rows)]
    # calibration across levels at the largest n (theta and value)
    for t in ("theta", "value"):
        ti = targets.index(t)
        headers = ["case", "method", *[f"{lv:g}" for lv in levels]]
        rows = [
            [
                case,
                METHOD_LABELS[m],
                *[
                    fmt_coverage(
                        a["coverage"][ci, -1, mi, ti, k],
                        a["coverage_lo"][ci, -1, mi, ti, k],
                        a["coverage_hi"][ci, -1, mi, ti, k],
                    )
                    for k in range(len(levels))
                ],
            ]
            for ci, case in enumerate(cases)
            for mi, m in enumerate(methods)
        ]
        lines += [
            f"\n## Calibration of {TARGET_LABELS[t]} at n = {int(ns[-1])}\n",
            markdown_table(headers, rows),
        ]
    # set sizes
    all_methods = s["all_methods"]
    for t, label in (
        ("theta", "median log volume of the 95% theta set"),
        ("nu_avg", "mean width of the 95% nu intervals"),
        ("value", "mean width of the 95% value interval"),
    ):
        ti = targets.index(t)
        ms = [m for m in all_methods if not (t == "theta" and m == "lr_theory")]
        headers = ["case", "n", *[METHOD_LABELS[m] for m in ms]]
        rows = [
            [case, int(n), *[float(a["width"][ci, ni, all_methods.index(m), ti]) for m in ms]]
            for ci, case in enumerate(cases)
            for ni, n in enumerate(ns)
        ]
        lines += [f"\n## Set size: {label}\n", markdown_table(headers, rows)]
    # diagnostics
    headers = [
        "case",
        "n",
        "MLE converged",
        "LR set unbounded (95%)",
        "NUTS runs with divergences",
        "NUTS median min-ESS",
        "NUTS mean accept",
        "NUTS mean leapfrog steps",
    ]
    rows = [
        [
            case,
            int(n),
            float(a["diag_mle_converged"][ci, ni]),
            float(a["diag_lr_unbounded"][ci, ni]),
            float(a["diag_nuts_divergent_frac"][ci, ni]),
            float(a["diag_nuts_ess_min_median"][ci, ni]),
            float(a["diag_nuts_accept_mean"][ci, ni]),
            float(a["diag_nuts_steps_mean"][ci, ni]),
        ]
        for ci, case in enumerate(cases)
        for ni, n in enumerate(ns)
    ]
    lines += [
        "\n## Diagnostics (fractions of replications unless stated)\n",
        markdown_table(headers, rows),
    ]
    # SBC
    headers = [
        "posterior",
        *[f"theta[{j}] chi2 p / KS p" for j in range(len(a["sbc_chi2_pvalue_nuts"]))],
    ]
    rows = [
        [
            METHOD_LABELS[m],
            *[
                f"{p:.3g} / {q:.3g}"
                for p, q in zip(a[f"sbc_chi2_pvalue_{m}"], a[f"sbc_ks_pvalue_{m}"], strict=True)
            ],
        ]
        for m in BAYES_METHODS
    ]
    lines += [
        f"\n## Simulation-based calibration ({config['sbc_replications']} replications, "
        f"{config['sbc_sample_size']} episodes, {s['sbc_n_draws']} draws kept)\n",
        markdown_table(headers, rows),
        f"\nNUTS (SBC runs): fraction with divergences {s['sbc_nuts_divergent_frac']:.3f}, "
        f"median min-ESS {s['sbc_nuts_ess_min_median']:.0f}.\n",
    ]
    return atomic_write_text(out_dir / "tables.md", "\n".join(lines))


__all__ = [
    "METHOD_COLORS",
    "METHOD_LABELS",
    "TARGET_LABELS",
    "confidence_sets_tables",
    "fmt_coverage",
    "log_n_axis",
    "plot_confidence_sets",
    "read_results",
]
