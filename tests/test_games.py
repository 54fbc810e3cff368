import numpy as np
import pytest
from reference import np_follower_response, np_policy_value

import bayes_qse as bq
from bayes_qse.errors import GameValidationError
from bayes_qse.games import random_game, tabular_features, tabular_game, tabular_theta


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


def _np_utility(g):
    return np.einsum("hsabd,d->hsab", g.features, g.theta)


def test_tabular_features_code_the_documented_cells():
    """theta of the coding reproduces u minus the reference cell: u(h,s,a,0) (myopic) or the
    per-step constant u(h,0,0,0) (farsighted), checked cell by cell with loops."""
    rng = np.random.default_rng(3)
    H, S, A, B = 2, 3, 2, 3
    u = rng.normal(size=(H, S, A, B))
    for farsighted, d in ((False, H * S * A * (B - 1)), (True, H * (S * A * B - 1))):
        phi = tabular_features(H, S, A, B, farsighted=farsighted)
        theta = tabular_theta(u, farsighted=farsighted)
        assert phi.shape == (H, S, A, B, d) and theta.shape == (d,)
        coded = np.einsum("hsabd,d->hsab", phi, theta)
        for h, s_, a, b in np.ndindex(H, S, A, B):
            ref = u[h, s_, a, 0] if not farsighted else u[h, 0, 0, 0]
            assert coded[h, s_, a, b] == pytest.approx(u[h, s_, a, b] - ref, abs=1e-14)


def _farsighted_setup(seed=0, H=3, S=3, A=2, B=3):
    rng = np.random.default_rng(seed)
    base = random_game(seed, S, A, B, H, 2)
    u = 1.5 * rng.normal(size=(H, S, A, B))
    policies = rng.dirichlet(np.ones(A), size=(4, H, S))
    return base, u, policies


def test_tabular_game_farsighted_keeps_the_farsighted_response():
    """The farsighted coding gives the uncoded utility's farsighted response (NumPy loop of the
    soft Bellman recursion) for random utilities and leader policies; the myopic coding (follower
    action 0 as reference) does not, so this test catches the old coding."""
    eta = 1.3
    for seed in range(3):
        base, u, policies = _farsighted_setup(seed)
        P = base.transitions
        g = tabular_game(P, base.leader_reward, u, eta=eta, farsighted=True)
        H, S, A, B = g.shape
        assert g.farsighted and g.feature_dim == H * (S * A * B - 1)
        old = bq.Game(
            P,
            base.leader_reward,
            tabular_features(H, S, A, B),
            tabular_theta(u),
            eta,
            farsighted=True,
        )
        for pi in policies:
            ref = np_follower_response(P, u, eta, pi, True)
            np.testing.assert_allclose(np.asarray(bq.follower_response(g, pi)), ref, atol=1e-10)
            old_gap = np.abs(np.asarray(bq.follower_response(old, pi)) - ref).max()
            assert old_gap > 1e-3, old_gap
    # the myopic coding is still the one used for a myopic follower, and still exact there
    g = tabular_game(P, base.leader_reward, u, eta=eta)
    assert g.feature_dim == H * S * A * (B - 1)
    np.testing.assert_allclose(
        np.asarray(bq.follower_response(g)), np_follower_response(P, u, eta), atol=1e-12
    )


def test_only_per_step_constants_keep_a_farsighted_response():
    """docs/math.md, eq. 3: shifting u_h by c_h keeps the farsighted response for every policy;
    a shift by g(h,s) or f(h,s,a) (constant across b at its own step) changes earlier steps."""
    base, u, policies = _farsighted_setup(1)
    P, (H, S, A, _), eta = base.transitions, u.shape, 1.0
    rng = np.random.default_rng(7)
    c = rng.normal(size=(H, 1, 1, 1))
    g_hs = rng.normal(size=(H, S, 1, 1))
    f_hsa = rng.normal(size=(H, S, A, 1))
    for pi in policies:
        ref = np_follower_response(P, u, eta, pi, True)
        np.testing.assert_allclose(np_follower_response(P, u + c, eta, pi, True), ref, atol=1e-12)
        for shift in (g_hs, f_hsa):
            moved = np_follower_response(P, u + shift, eta, pi, True)
            np.testing.assert_allclose(moved[-1], ref[-1], atol=1e-12)  # the last step is myopic
            assert np.abs(moved[:-1] - ref[:-1]).max() > 1e-3


def test_named_game_lookup():
    assert set(bq.games.NAMED_GAMES) == {
        "patrol",
        "pricing",
        "steering",
        "tempting",
        "exploration",
        "patrol-large",
        "random-large",
    }
    small = {"random-large": {"n_states": 4, "n_actions": 3, "horizon": 2, "feature_dim": 3}}
    for name, build in bq.games.NAMED_GAMES.items():
        g = bq.games.named_game(name, **small.get(name, {}))
        np.testing.assert_array_equal(g.features, build(**small.get(name, {})).features)
    with pytest.raises(GameValidationError, match="unknown named game"):
        bq.games.named_game("nope")


