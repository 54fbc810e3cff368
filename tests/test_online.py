"""Online learners and their episode loop (docs/math.md §5): exact regret, determinism, resuming a
killed run, no recompilation, and the pure building blocks against independent references."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import numpyro  # noqa: F401  (imported by RunStore's manifest; it registers JAX config options,
import pytest  # and a changed config legitimately retraces: import it before compiling)
from scipy import stats

from bayes_qse.data import buffer_add, play_episode, simulate
from bayes_qse.errors import BayesQSEInputError, ConfigError
from bayes_qse.experiments.store import RunStore
from bayes_qse.games import random_game, steering_game
from bayes_qse.leader_model import EmpiricalBonusModel, dirichlet_draws, log_gamma_draws
from bayes_qse.learners import (
    GameSpec,
    Learner,
    LearnerConfig,
    OnlineRunner,
    make_learner,
    run_online,
)
from bayes_qse.learners.common import (
    laplace_set_size,
    warm_gradient_plan,
)
from bayes_qse.learners.online import quantile_level
from bayes_qse.optim import online_newton_step, positive_precision
from bayes_qse.planning import policy_value
from bayes_qse.policy_stats import ResponseCounts, response_counts_add
from tests.reference import deterministic_policies, np_follower_response, np_policy_value


@pytest.fixture(scope="module")
def game():
    return random_game(4, 2, 2, 3, 2, 3, eta=2.0)


@pytest.fixture(scope="module")
def greedy_runner(game):
    return OnlineRunner(game, "greedy", episodes=12, chunk=4)


def brute_force_optimum(game) -> float:
    """max_pi J(pi) over deterministic policies, with the NumPy loop references (myopic)."""
    P, r, rho = (np.asarray(x) for x in (game.transitions, game.leader_reward, game.initial_dist))
    u = np.einsum("hsabd,d->hsab", np.asarray(game.features), np.asarray(game.theta))
    H, S, A, _ = r.shape
    nu = np_follower_response(P, u, float(game.eta))
    return max(np_policy_value(P, r, rho, nu, pi) for pi in deterministic_policies(H, S, A))


# ---- the episode loop --------------------------------------------------------------------


def _schedule_runner(game, schedule, episodes, chunk):
    """An OnlineRunner whose learner announces ``schedule[t % K]`` at episode ``t`` (a fixed
    schedule of stochastic policies: the regret it must record is known in advance).  Built
    from the public ``Learner`` interface: the greedy learner's initial state, an update
    that only stores the episode, and an ``act`` that reads the episode count."""
    runner = OnlineRunner(game, "greedy", episodes=episodes, chunk=chunk)
    table = jnp.asarray(schedule)
    runner.learner = Learner(
        "schedule",
        runner.learner.init,
        lambda state: table[state.buffer.count % len(schedule)],
        lambda state, episode: state._replace(buffer=_store(state.buffer, episode)),
    )
    return runner


def _store(data, episode):
    """Store an episode in the learner's data: the running counts of a myopic follower
    (``ResponseCounts``) or the episode buffer of a farsighted one."""
    if isinstance(data, ResponseCounts):
        return response_counts_add(data, episode)
    return buffer_add(data, episode)


def _np_value(game, pi):
    P, r, rho = (np.asarray(x) for x in (game.transitions, game.leader_reward, game.initial_dist))
    u = np.einsum("hsabd,d->hsab", np.asarray(game.features), np.asarray(game.theta))
    nu = np_follower_response(P, u, float(game.eta), pi, bool(game.farsighted))
    return np_policy_value(P, r, rho, nu, pi)


def test_runner_regret_of_a_fixed_schedule_matches_numpy(game):
    """The runner's regret at episode t is J* - J(pi^t): J* by brute force over deterministic
    policies and J(pi^t) by the NumPy loops, for a schedule of random stochastic policies (a
    wrong sign, an off-by-one episode, a value under the estimated model or the wrong
    optimum would all fail)."""
    H, S, A, _ = game.shape
    schedule = np.random.default_rng(0).dirichlet(np.ones(A), size=(3, H, S))
    runner = _schedule_runner(game, schedule, episodes=6, chunk=3)
    out = run_online(game, "greedy", episodes=6, seeds=[0, 1], runner=runner)
    best = brute_force_optimum(game)
    assert float(out["optimal_value"]) == pytest.approx(best, abs=1e-10)
    expected = np.array([best - _np_value(game, schedule[t % 3]) for t in range(6)])
    assert np.all(expected > 1e-3)  # the schedule is suboptimal: a zero regret would fail
    np.testing.assert_allclose(out["regret"], np.tile(expected, (2, 1)), atol=1e-10)


@pytest.mark.slow
def test_runner_regret_of_a_fixed_schedule_matches_numpy_farsighted():
    """The same on the farsighted steering game, whose optimum is the closed form
    max_x sigmoid(3 (2x - 1)) (2 - x) (J(pi^t) by the farsighted NumPy loops)."""
    g = steering_game()
    H, S, A, _ = g.shape
    schedule = np.random.default_rng(1).dirichlet(np.ones(A), size=(2, H, S))
    runner = _schedule_runner(g, schedule, episodes=4, chunk=2)
    out = run_online(g, "greedy", episodes=4, seeds=[3], runner=runner)
    x = np.linspace(0, 1, 200_001)
    best = ((2 - x) / (1 + np.exp(-3 * (2 * x - 1)))).max()
    assert float(out["optimal_value"]) == pytest.approx(best, abs=1e-6)
    expected = [best - _np_value(g, schedule[t % 2]) for t in range(4)]
    np.testing.assert_allclose(out["regret"][0], expected, atol=1e-6)


def test_runner_is_deterministic_per_seed(game, greedy_runner):
    a = run_online(game, "greedy", episodes=12, seeds=[0, 1], runner=greedy_runner)
    b = run_online(game, "greedy", episodes=12, seeds=[0, 1], runner=greedy_runner)
    c = run_online(game, "greedy", episodes=12, seeds=[1, 0], runner=greedy_runner)
    for key in ("regret", "theta_error", "set_size"):
        np.testing.assert_array_equal(a[key], b[key])
        np.testing.assert_array_equal(a[key][::-1], c[key])  # a seed's run ignores its batch
    assert not np.array_equal(a["regret"][0], a["regret"][1])
    # exact regret against the true optimum is never negative for a myopic follower
    assert np.all(a["regret"] >= -1e-12)


def _np_expected_fisher(game, pi):
    """Expected Fisher information of one episode played with ``pi`` (myopic follower, at the
    true theta): ``sum_h sum_s d_h(s) sum_a pi(a|s) eta^2 Cov_nu(phi_hsa.)``, NumPy loops."""
    P, phi, th, eta = (
        np.asarray(x) for x in (game.transitions, game.features, game.theta, game.eta)
    )
    H, S, A, B = game.shape
    d = np.asarray(game.initial_dist, float)
    info = np.zeros((game.feature_dim, game.feature_dim))
    for h in range(H):
        d_next = np.zeros(S)
        for s_, a in itertools.product(range(S), range(A)):
            x = phi[h, s_, a]
            z = eta * x @ th
            nu = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
            m = nu @ x
            w = d[s_] * pi[h, s_, a]
            info += w * eta**2 * (x - m).T @ (nu[:, None] * (x - m))
            d_next += w * nu @ P[h, s_, a]
        d = d_next
    return info


@pytest.mark.slow
def test_greedy_learns_theta_at_the_fisher_rate(game):
    """On a small myopic game in which every deterministic policy identifies theta, greedy's
    estimate after 199 episodes is (i) at most half as far from theta as after 10 (mean over
    4 seeds) and (ii) within sqrt(chi2_3(0.999) lambda_max(I^-1)) of it, I the expected Fisher
    information of 199 episodes of the QSE policy (the policy greedy converges to).  A learner
    that never updates (error ||theta|| = 0.58), or one fitting a wrong likelihood (a bias
    that does not shrink), fails."""
    H, S, A, _ = game.shape
    lam_min = [
        np.linalg.eigvalsh(_np_expected_fisher(game, pi)).min()
        for pi in deterministic_policies(H, S, A)
    ]
    assert min(lam_min) > 0.1  # identified under every policy: greedy is consistent here
    qse = max(deterministic_policies(H, S, A), key=lambda pi: _np_value(game, pi))
    T = 199
    info = T * _np_expected_fisher(game, qse)
    bound = np.sqrt(stats.chi2(game.feature_dim).ppf(0.999) / np.linalg.eigvalsh(info).min())
    assert bound < 0.5 * np.linalg.norm(game.theta)  # the bound is informative
    out = run_online(game, "greedy", episodes=T + 1, seeds=[0, 1, 2, 3], chunk=50)
    err = out["theta_error"]  # err[:, t]: the estimate behind the policy of episode t
    assert err[:, T].mean() < 0.5 * err[:, 10].mean()
    assert np.all(err[:, T] < bound), (err[:, T], bound)


def test_no_recompilation_after_the_first_chunk(game, greedy_runner):
    seeds = [5, 6]
    states = greedy_runner.init_states(seeds)
    before = greedy_runner.n_traces
    for t0 in range(0, 12, 4):
        states, _ = greedy_runner.run_chunk(states, seeds, t0)
    # states that went through NumPy (as after a checkpoint) do not retrace either
    states = jax.tree_util.tree_map(lambda x: jnp.asarray(np.asarray(x)), states)
    greedy_runner.run_chunk(states, seeds, 0)
    assert greedy_runner.n_traces == before == 1
    assert greedy_runner._chunk._cache_size() == 1


@pytest.mark.parametrize(
    ("saves_before_kill", "replayed"),
    [
        (4, [6, 9]),  # killed after chunk 2 was saved for both seeds
        (3, [3, 6, 9, 6, 9]),  # killed between the two per-seed saves of chunk 2
    ],
)
def test_killed_and_resumed_run_equals_uninterrupted(
    tmp_path, game, monkeypatch, saves_before_kill, replayed
):
    runner = OnlineRunner(game, "thompson", {"num_draws": 4}, episodes=12, chunk=3)
    full = run_online(game, "thompson", episodes=12, seeds=[0, 2], runner=runner)

    store = RunStore(tmp_path, "online_regret", {"seeds": 2, "base_seed": 0})
    original = RunStore.save_checkpoint
    calls = {"n": 0}

    def save_then_die(self, key, pytree, meta=None, part=None):
        original(self, key, pytree, meta, part)
        calls["n"] += 1
        if calls["n"] == saves_before_kill:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(RunStore, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_online(
            game,
            "thompson",
            episodes=12,
            seeds=[0, 2],
            runner=runner,
            store=store,
            checkpoint_key="g.thompson",
        )
    monkeypatch.setattr(RunStore, "save_checkpoint", original)
    store.close()
    reopened = RunStore(tmp_path, "online_regret", {"seeds": 2, "base_seed": 0})
    played = []
    run_chunk = runner.run_chunk
    monkeypatch.setattr(
        runner, "run_chunk", lambda s, seeds, t0: played.append(t0) or run_chunk(s, seeds, t0)
    )
    resumed = run_online(
        game,
        "thompson",
        episodes=12,
        seeds=[0, 2],
        runner=runner,
        store=reopened,
        checkpoint_key="g.thompson",
    )
    assert played == replayed  # only the episodes that were not checkpointed, per seed
    for key in ("regret", "theta_error", "set_size"):
        np.testing.assert_array_equal(resumed[key], full[key])
    assert runner.n_traces == 1


@pytest.mark.slow
@pytest.mark.parametrize("name", ["thompson", "bayes-optimistic", "mle-optimistic"])
def test_every_learner_runs_and_keeps_its_state_shapes(game, name):
    spec = GameSpec.from_game(game)
    learner = make_learner(name, spec, {"capacity": 3, "num_draws": 4})
    state = learner.init(jax.random.PRNGKey(0))
    update = jax.jit(learner.update)
    for t in range(3):
        episode = play_episode(game, learner.act(state), jax.random.PRNGKey(10 + t))
        new = update(state, episode)
        assert jax.tree_util.tree_structure(new) == jax.tree_util.tree_structure(state)
        for x, y in zip(
            jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(new), strict=True
        ):
            assert x.shape == y.shape and x.dtype == y.dtype
        state = new
    pi = np.asarray(learner.act(state))
    np.testing.assert_allclose(pi.sum(-1), 1.0)
    assert int(state.buffer.count) == 3


# ---- pure building blocks ------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.3, 1.0, 3.0, 40.0])
def test_log_gamma_draws_follow_the_gamma_law(alpha):
    x = np.exp(np.asarray(log_gamma_draws(jax.random.PRNGKey(1), alpha, (40_000,))))
    assert stats.kstest(x, stats.gamma(alpha).cdf).pvalue > 1e-3


def test_dirichlet_draws_moments():
    conc = jnp.array([[1.0, 2.0, 5.0], [0.5, 0.5, 3.0]])
    p = np.asarray(dirichlet_draws(jax.random.PRNGKey(2), conc, 40_000))
    assert p.shape == (40_000, 2, 3)
    np.testing.assert_allclose(p.sum(-1), 1.0)
    c = np.asarray(conc)
    a0 = c.sum(-1, keepdims=True)
    np.testing.assert_allclose(p.mean(0), c / a0, atol=0.01)
    var = c * (a0 - c) / (a0**2 * (a0 + 1))
    np.testing.assert_allclose(p.var(0), var, rtol=0.06)


def test_model_value_matches_loop_reference():
    g = random_game(7, 3, 2, 2, 3, 2, eta=1.5, farsighted=True)
    rng = np.random.default_rng(0)
    pi = rng.dirichlet(np.ones(2), size=(3, 3))
    theta = rng.normal(size=2)
    P, r, rho = (np.asarray(x) for x in (g.transitions, g.leader_reward, g.initial_dist))
    u = np.einsum("hsabd,d->hsab", np.asarray(g.features), theta)
    nu = np_follower_response(P, u, 1.5, policy=pi, farsighted=True)
    expected = np_policy_value(P, r, rho, nu, pi)
    got = policy_value(jnp.asarray(pi), g.model, theta)
    assert float(got) == pytest.approx(expected, abs=1e-12)


def test_warm_gradient_plan_reaches_the_best_deterministic_policy():
    g = steering_game()
    P, r, rho = (np.asarray(x) for x in (g.transitions, g.leader_reward, g.initial_dist))
    u = np.einsum("hsabd,d->hsab", np.asarray(g.features), np.asarray(g.theta))
    best = max(
        np_policy_value(P, r, rho, np_follower_response(P, u, 3.0, pi, True), pi)
        for pi in deterministic_policies(2, 3, 2)
    )
    objective = lambda pi: policy_value(pi, g.model.replace(farsighted=True), g.theta)
    start = jnp.zeros((2, 3, 2)).at[..., 0].set(1.0)  # the myopic "take the reward" policy
    policy, logits = jax.jit(
        lambda: warm_gradient_plan(objective, jnp.zeros((2, 3, 2)), start, 300, 0.2)
    )()
    assert float(objective(policy)) >= best - 1e-3
    assert float(objective(start)) < best - 0.1  # the step-wise start alone is not enough
    np.testing.assert_allclose(np.asarray(jax.nn.softmax(logits, -1)), policy, atol=1e-12)


def test_online_newton_step_solves_a_quadratic_in_one_step():
    rng = np.random.default_rng(3)
    m = rng.normal(size=(4, 4))
    a = m @ m.T + np.eye(4)
    b = rng.normal(size=4)
    objective = lambda th: b @ th - 0.5 * th @ a @ th
    theta, precision = online_newton_step(objective, jnp.zeros(4), 1e-6)
    np.testing.assert_allclose(theta, np.linalg.solve(a, b), atol=1e-10)
    np.testing.assert_allclose(precision, a, atol=1e-10)


def test_positive_precision_and_set_size():
    rng = np.random.default_rng(4)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    m = q @ np.diag([-2.0, 0.1, 5.0]) @ q.T
    got = np.asarray(positive_precision(jnp.asarray(m), 1.0))
    np.testing.assert_allclose(got, q @ np.diag([1.0, 1.0, 5.0]) @ q.T, atol=1e-12)
    spd = q @ np.diag([1.0, 2.0, 4.0]) @ q.T
    assert float(laplace_set_size(jnp.asarray(spd))) == pytest.approx(np.sqrt(1 + 0.5 + 0.25))


def test_folded_optimistic_reward_upper_bounds_the_truth(game):
    """The folded optimistic reward of ``mle-optimistic``'s set (first-order and farsighted
    planners): ``r_hat + b + (radius / 2) span_{h+1}``, hand formula.  Bug caught: a sign or a
    span off by one step (the transition term must vanish at the last step)."""
    from bayes_qse.confidence import confidence_set, folded_model, follower_set

    spec = GameSpec.from_game(game)
    model = EmpiricalBonusModel("hoeffding", spec.reward_range)
    stats_ = model.update(model.init(*game.shape), simulate(game, np.full((2, 2, 2), 0.5), 5, 0))
    d, S = spec.feature_dim, spec.shape[1]
    follower = follower_set(spec, jnp.zeros(d), jnp.eye(d), 1.0)
    cs = confidence_set(spec, follower, model, stats_, jnp.ones(S), 0.1)
    opt = np.asarray(folded_model(cs, True).leader_reward)
    assert np.all(opt >= np.asarray(game.leader_reward) - 1e-12)
    # the transition term: half the L1 radius times the span of the next value (0 at the end)
    _, r_hat = model.mean(stats_)
    bonus = model.bonus(stats_, 0.1)
    lo, hi = spec.reward_range
    np.testing.assert_allclose(opt[-1], r_hat[-1] + bonus.reward[-1])
    np.testing.assert_allclose(
        opt[0], r_hat[0] + bonus.reward[0] + 0.5 * (hi - lo) * bonus.l1_radius[0]
    )


def test_mle_optimistic_reward_bonus_is_bernstein_on_deterministic_rewards():
    """``mle-optimistic``'s leader model defaults to the "best" bound, whose empirical-Bernstein
    half decays like ``1/n`` on deterministic rewards: after >= 500 visits of a cell the bonus
    is ``7 R L / (3 (n - 1))`` with ``L = log(2 K / (delta / 2))`` (hand formula), over 3x
    below Hoeffding's ``R sqrt(L / 2n)``.  Bug caught: the online learner keeping the Hoeffding
    bonus (finding 4 of issue 22: most of tabular ``mle-optimistic``'s optimism gap at t = 1000
    came from it although the rewards are deterministic)."""
    from bayes_qse.learners.common import frequentist_leader_model

    game = random_game(
        0, n_states=1, n_leader_actions=1, n_follower_actions=2, horizon=1, feature_dim=1
    )
    spec = GameSpec.from_game(game)
    cfg = LearnerConfig()
    model = frequentist_leader_model(
        spec, cfg.leader_model, cfg.reward_bound, cfg.leader_features, cfg.lsvi_reg
    )
    episodes = simulate(game, np.ones((1, 1, 1)), 4000, seed=0)
    stats_ = model.update(model.init(*game.shape), episodes)
    n = float(stats_.n[0, 0, 0, 0])
    assert n >= 500
    delta = 0.05
    L = np.log(2 * 2 / (delta / 2))  # K = H S A B = 2 cells
    bern = 7 * 1.0 * L / (3 * (n - 1))
    hoeff = np.sqrt(L / (2 * n))
    got = float(model.bonus(stats_, delta).reward[0, 0, 0, 0])
    assert got == pytest.approx(bern, rel=1e-9)
    assert got < hoeff / 3  # the ratio (3/7) sqrt(n / 2L) grows like sqrt(n)


def test_quantile_schedule():
    np.testing.assert_allclose(quantile_level(jnp.arange(4), 2.0), [0.5, 2 / 3, 0.75, 0.8])


def test_bad_input_is_reported():
    g = random_game(0, 2, 2, 2, 2, 2)
    spec = GameSpec.from_game(g)
    with pytest.raises(ConfigError, match="learner"):
        make_learner("ucb", spec)
    with pytest.raises(BayesQSEInputError, match="true_game"):
        make_learner("oracle", spec)
    with pytest.raises(ConfigError, match="num_draws"):
        LearnerConfig(num_draws=0)
    with pytest.raises(ConfigError, match="delta"):
        LearnerConfig(delta=1.5)
    with pytest.raises(ConfigError, match="unknown"):
        LearnerConfig.from_mapping({"nmu_draws": 3})
    with pytest.raises(ConfigError, match="chunk"):
        OnlineRunner(g, "greedy", episodes=10, chunk=3)
    with pytest.raises(BayesQSEInputError, match="episodes"):
        run_online(g, "greedy", episodes=0)


def test_buffer_capacity_defaults_to_the_run_length(game):
    """The learner's buffer holds every episode of a run: nothing is overwritten."""
    runner = OnlineRunner(game, "greedy", {"num_draws": 4}, episodes=6, chunk=3)
    assert runner.config.capacity == 6 and runner.config.num_draws == 4
    explicit = LearnerConfig(capacity=9)
    assert OnlineRunner(game, "greedy", explicit, episodes=6, chunk=3).config is explicit


def test_informed_directions_say_how_many_directions_the_data_identify():
    """``informed`` counts the eigenvalues of the learner's matrix that reach the prior's
    precision.  mle-optimistic starts with no data (0 directions) and ends with all d on an
    identified game; a Bayesian learner's precision includes the prior (d from the start).
    Bug caught: recording the prior-floored matrix for the frequentist learner (it would say
    d before any data) or a threshold on the wrong scale."""
    from bayes_qse.games import exploration_game

    game = exploration_game()
    d = game.feature_dim
    mle = run_online(game, "mle-optimistic", episodes=100, seeds=[0], chunk=50)
    assert mle["informed"][0, 0] == 0 and mle["informed"][0, -1] == d
    assert np.all(np.diff(mle["informed"][0]) >= -1)  # a fit can lose a direction, not two
    ts = run_online(game, "thompson", episodes=50, seeds=[0], chunk=50)
    assert np.all(ts["informed"] == d)
