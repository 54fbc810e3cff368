"""One settings idiom and one vocabulary (bayes_qse.settings): every learner's settings is a
frozen, validated dataclass built by ``from_mapping``; one name per quantity; the retired
names (``confidence_level``, ``ridge``, ``mle_ridge``, ``n_draws``) are read for one release
from configs, sweep specs and the published manifests, with a DeprecationWarning, to the
values the old code used."""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import warnings
from pathlib import Path

import pytest

from bayes_qse.errors import ConfigError
from bayes_qse.experiments import get_experiment, load_config
from bayes_qse.learners.config import LearnerConfig, OfflineLearnerConfig
from bayes_qse.security.online import SecurityLearnerConfig
from bayes_qse.settings import RENAMED, Settings, upgrade

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "bayes_qse"
SETTINGS_CLASSES = (LearnerConfig, OfflineLearnerConfig, SecurityLearnerConfig)
#: The bases of the one idiom: the learners' and games' settings derive from ``Settings``,
#: the experiments' configs from ``ExperimentConfig`` (itself a ``Settings``).
SETTINGS_BASES = {"Settings", "ExperimentConfig"}


# ---------------------------------------------------------------------------------------
# One idiom: a scan of the package's source
# ---------------------------------------------------------------------------------------


def _is_frozen_dataclass(node: ast.ClassDef) -> bool:
    for dec in node.decorator_list:
        if isinstance(dec, ast.Call) and ast.unparse(dec.func).endswith("dataclass"):
            if any(
                k.arg == "frozen" and getattr(k.value, "value", False) is True for k in dec.keywords
            ):
                return True
    return False


def _is_dict(value: ast.expr | None) -> bool:
    return isinstance(value, ast.Dict | ast.DictComp) or (
        isinstance(value, ast.Call) and ast.unparse(value.func) == "dict"
    )


def settings_offenders(source: str, where: str) -> list[str]:
    """The other settings idioms in one module's ``source``: a class named ``*Config`` or
    ``*Settings`` that is not a frozen dataclass deriving from ``Settings`` or
    ``ExperimentConfig`` (a NamedTuple, a TypedDict, a plain or mutable dataclass); a
    module-level dict bound to a name with ``CONFIG`` or ``SETTINGS`` in it (a
    validated-dict idiom: an experiment's ``DEFAULT_CONFIG`` is its config class's
    ``defaults()``); a ``validate_config`` function (the checks belong to the class)."""
    bad = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name.endswith(("Config", "Settings")):
            bases = {ast.unparse(b) for b in node.bases}
            derives = node.name == "Settings" or bool(SETTINGS_BASES & bases)
            if not (derives and _is_frozen_dataclass(node)):
                bad.append(f"{where}: class {node.name} ({', '.join(bases) or 'no base'})")
        if isinstance(node, ast.FunctionDef) and node.name == "validate_config":
            bad.append(f"{where}: def validate_config")
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        for target in targets:
            name = getattr(target, "id", "")
            upper = name.upper()
            settings_like = "CONFIG" in upper or "SETTINGS" in upper
            if settings_like and _is_dict(node.value):
                bad.append(f"{where}: dict {name}")
    return bad


