"""The repeated security game (docs/math.md eq. 8, §5): each round the defender commits to a
coverage, the SUQR attacker sees it and attacks one target, the defender stores the pair.

Every round the defender fits the MAP of the SUQR weights under ``N(0, prior_scale^2 I)``
(Newton, warm-started) with its Laplace posterior, then plans (eq. 8e) with

- ``"greedy"``: the MAP (no exploration);
- ``"thompson"``: one Laplace draw (posterior sampling);
- ``"optimistic"``: the ``optimism_level``-quantile over ``n_draws`` Laplace draws (``1``: the
  best case over the draws, an optimistic plan over a sampled credible set).

Regret of round ``t`` is ``U(c*; w*) - U(c_t; w*)`` with ``c*`` the planner's answer for the
true ``w*`` (eq. 8c; not certified optimal, so a round's regret can be slightly negative).
The whole run is one ``lax.scan`` over rounds (fixed shapes; jit-compiled once per learner).
Round ``t`` draws from ``fold_in(PRNGKey(seed), t)``.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..commitment import CommitmentStats
from ..errors import BayesQSEInputError
from ..inference import laplace_draws
from ..likelihood import log_posterior
from ..model import as_model
from ..optim import newton_maximize
from .game import SecurityGame, attack_log_probs, defender_utility, suqr_features
from .planning import plan_core, plan_coverage

LEARNERS = ("greedy", "thompson", "optimistic")


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
    if learner == "greedy":
        return w_map[None], "mean", 0.5
    if learner == "thompson":
        return laplace_draws(key, w_map, neg_h, 1), "mean", 0.5
    return laplace_draws(key, w_map, neg_h, s.n_draws), "quantile", s.optimism_level


@partial(jax.jit, static_argnames=("learner", "n_rounds", "settings"))
def _run_core(game, key, best_value, learner, n_rounds, settings: OnlineSettings):
    T = game.defender_reward.shape[0]
    lam = 1.0 / settings.prior_scale**2

    def round_(carry, t):
        cov_hist, counts, w_prev = carry
        k_draw, k_plan, k_attack = jax.random.split(jax.random.fold_in(key, t), 3)
        stats = CommitmentStats(suqr_features(game, cov_hist), counts)
        w_map, _, neg_h, _, _ = newton_maximize(
            lambda th: log_posterior(th, as_model(game), stats, lam), w_prev, settings.newton_steps
        )
        thetas, rule, level = _plan_thetas(learner, k_draw, w_map, neg_h, settings)
        c, _, _ = plan_core(
            game, thetas, k_plan, rule, level, settings.n_starts, settings.steps,
            settings.learning_rate,
        )  # fmt: skip
        b = jax.random.categorical(k_attack, attack_log_probs(game.theta, game, c))
        u = defender_utility(game.theta, game, c)
        cov_hist = cov_hist.at[t].set(c)
        counts = counts.at[t].set(jax.nn.one_hot(b, T, dtype=counts.dtype))
        return (cov_hist, counts, w_map), (c, b, u, best_value - u, w_map)

    init = (jnp.zeros((n_rounds, T)), jnp.zeros((n_rounds, T)), jnp.zeros(3))
    _, out = jax.lax.scan(round_, init, jnp.arange(n_rounds))
    return out


def oracle_value(game: SecurityGame, n_starts: int = 16, steps: int = 500) -> float:
    """``U(c*; w*)``: the planner's best value against the true weights (eq. 8c)."""
    return plan_coverage(game, n_starts=n_starts, steps=steps).value


def run_online(
    game: SecurityGame,
    learner: str,
    n_rounds: int,
    seed: int,
    settings: OnlineSettings | None = None,
    best_value: float | None = None,
) -> OnlineRun:
    """Play ``n_rounds`` of the repeated game with ``learner``; deterministic given ``seed``."""
    if learner not in LEARNERS:
        raise BayesQSEInputError(f"learner: must be one of {LEARNERS}, got {learner!r}")
    if game.theta is None:
        raise BayesQSEInputError("game.theta: the repeated game needs the attacker's true weights")
    if int(n_rounds) != n_rounds or n_rounds < 1:
        raise BayesQSEInputError(f"n_rounds: must be an integer >= 1, got {n_rounds!r}")
    settings = OnlineSettings() if settings is None else settings
    best = oracle_value(game) if best_value is None else float(best_value)
    out = _run_core(game, jax.random.PRNGKey(seed), best, learner, int(n_rounds), settings)
    return OnlineRun(*(np.asarray(x) for x in out))
