"""Experiment 5 of docs/math.md §7: regret and set width as the follower's rationality
``eta`` varies over several orders of magnitude, with the same seeds at every ``eta``.

The game is one random linear myopic game (:func:`bayes_qse.games.random_game`); only its
``eta`` changes.  For every ``eta``:

- **regret** (online, docs/math.md §5): each learner of ``learners`` plays ``episodes`` episodes for
  ``seeds`` seeds through :func:`bayes_qse.learners.online.run_online` (the runner of the
  ``online_regret`` experiment); we keep the exact per-episode regret and the size of the
  learner's Laplace / Wald ellipsoid (root total variance) behind each policy;
- **set width** (offline): ``width_replications`` datasets of ``width_sample_size`` episodes
  under a uniform leader policy, and the confidence / credible sets of
  :mod:`bayes_qse.experiments.confidence_sets` (Wald, LR with the chi-square and the paper's
  radius, Laplace, NUTS): the mean width of the 95% intervals of the response probabilities
  and of the leader value, the log volume of the 95% ``theta`` set, and the coverage.

Each part is a unit of :mod:`bayes_qse.experiments.units` (an online unit per ``(eta,
learner)``: the ``online_regret`` ``linear`` game at that ``eta``; a :class:`WidthUnit` per
``eta``), run by :func:`bayes_qse.experiments.executors.run_units`.
Replication ``i`` uses the same key at every ``eta`` (``base_seed + i``), so differences
across ``eta`` are not seed noise.  Large ``eta`` makes the response nearly deterministic:
the softmax saturates, the Fisher information of ``theta`` grows like ``eta^2`` where the
response is not saturated and collapses where it is (the ``kappa`` of logistic bandits).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..io import atomic_write_text
from ..learners.online import LEARNERS
from ..sets import chi2_radius
from . import set_coverage as cs
from .executors import check_executor, run_units
from .online_regret import DEFAULT_CONFIG as ONLINE_DEFAULTS
from .online_units import LEARNER_KEYS, OnlineUnit, learner_settings, make_unit
from .report import METHOD_COLORS
from .store import RunStore
from .units import load_parts

NAME = "rationality_sweep"


DEFAULT_CONFIG: dict[str, Any] = {
    "seeds": 3,
    "base_seed": 0,
    "etas": [0.1, 1.0, 10.0, 100.0],
    "game": dict(cs.DEFAULT_CONFIG["game"]),
    "learners": ["mle-optimistic", "thompson"],
    "episodes": 50,
    "chunk": 25,
    "known_model": True,
    # the online learners' settings are those of the online_regret experiment's defaults
    **{key: ONLINE_DEFAULTS[key] for key in LEARNER_KEYS},
    "width_replications": 100,
    "width_sample_size": 100,
    "levels": [0.8, 0.9, 0.95],
    "n_directions": 32,
    "laplace_draws": 500,
    "nuts_warmup": 150,
    "nuts_samples": 300,
    "theory_delta": 0.05,
}

FULL_CONFIG: dict[str, Any] = {
    **DEFAULT_CONFIG,
    "seeds": 8,
    "etas": [0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0],
    "episodes": 200,
    "chunk": 50,
    "width_replications": 300,
}


def validate_config(config: dict) -> None:
    """Reject configurations the experiment cannot run (naming the key)."""
    if not config["etas"] or min(config["etas"]) <= 0:
        raise ConfigError("config: etas must be a non-empty list of numbers > 0")
    for learner in config["learners"]:
        if learner not in LEARNERS:
            raise ConfigError(f"config: learners has unknown learner {learner!r}")
    if config["episodes"] < 1 or config["episodes"] % min(config["chunk"], config["episodes"]):
        raise ConfigError("config: chunk must divide episodes (both >= 1)")
    if config["width_replications"] < 2 or config["width_sample_size"] < 1:
        raise ConfigError("config: width_replications must be >= 2, width_sample_size >= 1")
    if 0.95 not in config["levels"]:
        raise ConfigError("config: levels must contain 0.95")
    n, key = max(
        (config["episodes"], "episodes"), (config["width_sample_size"], "width_sample_size")
    )
    copies = max(config["seeds"], config["width_replications"])
    cs.check_game_settings(config, n, copies, key)


def width_config(config: dict, eta: float) -> dict:
    """The :mod:`confidence_sets` configuration of the set-width part at ``eta``."""
    return {
        **cs.DEFAULT_CONFIG,
        "seeds": config["width_replications"],
        "base_seed": config["base_seed"],
        "batch_size": config["width_replications"],
        "cases": ["well_specified"],
        "sample_sizes": [config["width_sample_size"]],
        "levels": list(config["levels"]),
        "game": dict(config["game"]),
        "eta": float(eta),
        "prior_scale": config["prior_scale"],
        "theory_delta": config["theory_delta"],
        "n_directions": config["n_directions"],
        "laplace_draws": config["laplace_draws"],
        "nuts_warmup": config["nuts_warmup"],
        "nuts_samples": config["nuts_samples"],
    }


@dataclasses.dataclass(frozen=True)
class WidthUnit:
    """The set-width part at one ``eta`` (:mod:`bayes_qse.experiments.units`): the
    :mod:`set_coverage` batch of :func:`width_config`, saved as the part ``result``."""

    key: str
    eta: float
    config: dict[str, Any] = dataclasses.field(hash=False, compare=False)
    kind = "width"

    def parts(self) -> tuple[str, ...]:
        return ("result",)

    def store_config(self) -> dict[str, Any]:
        return {"unit": self.key, "config": self.config}

    def run(self, store: RunStore, todo: list[str], progress: bool) -> None:
        start = time.perf_counter()
        case = cs.make_case(self.config, "well_specified")
        n = self.config["seeds"]
        arrays = cs.run_batch(self.config, case, 0, self.config["sample_sizes"][0], np.arange(n))
        arrays = {k: v for k, v in arrays.items() if k not in ("mle", "map")}
        arrays["theta_true"] = case["theta_target"]
        arrays["g_true"] = case["g_true"]
        meta = {"kind": self.kind, "eta": self.eta, "seconds": time.perf_counter() - start}
        store.save_unit("result", arrays, meta)


def online_config(config: dict) -> dict:
    """The ``online_regret`` config of the regret part: the sweep's game as that experiment's
    ``linear`` game (the same :func:`~bayes_qse.games.random_game`), its learner settings,
    ``chunk`` and ``known_model``; the leader told rewards in ``[0, 1]``."""
    return {
        **learner_settings(config),
        "chunk": config["chunk"],
        "known_model": config["known_model"],
        "reward_range": [0.0, 1.0],
        "initial_dist": "learned",
        "linear": dict(config["game"]),
    }


def make_units(config: dict) -> tuple[list[WidthUnit], dict[tuple[float, str], OnlineUnit]]:
    """The sweep's units: a :class:`WidthUnit` per ``eta``, and an online unit
    (:func:`bayes_qse.experiments.online_units.make_unit`, the ``linear`` game at that
    ``eta``) per ``(eta, learner)`` with all the seeds (the same seeds at every ``eta``)."""
    seeds = [config["base_seed"] + i for i in range(config["seeds"])]
    widths = [
        WidthUnit(f"width.eta={float(eta)!r}", float(eta), width_config(config, eta))
        for eta in config["etas"]
    ]
    base = online_config(config)
    online = {
        (eta, learner): make_unit(
            base, "linear", learner, config["episodes"], seeds, _FIELDS, eta=eta
        )
        for eta in config["etas"]
        for learner in config["learners"]
    }
    return widths, online


def run(
    config: dict,
    out_dir: Path,
    *,
    progress: bool = True,
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
) -> Path:
    """Run (or resume) the sweep into ``out_dir``; returns the ``results.npz`` path.  The
    units (:func:`make_units`) run through :func:`bayes_qse.experiments.executors.run_units`
    (``executor``, ``workers``, ``address`` as there); finished units, and the seeds of an
    online unit already saved (a rerun with more ``--seeds``), are skipped."""
    validate_config(config)
    check_executor(executor, workers, address)
    with RunStore(Path(out_dir), NAME, config) as store:
        widths, online = make_units(config)
        units = [*widths, *online.values()]
        run_units(
            units,
            out_dir,
            executor=executor,
            workers=workers,
            address=address,
            progress=progress,
            desc=NAME,
        )
        return store.write_results("results", aggregate(store, config))


_FIELDS = ("regret", "theta_error", "set_size")


def aggregate(store: RunStore, config: dict) -> dict[str, Any]:
    """Final cumulative regret (mean, standard error) per (eta, learner); set widths, log
    volumes and coverage at 95% per (eta, method); the online set size at the last episode."""
    etas, learners = config["etas"], config["learners"]
    levels = np.asarray(config["levels"])
    i95 = int(np.flatnonzero(np.isclose(levels, 0.95))[0])
    E, L = len(etas), len(learners)
    final = np.full((E, L, config["seeds"]), np.nan)
    curves = np.full((E, L, config["episodes"]), np.nan)
    online_size = np.full((E, L), np.nan)
    widths, online = make_units(config)
    for ei, eta in enumerate(etas):
        for li, learner in enumerate(learners):
            parts = load_parts(store.out_dir, online[eta, learner])
            a = {f: np.stack([p[f] for p, _ in parts]) for f in _FIELDS}
            cum = np.cumsum(a["regret"], axis=1)
            final[ei, li] = cum[:, -1]
            curves[ei, li] = cum.mean(axis=0)
            online_size[ei, li] = a["set_size"][:, -1].mean()
    methods = cs.METHODS
    width_nu = np.full((E, len(methods)), np.nan)
    width_value = np.full((E, len(methods)), np.nan)
    logvol = np.full((E, len(methods)), np.nan)
    coverage_theta = np.full((E, len(methods)), np.nan)
    coverage_value = np.full((E, len(methods)), np.nan)
    mle_converged = np.full(E, np.nan)

    for ei, unit in enumerate(widths):
        a, _ = load_parts(store.out_dir, unit)[0]
        G = a["g_true"].shape[0] - 1
        d = a["theta_true"].shape[0]
        chi2 = chi2_radius(d, 0.95)
        for mi, m in enumerate(methods):
            w = a[f"width_{m}"][:, 0 if m == "lr_theory" else i95]
            c = a[f"cover_{m}"][:, 0 if m == "lr_theory" else i95]
            width_nu[ei, mi] = w[:, :G].mean()
            width_value[ei, mi] = w[:, G].mean()
            coverage_value[ei, mi] = c[:, G].mean()
            if m != "lr_theory":
                logvol[ei, mi] = np.median(a[f"logvol_{m}"])
        coverage_theta[ei] = [
            (a["stat_wald"] <= chi2).mean(),
            (a["stat_lr"] <= chi2).mean(),
            np.nan,
            (a["stat_laplace"] <= chi2).mean(),
            a["cover_theta_nuts"][:, i95].mean(),
        ]
        mle_converged[ei] = a["mle_converged"].mean()
    n_seeds = config["seeds"]
    return {
        "etas": np.asarray(etas, float),
        "learners": list(learners),
        "methods": list(methods),
        "final_regret": final,
        "final_regret_mean": final.mean(axis=-1),
        "final_regret_se": final.std(axis=-1, ddof=1) / np.sqrt(n_seeds)
        if n_seeds > 1
        else np.zeros((E, L)),
        "mean_cumulative_regret": curves,
        "online_set_size_final": online_size,
        "width_nu": width_nu,
        "width_value": width_value,
        "logvol_theta": logvol,
        "coverage_theta": coverage_theta,
        "coverage_value": coverage_value,
        "mle_converged": mle_converged,
        "width_replications": config["width_replications"],
    }


def plot(out_dir: Path) -> list[Path]:
    """Final regret vs ``eta`` per learner, set widths vs ``eta`` per method, regret curves,
    and ``table.md``."""
    from ..plots import markdown_table, new_figure, save_figure  # lazy: matplotlib

    out_dir = Path(out_dir)
    with np.load(out_dir / "results.npz") as f:
        a = {k: f[k] for k in f.files}
    doc = json.loads((out_dir / "results.json").read_text())
    s = doc["summary"]
    etas, learners, methods = a["etas"], s["learners"], s["methods"]
    labels = {
        "wald": "Wald",
        "lr": "LR (chi2)",
        "lr_theory": "LR (paper radius)",
        "laplace": "Laplace",
        "nuts": "NUTS",
    }
    paths = []

    fig, axes = new_figure(3, 1, size=(4.3, 3.4))
    for li, learner in enumerate(learners):
        m, se = a["final_regret_mean"][:, li], a["final_regret_se"][:, li]
        axes[0].errorbar(etas, m, yerr=se, fmt="o-", capsize=3, label=learner)
        axes[1].plot(etas, a["online_set_size_final"][:, li], "o-", label=learner)
    axes[0].set_title(f"cumulative regret after {a['mean_cumulative_regret'].shape[-1]} episodes")
    axes[1].set_title("learner's ellipsoid size at the end (root total var.)")
    for mi, m in enumerate(methods):
        axes[2].plot(etas, a["width_nu"][:, mi], "o-", color=METHOD_COLORS[m], label=labels[m])
    axes[2].set_title("mean width of 95% nu intervals (offline)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("eta (rationality)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    axes[1].set_yscale("log")
    axes[2].set_yscale("log")
    paths.append(save_figure(fig, out_dir / "sweep.png"))

    fig, axes = new_figure(len(learners), 1, size=(4.0, 3.2))
    T = a["mean_cumulative_regret"].shape[-1]
    for li, learner in enumerate(learners):
        for ei, eta in enumerate(etas):
            axes[li].plot(
                np.arange(1, T + 1), a["mean_cumulative_regret"][ei, li], label=f"eta={eta:g}"
            )
        axes[li].set_title(learner)
        axes[li].set_xlabel("episode")
        axes[li].set_ylabel("mean cumulative regret")
        axes[li].grid(alpha=0.3)
        axes[li].legend(fontsize="x-small")
    paths.append(save_figure(fig, out_dir / "regret_curves.png"))

    n_seeds = a["final_regret"].shape[-1]
    R = s["width_replications"]
    lines = [
        "# rationality_sweep\n",
        f"Cumulative regret after {T} episodes (mean +/- standard error over {n_seeds} seeds; "
        "the same seeds at every eta).\n",
        markdown_table(
            ["eta", *learners],
            [
                [
                    f"{eta:g}",
                    *[
                        f"{a['final_regret_mean'][ei, li]:.3g} +/- "
                        f"{a['final_regret_se'][ei, li]:.2g}"
                        for li in range(len(learners))
                    ],
                ]
                for ei, eta in enumerate(etas)
            ],
        ),
        f"\nSet sizes at 95% ({R} datasets per eta): mean width of the response-probability "
        "intervals / of the value interval, median log volume of the theta set, and coverage "
        "of theta / of the value.\n",
    ]
    rows = []
    for ei, eta in enumerate(etas):
        for mi, m in enumerate(methods):
            values = [a[k][ei, mi] for k in ("width_nu", "width_value", "logvol_theta")]
            values += [a[k][ei, mi] for k in ("coverage_theta", "coverage_value")]
            rows.append([f"{eta:g}", labels[m], *[float(v) for v in values]])
    lines.append(
        markdown_table(
            [
                "eta",
                "method",
                "nu width",
                "value width",
                "log vol theta",
                "cover theta",
                "cover value",
            ],
            rows,
        )
    )
    lines.append(
        "\nMLE converged (fraction of datasets): "
        + ", ".join(
            f"eta={eta:g}: {c:.3f}" for eta, c in zip(etas, a["mle_converged"], strict=True)
        )
        + "\n"
    )
    paths.append(atomic_write_text(out_dir / "table.md", "\n".join(lines)))
    return paths


__all__ = [
    "DEFAULT_CONFIG",
    "FULL_CONFIG",
    "NAME",
    "WidthUnit",
    "aggregate",
    "make_units",
    "online_config",
    "plot",
    "run",
    "validate_config",
    "width_config",
]