def test_the_package_has_one_settings_idiom():
    """Fails on a second settings idiom coming back: a NamedTuple of settings (as
    ``security.OnlineSettings`` was), a validated dict of defaults (as offline's
    ``DEFAULT_LEARNER_CONFIG`` and the experiments' ``DEFAULT_CONFIG`` dicts were), a
    ``validate_config`` beside a config dict, or a settings class that is not a frozen
    :class:`~bayes_qse.settings.Settings` dataclass."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        where = str(path.relative_to(REPO))
        if bad := settings_offenders(path.read_text(encoding="utf-8"), where):
            found[where] = bad
    assert not found, found


@pytest.mark.parametrize(
    "source",
    [
        "from typing import NamedTuple\nclass OnlineSettings(NamedTuple):\n    n: int = 1\n",
        "from typing import TypedDict\nclass RunConfig(TypedDict):\n    n: int\n",
        "import dataclasses\n@dataclasses.dataclass\nclass FooConfig(Settings):\n    n: int = 1\n",
        "DEFAULT_LEARNER_CONFIG = {'delta': 0.1}\n",
        "LEARNER_SETTINGS: dict = dict(delta=0.1)\n",
        "DEFAULT_CONFIG: dict = {'seeds': 1}\n",
        "FULL_CONFIG = {**DEFAULT_CONFIG, 'seeds': 20}\n",
        "def validate_config(config):\n    pass\n",
    ],
)
def test_the_scan_catches_each_retired_idiom(source):
    """The scan itself: fails if it stops seeing a NamedTuple or TypedDict settings class, a
    mutable dataclass, a dict of settings defaults (a learner's or an experiment's) or a
    ``validate_config`` (so the test above could not fail)."""
    assert settings_offenders(source, "bayes_qse/experiments/x.py")


def test_the_scan_passes_the_idiom_and_experiment_configs():
    """Fails if the scan flags the idiom itself or an experiment's config class and its
    derived presets (it would then have to be silenced by an ignore list)."""
    good = (
        "import dataclasses\n@dataclasses.dataclass(frozen=True)\nclass FooConfig(Settings):\n"
        "    n: int = 1\n@dataclasses.dataclass(frozen=True)\n"
        "class BarConfig(ExperimentConfig):\n    seeds: int = 1\n"
        "DEFAULT_CONFIG = BarConfig.defaults()\nFULL_CONFIG = BarConfig.preset(seeds=20)\n"
    )
    assert settings_offenders(good, "bayes_qse/experiments/foo.py") == []


@pytest.mark.parametrize("cls", SETTINGS_CLASSES)
def test_settings_are_frozen_hashable_and_round_trip(cls):
    """Fails if a settings class becomes mutable (a run's settings changed after its
    learner compiled), unhashable (no longer a static argument of ``jax.jit``: the security
    learner's round is jitted on it), or ``from_mapping(to_dict())`` loses a field."""
    cfg = cls()
    assert dataclasses.is_dataclass(cfg) and isinstance(cfg, Settings)
    field = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(cfg, field, getattr(cfg, field))
    assert hash(cfg) == hash(cls()) and cfg == cls()
    assert cls.from_mapping(cfg.to_dict()) == cfg


# ---------------------------------------------------------------------------------------
# Validation: a one-line ConfigError naming the field
# ---------------------------------------------------------------------------------------

BAD = [
    (LearnerConfig, "delta", 1.5),
    (LearnerConfig, "delta", 0.0),
    (LearnerConfig, "prior_scale", 0.0),
    (LearnerConfig, "mle_prior_scale", -1.0),
    (LearnerConfig, "num_draws", 2.5),
    (LearnerConfig, "capacity", True),
    (OfflineLearnerConfig, "delta", 1.0),
    (OfflineLearnerConfig, "prior_scale", "big"),
    (OfflineLearnerConfig, "prior_scale", math.inf),
    (OfflineLearnerConfig, "num_draws", 0),
    (OfflineLearnerConfig, "rule", "median"),
    (SecurityLearnerConfig, "prior_scale", -10.0),
    (SecurityLearnerConfig, "num_draws", 0),
    (SecurityLearnerConfig, "optimism_level", 1.5),
    (SecurityLearnerConfig, "learning_rate", math.nan),
]


@pytest.mark.parametrize(("cls", "field", "value"), BAD)
def test_a_bad_value_is_one_line_naming_the_field(cls, field, value):
    """Fails if a bad value is accepted (the NamedTuple took ``prior_scale=-10`` and failed
    later inside ``jit``, or never) or the error does not start with the field's name."""
    with pytest.raises(ConfigError, match=f"^{field}: ") as info:
        cls.from_mapping({field: value})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("cls", SETTINGS_CLASSES)
def test_an_unknown_key_is_named(cls):
    """Fails if a misspelt setting is silently ignored (the run would use the default)."""
    with pytest.raises(ConfigError, match="unknown setting.*nmu_draws"):
        cls.from_mapping({"nmu_draws": 3})


# ---------------------------------------------------------------------------------------
# One vocabulary, and the shim that reads the retired names
# ---------------------------------------------------------------------------------------


def _flat_keys(config, prefix=""):
    for key, value in config.items():
        yield prefix + key
        if isinstance(value, dict):
            yield from _flat_keys(value, f"{prefix}{key}.")


def test_no_setting_or_experiment_key_uses_a_retired_name():
    """Fails if a settings class or an experiment's config brings back a second name for a
    quantity (``ridge`` beside ``prior_scale``, ``n_draws`` beside ``num_draws``, ...), or a
    retired name's new name is no longer a setting anywhere (the shim would point nowhere)."""
    fields = {f.name for cls in SETTINGS_CLASSES for f in dataclasses.fields(cls)}
    assert not set(RENAMED) & fields
    assert {r.name for r in RENAMED.values()} <= fields
    for name in ("online_regret", "offline_suboptimality", "security_games", "rationality_sweep"):
        module = get_experiment(name)
        for preset in ("DEFAULT_CONFIG", "FULL_CONFIG"):
            keys = {k.rsplit(".", 1)[-1] for k in _flat_keys(getattr(module, preset))}
            assert not set(RENAMED) & keys, (name, preset)


def test_retired_names_are_read_to_the_old_values_with_a_warning():
    """The shim's conversions against values worked out by hand: ``confidence_level = 0.9``
    is ``delta = 1 - 0.9`` computed as the old code did (not 0.1, which differs in the last
    bit), ``ridge = 4`` is ``prior_scale = 0.5`` with precision 4, ``mle_ridge = 0`` (the
    unpenalised MLE) is an infinite scale with precision exactly 0, ``n_draws`` the same
    count.  Fails on a wrong conversion, a silent rename, or a lost one."""
    cases = [
        (LearnerConfig, {"confidence_level": 0.9}, "delta", 1.0 - 0.9),
        (LearnerConfig, {"mle_ridge": 0.0}, "mle_prior_scale", math.inf),
        (LearnerConfig, {"mle_ridge": 0.25}, "mle_prior_scale", 2.0),
        (OfflineLearnerConfig, {"ridge": 4.0}, "prior_scale", 0.5),
        (OfflineLearnerConfig, {"ridge": 1}, "prior_scale", 1.0),
        (SecurityLearnerConfig, {"n_draws": 5}, "num_draws", 5),
    ]
    for cls, old, new, expected in cases:
        with pytest.warns(DeprecationWarning, match=f"renamed '{new}'"):
            cfg = cls.from_mapping(old)
        assert getattr(cfg, new) == expected, (cls.__name__, old)
    with pytest.warns(DeprecationWarning):
        assert LearnerConfig.from_mapping({"mle_ridge": 0.0}).mle_precision == 0.0
        assert OfflineLearnerConfig.from_mapping({"ridge": 4.0}).prior_precision == 4.0
        assert LearnerConfig.from_mapping({"confidence_level": 0.9}).delta != 0.1


def test_a_retired_name_beside_its_new_name_is_an_error():
    """Fails if ``{confidence_level, delta}`` together silently keep one of the two."""
    with pytest.raises(ConfigError, match="confidence_level.*delta"):
        LearnerConfig.from_mapping({"confidence_level": 0.9, "delta": 0.05})
    with pytest.raises(ConfigError, match="ridge must be a number"):
        upgrade({"ridge": "big"}, "config")


MANIFESTS = sorted((REPO / "docs" / "results").rglob("manifest.json"))


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.parent.relative_to(REPO)))
def test_every_published_manifest_still_loads_to_its_old_values(path):
    """Each published manifest reloads as ``reproduce.py`` reloads it, retired names
    converted: the online ones' ``delta`` is exactly ``1 - confidence_level`` (so a rerun is
    bit for bit), the offline ones' ``prior_scale`` is ``ridge ** -0.5``, security's
    ``num_draws`` its ``n_draws``.  Fails if an old manifest no longer loads (unknown key) or
    loads to another value."""
    manifest = json.loads(path.read_text(encoding="utf-8"))
    old = manifest["config"]
    module = get_experiment(manifest["experiment"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        config = load_config(module, full=True, overrides=old)
    assert not set(RENAMED) & set(config)
    learner = config.get("learner", {})  # the learner settings' table (the second shim)
    assert not set(RENAMED) & set(learner)
    if "confidence_level" in old:
        assert learner["delta"] == 1.0 - old["confidence_level"]
    if "ridge" in old:
        assert learner["prior_scale"] == old["ridge"] ** -0.5
    if "n_draws" in old:
        assert learner["num_draws"] == old["n_draws"]


def test_an_old_run_config_warns_naming_the_new_key(tmp_path):
    """``run --config`` with a TOML file of the previous release: fails if the old key is
    rejected or read without telling the user its new name."""
    path = tmp_path / "old.toml"
    path.write_text("confidence_level = 0.8\n", encoding="utf-8")
    with pytest.warns(DeprecationWarning, match="'confidence_level' is renamed 'delta'"):
        config = load_config(get_experiment("online_regret"), path)
    assert config["learner"]["delta"] == 1.0 - 0.8


# ---------------------------------------------------------------------------------------
# Every learner setting is reachable from an experiment config
# ---------------------------------------------------------------------------------------

#: A valid non-default value of every field (each changed alone).
ALTERNATIVES = {
    "capacity": 7,
    "prior_scale": 0.5,
    "newton_steps": 3,
    "num_draws": 5,
    "quantile_offset": 3.0,
    "delta": 0.05,
    "n_candidates": 3,
    "planner_steps": 7,
    "planner_lr": 0.1,
    "reward_noise_sd": 0.25,
    "optimism": "first-order",
    "radius": "theory",
    "reward_bound": "hoeffding",
    "mle_prior_scale": 2.0,
    "theta_bound": 3.0,
    "leader_model": "linear",
    "leader_features": "tabular",
    "lsvi_reg": 0.5,
    "refit": "switching",
    "switch_factor": 3.0,
    "max_policies": 64,
    "penalty": "first-order",
    "rule": "cvar",
    "posterior": "nuts",
    "dirichlet_prior": 0.5,
    "optimism_level": 0.5,
    "n_starts": 3,
    "steps": 9,
    "learning_rate": 0.01,
}


def _online_settings(config):
    """The settings the experiment's first (myopic) unit runs under."""
    from bayes_qse.experiments.online_regret import make_units
    from bayes_qse.experiments.online_units import unit_learner_config

    unit = make_units(config)[0]
    return unit_learner_config(unit.config, False, unit.T)


def _offline_settings(config):
    """The settings the experiment's first unit's learners get."""
    from bayes_qse.experiments.offline_suboptimality import _learner_settings, make_units
    from bayes_qse.learners.offline import learner_config

    return learner_config(_learner_settings(make_units(config)[0].config))


def _security_settings(config):
    from bayes_qse.experiments.security_games import online_settings

    return online_settings(config)


@pytest.mark.parametrize(
    ("experiment", "cls", "settings_of", "top_level"),
    [
        ("online_regret", LearnerConfig, _online_settings, ()),
        ("offline_suboptimality", OfflineLearnerConfig, _offline_settings, ()),
        # security_games' one prior is every study's: a top-level key
        ("security_games", SecurityLearnerConfig, _security_settings, ("prior_scale",)),
    ],
)
def test_every_learner_setting_is_reachable_from_its_experiment(
    experiment, cls, settings_of, top_level
):
    """Each field of the learners' settings, set (alone, to a non-default value) in the
    experiment's config, reaches the settings the experiment's learners get.  Fails on a
    setting an experiment cannot set (10 of the online learner's 20 once) or one that its
    config accepts but drops on the way (``capacity``, set from the episodes, aside)."""
    module = get_experiment(experiment)
    missing = []
    for f in dataclasses.fields(cls):
        if f.name == "capacity":
            continue
        value = ALTERNATIVES[f.name]
        assert value != f.default, f.name
        changes = {f.name: value}
        if f.name == "radius":  # the likelihood-ratio set is planned on its box only
            changes["optimism"] = "box"
        if cls is LearnerConfig and f.name in ("switch_factor", "max_policies"):
            changes["refit"] = "switching"  # the schedule's settings, read when it switches
        # as run --config reads them: the [learner] table
        overrides = {k: v for k, v in changes.items() if k in top_level}
        learner = {k: v for k, v in changes.items() if k not in top_level}
        if learner:
            overrides["learner"] = learner
        try:
            got = getattr(settings_of(load_config(module, overrides=overrides)), f.name)
        except (KeyError, ConfigError) as exc:
            missing.append(f"{f.name} ({exc})")
            continue
        if got != value:
            missing.append(f"{f.name} (got {got!r})")
    assert not missing, missing


def test_the_cli_shows_a_retired_name_it_reads(tmp_path):
    """``bayes-qse run --config`` with a retired name, in a fresh interpreter: Python hides
    DeprecationWarnings raised in library code, so without the CLI's filter the user would
    never learn the new name.  Fails if the CLI stays silent (the run stops at the config's
    unknown key, after the retired name was read)."""
    import os
    import subprocess
    import sys

    path = tmp_path / "old.toml"
    path.write_text("confidence_level = 0.9\nno_such_key = 1\n", encoding="utf-8")
    command = ["run", "online_regret", "--config", str(path), "--out", str(tmp_path / "o")]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "bayes_qse.cli", *command],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 2 and "no_such_key" in done.stderr, done.stderr
    assert "'confidence_level' is renamed 'delta'" in done.stderr, done.stderr
