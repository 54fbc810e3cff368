"""Figures and tables of the ``offline_suboptimality`` experiment (its ``plot``), from a
results directory (docs/math.md §7, experiment 2)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_write_text
from .report import read_results


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


__all__ = ["plot"]
