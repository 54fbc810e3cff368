"""The one registry of the experiments' games (:mod:`bayes_qse.experiments.games`).

Golden arrays come from NumPy written out here from each game's documented recipe (draw
order, codings), never from the registry or a second call of the builder; the pass-through
kinds whose construction is long (the covariance security game, the large patrol game) are
checked against their library function called with the arguments named explicitly, which
catches a settings field mapped to the wrong argument.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from bayes_qse.errors import ConfigError
from bayes_qse.experiments import games as eg
from bayes_qse.experiments import offline_suboptimality as off
from bayes_qse.experiments import online_regret, online_units, set_coverage
from bayes_qse.games import patrol_large_game
from bayes_qse.security import covariance_security_game


def np_random(seed, S, A, B, H, d, concentration=1.0):
    """random_game's recipe: P ~ Dir(c), r ~ U[0,1], phi ~ N(0,1), theta ~ N(0, 1/d),
    rho ~ Dir(1), in that order from default_rng(seed)."""
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(S, concentration), size=(H, S, A, B))
    r = rng.uniform(0.0, 1.0, size=(H, S, A, B))
    phi = rng.normal(size=(H, S, A, B, d))
    theta = rng.normal(size=d) / np.sqrt(d)
    rho = rng.dirichlet(np.ones(S))
    return P, r, phi, theta, rho


def shifted(u):
    """A utility up to the shift the myopic response ignores: u(., b) - u(., 0)."""
    u = np.asarray(u)
    return u - u[..., :1]


RANDOM = {
    "seed": 11,
    "n_states": 2,
    "n_leader_actions": 3,
    "n_follower_actions": 2,
    "horizon": 2,
    "feature_dim": 3,
    "eta": 1.5,
}


@pytest.mark.parametrize("kind", ["random", "random-farsighted"])
def test_random_kinds_follow_the_random_game_recipe(kind):
    """Bug caught: settings passed to random_game in the wrong order (n_states and
    n_leader_actions swapped, as a positional call can), a dropped ``eta``, or the farsighted
    flag lost (``farsighted-random`` then runs a myopic follower)."""
    game = eg.make_game(kind, RANDOM)
    P, r, phi, theta, rho = np_random(11, 2, 3, 2, 2, 3)
    for got, want in zip(
        (game.transitions, game.leader_reward, game.features, game.theta, game.initial_dist),
        (P, r, phi, theta, rho),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(got), want)
    assert float(game.eta) == 1.5
    assert bool(game.farsighted) == (kind == "random-farsighted")


def test_online_tabular_kind_follows_its_recipe():
    """``random-tabular`` (the online ``tabular`` game): P ~ Dir(1), r ~ U[0,1],
    u ~ scale N(0,1), rho ~ Dir(1) from default_rng(seed), u coded against b = 0.  Bug
    caught: the utility scale ignored, the draws reordered, the offline game built instead."""
    table = {"seed": 4, "n_states": 2, "n_leader_actions": 2, "n_follower_actions": 3}
    table |= {"horizon": 2, "utility_scale": 1.5, "eta": 2.0}
    game = eg.make_game("random-tabular", table)
    rng = np.random.default_rng(4)
    P = rng.dirichlet(np.ones(2), size=(2, 2, 2, 3))
    r = rng.uniform(0.0, 1.0, size=(2, 2, 2, 3))
    u = 1.5 * rng.normal(size=(2, 2, 2, 3))
    rho = rng.dirichlet(np.ones(2))
    np.testing.assert_array_equal(np.asarray(game.transitions), P)
    np.testing.assert_array_equal(np.asarray(game.leader_reward), r)
    np.testing.assert_array_equal(np.asarray(game.initial_dist), rho)
    np.testing.assert_allclose(shifted(game.utility()), shifted(u), rtol=0, atol=1e-12)
    assert game.feature_dim == 2 * 2 * 2 * 2 and float(game.eta) == 2.0


def test_offline_tabular_kind_is_the_random_game_with_a_tabular_utility():
    """``random-tabular-utility`` (the offline ``tabular`` game): the random game's P, r, rho
    with u ~ N(0,1) from default_rng(seed + 7919).  Bug caught: the utility drawn from the
    game's own seed (it would then correlate with the features), or the online recipe."""
    game = eg.make_game("random-tabular-utility", RANDOM)
    P, r, _, _, rho = np_random(11, 2, 3, 2, 2, 3)
    u = np.random.default_rng(11 + 7919).normal(size=(2, 2, 3, 2))
    np.testing.assert_array_equal(np.asarray(game.transitions), P)
    np.testing.assert_array_equal(np.asarray(game.leader_reward), r)
    np.testing.assert_array_equal(np.asarray(game.initial_dist), rho)
    np.testing.assert_allclose(shifted(game.utility()), shifted(u), rtol=0, atol=1e-12)


