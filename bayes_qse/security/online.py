"""The repeated security game (docs/math.md eq. 8, §5): each round the defender commits to a
coverage, the SUQR attacker sees it and attacks one target, the defender stores the pair.

Every round the defender fits the MAP of the SUQR weights under ``N(0, prior_scale^2 I)``
(Newton, warm-started) with its Laplace posterior, then plans (eq. 8e) with

- ``"greedy"``: the MAP (no exploration);
- ``"thompson"``: one Laplace draw (posterior sampling);
- ``"optimistic"``: the ``optimism_level``-quantile over ``n_draws`` Laplace draws (``1``: the
  best case over the draws, an optimistic plan over a sampled credible set).

Greedy and Thompson plans are certified optima for the weights they plan on, and so is the
optimistic plan at ``optimism_level = 1``; a lower level is the local search of
:func:`~bayes_qse.security.planning.plan_coverage` seeded with the draws' certified plans.  In
round 0 there are no data: the MAP is ``w = 0`` (a uniform attacker), whose certified plan
covers the targets with the largest ``R^d - P^d``.

Regret of round ``t`` is ``U(c*; w*) - U(c_t; w*)`` with ``c*`` the certified plan for the true
``w*`` (eq. 8c); its certified gap bounds how negative a round's regret can be.
The fit of each round is one jit-compiled function of fixed shapes; planning is NumPy.  Round
``t`` draws from ``fold_in(PRNGKey(seed), t)``.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..commitment import CommitmentStats
from ..errors import BayesQSEInputError
from ..inference import laplace_draws
from ..likelihood import map_core
from ..model import as_model
from .game import SecurityGame, attack_log_probs, defender_utility, suqr_features
from .planning import plan_coverage

#: The defender's learners of the repeated security game (not the Markov-game learners of
#: :data:`bayes_qse.learners.online.LEARNERS`).
SECURITY_LEARNERS = ("greedy", "thompson", "optimistic")


class OnlineSettings(NamedTuple):
    """Learner settings (all static under ``jit``)."""

    prior_scale: float = 10.0
    n_draws: int = 32
    optimism_level: float = 1.0
    n_starts: int = 4
    steps: int = 100
    learning_rate: float = 0.05
    newton_steps: int = 20


class OnlineRun(NamedTuple):
    """One run: ``coverage[R, T]``, ``attacks[R]``, ``utility[R]`` (true ``U(c_t; w*)``),
    ``regret[R]``, ``theta_map[R, 3]`` (the MAP the round planned from)."""

    coverage: np.ndarray
    attacks: np.ndarray
    utility: np.ndarray
    regret: np.ndarray
    theta_map: np.ndarray


def _plan_thetas(learner, key, w_map, neg_h, s: OnlineSettings):
    """The weights the learner plans on: ``[M, 3]``."""
    if learner == "greedy":
        return w_map[None]
    return laplace_draws(key, w_map, neg_h, 1 if learner == "thompson" else s.n_draws)


@partial(jax.jit, static_argnames=("learner", "settings"))
def _fit_round(game, key, t, cov_hist, counts, w_prev, learner, settings: OnlineSettings):
    """Round ``t``'s MAP (from the first ``t`` stored pairs; later rows are zero counts) and
    the weights the learner plans on."""
    lam = 1.0 / settings.prior_scale**2
    k_draw, _, _ = jax.random.split(jax.random.fold_in(key, t), 3)
    stats = CommitmentStats(suqr_features(game, cov_hist), counts)
    w_map, _, neg_h, _, _ = map_core(as_model(game), stats, lam, w_prev, settings.newton_steps)
    thetas = _plan_thetas(learner, k_draw, w_map, neg_h, settings)
    return w_map, thetas


@jax.jit
def _attack(game, key, t, c):
    _, _, k_attack = jax.random.split(jax.random.fold_in(key, t), 3)
    b = jax.random.categorical(k_attack, attack_log_probs(game.theta, game, c))
    return b, defender_utility(game.theta, game, c)


def _run_rounds(game, key, best_value, learner, n_rounds, settings: OnlineSettings):
    T = game.n_targets
    cov_hist, counts = np.zeros((n_rounds, T)), np.zeros((n_rounds, T))
    w = jnp.zeros(3)
    out = {k: [] for k in ("c", "b", "u", "w")}
    rule, level = (
        ("quantile", settings.optimism_level) if learner == "optimistic" else ("mean", 0.5)
    )
    for t in range(n_rounds):
        w, thetas = _fit_round(
            game, key, t, jnp.asarray(cov_hist), jnp.asarray(counts), w, learner, settings
        )
        plan = plan_coverage(
            game,
            np.asarray(thetas),
            rule=rule,
            level=level,
            n_starts=settings.n_starts,
            steps=settings.steps,
            learning_rate=settings.learning_rate,
            seed=t,
        )
        b, u = _attack(game, key, t, jnp.asarray(plan.coverage))
        cov_hist[t] = plan.coverage
        counts[t, int(b)] = 1.0
        for name, x in (("c", plan.coverage), ("b", int(b)), ("u", float(u)), ("w", w)):
            out[name].append(np.asarray(x))
    u = np.asarray(out["u"])
    return np.stack(out["c"]), np.asarray(out["b"]), u, best_value - u, np.stack(out["w"])


def oracle_plan(game: SecurityGame):
    """The certified plan against the true weights (eq. 8c): the regret's reference."""
    return plan_coverage(game, game.theta)


def oracle_value(game: SecurityGame) -> float:
    """``U(c*; w*)``: the certified best value against the true weights (eq. 8c)."""
    return oracle_plan(game).value


def run_security_online(
    game: SecurityGame,
    learner: str,
    n_rounds: int,
    seed: int,
    settings: OnlineSettings | None = None,
    best_value: float | None = None,
) -> OnlineRun:
    """Play ``n_rounds`` of the repeated game with ``learner``; deterministic given ``seed``."""
    if learner not in SECURITY_LEARNERS:
        raise BayesQSEInputError(f"learner: must be one of {SECURITY_LEARNERS}, got {learner!r}")
    if game.theta is None:
        raise BayesQSEInputError("game.theta: the repeated game needs the attacker's true weights")
    if int(n_rounds) != n_rounds or n_rounds < 1:
        raise BayesQSEInputError(f"n_rounds: must be an integer >= 1, got {n_rounds!r}")
    settings = OnlineSettings() if settings is None else settings
    best = oracle_value(game) if best_value is None else float(best_value)
    out = _run_rounds(game, jax.random.PRNGKey(seed), best, learner, int(n_rounds), settings)
    return OnlineRun(*out)


#: Names of the previous release, kept for one release: ``old -> new`` (CHANGELOG.md).
_DEPRECATED = {"run_online": "run_security_online", "LEARNERS": "SECURITY_LEARNERS"}


def __getattr__(name: str):
    """The deprecated names (``run_online``, ``LEARNERS``), with a DeprecationWarning; they
    were homonyms of the Markov-game runner and learner list."""
    if name in _DEPRECATED:
        new = _DEPRECATED[name]
        warnings.warn(
            f"bayes_qse.security.online.{name} is deprecated; use "
            f"bayes_qse.security.online.{new} (it will be removed in the next release)",
            DeprecationWarning,
            stacklevel=2,
        )
        return globals()[new]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SECURITY_LEARNERS",
    "OnlineRun",
    "OnlineSettings",
    "oracle_plan",
    "oracle_value",
    "run_security_online",
]
