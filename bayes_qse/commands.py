"""The subcommands of ``bayes-qse`` (:mod:`bayes_qse.cli` parses the command line and calls
``cmd_<name>(args)`` here; this module imports JAX, the parser does not).

Each command imports the heavy parts it needs (the experiments, the sweeps' xarray, the
security games' NumPyro model, the demo) when it runs, so that ``bayes-qse sweep`` does not
import what only ``run`` or ``demo`` use: the command's import is the one part of a sweep
that no process pool can share out (``benchmarks/bench_sweep.py``).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import data as data_module
from . import games as games_module
from ._validate import check_eta, check_memory
from ._validate import game_bytes as random_game_bytes
from .console import EXIT_OK, _one_line
from .data import Dataset, dataset_bytes
from .errors import ConfigError
from .games import NAMED_GAMES, Game
from .io import check_not_input, check_npz, to_jsonable, write_target

# ---------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------


def _emit(obj: dict[str, Any], as_json: bool, text: str) -> None:
    if as_json:
        print(json.dumps(to_jsonable(obj), sort_keys=True))
    else:
        print(text)


def _policy_table(policy: Any) -> str:
    pi = np.asarray(policy)
    H, S, A = pi.shape
    lines = ["  step state  policy over leader actions"]
    for h in range(H):
        for s in range(S):
            probs = " ".join(f"{p:5.3f}" for p in pi[h, s])
            lines.append(f"  {h + 1:>4} {s:>5}  [{probs}]")
    return "\n".join(lines)


def cmd_solve(args: argparse.Namespace) -> int:
    """Solve the QSE of a game file (eq. 2) and print the value and policy."""
    from .planning import solve_qse  # lazy: see the module doc

    game = Game.load(args.game)
    sol = solve_qse(game, seed=args.seed)
    out = {
        "value": float(sol.value),
        "policy": np.asarray(sol.policy),
        "farsighted": bool(game.farsighted),
        "shape": {
            "horizon": game.horizon,
            "n_states": game.n_states,
            "n_leader_actions": game.n_leader_actions,
            "n_follower_actions": game.n_follower_actions,
            "feature_dim": game.feature_dim,
        },
        "eta": float(game.eta),
    }
    if game.farsighted:
        out["start_values"] = np.asarray(sol.start_values)
        out["optimisation_gap"] = float(sol.optimisation_gap)
        out["certified"] = bool(sol.certified)
    kind = "farsighted (gradient planner, eq. 2b)" if game.farsighted else "myopic (eq. 2a)"
    text = f"game {args.game}: {kind} follower, eta={float(game.eta):g}\n"
    text += f"QSE value J(pi*) = {sol.value:.6f}\n"
    if game.farsighted:
        text += (
            f"spread of values across starts = {sol.optimisation_gap:.3g} "
            "(not a bound on the distance to the optimum: not certified)\n"
        )
    text += _policy_table(sol.policy)
    _emit(out, args.json, text)
    return EXIT_OK


def cmd_plan_coverage(args: argparse.Namespace) -> int:
    """The defender's certified coverage of a named security game against given SUQR weights
    (eq. 8c, 8f-8k): value, upper bound and gap."""
    from .security import named_security_game, plan_coverage  # lazy: see the module doc

    kw = {"n_targets": args.targets, "resources": args.resources, "seed": args.seed}
    if args.game == "security_covariance":
        kw["correlation"] = args.correlation
    game = named_security_game(args.game, theta=None, **kw)
    plan = plan_coverage(game, args.weights, budget=args.budget, rtol=args.rtol)
    out = dict(plan._asdict(), weights=list(args.weights), budget=args.budget)
    text = (
        f"{args.game} (T={args.targets}, m={args.resources:g}, seed={args.seed}), "
        f"w={tuple(args.weights)}, budget {args.budget}\n"
        f"value U(c*) = {plan.value:.6f}, upper bound {plan.upper_bound:.6f}, "
        f"gap {plan.gap:.2e} (relative {plan.relative_gap:.2e}; "
        f"{'certified' if plan.certified else 'NOT certified'} at rtol {args.rtol:g})\n"
        "coverage: " + " ".join(f"{c:.4f}" for c in plan.coverage)
    )
    _emit(out, args.json, text)
    return EXIT_OK


#: ``make-game`` flags a named game may take (each where its constructor has the option).
_NAMED_FLAGS = {"eta": "--eta", "horizon": "--horizon", "farsighted": "--farsighted"}


def plain_text(doc: str | None) -> str:
    """The first sentence of a docstring's first paragraph, without reST markup
    (``:func:`x``` and ````x```` become ``x``)."""
    para = " ".join((doc or "").strip().split("\n\n")[0].split())
    para = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", para).replace("``", "")
    match = re.match(r"(.+?\.)(\s|$)", para)
    return match.group(1) if match else para


def cmd_games(args: argparse.Namespace) -> int:
    """List what ``make-game`` accepts (the named games and ``random``), then the security
    games, which are not game files (how to run them is said)."""
    from .security import SECURITY_GAMES  # lazy: see the module doc

    rows: dict[str, Any] = {}
    for name, ctor in NAMED_GAMES.items():
        g = ctor()
        params = inspect.signature(ctor).parameters
        rows[name] = {
            "shape": list(g.shape),
            "feature_dim": g.feature_dim,
            "farsighted": bool(g.farsighted),
            "eta": float(g.eta),
            "description": plain_text(ctor.__doc__),
            "make_game": True,
            "flags": [flag for key, flag in _NAMED_FLAGS.items() if key in params],
        }
    width = max(len(n) for n in [*rows, *SECURITY_GAMES])
    lines = ["games of `bayes-qse make-game NAME OUT.npz` (shape, flags that apply):"]
    for n, r in rows.items():
        lines.append(
            f"  {n:<{width}}  (H,S,A,B)={tuple(r['shape'])} d={r['feature_dim']} "
            f"[{' '.join(r['flags'])}]  {r['description']}"
        )
    rows["random"] = {
        "make_game": True,
        "description": "A random game of any size.",
        "flags": [
            "--seed",
            "--states",
            "--leader-actions",
            "--follower-actions",
            "--features",
            "--horizon",
            "--eta",
            "--farsighted",
        ],
    }
    flags = " ".join(rows["random"]["flags"])
    lines.append(f"  {'random':<{width}}  {rows['random']['description']} [{flags}]")
    lines.append(
        "security games (a defender against an SUQR attacker; not game files, so not for "
        "make-game: `bayes-qse run security_games`, or in Python "
        "bayes_qse.security.named_security_game(NAME)):"
    )
    for name, ctor in SECURITY_GAMES.items():
        doc = plain_text(ctor.__doc__)
        rows[name] = {
            "kind": "security game (SUQR attacker)",
            "description": doc,
            "make_game": False,
        }
        lines.append(f"  {name:<{width}}  {doc}")
    _emit(rows, args.json, "\n".join(lines))
    return EXIT_OK


def _named_game_kwargs(ctor: Callable, args: argparse.Namespace) -> dict[str, Any]:
    params = inspect.signature(ctor).parameters
    given = {
        "eta": args.eta,
        "horizon": args.horizon,
        "farsighted": True if args.farsighted else None,
    }
    kwargs = {}
    for key, value in given.items():
        if value is None:
            continue
        if key not in params:
            raise ConfigError(f"--{key}: the {args.name!r} game has no option {key!r}")
        kwargs[key] = value
    return kwargs


def _check_random_game_size(args: argparse.Namespace) -> None:
    H = args.horizon if args.horizon is not None else 3
    S, A, B, d = args.states, args.leader_actions, args.follower_actions, args.features
    flag = "--features" if d > S else "--states"  # the largest array: S x S or x d
    check_memory(
        random_game_bytes(H, S, A, B, d),
        flag,
        f"a random game with H={H}, S={S}, A={A}, B={B}, d={d}",
        ConfigError,
    )


def cmd_make_game(args: argparse.Namespace) -> int:
    """Write a named or random game to an ``.npz`` file."""
    if args.eta is not None:
        check_eta(args.eta, "--eta", ConfigError)
    write_target(args.out)  # refuse a FIFO/device/directory before building the game
    if args.name == "random":
        _check_random_game_size(args)
        game = games_module.random_game(  # looked up at call time (tests trap it)
            args.seed,
            args.states,
            args.leader_actions,
            args.follower_actions,
            args.horizon if args.horizon is not None else 3,
            args.features,
            eta=args.eta if args.eta is not None else 1.0,
            farsighted=bool(args.farsighted),
        )
    elif args.name in NAMED_GAMES:
        ctor = NAMED_GAMES[args.name]
        game = ctor(**_named_game_kwargs(ctor, args))
    else:
        raise ConfigError(
            f"game: unknown game {args.name!r}; choose from {', '.join(NAMED_GAMES)}, random"
        )
    path = game.save(args.out)
    print(f"wrote {path}: (H,S,A,B)={game.shape}, d={game.feature_dim}")
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    """Simulate episodes of a game under a behaviour policy and save the dataset."""
    from .planning import solve_qse  # lazy: see the module doc

    check_not_input("OUT.npz", args.out, {"GAME.npz": args.game})
    write_target(args.out)  # refuse a FIFO/device/directory before simulating
    game = Game.load(args.game)
    if args.episodes < 1:
        raise ConfigError(f"--episodes: must be >= 1, got {args.episodes}")
    H, S, A, _ = game.shape
    check_memory(
        dataset_bytes(args.episodes, H, S, A),
        "--episodes",
        f"simulating {args.episodes} episodes of horizon {H} (S={S}, A={A})",
        ConfigError,
    )
    if args.policy == "uniform":
        policy = np.full((H, S, A), 1.0 / A)
    else:
        policy = np.asarray(solve_qse(game, seed=args.seed).policy)
        if args.policy == "qse-mixed":
            policy = 0.5 * policy + 0.5 / A
    data = data_module.simulate(game, policy, args.episodes, args.seed)  # call-time lookup
    path = data.save(args.out)
    print(f"wrote {path}: {data.n_episodes} episodes of horizon {H} ({args.policy} policy)")
    return EXIT_OK


def cmd_fit(args: argparse.Namespace) -> int:
    """Fit the follower's utility parameter from a dataset (eq. 4)."""
    from .summary import fit_summary  # lazy: see the module doc

    if args.samples is not None and args.samples < 1:
        raise ConfigError(f"--samples: must be >= 1, got {args.samples}")
    game = Game.load(args.game)
    data = Dataset.load(args.data)
    kwargs: dict[str, Any] = {"method": args.method, "seed": args.seed}
    if args.samples is not None:
        kwargs["num_samples"] = args.samples
    if args.method == "nuts" and (args.progress or _stderr_is_tty()):
        kwargs["progress"] = True
    summary = fit_summary(data, game, **kwargs)
    for message in summary.get("warnings", []):
        print(f"bayes-qse: warning: {_one_line(message)}", file=sys.stderr)
    if args.json:
        _emit(summary, True, "")
        return EXIT_OK
    print(_fit_text(summary, game, args.method))
    return EXIT_OK


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _fit_text(summary: dict[str, Any], game: Any, method: str) -> str:
    def floats(values: Any) -> np.ndarray:  # None (a non-finite entry) -> nan
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    theta_true = np.asarray(game.theta)
    center = floats(summary.get("theta", summary.get("mean")))
    spread = summary.get("std_err", summary.get("sd"))
    spread = np.full_like(center, np.nan) if spread is None else floats(spread)
    label = "std err" if "std_err" in summary else "sd"
    lines = [f"method: {method}"]
    if "log_likelihood" in summary:
        lines.append(f"log-likelihood at the estimate: {float(summary['log_likelihood']):.4f}")
    lines.append(f"  coord    estimate   {label:>8}   game's theta")
    for i, (c, s) in enumerate(zip(center, spread, strict=True)):
        lines.append(f"  {i:>5}  {c:10.4f} {s:10.4f}  {theta_true[i]:12.4f}")
    if summary.get("converged") is False:
        lines.append("converged: no (the estimate is not a maximiser; stderr says why)")
    for key in ("r_hat", "ess"):
        if key in summary:
            vals = floats(np.atleast_1d(summary[key]))
            lines.append(f"{key}: " + " ".join(f"{v:.3g}" for v in vals))
    return "\n".join(lines)


