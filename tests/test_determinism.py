"""Determinism that survives batching (issue 12, item 1): round-off-robust decisions
(:mod:`bayes_qse.ties`) and a seed's records that are bit-identical whatever seeds share its
batch, and after a kill and a resume with other seeds."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro  # noqa: F401  (RunStore imports it; it registers JAX options: import first)
import pytest

from bayes_qse.experiments import load_config, online_units
from bayes_qse.experiments import online_regret as exp
from bayes_qse.experiments.store import RunStore
from bayes_qse.games import steering_game
from bayes_qse.learners import OnlineRunner, run_online
from bayes_qse.model import Model
from bayes_qse.planning import backward_induction, plan_myopic, stepwise_policy
from bayes_qse.ties import TIE_RTOL, greedy_one_hot, tolerant_argmax

FIELDS = ("regret", "theta_error", "set_size", "informed")


# ---- the tolerant argmax ---------------------------------------------------------------


def _reference_argmax(row: np.ndarray, rtol: float) -> int:
    """Lowest index within rtol * (1 + |max|) of the max, by a plain loop."""
    top = max(row)
    for i, x in enumerate(row):
        if x >= top - rtol * (1.0 + abs(top)):
            return i
    raise AssertionError


def test_tolerant_argmax_takes_the_lowest_index_within_the_tolerance():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(200, 4)) * 10.0 ** rng.integers(-3, 4, size=(200, 1))
    # perturb entry 2 or 3 to within ~1e-13 relative of entry 0 or 1 (ties a plain argmax
    # would break on round-off) and some by 1e-6 relative (real differences)
    x = base.copy()
    for i in range(200):
        j, k = rng.integers(0, 2), rng.integers(2, 4)
        x[i, j] = np.max(base[i]) * (1 + np.sign(np.max(base[i])) * 1e-6) + 1e-6
        scale = rng.choice([1e-13, -1e-13, 1e-6, -1e-6])
        x[i, k] = x[i, j] + scale * (1 + abs(x[i, j]))
    got = np.asarray(tolerant_argmax(jnp.asarray(x)))
    want = [_reference_argmax(row, TIE_RTOL) for row in x]
    np.testing.assert_array_equal(got, want)
    assert np.any(got != np.argmax(x, axis=1))  # the rule differs from the plain argmax
    # axis, a plain argmax at rtol=0, and the fall-back for a NaN maximum
    np.testing.assert_array_equal(tolerant_argmax(jnp.asarray(x.T), axis=0), want)
    np.testing.assert_array_equal(tolerant_argmax(jnp.asarray(x), rtol=0.0), np.argmax(x, 1))
    assert int(tolerant_argmax(jnp.array([0.0, jnp.nan, 1.0]))) == 1
    np.testing.assert_array_equal(
        greedy_one_hot(jnp.array([[1.0, 1.0 + 1e-14, 0.0], [0.0, 0.5, 0.5 + 1e-3]])),
        [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],
    )


def _two_action_model(gap: float):
    """H=S=B=1, A=2: Q(a) = r(a) with r = (0.5, 0.5 + gap)."""
    P = jnp.ones((1, 1, 2, 1, 1))
    r = jnp.array([0.5, 0.5 + gap]).reshape(1, 1, 2, 1)
    return P, r


@pytest.mark.parametrize(("gap", "action"), [(1e-13, 0), (-1e-13, 0), (1e-6, 1)])
def test_planners_break_round_off_ties_by_the_lowest_action(gap, action):
    """Every planner's decision: a 1e-13 advantage is a tie (action 0, where the plain argmax
    took action 1 for +1e-13), a 1e-6 advantage is not."""
    P, r = _two_action_model(gap)
    model = Model(jnp.zeros((1, 1, 2, 1, 1)), 1.0, P, r)
    _, _, pi = backward_induction(model, jnp.ones((1, 1, 2, 1)))
    _, _, pi_draws = plan_myopic(model, jnp.zeros((3, 1)))
    pi_step = stepwise_policy(model, jnp.zeros((1,)))
    want = np.eye(2)[action]
    np.testing.assert_array_equal(pi[0, 0], want)
    np.testing.assert_array_equal(pi_step[0, 0], want)
    for m in range(3):
        np.testing.assert_array_equal(pi_draws[m, 0, 0], want)


# ---- a seed's records do not depend on its batch, nor on resuming ----------------------


@pytest.fixture(scope="module")
def linear_game():
    """The game of the issue: online_regret's CI-sized linear game (there, greedy's seed 0
    changed with --seeds before fixed-width seed blocks)."""
    return online_units.online_experiment_game("linear", load_config(exp))


def _rows(out, seed):
    i = list(out["seeds"]).index(seed)
    return {f: out[f][i] for f in FIELDS}


def _assert_same(a, b, what):
    for f in FIELDS:
        assert np.array_equal(a[f], b[f]), f"{what}: {f} differs by {np.abs(a[f] - b[f]).max()}"


def _check_batches_and_resume(game, learner, episodes, chunk, tmp_path, monkeypatch, config):
    runner = OnlineRunner(game, learner, config, episodes=episodes, chunk=chunk)
    run = lambda seeds, **kw: run_online(
        game, learner, episodes=episodes, seeds=seeds, runner=runner, **kw
    )
    alone = _rows(run([3]), 3)
    batches = [[3, 0], [0, 3], [1, 2, 3], [3, 4, 5, 6, 7, 8, 9], [10, 11, 12, 13, 14, 3, 15]]
    for seeds in batches:
        _assert_same(_rows(run(seeds), 3), alone, f"seed 3 in batch {seeds}")

    # killed in the middle of the per-seed saves of chunk 2, resumed with other seeds
    store = RunStore(tmp_path, "online_regret", {"seeds": 3, "base_seed": 0})
    original = RunStore.save_checkpoint
    calls = {"n": 0}

    def save_then_die(self, key, pytree, meta=None, part=None):
        original(self, key, pytree, meta, part)
        calls["n"] += 1
        if calls["n"] == 4:  # chunk 1: seeds 1, 3, 5; chunk 2: seed 1 only
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(RunStore, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run([1, 3, 5], store=store, checkpoint_key="unit")
    monkeypatch.setattr(RunStore, "save_checkpoint", original)
    store.close()
    played = []
    run_chunk = runner.run_chunk
    monkeypatch.setattr(
        runner,
        "run_chunk",
        lambda s, seeds, t0: played.append((t0, list(seeds))) or run_chunk(s, seeds, t0),
    )
    with RunStore(tmp_path, "online_regret", {"seeds": 3, "base_seed": 0}) as reopened:
        resumed = run([3, 5, 7], store=reopened, checkpoint_key="unit")
    # seed 7 is new (from episode 0); seeds 3 and 5 resume after chunk 1
    starts = list(range(0, episodes, chunk))
    assert played == [(t, [7]) for t in starts] + [(t, [3, 5]) for t in starts[1:]]
    _assert_same(_rows(resumed, 3), alone, "seed 3 resumed")
    assert runner.n_traces == 1  # one compiled program for every batch size


@pytest.mark.parametrize("learner", ["greedy", "thompson"])
def test_myopic_seed_is_bit_identical_alone_in_any_batch_and_resumed(
    linear_game, learner, tmp_path, monkeypatch
):
    cfg = {"num_draws": 4, "newton_steps": 5}
    _check_batches_and_resume(linear_game, learner, 16, 4, tmp_path, monkeypatch, cfg)


def test_farsighted_seed_is_bit_identical_alone_in_any_batch_and_resumed(tmp_path, monkeypatch):
    cfg = {"planner_steps": 5, "newton_steps": 5}
    _check_batches_and_resume(steering_game(), "greedy", 6, 2, tmp_path, monkeypatch, cfg)
