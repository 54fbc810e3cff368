"""The experiments' one way to run their units and get their parts
(:func:`bayes_qse.experiments.executors.run_experiment_units`, :func:`~.units.load_units`)
and the one-part unit kinds' shared protocol (:class:`~.units.OnePartUnit`).

Stand-in unit kinds whose results are known by construction (a unit's value, a part's seed
times ten) and a stand-in executor that records what it is handed; no processes, no JAX.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from bayes_qse.experiments import executors
from bayes_qse.experiments.store import RunStore
from bayes_qse.experiments.units import RESULT, OnePartUnit, load_units, run_unit, unit_dir

#: ``(unit key, parts computed)`` for every call of a stand-in unit's ``run``.
RAN: list[tuple[str, tuple[str, ...]]] = []


@dataclasses.dataclass(frozen=True)
class ValueUnit(OnePartUnit):
    """One part holding ``value``."""

    key: str
    value: float
    config: dict = dataclasses.field(hash=False, compare=False)
    kind = "value"

    def run(self, store, todo, progress):
        RAN.append((self.key, tuple(todo)))
        store.save_unit(RESULT, {"x": np.array([self.value])}, {"value": self.value})


@dataclasses.dataclass(frozen=True)
class SeedsUnit:
    """One part per seed (``seed<s>``, holding ``10 s``), in the order of ``seeds``."""

    key: str
    seeds: tuple[int, ...]
    kind = "seeds"

    def parts(self):
        return tuple(f"seed{s}" for s in self.seeds)

    def store_config(self):
        return {"unit": self.key, "seeds": list(self.seeds)}

    def run(self, store, todo, progress):
        RAN.append((self.key, tuple(todo)))
        for part in todo:
            s = int(part.removeprefix("seed"))
            store.save_unit(part, {"x": np.array([10.0 * s])}, {"seed": s})


# neither the values nor the seeds are sorted, nor are the keys: an order read off a
# directory listing, a sort or the completion order differs from the units' order
UNITS = [
    ValueUnit("m", 3.0, {}),
    SeedsUnit("b", (7, 2, 5)),
    ValueUnit("z", 1.0, {}),
    ValueUnit("a", 2.0, {}),
]


@pytest.fixture(autouse=True)
def _fresh():
    RAN.clear()
    yield
    RAN.clear()


def _contents(loaded):
    """``{key: [x of each part]}``: what each unit's parts hold, in the order returned."""
    return {key: [float(a["x"][0]) for a, _ in parts] for key, parts in loaded.items()}


# what the units hold, written out (their values; seed s holds 10 s), in the units' order
EXPECTED = {"m": [3.0], "b": [70.0, 20.0, 50.0], "z": [1.0], "a": [2.0]}


def _backwards(calls):
    """A stand-in for ``run_units``: records its arguments and computes the units in this
    process last first (as a pool may finish them), returning their keys in that order."""

    def run_units(units, out_dir, **kw):
        calls.append((list(units), Path(out_dir), kw))
        for unit in reversed(units):
            run_unit(unit, out_dir)
        return [u.key for u in reversed(units)]

    return run_units


def test_parts_come_back_by_unit_in_the_units_order_whatever_order_they_finished(
    tmp_path, monkeypatch
):
    # Catches: parts returned in completion order (the keys run_units returns), in the sorted
    # order of the unit directories or of a unit's part files (seed2, seed5, seed7), or one
    # unit's parts given under another's key -- each experiment would stack its arrays
    # against the wrong (game, learner, seed) labels.
    calls: list = []
    monkeypatch.setattr(executors, "run_units", _backwards(calls))
    with RunStore(tmp_path, "toy", {"n": 1}) as store:
        loaded = executors.run_experiment_units(UNITS, store, progress=False)
    assert list(loaded) == ["m", "b", "z", "a"]
    assert _contents(loaded) == EXPECTED
    assert [m["seed"] for _, m in loaded["b"]] == [7, 2, 5]
    assert _contents(load_units(tmp_path, UNITS)) == EXPECTED


def test_the_executor_settings_reach_run_units_and_the_bar_is_labelled_by_the_store(
    tmp_path, monkeypatch
):
    # Catches: the helper dropping or defaulting executor, workers, address or progress (an
    # experiment asked for --executor ray --workers 3 would run in one process, silently),
    # running into another directory than the store's, or a bar labelled "units" instead of
    # the experiment.
    calls: list = []
    monkeypatch.setattr(executors, "run_units", _backwards(calls))
    with RunStore(tmp_path, "toy", {"n": 1}) as store:
        executors.run_experiment_units(
            UNITS, store, executor="ray", workers=3, address="HOST:6379", progress=False
        )
        executors.run_experiment_units(UNITS[:1], store, progress=False, desc="label")
    (units, out_dir, kw), (_, _, kw2) = calls
    assert [u.key for u in units] == ["m", "b", "z", "a"] and out_dir == tmp_path
    assert kw == {
        "executor": "ray",
        "workers": 3,
        "address": "HOST:6379",
        "progress": False,
        "desc": "toy",
    }
    assert kw2 == {
        "executor": "local",
        "workers": 1,
        "address": None,
        "progress": False,
        "desc": "label",
    }


