"""A sweep directory across reruns: seeds that grow, versions that must agree, damaged parts,
offline streams that do not depend on the grid's order, a Ray address that does not answer.

Small grids of the cheap leaders (``oracle``, ``uniform``: no learner to compile), whose
recorded ``reward`` is a random draw per episode, so a wrong seed shows in the numbers."""

from __future__ import annotations

import json
import time
import warnings

import jax
import numpy as np
import pytest

from bayes_qse.cli import main
from bayes_qse.errors import ConfigError
from bayes_qse.experiments import executors
from bayes_qse.experiments import offline_suboptimality as offline
from bayes_qse.experiments.locks import RunNotice
from bayes_qse.experiments.store import library_versions
from bayes_qse.experiments.units import check_worker, unit_dir
from bayes_qse.learners import runner as runner_module
from bayes_qse.sweeps import expand, gather, open_results, run_sweep

SPEC = {
    "name": "first",
    "chunk": 5,
    "record": ["reward"],
    "grid": {"game": ["linear"], "learner": ["oracle", "uniform"], "T": [10], "seeds": [0, 1, 2]},
}


def _spec(seeds, name="first"):
    return {**SPEC, "name": name, "grid": {**SPEC["grid"], "seeds": seeds}}


def _played(monkeypatch) -> list[list[int]]:
    """Records the seeds each unit starts playing (OnlineRunner.init_states)."""
    played: list[list[int]] = []
    init = runner_module.OnlineRunner.init_states
    monkeypatch.setattr(
        runner_module.OnlineRunner,
        "init_states",
        lambda self, s: played.append([int(x) for x in s]) or init(self, s),
    )
    return played


def _parts(out):
    return {
        p.relative_to(out): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(out.glob("units/*/units/seed*.npz"))
    }


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """A finished sweep of seeds 0-2 (copied by the tests that change it)."""
    out = tmp_path_factory.mktemp("first") / "out"
    run_sweep(_spec([0, 1, 2]), out, progress=False)
    return out


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_growing_seeds_computes_only_the_new_ones(first, tmp_path, monkeypatch):
    # Seeds 0-2, then 0-4 (another name too) in the same directory: seeds 0-2 are neither
    # recomputed nor rewritten, seeds 3-4 are played, and the gathered dataset equals, bit
    # for bit, a fresh sweep of seeds 0-4 (each seed's numbers do not depend on the others
    # of its batch).  Catches: seeds or name in the sweep's identity (the rerun refused),
    # a rerun that recomputes every seed, gather reading the old spec's seeds, a seed's
    # numbers that depend on the batch it ran in.
    out = _copy(first, tmp_path / "grown")
    before = _parts(out)
    played = _played(monkeypatch)
    run_sweep(_spec({"start": 0, "count": 5}, name="second"), out, progress=False)
    assert sorted(played) == [[3, 4], [3, 4]]  # two units (oracle, uniform), new seeds only
    after = _parts(out)
    assert {k: after[k] for k in before} == before  # same files, same bytes, same mtime
    fresh = tmp_path / "fresh"
    run_sweep(_spec([0, 1, 2, 3, 4]), fresh, progress=False)
    a, b = open_results(out), open_results(fresh)
    assert a["seed"].values.tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(a["reward"].values, b["reward"].values)
    old = open_results(first)
    np.testing.assert_array_equal(a["reward"].sel(seed=[0, 1, 2]).values, old["reward"].values)
    assert np.unique(a["reward"].values).size > 20  # random draws, not a constant
    # gather follows the directory's latest spec: its seeds and its name
    assert gather(out)["seed"].values.tolist() == [0, 1, 2, 3, 4]
    assert json.loads((out / "sweep.json").read_text())["spec"]["name"] == "second"


def test_other_settings_are_still_refused(first, tmp_path):
    # Only seeds and name left the identity: a different T is still another sweep.
    # Catches: an identity that drops more than name and seeds.
    out = _copy(first, tmp_path / "t")
    spec = _spec([0, 1, 2])
    spec["grid"] = {**spec["grid"], "T": [20]}
    with pytest.raises(ConfigError, match=r"differs in: grid"):
        run_sweep(spec, out, progress=False)


def _set_part_versions(path, **changes):
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: np.array(f[k]) for k in f.files}
    meta = json.loads(str(arrays["__meta__"]))
    meta["versions"] = {**meta["versions"], **changes}
    arrays["__meta__"] = np.array(json.dumps(meta, sort_keys=True))
    np.savez(path, **arrays)


