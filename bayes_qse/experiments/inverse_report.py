"""Summaries, figures and the table of the ``inverse_stackelberg`` experiment.

The rounds a method needs to reach a reference error (:func:`rounds_to_reach`) are read off
its mean error curve by linear interpolation of ``log(mean error)`` against ``log N``
between the two consecutive sizes where the curve crosses the reference (the first
crossing); ``nan`` when the curve stays above it over the sizes run (and ``<= N_min`` is
reported as the smallest size when it starts below).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_write_text

LABELS = {
    "pure": "PURE (bounded V, round robin)",
    "mle": "MLE",
    "bounded": "bounded MLE",
    "laplace": "Laplace post. mean",
    "nuts": "NUTS post. mean",
    "a_two_stage": "A-design, two-stage",
    "d_two_stage": "D-design, two-stage",
    "a_sequential": "A-design, sequential",
    "wu_structured": "Wu et al. structured",
}


def rounds_to_reach(sizes: np.ndarray, mean_error: np.ndarray, target: float) -> float:
    """The ``N`` at which ``mean_error[N]`` (over ``sizes``, increasing) first falls to
    ``target``, interpolating ``log error`` linearly in ``log N`` (module docstring)."""
    sizes = np.asarray(sizes, float)
    e = np.asarray(mean_error, float)
    ok = np.isfinite(e) & (e > 0)
    sizes, e = sizes[ok], e[ok]
    if e.size == 0:
        return float("nan")
    if e[0] <= target:
        return float(sizes[0])
    for j in range(1, e.size):
        if e[j] <= target:
            x0, x1 = np.log(sizes[j - 1]), np.log(sizes[j])
            y0, y1 = np.log(e[j - 1]), np.log(e[j])
            return float(np.exp(x0 + (np.log(target) - y0) * (x1 - x0) / (y1 - y0)))
    return float("nan")


def aggregate_errors(
    error: np.ndarray, sizes: np.ndarray, methods: Sequence[str], reference_rounds: int
) -> dict[str, Any]:
    """From ``error[F, N, S, M]``: the mean and standard error over seeds ``[F, N, M]``, the
    reference error ``[F]`` (PURE's mean error at ``reference_rounds``), and the rounds
    ``[F, M]`` each method needs to reach it (:func:`rounds_to_reach`) with their ratio to
    ``reference_rounds``."""
    count = np.sum(np.isfinite(error), axis=2)
    total = np.where(np.isfinite(error), error, 0.0).sum(axis=2)
    mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    dev = np.where(np.isfinite(error), error - mean[:, :, None], 0.0)
    sd = np.sqrt((dev**2).sum(axis=2) / np.maximum(count - 1, 1))
    se = np.where(count > 1, sd / np.sqrt(np.maximum(count, 1)), np.where(count == 1, 0.0, np.nan))
    ip = list(methods).index("pure")
    ir = int(np.flatnonzero(np.asarray(sizes) == reference_rounds)[0])
    ref = mean[:, ir, ip]
    need = np.full((error.shape[0], len(methods)), np.nan)
    for f in range(error.shape[0]):
        for k in range(len(methods)):
            need[f, k] = rounds_to_reach(sizes, mean[f, :, k], ref[f])
    return {
        "error_mean": mean,
        "error_se": se,
        "reference_error": ref,
        "rounds_needed": need,
        "rounds_ratio": need / reference_rounds,
        "reference_rounds": int(reference_rounds),
    }


def _load(out_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    with np.load(out_dir / "results.npz") as f:
        a = {k: f[k] for k in f.files}
    return a, json.loads((out_dir / "results.json").read_text())["summary"]


def results_table(out_dir: Path) -> str:
    """``table.md``: mean error +- standard error per family, size and method; the rounds to
    PURE's reference error; the designs' predicted against realised squared error."""
    from ..plots import markdown_table  # lazy: matplotlib

    a, s = _load(Path(out_dir))
    methods, fams, sizes = s["methods"], s["families"], a["sizes"]
    S = a["error"].shape[2]
    lines = [
        f"# inverse_stackelberg ({S} seeds)\n",
        "Error of eq. (9e), mean +- standard error over seeds.\n",
    ]
    used = [k for k in range(len(methods)) if np.isfinite(a["error_mean"][..., k]).any()]
    for f, fam in enumerate(fams):
        rows = []
        for n_i, n in enumerate(sizes):
            rows.append(
                [
                    f"{int(n):d}",
                    *[
                        "-"
                        if not np.isfinite(a["error_mean"][f, n_i, k])
                        else f"{a['error_mean'][f, n_i, k]:.4f} +- {a['error_se'][f, n_i, k]:.4f}"
                        for k in used
                    ],
                ]
            )
        lines += [f"\n## {fam}\n", markdown_table(["N", *[methods[k] for k in used]], rows)]
    ref_n = s["reference_rounds"]
    lines.append(f"\n## Rounds to reach PURE's error at N = {ref_n} (ratio to {ref_n})\n")
    rows = [
        [
            fam,
            f"{a['reference_error'][f]:.4f}",
            *[
                "-"
                if not np.isfinite(a["rounds_needed"][f, k])
                else f"{a['rounds_needed'][f, k]:.3g} ({a['rounds_ratio'][f, k]:.2f})"
                for k in used
            ],
        ]
        for f, fam in enumerate(fams)
    ]
    lines.append(markdown_table(["family", "PURE error", *[methods[k] for k in used]], rows))
    lines.append("\n## Predicted vs realised squared error of the MLE (mean over seeds)\n")
    rows = []
    for f, fam in enumerate(fams):
        for n_i, n in enumerate(sizes):
            for k in used:
                p, r = a["predicted_sq"][f, n_i, :, k], a["realised_sq"][f, n_i, :, k]
                if np.isfinite(p).any():
                    rows.append(
                        [
                            fam,
                            f"{int(n):d}",
                            methods[k],
                            f"{np.nanmean(p):.3g}",
                            f"{np.nanmean(r):.3g}",
                            f"{np.nanmean(r) / np.nanmean(p):.2f}",
                        ]
                    )
    lines.append(markdown_table(["family", "N", "data", "predicted", "realised", "ratio"], rows))
    return "\n".join(lines) + "\n"


def figures(out_dir: Path) -> list[Path]:
    """``error_vs_rounds.png`` (a panel per family: mean error against ``N``, bands of
    +- 2 standard errors over seeds) and ``table.md``."""
    from ..plots import new_figure, save_figure  # lazy: matplotlib

    out_dir = Path(out_dir)
    a, s = _load(out_dir)
    methods, fams, sizes = s["methods"], s["families"], a["sizes"]
    paths = [atomic_write_text(out_dir / "table.md", results_table(out_dir))]
    cols = min(3, len(fams))
    rows = -(-len(fams) // cols)
    fig, axes = new_figure(cols, rows, size=(4.2, 3.4))
    for f, fam in enumerate(fams):
        ax = axes[f]
        for k, method in enumerate(methods):
            m, se = a["error_mean"][f, :, k], a["error_se"][f, :, k]
            ok = np.isfinite(m)
            if not ok.any():
                continue
            line = ax.plot(sizes[ok], m[ok], marker="o", ms=3, label=LABELS.get(method, method))
            ax.fill_between(
                sizes[ok],
                np.maximum(m[ok] - 2 * se[ok], 1e-6),
                m[ok] + 2 * se[ok],
                color=line[0].get_color(),
                alpha=0.15,
            )
        ax.axhline(a["reference_error"][f], color="grey", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(fam)
        ax.set_xlabel("rounds N")
        ax.set_ylabel("shift-invariant L1 error")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize="x-small")
    for ax in axes[len(fams) :]:
        ax.set_visible(False)
    paths.append(save_figure(fig, out_dir / "error_vs_rounds.png"))
    return paths


__all__ = ["LABELS", "aggregate_errors", "figures", "results_table", "rounds_to_reach"]
