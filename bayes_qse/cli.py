"""The ``bayes-qse`` command line (docs/math.md §6).

Subcommands::

    bayes-qse demo [--out DIR]                         an end-to-end story (README: timings)
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
import gc
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from . import configure_jax
from ._workers import PRELOAD, start_server
from .console import (
    EXIT_INTERRUPTED,
    OneLineArgumentParser,
    _install_signal_handlers,
    _one_line_warning,
    guarded,
    integer_arg,
    path_arg,
    seed_arg,
)
from .errors import ConfigError
from .run_options import ENGINE, EXPERIMENTS, add_run_arguments
from .settings import RETIRED_MESSAGE

#: What ``make-game`` accepts (the named games of :data:`bayes_qse.games.NAMED_GAMES`, then
#: ``random``), spelled out so that the help needs no import of the games module; a test
#: keeps it equal to the registry.
MAKE_GAME_NAMES = (
    "patrol",
    "pricing",
    "steering",
    "tempting",
    "exploration",
    "patrol-large",
    "random-large",
    "random",
)
#: The subcommands' functions live in :mod:`bayes_qse.commands` (JAX and the experiments):
#: imported only once a command runs, never for ``--help``.
COMMANDS = (
    "demo",
    "games",
    "make-game",
    "simulate",
    "solve",
    "plan-coverage",
    "fit",
    "run",
    "plot",
    "sweep",
)
#: The security games (:data:`bayes_qse.security.SECURITY_GAMES`, sorted), spelled out for
#: ``plan-coverage``'s choices without importing JAX; a test keeps it equal to the registry.
SECURITY_GAME_NAMES = ("security_covariance", "security_uniform")


def __getattr__(name: str) -> Any:
    """``cli.cmd_<name>`` and ``cli.random_game_bytes``: the functions of
    :mod:`bayes_qse.commands`, imported on first use."""
    if name.startswith("cmd_") or name == "random_game_bytes":
        configure_jax()
        from . import commands  # lazy: JAX and the experiments, once a command runs

        return getattr(commands, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class RunHelpAction(argparse.Action):
    """``-h/--help`` for ``bayes-qse run``: after ``EXPERIMENT``, that experiment's settings
    and defaults (:func:`bayes_qse.experiments.experiment_help`, which imports it); before it,
    the generic help."""

    def __init__(
        self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None
    ):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        text = parser.format_help()
        name = getattr(namespace, "experiment", None)
        if name in EXPERIMENTS:
            configure_jax()  # before the experiment's module is imported
            from .experiments import experiment_help  # lazy: the experiment's settings

            try:
                text += "\n" + experiment_help(name) + "\n"
            except ConfigError as exc:
                text += f"\n{exc}\n"
        else:
            text += (
                f"\nexperiments: {', '.join(EXPERIMENTS)} (`run NAME --help` lists the settings)\n"
            )
        parser._print_message(text, sys.stdout)
        parser.exit()


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

    p = sub.add_parser(
        "demo", help="an end-to-end story with plots (the README gives its measured length)"
    )
    p.add_argument(
        "--out", default="demo_out", metavar="DIR", type=path_arg, help="output folder (demo_out)"
    )
    p.add_argument("--seed", type=seed_arg, default=0, help="random seed (0)")
    p.add_argument("--quick", action="store_true", help="even smaller (for tests)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(command_func="cmd_demo")

    p = sub.add_parser("games", help="list the named games")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(command_func="cmd_games")

    p = sub.add_parser("make-game", help="write a named or random game to a .npz file")
    p.add_argument("name", help=", ".join(MAKE_GAME_NAMES[:-1]) + " or random")
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
    p.set_defaults(command_func="cmd_make_game")

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
    p.set_defaults(command_func="cmd_simulate")

    p = sub.add_parser("solve", help="solve the QSE of a game file (eq. 2)")
    p.add_argument("game", metavar="GAME.npz", type=path_arg)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--seed", type=seed_arg, default=0, help="seed of the farsighted planner's starts"
    )
    p.set_defaults(command_func="cmd_solve")

    p = sub.add_parser(
        "plan-coverage", help="certified defender coverage of a security game (eq. 8)"
    )
    p.add_argument("game", choices=SECURITY_GAME_NAMES)
    p.add_argument(
        "--weights",
        nargs=3,
        type=float,
        required=True,
        metavar=("W1", "W2", "W3"),
        help="SUQR weights on coverage, attacker reward, attacker penalty",
    )
    p.add_argument("--targets", type=integer_arg(2), default=5, help="targets T (5)")
    p.add_argument("--resources", type=float, default=1.0, help="budget m (1)")
    p.add_argument("--correlation", type=float, default=-0.5, help="covariance games (-0.5)")
    p.add_argument(
        "--budget",
        choices=("at_most", "exact"),
        default="at_most",
        help="sum c <= m (at_most) or sum c = m (exact)",
    )
    p.add_argument("--rtol", type=float, default=1e-6, help="relative gap to certify (1e-6)")
    p.add_argument("--seed", type=seed_arg, default=0, help="seed of the game's payoffs")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(command_func="cmd_plan_coverage")

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
    p.set_defaults(command_func="cmd_fit")

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
    p.set_defaults(command_func="cmd_run")

    p = sub.add_parser("plot", help="redraw the figures of a results directory")
    p.add_argument("results", metavar="RESULTS_DIR", type=path_arg)
    p.add_argument(
        "--select",
        action="append",
        metavar="KEY=VALUE",
        help="a sweep directory only: draw the slice KEY=VALUE (repeatable)",
    )
    p.set_defaults(command_func="cmd_plot")

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
    p.set_defaults(command_func="cmd_sweep")
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command: JAX is configured (:func:`bayes_qse.configure_jax`) before its
    module, :mod:`bayes_qse.commands`, is imported.  A command that will run a process pool
    (``sweep`` or ``run`` with ``--workers N > 1`` locally) first starts the pool's fork
    server (:func:`bayes_qse._workers.start_server`), which imports the library while this
    process does."""
    if getattr(args, "workers", 1) > 1 and getattr(args, "executor", "local") == "local":
        name = getattr(args, "experiment", None)
        start_server((*PRELOAD, f"bayes_qse.experiments.{name}") if name in ENGINE else PRELOAD)
    configure_jax()
    func = globals().get(args.command_func) or __getattr__(args.command_func)
    return func(args)


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
        with warnings.catch_warnings():
            # a config's retired setting names (bayes_qse.settings.RENAMED) are the user's to
            # fix: show their DeprecationWarning, which Python hides by default
            warnings.filterwarnings("default", RETIRED_MESSAGE, DeprecationWarning)
            status = guarded(lambda: _dispatch(args), debug=args.debug)
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
    if argv is None:
        # the process exits next: interpreter shutdown would walk every object JAX, xarray
        # and pandas made looking for cycles (a few tenths of a second); everything is
        # written and closed by now, so leave them to the process's end
        gc.freeze()
    return status


__all__ = [
    "MAKE_GAME_NAMES",
    "RunHelpAction",
    "build_parser",
    "main",
]


if __name__ == "__main__":
    sys.exit(main())
