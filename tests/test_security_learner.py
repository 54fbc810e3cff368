"""The repeated security game's learner interface (docs/math.md eq. 7c, 8; §5):
``make_security_learner(game, learner, settings, capacity) -> SecurityLearner(name, init, act,
update)`` and the round runner ``run_security_learner``, against independent computations.

Oracles, none of which calls the code under test: the MAP of the SUQR likelihood (eq. 7c) with
its Gaussian prior by SciPy's BFGS on a NumPy loop log-posterior with its analytic gradient;
the Laplace precision as the NumPy sum of the attack distributions' feature covariances plus
``I / sigma^2``; the draws rebuilt from the documented key schedule
(``split(fold_in(PRNGKey(seed), t), 3)[0]``) and the Cholesky formula, and their sample mean
and covariance against the Laplace ``N(w_hat, P^-1)``; a hand-written loop over ``init``,
``act`` and ``update`` with the attacker drawn from ``split(...)[2]`` and the utility of
eq. (8b) written as loops.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize

from bayes_qse.errors import BayesQSEInputError, ConfigError
from bayes_qse.security import attack_log_probs, plan_coverage, uniform_security_game
from bayes_qse.security.online import (
    SecurityLearnerConfig,
    make_security_learner,
    run_security_learner,
    run_security_online,
)

KAR_ADS1 = (2.876, -0.186, 0.3)  # Kar et al. 2016, Sec. 7.1 (w1 > 0: coverage attracts)
SIGMA = 2.0
# small planner settings (the planner has its own tests); the fit's settings are the defaults'
FAST = dict(prior_scale=SIGMA, n_starts=1, steps=5)


@pytest.fixture(scope="module")
def game():
    return uniform_security_game(4, 1.5, seed=3).replace(theta=jnp.asarray(KAR_ADS1))


def _features(game, c):
    """``psi[T, 3] = (c_t, R^a_t, P^a_t)`` (eq. 8a) as NumPy columns."""
    ra, pa = np.asarray(game.attacker_reward), np.asarray(game.attacker_penalty)
    return np.stack([np.asarray(c, float), ra, pa], axis=1)


def _neg_log_post(w, game, pairs, sigma):
    """``-(sum_k log q_{b_k}(c_k; w) - |w|^2 / (2 sigma^2))``, its gradient and Hessian."""
    value, grad, hess = np.sum(w**2) / (2 * sigma**2), w / sigma**2, np.eye(3) / sigma**2
    for c, b in pairs:
        psi = _features(game, c)
        su = psi @ w
        q = np.exp(su - su.max())
        q /= q.sum()
        mean = q @ psi
        value -= su[b] - su.max() - np.log(np.sum(np.exp(su - su.max())))
        grad -= psi[b] - mean
        hess += (psi * q[:, None]).T @ psi - np.outer(mean, mean)
    return value, grad, hess


def _scipy_map(game, pairs, sigma):
    """The MAP by BFGS (analytic gradient) and the Laplace precision there (NumPy Hessian)."""
    res = minimize(
        lambda w: _neg_log_post(w, game, pairs, sigma)[:2],
        np.zeros(3),
        jac=True,
        method="BFGS",
        options={"gtol": 1e-11},
    )
    return res.x, _neg_log_post(res.x, game, pairs, sigma)[2]


# stored pairs: interior coverages, corners, attacks on every target
PAIRS = [
    ([0.5, 0.5, 0.25, 0.25], 0),
    ([1.0, 0.5, 0.0, 0.0], 3),
    ([0.0, 0.0, 1.0, 0.5], 1),
    ([0.2, 0.3, 0.4, 0.6], 2),
    ([0.375, 0.375, 0.375, 0.375], 2),
    ([0.0, 0.5, 0.5, 0.5], 2),
]


@pytest.mark.parametrize("name", ["greedy", "thompson", "optimistic"])
def test_update_fits_the_map_and_draws_the_laplace_formula(game, name):
    """After each stored pair the state holds the MAP of the pairs so far (SciPy BFGS), the
    Laplace precision (NumPy Hessian + I / sigma^2), and the weights of the next plan: the MAP
    (greedy) or ``w_hat + chol(P)^-T z`` with ``z ~ N(0, I)`` from
    ``split(fold_in(PRNGKey(seed), t), 3)[0]`` (1 draw for Thompson, ``num_draws`` for
    optimistic).  Bugs caught: a pair stored in the wrong row or with the wrong attack, a
    refit that ignores the prior or drops old pairs, a fit not warm-started that stops short,
    draws with the covariance ``P`` instead of ``P^-1``, the draw key of the previous round or
    of the attacker."""
    settings = SecurityLearnerConfig(num_draws=5, **FAST)
    learner = make_security_learner(game, name, settings, capacity=len(PAIRS))
    key = jax.random.PRNGKey(7)
    state = learner.init(key)
    for t in range(len(PAIRS) + 1):
        w_hat, prec = _scipy_map(game, PAIRS[:t], SIGMA)
        assert int(state.t) == t
        np.testing.assert_allclose(state.theta_map, w_hat, atol=1e-7)
        np.testing.assert_allclose(state.precision, prec, rtol=1e-7, atol=1e-10)
        if name == "greedy":
            expected = w_hat[None]
        else:
            m = 1 if name == "thompson" else 5
            k_draw = jax.random.split(jax.random.fold_in(key, t), 3)[0]
            z = np.asarray(jax.random.normal(k_draw, (m, 3)))
            expected = w_hat + np.linalg.solve(np.linalg.cholesky(prec).T, z.T).T
        np.testing.assert_allclose(state.thetas, expected, atol=1e-6)
        if t < len(PAIRS):
            state = learner.update(state, *PAIRS[t])
    counts = np.zeros((len(PAIRS), 4))
    counts[np.arange(len(PAIRS)), [b for _, b in PAIRS]] = 1.0
    np.testing.assert_array_equal(state.stats.counts, counts)
    np.testing.assert_array_equal(state.stats.psi[:, :, 0], [c for c, _ in PAIRS])


def test_separated_attacks_keep_a_finite_map_under_the_prior(game):
    """Every attack on the attacker's most rewarding target, under varied coverage: without
    the prior the likelihood has no maximum (separated data, docs/math.md §2.3); with the
    default ``prior_scale = 10`` the warm-started Newton of 20 steps still lands on the MAP
    (SciPy BFGS) each round.  Bug caught: a refit that stops short of the MAP when the data
    push the weights out (e.g. too few Newton steps, or a cold start from the prior's mode
    with a step cap)."""
    target = int(np.argmax(np.asarray(game.attacker_reward)))
    rng = np.random.default_rng(0)
    pairs = [(np.minimum(rng.dirichlet(np.ones(5))[:4] * 1.5, 1.0), target) for _ in range(8)]
    settings = SecurityLearnerConfig(n_starts=1, steps=5)  # prior_scale 10, newton_steps 20
    learner = make_security_learner(game, "greedy", settings, capacity=len(pairs))
    state = learner.init(jax.random.PRNGKey(0))
    for t, pair in enumerate(pairs):
        state = learner.update(state, *pair)
        w_hat, _ = _scipy_map(game, pairs[: t + 1], 10.0)
        np.testing.assert_allclose(state.theta_map, w_hat, atol=1e-6)
    assert np.abs(w_hat).max() > 1.0  # the data do push the weights away from the prior's mode


def test_thompson_draws_have_the_laplace_mean_and_covariance(game):
    """Thompson's one draw per round, over 3000 root keys on the same stored pairs: its sample
    mean and covariance are the Laplace posterior's ``N(w_hat, P^-1)`` (SciPy MAP, NumPy
    precision) within sampling error (mean: 5 standard errors; covariance: 12% of each
    variance and of the scale of the off-diagonals), and optimistic's ``num_draws = 3000``
    draws of one round likewise.  Bugs caught: draws from ``N(w_hat, P)``, draws that ignore
    the key (every root key the same draw), draws centred at the previous round's MAP."""
    w_hat, prec = _scipy_map(game, PAIRS, SIGMA)
    cov = np.linalg.inv(prec)
    sd = np.sqrt(np.diag(cov))
    learner = make_security_learner(
        game, "thompson", SecurityLearnerConfig(**FAST), capacity=len(PAIRS)
    )
    state = learner.init(jax.random.PRNGKey(0))
    for pair in PAIRS[:-1]:
        state = learner.update(state, *pair)
    keys = jax.random.split(jax.random.PRNGKey(11), 3000)
    draws = np.stack(
        [np.asarray(learner.update(state._replace(key=k), *PAIRS[-1]).thetas[0]) for k in keys]
    )
    optimistic = make_security_learner(
        game, "optimistic", SecurityLearnerConfig(num_draws=3000, **FAST), capacity=len(PAIRS)
    )
    ostate = optimistic.init(jax.random.PRNGKey(0))
    for pair in PAIRS:
        ostate = optimistic.update(ostate, *pair)
    for sample in (draws, np.asarray(ostate.thetas)):
        assert sample.shape == (3000, 3)
        assert np.all(np.abs(sample.mean(0) - w_hat) < 5 * sd / np.sqrt(3000))
        scale = np.outer(sd, sd)
        assert np.all(np.abs(np.cov(sample.T) - cov) < 0.12 * scale)


