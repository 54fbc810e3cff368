"""Tests for bayes_qse.data: Dataset validation and files, simulation, fixed-capacity buffers."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from reference import np_follower_response

from bayes_qse.data import (
    Dataset,
    buffer_add,
    buffer_from_dataset,
    buffer_init,
    buffer_to_dataset,
    play_episode,
    simulate,
)
from bayes_qse.errors import BayesQSEInputError, DatasetValidationError
from bayes_qse.games import random_game


@pytest.fixture(scope="module")
def game():
    return random_game(
        3, n_states=3, n_leader_actions=2, n_follower_actions=3, horizon=3, feature_dim=2
    )


def uniform_policy(game):
    H, S, A, _ = game.shape
    return np.full((H, S, A), 1.0 / A)


def small_arrays(N=4, H=3, S=3, A=2, B=3, seed=0):
    rng = np.random.default_rng(seed)
    return dict(
        states=rng.integers(0, S, (N, H + 1)),
        leader_actions=rng.integers(0, A, (N, H)),
        follower_actions=rng.integers(0, B, (N, H)),
        rewards=rng.normal(size=(N, H)),
        policies=rng.dirichlet(np.ones(A), size=(N, H, S)),
    )


def test_simulate_shapes_and_reproducibility(game):
    data = simulate(game, uniform_policy(game), 50, seed=1)
    H, S, A, B = game.shape
    assert data.states.shape == (50, H + 1) and data.policies.shape == (50, H, S, A)
    assert data.n_episodes == len(data) == 50
    data.validate_for(game)
    again = simulate(game, uniform_policy(game), 50, seed=1)
    other = simulate(game, uniform_policy(game), 50, seed=2)
    np.testing.assert_array_equal(data.follower_actions, again.follower_actions)
    assert not np.array_equal(data.follower_actions, other.follower_actions)
    # rewards are the leader's reward at the visited (h, s, a, b)
    h = np.arange(H)
    expected = game.leader_reward[h, data.states[:, :H], data.leader_actions, data.follower_actions]
    np.testing.assert_allclose(data.rewards, expected)


@pytest.mark.parametrize("farsighted", [False, True])
def test_simulated_follower_frequencies_match_reference(farsighted):
    """Empirical b-frequencies at every visited (h,s,a) match eq. (1) within 5 sigma."""
    g = random_game(5, 2, 2, 3, 2, 2, eta=1.5, farsighted=farsighted)
    H, S, A, B = g.shape
    pi = np.random.default_rng(0).dirichlet(np.ones(A), size=(H, S))
    data = simulate(g, pi, 6000, seed=0)
    nu = np_follower_response(g.transitions, g.utility().__array__(), g.eta, pi, farsighted)
    counts = np.zeros((H, S, A, B))
    for h in range(H):
        np.add.at(
            counts[h],
            (data.states[:, h], data.leader_actions[:, h], data.follower_actions[:, h]),
            1,
        )
    n = counts.sum(-1, keepdims=True)
    seen = n[..., 0] > 200
    assert seen.sum() >= 4
    freq = counts / np.maximum(n, 1)
    sigma = np.sqrt(nu * (1 - nu) / np.maximum(n, 1))
    assert np.all(np.abs(freq - nu)[seen] <= 5 * sigma[seen] + 1e-12)
    # initial states follow rho
    rho_hat = np.bincount(data.states[:, 0], minlength=S) / data.n_episodes
    assert np.all(np.abs(rho_hat - g.initial_dist) <= 5 * np.sqrt(0.25 / data.n_episodes))


def test_simulate_with_per_episode_policies(game):
    H, S, A, _ = game.shape
    pols = np.zeros((20, H, S, A))
    pols[:10, ..., 0] = 1.0
    pols[10:, ..., 1] = 1.0
    data = simulate(game, pols, 20, seed=0)
    assert np.all(data.leader_actions[:10] == 0) and np.all(data.leader_actions[10:] == 1)
    np.testing.assert_array_equal(data.policies, pols)
    with pytest.raises(DatasetValidationError, match="policy"):
        simulate(game, pols[:5], 20, seed=0)
    with pytest.raises(BayesQSEInputError, match="policy"):
        simulate(game, 2 * uniform_policy(game), 5, seed=0)


def test_play_episode_is_jittable(game):
    key = jax.random.key(7)
    eager = play_episode(game, uniform_policy(game), key)
    jitted = jax.jit(play_episode)(game, uniform_policy(game), key)
    for x, y in zip(eager, jitted, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize(
    "field, bad, match",
    [
        ("states", lambda a: a["states"] + 10, "states"),
        ("leader_actions", lambda a: -a["leader_actions"] - 1, "leader_actions"),
        ("follower_actions", lambda a: a["follower_actions"] + 0.5, "follower_actions"),
        ("rewards", lambda a: np.where(a["rewards"] > 0, np.nan, a["rewards"]), "rewards"),
        ("rewards", lambda a: a["rewards"][:, :-1], "rewards"),
        ("policies", lambda a: a["policies"] * 2, "policies"),
        ("states", lambda a: a["states"][:-1], "states"),
    ],
)
def test_dataset_validation_names_the_field(field, bad, match):
    arrays = small_arrays()
    Dataset(**arrays)  # the unmodified arrays are valid
    arrays[field] = bad(arrays)
    with pytest.raises(DatasetValidationError, match=match):
        Dataset(**arrays)


def test_validate_for_game(game):
    arrays = small_arrays(B=3)
    Dataset(**arrays).validate_for(game)
    arrays["follower_actions"][0, 0] = 3
    with pytest.raises(DatasetValidationError, match="follower_actions"):
        Dataset(**arrays).validate_for(game)
    with pytest.raises(DatasetValidationError, match="policies"):
        Dataset(**small_arrays(A=3)).validate_for(game)


def test_save_load_roundtrip_and_bad_files(tmp_path, game):
    data = simulate(game, uniform_policy(game), 7, seed=0)
    path = data.save(tmp_path / "d.npz")
    back = Dataset.load(path)
    for f in ("states", "leader_actions", "follower_actions", "rewards", "policies"):
        np.testing.assert_array_equal(getattr(back, f), getattr(data, f))
    with pytest.raises(DatasetValidationError, match="not found"):
        Dataset.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(DatasetValidationError, match="junk.npz"):
        Dataset.load(tmp_path / "junk.npz")
    arrays = {f: getattr(data, f) for f in ("states", "leader_actions", "rewards", "policies")}
    np.savez(tmp_path / "partial.npz", **arrays)
    with pytest.raises(DatasetValidationError, match="follower_actions"):
        Dataset.load(tmp_path / "partial.npz")
    arrays["follower_actions"] = data.follower_actions
    arrays["policies"] = data.policies * 0.5
    np.savez(tmp_path / "badpol.npz", **arrays)
    with pytest.raises(DatasetValidationError, match="policies"):
        Dataset.load(tmp_path / "badpol.npz")


def test_concat_and_subset(game):
    a = simulate(game, uniform_policy(game), 3, seed=0)
    b = simulate(game, uniform_policy(game), 4, seed=1)
    c = Dataset.concat(a, b)
    assert c.n_episodes == 7
    np.testing.assert_array_equal(c.states[3:], b.states)
    np.testing.assert_array_equal(c.subset(slice(0, 3)).follower_actions, a.follower_actions)
    with pytest.raises(DatasetValidationError, match="policies"):
        Dataset.concat(a, Dataset(**small_arrays(A=3)))
    empty = simulate(game, uniform_policy(game), 0, seed=0)
    assert Dataset.concat(empty, a).n_episodes == 3


def test_buffer_add_is_pure_and_does_not_recompile(game):
    H, S, A, _ = game.shape
    traces = []

    @jax.jit
    def add(buf, ep):
        traces.append(1)
        return buffer_add(buf, ep)

    buf = buffer_init(4, H, S, A)
    episodes = [play_episode(game, uniform_policy(game), jax.random.key(i)) for i in range(6)]
    for ep in episodes:
        new = add(buf, ep)
        assert new.states.shape == buf.states.shape
        buf = new
    assert len(traces) == 1
    assert int(buf.count) == 6 and bool(buf.mask.all())
    # ring: the 4 newest episodes, oldest first
    data = buffer_to_dataset(buf)
    expected = np.stack([np.asarray(ep.follower_actions) for ep in episodes[2:]])
    np.testing.assert_array_equal(data.follower_actions, expected)


def test_buffer_dataset_roundtrip(game):
    data = simulate(game, uniform_policy(game), 5, seed=3)
    buf = buffer_from_dataset(data, capacity=8)
    assert buf.capacity == 8 and int(buf.mask.sum()) == 5 and int(buf.count) == 5
    back = buffer_to_dataset(buf)
    np.testing.assert_array_equal(back.states, data.states)
    np.testing.assert_allclose(back.policies, data.policies)
    with pytest.raises(DatasetValidationError, match="capacity"):
        buffer_from_dataset(data, capacity=2)
