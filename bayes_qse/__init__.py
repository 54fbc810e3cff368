"""bayes_qse: learning the Quantal Stackelberg Equilibrium of leader-follower Markov games,
with the frequentist (MLE, confidence sets) and the Bayesian (posterior) treatment of the
follower.  See docs/math.md for the equations that the modules cite.

Importing the package switches JAX to float64 (``jax_enable_x64``) for the whole process: the
likelihood, its Hessian (the Wald set and the Laplace posterior) and the soft Bellman
recursion at large ``eta`` need it.  Set the environment variable ``BAYES_QSE_X64=0`` before
the import to leave JAX's setting alone -- only where float32 is safe: planners and
simulation; the MLE/Laplace need float64.  ``X64`` records whether the switch was made.

Importing the package also switches on JAX's persistent compilation cache in a per-user
directory (:mod:`bayes_qse._cache`: ``BAYES_QSE_CACHE_DIR`` moves it, ``BAYES_QSE_CACHE=0``
turns it off); ``CACHE_DIR`` records the directory in use (``None`` when off).

Both happen in :func:`configure_jax`, at import -- except in the ``bayes-qse`` command
(``python -m bayes_qse.cli`` or the console script), which defers them, and the import of the
public names, until a command runs, so that ``--help`` imports no JAX; the names are then
loaded on first use (module ``__getattr__``), each after :func:`configure_jax`.

The package re-exports the most used names of its modules (``__all__``); each has one home
module, which defines it and lists it in its own ``__all__`` (docs/api.md names the homes).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from ._version import __version__


def _x64_requested() -> bool:
    """``False`` when ``BAYES_QSE_X64`` is ``0``/``false``/``no``/``off`` (any case)."""
    return os.environ.get("BAYES_QSE_X64", "1").strip().lower() not in ("0", "false", "no", "off")


X64 = _x64_requested()
CACHE_DIR: str | None = None
_configured = False


def configure_jax() -> None:
    """Switch JAX to float64 (unless ``BAYES_QSE_X64=0``) and on its persistent compilation
    cache (:mod:`bayes_qse._cache`); idempotent.  Runs at ``import bayes_qse`` (outside the
    ``bayes-qse`` command, which calls it before any command runs)."""
    global CACHE_DIR, _configured
    if _configured:
        return
    import jax  # lazy: deferred in the bayes-qse command until a command runs

    if X64:
        jax.config.update("jax_enable_x64", True)
    from ._cache import configure as _configure_cache  # lazy: imports JAX

    CACHE_DIR = _configure_cache()
    _configured = True


def _is_cli_process() -> bool:
    """Whether this process is the ``bayes-qse`` command being started (``python -m
    bayes_qse.cli ...`` or the console script), judged from the interpreter's arguments."""
    argv = list(getattr(sys, "orig_argv", []) or [])
    if "-m" in argv:
        i = argv.index("-m")
        return argv[i + 1 : i + 2] == ["bayes_qse.cli"]
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return script == "bayes-qse"


#: Public name -> the submodule defining it (imported on first use in the command).
_LAZY = {
    "BayesQSEInputError": "errors",
    "ConfigError": "errors",
    "DatasetValidationError": "errors",
    "GameValidationError": "errors",
    "Dataset": "data",
    "follower_response": "follower",
    "Game": "games",
    "MLEFit": "mle",
    "fit_mle": "inference",
    "sample_posterior": "inference",
    "Solution": "planning",
    "leader_value": "planning",
    "solve_qse": "planning",
    "Posterior": "posterior",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY or name == "games":
        configure_jax()
        module = importlib.import_module(f".{_LAZY.get(name, name)}", __name__)
        value = module if name == "games" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if not _is_cli_process():
    configure_jax()
    from . import games  # noqa: E402
    from .data import Dataset  # noqa: E402
    from .errors import (  # noqa: E402
        BayesQSEInputError,
        ConfigError,
        DatasetValidationError,
        GameValidationError,
    )
    from .follower import follower_response  # noqa: E402
    from .games import Game  # noqa: E402
    from .inference import fit_mle, sample_posterior  # noqa: E402
    from .mle import MLEFit  # noqa: E402
    from .planning import Solution, leader_value, solve_qse  # noqa: E402
    from .posterior import Posterior  # noqa: E402

__all__ = [
    "BayesQSEInputError",
    "CACHE_DIR",
    "ConfigError",
    "Dataset",
    "DatasetValidationError",
    "Game",
    "GameValidationError",
    "MLEFit",
    "Posterior",
    "Solution",
    "X64",
    "__version__",
    "configure_jax",
    "fit_mle",
    "follower_response",
    "games",
    "leader_value",
    "sample_posterior",
    "solve_qse",
]