def _loop_utility(w, game, c):
    """Eq. (8a)-(8b) as loops over targets."""
    rd, pd = np.asarray(game.defender_reward), np.asarray(game.defender_penalty)
    psi = _features(game, c)
    su = [float(psi[t] @ w) for t in range(len(c))]
    e = [np.exp(x - max(su)) for x in su]
    return sum(e[t] * (c[t] * rd[t] + (1 - c[t]) * pd[t]) for t in range(len(c))) / sum(e)


@pytest.mark.parametrize("name", ["greedy", "thompson", "optimistic"])
def test_runner_is_the_loop_over_init_act_update(game, name):
    """``run_security_online`` equals a hand-written loop: ``init(PRNGKey(seed))``, then per
    round ``act``, the SUQR attack drawn with ``split(fold_in(PRNGKey(seed), t), 3)[2]``, the
    true utility (eq. 8b as loops), ``update``; regret ``U(c*; w*) - U(c_t; w*)`` with ``c*``
    the certified plan.  The learner made on a game whose true weights are removed (or
    changed) plays the same plans: it never reads them.  Bugs caught: the attacker's key of
    another round or the learner's draw key, the round's MAP recorded after its update, the
    regret against the wrong reference, a learner that plans on ``game.theta``."""
    settings = SecurityLearnerConfig(num_draws=4, **FAST)
    rounds, seed = 4, 3
    run = run_security_online(game, name, rounds, seed, settings)
    w_true = np.asarray(game.theta)
    best = plan_coverage(game, w_true).value
    for blind in (game.replace(theta=None), game.replace(theta=jnp.zeros(3))):
        learner = make_security_learner(blind, name, settings, capacity=rounds)
        key = jax.random.PRNGKey(seed)
        state = learner.init(key)
        for t in range(rounds):
            plan = learner.act(state)
            k_attack = jax.random.split(jax.random.fold_in(key, t), 3)[2]
            log_q = attack_log_probs(jnp.asarray(w_true), game, jnp.asarray(plan.coverage))
            b = int(jax.random.categorical(k_attack, log_q))
            np.testing.assert_array_equal(run.coverage[t], plan.coverage)
            np.testing.assert_array_equal(run.theta_map[t], state.theta_map)
            assert run.attacks[t] == b
            u = _loop_utility(w_true, game, plan.coverage)
            assert run.utility[t] == pytest.approx(u, abs=1e-12)
            assert run.regret[t] == pytest.approx(best - u, abs=1e-12)
            assert run.gap[t] == plan.gap
            state = learner.update(state, plan.coverage, b)
    assert np.all(run.regret >= -run.gap - 1e-7)  # the reference is certified


