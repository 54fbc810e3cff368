"""Figures of a gathered sweep: regret curves with bands and the normalised score, per slice.

``plot(out_dir, select)`` narrows the dataset with ``select`` (``{"game": "linear", ...}``,
values as on the command line), then draws one figure per remaining combination of the axes
other than ``learner``: the mean cumulative regret of each learner with its 10-90% band
across seeds, and a bar chart of the normalised score (docs/math.md, "Sweeps").
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..plots import new_figure, regret_curves, save_figure
from .gather import normalised_score, open_results


def parse_select(items: list[str] | None, ds) -> dict[str, Any]:
    """``["game=linear", "eta=2"]`` -> ``{"game": "linear", "eta": 2.0}``, typed like the
    dataset's coordinates; :class:`ConfigError` naming a bad item."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or key not in ds.dims or key == "episode":
            dims = ", ".join(d for d in ds.dims if d != "episode")
            raise ConfigError(f"select: {item!r} must be KEY=VALUE with KEY one of {dims}")
        values = ds[key].values
        try:
            value = values.dtype.type(text) if values.dtype.kind in "iuf" else text
        except ValueError:
            raise ConfigError(f"select: {item!r}: {text!r} is not a number") from None
        if value not in values.tolist():
            raise ConfigError(f"select: {item!r}: {key} has no value {text!r}")
        out[key] = value
    return out


def plot(out_dir: str | Path, select: list[str] | None = None) -> list[Path]:
    """Draw the figures of a sweep directory's slice; returns the PNG paths."""
    out_dir = Path(out_dir)
    ds = open_results(out_dir)
    ds = ds.sel({k: [v] for k, v in parse_select(select, ds).items()})  # keeps every dim
    if ds.attrs.get("kind") == "offline":
        return _plot_offline(ds, out_dir)
    regret = ds["regret"]
    keep = [d for d in regret.dims if d not in ("learner", "seed", "episode") and d in ds.dims]
    paths = []
    for values in itertools.product(*[ds[d].values.tolist() for d in keep]):
        where = dict(zip(keep, values, strict=True))
        part = regret.sel(where)
        T = int(where.get("T", ds["T"].values.max()))
        learners = [str(v) for v in part["learner"].values]
        curves = {
            name: np.cumsum(part.sel(learner=name).values[:, :T], axis=1) for name in learners
        }
        means = {k: float(v[:, -1].mean()) for k, v in curves.items()}
        score = normalised_score(means)
        fig, axes = new_figure(ncols=2, size=(5.2, 4.0))
        regret_curves(axes[0], curves)
        label = ", ".join(f"{k}={v}" for k, v in where.items())
        axes[0].set_title(f"{label}: cumulative regret (10-90% band)", fontsize="small")
        if score:
            names = list(score)
            axes[1].bar(names, [score[k] for k in names])
            axes[1].set_ylabel("(R_uniform - R) / (R_uniform - R_best)")
            axes[1].tick_params(axis="x", labelrotation=45)
        else:
            axes[1].text(0.5, 0.5, "no uniform learner: no score", ha="center")
        axes[1].set_title("normalised score (1 = best, 0 = uniform)", fontsize="small")
        stem = "_".join(f"{k}-{v}" for k, v in where.items()) or "all"
        paths.append(save_figure(fig, out_dir / f"sweep_{stem}.png"))
    return paths


def _plot_offline(ds, out_dir: Path) -> list[Path]:
    """One figure per ``(game, behaviour)``: mean suboptimality against the dataset size, one
    curve per learner, band = mean +/- 2 standard errors over the seeds."""
    paths = []
    sizes = ds["size"].values
    for game, behaviour in itertools.product(ds["game"].values, ds["behaviour"].values):
        part = ds["suboptimality"].sel(game=game, behaviour=behaviour)
        curves = {str(n): part.sel(learner=n).values for n in part["learner"].values}
        fig, axes = new_figure(ncols=1, size=(5.2, 4.0))
        regret_curves(axes[0], curves, band="se", episodes=sizes, ylabel="J(pi*) - J(pi_hat)")
        axes[0].set_xscale("log")
        axes[0].set_xlabel("dataset size N (episodes)")
        axes[0].set_title(f"game={game}, behaviour={behaviour}", fontsize="small")
        paths.append(save_figure(fig, out_dir / f"sweep_game-{game}_behaviour-{behaviour}.png"))
    return paths


__all__ = ["parse_select", "plot"]
