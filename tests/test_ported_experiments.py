"""Every experiment is on the unit engine (the engine flags test below); the three first
ported onto it (bayes_qse.experiments.units) reproduce their published arrays
(docs/results/<experiment>/results.npz) on a slice of the published
config, and give the same arrays whatever executor runs their units.

Slices keep what a unit's numbers depend on: online_regret and rationality_sweep seeds are
independent of the batch (the first K rows of a per-seed array); offline_suboptimality's
random stream is ``100 * game index + behaviour index``, so the slice keeps the first game and
behaviour, and a learner's key does not depend on the other learners, nor a size's on the
sizes after it.  Published files were computed on another CPU: where the last bits differ
there (see docs/results/online_regret/README.md) the comparison says so and uses a relative
tolerance many orders below any real change.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from bayes_qse.experiments import load_config
from bayes_qse.experiments import offline_suboptimality as off
from bayes_qse.experiments import online_regret as onl
from bayes_qse.experiments import rationality_sweep as rs

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"


def _published(name: str, module) -> tuple[dict, dict]:
    """The published config, loaded as ``experiments/reproduce.py`` loads it (settings added
    since filled from ``FULL_CONFIG``, retired names and flat learner keys read by the
    shims), and arrays."""
    config = json.loads((RESULTS / name / "manifest.json").read_text())["config"]
    with warnings.catch_warnings():  # the shims: retired names, flat learner keys
        warnings.simplefilter("ignore", DeprecationWarning)
        config = load_config(module, full=True, overrides=config)
    with np.load(RESULTS / name / "results.npz") as f:
        arrays = {k: f[k] for k in f.files}
    return config, arrays


@pytest.mark.slow
def test_ported_online_regret_reproduces_its_published_arrays(tmp_path):
    # Catches: an online unit whose config differs from the experiment's (game, learner
    # settings, chunk, reward range), seeds given to the wrong rows, a runner change that
    # moves the decisions.  regret and informed (every decision) bit for bit; theta_error
    # and set_size to 1e-6 relative (the published file differs from this library in the
    # last bits there, up to 7e-8, before and after the port).
    config, published = _published("online_regret", onl)
    config.update(games=["linear"], learners=["greedy"], seeds=2)
    with np.load(onl.run(config, tmp_path, progress=False)) as got:
        for field in ("regret", "informed"):
            key = f"linear.greedy.{field}"
            np.testing.assert_array_equal(got[key], published[key][:2], err_msg=field)
        for field in ("theta_error", "set_size"):
            key = f"linear.greedy.{field}"
            np.testing.assert_allclose(got[key], published[key][:2], rtol=1e-6, atol=0)
        np.testing.assert_array_equal(got["seeds"], [0, 1])


@pytest.mark.slow
def test_ported_offline_suboptimality_reproduces_its_published_arrays(tmp_path):
    # Catches: a unit given another random stream (game/behaviour index), seed or dataset
    # size, learner settings lost on the way to the unit, results stacked in another order.
    config, published = _published("offline_suboptimality", off)
    learners = ["plugin", "mle-pessimistic", "bayes-pessimistic"]
    columns = [config["learners"].index(name) for name in learners]
    config.update(games=["linear"], behaviours=["uniform"], seeds=1, sizes=[10, 32])
    config["learners"] = learners
    with np.load(off.run(config, tmp_path, progress=False)) as got:
        for key in ("suboptimality", "value", "lower_bound", "lower_bound_holds"):
            want = published[key][:1, :1, :1, :2][..., columns]
            np.testing.assert_array_equal(got[key], want, err_msg=key)
        np.testing.assert_array_equal(got["optimal_value"], published["optimal_value"][:1])


@pytest.mark.slow
def test_ported_rationality_sweep_reproduces_its_published_arrays(tmp_path):
    # Catches: the regret part's online units built on another game than the sweep's (its
    # eta not applied, other game settings), other learner settings or seeds; a width unit
    # with other replications or sample size.  One eta (1.0, the third published), the first
    # two seeds; the set-width part runs its 300 published datasets (its arrays are
    # aggregates over them).  final_regret and the coverages bit for bit; the widths and log
    # volumes to 1e-12 relative (last-bit differences of the published CPU).
    config, published = _published("rationality_sweep", rs)
    ei = config["etas"].index(1.0)
    config.update(etas=[1.0], seeds=2)
    with np.load(rs.run(config, tmp_path, progress=False)) as got:
        want = published["final_regret"][ei : ei + 1, :, :2]
        np.testing.assert_array_equal(got["final_regret"], want)
        for key in ("coverage_theta", "coverage_value", "mle_converged"):
            want = published[key][ei : ei + 1]
            np.testing.assert_array_equal(got[key], want, err_msg=key)
        for key in ("width_nu", "width_value", "logvol_theta"):
            want = published[key][ei : ei + 1]
            np.testing.assert_allclose(got[key], want, rtol=1e-12, atol=0, err_msg=key)


@pytest.mark.slow
def test_a_ported_experiment_gives_the_same_arrays_with_a_process_pool(tmp_path):
    # Catches: a unit whose result depends on the process that runs it (a key or a cache
    # shared between units, state left by the previous unit), units of a pool stacked in
    # completion order instead of grid order.
    config = {
        **off.DEFAULT_CONFIG,
        "seeds": 2,
        "sizes": [10, 30],
        "learner": {**off.DEFAULT_CONFIG["learner"], "num_draws": 16},
        "behaviours": ["uniform", "near-optimal"],
        "learners": ["plugin", "mle-pessimistic"],
    }
    one = off.run(config, tmp_path / "one", progress=False)
    pool = off.run(config, tmp_path / "pool", progress=False, workers=2)
    with np.load(one) as a, np.load(pool) as b:
        assert a["suboptimality"].shape == (1, 2, 2, 2, 2)
        for key in ("suboptimality", "value", "lower_bound", "optimal_value"):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


SPEC = RESULTS.parent / "sweeps" / "offline_suboptimality.toml"


def test_the_offline_spec_expands_to_the_published_experiment_units():
    # Catches: a docs example that drifts from the published config, an offline spec whose
    # units get other settings or random streams than the experiment's.
    from bayes_qse.sweeps import expand, load_spec

    config, _ = _published("offline_suboptimality", off)
    sweep = expand(load_spec(SPEC))
    assert sweep.kind == "offline" and len(sweep.units) == 3 * 3 * 20
    assert [(u.key, u.stream) for u in sweep.units] == [
        (u.key, u.stream) for u in off.make_units(config)
    ]
    assert {json.dumps(u.config, sort_keys=True) for u in sweep.units} == {
        json.dumps(u.config, sort_keys=True) for u in off.make_units(config)
    }


@pytest.mark.slow
def test_an_offline_sweep_reproduces_the_published_arrays_and_plots(tmp_path):
    # The docs spec narrowed like the experiment test above, run by `bayes-qse sweep`'s engine
    # and gathered into labelled arrays.  Catches: an offline dataset with its axes mislabelled
    # (sizes, learners, seeds), units stacked in another order, a figure not drawn.
    from bayes_qse.sweeps import load_spec, open_results, run_sweep
    from bayes_qse.sweeps.plot import plot

    config, published = _published("offline_suboptimality", off)
    spec = load_spec(SPEC)
    learners = ["plugin", "mle-pessimistic", "bayes-pessimistic"]
    spec["grid"].update(game=["linear"], behaviour=["uniform"], seeds=[0])
    spec.update(sizes=[10, 32], learners=learners)  # its top-level settings
    del spec["tempting"]  # the table of a game out of the narrowed grid
    run_sweep(spec, tmp_path, progress=False)
    ds = open_results(tmp_path)
    assert ds["suboptimality"].dims == ("game", "behaviour", "seed", "size", "learner")
    for name in learners:
        li = config["learners"].index(name)
        for key in ("suboptimality", "lower_bound"):
            got = ds[key].sel(game="linear", behaviour="uniform", seed=0, learner=name).values
            np.testing.assert_array_equal(got, published[key][0, 0, 0, :2, li], err_msg=key)
    summary = json.loads((tmp_path / "results.json").read_text())
    assert summary["kind"] == "offline" and summary["slices"][0]["sizes"] == [10, 32]
    assert [p.name for p in plot(tmp_path)] == ["sweep_game-linear_behaviour-uniform.png"]


def test_an_offline_spec_error_names_the_unit_or_key():
    # Catches: a bad unit found only when it runs, an error that names neither unit nor key.
    from bayes_qse.errors import ConfigError
    from bayes_qse.sweeps import expand

    grid = {"game": ["linear"], "behaviour": ["uniform", "sometimes"], "seeds": [0]}
    with pytest.raises(ConfigError, match=r"unit \(game=linear, behaviour=sometimes\)"):
        expand({"kind": "offline", "grid": grid})
    grid["behaviour"] = ["uniform"]
    with pytest.raises(ConfigError, match="top level: unknown key.*sizez"):
        expand({"kind": "offline", "grid": grid, "sizez": [10]})
    with pytest.raises(ConfigError, match="kind must be one of"):
        expand({"kind": "offlin", "grid": grid})


def test_every_experiment_takes_the_engine_flags_and_checks_them_first(tmp_path, capsys):
    # Catches: an experiment left off the unit engine (its ``run`` not handing the executor
    # settings to ``run_experiment_module``: ``workers=0`` would then be a TypeError or run
    # anyway), an experiment whose NAME is not its registered name (its results store would
    # be refused on resume), the engine's defaults drifting, ENGINE drifting from the
    # registry, a bad executor setting found only after the run started (before anything
    # is written).
    import inspect

    from bayes_qse.cli import main
    from bayes_qse.errors import ConfigError
    from bayes_qse.experiments import ENGINE, EXPERIMENTS, get_experiment
    from bayes_qse.experiments.executors import run_experiment_module

    assert set(ENGINE) == set(EXPERIMENTS)
    params = inspect.signature(run_experiment_module).parameters
    defaults = {k: params[k].default for k in ("executor", "workers", "address")}
    assert defaults == {"executor": "local", "workers": 1, "address": None}
    assert all(params[k].kind is inspect.Parameter.KEYWORD_ONLY for k in defaults)
    for name in EXPERIMENTS:
        module = get_experiment(name)
        assert module.NAME == name
        with pytest.raises(ConfigError, match="^workers: must be an integer"):
            module.run(module.DEFAULT_CONFIG, tmp_path / name, workers=0)
        assert not (tmp_path / name).exists(), name
    out = tmp_path / "out"
    assert main(["run", "offline_suboptimality", "--address", "auto", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "address: only with --executor ray" in err[0]
    assert not out.exists()


def test_run_experiment_hands_the_engine_flags_to_the_experiment(tmp_path, monkeypatch):
    # Catches: run_experiment dropping --workers/--executor/--address on the way to an
    # experiment's run (the units would then run in one process, silently).
    from bayes_qse.experiments import get_experiment, run_experiment

    module, seen = get_experiment("posterior_inspection"), {}

    def fake_run(config, out_dir, **kw):
        seen.update(kw)
        return Path(out_dir) / "results.npz"

    monkeypatch.setattr(module, "run", fake_run)
    run_experiment("posterior_inspection", out=tmp_path / "out", make_plots=False, workers=2)
    assert seen == {"progress": True, "executor": "local", "workers": 2, "address": None}
