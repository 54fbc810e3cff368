"""Security games against a SUQR attacker (docs/math.md eq. 7, eq. 8; §7).

Each seed draws a security game (``payoffs``: ``uniform`` or ``covariance``) whose attacker
follows SUQR with the weights attributed to Nguyen et al. 2013 (``NGUYEN2013_WEIGHTS``,
unverified), and runs three studies:

1. **Sample efficiency.**  ``n`` attacks, each under its own random commitment (a flat
   Dirichlet share of the budget): the MLE and the posterior mean of the weights, their error
   ``|w_hat - w*|``, the defender's utility loss ``U(c*; w*) - U(c(w_hat); w*)`` of planning on
   them, and whether the ``wald_level`` Wald set holds ``w*``.
2. **Online.**  The repeated game (:mod:`bayes_qse.security.online`): per-round regret of the
   greedy, Thompson and optimistic defenders.
3. **Planning with few data.**  From ``n`` historical attacks, the defender plans on the
   posterior with the quantile rule (eq. 8e, level ``quantile_level``) or on the point
   estimate (posterior mean); we record the true utility loss of each plan.

All utilities are exact (eq. 8b) on the true weights.  One unit of
:mod:`bayes_qse.experiments.units` per seed (:class:`SecurityUnit`), run by
:func:`bayes_qse.experiments.executors.run_units` (one process, a process pool or Ray;
resumable, a seed's numbers the same whichever executor ran it).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ..errors import ConfigError
from ..io import atomic_write_text
from ..progress import stage_printer
from ..security import (
    defender_utility,
    fit_suqr_mle,
    plan_coverage,
    random_coverages,
    simulate_attacks,
    suqr_posterior,
)
from ..security.inference import AttackData
from ..security.online import SECURITY_LEARNERS, SecurityLearnerConfig, run_security_online
from ..sets import wald_ellipsoid
from .config import ExperimentConfig, Table
from .executors import experiment_run
from .games import make_game
from .store import RunStore
from .units import RESULT, OnePartUnit, UnitParts

NAME = "security_games"


@dataclasses.dataclass(frozen=True)
class SecurityGamesConfig(ExperimentConfig):
    """The ``security_games`` config (one field per TOML key; the CI-sized defaults), checked
    when made: a one-line :class:`ConfigError` naming the key, before anything is built."""

    seeds: int = 2
    base_seed: int = 0
    payoffs: str = "uniform"
    correlation: float = -0.5
    n_targets: int = 5
    resources: float = 2.0
    sample_sizes: tuple[int, ...] = (20, 80, 320)
    posterior: str = "laplace"
    num_samples: int = 200
    num_warmup: int = 200
    prior_scale: float = 10.0
    wald_level: float = 0.9
    plan_starts: int = 4
    plan_steps: int = 150
    rounds: int = 30
    learners: tuple[str, ...] = tuple(SECURITY_LEARNERS)
    # the repeated game's learners' settings ([learner] in TOML): every SecurityLearnerConfig
    # field but prior_scale, which is the experiment's one prior (every study's)
    learner: Table = Table(
        num_draws=16,
        n_starts=2,
        steps=60,
        optimism_level=1.0,
        learning_rate=0.05,
        newton_steps=20,
    )
    planning_sizes: tuple[int, ...] = (10, 40)
    quantile_level: float = 0.1

    def check(self, config: dict[str, Any]) -> None:
        """Reject configurations the experiment cannot run (naming the key)."""
        if config["payoffs"] not in ("uniform", "covariance"):
            raise ConfigError("config: payoffs must be 'uniform' or 'covariance'")
        if config["posterior"] not in ("laplace", "nuts"):
            raise ConfigError("config: posterior must be 'laplace' or 'nuts'")
        if not 2 <= config["n_targets"] <= 100:
            raise ConfigError("config: n_targets must be in [2, 100]")
        if not 0 < config["resources"] <= config["n_targets"]:
            raise ConfigError("config: resources must be in (0, n_targets]")
        for key in ("sample_sizes", "planning_sizes"):
            if not config[key] or min(config[key]) < 1:
                raise ConfigError(f"config: {key} must be a non-empty list of integers >= 1")
        for key in ("num_samples", "plan_starts", "plan_steps", "rounds"):
            if config[key] < 1:
                raise ConfigError(f"config: {key} must be >= 1")
        unknown = set(config["learners"]) - set(SECURITY_LEARNERS)
        if unknown or not config["learners"]:
            raise ConfigError(
                f"config: learners must be a non-empty subset of {list(SECURITY_LEARNERS)}"
            )
        for key in ("wald_level", "quantile_level"):
            if not 0 < config[key] < 1:
                raise ConfigError(f"config: {key} must be in (0, 1)")
        if not -1 <= config["correlation"] <= 1:
            raise ConfigError("config: correlation must be in [-1, 1]")
        if config["prior_scale"] <= 0:
            raise ConfigError("config: prior_scale must be > 0")
        online_settings(config)


#: The experiment's config type (the experiment interface, :mod:`bayes_qse.experiments`).
Config = SecurityGamesConfig

#: The published form of the CI-sized defaults.
DEFAULT_CONFIG = SecurityGamesConfig.defaults()

#: ``--full``: 8 targets, 10 seeds, attacks 25 .. 800, 150 online rounds.
FULL_CONFIG = SecurityGamesConfig.preset(
    seeds=10,
    n_targets=8,
    resources=3.0,
    sample_sizes=[25, 50, 100, 200, 400, 800],
    rounds=150,
    planning_sizes=[10, 25, 50, 100],
)


def online_settings(config: dict) -> SecurityLearnerConfig:
    """The repeated game's learner settings of a config: its ``learner`` table, with the
    experiment's ``prior_scale`` (every field is reachable).

    Raises:
        ConfigError: a bad value, naming ``learner.<field>`` (``prior_scale``).
    """
    values = {"prior_scale": config["prior_scale"], **config.get("learner", {})}
    try:
        return SecurityLearnerConfig.from_mapping(values)
    except ConfigError as exc:
        where = "" if str(exc).startswith("prior_scale") else "learner."
        raise ConfigError(f"config: {where}{exc}") from None


def seed_game(config: dict, seed: int):
    """The seed's game: :func:`bayes_qse.experiments.games.make_game` of kind
    ``security-<payoffs>`` (payoffs drawn with ``seed``; attacker weights the published ones)."""
    table = {"n_targets": config["n_targets"], "resources": config["resources"], "seed": seed}
    if config["payoffs"] == "covariance":
        table["correlation"] = config["correlation"]
    return make_game(f"security-{config['payoffs']}", table, where="")


def _true_utility(game, plan_or_cov) -> float:
    cov = getattr(plan_or_cov, "coverage", plan_or_cov)
    return float(defender_utility(game.theta, game, np.asarray(cov)))


def _prefix(data: AttackData, n: int) -> AttackData:
    """The first ``n`` attacks, padded with zero rows to the full size (one compile)."""
    counts = np.asarray(data.counts).copy()
    counts[n:] = 0.0
    return AttackData(np.asarray(data.coverage), counts)


def _posterior(game, data, config, seed):
    return suqr_posterior(
        game,
        data,
        method=config["posterior"],
        prior_scale=config["prior_scale"],
        num_samples=config["num_samples"],
        num_warmup=config["num_warmup"],
        seed=seed,
    )


def _plan(game, thetas, config, **kw):
    return plan_coverage(
        game, thetas, n_starts=config["plan_starts"], steps=config["plan_steps"], **kw
    )


def run_seed(
    config: dict, seed: int, say: Callable[[str], None] | None = None
) -> dict[str, np.ndarray]:
    """All three studies on the seed's game; arrays keyed by study.  ``say``: called with a
    stage line before each long step (:func:`bayes_qse.progress.stage_printer`)."""
    say = say or (lambda text: None)
    say("the game's optimal coverage (compiling the planner)")
    game = seed_game(config, seed)
    w_true = np.asarray(game.theta)
    oracle = plan_coverage(game, game.theta)  # certified: the regret's reference
    best = oracle.value
    key = jax.random.PRNGKey(seed)
    k_cov, k_att, k_cov2, k_att2 = jax.random.split(key, 4)
    T, m = config["n_targets"], config["resources"]
    out: dict[str, list] = {k: [] for k in ("err_mle", "err_mean", "loss_mle", "loss_mean")}
    out |= {"wald_covers": [], "mle_converged": []}
    n_max = max(config["sample_sizes"])
    full = simulate_attacks(k_att, game, game.theta, random_coverages(k_cov, T, m, n_max))
    for k, n in enumerate(config["sample_sizes"]):
        say(f"estimation study, {n} attacks ({k + 1}/{len(config['sample_sizes'])})")
        data = _prefix(full, n)
        fit = fit_suqr_mle(game, data)
        post = _posterior(game, data, config, seed)
        for name, w in (("mle", fit.theta), ("mean", post.mean)):
            out[f"err_{name}"].append(float(np.linalg.norm(w - w_true)))
            out[f"loss_{name}"].append(best - _true_utility(game, _plan(game, w, config)))
        out["wald_covers"].append(bool(wald_ellipsoid(fit, config["wald_level"]).contains(w_true)))
        out["mle_converged"].append(fit.converged)

    settings = online_settings(config)
    regret = []
    for k, learner in enumerate(config["learners"]):
        say(f"online {learner}, {config['rounds']} rounds ({k + 1}/{len(config['learners'])})")
        regret.append(
            run_security_online(game, learner, config["rounds"], seed, settings, best).regret
        )

    p_max = max(config["planning_sizes"])
    hist = simulate_attacks(k_att2, game, game.theta, random_coverages(k_cov2, T, m, p_max))
    loss_q, loss_point, loss_bayes, gap_q, gap_bayes = [], [], [], [], []
    for k, n in enumerate(config["planning_sizes"]):
        say(f"planning study, {n} attacks ({k + 1}/{len(config['planning_sizes'])})")
        post = _posterior(game, _prefix(hist, n), config, seed)
        q = _plan(game, post.theta, config, rule="quantile", level=config["quantile_level"])
        bayes = _plan(game, post.theta, config)
        loss_q.append(best - _true_utility(game, q))
        loss_point.append(best - _true_utility(game, _plan(game, post.mean, config)))
        loss_bayes.append(best - _true_utility(game, bayes))
        gap_q.append(q.relative_gap)
        gap_bayes.append(bayes.relative_gap)
    arrays = {k: np.asarray(v) for k, v in out.items()}
    return arrays | {
        "regret": np.asarray(regret),
        "plan_loss_quantile": np.asarray(loss_q),
        "plan_loss_point": np.asarray(loss_point),
        "plan_loss_bayes": np.asarray(loss_bayes),
        "plan_gap_quantile": np.asarray(gap_q),
        "plan_gap_bayes": np.asarray(gap_bayes),
        "best_value": np.asarray([best]),
        "best_upper_bound": np.asarray([oracle.upper_bound]),
        "best_relative_gap": np.asarray([oracle.relative_gap]),
    }


@dataclasses.dataclass(frozen=True)
class SecurityUnit(OnePartUnit):
    """One seed of the experiment (:mod:`bayes_qse.experiments.units`): the three studies of
    :func:`run_seed`, saved as the part ``result``."""

    key: str
    seed: int
    config: dict[str, Any] = dataclasses.field(hash=False, compare=False)
    kind = "security"
    # what the seed's results depend on: the settings less the seed list, and its seed
    unbound = ("seeds", "base_seed")
    bound = ("seed",)

    def run(self, store: RunStore, todo: list[str], progress: bool) -> None:
        say = stage_printer(f"{NAME} seed {self.seed}", progress)
        store.save_unit(RESULT, run_seed(self.config, self.seed, say), {"seed": self.seed})


def make_units(config: dict) -> list[SecurityUnit]:
    """A unit per seed (``base_seed``, ``base_seed + 1``, ...)."""
    seeds = [config["base_seed"] + i for i in range(config["seeds"])]
    return [SecurityUnit(f"seed{s}", s, config) for s in seeds]


#: Run (or resume) the experiment (:func:`~.executors.run_experiment_module`).
run = experiment_run(__name__)


def write_results(
    store: RunStore,
    config: dict,
    units: list[SecurityUnit],
    loaded: Mapping[str, UnitParts],
) -> Path:
    """Write ``results.npz`` / ``results.json`` (every seed's arrays stacked, and the Wald
    coverage per sample size) from the units' parts (``loaded``, by key); returns the
    ``.npz`` path."""
    results = [loaded[unit.key][0][0] for unit in units]
    stacked = {k: np.stack([r[k] for r in results]) for k in results[0]}
    summary = {
        "sample_sizes": list(config["sample_sizes"]),
        "planning_sizes": list(config["planning_sizes"]),
        "learners": list(config["learners"]),
        "wald_coverage": np.mean(stacked["wald_covers"], axis=0).tolist(),
    }
    return store.write_results("results", {**stacked, **summary})


def _mean_se(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = x.shape[0]
    se = x.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(x.shape[1:])
    return x.mean(axis=0), se


def table(out_dir: Path) -> str:
    """``table.md``: the three studies as markdown tables (mean +- standard error over seeds)."""
    from ..plots import markdown_table  # lazy: report code loads matplotlib

    out_dir = Path(out_dir)
    doc = json.loads((out_dir / "results.json").read_text())["summary"]
    with np.load(out_dir / "results.npz") as f:
        a = {k: f[k] for k in f.files}
    S = a["err_mle"].shape[0]

    def fmt(x):
        m, se = _mean_se(x)
        m, se = np.atleast_1d(m), np.atleast_1d(se)
        return [f"{mi:.3f} ± {si:.3f}" for mi, si in zip(m, se, strict=True)]

    cols = [fmt(a[k]) for k in ("err_mle", "err_mean", "loss_mle", "loss_mean")]
    cov = np.mean(a["wald_covers"], axis=0)
    conv = np.mean(a["mle_converged"], axis=0)
    rows = [
        [n, *(c[i] for c in cols), f"{cov[i]:.2f}", f"{conv[i]:.2f}"]
        for i, n in enumerate(doc["sample_sizes"])
    ]
    text = f"# Security games ({S} seeds)\n\n## 1. Sample efficiency\n\n"
    text += markdown_table(
        [
            "attacks",
            "error MLE",
            "error post. mean",
            "loss MLE",
            "loss post. mean",
            "Wald coverage",
            "MLE converged",
        ],
        rows,
    )
    cum = np.cumsum(a["regret"], axis=-1)[..., -1]  # [S, L]
    m, se = _mean_se(cum)
    text += "\n\n## 2. Online: cumulative regret after the last round\n\n"
    text += markdown_table(
        ["defender", "cumulative regret"],
        [[lname, f"{m[i]:.3f} ± {se[i]:.3f}"] for i, lname in enumerate(doc["learners"])],
    )
    text += "\n\n## 3. Planning with few data: true utility loss of the plan\n\n"
    q, p, b = (fmt(a[f"plan_loss_{k}"]) for k in ("quantile", "point", "bayes"))
    worst = {k: np.max(a[f"plan_loss_{k}"], axis=0) for k in ("quantile", "point")}
    rows = [
        [n, q[i], p[i], b[i], f"{worst['quantile'][i]:.3f}", f"{worst['point'][i]:.3f}"]
        for i, n in enumerate(doc["planning_sizes"])
    ]
    text += markdown_table(
        [
            "attacks",
            "quantile rule",
            "point estimate",
            "posterior mean rule",
            "worst seed (quantile)",
            "worst seed (point)",
        ],
        rows,
    )
    worst_gap = float(np.max(a["best_relative_gap"]))
    text += (
        f"\n\nThe reference plan (certified, true weights) has a relative gap of at most "
        f"{worst_gap:.1e} on every seed; losses and regrets are measured against it.\n"
    )
    if "plan_gap_quantile" in a:
        gq, gb = (np.max(a[f"plan_gap_{k}"]) for k in ("quantile", "bayes"))
        text += (
            f"The posterior-rule plans are not certified: the largest relative gap to their "
            f"bound (the rule over the draws' certified bounds) is {gq:.2g} (quantile rule) "
            f"and {gb:.2g} (posterior-mean rule).\n"
        )
    return text + "\n"


def _log_ticks(ax, sizes) -> None:
    """A log x-axis labelled at the sizes only (no overlapping minor labels)."""
    ax.set_xscale("log")
    ax.set_xticks(list(sizes), [str(int(v)) for v in sizes])
    ax.tick_params(axis="x", which="minor", labelbottom=False)


def plot(out_dir: Path) -> list[Path]:
    """``sample_efficiency.png``, ``online_regret.png``, ``planning.png`` and ``table.md``."""
    from ..plots import new_figure, save_figure  # lazy: figures only

    out_dir = Path(out_dir)
    doc = json.loads((out_dir / "results.json").read_text())["summary"]
    with np.load(out_dir / "results.npz") as f:
        a = {k: f[k] for k in f.files}
    paths = [atomic_write_text(out_dir / "table.md", table(out_dir))]
    n = np.asarray(doc["sample_sizes"])
    fig, axes = new_figure(2, 1, size=(5.0, 3.6))
    for ax, stem, label in ((axes[0], "err", "|w_hat - w*|"), (axes[1], "loss", "utility loss")):
        for name in ("mle", "mean"):
            m, se = _mean_se(a[f"{stem}_{name}"])
            ax.errorbar(n, m, yerr=se, marker="o", capsize=3, label=name)
        _log_ticks(ax, n)
        ax.set_xlabel("observed attacks")
        ax.set_ylabel(label)
        ax.legend()
    paths.append(save_figure(fig, out_dir / "sample_efficiency.png"))
    fig, axes = new_figure(1, 1)
    for i, lname in enumerate(doc["learners"]):
        m, _ = _mean_se(np.cumsum(a["regret"][:, i], axis=-1))
        axes[0].plot(np.arange(1, m.shape[0] + 1), m, label=lname)
    axes[0].set_xlabel("round")
    axes[0].set_ylabel("cumulative regret")
    axes[0].legend()
    paths.append(save_figure(fig, out_dir / "online_regret.png"))
    fig, axes = new_figure(1, 1)
    for k in ("quantile", "point", "bayes"):
        m, se = _mean_se(a[f"plan_loss_{k}"])
        axes[0].errorbar(doc["planning_sizes"], m, yerr=se, marker="o", capsize=3, label=k)
    _log_ticks(axes[0], doc["planning_sizes"])
    axes[0].set_xlabel("historical attacks")
    axes[0].set_ylabel("true utility loss")
    axes[0].legend()
    paths.append(save_figure(fig, out_dir / "planning.png"))
    return paths


__all__ = [
    "DEFAULT_CONFIG",
    "online_settings",
    "FULL_CONFIG",
    "SecurityGamesConfig",
    "Config",
    "NAME",
    "SecurityUnit",
    "make_units",
    "seed_game",
    "plot",
    "run",
    "write_results",
    "run_seed",
    "table",
]