def test_bad_inputs_are_refused_naming_the_field(game):
    """Each bad input raises one line naming its field, before any fit.  Bugs caught: an
    unknown learner reaching the planner, a zero capacity compiled, a run longer than the
    learner's capacity started (it would fail at round ``capacity``), a pair stored past the
    capacity (a jitted ``.at[t].set`` drops it silently), an infeasible coverage or an attack
    index out of range stored as data."""
    settings = SecurityLearnerConfig(**FAST)
    cases = [
        (lambda: make_security_learner(game, "ucb", settings), "learner"),
        (lambda: make_security_learner(game, "greedy", settings, capacity=0), "capacity"),
        (lambda: make_security_learner(game, "greedy", settings, capacity=2.5), "capacity"),
        (lambda: make_security_learner(game, "greedy", settings, capacity=True), "capacity"),
        (lambda: make_security_learner(game, "greedy", 3), "settings"),
        (lambda: run_security_online(game, "greedy", 0, 0, settings), "n_rounds"),
        (lambda: run_security_online(game.replace(theta=None), "greedy", 2, 0), "game.theta"),
    ]
    for call, field in cases:
        with pytest.raises(BayesQSEInputError, match=f"^{field}"):
            call()
    with pytest.raises(ConfigError, match="prior_scale"):
        make_security_learner(game, "greedy", {"prior_scale": -1.0})
    learner = make_security_learner(game, "greedy", settings, capacity=1)
    # more rounds than the learner stores: refused before the first round is played (a
    # check left to ``act`` would stop a long run at round ``capacity``, its work lost)
    played = []
    counting = learner._replace(act=lambda state: played.append(1) or learner.act(state))
    with pytest.raises(BayesQSEInputError, match="^n_rounds: 2 rounds, .* at most 1 pairs"):
        run_security_learner(game, counting, 2, 0)
    assert played == []
    assert len(run_security_learner(game, counting, 1, 0).regret) == 1  # capacity is enough
    state = learner.init(jax.random.PRNGKey(0))
    for coverage, attack, field in [
        ([0.5, 0.5, 0.5], 0, "coverage"),  # 3 of 4 targets
        ([1.2, 0.0, 0.0, 0.0], 0, "coverage"),
        ([1.0, 1.0, 0.0, 0.0], 0, "coverage"),  # over the budget 1.5
        ([np.nan, 0.0, 0.0, 0.0], 0, "coverage"),
        ([0.5, 0.5, 0.5, 0.0], 4, "attack"),
        ([0.5, 0.5, 0.5, 0.0], -1, "attack"),
        ([0.5, 0.5, 0.5, 0.0], 1.0, "attack"),
    ]:
        with pytest.raises(BayesQSEInputError, match=f"^{field}"):
            learner.update(state, coverage, attack)
    full = learner.update(state, [0.5, 0.5, 0.5, 0.0], 1)
    with pytest.raises(BayesQSEInputError, match="^capacity"):
        learner.act(full)
    with pytest.raises(BayesQSEInputError, match="^capacity"):
        learner.update(full, [0.5, 0.5, 0.5, 0.0], 1)


