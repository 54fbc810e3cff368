"""Per-policy statistics (docs/math.md eq. 4') and rarely-switching learners (criterion (S)):
the regrouped likelihood against a loop over episodes, the switch times against a brute-force
replay of the determinant criterion, the number of switches, and bounded memory."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_qse.data import Dataset, play_episode, simulate
from bayes_qse.errors import ConfigError
from bayes_qse.games import random_game
from bayes_qse.learners import GameSpec, LearnerConfig, OnlineRunner, make_learner
from bayes_qse.policy_stats import (
    ResponseCounts,
    check_overflow,
    episode_information,
    policy_log_likelihood,
    policy_stats_add,
    policy_stats_from_dataset,
    policy_stats_init,
)
from tests.reference import np_follower_response


def _policies(rng, n, H, S, A):
    return rng.dirichlet(np.ones(A), size=(n, H, S))


def _episode(data: Dataset, t: int):
    from bayes_qse.data import Episode

    return Episode(
        jnp.asarray(data.states[t]),
        jnp.asarray(data.leader_actions[t]),
        jnp.asarray(data.follower_actions[t]),
        jnp.asarray(data.rewards[t]),
        jnp.asarray(data.policies[t]),
    )


def _loop_log_likelihood(game, theta, data: Dataset) -> float:
    """Eq. (4) episode by episode with the loop reference of eq. (1): one recursion each."""
    P, phi = np.asarray(game.transitions), np.asarray(game.features)
    u = np.einsum("hsabd,d->hsab", phi, theta)
    total = 0.0
    for t in range(data.n_episodes):
        nu = np_follower_response(P, u, float(game.eta), data.policies[t], game.farsighted)
        for h in range(game.shape[0]):
            s, a, b = data.states[t, h], data.leader_actions[t, h], data.follower_actions[t, h]
            total += np.log(nu[h, s, a, b])
    return total


@pytest.mark.parametrize("farsighted", [True, False])
def test_policy_likelihood_equals_the_episode_loop(farsighted):
    """Eq. (4') = eq. (4) to 1e-10, from the host grouping (non-consecutive repeats) and from
    the online accumulation.  Fails if responses land in another policy's row, if a repeated
    policy opens a new row with the wrong policy, or if unused rows contribute."""
    game = random_game(3, 3, 2, 3, 3, 2, eta=1.5, farsighted=farsighted)
    H, S, A, B = game.shape
    rng = np.random.default_rng(0)
    pols = _policies(rng, 3, H, S, A)
    order = [0, 0, 1, 0, 0, 2, 2, 1, 0]  # repeats, also non-consecutive
    data = simulate(game, pols[order], len(order), seed=5)
    theta = rng.normal(size=game.feature_dim)
    expected = _loop_log_likelihood(game, theta, data)

    grouped = policy_stats_from_dataset(data, game.shape, max_policies=5)
    assert int(grouped.n_policies) == 3
    got = policy_log_likelihood(jnp.asarray(theta), game.model, grouped)
    assert abs(float(got) - expected) < 1e-10 * max(1.0, abs(expected))

    online = policy_stats_init(40, game.shape)  # 3 blocks of 16 rows (padded), 2 skipped
    add = jax.jit(policy_stats_add)
    for t in range(data.n_episodes):
        online = add(online, _episode(data, t))
    # online rows follow consecutive runs of equal policies: 0,1,0,2,1,0 -> 6 rows
    assert int(online.n_policies) == 6 and int(online.count) == data.n_episodes
    got = policy_log_likelihood(jnp.asarray(theta), game.model, online)
    assert abs(float(got) - expected) < 1e-10 * max(1.0, abs(expected))
    np.testing.assert_array_equal(
        np.asarray(online.first_state_counts), np.bincount(data.states[:, 0], minlength=S)
    )


def test_too_many_policies_is_a_clear_error():
    """Past ``max_policies`` rows: the online statistics flag it and ``check_overflow`` names
    the setting; the host grouping refuses before allocating.  Fails if the extra episode
    silently overwrote a row or the error named nothing."""
    game = random_game(3, 2, 2, 2, 2, 2, eta=1.0)
    H, S, A, _ = game.shape
    pols = _policies(np.random.default_rng(1), 3, H, S, A)
    data = simulate(game, pols, 3, seed=0)
    stats = policy_stats_init(2, game.shape)
    for t in range(3):
        stats = policy_stats_add(stats, _episode(data, t))
    assert bool(stats.overflow) and int(stats.n_policies) == 2
    assert float(jnp.sum(stats.counts)) == 2 * H  # the third episode was not stored anywhere
    with pytest.raises(ConfigError, match="^max_policies"):
        check_overflow(stats)
    with pytest.raises(ConfigError, match="^max_policies"):
        policy_stats_from_dataset(data, game.shape, max_policies=2)


@pytest.mark.parametrize(
    "key, value", [("refit", "sometimes"), ("switch_factor", 1.0), ("max_policies", 0)]
)
def test_switching_settings_are_checked(key, value):
    with pytest.raises(ConfigError, match=f"^{key}"):
        LearnerConfig(**{key: value})


# ---- the switching criterion --------------------------------------------------------------

T_RUN = 150


@pytest.fixture(scope="module")
def switching_run():
    """``T_RUN`` episodes of a rarely-switching myopic ``thompson``, state after each one."""
    game = random_game(7, 2, 2, 3, 2, 3, eta=2.0)
    spec = GameSpec.from_game(game)
    learner = make_learner("thompson", spec, {"refit": "switching", "switch_factor": 2.0})
    update, play = jax.jit(learner.update), jax.jit(play_episode)
    state = learner.init(jax.random.PRNGKey(0))
    states, episodes = [state], []
    for t in range(T_RUN):
        ep = play(game, state.policy, jax.random.PRNGKey(1000 + t))
        state = update(state, ep)
        episodes.append(ep)
        states.append(jax.tree_util.tree_map(np.asarray, state))
    return game, states, episodes


def _np_information(game, theta, episode) -> np.ndarray:
    """Myopic Fisher information of one episode at ``theta``: ``eta^2 Cov_nu(phi)`` per step,
    with loops (independent of the autodiff Hessian the learner uses)."""
    phi, eta = np.asarray(game.features), float(game.eta)
    H, d = phi.shape[0], phi.shape[-1]
    out = np.zeros((d, d))
    for h in range(H):
        s, a = int(episode.states[h]), int(episode.leader_actions[h])
        f = phi[h, s, a]  # [B, d]
        z = eta * f @ theta
        p = np.exp(z - z.max())
        p /= p.sum()
        m = p @ f
        out += eta**2 * sum(p[b] * np.outer(f[b] - m, f[b] - m) for b in range(len(p)))
    return out


def _logdet_floor(m, floor):
    return float(np.sum(np.log(np.maximum(np.linalg.eigvalsh(0.5 * (m + m.T)), floor))))


def test_switches_exactly_when_the_determinant_doubles(switching_run):
    """Replay criterion (S) by brute force: from each switch, add the episodes' information
    (loops, at the switch's estimate) and switch when ``log det`` has grown by ``log 2``.
    Fails on an off-by-one in the comparison, information evaluated at the wrong ``theta``,
    a determinant instead of a log-determinant, or a policy changed between switches."""
    game, states, episodes = switching_run
    P = np.eye(game.feature_dim)  # the prior precision (prior_scale 1)
    theta = np.zeros(game.feature_dim)
    anchor = _logdet_floor(P, 1.0)
    n_switches = 0
    for t, ep in enumerate(episodes):
        before, after = states[t], states[t + 1]
        P = P + _np_information(game, theta, ep)
        expected = _logdet_floor(P, 1.0) >= anchor + np.log(2.0)
        switched = int(after.buffer.switches) == int(before.buffer.switches) + 1
        assert switched == expected, f"episode {t}"
        if switched:
            n_switches += 1
            P, theta = np.asarray(after.precision), np.asarray(after.theta_hat)
            anchor = _logdet_floor(P, 1.0)
        else:
            np.testing.assert_allclose(after.precision, P, rtol=1e-9, atol=1e-9)
            np.testing.assert_array_equal(after.policy, before.policy)
    assert n_switches == int(states[-1].buffer.switches) >= 3


def test_number_of_switches_grows_like_d_log_t(switching_run):
    """``K = O(d log T)``: every switch multiplies ``det V`` by 2 from its anchor, and
    ``log det V_T <= d log(1 + T H eta^2 max|phi|^2 / d)`` (elliptical potential, prior
    precision 1), so ``K`` stays within that many doublings plus the refits' resets; and the
    later half of the run switches far less than the first.  Fails if the learner switched
    every episode or on a criterion that does not saturate."""
    game, states, _ = switching_run
    d, H = game.feature_dim, game.shape[0]
    sw = np.array([int(s.buffer.switches) for s in states])
    phi2 = float(np.max(np.sum(np.asarray(game.features) ** 2, -1)))
    bound = d * np.log2(1 + T_RUN * H * float(game.eta) ** 2 * phi2 / d)
    assert sw[-1] <= bound, (sw[-1], bound)
    assert sw[-1] < T_RUN / 5
    assert sw[T_RUN] - sw[T_RUN // 2] < sw[T_RUN // 2]
    # the per-policy rows: at most the uniform start plus one per switch (a switch may
    # re-announce the same deterministic policy, which then shares its row)
    assert 1 <= int(states[-1].buffer.stats.n_policies) <= sw[-1] + 1


def test_episode_information_is_the_negative_hessian():
    """Farsighted: the autodiff information of one episode against central finite differences
    of the loop likelihood.  Fails if the Hessian differentiated the wrong policy's recursion
    or dropped the sign."""
    game = random_game(2, 2, 2, 2, 2, 2, eta=1.0, farsighted=True)
    H, S, A, _ = game.shape
    pol = _policies(np.random.default_rng(3), 1, H, S, A)[0]
    data = simulate(game, pol, 1, seed=4)
    theta = np.array([0.3, -0.2])
    info = np.asarray(episode_information(jnp.asarray(theta), game.model, _episode(data, 0)))
    eps, d = 1e-4, 2
    f = lambda th: _loop_log_likelihood(game, th, data)
    fd = np.zeros((d, d))
    for i in range(d):
        for j in range(d):
            e_i, e_j = eps * np.eye(d)[i], eps * np.eye(d)[j]
            fd[i, j] = (
                f(theta + e_i + e_j)
                - f(theta + e_i - e_j)
                - f(theta - e_i + e_j)
                + f(theta - e_i - e_j)
            ) / (4 * eps**2)
    np.testing.assert_allclose(info, -fd, atol=1e-5)


def test_switching_memory_does_not_grow_with_t():
    """No ``[T, ...]`` leaf in a rarely-switching learner's state: the state's shapes for
    ``T = 100`` and ``T = 10^5`` are the same (abstract evaluation, nothing compiled), while
    the every-episode learner's buffer grows.  Fails if the switching learner kept the
    episode buffer."""
    game = random_game(3, 3, 2, 3, 3, 2, eta=1.0, farsighted=True)

    def shapes(refit, T):
        runner = OnlineRunner(game, "thompson", {"refit": refit}, episodes=T, chunk=T)
        return [x.shape for x in jax.tree_util.tree_leaves(runner.state_like())]

    assert shapes("switching", 100) == shapes("switching", 100_000)
    assert shapes("every", 100) != shapes("every", 100_000)
    leaves = shapes("switching", 100_000)
    assert max(int(np.prod(s)) for s in leaves) < 100_000


# ---- online_regret --long -----------------------------------------------------------------


@pytest.mark.slow
def test_long_config_runs_switching_farsighted_learners(tmp_path):
    """``--long`` at a tiny size: the farsighted units run rarely switching (recorded switches
    far below ``t - 1``) while the myopic ones refit every episode (``switches = t - 1``), the
    table reports the switches, and the figure is drawn.  Fails if the long preset did not
    reach the runner or the switches were not recorded."""
    from bayes_qse.experiments import load_config
    from bayes_qse.experiments import online_regret as exp

    long = load_config(exp, long=True)
    assert long["episodes"] == long["farsighted_episodes"] == 10_000 and long["seeds"] >= 10
    assert long["learner"]["farsighted_refit"] == "switching" and long["slope_start"] <= 0.01
    with pytest.raises(ConfigError, match="^--long"):
        load_config(exp, full=True, long=True)
    tiny = {
        "games": ["linear", "farsighted"],
        "learners": ["greedy", "uniform"],
        "episodes": 30,
        "farsighted_episodes": 30,
        "chunk": 30,
        "seeds": 2,
        "learner": {"planner_steps": 3},
    }
    config = load_config(exp, overrides=tiny, long=True)
    path = exp.run(config, tmp_path, progress=False)
    with np.load(path) as data:
        myopic = data["linear.greedy.switches"]
        farsighted = data["farsighted.greedy.switches"]
        uniform = data["farsighted.uniform.switches"]
    np.testing.assert_array_equal(myopic, np.broadcast_to(np.arange(30.0), myopic.shape))
    assert np.all(np.diff(farsighted, axis=1) >= 0) and farsighted[:, -1].max() < 15
    assert farsighted[:, -1].min() >= 1 and np.all(uniform == 0)
    exp.plot(tmp_path)
    assert "policy switches (final)" in (tmp_path / "table.md").read_text()
    assert (tmp_path / "online_regret_farsighted.png").stat().st_size > 0


def test_switching_seed_records_do_not_depend_on_the_batch():
    """Rarely-switching learners run their seeds one after another with the padding lanes
    skipped: a seed alone and the same seed in a batch of five (one full block and one padded)
    give identical records.  Fails if a skipped lane's zeros were returned for a real seed or
    the lanes were misaligned."""
    from bayes_qse.learners import run_online

    game = random_game(5, 2, 2, 3, 2, 3, eta=2.0)
    config = {"refit": "switching"}
    batch = run_online(game, "greedy", episodes=20, seeds=[0, 1, 2, 3, 4], chunk=10, config=config)
    alone = run_online(game, "greedy", episodes=20, seeds=[4], chunk=10, config=config)
    for field in ("regret", "theta_error", "switches"):
        np.testing.assert_array_equal(batch[field][4], alone[field][0])
    assert np.all(batch["switches"][:, -1] >= 1)


def test_every_episode_myopic_learner_keeps_exact_running_counts():
    """The every-episode learner facing a myopic follower keeps running counts
    (``ResponseCounts``) instead of recounting an episode buffer: after each of a run's
    episodes they equal a recount of the episodes so far by a NumPy loop, exactly (integers).
    Catches: a response added at the wrong ``(h, s, a, b)`` (e.g. ``s_{h+1}`` for ``s_h``),
    an episode counted twice or not at all, the first state not counted, or the learner
    still storing episodes (the state would not be ``ResponseCounts``)."""
    game = random_game(3, 3, 2, 3, 3, 4, eta=2.0, farsighted=False)
    H, S, A, B = game.shape
    learner = make_learner("greedy", GameSpec.from_game(game), {"capacity": 2})
    update = jax.jit(learner.update)
    state = learner.init(jax.random.PRNGKey(0))
    assert isinstance(state.buffer, ResponseCounts)
    counts, first = np.zeros((H, S, A, B)), np.zeros(S)
    for t in range(12):  # more episodes than the capacity: the counts keep every episode
        ep = jax.device_get(play_episode(game, learner.act(state), jax.random.PRNGKey(100 + t)))
        for h in range(H):
            counts[h, ep.states[h], ep.leader_actions[h], ep.follower_actions[h]] += 1
        first[ep.states[0]] += 1
        state = update(state, ep)
        np.testing.assert_array_equal(np.asarray(state.buffer.counts), counts)
        np.testing.assert_array_equal(np.asarray(state.buffer.first_state_counts), first)
        assert int(state.buffer.count) == t + 1
    assert counts.sum() == 12 * H and len(np.unique(np.nonzero(counts)[1])) > 1
