"""Sweeps (bayes_qse.sweeps): spec validation, the store's binding, gathering, statistics, and
common random numbers.  The runs through a process, a killed worker and Ray are in
test_sweeps_run.py (slow)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from bayes_qse.cli import main
from bayes_qse.errors import ConfigError
from bayes_qse.experiments.online_regret import DEFAULT_CONFIG
from bayes_qse.experiments.online_units import make_runner, online_experiment_game
from bayes_qse.experiments.units import open_unit
from bayes_qse.sweeps import bind, expand, normalised_score, paired_interval
from bayes_qse.sweeps.gather import gather, summarise


def spec(**grid):
    base = {"game": ["linear"], "learner": ["uniform", "oracle"], "T": [4], "seeds": [0, 1, 2]}
    return {"chunk": 2, "grid": {**base, **grid}}


# ---- validation: every unit before any runs, one error naming the unit ----------------------
@pytest.mark.parametrize(
    "bad, words",
    [
        ({"colour": 1}, ["top level", "colour"]),
        ({"grid": {**spec()["grid"], "horizon": [2]}}, ["grid", "horizon"]),
        ({"grid": {**spec()["grid"], "learner": ["uniform", "sarsa"]}}, ["learner=sarsa"]),
        ({"grid": {**spec()["grid"], "T": [4, 5]}}, ["T=5", "chunk"]),
        ({"grid": {**spec()["grid"], "eta": [0.0]}}, ["eta=0.0", "[1e-6, 1e6]"]),
        (
            {"grid": {**spec()["grid"], "learner": ["mle-optimistic-theory"], "radius": ["chi2"]}},
            ["learner=mle-optimistic-theory", "radius=chi2", "impossible"],
        ),
        ({"linear": {"n_sates": 3}}, ["linear.n_sates"]),
        ({"record": ["regret", "regrets"]}, ["record", "regrets"]),
        ({"grid": {**spec()["grid"], "seeds": [1, 1]}}, ["seeds"]),
    ],
)
def test_bad_specs_name_the_unit_or_key(bad, words):
    # catches: a bad unit found only when it runs (after others ran), or an error that does not
    # say which unit/key is wrong
    with pytest.raises(ConfigError) as info:
        expand({**spec(), **bad})
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_cli_refuses_a_bad_spec_before_running_anything(tmp_path, capsys):
    # catches: units started (the out dir created) before the bad unit is found; a traceback or
    # an exit status other than 2
    path = tmp_path / "bad.toml"
    path.write_text(
        'chunk = 2\n[grid]\ngame = ["linear"]\nlearner = ["uniform", "sarsa"]\n'
        "T = [4]\nseeds = [0]\n"
    )
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "learner=sarsa" in err[0]
    assert not out.exists()


def test_units_are_shared_by_cells_that_differ_only_on_an_ignored_axis():
    # catches: a Bayesian learner run once per radius (wasted work), or the radius dropped for
    # the learner that uses it (both cells reading one unit)
    sweep = expand(spec(learner=["greedy", "mle-optimistic"], radius=["chi2", "theory"]))
    assert len(sweep.cells) == 4 and len(sweep.units) == 3
    keys = {cell: key for cell, key in sweep.cells.items()}
    greedy = {k for c, k in keys.items() if c[1] == "greedy"}
    mle = {k for c, k in keys.items() if c[1] == "mle-optimistic"}
    assert len(greedy) == 1 and len(mle) == 2
    by_key = {u.key: u for u in sweep.units}
    assert sorted(by_key[k].config["learner"]["radius"] for k in mle) == ["chi2", "theory"]


def test_eta_axis_sets_the_followers_rationality():
    # catches: the eta axis recorded but not passed to the game (every eta the same game)
    sweep = expand(spec(eta=[0.5, 3.0], learner=["uniform"]))
    etas = sorted(float(online_experiment_game(u.game, u.config).eta) for u in sweep.units)
    assert etas == [0.5, 3.0]


# ---- statistics ------------------------------------------------------------------------------
def test_paired_interval_matches_statsmodels():
    # catches: an unpaired standard error, a normal instead of a t quantile, a wrong dof; a
    # Welch width (the comparison without pairing) with the wrong degrees of freedom
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    rng = np.random.default_rng(0)
    x = rng.normal(size=7)
    y = x + 0.3 + 0.1 * rng.normal(size=7)
    got = paired_interval(x, y, level=0.9)
    low, high = DescrStatsW(x - y).tconfint_mean(alpha=0.1)
    assert got["n"] == 7
    np.testing.assert_allclose([got["low"], got["high"]], [low, high], rtol=1e-12)
    np.testing.assert_allclose(got["mean"], np.mean(x - y), rtol=1e-12)
    w_low, w_high = CompareMeans(DescrStatsW(x), DescrStatsW(y)).tconfint_diff(
        alpha=0.1, usevar="unequal"
    )
    np.testing.assert_allclose(got["independent_half_width"], (w_high - w_low) / 2, rtol=1e-10)
    assert got["high"] - got["low"] < w_high - w_low  # pairing removes the shared noise
    # Bit for bit against scipy.stats' t quantile (the code calls scipy.special's stdtrit,
    # which scipy.stats.t.ppf wraps, to spare a sweep's driver importing scipy.stats): the
    # published sweeps' intervals must not move.  Catches stdtrit's arguments swapped.
    from scipy import stats

    d = x - y
    half = float(stats.t.ppf(0.95, 6) * d.std(ddof=1) / np.sqrt(7))
    assert (got["low"], got["high"]) == (got["mean"] - half, got["mean"] + half)


def test_normalised_score_closed_form():
    # catches: the oracle counted as the best leader (a would score 0.6), or a reversed sign
    final = {"oracle": 0.0, "uniform": 10.0, "a": 4.0, "b": 2.0}
    assert normalised_score(final) == {"oracle": 1.25, "uniform": 0.0, "a": 0.75, "b": 1.0}
    assert normalised_score({"a": 1.0}) == {}


# ---- the store: one spec per directory, gathered into labelled arrays ---------------------------
def test_a_directory_refuses_a_different_spec(tmp_path):
    # catches: results of two grids mixed in one directory
    bind(expand(spec()), tmp_path / "s")
    bind(expand(spec()), tmp_path / "s")  # same spec: fine (resume)
    with pytest.raises(ConfigError, match="different spec.*grid"):
        bind(expand(spec(T=[2])), tmp_path / "s")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        bind(expand(spec()), tmp_path / "other")


def test_gather_labels_every_unit_and_pads_shorter_runs(tmp_path):
    # catches: a unit's rows put under another learner, seed or T; padding that is not NaN; a
    # summary whose paired interval is not computed on the same seeds
    sweep = expand(spec(T=[2, 4]))
    bind(sweep, tmp_path)
    rng = np.random.default_rng(1)
    written = {}
    for unit in sweep.units:
        arrays = {f: rng.normal(size=(3, unit.T)) for f in unit.record}
        written[(unit.learner, unit.T)] = arrays
        with open_unit(tmp_path, unit) as store:
            for i, seed in enumerate(unit.seeds):  # one part per seed
                row = {f: v[i] for f, v in arrays.items()}
                store.save_unit(f"seed{seed}", row, {"optimal_value": float(unit.T)})
    ds = gather(tmp_path, sweep)
    assert ds["regret"].dims == ("game", "learner", "T", "seed", "episode")
    for (learner, T), arrays in written.items():
        for i, seed in enumerate([0, 1, 2]):
            row = ds["reward"].sel(game="linear", learner=learner, T=T, seed=seed).values
            np.testing.assert_array_equal(row[:T], arrays["reward"][i])
            assert np.isnan(row[T:]).all()
    doc = summarise(ds, level=0.95)
    (part,) = [s for s in doc["slices"] if s["where"]["T"] == 4]
    x = [sum(written[("uniform", 4)]["regret"][i]) for i in range(3)]
    y = [sum(written[("oracle", 4)]["regret"][i]) for i in range(3)]
    d = [a - b for a, b in zip(x, y, strict=True)]
    np.testing.assert_allclose(part["paired"]["uniform - oracle"]["mean"], sum(d) / 3)


# ---- common random numbers ------------------------------------------------------------------
def test_every_leader_faces_the_same_environment_draws(monkeypatch):
    # The runner plays episode t of seed s with the key fold_in(fold_in(PRNGKey(s), 1), t);
    # the learner's own randomness comes from fold_in(PRNGKey(s), 0).  A spy in place of
    # play_episode writes a uniform number drawn from the key it is given into the episode's
    # reward, which the runner records: two leaders announcing different policies must record
    # the same numbers, those drawn here from the documented key.  Catches: environment keys
    # derived from the learner's key or state (leaders would see different draws), keys that
    # depend on the chunking or on the other seeds of the batch.
    import jax.numpy as jnp

    from bayes_qse.learners import runner as runner_module

    real = runner_module.play_episode

    def spy(game, policy, key):
        episode = real(game, policy, key)
        u = jax.random.uniform(key, dtype=jnp.float64)
        return episode._replace(rewards=jnp.zeros_like(episode.rewards).at[0].set(u))

    monkeypatch.setattr(runner_module, "play_episode", spy)
    config = {**DEFAULT_CONFIG, "chunk": 3}
    game = online_experiment_game("linear", config)
    T, seeds = 6, [3, 4]
    seen, policies = {}, {}
    for learner, batch in (("oracle", seeds), ("uniform", seeds[::-1])):
        runner = make_runner(game, learner, config, T, None)
        assert runner.chunk < T  # several chunks
        states = runner.init_states(batch)
        rows = []
        for t0 in range(0, T, runner.chunk):
            states, record = runner.run_chunk(states, batch, t0)
            rows.append(np.asarray(record.reward))
        seen[learner] = dict(zip(batch, np.concatenate(rows, axis=1), strict=True))
        policies[learner] = np.asarray(states.policy)
    assert not np.allclose(policies["oracle"], policies["uniform"])  # two different leaders
    golden = {
        s: np.array(
            [
                float(
                    jax.random.uniform(
                        jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(s), 1), t),
                        dtype=jnp.float64,
                    )
                )
                for t in range(T)
            ]
        )
        for s in seeds
    }
    for s in seeds:
        np.testing.assert_array_equal(seen["oracle"][s], golden[s])
        np.testing.assert_array_equal(seen["uniform"][s], golden[s])


# ---- the docs' spec of online_regret's published grid ------------------------------------------
def test_docs_specs_match_online_regrets_published_config():
    # catches: a docs spec that drifted from the published experiment (a game or learner
    # setting, chunk, T, seeds, what the leader is told): its units would not reproduce it
    import json
    import warnings
    from pathlib import Path

    from bayes_qse.experiments import get_experiment, load_config
    from bayes_qse.experiments.online_units import unit_learner_config
    from bayes_qse.sweeps import load_spec

    root = Path(__file__).resolve().parents[1]
    published = json.loads((root / "docs/results/online_regret/manifest.json").read_text())
    with warnings.catch_warnings():  # the manifest read as reproduce.py reads it (the shims)
        warnings.simplefilter("ignore", DeprecationWarning)
        module = get_experiment("online_regret")
        config = load_config(module, full=True, overrides=published["config"])
    cells = set()
    for name in ("online_regret_myopic.toml", "online_regret_farsighted.toml"):
        sweep = expand(load_spec(root / "docs" / "sweeps" / name))
        assert sweep.seeds == tuple(range(config["base_seed"], config["seeds"]))
        for unit in sweep.units:
            cells.add((unit.game, unit.learner))
            c = unit.config
            farsighted = unit.game.startswith("farsighted")
            assert unit.T == config["farsighted_episodes" if farsighted else "episodes"]
            # the learner settings each unit runs under (LearnerConfig, every field)
            got = unit_learner_config(c, farsighted, unit.T)
            want = unit_learner_config(config, farsighted, unit.T)
            assert got == want, (unit.key, got, want)
            for key in ("chunk", "known_model", "reward_range", "initial_dist"):
                assert c[key] == config[key], (unit.key, key)
            assert c[unit.game] == config[unit.game], unit.key
    assert cells == {(g, learner) for g in config["games"] for learner in config["learners"]}


def test_plot_draws_a_selected_slice_and_refuses_a_bad_one(tmp_path, capsys):
    # catches: --select ignored (one figure per game instead of the slice), a selected value
    # typed as a string against a numeric coordinate, a traceback for a bad selection
    from bayes_qse.sweeps import write_results

    sweep = expand(spec(game=["linear", "tabular"], eta=[1.0, 2.0]))
    bind(sweep, tmp_path)
    rng = np.random.default_rng(2)
    for unit in sweep.units:
        with open_unit(tmp_path, unit) as store:
            for seed in unit.seeds:
                row = {f: rng.uniform(size=unit.T) for f in unit.record}
                store.save_unit(f"seed{seed}", row, {"optimal_value": 1.0})
    write_results(tmp_path, sweep)
    assert main(["plot", str(tmp_path), "--select", "game=tabular", "--select", "eta=2"]) == 0
    figures = sorted(p.name for p in tmp_path.glob("sweep_*.png"))
    assert figures == ["sweep_game-tabular_T-4_eta-2.0.png"]
    capsys.readouterr()
    assert main(["plot", str(tmp_path), "--select", "eta=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "eta has no value" in err[0]