def test_random_large_kind_is_square_and_sparse():
    """``random-large``: random_game with A = B = n_actions and Dirichlet(0.1) transitions.
    Bug caught: the concentration or the square shape lost in the mapping."""
    table = {"seed": 2, "n_states": 3, "n_actions": 2, "horizon": 2, "feature_dim": 2, "eta": 1.0}
    game = eg.make_game("random-large", table)
    P, r, phi, theta, rho = np_random(2, 3, 2, 2, 2, 2, concentration=0.1)
    np.testing.assert_array_equal(np.asarray(game.transitions), P)
    np.testing.assert_array_equal(np.asarray(game.features), phi)
    np.testing.assert_array_equal(np.asarray(game.theta), theta)


def test_tempting_and_exploration_kinds_by_hand():
    """The two hand-built test beds, written out: tempting with K = 2 (leader action k < K
    pays 1 when the follower cooperates, b = 0; the safe action K pays safe_value; theta_k
    = logit(1 - tempting_value) / eta), exploration with B = 3 (phi_0 = b / (B-1) under the
    safe action, phi_1 = [b = 0] under the risky one; theta = (0.5, cooperation)).  Bug
    caught: safe_value and tempting_value swapped, cooperation not passed."""
    g = eg.make_game("tempting", {"n_tempting": 2, "safe_value": 0.7, "tempting_value": 0.2})
    r = np.zeros((1, 1, 3, 2))
    r[0, 0, :2, 0], r[0, 0, 2, :] = 1.0, 0.7
    np.testing.assert_array_equal(np.asarray(g.leader_reward), r)
    np.testing.assert_allclose(np.asarray(g.theta), np.full(2, math.log(0.8 / 0.2) / 2.0))
    e = eg.make_game("exploration", {"cooperation": 2.5, "safe_reward": 0.4, "eta": 1.0})
    phi = np.zeros((2, 1, 2, 3, 2))
    phi[:, 0, 0, :, 0] = [0.0, 0.5, 1.0]
    phi[:, 0, 1, 0, 1] = 1.0
    np.testing.assert_array_equal(np.asarray(e.features), phi)
    np.testing.assert_array_equal(np.asarray(e.theta), [0.5, 2.5])
    assert np.asarray(e.leader_reward)[0, 0, 0, 1] == 0.4


def test_steering_and_patrol_kinds():
    """The steering game's fixed theta = (-1, 2, 0) at the given eta; the large patrol game
    is patrol_large_game(n_sites, horizon, eta) (arguments named here).  Bug caught: the
    steering eta ignored (its default 3 used), n_sites and horizon swapped."""
    s = eg.make_game("steering", {"eta": 5.0})
    np.testing.assert_array_equal(np.asarray(s.theta), [-1.0, 2.0, 0.0])
    assert float(s.eta) == 5.0 and bool(s.farsighted)
    got = eg.make_game("patrol-large", {"n_sites": 12, "horizon": 3, "eta": 1.5})
    want = patrol_large_game(n_sites=12, horizon=3, eta=1.5)
    for f in ("transitions", "leader_reward", "features", "theta"):
        np.testing.assert_array_equal(np.asarray(getattr(got, f)), np.asarray(getattr(want, f)))


