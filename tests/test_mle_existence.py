"""``mle-optimistic``'s unpenalised MLE is kept only where it exists (issue 22, finding 2).

In the published ``--long`` run, on 3 of 10 seeds of the farsighted game, a refit dropped the
ridge fallback (the information at the *previous* estimate cleared ``1 / prior_scale^2``) on
data whose likelihood still rose along a ray: Newton walked to ``|theta|`` 6-9, where the
follower is near-deterministic, and the rarely-switching leader kept the resulting plan (regret
0.93 per episode) for 470-3200 episodes.  The refit now checks the Fisher information at the
fitted point and falls back to the ridge fit when some direction is not identified there.

Oracle: the penalised and unpenalised log-likelihoods of the response counts written in NumPy
and maximised by SciPy (BFGS), never the package's Newton.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from scipy.optimize import minimize

from bayes_qse.data import Episode
from bayes_qse.games import exploration_game
from bayes_qse.learners.common import GameSpec
from bayes_qse.learners.config import LearnerConfig
from bayes_qse.learners.online import make_learner
from bayes_qse.policy_stats import ResponseCounts

GAME = exploration_game()  # H = 2, one state, A = 2, B = 3, d = 2, eta = 1


def np_log_likelihood(theta, counts):
    """``sum n(h,s,a,b) log nu_h(b | s, a)`` of the myopic quantal response, in NumPy."""
    z = GAME.eta * np.einsum("hsabd,d->hsab", np.asarray(GAME.features), theta)
    log_nu = (
        z
        - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True))
        - z.max(-1, keepdims=True)
    )
    return float(np.sum(counts * log_nu))


def np_fit(counts, ridge):
    res = minimize(
        lambda th: -np_log_likelihood(th, counts) + 0.5 * ridge * th @ th,
        np.zeros(2),
        method="BFGS",
        options={"gtol": 1e-10},
    )
    return res.x


def refit_on(counts):
    """``theta_hat`` after ``mle-optimistic`` (every-episode refit, planning mode) is handed
    ``counts`` minus one episode, that episode, and a previous precision of ``5 I`` (so that
    its fallback rule alone would drop the ridge)."""
    spec = GameSpec.from_game(GAME, known_model=True)
    learner = make_learner("mle-optimistic", spec, LearnerConfig(mle_prior_scale=math.inf))
    H, S, A, B = GAME.shape
    state = learner.init(jnp.zeros(2, jnp.uint32))
    episode = Episode(
        states=jnp.zeros(H + 1, int),
        leader_actions=jnp.ones(H, int),
        follower_actions=jnp.zeros(H, int),
        rewards=jnp.zeros(H),
        policy=jnp.full((H, S, A), 1.0 / A),
    )
    before = jnp.asarray(counts).at[:, 0, 1, 0].add(-1.0)
    buffer = ResponseCounts(before, jnp.zeros(S).at[0].set(10.0), jnp.asarray(10, jnp.int32))
    state = state._replace(
        buffer=buffer, precision=5.0 * jnp.eye(2), theta_hat=jnp.array([0.0, 1.0])
    )
    return np.asarray(learner.update(state, episode).theta_hat)


def counts_with(cooperate_risky):
    """Response counts ``[H,S,A,B]``: under the safe action the follower chose each action 4
    times per step; under the risky one ``cooperate_risky`` = counts of ``b = 0, 1, 2``."""
    counts = np.zeros(GAME.shape)
    counts[:, 0, 0, :] = 4.0
    counts[:, 0, 1, :] = cooperate_risky
    return counts


def test_separated_data_give_the_ridge_fit_not_a_runaway_mle():
    """Bug caught: the unpenalised fit kept on separated data (the follower always cooperated
    under the risky action, so the likelihood rises as theta_2 -> infinity): 5 Newton steps
    then leave theta_2 far out (measured without the check: theta_2 = 6.2, Fisher eigenvalue
    0.05 there), where the leader would plan on a follower that surely cooperates."""
    counts = counts_with([6.0, 0.0, 0.0])
    got = refit_on(counts)
    np.testing.assert_allclose(got, np_fit(counts, ridge=1.0), atol=1e-6)
    assert np.linalg.norm(got) < 3.0


def test_identified_data_keep_the_unpenalised_mle():
    """Bug caught: a check that always falls back to the ridge (the paper's MLE would never
    run): with every direction well informed the fit is SciPy's unpenalised MLE."""
    counts = counts_with([40.0, 10.0, 10.0]) * 3.0
    got = refit_on(counts)
    np.testing.assert_allclose(got, np_fit(counts, ridge=0.0), atol=1e-5)
    assert np.max(np.abs(got - np_fit(counts, ridge=1.0))) > 1e-3  # the ridge would show
