"""Report helpers shared by the experiments' figures and tables (docs/math.md §7): reading a
results directory and the labels and colours of the set methods.

Plotting itself goes through :mod:`bayes_qse.plots` (imported lazily: matplotlib loads only
when a figure is drawn).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError


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