def test_normal_form_kinds_follow_wu_et_al():
    """Wu et al.'s generators (eq. 9c), written out: V = alpha I + (1 - alpha) minmax(R),
    R ~ N(0, 2) of shape [m, n]; the security game's w ~ U[-3, -1], c ~ U[1, 3] (in that
    order), V = diag(w) + 1 c^T min-max normalised.  Compared up to the per-row shift of the
    reference coding.  Bug caught: m and n swapped, alpha not passed."""
    g = eg.make_game("wu-normal-form", {"seed": 5, "m": 3, "n": 4, "alpha": 0.3, "eta": 8.0})
    R = np.random.default_rng(5).normal(0.0, 2.0, size=(3, 4))
    V = 0.3 * np.eye(3, 4) + 0.7 * (R - R.min()) / (R.max() - R.min())
    np.testing.assert_allclose(shifted(g.utilities()), shifted(V), rtol=0, atol=1e-12)
    s = eg.make_game("wu-security-form", {"seed": 6, "n_targets": 3, "eta": 4.0})
    rng = np.random.default_rng(6)
    w, c = rng.uniform(-3.0, -1.0, 3), rng.uniform(1.0, 3.0, 3)
    V = np.diag(w) + c[None, :]
    V = (V - V.min()) / (V.max() - V.min())
    np.testing.assert_allclose(shifted(s.utilities()), shifted(V), rtol=0, atol=1e-12)
    assert float(s.eta) == 4.0


def test_security_kinds():
    """security-uniform: rewards U[1, 10], penalties U[-10, -1] from one [4, T] uniform draw
    (defender reward, defender penalty, attacker reward, attacker penalty); the covariance
    game is covariance_security_game with the arguments named here.  Bug caught: the seed
    or the correlation not passed, resources dropped."""
    g = eg.make_game("security-uniform", {"n_targets": 3, "resources": 1.5, "seed": 8})
    u = np.random.default_rng(8).uniform(size=(4, 3))
    want = (1 + 9 * u[0], -10 + 9 * u[1], 1 + 9 * u[2], -10 + 9 * u[3])
    got = (g.defender_reward, g.defender_penalty, g.attacker_reward, g.attacker_penalty)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(a), b, rtol=0, atol=1e-12)
    assert float(g.resources) == 1.5
    table = {"n_targets": 4, "resources": 2.0, "seed": 3, "correlation": 0.4}
    c = eg.make_game("security-covariance", table)
    ref = covariance_security_game(n_targets=4, resources=2.0, correlation=0.4, seed=3)
    np.testing.assert_array_equal(np.asarray(c.defender_reward), np.asarray(ref.defender_reward))
    np.testing.assert_array_equal(np.asarray(c.attacker_penalty), np.asarray(ref.attacker_penalty))


@pytest.mark.parametrize(
    ("kind", "table", "where", "pattern"),
    [
        ("random", {"seed": -1}, "linear", r"^config: linear\.seed: "),
        ("random", {"seed": 2**33}, "game", r"^config: game\.seed: "),
        ("random", {"n_states": 0}, "linear", r"^config: linear\.n_states: "),
        ("random", {"feature_dim": 2.5}, "linear", r"^config: linear\.feature_dim: "),
        ("random", {"eta": -1.0}, "linear", r"^config: linear\.eta: "),
        ("random", {"eta": math.nan}, "linear", r"^config: linear\.eta: "),
        ("random", {"horizon": True}, "linear", r"^config: linear\.horizon: "),
        ("random", {"sed": 1}, "linear", r"^config: linear: unknown setting\(s\) sed"),
        ("random-tabular", {"utility_scale": -1}, "tabular", r"^config: tabular\.utility_scale"),
        ("tempting", {"safe_value": 1.0}, "tempting", r"^config: tempting\.safe_value: "),
        ("patrol-large", {"n_sites": 101}, "large", r"^config: large\.n_sites: "),
        ("exploration", {"n_follower_actions": 1}, "exploration", r"\.n_follower_actions: "),
        ("wu-normal-form", {"alpha": 1.5}, "", r"^config: alpha: "),
        ("security-uniform", {"resources": 9.0}, "", r"^config: resources: "),
        ("security-covariance", {"correlation": 2.0}, "", r"^config: correlation: "),
        ("no-such-kind", {}, "linear", r"^config: linear: unknown game kind 'no-such-kind'"),
        ("random", [1, 2], "linear", r"^config: linear: must be a table"),
    ],
)
def test_a_bad_game_config_is_one_line_naming_the_field(kind, table, where, pattern):
    """Bug caught: a bad value reaching the builder (a NumPy error or a silent default), an
    error naming the settings class instead of the config's key, or a multi-line message."""
    with pytest.raises(ConfigError, match=pattern) as info:
        eg.make_game(kind, table, where=where)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kind", [k for k, v in eg.GAME_KINDS.items() if v.shape is not None])