def test_a_part_of_another_version_is_refused_then_allowed_and_recorded(first, tmp_path, capsys):
    # One seed file claims another jax and another CPU.  A rerun (here with one more seed, so
    # that there is work to resume) exits 2 with one line naming both differences, before
    # anything runs; --allow-mixed-versions runs and the gathered dataset records both
    # version records.  Catches: parts without versions, a version check that is skipped on
    # resume, a message that does not name the difference, mixing that is not recorded.
    out = _copy(first, tmp_path / "mixed")
    (unit,) = [u for u in expand(SPEC).units if u.learner == "uniform"]
    part = unit_dir(out, unit) / "units" / "seed1.npz"
    _set_part_versions(part, jax="0.0.1", platform="cpu: another CPU (avx512f)")
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'chunk = 5\nrecord = ["reward"]\n[grid]\ngame = ["linear"]\n'
        'learner = ["oracle", "uniform"]\nT = [10]\nseeds = [0, 1, 2, 3]\n'
    )
    argv = ["sweep", str(spec), "--out", str(out), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert f"jax 0.0.1 (this run: {jax.__version__})" in err and "another CPU" in err
    assert "--allow-mixed-versions" in err
    assert not (unit_dir(out, unit) / "units" / "seed3.npz").exists()  # nothing ran
    assert main([*argv, "--allow-mixed-versions"]) == 0
    ds = open_results(out)
    assert ds.attrs["mixed_versions"] == 1
    versions = json.loads(ds.attrs["versions"])
    assert {v["jax"] for v in versions} == {"0.0.1", jax.__version__}
    with pytest.raises(ConfigError, match="different versions or platforms"):
        gather(out)  # gathering alone refuses the mix as well, unless allowed
    assert gather(out, allow_mixed=True).attrs["mixed_versions"] == 1


def test_every_part_records_the_versions_that_computed_it(first):
    # Catches: parts saved without versions (a later mix could not be detected).
    for path in first.glob("units/*/units/seed*.npz"):
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["__meta__"]))
        assert meta["versions"] == library_versions()
    assert json.loads(open_results(first).attrs["versions"]) == [
        {
            k: library_versions()[k]
            for k in ("bayes_qse", "jax", "numpy", "numpyro", "python", "platform")
        }
    ]


def test_a_worker_of_another_version_refuses_to_run():
    # Catches: a worker that runs with another bayes_qse or jax than the driver's.
    mine = library_versions()
    check_worker({"bayes_qse": mine["bayes_qse"], "jax": mine["jax"]})  # same: runs
    with pytest.raises(ConfigError, match=r"jax 0\.0\.1|jax .* \(driver: 0\.0\.1\)"):
        check_worker({"bayes_qse": mine["bayes_qse"], "jax": "0.0.1"})


