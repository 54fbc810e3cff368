"""The ``offline_suboptimality`` experiment (docs/math.md §7, experiment 2): results format,
resumability, figures, configuration errors and the thin script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bayes_qse.errors import ConfigError
from bayes_qse.experiments import get_experiment, load_config
from bayes_qse.experiments import offline_suboptimality as exp
from bayes_qse.experiments.games import stated_reward_range
from bayes_qse.planning import solve_qse

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "seeds": 2,
    "sizes": [3, 4],
    "behaviours": ["uniform", "poor-coverage"],
    # bayes-pessimistic is covered by test_offline.py; leaving it out saves its compilation
    "learners": ["oracle", "plugin", "mle-pessimistic"],
}


@pytest.fixture(scope="module")
def tiny_config():
    return load_config(exp, overrides=TINY)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_config):
    out = tmp_path_factory.mktemp("offline_run")
    path = exp.run(tiny_config, out, progress=False)
    return out, path


def test_registry_and_configs():
    assert get_experiment("offline_suboptimality") is exp
    full = load_config(exp, full=True)
    assert full["seeds"] >= 20
    assert full["sizes"][0] == 10 and full["sizes"][-1] == 10_000
    assert set(full["behaviours"]) == {"uniform", "near-optimal", "poor-coverage"}
    assert "tempting" in full["games"] and "mle-pessimistic-first-order" in full["learners"]
    for name in ("oracle", "plugin", "mle-pessimistic", "bayes-pessimistic"):
        assert name in full["learners"]


def test_results_format(finished_run, tiny_config):
    out, path = finished_run
    assert path == out / "results.npz"
    with np.load(path) as data:
        r = {k: data[k] for k in data.files}
    doc = json.loads((out / "results.json").read_text())
    s = doc["summary"]
    assert s["axes"] == ["game", "behaviour", "seed", "size", "learner"]
    shape = (1, 2, 2, 2, 3)
    for key in ("suboptimality", "value", "lower_bound", "lower_bound_holds", "seconds"):
        assert r[key].shape == shape, key
    np.testing.assert_array_equal(r["sizes"], [3, 4])
    learners = s["learners"]
    # suboptimality is J* - J(pi_hat), never negative; the oracle's is 0
    np.testing.assert_allclose(r["suboptimality"], r["optimal_value"][0] - r["value"])
    assert np.all(r["suboptimality"] >= -1e-9)
    np.testing.assert_allclose(r["suboptimality"][..., learners.index("oracle")], 0, atol=1e-9)
    # lower bounds only where the learner gives one; holds is 1/0 there
    for name in ("oracle", "plugin"):
        assert np.all(np.isnan(r["lower_bound"][..., learners.index(name)]))
    h = r["lower_bound_holds"][..., learners.index("mle-pessimistic")]
    assert np.all(np.isin(h, [0.0, 1.0]))
    assert doc["config"]["sizes"] == tiny_config["sizes"]
    assert "versions" in doc and doc["experiment"] == "offline_suboptimality"


def test_rerun_resumes_without_recomputing(finished_run, tiny_config, monkeypatch):
    out, _ = finished_run
    with np.load(out / "results.npz") as data:
        before = data["suboptimality"].copy()
    calls = []
    real = exp.run_offline_unit

    def counting(*args, **kwargs):
        calls.append(args[2:4])
        return real(*args, **kwargs)

    monkeypatch.setattr(exp, "run_offline_unit", counting)
    exp.run(tiny_config, out, progress=False)
    assert calls == []
    # a run killed after some units: only the missing unit is computed again, identically
    (out / "units" / "linear_poor-coverage_seed1" / "units" / "result.npz").unlink()
    exp.run(tiny_config, out, progress=False)
    assert calls == [("poor-coverage", 1)]
    with np.load(out / "results.npz") as data:
        np.testing.assert_array_equal(data["suboptimality"], before)
    # a different configuration in the same directory is refused, naming the key
    with pytest.raises(ConfigError, match="delta"):
        learner = {**tiny_config["learner"], "delta": 0.3}
        exp.run({**tiny_config, "learner": learner}, out, progress=False)


def test_plot_writes_figures_and_table(finished_run):
    out, _ = finished_run
    paths = exp.plot(out)
    names = {p.name for p in paths}
    assert {"suboptimality_linear.png", "lower_bound_coverage_linear.png", "table.md"} <= names
    for p in paths:
        assert p.is_file() and p.stat().st_size > 0
    table = (out / "table.md").read_text()
    assert "mle-pessimistic" in table and "N=4" in table and "poor-coverage" in table
    # the slack table: mean of J - LB over seeds for mle-pessimistic, uniform behaviour, N=4
    with np.load(out / "results.npz") as data:
        slack = data["value"][0, 0, :, 1, 2] - data["lower_bound"][0, 0, :, 1, 2]
    uniform = table.split("### behaviour: uniform")[1].split("### behaviour")[0]
    row = [r for r in uniform.split("Slack of the lower bound")[1].splitlines() if "mle-" in r]
    assert f"{slack.mean():.3f} ±" in row[0].split("|")[3]


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"games": ["maze"]}, "games"),
        ({"behaviours": ["random"]}, "behaviours"),
        ({"learners": ["greedy"]}, "learners"),
        ({"sizes": [100, 10]}, "sizes"),
        ({"learner": {"delta": 1.5}}, "learner.delta"),
        ({"poor_coverage_epsilon": 0.0}, "poor_coverage_epsilon"),
        ({"colour": "red"}, "colour"),
        ({"games": ["tempting"], "tempting": {"safe_value": 1.5}}, "tempting"),
        ({"tempting": {"n_arms": 3}}, "tempting.n_arms"),
        # the stated reward range (issue 14): two finite numbers, low < high
        ({"reward_range": [1.0, 0.0]}, "reward_range"),
        ({"reward_range": [0.0, 0.0]}, "reward_range"),
        ({"reward_range": [0.0]}, "reward_range"),
        ({"reward_range": [0.0, float("inf")]}, "reward_range"),
        ({"reward_range": [float("nan"), 1.0]}, "reward_range"),
        ({"large": {"reward_range": [1.0, -2.0]}}, "large.reward_range"),
        # a range that does not contain the patrol game's rewards ([-2, 1])
        ({"games": ["large"], "large": {"reward_range": [-1.0, 1.0]}}, "large.reward_range"),
        ({"games": ["large"], "large": {"n_sites": 5}}, "large"),
        ({"large": {"eta": 0.0}}, "large.eta"),
        ({"random-large": {"n_states": 0}}, "random-large.n_states"),
        ({"random-large": {"horizon": 2.5}}, "random-large.horizon"),
    ],
)
def test_bad_config_names_the_key(override, key):
    with pytest.raises(ConfigError, match=key):
        load_config(exp, overrides=override)


@pytest.mark.slow
def test_script_runs_with_a_tiny_config(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        'sizes = [4]\nbehaviours = ["near-optimal"]\n'
        'learners = ["plugin", "mle-pessimistic"]\n[learner]\nnum_draws = 8\n'
    )
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "experiments" / "offline_suboptimality.py"),
            "--config",
            str(cfg),
            "--seeds",
            "1",
            "--out",
            str(out),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "results.npz").is_file() and (out / "table.md").is_file()
    bad = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "offline_suboptimality.py"), "--seeds", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert bad.returncode == 2 and "seeds" in bad.stderr


def test_tempting_game_run_scores_against_the_closed_form(tmp_path):
    """A reduced run on the ``tempting`` game: ``J* = safe_value`` (one step) and, since every
    learner announces a deterministic policy, each suboptimality is 0 (safe action) or
    ``safe_value - tempting_value`` (a tempting one) -- closed forms, not the code's own
    numbers.  Fails if the experiment builds the game from the wrong settings or scores a
    policy on the wrong game."""
    cfg = load_config(
        exp,
        overrides={
            "games": ["tempting"],
            "tempting": {"n_tempting": 3, "safe_value": 0.7, "tempting_value": 0.2, "eta": 2.0},
            "seeds": 2,
            "sizes": [3, 6],
            "behaviours": ["near-optimal"],
            "learners": ["plugin", "mle-pessimistic"],
        },
    )
    path = exp.run(cfg, tmp_path, progress=False)
    with np.load(path) as data:
        assert data["optimal_value"][0] == pytest.approx(0.7, abs=1e-9)
        sub = data["suboptimality"]
    assert sub.shape == (1, 1, 2, 2, 2)
    near = np.minimum(np.abs(sub), np.abs(sub - 0.5))
    assert near.max() < 1e-9, sub


def test_stated_reward_range_defaults_keep_todays_behaviour():
    """The default config tells every small game the range ``[0, 1]`` (what the learners were
    told before the setting existed: ``GameSpec``'s default), and the patrol game ``[-2, 1]``
    (its rewards: -2 for an attack on the most valuable unguarded site, 1 for a caught
    attack; patrol_game).  Fails if the new keys change
    the default experiment or the large game is told the wrong range."""
    cfg = load_config(exp)
    for g in ("linear", "tabular", "tempting", "random-large"):
        assert stated_reward_range(g, cfg) == (0.0, 1.0)
    assert stated_reward_range("large", cfg) == (-2.0, 1.0)
    g = exp.experiment_game("large", cfg)
    assert (g.leader_reward.min(), g.leader_reward.max()) == (-2.0, 1.0)
    # a config without the key (e.g. written before it existed) keeps [0, 1]
    old = {k: v for k, v in cfg.items() if k != "reward_range"}
    assert stated_reward_range("linear", old) == (0.0, 1.0)
    # the experiment's setting reaches the games without their own
    cfg2 = load_config(exp, overrides={"reward_range": [-1.0, 2.0]})
    assert stated_reward_range("linear", cfg2) == (-1.0, 2.0)
    assert stated_reward_range("large", cfg2) == (-2.0, 1.0)


def test_large_games_are_built_from_their_settings():
    """``large`` is the patrol game with ``n_sites`` sites (``(H, S, A, B) = (horizon, 2,
    n_sites, n_sites + 1)``, d = 4, patrol_large_game's docstring); ``random-large`` has
    ``A = B = n_actions``.  Fails if a settings table is ignored or read into the wrong game."""
    cfg = load_config(
        exp,
        overrides={
            "games": ["large", "random-large"],
            "large": {"n_sites": 12, "horizon": 3},
            "random-large": {"n_states": 4, "n_actions": 3, "horizon": 2, "feature_dim": 5},
        },
    )
    big = exp.experiment_game("large", cfg)
    assert big.shape == (3, 2, 12, 13) and big.features.shape[-1] == 4
    rnd = exp.experiment_game("random-large", cfg)
    assert rnd.shape == (2, 4, 3, 3) and rnd.features.shape[-1] == 5


def test_large_patrol_game_runs_through_run_unit():
    """The 20-site patrol game through ``run_offline_unit`` at tiny sizes, told ``[-2, 1]``.

    Independent checks: the oracle's suboptimality is 0 (it plays the QSE); every value lies in
    ``[H low, H high] = [-10, 5]``; with 3 episodes for 840 cells per step the tabular
    ``mle-pessimistic`` bound is the floor ``H * low = 5 * (-2) = -10`` exactly (every reward
    lower bound is the stated ``low``: fails if the experiment tells the learners another
    range); and ``mle-pessimistic-linear``'s PEVI bound holds (the patrol game's rewards and
    transitions are affine in the leader features ``(phi, 1)``, so it is a linear MDP, the case
    where the bound must hold; fails e.g. if the penalty's sign or scale is lost)."""
    cfg = load_config(
        exp,
        overrides={
            "games": ["large"],
            "sizes": [3, 40],
            "behaviours": ["uniform"],
            "learners": ["oracle", "plugin-linear", "mle-pessimistic", "mle-pessimistic-linear"],
        },
    )
    game = exp.experiment_game("large", cfg)
    optimal = solve_qse(game)
    for seed in (0, 1):
        out = exp.run_offline_unit(
            game, optimal, "uniform", seed, cfg, 0, stated_reward_range("large", cfg)
        )
        assert out["value"].shape == (2, 4)
        np.testing.assert_allclose(out["suboptimality"][:, 0], 0.0, atol=1e-9)
        assert np.all(out["value"] >= -10 - 1e-9) and np.all(out["value"] <= 5 + 1e-9)
        assert out["lower_bound"][0, 2] == pytest.approx(-10.0, abs=1e-9)
        assert np.all(out["lower_bound"][:, 3] <= out["value"][:, 3] + 1e-9)
        assert np.all(np.isnan(out["lower_bound"][:, :2]))