def test_the_shape_from_settings_is_the_built_games(kind):
    """The memory checks size a game from its settings before building it; fails when a
    kind's shape disagrees with the game it builds (e.g. the tabular d without the B - 1)."""
    small = {
        "random-large": {"n_states": 3, "n_actions": 2, "horizon": 2, "feature_dim": 2},
        "patrol-large": {"n_sites": 10, "horizon": 2},
        "random-tabular": {k: v for k, v in RANDOM.items() if k != "feature_dim"},
    }
    table = small.get(kind, RANDOM if kind.startswith("random") else {})
    game = eg.make_game(kind, table)
    assert eg.game_shape(kind, table) == (*game.shape, game.feature_dim)


def test_every_experiment_game_name_refers_to_a_registered_kind():
    """Every game an online, offline or set-coverage config can name maps to a kind of the
    registry, and every published game (the full configs) builds, farsighted exactly where
    the online experiment says; fails on a game added to an experiment's list without its
    GameRef, or ``farsighted-random`` mapped to the myopic ``random`` kind."""
    assert set(online_units.ONLINE_GAME_REFS) == set(
        online_regret.ONLINE_GAMES + online_regret.EXTRA_GAMES
    )
    assert set(off.OFFLINE_GAME_REFS) == set(off.OFFLINE_GAMES)
    refs = [*online_units.ONLINE_GAME_REFS.values(), *off.OFFLINE_GAME_REFS.values()]
    assert all(ref.kind in eg.GAME_KINDS for ref in [*refs, set_coverage.COVERAGE_GAME])
    for name in off.OFFLINE_GAMES:
        assert not off.experiment_game(name, off.FULL_CONFIG).farsighted, name
    for name in online_units.ONLINE_GAME_REFS:
        game = online_units.online_experiment_game(name, online_regret.FULL_CONFIG)
        assert bool(game.farsighted) == (name in online_regret.FARSIGHTED_GAMES), name


def test_the_old_online_make_game_warns_and_is_the_new_one():
    """The documented ``online_units.make_game`` still works for one release; fails if the
    alias is gone or silent."""
    with pytest.warns(DeprecationWarning, match="online_experiment_game"):
        old = online_units.make_game
    assert old is online_units.online_experiment_game
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        online_units.online_experiment_game("linear", online_regret.DEFAULT_CONFIG)


def test_stated_reward_range_has_one_home_for_both_experiments():
    """``games.stated_reward_range`` is what the online and offline experiments tell the
    leader: a game table's own ``reward_range`` (the patrol game's ``[-2, 1]``, its rewards
    range from -2 to 1), else the config's, else ``[0, 1]``; a range that is not two numbers
    is refused naming its key; the two former names warn for one release and are this one.
    Fails if one experiment reads another rule (e.g. the game's own range ignored), a
    malformed range passes silently or fails without naming the key, or an alias is gone,
    silent or bound to something else."""
    for config in (online_regret.FULL_CONFIG, off.FULL_CONFIG):
        assert eg.stated_reward_range("large", config) == (-2.0, 1.0)
        assert eg.stated_reward_range("linear", config) == (0.0, 1.0)
        assert eg.stated_reward_range("linear", {**config, "reward_range": [-1, 3]}) == (-1.0, 3.0)
    assert eg.stated_reward_range("linear", {}) == (0.0, 1.0)
    with pytest.raises(ConfigError, match=r"large\.reward_range"):
        eg.stated_reward_range("large", {"large": {"reward_range": []}})
    with pytest.raises(ConfigError, match=r"config: reward_range"):
        eg.stated_reward_range("linear", {"reward_range": [0.0, 1.0, 2.0]})
    for module, old in ((online_units, "game_reward_range"), (off, "stated_reward_range")):
        with pytest.warns(DeprecationWarning, match="games.stated_reward_range"):
            assert getattr(module, old) is eg.stated_reward_range