def test_a_truncated_part_is_set_aside_and_recomputed(first, tmp_path, monkeypatch):
    # seed1 of one unit loses its second half: the rerun sets it aside with one notice naming
    # it, plays seed 1 of that unit alone, and the results equal the first run's bit for bit.
    # Catches: "done" meaning "the file exists" (the rerun would fail at gather), a damaged
    # part deleted instead of kept, every seed recomputed, a silent recomputation.
    out = _copy(first, tmp_path / "damaged")
    (unit,) = [u for u in expand(SPEC).units if u.learner == "uniform"]
    part = unit_dir(out, unit) / "units" / "seed1.npz"
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2])
    played = _played(monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_sweep(_spec([0, 1, 2]), out, progress=False)
    notices = [str(w.message) for w in caught if issubclass(w.category, RunNotice)]
    assert len(notices) == 1 and "seed1.npz" in notices[0] and "\n" not in notices[0]
    assert played == [[1]]
    aside = list((unit_dir(out, unit) / "units" / ".set-aside").glob("seed1.*.npz"))
    assert len(aside) == 1 and aside[0].read_bytes() == data[: len(data) // 2]
    np.testing.assert_array_equal(open_results(out)["reward"], open_results(first)["reward"])


def _offline_spec(games, behaviours):
    return {
        "kind": "offline",
        "grid": {"game": games, "behaviour": behaviours, "seeds": [0, 1]},
        "sizes": [20, 40],
        "learners": ["plugin"],
        "game": {"n_states": 2, "n_leader_actions": 2, "n_follower_actions": 2, "horizon": 2},
    }


def test_offline_streams_follow_names_and_reproduce_the_published_ones():
    # The published runs used stream = 100 * (game's place in their grid) + (behaviour's
    # place); the registry must give the same streams for those grids, and the same stream
    # to a (game, behaviour) wherever it sits in another grid.  Catches: streams by position
    # (a reordered grid changes the numbers), a registry that changes published numbers.
    published = {
        "docs/results/offline_suboptimality": (["linear", "tabular", "tempting"]),
        "docs/results/offline_suboptimality_large": (["large"]),
        "docs/results/offline_suboptimality_large/random_large": (["random-large"]),
    }
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for folder, games in published.items():
        config = json.loads((root / folder / "results.json").read_text())["config"]
        assert config["games"] == games
        for unit in offline.make_units(config):
            gi, bi = config["games"].index(unit.game), config["behaviours"].index(unit.behaviour)
            assert unit.stream == 100 * gi + bi, (folder, unit.key)
    assert set(offline.GAME_STREAMS) == set(offline.OFFLINE_GAMES)
    a = {
        (u.game, u.behaviour, u.seed): u.stream
        for u in expand(_offline_spec(["linear", "tabular"], ["uniform", "poor-coverage"])).units
    }
    b = {
        (u.game, u.behaviour, u.seed): u.stream
        for u in expand(_offline_spec(["tabular", "linear"], ["poor-coverage", "uniform"])).units
    }
    assert a == b and len(set(a.values())) == 4


@pytest.mark.slow
def test_offline_numbers_do_not_change_when_the_grid_is_reordered(tmp_path):
    # Two offline sweeps over the same cells in reversed orders give the same numbers for
    # every (game, behaviour, seed), bit for bit.  Catches: a stream, a dataset seed or a
    # learner key derived from a cell's place in the grid.
    a = run_sweep(
        _offline_spec(["linear", "tabular"], ["uniform", "poor-coverage"]),
        tmp_path / "a",
        progress=False,
    )
    b = run_sweep(
        _offline_spec(["tabular", "linear"], ["poor-coverage", "uniform"]),
        tmp_path / "b",
        progress=False,
    )
    da, db = open_results(tmp_path / "a"), open_results(tmp_path / "b")
    assert a and b and da["game"].values.tolist() == ["linear", "tabular"]
    db = db.sel(game=da["game"].values, behaviour=da["behaviour"].values)
    for name in ("suboptimality", "value"):
        np.testing.assert_array_equal(da[name].values, db[name].values)
    assert np.unique(da["value"].values).size > 4  # the cells differ


def test_a_ray_address_that_does_not_answer_is_one_line_and_exit_2(tmp_path, capsys):
    # Issue 23 (4): `--address 127.0.0.1:1` used to print Ray's retry log for minutes.  Now
    # the address is tried with a bounded wait before Ray is asked to join it.  Catches: an
    # unchecked address (ray.init retries for minutes), a traceback, exit 1.
    pytest.importorskip("ray")
    spec = tmp_path / "spec.toml"
    spec.write_text('[grid]\ngame = ["linear"]\nlearner = ["uniform"]\nT = [5]\nseeds = [0]\n')
    start = time.monotonic()
    argv = [
        "sweep",
        str(spec),
        "--out",
        str(tmp_path / "out"),
        "--no-progress",
        "--executor",
        "ray",
        "--address",
        "127.0.0.1:1",
    ]
    assert main(argv) == 2
    assert time.monotonic() - start < executors.ADDRESS_TIMEOUT + 20
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "127.0.0.1:1" in err and "address" in err, err
    for bad in ("nonsense", "host:port", "127.0.0.1:99999"):
        with pytest.raises(ConfigError, match="HOST:PORT"):
            executors.check_address(bad)


def test_xla_flags_are_pinned_to_the_threads_asked_for():
    # Catches: a pin that keeps the user's own thread flags (two conflicting values) or drops
    # the user's other XLA flags.
    flags = executors.pinned_xla_flags(1, "--xla_foo=1 intra_op_parallelism_threads=8")
    assert flags.split() == [
        "--xla_foo=1",
        "--xla_cpu_multi_thread_eigen=false",
        "intra_op_parallelism_threads=1",
    ]
    assert executors.pinned_xla_flags(2, "").split() == ["intra_op_parallelism_threads=2"]


def test_a_ray_task_error_becomes_its_cause_in_one_line():
    # Ray wraps a task's exception with the remote traceback and colour codes; the driver
    # raises the cause.  Catches: the wrapper's multi-line text shown, colour codes kept, a
    # ConfigError (exit 2) turned into an internal error.
    ray_exceptions = pytest.importorskip("ray.exceptions")
    remote = 'Traceback (most recent call last):\n  File "x.py"\n\x1b[31mValueError: boom\x1b[0m'
    wrapped = ray_exceptions.RayTaskError("compute_unit", remote, ConfigError("bad\nthing"))
    err = executors.task_error(wrapped, "game=linear")
    assert isinstance(err, ConfigError) and str(err) == "unit game=linear: bad"
    wrapped = ray_exceptions.RayTaskError("compute_unit", remote, ValueError("boom"))
    err = executors.task_error(wrapped, "k")
    assert type(err) is ValueError and str(err) == "boom"
    err = executors.task_error(ray_exceptions.WorkerCrashedError(), "k")
    assert "\n" not in str(err) and "\x1b" not in str(err) and str(err).startswith("unit k:")