def test_finished_units_and_parts_are_not_recomputed(tmp_path):
    # The real run_units, locally in this process. Catches: the helper computing every unit
    # (or loading before running, so a fresh directory fails), and a resumed run
    # recomputing finished units or a multi-part unit's finished parts.
    with RunStore(tmp_path, "toy", {"n": 1}) as store:
        first = executors.run_experiment_units(UNITS, store, progress=False)
        assert dict(RAN) == {
            "m": ("result",),
            "b": ("seed7", "seed2", "seed5"),
            "z": ("result",),
            "a": ("result",),
        }
        assert len(RAN) == len(UNITS)
        RAN.clear()
        again = executors.run_experiment_units(UNITS, store, progress=False)
        assert RAN == []
        (unit_dir(tmp_path, UNITS[1]) / "units" / "seed2.npz").unlink()
        third = executors.run_experiment_units(UNITS, store, progress=False)
    assert RAN == [("b", ("seed2",))]
    assert _contents(first) == _contents(again) == _contents(third) == EXPECTED


def test_two_units_with_one_key_are_refused_before_anything_runs(tmp_path):
    # Catches: two units sharing a key (one directory) -- the second would overwrite the
    # first's parts, or the dict of parts would silently hold one of them.
    twins = [ValueUnit("m", 3.0, {}), ValueUnit("m", 4.0, {})]
    with RunStore(tmp_path, "toy", {"n": 1}) as store:
        with pytest.raises(ValueError, match="'m'"):
            executors.run_experiment_units(twins, store, progress=False)
    assert RAN == [] and not unit_dir(tmp_path, twins[0]).exists()
    with pytest.raises(ValueError, match="'m'"):
        load_units(tmp_path, twins)


def test_one_part_kinds_bind_their_directories_as_before():
    # The store_config each kind wrote by hand before OnePartUnit, written out. Catches: a
    # unit directory bound to another config than before (finished units of earlier runs
    # refused as "a different configuration", or a setting that changes the result, e.g.
    # the seed, left out so that another seed's part is reused).
    from bayes_qse.experiments.confidence_sets import CoverageUnit
    from bayes_qse.experiments.offline_suboptimality import OfflineUnit
    from bayes_qse.experiments.posterior_inspection import InspectionUnit
    from bayes_qse.experiments.rationality_sweep import WidthUnit
    from bayes_qse.experiments.security_games import SecurityUnit

    cfg = {"seeds": 4, "base_seed": 2, "states": [0], "eta": 1.5}
    units = {
        "security": SecurityUnit("seed3", 3, cfg),
        "inspection": InspectionUnit("seed3", 3, cfg),
        "offline": OfflineUnit("k", "g", "b", 3, 11, cfg),
        "width": WidthUnit("w", 1.5, cfg),
        "coverage": CoverageUnit("c", "sbc", 50, (0, 2), cfg),
    }
    assert units["security"].store_config() == {
        "unit": "seed3",
        "config": {"states": [0], "eta": 1.5},
        "seed": 3,
    }
    assert units["inspection"].store_config() == {
        "unit": "seed3",
        "config": {"eta": 1.5},
        "seed": 3,
    }
    assert units["offline"].store_config() == {"unit": "k", "config": cfg, "stream": 11}
    assert units["width"].store_config() == {"unit": "w", "config": cfg}
    assert units["coverage"].store_config() == {"unit": "c", "config": cfg}
    assert all(u.parts() == ("result",) for u in units.values())
    assert {name: u.kind for name, u in units.items()} == {k: k for k in units}


EXPERIMENTS = (
    "online_regret",
    "offline_suboptimality",
    "rationality_sweep",
    "confidence_sets",
    "posterior_inspection",
    "inverse_stackelberg",
    "security_games",
)


class _Stop(Exception):
    pass


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_hands_its_engine_settings_to_the_helper(name, tmp_path, monkeypatch):
    # Catches: an experiment's run dropping --executor/--workers/--address/--no-progress on
    # the way to its units (they would run in one process, silently), running them outside
    # its own store (another directory, no lock), or handing over only part of its grid.
    from bayes_qse.experiments import executors, get_experiment

    module, seen = get_experiment(name), {}

    def record(units, store, **kw):
        seen.update(units=list(units), store=(store.out_dir, store.experiment), kw=kw)
        raise _Stop

    monkeypatch.setattr(executors, "run_experiment_units", record)
    config = module.Config.from_mapping(module.DEFAULT_CONFIG).to_mapping()
    with pytest.raises(_Stop):
        module.run(
            config, tmp_path / name, executor="ray", workers=3, address="auto", progress=False
        )
    assert seen["kw"] == {"executor": "ray", "workers": 3, "address": "auto", "progress": False}
    assert seen["store"] == (tmp_path / name, name)
    grid = module.make_units(config)
    assert [u.key for u in seen["units"]] == [u.key for u in grid]
