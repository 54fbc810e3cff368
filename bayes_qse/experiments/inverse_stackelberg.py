"""Inverse Stackelberg: learning a quantal follower's utilities from play in normal-form
commitment games (docs/math.md eq. 9-10), against PURE (Wu, Shen, Fang & Xu, NeurIPS 2022).

For every game family (Wu et al.'s ``m x n`` games ``V = alpha I + (1 - alpha) R`` at each
``alpha`` of ``alphas``, and their ``security_targets``-target security game), seed and
number of rounds ``N`` of ``sizes``, the error of eq. (9e) (the shift-invariant L1 distance
between the estimated and the true ``V``) of each method:

- on PURE's round-robin data: ``pure`` (PURE's estimator, the MLE over ``0 <= V <= 1``),
  ``mle`` (:func:`bayes_qse.fit_mle`), ``bounded`` (the bounded MLE, ``|theta| <= 1`` in the
  reference coding, the box ``0 <= V <= 1`` implies), ``laplace`` and ``nuts`` (posterior
  means, prior ``N(0, prior_scale^2)``; NUTS only at ``N <= nuts_max_rounds``);
- on designed data (:mod:`bayes_qse.collection`), the Laplace posterior mean: ``a_two_stage``,
  ``d_two_stage`` (a ``pilot`` round-robin fraction, then the A- / D-optimal design at the
  pilot's estimate) and ``a_sequential`` (``batches`` Bayesian A-designs from the current
  posterior), over the pure strategies and the two-action mixtures ``(1 - t) e_i + t e_j``;
- on the security game, also ``wu_structured``: Wu et al.'s structured estimator (the MLE of
  ``(w, c)`` over ``0 <= diag(w) + 1 c^T <= 1`` from the response frequencies of each
  commitment, as in their ``pure_sec.py``), re-implemented with SciPy as the comparator;
  there the library's fits use the structured features (``d = 2 T - 1``).

Each design (and the round robin, under ``laplace``) also records the predicted squared error
``tr(A (N M(w; theta*))^{-1})`` of its realised allocation (eq. 10a-10b, ``A``:
:func:`~bayes_qse.collection.utility_weights`) next to the realised
``(theta_hat - theta*)' A (theta_hat - theta*)`` of the MLE on its data, and ``oracle_sq``: the
prediction of the A-optimal design at the true ``theta*`` (what no data-driven design can beat
asymptotically).

One unit per ``(family, N)`` with one part per seed (:mod:`bayes_qse.experiments.units`);
seed ``s`` draws the game ``s`` of the family (the same game at every ``N``) and the data of
each method from ``SeedSequence([s, N, method])``.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import LinearConstraint, minimize
from scipy.special import logsumexp

from ..collection import (
    collect_round_robin,
    collect_sequential,
    collect_two_stage,
    utility_weights,
)
from ..design import information, mixture_candidates, optimal_design, response_jacobians
from ..errors import ConfigError
from ..inference import fit_mle, sample_posterior
from ..normal_form import (
    normal_form_game,
    pure_estimate,
    shift_invariant_l1,
)
from .config import ExperimentConfig
from .executors import experiment_run
from .games import make_game
from .inverse_report import aggregate_errors, figures
from .store import RunStore
from .units import UnitParts

NAME = "inverse_stackelberg"
ROUND_ROBIN_METHODS = ("pure", "mle", "bounded", "laplace", "nuts")
DESIGN_METHODS = ("a_two_stage", "d_two_stage", "a_sequential", "a_two_stage_bounded_v")
SECURITY_METHODS = ("wu_structured", "structured_bounded_v")
INVERSE_METHODS = ROUND_ROBIN_METHODS + DESIGN_METHODS + SECURITY_METHODS
#: Bytes the design's response Jacobians (candidates x n x d, and draws) may take.
MEMORY_LIMIT = 2 * 10**9


@dataclasses.dataclass(frozen=True)
class InverseStackelbergConfig(ExperimentConfig):
    """The ``inverse_stackelberg`` config (one field per TOML key; the CI-sized defaults),
    checked when made: a one-line :class:`ConfigError` naming the key, sizes against memory,
    before anything is built."""

    seeds: int = 2
    base_seed: int = 0
    m: int = 4
    n: int = 4
    eta: float = 8.0
    alphas: tuple[float, ...] = (0.2, 0.8)
    security_targets: int = 4
    sizes: tuple[int, ...] = (100, 1000)
    methods: tuple[str, ...] = tuple(INVERSE_METHODS)
    prior_scale: float = 1.0
    nuts_max_rounds: int = 100
    nuts_families: tuple[str, ...] = ("wu.alpha=0.2", "security")
    nuts_warmup: int = 100
    nuts_samples: int = 100
    t_grid: tuple[float, ...] = (0.25, 0.5, 0.75)
    pilot: float = 0.2
    batches: int = 2
    draws: int = 2
    design_tol: float = 1e-2
    reference_rounds: int = 1000

    def check(self, config: dict[str, Any]) -> None:
        """Reject configurations the experiment cannot run (naming the key)."""
        if not 2 <= config["m"] <= 100 or not 2 <= config["n"] <= 100:
            raise ConfigError("config: m and n must be in [2, 100]")
        K = config["m"] + len(config["t_grid"]) * config["m"] * (config["m"] - 1) // 2
        need = 8 * K * config["n"] * config["m"] * (config["n"] - 1) * (1 + config["draws"])
        if need > MEMORY_LIMIT:
            raise ConfigError(
                f"config: m, n: the design's {K} candidates need {need / 1e9:.1f} GB of "
                f"response Jacobians (memory limit {MEMORY_LIMIT / 1e9:.0f} GB); use smaller games "
                "or fewer t_grid values"
            )
        if config["eta"] <= 0:
            raise ConfigError("config: eta must be > 0")
        if any(not 0 <= a <= 1 for a in config["alphas"]):
            raise ConfigError("config: alphas must lie in [0, 1]")
        if not config["alphas"] and config["security_targets"] == 0:
            raise ConfigError("config: alphas is empty and security_targets is 0: nothing to run")
        if config["security_targets"] != 0 and not 3 <= config["security_targets"] <= 100:
            raise ConfigError(
                "config: security_targets must be 0 (none) or in [3, 100] (with 2 targets the "
                "round robin does not identify the structured utilities)"
            )
        if not config["sizes"] or min(config["sizes"]) < 10:
            raise ConfigError("config: sizes must be a non-empty list of integers >= 10")
        if config["reference_rounds"] not in config["sizes"]:
            raise ConfigError("config: reference_rounds must be one of sizes")
        unknown = set(config["methods"]) - set(INVERSE_METHODS)
        if unknown or "pure" not in config["methods"]:
            raise ConfigError(
                f"config: methods must include 'pure' and lie in {list(INVERSE_METHODS)}"
            )
        if "a_two_stage_bounded_v" in config["methods"] and "a_two_stage" not in config["methods"]:
            raise ConfigError("config: methods: a_two_stage_bounded_v needs a_two_stage (its data)")
        keys = [family_key(f, a) for f, a in families(config)]
        if any(k not in keys for k in config["nuts_families"]):
            raise ConfigError(f"config: nuts_families must be among {keys}")
        if config["prior_scale"] <= 0:
            raise ConfigError("config: prior_scale must be > 0")
        if not 0 < config["pilot"] < 1:
            raise ConfigError("config: pilot must be in (0, 1)")
        for key in ("batches", "draws", "nuts_warmup", "nuts_samples"):
            if config[key] < 1:
                raise ConfigError(f"config: {key} must be >= 1")
        if any(not 0 < t < 1 for t in config["t_grid"]):
            raise ConfigError("config: t_grid entries must lie in (0, 1)")
        if not 0 < config["design_tol"] < 1:
            raise ConfigError("config: design_tol must be in (0, 1)")


#: The experiment's config type (the experiment interface, :mod:`bayes_qse.experiments`).
Config = InverseStackelbergConfig

#: The published form of the CI-sized defaults.
DEFAULT_CONFIG = InverseStackelbergConfig.defaults()

#: ``--full``: 10 x 10 games, six alphas, 10 seeds, sizes 100 .. 10^7.
FULL_CONFIG = InverseStackelbergConfig.preset(
    seeds=10,
    m=10,
    n=10,
    alphas=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
    security_targets=10,
    sizes=[100, 1000, 10_000, 30_000, 100_000, 1_000_000, 10_000_000],
    nuts_warmup=300,
    nuts_samples=300,
    batches=3,
    reference_rounds=100_000,
)


def families(config: dict) -> list[tuple[str, float]]:
    """``(family, alpha)``: ``("wu", alpha)`` per alpha, then ``("security", nan)``."""
    out = [("wu", float(a)) for a in config["alphas"]]
    return out + ([("security", float("nan"))] if config["security_targets"] else [])


def family_game(config: dict, family: str, alpha: float, seed: int):
    """Seed ``seed``'s game of ``family`` (reference coding, rationality ``eta``): the
    ``wu-normal-form`` game ``(seed, m, n, alpha, eta)`` or the ``wu-security-form`` game
    ``(seed, security_targets, eta)`` of :func:`bayes_qse.experiments.games.make_game`."""
    if family == "security":
        table = {"seed": seed, "n_targets": config["security_targets"], "eta": config["eta"]}
        return make_game("wu-security-form", table, where="security_targets")
    table = {"seed": seed, "m": config["m"], "n": config["n"], "alpha": alpha}
    return make_game("wu-normal-form", {**table, "eta": config["eta"]}, where="")


def family_key(family: str, alpha: float) -> str:
    return "security" if family == "security" else f"wu.alpha={alpha!r}"


def _sub_seed(seed: int, n_rounds: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, n_rounds, index]).generate_state(1)[0])


def wu_structured_estimate(commitments: np.ndarray, counts: np.ndarray, eta: float) -> np.ndarray:
    """Wu et al.'s structured security-game estimator (their ``solve_sec_payoffs``):
    ``argmax sum_k [p_k . z_k - logsumexp(z_k)]``, ``z_k = eta (w * x_k + c)``, over
    ``0 <= diag(w) + 1 c^T <= 1``, with ``p_k`` the response frequencies under commitment
    ``x_k`` (commitments without rounds skipped).  SciPy's SLSQP (exact gradient) replaces
    their MOSEK; returns ``V[T, T]``."""
    keep = counts.sum(axis=1) > 0
    x, p = commitments[keep], counts[keep] / counts[keep].sum(axis=1, keepdims=True)
    T = x.shape[1]

    def negloglik(v):
        w, c = v[:T], v[T:]
        z = eta * (w * x + c)
        lse = logsumexp(z, axis=1)
        prob = np.exp(z - lse[:, None])
        value = -(np.sum(p * z) - lse.sum())
        gz = -(p - prob) * eta
        return value, np.concatenate([np.sum(gz * x, axis=0), gz.sum(axis=0)])

    eye = np.eye(T)
    diag = np.hstack([eye, eye])  # V_ii = w_i + c_i
    off = np.hstack([np.zeros((T, T)), eye])  # V_ij = c_j
    cons = LinearConstraint(np.vstack([diag, off]), 0.0, 1.0)
    start = np.concatenate([np.zeros(T), np.full(T, 0.5)])
    res = minimize(
        negloglik,
        start,
        jac=True,
        method="SLSQP",
        constraints=[cons],
        options={"maxiter": 500, "ftol": 1e-12},
    )
    w, c = res.x[:T], res.x[T:]
    return np.diag(w) + c[None, :]


def bounded_v_game(game):
    """The security game's structured features in the coding ``theta = (V_11..V_TT, c_1..c_T)``
    (``V_ii = w_i + c_i`` on the diagonal, ``V_ij = c_j`` off it), where Wu et al.'s class
    ``0 <= V <= 1`` is the box ``0 <= theta <= 1`` (one direction, the common shift, is not
    identified, as in PURE's full coding)."""
    T = game.m
    F = np.zeros((T, T, 2 * T))
    for i in range(T):
        F[i, :, T:] = np.eye(T)
        F[i, i, T + i] = 0.0
        F[i, i, i] = 1.0
    return normal_form_game(F, float(game.eta))


def _bounded_v(game, data, family):
    """The MLE over ``0 <= V <= 1``: PURE's estimator (full one-hot coding) on a Wu game, the
    structured box of :func:`bounded_v_game` on the security game."""
    if family != "security":
        return pure_estimate(game, data).utilities
    box = bounded_v_game(game)
    theta = np.asarray(fit_mle(data, box, lower=0.0, upper=1.0).theta)
    return np.asarray(box.utilities(theta))


def _estimate(method, game, data, config, seed, family):
    """The ``theta`` (or ``V`` for PURE-type estimators) of ``method`` on ``data``."""
    if method == "pure":
        return "V", pure_estimate(game, data).utilities
    if method in ("structured_bounded_v", "a_two_stage_bounded_v"):
        return "V", _bounded_v(game, data, family)
    if method == "wu_structured":
        return "V", wu_structured_estimate(
            np.asarray(data.commitments), np.asarray(data.counts), float(game.eta)
        )
    if method == "mle":
        return "theta", np.asarray(fit_mle(data, game).theta)
    if method == "bounded":
        return "theta", np.asarray(fit_mle(data, game, lower=-1.0, upper=1.0).theta)
    kind = "nuts" if method == "nuts" else "laplace"
    post = sample_posterior(
        data,
        game,
        method=kind,
        prior_scale=config["prior_scale"],
        seed=seed,
        num_warmup=config["nuts_warmup"],
        num_samples=config["nuts_samples"],
    )
    return "theta", np.asarray(post.mean)


def run_part(config: dict, family: str, alpha: float, n_rounds: int, seed: int) -> dict:
    """One seed at one ``N``: the error of every method (``nan`` where it does not apply),
    the designs' predicted and realised squared errors and certificate gaps."""
    game = family_game(config, family, alpha, seed)
    V = np.asarray(game.utilities())
    theta = np.asarray(game.theta)
    A = utility_weights(game)
    X = mixture_candidates(game.m, config["t_grid"])
    methods = config["methods"]
    err = np.full(len(INVERSE_METHODS), np.nan)
    pred = np.full(len(INVERSE_METHODS), np.nan)
    real = np.full(len(INVERSE_METHODS), np.nan)
    gap = np.full(len(INVERSE_METHODS), np.nan)
    seconds = np.full(len(INVERSE_METHODS), np.nan)
    failed = np.zeros(
        len(INVERSE_METHODS)
    )  # 1: the estimate failed, 2: the MLE for realised_sq did
    rr = collect_round_robin(game, X[: game.m], n_rounds, _sub_seed(seed, n_rounds, 0))
    designed = None
    psi_true = np.einsum("ka,abd->kbd", X, np.asarray(game.features, float))
    jac_true = response_jacobians(theta, psi_true, float(game.eta))
    oracle = optimal_design(jac_true, "A", A=A, tol=config["design_tol"])
    for i, method in enumerate(INVERSE_METHODS):
        if method not in methods or (method in SECURITY_METHODS and family != "security"):
            continue
        if method == "nuts" and (
            n_rounds > config["nuts_max_rounds"]
            or family_key(family, alpha) not in config["nuts_families"]
        ):
            continue
        start = time.perf_counter()
        s = _sub_seed(seed, n_rounds, i + 1)
        data = rr
        if method == "a_two_stage_bounded_v":
            data = designed  # the A two-stage data, estimated by the bounded V fit
        elif method in DESIGN_METHODS:
            kw = {
                "pilot": config["pilot"],
                "prior_scale": config["prior_scale"],
                "tol": config["design_tol"],
            }
            if method == "a_sequential":
                data = collect_sequential(
                    game,
                    X,
                    n_rounds,
                    s,
                    criterion="A",
                    batches=config["batches"],
                    draws=config["draws"],
                    **kw,
                )
            else:
                data = collect_two_stage(game, X, n_rounds, s, criterion=method[0].upper(), **kw)
            if method == "a_two_stage":
                designed = data
            design = data.designs[-1]
            gap[i] = design.gap / (game.feature_dim if method[0] == "d" else design.criterion)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                kind, est = _estimate(method, game, data.counts, config, s, family)
            except RuntimeError:  # a solver that gives up (e.g. the separation LP): counted
                failed[i] = 1.0
                continue
            if method in ("a_two_stage", "d_two_stage", "a_sequential", "laplace"):
                w = np.asarray(data.rounds, float) / n_rounds
                x = np.asarray(data.counts.commitments)
                psi = np.einsum("ka,abd->kbd", x, np.asarray(game.features, float))
                M = information(response_jacobians(theta, psi, float(game.eta)), w)
                pred[i] = np.trace(A @ np.linalg.inv(n_rounds * M))
                try:
                    delta = np.asarray(fit_mle(data.counts, game).theta) - theta
                    real[i] = delta @ A @ delta
                except RuntimeError:
                    failed[i] = 2.0
        Vhat = est if kind == "V" else np.asarray(game.utilities(est))
        err[i] = float(shift_invariant_l1(Vhat, V))
        seconds[i] = time.perf_counter() - start
    return {
        "error": err,
        "predicted_sq": pred,
        "realised_sq": real,
        "design_gap": gap,
        "seconds": seconds,
        "failed": failed,
        "oracle_sq": np.full(len(INVERSE_METHODS), oracle.criterion / n_rounds),
    }


@dataclasses.dataclass(frozen=True)
class InverseUnit:
    """One ``(family, N)`` of the grid with one part per seed (:mod:`.units`)."""

    key: str
    family: str
    alpha: float
    n_rounds: int
    seeds: tuple[int, ...]
    config: dict[str, Any] = dataclasses.field(hash=False, compare=False)
    kind = "inverse"

    def parts(self) -> tuple[str, ...]:
        return tuple(f"seed{s}" for s in self.seeds)

    def store_config(self) -> dict[str, Any]:
        """What the unit's parts depend on: the settings less the grid's lists (so that a
        run with more alphas or sizes reuses the finished units), and whether NUTS runs."""
        grid = ("seeds", "base_seed", "alphas", "sizes", "reference_rounds", "nuts_families")
        settings = {k: v for k, v in self.config.items() if k not in grid}
        if self.family != "security":
            settings.pop("security_targets")
        nuts = family_key(self.family, self.alpha) in self.config["nuts_families"]
        return {"unit": self.key, "config": settings, "nuts": nuts, "seeds": list(self.seeds)}

    def run(self, store: RunStore, todo: list[str], progress: bool) -> None:
        for part in todo:
            seed = int(part[len("seed") :])
            arrays = run_part(self.config, self.family, self.alpha, self.n_rounds, seed)
            store.save_unit(part, arrays, {"seed": seed, "n_rounds": self.n_rounds})


def make_units(config: dict) -> list[InverseUnit]:
    """A unit per ``(family, N)``, ordered by ``N`` (cheap units first), all seeds each."""
    seeds = tuple(config["base_seed"] + i for i in range(config["seeds"]))
    return [
        InverseUnit(f"{family_key(f, a)}.N={n}", f, a, int(n), seeds, config)
        for n in sorted(config["sizes"])
        for f, a in families(config)
    ]


#: Run (or resume) the experiment (:func:`~.executors.run_experiment_module`).
run = experiment_run(__name__)


def write_results(
    store: RunStore,
    config: dict,
    units: list[InverseUnit],
    loaded: Mapping[str, UnitParts],
) -> Path:
    """Write ``results.npz`` / ``results.json`` (:func:`aggregate` of the units' parts,
    ``loaded`` by key); returns the ``.npz`` path."""
    return store.write_results("results", aggregate(loaded, config))


def aggregate(loaded: Mapping[str, UnitParts], config: dict) -> dict[str, Any]:
    """Per-seed arrays ``[F, N, S, M]`` (families, sizes, seeds, :data:`INVERSE_METHODS`) and the
    summaries of :func:`~.inverse_report.aggregate_errors`, from the units' parts by key
    (``loaded``, :func:`~.units.load_units`)."""
    fams, sizes = families(config), sorted(config["sizes"])
    units = {
        (u.family, u.alpha if u.family == "wu" else None, u.n_rounds): u for u in make_units(config)
    }
    fields = (
        "error",
        "predicted_sq",
        "realised_sq",
        "design_gap",
        "seconds",
        "oracle_sq",
        "failed",
    )
    out = {
        f: np.full((len(fams), len(sizes), config["seeds"], len(INVERSE_METHODS)), np.nan)
        for f in fields
    }
    for fi, (f, a) in enumerate(fams):
        for ni, n in enumerate(sizes):
            parts = loaded[units[f, a if f == "wu" else None, n].key]
            for si, (arrays, _) in enumerate(parts):
                for field in fields:  # parts saved before "failed" existed had no failure
                    out[field][fi, ni, si] = arrays[field] if field in arrays else 0.0
    summary = aggregate_errors(
        out["error"], np.asarray(sizes, float), INVERSE_METHODS, config["reference_rounds"]
    )
    return {
        **out,
        **summary,
        "sizes": np.asarray(sizes, float),
        "alphas": np.asarray([a for _, a in fams], float),
        "families": [family_key(f, a) for f, a in fams],
        "methods": list(INVERSE_METHODS),
    }


def plot(out_dir: Path) -> list[Path]:
    """``error_vs_rounds.png`` and ``table.md`` (:func:`~.inverse_report.figures`)."""
    return figures(out_dir)


__all__ = [
    "DEFAULT_CONFIG",
    "FULL_CONFIG",
    "InverseStackelbergConfig",
    "Config",
    "INVERSE_METHODS",
    "InverseUnit",
    "make_units",
    "plot",
    "run",
    "write_results",
    "run_part",
    "wu_structured_estimate",
]

if __name__ == "__main__":  # python -m bayes_qse.experiments.inverse_stackelberg
    from . import experiment_main

    experiment_main(NAME)
