"""What the command line needs to know about the experiments without importing them: the
registry of names, the experiments on the unit engine, the executors, and the options shared
by ``bayes-qse run NAME`` and the ``experiments/NAME.py`` scripts.

It imports no JAX, NumPy or experiment module, so that ``bayes-qse --help`` (and every
subcommand's ``--help``) stays fast; :mod:`bayes_qse.experiments` re-exports these names.
"""

from __future__ import annotations

import argparse

from .console import integer_arg

#: Registry: experiment name -> module path (imported lazily by
#: :func:`bayes_qse.experiments.get_experiment`).
EXPERIMENTS: dict[str, str] = {
    "online_regret": "bayes_qse.experiments.online_regret",
    "offline_suboptimality": "bayes_qse.experiments.offline_suboptimality",
    "confidence_sets": "bayes_qse.experiments.confidence_sets",
    "posterior_inspection": "bayes_qse.experiments.posterior_inspection",
    "rationality_sweep": "bayes_qse.experiments.rationality_sweep",
    "security_games": "bayes_qse.experiments.security_games",
    "inverse_stackelberg": "bayes_qse.experiments.inverse_stackelberg",
}

#: Experiments whose units run on the unit engine (:mod:`bayes_qse.experiments.units`,
#: :mod:`bayes_qse.experiments.executors`): their ``run`` takes ``executor``, ``workers``
#: and ``address``.  Every built-in experiment is (tests/test_ported_experiments.py); one
#: registered in :data:`EXPERIMENTS` later runs its own way and takes none of them.
ENGINE = tuple(EXPERIMENTS)

#: Who runs the units (:func:`bayes_qse.experiments.executors.run_units`).
EXECUTORS = ("local", "ray")


def add_run_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options shared by ``bayes-qse run NAME`` and the ``experiments/NAME.py`` scripts."""
    parser.add_argument("--config", metavar="FILE", help="TOML file overriding the defaults")
    parser.add_argument(
        "--full", action="store_true", help="start from the full (paper-sized) configuration"
    )
    parser.add_argument(
        "--long",
        action="store_true",
        help="start from the long-horizon configuration (experiments that have one)",
    )
    parser.add_argument("--seeds", type=int, metavar="N", help="number of seeds (repetitions)")
    parser.add_argument("--seed", type=int, metavar="S", help="base seed (first repetition)")
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="results directory (default: results/<experiment>); refused if it holds "
        "anything but a run of its own",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="discard the previous results in --out instead of resuming",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--no-plot", action="store_true", help="do not draw the figures")
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="who runs the experiment's units: this host's processes or a Ray cluster",
    )
    parser.add_argument(
        "--workers", type=integer_arg(1), default=1, help="processes (local) or CPUs (ray) (1)"
    )
    parser.add_argument("--address", help="ray only: join this cluster ('auto': the running one)")
    return parser


__all__ = ["ENGINE", "EXECUTORS", "EXPERIMENTS", "add_run_arguments"]
