"""The model pytree (bayes_qse.model): the jitted core's one shape of a game."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_qse.games import random_game
from bayes_qse.learners import GameSpec
from bayes_qse.model import Model, as_model


def test_game_and_spec_share_one_model_pytree():
    """Catches a Game or GameSpec whose model drops or swaps a field, or a spec that leaks
    the leader's unknown transitions outside planning mode."""
    game = random_game(0, 3, 2, 2, 2, 3)
    m = as_model(game)
    np.testing.assert_array_equal(m.features, game.features)
    np.testing.assert_array_equal(m.transitions, game.transitions)
    np.testing.assert_array_equal(m.leader_reward, game.leader_reward)
    np.testing.assert_array_equal(m.initial_dist, game.initial_dist)
    assert m.eta == game.eta and m.farsighted == game.farsighted
    spec = as_model(GameSpec.from_game(game))
    assert spec.transitions is None and spec.leader_reward is None and spec.initial_dist is None
    planning = as_model(GameSpec.from_game(game, known_model=True, initial_dist="game"))
    np.testing.assert_array_equal(planning.transitions, game.transitions)
    assert as_model(m) is m
    with pytest.raises(TypeError, match="Game, GameSpec or Model"):
        as_model(object())


def test_farsighted_is_static_and_draws_vmap_through_in_axes():
    """Catches ``farsighted`` traced as a leaf (Python ``if`` on it would fail under jit) and
    an in_axes pytree that does not reach the transitions."""
    m = random_game(0, 3, 2, 2, 2, 3).model
    leaves, treedef = jax.tree_util.tree_flatten(m)
    assert len(leaves) == 5 and all(not isinstance(x, bool) for x in leaves)

    @jax.jit
    def total(model):
        return jnp.sum(model.transitions) + (1.0 if model.farsighted else 0.0)

    H, S, A, B = m.shape
    assert float(total(m)) == pytest.approx(H * S * A * B)
    assert float(total(m.replace(farsighted=True))) == pytest.approx(H * S * A * B + 1)
    stacked = m.replace(transitions=jnp.stack([m.transitions, 2 * m.transitions]))
    axes = Model(features=None, eta=None, transitions=0, leader_reward=None, initial_dist=None)
    out = jax.vmap(lambda mm: jnp.sum(mm.transitions), in_axes=(axes,))(stacked)
    np.testing.assert_allclose(out, [H * S * A * B, 2 * H * S * A * B])
