"""The end-to-end demo behind ``make demo`` / ``bayes-qse demo`` (a few minutes on 2 cores).

The story, on the named security ``patrol`` game (docs/math.md §1):

1. solve the QSE against a myopic and against a farsighted attacker (eq. 2a, 2b);
2. simulate episodes under a uniform patrol and fit the attacker's utility parameter ``theta``
   by maximum likelihood, Laplace and a short NUTS run (eq. 4);
3. run two online learners (greedy and Thompson sampling) on a small tabular game where not
   exploring can lock a leader in, and compare their regret (docs/math.md §5);
4. write a regret plot, a posterior plot and ``results.json``, and print where they are.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .data import simulate
from .errors import ConfigError
from .games import patrol_game, random_game, tabular_game
from .inference import fit_mle, sample_posterior
from .io import atomic_write_json
from .learners.runner import run_online
from .planning import leader_value, solve_qse


def _say(text: str = "") -> None:
    print(text, flush=True)


def _online_available() -> bool:
    return importlib.util.find_spec("bayes_qse.learners.online") is not None


def online_game(seed: int = 0) -> Any:
    """A small tabular game (H=2, S=2, A=3, B=2, eta=2) where a greedy leader can lock in.

    With one-hot (tabular) features nothing learnt about the follower at one leader action
    carries over to another, so a leader that never explores may never try the best action.
    """
    base = random_game(
        seed,
        n_states=2,
        n_leader_actions=3,
        n_follower_actions=2,
        horizon=2,
        feature_dim=1,
        eta=2.0,
    )
    utility = 1.5 * np.random.default_rng(seed).normal(size=base.shape)
    return tabular_game(
        base.transitions, base.leader_reward, utility, eta=2.0, initial_dist=base.initial_dist
    )


def _online_section(
    out: Path, *, seed: int, quick: bool, show_progress: bool
) -> tuple[dict[str, Any], str]:
    """Greedy vs Thompson sampling (docs/math.md §5) on :func:`online_game`: regret over seeds."""
    from .plots import loglog_panel, new_figure, regret_curves, save_figure  # lazy: matplotlib

    game = online_game(0)
    episodes, n_seeds = (50, 2) if quick else (200, 4)
    seeds = list(range(seed, seed + n_seeds))
    H, S, A, B = game.shape
    _say(f"   a tabular game (H={H}, S={S}, A={A}, B={B}, d={game.feature_dim}); the leader knows")
    _say(
        f"   her own rewards and transitions and learns the follower; {episodes} episodes x "
        f"{n_seeds} seeds"
    )
    curves, summary = {}, {}
    for learner in ("greedy", "thompson"):
        run = run_online(
            game,
            learner,
            episodes=episodes,
            seeds=seeds,
            known_model=True,
            chunk=min(episodes, 50),
            progress=show_progress,
        )
        cumulative = np.cumsum(run["regret"], axis=1)
        curves[learner] = cumulative
        final = cumulative[:, -1]
        summary[learner] = {
            "final_regret_mean": float(final.mean()),
            "final_regret_per_seed": final,
            "last_quarter_regret_per_episode": float(
                run["regret"][:, -max(episodes // 4, 1) :].mean()
            ),
        }
        _say(
            f"   {learner:9s} cumulative regret after {episodes} episodes: "
            f"{final.mean():6.2f} (per seed: {np.round(final, 2)})"
        )
    fig, axes = new_figure(2)
    regret_curves(axes[0], curves)
    axes[0].set_title("Regret (mean, 10-90% band over seeds)")
    slopes = loglog_panel(axes[1], curves)
    for learner, slope in slopes.items():
        summary[learner]["loglog_slope"] = slope
    axes[1].set_title("log-log: slope 1 = linear regret")
    path = save_figure(fig, out / "regret.png")
    for learner, slope in slopes.items():
        _say(f"   {learner:9s} log-log slope of the mean regret: {slope:.2f} (1 = linear)")
    _say("   A greedy leader stops exploring once its estimate favours an action, and with")
    _say("   tabular features it may never learn that another action is better; Thompson")
    _say("   sampling keeps planning on plausible followers (compare the slopes above).")
    return {"game": "online_game(0)", "episodes": episodes, "seeds": seeds, **summary}, str(path)


#: The files the demo writes (its folder may hold these and nothing else).
DEMO_FILES = ("patrol_game.npz", "patrol_data.npz", "posterior.png", "regret.png", "results.json")


def check_demo_dir(out: str | os.PathLike) -> Path:
    """Refuse to write the demo into a folder that is not a demo's: one that exists and holds
    anything but the demo's files (:data:`DEMO_FILES`), or a ``results.json`` that is not a
    demo's (no ``"files"`` and ``"seed"``) -- a user's files, ``--out .``.  Returns ``out``.

    Raises:
        ConfigError: naming the folder and one of its other files.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {out} exists and is not a directory")
    if not out.is_dir():
        return out
    temporary = tuple(f".{name}." for name in DEMO_FILES)  # a killed atomic write's leftovers
    others = sorted(
        p.name
        for p in out.iterdir()
        if p.name not in DEMO_FILES and not (p.name.startswith(temporary) and p.suffix == ".tmp")
    )
    mine = True
    if not others and (out / "results.json").exists():
        try:
            doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
            mine = isinstance(doc, dict) and {"files", "seed"} <= set(doc)
        except (OSError, UnicodeDecodeError, ValueError):
            mine = False
        others = [] if mine else ["results.json"]
    if others:
        raise ConfigError(
            f"--out: {out} holds files that are not the demo's ({others[0]!r}"
            f"{' and more' if len(others) > 1 else ''}); refusing to write into it: choose "
            "another --out (an empty or new folder, or a previous demo's)"
        )
    return out


