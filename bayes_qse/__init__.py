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
"""

from __future__ import annotations

import os

import jax


def _x64_requested() -> bool:
    """``False`` when ``BAYES_QSE_X64`` is ``0``/``false``/``no``/``off`` (any case)."""
    return os.environ.get("BAYES_QSE_X64", "1").strip().lower() not in ("0", "false", "no", "off")


X64 = _x64_requested()
if X64:
    jax.config.update("jax_enable_x64", True)

from ._cache import configure as _configure_cache  # noqa: E402

CACHE_DIR = _configure_cache()

from . import games  # noqa: E402
from ._version import __version__  # noqa: E402
from .data import Dataset  # noqa: E402
from .errors import (  # noqa: E402
    BayesQSEInputError,
    ConfigError,
    DatasetValidationError,
    GameValidationError,
)
from .follower import follower_response  # noqa: E402
from .games import Game  # noqa: E402
from .inference import MLEFit, fit_mle, sample_posterior  # noqa: E402
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
    "fit_mle",
    "follower_response",
    "games",
    "leader_value",
    "sample_posterior",
    "solve_qse",
]