def test_patrol_game_has_its_documented_payoffs():
    n = 3
    g = bq.games.patrol_game(n_sites=n)
    values = np.linspace(1.0, 2.0, n)
    r, P, u = g.leader_reward, g.transitions, _np_utility(g)
    for h, s, a, b in np.ndindex(*g.shape):
        if b == n:  # wait: no reward, alert lowered
            assert r[h, s, a, b] == 0.0 and P[h, s, a, b, 0] == 1.0
            continue
        assert P[h, s, a, b, 1] == 1.0  # an attack raises the alert
        if b == a:  # caught: defender +1
            assert r[h, s, a, b] == 1.0
        elif s == 0:  # unguarded at calm: the defender loses the site's value
            assert r[h, s, a, b] == pytest.approx(-values[b])
        assert r[h, s, a, b] <= 1.0
    # the attacker's utility: theta . (gain, caught, attack, alert * attack)
    th = g.theta
    assert u[0, 0, 1, 1] == pytest.approx(th[1] + th[2])  # caught at calm
    assert u[0, 0, 0, 2] == pytest.approx(th[0] * values[2] + th[2])
    assert u[0, 1, 0, 2] == pytest.approx(th[0] * 0.5 * values[2] + th[2] + th[3])  # raised
    np.testing.assert_array_equal(u[..., n], 0.0)  # waiting is the zero of the utility


def test_pricing_game_has_its_documented_payoffs():
    g = bq.games.pricing_game(n_prices=3)
    prices = np.linspace(0.5, 1.5, 3)
    r, P = g.leader_reward, g.transitions
    for h, s, a in np.ndindex(*g.shape[:3]):
        assert r[h, s, a, 0] == pytest.approx(prices[a])
        assert r[h, s, a, 1] == pytest.approx(1.5 * prices[a])  # premium pays 1.5x
        assert r[h, s, a, 2] == 0.0  # the customer leaves
        assert P[h, s, a, 0, 1] == P[h, s, a, 1, 1] == 1.0  # a purchase makes it loyal
        assert P[h, s, a, 2, 0] == 1.0  # leaving resets loyalty


def test_steering_game_follows_its_story_and_closed_form():
    """steering_game's docstring, then J(x) = sigmoid(eta (2x - 1)) (2 - x) for the policy that
    rewards the follower in state 1 with probability x (NumPy loops), maximised at 1.0298."""
    g = bq.games.steering_game(eta=3.0)
    P, r, u = g.transitions, g.leader_reward, _np_utility(g)
    np.testing.assert_array_equal(P[0, 0, :, 0], [[0, 1, 0]] * 2)
    np.testing.assert_array_equal(P[0, 0, :, 1], [[0, 0, 1]] * 2)
    np.testing.assert_array_equal(r[0, 0, :, 0], 1.0)
    np.testing.assert_array_equal(r[0, 0, :, 1], 0.0)
    np.testing.assert_array_equal(r[1, 1], [[1, 1], [0, 0]])
    # the story's step-2 utilities (state 1: 0 or 2 when rewarded; state 2: 1), up to the
    # per-step constant that the identified coding leaves out (it changes no response)
    story = np.array([[[0, 0], [2, 2]], [[1, 1], [1, 1]]], float)
    np.testing.assert_allclose(u[1, 1:] - u[1, 2, 0, 0], story - story[1, 0, 0], atol=1e-12)
    xs = np.linspace(0, 1, 11)
    vals = []
    for x in xs:
        pi = np.full((2, 3, 2), 0.5)
        pi[1, 1] = [1 - x, x]
        nu = np_follower_response(P, u, 3.0, pi, True)
        vals.append(np_policy_value(P, r, g.initial_dist, nu, pi))
    closed = (2 - xs) / (1 + np.exp(-3 * (2 * xs - 1)))
    np.testing.assert_allclose(vals, closed, atol=1e-12)
    x = np.linspace(0, 1, 100_001)
    assert ((2 - x) / (1 + np.exp(-3 * (2 * x - 1)))).max() == pytest.approx(1.0298, abs=1e-4)


def test_game_pytree_round_trip_jit_and_vmap():
    """Flatten/unflatten reproduces every array bit for bit and the static flag; a jit-ted,
    vmap-ped response over a batch of games (stacked theta) equals a NumPy loop."""
    import jax
    import jax.numpy as jnp

    g = random_game(0, 2, 2, 3, 2, 2, eta=1.4, farsighted=True)
    leaves, treedef = jax.tree_util.tree_flatten(g)
    g2 = jax.tree_util.tree_unflatten(treedef, leaves)
    for f in ("transitions", "leader_reward", "features", "theta", "eta", "initial_dist"):
        a, b = np.asarray(getattr(g, f)), np.asarray(getattr(g2, f))
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), f
    assert g2.farsighted is True
    thetas = np.random.default_rng(2).normal(size=(4, 2))
    batch = jax.tree_util.tree_map(
        lambda *xs: jnp.stack(xs), *[g.replace(theta=th) for th in thetas]
    )
    pi = np.random.default_rng(3).dirichlet(np.ones(2), size=(2, 2))
    got = jax.jit(jax.vmap(lambda game: bq.follower_response(game, jnp.asarray(pi))))(batch)
    for k, th in enumerate(thetas):
        u = np.einsum("hsabd,d->hsab", g.features, th)
        ref = np_follower_response(g.transitions, u, 1.4, pi, True)
        np.testing.assert_allclose(np.asarray(got[k]), ref, atol=1e-12)