#: Files a run (``run``) or a sweep (``sweep``) writes at the top of its ``--out``.
_RUN_OUTPUTS = ("manifest.json", "results.json", "results.npz", "results.nc", "sweep.json")


def _check_out_dir_inputs(out: str | None, flag: str, path: str | None) -> None:
    """Refuse an input file (``--config``, the spec) that the run would overwrite in ``out``."""
    if out is not None and path is not None:
        for name in _RUN_OUTPUTS:
            check_not_input("--out", os.path.join(out, name), {flag: path})


def cmd_run(args: argparse.Namespace) -> int:
    """Run an experiment (resumable) and draw its figures."""
    from .experiments import run_and_report  # lazy: see the module doc

    _check_out_dir_inputs(args.out, "--config", args.config)
    run_and_report(args.experiment, args)
    return EXIT_OK


def cmd_plot(args: argparse.Namespace) -> int:
    """Redraw the figures of a results directory (experiment found from its manifest)."""
    from .experiments import get_experiment  # lazy: see the module doc
    from .experiments.store import read_manifest  # lazy: see the module doc

    if (Path(args.results) / "sweep.json").is_file():
        from .sweeps.plot import plot as plot_sweep  # lazy: matplotlib, figures only

        for fig in plot_sweep(args.results, args.select):
            print(f"figure: {fig}")
        return EXIT_OK
    if args.select:
        raise ConfigError("select: only for a sweep directory (bayes-qse sweep)")
    manifest = read_manifest(args.results)
    module = get_experiment(str(manifest.get("experiment")))
    results = Path(args.results) / "results.npz"
    if results.exists():
        check_npz(results, ConfigError)
    for fig in module.plot(args.results):
        print(f"figure: {fig}")
    return EXIT_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run (or resume) a sweep spec into a directory, then gather its results."""
    from .sweeps import run_sweep  # lazy: see the module doc

    _check_out_dir_inputs(args.out, "SPEC.toml", args.spec)
    nc, js = run_sweep(
        args.spec,
        args.out,
        executor=args.executor,
        workers=args.workers,
        address=args.address,
        progress=not args.no_progress,
        allow_mixed_versions=args.allow_mixed_versions,
    )
    print(f"results: {nc}\nsummary: {js}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the end-to-end demo."""
    from .demo import run_demo  # lazy: see the module doc

    run_demo(args.out, seed=args.seed, show_progress=not args.no_progress, quick=args.quick)
    return EXIT_OK


__all__ = [
    "cmd_demo",
    "cmd_fit",
    "cmd_games",
    "cmd_make_game",
    "cmd_plan_coverage",
    "cmd_plot",
    "cmd_run",
    "cmd_simulate",
    "cmd_solve",
    "cmd_sweep",
]
