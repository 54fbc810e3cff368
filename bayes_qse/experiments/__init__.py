"""The experiments of docs/math.md §7: a registry, configuration loading, and a shared entry point.

Each experiment is a module ``bayes_qse.experiments.<name>`` that defines

- ``Config``: its config, a frozen :class:`~bayes_qse.experiments.config.ExperimentConfig`
  dataclass (one field per TOML key) that checks itself when made (a one-line
  :class:`ConfigError` naming the key);
- ``DEFAULT_CONFIG``: the published form of its defaults (``Config.defaults()``), sized for
  CI (well under a minute or two on 2 cores);
- ``FULL_CONFIG``: that of the paper-sized run (``--full``, ``Config.preset(...)``);
- ``NAME``: its registered name (the name its results store carries);
- ``make_units(config) -> list[Unit]``: its units (:mod:`bayes_qse.experiments.units`);
- ``write_results(store, config, units, loaded) -> Path``: its results files, from the units'
  parts by key;
- ``run(config, out_dir, *, progress=True, executor="local", workers=1, address=None) ->
  Path``: runs (resumably, through a :class:`~bayes_qse.experiments.store.RunStore`) and
  returns the results file; every built-in experiment's ``run`` is the one runner,
  :func:`bayes_qse.experiments.executors.run_experiment_module`, with its module
  (``run = experiment_run(__name__)``, :func:`~bayes_qse.experiments.executors.experiment_run`);
- ``plot(out_dir) -> list[Path]``: the figures (and tables) from a results directory;

Every config holds ``seeds`` (how many independent repetitions) and ``base_seed`` (the seed of
the first; repetition ``i`` uses ``base_seed + i``).

The same experiment runs from the command line as ``bayes-qse run NAME`` or as the script
``experiments/NAME.py``; both go through :func:`experiment_main`.

This package defines the entry point and re-exports the registry and the engine's options
(``EXPERIMENTS``, ``ENGINE``, ``add_run_arguments``) from their home,
:mod:`bayes_qse.run_options`, and the configs' base class and typed merge
(``ExperimentConfig``, ``merge_config``, ``nest_learner_keys``, ``FLAT_LEARNER_KEYS``) from
theirs, :mod:`bayes_qse.experiments.config`; an experiment's own names are imported from its
module.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import importlib.util
import json
import os
import sys
import textwrap
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from .._validate import SEED_MAX
from ..console import OneLineArgumentParser, guarded
from ..errors import ConfigError
from ..run_options import ENGINE, EXPERIMENTS, add_run_arguments
from .config import FLAT_LEARNER_KEYS, ExperimentConfig, merge_config, nest_learner_keys
from .executors import check_executor
from .locks import OutputLock
from .store import RunStore, check_run_dir

REQUIRED_ATTRIBUTES = ("DEFAULT_CONFIG", "FULL_CONFIG", "run", "plot")
#: At most this many seeds (repetitions) per run: beyond it the per-seed results alone would
#: exhaust memory long before the run could finish.
MAX_SEEDS = 100_000


def available_experiments() -> list[str]:
    """Registered experiment names whose module is present in this installation."""
    return [name for name, mod in EXPERIMENTS.items() if importlib.util.find_spec(mod) is not None]


def get_experiment(name: str) -> ModuleType:
    """Import and return the experiment module registered as ``name``.

    Raises:
        ConfigError: ``name`` is not registered, or its module is not installed or incomplete.
    """
    if name not in EXPERIMENTS:
        raise ConfigError(
            f"experiment: unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}"
        )
    module_path = EXPERIMENTS[name]
    if importlib.util.find_spec(module_path) is None:
        raise ConfigError(f"experiment: {name!r} is registered but not available in this version")
    module = importlib.import_module(module_path)
    missing = [a for a in REQUIRED_ATTRIBUTES if not hasattr(module, a)]
    if missing:
        raise ConfigError(f"experiment: module {module_path} lacks {', '.join(missing)}")
    return module


# ---------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------


def read_toml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a TOML file; :class:`ConfigError` naming the file on any failure."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config: file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config: {path} is a directory, not a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {path} is not valid TOML ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config: cannot read {path} ({exc})") from None


def load_config(
    module: ModuleType,
    path: str | os.PathLike | None = None,
    full: bool = False,
    overrides: Mapping[str, Any] | None = None,
    long: bool = False,
) -> dict[str, Any]:
    """An experiment's configuration: defaults, then a TOML file, then ``overrides``.

    Args:
        module: the experiment module (from :func:`get_experiment`).
        path: an optional TOML file of ``key = value`` lines (tables for nested dicts).
        full: start from ``FULL_CONFIG`` instead of ``DEFAULT_CONFIG``.
        overrides: final values (e.g. ``{"seeds": 3}`` from ``--seeds``); ``None`` values are
            ignored.
        long: start from the module's ``LONG_CONFIG`` (long horizons, ``--long``) instead.

    Raises:
        ConfigError: unknown key, wrong type, ``seeds`` outside ``[1, MAX_SEEDS]``,
            ``base_seed < 0``, ``base_seed + seeds - 1 > 2**32 - 1`` (naming the key), or
            whatever the module's ``Config`` refuses (:meth:`ExperimentConfig.check`).
    """
    if long and full:
        raise ConfigError("--long: cannot be combined with --full (it is a full-sized run)")
    if long and not hasattr(module, "LONG_CONFIG"):
        raise ConfigError(f"--long: experiment {module.__name__} has no long configuration")
    preset = module.LONG_CONFIG if long else module.FULL_CONFIG if full else None
    base = copy.deepcopy(dict(preset if preset is not None else module.DEFAULT_CONFIG))
    for key in ("seeds", "base_seed"):
        if key not in base:
            raise ConfigError(f"config: {module.__name__} defines no {key!r} default")
    config = merge_config(base, {})
    if path is not None:
        config = merge_config(config, read_toml(path))
    if overrides:
        config = merge_config(config, {k: v for k, v in overrides.items() if v is not None})
    if config["seeds"] < 1:
        raise ConfigError(f"config: seeds must be >= 1, got {config['seeds']}")
    if config["seeds"] > MAX_SEEDS:
        raise ConfigError(f"config: seeds must be <= {MAX_SEEDS}, got {config['seeds']}")
    if config["base_seed"] < 0:
        raise ConfigError(f"config: base_seed must be >= 0, got {config['base_seed']}")
    if config["base_seed"] + config["seeds"] - 1 > SEED_MAX:
        raise ConfigError(
            f"config: base_seed + seeds - 1 must be <= {SEED_MAX} (seeds are 32-bit), got "
            f"{config['base_seed'] + config['seeds'] - 1}"
        )
    config_type = getattr(module, "Config", None)
    if config_type is not None:  # the experiment's config dataclass checks it, in its form
        config = config_type.from_mapping(config).to_mapping()
    return config


# ---------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _toml_value(value: Any) -> str:
    """``value`` as written in a TOML file (JSON, but ``inf`` for infinity)."""
    return json.dumps(value).replace("Infinity", "inf")


def experiment_help(name: str) -> str:
    """The help text of experiment ``name``: the first paragraph of its module docstring, then
    every setting (TOML key, dotted for nested tables) with its default, and its value under
    ``--full`` where that differs.

    Raises:
        ConfigError: ``name`` is not an available experiment.
    """
    module = get_experiment(name)
    doc = (module.__doc__ or "").strip().split("\n\n")[0]
    intro = textwrap.fill(" ".join(doc.split()), width=88)
    default, full = _flatten(module.DEFAULT_CONFIG), _flatten(module.FULL_CONFIG)
    width = max(len(k) for k in default)
    lines = [
        f"experiment {name}:",
        textwrap.indent(intro, "  "),
        "",
        f"settings of {name} (TOML keys for --config; default, then the --full value where it "
        "differs):",
    ]
    for key, value in default.items():
        text = f"  {key:<{width}} = {_toml_value(value)}"
        if key in full and full[key] != value:
            text += f"   (--full: {_toml_value(full[key])})"
        lines.append(text)
    return "\n".join(lines)


def run_experiment(
    name: str,
    *,
    config_path: str | os.PathLike | None = None,
    full: bool = False,
    seeds: int | None = None,
    seed: int | None = None,
    out: str | os.PathLike | None = None,
    restart: bool = False,
    show_progress: bool = True,
    make_plots: bool = True,
    long: bool = False,
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
) -> tuple[Path, list[Path]]:
    """Load the config, run experiment ``name`` (resuming) and draw its figures.

    The output directory's lock (:class:`~bayes_qse.experiments.locks.OutputLock`) is held
    from before ``--restart`` discards anything until the figures are drawn: a second writer
    of the same directory gets a :class:`ConfigError` naming this one.

    ``executor``, ``workers``, ``address``: who runs the experiment's units (every built-in
    experiment is on the unit engine, :data:`ENGINE`;
    :func:`bayes_qse.experiments.executors.run_units`); an experiment registered in
    :data:`EXPERIMENTS` since, whose ``run`` may lack them, refuses anything but the defaults.

    Returns ``(results_path, figure_paths)``.
    """
    module = get_experiment(name)
    check_executor(executor, workers, address)
    engine = {}
    if (executor, workers, address) != ("local", 1, None):
        if name not in ENGINE:
            raise ConfigError(
                f"executor: {name} runs in one process; --executor, --workers and --address "
                f"are for {', '.join(ENGINE)}"
            )
        engine = {"executor": executor, "workers": workers, "address": address}
    config = load_config(module, config_path, full, {"seeds": seeds, "base_seed": seed}, long)
    out_dir = check_run_dir(Path(out) if out is not None else Path("results") / name)
    with OutputLock(out_dir, name):
        if restart:
            RunStore(out_dir, name, config, resume=False).close()
        try:
            results = Path(module.run(config, out_dir, progress=show_progress, **engine))
        except ConfigError as exc:  # the store speaks the Python API; say the flag instead
            text = str(exc).replace("(resume=False / --restart)", "(--restart)")
            text = text.replace("resume=False", "--restart")
            if text == str(exc):
                raise
            raise ConfigError(text) from None
        figures = [Path(p) for p in module.plot(out_dir)] if make_plots else []
    return results, figures


def run_and_report(name: str, args: argparse.Namespace) -> int:
    """Run experiment ``name`` with the options of :func:`add_run_arguments` and print where
    the results and figures are (shared by ``bayes-qse run`` and the experiment scripts)."""
    results, figures = run_experiment(
        name,
        config_path=args.config,
        full=args.full,
        seeds=args.seeds,
        seed=args.seed,
        out=args.out,
        restart=args.restart,
        show_progress=not args.no_progress,
        make_plots=not args.no_plot,
        long=getattr(args, "long", False),
        executor=args.executor,
        workers=args.workers,
        address=args.address,
    )
    print(f"results: {results}")
    for fig in figures:
        print(f"figure:  {fig}")
    return 0


def experiment_main(name: str, argv: Sequence[str] | None = None) -> int:
    """Command-line entry point of the ``experiments/<name>.py`` scripts.

    Parses ``--config FILE --full --seeds N --seed S --out DIR --restart --no-progress
    --no-plot``, runs the experiment and prints where the results are.  Bad input prints one
    line on stderr and exits with status 2.
    """
    try:
        about = experiment_help(name)
    except ConfigError:
        about = ""
    parser = OneLineArgumentParser(
        prog=f"experiments/{name}.py",
        description=f"Run the {name} experiment (same as `bayes-qse run {name}`).",
        epilog=about,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)

    code = guarded(lambda: run_and_report(name, args), debug=args.debug)
    if code:
        sys.exit(code)
    return 0


__all__ = [
    "ENGINE",
    "ExperimentConfig",
    "EXPERIMENTS",
    "FLAT_LEARNER_KEYS",
    "add_run_arguments",
    "MAX_SEEDS",
    "available_experiments",
    "experiment_help",
    "experiment_main",
    "get_experiment",
    "load_config",
    "merge_config",
    "nest_learner_keys",
    "read_toml",
    "run_experiment",
]
