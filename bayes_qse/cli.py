"""The ``bayes-qse`` command line (docs/math.md §6).

Subcommands::

    bayes-qse demo [--out DIR]                         a five-minute end-to-end story
    bayes-qse games                                    list the named games
    bayes-qse make-game NAME OUT.npz [options]         write a named or random game file
    bayes-qse simulate GAME.npz OUT.npz [options]      simulate episodes into a dataset file
    bayes-qse solve GAME.npz [--json]                  the QSE policy and value (eq. 2)
    bayes-qse fit DATA.npz GAME.npz [--method ...]     fit the follower (eq. 4)
    bayes-qse run EXPERIMENT [--config FILE] ...       run an experiment of docs/math.md §7
    bayes-qse plot RESULTS_DIR [--select K=V ...]      redraw an experiment's (a sweep's) figures
    bayes-qse sweep SPEC.toml --out DIR [--executor local|ray] [--address A] [--workers N]
                                                       run a declarative grid (docs/howto_sweeps.md)

Bad input (a malformed file, a bad flag or configuration value) prints exactly one line on
stderr naming the problem and exits with status 2, never a traceback.  Unexpected errors exit
with status 1 and one line, unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import data as data_module
from . import games as games_module
from ._validate import check_eta, check_memory
from .console import (
    EXIT_BAD_INPUT,
    EXIT_BROKEN_PIPE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    OneLineArgumentParser,
    _fail,
    _install_signal_handlers,
    _one_line,
    _one_line_warning,
    guarded,
    integer_arg,
    path_arg,
    seed_arg,
)
from .data import Dataset, dataset_bytes
from .demo import run_demo
from .errors import ConfigError
from .experiments import (
    EXPERIMENTS,
    RunHelpAction,
    add_run_arguments,
    get_experiment,
    run_and_report,
)
from .experiments.store import read_manifest
from .games import NAMED_GAMES, Game
from .io import check_npz, to_jsonable, write_target
from .planning import solve_qse
from .security import SECURITY_GAMES, named_security_game, plan_coverage
from .summary import fit_summary
from .sweeps import run_sweep

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


def cmd_games(args: argparse.Namespace) -> int:
    """List the named games with their sizes."""
    rows = {}
    for name, ctor in NAMED_GAMES.items():
        g = ctor()
        doc = (ctor.__doc__ or "").strip().splitlines()[0]
        rows[name] = {
            "shape": list(g.shape),
            "feature_dim": g.feature_dim,
            "farsighted": bool(g.farsighted),
            "eta": float(g.eta),
            "description": doc,
            "options": sorted(inspect.signature(ctor).parameters),
        }
    text = "\n".join(
        f"{n:10s} (H,S,A,B)={tuple(r['shape'])} d={r['feature_dim']} "
        f"options={','.join(r['options'])}  {r['description']}"
        for n, r in rows.items()
    )
    text += "\nrandom     a random game (make-game random --seed --states --leader-actions ...)"
    for name, ctor in SECURITY_GAMES.items():
        doc = (ctor.__doc__ or "").strip().splitlines()[0]
        options = ",".join(sorted(inspect.signature(ctor).parameters))
        rows[name] = {"kind": "security game (SUQR attacker)", "description": doc}
        text += f"\n{name} options={options}  {doc}"
    _emit(rows, args.json, text)
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


def random_game_bytes(H: int, S: int, A: int, B: int, d: int) -> int:
    """Bytes a random game needs: its float64 arrays ``P[H,S,A,B,S]``, ``r[H,S,A,B]``,
    ``phi[H,S,A,B,d]``, ``theta[d]``, ``rho[S]``, twice (generation and validation copies)."""
    cells = H * S * A * B
    return 2 * 8 * (cells * S + cells * (1 + d) + d + S)


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


def cmd_run(args: argparse.Namespace) -> int:
    """Run an experiment (resumable) and draw its figures."""
    run_and_report(args.experiment, args)
    return EXIT_OK


def cmd_plot(args: argparse.Namespace) -> int:
    """Redraw the figures of a results directory (experiment found from its manifest)."""
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
    run_demo(args.out, seed=args.seed, show_progress=not args.no_progress, quick=args.quick)
    return EXIT_OK


# ---------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``bayes-qse`` argument parser (one subparser per subcommand)."""
    parser = OneLineArgumentParser(
        prog="bayes-qse",
        description=(
            "Learn the Quantal Stackelberg Equilibrium of leader-follower Markov games: "
            "solve games, fit the follower from data (MLE, Laplace, NUTS) and run the "
            "experiments.  Bad input exits with status 2 and one line on stderr."
        ),
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("demo", help="a five-minute end-to-end story with plots")
    p.add_argument(
        "--out", default="demo_out", metavar="DIR", type=path_arg, help="output folder (demo_out)"
    )
    p.add_argument("--seed", type=seed_arg, default=0, help="random seed (0)")
    p.add_argument("--quick", action="store_true", help="even smaller (for tests)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("games", help="list the named games")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_games)

    p = sub.add_parser("make-game", help="write a named or random game to a .npz file")
    p.add_argument("name", help="patrol, pricing, steering or random")
    p.add_argument("out", metavar="OUT.npz", type=path_arg)
    p.add_argument("--eta", type=float, help="follower rationality, in [1e-6, 1e6]")
    p.add_argument("--horizon", type=integer_arg(1), help="number of steps H (>= 1)")
    p.add_argument("--farsighted", action="store_true", help="a farsighted follower")
    g = p.add_argument_group("random games")
    g.add_argument("--seed", type=seed_arg, default=0)
    g.add_argument("--states", type=integer_arg(1), default=3)
    g.add_argument("--leader-actions", type=integer_arg(1), default=2)
    g.add_argument("--follower-actions", type=integer_arg(1), default=3)
    g.add_argument("--features", type=integer_arg(1), default=4)
    p.set_defaults(func=cmd_make_game)

    p = sub.add_parser("simulate", help="simulate episodes of a game into a dataset file")
    p.add_argument("game", metavar="GAME.npz", type=path_arg)
    p.add_argument("out", metavar="OUT.npz", type=path_arg)
    p.add_argument("--episodes", type=integer_arg(1), default=200, help="number of episodes (200)")
    p.add_argument(
        "--policy",
        choices=("uniform", "qse", "qse-mixed"),
        default="uniform",
        help="behaviour policy: uniform, the QSE, or their 50/50 mixture (uniform)",
    )
    p.add_argument("--seed", type=seed_arg, default=0)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("solve", help="solve the QSE of a game file (eq. 2)")
    p.add_argument("game", metavar="GAME.npz", type=path_arg)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--seed", type=seed_arg, default=0, help="seed of the farsighted planner's starts"
    )
    p.set_defaults(func=cmd_solve)

    p = sub.add_parser(
        "plan-coverage", help="certified defender coverage of a security game (eq. 8)"
    )
    p.add_argument("game", choices=sorted(SECURITY_GAMES))
    p.add_argument("--weights", nargs=3, type=float, required=True, metavar=("W1", "W2", "W3"),
                   help="SUQR weights on coverage, attacker reward, attacker penalty")  # fmt: skip
    p.add_argument("--targets", type=integer_arg(2), default=5, help="targets T (5)")
    p.add_argument("--resources", type=float, default=1.0, help="budget m (1)")
    p.add_argument("--correlation", type=float, default=-0.5, help="covariance games (-0.5)")
    p.add_argument("--budget", choices=("at_most", "exact"), default="at_most",
                   help="sum c <= m (at_most) or sum c = m (exact)")  # fmt: skip
    p.add_argument("--rtol", type=float, default=1e-6, help="relative gap to certify (1e-6)")
    p.add_argument("--seed", type=seed_arg, default=0, help="seed of the game's payoffs")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_plan_coverage)

    p = sub.add_parser("fit", help="fit the follower from a dataset (eq. 4)")
    p.add_argument("data", metavar="DATA.npz", type=path_arg)
    p.add_argument("game", metavar="GAME.npz", type=path_arg)
    p.add_argument("--method", choices=("mle", "laplace", "nuts"), default="mle")
    p.add_argument("--samples", type=integer_arg(1), help="posterior draws (laplace, nuts)")
    p.add_argument("--seed", type=seed_arg, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--progress",
        action="store_true",
        help="NUTS progress lines on stderr (the default when stderr is a terminal)",
    )
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser(
        "run",
        help="run an experiment (resumable)",
        description="Run an experiment; rerunning the same command resumes an interrupted run.",
        add_help=False,
    )
    p.add_argument(
        "-h",
        "--help",
        action=RunHelpAction,
        help="show this help (after EXPERIMENT: its settings and their defaults) and exit",
    )
    p.add_argument("experiment", metavar="EXPERIMENT", help=", ".join(EXPERIMENTS))
    add_run_arguments(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("plot", help="redraw the figures of a results directory")
    p.add_argument("results", metavar="RESULTS_DIR", type=path_arg)
    p.add_argument(
        "--select",
        action="append",
        metavar="KEY=VALUE",
        help="a sweep directory only: draw the slice KEY=VALUE (repeatable)",
    )
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("sweep", help="run a declarative grid of online runs (resumable)")
    p.add_argument("spec", metavar="SPEC.toml", type=path_arg)
    p.add_argument("--out", required=True, metavar="DIR", type=path_arg, help="sweep directory")
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--address", help="ray only: join this cluster ('auto': the running one)")
    p.add_argument(
        "--workers", type=integer_arg(1), default=1, help="processes (local) or CPUs (ray) (1)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--allow-mixed-versions",
        action="store_true",
        help="resume and gather parts computed with other library versions or on another "
        "platform (recorded in results.nc)",
    )
    p.set_defaults(func=cmd_sweep)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bayes-qse`` console script; returns the exit status.

    Called without ``argv`` (the console script), it also installs the double-Ctrl-C handler
    (:func:`_install_signal_handlers`); with ``argv`` (tests, embedding) it leaves signal
    handling alone.
    """
    if argv is None:
        _install_signal_handlers()
    parser = build_parser()
    args = parser.parse_args(argv)
    saved = warnings.formatwarning
    if not args.debug:
        warnings.formatwarning = _one_line_warning
    try:
        status = guarded(lambda: args.func(args), debug=args.debug)
    finally:
        warnings.formatwarning = saved
    if argv is None and status == EXIT_INTERRUPTED:
        # exit at once: interpreter shutdown (JAX's teardown) restores the default SIGINT
        # handler, so a second Ctrl-C during it would kill the process by the signal instead
        # of exiting 130; finished work is already saved
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing more can be written
                pass
        os._exit(status)
    return status


__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_BROKEN_PIPE",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "OneLineArgumentParser",
    "_fail",
    "_install_signal_handlers",
    "_one_line",
    "build_parser",
    "guarded",
    "integer_arg",
    "main",
    "path_arg",
    "random_game_bytes",
    "seed_arg",
]


if __name__ == "__main__":
    sys.exit(main())
