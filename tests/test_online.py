"""Online learners and their episode loop (DESIGN §5): exact regret, determinism, resuming a
killed run, no recompilation, and the pure building blocks against independent references."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import numpyro  # noqa: F401  (imported by RunStore's manifest; it registers JAX config options,
import pytest  # and a changed config legitimately retraces: import it before compiling)
from scipy import stats

from bayes_qse.data import play_episode, simulate
from bayes_qse.errors import BayesQSEInputError, ConfigError
from bayes_qse.experiments.store import RunStore
from bayes_qse.games import random_game, steering_game
from bayes_qse.leader_model import EmpiricalBonusModel, dirichlet_draws, log_gamma_draws
from bayes_qse.learners import GameSpec, LearnerConfig, OnlineRunner, make_learner, run_online
from bayes_qse.learners.common import (
    laplace_set_size,
    model_value,
    online_newton_step,
    positive_precision,
    warm_gradient_plan,
)
from bayes_qse.learners.online import optimistic_leader_reward, quantile_level
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


def test_oracle_regret_is_exactly_zero(game):
    out = run_online(game, "oracle", episodes=6, seeds=[0, 1], chunk=3)
    assert out["regret"].shape == (2, 6)
    assert np.all(out["regret"] == 0.0)
    assert np.all(out["theta_error"] == 0.0) and np.all(out["set_size"] == 0.0)
    # and the optimum it is measured against is the true one (independent brute force)
    assert float(out["optimal_value"]) == pytest.approx(brute_force_optimum(game), abs=1e-10)


@pytest.mark.slow
def test_oracle_regret_is_exactly_zero_farsighted():
    out = run_online(steering_game(), "oracle", episodes=4, seeds=[3], chunk=2)
    assert np.all(out["regret"] == 0.0)


def test_runner_is_deterministic_and_learns(game, greedy_runner):
    a = run_online(game, "greedy", episodes=12, seeds=[0, 1], runner=greedy_runner)
    b = run_online(game, "greedy", episodes=12, seeds=[0, 1], runner=greedy_runner)
    c = run_online(game, "greedy", episodes=12, seeds=[1, 0], runner=greedy_runner)
    for key in ("regret", "theta_error", "set_size"):
        np.testing.assert_array_equal(a[key], b[key])
        np.testing.assert_array_equal(a[key][::-1], c[key])  # a seed's run ignores its batch
    assert not np.array_equal(a["regret"][0], a["regret"][1])
    # exact regret against the true optimum is never negative for a myopic follower
    assert np.all(a["regret"] >= -1e-12)
    # the estimate improves and the ellipsoid shrinks as data arrive
    assert np.all(a["set_size"][:, -1] < a["set_size"][:, 0])


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
            game, "thompson", episodes=12, seeds=[0, 2], runner=runner, store=store,
            checkpoint_key="g.thompson",
        )  # fmt: skip
    monkeypatch.setattr(RunStore, "save_checkpoint", original)
    store.close()
    reopened = RunStore(tmp_path, "online_regret", {"seeds": 2, "base_seed": 0})
    played = []
    run_chunk = runner.run_chunk
    monkeypatch.setattr(
        runner, "run_chunk", lambda s, seeds, t0: played.append(t0) or run_chunk(s, seeds, t0)
    )
    resumed = run_online(
        game, "thompson", episodes=12, seeds=[0, 2], runner=runner, store=reopened,
        checkpoint_key="g.thompson",
    )  # fmt: skip
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
    got = model_value(jnp.asarray(pi), theta, P, r, g.features, g.eta, rho, True)
    assert float(got) == pytest.approx(expected, abs=1e-12)


def test_warm_gradient_plan_reaches_the_best_deterministic_policy():
    g = steering_game()
    P, r, rho = (np.asarray(x) for x in (g.transitions, g.leader_reward, g.initial_dist))
    u = np.einsum("hsabd,d->hsab", np.asarray(g.features), np.asarray(g.theta))
    best = max(
        np_policy_value(P, r, rho, np_follower_response(P, u, 3.0, pi, True), pi)
        for pi in deterministic_policies(2, 3, 2)
    )
    objective = lambda pi: model_value(pi, g.theta, P, r, g.features, g.eta, rho, True)
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


def test_optimistic_leader_reward_upper_bounds_the_truth(game):
    spec = GameSpec.from_game(game)
    model = EmpiricalBonusModel("hoeffding", spec.reward_range)
    stats_ = model.update(model.init(*game.shape), simulate(game, np.full((2, 2, 2), 0.5), 5, 0))
    opt = np.asarray(optimistic_leader_reward(model, stats_, spec, 0.1))
    assert np.all(opt >= np.asarray(game.leader_reward) - 1e-12)
    # the transition term: half the L1 radius times the span of the next value (0 at the end)
    _, r_hat = model.mean(stats_)
    bonus = model.bonus(stats_, 0.1)
    lo, hi = spec.reward_range
    np.testing.assert_allclose(opt[-1], r_hat[-1] + bonus.reward[-1])
    np.testing.assert_allclose(
        opt[0], r_hat[0] + bonus.reward[0] + 0.5 * (hi - lo) * bonus.l1_radius[0]
    )


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
    with pytest.raises(ConfigError, match="confidence_level"):
        LearnerConfig(confidence_level=1.5)
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


def test_every_named_learner_is_built(game):
    spec = GameSpec.from_game(game)
    for name in ("greedy", "thompson", "bayes-optimistic", "mle-optimistic"):
        assert make_learner(name, spec).name == name
    assert make_learner("oracle", spec, true_game=game).name == "oracle"
    assert list(itertools.islice(deterministic_policies(1, 1, 2), 5))  # reference sanity
