"""bayes_qse: learning the Quantal Stackelberg Equilibrium of leader-follower Markov games,
with the frequentist (MLE, confidence sets) and the Bayesian (posterior) treatment of the
follower.  See DESIGN.md for the equations that the modules cite.

Importing the package enables JAX's float64 mode: the likelihood, its Hessian (the Wald set
and the Laplace posterior) and the soft Bellman recursion at large ``eta`` need it.
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

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
from .inference import MLEFit, Posterior, fit_mle, sample_posterior  # noqa: E402
from .planning import Solution, leader_value, solve_qse  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "BayesQSEInputError",
    "ConfigError",
    "Dataset",
    "DatasetValidationError",
    "Game",
    "GameValidationError",
    "MLEFit",
    "Posterior",
    "Solution",
    "__version__",
    "fit_mle",
    "follower_response",
    "games",
    "leader_value",
    "sample_posterior",
    "solve_qse",
]
