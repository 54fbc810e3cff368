"""Stackelberg security games against a SUQR attacker who sees the defender's commitment
(docs/math.md eq. 7 and eq. 8): the game and its generators (:mod:`.game`), the defender's
planner (:mod:`.planning`), learning the attacker (:mod:`.inference`) and the repeated game
(:mod:`.online`).

The package re-exports the public names of :mod:`.game`, :mod:`.inference` and
:mod:`.planning`, which define them; the repeated game's names are imported from
:mod:`.online` (``run_security_online``, ``SECURITY_LEARNERS``).
"""

from __future__ import annotations

from .game import (
    NGUYEN2013_WEIGHTS,
    SECURITY_GAMES,
    SUQR_MODEL,
    SecurityGame,
    attack_log_probs,
    covariance_security_game,
    defender_utility,
    make_security_game,
    named_security_game,
    suqr_features,
    uniform_security_game,
)
from .inference import (
    AttackData,
    attack_stats,
    fit_suqr_mle,
    random_coverages,
    simulate_attacks,
    suqr_log_likelihood,
    suqr_numpyro_model,
    suqr_posterior,
)
from .planning import (
    CoveragePlan,
    grid_search_coverage,
    plan_coverage,
    plan_per_draw,
    project_coverage,
)

__all__ = [
    "NGUYEN2013_WEIGHTS",
    "SECURITY_GAMES",
    "SUQR_MODEL",
    "AttackData",
    "CoveragePlan",
    "SecurityGame",
    "attack_log_probs",
    "attack_stats",
    "covariance_security_game",
    "defender_utility",
    "fit_suqr_mle",
    "grid_search_coverage",
    "make_security_game",
    "named_security_game",
    "plan_coverage",
    "plan_per_draw",
    "project_coverage",
    "random_coverages",
    "simulate_attacks",
    "suqr_features",
    "suqr_log_likelihood",
    "suqr_numpyro_model",
    "suqr_posterior",
    "uniform_security_game",
]
