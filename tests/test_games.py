import numpy as np
import pytest

import bayes_qse as bq
from bayes_qse.errors import GameValidationError
from bayes_qse.games import random_game, tabular_game


def _valid_arrays(H=2, S=3, A=2, B=2, d=4, seed=0):
    g = random_game(seed, S, A, B, H, d)
    return dict(
        transitions=g.transitions,
        leader_reward=g.leader_reward,
        features=g.features,
        theta=g.theta,
        eta=g.eta,
        initial_dist=g.initial_dist,
    )


def test_random_game_is_reproducible_and_shaped():
    g1 = random_game(7, 3, 2, 4, 5, 6)
    g2 = random_game(7, 3, 2, 4, 5, 6)
    assert g1.shape == (5, 3, 2, 4) and g1.feature_dim == 6
    for f in ("transitions", "leader_reward", "features", "theta", "initial_dist"):
        np.testing.assert_array_equal(getattr(g1, f), getattr(g2, f))
    assert not np.array_equal(random_game(8, 3, 2, 4, 5, 6).theta, g1.theta)


@pytest.mark.parametrize(
    "field,mutate,match",
    [
        ("transitions", lambda a: a * 1.1, "transitions: probabilities must sum to 1"),
        ("transitions", lambda a: a[..., :2], "transitions: last axis"),
        ("transitions", lambda a: np.where(a > 0.5, np.nan, a), "transitions: contains"),
        ("leader_reward", lambda a: a[:, :, :, :1], "leader_reward: expected shape"),
        ("leader_reward", lambda a: np.full_like(a, np.inf), "leader_reward: contains"),
        ("features", lambda a: a[..., 0], "features: expected a 5-dimensional"),
        ("theta", lambda a: a[:-1], "theta: expected shape"),
        ("eta", lambda a: 0.0, "eta: must be a finite number > 0"),
        ("eta", lambda a: -1.0, "eta: must be a finite number > 0"),
        ("eta", lambda a: "fast", "eta: must be a positive number"),
        ("initial_dist", lambda a: a * 2, "initial_dist: probabilities must sum"),
        ("initial_dist", lambda a: np.array([1.5, -0.5, 0.0]), "initial_dist: has negative"),
    ],
)
def test_game_validation_names_the_field(field, mutate, match):
    arrays = _valid_arrays()
    arrays[field] = mutate(arrays[field])
    with pytest.raises(GameValidationError, match=match):
        bq.Game(**arrays)


def test_save_load_round_trip(tmp_path):
    g = random_game(1, 3, 2, 2, 2, 3, eta=2.5, farsighted=True)
    path = g.save(tmp_path / "g.npz")
    with np.load(path) as data:
        assert set(data.files) == {
            "transitions",
            "leader_reward",
            "features",
            "theta",
            "eta",
            "initial_dist",
            "farsighted",
        }
    g2 = bq.Game.load(path)
    assert g2.farsighted is True and g2.eta == 2.5
    np.testing.assert_array_equal(g2.transitions, g.transitions)


def test_load_rejects_malformed_files(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(GameValidationError, match="not a readable .npz"):
        bq.Game.load(bad)
    g = random_game(1, 3, 2, 2, 2, 3)
    good = g.save(tmp_path / "g.npz")
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(good.read_bytes()[:200])
    with pytest.raises(GameValidationError, match="trunc.npz"):
        bq.Game.load(trunc)
    np.savez(tmp_path / "foreign.npz", x=np.zeros(3))
    with pytest.raises(GameValidationError, match="missing field"):
        bq.Game.load(tmp_path / "foreign.npz")
    with pytest.raises(GameValidationError, match="file not found"):
        bq.Game.load(tmp_path / "nope.npz")


def test_tabular_game_reproduces_the_tabular_response():
    rng = np.random.default_rng(0)
    H, S, A, B = 2, 2, 3, 3
    u = rng.normal(size=(H, S, A, B))
    g0 = random_game(0, S, A, B, H, 2)
    g = tabular_game(g0.transitions, g0.leader_reward, u, eta=1.7)
    assert g.feature_dim == H * S * A * (B - 1)
    nu = np.asarray(bq.follower_response(g))
    expected = np.exp(1.7 * u) / np.exp(1.7 * u).sum(-1, keepdims=True)
    np.testing.assert_allclose(nu, expected, atol=1e-12)


@pytest.mark.parametrize("name", ["patrol", "pricing", "steering"])
def test_named_games_are_valid(name):
    g = bq.games.named_game(name)
    assert isinstance(g, bq.Game)
    with pytest.raises(GameValidationError, match="unknown named game"):
        bq.games.named_game("nope")


def test_game_is_a_pytree():
    import jax

    g = random_game(0, 2, 2, 2, 2, 2, farsighted=True)
    leaves, treedef = jax.tree_util.tree_flatten(g)
    assert len(leaves) == 6
    g2 = jax.tree_util.tree_unflatten(treedef, leaves)
    assert g2.farsighted is True
