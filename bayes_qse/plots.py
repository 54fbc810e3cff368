"""Shared plotting helpers for the experiments and the demo (docs/math.md §7).

Figures are built with :class:`matplotlib.figure.Figure` directly (no ``pyplot`` state, no
display needed) and saved atomically as PNG by :func:`save_figure`.

- :func:`regret_curves`: mean cumulative regret per algorithm with a band across seeds;
- :func:`loglog_slope` / :func:`loglog_panel`: the growth exponent of regret
  (``regret ~ T^slope``; ``1/2`` for ``sqrt(T)`` regret, ``1`` for linear);
- :func:`posterior_vs_truth`: posterior draws per coordinate of ``theta`` against the truth;
- :func:`markdown_table`: a results table for the docs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .errors import BayesQSEInputError
from .io import atomic_write

#: The quantiles of the default band (10% and 90% across seeds).
BAND_QUANTILES = (0.1, 0.9)


def new_figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (5.0, 3.6)):
    """``(fig, axes)`` with ``size`` per panel; ``axes`` is a flat array of Axes."""
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    return fig, axes


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save ``fig`` as a PNG at ``path`` atomically; returns the path."""
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))


def _curves(curves: Mapping[str, Any]) -> dict[str, np.ndarray]:
    out = {}
    for name, values in curves.items():
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] < 1:
            raise BayesQSEInputError(
                f"curves[{name!r}]: expected shape (seeds, episodes), got {arr.shape}"
            )
        out[name] = arr
    return out


def regret_curves(
    ax: Any,
    curves: Mapping[str, Any],
    *,
    band: str = "quantile",
    episodes: Any = None,
    ylabel: str = "cumulative regret",
) -> None:
    """Plot the mean over seeds of each ``curves[name][seeds, T]`` with a band.

    ``band="quantile"``: the 10%-90% range across seeds; ``band="se"``: mean +/- 2 standard
    errors; ``band="none"``: no band.  ``episodes`` (``[T]``) defaults to ``1..T``.
    """
    if band not in ("quantile", "se", "none"):
        raise BayesQSEInputError(f"band: must be 'quantile', 'se' or 'none', got {band!r}")
    for name, arr in _curves(curves).items():
        t = np.arange(1, arr.shape[1] + 1) if episodes is None else np.asarray(episodes)
        mean = arr.mean(axis=0)
        (line,) = ax.plot(t, mean, label=f"{name} (n={arr.shape[0]})")
        if band == "quantile" and arr.shape[0] > 1:
            lo, hi = np.quantile(arr, BAND_QUANTILES, axis=0)
            ax.fill_between(t, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
        elif band == "se" and arr.shape[0] > 1:
            se = arr.std(axis=0, ddof=1) / np.sqrt(arr.shape[0])
            ax.fill_between(
                t, mean - 2 * se, mean + 2 * se, color=line.get_color(), alpha=0.2, linewidth=0
            )
    ax.set_xlabel("episode")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)


def loglog_slope(y: Any, start_fraction: float = 0.5) -> float:
    """Least-squares slope of ``log y`` against ``log t`` over the last part of ``y[T]``.

    ``t = 1..T``; only ``t >= start_fraction * T`` and ``y > 0`` are used (the early episodes
    are dominated by constants).  ``nan`` when fewer than two points qualify.
    """
    y = np.asarray(y, dtype=np.float64)
    t = np.arange(1, y.size + 1)
    keep = (t >= start_fraction * y.size) & (y > 0) & np.isfinite(y)
    if keep.sum() < 2:
        return float("nan")
    slope, _ = np.polyfit(np.log(t[keep]), np.log(y[keep]), 1)
    return float(slope)


def loglog_panel(
    ax: Any,
    curves: Mapping[str, Any],
    start_fraction: float = 0.5,
    *,
    band: bool = False,
    reference_slope: float | None = None,
) -> dict:
    """Mean curves on log-log axes, labelled with their fitted slope; returns the slopes.

    ``band``: shade the 10%-90% range across seeds.  ``reference_slope``: a dashed line
    ``c t^slope`` (e.g. 0.5 for ``sqrt(t)``) through the largest mean at the start of the fit
    window ``t = start_fraction * T``, for comparison."""
    slopes = {}
    anchor = None
    for name, arr in _curves(curves).items():
        mean = arr.mean(axis=0)
        t = np.arange(1, mean.size + 1)
        slopes[name] = loglog_slope(mean, start_fraction)
        pos = mean > 0
        (line,) = ax.loglog(t[pos], mean[pos], label=f"{name}: slope {slopes[name]:.2f}")
        if band and arr.shape[0] > 1:
            lo, hi = np.quantile(arr, BAND_QUANTILES, axis=0)
            keep = pos & (lo > 0)
            ax.fill_between(
                t[keep], lo[keep], hi[keep], color=line.get_color(), alpha=0.15, linewidth=0
            )
        i = max(int(np.ceil(start_fraction * mean.size)) - 1, 0)
        if mean[i] > 0 and (anchor is None or mean[i] > anchor[1]):
            anchor = (i + 1, mean[i], mean.size)
    if reference_slope is not None and anchor is not None:
        t0, y0, T = anchor
        t = np.array([t0, T], dtype=np.float64)
        ax.loglog(
            t,
            y0 * (t / t0) ** reference_slope,
            "k--",
            linewidth=1,
            label=f"reference: slope {reference_slope:g}",
        )
    ax.set_xlabel("episode (log)")
    ax.set_ylabel("mean cumulative regret (log)")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return slopes


def posterior_vs_truth(
    ax: Any,
    draws: Mapping[str, Any],
    truth: Any,
    *,
    point: Mapping[str, Any] | None = None,
    level: float = 0.9,
    labels: Sequence[str] | None = None,
) -> None:
    """Per coordinate of ``theta``: the central ``level`` interval and median of each set of
    ``draws[name][M, d]``, side by side, with the true value as a black cross and optional point
    estimates ``point[name][d]`` (e.g. the MLE) as open circles.
    """
    truth = np.asarray(truth, dtype=np.float64).ravel()
    d = truth.size
    named = {}
    for name, value in draws.items():
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != d:
            raise BayesQSEInputError(f"draws[{name!r}]: expected shape (M, {d}), got {arr.shape}")
        named[name] = arr
    width = 0.8 / max(len(named), 1)
    x = np.arange(d)
    alpha = (1 - level) / 2
    for i, (name, arr) in enumerate(named.items()):
        offset = (i - (len(named) - 1) / 2) * width
        lo, med, hi = np.quantile(arr, [alpha, 0.5, 1 - alpha], axis=0)
        ax.errorbar(
            x + offset,
            med,
            yerr=[med - lo, hi - med],
            fmt="o",
            capsize=3,
            label=f"{name} ({level:.0%} interval)",
        )
    for name, value in (point or {}).items():
        ax.plot(x, np.asarray(value).ravel(), "o", mfc="none", ms=9, label=name)
    ax.plot(x, truth, "kx", ms=9, mew=2, label="truth")
    ax.set_xticks(x, labels if labels is not None else [f"theta[{j}]" for j in range(d)])
    ax.set_ylabel("value")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 3) -> str:
    """A GitHub-markdown table; floats are printed with ``digits`` significant digits."""

    def fmt(v: Any) -> str:
        if isinstance(v, float | np.floating):
            return f"{v:.{digits}g}"
        return str(v)

    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


__all__ = [
    "BAND_QUANTILES",
    "loglog_panel",
    "loglog_slope",
    "markdown_table",
    "new_figure",
    "posterior_vs_truth",
    "regret_curves",
    "save_figure",
]
