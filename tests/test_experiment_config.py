"""Each experiment's config is a frozen :class:`~bayes_qse.experiments.config.ExperimentConfig`
dataclass (issue 25, step 4: one settings idiom): made from a mapping by ``from_mapping``,
checked when made (a one-line ``ConfigError`` naming the key), hashable, and written back by
``to_mapping`` in the published form, so ``DEFAULT_CONFIG``/``FULL_CONFIG``/``LONG_CONFIG``
and every published manifest's config come out exactly as the dict merge had them (a
manifest written by this version is byte for byte the one written before)."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import pytest

from bayes_qse.errors import ConfigError
from bayes_qse.experiments import EXPERIMENTS, get_experiment, load_config, merge_config
from bayes_qse.experiments.config import ExperimentConfig, Table, freeze, thaw

REPO = Path(__file__).resolve().parents[1]
CONVERTED = list(EXPERIMENTS)
PRESETS = ("DEFAULT_CONFIG", "FULL_CONFIG", "LONG_CONFIG")


def _json(config) -> str:
    """The config as the run store writes it into ``manifest.json`` (sorted keys)."""
    return json.dumps(config, sort_keys=True)


def test_every_experiment_has_a_config_class():
    """Fails if a registered experiment's config is not an ``ExperimentConfig`` dataclass (a
    dict idiom back), or if ``DEFAULT_CONFIG`` is not its class's defaults (two homes for
    the defaults)."""
    for name in EXPERIMENTS:
        module = get_experiment(name)
        config_type = getattr(module, "Config", None)
        assert isinstance(config_type, type) and issubclass(config_type, ExperimentConfig), name
        assert config_type.__dataclass_params__.frozen, name
        assert _json(module.DEFAULT_CONFIG) == _json(config_type.defaults()), name


@pytest.mark.parametrize("name", CONVERTED)
def test_presets_round_trip_unchanged(name):
    """``Config.from_mapping(P).to_mapping()`` is ``P`` for every preset, in the manifest's
    JSON (same keys, same ints and floats, lists as lists): fails if the dataclass drops a
    key, renames one (``farsighted-random``), turns a float default into an int, or leaves a
    tuple or a Table where the published form has a list or a table."""
    module = get_experiment(name)
    for preset in PRESETS:
        if not hasattr(module, preset):
            continue
        values = getattr(module, preset)
        config = module.Config.from_mapping(values)
        out = config.to_mapping()
        assert _json(out) == _json(values), (name, preset)
        assert type(out) is dict and all(not isinstance(v, tuple | Table) for v in out.values())
        # frozen and hashable: equal configs hash alike
        assert hash(config) == hash(module.Config.from_mapping(out))
        field = dataclasses.fields(config)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(config, field, getattr(config, field))


MANIFESTS = sorted((REPO / "docs" / "results").rglob("manifest.json"))


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.parent.relative_to(REPO)))
def test_published_manifests_load_as_the_dict_merge_did(path):
    """Each published manifest, reloaded as ``reproduce.py`` reloads it, gives the config the
    plain typed merge over ``FULL_CONFIG`` gives (the dict idiom's result), in JSON, and that
    config round-trips through the dataclass unchanged.  Fails if the config class changes a
    value a rerun reads (the rerun would no longer be bit for bit)."""
    manifest = json.loads(path.read_text(encoding="utf-8"))
    module = get_experiment(manifest["experiment"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = load_config(module, full=True, overrides=manifest["config"])
        merged = merge_config(module.FULL_CONFIG, manifest["config"])
    assert _json(loaded) == _json(merged)
    config_type = getattr(module, "Config", None)
    if config_type is not None:
        assert _json(config_type.from_mapping(loaded).to_mapping()) == _json(loaded)


#: One bad value per converted experiment (a check of its class, not of the typed merge):
#: ``(experiment, changes, the key the one-line error must name)``.
BAD = {
    "online_regret": [
        ({"games": ["nope"]}, "games"),
        ({"slope_start": 1.5}, "slope_start"),
        ({"chunk": 3}, "chunk"),
        ({"episodes": 0}, "episodes"),
        ({"learner": {"delta": 2.0}}, "delta"),
        ({"linear": {"n_states": 0}}, "linear.n_states"),
    ],
    "offline_suboptimality": [
        ({"games": ["nope"]}, "games"),
        ({"sizes": [100, 10]}, "sizes"),
        ({"near_optimal_epsilon": 0.0}, "near_optimal_epsilon"),
        ({"learner": {"rule": "median"}}, "learner.rule"),
        ({"large": {"reward_range": [1.0, 0.0]}, "games": ["large"]}, "large.reward_range"),
        ({"game": {"n_states": 10**6}}, "game"),
    ],
    "security_games": [
        ({"payoffs": "gaussian"}, "payoffs"),
        ({"n_targets": 1}, "n_targets"),
        ({"resources": 9.0}, "resources"),
        ({"learners": ["nope"]}, "learners"),
        ({"learner": {"num_draws": 0}}, "learner.num_draws"),
        ({"prior_scale": 0.0}, "prior_scale"),
    ],
    "inverse_stackelberg": [
        ({"m": 60, "n": 60}, "m, n"),
        ({"alphas": [1.5]}, "alphas"),
        ({"sizes": [5]}, "sizes"),
        ({"methods": ["mle"]}, "methods"),
        ({"pilot": 1.0}, "pilot"),
    ],
    "confidence_sets": [
        ({"cases": ["nope"]}, "cases"),
        ({"levels": [0.5, 0.9]}, "levels"),
        ({"theory_delta": 1.0}, "theory_delta"),
        ({"sample_sizes": [10**12]}, "sample_sizes"),
        ({"game": {"seed": -1}}, "game.seed"),
    ],
    "rationality_sweep": [
        ({"etas": [0.0]}, "etas"),
        ({"learners": ["nope"]}, "learners"),
        ({"chunk": 7}, "chunk"),
        ({"learner": {"radius": "huge"}}, "learner.radius"),
        ({"width_sample_size": 10**11}, "width_sample_size"),
    ],
    "posterior_inspection": [
        ({"game": "nope"}, "game"),
        ({"num_chains": 0}, "num_chains"),
        ({"n_episodes": 10**12}, "n_episodes"),
        ({"states": [[0, 9]]}, "states"),
        ({"prior_scale": -1.0}, "prior_scale"),
    ],
}


@pytest.mark.parametrize(
    ("name", "changes", "key"),
    [(n, c, k) for n in CONVERTED for c, k in BAD[n]],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else str(v),
)
def test_a_bad_value_is_refused_by_the_class_in_one_line_naming_the_key(name, changes, key):
    """Both doors refuse it: ``from_mapping`` and the constructor itself (the checks live in
    the class, not in a separate ``validate_config`` a caller may forget).  Fails if a bad
    value builds a config, or the error spans lines or does not name the key."""
    module = get_experiment(name)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as info:
        module.Config.from_mapping(changes)
    assert "\n" not in str(info.value)
    values = {**module.DEFAULT_CONFIG, **changes}
    fields = {
        module.Config.KEYS.get(f.name, f.name): f.name for f in dataclasses.fields(module.Config)
    }
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        module.Config(**{fields[k]: v for k, v in values.items()})


def test_table_is_immutable_hashable_and_thaws_to_the_published_form():
    """Fails if a table can be changed after a config is made, hashes by identity (two equal
    configs would differ as a static argument or a cache key), or if ``thaw(freeze(x))``
    is not ``x`` (lists stay lists, nested tables dicts)."""
    value = {"a": [1, [2.0, 3.0]], "b": {"c": "x", "d": [True]}}
    table = freeze(value)
    assert isinstance(table, Table) and isinstance(table["b"], Table)
    assert table["a"] == (1, (2.0, 3.0))
    assert hash(table) == hash(freeze(json.loads(json.dumps(value))))
    assert thaw(table) == value and _json(thaw(table)) == _json(value)
    with pytest.raises(TypeError):
        table["a"] = 1  # type: ignore[index]
    with pytest.raises(AttributeError):
        table.x = 1  # type: ignore[attr-defined]
    assert table == freeze(value) and table != freeze({**value, "a": [1]})


def test_an_unknown_key_is_named():
    """Fails if ``from_mapping`` ignores a misspelt key (the run would use the default)."""
    module = get_experiment(CONVERTED[0])
    with pytest.raises(ConfigError, match="unknown key 'sedes'"):
        module.Config.from_mapping({"sedes": 3})