def run_demo(
    out: str | os.PathLike = "demo_out",
    *,
    seed: int = 0,
    show_progress: bool = True,
    quick: bool = False,
) -> dict[str, Any]:
    """Run the demo, writing its files under ``out``; returns the results dictionary.

    ``quick`` shrinks every stage (for tests); the default sizes take a few minutes on 2 cores.
    """
    from .plots import new_figure, posterior_vs_truth, save_figure  # lazy: matplotlib

    out = check_demo_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, Any] = {"seed": seed, "quick": quick}
    files: dict[str, str] = {}

    # 1. The game and its equilibria ------------------------------------------------------
    game = patrol_game()
    far_game = patrol_game(farsighted=True)
    H, S, A, B = game.shape
    _say(f"== 1. The patrol game: H={H} steps, S={S} alert levels, A={A} sites, B={B} attacks")
    _say(f"   attacker utility = features . theta with theta = {np.round(game.theta, 3)}")
    _say(f"   rationality eta = {float(game.eta):g}")
    sol = solve_qse(game)
    _say(f"   QSE value against a myopic attacker:     {sol.value:8.4f} (exact, eq. 2a)")
    far_sol = solve_qse(far_game, seed=seed, n_steps=200 if quick else 600)
    myopic_vs_far = leader_value(far_game, sol.policy)
    _say(f"   QSE value against a farsighted attacker: {far_sol.value:8.4f} (gradient, eq. 2b)")
    _say(f"   ...the myopic plan against it gets only  {myopic_vs_far:8.4f}")
    results["qse"] = {
        "myopic_value": sol.value,
        "myopic_policy": sol.policy,
        "farsighted_value": far_sol.value,
        "farsighted_policy": far_sol.policy,
        "farsighted_optimisation_gap": far_sol.optimisation_gap,
        "myopic_policy_value_vs_farsighted_follower": myopic_vs_far,
    }
    files["game"] = str(game.save(out / "patrol_game.npz"))

    # 2. Data and the follower's posterior -------------------------------------------------
    n_episodes = 100 if quick else 300
    uniform = np.full((H, S, A), 1.0 / A)
    data = simulate(game, uniform, n_episodes, seed)
    files["dataset"] = str(data.save(out / "patrol_data.npz"))
    _say(f"\n== 2. Learning the attacker from {n_episodes} episodes of a uniform patrol (eq. 4)")
    fit = fit_mle(data, game)
    laplace = sample_posterior(data, game, method="laplace", num_samples=2000, seed=seed)
    n_warm, n_draw = (150, 150) if quick else (400, 600)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # diagnostics are reported below
        nuts = sample_posterior(
            data, game, method="nuts", num_samples=n_draw, num_warmup=n_warm, seed=seed
        )
    _say("   coord   truth     MLE (se)            Laplace mean (sd)   NUTS mean (sd)")
    for j in range(game.feature_dim):
        _say(
            f"   {j:>5} {game.theta[j]:7.3f}  {fit.theta[j]:7.3f} ({fit.std_err[j]:.3f})"
            f"     {laplace.mean[j]:7.3f} ({laplace.sd[j]:.3f})"
            f"     {nuts.mean[j]:7.3f} ({nuts.sd[j]:.3f})"
        )
    r_hat = np.asarray(nuts.diagnostics["r_hat"])
    ess = np.asarray(nuts.diagnostics["ess"])
    _say(f"   NUTS: max R-hat {r_hat.max():.3f}, min ESS {ess.min():.0f}")
    results["fit"] = {
        "n_episodes": n_episodes,
        "theta_true": game.theta,
        "mle": fit.theta,
        "mle_std_err": fit.std_err,
        "laplace_mean": laplace.mean,
        "laplace_sd": laplace.sd,
        "nuts_mean": nuts.mean,
        "nuts_sd": nuts.sd,
        "nuts_r_hat": r_hat,
        "nuts_ess": ess,
    }
    plan_on_mle = solve_qse(game, theta=fit.theta).policy
    results["fit"]["plug_in_value"] = leader_value(game, plan_on_mle)
    _say(
        f"   planning on the MLE earns {results['fit']['plug_in_value']:.4f} (QSE {sol.value:.4f})"
    )
    fig, (ax,) = new_figure(size=(6.5, 3.8))
    posterior_vs_truth(
        ax,
        {"Laplace": laplace.theta, "NUTS": nuts.theta},
        game.theta,
        point={"MLE": fit.theta},
        labels=["site value", "caught", "attack", "alert x attack"],
    )
    ax.set_title(f"Attacker's utility weights after {n_episodes} episodes")
    files["posterior_plot"] = str(save_figure(fig, out / "posterior.png"))

    # 3. Online learning --------------------------------------------------------------------
    _say("\n== 3. Online: two leaders learn the follower while playing")
    if _online_available():
        results["online"], files["regret_plot"] = _online_section(
            out, seed=seed, quick=quick, show_progress=show_progress
        )
    else:  # pragma: no cover - the online learners ship with the package
        _say("   (bayes_qse.learners.online is not installed in this version: skipped)")

    # 4. Files ------------------------------------------------------------------------------
    results["elapsed_seconds"] = time.perf_counter() - started
    results["files"] = files
    files["results"] = str(atomic_write_json(out / "results.json", results))
    _say(f"\n== Done in {results['elapsed_seconds']:.0f} s. Files:")
    for name, path in files.items():
        _say(f"   {name:15s} {path}")
    _say("   Next: an attacker who sees the coverage, not the patrol (SUQR security games):")
    _say("   bayes-qse games; bayes-qse run security_games; docs/security_games.md")
    sys.stdout.flush()
    return results


__all__ = ["online_game", "run_demo"]