def _grid_best(game, thetas, step=0.05):
    """``max_c max_j U(c; w_j)`` over the grid of ``C_m`` with spacing ``step`` (NumPy; a lower
    bound on the true maximum)."""
    axis = np.arange(0.0, 1.0 + 1e-9, step)
    cs = np.stack(np.meshgrid(*[axis] * game.n_targets, indexing="ij"), -1).reshape(-1, 4)
    cs = cs[cs.sum(1) <= game.resources + 1e-9]
    rd, pd = np.asarray(game.defender_reward), np.asarray(game.defender_penalty)
    best = -np.inf
    for w in np.asarray(thetas):
        psi_w = (
            w[0] * cs
            + w[1] * np.asarray(game.attacker_reward)
            + w[2] * np.asarray(game.attacker_penalty)
        )
        e = np.exp(psi_w - psi_w.max(1, keepdims=True))
        best = max(best, float(np.max(np.sum(e * (cs * rd + (1 - cs) * pd), 1) / e.sum(1))))
    return best


@pytest.mark.parametrize("name", ["greedy", "thompson", "optimistic"])
def test_act_plans_the_rule_on_the_state_weights(game, name):
    """``act`` plans on ``state.thetas`` by the learner's rule (eq. 8e): greedy and Thompson
    the optimum of ``U(c; w)`` for their one weight vector, optimistic at ``optimism_level =
    1`` the best case ``max_c max_j U(c; w_j)`` over its draws; each at least the grid
    optimum (spacing 0.05, NumPy loops) for those weights.  Bugs caught: optimistic planning
    by the mean rule or a low quantile, a plan on the MAP instead of the draws, a plan on
    the previous round's weights."""
    settings = SecurityLearnerConfig(num_draws=6, n_starts=1, steps=5)  # prior_scale 10
    learner = make_security_learner(game, name, settings, capacity=3)
    state = learner.init(jax.random.PRNGKey(5))
    for pair in PAIRS[:2]:
        state = learner.update(state, *pair)
    plan = learner.act(state)
    thetas = np.asarray(state.thetas)
    value = max(_loop_utility(w, game, plan.coverage) for w in thetas)
    best = _grid_best(game, thetas)
    assert value >= best - 1e-9
    if name == "optimistic":  # the draws disagree: the mean rule's plan is visibly worse
        mean_plan = plan_coverage(game, thetas, rule="mean", n_starts=1, steps=5)
        assert max(_loop_utility(w, game, mean_plan.coverage) for w in thetas) < best - 1e-3
