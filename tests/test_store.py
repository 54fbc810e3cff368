"""The experiments infrastructure: RunStore (atomic, resumable), configs, the registry."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayes_qse
from bayes_qse.errors import ConfigError
from bayes_qse.experiments import (
    EXPERIMENTS,
    experiment_main,
    get_experiment,
    load_config,
    run_experiment,
)
from bayes_qse.experiments.locks import RunNotice
from bayes_qse.experiments.store import RunStore, config_diff, read_manifest
from bayes_qse.progress import progress

CONFIG = {"seeds": 2, "base_seed": 0, "episodes": 10, "eta": 1.0, "learners": ["a", "b"]}


# ---------------------------------------------------------------------------------------
# RunStore
# ---------------------------------------------------------------------------------------


def test_manifest_records_experiment_config_and_versions(tmp_path):
    RunStore(tmp_path / "run", "toy", CONFIG)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["experiment"] == "toy"
    assert manifest["config"] == CONFIG
    assert manifest["versions"]["bayes_qse"] == bayes_qse.__version__
    assert manifest["versions"]["jax"] == jax.__version__
    assert "numpyro" in manifest["versions"] and "created" in manifest
    # results are bit-identical only on one platform: the manifest says which CPU made them
    assert manifest["versions"]["platform"].startswith(jax.default_backend() + ": ")
    assert read_manifest(tmp_path / "run")["experiment"] == "toy"


def test_unit_round_trip_with_meta_seed_and_config(tmp_path):
    store = RunStore(tmp_path, "toy", CONFIG)
    assert not store.has("seed0") and store.keys() == []
    regret = np.cumsum(np.arange(10.0))
    store.save_unit("seed0", {"regret": regret, "n": np.int64(3)}, {"seed": 0, "learner": "a"})
    assert store.has("seed0") and store.keys() == ["seed0"]
    arrays, meta = store.load_unit("seed0")
    np.testing.assert_array_equal(arrays["regret"], regret)
    assert arrays["regret"].dtype == np.float64 and int(arrays["n"]) == 3
    assert meta["seed"] == 0 and meta["learner"] == "a" and meta["config"] == CONFIG
    # a reopened store sees the unit
    again = RunStore(tmp_path, "toy", CONFIG)
    assert again.keys() == ["seed0"]
    assert [k for k, _, _ in again.iter_units()] == ["seed0"]


def test_writes_are_atomic_no_partial_file_on_failure(tmp_path, monkeypatch):
    store = RunStore(tmp_path, "toy", CONFIG)
    store.save_unit("u", {"x": np.ones(3)}, {"seed": 0})
    before = (tmp_path / "units" / "u.npz").read_bytes()

    def exploding_savez(fh, **arrays):
        fh.write(b"PK\x03\x04 half written")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(np, "savez", exploding_savez)
    with pytest.raises(KeyboardInterrupt):
        store.save_unit("u", {"x": np.zeros(3)}, {"seed": 0})
    with pytest.raises(KeyboardInterrupt):
        store.save_unit("v", {"x": np.zeros(3)}, {"seed": 1})
    monkeypatch.undo()
    # the old file is intact, the new unit does not exist, no temporary files are left
    assert (tmp_path / "units" / "u.npz").read_bytes() == before
    assert not store.has("v") and store.keys() == ["u"]
    assert sorted(os.listdir(tmp_path / "units")) == ["u.npz"]


def test_reopening_with_different_config_names_the_keys(tmp_path):
    RunStore(tmp_path, "toy", CONFIG)
    changed = {**CONFIG, "episodes": 20, "eta": 2.0}
    with pytest.raises(ConfigError, match=r"episodes, eta"):
        RunStore(tmp_path, "toy", changed)
    with pytest.raises(ConfigError, match="online_regret"):
        RunStore(tmp_path, "online_regret", CONFIG)
    # tuples and lists are the same config
    RunStore(tmp_path, "toy", {**CONFIG, "learners": ("a", "b")})
    assert config_diff(CONFIG, changed) == ["episodes", "eta"]
    # a table is compared key by key: the message names the setting, not its table
    # (fails if a changed [learner] setting is reported as the whole "learner")
    nested = {**CONFIG, "learner": {"delta": 0.1, "num_draws": 8}}
    moved = {**CONFIG, "learner": {"delta": 0.2, "num_draws": 8}}
    assert config_diff(nested, moved) == ["learner.delta"]
    assert config_diff(nested, CONFIG) == ["learner"]


def test_resume_false_discards_previous_units(tmp_path):
    store = RunStore(tmp_path, "toy", CONFIG)
    store.save_unit("seed0", {"x": np.ones(2)}, {"seed": 0})
    store.save_checkpoint("seed1", {"x": np.ones(2)}, {"episode": 1})
    store.write_results("results", {"x": np.ones(2)})
    fresh = RunStore(tmp_path, "toy", {**CONFIG, "episodes": 99}, resume=False)
    assert fresh.keys() == [] and fresh.load_checkpoint("seed1", {"x": np.ones(2)}) is None
    assert not (tmp_path / "results.npz").exists()
    assert read_manifest(tmp_path)["config"]["episodes"] == 99


def test_more_seeds_keeps_finished_units(tmp_path):
    store = RunStore(tmp_path, "toy", CONFIG)
    store.save_unit("seed0", {"x": np.ones(2)}, {"seed": 0})
    grown = RunStore(tmp_path, "toy", {**CONFIG, "seeds": 5})
    assert grown.keys() == ["seed0"] and read_manifest(tmp_path)["config"]["seeds"] == 5


def test_corrupt_manifest_and_unit_raise_config_error(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ConfigError, match="manifest"):
        RunStore(tmp_path, "toy", CONFIG)
    store = RunStore(tmp_path / "b", "toy", CONFIG)
    (tmp_path / "b" / "units").mkdir()
    (tmp_path / "b" / "units" / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ConfigError, match="bad.npz"):
        store.load_unit("bad")
    with pytest.raises(ConfigError, match="no saved unit"):
        store.load_unit("absent")
    with pytest.raises(ConfigError, match="key"):
        store.save_unit("../escape", {"x": np.ones(1)}, {})
    with pytest.raises(ConfigError, match="not a results directory"):
        read_manifest(tmp_path / "nowhere")


def test_checkpoint_round_trip_of_a_pytree_with_prng_keys(tmp_path):
    store = RunStore(tmp_path, "toy", CONFIG)
    state = {
        "theta": jnp.arange(3.0),
        "count": jnp.asarray(7, dtype=jnp.int32),
        "key": jax.random.key(42),
        "raw_key": jax.random.PRNGKey(1),
        "buffer": (np.zeros((2, 3), dtype=np.int64), np.array([True, False])),
    }
    assert store.load_checkpoint("seed0", like=state) is None
    store.save_checkpoint("seed0", state, {"episode": 40})
    restored, meta = store.load_checkpoint("seed0", like=state)
    assert meta["episode"] == 40
    assert jax.tree_util.tree_structure(restored) == jax.tree_util.tree_structure(state)
    np.testing.assert_array_equal(restored["theta"], state["theta"])
    assert restored["count"].dtype == jnp.int32 and isinstance(restored["theta"], jax.Array)
    assert isinstance(restored["buffer"][0], np.ndarray) and restored["buffer"][1].dtype == bool
    # a restored typed key draws exactly what the original would
    np.testing.assert_array_equal(
        jax.random.normal(restored["key"], (4,)), jax.random.normal(state["key"], (4,))
    )
    np.testing.assert_array_equal(restored["raw_key"], state["raw_key"])
    # a checkpoint that does not match is set aside (kept, renamed) with a notice, not fatal
    with pytest.warns(RunNotice, match=r"set aside checkpoints/seed0.npz \(it holds 6 arrays"):
        assert store.load_checkpoint("seed0", like={"theta": jnp.zeros(3)}) is None
    assert not store.has_checkpoint("seed0")
    assert len(list((tmp_path / "checkpoints" / ".set-aside").glob("seed0.*.npz"))) == 1
    store.save_checkpoint("seed0", state, {"episode": 40})
    with pytest.warns(RunNotice, match=r"array \d has shape \(3,\), the state expects \(4,\)"):
        assert store.load_checkpoint("seed0", like={**state, "theta": jnp.zeros(4)}) is None
    (tmp_path / "checkpoints" / "seed0.npz").write_bytes(b"not a zip file")
    with pytest.warns(RunNotice, match="unreadable"):
        assert store.load_checkpoint("seed0", like=state) is None
    assert len(list((tmp_path / "checkpoints" / ".set-aside").glob("seed0.*.npz"))) == 3
    # parts of a checkpoint are saved, listed and deleted with their key
    store.save_checkpoint("unit", state, {"episode": 1}, part="seed3")
    store.save_checkpoint("unit", state, {"episode": 2}, part="seed1")
    assert store.checkpoint_parts("unit") == ["seed1", "seed3"]
    assert store.load_checkpoint("unit", like=state, part="seed3")[1]["episode"] == 1
    store.delete_checkpoint("unit")
    assert store.checkpoint_parts("unit") == []
    assert store.load_checkpoint("unit", like=state, part="seed1") is None


def test_write_results_splits_arrays_and_summary(tmp_path):
    store = RunStore(tmp_path, "toy", CONFIG)
    path = store.write_results(
        "results", {"regret": np.ones((2, 5)), "slope": 0.5, "names": ["a", "b"]}
    )
    assert path == tmp_path / "results.npz"
    with np.load(path) as data:
        assert data.files == ["regret"]
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["summary"] == {"slope": 0.5, "names": ["a", "b"]}
    assert doc["arrays"] == {"regret": [2, 5]} and doc["config"] == CONFIG


# ---------------------------------------------------------------------------------------
# A toy online experiment: interrupted, then resumed without losing or repeating episodes
# ---------------------------------------------------------------------------------------


class Interrupt(Exception):
    pass


def toy_run(config, out_dir, *, progress_on=False, stop_after=None, log=None):
    """Random-walk 'learner': every episode draws from the key and accumulates regret."""
    store = RunStore(out_dir, "toy", config)
    played = 0
    for i in range(config["seeds"]):
        seed = config["base_seed"] + i
        key = f"seed{seed}"
        if store.has(key):
            continue
        state = {"key": jax.random.PRNGKey(seed), "regret": jnp.zeros(config["episodes"])}
        start = 0
        ck = store.load_checkpoint(key, like=state)
        if ck is not None:
            state, meta = ck
            start = meta["episode"]
        for t in range(start, config["episodes"]):
            if stop_after is not None and played == stop_after:
                raise Interrupt
            k, sub = jax.random.split(state["key"])
            step = jax.random.uniform(sub)
            prev = state["regret"][t - 1] if t else 0.0
            state = {"key": k, "regret": state["regret"].at[t].set(prev + step)}
            played += 1
            if log is not None:
                log.append((seed, t))
            if (t + 1) % 3 == 0:
                store.save_checkpoint(key, state, {"episode": t + 1, "seed": seed})
        store.save_unit(key, {"regret": state["regret"]}, {"seed": seed})
        store.delete_checkpoint(key)
    regrets = np.stack([store.load_unit(k)[0]["regret"] for k in store.keys()])
    return store.write_results("results", {"regret": regrets})


@pytest.mark.parametrize("stop_after", [1, 4, 7, 9, 10, 13])
def test_interrupted_run_resumes_bit_identically(tmp_path, stop_after):
    config = {**CONFIG, "episodes": 7}
    reference = toy_run(config, tmp_path / "ref")
    log: list = []
    with pytest.raises(Interrupt):
        toy_run(config, tmp_path / "run", stop_after=stop_after, log=log)
    assert not (tmp_path / "run" / "results.npz").exists()
    toy_run(config, tmp_path / "run", log=log)
    with np.load(reference) as a, np.load(tmp_path / "run" / "results.npz") as b:
        np.testing.assert_array_equal(a["regret"], b["regret"])
    # episodes after the last checkpoint are replayed (from the checkpointed key, so
    # identically); none is lost, and none before the checkpoint is repeated
    played = sorted(set(log))
    assert played == [(s, t) for s in range(2) for t in range(7)]
    checkpointed = (stop_after // 7) * 7 + ((stop_after % 7) // 3) * 3
    assert len(log) == 14 + stop_after - checkpointed


# ---------------------------------------------------------------------------------------
# Configs and the registry
# ---------------------------------------------------------------------------------------


def _toy_module(name="toy_experiment"):
    module = types.ModuleType(name)
    module.DEFAULT_CONFIG = {
        "seeds": 2,
        "base_seed": 0,
        "episodes": 10,
        "eta": 1.0,
        "farsighted": False,
        "learners": ["greedy", "thompson"],
        "game": {"name": "patrol", "horizon": 3},
    }
    module.FULL_CONFIG = {**module.DEFAULT_CONFIG, "seeds": 20, "episodes": 1000}
    return module


def _toml(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_load_config_merges_defaults_file_and_overrides(tmp_path):
    mod = _toy_module()
    assert load_config(mod) == mod.DEFAULT_CONFIG
    assert load_config(mod, full=True)["episodes"] == 1000
    path = _toml(tmp_path, 'episodes = 5\neta = 2\nlearners = ["greedy"]\n[game]\nhorizon = 4\n')
    cfg = load_config(mod, path, overrides={"seeds": 7, "base_seed": None})
    assert cfg["episodes"] == 5 and cfg["eta"] == 2.0 and isinstance(cfg["eta"], float)
    assert cfg["learners"] == ["greedy"] and cfg["game"] == {"name": "patrol", "horizon": 4}
    assert cfg["seeds"] == 7 and cfg["base_seed"] == 0
    assert mod.DEFAULT_CONFIG["episodes"] == 10  # defaults untouched


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("episode = 5", "unknown key 'episode'"),
        ('episodes = "ten"', "episodes must be an integer"),
        ("episodes = 2.5", "episodes must be an integer"),
        ("episodes = true", "episodes must be an integer"),
        ('eta = "x"', "eta must be a number"),
        ("eta = nan", "eta must be finite"),
        ("eta = inf", "eta must be finite"),
        ("farsighted = 1", "farsighted must be a boolean"),
        ("learners = 3", "learners must be a list"),
        ("learners = [1, 2]", r"learners\[0\] must be a string"),
        ("game = 3", "game must be a table"),
        ("[game]\nwidth = 3", "unknown key 'game.width'"),
        ("seeds = 0", "seeds must be >= 1"),
        ("base_seed = -1", "base_seed must be >= 0"),
        ("episodes = ", "not valid TOML"),
        ("[[[", "not valid TOML"),
    ],
)
def test_bad_config_files_name_the_key(tmp_path, text, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(_toy_module(), _toml(tmp_path, text))


def test_missing_config_file_and_the_config_class(tmp_path):
    """``load_config`` builds the module's ``Config`` (its checks run, its published form
    comes back): fails if the class is skipped (a bad value reaches the run) or its form is
    not what is returned."""
    import dataclasses

    from bayes_qse.experiments.config import ExperimentConfig, Table

    mod = _toy_module()
    with pytest.raises(ConfigError, match="file not found"):
        load_config(mod, tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="directory"):
        load_config(mod, tmp_path)

    @dataclasses.dataclass(frozen=True)
    class ToyConfig(ExperimentConfig):
        seeds: int = 2
        base_seed: int = 0
        episodes: int = 10
        eta: float = 1.0
        farsighted: bool = False
        learners: tuple[str, ...] = ("greedy", "thompson")
        game: Table = Table(name="patrol", horizon=3)

        def check(self, config):
            if config["episodes"] < 2:
                raise ConfigError(f"config: episodes must be >= 2, got {config['episodes']}")

    mod.Config = ToyConfig
    with pytest.raises(ConfigError, match="episodes must be >= 2"):
        load_config(mod, overrides={"episodes": 1})
    assert load_config(mod, overrides={"episodes": 3}) == {**mod.DEFAULT_CONFIG, "episodes": 3}


def test_registry_names_and_unknown_experiment():
    assert set(EXPERIMENTS) == {
        "online_regret",
        "offline_suboptimality",
        "confidence_sets",
        "posterior_inspection",
        "rationality_sweep",
        "security_games",
        "inverse_stackelberg",
    }
    with pytest.raises(ConfigError, match="unknown experiment 'nope'"):
        get_experiment("nope")


def test_progress_is_a_transparent_wrapper(capsys):
    assert list(progress(range(4), total=4, desc="x", enabled=False)) == [0, 1, 2, 3]
    assert list(progress(iter(range(3)), total=3, desc="x", enabled=True)) == [0, 1, 2]
    assert capsys.readouterr().out == ""  # bars go to stderr only


@pytest.fixture
def toy_registered(monkeypatch, tmp_path):
    """Register a toy experiment module so that run_experiment/experiment_main can find it."""
    mod = _toy_module("bayes_qse_toy_experiment")
    calls = []

    def run(config, out_dir, *, progress=True):
        calls.append(config)
        store = RunStore(out_dir, "toy", config)
        store.save_unit("seed0", {"x": np.arange(config["episodes"])}, {"seed": 0})
        return store.write_results("results", {"x": np.arange(config["episodes"])})

    def plot(out_dir):
        path = Path(out_dir) / "fig.png"
        path.write_bytes(b"png")
        return [path]

    mod.run, mod.plot = run, plot
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setitem(EXPERIMENTS, "toy", mod.__name__)
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: True if name == mod.__name__ else real_find_spec(name, *a),
    )
    return calls


def test_an_experiment_registered_later_refuses_the_engine_flags(tmp_path, toy_registered):
    """Bug caught: --workers handed to (or silently dropped by) an experiment registered after
    import, whose ``run`` runs its own loop; refused before anything is written."""
    with pytest.raises(ConfigError, match="executor: toy runs in one process"):
        run_experiment("toy", out=tmp_path / "r", workers=2)
    assert not toy_registered and not (tmp_path / "r").exists()


def test_run_experiment_and_experiment_main(tmp_path, toy_registered, capsys):
    results, figures = run_experiment("toy", seeds=3, seed=5, out=tmp_path / "r")
    assert results == tmp_path / "r" / "results.npz" and figures == [tmp_path / "r" / "fig.png"]
    assert toy_registered[-1]["seeds"] == 3 and toy_registered[-1]["base_seed"] == 5
    # same command resumes; a different config is refused unless --restart
    argv = ["--out", str(tmp_path / "r"), "--seeds", "3", "--seed", "5"]
    assert experiment_main("toy", argv) == 0
    assert "results:" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        experiment_main("toy", ["--out", str(tmp_path / "r"), "--no-plot"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "base_seed" in err and "Traceback" not in err
    experiment_main("toy", ["--out", str(tmp_path / "r"), "--restart", "--no-progress"])
    assert read_manifest(tmp_path / "r")["config"]["base_seed"] == 0
    config = _toml(tmp_path, "episodes = 4\n")
    experiment_main("toy", ["--out", str(tmp_path / "c"), "--config", str(config)])
    assert toy_registered[-1]["episodes"] == 4
    with pytest.raises(SystemExit) as exc:
        experiment_main("toy", ["--seeds", "many"])
    assert exc.value.code == 2
