"""The ``online_regret`` experiment (docs/math.md §7, experiment 1): configs, results format,
resuming, figures and table, configuration errors, and the thin script with tiny settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpyro  # noqa: F401  (RunStore imports it; importing first avoids one retrace)
import pytest
from reference import deterministic_policies, np_follower_response, np_policy_value

from bayes_qse.errors import ConfigError
from bayes_qse.experiments import get_experiment, load_config, online_units
from bayes_qse.experiments import online_regret as exp
from bayes_qse.learners import online
from bayes_qse.learners.runner import OnlineRunner

ROOT = Path(__file__).resolve().parents[1]

TINY = {"games": ["linear"], "learners": ["oracle", "greedy"], "episodes": 6, "chunk": 3}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    config = load_config(exp, overrides=TINY)
    out = tmp_path_factory.mktemp("online_run")
    return out, config, exp.run(config, out, progress=False)


def test_registry_and_configs():
    assert get_experiment("online_regret") is exp
    full = load_config(exp, full=True)
    assert full["seeds"] >= 20 and full["episodes"] == 1000
    assert set(full["games"]) == set(exp.ONLINE_GAMES)
    assert set(online.LEARNERS) <= set(full["learners"])
    assert {"uniform", "mle-optimistic-first-order"} <= set(full["learners"])
    assert full["linear"]["feature_dim"] == 8
    for name in exp.ONLINE_GAMES:
        game = online_units.online_experiment_game(name, full)
        assert game.farsighted == (name in exp.FARSIGHTED_GAMES)


def test_every_published_test_bed_is_identified():
    """Each game of the full run has full Fisher rank at its true theta under varied
    policies, with 1500 episodes (the tabular game's rarest cells need that many): the
    parameter error is then the identified-subspace error and the chi-square dof is d.  Bug
    caught: a test bed with features constant across follower actions (the old 12-feature
    steering game had rank 3)."""
    from bayes_qse.identification import identified_directions

    full = load_config(exp, full=True)
    for name in exp.ONLINE_GAMES:
        game = online_units.online_experiment_game(name, full)
        ident = identified_directions(game, n_episodes=1500, seed=1)
        assert ident.rank == game.feature_dim, name
        assert ident.eigenvalues.min() > 1e-4 * ident.eigenvalues.max(), name
    H, S, A, B = online_units.online_experiment_game("tabular", full).shape
    assert online_units.online_experiment_game("tabular", full).feature_dim == H * S * A * (B - 1)


def test_results_figures_and_table(finished_run):
    out, config, path = finished_run
    assert path == out / "results.npz"
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    assert arrays["linear.oracle.regret"].shape == (2, 6)
    assert np.all(arrays["linear.oracle.regret"] == 0.0)
    assert np.all(arrays["linear.greedy.regret"] >= -1e-12)
    doc = json.loads((out / "results.json").read_text())
    assert doc["config"]["episodes"] == 6 and "bayes_qse" in doc["versions"]
    summary = doc["summary"]["summary"]["linear"]
    final = np.cumsum(arrays["linear.greedy.regret"], axis=1)[:, -1]
    assert summary["greedy"]["final_regret_mean"] == pytest.approx(final.mean())
    assert summary["oracle"]["final_regret_mean"] == 0.0
    paths = exp.plot(out)
    assert out / "online_regret_linear.png" in paths
    assert all(p.stat().st_size > 0 for p in paths)
    table = (out / "table.md").read_text()
    assert "| linear (rank 4/4) | greedy | 6 |" in table and "oracle" in table
    # units carry their seed and config (one part per seed in the unit's directory)
    from bayes_qse.experiments.units import load_parts

    (unit,) = [u for u in exp.make_units(config) if u.learner == "greedy"]
    _, (arrays_u, meta) = load_parts(out, unit)
    assert meta["seed"] == 1 and meta["config"]["config"]["episodes"] == 6
    np.testing.assert_array_equal(arrays_u["regret"], arrays["linear.greedy.regret"][1])


def test_recorded_regret_is_the_true_value_gap_of_the_policies_played(finished_run):
    """The regret the experiment records, re-evaluated independently.  The experiment's runner
    (same game, learner settings and seeds) is run one episode per chunk so that the policy
    ``pi^t`` each learner announced can be read from its state before episode ``t``; each
    recorded regret must equal ``J(pi*) - J(pi^t)`` by the NumPy loops of
    ``tests/reference.py``, with ``J(pi*)`` the best deterministic policy by brute force (a
    myopic follower: the QSE is an MDP optimum).  Bug caught: regret measured from a wrong
    optimum (the estimated model, a step-wise plan), the regret of the next episode's policy
    recorded for this one, rows of seeds swapped, a sign error.

    The experiment's own records (run in chunks of 3) are checked against the value gaps of
    the policies the learner can announce.  (Replaying the learner outside the runner is not
    exact: in states no episode has visited, the greedy plan is an exact tie under the prior,
    broken by rounding, which differs between compilations.)"""
    out, config, path = finished_run
    with np.load(path) as data:
        seeds = [int(s) for s in data["seeds"]]
        experiment_regret = data["linear.greedy.regret"]
    game = online_units.online_experiment_game("linear", config)
    P, r, rho = (np.asarray(x) for x in (game.transitions, game.leader_reward, game.initial_dist))
    u = np.einsum("hsabd,d->hsab", np.asarray(game.features), np.asarray(game.theta))
    nu = np_follower_response(P, u, float(game.eta))
    H, S, A, _ = game.shape
    j_star = max(np_policy_value(P, r, rho, nu, pi) for pi in deterministic_policies(H, S, A))
    T = config["episodes"]
    runner = OnlineRunner(
        game,
        "greedy",
        online_units.unit_learner_config(config, False, T),
        episodes=T,
        chunk=1,
        known_model=config["known_model"],
    )
    states = runner.init_states(seeds)
    played = set()
    for t in range(T):
        policies = np.asarray(states.policy)
        states, record = runner.run_chunk(states, seeds, t)
        for row, policy in enumerate(policies):
            played.add(policy.tobytes())
            expected = j_star - np_policy_value(P, r, rho, nu, policy)
            assert float(record.regret[row, 0]) == pytest.approx(expected, abs=1e-10), (row, t)
    assert len(played) > 1  # the policies changed over the run: an off-by-one would show
    # the experiment's own records (chunks of 3): the first episode plays the uniform policy,
    # every later one a deterministic plan, so each entry is one of these value gaps
    uniform = j_star - np_policy_value(P, r, rho, nu, np.full((H, S, A), 1.0 / A))
    np.testing.assert_allclose(experiment_regret[:, 0], uniform, atol=1e-10)
    gaps = np.array(
        [j_star - np_policy_value(P, r, rho, nu, pi) for pi in deterministic_policies(H, S, A)]
    )
    for value in experiment_regret[:, 1:].ravel():
        assert np.min(np.abs(gaps - value)) < 1e-10, value


def test_rerun_resumes_without_recomputing(finished_run, monkeypatch):
    out, config, path = finished_run
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise AssertionError("a finished unit was run again")

    monkeypatch.setattr(online_units, "OnlineRunner", fail)
    exp.run(config, out, progress=False)
    with np.load(path) as new, np.load(_bytes_npz(before, out)) as old:
        for k in old.files:
            np.testing.assert_array_equal(new[k], old[k])


def _bytes_npz(data: bytes, folder: Path) -> Path:
    p = folder / "previous_results.npz"
    p.write_bytes(data)
    return p


def test_a_different_config_is_refused(finished_run):
    out, config, _ = finished_run
    with pytest.raises(ConfigError, match="episodes"):
        exp.run({**config, "episodes": 9, "chunk": 3}, out, progress=False)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"games": ["chess"]}, "games"),
        ({"learners": ["ucb"]}, "learners"),
        ({"episodes": 10, "chunk": 3}, "chunk"),
        ({"slope_start": 1.5}, "slope_start"),
        ({"learner": {"num_draws": "many"}}, "learner.num_draws"),
        ({"learner": {"optimism": "wild"}}, "learner.optimism"),
    ],
)
def test_config_errors_name_the_key(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(exp, overrides=override)


@pytest.mark.slow
def test_script_runs_every_learner_with_tiny_settings(tmp_path):
    """The example as users run it, CI-sized, on the farsighted game (every learner's general
    version: warm-started gradient planner, one-step Newton, likelihood-ratio candidates); the
    myopic versions run in the fast tests and in test_online.py."""
    out = tmp_path / "run"
    config = tmp_path / "tiny.toml"
    config.write_text('games = ["farsighted"]\nfarsighted_episodes = 6\nchunk = 3\n')
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "experiments" / "online_regret.py"),
            "--seeds",
            "1",
            "--config",
            str(config),
            "--out",
            str(out),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "results:" in proc.stdout
    assert (out / "online_regret_farsighted.png").is_file()
    table = (out / "table.md").read_text()
    for learner in online.LEARNERS:
        assert f"| farsighted (rank 3/3) | {learner} |" in table
