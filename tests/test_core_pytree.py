"""The unified pure cores on the Model pytree (docs/math.md §1, eq. 1-4): each one runs under
``jit`` and under ``jax.disable_jit()`` and matches an independent NumPy loop."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import np_backward_induction, np_follower_response, np_policy_value

from bayes_qse.backward import backward_scan, greedy_backward
from bayes_qse.data import buffer_from_dataset, simulate
from bayes_qse.follower import myopic_log_response
from bayes_qse.games import random_game
from bayes_qse.learners.common import GameSpec
from bayes_qse.likelihood import log_posterior, response_counts
from bayes_qse.model import Model
from bayes_qse.planning import evaluate_policy, policy_value

MODES = ["jit", "eager"]


def run(mode, fn, *args):
    """``fn(*args)`` compiled (``jit``) or op by op (``jax.disable_jit()``)."""
    if mode == "jit":
        return jax.jit(fn)(*args)
    with jax.disable_jit():
        return fn(*args)


def np_log_response(features, eta, theta):
    """log softmax_b(eta * phi . theta) with explicit loops over (h, s, a)."""
    H, S, A, B, _ = features.shape
    out = np.zeros((H, S, A, B))
    for h, s, a in np.ndindex(H, S, A):
        z = eta * features[h, s, a] @ theta
        out[h, s, a] = z - (z.max() + np.log(np.exp(z - z.max()).sum()))
    return out


@pytest.mark.parametrize("mode", MODES)
def test_myopic_log_response_matches_loops(mode):
    """Catches eta applied outside the softmax, a softmax over the wrong axis, or a batch
    of theta reduced instead of broadcast."""
    g = random_game(0, 3, 2, 3, 2, 4, eta=1.7)
    thetas = np.random.default_rng(0).normal(size=(2, 4))
    got = np.asarray(run(mode, myopic_log_response, g.model, jnp.asarray(thetas)))
    for m in range(2):
        ref = np_log_response(np.asarray(g.features), 1.7, thetas[m])
        np.testing.assert_allclose(got[m], ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("farsighted", [False, True])
def test_log_posterior_is_likelihood_minus_the_gaussian_prior(mode, farsighted):
    """Catches a missing or doubled prior term, a wrong sign, or a matrix prior read as a
    scalar (the scalar and the matrix ``lam * I`` must give the same value)."""
    g = random_game(1, 3, 2, 3, 3, 2, eta=1.3, farsighted=farsighted)
    H, S, A, _ = g.shape
    pols = np.random.default_rng(1).dirichlet(np.ones(A), size=(6, H, S))
    data = simulate(g, pols, 6, seed=1)
    theta = np.array([0.4, -0.9])
    ll = 0.0  # eq. (4) with loops
    u = np.einsum("hsabd,d->hsab", np.asarray(g.features), theta)
    for t in range(6):
        nu = np_follower_response(g.transitions, u, 1.3, data.policies[t], farsighted)
        for h in range(H):
            s, a, b = data.states[t, h], data.leader_actions[t, h], data.follower_actions[t, h]
            ll += np.log(nu[h, s, a, b])
    lam = 2.5
    ref = ll - 0.5 * lam * (theta @ theta)
    buf = buffer_from_dataset(data)
    stats = buf if farsighted else response_counts(buf, g.shape)
    for prior in (lam, lam * np.eye(2)):
        got = run(mode, log_posterior, jnp.asarray(theta), g.model, stats, jnp.asarray(prior))
        assert float(got) == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("farsighted", [False, True])
def test_policy_value_matches_loops_and_vmaps_over_model_draws(mode, farsighted):
    """Catches a policy evaluation that drops the follower's response (or uses the myopic
    one for a farsighted follower), and an in_axes pytree that does not reach the sampled
    transitions/rewards."""
    g = random_game(2, 3, 2, 2, 3, 2, eta=0.8, farsighted=farsighted)
    rng = np.random.default_rng(2)
    pi = rng.dirichlet(np.ones(2), size=(3, 3))
    theta = rng.normal(size=2)
    P, r, rho = (np.asarray(x) for x in (g.transitions, g.leader_reward, g.initial_dist))
    u = np.einsum("hsabd,d->hsab", np.asarray(g.features), theta)
    ref = np_policy_value(P, r, rho, np_follower_response(P, u, 0.8, pi, farsighted), pi)
    got = run(mode, policy_value, jnp.asarray(pi), g.model, jnp.asarray(theta))
    assert float(got) == pytest.approx(ref, abs=1e-12)
    # two sampled leader models, vmapped through the pytree's in_axes
    P2 = np.stack([P, rng.dirichlet(np.ones(3), size=P.shape[:4])])
    r2 = np.stack([r, rng.uniform(size=r.shape)])
    draws = g.model.replace(transitions=jnp.asarray(P2), leader_reward=jnp.asarray(r2))
    axes = g.model.replace(features=None, eta=None, transitions=0, leader_reward=0)
    axes = axes.replace(initial_dist=None)
    values = jax.vmap(policy_value, in_axes=(None, axes, None))
    got2 = np.asarray(run(mode, values, jnp.asarray(pi), draws, jnp.asarray(theta)))
    for m in range(2):
        nu = np_follower_response(P2[m], u, 0.8, pi, farsighted)
        assert got2[m] == pytest.approx(np_policy_value(P2[m], r2[m], rho, nu, pi), abs=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_backward_scan_runs_backwards_and_appends_the_terminal_value(mode):
    """Catches a forward scan (V_1 would be computed first), a missing terminal row, or the
    outputs stacked in the wrong order: V_h = a_h V_{h+1} + b_h from V_4 = 0 by hand."""
    a, b = np.array([2.0, 3.0, 5.0]), np.array([1.0, -1.0, 0.5])

    def recursion(a, b):
        return backward_scan(lambda v, x: (x[0] * v + x[1], 10.0 * v), jnp.zeros(()), (a, b))

    outs, values = run(mode, recursion, jnp.asarray(a), jnp.asarray(b))
    v4 = 0.0
    v3 = 5.0 * v4 + 0.5
    v2 = 3.0 * v3 - 1.0
    v1 = 2.0 * v2 + 1.0
    np.testing.assert_array_equal(np.asarray(values), [v1, v2, v3, v4])
    np.testing.assert_array_equal(np.asarray(outs), [10 * v2, 10 * v3, 10 * v4])


@pytest.mark.parametrize("mode", MODES)
def test_greedy_backward_with_the_expectation_step_is_exact_planning(mode):
    """Catches a max over the wrong axis or a policy-evaluation step where the greedy one is
    due: the expectation step operator gives eq. (2a), checked against NumPy loops; and
    evaluate_policy of the greedy policy recovers the same values."""
    g = random_game(3, 3, 2, 3, 3, 2)
    nu = np.exp(np_log_response(np.asarray(g.features), float(g.eta), np.asarray(g.theta)))

    def plan(model, nu):
        def q_step(v_next, x):
            p_h, r_h, nu_h = x
            return jnp.sum(nu_h * (r_h + jnp.einsum("sabt,t->sab", p_h, v_next)), axis=-1)

        S = model.transitions.shape[1]
        xs = (model.transitions, model.leader_reward, nu)
        return greedy_backward(q_step, jnp.zeros((S,)), xs)

    q, v = run(mode, plan, g.model, jnp.asarray(nu))
    q_ref, v1_ref = np_backward_induction(g.transitions, g.leader_reward, nu)
    np.testing.assert_allclose(np.asarray(q), q_ref, atol=1e-12)
    np.testing.assert_allclose(np.asarray(v)[0], v1_ref, atol=1e-12)
    greedy = np.eye(2)[np.argmax(q_ref, -1)]
    v_pi, _ = run(mode, evaluate_policy, g.model, jnp.asarray(nu), jnp.asarray(greedy))
    np.testing.assert_allclose(np.asarray(v_pi), np.asarray(v), atol=1e-12)


def test_model_without_transitions_is_enough_for_a_myopic_follower():
    """Catches a myopic core that reads the (unknown) transitions."""
    g = random_game(4, 2, 2, 2, 2, 2)
    m = Model(g.features, g.eta)
    got = myopic_log_response(m, jnp.asarray(g.theta))
    np.testing.assert_allclose(
        np.asarray(got), np_log_response(np.asarray(g.features), float(g.eta), g.theta), atol=1e-12
    )


def test_game_spec_crosses_jit_with_its_static_fields_static():
    """``GameSpec`` is a pytree whose arrays are leaves and whose ``farsighted`` and
    ``reward_range`` are static: a jitted function may branch on them in Python and sees the
    spec's own values.  Fails if the flags are traced leaves again (``TracerBoolConversionError``
    from the branch), or if the static fields are dropped or swapped on the way through
    ``jit`` (the answers below would then not follow the specs)."""
    game = random_game(0, 2, 2, 2, 3, 2)
    myopic = GameSpec.from_game(game, reward_range=(-1.0, 2.0))
    farsighted = myopic.replace(farsighted=True, reward_range=(0.0, 5.0))

    @jax.jit
    def f(spec):
        lo, hi = spec.reward_range
        return (1.0 if spec.farsighted else 0.0) + (hi - lo) + 0.0 * spec.features.sum()

    assert float(f(myopic)) == 3.0
    assert float(f(farsighted)) == 6.0
    leaves = jax.tree_util.tree_leaves(myopic)
    assert len(leaves) == 2  # features and eta; the flags are not leaves, None fields empty
    back = jax.tree_util.tree_map(lambda x: x, farsighted)
    assert back.farsighted is True and back.reward_range == (0.0, 5.0)
    np.testing.assert_array_equal(back.features, farsighted.features)
